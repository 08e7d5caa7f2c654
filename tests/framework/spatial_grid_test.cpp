// The grid generators: gradchecks, the reductions between them (attention, projective and
// TPS grids that are affine must equal the affine grid), TPS interpolation at the control
// points and U(0) = 0, the TPS matrix cache under threads, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <thread>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/kernels/grids.h"
#include "stn/framework/ops/spatial.h"
#include "test_util.h"

namespace stn {
namespace {

using test::max_abs_difference;
using test::random_tensor;

Tensor near_identity_affine(std::size_t batch, Generator& generator, float spread) {
  Tensor theta = random_tensor({batch, 2, 3}, generator, -spread, spread);
  for (std::size_t n = 0; n < batch; ++n) {
    theta(n, 0, 0) += 1.0f;
    theta(n, 1, 1) += 1.0f;
  }
  return theta;
}

TEST(SpatialGrid, BaseGridMatchesPyTorchConventions) {
  // linspace(-1, 1, S) * (S - 1) / S: the pixel centres (2i + 1) / S - 1.
  const std::vector<float> centres = kernels::normalised_pixel_centres(4, false);
  const float expected_centres[] = {-0.75f, -0.25f, 0.25f, 0.75f};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(centres[i], expected_centres[i]);
  const std::vector<float> corners = kernels::normalised_pixel_centres(5, true);
  const float expected_corners[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(corners[i], expected_corners[i]);
  for (bool align_corners : {false, true})
    EXPECT_EQ(kernels::normalised_pixel_centres(1, align_corners), std::vector<float>{0.0f});
  for (std::size_t size : {2u, 7u, 16u, 28u, 33u, 60u}) {
    const std::vector<float> values = kernels::normalised_pixel_centres(size, false);
    for (std::size_t i = 0; i < size; ++i)
      EXPECT_NEAR(values[i], (2.0 * i + 1.0) / size - 1.0, 2e-7) << size << " " << i;
  }
}

TEST(SpatialGrid, Gradchecks) {
  Generator generator(21);
  struct Case {
    const char* name;
    std::function<Var(Var)> grid;
    Tensor theta;
  };
  Tensor projective = random_tensor({2, 8}, generator, -0.2f, 0.2f);
  for (std::size_t n = 0; n < 2; ++n) projective(n, 0) += 1.0f, projective(n, 4) += 1.0f;
  Tensor control = tps_control_points(16);
  Tensor tps16 = random_tensor({2, 16, 2}, generator, -0.1f, 0.1f);
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t i = 0; i < 32; ++i) tps16.data()[n * 32 + i] += control.data()[i];
  std::vector<Case> cases = {
      {"affine centres", [](Var t) { return affine_grid(t, 5, 7); },
       near_identity_affine(2, generator, 0.3f)},
      {"affine corners", [](Var t) { return affine_grid(t, 4, 1, true); },
       near_identity_affine(1, generator, 0.3f)},
      {"attention", [](Var t) { return attention_grid(t, 6, 5); },
       random_tensor({3, 3}, generator, 0.3f, 1.0f)},
      {"projective", [](Var t) { return projective_grid(t, 5, 6, true); }, projective},
      {"tps 4x4", [](Var t) { return tps_grid(t, 6, 7); }, tps16},
      {"tps 3x3", [](Var t) { return tps_grid(t, 3, 5, true); },
       random_tensor({1, 9, 2}, generator)},
  };
  for (const Case& c : cases) {
    auto result = gradcheck([&](const std::vector<Var>& v) { return c.grid(v[0]); }, {c.theta});
    EXPECT_TRUE(result.ok) << c.name << ": " << result.message;
  }
}

TEST(SpatialGrid, AttentionEqualsItsAffineGrid) {
  Tensor attention = test::tensor_from({2, 3}, {0.7f, 0.1f, -0.3f, 1.3f, -0.45f, 0.2f});
  Tensor affine = zeros({2, 2, 3});
  for (std::size_t n = 0; n < 2; ++n) {
    affine(n, 0, 0) = affine(n, 1, 1) = attention(n, 0);
    affine(n, 0, 2) = attention(n, 1);
    affine(n, 1, 2) = attention(n, 2);
  }
  for (bool align_corners : {false, true})
    for (std::size_t size : {5u, 28u})  // both of PyTorch's bmm rounding regimes
      EXPECT_EQ(max_abs_difference(attention_grid(attention, size, size + 1, align_corners),
                                   affine_grid(affine, size, size + 1, align_corners)),
                0.0f);
}

TEST(SpatialGrid, ProjectiveWithZeroLastRowEqualsAffine) {
  Generator generator(22);
  Tensor affine = near_identity_affine(3, generator, 0.4f);
  Tensor projective = zeros({3, 8});
  for (std::size_t i = 0; i < affine.size(); ++i)
    projective.data()[(i / 6) * 8 + i % 6] = affine.data()[i];
  for (bool align_corners : {false, true})
    for (std::size_t size : {6u, 28u})
      EXPECT_EQ(max_abs_difference(projective_grid(projective, size, size, align_corners),
                                   affine_grid(affine, size, size, align_corners)),
                0.0f);
}

// w' = h31 x + h32 y + 1 = 0 on the left column: those samples go to infinity, the sampler
// treats them as outside, and nothing non-finite reaches theta.
TEST(SpatialGrid, ProjectiveDivisionByZeroStaysFinite) {
  Tensor theta = test::tensor_from({1, 8}, {1, 0, 0, 0, 1, 0, 1, 0});
  Tape tape;
  Var h = tape.input(theta, true);
  Var grid = projective_grid(h, 3, 3, true);
  EXPECT_FALSE(std::isfinite(grid.value()(0, 0, 0, 0)));
  Var v = grid_sample(tape.input(full({1, 1, 4, 4}, 1.0f)), grid);
  tape.backward(v, full(v.shape(), 1.0f));
  for (std::size_t i = 0; i < 8; ++i) EXPECT_TRUE(std::isfinite(h.grad().data()[i])) << i;
}

TEST(SpatialGrid, TpsOfAnAffineMapEqualsTheAffineGrid) {
  const Tensor affine = test::tensor_from({1, 2, 3}, {0.9f, -0.2f, 0.1f, 0.3f, 1.1f, -0.15f});
  for (std::size_t count : {9u, 16u, 25u}) {
    Tensor control = tps_control_points(count);
    Tensor theta = empty({1, count, 2});
    for (std::size_t k = 0; k < count; ++k)
      for (std::size_t row = 0; row < 2; ++row)
        theta(0, k, row) = affine(0, row, 0) * control(k, 0) + affine(0, row, 1) * control(k, 1) +
                           affine(0, row, 2);
    for (bool align_corners : {false, true})
      EXPECT_LE(max_abs_difference(tps_grid(theta, 9, 11, align_corners),
                                   affine_grid(affine, 9, 11, align_corners)),
                2e-6f)
          << count << " control points";
  }
}

// With aligned corners a 4 x 4 target grid puts pixels exactly on the 16 control points,
// where U(0) = 0: the spline interpolates (grid = theta there), and the gradient of each of
// those pixels with respect to theta is 1 for its own control point and 0 for the others,
// finite, and equal to the finite difference.
TEST(SpatialGrid, TpsInterpolatesOnControlPoints) {
  EXPECT_EQ(kernels::thin_plate_radial_basis(0.0), 0.0);
  for (double r : {1e-2, 1e-4, 1e-6}) {
    const double slope = (kernels::thin_plate_radial_basis(r * r) - 0.0) / r;  // dU/dr at 0
    EXPECT_TRUE(std::isfinite(slope));
    EXPECT_LT(std::abs(slope), 0.1);
  }
  Generator generator(23);
  Tensor theta = random_tensor({1, 16, 2}, generator);
  Tape tape;
  Var t = tape.input(theta, true);
  Var grid = tps_grid(t, 4, 4, true);
  for (std::size_t k = 0; k < 16; ++k)
    for (std::size_t axis = 0; axis < 2; ++axis)
      EXPECT_NEAR(grid.value().data()[2 * k + axis], theta.data()[2 * k + axis], 2e-6f);
  const std::size_t pixel = 5;  // an interior control point
  Tensor seed = zeros({1, 4, 4, 2});
  seed.data()[2 * pixel] = 1.0f;
  tape.backward(grid, seed);
  for (std::size_t k = 0; k < 16; ++k) {
    const float gradient = t.grad().data()[2 * k];
    EXPECT_TRUE(std::isfinite(gradient));
    EXPECT_NEAR(gradient, k == pixel ? 1.0f : 0.0f, 1e-5f) << k;
    Tensor plus = theta, minus = theta;
    plus.data()[2 * k] += 1e-2f;
    minus.data()[2 * k] -= 1e-2f;
    const float numeric = (tps_grid(plus, 4, 4, true).data()[2 * pixel] -
                           tps_grid(minus, 4, 4, true).data()[2 * pixel]) /
                          2e-2f;
    EXPECT_NEAR(gradient, numeric, 1e-3f) << k;
  }
}

TEST(SpatialGrid, TpsMatrixIsSolvedOnceAndSharedAcrossThreads) {
  const kernels::GridGeometry geometry{1, 13, 17, false};
  std::vector<std::shared_ptr<const std::vector<float>>> results(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i)
    threads.emplace_back(
        [&, i] { results[i] = kernels::tps_grid_matrix(i % 2 ? 16 : 9, geometry); });
  for (std::thread& thread : threads) thread.join();
  for (std::size_t i = 2; i < results.size(); ++i) EXPECT_EQ(*results[i], *results[i % 2]);
  EXPECT_EQ(kernels::tps_grid_matrix(16, geometry), kernels::tps_grid_matrix(16, geometry));
  EXPECT_EQ(results[1]->size(), 13u * 17u * 16u);
}

template <class Call>
void expect_error(Call call, const std::vector<std::string>& words) {
  try {
    call();
    ADD_FAILURE() << "expected an error";
  } catch (const std::invalid_argument& error) {  // ShapeError is one
    for (const std::string& word : words)
      EXPECT_NE(std::string(error.what()).find(word), std::string::npos) << error.what();
  }
}

TEST(SpatialGrid, BadInputNamesTheOpAndTheProblem) {
  Tape tape;
  expect_error([&] { affine_grid(tape.input(zeros({2, 3})), 4, 4); }, {"affine_grid", "[2, 3]"});
  expect_error(
      [&] {
        affine_grid(tape.input(zeros({2, 3, 2})), 4, 4);
      },
      {"affine_grid", "[2, 3, 2]"});
  expect_error([&] { affine_grid(tape.input(zeros({1, 2, 3})), 0, 4); }, {"affine_grid", "0 x 4"});
  expect_error(
      [&] {
        attention_grid(tape.input(zeros({2, 4})), 4, 4);
      },
      {"attention_grid", "[2, 4]"});
  expect_error(
      [&] {
        projective_grid(tape.input(zeros({1, 9})), 4, 4);
      },
      {"projective_grid", "[1, 9]"});
  expect_error([&] { tps_grid(tape.input(zeros({1, 15, 2})), 4, 4); }, {"tps_grid", "[1, 15, 2]"});
  expect_error([&] { tps_grid(tape.input(zeros({1, 16, 2})), 4, 0); }, {"tps_grid", "4 x 0"});
  expect_error([] { tps_control_points(10); }, {"tps_control_points", "10"});
  Tensor theta = test::tensor_from({1, 2, 3}, {1, 0, 0, 0, 1, NAN});
  expect_error([&] { affine_grid(tape.input(theta), 4, 4); }, {"affine_grid", "nan", "[1, 2, 3]"});
  Tensor infinite = test::tensor_from({1, 3}, {INFINITY, 0, 0});
  expect_error([&] { attention_grid(infinite, 4, 4); }, {"attention_grid", "inf"});
  EXPECT_THROW(affine_grid(tape.input(zeros({2, 3})), 4, 4), ShapeError);
}

}  // namespace
}  // namespace stn
