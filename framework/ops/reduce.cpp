#include "stn/framework/ops/reduce.h"

#include <algorithm>

#include "stn/framework/error.h"
#include "stn/framework/kernels/broadcast.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/shape.h"

namespace stn {

namespace {

// Which axes are reduced (all when `axes` is empty), validating the axes.
std::vector<bool> reduced_axes(const char* op, const Shape& shape, const std::vector<int>& axes) {
  std::vector<bool> reduced(shape.size(), axes.empty());
  for (int axis : axes) {
    const int a = normalise_axis(op, axis, shape);
    if (reduced[a]) throw_shape_error(op, "axis " + std::to_string(axis) + " given twice");
    reduced[a] = true;
  }
  return reduced;
}

// A reshape that returns x itself when the shape already matches.
Var reshape_to(Var x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return reshape(x, std::vector<std::int64_t>(shape.begin(), shape.end()));
}

Var reduce_sum(const char* op, Var x, const std::vector<int>& axes, bool keepdim, float scale) {
  const Shape in_shape = x.shape();
  const std::vector<bool> reduced = reduced_axes(op, in_shape, axes);
  Shape kept = in_shape, out_shape;
  for (std::size_t d = 0; d < in_shape.size(); ++d) {
    if (reduced[d]) kept[d] = 1;
    if (!reduced[d] || keepdim) out_shape.push_back(kept[d]);
  }
  // Walk the input; each element lands in the kept-shape slot with stride 0 on reduced axes.
  auto out_strides = kernels::broadcast_strides(kept, in_shape);
  auto in_strides = kernels::broadcast_strides(in_shape, in_shape);
  std::vector<double> accumulator(numel(kept), 0.0);
  const float* px = x.value().data();
  kernels::for_each_broadcast(in_shape, in_strides, out_strides,
                              [&](std::size_t i, std::size_t, std::size_t o) { accumulator[o] += px[i]; });
  Tensor out = empty(out_shape);
  for (std::size_t o = 0; o < accumulator.size(); ++o)
    out.data()[o] = static_cast<float>(accumulator[o] * scale);

  return x.tape().record(
      op, {x}, std::move(out),
      [in_shape, in_strides, out_strides, scale](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        float* gx = ctx.grad(0)->data();
        kernels::for_each_broadcast(
            in_shape, in_strides, out_strides,
            [&](std::size_t i, std::size_t, std::size_t o) { gx[i] += g[o] * scale; });
      },
      [in_shape, kept, scale](const VjpContext& ctx) {
        Var g = broadcast_to(reshape_to(ctx.grad_output, kept), in_shape);
        return std::vector<Var>{scale == 1.0f ? g : mul(g, scale)};
      });
}

}  // namespace

Var sum(Var x, const std::vector<int>& axes, bool keepdim) {
  return reduce_sum("sum", x, axes, keepdim, 1.0f);
}

Var mean(Var x, const std::vector<int>& axes, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("mean", shape, axes);
  std::size_t count = 1;
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) count *= shape[d];
  if (count == 0) throw_shape_error("mean", "reducing over an empty axis of " + shape_string(shape));
  return reduce_sum("mean", x, axes, keepdim, 1.0f / static_cast<float>(count));
}

Var broadcast_to(Var x, const Shape& shape) {
  const Shape in_shape = x.shape();
  if (in_shape == shape) return x;
  if (broadcast_shape("broadcast_to", in_shape, shape) != shape)
    throw_shape_error("broadcast_to", "cannot broadcast " + shape_string(in_shape) + " to " +
                                          shape_string(shape));
  auto in_strides = kernels::broadcast_strides(in_shape, shape);
  auto out_strides = kernels::broadcast_strides(shape, shape);
  Tensor out = empty(shape);
  const float* px = x.value().data();
  float* po = out.data();
  kernels::for_each_broadcast(shape, out_strides, in_strides,
                              [&](std::size_t o, std::size_t, std::size_t i) { po[o] = px[i]; });
  return x.tape().record(
      "broadcast_to", {x}, std::move(out),
      [shape, in_strides, out_strides](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        float* gx = ctx.grad(0)->data();
        kernels::for_each_broadcast(shape, out_strides, in_strides,
                                    [&](std::size_t o, std::size_t, std::size_t i) { gx[i] += g[o]; });
      },
      [in_shape](const VjpContext& ctx) { return std::vector<Var>{sum_to(ctx.grad_output, in_shape)}; });
}

Var sum_to(Var x, const Shape& shape) {
  const Shape in_shape = x.shape();
  if (in_shape == shape) return x;
  if (broadcast_shape("sum_to", shape, in_shape) != in_shape)
    throw_shape_error("sum_to", "cannot sum " + shape_string(in_shape) + " down to " +
                                    shape_string(shape));
  // Sum the axes that broadcasting added or stretched, then drop the added ones.
  const std::size_t extra = in_shape.size() - shape.size();
  std::vector<int> axes;
  for (std::size_t d = 0; d < in_shape.size(); ++d)
    if (d < extra || shape[d - extra] != in_shape[d]) axes.push_back(static_cast<int>(d));
  return reshape_to(sum(x, axes, true), shape);
}

}  // namespace stn
