#include "framework/ops/conv.h"

#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/kernels/conv.h"
#include "framework/kernels/gemm.h"

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
  if (options.stride < 1 || options.dilation < 1 || options.padding < 0)
    throw_shape_error(op, "stride " + std::to_string(options.stride) + " and dilation " +
                              std::to_string(options.dilation) + " must be positive, padding " +
                              std::to_string(options.padding) + " non-negative");
  if (weight.dim(2) == 0 || weight.dim(3) == 0)
    throw_shape_error(op, "weight " + w + " has an empty kernel");
  ConvShape s;
  s.batch = static_cast<int>(input.dim(0));
  s.channels = static_cast<int>(input.dim(1));
  s.height = static_cast<int>(input.dim(2));
  s.width = static_cast<int>(input.dim(3));
  s.out_channels = static_cast<int>(weight.dim(0));
  s.kernel_h = static_cast<int>(weight.dim(2));
  s.kernel_w = static_cast<int>(weight.dim(3));
  s.window = Window2d{s.kernel_h,        s.kernel_w,        options.stride,   options.stride,
                      options.padding,   options.padding,   options.dilation, options.dilation};
  s.out_h = s.window.output_h(s.height);
  s.out_w = s.window.output_w(s.width);
  if (s.out_h <= 0 || s.out_w <= 0)
    throw_shape_error(op, "kernel " + std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) +
                              " (stride " + std::to_string(options.stride) + ", padding " +
                              std::to_string(options.padding) + ", dilation " +
                              std::to_string(options.dilation) + ") does not fit input " + in);
  return s;
}

// Whole images per thread: no synchronisation inside a layer, and each thread's share of the
// batch is fixed by its number (static schedule), which the deterministic reductions rely on.
// Small convolutions stay on one thread: waking a second one costs microseconds, and far
// more when the machine is busy and it has to wait for a core.
int thread_count(const ConvShape& s) {
  constexpr double kMinimumMultiplyAdds = 256.0 * 1024;
  const double multiply_adds =
      static_cast<double>(s.batch) * s.out_channels * s.rows() * s.positions();
  if (multiply_adds < kMinimumMultiplyAdds) return 1;
  return std::max(1, std::min(omp_get_max_threads(), s.batch));
}

using Buffer = std::vector<float>;

}  // namespace

Var conv2d(Var input, Var weight, Var bias, const Conv2dOptions& options) {
  const ConvShape s = check_conv2d(input, weight, bias, options);
  const int rows = s.rows(), positions = s.positions();
  Tensor output = empty({static_cast<std::size_t>(s.batch), static_cast<std::size_t>(s.out_channels),
                         static_cast<std::size_t>(s.out_h), static_cast<std::size_t>(s.out_w)});
  {
    const float* x = input.value().data();
    const float* w = weight.value().data();
    const float* b = bias.valid() ? bias.value().data() : nullptr;
    float* y = output.data();
    const int threads = thread_count(s);
    std::vector<Buffer> columns(threads, Buffer(static_cast<std::size_t>(rows) * positions));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int n = 0; n < s.batch; ++n) {
      float* image_columns = columns[omp_get_thread_num()].data();
      float* out = y + n * s.output_size();
      kernels::im2col(x + n * s.image_size(), s.channels, s.height, s.width, s.window, image_columns);
      // The bias goes in first, so the GEMM adds onto it (beta = 1) in one pass over out.
      if (b)
        for (int o = 0; o < s.out_channels; ++o)
          std::fill(out + o * positions, out + (o + 1) * positions, b[o]);
      // out[n] (O, OH * OW) = weight (O, C * KH * KW) x columns (C * KH * KW, OH * OW)
      gemm(false, false, s.out_channels, positions, rows, 1.0f, w, rows, image_columns, positions,
           b ? 1.0f : 0.0f, out, positions);
    }
  }
  std::vector<Var> inputs = {input, weight};
  if (bias.valid()) inputs.push_back(bias);
  // Nothing is saved: the backward recomputes each image's columns from the input (a copy,
  // 5-10% of the layer's time) instead of keeping C * KH * KW * OH * OW floats per image:
  // for the CNN's first layer 2.5x its output, 33 MB per batch of 256.
  return input.tape().record(
      "conv2d", inputs, std::move(output), [s](const BackwardContext& ctx) {
        const int rows = s.rows(), positions = s.positions();
        const float* x = ctx.input(0).data();
        const float* w = ctx.input(1).data();
        const float* dy = ctx.grad_output.data();
        Tensor* grad_input = ctx.grad(0);
        Tensor* grad_weight = ctx.grad(1);
        Tensor* grad_bias = ctx.grads.size() > 2 ? ctx.grad(2) : nullptr;
        const int threads = thread_count(s);
        const std::size_t column_size = static_cast<std::size_t>(rows) * positions;
        const std::size_t weight_size = static_cast<std::size_t>(s.out_channels) * rows;
        // Per thread: scratch columns, and partial weight and bias gradients.
        std::vector<Buffer> columns(threads, Buffer(grad_weight || grad_input ? column_size : 0));
        std::vector<Buffer> partial_weight(threads, Buffer(grad_weight ? weight_size : 0, 0.0f));
        std::vector<Buffer> partial_bias(threads, Buffer(grad_bias ? s.out_channels : 0, 0.0f));
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int n = 0; n < s.batch; ++n) {
          const int t = omp_get_thread_num();
          float* image_columns = columns[t].data();
          const float* dy_n = dy + n * s.output_size();  // (O, OH * OW)
          if (grad_weight) {
            kernels::im2col(x + n * s.image_size(), s.channels, s.height, s.width, s.window,
                            image_columns);
            // d weight (O, C * KH * KW) += d out[n] x columns^T
            gemm(false, true, s.out_channels, rows, positions, 1.0f, dy_n, positions,
                 image_columns, positions, 1.0f, partial_weight[t].data(), rows);
          }
          if (grad_bias) kernels::sum_rows_add(dy_n, s.out_channels, positions, partial_bias[t].data());
          if (grad_input) {
            // d columns = weight^T x d out[n], then folded back onto the image.
            gemm(true, false, rows, positions, s.out_channels, 1.0f, w, rows, dy_n, positions,
                 0.0f, image_columns, positions);
            kernels::col2im_add(image_columns, s.channels, s.height, s.width, s.window,
                                grad_input->data() + n * s.image_size());
          }
        }
        // Thread order, whatever order the threads finished in: deterministic sums.
        for (int t = 0; t < threads; ++t) {
          if (grad_weight)
            for (std::size_t i = 0; i < weight_size; ++i) grad_weight->data()[i] += partial_weight[t][i];
          if (grad_bias)
            for (int o = 0; o < s.out_channels; ++o) grad_bias->data()[o] += partial_bias[t][o];
        }
      });
}

}  // namespace stn
