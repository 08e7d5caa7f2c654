// What the fast sampler (sampler.cpp) and the derivative sampler (sampler_derivatives.cpp)
// share (internal): the coordinate map along one axis and when to use threads. Both files
// are compiled with -ffp-contract=off (CMakeLists.txt), so the arithmetic below is the same
// float operations in each.
#pragma once

#include <cmath>
#include <cstddef>

#include "stn/framework/kernels/buffers.h"
#include "stn/framework/kernels/sampler.h"
#include "stn/framework/kernels/sampler_options.h"

namespace stn::kernels {

// Normalised coordinate -> pixel coordinate along one axis.
struct SamplerAxis {
  float scale;   // pixels per normalised unit: the grid gradient's multiplier
  float offset;  // -0.5 (pixel centres) or 0 (aligned corners)
  float last;    // size - 1
  float size;
  // The clamp: [0, size - 1] with border padding, (-inf, inf), i.e. none, with zeros.
  // Bounds instead of a flag keep the loops free of a select the vectoriser rejects.
  float low, high;

  SamplerAxis(std::size_t pixels, const GridSampleOptions& options)
      : scale(options.align_corners ? static_cast<float>(pixels - 1) / 2.0f
                                    : static_cast<float>(pixels) / 2.0f),
        offset(options.align_corners ? 0.0f : -0.5f),
        last(static_cast<float>(pixels - 1)),
        size(static_cast<float>(pixels)),
        low(options.padding == PaddingMode::border ? 0.0f : -INFINITY),
        high(options.padding == PaddingMode::border ? last : INFINITY) {}

  // PyTorch: (v + 1) * scale - 0.5 as one fused multiply-add, or (v + 1) * scale, which is
  // the same float (up to the sign of a zero) as a fused multiply-add with 0. One formula
  // keeps the loop branch-free.
  float unclamped(float normalised) const {
    return std::fma(normalised + 1.0f, scale, offset);
  }
  // NaN falls through both comparisons and stays NaN.
  float clamped(float pixel) const {
    const float above_low = pixel < low ? low : pixel;
    return above_low > high ? high : above_low;
  }
  // The clamp's derivative is 1 strictly inside its bounds and 0 on and beyond them
  // (PyTorch's choice at the edge); without a clamp it is 1 for every finite coordinate.
  float gradient_multiplier(float unclamped_pixel) const {
    return (unclamped_pixel > low) & (unclamped_pixel < high) ? scale : 0.0f;
  }
};

// Sampled values (N * C * H' * W'): threads from 16 Ki on.
inline bool sampler_worth_threads(const SamplerGeometry& geometry) {
  return worth_threads(static_cast<double>(geometry.batch) * geometry.channels * geometry.output_height *
                           geometry.output_width,
                       16.0 * 1024);
}

}  // namespace stn::kernels
