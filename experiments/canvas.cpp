// The Canvas of canvas.h: just enough raster drawing for figures.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "stn/framework/io/atomic_file.h"
#include "stn/experiments/canvas.h"
#include "stn/framework/io/png.h"

namespace stn {
namespace {

std::uint8_t gray_byte(float value, float low, float high) {
  float unit = (value - low) / (high - low);
  if (!(unit > 0.0f)) return 0;  // NaN too
  if (unit >= 1.0f) return 255;
  return static_cast<std::uint8_t>(std::lround(unit * 255.0f));
}

// Liang-Barsky: shrinks the segment to the part inside [low_x, high_x] x [low_y, high_y];
// false if none of it is. Done before stepping so that far-away ends cost nothing. Double
// precision keeps ends like 1e9 from moving the clipped ends by whole pixels; the final clamp
// bounds the work even when ends are so far away that no precision suffices.
bool clip_segment(double& x0, double& y0, double& x1, double& y1, double low_x, double low_y,
                  double high_x, double high_y) {
  const double dx = x1 - x0, dy = y1 - y0;
  double enter = 0.0, leave = 1.0;
  auto clip = [&](double p, double q) {  // keeps the t with p * t <= q
    if (p == 0.0) return q >= 0.0;
    const double t = q / p;
    if (p < 0.0) {
      if (t > leave) return false;
      enter = std::max(enter, t);
    } else {
      if (t < enter) return false;
      leave = std::min(leave, t);
    }
    return true;
  };
  if (!clip(-dx, x0 - low_x) || !clip(dx, high_x - x0) || !clip(-dy, y0 - low_y) ||
      !clip(dy, high_y - y0))
    return false;
  const double start_x = x0, start_y = y0;
  x0 = std::clamp(start_x + enter * dx, low_x, high_x);
  y0 = std::clamp(start_y + enter * dy, low_y, high_y);
  x1 = std::clamp(start_x + leave * dx, low_x, high_x);
  y1 = std::clamp(start_y + leave * dy, low_y, high_y);
  return true;
}

}  // namespace

Canvas::Canvas(int width, int height, Rgb background) : width(width), height(height) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide)
    throw std::invalid_argument("Canvas: " + std::to_string(width) + " x " +
                                std::to_string(height) + " pixels; each side must be 1 to " +
                                std::to_string(kMaxImageSide));
  rgb.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = background.red;
    rgb[i + 1] = background.green;
    rgb[i + 2] = background.blue;
  }
}

Rgb Canvas::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width || y >= height)
    throw std::out_of_range("Canvas::pixel: (" + std::to_string(x) + ", " + std::to_string(y) +
                            ") is outside the canvas");
  const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 3;
  return {rgb[i], rgb[i + 1], rgb[i + 2]};
}

void Canvas::set_pixel(int x, int y, Rgb color) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 3;
  rgb[i] = color.red;
  rgb[i + 1] = color.green;
  rgb[i + 2] = color.blue;
}

void Canvas::paste_gray(const float* pixels, int image_height, int image_width, int x0, int y0,
                        int scale, float low, float high) {
  if (scale < 1 || !(high > low) || image_height < 0 || image_width < 0)
    throw std::invalid_argument("Canvas::paste_gray: needs scale >= 1 (got " +
                                std::to_string(scale) + "), high > low (got " +
                                std::to_string(low) + ", " + std::to_string(high) +
                                ") and non-negative sizes");
  for (int row = 0; row < image_height; ++row) {
    for (int column = 0; column < image_width; ++column) {
      const std::uint8_t level =
          gray_byte(pixels[static_cast<std::size_t>(row) * image_width + column], low, high);
      const Rgb color{level, level, level};
      const long top = y0 + static_cast<long>(row) * scale;
      const long left = x0 + static_cast<long>(column) * scale;
      for (long y = std::max(top, 0L); y < std::min(top + scale, static_cast<long>(height)); ++y)
        for (long x = std::max(left, 0L); x < std::min(left + scale, static_cast<long>(width)); ++x)
          set_pixel(static_cast<int>(x), static_cast<int>(y), color);
    }
  }
}

void Canvas::draw_line(float from_x, float from_y, float to_x, float to_y, Rgb color) {
  draw_line(from_x, from_y, to_x, to_y, color, whole());
}

void Canvas::draw_line(float from_x, float from_y, float to_x, float to_y, Rgb color, Box within) {
  if (!std::isfinite(from_x) || !std::isfinite(from_y) || !std::isfinite(to_x) ||
      !std::isfinite(to_y))
    return;
  const Box box{std::max(within.left, 0), std::max(within.top, 0), std::min(within.right, width - 1),
                std::min(within.bottom, height - 1)};
  if (box.left > box.right || box.top > box.bottom) return;
  double x0 = from_x, y0 = from_y, x1 = to_x, y1 = to_y;
  // Pixel x covers [x - 0.5, x + 0.5], so this holds every point that rounds into the box
  // (and, at the edges, a half-way point that rounds just outside: skipped below).
  if (!clip_segment(x0, y0, x1, y1, box.left - 0.5, box.top - 0.5, box.right + 0.5, box.bottom + 0.5)) return;
  const double dx = x1 - x0, dy = y1 - y0;
  const int steps = static_cast<int>(std::ceil(std::max(std::abs(dx), std::abs(dy))));
  for (int step = 0; step <= steps; ++step) {
    const double t = steps == 0 ? 0.0 : static_cast<double>(step) / steps;
    const long x = std::lround(x0 + t * dx), y = std::lround(y0 + t * dy);
    if (x >= box.left && x <= box.right && y >= box.top && y <= box.bottom)
      set_pixel(static_cast<int>(x), static_cast<int>(y), color);
  }
}

void Canvas::draw_polygon(const std::vector<std::pair<float, float>>& points, Rgb color,
                          bool closed) {
  draw_polygon(points, color, closed, whole());
}

void Canvas::draw_polygon(const std::vector<std::pair<float, float>>& points, Rgb color,
                          bool closed, Box within) {
  for (std::size_t i = 0; i + 1 < points.size(); ++i)
    draw_line(points[i].first, points[i].second, points[i + 1].first, points[i + 1].second, color,
              within);
  if (closed && points.size() > 2)
    draw_line(points.back().first, points.back().second, points.front().first,
              points.front().second, color, within);
}

void Canvas::save_png(const std::string& path) const {
  write_file_atomically(path, encode_png(rgb.data(), width, height, 3));
}

}  // namespace stn
