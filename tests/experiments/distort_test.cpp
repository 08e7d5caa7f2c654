#include "stn/experiments/distort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <utility>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/kernels/grids.h"
#include "stn/framework/ops/spatial_grid.h"
#include "stn/framework/ops/spatial_sample.h"
#include "test_util.h"

namespace stn {
namespace {

constexpr std::size_t kSide = kDigitSide;
constexpr std::size_t kDraws = 10000;

// Sample statistics of a set of draws.
struct Moments {
  double minimum = INFINITY, maximum = -INFINITY, mean = 0, stddev = 0;
};

Moments moments(const std::vector<double>& values) {
  Moments m;
  for (double v : values) m.minimum = std::min(m.minimum, v), m.maximum = std::max(m.maximum, v), m.mean += v;
  m.mean /= values.size();
  for (double v : values) m.stddev += (v - m.mean) * (v - m.mean);
  m.stddev = std::sqrt(m.stddev / (values.size() - 1));
  return m;
}

// Tolerances are five standard errors: the mean of n draws has standard error sigma / sqrt(n),
// the sample standard deviation about sigma sqrt((kurtosis - 1) / (4 n)) (kurtosis 1.8 for a
// uniform, 3 for a normal). A correct sampler misses by five standard errors with
// probability below 1e-6; a wrong range or a wrong spread misses by far more. The bounds of
// a uniform are checked both ways: inside the range, and within 0.2% of the width of each
// end (n = 10^4 leaves a gap that large with probability e^-20).
void expect_uniform(const std::vector<double>& values, double low, double high, const char* what) {
  const Moments m = moments(values);
  const double n = static_cast<double>(values.size());
  const double sigma = (high - low) / std::sqrt(12.0);
  EXPECT_GE(m.minimum, low) << what;
  EXPECT_LE(m.maximum, high) << what;
  EXPECT_LT(m.minimum, low + 0.002 * (high - low)) << what;
  EXPECT_GT(m.maximum, high - 0.002 * (high - low)) << what;
  EXPECT_NEAR(m.mean, (low + high) / 2, 5 * sigma / std::sqrt(n)) << what;
  EXPECT_NEAR(m.stddev, sigma, 5 * sigma * std::sqrt(0.8 / (4 * n))) << what;
}

void expect_normal(const std::vector<double>& values, double sigma, double stddev_tolerance,
                   const char* what) {
  const Moments m = moments(values);
  const double n = static_cast<double>(values.size());
  EXPECT_NEAR(m.mean, 0.0, 5 * sigma / std::sqrt(n)) << what;
  EXPECT_NEAR(m.stddev, sigma, stddev_tolerance) << what;
}

// A [count, 1, 28, 28] batch of noise in [0, 1].
Tensor random_digits(std::size_t count, std::uint64_t seed) {
  Generator generator(seed);
  return test::random_tensor({count, 1, kSide, kSide}, generator, 0.0f, 1.0f);
}

// One digit: a Gaussian blob (stddev 2 px) centred blob_x, blob_y source pixels off the centre.
Tensor blob_digit(double blob_x, double blob_y) {
  Tensor digit = empty({1, 1, kSide, kSide});
  for (std::size_t y = 0; y < kSide; ++y)
    for (std::size_t x = 0; x < kSide; ++x) {
      const double dx = x - 13.5 - blob_x, dy = y - 13.5 - blob_y;
      digit.data()[y * kSide + x] = static_cast<float>(std::exp(-(dx * dx + dy * dy) / 8.0));
    }
  return digit;
}

// The intensity centroid of a square single-channel image, in pixel coordinates.
std::pair<double, double> centroid(const float* pixels, std::size_t side) {
  double total = 0, x_sum = 0, y_sum = 0;
  for (std::size_t y = 0; y < side; ++y)
    for (std::size_t x = 0; x < side; ++x) {
      total += pixels[y * side + x];
      x_sum += pixels[y * side + x] * x;
      y_sum += pixels[y * side + x] * y;
    }
  return {x_sum / total, y_sum / total};
}

TEST(DistortDrawTest, RotationAngleIsUniformWithinNinetyDegrees) {
  Generator generator(1);
  std::vector<double> angles;
  for (std::size_t i = 0; i < kDraws; ++i) angles.push_back(draw_rotation(generator).angle_degrees);
  expect_uniform(angles, -90.0, 90.0, "angle");
}

TEST(DistortDrawTest, RtsParametersAreUniformAndKeepTheDigitOnTheCanvas) {
  Generator generator(2);
  std::vector<double> angles, scales, relative_offsets;
  for (std::size_t i = 0; i < kDraws; ++i) {
    const RtsParameters p = draw_rts(generator);
    angles.push_back(p.angle_degrees);
    scales.push_back(p.scale);
    const double limit = 21.0 - 14.0 * p.scale;
    ASSERT_LE(std::abs(p.offset_x), limit + 1e-5);
    ASSERT_LE(std::abs(p.offset_y), limit + 1e-5);
    relative_offsets.push_back(p.offset_x / limit);
    relative_offsets.push_back(p.offset_y / limit);
  }
  expect_uniform(angles, -45.0, 45.0, "angle");
  expect_uniform(scales, 0.7, 1.2, "scale");
  expect_uniform(relative_offsets, -1.0, 1.0, "offset / limit");
}

TEST(DistortDrawTest, ProjectiveScaleIsUniformAndCornerNoiseNormal) {
  Generator generator(3);
  std::vector<double> scales, noise;
  for (std::size_t i = 0; i < kDraws; ++i) {
    const ProjectiveParameters p = draw_projective(generator);
    scales.push_back(p.scale);
    noise.insert(noise.end(), p.corner_noise.begin(), p.corner_noise.end());
  }
  expect_uniform(scales, 0.75, 1.0, "scale");
  // 8 x 10^4 values: five standard errors of the spread are 5 * 5 sqrt(2 / 320000) = 0.0625 px.
  // Folded sampling quadrilaterals are rare (their sides are 2 / scale >= 2 units long), so
  // redrawing them barely lowers the spread.
  expect_normal(noise, 5.0, 0.01 + 0.0625, "corner noise");
}

// The smallest and largest local magnification of the map from the source digit to the
// canvas at the digit's centre: the singular values of the Jacobian of H^-1 at the source
// point (0, 0), for the canvas-to-source homography h (h33 = 1).
std::pair<double, double> magnification_at_centre(const float* h) {
  // The canvas point t with H(t) = 0 solves h0 x + h1 y + h2 = 0, h3 x + h4 y + h5 = 0.
  const double det = static_cast<double>(h[0]) * h[4] - static_cast<double>(h[1]) * h[3];
  const double x = (-static_cast<double>(h[2]) * h[4] + static_cast<double>(h[1]) * h[5]) / det;
  const double y = (-static_cast<double>(h[0]) * h[5] + static_cast<double>(h[3]) * h[2]) / det;
  const double w = h[6] * x + h[7] * y + 1.0;
  // There the numerators of u / w and v / w vanish, so J_H = [[h0, h1], [h3, h4]] / w.
  const double a = h[0] / w, b = h[1] / w, c = h[3] / w, d = h[4] / w;
  const double p = a * a + b * b + c * c + d * d, q = std::abs(a * d - b * c);
  const double root = std::sqrt(std::max(0.0, p * p - 4 * q * q));
  const double largest = std::sqrt((p + root) / 2), smallest = std::sqrt(std::max(0.0, (p - root) / 2));
  // J_{H^-1} = J_H^-1: its singular values are the reciprocals.
  return {1.0 / largest, 1.0 / std::max(smallest, 1e-12)};
}

TEST(DistortDrawTest, ProjectiveRarelySquashesTheDigit) {
  // PAPER.md: moving where the digit lands by N(0, 5 px) squashes it by more than 2x in some
  // direction in about a fifth of the draws; moving where the canvas reads from (as E does)
  // in about 1%. The scale alone shrinks by at most 1 / 0.75.
  Generator generator(31);
  std::vector<ProjectiveParameters> draws;
  for (int i = 0; i < 20000; ++i) draws.push_back(draw_projective(generator));
  const Tensor theta = projective_theta(draws);
  std::size_t squashed_2 = 0, squashed_29 = 0;
  for (std::size_t n = 0; n < draws.size(); ++n) {
    const double smallest = magnification_at_centre(theta.data() + 8 * n).first;
    squashed_2 += smallest < 1 / 2.0;
    squashed_29 += smallest < 1 / 2.9;
  }
  EXPECT_LT(squashed_2, draws.size() * 3 / 100);
  EXPECT_LT(squashed_29, draws.size() * 1 / 100);
  EXPECT_GT(squashed_2, 0u);
}

TEST(DistortDrawTest, ElasticScaleIsUniformAndControlNoiseNormal) {
  Generator generator(4);
  std::vector<double> scales, noise;
  for (std::size_t i = 0; i < kDraws; ++i) {
    const ElasticParameters p = draw_elastic(generator);
    scales.push_back(p.scale);
    noise.insert(noise.end(), p.control_noise.begin(), p.control_noise.end());
  }
  expect_uniform(scales, 0.75, 1.0, "scale");
  // 3.2 x 10^5 values: 5 * 1.5 sqrt(2 / 1.28e6) = 0.0094 px.
  expect_normal(noise, 1.5, 0.0094, "control noise");
}

TEST(DistortDrawTest, ClutterPositionsCoverTheirRangesAndAvoidTheDigitItself) {
  Generator generator(5);
  std::vector<double> digit_positions, crops, pastes, sources;
  for (std::size_t i = 0; i < kDraws; ++i) {
    const std::size_t digit_index = i % 7;
    const ClutterParameters p = draw_clutter(generator, 7, digit_index);
    digit_positions.push_back(p.digit_x);
    digit_positions.push_back(p.digit_y);
    for (const ClutterPatch& patch : p.patches) {
      ASSERT_NE(patch.source_index, digit_index);
      ASSERT_LT(patch.source_index, 7u);
      sources.push_back(patch.source_index);
      crops.push_back(patch.crop_x);
      crops.push_back(patch.crop_y);
      pastes.push_back(patch.paste_x);
      pastes.push_back(patch.paste_y);
    }
  }
  // Integers uniform on {0..m} have the continuous uniform's mean and a variance of
  // ((m + 1)^2 - 1) / 12, i.e. that of U[-0.5, m + 0.5] less 1/12; the bounds are exact.
  const auto expect_integers = [](const std::vector<double>& values, int last, const char* what) {
    const Moments m = moments(values);
    EXPECT_EQ(m.minimum, 0) << what;
    EXPECT_EQ(m.maximum, last) << what;
    const double sigma = std::sqrt(((last + 1.0) * (last + 1.0) - 1.0) / 12.0);
    EXPECT_NEAR(m.mean, last / 2.0, 5 * sigma / std::sqrt(values.size())) << what;
    EXPECT_NEAR(m.stddev, sigma, 5 * sigma * std::sqrt(0.8 / (4.0 * values.size()))) << what;
  };
  expect_integers(digit_positions, 32, "digit position");
  expect_integers(crops, 22, "crop position");
  expect_integers(pastes, 54, "paste position");
  EXPECT_EQ(moments(sources).minimum, 0);
  EXPECT_EQ(moments(sources).maximum, 6);
  EXPECT_THROW(draw_clutter(generator, 0, 0), std::invalid_argument);
  EXPECT_EQ(draw_clutter(generator, 1, 0).patches[0].source_index, 0u);
}

TEST(DistortDrawTest, AdditionDrawsASecondDigitAndTwoPlacements) {
  Generator generator(6);
  std::vector<double> seconds;
  for (std::size_t i = 0; i < kDraws; ++i) {
    const AdditionParameters p = draw_addition(generator, 10);
    ASSERT_LT(p.second_index, 10u);
    seconds.push_back(p.second_index);
    ASSERT_NE(p.first.angle_degrees, p.second.angle_degrees);
  }
  EXPECT_EQ(moments(seconds).minimum, 0);
  EXPECT_EQ(moments(seconds).maximum, 9);
  EXPECT_NEAR(moments(seconds).mean, 4.5, 5 * std::sqrt(99.0 / 12.0 / kDraws));
}

TEST(DistortWarpTest, RotationByZeroIsTheIdentity) {
  const Tensor digits = random_digits(3, 10);
  const std::vector<RotationParameters> none(3);
  EXPECT_LT(test::max_abs_difference(warp_rotation(digits, none), digits), 1e-5f);
}

TEST(DistortWarpTest, RotationByNinetyDegreesIsAQuarterTurnCounterclockwise) {
  const Tensor digit = random_digits(1, 11);
  const std::vector<RotationParameters> quarter{{90.0f}};
  const Tensor turned = warp_rotation(digit, quarter);
  for (std::size_t i = 0; i < kSide; ++i)
    for (std::size_t j = 0; j < kSide; ++j)
      ASSERT_NEAR(turned.data()[i * kSide + j], digit.data()[j * kSide + (kSide - 1 - i)], 1e-4f)
          << "row " << i << " column " << j;
}

TEST(DistortWarpTest, RotationTurnsAnOffCentreBlobAboutTheCentre) {
  const Tensor digit = blob_digit(6.0, 0.0);
  for (float angle : {-80.0f, -30.0f, 45.0f, 70.0f}) {
    const std::vector<RotationParameters> p{{angle}};
    const Tensor turned = warp_rotation(digit, p);
    const auto [x, y] = centroid(turned.data(), kSide);
    const double radians = angle * std::numbers::pi / 180.0;
    EXPECT_NEAR(x, 13.5 + 6.0 * std::cos(radians), 0.1) << angle;
    EXPECT_NEAR(y, 13.5 - 6.0 * std::sin(radians), 0.1) << angle;
  }
}

TEST(DistortWarpTest, RtsWithUnitScaleAndNoMotionPlacesTheDigitAtOffsetSeven) {
  const Tensor digits = random_digits(2, 12);
  const std::vector<RtsParameters> centred(2);
  const Tensor placed = warp_rts(digits, centred);
  ASSERT_EQ(shape_of(placed), (Shape{2, 1, 42, 42}));
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t y = 0; y < 42; ++y)
      for (std::size_t x = 0; x < 42; ++x) {
        const bool inside = y >= 7 && y < 35 && x >= 7 && x < 35;
        const float expected = inside ? digits.data()[n * kSide * kSide + (y - 7) * kSide + (x - 7)] : 0.0f;
        ASSERT_NEAR(placed.data()[(n * 42 + y) * 42 + x], expected, 1e-5f) << n << " " << y << " " << x;
      }
}

TEST(DistortWarpTest, RtsIntegerOffsetsShiftRightAndDown) {
  const Tensor digit = random_digits(1, 13);
  const std::vector<RtsParameters> shifted{{0.0f, 1.0f, 3.0f, -5.0f}};
  const Tensor placed = warp_rts(digit, shifted);
  for (std::size_t y = 0; y < kSide; ++y)
    for (std::size_t x = 0; x < kSide; ++x)
      ASSERT_NEAR(placed.data()[(y + 2) * 42 + (x + 10)], digit.data()[y * kSide + x], 1e-5f);
}

TEST(DistortWarpTest, RtsMovesTurnsAndScalesAnOffCentreBlob) {
  const Tensor digit = blob_digit(6.0, 0.0);
  Generator generator(14);
  for (int trial = 0; trial < 20; ++trial) {
    const RtsParameters p = draw_rts(generator);
    const std::vector<RtsParameters> one{p};
    const Tensor placed = warp_rts(digit, one);
    const auto [x, y] = centroid(placed.data(), 42);
    const double radians = p.angle_degrees * std::numbers::pi / 180.0;
    EXPECT_NEAR(x, 20.5 + p.offset_x + 6.0 * p.scale * std::cos(radians), 0.1) << trial;
    EXPECT_NEAR(y, 20.5 + p.offset_y - 6.0 * p.scale * std::sin(radians), 0.1) << trial;
  }
}

TEST(DistortWarpTest, ProjectiveWithoutNoiseAtUnitScaleIsTheIdentity) {
  const std::vector<ProjectiveParameters> plain(2);
  const Tensor theta = projective_theta(plain);
  const float identity[8] = {1, 0, 0, 0, 1, 0, 0, 0};
  for (std::size_t k = 0; k < 16; ++k) EXPECT_NEAR(theta.data()[k], identity[k % 8], 1e-7f) << k;
  const Tensor digits = random_digits(2, 15);
  EXPECT_LT(test::max_abs_difference(warp_projective(digits, plain), digits), 1e-5f);
}

TEST(DistortWarpTest, ProjectiveWithoutNoiseIsAPlainScaling) {
  const Tensor digits = random_digits(1, 16);
  ProjectiveParameters p;
  p.scale = 0.8f;
  const std::vector<ProjectiveParameters> shrink{p};
  const Tensor theta = test::tensor_from({1, 2, 3}, {1.25f, 0, 0, 0, 1.25f, 0});
  EXPECT_LT(test::max_abs_difference(warp_projective(digits, shrink),
                                     grid_sample(digits, affine_grid(theta, kSide, kSide))),
            1e-5f);
}

TEST(DistortWarpTest, ProjectiveThetaTakesTheCanvasCornersToTheSamplingCorners) {
  Generator generator(17);
  std::vector<ProjectiveParameters> draws;
  for (int i = 0; i < 50; ++i) draws.push_back(draw_projective(generator));
  const Tensor theta = projective_theta(draws);
  const double units[4][2] = {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}};
  for (std::size_t n = 0; n < draws.size(); ++n) {
    const float* h = theta.data() + 8 * n;
    for (int k = 0; k < 4; ++k) {
      const double x = units[k][0], y = units[k][1];
      const double w = h[6] * x + h[7] * y + 1;
      const double u = x / draws[n].scale + draws[n].corner_noise[2 * k] / 14.0;
      const double v = y / draws[n].scale + draws[n].corner_noise[2 * k + 1] / 14.0;
      EXPECT_NEAR((h[0] * x + h[1] * y + h[2]) / w, u, 1e-5) << n << " " << k;
      EXPECT_NEAR((h[3] * x + h[4] * y + h[5]) / w, v, 1e-5) << n << " " << k;
    }
  }
}

