// How `gemm` computes one product: which micro-kernel shape, and whether it computes C or
// C^T = op(B)^T op(A)^T. Exposed so tests can force every plan and benchmarks can print the
// choice; users call `gemm`, which picks the plan with a small cost model.
#pragma once

#include <string>
#include <vector>

namespace stn::kernels {

struct GemmPlan {
  int rows = 6;              // micro-tile rows (of C, or of C^T when transposed)
  int vectors = 4;           // micro-tile width in SIMD vectors
  bool transposed = false;   // compute C^T: for small N with large M and K
};

// The micro-kernel shapes compiled in, each usable in either orientation.
const std::vector<GemmPlan>& gemm_plans();

// The plan `gemm` uses for this problem (the one with the lowest estimated cycle count); the
// leading dimensions matter because rows of A a power of two apart compete for L1 sets.
GemmPlan choose_gemm_plan(bool transpose_a, bool transpose_b, int M, int N, int K, int lda,
                          int ldb);

// `gemm` with a given plan (tests run every plan against the reference).
void gemm_with_plan(const GemmPlan& plan, bool transpose_a, bool transpose_b, int M, int N,
                    int K, float alpha, const float* A, int lda, const float* B, int ldb,
                    float beta, float* C, int ldc);

// "6x4" or "14x2^T", for test names and benchmark labels.
std::string to_string(const GemmPlan& plan);

}  // namespace stn::kernels
