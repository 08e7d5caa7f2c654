#include "framework/ops/reduce.h"

#include <algorithm>

#include "framework/error.h"
#include "framework/kernels/broadcast.h"

namespace stn {

namespace {

// Which axes are reduced (all when `axes` is empty), validating the axes.
std::vector<bool> reduced_axes(const char* op, const Shape& shape, const std::vector<int>& axes) {
  std::vector<bool> reduced(shape.size(), axes.empty());
  for (int axis : axes) {
    int a = axis < 0 ? axis + static_cast<int>(shape.size()) : axis;
    if (a < 0 || a >= static_cast<int>(shape.size()))
      throw_shape_error(op, "axis " + std::to_string(axis) + " out of range for shape " +
                                shape_string(shape));
    if (reduced[a]) throw_shape_error(op, "axis " + std::to_string(axis) + " given twice");
    reduced[a] = true;
  }
  return reduced;
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

  return x.tape().record(op, {x}, std::move(out),
                         [in_shape, in_strides, out_strides, scale](const BackwardContext& ctx) {
                           const float* g = ctx.grad_output.data();
                           float* gx = ctx.grad(0)->data();
                           kernels::for_each_broadcast(
                               in_shape, in_strides, out_strides,
                               [&](std::size_t i, std::size_t, std::size_t o) { gx[i] += g[o] * scale; });
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

}  // namespace stn
