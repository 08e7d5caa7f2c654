// Images: reading anything stb_image reads (PNG above all) and writing PNG.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "stn/framework/tensor.h"

namespace stn {

// Larger images are refused before the decoder allocates anything: no dataset here comes
// near, and a 69-byte header could otherwise ask for gigabytes.
constexpr int kMaxImageSide = 16384;
constexpr std::size_t kMaxImagePixels = std::size_t{1} << 26;  // 8192 x 8192

// What the image decoder may allocate in all, per read (default 1 GiB: enough for an 8-bit
// image of 2^26 pixels; a 16-bit RGBA one that large needs more). A file that needs more
// gets a DataError saying so, before the machine runs out.
constexpr std::size_t kDefaultImageMemoryLimit = std::size_t{1} << 30;

struct ImageReadOptions {
  std::size_t memory_limit = kDefaultImageMemoryLimit;  // bytes the decoder may allocate
};

// A [C, H, W] tensor of values in [0, 1]: C = 1 for grey (alpha dropped), 3 for colour
// (alpha dropped). Errors are stn::DataError naming the file and the reason (stb_image's,
// the size limits, or the decoder running out of memory). Safe to call from several
// threads at once, each read with its own limit.
Tensor read_image(const std::string& path, const ImageReadOptions& options = {});

// Writes an [H, W] or [C, H, W] image (C = 1 or 3) as PNG, atomically. Values are clamped
// to [0, 1] and NaN is written as 0. A bad shape is a stn::ShapeError.
void write_png(const std::string& path, const Tensor& image);

// PNG bytes of `height` rows of `width` interleaved 8-bit pixels of `channels` (1 to 4)
// channels each, top row first.
std::string encode_png(const std::uint8_t* pixels, int width, int height, int channels);

}  // namespace stn
