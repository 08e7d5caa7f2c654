// Gradchecks and exact cases for the reduce, shape, linalg and loss ops.
#include <gtest/gtest.h>

#include <cmath>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/linalg.h"
#include "stn/framework/ops/loss.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;
using test::tensor_from;

void expect_gradcheck(const char* name, const GradFunction& f, const std::vector<Tensor>& inputs,
                      GradcheckOptions options = {}) {
  GradcheckResult r = gradcheck(f, inputs, options);
  EXPECT_TRUE(r.ok) << name << ": " << r.message;
  EXPECT_GT(r.elements_checked, 0u) << name;
}

TEST(Gradcheck, CatchesAWrongBackward) {
  // An op whose backward is off by a factor of two must fail the check.
  auto wrong = [](const std::vector<Var>& v) {
    Var x = v[0];
    Tensor out = x.value() * 3.0f;
    return x.tape().record("wrong", {x}, std::move(out), [](const BackwardContext& ctx) {
      for (std::size_t i = 0; i < ctx.grad_output.size(); ++i)
        ctx.grad(0)->data()[i] += 6.0f * ctx.grad_output.data()[i];
    });
  };
  Generator g(3);
  EXPECT_FALSE(gradcheck(wrong, {random_tensor({4}, g)}).ok);
}

TEST(Reduce, SumAndMeanValues) {
  Tape tape;
  Var x = tape.input(tensor_from({2, 3}, {1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(sum(x).value().data()[0], 21.0f);
  EXPECT_EQ(sum(x).ndim(), 0u);
  Var rows = sum(x, {1});
  ASSERT_EQ(rows.shape(), (Shape{2}));
  EXPECT_EQ(rows.value().data()[1], 15.0f);
  Var cols = mean(x, {0}, true);
  ASSERT_EQ(cols.shape(), (Shape{1, 3}));
  EXPECT_EQ(cols.value().data()[2], 4.5f);
  EXPECT_THROW(sum(x, {2}), ShapeError);
  EXPECT_THROW(sum(x, {1, -1}), ShapeError);
}

TEST(Reduce, Gradchecks) {
  Generator g(4);
  Tensor x = random_tensor({2, 3, 4, 5}, g);
  expect_gradcheck("sum all", [](const std::vector<Var>& v) { return sum(v[0]); }, {x});
  expect_gradcheck("sum 1,3", [](const std::vector<Var>& v) { return sum(v[0], {1, 3}); }, {x});
  expect_gradcheck("mean -1 keepdim", [](const std::vector<Var>& v) { return mean(v[0], {-1}, true); }, {x});
  expect_gradcheck("mean 0,2", [](const std::vector<Var>& v) { return mean(v[0], {0, 2}); }, {x});
}

TEST(Shape, ValuesAndErrors) {
  Tape tape;
  Var x = tape.input(tensor_from({2, 3}, {1, 2, 3, 4, 5, 6}));
  Var t = transpose(x, 0, 1);
  ASSERT_EQ(t.shape(), (Shape{3, 2}));
  const float transposed[] = {1, 4, 2, 5, 3, 6};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.value().data()[i], transposed[i]);
  Var c = concat({x, x}, 1);
  ASSERT_EQ(c.shape(), (Shape{2, 6}));
  EXPECT_EQ(c.value().data()[3], 1.0f);
  Var s = slice(x, 1, 1, 3);
  ASSERT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.value().data()[2], 5.0f);
  EXPECT_EQ(reshape(x, {-1}).shape(), (Shape{6}));
  EXPECT_THROW(reshape(x, {4, -1}), ShapeError);
  EXPECT_THROW(reshape(x, {-1, -1}), ShapeError);
  EXPECT_THROW(concat({x, transpose(x, 0, 1)}, 0), ShapeError);
  EXPECT_THROW(slice(x, 0, 2, 2), ShapeError);
  EXPECT_THROW(permute(x, {0, 0}), ShapeError);
}

TEST(Shape, Gradchecks) {
  Generator g(5);
  Tensor x = random_tensor({2, 3, 4, 5}, g);
  Tensor y = random_tensor({2, 2, 4, 5}, g);
  expect_gradcheck("reshape", [](const std::vector<Var>& v) { return reshape(v[0], {6, -1}); }, {x});
  expect_gradcheck("flatten", [](const std::vector<Var>& v) { return flatten(v[0]); }, {x});
  expect_gradcheck("permute", [](const std::vector<Var>& v) { return permute(v[0], {2, 0, 3, 1}); }, {x});
  expect_gradcheck("transpose", [](const std::vector<Var>& v) { return transpose(v[0], -1, 1); }, {x});
  expect_gradcheck("concat", [](const std::vector<Var>& v) { return concat({v[0], v[1], v[0]}, 1); }, {x, y});
  expect_gradcheck("slice", [](const std::vector<Var>& v) { return slice(v[0], 2, 1, -1); }, {x});
}

TEST(Linalg, MatmulValues) {
  Tape tape;
  Var a = tape.input(tensor_from({2, 2}, {1, 2, 3, 4}));
  Var b = tape.input(tensor_from({2, 1}, {5, 6}));
  Var c = matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 1}));
  EXPECT_EQ(c.value().data()[0], 17.0f);
  EXPECT_EQ(c.value().data()[1], 39.0f);
  try {
    matmul(b, b);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("matmul: cannot multiply [2, 1] by [2, 1]"), std::string::npos) << e.what();
  }
}

