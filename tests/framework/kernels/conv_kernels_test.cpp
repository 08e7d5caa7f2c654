#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "stn/framework/kernels/conv.h"
#include "stn/framework/random.h"

namespace stn::kernels {
namespace {

std::vector<float> random_vector(std::size_t size, Generator& generator) {
  std::vector<float> v(size);
  for (float& x : v) x = generator.uniform(-1.0f, 1.0f);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double total = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) total += static_cast<double>(a[i]) * b[i];
  return total;
}

struct Geometry {
  int channels, height, width;
  Window2d window;
};

std::string describe(const Geometry& g) {
  const Window2d& w = g.window;
  return std::to_string(g.channels) + "x" + std::to_string(g.height) + "x" + std::to_string(g.width) +
         " kernel " + std::to_string(w.kernel_h) + "x" + std::to_string(w.kernel_w) + " stride " +
         std::to_string(w.stride_h) + "," + std::to_string(w.stride_w) + " pad " +
         std::to_string(w.pad_h) + "," + std::to_string(w.pad_w) + " dilation " +
         std::to_string(w.dilation_h) + "," + std::to_string(w.dilation_w);
}

// Window2d fields: kernel h, w; stride h, w; pad h, w; dilation h, w.
const Geometry kConvGeometries[] = {
    {1, 28, 28, {9, 9, 1, 1, 0, 0, 1, 1}},  {32, 10, 10, {7, 7, 1, 1, 0, 0, 1, 1}},
    {3, 7, 9, {3, 3, 2, 2, 1, 1, 1, 1}},    {2, 9, 6, {3, 2, 1, 2, 2, 1, 2, 1}},
    {2, 8, 11, {3, 3, 3, 2, 1, 0, 2, 3}},   {1, 1, 1, {1, 1, 1, 1, 0, 0, 1, 1}},
    {2, 3, 4, {3, 3, 1, 1, 2, 2, 1, 1}},    {1, 5, 5, {5, 5, 2, 2, 0, 0, 1, 1}},
};

std::size_t column_count(const Geometry& g) {
  return static_cast<std::size_t>(g.channels) * g.window.kernel_h * g.window.kernel_w *
         g.window.output_h(g.height) * g.window.output_w(g.width);
}

TEST(Im2col, OutputSize) {
  EXPECT_EQ(Window2d::output_size(28, 9, 1, 0, 1), 20);
  EXPECT_EQ(Window2d::output_size(7, 3, 2, 1, 1), 4);
  EXPECT_EQ(Window2d::output_size(9, 3, 1, 2, 2), 9);
  EXPECT_EQ(Window2d::output_size(4, 5, 2, 0, 1), 0);  // truncation must not make this 1
  EXPECT_EQ(Window2d::output_size(3, 5, 1, 0, 1), 0);
}

TEST(Im2col, MatchesReference) {
  Generator generator(1);
  for (const Geometry& g : kConvGeometries) {
    std::vector<float> image = random_vector(static_cast<std::size_t>(g.channels) * g.height * g.width, generator);
    std::vector<float> fast(column_count(g), NAN), reference(column_count(g), NAN);
    im2col(image.data(), g.channels, g.height, g.width, g.window, fast.data());
    im2col_reference(image.data(), g.channels, g.height, g.width, g.window, reference.data());
    EXPECT_EQ(fast, reference) << describe(g);
  }
}

TEST(Im2col, Col2imMatchesReference) {
  Generator generator(2);
  for (const Geometry& g : kConvGeometries) {
    std::vector<float> columns = random_vector(column_count(g), generator);
    std::vector<float> start = random_vector(static_cast<std::size_t>(g.channels) * g.height * g.width, generator);
    std::vector<float> fast = start, reference = start;
    col2im_add(columns.data(), g.channels, g.height, g.width, g.window, fast.data());
    col2im_add_reference(columns.data(), g.channels, g.height, g.width, g.window, reference.data());
    for (std::size_t i = 0; i < fast.size(); ++i)
      ASSERT_NEAR(fast[i], reference[i], 1e-5f) << describe(g) << " at " << i;
  }
}

// col2im is the adjoint of im2col: <col2im(y), x> == <y, im2col(x)>.
TEST(Im2col, Col2imIsTheAdjoint) {
  Generator generator(3);
  for (const Geometry& g : kConvGeometries) {
    const std::size_t image_size = static_cast<std::size_t>(g.channels) * g.height * g.width;
    std::vector<float> x = random_vector(image_size, generator);
    std::vector<float> y = random_vector(column_count(g), generator);
    std::vector<float> columns(column_count(g)), image(image_size, 0.0f);
    im2col(x.data(), g.channels, g.height, g.width, g.window, columns.data());
    col2im_add(y.data(), g.channels, g.height, g.width, g.window, image.data());
    EXPECT_NEAR(dot(image, x), dot(y, columns), 1e-4) << describe(g);
  }
}

// Several images side by side in one column matrix (what conv2d does to give one GEMM a
// group of images): image i fills columns [i * P, (i + 1) * P) of rows row_stride apart, and
// col2im reads the same block back.
TEST(Im2col, RowStrideFillsSideBySideBlocks) {
  Generator generator(8);
  for (const Geometry& g : kConvGeometries) {
    const int images = 3;
    const std::size_t image_size = static_cast<std::size_t>(g.channels) * g.height * g.width;
    const std::size_t positions = static_cast<std::size_t>(g.window.output_h(g.height)) * g.window.output_w(g.width);
    const std::size_t rows = column_count(g) / positions;
    const std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(images * positions);
    std::vector<float> batch = random_vector(images * image_size, generator);
    std::vector<float> wide(rows * images * positions, NAN);
    for (int i = 0; i < images; ++i)
      im2col(batch.data() + i * image_size, g.channels, g.height, g.width, g.window,
             wide.data() + i * positions, stride);
    for (int i = 0; i < images; ++i) {
      std::vector<float> alone(column_count(g));
      im2col_reference(batch.data() + i * image_size, g.channels, g.height, g.width, g.window, alone.data());
      std::vector<float> folded(image_size, 0.0f), folded_alone(image_size, 0.0f);
      col2im_add(wide.data() + i * positions, g.channels, g.height, g.width, g.window, folded.data(), stride);
      col2im_add_reference(alone.data(), g.channels, g.height, g.width, g.window, folded_alone.data());
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t p = 0; p < positions; ++p)
          ASSERT_EQ(wide[r * images * positions + i * positions + p], alone[r * positions + p])
              << describe(g) << " image " << i << " row " << r << " position " << p;
      for (std::size_t e = 0; e < image_size; ++e)
        ASSERT_NEAR(folded[e], folded_alone[e], 1e-5f) << describe(g) << " image " << i << " element " << e;
    }
  }
}

