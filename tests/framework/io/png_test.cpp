#include "stn/framework/io/png.h"

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"
#include "temp_dir.h"

namespace stn {
namespace {

using test::TempDir;

Tensor gradient(const Shape& shape) {
  Tensor image = empty(shape);
  for (std::size_t i = 0; i < image.size(); ++i)
    image.data()[i] = static_cast<float>(i % 17) / 16.0f;
  return image;
}

// PNG stores 8 bits, so a round trip is exact up to half a level.
void expect_close_to_quantized(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    ASSERT_NEAR(actual.data()[i], expected.data()[i], 0.5f / 255.0f + 1e-6f) << i;
}

void expect_read_rejected(const std::string& path, const std::string& problem, const ImageReadOptions& options = {}) {
  try {
    read_image(path, options);
    ADD_FAILURE() << "read an image that should fail with '" << problem << "'";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
  }
}

TEST(PngTest, GrayImageRoundTrips) {
  TempDir directory;
  const Tensor image = gradient({5, 7});
  write_png(directory.file("gray.png"), image);
  Tensor read = read_image(directory.file("gray.png"));
  ASSERT_EQ(shape_of(read), (Shape{1, 5, 7}));
  expect_close_to_quantized(read, image);
}

TEST(PngTest, SingleChannelAndRgbImagesRoundTrip) {
  TempDir directory;
  for (std::size_t channels : {1, 3}) {
    const Tensor image = gradient({channels, 4, 6});
    write_png(directory.file("image.png"), image);
    Tensor read = read_image(directory.file("image.png"));
    ASSERT_EQ(shape_of(read), shape_of(image));
    expect_close_to_quantized(read, image);
  }
}

TEST(PngTest, ClampsOutOfRangeValuesAndWritesNanAsBlack) {
  TempDir directory;
  Tensor image = empty({1, 4});
  image.data()[0] = -0.5f;
  image.data()[1] = 1.5f;
  image.data()[2] = NAN;
  image.data()[3] = INFINITY;
  write_png(directory.file("clamped.png"), image);
  Tensor read = read_image(directory.file("clamped.png"));
  EXPECT_EQ(read.data()[0], 0.0f);
  EXPECT_EQ(read.data()[1], 1.0f);
  EXPECT_EQ(read.data()[2], 0.0f);
  EXPECT_EQ(read.data()[3], 1.0f);
}

TEST(PngTest, WritePngRejectsShapesThatAreNotImages) {
  TempDir directory;
  const std::string path = directory.file("bad.png");
  for (const Shape& shape : {Shape{5}, Shape{2, 4, 4}, Shape{4, 4, 4}, Shape{1, 1, 4, 4},
                             Shape{0, 4}, Shape{3, 4, 0}, Shape{1, 16385}}) {
    EXPECT_THROW(write_png(path, zeros(shape)), ShapeError) << shape_string(shape);
  }
  EXPECT_FALSE(std::ifstream(path).good());
}

TEST(PngTest, ReadingDropsAlpha) {
  TempDir directory;
  const std::uint8_t rgba[] = {10, 20, 30, 0, 40, 50, 60, 255};
  write_file_atomically(directory.file("rgba.png"), encode_png(rgba, 2, 1, 4));
  Tensor color = read_image(directory.file("rgba.png"));
  ASSERT_EQ(shape_of(color), (Shape{3, 1, 2}));
  EXPECT_FLOAT_EQ(color.data()[0], 10 / 255.0f);  // red of the transparent pixel
  EXPECT_FLOAT_EQ(color.data()[5], 60 / 255.0f);  // blue of the opaque one

  const std::uint8_t gray_alpha[] = {100, 0, 200, 255};
  write_file_atomically(directory.file("gray_alpha.png"), encode_png(gray_alpha, 2, 1, 2));
  Tensor gray = read_image(directory.file("gray_alpha.png"));
  ASSERT_EQ(shape_of(gray), (Shape{1, 1, 2}));
  EXPECT_FLOAT_EQ(gray.data()[0], 100 / 255.0f);
  EXPECT_FLOAT_EQ(gray.data()[1], 200 / 255.0f);
}

TEST(PngTest, ReadingGarbageNamesTheFileAndStbsReason) {
  TempDir directory;
  write_file_atomically(directory.file("notes.png"), "this is not an image at all");
  expect_read_rejected(directory.file("notes.png"), "cannot read image: ");
  write_file_atomically(directory.file("empty.png"), "");
  expect_read_rejected(directory.file("empty.png"), "cannot read image: ");
}

TEST(PngTest, ReadingATruncatedPngIsDataError) {
  TempDir directory;
  const std::string png = encode_png(std::vector<std::uint8_t>(64 * 64, 128).data(), 64, 64, 1);
  for (std::size_t length : {8ul, 20ul, 40ul, png.size() / 2, png.size() - 13}) {
    write_file_atomically(directory.file("cut.png"), png.substr(0, length));
    expect_read_rejected(directory.file("cut.png"), "cannot read image: ");
  }
}

TEST(PngTest, ReadingRefusesImagesAbove16384PixelsASide) {
  TempDir directory;
  std::string png = encode_png(std::vector<std::uint8_t>(4, 0).data(), 2, 2, 1);
  // IHDR's width is the big-endian u32 at byte 16; stb does not check chunk CRCs.
  png[16] = 0;
  png[17] = 0;
  png[18] = static_cast<char>(20000 >> 8);
  png[19] = static_cast<char>(20000 & 0xff);
  write_file_atomically(directory.file("huge.png"), png);
  expect_read_rejected(directory.file("huge.png"), "image is 20000 x 2 pixels");
}

// The 69-byte file of the issue: a header claiming 16384 x 16384 RGBA at 16 bits. It used to
// crash (stb's failed allocation left its reason NULL); now the pixel count is refused first.
TEST(PngTest, ReadingRefusesAHeaderClaimingMoreThan2To26Pixels) {
  TempDir directory;
  std::string png = encode_png(std::vector<std::uint8_t>(4, 0).data(), 2, 2, 1);
  for (int at : {16, 20}) {
    png[at] = 0;
    png[at + 1] = 0;
    png[at + 2] = static_cast<char>(16384 >> 8);
    png[at + 3] = 0;
  }
  write_file_atomically(directory.file("claims.png"), png);
  expect_read_rejected(directory.file("claims.png"), "image claims 16384 x 16384 pixels, more than the 67108864 (2^26)");
}

// A decoder allocation that fails (here under a 64 KiB limit, as a huge claimed image does
// under the default) is a DataError naming the file, not a crash or stb's NULL reason.
TEST(PngTest, ADecoderOutOfMemoryIsADataErrorNamingTheFile) {
  TempDir directory;
  write_png(directory.file("big.png"), gradient({1, 512, 512}));
  expect_read_rejected(directory.file("big.png"), "cannot read image: out of memory (the decoder needs more than its limit of 64 KiB)",
                       {.memory_limit = 64 << 10});
  EXPECT_EQ(shape_of(read_image(directory.file("big.png"))), (Shape{1, 512, 512}));
}

TEST(PngTest, ReadingAPngWithoutIendNamesIt) {
  TempDir directory;
  const std::string png = encode_png(std::vector<std::uint8_t>(16, 7).data(), 4, 4, 1);
  write_file_atomically(directory.file("no-iend.png"), png.substr(0, png.size() - 12));
  expect_read_rejected(directory.file("no-iend.png"), "truncated PNG (no IEND chunk in its");
}

TEST(PngTest, ReadingAMissingFileNamesIt) {
  TempDir directory;
  expect_read_rejected(directory.file("absent.png"), "cannot open");
}

TEST(PngTest, EncodePngRejectsBadSizes) {
  const std::uint8_t pixel[4] = {};
  EXPECT_THROW(encode_png(pixel, 0, 1, 1), std::invalid_argument);
  EXPECT_THROW(encode_png(pixel, 1, 1, 5), std::invalid_argument);
}

}  // namespace
}  // namespace stn