TEST(DistortWarpTest, ProjectiveShowsTheSourceExactlyWhereTheCanvasReadsInsideIt) {
  // A white source: a canvas pixel whose sampling point H(t) lies inside the outermost source
  // pixel centres reads four white pixels (1); one whose point lies a whole pixel beyond them
  // reads only the zero padding (exactly 0). The first draw squeezes the top edge: the
  // canvas's top corners read from (+-0.1, 0).
  Generator generator(25);
  std::vector<ProjectiveParameters> draws(1);
  draws[0].corner_noise = {12.6f, 14.0f, -12.6f, 14.0f, 0, 0, 0, 0};
  for (int i = 0; i < 30; ++i) draws.push_back(draw_projective(generator));
  const Tensor warped = warp_projective(full({draws.size(), 1, kSide, kSide}, 1.0f), draws);
  const Tensor theta = projective_theta(draws);
  const std::vector<float> centres = kernels::normalised_pixel_centres(kSide, false);
  const double inner = 1.0 - 1.0 / kSide - 1e-4, outer = 1.0 + 1.0 / kSide + 1e-4;
  std::size_t inside = 0, outside = 0;
  for (std::size_t n = 0; n < draws.size(); ++n) {
    const float* h = theta.data() + 8 * n;
    for (std::size_t i = 0; i < kSide; ++i)
      for (std::size_t j = 0; j < kSide; ++j) {
        const double x = centres[j], y = centres[i];
        const double w = h[6] * x + h[7] * y + 1;
        ASSERT_GT(w, 0.0) << "the canvas must not reach the vanishing line: " << n;
        const double u = (h[0] * x + h[1] * y + h[2]) / w, v = (h[3] * x + h[4] * y + h[5]) / w;
        const float pixel = warped.data()[(n * kSide + i) * kSide + j];
        if (std::abs(u) < inner && std::abs(v) < inner) {
          ASSERT_NEAR(pixel, 1.0f, 1e-5f) << n << " " << i << " " << j;
          ++inside;
        } else if (std::abs(u) > outer || std::abs(v) > outer) {
          ASSERT_EQ(pixel, 0.0f) << n << " " << i << " " << j;
          ++outside;
        }
      }
  }
  EXPECT_GT(inside, 15000u);
  EXPECT_GT(outside, 500u);
}

