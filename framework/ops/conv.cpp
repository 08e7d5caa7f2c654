#include "stn/framework/ops/conv.h"

#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/kernels/buffers.h"
#include "stn/framework/kernels/conv.h"
#include "stn/framework/kernels/gemm.h"
#include "stn/framework/ops/reduce.h"

namespace stn {

namespace {

using kernels::gemm;
using kernels::Window2d;

// The sizes of one conv2d call, checked.
struct ConvShape {
  int batch, channels, height, width;     // input
  int out_channels, kernel_h, kernel_w;   // weight
  int out_h, out_w;
  Window2d window;
  int rows() const { return channels * kernel_h * kernel_w; }  // of the column matrix
  int positions() const { return out_h * out_w; }
  std::size_t image_size() const { return static_cast<std::size_t>(channels) * height * width; }
  std::size_t output_size() const { return static_cast<std::size_t>(out_channels) * positions(); }
};

// The sizes of a convolution of an input [batch, channels, height, width] (`input_text` in
// messages) by a kernel [out_channels, channels, kernel_h, kernel_w], checked.
ConvShape shape_of_conv(const char* op, std::size_t batch, std::size_t channels, std::size_t height,
                        std::size_t width, std::size_t out_channels, std::size_t kernel_h,
                        std::size_t kernel_w, const Conv2dOptions& options,
                        const std::string& input_text) {
  if (options.stride < 1 || options.dilation < 1 || options.padding < 0)
    throw_shape_error(op, "stride " + std::to_string(options.stride) + " and dilation " +
                              std::to_string(options.dilation) + " must be positive, padding " +
                              std::to_string(options.padding) + " non-negative");
  if (kernel_h == 0 || kernel_w == 0)
    throw_shape_error(op, "empty kernel " + std::to_string(kernel_h) + "x" + std::to_string(kernel_w));
  ConvShape s;
  s.batch = static_cast<int>(batch);
  s.channels = static_cast<int>(channels);
  s.height = static_cast<int>(height);
  s.width = static_cast<int>(width);
  s.out_channels = static_cast<int>(out_channels);
  s.kernel_h = static_cast<int>(kernel_h);
  s.kernel_w = static_cast<int>(kernel_w);
  s.window = Window2d{s.kernel_h,        s.kernel_w,        options.stride,   options.stride,
                      options.padding,   options.padding,   options.dilation, options.dilation};
  s.out_h = s.window.output_h(s.height);
  s.out_w = s.window.output_w(s.width);
  if (s.out_h <= 0 || s.out_w <= 0)
    throw_shape_error(op, "kernel " + std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) +
                              " (stride " + std::to_string(options.stride) + ", padding " +
                              std::to_string(options.padding) + ", dilation " +
                              std::to_string(options.dilation) + ") does not fit input " + input_text);
  return s;
}

ConvShape check_conv2d(const Var& input, const Var& weight, const Var& bias,
                       const Conv2dOptions& options) {
  const char* op = "conv2d";
  const std::string in = shape_string(input.value()), w = shape_string(weight.value());
  if (input.ndim() != 4) throw_shape_error(op, "input must be [N, C, H, W], got " + in);
  if (weight.ndim() != 4) throw_shape_error(op, "weight must be [O, C, KH, KW], got " + w);
  if (input.dim(1) != weight.dim(1))
    throw_shape_error(op, "input " + in + " has " + std::to_string(input.dim(1)) +
                              " channels but weight " + w + " expects " +
                              std::to_string(weight.dim(1)));
  if (bias.valid() && (bias.ndim() != 1 || bias.dim(0) != weight.dim(0)))
    throw_shape_error(op, "bias " + shape_string(bias.value()) + " does not match weight " + w +
                              " (expected [" + std::to_string(weight.dim(0)) + "])");
  if (weight.dim(2) == 0 || weight.dim(3) == 0)
    throw_shape_error(op, "weight " + w + " has an empty kernel");
  return shape_of_conv(op, input.dim(0), input.dim(1), input.dim(2), input.dim(3), weight.dim(0),
                       weight.dim(2), weight.dim(3), options, in);
}

// Whole images per thread: no synchronisation inside a layer, and each thread's share of the
// batch is fixed by its number (contiguous ranges), which the deterministic reductions rely on.
// Small convolutions stay on one thread: below 256 Ki multiply-adds.
int thread_count(const ConvShape& s) {
  const double multiply_adds =
      static_cast<double>(s.batch) * s.out_channels * s.rows() * s.positions();
  if (!kernels::worth_threads(multiply_adds, 256.0 * 1024)) return 1;
  return std::max(1, std::min(omp_get_max_threads(), s.batch));
}

// Images per GEMM. A group of G images fills side by side blocks of one column matrix
// (C * KH * KW, G * OH * OW), so one GEMM covers the group: the CNN's second layer has only 16
// positions per image, a poor shape for the micro-kernel, and its weight gradient
// (O x C * KH * KW, 400 KB) would otherwise be read and written once per image. The column
// matrix is kept to about L2's size.
int group_size(const ConvShape& s, int images_per_thread) {
  constexpr std::size_t kColumnBytes = 768 * 1024;
  const std::size_t per_image = sizeof(float) * static_cast<std::size_t>(s.rows()) * s.positions();
  const auto fits = static_cast<int>(std::min<std::size_t>(kColumnBytes / per_image, 1 << 16));
  return std::clamp(fits, 1, std::max(1, images_per_thread));
}

// Thread t's images: [begin, end).
struct Share {
  int begin, end;
};
Share share_of(int batch, int threads, int t) {
  return {static_cast<int>(static_cast<long>(batch) * t / threads),
          static_cast<int>(static_cast<long>(batch) * (t + 1) / threads)};
}

// Scratch memory that lives as long as its thread (OpenMP keeps its workers between
// regions), so convolutions allocate nothing in the steady state. Slots: 0 column matrix,
// 1 output or output-gradient block, 2 the calling thread's per-worker partial sums.
float* scratch(int slot, std::size_t count) {
  thread_local kernels::AlignedBuffer buffers[3];
  return kernels::scratch(buffers[slot], count);
}

// y (N, O, OH, OW) = conv(x, w) + b (b may be null); y is overwritten.
void forward_kernel(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  const int rows = s.rows(), positions = s.positions();
  const int threads = thread_count(s);
#pragma omp parallel num_threads(threads)
  {
    const int team = omp_get_num_threads();
    const Share share = share_of(s.batch, team, omp_get_thread_num());
    const int group = group_size(s, share.end - share.begin);
    float* columns = scratch(0, static_cast<std::size_t>(rows) * positions * group);
    float* block = group > 1 ? scratch(1, s.output_size() * group) : nullptr;
    for (int n0 = share.begin; n0 < share.end; n0 += group) {
      const int images = std::min(group, share.end - n0);
      const int width = images * positions;  // columns of this group's matrices
      for (int i = 0; i < images; ++i)
        kernels::im2col(x + (n0 + i) * s.image_size(), s.channels, s.height, s.width, s.window,
                        columns + i * positions, width);
      float* out = y + n0 * s.output_size();
      if (images == 1) {
        // The bias goes in first, so the GEMM adds onto it (beta = 1) in one pass over out.
        if (b)
          for (int o = 0; o < s.out_channels; ++o)
            std::fill(out + o * positions, out + (o + 1) * positions, b[o]);
        // out[n] (O, OH * OW) = weight (O, C * KH * KW) x columns (C * KH * KW, OH * OW)
        gemm(false, false, s.out_channels, positions, rows, 1.0f, w, rows, columns, positions,
             b ? 1.0f : 0.0f, out, positions);
        continue;
      }
      // block (O, images * OH * OW) = weight x columns, then each image's part to out.
      gemm(false, false, s.out_channels, width, rows, 1.0f, w, rows, columns, width, 0.0f, block, width);
      for (int i = 0; i < images; ++i)
        for (int o = 0; o < s.out_channels; ++o) {
          const float* from = block + static_cast<std::ptrdiff_t>(o) * width + i * positions;
          float* to = out + i * s.output_size() + o * positions;
          const float add = b ? b[o] : 0.0f;
          for (int p = 0; p < positions; ++p) to[p] = from[p] + add;
        }
    }
  }
}

// d out of images [n0, n0 + images) as one (O, images * OH * OW) matrix: dy itself for one
// image, else gathered into block.
const float* gather_output_gradient(const ConvShape& s, const float* dy, int n0, int images, float* block) {
  const float* dy_group = dy + n0 * s.output_size();
  if (images == 1) return dy_group;
  const int positions = s.positions(), width = images * positions;
  for (int i = 0; i < images; ++i)
    for (int o = 0; o < s.out_channels; ++o) {
      // A plain loop: rows are short (16 floats in the CNN's second layer), too
      // short for a memmove call to pay.
      const float* from = dy_group + i * s.output_size() + o * positions;
      float* to = block + static_cast<std::ptrdiff_t>(o) * width + i * positions;
      for (int p = 0; p < positions; ++p) to[p] = from[p];
    }
  return block;
}

// Where one thread's backward writes: thread 0 straight into the gradients, every other
// thread into its own partial sums (weight, then bias), added in thread order after the
// parallel region by add_partial_sums: deterministic for a given thread count.
struct GradientSums {
  float* grad_input;
  float* weight_sum;
  float* bias_sum;
  bool first;  // a partial weight sum starts at its first GEMM (beta = 0)
};

// The backward of images [n0, n0 + images) from their d out (dy_group, O x width), into sums.
void backward_group(const ConvShape& s, const float* x, const float* w, const float* dy_group, int n0,
                    int images, float* columns, GradientSums& sums) {
  const int rows = s.rows(), positions = s.positions(), width = images * positions;
  if (sums.weight_sum) {
    for (int i = 0; i < images; ++i)
      kernels::im2col(x + (n0 + i) * s.image_size(), s.channels, s.height, s.width, s.window,
                      columns + i * positions, width);
    // d weight (O, C * KH * KW) += d out x columns^T
    gemm(false, true, s.out_channels, rows, width, 1.0f, dy_group, width, columns, width,
         sums.first ? 0.0f : 1.0f, sums.weight_sum, rows);
  }
  sums.first = false;
  if (sums.bias_sum) kernels::sum_rows_add(dy_group, s.out_channels, width, sums.bias_sum);
  if (sums.grad_input) {
    // d columns = weight^T x d out, then folded back onto each image.
    gemm(true, false, rows, width, s.out_channels, 1.0f, w, rows, dy_group, width, 0.0f, columns, width);
    for (int i = 0; i < images; ++i)
      kernels::col2im_add(columns + i * positions, s.channels, s.height, s.width, s.window,
                          sums.grad_input + (n0 + i) * s.image_size(), width);
  }
}

// The partial sums of threads 1 .. team_size - 1, in thread order, onto the gradients.
void add_partial_sums(const float* partials, std::size_t partial_size, std::size_t weight_size, int out_channels,
                      int team_size, float* grad_weight, float* grad_bias) {
  for (int t = 1; t < team_size; ++t) {
    const float* partial = partials + partial_size * (t - 1);
    if (grad_weight)
      for (std::size_t i = 0; i < weight_size; ++i) grad_weight[i] += partial[i];
    if (grad_bias)
      for (int o = 0; o < out_channels; ++o) grad_bias[o] += partial[weight_size + o];
  }
}

// Adds the gradients whose pointers are not null, from dy (N, O, OH, OW):
//   grad_weight (O, C, KH, KW) += dy x columns(x)^T,  grad_bias (O) += sum of dy,
//   grad_input (N, C, H, W) += col2im(w^T x dy).
// x is read only for the weight gradient, w only for the input gradient.
void backward_kernel(const ConvShape& s, const float* x, const float* w, const float* dy,
                     float* grad_input, float* grad_weight, float* grad_bias) {
  const int rows = s.rows(), positions = s.positions();
  const int threads = thread_count(s);
  const std::size_t weight_size = static_cast<std::size_t>(s.out_channels) * rows;
  const std::size_t partial_size = weight_size + s.out_channels;
  float* partials = threads > 1 ? scratch(2, partial_size * (threads - 1)) : nullptr;
  int team_size = 1;
#pragma omp parallel num_threads(threads)
  {
    const int team = omp_get_num_threads(), t = omp_get_thread_num();
    if (t == 0) team_size = team;
    const Share share = share_of(s.batch, team, t);
    const int group = group_size(s, share.end - share.begin);
    float* columns = scratch(0, static_cast<std::size_t>(rows) * positions * group);
    float* block = group > 1 ? scratch(1, s.output_size() * group) : nullptr;
    GradientSums sums{grad_input, grad_weight, grad_bias, t > 0};
    if (t > 0) {
      sums.weight_sum = grad_weight ? partials + partial_size * (t - 1) : nullptr;
      sums.bias_sum = grad_bias ? partials + partial_size * (t - 1) + weight_size : nullptr;
      if (sums.bias_sum) std::fill(sums.bias_sum, sums.bias_sum + s.out_channels, 0.0f);
    }
    for (int n0 = share.begin; n0 < share.end; n0 += group) {
      const int images = std::min(group, share.end - n0);
      backward_group(s, x, w, gather_output_gradient(s, dy, n0, images, block), n0, images, columns, sums);
    }
    // A thread without images leaves its partial weight unwritten: zero it.
    if (t > 0 && sums.first && sums.weight_sum) std::fill(sums.weight_sum, sums.weight_sum + weight_size, 0.0f);
  }
  add_partial_sums(partials, partial_size, weight_size, s.out_channels, team_size, grad_weight, grad_bias);
}

Tensor tensor_of(std::size_t a, std::size_t b, std::size_t c, std::size_t d) { return zeros({a, b, c, d}); }

void add_into(float* to, const Tensor& from) {
  for (std::size_t i = 0; i < from.size(); ++i) to[i] += from.data()[i];
}

Tensor forward_value(const ConvShape& s, const float* x, const float* w, const float* b) {
  Tensor y = empty({static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.out_channels),
                    static_cast<std::size_t>(s.out_h), static_cast<std::size_t>(s.out_w)});
  forward_kernel(s, x, w, b, y.data());
  return y;
}

