// Convolution and pooling helpers on raw NCHW buffers (one image at a time unless stated).
// Each kernel has a `_reference` twin: the plain loop over every output and window element,
// with a bounds check per element, that the tests compare the fast version with.
#pragma once

#include <cstddef>
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
    const int span = input + 2 * pad - dilation * (kernel - 1) - 1;
    // Division truncates towards zero, which would turn a span of -1 into one output.
    return span < 0 ? 0 : span / stride + 1;
  }
  int output_h(int input_h) const { return output_size(input_h, kernel_h, stride_h, pad_h, dilation_h); }
  int output_w(int input_w) const { return output_size(input_w, kernel_w, stride_w, pad_w, dilation_w); }
};

// image (C, H, W) -> columns (C * KH * KW, OH * OW); zero where the window hangs over padding.
// Rows of columns are row_stride floats apart (0: OH * OW, packed), so several images can
// fill side by side blocks of one wider column matrix.
void im2col(const float* image, int channels, int height, int width, const Window2d& window,
            float* columns, std::ptrdiff_t row_stride = 0);
// The adjoint of im2col: adds columns (C * KH * KW, OH * OW) back into image (C, H, W).
void col2im_add(const float* columns, int channels, int height, int width, const Window2d& window,
                float* image, std::ptrdiff_t row_stride = 0);
void im2col_reference(const float* image, int channels, int height, int width,
                      const Window2d& window, float* columns);
void col2im_add_reference(const float* columns, int channels, int height, int width,
                          const Window2d& window, float* image);

// sums[r] += sum of matrix (rows, columns) row r: a convolution's bias gradient, one row per
// output channel over its positions. Vectorised (summing in 16 lanes, so the rounding
// differs from a sequential loop's).
void sum_rows_add(const float* matrix, int rows, int columns, float* sums);

// Max pooling over planes (P = N * C planes of H x W). argmax gets, per output, the index of
// the chosen input element within its plane (-1 if the window saw only padding). Padding
// acts as -infinity; ties go to the first maximum in row-major window order and NaN wins, as
// in PyTorch.
void max_pool2d_forward(const float* input, int planes, int height, int width,
                        const Window2d& window, float* output, std::int32_t* argmax);
void max_pool2d_backward_add(const float* grad_output, const std::int32_t* argmax, int planes,
                             int height, int width, const Window2d& window, float* grad_input);
void max_pool2d_forward_reference(const float* input, int planes, int height, int width,
                                  const Window2d& window, float* output, std::int32_t* argmax);

// Average pooling, PyTorch's defaults: padding counts in the divisor (count_include_pad), and
// the divisor is the window clipped to the padded input.
void avg_pool2d_forward(const float* input, int planes, int height, int width,
                        const Window2d& window, float* output);
void avg_pool2d_backward_add(const float* grad_output, int planes, int height, int width,
                             const Window2d& window, float* grad_input);
void avg_pool2d_forward_reference(const float* input, int planes, int height, int width,
                                  const Window2d& window, float* output);
void avg_pool2d_backward_add_reference(const float* grad_output, int planes, int height, int width,
                                       const Window2d& window, float* grad_input);

}  // namespace stn::kernels