TEST(DistortWarpTest, ElasticWithoutNoiseAtUnitScaleIsTheIdentity) {
  const Tensor digits = random_digits(2, 18);
  const std::vector<ElasticParameters> plain(2);
  EXPECT_LT(test::max_abs_difference(warp_elastic(digits, plain), digits), 1e-4f);
}

TEST(DistortWarpTest, ElasticWithoutNoiseIsAPlainScaling) {
  const Tensor digits = random_digits(1, 19);
  ElasticParameters p;
  p.scale = 0.8f;
  const std::vector<ElasticParameters> shrink{p};
  const Tensor theta = test::tensor_from({1, 2, 3}, {1.25f, 0, 0, 0, 1.25f, 0});
  EXPECT_LT(test::max_abs_difference(warp_elastic(digits, shrink),
                                     grid_sample(digits, affine_grid(theta, kSide, kSide))),
            1e-4f);
}

TEST(DistortWarpTest, ElasticNoiseMovesTheControlPoints) {
  ElasticParameters p;
  p.control_noise[2 * 5] = 3.0f;  // control point 5 (inner, upper left) moves 3 px right
  const std::vector<ElasticParameters> one{p};
  const Tensor theta = elastic_theta(one);
  const std::vector<float> control = kernels::tps_control_points(16);
  EXPECT_NEAR(theta.data()[10], control[10] + 3.0f / 14.0f, 1e-6f);
  EXPECT_NEAR(theta.data()[11], control[11], 1e-6f);
}

