// The spatial transformer's sampler on raw buffers (paper §3.3), without a tape.
//
//   input (N, C, H, W), grid (N, H', W', 2)  ->  output (N, C, H', W')
//
// grid[n, i, j] = (x_s, y_s) in normalised coordinates (x along the width), converted to
// pixel units as x = ((x_s + 1) W - 1) / 2 (align_corners false) or x = (x_s + 1)(W - 1) / 2
// (true). Bilinear sampling is the paper's eq. 5,
//   V_i^c = sum_n sum_m U_nm^c max(0, 1 - |x_i - m|) max(0, 1 - |y_i - n|),
// evaluated on the four pixels floor(x), floor(x) + 1 (and likewise in y) with PyTorch
// 1.13's CPU arithmetic, and its sub-gradients are eq. 6 and 7. On an integer coordinate
// the neighbours are x and x + 1, so the grid gradient there is the right-sided difference
// U[x + 1] - U[x], never 0.
//
// Padding: zeros (pixels outside read as 0; a sample partly outside still gets a gradient
// from the pixels inside) or border (coordinates clamped to [0, size - 1]; the clamp's
// derivative is 1 strictly inside and 0 on and beyond the edge, as in PyTorch).
// Non-finite coordinates: a NaN coordinate samples 0 and gets gradient 0 in every padding
// mode; +-Inf and huge values are outside (zeros) or clamped (border). Every coordinate is
// range-checked before it is converted to an integer.
// Nearest mode rounds half to even; its grid gradient is 0 and the input gets the gradient
// of the pixel each sample read.
#pragma once

#include <cstddef>

#include "stn/framework/kernels/sampler_options.h"

namespace stn::kernels {

struct SamplerGeometry {
  std::size_t batch = 1;
  std::size_t channels = 1;
  std::size_t input_height = 1, input_width = 1;
  std::size_t output_height = 1, output_width = 1;
};

// The fast path: per output pixel, the four neighbour indices and weights are computed once
// and reused for every channel; OpenMP over the batch, each thread owning whole samples, so
// the input-gradient scatter-add needs no atomics. Input planes are indexed with int32:
// (H + 1) * (W + 1) must be below 2^31.
void grid_sample_forward(const SamplerGeometry& geometry, const GridSampleOptions& options,
                         const float* input, const float* grid, float* output);

// Adds into grad_input (N, C, H, W) and grad_grid (N, H', W', 2); either may be nullptr,
// and the work that only it needs is then skipped.
void grid_sample_backward(const SamplerGeometry& geometry, const GridSampleOptions& options,
                          const float* input, const float* grid, const float* grad_output,
                          float* grad_input, float* grad_grid);

// The plain scalar reference: one output element at a time, straight from the formulas,
// single-threaded. Tests compare the fast path with it.
void grid_sample_forward_reference(const SamplerGeometry& geometry,
                                   const GridSampleOptions& options, const float* input,
                                   const float* grid, float* output);
void grid_sample_backward_reference(const SamplerGeometry& geometry,
                                    const GridSampleOptions& options, const float* input,
                                    const float* grid, const float* grad_output,
                                    float* grad_input, float* grad_grid);

}  // namespace stn::kernels
