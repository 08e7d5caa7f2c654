#include "stn/framework/io/png.h"

#include <cmath>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"

namespace stn::image_memory {
namespace {

// Every allocation stb's decoder makes goes through these, so that the decoder works within
// a budget (a hostile header cannot make it ask for gigabytes) and a failed allocation is
// counted and reported instead of being mistaken for bad data. stb's allocation hooks are
// plain functions, so the budget of the read in progress lives in these thread-local
// variables, set by read_image for the length of the call; a header before each block
// records its size.
thread_local std::size_t limit = kDefaultImageMemoryLimit;
thread_local std::size_t in_use = 0;
thread_local bool failed = false;
constexpr std::size_t kHeader = 16;  // keeps the blocks 16-byte aligned

void* allocate(std::size_t size) {
  if (size > limit || in_use > limit - size) {
    failed = true;
    return nullptr;
  }
  auto* block = static_cast<unsigned char*>(std::malloc(size + kHeader));
  if (!block) {
    failed = true;
    return nullptr;
  }
  std::memcpy(block, &size, sizeof size);
  in_use += size;
  return block + kHeader;
}

void release(void* pointer) {
  if (!pointer) return;
  auto* block = static_cast<unsigned char*>(pointer) - kHeader;
  std::size_t size = 0;
  std::memcpy(&size, block, sizeof size);
  in_use -= size;
  std::free(block);
}

void* reallocate(void* pointer, std::size_t size) {
  if (!pointer) return allocate(size);
  auto* block = static_cast<unsigned char*>(pointer) - kHeader;
  std::size_t old_size = 0;
  std::memcpy(&old_size, block, sizeof old_size);
  if (size > old_size && (size - old_size > limit || in_use > limit - (size - old_size))) {
    failed = true;
    return nullptr;
  }
  auto* grown = static_cast<unsigned char*>(std::realloc(block, size + kHeader));
  if (!grown) {
    failed = true;
    return nullptr;
  }
  std::memcpy(grown, &size, sizeof size);
  in_use = in_use - old_size + size;
  return grown + kHeader;
}

}  // namespace
}  // namespace stn::image_memory

#define STBI_MALLOC(size) stn::image_memory::allocate(size)
#define STBI_REALLOC(pointer, size) stn::image_memory::reallocate(pointer, size)
#define STBI_FREE(pointer) stn::image_memory::release(pointer)

// stb's implementations live here and nowhere else, static so that they cannot clash with
// another copy (Debian's libstb, or a second definition elsewhere) at link time.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
// PNG only: the program documents PNG input, and stb's other decoders (JPEG, PNM, TGA)
// have out-of-bounds writes and huge allocations on hostile files (found by fuzzing).
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

namespace stn {
namespace {

std::uint8_t unit_to_byte(float value) {
  if (!(value > 0.0f)) return 0;  // NaN too
  if (value >= 1.0f) return 255;
  return static_cast<std::uint8_t>(std::lround(value * 255.0f));
}

void check_image_size(int width, int height, const std::string& where) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide)
    throw DataError(where + ": image is " + std::to_string(width) + " x " + std::to_string(height) +
                    " pixels; each side must be 1 to " + std::to_string(kMaxImageSide));
  if (static_cast<std::size_t>(width) * static_cast<std::size_t>(height) > kMaxImagePixels)
    throw DataError(where + ": image claims " + std::to_string(width) + " x " + std::to_string(height) +
                    " pixels, more than the " + std::to_string(kMaxImagePixels) + " (2^26) allowed");
}

// stb leaves its reason NULL when an allocation failed, among others.
std::string failure_reason(const std::string& where) {
  if (image_memory::failed)
    return where + ": cannot read image: out of memory (the decoder needs more than its limit of " +
           (image_memory::limit >= (std::size_t{1} << 20) ? std::to_string(image_memory::limit >> 20) + " MiB"
                                                           : std::to_string(image_memory::limit >> 10) + " KiB") +
           ")";
  const char* reason = stbi_failure_reason();
  return where + ": cannot read image: " + (reason ? reason : "the decoder failed without saying why");
}

