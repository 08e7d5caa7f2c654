#include "stn/framework/ops/shape.h"

#include <algorithm>
#include <cstring>

#include "stn/framework/error.h"

namespace stn {

namespace {

// A view of a shape as (outer, axis, inner) around one axis, for concat and slice.
struct AxisSplit {
  std::size_t outer = 1, length = 1, inner = 1;
};
AxisSplit split_at(const Shape& shape, int axis) {
  AxisSplit s;
  for (int d = 0; d < axis; ++d) s.outer *= shape[d];
  s.length = shape[axis];
  for (std::size_t d = axis + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

}  // namespace

Var reshape(Var x, const std::vector<std::int64_t>& shape) {
  const std::size_t total = x.numel();
  Shape out_shape;
  int inferred = -1;
  std::size_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) throw_shape_error("reshape", "more than one -1 in the target shape");
      inferred = static_cast<int>(i);
      out_shape.push_back(1);
    } else if (shape[i] < 0) {
      throw_shape_error("reshape", "negative size " + std::to_string(shape[i]));
    } else {
      out_shape.push_back(static_cast<std::size_t>(shape[i]));
      known *= static_cast<std::size_t>(shape[i]);
    }
  }
  if (inferred >= 0) {
    if (known == 0 || total % known != 0)
      throw_shape_error("reshape", "cannot infer -1 to reshape " + shape_string(x.value()) +
                                       " (" + std::to_string(total) + " elements)");
    out_shape[inferred] = total / known;
  }
  if (numel(out_shape) != total)
    throw_shape_error("reshape", "cannot reshape " + shape_string(x.value()) + " into " +
                                     shape_string(out_shape));
  Tensor out = empty(out_shape);
  std::copy(x.value().data(), x.value().data() + total, out.data());
  const Shape in_shape = x.shape();
  return x.tape().record(
      "reshape", {x}, std::move(out),
      [](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        float* gx = ctx.grad(0)->data();
        for (std::size_t i = 0; i < ctx.grad_output.size(); ++i) gx[i] += g[i];
      },
      [in_shape](const VjpContext& ctx) {
        return std::vector<Var>{reshape(ctx.grad_output, std::vector<std::int64_t>(in_shape.begin(), in_shape.end()))};
      });
}

Var flatten(Var x, int start_axis) {
  const Shape shape = x.shape();
  int start = normalise_axis("flatten", start_axis, shape);
  std::vector<std::int64_t> target;
  for (int d = 0; d < start; ++d) target.push_back(static_cast<std::int64_t>(shape[d]));
  target.push_back(-1);
  if (numel(shape) == 0) throw_shape_error("flatten", "empty input " + shape_string(shape));
  return reshape(x, target);
}

Var permute(Var x, const std::vector<int>& order) {
  const Shape shape = x.shape();
  const std::size_t rank = shape.size();
  if (order.size() != rank)
    throw_shape_error("permute", "order has " + std::to_string(order.size()) +
                                     " axes for input " + shape_string(shape));
  std::vector<int> axes(rank);
  std::vector<bool> used(rank, false);
  for (std::size_t i = 0; i < rank; ++i) {
    axes[i] = normalise_axis("permute", order[i], shape);
    if (used[axes[i]]) throw_shape_error("permute", "axis " + std::to_string(order[i]) + " repeated");
    used[axes[i]] = true;
  }
  Shape out_shape(rank);
  std::vector<std::size_t> in_strides(rank, 1);
  for (std::size_t d = rank; d-- > 1;) in_strides[d - 1] = in_strides[d] * shape[d];
  // Stride in the input for each output axis.
  std::vector<std::size_t> gather_strides(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    out_shape[i] = shape[axes[i]];
    gather_strides[i] = in_strides[axes[i]];
  }
  // Visits output elements in order; calls visit(out_index, in_index).
  auto walk = [out_shape, gather_strides](auto&& visit) {
    const std::size_t n = numel(out_shape);
    std::vector<std::size_t> index(out_shape.size(), 0);
    std::size_t source = 0;
    for (std::size_t o = 0; o < n; ++o) {
      visit(o, source);
      for (std::size_t d = out_shape.size(); d-- > 0;) {
        source += gather_strides[d];
        if (++index[d] < out_shape[d]) break;
        source -= gather_strides[d] * out_shape[d];
        index[d] = 0;
      }
    }
  };
  Tensor out = empty(out_shape);
  const float* px = x.value().data();
  float* po = out.data();
  walk([&](std::size_t o, std::size_t i) { po[o] = px[i]; });
  std::vector<int> inverse(rank);
  for (std::size_t i = 0; i < rank; ++i) inverse[axes[i]] = static_cast<int>(i);
  return x.tape().record(
      "permute", {x}, std::move(out),
      [walk](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        float* gx = ctx.grad(0)->data();
        walk([&](std::size_t o, std::size_t i) { gx[i] += g[o]; });
      },
      [inverse](const VjpContext& ctx) { return std::vector<Var>{permute(ctx.grad_output, inverse)}; });
}

