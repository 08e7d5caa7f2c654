// `stn warp`: one spatial transform applied to one image, with the framework's grid
// generators and sampler.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "stn/framework/tensor.h"

namespace stn::cli {

// Limits checked before anything is allocated (README, Reliability); --size allows up to
// 8192 pixels a side.
constexpr std::size_t kMaxTpsSide = 16;                             // --tps: at most 16 x 16 points
constexpr std::size_t kMaxTpsGridElements = std::size_t{1} << 27;   // pixels x (K + 3) of the TPS grid
constexpr float kMinZoom = 1e-6f, kMaxZoom = 1e6f;

struct WarpConfig {
  std::string input;   // PNG, .npy, or mnist:train:INDEX / mnist:test:INDEX
  std::string data_dir = "data/mnist";
  std::string output;  // .png or .npy
  std::vector<float> affine, projective, tps;
  std::optional<float> rotate, zoom;
  std::vector<float> pan, crop;
  std::string size;  // "HxW"; default the input's size
  bool align_corners = false;
  std::string padding = "zeros";
  bool nearest = false;
  bool print_theta = false;
};

// The seed's four named operations composed into one affine theta (2x3, row-major) in
// normalised coordinates; the output pixel (x_t, y_t) samples the input at theta (x_t, y_t, 1):
//   rotate DEG  the picture turns DEG degrees counter-clockwise about the centre
//   zoom S      magnified S times about the centre (S < 1 zooms out)
//   pan TX,TY   the output is centred on the input point (TX, TY)
//   crop X0,Y0,X1,Y1  the output shows exactly that box of the input
// Composition: the output grid is rotated, then zoomed, then panned, then mapped into the
// crop box: theta = crop * pan * zoom * rotate. All coordinates are normalised, [-1, 1].
std::vector<float> compose_named_operations(const WarpConfig& config);

// Loads the input as [C, H, W].
Tensor load_warp_input(const WarpConfig& config);

nlohmann::json run_warp(const WarpConfig& config);

}  // namespace stn::cli
