// The tape itself: recording, reverse accumulation, no-grad, clearing, parameters, and the
// printer and DOT export users study it with.
#include <gtest/gtest.h>

#include <cmath>

#include "stn/framework/error.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/linalg.h"
#include "stn/framework/ops/reduce.h"
#include "test_util.h"

namespace stn {
namespace {

using test::tensor_from;

TEST(Tape, AccumulatesWhenAValueIsUsedTwice) {
  Tape tape;
  Var x = tape.input(tensor_from({2}, {3, -2}), true);
  Var y = sum(x * x + x);  // dy/dx = 2x + 1
  tape.backward(y);
  EXPECT_FLOAT_EQ(x.grad().data()[0], 7.0f);
  EXPECT_FLOAT_EQ(x.grad().data()[1], -3.0f);
}

TEST(Tape, ParametersKeepValueAndGradientAcrossSteps) {
  Parameter w("w", tensor_from({2}, {1, 2}));
  for (int step = 0; step < 2; ++step) {
    Tape tape;
    Var loss = sum(tape.param(w) * 3.0f);
    tape.backward(loss);
  }
  // Two backward passes without zero_grad: gradients add up.
  EXPECT_FLOAT_EQ(w.grad.data()[0], 6.0f);
  w.zero_grad();
  EXPECT_FLOAT_EQ(w.grad.data()[1], 0.0f);
  EXPECT_FLOAT_EQ(w.value.data()[1], 2.0f);
}

TEST(Tape, InputsWithoutGradientGetNone) {
  Tape tape;
  Var x = tape.input(tensor_from({2}, {1, 2}));
  Var w = tape.input(tensor_from({2}, {3, 4}), true);
  tape.backward(sum(x * w));
  EXPECT_EQ(x.grad().size(), 0u);  // never computed
  EXPECT_FLOAT_EQ(w.grad().data()[1], 2.0f);
}

TEST(Tape, NoGradScopeRecordsNoBackward) {
  Tape tape;
  Parameter w("w", tensor_from({2}, {1, 2}));
  {
    NoGradScope no_grad(tape);
    Var y = sum(tape.param(w) * 2.0f);
    EXPECT_FLOAT_EQ(y.value().data()[0], 6.0f);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_THROW(tape.backward(y), std::logic_error);
    for (std::size_t i = 0; i < tape.size(); ++i) {
      EXPECT_FALSE(tape.entry(i).backward);
      EXPECT_TRUE(tape.entry(i).inputs.empty());
    }
  }
  EXPECT_TRUE(tape.grad_enabled());
}

TEST(Tape, ClearReleasesEntries) {
  Tape tape;
  Var x = tape.input(full({100}, 1.0f), true);
  tape.backward(sum(exp(x)));
  EXPECT_EQ(tape.size(), 3u);
  tape.clear();
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_THROW(x.value(), std::logic_error);
}

// backward(l1) then backward(l2) on one tape must equal one backward of l1 + l2: the first
// pass's intermediate gradients are not propagated again. d/dx (tanh x + tanh^2 x) at 0.5 is
// (1 - t^2)(1 + 2t) = 1.5133 (PyTorch with retain_graph gives the same).
TEST(Tape, SecondBackwardAddsOnlyItsOwnGradient) {
  Tape tape;
  Var x = tape.input(test::tensor_from({2}, {0.5f, -1.0f}), true);
  Var t = tanh(x);
  Var l1 = sum(t);
  Var l2 = sum(t * t);
  tape.backward(l1);
  tape.backward(l2);
  const double tanh_half = std::tanh(0.5);
  EXPECT_NEAR(x.grad().data()[0], 1.5133, 1e-4);
  EXPECT_NEAR(x.grad().data()[0], (1 - tanh_half * tanh_half) * (1 + 2 * tanh_half), 1e-6);
  Tape once;
  Var y = once.input(test::tensor_from({2}, {0.5f, -1.0f}), true);
  Var u = tanh(y);
  once.backward(sum(u) + sum(u * u));
  EXPECT_FLOAT_EQ(x.grad().data()[0], y.grad().data()[0]);
  EXPECT_FLOAT_EQ(x.grad().data()[1], y.grad().data()[1]);
}

// A training loop that forgets tape.clear(): each step's gradient is that step's alone.
TEST(Tape, ForgottenClearGivesTheSameGradientEveryStep) {
  Parameter w("w", test::tensor_from({3}, {0.3f, -0.2f, 0.1f}));
  Tape tape;
  std::vector<float> first;
  for (int step = 0; step < 4; ++step) {
    Var x = tape.input(test::tensor_from({3}, {1.0f, 2.0f, -1.0f}));
    Var loss = sum(tanh(tape.param(w) * x));
    w.zero_grad();
    tape.backward(loss);
    std::vector<float> now(w.grad.data(), w.grad.data() + 3);
    if (step == 0) first = now;
    for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(now[i], first[i]) << "step " << step;
  }
}

TEST(Tape, StaleVarRaisesNamingEntryAndGeneration) {
  Tape tape;
  Var x = tape.input(full({2}, 1.0f), true);
  Var y = exp(x);
  tape.clear();
  Var z = tape.input(full({2}, 3.0f));  // now entry 0 again
  Var w = exp(z);
  (void)w;
  try {
    (void)y.value();
    FAIL() << "a stale Var was read";
  } catch (const std::logic_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("entry #1"), std::string::npos) << message;
    EXPECT_NE(message.find("generation 0"), std::string::npos) << message;
    EXPECT_NE(message.find("generation 1"), std::string::npos) << message;
  }
  EXPECT_THROW(exp(x), std::logic_error);
  EXPECT_THROW(tape.backward(sum(y)), std::logic_error);
}

TEST(Tape, OpNamesAreOwnedByTheEntry) {
  Tape tape;
  Var x = tape.input(full({1}, 2.0f), true);
  Var y;
  {
    std::string name = "my_custom_op_with_a_long_name";
    y = tape.record(name, {x}, full({1}, 4.0f), [](const BackwardContext&) {});
    name.assign(name.size(), '#');
  }
  EXPECT_EQ(tape.describe_entry(y.index()), "#1 my_custom_op_with_a_long_name [1]");
}

TEST(Grad, SecondDerivativeOfACube) {
  Tape tape;
  Var x = tape.input(full({1}, 2.0f), true);
  Var y = sum(x * x * x);
  Var dy = grad(y, {x}, {.create_graph = true})[0];
  EXPECT_FLOAT_EQ(dy.value().data()[0], 12.0f);  // 3 x^2
  Var d2y = grad(sum(dy), {x})[0];
  EXPECT_FLOAT_EQ(d2y.value().data()[0], 12.0f);  // 6 x
  Var cube = sum(pow(x, 3.0f));
  Var d1 = grad(cube, {x}, {.create_graph = true})[0];
  Var d2 = grad(sum(d1), {x}, {.create_graph = true})[0];
  Var d3 = grad(sum(d2), {x})[0];
  EXPECT_FLOAT_EQ(d2.value().data()[0], 12.0f);
  EXPECT_FLOAT_EQ(d3.value().data()[0], 6.0f);
}

TEST(Grad, LeavesEntryAndParameterGradientsAlone) {
  Parameter w("w", test::tensor_from({2}, {1.0f, 2.0f}));
  w.zero_grad();
  Tape tape;
  Var x = tape.input(test::tensor_from({2}, {3.0f, 4.0f}), true);
  Var loss = sum(tape.param(w) * x * x);
  std::vector<Var> g = grad(loss, {x, tape.param(w)});
  EXPECT_FLOAT_EQ(g[0].value().data()[1], 16.0f);  // 2 w x
  EXPECT_FLOAT_EQ(g[1].value().data()[1], 0.0f);   // a second param entry: loss does not use it
  EXPECT_FLOAT_EQ(w.grad.data()[0], 0.0f);
  EXPECT_EQ(x.grad().size(), 0u);
  EXPECT_FALSE(g[0].requires_grad());  // without create_graph: constants
}

TEST(Grad, UnrelatedInputGetsZerosAndConstantsAreRefused) {
  Tape tape;
  Var x = tape.input(full({2}, 1.0f), true);
  Var unrelated = tape.input(full({3}, 1.0f), true);
  Var constant = tape.input(full({2}, 1.0f));
  Var y = sum(exp(x) * constant);
  for (bool create_graph : {false, true}) {
    std::vector<Var> g = grad(y, {x, unrelated}, {.create_graph = create_graph});
    ASSERT_EQ(g[1].shape(), Shape{3});
    EXPECT_FLOAT_EQ(g[1].value().data()[2], 0.0f);
    EXPECT_NEAR(g[0].value().data()[0], std::exp(1.0), 1e-6);
  }
  EXPECT_THROW(grad(y, {constant}), std::invalid_argument);
  EXPECT_THROW(grad(exp(x), {x}), ShapeError);
}

TEST(Grad, WithRespectToAnIntermediateValue) {
  Tape tape;
  Var x = tape.input(full({1}, 0.5f), true);
  Var h = x * 3.0f;
  Var y = sum(tanh(h));
  const double t = std::tanh(1.5);
  EXPECT_NEAR(grad(y, {h})[0].value().data()[0], 1 - t * t, 1e-6);
  std::vector<Var> both = grad(y, {h, x}, {.create_graph = true});
  EXPECT_NEAR(both[1].value().data()[0], 3 * (1 - t * t), 1e-6);
  // d/dx of dy/dh = -2 t (1 - t^2) * 3
  EXPECT_NEAR(grad(sum(both[0]), {x})[0].value().data()[0], -6 * t * (1 - t * t), 1e-5);
}

TEST(Grad, OpWithoutDifferentiableBackwardIsRefusedUnderCreateGraph) {
  Tape tape;
  Var x = tape.input(full({1}, 2.0f), true);
  Var y = tape.record("first_order_only", {x}, full({1}, 4.0f), [](const BackwardContext& ctx) {
    ctx.grad(0)->data()[0] += 4.0f * ctx.grad_output.data()[0];
  });
  EXPECT_FLOAT_EQ(grad(sum(y), {x})[0].value().data()[0], 4.0f);
  try {
    grad(sum(y), {x}, {.create_graph = true});
    FAIL();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("first_order_only"), std::string::npos) << e.what();
  }
}

