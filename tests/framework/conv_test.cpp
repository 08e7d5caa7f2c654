#include <gtest/gtest.h>

#include <omp.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/ops/conv.h"
#include "stn/framework/ops/pool.h"
#include "stn/framework/random.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;
using test::tensor_from;

// Runs `f` and returns the ShapeError's message (failing if nothing was thrown).
template <class F>
std::string shape_error_message(F f) {
  try {
    f();
  } catch (const ShapeError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ShapeError";
  return "";
}

TEST(Conv2d, ShapeErrorsNameTheOpAndShapes) {
  Tape tape;
  Var x = tape.input(zeros({2, 3, 8, 8}));
  Var w = tape.input(zeros({4, 1, 3, 3}));
  EXPECT_EQ(shape_error_message([&] { conv2d(x, w, Var{}); }),
            "conv2d: input [2, 3, 8, 8] has 3 channels but weight [4, 1, 3, 3] expects 1");
  Var w3 = tape.input(zeros({4, 3, 3, 3}));
  std::string bias = shape_error_message([&] { conv2d(x, w3, tape.input(zeros({5}))); });
  EXPECT_NE(bias.find("bias [5]"), std::string::npos) << bias;
  std::string too_big = shape_error_message([&] { conv2d(x, tape.input(zeros({4, 3, 9, 9})), Var{}); });
  EXPECT_NE(too_big.find("does not fit input [2, 3, 8, 8]"), std::string::npos) << too_big;
  // Dilation 4 stretches a 3x3 kernel to 9x9.
  std::string dilated = shape_error_message([&] { conv2d(x, w3, Var{}, {.dilation = 4}); });
  EXPECT_NE(dilated.find("does not fit"), std::string::npos) << dilated;
  EXPECT_NE(shape_error_message([&] { conv2d(x, w3, Var{}, {.stride = 0}); }).find("stride 0"),
            std::string::npos);
  EXPECT_NE(shape_error_message([&] { conv2d(x, w3, Var{}, {.padding = -1}); }).find("padding -1"),
            std::string::npos);
  std::string three_d = shape_error_message([&] { conv2d(tape.input(zeros({3, 8, 8})), w3, Var{}); });
  EXPECT_NE(three_d.find("[3, 8, 8]"), std::string::npos) << three_d;
}

TEST(Conv2d, SmallCaseByHand) {
  // x = 1..9 as 3x3, w = [[1, 2], [3, 4]], bias 0.5: each output is the window's dot product.
  Tape tape;
  Var x = tape.input(tensor_from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), true);
  Var w = tape.input(tensor_from({1, 1, 2, 2}, {1, 2, 3, 4}), true);
  Var b = tape.input(tensor_from({1}, {0.5f}), true);
  Var y = conv2d(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  const float expected[] = {37.5f, 47.5f, 67.5f, 77.5f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y.value().data()[i], expected[i]);
  tape.backward(y, full({1, 1, 2, 2}, 1.0f));
  // dW[a, b] = sum of the inputs it met; dX = how many times (with which weight) each input was used.
  const float grad_weight[] = {12, 16, 24, 28};
  const float grad_input[] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(w.grad().data()[i], grad_weight[i]);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(x.grad().data()[i], grad_input[i]);
  EXPECT_EQ(b.grad().data()[0], 4.0f);
}

TEST(Conv2d, StrideAndPaddingByHand) {
  // 3x3 ones, 2x2 kernel of ones, stride 2, padding 1: the windows start at the padded
  // grid's corners (-1, -1), (-1, 1), (1, -1), (1, 1) and count the real inputs they cover.
  Tape tape;
  Var x = tape.input(full({1, 1, 3, 3}, 1.0f));
  Var w = tape.input(full({1, 1, 2, 2}, 1.0f));
  Var y = conv2d(x, w, Var{}, {.stride = 2, .padding = 1});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  const float expected[] = {1, 2, 2, 4};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y.value().data()[i], expected[i]);
}

struct ConvCase {
  const char* name;
  Shape input, weight;
  bool bias;
  Conv2dOptions options;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class Conv2dGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dGradcheck, MatchesFiniteDifferences) {
  const ConvCase& c = GetParam();
  Generator generator(11);
  std::vector<Tensor> inputs = {random_tensor(c.input, generator), random_tensor(c.weight, generator)};
  if (c.bias) inputs.push_back(random_tensor({c.weight[0]}, generator));
  auto result = gradcheck(
      [&](const std::vector<Var>& v) { return conv2d(v[0], v[1], c.bias ? v[2] : Var{}, c.options); },
      inputs);
  EXPECT_TRUE(result.ok) << c.name << ": " << result.message;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dGradcheck,
    ::testing::Values(
        ConvCase{"batch 1, one channel, no bias", {1, 1, 5, 5}, {2, 1, 3, 3}, false, {}},
        ConvCase{"non-square, stride 2, padding 1, bias", {2, 3, 6, 7}, {4, 3, 3, 2}, true,
                 {.stride = 2, .padding = 1}},
        ConvCase{"dilation 2, padding 1", {2, 2, 7, 6}, {3, 2, 3, 3}, true,
                 {.padding = 1, .dilation = 2}},
        ConvCase{"stride 3, padding 2, 1x1 output rows", {1, 2, 4, 9}, {2, 2, 2, 2}, false,
                 {.stride = 3, .padding = 2}},
        ConvCase{"1x1 kernel", {3, 4, 3, 2}, {5, 4, 1, 1}, true, {}}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return test::test_name(info.param.name); });

