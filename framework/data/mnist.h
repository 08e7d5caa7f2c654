// Labelled image datasets in memory, and the loaders for MNIST and Fashion-MNIST (both
// ship as four IDX files: train/t10k images and labels, plain or gzip-compressed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "stn/framework/tensor.h"

namespace stn {

struct Dataset {
  std::string name;                  // "mnist/train"
  Tensor images;                     // [N, 1, rows, columns] float32 in [0, 1] (pixel / 255); 28x28 for MNIST
  std::vector<std::int32_t> labels;  // N labels in [0, num_classes)
  int num_classes = 10;

  std::size_t size() const { return labels.size(); }
};

enum class Split { Train, Test };

// Loads one split from `directory`, which holds train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each either
// plain or with a ".gz" suffix (the plain file wins when both exist). Throws stn::DataError
// naming the directory or file when the directory or a file is missing, a file is not valid
// IDX (see read_idx), the images are not 3-D, the labels not 1-D, their counts differ, or a
// label is 10 or more. The dataset is named "mnist/train" or "mnist/test".
Dataset load_mnist(const std::string& directory, Split split);

// The same for Fashion-MNIST (same file names; "fashion-mnist/train" or "fashion-mnist/test").
Dataset load_fashion_mnist(const std::string& directory, Split split);

}  // namespace stn
