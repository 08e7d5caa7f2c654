#include "stn/framework/kernels/conv.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "stn/framework/kernels/buffers.h"
#include "stn/framework/kernels/rows.h"

namespace stn::kernels {

namespace {

// The outputs o in [begin, end) whose input coordinate o * stride + offset lies in [0, size):
// the fast kernels split each row into padding, interior and padding once, instead of
// testing every element.
struct Range {
  int begin, end;
};

Range inside(int outputs, int size, int stride, int offset) {
  int begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int last = size - 1 - offset;
  int end = last < 0 ? 0 : last / stride + 1;
  begin = std::min(begin, outputs);
  end = std::clamp(end, begin, outputs);
  return {begin, end};
}

// Kernel taps t in [begin, end) with start + t * dilation in [0, size). Called per pooling
// output, so the undilated case (all pooling in the ops) avoids the divisions.
Range taps_inside(int taps, int size, int dilation, int start) {
  if (dilation != 1) return inside(taps, size, dilation, start);
  const int end = std::clamp(size - start, 0, taps);
  return {std::min(std::max(-start, 0), end), end};
}

// Output rows are short (4 floats in the CNN's second layer, 11 at 42x42): a copy loop of
// unknown length runs scalar, and masked AVX-512 moves are slow on Zen 4. So im2col and
// col2im are compiled once per output width up to 16 (a constant the compiler turns into a
// few plain vector moves) and once for any width, and dispatch on the width once per call.
template <class Body>
void with_output_width(int out_w, Body body) {
  switch (out_w) {
    case 1: return body(std::integral_constant<int, 1>{});
    case 2: return body(std::integral_constant<int, 2>{});
    case 3: return body(std::integral_constant<int, 3>{});
    case 4: return body(std::integral_constant<int, 4>{});
    case 5: return body(std::integral_constant<int, 5>{});
    case 6: return body(std::integral_constant<int, 6>{});
    case 7: return body(std::integral_constant<int, 7>{});
    case 8: return body(std::integral_constant<int, 8>{});
    case 9: return body(std::integral_constant<int, 9>{});
    case 10: return body(std::integral_constant<int, 10>{});
    case 11: return body(std::integral_constant<int, 11>{});
    case 12: return body(std::integral_constant<int, 12>{});
    case 13: return body(std::integral_constant<int, 13>{});
    case 14: return body(std::integral_constant<int, 14>{});
    case 15: return body(std::integral_constant<int, 15>{});
    case 16: return body(std::integral_constant<int, 16>{});
    default: return body(std::integral_constant<int, 0>{});  // 0: known at run time only
  }
}

// ---- im2col / col2im ----------------------------------------------------------------------

// Both loops run kernel position (kh, kw) outermost and channels inside, so the ranges of
// outputs whose window element lands inside the image (two integer divisions each) are
// computed KH * KW times per image instead of per channel and row, and a window position
// that never touches padding takes a branch-free path.
// target[0, W) += row[0, W) for a width known at compile time, with 8- and 4-lane vectors:
// GCC leaves such short read-modify-write rows scalar.
template <int W, int kDone = 0>
void add_short_row(float* __restrict target, const float* __restrict row) {
  // Sizes that depend on W, so a missing width (void without AVX) is only looked into when
  // its branch is taken.
  using Eight = xsimd::make_sized_batch_t<float, 8 + 0 * W>;
  using Four = xsimd::make_sized_batch_t<float, 4 + 0 * W>;
  if constexpr (W - kDone >= 8 && !std::is_void_v<Eight>) {
    (Eight::load_unaligned(target + kDone) + Eight::load_unaligned(row + kDone)).store_unaligned(target + kDone);
    add_short_row<W, kDone + 8>(target, row);
  } else if constexpr (W - kDone >= 4 && !std::is_void_v<Four>) {
    (Four::load_unaligned(target + kDone) + Four::load_unaligned(row + kDone)).store_unaligned(target + kDone);
    add_short_row<W, kDone + 4>(target, row);
  } else if constexpr (W - kDone >= 1) {
    target[kDone] += row[kDone];
    add_short_row<W, kDone + 1>(target, row);
  }
}

template <int kFixedWidth>
void im2col_fixed(const float* __restrict image, int channels, int height, int width,
                  const Window2d& window, float* __restrict columns, std::ptrdiff_t row_stride) {
  // image (C, H, W) -> columns (C, KH, KW, OH, OW), rows row_stride apart
  const int out_h = window.output_h(height);
  const int out_w = kFixedWidth ? kFixedWidth : window.output_w(width);
  const int stride_h = window.stride_h, stride_w = window.stride_w;
  for (int kh = 0; kh < window.kernel_h; ++kh) {
    const int offset_h = kh * window.dilation_h - window.pad_h;
    const Range rows = inside(out_h, height, stride_h, offset_h);
    for (int kw = 0; kw < window.kernel_w; ++kw) {
      const int offset_w = kw * window.dilation_w - window.pad_w;
      const Range cols = inside(out_w, width, stride_w, offset_w);
      const bool interior = rows.begin == 0 && rows.end == out_h && cols.begin == 0 &&
                            cols.end == out_w && stride_w == 1;
      for (int c = 0; c < channels; ++c) {
        const float* plane = image + c * plane_size(height, width);
        float* out = columns + ((c * window.kernel_h + kh) * window.kernel_w + kw) * row_stride;
        if (interior) {
          const float* source = plane + offset_h * width + offset_w;
          for (int oh = 0; oh < out_h; ++oh, out += out_w, source += stride_h * width) {
            if constexpr (kFixedWidth > 0)
              for (int ow = 0; ow < out_w; ++ow) out[ow] = source[ow];
            else
              detail::copy_row(out, source, out_w);
          }
          continue;
        }
        for (int oh = 0; oh < out_h; ++oh, out += out_w) {
          const bool row_inside = oh >= rows.begin && oh < rows.end;
          const float* source = plane + (oh * stride_h + offset_h) * width;
          for (int ow = 0; ow < out_w; ++ow)
            out[ow] = row_inside && ow >= cols.begin && ow < cols.end
                          ? source[ow * stride_w + offset_w]
                          : 0.0f;
        }
      }
    }
  }
}

template <int kFixedWidth>
void col2im_add_fixed(const float* __restrict columns, int channels, int height, int width,
                      const Window2d& window, float* __restrict image, std::ptrdiff_t row_stride) {
  // columns (C, KH, KW, OH, OW), rows row_stride apart -> image (C, H, W), accumulating
  const int out_h = window.output_h(height);
  const int out_w = kFixedWidth ? kFixedWidth : window.output_w(width);
  const int stride_h = window.stride_h, stride_w = window.stride_w;
  for (int kh = 0; kh < window.kernel_h; ++kh) {
    const int offset_h = kh * window.dilation_h - window.pad_h;
    const Range rows = inside(out_h, height, stride_h, offset_h);
    for (int kw = 0; kw < window.kernel_w; ++kw) {
      const int offset_w = kw * window.dilation_w - window.pad_w;
      const Range cols = inside(out_w, width, stride_w, offset_w);
      const bool interior = cols.begin == 0 && cols.end == out_w && stride_w == 1;
      for (int c = 0; c < channels; ++c) {
        float* plane = image + c * plane_size(height, width);
        const float* in = columns + ((c * window.kernel_h + kh) * window.kernel_w + kw) * row_stride;
        for (int oh = rows.begin; oh < rows.end; ++oh) {
          float* target = plane + (oh * stride_h + offset_h) * width;
          const float* row = in + oh * out_w;
          if (interior && kFixedWidth > 0)
            add_short_row<kFixedWidth>(target + offset_w, row);
          else if (interior)
            for (int ow = 0; ow < out_w; ++ow) target[ow + offset_w] += row[ow];
          else
            for (int ow = cols.begin; ow < cols.end; ++ow) target[ow * stride_w + offset_w] += row[ow];
        }
      }
    }
  }
}

}  // namespace

namespace {

std::ptrdiff_t column_row_stride(std::ptrdiff_t row_stride, int height, int width, const Window2d& window) {
  return row_stride > 0 ? row_stride : plane_size(window.output_h(height), window.output_w(width));
}

}  // namespace

void im2col(const float* image, int channels, int height, int width, const Window2d& window,
            float* columns, std::ptrdiff_t row_stride) {
  row_stride = column_row_stride(row_stride, height, width, window);
  with_output_width(window.output_w(width), [&](auto fixed_width) {
    im2col_fixed<decltype(fixed_width)::value>(image, channels, height, width, window, columns, row_stride);
  });
}

void col2im_add(const float* columns, int channels, int height, int width, const Window2d& window,
                float* image, std::ptrdiff_t row_stride) {
  row_stride = column_row_stride(row_stride, height, width, window);
  with_output_width(window.output_w(width), [&](auto fixed_width) {
    col2im_add_fixed<decltype(fixed_width)::value>(columns, channels, height, width, window, image,
                                                   row_stride);
  });
}

void im2col_reference(const float* image, int channels, int height, int width,
                      const Window2d& window, float* columns) {
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int c = 0; c < channels; ++c)
    for (int kh = 0; kh < window.kernel_h; ++kh)
      for (int kw = 0; kw < window.kernel_w; ++kw)
        for (int oh = 0; oh < out_h; ++oh)
          for (int ow = 0; ow < out_w; ++ow) {
            const int ih = oh * window.stride_h - window.pad_h + kh * window.dilation_h;
            const int iw = ow * window.stride_w - window.pad_w + kw * window.dilation_w;
            const bool in = ih >= 0 && ih < height && iw >= 0 && iw < width;
            *columns++ = in ? image[(c * height + ih) * width + iw] : 0.0f;
          }
}

