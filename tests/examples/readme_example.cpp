// Learns which quadrant a 2-D point lies in, with a small MLP.
#include <cstdio>

#include <stn/stn.h>

int main() {
  stn::Generator init(42);  // the initial weights: every random draw names its generator
  auto model = std::make_shared<stn::Sequential>();
  model->add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 2, .out = 32}, init));
  model->add(std::make_shared<stn::ReLU>());
  model->add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 32, .out = 4}, init));
  std::printf("%s%zu parameters\n", model->summary().c_str(), model->parameter_count());

  stn::SGD optimizer({{model->parameters()}}, {.learning_rate = 0.1f, .momentum = 0.9f});
  stn::Generator data(7);
  stn::Tape tape;
  float first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    stn::Tensor points = stn::empty({64, 2});
    std::vector<std::int32_t> labels(64);
    for (int i = 0; i < 64; ++i) {
      float x = data.uniform(-1, 1), y = data.uniform(-1, 1);
      points(i, 0) = x;
      points(i, 1) = y;
      labels[i] = (x > 0) + 2 * (y > 0);
    }
    stn::Var logits = model->forward(tape.input(points));
    stn::Var loss = stn::cross_entropy(logits, labels);
    tape.backward(loss);
    optimizer.step();
    optimizer.zero_grad();
    last = loss.value()();
    if (step == 0) first = last;
    if (step % 100 == 0) std::printf("step %3d  loss %.4f\n", step, last);
    tape.clear();
  }
  std::printf("loss %.4f -> %.4f\n", first, last);
  return last < 0.5f * first ? 0 : 1;  // a failed training fails the test
}
