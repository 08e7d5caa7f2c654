#include <chrono>
#include <cmath>

#include <gtest/gtest.h>

#include "stn/experiments/canvas.h"
#include "stn/framework/io/png.h"
#include "temp_dir.h"

namespace stn {
namespace {

const Rgb kWhite{255, 255, 255};
const Rgb kRed{255, 0, 0};

bool same(Rgb a, Rgb b) { return a.red == b.red && a.green == b.green && a.blue == b.blue; }

int count_pixels(const Canvas& canvas, Rgb color) {
  int count = 0;
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) count += same(canvas.pixel(x, y), color);
  return count;
}

TEST(CanvasTest, StartsFilledWithTheBackground) {
  Canvas canvas(4, 3, {1, 2, 3});
  EXPECT_EQ(canvas.rgb.size(), 36u);
  EXPECT_EQ(count_pixels(canvas, {1, 2, 3}), 12);
}

TEST(CanvasTest, PasteGrayMapsLowToBlackHighToWhiteInScaledBlocks) {
  Canvas canvas(8, 8, kRed);
  const float pixels[] = {0.0f, 1.0f, 0.5f, NAN};  // 2 x 2
  canvas.paste_gray(pixels, 2, 2, 1, 2, 3, 0.0f, 1.0f);
  EXPECT_TRUE(same(canvas.pixel(1, 2), {0, 0, 0}));
  EXPECT_TRUE(same(canvas.pixel(3, 4), {0, 0, 0}));
  EXPECT_TRUE(same(canvas.pixel(4, 2), kWhite));
  EXPECT_TRUE(same(canvas.pixel(6, 4), kWhite));
  EXPECT_TRUE(same(canvas.pixel(1, 5), {128, 128, 128}));
  EXPECT_TRUE(same(canvas.pixel(6, 7), {0, 0, 0}));  // NaN
  EXPECT_TRUE(same(canvas.pixel(0, 2), kRed));
  EXPECT_TRUE(same(canvas.pixel(7, 7), kRed));
  EXPECT_EQ(count_pixels(canvas, kRed), 64 - 36);
}

TEST(CanvasTest, PasteGrayUsesTheGivenRangeAndClips) {
  Canvas canvas(6, 6, kRed);
  const float pixels[] = {-1.0f, 3.0f, 1.0f, 7.0f};
  canvas.paste_gray(pixels, 2, 2, -3, -3, 4, -1.0f, 3.0f);
  EXPECT_TRUE(same(canvas.pixel(0, 0), {0, 0, 0}));
  EXPECT_TRUE(same(canvas.pixel(1, 0), kWhite));
  EXPECT_TRUE(same(canvas.pixel(0, 1), {128, 128, 128}));
  EXPECT_TRUE(same(canvas.pixel(1, 1), kWhite));
  EXPECT_TRUE(same(canvas.pixel(4, 4), kWhite));
  EXPECT_TRUE(same(canvas.pixel(5, 4), kRed));
  EXPECT_EQ(count_pixels(canvas, kRed), 11);
}

TEST(CanvasTest, PasteGrayRejectsBadScaleOrRange) {
  Canvas canvas(4, 4, kRed);
  const float pixels[] = {0.0f};
  EXPECT_THROW(canvas.paste_gray(pixels, 1, 1, 0, 0, 0, 0.0f, 1.0f), std::invalid_argument);
  EXPECT_THROW(canvas.paste_gray(pixels, 1, 1, 0, 0, 1, 1.0f, 1.0f), std::invalid_argument);
}

TEST(CanvasTest, DrawsHorizontalVerticalAndDiagonalLinesWithBothEnds) {
  Canvas canvas(10, 10, kWhite);
  canvas.draw_line(1, 1, 8, 1, kRed);
  EXPECT_EQ(count_pixels(canvas, kRed), 8);
  canvas.draw_line(0, 9, 0, 3, kRed);
  EXPECT_EQ(count_pixels(canvas, kRed), 15);
  canvas.draw_line(2, 2, 6, 6, kRed);
  EXPECT_EQ(count_pixels(canvas, kRed), 20);
  for (int i = 2; i <= 6; ++i) EXPECT_TRUE(same(canvas.pixel(i, i), kRed)) << i;
}

TEST(CanvasTest, SteepLinesHaveNoHoles) {
  Canvas canvas(20, 20, kWhite);
  canvas.draw_line(2, 0, 5, 19, kRed);
  for (int y = 0; y < 20; ++y) {
    int in_row = 0;
    for (int x = 0; x < 20; ++x) in_row += same(canvas.pixel(x, y), kRed);
    EXPECT_EQ(in_row, 1) << y;
  }
}

TEST(CanvasTest, LinesAreClippedWithoutWalkingFarAwayEnds) {
  Canvas canvas(10, 10, kWhite);
  const auto start = std::chrono::steady_clock::now();
  canvas.draw_line(-1e9f, 5.0f, 1e9f, 5.0f, kRed);
  canvas.draw_line(-1e30f, -1e30f, -2e30f, 7.0f, kRed);  // entirely outside
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  EXPECT_EQ(count_pixels(canvas, kRed), 10);
  for (int x = 0; x < 10; ++x) EXPECT_TRUE(same(canvas.pixel(x, 5), kRed)) << x;
}

TEST(CanvasTest, LinesWithNonFiniteEndsAreSkipped) {
  Canvas canvas(10, 10, kWhite);
  canvas.draw_line(NAN, 1, 5, 5, kRed);
  canvas.draw_line(0, 0, INFINITY, 5, kRed);
  EXPECT_EQ(count_pixels(canvas, kRed), 0);
}

TEST(CanvasTest, ClosedPolygonDrawsEveryEdge) {
  Canvas open(10, 10, kWhite), closed(10, 10, kWhite);
  const std::vector<std::pair<float, float>> square{{1, 1}, {6, 1}, {6, 6}, {1, 6}};
  open.draw_polygon(square, kRed, false);
  closed.draw_polygon(square, kRed, true);
  EXPECT_EQ(count_pixels(open, kRed), 16);
  EXPECT_EQ(count_pixels(closed, kRed), 20);
  EXPECT_TRUE(same(closed.pixel(1, 4), kRed));
  EXPECT_TRUE(same(open.pixel(1, 4), kWhite));
}

TEST(CanvasTest, APolygonDrawnWithinABoxStaysInIt) {
  // A transformer figure's sampling box larger than its panel: only the part over the panel.
  Canvas canvas(10, 10, kWhite);
  const std::vector<std::pair<float, float>> square{{1, 1}, {8, 1}, {8, 8}, {1, 8}};
  canvas.draw_polygon(square, kRed, true, Box{0, 0, 4, 9});
  EXPECT_EQ(count_pixels(canvas, kRed), 8 + 3 + 3);  // the left edge and 3 more of top and bottom
  for (int y = 0; y < 10; ++y)
    for (int x = 5; x < 10; ++x) EXPECT_TRUE(same(canvas.pixel(x, y), kWhite)) << x << ", " << y;
  EXPECT_TRUE(same(canvas.pixel(4, 1), kRed));
  EXPECT_TRUE(same(canvas.pixel(4, 8), kRed));
  Canvas other(10, 10, kWhite);  // a box off the canvas draws nothing
  other.draw_line(0, 0, 9, 9, kRed, Box{20, 20, 30, 30});
  EXPECT_EQ(count_pixels(other, kRed), 0);
}

TEST(CanvasTest, SavesAPngThatReadsBack) {
  test::TempDir directory;
  Canvas canvas(3, 2, {0, 0, 255});
  canvas.set_pixel(2, 1, kRed);
  canvas.set_pixel(5, 5, kRed);  // outside: ignored
  canvas.save_png(directory.file("canvas.png"));
  Tensor image = read_image(directory.file("canvas.png"));
  ASSERT_EQ(shape_of(image), (Shape{3, 2, 3}));
  EXPECT_EQ(image.data()[5], 1.0f);          // red plane, pixel (2, 1)
  EXPECT_EQ(image.data()[2 * 6 + 5], 0.0f);  // blue plane, pixel (2, 1)
  EXPECT_EQ(image.data()[2 * 6 + 0], 1.0f);  // blue plane, pixel (0, 0)
}

TEST(CanvasTest, RejectsEmptyOrHugeCanvases) {
  EXPECT_THROW(Canvas(0, 5, kWhite), std::invalid_argument);
  EXPECT_THROW(Canvas(5, 16385, kWhite), std::invalid_argument);
}

}  // namespace
}  // namespace stn
