#include "framework/ops/spatial_grid.h"

#include <cmath>
#include <sstream>
#include <string>

#include "framework/error.h"
#include "framework/kernels/grids.h"

namespace stn {

namespace {

// theta must be [N, per_sample...] with N >= 1, and finite: a NaN theta would silently turn
// the whole grid, and every gradient behind it, into NaN.
void check_theta(const char* op, const Tensor& theta, const Shape& per_sample,
                 const std::string& expected) {
  const Shape shape = shape_of(theta);
  bool ok = shape.size() == per_sample.size() + 1 && shape[0] >= 1;
  for (std::size_t d = 0; ok && d < per_sample.size(); ++d) ok = shape[d + 1] == per_sample[d];
  if (!ok) throw_shape_error(op, "theta " + shape_string(shape) + " must be " + expected);
  for (std::size_t i = 0; i < theta.size(); ++i) {
    const float value = theta.data()[i];
    if (!std::isfinite(value)) {
      std::ostringstream message;
      message << op << ": theta " << shape_string(shape) << " has the non-finite value " << value
              << " in sample " << i / (theta.size() / shape[0]) << " (flat index " << i << ")";
      throw std::invalid_argument(message.str());
    }
  }
}

kernels::GridGeometry make_geometry(const char* op, const Tensor& theta, std::size_t height,
                                    std::size_t width, bool align_corners) {
  if (height == 0 || width == 0)
    throw_shape_error(op, "output size " + std::to_string(height) + " x " +
                              std::to_string(width) + " must be at least 1 x 1");
  return kernels::GridGeometry{theta.shape()[0], height, width, align_corners};
}

Tensor empty_grid(const kernels::GridGeometry& geometry) {
  return empty({geometry.batch, geometry.height, geometry.width, 2});
}

// K from theta [N, K, 2], checked to be a k x k grid before the kernels see it.
std::size_t tps_count(const Tensor& theta) {
  const Shape shape = shape_of(theta);
  const std::size_t count = shape.size() == 3 ? shape[1] : 0;
  std::size_t side = 0;
  while ((side + 1) * (side + 1) <= count) ++side;
  if (shape.size() != 3 || shape[0] < 1 || shape[2] != 2 || side < 2 || side * side != count)
    throw_shape_error("tps_grid", "theta " + shape_string(shape) +
                                      " must be [N, K, 2] with K = k * k control points, k >= 2");
  return count;
}

}  // namespace

Tensor affine_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                   bool align_corners) {
  check_theta("affine_grid", theta, {2, 3}, "[N, 2, 3]");
  const auto geometry =
      make_geometry("affine_grid", theta, output_height, output_width, align_corners);
  Tensor grid = empty_grid(geometry);
  kernels::affine_grid_forward(geometry, theta.data(), grid.data());
  return grid;
}

Var affine_grid(Var theta, std::size_t output_height, std::size_t output_width,
                bool align_corners) {
  Tensor grid = affine_grid(theta.value(), output_height, output_width, align_corners);
  const auto geometry =
      make_geometry("affine_grid", theta.value(), output_height, output_width, align_corners);
  return theta.tape().record("affine_grid", {theta}, std::move(grid),
                             [geometry](const BackwardContext& ctx) {
                               if (!ctx.grad(0)) return;
                               kernels::affine_grid_backward(geometry, ctx.grad_output.data(),
                                                             ctx.grad(0)->data());
                             });
}

Tensor attention_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                      bool align_corners) {
  check_theta("attention_grid", theta, {3}, "[N, 3] (scale, shift x, shift y)");
  const auto geometry =
      make_geometry("attention_grid", theta, output_height, output_width, align_corners);
  Tensor grid = empty_grid(geometry);
  kernels::attention_grid_forward(geometry, theta.data(), grid.data());
  return grid;
}

Var attention_grid(Var theta, std::size_t output_height, std::size_t output_width,
                   bool align_corners) {
  Tensor grid = attention_grid(theta.value(), output_height, output_width, align_corners);
  const auto geometry =
      make_geometry("attention_grid", theta.value(), output_height, output_width, align_corners);
  return theta.tape().record("attention_grid", {theta}, std::move(grid),
                             [geometry](const BackwardContext& ctx) {
                               if (!ctx.grad(0)) return;
                               kernels::attention_grid_backward(
                                   geometry, ctx.grad_output.data(), ctx.grad(0)->data());
                             });
}

Tensor projective_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                       bool align_corners) {
  check_theta("projective_grid", theta, {8}, "[N, 8] (h11 ... h32; h33 = 1)");
  const auto geometry =
      make_geometry("projective_grid", theta, output_height, output_width, align_corners);
  Tensor grid = empty_grid(geometry);
  kernels::projective_grid_forward(geometry, theta.data(), grid.data());
  return grid;
}

Var projective_grid(Var theta, std::size_t output_height, std::size_t output_width,
                    bool align_corners) {
  Tensor grid = projective_grid(theta.value(), output_height, output_width, align_corners);
  const auto geometry =
      make_geometry("projective_grid", theta.value(), output_height, output_width, align_corners);
  return theta.tape().record("projective_grid", {theta}, std::move(grid),
                             [geometry](const BackwardContext& ctx) {
                               if (!ctx.grad(0)) return;
                               kernels::projective_grid_backward(
                                   geometry, ctx.input(0).data(), ctx.grad_output.data(),
                                   ctx.grad(0)->data());
                             });
}

Tensor tps_grid(const Tensor& theta, std::size_t output_height, std::size_t output_width,
                bool align_corners) {
  const std::size_t count = tps_count(theta);
  check_theta("tps_grid", theta, {count, 2}, "[N, K, 2]");
  const auto geometry =
      make_geometry("tps_grid", theta, output_height, output_width, align_corners);
  const auto matrix = kernels::tps_grid_matrix(count, geometry);
  Tensor grid = empty_grid(geometry);
  kernels::tps_grid_forward(geometry, count, matrix->data(), theta.data(), grid.data());
  return grid;
}

Var tps_grid(Var theta, std::size_t output_height, std::size_t output_width,
             bool align_corners) {
  Tensor grid = tps_grid(theta.value(), output_height, output_width, align_corners);
  const std::size_t count = tps_count(theta.value());
  const auto geometry =
      make_geometry("tps_grid", theta.value(), output_height, output_width, align_corners);
  // The matrix is shared with the cache, not copied, so it counts as no saved memory.
  auto matrix = kernels::tps_grid_matrix(count, geometry);
  return theta.tape().record(
      "tps_grid", {theta}, std::move(grid), [geometry, count, matrix](const BackwardContext& ctx) {
        if (!ctx.grad(0)) return;
        kernels::tps_grid_backward(geometry, count, matrix->data(), ctx.grad_output.data(),
                                   ctx.grad(0)->data());
      });
}

Tensor tps_control_points(std::size_t count) {
  std::vector<float> points;
  try {
    points = kernels::tps_control_points(count);
  } catch (const std::invalid_argument& error) {
    throw ShapeError(std::string("tps_control_points: ") + error.what());
  }
  Tensor result = empty({count, 2});
  std::copy(points.begin(), points.end(), result.data());
  return result;
}

}  // namespace stn
