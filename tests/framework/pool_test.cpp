#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/ops/pool.h"
#include "stn/framework/random.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;
using test::tensor_from;

// Distinct values 0.1 apart in a shuffled order: a finite-difference step of 1e-3 never
// changes which element is the maximum, so gradcheck stays away from max-pool's kinks.
Tensor shuffled_ramp(const Shape& shape, Generator& generator) {
  Tensor t = empty(shape);
  std::vector<std::size_t> order(t.size());
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[generator.below(i)]);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[order[i]] = 0.1f * static_cast<float>(i) - 2.0f;
  return t;
}

struct PoolCase {
  const char* name;
  Shape input;
  Pool2dOptions options;
};

const PoolCase kCases[] = {
    {"2x2 default stride", {2, 3, 6, 4}, {.kernel = 2}},
    {"batch 1, 3x3 stride 2 padding 1, non-square", {1, 2, 7, 5}, {.kernel = 3, .stride = 2, .padding = 1}},
    {"overlapping 2x2 stride 1 padding 1", {2, 1, 4, 5}, {.kernel = 2, .stride = 1, .padding = 1}},
    {"4x4 stride 3 padding 2", {1, 2, 9, 8}, {.kernel = 4, .stride = 3, .padding = 2}},
};

TEST(MaxPool2d, Gradcheck) {
  Generator generator(21);
  for (const PoolCase& c : kCases) {
    auto result = gradcheck([&](const std::vector<Var>& v) { return max_pool2d(v[0], c.options); },
                            {shuffled_ramp(c.input, generator)});
    EXPECT_TRUE(result.ok) << c.name << ": " << result.message;
  }
}

TEST(AvgPool2d, Gradcheck) {
  Generator generator(22);
  for (const PoolCase& c : kCases) {
    auto result = gradcheck([&](const std::vector<Var>& v) { return avg_pool2d(v[0], c.options); },
                            {random_tensor(c.input, generator)});
    EXPECT_TRUE(result.ok) << c.name << ": " << result.message;
  }
}

TEST(MaxPool2d, ValuesAndDefaultStride) {
  Tape tape;
  Var x = tape.input(tensor_from({1, 1, 2, 4}, {1, 5, 2, 0, -1, 3, 7, 4}));
  Var y = max_pool2d(x, {.kernel = 2});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
  EXPECT_EQ(y.value().data()[0], 5.0f);
  EXPECT_EQ(y.value().data()[1], 7.0f);
}

TEST(MaxPool2d, TieGivesTheGradientToTheFirstMaximum) {
  // Both windows hold two equal maxima; PyTorch routes the gradient to the first in
  // row-major order.
  Tape tape;
  Var x = tape.input(tensor_from({1, 1, 2, 4}, {2, 1, 3, 3, 0, 2, 3, 1}), true);
  Var y = max_pool2d(x, {.kernel = 2});
  tape.backward(y, tensor_from({1, 1, 1, 2}, {10, 20}));
  const float expected[] = {10, 0, 20, 0, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(x.grad().data()[i], expected[i]) << i;
}

TEST(MaxPool2d, SavesTheArgmaxIndices) {
  Tape tape;
  Var x = tape.input(zeros({2, 3, 8, 8}), true);
  Var y = max_pool2d(x, {.kernel = 2});
  EXPECT_EQ(tape.entry(y.index()).saved_bytes, y.numel() * sizeof(std::int32_t));
  NoGradScope no_grad(tape);
  Var z = max_pool2d(x, {.kernel = 2});
  EXPECT_EQ(tape.entry(z.index()).saved_bytes, 0u);
}

TEST(AvgPool2d, PaddingCountsInTheDivisor) {
  // 2x2 input of ones, kernel 3, stride 1, padding 1: every window holds all four ones and
  // five zeros of padding: 4 / 9, as PyTorch's count_include_pad = true.
  Tape tape;
  Var y = avg_pool2d(tape.input(full({1, 1, 2, 2}, 1.0f)), {.kernel = 3, .stride = 1, .padding = 1});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y.value().data()[i], 4.0f / 9.0f);
}

TEST(Pool2d, ShapeErrorsNameTheOpAndShapes) {
  Tape tape;
  Var x = tape.input(zeros({2, 3, 4, 4}));
  auto message = [](auto f) -> std::string {
    try {
      f();
    } catch (const ShapeError& e) {
      return e.what();
    }
    return "no ShapeError";
  };
  std::string too_big = message([&] { max_pool2d(x, {.kernel = 5}); });
  EXPECT_EQ(too_big.rfind("max_pool2d: ", 0), 0u) << too_big;
  EXPECT_NE(too_big.find("[2, 3, 4, 4]"), std::string::npos) << too_big;
  EXPECT_NE(message([&] { avg_pool2d(x, {.kernel = 2, .stride = 0}); }).find("avg_pool2d: kernel 2 and stride 0"),
            std::string::npos);
  EXPECT_NE(message([&] { max_pool2d(x, {.kernel = 2, .stride = 2, .padding = 2}); }).find("padding 2"),
            std::string::npos);
  EXPECT_NE(message([&] { max_pool2d(x, {.kernel = 0}); }).find("kernel 0"), std::string::npos);
  EXPECT_NE(message([&] { avg_pool2d(tape.input(zeros({4, 4}))); }).find("[4, 4]"), std::string::npos);
}

}  // namespace
}  // namespace stn