TEST(DistortWarpTest, ClutterCopiesTheDigitAndPatchesWithMax) {
  const Tensor digit = random_digits(1, 20);
  Tensor sources = zeros({2, 1, kSide, kSide});
  for (std::size_t i = 0; i < kSide * kSide; ++i) sources.data()[kSide * kSide + i] = i / 1000.0f;
  ClutterParameters p;
  p.digit_x = 30, p.digit_y = 4;
  for (ClutterPatch& patch : p.patches) patch = ClutterPatch{0, 0, 0, 0, 0};  // black: no trace
  p.patches[0] = ClutterPatch{1, 22, 3, 54, 50};
  p.patches[1] = ClutterPatch{1, 0, 0, 31, 5};  // on the digit: the brighter pixel wins
  const std::vector<ClutterParameters> one{p};
  const Tensor canvas = warp_clutter(digit, one, sources);
  ASSERT_EQ(shape_of(canvas), (Shape{1, 1, 60, 60}));
  for (std::size_t y = 0; y < 60; ++y)
    for (std::size_t x = 0; x < 60; ++x) {
      float expected = 0.0f;
      if (y >= 4 && y < 32 && x >= 30 && x < 58) expected = digit.data()[(y - 4) * kSide + x - 30];
      if (y >= 50 && y < 56 && x >= 54) expected = std::max(expected, ((y - 50 + 3) * kSide + x - 54 + 22) / 1000.0f);
      if (y >= 5 && y < 11 && x >= 31 && x < 37) expected = std::max(expected, ((y - 5) * kSide + x - 31) / 1000.0f);
      ASSERT_EQ(canvas.data()[y * 60 + x], expected) << y << " " << x;
    }
  p.patches[0].source_index = 2;
  const std::vector<ClutterParameters> bad{p};
  EXPECT_THROW(warp_clutter(digit, bad, sources), std::out_of_range);
}

