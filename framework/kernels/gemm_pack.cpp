#include "stn/framework/kernels/gemm_pack.h"

#include <algorithm>

#include <xsimd/xsimd.hpp>

#include "stn/framework/kernels/buffers.h"
#include "stn/framework/kernels/gemm_microkernel.h"
#include "stn/framework/kernels/rows.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace stn::kernels::detail {

namespace {

// out[k * out_stride + j] = source[j * source_stride + k] for j < columns, k < depth.
void transpose_scalar(const float* source, std::ptrdiff_t source_stride, int columns, int depth,
                      float* out, std::ptrdiff_t out_stride) {
  for (int j = 0; j < columns; ++j)
    for (int k = 0; k < depth; ++k) out[k * out_stride + j] = source[j * source_stride + k];
}

#if defined(__AVX512F__)
// GCC 12 flags _mm512_undefined_ps() inside its own intrinsics as uninitialised (GCC bug
// 105593), a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// A 16 x 16 block in registers: unpack pairs of rows, then 4 x 4 blocks within 128-bit lanes,
// then the lanes themselves. 64 shuffles for 256 elements, against one scalar load and store
// per element: transposed operands (the weight gradient's columns^T) pack 3-4x faster.
void transpose_16x16(const float* source, std::ptrdiff_t source_stride, float* out,
                     std::ptrdiff_t out_stride) {
  __m512 row[16], pair[16];
  for (int i = 0; i < 16; ++i) row[i] = _mm512_loadu_ps(source + i * source_stride);
  for (int i = 0; i < 16; i += 2) {
    pair[i] = _mm512_unpacklo_ps(row[i], row[i + 1]);
    pair[i + 1] = _mm512_unpackhi_ps(row[i], row[i + 1]);
  }
  // quad[4 g + j]: in each 128-bit lane L, column 4 L + j of rows 4 g .. 4 g + 3.
  __m512 quad[16];
  for (int g = 0; g < 4; ++g) {
    const __m512 *t = pair + 4 * g;
    quad[4 * g + 0] = _mm512_shuffle_ps(t[0], t[2], _MM_SHUFFLE(1, 0, 1, 0));
    quad[4 * g + 1] = _mm512_shuffle_ps(t[0], t[2], _MM_SHUFFLE(3, 2, 3, 2));
    quad[4 * g + 2] = _mm512_shuffle_ps(t[1], t[3], _MM_SHUFFLE(1, 0, 1, 0));
    quad[4 * g + 3] = _mm512_shuffle_ps(t[1], t[3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 even01 = _mm512_shuffle_f32x4(quad[j], quad[4 + j], 0x88);
    const __m512 odd01 = _mm512_shuffle_f32x4(quad[j], quad[4 + j], 0xDD);
    const __m512 even23 = _mm512_shuffle_f32x4(quad[8 + j], quad[12 + j], 0x88);
    const __m512 odd23 = _mm512_shuffle_f32x4(quad[8 + j], quad[12 + j], 0xDD);
    _mm512_store_ps(out + j * out_stride, _mm512_shuffle_f32x4(even01, even23, 0x88));
    _mm512_store_ps(out + (8 + j) * out_stride, _mm512_shuffle_f32x4(even01, even23, 0xDD));
    _mm512_store_ps(out + (4 + j) * out_stride, _mm512_shuffle_f32x4(odd01, odd23, 0x88));
    _mm512_store_ps(out + (12 + j) * out_stride, _mm512_shuffle_f32x4(odd01, odd23, 0xDD));
  }
}
#pragma GCC diagnostic pop
#endif

// out[k * out_stride + j] = source[j * source_stride + k]; out is 64-byte aligned and
// out_stride a multiple of 16.
void transpose(const float* source, std::ptrdiff_t source_stride, int columns, int depth,
               float* out, std::ptrdiff_t out_stride) {
  int j = 0;
#if defined(__AVX512F__)
  for (; j + 16 <= columns; j += 16) {
    int k = 0;
    for (; k + 16 <= depth; k += 16)
      transpose_16x16(source + j * source_stride + k, source_stride, out + k * out_stride + j,
                      out_stride);
    transpose_scalar(source + j * source_stride + k, source_stride, 16, depth - k,
                     out + k * out_stride + j, out_stride);
  }
#endif
  transpose_scalar(source + j * source_stride, source_stride, columns - j, depth, out + j,
                   out_stride);
}

}  // namespace

void pack_b(const Problem& p, int k0, int kb, int j0, int nb, int width, float* out) {
  for (int jp = 0; jp < nb; jp += width) {
    const int columns = std::min(width, nb - jp);
    const int panel_width = round_up(columns, kLanes);
    if (p.b_row_major) {
      for (int k = 0; k < kb; ++k) {
        const float* source = p.b + (k0 + k) * p.ldb + j0 + jp;
        float* row = out + static_cast<std::ptrdiff_t>(k) * panel_width;
        copy_row(row, source, columns);
        std::fill(row + columns, row + panel_width, 0.0f);
      }
    } else {
      transpose(p.b + (j0 + jp) * p.ldb + k0, p.ldb, columns, kb, out, panel_width);
      if (columns < panel_width)
        for (int k = 0; k < kb; ++k)
          std::fill(out + static_cast<std::ptrdiff_t>(k) * panel_width + columns,
                    out + static_cast<std::ptrdiff_t>(k + 1) * panel_width, 0.0f);
    }
    out += static_cast<std::ptrdiff_t>(kb) * panel_width;
  }
}

void pack_a_edge(const Problem& p, int i0, int rows, int k0, int kb, int tile_rows, float* out) {
  for (int k = 0; k < kb; ++k) {
    float* column = out + static_cast<std::ptrdiff_t>(k) * tile_rows;
    for (int i = 0; i < rows; ++i)
      column[i] = p.a_row_major ? p.a[(i0 + i) * p.lda + k0 + k] : p.a[(k0 + k) * p.lda + i0 + i];
    std::fill(column + rows, column + tile_rows, 0.0f);
  }
}

void store_tile_through_memory(const float* tile, int width, const TileTarget& target) {
  auto update = [&](float& c, float value) {
    c = target.beta == 0.0f ? target.alpha * value : target.alpha * value + target.beta * c;
  };
  // Walk C in memory order: a transposed tile writes each of its columns as a row of C.
  if (target.transposed) {
    for (int j = 0; j < target.columns; ++j)
      for (int i = 0; i < target.rows; ++i) update(target.c[j * target.ldc + i], tile[i * width + j]);
  } else {
    for (int i = 0; i < target.rows; ++i)
      for (int j = 0; j < target.columns; ++j) update(target.c[i * target.ldc + j], tile[i * width + j]);
  }
}

}  // namespace stn::kernels::detail