TEST(SumRows, MatchesLoop) {
  Generator generator(7);
  for (int columns : {1, 15, 16, 17, 400}) {
    const int rows = 3;
    std::vector<float> matrix = random_vector(static_cast<std::size_t>(rows) * columns, generator);
    std::vector<float> sums = {1.0f, 2.0f, 3.0f};
    sum_rows_add(matrix.data(), rows, columns, sums.data());
    for (int r = 0; r < rows; ++r) {
      double expected = r + 1.0;
      for (int c = 0; c < columns; ++c) expected += matrix[static_cast<std::size_t>(r) * columns + c];
      EXPECT_NEAR(sums[r], expected, 1e-5) << columns << " columns, row " << r;
    }
  }
}

const Geometry kPoolGeometries[] = {
    {4, 20, 20, {2, 2, 2, 2, 0, 0, 1, 1}}, {3, 7, 9, {3, 3, 2, 2, 1, 1, 1, 1}},
    {2, 5, 8, {3, 2, 1, 2, 1, 1, 1, 1}},   {2, 6, 6, {4, 4, 3, 3, 2, 2, 1, 1}},
    {1, 1, 1, {1, 1, 1, 1, 0, 0, 1, 1}},   {2, 9, 7, {3, 3, 2, 1, 1, 0, 2, 2}},
    // 2x2 stride 2 has its own vectorised kernel: odd sizes (the last row and column are
    // left out) and rows long enough for full vectors plus a remainder.
    {3, 21, 71, {2, 2, 2, 2, 0, 0, 1, 1}}, {2, 2, 3, {2, 2, 2, 2, 0, 0, 1, 1}},
};

