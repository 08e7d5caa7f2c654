// Forward mode (stn::jvp, the double-vjp construction) and Hessian-vector products (stn::hvp)
// against hand-derived Jacobians and Hessians, finite differences and the reverse mode.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "stn/framework/ops.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;
using test::tensor_from;
using V = const std::vector<Var>&;

// f(x, y) = [x0 y1, tanh(x0) + x1^2, exp(x1) y0]: x [2], y [2] -> [3], written with ops.
Var small_function(V v) {
  Var x0 = slice(v[0], 0, 0, 1), x1 = slice(v[0], 0, 1, 2);
  Var y0 = slice(v[1], 0, 0, 1), y1 = slice(v[1], 0, 1, 2);
  return concat({x0 * y1, tanh(x0) + x1 * x1, exp(x1) * y0}, 0);
}

TEST(Jvp, MatchesTheExplicitJacobianOfASmallFunction) {
  const double x0 = 0.3, x1 = -0.7, y0 = 1.2, y1 = 0.4;
  const Tensor x = tensor_from({2}, {float(x0), float(x1)}), y = tensor_from({2}, {float(y0), float(y1)});
  const Tensor vx = tensor_from({2}, {0.5f, -1.5f}), vy = tensor_from({2}, {2.0f, 0.25f});
  // Rows: outputs; columns: x0, x1, y0, y1.
  const double t = std::tanh(x0);
  const double jacobian[3][4] = {{y1, 0, 0, x0},
                                 {1 - t * t, 2 * x1, 0, 0},
                                 {0, std::exp(x1) * y0, std::exp(x1), 0}};
  const double v[4] = {0.5, -1.5, 2.0, 0.25};
  JvpResult r = jvp(small_function, {x, y}, {vx, vy});
  ASSERT_EQ(shape_of(r.jvp), (Shape{3}));
  EXPECT_NEAR(r.output.data()[1], t + x1 * x1, 1e-6);
  for (int i = 0; i < 3; ++i) {
    double expected = 0;
    for (int j = 0; j < 4; ++j) expected += jacobian[i][j] * v[j];
    EXPECT_NEAR(r.jvp.data()[i], expected, 1e-5 * (1 + std::abs(expected))) << "output " << i;
  }
}

// (f(x + h v) - f(x - h v)) / 2h, Richardson-extrapolated, in double from float evaluations.
std::vector<double> directional_difference(const GradFunction& f, const std::vector<Tensor>& x,
                                           const std::vector<Tensor>& v, double h) {
  auto at = [&](double step) {
    Tape tape;
    NoGradScope no_grad(tape);
    std::vector<Var> vars;
    for (std::size_t k = 0; k < x.size(); ++k) {
      Tensor moved = x[k];
      for (std::size_t i = 0; i < moved.size(); ++i) moved.data()[i] += float(step * v[k].data()[i]);
      vars.push_back(tape.input(moved));
    }
    const Tensor out = f(vars).value();
    return std::vector<double>(out.data(), out.data() + out.size());
  };
  auto central = [&](double step) {
    std::vector<double> plus = at(step), minus = at(-step), d(plus.size());
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = (plus[i] - minus[i]) / (2 * step);
    return d;
  };
  std::vector<double> d1 = central(h), d2 = central(2 * h), d(d1.size());
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = (4 * d1[i] - d2[i]) / 3;
  return d;
}

TEST(Jvp, MatchesFiniteDifferencesThroughConvolutionAndSoftmax) {
  // A little network: conv -> tanh -> flatten -> linear -> softmax, x, weights and bias all
  // moved along their tangents at once.
  const GradFunction f = [](V v) {
    Var h = tanh(conv2d(v[0], v[1], v[2]));
    return softmax(linear(flatten(h), v[3]), 1);
  };
  Generator g(7);
  const std::vector<Tensor> x = {random_tensor({2, 1, 5, 5}, g), random_tensor({2, 1, 3, 3}, g),
                                 random_tensor({2}, g), random_tensor({3, 18}, g, -0.5f, 0.5f)};
  std::vector<Tensor> v;
  for (const Tensor& t : x) v.push_back(random_tensor(shape_of(t), g));
  JvpResult r = jvp(f, x, v);
  const std::vector<double> numeric = directional_difference(f, x, v, 1.0 / 128);
  ASSERT_EQ(r.jvp.size(), numeric.size());
  double largest = 0;
  for (double d : numeric) largest = std::max(largest, std::abs(d));
  ASSERT_GT(largest, 0.05);  // a real directional derivative, not all zeros
  for (std::size_t i = 0; i < numeric.size(); ++i)
    EXPECT_NEAR(r.jvp.data()[i], numeric[i], 5e-4 + 2e-3 * std::abs(numeric[i])) << "element " << i;
}

