#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "stn/framework/kernels/gemm.h"
#include "stn/framework/kernels/gemm_plan.h"
#include "stn/framework/random.h"

namespace stn::kernels {
namespace {

struct Case {
  int M, N, K;
};

// Odd and edge sizes around the tile shapes (6, 8, 14, 16 rows; 16-lane vectors), sizes
// spanning several depth blocks (K > 320) and row / column blocks (> 1024), and K = 0.
const Case kCases[] = {{1, 1, 1},    {1, 17, 1},   {17, 1, 3},    {5, 7, 0},    {7, 33, 5},
                       {13, 47, 29}, {29, 16, 64}, {32, 81, 40},  {6, 64, 2},   {64, 100, 300},
                       {20, 18, 700}, {1100, 20, 90}, {20, 1100, 90}};

// A matrix of `rows` x `columns` stored with a leading dimension `ld` >= columns; the padding
// holds NaN so that reading it would show up in the result.
std::vector<float> matrix(int rows, int columns, int ld, Generator& generator) {
  std::vector<float> m(static_cast<std::size_t>(std::max(rows, 1)) * ld,
                       std::numeric_limits<float>::quiet_NaN());
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < columns; ++j) m[static_cast<std::size_t>(i) * ld + j] = generator.uniform(-1.0f, 1.0f);
  return m;
}

// Runs one product with padded leading dimensions through `plan` (or the automatic choice)
// and the reference, and compares C including its untouched padding.
void check(const GemmPlan* plan, bool transpose_a, bool transpose_b, const Case& c, float alpha,
           float beta, const std::string& context) {
  Generator generator(static_cast<std::uint64_t>(c.M * 131 + c.N * 17 + c.K));
  const int a_rows = transpose_a ? c.K : c.M, a_columns = transpose_a ? c.M : c.K;
  const int b_rows = transpose_b ? c.N : c.K, b_columns = transpose_b ? c.K : c.N;
  const int lda = a_columns + 3, ldb = b_columns + 5, ldc = c.N + 2;
  std::vector<float> A = matrix(a_rows, a_columns, lda, generator);
  std::vector<float> B = matrix(b_rows, b_columns, ldb, generator);
  std::vector<float> C = matrix(c.M, c.N, ldc, generator);
  if (beta == 0.0f)  // beta == 0 must not read C: NaN there must not reach the result
    for (int i = 0; i < c.M; ++i) C[static_cast<std::size_t>(i) * ldc] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> expected = C;
  gemm_reference(transpose_a, transpose_b, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb,
                 beta, expected.data(), ldc);
  if (plan)
    gemm_with_plan(*plan, transpose_a, transpose_b, c.M, c.N, c.K, alpha, A.data(), lda, B.data(),
                   ldb, beta, C.data(), ldc);
  else
    gemm(transpose_a, transpose_b, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta,
         C.data(), ldc);
  const float tolerance = 1e-6f * static_cast<float>(c.K + 1) + 1e-6f;
  for (int i = 0; i < c.M; ++i)
    for (int j = 0; j < ldc; ++j) {
      const std::size_t at = static_cast<std::size_t>(i) * ldc + j;
      if (j >= c.N) {
        ASSERT_TRUE(std::isnan(C[at])) << context << ": wrote into C's padding at " << i << ", " << j;
        continue;
      }
      ASSERT_NEAR(C[at], expected[at], tolerance) << context << " at " << i << ", " << j;
    }
}

std::string describe(const GemmPlan* plan, bool transpose_a, bool transpose_b, const Case& c,
                     float alpha, float beta) {
  return (plan ? to_string(*plan) : std::string("auto")) + (transpose_a ? " A^T" : " A") +
         (transpose_b ? " B^T" : " B") + " " + std::to_string(c.M) + "x" + std::to_string(c.N) +
         "x" + std::to_string(c.K) + " alpha " + std::to_string(alpha) + " beta " +
         std::to_string(beta);
}

TEST(Gemm, EveryPlanMatchesReference) {
  for (const GemmPlan& plan : gemm_plans())
    for (bool transpose_a : {false, true})
      for (bool transpose_b : {false, true})
        for (const Case& c : kCases) {
          check(&plan, transpose_a, transpose_b, c, 1.0f, 0.0f,
                describe(&plan, transpose_a, transpose_b, c, 1.0f, 0.0f));
          if (HasFatalFailure()) return;
        }
}

TEST(Gemm, AlphaBeta) {
  const Case cases[] = {{7, 33, 5}, {32, 81, 400}, {29, 16, 64}, {5, 7, 0}};
  for (const GemmPlan& plan : gemm_plans())
    for (const Case& c : cases)
      for (auto [alpha, beta] : {std::pair{0.5f, 1.0f}, {-2.0f, 0.25f}, {1.0f, -1.0f}, {0.0f, 2.0f}}) {
        check(&plan, false, true, c, alpha, beta, describe(&plan, false, true, c, alpha, beta));
        check(&plan, true, false, c, alpha, beta, describe(&plan, true, false, c, alpha, beta));
        if (HasFatalFailure()) return;
      }
}

TEST(Gemm, AutomaticPlanAtModelShapes) {
  struct Shape {
    bool transpose_a, transpose_b;
    Case c;
  };
  const Shape shapes[] = {{false, false, {32, 400, 81}},  {false, true, {32, 81, 400}},
                          {false, false, {64, 16, 1568}}, {false, true, {64, 1568, 16}},
                          {true, false, {1568, 16, 64}},  {false, true, {256, 10, 1024}},
                          {false, false, {256, 1024, 10}}, {true, false, {10, 1024, 256}},
                          {false, false, {256, 256, 256}}};
  for (const Shape& s : shapes)
    for (float beta : {0.0f, 1.0f}) {
      check(nullptr, s.transpose_a, s.transpose_b, s.c, 1.0f, beta,
            describe(nullptr, s.transpose_a, s.transpose_b, s.c, 1.0f, beta));
      if (HasFatalFailure()) return;
    }
}

TEST(Gemm, EmptyProductsTouchNothing) {
  std::vector<float> C = {1.0f, 2.0f};
  gemm(false, false, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, C.data(), 2);
  gemm(false, false, 1, 0, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{1.0f, 2.0f}));
  // K = 0 leaves beta * C, and beta == 0 clears C even where it held NaN.
  gemm(false, false, 1, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 3.0f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{3.0f, 6.0f}));
  C[0] = std::numeric_limits<float>::quiet_NaN();
  gemm(false, false, 1, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.0f, 0.0f}));
}

}  // namespace
}  // namespace stn::kernels
