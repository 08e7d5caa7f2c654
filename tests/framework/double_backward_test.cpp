// Second order: gradgradcheck on every op, and checks that the checkers catch a backward
// that is slightly wrong (1% at first order, 5% at second order).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/ops/conv.h"
#include "stn/framework/ops/pool.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/linalg.h"
#include "stn/framework/ops/loss.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;

// y = 3 x^2 with a backward `first` times the true one and a recorded backward whose own
// derivative is `second` times the true one.
Var scaled_square(Var x, float first, float second) {
  Tensor out = x.value() * x.value() * 3.0f;
  return x.tape().record(
      "scaled_square", {x}, std::move(out),
      [first](const BackwardContext& ctx) {
        for (std::size_t i = 0; i < ctx.grad_output.size(); ++i)
          ctx.grad(0)->data()[i] += first * 6.0f * ctx.input(0).data()[i] * ctx.grad_output.data()[i];
      },
      [second](const VjpContext& ctx) {
        // 6 x g, written so that d/dx is `second` * 6 g while the value stays 6 x g.
        Var x = ctx.input(0);
        Var exact = mul(mul(ctx.grad_output, x), 6.0f);
        Tape& tape = x.tape();
        Var off = mul(mul(ctx.grad_output, sub(x, tape.constant(x.value()))), 6.0f * (second - 1.0f));
        return std::vector<Var>{add(exact, off)};
      });
}

TEST(Gradcheck, CatchesAFirstDerivativeOnePercentWrong) {
  Generator g(3);
  Tensor x = random_tensor({6}, g, 0.5f, 1.5f);
  EXPECT_TRUE(gradcheck([](const std::vector<Var>& v) { return scaled_square(v[0], 1.0f, 1.0f); }, {x}).ok);
  GradcheckResult wrong = gradcheck([](const std::vector<Var>& v) { return scaled_square(v[0], 1.01f, 1.0f); }, {x});
  EXPECT_FALSE(wrong.ok) << wrong.message;
}

TEST(Gradgradcheck, CatchesASecondDerivativeFivePercentWrong) {
  Generator g(3);
  Tensor x = random_tensor({6}, g, 0.5f, 1.5f);
  GradcheckResult right = gradgradcheck([](const std::vector<Var>& v) { return scaled_square(v[0], 1.0f, 1.0f); }, {x});
  EXPECT_TRUE(right.ok) << right.message;
  GradcheckResult wrong = gradgradcheck([](const std::vector<Var>& v) { return scaled_square(v[0], 1.0f, 1.05f); }, {x});
  EXPECT_FALSE(wrong.ok) << wrong.message;
  // A recorded first-order backward that disagrees with the fast one is caught too.
  GradcheckResult first = gradgradcheck([](const std::vector<Var>& v) { return scaled_square(v[0], 1.01f, 1.0f); }, {x});
  EXPECT_FALSE(first.ok) << first.message;
}

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  GradFunction function;
  float low = -1.0f, high = 1.0f;
};

void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

class SecondOrder : public ::testing::TestWithParam<OpCase> {};

TEST_P(SecondOrder, GradgradcheckPasses) {
  const OpCase& c = GetParam();
  Generator g(11);
  std::vector<Tensor> inputs;
  for (const Shape& s : c.shapes) inputs.push_back(random_tensor(s, g, c.low, c.high));
  GradcheckResult first = gradcheck(c.function, inputs);
  EXPECT_TRUE(first.ok) << first.message;
  GradcheckResult second = gradgradcheck(c.function, inputs);
  EXPECT_TRUE(second.ok) << second.message;
  EXPECT_GT(second.elements_checked, 0u);
}


std::vector<OpCase> elementwise_cases() {
  using V = const std::vector<Var>&;
  return {
      {"add_broadcast", {{2, 3}, {3}}, [](V v) { return tanh(add(v[0], v[1])) * v[0]; }},
      {"sub_broadcast", {{2, 1, 3}, {4, 1}}, [](V v) { return sub(v[0], v[1]) * sub(v[0], v[1]); }},
      {"mul_broadcast", {{2, 3}, {2, 1}}, [](V v) { return mul(v[0], v[1]) * v[1]; }},
      {"div_broadcast", {{2, 3}, {3}}, [](V v) { return div(v[0], v[1]); }, 0.5f, 1.5f},
      {"scalars", {{5}}, [](V v) { return div(2.0f, v[0]) + sub(1.0f, v[0]) * 3.0f - div(v[0] * v[0], 4.0f); }, 0.5f, 1.5f},
      {"exp", {{5}}, [](V v) { return exp(v[0]); }},
      {"log", {{5}}, [](V v) { return log(v[0]); }, 0.5f, 2.0f},
      {"sqrt", {{5}}, [](V v) { return sqrt(v[0]); }, 0.5f, 2.0f},
      {"pow", {{5}}, [](V v) { return pow(v[0], 2.5f); }, 0.5f, 2.0f},
      {"neg", {{5}}, [](V v) { return neg(v[0]) * v[0]; }},
      {"relu", {{6}}, [](V v) { return relu(v[0]) * v[0]; }, 0.1f, 1.0f},
      {"relu_negative", {{6}}, [](V v) { return relu(v[0]) * v[0] + v[0] * v[0]; }, -1.0f, -0.1f},
      {"sigmoid", {{5}}, [](V v) { return sigmoid(v[0] * 2.0f); }},
      {"tanh", {{5}}, [](V v) { return tanh(v[0] * 2.0f); }},
  };
}

