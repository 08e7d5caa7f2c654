// The register-blocked GEMM micro-kernel (internal to gemm.cpp).
//
// One call computes a tile of C with ROWS rows and VECTORS SIMD vectors of columns, keeping
// all ROWS * VECTORS accumulators in registers (6 x 4, 8 x 3, 14 x 2, 16 x 1: 24 to 28 of
// the 32 zmm registers), over `depth` steps of k:
//   tile[i, :] += a(i, k) * b_panel[k, :]
// b_panel is a packed, zero-padded panel [depth, VECTORS * lanes]. a(i, k) is read in place
// as a broadcast, either from a row-major block (a[i * stride + k]) or a k-major block
// (a[k * stride + i], which is also the layout of a packed edge block), so A is never copied
// except for the rows of an edge tile.
#pragma once

#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace stn::kernels::detail {

using Batch = xsimd::batch<float>;
constexpr int kLanes = static_cast<int>(Batch::size);

// Where a finished tile goes: C (i, j) of the tile is c[i * ldc + j], or c[j * ldc + i] when
// the product was computed transposed (C^T = B^T A^T). Only rows x columns of the tile are
// valid; the rest came from zero padding and is dropped.
struct TileTarget {
  float* c;
  std::ptrdiff_t ldc;
  bool transposed;
  float alpha;
  float beta;
  int rows;
  int columns;
};

// Edge or transposed tiles go through memory; this runs once per tile per depth block.
template <int ROWS, int VECTORS>
void store_tile_through_memory(const Batch (&accumulator)[ROWS][VECTORS], const TileTarget& target) {
  constexpr int kWidth = VECTORS * kLanes;
  alignas(64) float tile[ROWS][kWidth];
  for (int i = 0; i < ROWS; ++i)
    for (int v = 0; v < VECTORS; ++v) accumulator[i][v].store_aligned(&tile[i][v * kLanes]);
  for (int i = 0; i < target.rows; ++i)
    for (int j = 0; j < target.columns; ++j) {
      float& c = target.transposed ? target.c[j * target.ldc + i] : target.c[i * target.ldc + j];
      float value = target.alpha * tile[i][j];
      c = target.beta == 0.0f ? value : value + target.beta * c;
    }
}

template <int ROWS, int VECTORS, bool kRowMajorA>
void micro_kernel(int depth, const float* a, std::ptrdiff_t a_stride, const float* b_panel,
                  const TileTarget& target) {
  Batch accumulator[ROWS][VECTORS];
  for (int i = 0; i < ROWS; ++i)
    for (int v = 0; v < VECTORS; ++v) accumulator[i][v] = Batch(0.0f);
  for (int k = 0; k < depth; ++k) {
    Batch b[VECTORS];
    for (int v = 0; v < VECTORS; ++v) b[v] = Batch::load_aligned(b_panel + v * kLanes);
    for (int i = 0; i < ROWS; ++i) {
      const Batch a_ik(kRowMajorA ? a[i * a_stride] : a[i]);
      for (int v = 0; v < VECTORS; ++v) accumulator[i][v] = xsimd::fma(a_ik, b[v], accumulator[i][v]);
    }
    b_panel += VECTORS * kLanes;
    a += kRowMajorA ? 1 : a_stride;
  }
  if (target.transposed || target.rows < ROWS || target.columns < VECTORS * kLanes) {
    store_tile_through_memory<ROWS, VECTORS>(accumulator, target);
    return;
  }
  // Full tiles store straight from the registers (beta == 0: C is not read).
  const Batch alpha(target.alpha);
  if (target.beta == 0.0f) {
    for (int i = 0; i < ROWS; ++i)
      for (int v = 0; v < VECTORS; ++v)
        (alpha * accumulator[i][v]).store_unaligned(target.c + i * target.ldc + v * kLanes);
  } else {
    const Batch beta(target.beta);
    for (int i = 0; i < ROWS; ++i)
      for (int v = 0; v < VECTORS; ++v) {
        float* c = target.c + i * target.ldc + v * kLanes;
        xsimd::fma(alpha, accumulator[i][v], beta * Batch::load_unaligned(c)).store_unaligned(c);
      }
  }
}

}  // namespace stn::kernels::detail
