// grid_sample: gradchecks, the fast kernel against the scalar reference, analytic warps,
// the exact sub-gradients at kinks, non-finite grids, gradient plumbing and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/kernels/sampler.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/spatial.h"
#include "test_util.h"

namespace stn {
namespace {

using test::max_abs_difference;
using test::random_tensor;

float to_normalised(float pixel, std::size_t size, bool align_corners) {
  return align_corners ? pixel * 2.0f / static_cast<float>(size - 1) - 1.0f
                       : (2.0f * pixel + 1.0f) / static_cast<float>(size) - 1.0f;
}

// A random grid (N, H', W', 2) whose samples sit at pixel coordinates k + f with f in
// [0.2, 0.8]: away from the integer kinks, so finite differences are meaningful. With
// `inside_only` false some samples hang over the edge (zeros padding) or lie beyond it.
Tensor grid_between_pixels(std::size_t batch, std::size_t output_height, std::size_t output_width,
                           std::size_t height, std::size_t width, bool align_corners,
                           bool inside_only, Generator& generator) {
  Tensor grid = empty({batch, output_height, output_width, 2});
  for (std::size_t i = 0; i < grid.size(); i += 2) {
    const std::size_t sizes[2] = {width, height};
    for (int axis = 0; axis < 2; ++axis) {
      const std::size_t size = sizes[axis];
      const float low = inside_only ? 0.0f : -2.0f;
      const float high =
          inside_only ? static_cast<float>(size) - 1.0f : static_cast<float>(size) + 1.0f;
      float pixel = std::floor(generator.uniform(low, high)) + generator.uniform(0.2f, 0.8f);
      if (inside_only && pixel > static_cast<float>(size) - 1.0f) pixel = 0.5f;
      if (size == 1) pixel = inside_only ? 0.0f : generator.uniform(-0.8f, -0.2f);
      grid.data()[i + axis] = to_normalised(pixel, size, align_corners);
    }
  }
  return grid;
}

struct SamplerCase {
  const char* name;
  GridSampleOptions options;
  Shape input;  // N, C, H, W
  std::size_t output_height, output_width;
  bool inside_only;  // border padding: keep away from the clamp's kink at the edge
};

GridSampleOptions make_options(PaddingMode padding, bool align_corners,
                               SampleMode mode = SampleMode::bilinear) {
  GridSampleOptions options;
  options.mode = mode;
  options.padding = padding;
  options.align_corners = align_corners;
  return options;
}

void PrintTo(const SamplerCase& c, std::ostream* os) { *os << c.name; }

class SamplerGradcheck : public ::testing::TestWithParam<SamplerCase> {};

TEST_P(SamplerGradcheck, InputAndGridMatchFiniteDifferences) {
  const SamplerCase& c = GetParam();
  Generator generator(7);
  Tensor input = random_tensor(c.input, generator);
  Tensor grid = grid_between_pixels(c.input[0], c.output_height, c.output_width, c.input[2],
                                    c.input[3], c.options.align_corners, c.inside_only, generator);
  auto result = gradcheck(
      [&](const std::vector<Var>& v) { return grid_sample(v[0], v[1], c.options); }, {input, grid});
  EXPECT_TRUE(result.ok) << c.name << ": " << result.message;
}

// name, options, input (N, C, H, W), H', W', inside only
INSTANTIATE_TEST_SUITE_P(
    Spatial, SamplerGradcheck,
    ::testing::Values(
        SamplerCase{"zeros centres down", make_options(PaddingMode::zeros, false),
                    {2, 2, 7, 6}, 4, 3, false},
        SamplerCase{"zeros corners up", make_options(PaddingMode::zeros, true),
                    {1, 3, 4, 5}, 6, 7, false},
        SamplerCase{"border centres", make_options(PaddingMode::border, false),
                    {2, 1, 5, 5}, 5, 5, true},
        SamplerCase{"border corners", make_options(PaddingMode::border, true),
                    {1, 2, 6, 4}, 3, 5, true},
        SamplerCase{"one-row input", make_options(PaddingMode::zeros, false),
                    {1, 2, 1, 6}, 2, 3, false}),
    [](const ::testing::TestParamInfo<SamplerCase>& info) { return test::test_name(info.param.name); });

TEST(SpatialSampler, NearestGradcheckForInput) {
  Generator generator(8);
  Tensor input = random_tensor({1, 2, 5, 6}, generator);
  Tensor grid = grid_between_pixels(1, 4, 4, 5, 6, false, false, generator);
  GradcheckOptions check;
  check.requires_grad = {true, false};
  auto result = gradcheck(
      [&](const std::vector<Var>& v) {
        return grid_sample(v[0], v[1],
                           make_options(PaddingMode::zeros, false, SampleMode::nearest));
      },
      {input, grid}, check);
  EXPECT_TRUE(result.ok) << result.message;
}

// The fast kernel (neighbour tables, blocks, OpenMP) and the scalar reference run the same
// arithmetic in the same order, so they must agree exactly, on every kind of sample.
TEST(SpatialSampler, FastPathEqualsScalarReference) {
  Generator generator(9);
  const kernels::SamplerGeometry geometry{3, 3, 7, 9, 23, 17};  // 391 pixels: two blocks
  const std::size_t pixels = geometry.output_height * geometry.output_width;
  Tensor input = random_tensor({3, 3, 7, 9}, generator);
  Tensor grid = random_tensor({3, 23, 17, 2}, generator, -1.4f, 1.4f);
  const float specials[] = {NAN, INFINITY, -INFINITY, 1e30f, -3e9f, -1.0f, 1.0f, 0.0f};
  for (std::size_t i = 0; i < 40; ++i) grid.data()[generator.below(grid.size())] = specials[i % 8];
  for (std::size_t i = 0; i < 40; ++i)  // exactly on integer pixel coordinates
    grid.data()[generator.below(grid.size())] = to_normalised(static_cast<float>(i % 7), 7, true);
  Tensor grad_output = random_tensor({3, 3, 23, 17}, generator);
  for (auto mode : {SampleMode::bilinear, SampleMode::nearest})
    for (auto padding : {PaddingMode::zeros, PaddingMode::border})
      for (bool align_corners : {false, true}) {
        const GridSampleOptions options = make_options(padding, align_corners, mode);
        SCOPED_TRACE(std::string(mode == SampleMode::nearest ? "nearest " : "bilinear ") +
                     (padding == PaddingMode::border ? "border " : "zeros ") +
                     (align_corners ? "corners" : "centres"));
        Tensor fast = zeros({3, 3, 23, 17}), reference = zeros({3, 3, 23, 17});
        kernels::grid_sample_forward(geometry, options, input.data(), grid.data(), fast.data());
        kernels::grid_sample_forward_reference(geometry, options, input.data(), grid.data(),
                                               reference.data());
        EXPECT_EQ(max_abs_difference(fast, reference), 0.0f);
        Tensor fast_input = zeros({3, 3, 7, 9}), reference_input = zeros({3, 3, 7, 9});
        Tensor fast_grid = zeros({3, 23, 17, 2}), reference_grid = zeros({3, 23, 17, 2});
        kernels::grid_sample_backward(geometry, options, input.data(), grid.data(),
                                      grad_output.data(), fast_input.data(), fast_grid.data());
        kernels::grid_sample_backward_reference(geometry, options, input.data(), grid.data(),
                                                grad_output.data(), reference_input.data(),
                                                reference_grid.data());
        EXPECT_EQ(max_abs_difference(fast_input, reference_input), 0.0f);
        EXPECT_EQ(max_abs_difference(fast_grid, reference_grid), 0.0f);
        for (const Tensor* t : {&fast, &fast_input, &fast_grid})
          for (std::size_t i = 0; i < t->size(); ++i)
            ASSERT_TRUE(std::isfinite(t->data()[i])) << "element " << i << " of " << pixels;
      }
}

TEST(SpatialSampler, IdentityReturnsTheInput) {
  Generator generator(10);
  Tensor image = random_tensor({2, 3, 7, 10}, generator);
  for (bool align_corners : {false, true})
    for (auto padding : {PaddingMode::zeros, PaddingMode::border}) {
      Tensor theta = zeros({2, 2, 3});
      for (std::size_t n = 0; n < 2; ++n) theta(n, 0, 0) = theta(n, 1, 1) = 1.0f;
      Tensor warped = grid_sample(image, affine_grid(theta, 7, 10, align_corners),
                                  make_options(padding, align_corners));
      EXPECT_LE(max_abs_difference(warped, image), 1e-6f) << "align_corners " << align_corners;
    }
}

TEST(SpatialSampler, OnePixelTranslationShiftsByOnePixel) {
  Generator generator(11);
  const std::size_t H = 6, W = 8;
  Tensor image = random_tensor({1, 1, H, W}, generator);
  for (bool align_corners : {false, true}) {
    // x_s = x_t + one pixel: V[i][j] = U[i][j + 1], and zeros past the right edge.
    const float one_pixel = 2.0f / static_cast<float>(align_corners ? W - 1 : W);
    Tensor theta = test::tensor_from({1, 2, 3}, {1, 0, one_pixel, 0, 1, 0});
    Tensor warped = grid_sample(image, affine_grid(theta, H, W, align_corners),
                                make_options(PaddingMode::zeros, align_corners));
    for (std::size_t i = 0; i < H; ++i)
      for (std::size_t j = 0; j < W; ++j) {
        const float expected = j + 1 < W ? image(0, 0, i, j + 1) : 0.0f;
        EXPECT_NEAR(warped(0, 0, i, j), expected, 1e-5f) << i << ", " << j;
      }
  }
}

TEST(SpatialSampler, QuarterTurnMatchesRotatedArray) {
  Generator generator(12);
  const std::size_t S = 7;
  Tensor image = random_tensor({1, 2, S, S}, generator);
  for (bool align_corners : {false, true}) {
    // (x_s, y_s) = (-y_t, x_t): V[c][i][j] = U[c][j][S - 1 - i].
    Tensor theta = test::tensor_from({1, 2, 3}, {0, -1, 0, 1, 0, 0});
    Tensor rotated = grid_sample(image, affine_grid(theta, S, S, align_corners),
                                 make_options(PaddingMode::zeros, align_corners));
    for (std::size_t c = 0; c < 2; ++c)
      for (std::size_t i = 0; i < S; ++i)
        for (std::size_t j = 0; j < S; ++j)
          EXPECT_NEAR(rotated(0, c, i, j), image(0, c, j, S - 1 - i), 1e-5f);
  }
}

// On an integer coordinate the grid gradient is the right-sided difference (neighbours
// floor(x) and floor(x) + 1), never 0; it must equal the one-sided finite difference. The
// sizes make the pixel coordinates exact in float: (2k + 1) / 8 and (2k + 1) / 4 without
// aligned corners, k / 4 with them. One exception, PyTorch's: with border padding the
// first pixel is also the clamp's kink, where the clamp's derivative is 0 (the left-sided
// difference of the clamped sample).
TEST(SpatialSampler, SubgradientOnIntegerCoordinatesIsTheRightDifference) {
  Generator generator(15);
  for (bool align_corners : {false, true})
    for (auto padding : {PaddingMode::zeros, PaddingMode::border}) {
      const std::size_t H = align_corners ? 5 : 4, W = align_corners ? 9 : 8;
      Tensor image = empty({1, 1, H, W});
      for (std::size_t i = 0; i < image.size(); ++i)
        image.data()[i] = static_cast<float>(generator.below(20));
      const GridSampleOptions options = make_options(padding, align_corners);
      for (std::size_t column = 0; column + 1 < W; column += 2)
        for (std::size_t row = 0; row + 1 < H; ++row) {
          const float x = to_normalised(static_cast<float>(column), W, align_corners);
          const float y = to_normalised(static_cast<float>(row), H, align_corners);
          Tape tape;
          Var grid = tape.input(test::tensor_from({1, 1, 1, 2}, {x, y}), true);
          Var value = grid_sample(tape.input(image), grid, options);
          tape.backward(value, full({1, 1, 1, 1}, 1.0f));
          const float analytic_x = grid.grad().data()[0], analytic_y = grid.grad().data()[1];
          auto sample = [&](float gx, float gy) {
            return grid_sample(image, test::tensor_from({1, 1, 1, 2}, {gx, gy}), options).data()[0];
          };
          const float step = 1e-3f;
          const float right_x = (sample(x + step, y) - sample(x, y)) / step;
          const float right_y = (sample(x, y + step) - sample(x, y)) / step;
          const bool border = padding == PaddingMode::border;
          const float scale_x =
              border && column == 0 ? 0.0f : (align_corners ? W - 1.0f : W) / 2.0f;
          const float scale_y = border && row == 0 ? 0.0f : (align_corners ? H - 1.0f : H) / 2.0f;
          EXPECT_EQ(analytic_x,
                    (image(0, 0, row, column + 1) - image(0, 0, row, column)) * scale_x);
          EXPECT_EQ(analytic_y,
                    (image(0, 0, row + 1, column) - image(0, 0, row, column)) * scale_y);
          if (scale_x != 0.0f)
            EXPECT_NEAR(analytic_x, right_x, 1e-2f * std::max(1.0f, std::abs(right_x)));
          if (scale_y != 0.0f)
            EXPECT_NEAR(analytic_y, right_y, 1e-2f * std::max(1.0f, std::abs(right_y)));
        }
    }
}

TEST(SpatialSampler, SamplesPartlyOutsideStillPassAGridGradient) {
  Tensor image = full({1, 1, 4, 4}, 1.0f);
  // Half a pixel left of the first column's centre: half the west neighbour is padding.
  const float x = to_normalised(-0.5f, 4, false), y = to_normalised(1.5f, 4, false);
  Tape tape;
  Var grid = tape.input(test::tensor_from({1, 1, 1, 2}, {x, y}), true);
  Var value = grid_sample(tape.input(image), grid, make_options(PaddingMode::zeros, false));
  EXPECT_FLOAT_EQ(value.value().data()[0], 0.5f);
  tape.backward(value, full({1, 1, 1, 1}, 1.0f));
  EXPECT_FLOAT_EQ(grid.grad().data()[0], 2.0f);  // (1 - 0) per pixel, times W / 2
  EXPECT_FLOAT_EQ(grid.grad().data()[1], 0.0f);

  // Border padding clamps: outside, the clamp's derivative is 0.
  Tape border_tape;
  Var border_grid = border_tape.input(test::tensor_from({1, 1, 1, 2}, {-1.3f, y}), true);
  Generator generator(3);
  Var border_value = grid_sample(border_tape.input(random_tensor({1, 1, 4, 4}, generator)),
                                 border_grid, make_options(PaddingMode::border, false));
  border_tape.backward(border_value, full({1, 1, 1, 1}, 1.0f));
  EXPECT_EQ(border_grid.grad().data()[0], 0.0f);
}

TEST(SpatialSampler, NonFiniteAndHugeCoordinatesAreOutside) {
  Generator generator(13);
  Tensor image = random_tensor({1, 2, 5, 5}, generator);
  Tensor grid =
      test::tensor_from({1, 2, 4, 2}, {NAN, 0.0f, 0.0f, NAN, INFINITY, 0.0f, 0.0f, -INFINITY, 1e30f,
                                       0.0f, -1e30f, 0.5f, 4e9f, 4e9f, NAN, NAN});
  for (auto padding : {PaddingMode::zeros, PaddingMode::border})
    for (auto mode : {SampleMode::bilinear, SampleMode::nearest}) {
      Tape tape;
      Var u = tape.input(image, true);
      Var g = tape.input(grid, true);
      Var v = grid_sample(u, g, make_options(padding, false, mode));
      tape.backward(v, full(v.shape(), 1.0f));
      for (const Tensor* t : {&v.value(), &u.grad(), &g.grad()})
        for (std::size_t i = 0; i < t->size(); ++i) EXPECT_TRUE(std::isfinite(t->data()[i]));
      if (padding == PaddingMode::zeros)
        for (std::size_t i = 0; i < v.numel(); ++i) EXPECT_EQ(v.value().data()[i], 0.0f);
    }
}

TEST(SpatialSampler, InputWithoutGradientIsSkippedAndSharedInputsAccumulate) {
  Generator generator(14);
  Tensor image = random_tensor({2, 1, 6, 6}, generator);
  Tensor grid_a = grid_between_pixels(2, 4, 5, 6, 6, false, false, generator);
  Tensor grid_b = grid_between_pixels(2, 4, 5, 6, 6, true, false, generator);

  // A transformer on the input image: the image needs no gradient and gets none.
  Tape tape;
  Var u = tape.input(image);
  Var g = tape.input(grid_a, true);
  Var v = grid_sample(u, g);
  EXPECT_EQ(tape.entry(v.index()).saved_bytes, 0u);
  tape.backward(v, full(v.shape(), 1.0f));
  EXPECT_EQ(u.grad().size(), 0u);
  EXPECT_EQ(g.grad().size(), grid_a.size());

  // Two transformers on one input: its gradient is the sum of both.
  Tape shared;
  Var input = shared.input(image, true);
  Var both = grid_sample(input, shared.input(grid_a)) +
             grid_sample(input, shared.input(grid_b), make_options(PaddingMode::zeros, true));
  shared.backward(both, full(both.shape(), 1.0f));
  Tensor expected = zeros(shape_of(image));
  const kernels::SamplerGeometry geometry{2, 1, 6, 6, 4, 5};
  const Tensor ones = full({2, 1, 4, 5}, 1.0f);
  kernels::grid_sample_backward_reference(geometry, make_options(PaddingMode::zeros, false),
                                          image.data(), grid_a.data(), ones.data(), expected.data(),
                                          nullptr);
  kernels::grid_sample_backward_reference(geometry, make_options(PaddingMode::zeros, true),
                                          image.data(), grid_b.data(), ones.data(), expected.data(),
                                          nullptr);
  EXPECT_LE(max_abs_difference(input.grad(), expected), 1e-6f);
}

void expect_shape_error(const std::function<void()>& call, const std::vector<std::string>& words) {
  try {
    call();
    ADD_FAILURE() << "expected ShapeError";
  } catch (const ShapeError& error) {
    for (const std::string& word : words)
      EXPECT_NE(std::string(error.what()).find(word), std::string::npos) << error.what();
  }
}

TEST(SpatialSampler, BadShapesNameTheOpAndShapes) {
  Tape tape;
  Var input = tape.input(zeros({2, 1, 4, 4}));
  expect_shape_error(
      [&] {
        grid_sample(input, tape.input(zeros({3, 4, 4, 2})));
      },
      {"grid_sample", "[2, 1, 4, 4]", "[3, 4, 4, 2]", "batch"});
  expect_shape_error(
      [&] {
        grid_sample(input, tape.input(zeros({2, 4, 4, 3})));
      },
      {"grid_sample", "[2, 4, 4, 3]"});
  expect_shape_error(
      [&] {
        grid_sample(tape.input(zeros({2, 4, 4})), tape.input(zeros({2, 4, 4, 2})));
      },
      {"grid_sample", "[2, 4, 4]"});
  expect_shape_error(
      [&] {
        grid_sample(input, tape.input(zeros({2, 0, 4, 2})));
      },
      {"grid_sample", "[2, 0, 4, 2]"});
  expect_shape_error(
      [&] {
        grid_sample(zeros({1, 1, 0, 4}), zeros({1, 2, 2, 2}));
      },
      {"grid_sample", "[1, 1, 0, 4]"});
}

}  // namespace
}  // namespace stn
