// Convolution and pooling helpers on raw NCHW buffers (one image at a time unless stated).
#pragma once

#include <cstdint>

namespace stn::kernels {

// The geometry of a 2-D sliding window (convolution or pooling).
struct Window2d {
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dilation_h = 1, dilation_w = 1;

  // Output size along one axis, or <= 0 when the window does not fit.
  static int output_size(int input, int kernel, int stride, int pad, int dilation) {
    return (input + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  }
  int output_h(int input_h) const { return output_size(input_h, kernel_h, stride_h, pad_h, dilation_h); }
  int output_w(int input_w) const { return output_size(input_w, kernel_w, stride_w, pad_w, dilation_w); }
};

// image (C, H, W) -> columns (C * KH * KW, OH * OW); zero where the window hangs over padding.
void im2col(const float* image, int channels, int height, int width, const Window2d& window,
            float* columns);
// The adjoint of im2col: adds columns (C * KH * KW, OH * OW) back into image (C, H, W).
void col2im_add(const float* columns, int channels, int height, int width, const Window2d& window,
                float* image);

// Max pooling over planes (P = N * C planes of H x W). argmax gets, per output, the index of
// the chosen input element within its plane (-1 if the window saw only padding).
void max_pool2d_forward(const float* input, int planes, int height, int width,
                        const Window2d& window, float* output, std::int32_t* argmax);
void max_pool2d_backward_add(const float* grad_output, const std::int32_t* argmax, int planes,
                             int height, int width, const Window2d& window, float* grad_input);

// Average pooling, PyTorch's defaults: padding counts in the divisor (count_include_pad).
void avg_pool2d_forward(const float* input, int planes, int height, int width,
                        const Window2d& window, float* output);
void avg_pool2d_backward_add(const float* grad_output, int planes, int height, int width,
                             const Window2d& window, float* grad_input);

}  // namespace stn::kernels
