#include "stn/experiments/test_files.h"

#include <algorithm>

#include "stn/framework/data/idx.h"
#include "stn/framework/error.h"

namespace stn::cli {

Dataset load_test_files(const std::string& images_path, const std::string& labels_path, const InputSpec& input) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  const Shape wanted{static_cast<std::size_t>(input.channels), static_cast<std::size_t>(input.height),
                     static_cast<std::size_t>(input.width)};
  const std::string wanted_text = "N x " + std::to_string(wanted[0]) + " x " + std::to_string(wanted[1]) + " x " +
                                  std::to_string(wanted[2]) +
                                  (wanted[0] == 1 ? " (or N x " + std::to_string(wanted[1]) + " x " +
                                                        std::to_string(wanted[2]) + ")"
                                                  : "");
  Shape image_shape;
  if (images.dims.size() == 3) image_shape = {images.dims[0], 1, images.dims[1], images.dims[2]};
  else if (images.dims.size() == 4) image_shape = {images.dims[0], images.dims[1], images.dims[2], images.dims[3]};
  const bool fits = !image_shape.empty() && image_shape[1] == wanted[0] && image_shape[2] == wanted[1] &&
                    image_shape[3] == wanted[2];
  if (!fits)
    throw DataError(images_path + ": images of shape " + shape_string(images.dims) +
                    " do not fit the run's model, which takes " + wanted_text);
  if (labels.dims.size() != 1)
    throw DataError(labels_path + ": labels of shape " + shape_string(labels.dims) + " must be one-dimensional (N)");
  if (labels.dims[0] != image_shape[0])
    throw DataError(labels_path + ": " + std::to_string(labels.dims[0]) + " labels for the " +
                    std::to_string(image_shape[0]) + " images of " + images_path);
  Dataset data;
  data.name = images_path;
  data.num_classes = input.classes;
  data.images = empty(image_shape);
  std::transform(images.data.begin(), images.data.end(), data.images.data(),
                 [](std::uint8_t pixel) { return static_cast<float>(pixel) / 255.0f; });
  data.labels.resize(labels.data.size());
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= input.classes)
      throw DataError(labels_path + ": label " + std::to_string(i) + " is " + std::to_string(labels.data[i]) +
                      ", but the run's model has " + std::to_string(input.classes) + " classes");
    data.labels[i] = labels.data[i];
  }
  return data;
}

}  // namespace stn::cli
