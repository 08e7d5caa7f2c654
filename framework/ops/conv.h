// 2-D convolution (cross-correlation, as in PyTorch's Conv2d), NCHW.
//
//   input  [N, C, H, W]
//   weight [O, C, KH, KW]
//   bias   [O], or an invalid Var{} for none
//   output [N, O, OH, OW],  OH = (H + 2 * padding - dilation * (KH - 1) - 1) / stride + 1
//                           (likewise OW)
//
// Each image is lowered with im2col to columns [C * KH * KW, OH * OW], so the forward is one
// GEMM per image, out[n] = weight[O, C * KH * KW] x columns + bias, and the backward is
//   d weight += d out[n] x columns^T,   d bias += sum over positions of d out[n],
//   d input[n] = col2im(weight^T x d out[n])   (only when the input needs a gradient).
// Images are split across OpenMP threads; each thread owns whole images and its scratch
// buffers, and the weight and bias gradients of the threads are summed in thread order, so
// results are deterministic for a given thread count (the output and input gradient are the
// same for any thread count; the weight and bias gradients differ by rounding). The forward
// saves nothing for the backward, which recomputes the columns.
#pragma once

#include <cstddef>

#include "stn/framework/tape.h"

namespace stn {

struct Conv2dOptions {
  int stride = 1;
  int padding = 0;  // zeros on every side
  int dilation = 1;
};

// The output size along one axis (OH from H and KH, or OW from W and KW), as conv2d computes
// it; <= 0 when the window does not fit.
int conv2d_output_size(int input, int kernel, const Conv2dOptions& options = {});

// Throws ShapeError naming the shapes when the channels disagree, the window does not fit
// (output size <= 0), or stride / dilation are not positive, padding negative.
Var conv2d(Var input, Var weight, Var bias, const Conv2dOptions& options = {});

// The two halves of conv2d's backward as ops, so that a convolution can be differentiated
// more than once (each is linear in both its inputs, and their backwards are conv2d and each
// other):
//   conv2d_input_grad(dy [N, O, OH, OW], weight [O, C, KH, KW], H, W) -> [N, C, H, W]
//     (a transposed convolution: col2im(weight^T x dy); H and W are needed because a stride
//     > 1 maps several input sizes to one output size)
//   conv2d_weight_grad(input [N, C, H, W], dy [N, O, OH, OW], KH, KW) -> [O, C, KH, KW]
Var conv2d_input_grad(Var grad_output, Var weight, std::size_t height, std::size_t width,
                      const Conv2dOptions& options = {});
Var conv2d_weight_grad(Var input, Var grad_output, std::size_t kernel_h, std::size_t kernel_w,
                       const Conv2dOptions& options = {});

}  // namespace stn
