#include "stn/framework/data/mnist.h"

#include <filesystem>
#include <system_error>

#include "stn/framework/data/idx.h"
#include "stn/framework/error.h"

namespace stn {
namespace {

constexpr int kClassCount = 10;

// How one family of IDX datasets is named: "mnist" in dataset names, "MNIST" in messages.
struct DatasetFamily {
  std::string name;
  std::string display_name;
};

std::string find_file(const std::string& directory, const std::string& file_name,
                      const DatasetFamily& family) {
  const std::filesystem::path plain = std::filesystem::path(directory) / file_name;
  const std::filesystem::path compressed = std::filesystem::path(directory) / (file_name + ".gz");
  std::error_code error;
  if (std::filesystem::exists(plain, error)) return plain.string();
  if (std::filesystem::exists(compressed, error)) return compressed.string();
  throw DataError(family.display_name + " file '" + plain.string() + "' (or '" + compressed.string() +
                  "') not found");
}

Tensor images_from_idx(const std::string& path, const IdxArray& idx) {
  if (idx.dims.size() != 3) {
    throw DataError(path + ": images must be 3-D [count, rows, columns], got dimensions " +
                    shape_string(idx.dims));
  }
  Tensor images = empty({idx.dims[0], 1, idx.dims[1], idx.dims[2]});
  float* out = images.data();
  for (std::size_t i = 0; i < idx.data.size(); ++i) out[i] = static_cast<float>(idx.data[i]) / 255.0f;
  return images;
}

std::vector<std::int32_t> labels_from_idx(const std::string& path, const IdxArray& idx) {
  if (idx.dims.size() != 1) {
    throw DataError(path + ": labels must be 1-D [count], got dimensions " + shape_string(idx.dims));
  }
  std::vector<std::int32_t> labels(idx.data.begin(), idx.data.end());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kClassCount) {
      throw DataError(path + ": label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                      " is outside [0, " + std::to_string(kClassCount) + ")");
    }
  }
  return labels;
}

Dataset load_idx_dataset(const std::string& directory, Split split, const DatasetFamily& family) {
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error)) {
    throw DataError(family.display_name + " data directory '" + directory +
                    "' does not exist");
  }
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = find_file(directory, prefix + "-images-idx3-ubyte", family);
  const std::string labels_path = find_file(directory, prefix + "-labels-idx1-ubyte", family);

  Dataset dataset;
  dataset.name = family.name + (split == Split::Train ? "/train" : "/test");
  dataset.num_classes = kClassCount;
  dataset.labels = labels_from_idx(labels_path, read_idx(labels_path));
  // Labels first: they are small, so a bad labels file fails before the large images file is read.
  dataset.images = images_from_idx(images_path, read_idx(images_path));
  const std::size_t image_count = dataset.images.shape()[0];
  if (image_count != dataset.labels.size()) {
    throw DataError(images_path + ": holds " + std::to_string(image_count) + " images but '" + labels_path +
                    "' holds " + std::to_string(dataset.labels.size()) + " labels");
  }
  return dataset;
}

}  // namespace

Dataset load_mnist(const std::string& directory, Split split) {
  return load_idx_dataset(directory, split, {"mnist", "MNIST"});
}

Dataset load_fashion_mnist(const std::string& directory, Split split) {
  return load_idx_dataset(directory, split, {"fashion-mnist", "Fashion-MNIST"});
}

}  // namespace stn