void col2im_add_reference(const float* columns, int channels, int height, int width,
                          const Window2d& window, float* image) {
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int c = 0; c < channels; ++c)
    for (int kh = 0; kh < window.kernel_h; ++kh)
      for (int kw = 0; kw < window.kernel_w; ++kw)
        for (int oh = 0; oh < out_h; ++oh)
          for (int ow = 0; ow < out_w; ++ow) {
            const int ih = oh * window.stride_h - window.pad_h + kh * window.dilation_h;
            const int iw = ow * window.stride_w - window.pad_w + kw * window.dilation_w;
            const float value = *columns++;
            if (ih >= 0 && ih < height && iw >= 0 && iw < width)
              image[(c * height + ih) * width + iw] += value;
          }
}

void sum_rows_add(const float* matrix, int rows, int columns, float* sums) {
  using Batch = xsimd::batch<float>;
  constexpr int kLanes = static_cast<int>(Batch::size);
  for (int r = 0; r < rows; ++r, matrix += columns) {
    Batch lanes(0.0f);
    int c = 0;
    for (; c + kLanes <= columns; c += kLanes) lanes += Batch::load_unaligned(matrix + c);
    float sum = xsimd::hadd(lanes);
    for (; c < columns; ++c) sum += matrix[c];
    sums[r] += sum;
  }
}