TEST(Conv2d, InputGradientOnlyWhenNeeded) {
  Generator generator(12);
  Tensor x = random_tensor({2, 2, 6, 6}, generator), w = random_tensor({3, 2, 3, 3}, generator);
  Parameter weight("weight", w), weight_too("weight", w);
  Tape frozen_tape, trained_tape;
  Var frozen_input = frozen_tape.input(x, false);
  Var frozen = conv2d(frozen_input, frozen_tape.param(weight), Var{}, {.padding = 1});
  frozen_tape.backward(frozen, full(frozen.shape(), 1.0f));
  Var trained_input = trained_tape.input(x, true);
  Var trained = conv2d(trained_input, trained_tape.param(weight_too), Var{}, {.padding = 1});
  trained_tape.backward(trained, full(trained.shape(), 1.0f));
  EXPECT_EQ(frozen_input.grad().size(), 0u);
  EXPECT_EQ(trained_input.grad().size(), x.size());
  EXPECT_EQ(test::max_abs_difference(weight.grad, weight_too.grad), 0.0f);
}

// Forward, and all three gradients, with `threads` OpenMP threads.
std::vector<Tensor> run_conv(int threads, const Tensor& x, const Tensor& w, const Tensor& b,
                             const Tensor& seed) {
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  Tape tape;
  Var input = tape.input(x, true), weight = tape.input(w, true), bias = tape.input(b, true);
  Var y = conv2d(input, weight, bias, {.stride = 1, .padding = 2});
  tape.backward(y, seed);
  omp_set_num_threads(previous);
  return {y.value(), input.grad(), weight.grad(), bias.grad()};
}

TEST(Conv2d, OneAndTwoThreadsAgree) {
  Generator generator(13);
  // Large enough (1.4 M multiply-adds) for conv2d to use both threads.
  Tensor x = random_tensor({7, 4, 16, 14}, generator), w = random_tensor({8, 4, 5, 5}, generator);
  Tensor b = random_tensor({8}, generator), seed = random_tensor({7, 8, 16, 14}, generator);
  const std::vector<Tensor> one = run_conv(1, x, w, b, seed);
  const std::vector<Tensor> two = run_conv(2, x, w, b, seed);
  const std::vector<Tensor> two_again = run_conv(2, x, w, b, seed);
  // Each image is computed whole by one thread: the output and the input gradient are
  // bit-for-bit the same for any thread count.
  EXPECT_EQ(test::max_abs_difference(one[0], two[0]), 0.0f);
  EXPECT_EQ(test::max_abs_difference(one[1], two[1]), 0.0f);
  // Weight and bias gradients are summed per thread, then over threads in thread order: the
  // same within rounding across thread counts, and bit-for-bit for a given thread count.
  EXPECT_LT(test::max_abs_difference(one[2], two[2]), 1e-4f);
  EXPECT_LT(test::max_abs_difference(one[3], two[3]), 1e-4f);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(test::max_abs_difference(two[i], two_again[i]), 0.0f) << i;
}

// ---- PyTorch golden values (tests/golden/make_conv_golden.py) -------------------------

using nlohmann::json;

Tensor tensor_from_json(const json& value) {
  Tensor t = empty(value.at("shape").get<Shape>());
  const json& data = value.at("data");
  if (data.size() != t.size()) throw std::runtime_error("golden tensor size mismatch");
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = data[i].get<float>();
  return t;
}

void expect_close(const Tensor& actual, const json& expected_json, const std::string& what) {
  const Tensor expected = tensor_from_json(expected_json);
  ASSERT_EQ(shape_of(actual), shape_of(expected)) << what;
  for (std::size_t i = 0; i < expected.size(); ++i)
    ASSERT_NEAR(actual.data()[i], expected.data()[i], 1e-4f) << what << " element " << i;
}

TEST(ConvGolden, MatchesPyTorch) {
  std::ifstream file(std::string(STN_TEST_DATA_DIR) + "/conv_golden.json");
  ASSERT_TRUE(file) << "missing tests/data/conv_golden.json";
  const json golden = json::parse(file);
  int conv_cases = 0, pool_cases = 0;
  for (const json& c : golden.at("cases")) {
    const std::string name = c.at("name"), op = c.at("op");
    Tape tape;
    Var input = tape.input(tensor_from_json(c.at("input")), true);
    Var output, weight, bias;
    if (op == "conv2d") {
      weight = tape.input(tensor_from_json(c.at("weight")), true);
      if (c.contains("bias")) bias = tape.input(tensor_from_json(c.at("bias")), true);
      output = conv2d(input, weight, bias,
                      {.stride = c.at("stride").get<int>(), .padding = c.at("padding").get<int>(),
                       .dilation = c.at("dilation").get<int>()});
      ++conv_cases;
    } else {
      const Pool2dOptions options{.kernel = c.at("kernel").get<int>(),
                                  .stride = c.at("stride").get<int>(),
                                  .padding = c.at("padding").get<int>()};
      output = op == "max_pool2d" ? max_pool2d(input, options) : avg_pool2d(input, options);
      ++pool_cases;
    }
    expect_close(output.value(), c.at("output"), name + " output");
    tape.backward(output, tensor_from_json(c.at("grad_output")));
    expect_close(input.grad(), c.at("grad_input"), name + " grad_input");
    if (weight.valid()) expect_close(weight.grad(), c.at("grad_weight"), name + " grad_weight");
    if (bias.valid()) expect_close(bias.grad(), c.at("grad_bias"), name + " grad_bias");
  }
  EXPECT_EQ(conv_cases, 3);
  EXPECT_EQ(pool_cases, 4);
}

}  // namespace
}  // namespace stn
