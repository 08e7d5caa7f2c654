// The bilinear sampler's derivatives with respect to the sampling point, on raw buffers:
// the kernels that make grid_sample differentiable any number of times.
//
// Per output pixel i of sample n: pixel coordinates (ix, iy) by the sampler's formula
// (border padding: clamped to [0, size - 1]), fx = ix - floor(ix), fy = iy - floor(iy), and
// the four corners k = (dx, dy) in {0, 1}^2 at (floor(ix) + dx, floor(iy) + dy) with the
// bilinear weight w_k = wx(dx) wy(dy), wx(0) = 1 - fx, wx(1) = fx (wy likewise). For
// derivative orders a, b in {0, 1}, the coefficient of corner k is
//
//   c_ab,k(i) = (d^a wx / dfx^a)(dx) (d^b wy / dfy^b)(dy) mx^a my^b,
//
// mx = d ix / d x_s: W / 2 (align_corners false) or (W - 1) / 2 (true), and 0 where the
// border clamp is active (on or beyond the edge, as the fast sampler and PyTorch), and
//
//   S_ab(U)[n, c, i]            = sum_k c_ab,k(i) U[n, c, corner_k(i)]
//   A_ab(R)[n, c, corner_k(i)] += c_ab,k(i) R[n, c, i]           (the adjoint: a scatter)
//
// Since w is linear in fx and in fy separately, d S_ab / d x_s = S_(a+1)b, d S_ab / d y_s =
// S_a(b+1), and a derivative of order 2 in one axis is 0. S_00 is the sampler (eq. 5) and
// A_00 its input gradient (eq. 6).
//
//   U, A's output   (N, C, H, W)       input-shaped
//   R, S's output   (N, C, H', W')     output-shaped
//   grid            (N, H', W', 2)     normalised (x_s, y_s)
//
// Conventions are exactly those of the fast sampler (sampler.h): corners outside the image
// contribute 0 (zeros padding); on an integer coordinate the corners are x and x + 1 (the
// right-sided difference); NaN, Inf and huge coordinates are outside, decided before any
// float-to-int conversion. Plain scalar loops; OpenMP over samples, each thread owning whole
// samples, so the scatter needs no atomics. Every function adds (+=) into its output.
#pragma once

#include "stn/framework/kernels/sampler.h"

namespace stn::kernels {

// (a, b): the order of the derivative along x_s and along y_s, each 0 or 1.
struct DerivativeOrder {
  int x = 0;
  int y = 0;
};

// output (N, C, H', W') += S_ab(input (N, C, H, W)).
void sampler_derivative(const SamplerGeometry& geometry, const GridSampleOptions& options,
                        DerivativeOrder order, const float* input, const float* grid,
                        float* output);

// output (N, C, H, W) += A_ab(values (N, C, H', W')).
void sampler_derivative_adjoint(const SamplerGeometry& geometry, const GridSampleOptions& options,
                                DerivativeOrder order, const float* values, const float* grid,
                                float* output);

// grad_grid (N, H', W', 2) += (sum_c weights * S_(a+1)b(input), sum_c weights * S_a(b+1)(input)),
// weights (N, C, H', W'), input (N, C, H, W); a term of order 2 adds nothing. With order
// (0, 0) this is the sampler's grid gradient (eq. 7) for the upstream gradient `weights`.
void sampler_derivative_contract(const SamplerGeometry& geometry, const GridSampleOptions& options,
                                 DerivativeOrder order, const float* input, const float* weights,
                                 const float* grid, float* grad_grid);

}  // namespace stn::kernels
