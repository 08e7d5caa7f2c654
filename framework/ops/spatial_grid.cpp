#include "stn/framework/ops/spatial_grid.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

#include "stn/framework/error.h"
#include "stn/framework/kernels/grids.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/linalg.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"

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
  if (shape.size() != 3 || shape[0] < 1 || shape[2] != 2 || tps_grid_side(count) == 0)
    throw_shape_error("tps_grid", "theta " + shape_string(shape) +
                                      " must be [N, K, 2] with K = k * k control points, k >= 2");
  return count;
}

// ---- Differentiable backwards ----------------------------------------------------------
//
// The affine, attention and TPS grids are linear in theta: grid (N, 2H'W') = theta
// (N, P) x J^T, with J (2H'W', P) the constant Jacobian (row p * 2 + r: grid[p, r]). Their
// backward is the matmul g (N, 2H'W') x J, recorded as ops, so it is differentiable again
// (and its own backward is the grid once more, as the matmul's backward). The projective
// grid is a linear numerator over a linear denominator; its backward is built from the same
// Jacobians with mul / div / sum. J is only built when a backward is recorded, so the fast
// first-order path is unchanged.

// The target coordinates (x_t, y_t) of pixel p = i * W' + j.
struct TargetPixels {
  std::vector<float> xs, ys;
  std::size_t width;

  explicit TargetPixels(const kernels::GridGeometry& geometry)
      : xs(kernels::normalised_pixel_centres(geometry.width, geometry.align_corners)),
        ys(kernels::normalised_pixel_centres(geometry.height, geometry.align_corners)),
        width(geometry.width) {}
  float x(std::size_t p) const { return xs[p % width]; }
  float y(std::size_t p) const { return ys[p / width]; }
};

// J of (x_s, y_s) = A (x_t, y_t, 1) with A the first six entries of a theta of `columns`
// parameters (affine: 6; projective's numerators: 8).
Tensor affine_jacobian(const kernels::GridGeometry& geometry, std::size_t columns) {
  const TargetPixels target(geometry);
  Tensor jacobian = zeros({2 * geometry.pixels(), columns});
  for (std::size_t p = 0; p < geometry.pixels(); ++p)
    for (std::size_t r = 0; r < 2; ++r) {
      float* row = jacobian.data() + (2 * p + r) * columns + 3 * r;
      row[0] = target.x(p);
      row[1] = target.y(p);
      row[2] = 1.0f;
    }
  return jacobian;
}

Tensor attention_jacobian(const kernels::GridGeometry& geometry) {
  const TargetPixels target(geometry);
  Tensor jacobian = zeros({2 * geometry.pixels(), 3});
  for (std::size_t p = 0; p < geometry.pixels(); ++p) {
    float* row = jacobian.data() + 2 * p * 3;  // x_s = s x_t + t_x, y_s = s y_t + t_y
    row[0] = target.x(p);
    row[1] = 1.0f;
    row[3] = target.y(p);
    row[5] = 1.0f;
  }
  return jacobian;
}

// grid[n, p, r] = sum_k M[p, k] theta[n, k, r].
Tensor tps_jacobian(const kernels::GridGeometry& geometry, std::size_t count, const float* matrix) {
  Tensor jacobian = zeros({2 * geometry.pixels(), 2 * count});
  for (std::size_t p = 0; p < geometry.pixels(); ++p)
    for (std::size_t r = 0; r < 2; ++r)
      for (std::size_t k = 0; k < count; ++k)
        jacobian.data()[(2 * p + r) * 2 * count + 2 * k + r] = matrix[p * count + k];
  return jacobian;
}

// The projective denominator w' - 1 = h31 x_t + h32 y_t, as (8, H'W') (`transposed`: (H'W', 8)).
Tensor projective_denominator(const kernels::GridGeometry& geometry, bool transposed) {
  const TargetPixels target(geometry);
  const std::size_t pixels = geometry.pixels();
  Tensor basis = zeros(transposed ? Shape{pixels, 8} : Shape{8, pixels});
  for (std::size_t p = 0; p < pixels; ++p) {
    basis.data()[transposed ? p * 8 + 6 : 6 * pixels + p] = target.x(p);
    basis.data()[transposed ? p * 8 + 7 : 7 * pixels + p] = target.y(p);
  }
  return basis;
}

Tensor transposed(const Tensor& matrix) {
  const std::size_t rows = matrix.shape()[0], columns = matrix.shape()[1];
  Tensor result = empty({columns, rows});
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < columns; ++c) result.data()[c * rows + r] = matrix.data()[r * columns + c];
  return result;
}

std::vector<std::int64_t> signed_shape(const Shape& shape) {
  return std::vector<std::int64_t>(shape.begin(), shape.end());
}