std::size_t pool_output_count(const Geometry& g) {
  return static_cast<std::size_t>(g.channels) * g.window.output_h(g.height) * g.window.output_w(g.width);
}

TEST(MaxPool, MatchesReferenceIncludingTies) {
  Generator generator(4);
  for (const Geometry& g : kPoolGeometries)
    for (int variant : {0, 1, 2}) {
      std::vector<float> input = random_vector(static_cast<std::size_t>(g.channels) * g.height * g.width, generator);
      if (variant >= 1)  // few distinct values: many windows hold several equal maxima
        for (float& v : input) v = std::round(v * 2.0f);
      if (variant == 2)  // and NaN and infinities here and there (a NaN wins its window)
        for (std::size_t i = 0; i < input.size(); i += 7)
          input[i] = i % 3 == 0 ? NAN : (i % 3 == 1 ? -INFINITY : INFINITY);
      const std::size_t outputs = pool_output_count(g);
      std::vector<float> fast(outputs), reference(outputs);
      std::vector<std::int32_t> fast_argmax(outputs), reference_argmax(outputs);
      max_pool2d_forward(input.data(), g.channels, g.height, g.width, g.window, fast.data(), fast_argmax.data());
      max_pool2d_forward_reference(input.data(), g.channels, g.height, g.width, g.window,
                                   reference.data(), reference_argmax.data());
      for (std::size_t i = 0; i < outputs; ++i)  // NaN == NaN here
        ASSERT_TRUE(fast[i] == reference[i] || (std::isnan(fast[i]) && std::isnan(reference[i])))
            << describe(g) << " variant " << variant << " output " << i;
      EXPECT_EQ(fast_argmax, reference_argmax) << describe(g) << " variant " << variant;
    }
}

TEST(MaxPool, TieGoesToTheFirstMaximum) {
  // One 2x2 window over [[1, 3], [3, 2]]: PyTorch picks the first 3 (index 1).
  const float input[] = {1.0f, 3.0f, 3.0f, 2.0f};
  float output = 0.0f;
  std::int32_t argmax = -1;
  max_pool2d_forward(input, 1, 2, 2, Window2d{2, 2, 2, 2}, &output, &argmax);
  EXPECT_EQ(output, 3.0f);
  EXPECT_EQ(argmax, 1);
  float grad_input[4] = {};
  const float grad_output = 5.0f;
  max_pool2d_backward_add(&grad_output, &argmax, 1, 2, 2, Window2d{2, 2, 2, 2}, grad_input);
  EXPECT_EQ(grad_input[1], 5.0f);
  EXPECT_EQ(grad_input[0] + grad_input[2] + grad_input[3], 0.0f);
}

TEST(MaxPool, NanPropagates) {
  const float input[] = {1.0f, NAN, 3.0f, 2.0f};
  float output = 0.0f;
  std::int32_t argmax = -1;
  max_pool2d_forward(input, 1, 2, 2, Window2d{2, 2, 2, 2}, &output, &argmax);
  EXPECT_TRUE(std::isnan(output));
  EXPECT_EQ(argmax, 1);
  // PyTorch moves on every NaN and on nothing after one, so the last NaN wins.
  const float two_nans[] = {NAN, 5.0f, NAN, 7.0f};
  for (auto forward : {max_pool2d_forward, max_pool2d_forward_reference}) {
    forward(two_nans, 1, 2, 2, Window2d{2, 2, 2, 2}, &output, &argmax);
    EXPECT_TRUE(std::isnan(output));
    EXPECT_EQ(argmax, 2);
  }
}