// The checks conv2d_input_grad and conv2d_weight_grad share: both operands 4-D (`expected`
// names their layouts), the convolution's sizes (`sizes`, read once the ranks are known), and
// grad_output of that convolution's output shape.
template <class Sizes>
ConvShape check_gradient_op(const char* op, const Var& first, const Var& second, const char* expected,
                            const Var& grad_output, Sizes sizes) {
  if (first.ndim() != 4 || second.ndim() != 4)
    throw_shape_error(op, std::string("expected ") + expected + ", got " + shape_string(first.value()) + " and " +
                              shape_string(second.value()));
  const ConvShape s = sizes();
  const Shape output = {static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.out_channels),
                        static_cast<std::size_t>(s.out_h), static_cast<std::size_t>(s.out_w)};
  if (grad_output.shape() != output)
    throw_shape_error(op, "output gradient " + shape_string(grad_output.value()) + " does not match the convolution's output " +
                              shape_string(output));
  return s;
}

}  // namespace

int conv2d_output_size(int input, int kernel, const Conv2dOptions& options) {
  return Window2d::output_size(input, kernel, options.stride, options.padding, options.dilation);
}

Var conv2d(Var input, Var weight, Var bias, const Conv2dOptions& options) {
  const ConvShape s = check_conv2d(input, weight, bias, options);
  Tensor output = forward_value(s, input.value().data(), weight.value().data(),
                                bias.valid() ? bias.value().data() : nullptr);
  std::vector<Var> inputs = {input, weight};
  if (bias.valid()) inputs.push_back(bias);
  // Nothing is saved: the backward recomputes each image's columns from the input (a copy,
  // 5-10% of the layer's time) instead of keeping C * KH * KW * OH * OW floats per image:
  // for the CNN's first layer 2.5x its output, 33 MB per batch of 256.
  return input.tape().record(
      "conv2d", inputs, std::move(output),
      [s](const BackwardContext& ctx) {
        auto data = [&](std::size_t k) { return k < ctx.grads.size() && ctx.grad(k) ? ctx.grad(k)->data() : nullptr; };
        backward_kernel(s, ctx.input(0).data(), ctx.input(1).data(), ctx.grad_output.data(), data(0),
                        data(1), data(2));
      },
      [s, options](const VjpContext& ctx) {
        const Var& g = ctx.grad_output;
        std::vector<Var> grads(ctx.inputs.size());
        if (ctx.needed(0)) grads[0] = conv2d_input_grad(g, ctx.input(1), s.height, s.width, options);
        if (ctx.needed(1)) grads[1] = conv2d_weight_grad(ctx.input(0), g, s.kernel_h, s.kernel_w, options);
        if (grads.size() > 2 && ctx.needed(2)) grads[2] = sum(g, {0, 2, 3});
        return grads;
      });
}