// ---- max pooling --------------------------------------------------------------------------

namespace {

// The CNNs' pooling (2x2, stride 2, no padding): every window lies inside the plane, so
// there is no clipping. The rule is the general kernel's: the window's elements in row-major
// order, a later one wins when strictly greater or NaN ((v != v) is isnan without a library
// call, which keeps the loop vectorisable).
template <int kOutputs>
inline void max_pool2x2_run(const float* __restrict top, const float* __restrict bottom, int width,
                            std::int32_t row_start, float* __restrict output,
                            std::int32_t* __restrict argmax) {
  for (int ow = 0; ow < kOutputs; ++ow) {
    float best = top[2 * ow];
    std::int32_t offset = 0;
    const float b = top[2 * ow + 1], c = bottom[2 * ow], d = bottom[2 * ow + 1];
    const bool take_b = b > best || b != b;
    best = take_b ? b : best;
    offset = take_b ? 1 : offset;
    const bool take_c = c > best || c != c;
    best = take_c ? c : best;
    offset = take_c ? width : offset;
    const bool take_d = d > best || d != d;
    best = take_d ? d : best;
    offset = take_d ? width + 1 : offset;
    output[ow] = best;
    argmax[ow] = row_start + 2 * ow + offset;
  }
}

void max_pool2x2_forward(const float* __restrict input, int planes, int height, int width,
                         float* __restrict output, std::int32_t* __restrict argmax) {
  // Runs of 8 outputs, a loop of fixed length that GCC turns into vector code (pairs of
  // loads split into even and odd lanes, compares, blends); a row's last partial run is
  // redone as the row's last 8 outputs, overlapping (same values), instead of a scalar tail.
  constexpr int kRun = 8;
  const int out_h = height / 2, out_w = width / 2;
  for (int p = 0; p < planes; ++p, input += plane_size(height, width)) {
    for (int oh = 0; oh < out_h; ++oh, output += out_w, argmax += out_w) {
      const float* top = input + 2 * oh * width;
      const float* bottom = top + width;
      const std::int32_t row_start = 2 * oh * width;
      if (out_w < kRun) {
        for (int ow = 0; ow < out_w; ++ow)
          max_pool2x2_run<1>(top + 2 * ow, bottom + 2 * ow, width, row_start + 2 * ow, output + ow, argmax + ow);
        continue;
      }
      for (int ow = 0;; ow += kRun) {
        ow = std::min(ow, out_w - kRun);
        max_pool2x2_run<kRun>(top + 2 * ow, bottom + 2 * ow, width, row_start + 2 * ow, output + ow, argmax + ow);
        if (ow + kRun >= out_w) break;
      }
    }
  }
}

}  // namespace