TEST(Grad, BackwardEntriesAreMarkedInThePrinter) {
  Tape tape;
  Var x = tape.input(full({1}, 2.0f), true);
  Var y = sum(x * x);
  grad(y, {x}, {.create_graph = true});
  const std::string text = tape.to_string();
  EXPECT_NE(text.find("[backward]"), std::string::npos) << text;
  EXPECT_NE(tape.to_dot().find("dashed"), std::string::npos);
  tape.backward(y);
  EXPECT_NE(tape.to_string().find("|grad| 4"), std::string::npos) << tape.to_string();
}

TEST(Tape, BackwardNeedsAScalarOrASeed) {
  Tape tape;
  Var x = tape.input(full({3}, 1.0f), true);
  Var y = x * 2.0f;
  EXPECT_THROW(tape.backward(y), ShapeError);
  tape.backward(y, full({3}, 1.0f));
  EXPECT_FLOAT_EQ(x.grad().data()[2], 2.0f);
  EXPECT_THROW(tape.backward(y, full({4}, 1.0f)), ShapeError);
}

TEST(Tape, MixingTapesIsAnError) {
  Tape a, b;
  Var x = a.input(full({1}, 1.0f));
  Var y = b.input(full({1}, 1.0f));
  EXPECT_THROW(add(x, y), std::invalid_argument);
}

