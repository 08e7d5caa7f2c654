#include <gtest/gtest.h>

#include "stn/framework/error.h"
#include "stn/framework/gradcheck.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/random.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;

TEST(Elementwise, BroadcastShapes) {
  EXPECT_EQ(broadcast_shape("add", {2, 3, 4}, {3, 1}), (Shape{2, 3, 4}));
  EXPECT_EQ(broadcast_shape("add", {1}, {5, 1}), (Shape{5, 1}));
  EXPECT_EQ(broadcast_shape("add", {}, {2, 2}), (Shape{2, 2}));
  EXPECT_THROW(broadcast_shape("add", {2, 3}, {4}), ShapeError);
}

TEST(Elementwise, ShapeMismatchNamesOpAndShapes) {
  Tape tape;
  Var a = tape.input(zeros({2, 3}));
  Var b = tape.input(zeros({4}));
  try {
    mul(a, b);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("mul"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 3]"), std::string::npos) << message;
    EXPECT_NE(message.find("[4]"), std::string::npos) << message;
  }
}

TEST(Elementwise, BroadcastValues) {
  Tape tape;
  Tensor a = zeros({2, 3});
  Tensor b = zeros({3});
  for (int i = 0; i < 6; ++i) a.data()[i] = static_cast<float>(i);
  for (int i = 0; i < 3; ++i) b.data()[i] = 10.0f * static_cast<float>(i + 1);
  Var y = tape.input(a) + tape.input(b);
  ASSERT_EQ(y.shape(), (Shape{2, 3}));
  const float expected[] = {10, 21, 32, 13, 24, 35};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.value().data()[i], expected[i]);
}

struct BinaryCase {
  const char* name;
  Var (*op)(Var, Var);
  Shape a, b;
};

void PrintTo(const BinaryCase& c, std::ostream* os) { *os << c.name; }

class BinaryGradcheck : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(BinaryGradcheck, MatchesFiniteDifferences) {
  const BinaryCase& c = GetParam();
  Generator g(1);
  Tensor a = random_tensor(c.a, g, 0.5f, 1.5f);
  Tensor b = random_tensor(c.b, g, 0.5f, 1.5f);
  auto r = gradcheck([&](const std::vector<Var>& v) { return c.op(v[0], v[1]); }, {a, b});
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
}

Var add_op(Var a, Var b) { return add(a, b); }
Var sub_op(Var a, Var b) { return sub(a, b); }
Var mul_op(Var a, Var b) { return mul(a, b); }
Var div_op(Var a, Var b) { return div(a, b); }

INSTANTIATE_TEST_SUITE_P(
    Ops, BinaryGradcheck,
    ::testing::Values(BinaryCase{"add same", add_op, {2, 3}, {2, 3}},
                      BinaryCase{"add bias", add_op, {2, 3, 4, 5}, {3, 1, 1}},
                      BinaryCase{"sub row", sub_op, {1, 4}, {3, 1}},
                      BinaryCase{"mul scalar-shaped", mul_op, {3, 2}, {}},
                      BinaryCase{"mul batch1", mul_op, {1, 2, 3, 5}, {1, 1, 3, 1}},
                      BinaryCase{"div both", div_op, {2, 1, 3}, {4, 1}}),
    [](const ::testing::TestParamInfo<BinaryCase>& info) { return test::test_name(info.param.name); });

TEST(Elementwise, UnaryGradchecks) {
  Generator g(2);
  Tensor x = random_tensor({2, 3, 5}, g, 0.2f, 2.0f);
  Tensor signed_x = random_tensor({3, 7}, g, -2.0f, 2.0f);
  // keep ReLU away from its kink
  for (std::size_t i = 0; i < signed_x.size(); ++i)
    if (std::abs(signed_x.data()[i]) < 0.05f) signed_x.data()[i] = 0.5f;
  struct Case { const char* name; std::function<Var(Var)> f; const Tensor* input; };
  std::vector<Case> cases = {
      {"neg", [](Var v) { return neg(v); }, &signed_x},
      {"exp", [](Var v) { return exp(v); }, &signed_x},
      {"log", [](Var v) { return log(v); }, &x},
      {"sqrt", [](Var v) { return sqrt(v); }, &x},
      {"pow", [](Var v) { return pow(v, 2.5f); }, &x},
      {"relu", [](Var v) { return relu(v); }, &signed_x},
      {"sigmoid", [](Var v) { return sigmoid(v); }, &signed_x},
      {"tanh", [](Var v) { return tanh(v); }, &signed_x},
      {"add_scalar", [](Var v) { return v + 3.0f; }, &signed_x},
      {"rsub_scalar", [](Var v) { return 3.0f - v; }, &signed_x},
      {"mul_scalar", [](Var v) { return v * -2.0f; }, &signed_x},
      {"div_scalar", [](Var v) { return v / 4.0f; }, &signed_x},
      {"rdiv_scalar", [](Var v) { return 2.0f / v; }, &x},
  };
  for (const Case& c : cases) {
    auto r = gradcheck([&](const std::vector<Var>& v) { return c.f(v[0]); }, {*c.input});
    EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  }
}

TEST(Elementwise, ReluKinkHasZeroSubgradient) {
  Tape tape;
  Var x = tape.input(zeros({3}), true);
  tape.backward(relu(x), full({3}, 1.0f));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(x.grad().data()[i], 0.0f);
}

}  // namespace
}  // namespace stn