Var conv2d_input_grad(Var grad_output, Var weight, std::size_t height, std::size_t width,
                      const Conv2dOptions& options) {
  const char* op = "conv2d_input_grad";
  const ConvShape s = check_gradient_op(op, grad_output, weight, "grad_output [N, O, OH, OW] and weight [O, C, KH, KW]",
                                        grad_output, [&] {
                                          return shape_of_conv(op, grad_output.dim(0), weight.dim(1), height, width,
                                                               weight.dim(0), weight.dim(2), weight.dim(3), options,
                                                               std::to_string(height) + "x" + std::to_string(width));
                                        });
  Tensor value = tensor_of(s.batch, s.channels, height, width);
  backward_kernel(s, nullptr, weight.value().data(), grad_output.value().data(), value.data(), nullptr, nullptr);
  // Linear in both inputs: d/d grad_output is conv2d with the same weight, d/d weight is the
  // weight gradient of the incoming gradient (as an input) against grad_output.
  return grad_output.tape().record(
      op, {grad_output, weight}, std::move(value),
      [s](const BackwardContext& ctx) {
        const float* r = ctx.grad_output.data();
        if (Tensor* dg = ctx.grad(0)) add_into(dg->data(), forward_value(s, r, ctx.input(1).data(), nullptr));
        if (Tensor* dw = ctx.grad(1)) backward_kernel(s, r, nullptr, ctx.input(0).data(), nullptr, dw->data(), nullptr);
      },
      [s, options](const VjpContext& ctx) {
        const Var& r = ctx.grad_output;
        return std::vector<Var>{
            ctx.needed(0) ? conv2d(r, ctx.input(1), Var{}, options) : Var{},
            ctx.needed(1) ? conv2d_weight_grad(r, ctx.input(0), s.kernel_h, s.kernel_w, options) : Var{}};
      });
}

