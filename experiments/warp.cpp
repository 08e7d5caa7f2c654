#include "stn/experiments/warp.h"

#include <array>
#include <cmath>
#include <new>
#include <stdexcept>

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "stn/experiments/datasets.h"
#include "stn/experiments/run_dir.h"
#include "stn/framework/data/mnist.h"
#include "stn/framework/error.h"
#include "stn/framework/io/npy.h"
#include "stn/framework/io/png.h"
#include "stn/framework/ops/spatial.h"

namespace stn::cli {

namespace {

using Matrix = std::array<double, 9>;  // 3x3 row-major, affine maps of points

Matrix multiply(const Matrix& a, const Matrix& b) {
  Matrix c{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) c[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
  return c;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::pair<std::size_t, std::size_t> parse_size(const std::string& text) {
  auto x = text.find('x');
  try {
    if (x == std::string::npos) throw std::invalid_argument("");
    long h = std::stol(text.substr(0, x)), w = std::stol(text.substr(x + 1));
    if (h <= 0 || w <= 0 || h > 8192 || w > 8192) throw std::invalid_argument("");
    return {static_cast<std::size_t>(h), static_cast<std::size_t>(w)};
  } catch (const std::exception&) {
    throw std::invalid_argument("--size must be HxW with 1..8192 pixels per side, got '" + text + "'");
  }
}

void require_finite(const char* flag, const std::vector<float>& values) {
  for (float v : values)
    if (!std::isfinite(v)) throw std::invalid_argument(std::string(flag) + " values must be finite");
}

// The TPS solve is O(K^3) in the K control points: a 90 x 90 grid took ~20 minutes.
void check_tps_points(const std::vector<float>& tps) {
  const std::size_t points = tps.size() / 2;
  const std::size_t side = tps_grid_side(points);
  if (tps.size() % 2 || side == 0)
    throw std::invalid_argument("--tps takes x,y pairs for K = k*k control points (k >= 2), got " +
                                std::to_string(tps.size()) + " numbers");
  if (side > kMaxTpsSide)
    throw std::invalid_argument(fmt::format("--tps takes at most a {} x {} grid of control points ({} numbers), got {} x {}",
                                            kMaxTpsSide, kMaxTpsSide, 2 * kMaxTpsSide * kMaxTpsSide, side, side));
  require_finite("--tps", tps);
}

}  // namespace

std::vector<float> compose_named_operations(const WarpConfig& c) {
  Matrix theta = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  if (c.rotate) {
    if (!std::isfinite(*c.rotate)) throw std::invalid_argument("--rotate must be finite");
    const double a = *c.rotate * 3.14159265358979323846 / 180.0;
    theta = multiply(Matrix{std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1}, theta);
  }
  if (c.zoom) {
    if (!(*c.zoom > 0.0f) || !std::isfinite(*c.zoom))
      throw std::invalid_argument(fmt::format("--zoom must be a positive number, got {:g}", *c.zoom));
    // Beyond these the sampling grid's coordinates overflow or collapse to a point.
    if (*c.zoom < kMinZoom || *c.zoom > kMaxZoom)
      throw std::invalid_argument(fmt::format("--zoom must be between {:g} and {:g}, got {:g}", kMinZoom, kMaxZoom, *c.zoom));
    const double s = 1.0 / *c.zoom;
    theta = multiply(Matrix{s, 0, 0, 0, s, 0, 0, 0, 1}, theta);
  }
  if (!c.pan.empty()) {
    if (c.pan.size() != 2) throw std::invalid_argument("--pan takes TX,TY (2 numbers), got " + std::to_string(c.pan.size()));
    require_finite("--pan", c.pan);
    theta = multiply(Matrix{1, 0, c.pan[0], 0, 1, c.pan[1], 0, 0, 1}, theta);
  }
  if (!c.crop.empty()) {
    if (c.crop.size() != 4) throw std::invalid_argument("--crop takes X0,Y0,X1,Y1 (4 numbers), got " + std::to_string(c.crop.size()));
    require_finite("--crop", c.crop);
    const double x0 = c.crop[0], y0 = c.crop[1], x1 = c.crop[2], y1 = c.crop[3];
    if (!(x1 > x0 && y1 > y0)) throw std::invalid_argument("--crop needs X1 > X0 and Y1 > Y0");
    theta = multiply(Matrix{(x1 - x0) / 2, 0, (x1 + x0) / 2, 0, (y1 - y0) / 2, (y1 + y0) / 2, 0, 0, 1}, theta);
  }
  std::vector<float> result = {static_cast<float>(theta[0]), static_cast<float>(theta[1]), static_cast<float>(theta[2]),
                               static_cast<float>(theta[3]), static_cast<float>(theta[4]), static_cast<float>(theta[5])};
  for (float v : result)
    if (!std::isfinite(v))
      throw std::invalid_argument("--rotate, --zoom, --pan and --crop compose to a transform that is not finite");
  return result;
}

Tensor load_warp_input(const WarpConfig& c) {
  if (c.input.rfind("mnist:", 0) == 0) {
    const auto second = c.input.find(':', 6);
    const std::string split = c.input.substr(6, second == std::string::npos ? std::string::npos : second - 6);
    if ((split != "train" && split != "test") || second == std::string::npos)
      throw std::invalid_argument("--input mnist:SPLIT:INDEX needs SPLIT train or test, got '" + c.input + "'");
    long index = -1;
    try {
      index = std::stol(c.input.substr(second + 1));
    } catch (const std::exception&) {
    }
    require_data_directory(c.data_dir, "MNIST");
    Dataset data = load_mnist(c.data_dir, split == "train" ? Split::Train : Split::Test);
    if (index < 0 || static_cast<std::size_t>(index) >= data.size())
      throw std::invalid_argument("--input " + c.input + ": index must be in [0, " + std::to_string(data.size()) + ")");
    const std::size_t h = data.images.shape()[2], w = data.images.shape()[3];
    Tensor image = empty({1, h, w});
    std::copy(data.images.data() + index * h * w, data.images.data() + (index + 1) * h * w, image.data());
    return image;
  }
  Tensor image = ends_with(c.input, ".npy") ? read_npy(c.input) : read_image(c.input);
  if (image.dimension() == 2) image.reshape({1, image.shape()[0], image.shape()[1]});
  if (image.dimension() == 4 && image.shape()[0] == 1) image.reshape({image.shape()[1], image.shape()[2], image.shape()[3]});
  if (image.dimension() != 3 || image.size() == 0)
    throw DataError(c.input + ": expected an image [H, W] or [C, H, W], got shape " + shape_string(image));
  return image;
}

namespace {

nlohmann::json warp(const WarpConfig& c) {
  const int explicit_kinds = !c.affine.empty() + !c.projective.empty() + !c.tps.empty();
  const bool named = c.rotate || c.zoom || !c.pan.empty() || !c.crop.empty();
  if (explicit_kinds > 1 || (explicit_kinds == 1 && named))
    throw std::invalid_argument("give one of --affine, --projective, --tps, or the named operations (--rotate, --zoom, --pan, --crop)");
  if (c.output.empty() || !(ends_with(c.output, ".png") || ends_with(c.output, ".npy")))
    throw std::invalid_argument("--out must end in .png or .npy, got '" + c.output + "'");
  if (c.padding != "zeros" && c.padding != "border")
    throw std::invalid_argument("--padding must be zeros or border, got '" + c.padding + "'");
  check_output_file(c.output, "--out");
  if (!c.size.empty()) parse_size(c.size);
  if (!c.tps.empty()) check_tps_points(c.tps);

  Tensor image = load_warp_input(c);
  const std::size_t channels = image.shape()[0];
  auto [height, width] = c.size.empty() ? std::pair{image.shape()[1], image.shape()[2]} : parse_size(c.size);
  if (!c.tps.empty() && height * width * (c.tps.size() / 2 + 3) > kMaxTpsGridElements)
    throw std::invalid_argument(fmt::format("--tps with {} control points at {} x {} pixels needs a {} x {} matrix, more "
                                            "than the {} elements allowed; give a smaller --size or fewer points",
                                            c.tps.size() / 2, height, width, height * width, c.tps.size() / 2 + 3,
                                            kMaxTpsGridElements));
  Tensor input = image;
  input.reshape({1, channels, image.shape()[1], image.shape()[2]});

  std::string kind = "affine";
  std::vector<float> parameters;
  Tensor grid;
  if (!c.projective.empty()) {
    kind = "projective";
    if (c.projective.size() != 8) throw std::invalid_argument("--projective takes 8 numbers h11..h32, got " + std::to_string(c.projective.size()));
    require_finite("--projective", c.projective);
    parameters = c.projective;
    Tensor theta = empty({1, 8});
    std::copy(parameters.begin(), parameters.end(), theta.data());
    grid = projective_grid(theta, height, width, c.align_corners);
  } else if (!c.tps.empty()) {
    kind = "tps";
    const std::size_t points = c.tps.size() / 2;
    parameters = c.tps;
    Tensor theta = empty({1, points, 2});
    std::copy(parameters.begin(), parameters.end(), theta.data());
    grid = tps_grid(theta, height, width, c.align_corners);
  } else {
    if (!c.affine.empty()) {
      if (c.affine.size() != 6) throw std::invalid_argument("--affine takes 6 numbers a,b,c,d,e,f, got " + std::to_string(c.affine.size()));
      require_finite("--affine", c.affine);
      parameters = c.affine;
    } else {
      parameters = compose_named_operations(c);
    }
    Tensor theta = empty({1, 2, 3});
    std::copy(parameters.begin(), parameters.end(), theta.data());
    grid = affine_grid(theta, height, width, c.align_corners);
  }
  if (c.print_theta && kind == "affine")
    fmt::print("theta = [[{:.6f}, {:.6f}, {:.6f}],\n         [{:.6f}, {:.6f}, {:.6f}]]\n", parameters[0], parameters[1],
               parameters[2], parameters[3], parameters[4], parameters[5]);
  GridSampleOptions options;
  options.mode = c.nearest ? SampleMode::nearest : SampleMode::bilinear;
  options.padding = c.padding == "border" ? PaddingMode::border : PaddingMode::zeros;
  options.align_corners = c.align_corners;
  Tensor output = grid_sample(input, grid, options);
  output.reshape({channels, height, width});
  if (ends_with(c.output, ".npy")) write_npy(c.output, output);
  else write_png(c.output, output);
  return {{"out", c.output}, {"kind", kind}, {"theta", parameters}, {"size", {height, width}}, {"channels", channels}};
}

}  // namespace

nlohmann::json run_warp(const WarpConfig& c) {
  try {
    return warp(c);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("out of memory warping " + c.input + (c.size.empty() ? "" : " to --size " + c.size) +
                             " (try a smaller --size)");
  }
}

}  // namespace stn::cli
