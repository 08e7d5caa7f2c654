#include <stdexcept>

#include "stn/layers/layers.h"
#include "stn/models/models.h"

namespace stn {

std::shared_ptr<Module> make_fcn(const InputSpec& input, Generator& generator, const FcnOptions& options) {
  auto model = std::make_shared<Sequential>();
  model->add("flatten", std::make_shared<Flatten>());
  int features = input.channels * input.height * input.width;
  for (int layer = 1; layer <= options.hidden_layers; ++layer) {
    model->add("fc" + std::to_string(layer),
               std::make_shared<Linear>(LinearOptions{.in = features, .out = options.hidden_units}, generator));
    model->add("relu" + std::to_string(layer), std::make_shared<ReLU>());
    features = options.hidden_units;
  }
  model->add("classifier", std::make_shared<Linear>(LinearOptions{.in = features, .out = input.classes}, generator));
  return model;
}

std::shared_ptr<Module> make_cnn(const InputSpec& input, Generator& generator, const CnnOptions& options) {
  // Valid 9x9 conv, 2x2 max-pool, ReLU, valid 7x7 conv, 2x2 max-pool, ReLU, classifier.
  const int h1 = (input.height - 8) / 2, w1 = (input.width - 8) / 2;
  const int h2 = (h1 - 6) / 2, w2 = (w1 - 6) / 2;
  if (h2 < 1 || w2 < 1)
    throw std::invalid_argument("cnn: input " + std::to_string(input.height) + "x" +
                                std::to_string(input.width) + " is too small (needs at least 22x22)");
  auto model = std::make_shared<Sequential>();
  model->add("conv1", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = input.channels, .out = options.conv1_filters, .kernel = 9}, generator));
  // Pool, then ReLU: max-pooling and ReLU commute (values and gradients, ties included), and
  // this way the ReLU runs on a quarter of the data.
  model->add("pool1", std::make_shared<MaxPool2d>(Pool2dOptions{.kernel = 2}));
  model->add("relu1", std::make_shared<ReLU>());
  model->add("conv2", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = options.conv1_filters, .out = options.conv2_filters, .kernel = 7}, generator));
  model->add("pool2", std::make_shared<MaxPool2d>(Pool2dOptions{.kernel = 2}));
  model->add("relu2", std::make_shared<ReLU>());
  model->add("flatten", std::make_shared<Flatten>());
  model->add("classifier", std::make_shared<Linear>(LinearOptions{.in = options.conv2_filters * h2 * w2, .out = input.classes}, generator));
  return model;
}

}  // namespace stn