Var conv2d_weight_grad(Var input, Var grad_output, std::size_t kernel_h, std::size_t kernel_w,
                       const Conv2dOptions& options) {
  const char* op = "conv2d_weight_grad";
  const ConvShape s = check_gradient_op(op, input, grad_output, "input [N, C, H, W] and grad_output [N, O, OH, OW]",
                                        grad_output, [&] {
                                          return shape_of_conv(op, input.dim(0), input.dim(1), input.dim(2), input.dim(3),
                                                               grad_output.dim(1), kernel_h, kernel_w, options,
                                                               shape_string(input.value()));
                                        });
  Tensor value = tensor_of(s.out_channels, s.channels, kernel_h, kernel_w);
  backward_kernel(s, input.value().data(), nullptr, grad_output.value().data(), nullptr, value.data(), nullptr);
  return input.tape().record(
      op, {input, grad_output}, std::move(value),
      [s](const BackwardContext& ctx) {
        const float* r = ctx.grad_output.data();  // weight-shaped
        if (Tensor* dx = ctx.grad(0)) backward_kernel(s, nullptr, r, ctx.input(1).data(), dx->data(), nullptr, nullptr);
        if (Tensor* dg = ctx.grad(1)) add_into(dg->data(), forward_value(s, ctx.input(0).data(), r, nullptr));
      },
      [s, options](const VjpContext& ctx) {
        const Var& r = ctx.grad_output;
        return std::vector<Var>{
            ctx.needed(0) ? conv2d_input_grad(ctx.input(1), r, s.height, s.width, options) : Var{},
            ctx.needed(1) ? conv2d(ctx.input(0), r, Var{}, options) : Var{}};
      });
}

}  // namespace stn
