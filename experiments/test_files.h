// Test data made elsewhere, for `stn eval --test-images FILE --test-labels FILE`.
#pragma once

#include <string>

#include "stn/framework/data/mnist.h"
#include "stn/models/models.h"

namespace stn::cli {

// Reads an image file and a label file (IDX, unsigned bytes, plain or gzip) as a dataset for
// a model that takes `input`: images N x H x W (one channel) or N x C x H x W with C, H, W
// equal to the model's, pixels scaled by 1/255 as MNIST's; labels N values below
// input.classes. Throws stn::DataError naming the file and both shapes (or counts) when they
// do not fit, and read_idx's errors for files that are not such IDX files.
Dataset load_test_files(const std::string& images_path, const std::string& labels_path, const InputSpec& input);

}  // namespace stn::cli