std::vector<OpCase> structural_cases() {
  using V = const std::vector<Var>&;
  return {
      {"sum_axes_keepdim", {{2, 3, 4}}, [](V v) { return sum(v[0] * v[0], {0, 2}, true) * sum(v[0], {1}, true); }},
      {"mean_axis", {{2, 3}}, [](V v) { Var m = mean(v[0] * v[0], {-1}); return m * m; }},
      {"sum_all", {{3, 2}}, [](V v) { Var s = sum(tanh(v[0])); return s * s; }},
      {"broadcast_to_sum_to", {{3, 1}}, [](V v) { return sum_to(broadcast_to(v[0], {2, 3, 4}) * broadcast_to(v[0], {2, 3, 4}), {3, 1}); }},
      {"reshape", {{2, 6}}, [](V v) { return reshape(v[0] * v[0], {3, 4}); }},
      {"permute", {{2, 3, 4}}, [](V v) { return permute(v[0], {2, 0, 1}) * permute(v[0], {2, 0, 1}); }},
      {"transpose", {{2, 3}}, [](V v) { return matmul(v[0], transpose(v[0], 0, 1)); }},
      {"concat_slice", {{2, 3}, {2, 2}}, [](V v) { Var c = concat({v[0], v[1]}, 1); return slice(c * c, 1, 1, 4); }},
      {"slice_middle", {{4, 3}}, [](V v) { return slice(v[0], 0, 1, 3) * slice(v[0], 0, 2, 4); }},
      {"matmul", {{3, 4}, {4, 2}}, [](V v) { return tanh(matmul(v[0], v[1])); }},
      {"matmul_batched", {{2, 3, 4}, {2, 4, 2}}, [](V v) { return tanh(matmul(v[0], v[1])); }},
      {"matmul_shared_b", {{2, 3, 4}, {4, 2}}, [](V v) { return tanh(matmul(v[0], v[1])); }},
      {"linear", {{3, 4}, {2, 4}, {2}}, [](V v) { return tanh(linear(v[0], v[1], v[2])); }},
      {"linear_no_bias", {{3, 4}, {2, 4}}, [](V v) { return tanh(linear(v[0], v[1])); }},
      {"softmax", {{3, 4}}, [](V v) { return softmax(v[0] * 2.0f, 1); }},
      {"softmax_axis0", {{3, 4}}, [](V v) { return softmax(v[0], 0); }},
      {"log_softmax", {{3, 4}}, [](V v) { return log_softmax(v[0] * 2.0f, -1); }},
      {"cross_entropy", {{4, 5}}, [](V v) { return cross_entropy(v[0] * 2.0f, {0, 3, 4, 1}); }},
      {"mse_loss", {{3, 2}, {3, 2}}, [](V v) { return mse_loss(tanh(v[0]), v[1]); }},
      {"dropout_fixed_mask", {{8}}, [](V v) {
         Generator g(5);
         return dropout(v[0] * v[0], 0.5f, true, g);
       }},
  };
}

