#include "framework/kernels/gemm.h"

#include <vector>

namespace stn::kernels {

// A straightforward cache-friendly GEMM: op(B) is made row-major [K, N] so the inner loop
// runs along contiguous rows of B and C and vectorises. The packed, register-blocked
// micro-kernel replaces this in the performance work.
void gemm(bool transpose_a, bool transpose_b, int M, int N, int K, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  std::vector<float> packed_b;
  const float* b_rows = B;
  int b_stride = ldb;
  if (transpose_b) {
    packed_b.resize(static_cast<std::size_t>(K) * N);
    for (int j = 0; j < N; ++j)
      for (int k = 0; k < K; ++k) packed_b[static_cast<std::size_t>(k) * N + j] = B[j * ldb + k];
    b_rows = packed_b.data();
    b_stride = N;
  }
  for (int i = 0; i < M; ++i) {
    float* c = C + static_cast<std::size_t>(i) * ldc;
    if (beta == 0.0f)
      for (int j = 0; j < N; ++j) c[j] = 0.0f;
    else if (beta != 1.0f)
      for (int j = 0; j < N; ++j) c[j] *= beta;
    for (int k = 0; k < K; ++k) {
      float a = alpha * (transpose_a ? A[k * lda + i] : A[i * lda + k]);
      const float* b = b_rows + static_cast<std::size_t>(k) * b_stride;
      for (int j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}

}  // namespace stn::kernels
