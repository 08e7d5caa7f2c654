#include <stdexcept>
#include <vector>

#include "stn/layers/layers.h"
#include "stn/models/models.h"

namespace stn {

namespace {

// The FCN's linear layers, in order (the last is the classifier).
std::vector<LinearOptions> fcn_layers(const InputSpec& input, const FcnOptions& options) {
  std::vector<LinearOptions> layers;
  int features = input.channels * input.height * input.width;
  for (int layer = 1; layer <= options.hidden_layers; ++layer) {
    layers.push_back({.in = features, .out = options.hidden_units});
    features = options.hidden_units;
  }
  layers.push_back({.in = features, .out = input.classes});
  return layers;
}

// The CNN's layers: valid 9x9 conv, 2x2 max-pool, ReLU, valid 7x7 conv, 2x2 max-pool, ReLU,
// classifier, whose input size the layers give.
struct CnnLayers {
  Conv2dLayerOptions conv1, conv2;
  Pool2dOptions pool{.kernel = 2};
  LinearOptions classifier;
};

CnnLayers cnn_layers(const InputSpec& input, const CnnOptions& options) {
  CnnLayers layers;
  layers.conv1 = {.in = input.channels, .out = options.conv1_filters, .kernel = 9};
  layers.conv2 = {.in = options.conv1_filters, .out = options.conv2_filters, .kernel = 7};
  const auto feature_side = [&](int side) {
    side = pool2d_output_size(output_side(layers.conv1, side), layers.pool);
    return pool2d_output_size(output_side(layers.conv2, side), layers.pool);
  };
  const int height = feature_side(input.height), width = feature_side(input.width);
  if (height < 1 || width < 1)
    throw std::invalid_argument("cnn: input " + std::to_string(input.height) + "x" +
                                std::to_string(input.width) + " is too small (needs at least 22x22)");
  layers.classifier = {.in = options.conv2_filters * height * width, .out = input.classes};
  return layers;
}

}  // namespace

std::size_t fcn_parameter_count(const InputSpec& input, const FcnOptions& options) {
  std::size_t count = 0;
  for (const LinearOptions& layer : fcn_layers(input, options)) count += parameter_count(layer);
  return count;
}

std::size_t cnn_parameter_count(const InputSpec& input, const CnnOptions& options) {
  const CnnLayers layers = cnn_layers(input, options);
  return parameter_count(layers.conv1) + parameter_count(layers.conv2) + parameter_count(layers.classifier);
}

std::shared_ptr<Module> make_fcn(const InputSpec& input, Generator& generator, const FcnOptions& options) {
  auto model = std::make_shared<Sequential>();
  model->add("flatten", std::make_shared<Flatten>());
  const std::vector<LinearOptions> layers = fcn_layers(input, options);
  for (std::size_t layer = 1; layer < layers.size(); ++layer) {
    model->add("fc" + std::to_string(layer), std::make_shared<Linear>(layers[layer - 1], generator));
    model->add("relu" + std::to_string(layer), std::make_shared<ReLU>());
  }
  model->add("classifier", std::make_shared<Linear>(layers.back(), generator));
  return model;
}

std::shared_ptr<Module> make_cnn(const InputSpec& input, Generator& generator, const CnnOptions& options) {
  const CnnLayers layers = cnn_layers(input, options);
  auto model = std::make_shared<Sequential>();
  model->add("conv1", std::make_shared<Conv2d>(layers.conv1, generator));
  // Pool, then ReLU: max-pooling and ReLU commute (values and gradients, ties included), and
  // this way the ReLU runs on a quarter of the data.
  model->add("pool1", std::make_shared<MaxPool2d>(layers.pool));
  model->add("relu1", std::make_shared<ReLU>());
  model->add("conv2", std::make_shared<Conv2d>(layers.conv2, generator));
  model->add("pool2", std::make_shared<MaxPool2d>(layers.pool));
  model->add("relu2", std::make_shared<ReLU>());
  model->add("flatten", std::make_shared<Flatten>());
  model->add("classifier", std::make_shared<Linear>(layers.classifier, generator));
  return model;
}

}  // namespace stn