std::vector<OpCase> conv_pool_cases() {
  using V = const std::vector<Var>&;
  return {
      {"conv2d", {{2, 2, 5, 5}, {3, 2, 3, 3}, {3}}, [](V v) { return tanh(conv2d(v[0], v[1], v[2])); }},
      {"conv2d_stride_padding", {{1, 2, 6, 5}, {2, 2, 3, 2}}, [](V v) {
         return tanh(conv2d(v[0], v[1], Var{}, {.stride = 2, .padding = 1}));
       }},
      {"conv2d_dilation", {{1, 1, 6, 6}, {2, 1, 2, 2}, {2}}, [](V v) {
         Var y = conv2d(v[0], v[1], v[2], {.dilation = 2});
         return y * y;
       }},
      {"conv2d_input_grad", {{1, 3, 3, 3}, {3, 2, 2, 2}}, [](V v) {
         return tanh(conv2d_input_grad(v[0], v[1], 5, 4, {.stride = 2, .padding = 1}));
       }},
      {"conv2d_weight_grad", {{2, 2, 4, 4}, {2, 3, 2, 3}}, [](V v) {
         return tanh(conv2d_weight_grad(v[0], v[1], 3, 2));
       }},
      {"max_pool2d", {{2, 2, 4, 4}}, [](V v) { Var y = max_pool2d(v[0] * v[0]); return y * y; }, 0.1f, 1.0f},
      {"max_pool2d_overlapping", {{1, 2, 5, 5}}, [](V v) { return tanh(max_pool2d(v[0], {.kernel = 3, .stride = 2, .padding = 1})) * 2.0f; }},
      {"avg_pool2d", {{2, 2, 4, 6}}, [](V v) { Var y = avg_pool2d(v[0]); return y * y; }},
      {"avg_pool2d_padding", {{1, 2, 5, 5}}, [](V v) { return tanh(avg_pool2d(v[0] * v[0], {.kernel = 3, .stride = 2, .padding = 1})); }},
  };
}

TEST(ConvBackwardOps, ShapeErrorsNameTheOp) {
  Tape tape;
  Var dy = tape.input(zeros({1, 3, 3, 3}));
  Var weight = tape.input(zeros({3, 2, 2, 2}));
  // A 5x5 input gives a 4x4 output with this kernel, not 3x3.
  try {
    conv2d_input_grad(dy, weight, 5, 5);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d_input_grad: output gradient [1, 3, 3, 3]"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(conv2d_input_grad(dy, weight, 4, 4));
  Var x = tape.input(zeros({1, 2, 4, 4}));
  EXPECT_THROW(conv2d_weight_grad(x, dy, 3, 3), ShapeError);
  EXPECT_THROW(conv2d_weight_grad(x, dy, 0, 2), ShapeError);
}

// Third order: the function is itself a gradient, dL/dx_k of L = sum(tanh(f(x))) recorded
// with create_graph, so gradgradcheck differentiates the recorded backward of the backward
// ops (conv2d_input_grad, the pool scatter, ...) and compares it with their fast backward.
GradFunction gradient_of(GradFunction f, std::size_t k) {
  return [f, k](const std::vector<Var>& v) {
    return grad(sum(tanh(f(v))), {v[k]}, {.create_graph = true})[0];
  };
}

std::vector<OpCase> third_order_cases() {
  using V = const std::vector<Var>&;
  auto conv = [](V v) { return conv2d(v[0], v[1], Var{}, {.stride = 2, .padding = 1}); };
  return {
      {"conv2d_d_input", {{1, 2, 5, 5}, {2, 2, 3, 3}}, gradient_of(conv, 0)},
      {"conv2d_d_weight", {{1, 2, 5, 5}, {2, 2, 3, 3}}, gradient_of(conv, 1)},
      {"max_pool2d_d_input", {{1, 2, 4, 4}}, gradient_of([](V v) { return max_pool2d(v[0] * v[0]); }, 0), 0.1f, 1.0f},
      {"avg_pool2d_d_input", {{1, 2, 5, 5}}, gradient_of([](V v) { return avg_pool2d(v[0] * v[0], {.kernel = 3, .stride = 2, .padding = 1}); }, 0)},
      {"linear_d_weight", {{3, 4}, {2, 4}, {2}}, gradient_of([](V v) { return linear(v[0], v[1], v[2]); }, 1)},
      {"matmul_d_a", {{2, 3, 4}, {4, 2}}, gradient_of([](V v) { return matmul(v[0], v[1]); }, 0)},
      {"softmax_d_x", {{3, 4}}, gradient_of([](V v) { return softmax(v[0], 1); }, 0)},
      {"cross_entropy_d_logits", {{3, 4}}, gradient_of([](V v) { return cross_entropy(v[0], {1, 0, 3}); }, 0)},
      {"sigmoid_div_d_x", {{5}, {5}}, gradient_of([](V v) { return div(sigmoid(v[0]), v[1]); }, 0), 0.5f, 1.5f},
      {"slice_concat_d_x", {{2, 3}, {2, 2}}, gradient_of([](V v) { return slice(concat({v[0], v[1]}, 1) * v[0].tape().constant(full({2, 5}, 1.5f)), 1, 1, 4); }, 0)},
  };
}

INSTANTIATE_TEST_SUITE_P(ThirdOrder, SecondOrder, ::testing::ValuesIn(third_order_cases()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(ConvPool, SecondOrder, ::testing::ValuesIn(conv_pool_cases()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Elementwise, SecondOrder, ::testing::ValuesIn(elementwise_cases()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Structural, SecondOrder, ::testing::ValuesIn(structural_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace stn
