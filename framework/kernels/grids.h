// Grid generators on raw buffers, without a tape: the target-to-source maps T_theta of the
// spatial transformer's grid generator (paper §3.2, eq. 1). For every target pixel i with
// normalised coordinates (x_t, y_t) in [-1, 1] they write the normalised source coordinates
// (x_s, y_s) = T_theta(x_t, y_t) that the sampler reads:
//
//   theta (N, P)  ->  grid (N, H', W', 2), grid[n, i, j, 0] = x_s (width), [.., 1] = y_s
//
// Target coordinates are PyTorch's affine_grid base grid (see normalised_pixel_centres), so
// an affine grid agrees with torch.nn.functional.affine_grid bit for bit on the machine the
// golden files were made on. Backward functions add (+=) into grad_theta.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace stn::kernels {

// The output side of a grid generator: batch size, target height H' and width W', and the
// pixel convention (align_corners false: pixel centres at (2i + 1) / S - 1; true: the corner
// pixels' centres at -1 and +1).
struct GridGeometry {
  std::size_t batch = 1;
  std::size_t height = 1;
  std::size_t width = 1;
  bool align_corners = false;

  std::size_t pixels() const { return height * width; }
};

// The S normalised target coordinates along one axis: linspace(-1, 1, S), times (S - 1) / S
// when align_corners is false; a size-1 axis gives 0. The float arithmetic repeats PyTorch
// 1.13's CPU linspace (AVX2 build: fused multiply-adds in the scalar steps, 8-lane aranges
// without them), so the identity grid lands on exactly the same floats as PyTorch's; with
// align_corners false those are the pixel centres, where the sampler's floor decides which
// one-sided gradient a sample gets.
std::vector<float> normalised_pixel_centres(std::size_t size, bool align_corners);

// Affine (eq. 1): theta (N, 2, 3) = A_theta; [x_s, y_s] = A_theta [x_t, y_t, 1].
void affine_grid_forward(const GridGeometry& geometry, const float* theta, float* grid);
void affine_grid_backward(const GridGeometry& geometry, const float* grad_grid, float* grad_theta);

// Attention (eq. 2): theta (N, 3) = (s, t_x, t_y); A_theta = [[s, 0, t_x], [0, s, t_y]].
void attention_grid_forward(const GridGeometry& geometry, const float* theta, float* grid);
void attention_grid_backward(const GridGeometry& geometry, const float* grad_grid,
                             float* grad_theta);

// Projective: theta (N, 8) = (h11, h12, h13, h21, h22, h23, h31, h32), h33 = 1;
// [x', y', w'] = H [x_t, y_t, 1], x_s = x' / w', y_s = y' / w'. A target pixel with w' = 0
// maps to infinity (or NaN), which the sampler treats as outside the image; such a pixel
// receives a zero grid gradient and passes nothing on to theta.
void projective_grid_forward(const GridGeometry& geometry, const float* theta, float* grid);
void projective_grid_backward(const GridGeometry& geometry, const float* theta,
                              const float* grad_grid, float* grad_theta);

// Thin plate spline. K = k * k target control points c_k on a regular k x k grid spanning
// [-1, 1] (row-major: y outer, x inner); theta (N, K, 2) = their source positions. The
// spline through them, (x_s, y_s) = a_0 + a_x x_t + a_y y_t + sum_k w_k U(|p_t - c_k|), has
// coefficients that are a fixed linear function of theta (the inverse of the (K+3)x(K+3)
// TPS system depends on the c_k only), so grid[n] = M (H'W', K) x theta[n] (K, 2).

// U as a function of the squared distance d = r^2: d log d, and 0 at d = 0 (its limit; the
// derivative dU/dr = 2r (log r^2 + 1) also goes to 0 there).
double thin_plate_radial_basis(double squared_distance);

// The side k of K = k * k control points, or 0 when K is not a k x k grid with k >= 2.
std::size_t control_grid_side(std::size_t count);

// The K target control points as (K, 2) (x, y) pairs; K must be a square >= 4.
std::vector<float> tps_control_points(std::size_t count);

// M for (K, H', W', align_corners), row-major (H'W', K). Solved in double the first time a
// key is asked for and cached for the life of the process; safe to call from many threads.
std::shared_ptr<const std::vector<float>> tps_grid_matrix(std::size_t count,
                                                         const GridGeometry& geometry);

void tps_grid_forward(const GridGeometry& geometry, std::size_t count, const float* matrix,
                      const float* theta, float* grid);
void tps_grid_backward(const GridGeometry& geometry, std::size_t count, const float* matrix,
                       const float* grad_grid, float* grad_theta);

}  // namespace stn::kernels
