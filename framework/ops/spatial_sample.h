// The spatial transformer's sampler (paper §3.3) as a differentiable op.
//
//   grid_sample(input U (N, C, H, W), sampling_grid (N, H', W', 2), options)
//     -> V (N, C, H', W')
//
// sampling_grid holds normalised source coordinates (x_s, y_s) in [-1, 1] per output pixel,
// x along the width (PyTorch's layout; the grid generators in spatial_grid.h make them).
// H', W' are independent of H, W. Bilinear mode is the paper's eq. 5,
//
//   V_i^c = sum_n sum_m U_nm^c max(0, 1 - |x_i - m|) max(0, 1 - |y_i - n|),
//
// with (x_i, y_i) the sample in pixel units (align_corners false: x = ((x_s + 1) W - 1) / 2;
// true: x = (x_s + 1)(W - 1) / 2). Its backward gives the sub-gradients of eq. 6 (to U, a
// scatter-add) and eq. 7 (to the grid, hence to theta); they are exact at integer
// coordinates too (the right-sided difference), outside the image (zeros padding: a sample
// partly outside still passes a grid gradient; border: the clamp's gradient is 0 outside),
// and NaN / Inf coordinates never reach an integer conversion (see kernels/sampler.h).
// Results match PyTorch 1.13's torch.nn.functional.grid_sample to float rounding.
//
// Higher order: the backward is recorded too (stn::grad with create_graph), as ops with
// their own backward kernels (kernels/sampler_derivatives.h), so grid_sample is
// differentiable any number of times with respect to both U and the grid, cross terms
// included (d2V/dx2 = 0 inside a cell, d2V/dxdy is not); the fast first-order kernels are
// unchanged.
//
// Nearest mode is for viewing: no gradient to the grid; U gets its (one-pixel) gradient,
// whose recorded form is a nearest scatter (its own backward: nearest sampling again).
// When U needs no gradient (a transformer on the input image) its gradient is never
// computed, and one U can feed several grids (parallel transformers) without a copy.
//
// Errors: input not 4-D, grid not [N, H', W', 2], batch sizes that differ, zero sizes,
// or planes of about 2^31 pixels or more throw ShapeError naming grid_sample and the shapes.
#pragma once

#include "stn/framework/kernels/sampler_options.h"
#include "stn/framework/tape.h"

namespace stn {

using kernels::GridSampleOptions;
using kernels::PaddingMode;
using kernels::SampleMode;

Var grid_sample(Var input, Var sampling_grid, const GridSampleOptions& options = {});

// The same without a tape (data augmentation, viewing).
Tensor grid_sample(const Tensor& input, const Tensor& sampling_grid,
                   const GridSampleOptions& options = {});

}  // namespace stn
