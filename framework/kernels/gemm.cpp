// The fast single-precision GEMM: cache blocking in the style of GotoBLAS / BLIS, with the
// vector dimension along the columns of C (row-major C gets contiguous vector stores).
//
//   for each depth block (k0, kb)            kb: a packed B micro-panel [kb, width] fits L1
//     for each column block (j0, nb)         packed B block [kb, nb] stays in L2
//       pack op(B) into zero-padded panels [kb, width]
//       for each row block (i0, mb)          the A rows it reads stay in L2
//         for each panel, for each tile of `rows` rows: micro-kernel (registers)
//
// A is not packed: the micro-kernel broadcasts op(A)'s elements straight from A, which is
// cheap when read row-major (one stream per tile row) or k-major (one contiguous run per k).
// In the model's skinny shapes (N = 16 columns, K = 1568) every element of A is used once,
// so packing it would cost as much as the arithmetic. Only the last, partial tile of rows
// is copied into a zero-padded block. When N is small and M large, computing C^T instead
// fills the vectors better; a small cost model picks the orientation and the tile shape.
#include "framework/kernels/gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>

#include "framework/kernels/gemm_microkernel.h"
#include "framework/kernels/gemm_plan.h"

namespace stn::kernels {

namespace {

using detail::kLanes;
using detail::TileTarget;

using MicroKernel = void (*)(int, const float*, std::ptrdiff_t, const float*, const TileTarget&);

struct KernelEntry {
  int rows;
  int vectors;
  MicroKernel row_major_a;
  MicroKernel k_major_a;
};

template <int ROWS, int VECTORS>
constexpr KernelEntry kernel_entry() {
  return {ROWS, VECTORS, &detail::micro_kernel<ROWS, VECTORS, true>,
          &detail::micro_kernel<ROWS, VECTORS, false>};
}

// Each plan's shape, plus narrower ones with the same rows for a plan's last column panel.
constexpr KernelEntry kKernels[] = {
    kernel_entry<6, 4>(),  kernel_entry<6, 3>(), kernel_entry<6, 2>(), kernel_entry<6, 1>(),
    kernel_entry<8, 3>(),  kernel_entry<8, 2>(), kernel_entry<8, 1>(),
    kernel_entry<14, 2>(), kernel_entry<14, 1>(),
    kernel_entry<16, 1>(),
};

const KernelEntry& find_kernel(int rows, int vectors) {
  for (const KernelEntry& kernel : kKernels)
    if (kernel.rows == rows && kernel.vectors == vectors) return kernel;
  throw std::logic_error("gemm: no micro-kernel " + std::to_string(rows) + "x" +
                         std::to_string(vectors));
}

// Block sizes in bytes: a B micro-panel should sit in L1 next to the A rows being streamed,
// the packed B block and the A row block in L2 (Zen 4: 32 KiB L1d, 1 MiB L2 per core).
constexpr int kPanelBytes = 20 * 1024;
constexpr int kL2BlockBytes = 320 * 1024;

int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }
int divide_up(int value, int divisor) { return (value + divisor - 1) / divisor; }

int depth_block(int width) {
  return std::clamp(kPanelBytes / (width * static_cast<int>(sizeof(float))) / 8 * 8, 64, 1024);
}

// The product in one orientation: C' [M, N] = alpha * a [M, K] * b [K, N] + beta * C', where
// a(i, k) = a[i * lda + k] (row-major) or a[k * lda + i], b(k, j) = b[k * ldb + j] (row-major)
// or b[j * ldb + k], and C'(i, j) = c[i * ldc + j], or c[j * ldc + i] when transposed.
struct Problem {
  int M, N, K;
  const float* a;
  std::ptrdiff_t lda;
  bool a_row_major;
  const float* b;
  std::ptrdiff_t ldb;
  bool b_row_major;
  float alpha, beta;
  float* c;
  std::ptrdiff_t ldc;
  bool c_transposed;
};

Problem orient(bool transposed, bool transpose_a, bool transpose_b, int M, int N, int K,
               float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) {
  if (!transposed)
    return {M, N, K, A, lda, !transpose_a, B, ldb, !transpose_b, alpha, beta, C, ldc, false};
  // C^T = op(B)^T op(A)^T: a'(i, k) = op(B)(k, i) and b'(k, j) = op(A)(j, k).
  return {N, M, K, B, ldb, transpose_b, A, lda, transpose_a, alpha, beta, C, ldc, true};
}

using AlignedBuffer = std::vector<float, xsimd::aligned_allocator<float, 64>>;

// Per-thread scratch that only grows, so steady-state calls allocate nothing.
float* scratch(AlignedBuffer& buffer, std::size_t size) {
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

// b [k0 : k0 + kb, j0 : j0 + nb] -> panels of `width` columns, each [kb, panel width] with the
// panel width rounded up to whole vectors and the padding zeroed.
void pack_b(const Problem& p, int k0, int kb, int j0, int nb, int width, float* out) {
  for (int jp = 0; jp < nb; jp += width) {
    const int columns = std::min(width, nb - jp);
    const int panel_width = round_up(columns, kLanes);
    if (p.b_row_major) {
      for (int k = 0; k < kb; ++k) {
        const float* source = p.b + (k0 + k) * p.ldb + j0 + jp;
        float* row = out + static_cast<std::ptrdiff_t>(k) * panel_width;
        std::memcpy(row, source, sizeof(float) * columns);
        std::fill(row + columns, row + panel_width, 0.0f);
      }
    } else {
      for (int j = 0; j < columns; ++j) {
        const float* source = p.b + (j0 + jp + j) * p.ldb + k0;
        for (int k = 0; k < kb; ++k) out[static_cast<std::ptrdiff_t>(k) * panel_width + j] = source[k];
      }
      if (columns < panel_width)
        for (int k = 0; k < kb; ++k)
          std::fill(out + static_cast<std::ptrdiff_t>(k) * panel_width + columns,
                    out + static_cast<std::ptrdiff_t>(k + 1) * panel_width, 0.0f);
    }
    out += static_cast<std::ptrdiff_t>(kb) * panel_width;
  }
}

// The last `rows` (< tile rows) rows of a, k-major and zero-padded to `tile_rows`.
void pack_a_edge(const Problem& p, int i0, int rows, int k0, int kb, int tile_rows, float* out) {
  for (int k = 0; k < kb; ++k) {
    float* column = out + static_cast<std::ptrdiff_t>(k) * tile_rows;
    for (int i = 0; i < rows; ++i)
      column[i] = p.a_row_major ? p.a[(i0 + i) * p.lda + k0 + k] : p.a[(k0 + k) * p.lda + i0 + i];
    std::fill(column + rows, column + tile_rows, 0.0f);
  }
}

void run(const GemmPlan& plan, const Problem& p) {
  thread_local AlignedBuffer packed_b_buffer, edge_buffer;
  const int tile_rows = plan.rows;
  const int width = plan.vectors * kLanes;
  const int kc = depth_block(width);
  const int block_bytes = kc * static_cast<int>(sizeof(float));
  const int nc = std::max(width, kL2BlockBytes / block_bytes / width * width);
  const int mc = std::max(tile_rows, kL2BlockBytes / block_bytes / tile_rows * tile_rows);
  const KernelEntry& full_kernel = find_kernel(tile_rows, plan.vectors);

  for (int k0 = 0; k0 < p.K; k0 += kc) {
    const int kb = std::min(kc, p.K - k0);
    const float beta = k0 == 0 ? p.beta : 1.0f;
    for (int j0 = 0; j0 < p.N; j0 += nc) {
      const int nb = std::min(nc, p.N - j0);
      float* panels = scratch(packed_b_buffer, static_cast<std::size_t>(kb) * round_up(nb, kLanes));
      pack_b(p, k0, kb, j0, nb, width, panels);
      for (int i0 = 0; i0 < p.M; i0 += mc) {
        const int mb = std::min(mc, p.M - i0);
        const int full_rows = mb / tile_rows * tile_rows;
        float* edge = nullptr;
        if (full_rows < mb) {
          edge = scratch(edge_buffer, static_cast<std::size_t>(kb) * tile_rows);
          pack_a_edge(p, i0 + full_rows, mb - full_rows, k0, kb, tile_rows, edge);
        }
        const float* panel = panels;
        for (int jp = 0; jp < nb; jp += width) {
          const int columns = std::min(width, nb - jp);
          const int vectors = divide_up(columns, kLanes);
          const KernelEntry& kernel =
              vectors == plan.vectors ? full_kernel : find_kernel(tile_rows, vectors);
          for (int i = 0; i < mb; i += tile_rows) {
            const int row = i0 + i, column = j0 + jp;
            TileTarget target{p.c_transposed ? p.c + column * p.ldc + row : p.c + row * p.ldc + column,
                              p.ldc, p.c_transposed, p.alpha, beta,
                              std::min(tile_rows, mb - i), columns};
            if (target.rows < tile_rows)
              kernel.k_major_a(kb, edge, tile_rows, panel, target);
            else if (p.a_row_major)
              kernel.row_major_a(kb, p.a + row * p.lda + k0, p.lda, panel, target);
            else
              kernel.k_major_a(kb, p.a + k0 * p.lda + row, p.lda, panel, target);
          }
          panel += static_cast<std::ptrdiff_t>(kb) * vectors * kLanes;
        }
      }
    }
  }
}

void scale(int M, int N, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i) {
    float* row = C + static_cast<std::ptrdiff_t>(i) * ldc;
    if (beta == 0.0f) std::fill(row, row + N, 0.0f);
    else if (beta != 1.0f)
      for (int j = 0; j < N; ++j) row[j] *= beta;
  }
}

// Rough cycles on a core issuing one 16-lane FMA and two loads per cycle.
double estimated_cycles(const GemmPlan& plan, bool transpose_a, bool transpose_b, int M, int N,
                        int K) {
  const int rows = plan.transposed ? N : M, columns = plan.transposed ? M : N;
  const bool b_row_major = plan.transposed ? transpose_a : !transpose_b;
  const int vectors = divide_up(columns, kLanes);
  const int tiles = divide_up(rows, plan.rows);
  auto tile_step = [&](int tile_vectors) {
    double loads = (plan.rows + tile_vectors) * 0.5;
    return std::max<double>(plan.rows * tile_vectors, loads);
  };
  const int remainder = vectors % plan.vectors;
  double compute = static_cast<double>(tiles) * K *
                   ((vectors / plan.vectors) * tile_step(plan.vectors) +
                    (remainder ? tile_step(remainder) : 0.0));
  const int depth_blocks = divide_up(K, depth_block(plan.vectors * kLanes));
  double packing = b_row_major ? 2.0 * K * vectors : 1.0 * K * columns;
  double edge = rows % plan.rows ? 1.0 * K * plan.rows : 0.0;
  double stores = static_cast<double>(depth_blocks) * tiles * plan.rows * vectors * 2.0;
  if (plan.transposed) stores += static_cast<double>(depth_blocks) * rows * columns;
  return compute + packing + edge + stores;
}

}  // namespace

