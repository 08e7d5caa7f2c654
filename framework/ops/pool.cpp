#include "stn/framework/ops/pool.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/kernels/buffers.h"
#include "stn/framework/kernels/conv.h"

namespace stn {

namespace {

using kernels::Window2d;

struct PoolShape {
  int batch, channels, height, width, out_h, out_w;
  Window2d window;
  int planes() const { return batch * channels; }
  Shape output_shape() const {
    return {static_cast<std::size_t>(batch), static_cast<std::size_t>(channels),
            static_cast<std::size_t>(out_h), static_cast<std::size_t>(out_w)};
  }
};

PoolShape check_pool2d(const char* op, const Var& input, const Pool2dOptions& options) {
  const std::string in = shape_string(input.value());
  if (input.ndim() != 4) throw_shape_error(op, "input must be [N, C, H, W], got " + in);
  const int stride = options.stride == -1 ? options.kernel : options.stride;
  if (options.kernel < 1 || stride < 1)
    throw_shape_error(op, "kernel " + std::to_string(options.kernel) + " and stride " +
                              std::to_string(options.stride) +
                              " must be positive (stride -1: the kernel size)");
  // As PyTorch: more padding would allow windows made only of padding.
  if (options.padding < 0 || 2 * options.padding > options.kernel)
    throw_shape_error(op, "padding " + std::to_string(options.padding) +
                              " must be between 0 and half the kernel " +
                              std::to_string(options.kernel));
  PoolShape s;
  s.batch = static_cast<int>(input.dim(0));
  s.channels = static_cast<int>(input.dim(1));
  s.height = static_cast<int>(input.dim(2));
  s.width = static_cast<int>(input.dim(3));
  s.window = Window2d{options.kernel,  options.kernel,  stride, stride,
                      options.padding, options.padding, 1,      1};
  s.out_h = s.window.output_h(s.height);
  s.out_w = s.window.output_w(s.width);
  if (s.out_h <= 0 || s.out_w <= 0)
    throw_shape_error(op, "kernel " + std::to_string(options.kernel) + " (stride " +
                              std::to_string(stride) + ", padding " +
                              std::to_string(options.padding) + ") does not fit input " + in);
  return s;
}

using kernels::plane_size;

// Pooling is a single pass over memory: threads from 64 Ki input elements on.
bool worth_threads(const PoolShape& s) {
  return kernels::worth_threads(static_cast<double>(s.planes()) * s.height * s.width, 64.0 * 1024);
}

using Indices = std::shared_ptr<const std::vector<std::int32_t>>;

Var pool_scatter(Var grad_output, const PoolShape& s, const Indices& argmax);

// y[p, o] = x[p, argmax[p, o]]: max pooling with the choice fixed, linear in x; its backward
// is the scatter below, and the scatter's is this gather.
Var pool_gather(Var input, const PoolShape& s, const Indices& argmax) {
  Tensor output = empty(s.output_shape());
  const std::size_t in_plane = plane_size(s.height, s.width), out_plane = plane_size(s.out_h, s.out_w);
  const float* x = input.value().data();
  for (int p = 0; p < s.planes(); ++p)
    for (std::size_t o = 0; o < out_plane; ++o)
      output.data()[p * out_plane + o] = x[p * in_plane + (*argmax)[p * out_plane + o]];
  return input.tape().record(
      "max_pool2d_gather", {input}, std::move(output),
      [s, argmax, in_plane, out_plane](const BackwardContext& ctx) {
        for (int p = 0; p < s.planes(); ++p)
          kernels::max_pool2d_backward_add(ctx.grad_output.data() + p * out_plane, argmax->data() + p * out_plane, 1,
                                           s.height, s.width, s.window, ctx.grad(0)->data() + p * in_plane);
      },
      [s, argmax](const VjpContext& ctx) { return std::vector<Var>{pool_scatter(ctx.grad_output, s, argmax)}; });
}

// dx[p, argmax[p, o]] += dy[p, o]: max pooling's backward as an op.
Var pool_scatter(Var grad_output, const PoolShape& s, const Indices& argmax) {
  Tensor dx = zeros({static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.channels),
                     static_cast<std::size_t>(s.height), static_cast<std::size_t>(s.width)});
  const std::size_t in_plane = plane_size(s.height, s.width), out_plane = plane_size(s.out_h, s.out_w);
  for (int p = 0; p < s.planes(); ++p)
    kernels::max_pool2d_backward_add(grad_output.value().data() + p * out_plane, argmax->data() + p * out_plane, 1,
                                     s.height, s.width, s.window, dx.data() + p * in_plane);
  return grad_output.tape().record(
      "max_pool2d_scatter", {grad_output}, std::move(dx),
      [s, argmax, in_plane, out_plane](const BackwardContext& ctx) {
        const float* r = ctx.grad_output.data();
        float* dg = ctx.grad(0)->data();
        for (int p = 0; p < s.planes(); ++p)
          for (std::size_t o = 0; o < out_plane; ++o)
            dg[p * out_plane + o] += r[p * in_plane + (*argmax)[p * out_plane + o]];
      },
      [s, argmax](const VjpContext& ctx) { return std::vector<Var>{pool_gather(ctx.grad_output, s, argmax)}; });
}

// Average pooling's backward as an op (linear in dy); its own backward is avg_pool2d.
Var avg_pool2d_backward(Var grad_output, const PoolShape& s, const Pool2dOptions& options) {
  Tensor dx = zeros({static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.channels),
                     static_cast<std::size_t>(s.height), static_cast<std::size_t>(s.width)});
  const std::size_t in_plane = plane_size(s.height, s.width), out_plane = plane_size(s.out_h, s.out_w);
  for (int p = 0; p < s.planes(); ++p)
    kernels::avg_pool2d_backward_add(grad_output.value().data() + p * out_plane, 1, s.height, s.width, s.window,
                                     dx.data() + p * in_plane);
  return grad_output.tape().record(
      "avg_pool2d_backward", {grad_output}, std::move(dx),
      [s, in_plane, out_plane](const BackwardContext& ctx) {
        Tensor pooled = empty(s.output_shape());
        for (int p = 0; p < s.planes(); ++p)
          kernels::avg_pool2d_forward(ctx.grad_output.data() + p * in_plane, 1, s.height, s.width, s.window,
                                      pooled.data() + p * out_plane);
        float* dg = ctx.grad(0)->data();
        for (std::size_t i = 0; i < pooled.size(); ++i) dg[i] += pooled.data()[i];
      },
      [options](const VjpContext& ctx) { return std::vector<Var>{avg_pool2d(ctx.grad_output, options)}; });
}

}  // namespace