TEST(Linalg, Gradchecks) {
  Generator g(6);
  expect_gradcheck("matmul 2d", [](const std::vector<Var>& v) { return matmul(v[0], v[1]); },
                   {random_tensor({3, 4}, g), random_tensor({4, 5}, g)});
  expect_gradcheck("matmul batched", [](const std::vector<Var>& v) { return matmul(v[0], v[1]); },
                   {random_tensor({2, 3, 4}, g), random_tensor({2, 4, 2}, g)});
  expect_gradcheck("matmul shared", [](const std::vector<Var>& v) { return matmul(v[0], v[1]); },
                   {random_tensor({2, 3, 4}, g), random_tensor({4, 2}, g)});
  expect_gradcheck("linear", [](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); },
                   {random_tensor({3, 5}, g), random_tensor({4, 5}, g), random_tensor({4}, g)});
  expect_gradcheck("linear batch 1 no bias", [](const std::vector<Var>& v) { return linear(v[0], v[1]); },
                   {random_tensor({1, 5}, g), random_tensor({2, 5}, g)});
}

TEST(Loss, CrossEntropyValueAndErrors) {
  Tape tape;
  Var logits = tape.input(tensor_from({2, 3}, {0, 0, 0, 1, 2, 3}));
  Var loss = cross_entropy(logits, {0, 2});
  double expected = (std::log(3.0) + (std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0)) / 2;
  EXPECT_NEAR(loss.value().data()[0], expected, 1e-6);
  EXPECT_THROW(cross_entropy(logits, {0}), ShapeError);
  EXPECT_THROW(cross_entropy(logits, {0, 3}), ShapeError);
  EXPECT_THROW(cross_entropy(logits, {-1, 0}), ShapeError);
}

TEST(Loss, SoftmaxIsStableForLargeLogits) {
  Tape tape;
  Var x = tape.input(tensor_from({1, 3}, {1000, 1000, -1000}));
  Var y = softmax(x);
  EXPECT_FLOAT_EQ(y.value().data()[0], 0.5f);
  EXPECT_FLOAT_EQ(y.value().data()[2], 0.0f);
  EXPECT_TRUE(std::isfinite(log_softmax(x).value().data()[2]));
}

TEST(Loss, Gradchecks) {
  Generator g(7);
  Tensor logits = random_tensor({4, 5}, g, -2, 2);
  expect_gradcheck("softmax", [](const std::vector<Var>& v) { return softmax(v[0]); }, {logits});
  expect_gradcheck("softmax axis 0", [](const std::vector<Var>& v) { return softmax(v[0], 0); }, {logits});
  expect_gradcheck("log_softmax", [](const std::vector<Var>& v) { return log_softmax(v[0]); }, {logits});
  expect_gradcheck("log_softmax 3d axis 1", [](const std::vector<Var>& v) { return log_softmax(v[0], 1); },
                   {random_tensor({2, 3, 4}, g)});
  expect_gradcheck("cross_entropy", [](const std::vector<Var>& v) { return cross_entropy(v[0], {1, 0, 4, 4}); }, {logits});
  expect_gradcheck("cross_entropy batch 1", [](const std::vector<Var>& v) { return cross_entropy(v[0], {2}); },
                   {random_tensor({1, 3}, g)});
  expect_gradcheck("mse", [](const std::vector<Var>& v) { return mse_loss(v[0], v[1]); },
                   {random_tensor({2, 3}, g), random_tensor({2, 3}, g)});
}

TEST(Loss, DropoutGradcheckWithAFixedMask) {
  // The same seed inside the function gives every evaluation the same mask.
  Generator g(12);
  expect_gradcheck("dropout", [](const std::vector<Var>& v) {
    Generator masks(5);
    return dropout(v[0], 0.3f, true, masks);
  }, {random_tensor({1, 3, 4, 5}, g)});
}

TEST(Loss, DropoutTrainAndEval) {
  Tape tape;
  Generator g(8);
  Var x = tape.input(full({1000}, 1.0f), true);
  Var eval_out = dropout(x, 0.5f, false, g);
  EXPECT_EQ(eval_out.index(), x.index());  // identity outside training
  Var y = dropout(x, 0.5f, true, g);
  int zeros_seen = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    float v = y.value().data()[i];
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros_seen += v == 0.0f;
  }
  EXPECT_GT(zeros_seen, 400);
  EXPECT_LT(zeros_seen, 600);
  tape.backward(sum(y));
  for (std::size_t i = 0; i < 1000; ++i) EXPECT_EQ(x.grad().data()[i], y.value().data()[i]);
  EXPECT_THROW(dropout(x, 1.0f, true, g), std::invalid_argument);
}

}  // namespace
}  // namespace stn