TEST(Jvp, UnitTangentsGiveTheColumnsOfTheReverseModeJacobian) {
  const GradFunction f = [](V v) { return tanh(matmul(v[0], v[0])) * v[0]; };
  Generator g(3);
  const Tensor x = random_tensor({2, 2}, g);
  // Rows of the Jacobian from reverse mode: d f_i / dx by stn::grad of each output element.
  Tape tape;
  Var xv = tape.input(x, true);
  Var y = f({xv});
  for (std::size_t j = 0; j < 4; ++j) {
    Tensor e = zeros({2, 2});
    e.data()[j] = 1.0f;
    const Tensor column = jvp(f, {x}, {e}).jvp;
    for (std::size_t i = 0; i < 4; ++i) {
      Tensor pick = zeros({2, 2});
      pick.data()[i] = 1.0f;
      const float row_entry = grad(sum(y * tape.constant(pick)), {xv})[0].value().data()[j];
      EXPECT_NEAR(column.data()[i], row_entry, 1e-6) << "J[" << i << "][" << j << "]";
    }
  }
}

TEST(Jvp, OutputIndependentOfTheInputsHasAZeroJvp) {
  Tensor c = tensor_from({2}, {1.0f, 2.0f});
  JvpResult r = jvp([&](V v) { return v[0].tape().constant(c) * 3.0f; }, {full({3}, 1.0f)}, {full({3}, 1.0f)});
  EXPECT_FLOAT_EQ(r.output.data()[1], 6.0f);
  EXPECT_FLOAT_EQ(r.jvp.data()[0], 0.0f);
  EXPECT_FLOAT_EQ(r.jvp.data()[1], 0.0f);
}

TEST(Jvp, MismatchedTangentsAreRefusedByName) {
  const GradFunction f = [](V v) { return v[0] * 2.0f; };
  try {
    jvp(f, {full({3}, 1.0f)}, {full({2}, 1.0f)});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "jvp: tangents 0 has shape [2], input 0 has shape [3]");
  }
  try {
    jvp(f, {full({3}, 1.0f)}, {});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "jvp: 1 inputs but 0 tangents (one per input)");
  }
  EXPECT_THROW(hvp(f, {full({3}, 1.0f)}, {full({3}, 1.0f)}), ShapeError);  // not a scalar
}

TEST(Hvp, MatchesTheHandDerivedHessianWithCrossTerms) {
  // L = sum(x^3) + x0 * y0 * y1: H_xx = diag(6 x), H_xy[0] = (y1, y0), H_yy = [[0, x0], [x0, 0]].
  const GradFunction f = [](V v) {
    return sum(v[0] * v[0] * v[0]) + sum(slice(v[0], 0, 0, 1) * slice(v[1], 0, 0, 1) * slice(v[1], 0, 1, 2));
  };
  const float x0 = 0.5f, x1 = -1.0f, y0 = 2.0f, y1 = 3.0f;
  const float vx0 = 1.0f, vx1 = 2.0f, vy0 = -1.0f, vy1 = 0.5f;
  HvpResult r = hvp(f, {tensor_from({2}, {x0, x1}), tensor_from({2}, {y0, y1})},
                    {tensor_from({2}, {vx0, vx1}), tensor_from({2}, {vy0, vy1})});
  EXPECT_FLOAT_EQ(r.output, x0 * x0 * x0 + x1 * x1 * x1 + x0 * y0 * y1);
  EXPECT_FLOAT_EQ(r.grad[0].data()[0], 3 * x0 * x0 + y0 * y1);
  EXPECT_FLOAT_EQ(r.hvp[0].data()[0], 6 * x0 * vx0 + y1 * vy0 + y0 * vy1);
  EXPECT_FLOAT_EQ(r.hvp[0].data()[1], 6 * x1 * vx1);
  EXPECT_FLOAT_EQ(r.hvp[1].data()[0], y1 * vx0 + x0 * vy1);
  EXPECT_FLOAT_EQ(r.hvp[1].data()[1], y0 * vx0 + x0 * vy0);
}

TEST(Hvp, EqualsTheJvpOfTheGradient) {
  // Forward over reverse and reverse over reverse must agree: H v = J_{grad L} v.
  const GradFunction loss = [](V v) { return cross_entropy(linear(tanh(v[0]), v[1]), {1, 0, 2}); };
  Generator g(5);
  const std::vector<Tensor> x = {random_tensor({3, 4}, g), random_tensor({3, 4}, g)};
  const std::vector<Tensor> v = {random_tensor({3, 4}, g), random_tensor({3, 4}, g)};
  HvpResult h = hvp(loss, x, v);
  for (std::size_t k = 0; k < 2; ++k) {
    const GradFunction gradient_k = [&](V vars) { return grad(loss(vars), vars, {.create_graph = true})[k]; };
    const Tensor forward_over_reverse = jvp(gradient_k, x, v).jvp;
    EXPECT_LT(test::max_abs_difference(forward_over_reverse, h.hvp[k]), 1e-6f) << "input " << k;
  }
}

}  // namespace
}  // namespace stn