// g (N, H', W', 2) x J (2H'W', P), reshaped to theta's shape.
Var linear_grid_adjoint(Var grad_grid, const Tensor& jacobian, const Shape& theta_shape) {
  Var flat = reshape(grad_grid, {static_cast<std::int64_t>(theta_shape[0]), -1});
  return reshape(matmul(flat, grad_grid.tape().constant(jacobian)), signed_shape(theta_shape));
}

// The VjpFn of a linear grid whose Jacobian `make_jacobian()` builds.
template <class MakeJacobian>
VjpFn linear_grid_vjp(MakeJacobian make_jacobian) {
  return [make_jacobian](const VjpContext& ctx) {
    return std::vector<Var>{linear_grid_adjoint(ctx.grad_output, make_jacobian(), ctx.input(0).shape())};
  };
}

// Where w' = 0 (or the quotient overflowed) the grid point is at infinity: the sampler gave
// it no gradient, and the backward must pass nothing on rather than 0 * inf = NaN. Returns
// the indicator (N, H', W', 1) of such pixels, or nothing when there are none.
std::optional<Tensor> pixels_at_infinity(const Tensor& denominator, const Tensor& grid) {
  Tensor at_infinity = zeros(shape_of(denominator));
  bool any = false;
  for (std::size_t p = 0; p < denominator.size(); ++p) {
    const bool bad = !(denominator.data()[p] != 0.0f) || !std::isfinite(grid.data()[2 * p]) ||
                     !std::isfinite(grid.data()[2 * p + 1]);
    at_infinity.data()[p] = bad ? 1.0f : 0.0f;
    any |= bad;
  }
  if (!any) return std::nullopt;
  return at_infinity;
}

// x_s = x' / w', y_s = y' / w': dtheta = J_num^T (g / w') - J_den^T (sum_r g_r grid_r / w').
std::vector<Var> projective_grid_vjp(const VjpContext& ctx, const kernels::GridGeometry& geometry) {
  Tape& tape = ctx.grad_output.tape();
  const Var& theta = ctx.input(0);
  const auto n = static_cast<std::int64_t>(geometry.batch);
  const auto h = static_cast<std::int64_t>(geometry.height), w = static_cast<std::int64_t>(geometry.width);
  const Tensor numerator_jacobian = affine_jacobian(geometry, 8);
  Var denominator = reshape(add(matmul(theta, tape.constant(projective_denominator(geometry, false))), 1.0f),
                            {n, h, w, 1});
  Var g = ctx.grad_output, grid = ctx.output;
  if (auto at_infinity = pixels_at_infinity(denominator.value(), grid.value())) {
    denominator = add(denominator, tape.constant(*at_infinity));
    Tensor finite = 1.0f - *at_infinity;
    g = mul(g, tape.constant(std::move(finite)));
    grid = div(reshape(matmul(theta, tape.constant(transposed(numerator_jacobian))), {n, h, w, 2}),
               denominator);
  }
  Var along_numerators = div(g, denominator);
  Var along_denominator = neg(div(sum(mul(g, grid), {3}, true), denominator));
  Var from_numerators = linear_grid_adjoint(along_numerators, numerator_jacobian, theta.shape());
  Var from_denominator = matmul(reshape(along_denominator, {n, -1}),
                                tape.constant(projective_denominator(geometry, true)));
  return {add(from_numerators, from_denominator)};
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

// The grid ops have one input, theta, and the tape runs a backward only when an input needs a
// gradient: ctx.grad(0) is never null in their backwards.
Var affine_grid(Var theta, std::size_t output_height, std::size_t output_width,
                bool align_corners) {
  Tensor grid = affine_grid(theta.value(), output_height, output_width, align_corners);
  const auto geometry =
      make_geometry("affine_grid", theta.value(), output_height, output_width, align_corners);
  return theta.tape().record("affine_grid", {theta}, std::move(grid),
                             [geometry](const BackwardContext& ctx) {
                               kernels::affine_grid_backward(geometry, ctx.grad_output.data(),
                                                             ctx.grad(0)->data());
                             },
                             linear_grid_vjp([geometry] { return affine_jacobian(geometry, 6); }));
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
                               kernels::attention_grid_backward(
                                   geometry, ctx.grad_output.data(), ctx.grad(0)->data());
                             },
                             linear_grid_vjp([geometry] { return attention_jacobian(geometry); }));
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
                               kernels::projective_grid_backward(
                                   geometry, ctx.input(0).data(), ctx.grad_output.data(),
                                   ctx.grad(0)->data());
                             },
                             [geometry](const VjpContext& ctx) { return projective_grid_vjp(ctx, geometry); });
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
        kernels::tps_grid_backward(geometry, count, matrix->data(), ctx.grad_output.data(),
                                   ctx.grad(0)->data());
      },
      linear_grid_vjp([geometry, count, matrix] { return tps_jacobian(geometry, count, matrix->data()); }));
}

std::size_t tps_grid_side(std::size_t count) { return kernels::control_grid_side(count); }

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
