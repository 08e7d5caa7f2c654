#include "stn/experiments/distort.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/kernels/grids.h"
#include "stn/framework/ops/spatial_grid.h"
#include "stn/framework/ops/spatial_sample.h"

namespace stn {
namespace {

constexpr double kSourceHalfSide = kDigitSide / 2.0;  // source pixels per normalised unit
constexpr std::size_t kDigitPixels = kDigitSide * kDigitSide;

void check_digits(const char* op, const Tensor& digits, std::size_t parameter_count) {
  const Shape shape = shape_of(digits);
  if (shape.size() != 4 || shape[1] != 1 || shape[2] != kDigitSide || shape[3] != kDigitSide)
    throw_shape_error(op, "digits " + shape_string(shape) + " must be [B, 1, 28, 28]");
  if (shape[0] != parameter_count)
    throw_shape_error(op, "digits " + shape_string(shape) + " come with " +
                              std::to_string(parameter_count) + " parameter sets");
  if (shape[0] == 0) throw_shape_error(op, "digits " + shape_string(shape) + " are an empty batch");
}

Tensor sample_bilinear(const Tensor& digits, const Tensor& sampling_grid) {
  GridSampleOptions options;
  options.mode = SampleMode::bilinear;
  options.padding = PaddingMode::zeros;
  options.align_corners = false;
  Tensor warped = grid_sample(digits, sampling_grid, options);
  // The four bilinear weights sum to 1 only up to rounding; clamping keeps the documented
  // [0, 1] range exact (the test-set cache relies on it).
  for (float& pixel : warped) pixel = std::clamp(pixel, 0.0f, 1.0f);
  return warped;
}

// The digit, turned by angle_degrees, scaled by `scale` and centred (offset_x, offset_y)
// canvas pixels from the centre of a canvas_side canvas. Its inverse (what the grid needs)
// is p_source = Rot(-angle) (p_canvas - offset) / scale in pixels about the centres;
// dividing by the half sides gives normalised units.
void write_similarity_theta(double angle_degrees, double scale, double offset_x,
                            double offset_y, std::size_t canvas_side, float* theta) {
  const double angle = angle_degrees * std::numbers::pi / 180.0;
  const double cosine = std::cos(angle), sine = std::sin(angle);
  const double zoom = (canvas_side / 2.0) / (kSourceHalfSide * scale);
  const double shift = 1.0 / (kSourceHalfSide * scale);
  theta[0] = static_cast<float>(zoom * cosine);
  theta[1] = static_cast<float>(-zoom * sine);
  theta[2] = static_cast<float>(-shift * (cosine * offset_x - sine * offset_y));
  theta[3] = static_cast<float>(zoom * sine);
  theta[4] = static_cast<float>(zoom * cosine);
  theta[5] = static_cast<float>(-shift * (sine * offset_x + cosine * offset_y));
}

// The sampling corners of a P draw, normalised, in corner_noise's order (TL, TR, BL, BR):
// where the output canvas's corners read from in the source.
std::array<std::array<double, 2>, 4> projective_sampling_corners(const ProjectiveParameters& p) {
  static constexpr double kUnitCorners[4][2] = {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}};
  std::array<std::array<double, 2>, 4> corners{};
  for (int k = 0; k < 4; ++k)
    for (int axis = 0; axis < 2; ++axis)
      corners[k][axis] =
          kUnitCorners[k][axis] / static_cast<double>(p.scale) + p.corner_noise[2 * k + axis] / kSourceHalfSide;
  return corners;
}

bool strictly_convex(const std::array<std::array<double, 2>, 4>& corners) {
  // Walk the outline TL, TR, BR, BL: every turn must go the same way.
  static constexpr int kOutline[4] = {0, 1, 3, 2};
  int positive = 0, negative = 0;
  for (int k = 0; k < 4; ++k) {
    const auto& a = corners[kOutline[k]];
    const auto& b = corners[kOutline[(k + 1) % 4]];
    const auto& c = corners[kOutline[(k + 2) % 4]];
    const double turn = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    positive += turn > 0;
    negative += turn < 0;
  }
  return positive == 4 || negative == 4;
}

// Solves the 8x8 system H c_k = q_k (c the canvas corners, q the sampling corners) by
// Gaussian elimination with partial pivoting.
std::array<double, 8> solve_homography(const std::array<std::array<double, 2>, 4>& sources) {
  static constexpr double kCanvasCorners[4][2] = {{-1, -1}, {1, -1}, {-1, 1}, {1, 1}};
  double system[8][9] = {};
  for (int k = 0; k < 4; ++k) {
    const double x = kCanvasCorners[k][0], y = kCanvasCorners[k][1];
    const double u = sources[k][0], v = sources[k][1];
    const double row_u[9] = {x, y, 1, 0, 0, 0, -x * u, -y * u, u};
    const double row_v[9] = {0, 0, 0, x, y, 1, -x * v, -y * v, v};
    std::copy(row_u, row_u + 9, system[2 * k]);
    std::copy(row_v, row_v + 9, system[2 * k + 1]);
  }
  for (int column = 0; column < 8; ++column) {
    int pivot = column;
    for (int row = column + 1; row < 8; ++row)
      if (std::abs(system[row][column]) > std::abs(system[pivot][column])) pivot = row;
    if (std::abs(system[pivot][column]) < 1e-12)
      throw std::invalid_argument("projective_theta: the sampling corners are degenerate (three on a line)");
    std::swap(system[pivot], system[column]);
    for (int row = 0; row < 8; ++row) {
      if (row == column) continue;
      const double factor = system[row][column] / system[column][column];
      for (int j = column; j < 9; ++j) system[row][j] -= factor * system[column][j];
    }
  }
  std::array<double, 8> homography{};
  for (int k = 0; k < 8; ++k) homography[k] = system[k][8] / system[k][k];
  return homography;
}

}  // namespace