Var transpose(Var x, int axis0, int axis1) {
  const Shape shape = x.shape();
  std::vector<int> order(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) order[i] = static_cast<int>(i);
  std::swap(order[normalise_axis("transpose", axis0, shape)],
            order[normalise_axis("transpose", axis1, shape)]);
  return permute(x, order);
}

Var concat(const std::vector<Var>& xs, int axis) {
  if (xs.empty()) throw_shape_error("concat", "no inputs");
  const Shape first = xs[0].shape();
  const int a = normalise_axis("concat", axis, first);
  Shape out_shape = first;
  out_shape[a] = 0;
  std::vector<std::size_t> lengths;
  for (const Var& x : xs) {
    Shape s = x.shape();
    bool compatible = s.size() == first.size();
    for (std::size_t d = 0; compatible && d < s.size(); ++d)
      if (static_cast<int>(d) != a && s[d] != first[d]) compatible = false;
    if (!compatible)
      throw_shape_error("concat", "input " + shape_string(s) + " does not match " +
                                      shape_string(first) + " outside axis " + std::to_string(axis));
    out_shape[a] += s[a];
    lengths.push_back(s[a]);
  }
  const AxisSplit split = split_at(out_shape, a);
  Tensor out = empty(out_shape);
  std::size_t offset = 0;  // along the axis
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const float* px = xs[k].value().data();
    const std::size_t block = lengths[k] * split.inner;
    for (std::size_t o = 0; o < split.outer; ++o)
      std::memcpy(out.data() + (o * split.length + offset) * split.inner, px + o * block,
                  block * sizeof(float));
    offset += lengths[k];
  }
  return xs[0].tape().record("concat", xs, std::move(out), [split, lengths](const BackwardContext& ctx) {
    const float* g = ctx.grad_output.data();
    std::size_t offset = 0;
    for (std::size_t k = 0; k < lengths.size(); ++k) {
      const std::size_t block = lengths[k] * split.inner;
      if (float* gx = ctx.grad(k) ? ctx.grad(k)->data() : nullptr)
        for (std::size_t o = 0; o < split.outer; ++o) {
          const float* source = g + (o * split.length + offset) * split.inner;
          for (std::size_t i = 0; i < block; ++i) gx[o * block + i] += source[i];
        }
      offset += lengths[k];
    }
  }, [a, lengths](const VjpContext& ctx) {
    std::vector<Var> grads(lengths.size());
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < lengths.size(); ++k) {
      const auto length = static_cast<std::int64_t>(lengths[k]);
      if (ctx.needed(k)) grads[k] = slice(ctx.grad_output, a, offset, offset + length);
      offset += length;
    }
    return grads;
  });
}

Var slice(Var x, int axis, std::int64_t start, std::int64_t end) {
  const Shape shape = x.shape();
  const int a = normalise_axis("slice", axis, shape);
  const auto length = static_cast<std::int64_t>(shape[a]);
  if (start < 0) start += length;
  if (end < 0) end += length;
  end = std::min(end, length);
  if (start < 0 || start >= end)
    throw_shape_error("slice", "empty or invalid range [" + std::to_string(start) + ", " +
                                   std::to_string(end) + ") on axis " + std::to_string(axis) +
                                   " of " + shape_string(shape));
  Shape out_shape = shape;
  out_shape[a] = static_cast<std::size_t>(end - start);
  const AxisSplit in = split_at(shape, a);
  const std::size_t block = out_shape[a] * in.inner;
  const std::size_t begin = static_cast<std::size_t>(start) * in.inner;
  Tensor out = empty(out_shape);
  for (std::size_t o = 0; o < in.outer; ++o)
    std::memcpy(out.data() + o * block, x.value().data() + o * in.length * in.inner + begin,
                block * sizeof(float));
  return x.tape().record(
      "slice", {x}, std::move(out),
      [in, block, begin](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        float* gx = ctx.grad(0)->data();
        for (std::size_t o = 0; o < in.outer; ++o)
          for (std::size_t i = 0; i < block; ++i) gx[o * in.length * in.inner + begin + i] += g[o * block + i];
      },
      [a, shape, start, end](const VjpContext& ctx) {  // g between zeros: concat's backward is slice
        Tape& tape = ctx.grad_output.tape();
        std::vector<Var> parts;
        Shape pad = shape;
        if (start > 0) {
          pad[a] = static_cast<std::size_t>(start);
          parts.push_back(tape.constant(zeros(pad)));
        }
        parts.push_back(ctx.grad_output);
        if (static_cast<std::size_t>(end) < shape[a]) {
          pad[a] = shape[a] - static_cast<std::size_t>(end);
          parts.push_back(tape.constant(zeros(pad)));
        }
        return std::vector<Var>{parts.size() == 1 ? parts[0] : concat(parts, a)};
      });
}

}  // namespace stn
