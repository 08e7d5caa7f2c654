// Saving and loading weights: a small CNN's parameters go to a safetensors file by name
// ("0.weight", "4.bias", ...) and come back into a second copy built from other weights.
#include <cstdio>
#include <string>

#include <stn/stn.h>

std::shared_ptr<stn::Sequential> make_net(stn::Generator& init) {
  auto net = std::make_shared<stn::Sequential>();
  net->add(std::make_shared<stn::Conv2d>(stn::Conv2dLayerOptions{.in = 1, .out = 4, .kernel = 3}, init));
  net->add(std::make_shared<stn::ReLU>());
  net->add(std::make_shared<stn::MaxPool2d>());
  net->add(std::make_shared<stn::Flatten>());
  net->add(std::make_shared<stn::Linear>(stn::LinearOptions{.in = 4 * 3 * 3, .out = 3}, init));
  return net;
}

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "net.safetensors";
  stn::Generator init(1), other_init(2);
  auto net = make_net(init);  // (train it here)
  stn::save_parameters(path, *net, {{"note", "an example"}});

  auto copy = make_net(other_init);
  stn::load_parameters(path, *copy);  // throws naming the tensor if a name or shape differs
  for (const stn::Parameter* parameter : copy->parameters()) {
    std::printf("%-9s %s\n", parameter->name.c_str(), stn::shape_string(parameter->value).c_str());
  }

  stn::Tensor image = stn::empty({1, 1, 8, 8});
  for (std::size_t i = 0; i < image.size(); ++i) image.data()[i] = i / 64.0f;
  stn::Tape tape;
  const stn::Tensor& ours = (*net)(tape.input(image)).value();
  const stn::Tensor& loaded = (*copy)(tape.input(image)).value();
  std::printf("logits %.5f %.5f %.5f\n", ours(0, 0), ours(0, 1), ours(0, 2));
  return loaded == ours ? 0 : 1;
}
