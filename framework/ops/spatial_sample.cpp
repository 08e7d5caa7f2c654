#include "stn/framework/ops/spatial_sample.h"

#include <cstdint>
#include <limits>

#include "stn/framework/error.h"
#include "stn/framework/kernels/sampler_derivatives.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"

namespace stn {

namespace {

kernels::SamplerGeometry check_shapes(const Tensor& input, const Tensor& sampling_grid) {
  const Shape in = shape_of(input), grid = shape_of(sampling_grid);
  auto fail = [&](const std::string& why) {
    throw_shape_error("grid_sample", "input " + shape_string(in) + ", grid " +
                                         shape_string(grid) + ": " + why);
  };
  if (in.size() != 4) fail("input must be [N, C, H, W]");
  if (grid.size() != 4 || grid[3] != 2) fail("grid must be [N, H', W', 2]");
  if (in[0] != grid[0]) fail("the batch sizes differ");
  for (std::size_t d : in)
    if (d == 0) fail("input sizes must be positive");
  if (grid[1] == 0 || grid[2] == 0) fail("the output size must be at least 1 x 1");
  // The kernels index one input plane with int32, including one row and column past it.
  const auto int32_limit = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());
  if ((in[2] + 1) * (in[3] + 1) > int32_limit)
    fail("an input plane must have fewer than 2^31 pixels");
  return kernels::SamplerGeometry{in[0], in[1], in[2], in[3], grid[1], grid[2]};
}

// ---- The differentiable backward --------------------------------------------------------
//
// grid_sample's backward as ops (see kernels/sampler_derivatives.h for S_ab and A_ab):
//   dU = A_00(g),  dG = (sum_c g S_10(U), sum_c g S_01(U))
// and the two families of ops it uses, each with a fast backward on raw tensors (a
// first-order backward through a recorded double backward, e.g. a gradient penalty) and a
// differentiable one:
//   S_ab(U, G):  dU = A_ab(g),  dG = (sum_c g S_(a+1)b(U), sum_c g S_a(b+1)(U))
//   A_ab(R, G):  dR = S_ab(g),  dG = (sum_c R S_(a+1)b(g), sum_c R S_a(b+1)(g))
// A derivative of order 2 along one axis is 0, so the chain ends.

using kernels::DerivativeOrder;

kernels::SamplerGeometry geometry_of(const Shape& input, const Shape& grid) {
  return kernels::SamplerGeometry{input[0], input[1], input[2], input[3], grid[1], grid[2]};
}

Shape output_shape(const kernels::SamplerGeometry& g) {
  return {g.batch, g.channels, g.output_height, g.output_width};
}

std::string order_name(const char* family, DerivativeOrder order) {
  return std::string(family) + std::to_string(order.x) + std::to_string(order.y);
}

Var sample_derivative(Var input, Var grid, DerivativeOrder order, const GridSampleOptions& options);
Var scatter_derivative(Var values, Var grid, DerivativeOrder order, const GridSampleOptions& options,
                       const Shape& input_shape);

// (N, H', W', 2): (sum_c weights * S_(a+1)b(input), sum_c weights * S_a(b+1)(input)), as ops.
Var contract(Var weights, Var input, Var grid, DerivativeOrder order, const GridSampleOptions& options) {
  const Shape grid_shape = grid.shape();
  std::vector<Var> parts;
  for (DerivativeOrder next : {DerivativeOrder{order.x + 1, order.y}, DerivativeOrder{order.x, order.y + 1}}) {
    if (next.x > 1 || next.y > 1) {
      parts.push_back(grid.tape().constant(zeros({grid_shape[0], grid_shape[1], grid_shape[2], 1})));
      continue;
    }
    Var per_channel = mul(weights, sample_derivative(input, grid, next, options));
    parts.push_back(reshape(sum(per_channel, {1}), {static_cast<std::int64_t>(grid_shape[0]),
                                                   static_cast<std::int64_t>(grid_shape[1]),
                                                   static_cast<std::int64_t>(grid_shape[2]), 1}));
  }
  return concat(parts, 3);
}

// S_ab(input (N, C, H, W), grid) -> (N, C, H', W').
Var sample_derivative(Var input, Var grid, DerivativeOrder order, const GridSampleOptions& options) {
  const kernels::SamplerGeometry geometry = geometry_of(input.shape(), grid.shape());
  Tensor output = zeros(output_shape(geometry));
  kernels::sampler_derivative(geometry, options, order, input.value().data(), grid.value().data(),
                              output.data());
  const Shape input_shape = input.shape();
  return input.tape().record(
      order_name("grid_sample_d", order), {input, grid}, std::move(output),
      [geometry, options, order](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        const float* grid = ctx.input(1).data();
        if (Tensor* grad_input = ctx.grad(0))
          kernels::sampler_derivative_adjoint(geometry, options, order, g, grid, grad_input->data());
        if (Tensor* grad_grid = ctx.grad(1))
          kernels::sampler_derivative_contract(geometry, options, order, ctx.input(0).data(), g, grid,
                                               grad_grid->data());
      },
      [options, order, input_shape](const VjpContext& ctx) {
        const Var& g = ctx.grad_output;
        return std::vector<Var>{
            ctx.needed(0) ? scatter_derivative(g, ctx.input(1), order, options, input_shape) : Var{},
            ctx.needed(1) ? contract(g, ctx.input(0), ctx.input(1), order, options) : Var{}};
      });
}

// A_ab(values (N, C, H', W'), grid) -> (N, C, H, W) with H, W from input_shape.
Var scatter_derivative(Var values, Var grid, DerivativeOrder order, const GridSampleOptions& options,
                       const Shape& input_shape) {
  const Shape value_shape = values.shape();
  const Shape shape{value_shape[0], value_shape[1], input_shape[2], input_shape[3]};
  const kernels::SamplerGeometry geometry = geometry_of(shape, grid.shape());
  Tensor output = zeros(shape);
  kernels::sampler_derivative_adjoint(geometry, options, order, values.value().data(),
                                      grid.value().data(), output.data());
  return values.tape().record(
      order_name("grid_sample_adjoint_d", order), {values, grid}, std::move(output),
      [geometry, options, order](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        const float* grid = ctx.input(1).data();
        if (Tensor* grad_values = ctx.grad(0))
          kernels::sampler_derivative(geometry, options, order, g, grid, grad_values->data());
        if (Tensor* grad_grid = ctx.grad(1))
          kernels::sampler_derivative_contract(geometry, options, order, g, ctx.input(0).data(), grid,
                                               grad_grid->data());
      },
      [options, order](const VjpContext& ctx) {
        const Var& g = ctx.grad_output;
        return std::vector<Var>{
            ctx.needed(0) ? sample_derivative(g, ctx.input(1), order, options) : Var{},
            ctx.needed(1) ? contract(ctx.input(0), g, ctx.input(1), order, options) : Var{}};
      });
}

// Nearest mode: the input's gradient is a scatter of g to the pixel each sample read, whose
// own backward is nearest sampling again. The grid gets no gradient (piecewise constant).
Var nearest_scatter(Var values, Var grid, const GridSampleOptions& options, const Shape& input_shape) {
  const Shape value_shape = values.shape();
  const Shape shape{value_shape[0], value_shape[1], input_shape[2], input_shape[3]};
  const kernels::SamplerGeometry geometry = geometry_of(shape, grid.shape());
  Tensor output = zeros(shape);
  // Nearest mode without a grid gradient never reads the input: `output` stands in for it.
  kernels::grid_sample_backward(geometry, options, output.data(), grid.value().data(),
                                values.value().data(), output.data(), nullptr);
  return values.tape().record(
      "grid_sample_nearest_adjoint", {values, grid}, std::move(output),
      [geometry, options](const BackwardContext& ctx) {
        if (!ctx.grad(0)) return;
        Tensor sampled = empty(shape_of(*ctx.grad(0)));
        kernels::grid_sample_forward(geometry, options, ctx.grad_output.data(), ctx.input(1).data(),
                                     sampled.data());
        *ctx.grad(0) += sampled;
      },
      [options](const VjpContext& ctx) {
        return std::vector<Var>{ctx.needed(0) ? grid_sample(ctx.grad_output, ctx.input(1), options) : Var{},
                                Var{}};
      });
}

std::vector<Var> grid_sample_vjp(const VjpContext& ctx, const GridSampleOptions& options) {
  const Var& g = ctx.grad_output;
  const Var &input = ctx.input(0), &grid = ctx.input(1);
  if (options.mode == SampleMode::nearest)
    return {ctx.needed(0) ? nearest_scatter(g, grid, options, input.shape()) : Var{}, Var{}};
  return {ctx.needed(0) ? scatter_derivative(g, grid, {0, 0}, options, input.shape()) : Var{},
          ctx.needed(1) ? contract(g, input, grid, {0, 0}, options) : Var{}};
}

}  // namespace