void max_pool2d_forward(const float* input, int planes, int height, int width,
                        const Window2d& window, float* output, std::int32_t* argmax) {
  // input (P, H, W) -> output, argmax (P, OH, OW)
  if (window.kernel_h == 2 && window.kernel_w == 2 && window.stride_h == 2 && window.stride_w == 2 &&
      window.pad_h == 0 && window.pad_w == 0 && window.dilation_h == 1 && window.dilation_w == 1)
    return max_pool2x2_forward(input, planes, height, width, output, argmax);
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int p = 0; p < planes; ++p) {
    const float* plane = input + p * plane_size(height, width);
    for (int oh = 0; oh < out_h; ++oh) {
      const int h0 = oh * window.stride_h - window.pad_h;
      const Range taps_h = taps_inside(window.kernel_h, height, window.dilation_h, h0);
      for (int ow = 0; ow < out_w; ++ow) {
        const int w0 = ow * window.stride_w - window.pad_w;
        const Range taps_w = taps_inside(window.kernel_w, width, window.dilation_w, w0);
        // PyTorch's rule: start at -inf on the window's first element, move on strictly
        // greater values (the first maximum wins a tie) and on NaN (so the last NaN wins).
        // The comparison is a coin flip on real data: the loop is written for a max and a
        // conditional move, not a branch (a branch made it 5x slower), and NaN, which
        // compares false, is handled after the window.
        float best = -std::numeric_limits<float>::infinity();
        std::int32_t best_index = -1;
        if (taps_h.begin < taps_h.end && taps_w.begin < taps_w.end)
          best_index = (h0 + taps_h.begin * window.dilation_h) * width + w0 +
                       taps_w.begin * window.dilation_w;
        bool saw_nan = false;
        for (int th = taps_h.begin; th < taps_h.end; ++th) {
          const int row = (h0 + th * window.dilation_h) * width + w0;
          for (int tw = taps_w.begin; tw < taps_w.end; ++tw) {
            const int index = row + tw * window.dilation_w;
            const float value = plane[index];
            const bool greater = value > best;
            best = greater ? value : best;
            best_index = greater ? index : best_index;
            saw_nan |= std::isnan(value);
          }
        }
        if (saw_nan)
          for (int th = taps_h.begin; th < taps_h.end; ++th)
            for (int tw = taps_w.begin; tw < taps_w.end; ++tw) {
              const int index = (h0 + th * window.dilation_h) * width + w0 + tw * window.dilation_w;
              if (std::isnan(plane[index])) best = plane[index], best_index = index;
            }
        *output++ = best;
        *argmax++ = best_index;
      }
    }
  }
}

void max_pool2d_backward_add(const float* grad_output, const std::int32_t* argmax, int planes,
                             int height, int width, const Window2d& window, float* grad_input) {
  const std::ptrdiff_t outputs = plane_size(window.output_h(height), window.output_w(width));
  for (int p = 0; p < planes; ++p) {
    float* plane = grad_input + p * plane_size(height, width);
    for (std::ptrdiff_t o = 0; o < outputs; ++o)
      if (argmax[o] >= 0) plane[argmax[o]] += grad_output[o];
    grad_output += outputs;
    argmax += outputs;
  }
}

void max_pool2d_forward_reference(const float* input, int planes, int height, int width,
                                  const Window2d& window, float* output, std::int32_t* argmax) {
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int p = 0; p < planes; ++p)
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        std::int32_t best_index = -1;
        for (int kh = 0; kh < window.kernel_h; ++kh)
          for (int kw = 0; kw < window.kernel_w; ++kw) {
            const int ih = oh * window.stride_h - window.pad_h + kh * window.dilation_h;
            const int iw = ow * window.stride_w - window.pad_w + kw * window.dilation_w;
            if (ih < 0 || ih >= height || iw < 0 || iw >= width) continue;
            const float value = input[(p * height + ih) * width + iw];
            if (best_index < 0 || value > best || std::isnan(value)) {
              best = value;
              best_index = ih * width + iw;
            }
          }
        *output++ = best;
        *argmax++ = best_index;
      }
}