RotationParameters draw_rotation(Generator& generator) {
  return {generator.uniform(-kRotationMaxDegrees, kRotationMaxDegrees)};
}

Tensor rotation_theta(std::span<const RotationParameters> parameters) {
  Tensor theta = empty({parameters.size(), 2, 3});
  for (std::size_t n = 0; n < parameters.size(); ++n)
    write_similarity_theta(parameters[n].angle_degrees, 1.0, 0.0, 0.0, kDigitSide, theta.data() + 6 * n);
  return theta;
}

Tensor warp_rotation(const Tensor& digits, std::span<const RotationParameters> parameters) {
  check_digits("warp_rotation", digits, parameters.size());
  return sample_bilinear(digits, affine_grid(rotation_theta(parameters), kDigitSide, kDigitSide));
}

RtsParameters draw_rts(Generator& generator) {
  RtsParameters p;
  p.angle_degrees = generator.uniform(-kRtsMaxDegrees, kRtsMaxDegrees);
  p.scale = generator.uniform(kRtsMinScale, kRtsMaxScale);
  const float limit = kRtsCanvasSide / 2.0f - static_cast<float>(kSourceHalfSide) * p.scale;
  p.offset_x = generator.uniform(-limit, limit);
  p.offset_y = generator.uniform(-limit, limit);
  return p;
}

Tensor rts_theta(std::span<const RtsParameters> parameters) {
  Tensor theta = empty({parameters.size(), 2, 3});
  for (std::size_t n = 0; n < parameters.size(); ++n) {
    const RtsParameters& p = parameters[n];
    write_similarity_theta(p.angle_degrees, p.scale, p.offset_x, p.offset_y, kRtsCanvasSide,
                           theta.data() + 6 * n);
  }
  return theta;
}

Tensor warp_rts(const Tensor& digits, std::span<const RtsParameters> parameters) {
  check_digits("warp_rts", digits, parameters.size());
  return sample_bilinear(digits, affine_grid(rts_theta(parameters), kRtsCanvasSide, kRtsCanvasSide));
}