TEST(DistortWarpTest, AdditionPutsEachRtsDigitInItsOwnChannel) {
  const Tensor first = random_digits(3, 21), second = random_digits(3, 22);
  Generator generator(23);
  std::vector<AdditionParameters> draws;
  std::vector<RtsParameters> firsts, seconds;
  for (int i = 0; i < 3; ++i) {
    draws.push_back(draw_addition(generator, 5));
    firsts.push_back(draws.back().first);
    seconds.push_back(draws.back().second);
  }
  const Tensor pairs = warp_addition(first, second, draws);
  ASSERT_EQ(shape_of(pairs), (Shape{3, 2, 42, 42}));
  const Tensor expected_first = warp_rts(first, firsts), expected_second = warp_rts(second, seconds);
  constexpr std::size_t plane = 42 * 42;
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t i = 0; i < plane; ++i) {
      ASSERT_EQ(pairs.data()[(2 * n) * plane + i], expected_first.data()[n * plane + i]);
      ASSERT_EQ(pairs.data()[(2 * n + 1) * plane + i], expected_second.data()[n * plane + i]);
    }
}

TEST(DistortWarpTest, WarpsStayInTheUnitRange) {
  const Tensor digits = full({64, 1, kSide, kSide}, 1.0f);
  Generator generator(24);
  std::vector<RotationParameters> rotations;
  std::vector<ProjectiveParameters> projections;
  std::vector<ElasticParameters> elastics;
  for (int i = 0; i < 64; ++i) {
    rotations.push_back(draw_rotation(generator));
    projections.push_back(draw_projective(generator));
    elastics.push_back(draw_elastic(generator));
  }
  for (const Tensor& warped : {warp_rotation(digits, rotations), warp_projective(digits, projections),
                               warp_elastic(digits, elastics)})
    for (float pixel : warped) ASSERT_TRUE(pixel >= 0.0f && pixel <= 1.0f) << pixel;
}

TEST(DistortWarpTest, WrongShapesAreRejected) {
  const std::vector<RotationParameters> two(2);
  EXPECT_THROW(warp_rotation(random_digits(3, 25), two), ShapeError);
  EXPECT_THROW(warp_rotation(zeros({2, 1, 27, 28}), two), ShapeError);
  EXPECT_THROW(warp_rotation(zeros({2, 3, 28, 28}), two), ShapeError);
  EXPECT_THROW(warp_rotation(zeros({0, 1, 28, 28}), std::vector<RotationParameters>{}), ShapeError);
  EXPECT_THROW(warp_clutter(zeros({1, 1, 28, 28}), std::vector<ClutterParameters>(1), zeros({1, 28, 28})),
               ShapeError);
}

}  // namespace
}  // namespace stn