// ---- average pooling ----------------------------------------------------------------------

namespace {

// One output's window: the part inside the input, and PyTorch's divisor, the window clipped
// to the padded input (count_include_pad = true).
struct AverageWindow {
  int h_begin, h_end, w_begin, w_end;
  float divisor;
};

AverageWindow average_window(int oh, int ow, int height, int width, const Window2d& window) {
  int h_begin = oh * window.stride_h - window.pad_h;
  int w_begin = ow * window.stride_w - window.pad_w;
  int h_end = std::min(h_begin + window.kernel_h, height + window.pad_h);
  int w_end = std::min(w_begin + window.kernel_w, width + window.pad_w);
  const float divisor = static_cast<float>((h_end - h_begin) * (w_end - w_begin));
  return {std::max(h_begin, 0), std::min(h_end, height), std::max(w_begin, 0),
          std::min(w_end, width), divisor};
}

}  // namespace

void avg_pool2d_forward(const float* input, int planes, int height, int width,
                        const Window2d& window, float* output) {
  // input (P, H, W) -> output (P, OH, OW); the window's dilation is not used (must be 1)
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int p = 0; p < planes; ++p) {
    const float* plane = input + p * plane_size(height, width);
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        const AverageWindow w = average_window(oh, ow, height, width, window);
        float sum = 0.0f;
        for (int ih = w.h_begin; ih < w.h_end; ++ih)
          for (int iw = w.w_begin; iw < w.w_end; ++iw) sum += plane[ih * width + iw];
        *output++ = sum / w.divisor;
      }
  }
}

void avg_pool2d_backward_add(const float* grad_output, int planes, int height, int width,
                             const Window2d& window, float* grad_input) {
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int p = 0; p < planes; ++p) {
    float* plane = grad_input + p * plane_size(height, width);
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        const AverageWindow w = average_window(oh, ow, height, width, window);
        const float share = *grad_output++ / w.divisor;
        for (int ih = w.h_begin; ih < w.h_end; ++ih)
          for (int iw = w.w_begin; iw < w.w_end; ++iw) plane[ih * width + iw] += share;
      }
  }
}

void avg_pool2d_forward_reference(const float* input, int planes, int height, int width,
                                  const Window2d& window, float* output) {
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int p = 0; p < planes; ++p)
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        float sum = 0.0f;
        int counted = 0;
        for (int kh = 0; kh < window.kernel_h; ++kh)
          for (int kw = 0; kw < window.kernel_w; ++kw) {
            const int ih = oh * window.stride_h - window.pad_h + kh;
            const int iw = ow * window.stride_w - window.pad_w + kw;
            const bool in_padded = ih < height + window.pad_h && iw < width + window.pad_w;
            if (in_padded) ++counted;
            if (ih >= 0 && ih < height && iw >= 0 && iw < width) sum += input[(p * height + ih) * width + iw];
          }
        *output++ = sum / static_cast<float>(counted);
      }
}

void avg_pool2d_backward_add_reference(const float* grad_output, int planes, int height, int width,
                                       const Window2d& window, float* grad_input) {
  const int out_h = window.output_h(height), out_w = window.output_w(width);
  for (int p = 0; p < planes; ++p)
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        int counted = 0;
        for (int kh = 0; kh < window.kernel_h; ++kh)
          for (int kw = 0; kw < window.kernel_w; ++kw) {
            const int ih = oh * window.stride_h - window.pad_h + kh;
            const int iw = ow * window.stride_w - window.pad_w + kw;
            if (ih < height + window.pad_h && iw < width + window.pad_w) ++counted;
          }
        const float g = *grad_output++;
        for (int kh = 0; kh < window.kernel_h; ++kh)
          for (int kw = 0; kw < window.kernel_w; ++kw) {
            const int ih = oh * window.stride_h - window.pad_h + kh;
            const int iw = ow * window.stride_w - window.pad_w + kw;
            if (ih >= 0 && ih < height && iw >= 0 && iw < width)
              grad_input[(p * height + ih) * width + iw] += g / static_cast<float>(counted);
          }
      }
}

}  // namespace stn::kernels
