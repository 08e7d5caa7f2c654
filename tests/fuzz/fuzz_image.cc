// Fuzz target: stn::read_image (framework/io/png.h), the image reader behind `stn warp
// --input X.png` (stb_image underneath: PNG, and whatever else stb_image recognises). The
// input is the whole file.
//
// Checks: read_image either throws stn::DataError whose message starts with the path, or
// returns [C, H, W] with C = 1 or 3, 1 <= H, W <= kMaxImageSide and values k/255 in [0, 1];
// a small accepted image survives write_png -> read_image exactly.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "stn/framework/error.h"
#include "stn/framework/io/png.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const stn::fuzz::ScratchFile input(".png");
  static const stn::fuzz::ScratchFile copy(".png");
  const std::string& path = input.write(data, size);

  stn::Tensor image;
  try {
    image = stn::read_image(path);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), path.c_str(), path.size()) == 0,
               "message does not start with the path: %s", error.what());
    return 0;
  }

  const stn::Shape shape = stn::shape_of(image);
  FUZZ_CHECK(shape.size() == 3 && (shape[0] == 1 || shape[0] == 3), "image shape %s",
             stn::shape_string(shape).c_str());
  FUZZ_CHECK(shape[1] >= 1 && shape[2] >= 1 && shape[1] <= stn::kMaxImageSide && shape[2] <= stn::kMaxImageSide,
             "image shape %s", stn::shape_string(shape).c_str());
  for (std::size_t i = 0; i < image.size(); ++i) {
    const float value = image.data()[i];
    FUZZ_CHECK(value >= 0.0f && value <= 1.0f &&
                   std::fabs(static_cast<float>(std::lround(value * 255.0f)) - value * 255.0f) < 1e-3f,
               "pixel %zu is %g, not k/255", i, static_cast<double>(value));
  }

  // Round trip through write_png for images small enough to keep the target fast.
  if (image.size() <= 64 * 64 * 3) {
    stn::write_png(copy.path(), image);
    const stn::Tensor again = stn::read_image(copy.path());
    FUZZ_CHECK(stn::shape_of(again) == shape, "write_png -> read_image changed the shape");
    FUZZ_CHECK(std::memcmp(again.data(), image.data(), image.size() * sizeof(float)) == 0,
               "write_png -> read_image changed the pixels");
  }
  return 0;
}