ProjectiveParameters draw_projective(Generator& generator) {
  ProjectiveParameters p;
  p.scale = generator.uniform(kProjectiveMinScale, kProjectiveMaxScale);
  do {
    for (float& noise : p.corner_noise)
      noise = static_cast<float>(generator.normal(0.0, kProjectiveCornerStddevPixels));
  } while (!strictly_convex(projective_sampling_corners(p)));
  return p;
}

Tensor projective_theta(std::span<const ProjectiveParameters> parameters) {
  Tensor theta = empty({parameters.size(), 8});
  for (std::size_t n = 0; n < parameters.size(); ++n) {
    const std::array<double, 8> homography = solve_homography(projective_sampling_corners(parameters[n]));
    for (int k = 0; k < 8; ++k) theta.data()[8 * n + k] = static_cast<float>(homography[k]);
  }
  return theta;
}

Tensor warp_projective(const Tensor& digits, std::span<const ProjectiveParameters> parameters) {
  check_digits("warp_projective", digits, parameters.size());
  return sample_bilinear(digits, projective_grid(projective_theta(parameters), kDigitSide, kDigitSide));
}

ElasticParameters draw_elastic(Generator& generator) {
  ElasticParameters p;
  p.scale = generator.uniform(kElasticMinScale, kElasticMaxScale);
  for (float& noise : p.control_noise)
    noise = static_cast<float>(generator.normal(0.0, kElasticControlStddevPixels));
  return p;
}

Tensor elastic_theta(std::span<const ElasticParameters> parameters) {
  const std::vector<float> control = kernels::tps_control_points(kElasticControlPoints);
  Tensor theta = empty({parameters.size(), kElasticControlPoints, 2});
  for (std::size_t n = 0; n < parameters.size(); ++n)
    for (std::size_t k = 0; k < 2 * kElasticControlPoints; ++k)
      theta.data()[n * 2 * kElasticControlPoints + k] = static_cast<float>(
          control[k] / static_cast<double>(parameters[n].scale) +
          parameters[n].control_noise[k] / kSourceHalfSide);
  return theta;
}

Tensor warp_elastic(const Tensor& digits, std::span<const ElasticParameters> parameters) {
  check_digits("warp_elastic", digits, parameters.size());
  return sample_bilinear(digits, tps_grid(elastic_theta(parameters), kDigitSide, kDigitSide));
}

ClutterParameters draw_clutter(Generator& generator, std::size_t source_count,
                               std::size_t digit_index) {
  if (source_count == 0) throw std::invalid_argument("draw_clutter: no source images to crop from");
  constexpr std::uint64_t kDigitPositions = kClutterCanvasSide - kDigitSide + 1;
  constexpr std::uint64_t kCropPositions = kDigitSide - kClutterPatchSide + 1;
  constexpr std::uint64_t kPastePositions = kClutterCanvasSide - kClutterPatchSide + 1;
  ClutterParameters p;
  p.digit_x = static_cast<int>(generator.below(kDigitPositions));
  p.digit_y = static_cast<int>(generator.below(kDigitPositions));
  for (ClutterPatch& patch : p.patches) {
    if (source_count == 1) {
      patch.source_index = 0;
    } else {
      // Uniform over the others: skip over the digit's own index.
      patch.source_index = static_cast<std::size_t>(generator.below(source_count - 1));
      if (patch.source_index >= digit_index) ++patch.source_index;
    }
    patch.crop_x = static_cast<int>(generator.below(kCropPositions));
    patch.crop_y = static_cast<int>(generator.below(kCropPositions));
    patch.paste_x = static_cast<int>(generator.below(kPastePositions));
    patch.paste_y = static_cast<int>(generator.below(kPastePositions));
  }
  return p;
}