const std::vector<GemmPlan>& gemm_plans() {
  static const std::vector<GemmPlan> plans = [] {
    std::vector<GemmPlan> all;
    for (bool transposed : {false, true})
      for (auto [rows, vectors] : {std::pair{6, 4}, {8, 3}, {14, 2}, {16, 1}})
        all.push_back({rows, vectors, transposed});
    return all;
  }();
  return plans;
}

GemmPlan choose_gemm_plan(bool transpose_a, bool transpose_b, int M, int N, int K) {
  GemmPlan best = gemm_plans().front();
  double best_cycles = estimated_cycles(best, transpose_a, transpose_b, M, N, K);
  for (const GemmPlan& plan : gemm_plans()) {
    double cycles = estimated_cycles(plan, transpose_a, transpose_b, M, N, K);
    if (cycles < best_cycles) best = plan, best_cycles = cycles;
  }
  return best;
}

std::string to_string(const GemmPlan& plan) {
  return std::to_string(plan.rows) + "x" + std::to_string(plan.vectors) + (plan.transposed ? "T" : "");
}

void gemm_with_plan(const GemmPlan& plan, bool transpose_a, bool transpose_b, int M, int N,
                    int K, float alpha, const float* A, int lda, const float* B, int ldb,
                    float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale(M, N, beta, C, ldc);
    return;
  }
  run(plan, orient(plan.transposed, transpose_a, transpose_b, M, N, K, alpha, A, lda, B, ldb,
                   beta, C, ldc));
}

void gemm(bool transpose_a, bool transpose_b, int M, int N, int K, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  gemm_with_plan(choose_gemm_plan(transpose_a, transpose_b, M, N, K), transpose_a, transpose_b, M,
                 N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace stn::kernels
