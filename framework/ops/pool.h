// 2-D max and average pooling over each channel plane, NCHW, as PyTorch's MaxPool2d and
// AvgPool2d with their defaults (ceil_mode = false; for average pooling count_include_pad =
// true: the divisor is the window clipped to the padded input, padding zeros included).
//
//   input  [N, C, H, W]
//   output [N, C, OH, OW],  OH = (H + 2 * padding - kernel) / stride + 1   (likewise OW)
//
// Padding must be at most half the kernel (as in PyTorch), so every max-pool window sees at
// least one real input element.
#pragma once

#include "stn/framework/tape.h"

namespace stn {

struct Pool2dOptions {
  int kernel = 2;
  int stride = -1;  // -1: the kernel size (non-overlapping windows)
  int padding = 0;  // max pooling pads with -infinity, average pooling with zeros
};

// Saves, per output element, the int32 index of the chosen input in its plane; the gradient
// goes to that element only (ties: the first maximum in the window, in row-major order, as
// PyTorch).
// The output size along one axis, as max_pool2d and avg_pool2d compute it; <= 0 when the
// window does not fit.
int pool2d_output_size(int input, const Pool2dOptions& options = {});

Var max_pool2d(Var input, const Pool2dOptions& options = {});

Var avg_pool2d(Var input, const Pool2dOptions& options = {});

}  // namespace stn
