// The distortions of the paper's distorted MNIST (§4.1, Appendix A.4): per-image parameter
// draws, and batched warps that run the framework's own grid generators and sampler without
// a tape (one grid call and one grid_sample call per batch; bilinear, zeros padding,
// align_corners false), so the data is made by the same code the transformer trains with.
//
// Units. Parameters are stored in pixels and degrees, the way the paper states them. Warps
// work in normalised coordinates, where [-1, 1] spans a whole canvas (pixel edges, not
// centres): on the 28x28 source 1 px = 2/28, on a 42x42 canvas 1 px = 2/42. Positive
// angles turn the digit counterclockwise as seen on screen (y pointing down).
//
// Digits are [B, 1, 28, 28] tensors of values in [0, 1]; every warp returns values in [0, 1]
// (bilinear weights are a convex combination, and zeros padding reads 0 outside). Every
// warp checks that its digits are [B, 1, 28, 28] and that it got B parameter sets, and
// throws stn::ShapeError naming the warp and the shapes otherwise.
//
// Draws consume the generator in a fixed order (documented per function), so a dataset is a
// pure function of the generator's seed.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "stn/framework/random.h"
#include "stn/framework/tensor.h"

namespace stn {

constexpr std::size_t kDigitSide = 28;

constexpr float kRotationMaxDegrees = 90.0f;  // R: angle ~ U[-90, 90]

constexpr std::size_t kRtsCanvasSide = 42;  // RTS: angle ~ U[-45, 45], scale ~ U[0.7, 1.2]
constexpr float kRtsMaxDegrees = 45.0f;
constexpr float kRtsMinScale = 0.7f;
constexpr float kRtsMaxScale = 1.2f;

constexpr float kProjectiveMinScale = 0.75f;  // P: scale ~ U[0.75, 1], corners + N(0, 5 px)
constexpr float kProjectiveMaxScale = 1.0f;
constexpr double kProjectiveCornerStddevPixels = 5.0;

constexpr float kElasticMinScale = 0.75f;  // E: scale ~ U[0.75, 1], 4x4 points + N(0, 1.5 px)
constexpr float kElasticMaxScale = 1.0f;
constexpr double kElasticControlStddevPixels = 1.5;
constexpr std::size_t kElasticControlPoints = 16;

constexpr std::size_t kClutterCanvasSide = 60;  // TC: digit + six 6x6 crops on 60x60
constexpr std::size_t kClutterPatchCount = 6;
constexpr std::size_t kClutterPatchSide = 6;

constexpr std::size_t kAdditionCanvasSide = kRtsCanvasSide;  // two RTS digits, 2 x 42 x 42

// --- R: rotation about the centre, on the 28x28 canvas ---------------------------------
struct RotationParameters {
  float angle_degrees = 0.0f;
};
// One uniform draw.
RotationParameters draw_rotation(Generator& generator);
// theta [B, 2, 3] for affine_grid: the target-to-source map (the inverse rotation).
Tensor rotation_theta(std::span<const RotationParameters> parameters);
// [B, 1, 28, 28] -> [B, 1, 28, 28].
Tensor warp_rotation(const Tensor& digits, std::span<const RotationParameters> parameters);

// --- RTS: rotation, scale and translation, on the 42x42 canvas --------------------------
// The digit's centre lands offset_x, offset_y canvas pixels from the canvas centre (x right,
// y down). The offsets are uniform in +-(21 - 14 scale), so the scaled (unrotated) 28 s box
// stays on the canvas.
struct RtsParameters {
  float angle_degrees = 0.0f;
  float scale = 1.0f;
  float offset_x = 0.0f;
  float offset_y = 0.0f;
};
// Draws angle, scale, offset_x, offset_y in that order.
RtsParameters draw_rts(Generator& generator);
// theta [B, 2, 3] for a 42x42 target and a 28x28 source.
Tensor rts_theta(std::span<const RtsParameters> parameters);
// [B, 1, 28, 28] -> [B, 1, 42, 42].
Tensor warp_rts(const Tensor& digits, std::span<const RtsParameters> parameters);

// --- P: projective, on the 28x28 canvas ----------------------------------------------------
// Read like E (PAPER.md, "Which way the P and E noise points"): the noise moves where the
// output reads from, not where the digit lands. The output canvas's four corners read from
// the source points corner / scale + corner_noise (corner_noise in source pixels, 1 px =
// 2/28), so the scale shrinks the digit about the centre (scale 1: the plain digit) and the
// noise then moves the four corners of the sampling quadrilateral; the homography takes the
// canvas corners ((+-1, +-1) normalised) to them. Corners are ordered top-left, top-right,
// bottom-left, bottom-right, each as (x, y). Moving the landing corners instead (the reading
// used before) squashed the digit by more than 2x in some direction in about a fifth of the
// draws, and thin strokes then vanish under bilinear sampling.
struct ProjectiveParameters {
  float scale = 1.0f;
  std::array<float, 8> corner_noise{};
};
// Draws the scale, then the 8 noise values in order. A draw whose sampling corners do not
// form a strictly convex quadrilateral (a folded square, which no perspective view of a
// square produces: its homography would send part of the canvas through infinity) has its 8
// noise values redrawn; with the paper's 5 px that is under 0.1% of draws.
ProjectiveParameters draw_projective(Generator& generator);
// theta [B, 8] for projective_grid: the 8x8 corner system solved in double, h33 = 1.
// Throws std::invalid_argument if the corners are degenerate (three on a line).
Tensor projective_theta(std::span<const ProjectiveParameters> parameters);
// [B, 1, 28, 28] -> [B, 1, 28, 28]. The homography maps the canvas onto the convex sampling
// quadrilateral (w' keeps its sign over the canvas); output pixels whose sampling point falls
// outside the source square come out black.
Tensor warp_projective(const Tensor& digits, std::span<const ProjectiveParameters> parameters);

// --- E: elastic (thin plate spline), on the 28x28 canvas -----------------------------------
// The target control points c_k are tps_control_points(16) (a 4x4 grid spanning the
// canvas); their source positions are c_k / scale + control_noise in normalised units (the
// noise is drawn in pixels, 1 px = 2/28), (x, y) per point in tps_control_points' order.
struct ElasticParameters {
  float scale = 1.0f;
  std::array<float, 2 * kElasticControlPoints> control_noise{};
};
// Draws the scale, then the 32 noise values in order.
ElasticParameters draw_elastic(Generator& generator);
// theta [B, 16, 2] for tps_grid.
Tensor elastic_theta(std::span<const ElasticParameters> parameters);
// [B, 1, 28, 28] -> [B, 1, 28, 28].
Tensor warp_elastic(const Tensor& digits, std::span<const ElasticParameters> parameters);

// --- TC: translated and cluttered, on the 60x60 canvas -------------------------------------
// Every placement is by whole pixels, so it is a plain copy (a grid_sample at an integer
// shift would give the same values up to float rounding, at a hundred times the cost).
// Patch k copies the 6x6 block at (crop_x, crop_y) of source image source_index to
// (paste_x, paste_y); the digit's top-left pixel goes to (digit_x, digit_y). Overlaps keep
// the brighter pixel (max), so clutter never darkens the digit.
struct ClutterPatch {
  std::size_t source_index = 0;
  int crop_x = 0, crop_y = 0;    // in [0, 28 - 6]
  int paste_x = 0, paste_y = 0;  // in [0, 60 - 6]
};
struct ClutterParameters {
  int digit_x = 0, digit_y = 0;  // in [0, 60 - 28]
  std::array<ClutterPatch, kClutterPatchCount> patches{};
};
// Draws digit_x, digit_y, then per patch source_index, crop_x, crop_y, paste_x, paste_y.
// source_index is uniform over the source_count images other than digit_index (the digit's
// own index; any index when source_count is 1). Throws std::invalid_argument for
// source_count 0.
ClutterParameters draw_clutter(Generator& generator, std::size_t source_count,
                               std::size_t digit_index);
// digits [B, 1, 28, 28] -> [B, 1, 60, 60]; patch_sources [M, 1, 28, 28] holds the images
// the patches' source_index refers to (an index of M or more is a std::out_of_range).
Tensor warp_clutter(const Tensor& digits, std::span<const ClutterParameters> parameters,
                    const Tensor& patch_sources);

// --- Addition: two RTS digits, one per channel, on the 42x42 canvas ------------------------
struct AdditionParameters {
  std::size_t second_index = 0;  // the second digit's index in the source set
  RtsParameters first, second;
};
// Draws second_index (uniform over source_count, which must be at least 1), then first and
// second with draw_rts.
AdditionParameters draw_addition(Generator& generator, std::size_t source_count);
// first_digits, second_digits [B, 1, 28, 28] -> [B, 2, 42, 42], channel 0 the first digit.
// Both channels come from one grid and one grid_sample call over 2B images.
Tensor warp_addition(const Tensor& first_digits, const Tensor& second_digits,
                     std::span<const AdditionParameters> parameters);

}  // namespace stn