Tensor warp_clutter(const Tensor& digits, std::span<const ClutterParameters> parameters,
                    const Tensor& patch_sources) {
  check_digits("warp_clutter", digits, parameters.size());
  const Shape sources_shape = shape_of(patch_sources);
  if (sources_shape.size() != 4 || sources_shape[1] != 1 || sources_shape[2] != kDigitSide ||
      sources_shape[3] != kDigitSide)
    throw_shape_error("warp_clutter", "patch sources " + shape_string(sources_shape) + " must be [M, 1, 28, 28]");
  constexpr std::size_t side = kClutterCanvasSide;
  constexpr int digit_limit = static_cast<int>(side - kDigitSide);
  constexpr int crop_limit = static_cast<int>(kDigitSide - kClutterPatchSide);
  constexpr int paste_limit = static_cast<int>(side - kClutterPatchSide);
  Tensor canvas = zeros({parameters.size(), 1, side, side});
  for (std::size_t n = 0; n < parameters.size(); ++n) {
    const ClutterParameters& p = parameters[n];
    float* out = canvas.data() + n * side * side;
    if (p.digit_x < 0 || p.digit_y < 0 || p.digit_x > digit_limit || p.digit_y > digit_limit)
      throw std::out_of_range("warp_clutter: digit position off the 60x60 canvas");
    const float* digit = digits.data() + n * kDigitPixels;
    for (std::size_t y = 0; y < kDigitSide; ++y)
      std::copy(digit + y * kDigitSide, digit + (y + 1) * kDigitSide,
                out + (p.digit_y + y) * side + p.digit_x);
    for (const ClutterPatch& patch : p.patches) {
      if (patch.source_index >= sources_shape[0])
        throw std::out_of_range("warp_clutter: patch source " + std::to_string(patch.source_index) +
                                " of " + std::to_string(sources_shape[0]) + " images");
      if (patch.crop_x < 0 || patch.crop_y < 0 || patch.crop_x > crop_limit || patch.crop_y > crop_limit ||
          patch.paste_x < 0 || patch.paste_y < 0 || patch.paste_x > paste_limit || patch.paste_y > paste_limit)
        throw std::out_of_range("warp_clutter: patch crop or paste position out of range");
      const float* source = patch_sources.data() + patch.source_index * kDigitPixels;
      for (std::size_t y = 0; y < kClutterPatchSide; ++y)
        for (std::size_t x = 0; x < kClutterPatchSide; ++x) {
          float& pixel = out[(patch.paste_y + y) * side + patch.paste_x + x];
          pixel = std::max(pixel, source[(patch.crop_y + y) * kDigitSide + patch.crop_x + x]);
        }
    }
  }
  return canvas;
}

AdditionParameters draw_addition(Generator& generator, std::size_t source_count) {
  if (source_count == 0) throw std::invalid_argument("draw_addition: no source images to pair with");
  AdditionParameters p;
  p.second_index = static_cast<std::size_t>(generator.below(source_count));
  p.first = draw_rts(generator);
  p.second = draw_rts(generator);
  return p;
}

Tensor warp_addition(const Tensor& first_digits, const Tensor& second_digits,
                     std::span<const AdditionParameters> parameters) {
  check_digits("warp_addition", first_digits, parameters.size());
  check_digits("warp_addition", second_digits, parameters.size());
  // Interleaved as 2B single-channel images, the sampler's [2B, 1, 42, 42] output is already
  // the [B, 2, 42, 42] layout.
  const std::size_t count = parameters.size();
  Tensor digits = empty({2 * count, 1, kDigitSide, kDigitSide});
  std::vector<RtsParameters> placements(2 * count);
  for (std::size_t n = 0; n < count; ++n) {
    std::copy_n(first_digits.data() + n * kDigitPixels, kDigitPixels, digits.data() + 2 * n * kDigitPixels);
    std::copy_n(second_digits.data() + n * kDigitPixels, kDigitPixels, digits.data() + (2 * n + 1) * kDigitPixels);
    placements[2 * n] = parameters[n].first;
    placements[2 * n + 1] = parameters[n].second;
  }
  Tensor pairs = sample_bilinear(digits, affine_grid(rts_theta(placements), kAdditionCanvasSide, kAdditionCanvasSide));
  pairs.reshape({count, 2, kAdditionCanvasSide, kAdditionCanvasSide});
  return pairs;
}

}  // namespace stn
