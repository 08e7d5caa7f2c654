// The spatial transformer's grid generators (paper §3.2): theta -> sampling grid.
//
// Each maps every target pixel's normalised coordinates (x_t, y_t) in [-1, 1] to source
// coordinates (x_s, y_s) = T_theta(x_t, y_t) (target to source, so that sampling is a
// parallel gather), and returns
//
//   sampling_grid (N, H', W', 2), [..., 0] = x_s (along the width), [..., 1] = y_s,
//
// PyTorch's layout, ready for grid_sample. Target pixel coordinates follow the
// align_corners convention of the sampler (false: pixel centres at (2i + 1) / S - 1, as
// PyTorch's affine_grid; a size-1 axis sits at 0).
//
//   affine_grid      theta (N, 2, 3)  eq. 1:  (x_s, y_s) = A_theta (x_t, y_t, 1)
//   attention_grid   theta (N, 3)     eq. 2: (s, t_x, t_y), A_theta = [[s, 0, t_x], [0, s, t_y]]
//   projective_grid  theta (N, 8)     H = [[h11, h12, h13], [h21, h22, h23], [h31, h32, 1]]:
//                                     (x', y', w') = H (x_t, y_t, 1), x_s = x'/w', y_s = y'/w'
//   tps_grid         theta (N, K, 2)  the source positions of K = k x k target control points
//                                     on a regular grid over [-1, 1] (paper: K = 16):
//                                     (x_s, y_s) = a_0 + a_x x_t + a_y y_t
//                                                  + sum_k w_k U(|(x_t, y_t) - c_k|),
//                                     U(r) = r^2 log r^2, U(0) = 0.
//
// Gradients flow to theta. The TPS coefficients solve the (K+3)x(K+3) TPS system, whose
// inverse depends only on the fixed control points: it is solved once per
// (K, H', W', align_corners) and cached (thread-safe), and the grid is the linear map
// sampling_grid[n] = M (H'W', K) x theta[n] (K, 2).
//
// Higher order: each backward is recorded too (stn::grad with create_graph), as ops (a
// matmul with the constant Jacobian of the linear grids; the projective grid's quotient rule
// with mul / div / sum), so the grids are differentiable any number of times.
//
// Errors: theta of the wrong shape, a zero output size or a non-finite theta throw
// ShapeError / std::invalid_argument naming the op and the shape or value.
// The Tensor overloads compute the same grids without a tape (data augmentation, viewing).
#pragma once

#include <cstddef>

#include "stn/framework/tape.h"

namespace stn {

Var affine_grid(Var theta, std::size_t output_height, std::size_t output_width,
                bool align_corners = false);
Var attention_grid(Var theta, std::size_t output_height, std::size_t output_width,
                   bool align_corners = false);
Var projective_grid(Var theta, std::size_t output_height, std::size_t output_width,
                    bool align_corners = false);
Var tps_grid(Var theta, std::size_t output_height, std::size_t output_width,
             bool align_corners = false);

Tensor affine_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                   bool align_corners = false);
Tensor attention_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                      bool align_corners = false);
Tensor projective_grid(const Tensor& theta, std::size_t output_height,
                       std::size_t output_width, bool align_corners = false);
Tensor tps_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                bool align_corners = false);

// The K target control points c_k as (K, 2) (x, y), row-major over the k x k grid. As a
// theta of tps_grid (one per sample) they give the identity grid: the localisation
// network's regression layer starts there.
Tensor tps_control_points(std::size_t count = 16);

// The side k of a grid of K = k * k control points (k >= 2), or 0 when K is not one: the
// one test of a TPS control-point count, for the ops, the layer and the program.
std::size_t tps_grid_side(std::size_t count);

}  // namespace stn
