// Row copies for the kernels' inner loops (internal). GCC turns a plain copy loop into a call
// to memmove, whose call and size dispatch cost more than the copy itself for the short rows
// of im2col (20 or 34 floats) and of packed GEMM panels (48 or 64 floats): 10-15% of a
// convolution's time at the CNN's first layer.
#pragma once

#include <xsimd/xsimd.hpp>

namespace stn::kernels::detail {

inline void copy_row(float* __restrict out, const float* __restrict in, int count) {
  using Batch = xsimd::batch<float>;
  constexpr int kLanes = static_cast<int>(Batch::size);
  int i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    // An empty asm that "may change" the source pointer: the loop is no longer a recognisable
    // copy idiom, so it stays inline. It emits no instruction.
    asm("" : "+r"(in));
    Batch::load_unaligned(in + i).store_unaligned(out + i);
  }
  for (; i < count; ++i) {
    asm("" : "+r"(in));
    out[i] = in[i];
  }
}

}  // namespace stn::kernels::detail
