#include "framework/ops/spatial_sample.h"

#include <cstdint>
#include <limits>

#include "framework/error.h"

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
      });
}

}  // namespace stn
