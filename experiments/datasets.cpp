#include "experiments/datasets.h"

#include <stdexcept>

namespace stn::cli {

std::vector<std::string> dataset_names() { return {"mnist", "fashion"}; }

std::string default_data_dir(const std::string& name) {
  if (name == "fashion") return default_fashion_mnist_dir();
  return "data/mnist";
}

DatasetPair load_dataset(const std::string& name, const std::string& data_dir) {
  const std::string dir = data_dir.empty() ? default_data_dir(name) : data_dir;
  DatasetPair pair;
  if (name == "mnist") {
    pair.train = load_mnist(dir, Split::Train);
    pair.test = load_mnist(dir, Split::Test);
  } else if (name == "fashion") {
    pair.train = load_fashion_mnist(dir, Split::Train);
    pair.test = load_fashion_mnist(dir, Split::Test);
  } else {
    throw std::invalid_argument("unknown dataset '" + name + "' (known: mnist, fashion)");
  }
  const auto& shape = pair.train.images.shape();
  pair.input = InputSpec{.channels = static_cast<int>(shape[1]), .height = static_cast<int>(shape[2]),
                         .width = static_cast<int>(shape[3]), .classes = pair.train.num_classes};
  return pair;
}

}  // namespace stn::cli