int pool2d_output_size(int input, const Pool2dOptions& options) {
  const int stride = options.stride == -1 ? options.kernel : options.stride;
  return Window2d::output_size(input, options.kernel, stride, options.padding, 1);
}

Var max_pool2d(Var input, const Pool2dOptions& options) {
  const PoolShape s = check_pool2d("max_pool2d", input, options);
  Tensor output = empty(s.output_shape());
  // Shared, so copies of the backward function do not copy the indices.
  auto argmax = std::make_shared<std::vector<std::int32_t>>(output.size());
  const bool parallel = worth_threads(s);
  const float* x = input.value().data();
  const std::size_t in_plane = plane_size(s.height, s.width), out_plane = plane_size(s.out_h, s.out_w);
#pragma omp parallel for schedule(static) if (parallel)
  for (int p = 0; p < s.planes(); ++p)
    kernels::max_pool2d_forward(x + p * in_plane, 1, s.height, s.width, s.window,
                                output.data() + p * out_plane, argmax->data() + p * out_plane);
  const std::size_t saved = argmax->size() * sizeof(std::int32_t);
  return input.tape().record(
      "max_pool2d", {input}, std::move(output),
      [s, argmax, in_plane, out_plane, parallel](const BackwardContext& ctx) {
        const float* dy = ctx.grad_output.data();
        float* dx = ctx.grad(0)->data();
        // Each plane's gradient only receives from that plane's outputs: no races.
#pragma omp parallel for schedule(static) if (parallel)
        for (int p = 0; p < s.planes(); ++p)
          kernels::max_pool2d_backward_add(dy + p * out_plane, argmax->data() + p * out_plane, 1,
                                           s.height, s.width, s.window, dx + p * in_plane);
      },
      [s, argmax](const VjpContext& ctx) {
        return std::vector<Var>{pool_scatter(ctx.grad_output, s, argmax)};
      },
      saved);
}

Var avg_pool2d(Var input, const Pool2dOptions& options) {
  const PoolShape s = check_pool2d("avg_pool2d", input, options);
  Tensor output = empty(s.output_shape());
  const bool parallel = worth_threads(s);
  const float* x = input.value().data();
  const std::size_t in_plane = plane_size(s.height, s.width), out_plane = plane_size(s.out_h, s.out_w);
#pragma omp parallel for schedule(static) if (parallel)
  for (int p = 0; p < s.planes(); ++p)
    kernels::avg_pool2d_forward(x + p * in_plane, 1, s.height, s.width, s.window,
                                output.data() + p * out_plane);
  return input.tape().record(
      "avg_pool2d", {input}, std::move(output),
      [s, in_plane, out_plane, parallel](const BackwardContext& ctx) {
        const float* dy = ctx.grad_output.data();
        float* dx = ctx.grad(0)->data();
#pragma omp parallel for schedule(static) if (parallel)
        for (int p = 0; p < s.planes(); ++p)
          kernels::avg_pool2d_backward_add(dy + p * out_plane, 1, s.height, s.width, s.window,
                                           dx + p * in_plane);
      },
      [s, options](const VjpContext& ctx) {
        return std::vector<Var>{avg_pool2d_backward(ctx.grad_output, s, options)};
      });
}

}  // namespace stn
