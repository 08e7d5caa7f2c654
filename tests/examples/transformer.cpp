// A spatial transformer in a model: an affine transformer resamples a 16x16 image to 8x8,
// and a small perceptron classifies its output. Task: is the bar in the image horizontal or
// vertical? The localisation network learns with a tenth of the learning rate.
#include <cstdio>

#include <stn/stn.h>

int main() {
  stn::Generator init(3);
  auto localisation = std::make_shared<stn::Sequential>();  // any Module producing [N, 20]
  localisation->add(std::make_shared<stn::Flatten>());
  localisation->add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 16 * 16, .out = 20}, init));
  localisation->add(std::make_shared<stn::ReLU>());
  auto transformer = std::make_shared<stn::SpatialTransformer>(
      localisation,
      stn::SpatialTransformerOptions{.kind = stn::TransformKind::affine, .output_height = 8, .output_width = 8,
                                     .localisation_features = 20},
      init);
  stn::Sequential model;
  model.add(transformer);
  model.add(std::make_shared<stn::Flatten>());
  model.add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 8 * 8, .out = 32}, init));
  model.add(std::make_shared<stn::ReLU>());
  model.add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 32, .out = 2}, init));

  // Two groups: the localisation network and the transformer's regression layer at 0.1x.
  stn::SGD optimizer(stn::localisation_parameter_groups(model, 0.1f), {.learning_rate = 0.05f, .momentum = 0.9f});
  stn::Generator data(11);
  stn::Tape tape;
  float first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    stn::Tensor images = stn::zeros({32, 1, 16, 16});
    std::vector<std::int32_t> labels(32);
    for (std::size_t n = 0; n < 32; ++n) {
      labels[n] = data.uniform() < 0.5f;  // 1: vertical
      const int row = static_cast<int>(data.below(11)), column = static_cast<int>(data.below(11));
      for (int k = 0; k < 6; ++k) {
        images(n, 0, labels[n] ? row + k : row, labels[n] ? column : column + k) = 1.0f;
      }
    }
    stn::Var loss = stn::cross_entropy(model(tape.input(images)), labels);
    tape.backward(loss);
    optimizer.step();
    optimizer.zero_grad();
    last = loss.value()();
    if (step == 0) first = last;
    if (step == 299) {
      // What the transformer did in this forward pass: its result is reported on the tape.
      const stn::Tensor& theta = transformer->result_on(tape)->theta.value();  // [32, 2, 3]
      std::printf("theta of the first image: [%.2f %.2f %.2f; %.2f %.2f %.2f]\n", theta(0, 0, 0), theta(0, 0, 1),
                  theta(0, 0, 2), theta(0, 1, 0), theta(0, 1, 1), theta(0, 1, 2));
    }
    tape.clear();
  }
  std::printf("loss %.4f -> %.4f\n", first, last);
  return last < 0.5f * first ? 0 : 1;
}