// Walks the PNG chunk structure before stb sees the file: every chunk must fit in the bytes
// left, and IDAT chunks must not be empty. stb_image's PNG decoder trusts chunk lengths (an
// IDAT claiming 1 GiB in an 85-byte file makes it reallocate 2 GiB) and copies from a null
// pointer on an empty IDAT; both were found by fuzzing (tests/fuzz/corpus/image/).
void check_png_chunks(const std::string& bytes, const std::string& where) {
  static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), signature, 8) != 0)
    throw DataError(where + ": cannot read image: not a PNG file");
  std::size_t position = 8;
  while (position < bytes.size()) {
    if (bytes.size() - position < 12) throw DataError(where + ": cannot read image: truncated PNG chunk");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + position);
    const std::uint64_t length = (std::uint64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    const std::string type(bytes.data() + position + 4, 4);
    if (length > bytes.size() - position - 12)
      throw DataError(where + ": cannot read image: PNG chunk " + type + " claims " + std::to_string(length) +
                      " bytes, more than the file holds");
    if (type == "IDAT" && length == 0) throw DataError(where + ": cannot read image: empty PNG IDAT chunk");
    position += 12 + static_cast<std::size_t>(length);
    if (type == "IEND") return;
  }
  throw DataError(where + ": cannot read image: truncated PNG (no IEND chunk in its " + std::to_string(bytes.size()) +
                  " bytes)");
}

}  // namespace

Tensor read_image(const std::string& path, const ImageReadOptions& options) {
  const std::string bytes = read_file(path);
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw DataError(path + ": file is too large to be an image");
  check_png_chunks(bytes, path);
  const auto* buffer = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(bytes.size());

  image_memory::limit = options.memory_limit;
  image_memory::in_use = 0;
  image_memory::failed = false;
  // The header alone first, so that the size is checked before stb allocates for it.
  int width = 0, height = 0, channels_in_file = 0;
  if (!stbi_info_from_memory(buffer, length, &width, &height, &channels_in_file)) throw DataError(failure_reason(path));
  check_image_size(width, height, path);
  const int channels = channels_in_file <= 2 ? 1 : 3;

  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(buffer, length, &width, &height, &channels_in_file, channels),
      stbi_image_free);
  if (!pixels) throw DataError(failure_reason(path));
  check_image_size(width, height, path);

  Tensor image;
  try {
    image = empty({static_cast<std::size_t>(channels), static_cast<std::size_t>(height),
                   static_cast<std::size_t>(width)});
  } catch (const std::bad_alloc&) {
    throw DataError(path + ": cannot read image: out of memory for its " + std::to_string(width) + " x " +
                    std::to_string(height) + " pixels");
  }
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  for (std::size_t pixel = 0; pixel < plane; ++pixel)
    for (int channel = 0; channel < channels; ++channel)
      image.data()[channel * plane + pixel] = pixels.get()[pixel * channels + channel] / 255.0f;
  return image;
}

std::string encode_png(const std::uint8_t* pixels, int width, int height, int channels) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide || channels < 1 ||
      channels > 4)
    throw std::invalid_argument("encode_png: cannot encode " + std::to_string(width) + " x " +
                                std::to_string(height) + " pixels of " + std::to_string(channels) +
                                " channels");
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, width, height, channels, pixels, width * channels))
    throw std::runtime_error("encode_png: stb_image_write failed (out of memory?)");
  return png;
}

void write_png(const std::string& path, const Tensor& image) {
  const Shape shape = shape_of(image);
  const bool planar = shape.size() == 3;
  const std::size_t channels = planar ? shape[0] : 1;
  if ((shape.size() != 2 && !planar) || (channels != 1 && channels != 3))
    throw ShapeError("write_png: " + path + ": image " + shape_string(shape) +
                     " is neither [H, W] nor [C, H, W] with C = 1 or 3");
  const std::size_t height = shape[shape.size() - 2], width = shape[shape.size() - 1];
  if (height < 1 || width < 1 || height > kMaxImageSide || width > kMaxImageSide)
    throw ShapeError("write_png: " + path + ": image " + shape_string(shape) + " must be 1 to " +
                     std::to_string(kMaxImageSide) + " pixels a side");

  const std::size_t plane = height * width;
  std::vector<std::uint8_t> interleaved(plane * channels);
  for (std::size_t pixel = 0; pixel < plane; ++pixel)
    for (std::size_t channel = 0; channel < channels; ++channel)
      interleaved[pixel * channels + channel] = unit_to_byte(image.data()[channel * plane + pixel]);
  write_file_atomically(path, encode_png(interleaved.data(), static_cast<int>(width),
                                         static_cast<int>(height), static_cast<int>(channels)));
}

}  // namespace stn
