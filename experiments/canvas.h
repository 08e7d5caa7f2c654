// A small RGB canvas for the figures (digits, sampling grids, transformed boxes), saved as PNG.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stn {

struct Rgb {
  std::uint8_t red = 0, green = 0, blue = 0;
};

// The pixels (x, y) with left <= x <= right and top <= y <= bottom.
struct Box {
  int left, top, right, bottom;
};

// An RGB raster in pixel coordinates: x to the right, y down, pixel (x, y) centred on the
// integer point. Everything drawn is clipped to the canvas.
struct Canvas {
  int width, height;
  std::vector<std::uint8_t> rgb;  // row-major, 3 bytes a pixel

  Canvas(int width, int height, Rgb background);

  Box whole() const { return Box{0, 0, width - 1, height - 1}; }
  Rgb pixel(int x, int y) const;
  void set_pixel(int x, int y, Rgb color);  // ignored outside the canvas
  // A row-major image_height x image_width grey image, `low` black and `high` white (NaN
  // black), each pixel drawn as a scale x scale block, the top-left one at (x0, y0).
  // scale < 1 or high <= low is a std::invalid_argument.
  void paste_gray(const float* pixels, int image_height, int image_width, int x0, int y0, int scale,
                  float low, float high);
  // A one-pixel line between the two points, both ends included (a DDA); nothing if an end
  // is not finite.
  void draw_line(float from_x, float from_y, float to_x, float to_y, Rgb color);
  // Only the pixels of that line inside `within` (a figure's panel, so that a shape larger
  // than its panel does not run over the next one).
  void draw_line(float from_x, float from_y, float to_x, float to_y, Rgb color, Box within);
  // Lines between consecutive points, and from the last back to the first if `closed`.
  void draw_polygon(const std::vector<std::pair<float, float>>& points, Rgb color, bool closed);
  void draw_polygon(const std::vector<std::pair<float, float>>& points, Rgb color, bool closed,
                    Box within);
  void save_png(const std::string& path) const;
};

}  // namespace stn
