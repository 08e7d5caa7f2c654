#include "stn/framework/kernels/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "stn/framework/kernels/sampler_axis.h"

// The arithmetic copies PyTorch 1.13's AVX2 grid sampler, whose build fuses some multiplies
// and adds: the fused steps are explicit std::fma calls here, and the compiler must not fuse
// any others (-ffp-contract=off for this file, CMakeLists.txt).

namespace stn::kernels {

namespace {

// A pixel of one input plane, 0 for index -1 (outside). The load always reads a valid
// address, so the compiler can turn the select into a blend and vectorise the loop.
inline float tap(const float* plane, std::int32_t index) {
  const float value = plane[index < 0 ? 0 : index];
  return index < 0 ? 0.0f : value;
}

// floor() of a float known to lie well inside the int32 range. std::floor does not
// vectorise (GCC keeps it scalar under the default -ftrapping-math); truncation does.
inline std::int32_t floor_to_int(float value) {
  const std::int32_t truncated = static_cast<std::int32_t>(value);
  return truncated - (value < static_cast<float>(truncated) ? 1 : 0);
}

// Output pixels are processed in blocks whose neighbour tables stay in L1 across channels.
constexpr std::size_t kBlock = 256;

// The four neighbours (north-west, north-east, south-west, south-east) of each output pixel
// in a block: indices into one input plane (-1 outside), bilinear weights, the distances to
// the west and north neighbours and the grid-gradient multipliers. Nearest mode uses
// index[0] only.
struct NeighbourTable {
  std::int32_t index[4][kBlock];
  float weight[4][kBlock];
  float to_west[kBlock], to_north[kBlock];
  float multiplier_x[kBlock], multiplier_y[kBlock];
};

// The loops below are written for the vectoriser: __restrict pointers (it cannot otherwise
// prove that gathers from an input plane do not alias the stores) and non-short-circuit
// `&` on conditions (`&&` is control flow, which stops it).

void fill_bilinear(NeighbourTable& table, const float* __restrict grid, std::size_t count,
                   const SamplerAxis axis_x, const SamplerAxis axis_y, std::int32_t width) {
  const std::int32_t last_column = static_cast<std::int32_t>(axis_x.last);
  const std::int32_t last_row = static_cast<std::int32_t>(axis_y.last);
  for (std::size_t p = 0; p < count; ++p) {
    const float raw_x = axis_x.unclamped(grid[2 * p]);
    const float raw_y = axis_y.unclamped(grid[2 * p + 1]);
    const float x = axis_x.clamped(raw_x), y = axis_y.clamped(raw_y);
    // floor(x) in [-1, size - 1], i.e. x in [-1, size): the sample has a neighbour inside.
    // The test also rejects NaN, Inf and values too large for int32, before any conversion.
    const bool inside = (x >= -1.0f) & (x < axis_x.size) & (y >= -1.0f) & (y < axis_y.size);
    // Clamped into [-1, size] (NaN to -1) for the conversion; equal to x, y when inside.
    const float safe_x = std::min(std::max(-1.0f, x), axis_x.size);
    const float safe_y = std::min(std::max(-1.0f, y), axis_y.size);
    const std::int32_t column = floor_to_int(safe_x), row = floor_to_int(safe_y);
    // Finite even for a sample outside, whose neighbours all read as index -1.
    const float west = safe_x - static_cast<float>(column);
    const float north = safe_y - static_cast<float>(row);
    const float east = 1.0f - west, south = 1.0f - north;
    const bool west_in = inside & (column >= 0), east_in = inside & (column < last_column);
    const bool north_in = inside & (row >= 0), south_in = inside & (row < last_row);
    const std::int32_t base = row * width + column;
    table.index[0][p] = west_in & north_in ? base : -1;
    table.index[1][p] = east_in & north_in ? base + 1 : -1;
    table.index[2][p] = west_in & south_in ? base + width : -1;
    table.index[3][p] = east_in & south_in ? base + width + 1 : -1;
    table.weight[0][p] = south * east;
    table.weight[1][p] = south * west;
    table.weight[2][p] = north * east;
    table.weight[3][p] = north * west;
    table.to_west[p] = west;
    table.to_north[p] = north;
    // Times 0 or 1 rather than a select of the multiplier: the compiler would move a
    // selected computation into a branch, and then not vectorise the loop.
    const float inside_factor = inside ? 1.0f : 0.0f;
    table.multiplier_x[p] = axis_x.gradient_multiplier(raw_x) * inside_factor;
    table.multiplier_y[p] = axis_y.gradient_multiplier(raw_y) * inside_factor;
  }
}

void fill_nearest(NeighbourTable& table, const float* __restrict grid, std::size_t count,
                  const SamplerAxis axis_x, const SamplerAxis axis_y, std::int32_t width) {
  for (std::size_t p = 0; p < count; ++p) {
    // nearbyint rounds half to even in the default rounding mode, like PyTorch's round().
    const float x = std::nearbyint(axis_x.clamped(axis_x.unclamped(grid[2 * p])));
    const float y = std::nearbyint(axis_y.clamped(axis_y.unclamped(grid[2 * p + 1])));
    const bool inside = (x >= 0.0f) & (x <= axis_x.last) & (y >= 0.0f) & (y <= axis_y.last);
    const std::int32_t column = static_cast<std::int32_t>(inside ? x : 0.0f);
    const std::int32_t row = static_cast<std::int32_t>(inside ? y : 0.0f);
    table.index[0][p] = inside ? row * width + column : -1;
  }
}

// Eq. 5 for one channel of a block, in PyTorch's order of fused multiply-adds.
void interpolate(const NeighbourTable& table, std::size_t count, const float* __restrict plane,
                 float* __restrict out) {
  for (std::size_t p = 0; p < count; ++p) {
    float value = tap(plane, table.index[0][p]) * table.weight[0][p];
    value = std::fma(tap(plane, table.index[1][p]), table.weight[1][p], value);
    value = std::fma(tap(plane, table.index[2][p]), table.weight[2][p], value);
    out[p] = std::fma(tap(plane, table.index[3][p]), table.weight[3][p], value);
  }
}

void pick_nearest(const NeighbourTable& table, std::size_t count, const float* __restrict plane,
                  float* __restrict out) {
  for (std::size_t p = 0; p < count; ++p) out[p] = tap(plane, table.index[0][p]);
}

// Eq. 6: the scatter-add into one input-gradient plane. Neighbours of nearby samples
// collide, so it stays a scalar loop.
void scatter_input_gradient(const NeighbourTable& table, std::size_t count, int corners,
                            const float* __restrict grad_output, float* __restrict plane_grad) {
  for (std::size_t p = 0; p < count; ++p)
    for (int corner = 0; corner < corners; ++corner) {
      const std::int32_t index = table.index[corner][p];
      const float weight = corners == 1 ? 1.0f : table.weight[corner][p];
      if (index >= 0) plane_grad[index] += weight * grad_output[p];
    }
}

// Eq. 7 for one channel, summed over channels into sum_x, sum_y: the derivative of a
// weight along x is +-(its distance along y), and vice versa.
void accumulate_grid_gradient(const NeighbourTable& table, std::size_t count,
                              const float* __restrict plane, const float* __restrict grad_output,
                              float* __restrict sum_x, float* __restrict sum_y) {
  for (std::size_t p = 0; p < count; ++p) {
    const float north_west = tap(plane, table.index[0][p]);
    const float north_east = tap(plane, table.index[1][p]);
    const float south_west = tap(plane, table.index[2][p]);
    const float south_east = tap(plane, table.index[3][p]);
    const float west = table.to_west[p], north = table.to_north[p];
    const float along_x =
        std::fma(south_east - south_west, north, (north_east - north_west) * (1.0f - north));
    const float along_y =
        std::fma(south_east - north_east, west, (south_west - north_west) * (1.0f - west));
    sum_x[p] = std::fma(along_x, grad_output[p], sum_x[p]);
    sum_y[p] = std::fma(along_y, grad_output[p], sum_y[p]);
  }
}

struct Planes {
  std::size_t input;   // H * W
  std::size_t output;  // H' * W'
};

}  // namespace

void grid_sample_forward(const SamplerGeometry& geometry, const GridSampleOptions& options,
                         const float* input, const float* grid, float* output) {
  const SamplerAxis axis_x(geometry.input_width, options), axis_y(geometry.input_height, options);
  const Planes planes{geometry.input_height * geometry.input_width,
                      geometry.output_height * geometry.output_width};
  const std::size_t channels = geometry.channels;
  const auto width = static_cast<std::int32_t>(geometry.input_width);
  const bool nearest = options.mode == SampleMode::nearest;
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel if (sampler_worth_threads(geometry))
  {
    std::vector<NeighbourTable> storage(1);  // about 14 KiB: on the heap, not the stack
    NeighbourTable& table = storage[0];
#pragma omp for schedule(static)
    for (long n = 0; n < batch; ++n) {
      const float* sample_grid = grid + n * planes.output * 2;          // (H'W', 2)
      const float* sample_input = input + n * channels * planes.input;  // (C, H, W)
      float* sample_output = output + n * channels * planes.output;     // (C, H', W')
      for (std::size_t start = 0; start < planes.output; start += kBlock) {
        const std::size_t count = std::min(kBlock, planes.output - start);
        if (nearest)
          fill_nearest(table, sample_grid + 2 * start, count, axis_x, axis_y, width);
        else
          fill_bilinear(table, sample_grid + 2 * start, count, axis_x, axis_y, width);
        for (std::size_t c = 0; c < channels; ++c) {
          const float* plane = sample_input + c * planes.input;
          float* out = sample_output + c * planes.output + start;
          if (nearest)
            pick_nearest(table, count, plane, out);
          else
            interpolate(table, count, plane, out);
        }
      }
    }
  }
}

void grid_sample_backward(const SamplerGeometry& geometry, const GridSampleOptions& options,
                          const float* input, const float* grid, const float* grad_output,
                          float* grad_input, float* grad_grid) {
  const bool nearest = options.mode == SampleMode::nearest;
  // Nearest sampling is piecewise constant: its grid gradient is 0, nothing to add.
  if (nearest) grad_grid = nullptr;
  if (!grad_input && !grad_grid) return;
  const SamplerAxis axis_x(geometry.input_width, options), axis_y(geometry.input_height, options);
  const Planes planes{geometry.input_height * geometry.input_width,
                      geometry.output_height * geometry.output_width};
  const std::size_t channels = geometry.channels;
  const auto width = static_cast<std::int32_t>(geometry.input_width);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel if (sampler_worth_threads(geometry))
  {
    std::vector<NeighbourTable> storage(1);
    NeighbourTable& table = storage[0];
    std::vector<float> sum_x(kBlock), sum_y(kBlock);
#pragma omp for schedule(static)
    for (long n = 0; n < batch; ++n) {
      const float* sample_grid = grid + n * planes.output * 2;
      const float* sample_input = input + n * channels * planes.input;
      const float* sample_grad_output = grad_output + n * channels * planes.output;
      for (std::size_t start = 0; start < planes.output; start += kBlock) {
        const std::size_t count = std::min(kBlock, planes.output - start);
        if (nearest)
          fill_nearest(table, sample_grid + 2 * start, count, axis_x, axis_y, width);
        else
          fill_bilinear(table, sample_grid + 2 * start, count, axis_x, axis_y, width);
        std::fill(sum_x.begin(), sum_x.end(), 0.0f);
        std::fill(sum_y.begin(), sum_y.end(), 0.0f);
        for (std::size_t c = 0; c < channels; ++c) {
          const float* g = sample_grad_output + c * planes.output + start;
          if (grad_input)
            scatter_input_gradient(table, count, nearest ? 1 : 4, g,
                                   grad_input + (n * channels + c) * planes.input);
          if (grad_grid)
            accumulate_grid_gradient(table, count, sample_input + c * planes.input, g,
                                     sum_x.data(), sum_y.data());
        }
        if (!grad_grid) continue;
        float* out = grad_grid + (n * planes.output + start) * 2;
        for (std::size_t p = 0; p < count; ++p) {
          out[2 * p] += sum_x[p] * table.multiplier_x[p];
          out[2 * p + 1] += sum_y[p] * table.multiplier_y[p];
        }
      }
    }
  }
}

// ---- The scalar reference ------------------------------------------------------------

namespace {

struct ReferenceCoordinate {
  float pixel = 0.0f;       // after clamping (border)
  float multiplier = 0.0f;  // d pixel / d normalised
};

ReferenceCoordinate reference_coordinate(float normalised, std::size_t size,
                                         const GridSampleOptions& options) {
  const float last = static_cast<float>(size - 1);
  ReferenceCoordinate result;
  float pixel;
  if (options.align_corners) {
    result.multiplier = last / 2.0f;
    pixel = (normalised + 1.0f) * result.multiplier;
  } else {
    result.multiplier = static_cast<float>(size) / 2.0f;
    pixel = std::fma(normalised + 1.0f, result.multiplier, -0.5f);
  }
  if (options.padding == PaddingMode::border) {
    if (!(pixel > 0.0f && pixel < last)) result.multiplier = 0.0f;
    if (pixel < 0.0f) pixel = 0.0f;
    if (pixel > last) pixel = last;
  }
  result.pixel = pixel;
  return result;
}

// Reads pixel (row, column) of a plane, 0 outside. Coordinates arrive as floats and are
// only converted once known to be inside.
float reference_pixel(const float* plane, std::size_t height, std::size_t width, float row,
                      float column) {
  if (!(row >= 0.0f && row < static_cast<float>(height) && column >= 0.0f &&
        column < static_cast<float>(width)))
    return 0.0f;
  return plane[static_cast<std::size_t>(row) * width + static_cast<std::size_t>(column)];
}

void reference_add(float* plane, std::size_t height, std::size_t width, float row, float column,
                   float value) {
  if (!(row >= 0.0f && row < static_cast<float>(height) && column >= 0.0f &&
        column < static_cast<float>(width)))
    return;
  plane[static_cast<std::size_t>(row) * width + static_cast<std::size_t>(column)] += value;
}

// Calls visit(sample n, output pixel p, x coordinate, y coordinate) for every output pixel.
template <class Visit>
void for_each_sample(const SamplerGeometry& geometry, const GridSampleOptions& options,
                     const float* grid, Visit visit) {
  const std::size_t pixels = geometry.output_height * geometry.output_width;
  for (std::size_t n = 0; n < geometry.batch; ++n)
    for (std::size_t p = 0; p < pixels; ++p) {
      const float* point = grid + (n * pixels + p) * 2;
      visit(n, p, reference_coordinate(point[0], geometry.input_width, options),
            reference_coordinate(point[1], geometry.input_height, options));
    }
}

}  // namespace

void grid_sample_forward_reference(const SamplerGeometry& geometry,
                                   const GridSampleOptions& options, const float* input,
                                   const float* grid, float* output) {
  const std::size_t H = geometry.input_height, W = geometry.input_width;
  const std::size_t pixels = geometry.output_height * geometry.output_width;
  for_each_sample(geometry, options, grid, [&](std::size_t n, std::size_t p,
                                               ReferenceCoordinate x, ReferenceCoordinate y) {
    for (std::size_t c = 0; c < geometry.channels; ++c) {
      const float* plane = input + (n * geometry.channels + c) * H * W;
      float& out = output[(n * geometry.channels + c) * pixels + p];
      if (options.mode == SampleMode::nearest) {
        out = reference_pixel(plane, H, W, std::nearbyint(y.pixel), std::nearbyint(x.pixel));
        continue;
      }
      const float x0 = std::floor(x.pixel), y0 = std::floor(y.pixel);
      const float west = x.pixel - x0, north = y.pixel - y0;
      if (!std::isfinite(west) || !std::isfinite(north)) {
        out = 0.0f;
        continue;
      }
      float value = reference_pixel(plane, H, W, y0, x0) * ((1.0f - north) * (1.0f - west));
      value = std::fma(reference_pixel(plane, H, W, y0, x0 + 1.0f), (1.0f - north) * west, value);
      value = std::fma(reference_pixel(plane, H, W, y0 + 1.0f, x0), north * (1.0f - west), value);
      out = std::fma(reference_pixel(plane, H, W, y0 + 1.0f, x0 + 1.0f), north * west, value);
    }
  });
}

void grid_sample_backward_reference(const SamplerGeometry& geometry,
                                    const GridSampleOptions& options, const float* input,
                                    const float* grid, const float* grad_output,
                                    float* grad_input, float* grad_grid) {
  const std::size_t H = geometry.input_height, W = geometry.input_width;
  const std::size_t pixels = geometry.output_height * geometry.output_width;
  for_each_sample(geometry, options, grid, [&](std::size_t n, std::size_t p,
                                               ReferenceCoordinate x, ReferenceCoordinate y) {
    float sum_x = 0.0f, sum_y = 0.0f;
    for (std::size_t c = 0; c < geometry.channels; ++c) {
      const std::size_t plane_offset = (n * geometry.channels + c) * H * W;
      const float g = grad_output[(n * geometry.channels + c) * pixels + p];
      if (options.mode == SampleMode::nearest) {
        if (grad_input)
          reference_add(grad_input + plane_offset, H, W, std::nearbyint(y.pixel),
                        std::nearbyint(x.pixel), g);
        continue;
      }
      const float x0 = std::floor(x.pixel), y0 = std::floor(y.pixel);
      const float west = x.pixel - x0, north = y.pixel - y0;
      if (!std::isfinite(west) || !std::isfinite(north)) continue;
      const float east = 1.0f - west, south = 1.0f - north;
      if (grad_input) {
        float* plane = grad_input + plane_offset;
        reference_add(plane, H, W, y0, x0, south * east * g);
        reference_add(plane, H, W, y0, x0 + 1.0f, south * west * g);
        reference_add(plane, H, W, y0 + 1.0f, x0, north * east * g);
        reference_add(plane, H, W, y0 + 1.0f, x0 + 1.0f, north * west * g);
      }
      const float* plane = input + plane_offset;
      const float north_west = reference_pixel(plane, H, W, y0, x0);
      const float north_east = reference_pixel(plane, H, W, y0, x0 + 1.0f);
      const float south_west = reference_pixel(plane, H, W, y0 + 1.0f, x0);
      const float south_east = reference_pixel(plane, H, W, y0 + 1.0f, x0 + 1.0f);
      sum_x = std::fma(std::fma(south_east - south_west, north, (north_east - north_west) * south),
                       g, sum_x);
      sum_y = std::fma(std::fma(south_east - north_east, west, (south_west - north_west) * east),
                       g, sum_y);
    }
    if (grad_grid && options.mode == SampleMode::bilinear) {
      const bool finite = std::isfinite(x.pixel - std::floor(x.pixel)) &&
                          std::isfinite(y.pixel - std::floor(y.pixel));
      grad_grid[(n * pixels + p) * 2] += finite ? sum_x * x.multiplier : 0.0f;
      grad_grid[(n * pixels + p) * 2 + 1] += finite ? sum_y * y.multiplier : 0.0f;
    }
  });
}

}  // namespace stn::kernels
