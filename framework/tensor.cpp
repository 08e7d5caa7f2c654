#include "stn/framework/tensor.h"

#include <algorithm>

namespace stn {

Tensor empty(const Shape& shape) { return Tensor::from_shape(shape); }

Tensor full(const Shape& shape, float value) {
  Tensor t = Tensor::from_shape(shape);
  // Gradients of whole activations are filled every step: split big ones over the threads.
  float* data = t.data();
  const auto n = static_cast<std::ptrdiff_t>(t.size());
  constexpr std::ptrdiff_t kChunk = 64 * 1024;
  const std::ptrdiff_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks >= 8)
  for (std::ptrdiff_t c = 0; c < chunks; ++c)
    std::fill(data + c * kChunk, data + std::min(n, (c + 1) * kChunk), value);
  return t;
}

Tensor zeros(const Shape& shape) { return full(shape, 0.0f); }

Shape shape_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end()); }

std::size_t numel(const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string shape_string(const Tensor& t) { return shape_string(shape_of(t)); }

}  // namespace stn
