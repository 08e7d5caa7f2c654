// The tape itself: recording, reverse accumulation, no-grad, clearing, parameters, and the
// printer and DOT export users study it with.
#include <gtest/gtest.h>

#include "framework/error.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linalg.h"
#include "framework/ops/reduce.h"
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
  EXPECT_THROW(x.value(), std::out_of_range);
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