TEST(MaxPool, BackwardAddsAtTheArgmax) {
  Generator generator(5);
  for (const Geometry& g : kPoolGeometries) {
    const std::size_t plane = static_cast<std::size_t>(g.height) * g.width;
    std::vector<float> input = random_vector(g.channels * plane, generator);
    const std::size_t outputs = pool_output_count(g);
    std::vector<float> output(outputs);
    std::vector<std::int32_t> argmax(outputs);
    max_pool2d_forward(input.data(), g.channels, g.height, g.width, g.window, output.data(), argmax.data());
    std::vector<float> grad_output = random_vector(outputs, generator);
    std::vector<float> start = random_vector(g.channels * plane, generator);
    std::vector<float> grad_input = start, expected = start;
    max_pool2d_backward_add(grad_output.data(), argmax.data(), g.channels, g.height, g.width,
                            g.window, grad_input.data());
    const std::size_t per_plane = outputs / g.channels;
    for (std::size_t o = 0; o < outputs; ++o) {
      ASSERT_GE(argmax[o], 0);
      expected[o / per_plane * plane + argmax[o]] += grad_output[o];
    }
    for (std::size_t i = 0; i < expected.size(); ++i)
      ASSERT_NEAR(grad_input[i], expected[i], 1e-6f) << describe(g);
  }
}

TEST(AvgPool, MatchesReference) {
  Generator generator(6);
  for (Geometry g : kPoolGeometries) {
    g.window.dilation_h = g.window.dilation_w = 1;  // average pooling has no dilation
    const std::size_t inputs = static_cast<std::size_t>(g.channels) * g.height * g.width;
    std::vector<float> input = random_vector(inputs, generator);
    const std::size_t outputs = pool_output_count(g);
    std::vector<float> fast(outputs), reference(outputs);
    avg_pool2d_forward(input.data(), g.channels, g.height, g.width, g.window, fast.data());
    avg_pool2d_forward_reference(input.data(), g.channels, g.height, g.width, g.window, reference.data());
    for (std::size_t o = 0; o < outputs; ++o) ASSERT_NEAR(fast[o], reference[o], 1e-6f) << describe(g);

    std::vector<float> grad_output = random_vector(outputs, generator);
    std::vector<float> grad_fast(inputs, 0.5f), grad_reference(inputs, 0.5f);
    avg_pool2d_backward_add(grad_output.data(), g.channels, g.height, g.width, g.window, grad_fast.data());
    avg_pool2d_backward_add_reference(grad_output.data(), g.channels, g.height, g.width, g.window,
                                      grad_reference.data());
    for (std::size_t i = 0; i < inputs; ++i)
      ASSERT_NEAR(grad_fast[i], grad_reference[i], 1e-6f) << describe(g);
    // The backward is the forward's adjoint.
    std::vector<float> grad_input(inputs, 0.0f);
    avg_pool2d_backward_add(grad_output.data(), g.channels, g.height, g.width, g.window, grad_input.data());
    EXPECT_NEAR(dot(fast, grad_output), dot(input, grad_input), 1e-4) << describe(g);
  }
}

TEST(AvgPool, DivisorIsTheWindowClippedToThePaddedInput) {
  // 3x3 input of ones, kernel 3, stride 2, padding 1: every window covers a 3x3 part of the
  // padded 5x5 input, so the divisor is 9 even where the window holds padding. Corner
  // windows hold 4 ones.
  std::vector<float> input(9, 1.0f), output(4);
  avg_pool2d_forward(input.data(), 1, 3, 3, Window2d{3, 3, 2, 2, 1, 1}, output.data());
  for (float v : output) EXPECT_FLOAT_EQ(v, 4.0f / 9.0f);
  // Without ceil_mode every window ends inside the padded input, so the divisor is always
  // the full kernel: 4x4 input, kernel 3, stride 2, padding 1, the last window covers rows
  // and columns 1..3.
  std::vector<float> corner(16, 0.0f), pooled(4);
  corner[15] = 1.0f;
  avg_pool2d_forward(corner.data(), 1, 4, 4, Window2d{3, 3, 2, 2, 1, 1}, pooled.data());
  EXPECT_FLOAT_EQ(pooled[3], 1.0f / 9.0f);
  EXPECT_FLOAT_EQ(pooled[0], 0.0f);
}

}  // namespace
}  // namespace stn::kernels