// A small graph: y = sum(relu(x W) + b): entries in creation order with their shapes.
class TapeInspection : public ::testing::Test {
 protected:
  void SetUp() override {
    weight = Parameter("layer.weight", full({3, 2}, 0.5f));
    Var x = tape.input(full({4, 3}, 1.0f));
    Var h = matmul(x, tape.param(weight));
    Var y = sum(relu(h) + 1.0f);
    tape.backward(y);
  }
  Tape tape;
  Parameter weight;
};

TEST_F(TapeInspection, PrinterListsEntriesInOrder) {
  const std::string text = tape.to_string();
  const char* expected_lines[] = {
      "tape: 6 entries",
      "   0  input",
      "   1  param            ()             -> [3, 2]",
      "   2  matmul           (0, 1)         -> [4, 2]",
      "   3  relu             (2)            -> [4, 2]",
      "   4  add_scalar       (3)            -> [4, 2]",
      "   5  sum              (4)            -> []",
  };
  std::size_t position = 0;
  for (const char* line : expected_lines) {
    auto found = text.find(line, position);
    ASSERT_NE(found, std::string::npos) << "missing or out of order: '" << line << "' in\n" << text;
    position = found;
  }
  EXPECT_NE(text.find("layer.weight"), std::string::npos);
  EXPECT_NE(text.find("(no grad)"), std::string::npos);  // the input
}

TEST_F(TapeInspection, DotExportHasEveryNodeAndEdge) {
  const std::string dot = tape.to_dot();
  EXPECT_EQ(dot.rfind("digraph tape {", 0), 0u);
  for (const char* edge : {"n0 -> n2;", "n1 -> n2;", "n2 -> n3;", "n3 -> n4;", "n4 -> n5;"})
    EXPECT_NE(dot.find(edge), std::string::npos) << edge << "\n" << dot;
  EXPECT_NE(dot.find("#2 matmul\\n[4, 2]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("layer.weight"), std::string::npos);
  EXPECT_EQ(dot.back(), '\n');
}

}  // namespace
}  // namespace stn

namespace stn {
namespace {

TEST(TapeAnomaly, FindsTheFirstNonFiniteValueAndGradient) {
  Tape tape;
  Var x = tape.input(test::tensor_from({2}, {1.0f, -1.0f}), true);
  Var y = log(x);  // log(-1) = NaN
  Var z = sum(y * 2.0f);
  EXPECT_EQ(tape.first_non_finite_value(), std::optional<std::size_t>(y.index()));
  EXPECT_EQ(tape.describe_entry(y.index()), "#1 log [2]");
  Tape clean;
  Var a = clean.input(test::tensor_from({1}, {0.0f}), true);
  Var b = sqrt(a);  // finite forward, infinite gradient at 0
  clean.backward(sum(b));
  EXPECT_FALSE(clean.first_non_finite_value());
  EXPECT_EQ(clean.first_non_finite_gradient(), std::optional<std::size_t>(a.index()));
}

TEST(TapeAnomaly, AnomalyModeNamesTheOp) {
  Tape tape;
  tape.set_anomaly_detection(true);
  Var x = tape.input(test::tensor_from({1}, {-1.0f}), true);
  try {
    log(x);
    FAIL();
  } catch (const NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("forward of #1 log [1]"), std::string::npos) << e.what();
  }
  Tape backward_tape;
  backward_tape.set_anomaly_detection(true);
  Var a = backward_tape.input(test::tensor_from({1}, {0.0f}), true);
  Var s = sum(sqrt(a));
  try {
    backward_tape.backward(s);
    FAIL();
  } catch (const NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("backward of #1 sqrt [1]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stn
