// Fuzz target: stn::read_image (framework/io/png.h) under a small decoder memory limit, so
// that stb_image's allocation-failure paths run (a failed malloc inside a decoder used to
// leave stbi_failure_reason() NULL and crash the caller). The first input byte picks the
// limit, 4 KiB << (byte % 14) (4 KiB to 32 MiB); the rest is the file.
//
// Checks: read_image returns an image or throws stn::DataError whose message starts with the
// path; nothing leaks (LeakSanitizer); an image it returns fits the limit it was read under.
#include <cstdint>
#include <cstring>
#include <string>

#include "stn/framework/error.h"
#include "stn/framework/io/png.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const stn::fuzz::ScratchFile input(".png");
  if (size < 1) return 0;
  const std::size_t limit = std::size_t{4096} << (data[0] % 14);
  const std::string& path = input.write(data + 1, size - 1);
  try {
    const stn::Tensor image = stn::read_image(path, {.memory_limit = limit});
    // The decoder's 8-bit buffer of the pixels had to fit.
    FUZZ_CHECK(image.size() <= limit, "an image of %zu values came through a %zu-byte limit", image.size(), limit);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), path.c_str(), path.size()) == 0,
               "message does not start with the path: %s", error.what());
  }
  return 0;
}
