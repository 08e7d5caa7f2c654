// Small helpers shared by the tests.
#pragma once

#include <cmath>
#include <string>

#include "stn/framework/random.h"
#include "stn/framework/tensor.h"

namespace stn::test {

inline Tensor random_tensor(const Shape& shape, Generator& generator, float low = -1.0f,
                            float high = 1.0f) {
  Tensor t = empty(shape);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = generator.uniform(low, high);
  return t;
}

inline Tensor tensor_from(const Shape& shape, std::initializer_list<float> values) {
  Tensor t = empty(shape);
  std::size_t i = 0;
  for (float v : values) t.data()[i++] = v;
  return t;
}

// A parameterised case's description as a test name: "non-square, stride 2" ->
// "non_square_stride_2" (gtest names allow only letters, digits and '_').
inline std::string test_name(const std::string& description) {
  std::string name;
  for (char c : description) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (word) name += c;
    else if (!name.empty() && name.back() != '_') name += '_';
  }
  while (!name.empty() && name.back() == '_') name.pop_back();
  return name;
}

// Largest |a - b| over two same-sized tensors (infinity when sizes differ).
inline float max_abs_difference(const Tensor& a, const Tensor& b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

}  // namespace stn::test