Tensor grid_sample(const Tensor& input, const Tensor& sampling_grid,
                   const GridSampleOptions& options) {
  const kernels::SamplerGeometry geometry = check_shapes(input, sampling_grid);
  Tensor output = empty({geometry.batch, geometry.channels, geometry.output_height,
                         geometry.output_width});
  kernels::grid_sample_forward(geometry, options, input.data(), sampling_grid.data(),
                               output.data());
  return output;
}

Var grid_sample(Var input, Var sampling_grid, const GridSampleOptions& options) {
  Tensor output = grid_sample(input.value(), sampling_grid.value(), options);
  const kernels::SamplerGeometry geometry = check_shapes(input.value(), sampling_grid.value());
  // Nothing is saved: the backward recomputes the neighbour tables from the grid, which is
  // cheaper than keeping 14 floats per output pixel alive until backward.
  return input.tape().record(
      "grid_sample", {input, sampling_grid}, std::move(output),
      [geometry, options](const BackwardContext& ctx) {
        kernels::grid_sample_backward(geometry, options, ctx.input(0).data(),
                                      ctx.input(1).data(), ctx.grad_output.data(),
                                      ctx.grad(0) ? ctx.grad(0)->data() : nullptr,
                                      ctx.grad(1) ? ctx.grad(1)->data() : nullptr);
      },
      [options](const VjpContext& ctx) { return grid_sample_vjp(ctx, options); });
}

}  // namespace stn
