#include "stn/framework/kernels/sampler_derivatives.h"

#include <cmath>
#include <cstddef>

#include "stn/framework/kernels/sampler_axis.h"

// The pixel coordinates must be the fast sampler's floats exactly (a floor on the other side
// of an integer would pick other corners), so the same coordinate map (sampler_axis.h) and,
// like sampler.cpp, compiled with -ffp-contract=off (CMakeLists.txt).

namespace stn::kernels {

namespace {

// One sampling point: its four corners NW, NE, SW, SE (k = dx + 2 dy) as indices into an
// input plane (-1 outside), the fractions and the multipliers.
struct Footprint {
  std::ptrdiff_t index[4];
  float fx, fy, mx, my;
};

// False when the point has no corner inside (NaN, Inf and huge coordinates included); only
// then are coordinates converted to integers.
bool footprint(const float* point, const SamplerAxis& axis_x, const SamplerAxis& axis_y,
               std::ptrdiff_t height, std::ptrdiff_t width, Footprint& f) {
  const float raw_x = axis_x.unclamped(point[0]), raw_y = axis_y.unclamped(point[1]);
  const float x = axis_x.clamped(raw_x), y = axis_y.clamped(raw_y);
  if (!(x >= -1.0f && x < axis_x.size && y >= -1.0f && y < axis_y.size)) return false;
  const float column = std::floor(x), row = std::floor(y);
  f.fx = x - column;
  f.fy = y - row;
  f.mx = axis_x.gradient_multiplier(raw_x);
  f.my = axis_y.gradient_multiplier(raw_y);
  const auto c = static_cast<std::ptrdiff_t>(column), r = static_cast<std::ptrdiff_t>(row);
  for (int k = 0; k < 4; ++k) {
    const std::ptrdiff_t cc = c + (k & 1), rr = r + (k >> 1);
    f.index[k] = cc >= 0 && cc < width && rr >= 0 && rr < height ? rr * width + cc : -1;
  }
  return true;
}

// d^order / df^order of the 1-D weight of the corner at `offset` (0: 1 - f, 1: f).
float axis_weight(int offset, int order, float fraction) {
  if (order == 0) return offset ? fraction : 1.0f - fraction;
  if (order == 1) return offset ? 1.0f : -1.0f;
  return 0.0f;  // the weights are linear in each fraction
}

// c_ab,k for the four corners. Order (0, 0) gives the fast sampler's weights bit for bit
// (fy-weight times fx-weight, times 1).
void coefficients(const Footprint& f, DerivativeOrder order, float out[4]) {
  const float scale = (order.x ? f.mx : 1.0f) * (order.y ? f.my : 1.0f);
  for (int k = 0; k < 4; ++k)
    out[k] = axis_weight(k >> 1, order.y, f.fy) * axis_weight(k & 1, order.x, f.fx) * scale;
}

bool zero_order(DerivativeOrder order) { return order.x > 1 || order.y > 1; }

// Calls visit(n, p, footprint) for every output pixel p of every sample n that has a corner
// inside; samples are spread over threads, each visit of one sample on one thread.
template <class Visit>
void for_each_point(const SamplerGeometry& geometry, const GridSampleOptions& options,
                    const float* grid, Visit visit) {
  const SamplerAxis axis_x(geometry.input_width, options), axis_y(geometry.input_height, options);
  const auto height = static_cast<std::ptrdiff_t>(geometry.input_height);
  const auto width = static_cast<std::ptrdiff_t>(geometry.input_width);
  const std::size_t pixels = geometry.output_height * geometry.output_width;
  const auto batch = static_cast<std::ptrdiff_t>(geometry.batch);
#pragma omp parallel for schedule(static) if (sampler_worth_threads(geometry))
  for (std::ptrdiff_t n = 0; n < batch; ++n) {
    Footprint f;
    for (std::size_t p = 0; p < pixels; ++p)
      if (footprint(grid + (n * pixels + p) * 2, axis_x, axis_y, height, width, f))
        visit(static_cast<std::size_t>(n), p, f);
  }
}

// Corner k of a plane, 0 outside.
inline float tap(const float* plane, std::ptrdiff_t index) { return index < 0 ? 0.0f : plane[index]; }

// sum_k c_k plane[corner_k], in the fast sampler's order of fused multiply-adds.
inline float combine(const float* plane, const Footprint& f, const float c[4]) {
  float value = tap(plane, f.index[0]) * c[0];
  value = std::fma(tap(plane, f.index[1]), c[1], value);
  value = std::fma(tap(plane, f.index[2]), c[2], value);
  return std::fma(tap(plane, f.index[3]), c[3], value);
}

}  // namespace

void sampler_derivative(const SamplerGeometry& geometry, const GridSampleOptions& options,
                        DerivativeOrder order, const float* input, const float* grid,
                        float* output) {
  if (zero_order(order)) return;
  const std::size_t in_plane = geometry.input_height * geometry.input_width;
  const std::size_t out_plane = geometry.output_height * geometry.output_width;
  const std::size_t channels = geometry.channels;
  for_each_point(geometry, options, grid, [&](std::size_t n, std::size_t p, const Footprint& f) {
    float c[4];
    coefficients(f, order, c);
    for (std::size_t ch = 0; ch < channels; ++ch)
      output[(n * channels + ch) * out_plane + p] += combine(input + (n * channels + ch) * in_plane, f, c);
  });
}

void sampler_derivative_adjoint(const SamplerGeometry& geometry, const GridSampleOptions& options,
                                DerivativeOrder order, const float* values, const float* grid,
                                float* output) {
  if (zero_order(order)) return;
  const std::size_t in_plane = geometry.input_height * geometry.input_width;
  const std::size_t out_plane = geometry.output_height * geometry.output_width;
  const std::size_t channels = geometry.channels;
  for_each_point(geometry, options, grid, [&](std::size_t n, std::size_t p, const Footprint& f) {
    float c[4];
    coefficients(f, order, c);
    for (std::size_t ch = 0; ch < channels; ++ch) {
      const float value = values[(n * channels + ch) * out_plane + p];
      float* plane = output + (n * channels + ch) * in_plane;
      for (int k = 0; k < 4; ++k)
        if (f.index[k] >= 0) plane[f.index[k]] += c[k] * value;
    }
  });
}

void sampler_derivative_contract(const SamplerGeometry& geometry, const GridSampleOptions& options,
                                 DerivativeOrder order, const float* input, const float* weights,
                                 const float* grid, float* grad_grid) {
  const DerivativeOrder along_x{order.x + 1, order.y}, along_y{order.x, order.y + 1};
  const std::size_t in_plane = geometry.input_height * geometry.input_width;
  const std::size_t out_plane = geometry.output_height * geometry.output_width;
  const std::size_t channels = geometry.channels;
  for_each_point(geometry, options, grid, [&](std::size_t n, std::size_t p, const Footprint& f) {
    float cx[4] = {}, cy[4] = {};
    if (!zero_order(along_x)) coefficients(f, along_x, cx);
    if (!zero_order(along_y)) coefficients(f, along_y, cy);
    double sum_x = 0.0, sum_y = 0.0;
    for (std::size_t ch = 0; ch < channels; ++ch) {
      const float* plane = input + (n * channels + ch) * in_plane;
      const double weight = weights[(n * channels + ch) * out_plane + p];
      sum_x += weight * combine(plane, f, cx);
      sum_y += weight * combine(plane, f, cy);
    }
    grad_grid[(n * out_plane + p) * 2] += static_cast<float>(sum_x);
    grad_grid[(n * out_plane + p) * 2 + 1] += static_cast<float>(sum_y);
  });
}

}  // namespace stn::kernels
