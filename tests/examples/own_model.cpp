// A model of your own: a Module subclass that registers its layers and a parameter of its
// own, trained to tell which quadrant a 2-D point lies in.
#include <cstdio>

#include <stn/stn.h>

// A two-layer perceptron whose logits are multiplied by a learned temperature.
class QuadrantNet : public stn::Module {
 public:
  explicit QuadrantNet(stn::Generator& init)
      : hidden_(register_module("hidden", std::make_shared<stn::Linear>(stn::LinearOptions{.in = 2, .out = 32}, init))),
        output_(register_module("output", std::make_shared<stn::Linear>(stn::LinearOptions{.in = 32, .out = 4}, init))),
        temperature_(register_parameter("temperature", stn::full({1}, 1.0f))) {}

  stn::Var forward(stn::Var x) override {
    stn::Var hidden = stn::relu(hidden_->forward(x));
    return output_->forward(hidden) * x.tape().param(temperature_);  // [N, 4] * [1] broadcasts
  }
  std::string describe() const override { return "QuadrantNet"; }

 private:
  std::shared_ptr<stn::Linear> hidden_, output_;
  stn::Parameter& temperature_;
};

int main() {
  stn::Generator init(42);  // the initial weights: every random draw names its generator
  QuadrantNet model(init);
  std::printf("%s%zu parameters\n", model.summary().c_str(), model.parameter_count());

  stn::SGD optimizer({{model.parameters()}}, {.learning_rate = 0.1f, .momentum = 0.9f});
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
    stn::Var loss = stn::cross_entropy(model(tape.input(points)), labels);
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
