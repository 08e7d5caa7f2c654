// The one tensor type of the framework: a float32, row-major xtensor array whose storage is
// 64-byte aligned (one AVX-512 register), so kernels can work on its raw buffer directly.
// Images are NCHW.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>
#include <xtensor/xarray.hpp>

namespace stn {

constexpr std::size_t kTensorAlignment = 64;

using Tensor = xt::xarray<float, xt::layout_type::row_major,
                          xsimd::aligned_allocator<float, kTensorAlignment>>;
using Shape = std::vector<std::size_t>;

// A tensor of the given shape, every element 0 (or `value`).
Tensor zeros(const Shape& shape);
Tensor full(const Shape& shape, float value);
// A tensor of the given shape whose contents are left unspecified (to be overwritten).
Tensor empty(const Shape& shape);

Shape shape_of(const Tensor& t);
std::size_t numel(const Shape& shape);
// "[2, 3, 28, 28]"
std::string shape_string(const Shape& shape);
std::string shape_string(const Tensor& t);

}  // namespace stn
