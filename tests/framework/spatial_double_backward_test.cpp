// Second order through the spatial transformer: gradgradcheck on the four grid generators
// and on grid_sample (input and grid together, both padding modes, both align_corners
// values, grids that leave the image), exact cases, and the golden second derivatives of
// tests/data/double_backward_spatial.json (PyTorch 1.13 in float64; for grid_sample a
// bilinear sampler in plain differentiable PyTorch ops, see
// tests/golden/make_double_backward_golden.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stn/framework/gradcheck.h"
#include "stn/framework/kernels/sampler.h"
#include "stn/framework/kernels/sampler_derivatives.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"
#include "stn/framework/ops/spatial.h"
#include "test_util.h"

namespace stn {
namespace {

using test::random_tensor;
using V = const std::vector<Var>&;

// ---- Inputs ---------------------------------------------------------------------------

Tensor identity_theta(const std::string& kind, std::size_t batch, std::size_t count = 9) {
  Tensor theta;
  if (kind == "affine") {
    theta = zeros({batch, 2, 3});
    for (std::size_t n = 0; n < batch; ++n) theta.data()[n * 6] = theta.data()[n * 6 + 4] = 1.0f;
  } else if (kind == "attention") {
    theta = zeros({batch, 3});
    for (std::size_t n = 0; n < batch; ++n) theta.data()[n * 3] = 1.0f;
  } else if (kind == "projective") {
    theta = zeros({batch, 8});
    for (std::size_t n = 0; n < batch; ++n) theta.data()[n * 8] = theta.data()[n * 8 + 4] = 1.0f;
  } else {
    const Tensor points = tps_control_points(count);
    theta = empty({batch, count, 2});
    for (std::size_t n = 0; n < batch; ++n)
      std::copy(points.data(), points.data() + points.size(), theta.data() + n * points.size());
  }
  return theta;
}

// The identity plus uniform noise in [-scale, scale] (the projective last row halved, so that
// w' stays well away from 0).
Tensor random_theta(const std::string& kind, std::size_t batch, float scale, Generator& g,
                    std::size_t count = 9) {
  Tensor theta = identity_theta(kind, batch, count);
  const std::size_t per_sample = theta.size() / batch;
  for (std::size_t i = 0; i < theta.size(); ++i) {
    const bool last_row = kind == "projective" && i % per_sample >= 6;
    theta.data()[i] += g.uniform(-scale, scale) * (last_row ? 0.5f : 1.0f);
  }
  return theta;
}

// Pixel coordinate of a normalised one along an axis of `size` pixels (the sampler's formula).
double pixel(double normalised, std::size_t size, bool align_corners) {
  return align_corners ? (normalised + 1) / 2 * (size - 1) : ((normalised + 1) * size - 1) / 2;
}

// The smallest distance of any sampling point of `grid` (N, H', W', 2) from an integer pixel
// coordinate: the sampler's kinks (cell edges, the border clamp at 0 and size - 1, the zeros
// padding's support edges at -1 and size) are all at integers.
double kink_distance(const Tensor& grid, std::size_t height, std::size_t width, bool align_corners) {
  double distance = 1.0;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double p = pixel(grid.data()[i], i % 2 == 0 ? width : height, align_corners);
    distance = std::min(distance, std::abs(p - std::round(p)));
  }
  return distance;
}

// Uniform sampling points in [low, high], each coordinate redrawn until it is at least
// `margin` pixels from an integer.
Tensor random_grid(const Shape& shape, float low, float high, std::size_t height,
                   std::size_t width, bool align_corners, double margin, Generator& g) {
  Tensor grid = empty(shape);
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const std::size_t size = i % 2 == 0 ? width : height;
    float value;
    double p;
    do {
      value = g.uniform(low, high);
      p = pixel(value, size, align_corners);
    } while (std::abs(p - std::round(p)) < margin);
    grid.data()[i] = value;
  }
  return grid;
}

GridSampleOptions sampler_options(PaddingMode padding, bool align_corners) {
  GridSampleOptions options;
  options.padding = padding;
  options.align_corners = align_corners;
  return options;
}

std::string configuration_name(PaddingMode padding, bool align_corners) {
  return std::string(padding == PaddingMode::border ? "border" : "zeros") +
         (align_corners ? "_corners" : "_centres");
}

// The finite-difference stencil of gradcheck moves an input by up to 2 eps; in pixels that is
// 2 eps times the larger pixels-per-unit scale (W / 2 or (W - 1) / 2).
double stencil_in_pixels(const GradcheckOptions& options, std::size_t height, std::size_t width) {
  return 2 * options.eps * std::max(height, width) / 2.0;
}

// ---- gradgradcheck, parameterised --------------------------------------------------------

struct SpatialCase {
  std::string name;
  std::vector<Tensor> inputs;
  GradFunction function;
  GradcheckOptions options = {};
};

void PrintTo(const SpatialCase& c, std::ostream* os) { *os << c.name; }

class SpatialSecondOrder : public ::testing::TestWithParam<SpatialCase> {};

TEST_P(SpatialSecondOrder, GradgradcheckPasses) {
  const SpatialCase& c = GetParam();
  GradcheckResult first = gradcheck(c.function, c.inputs, c.options);
  EXPECT_TRUE(first.ok) << first.message;
  GradcheckResult second = gradgradcheck(c.function, c.inputs, c.options);
  EXPECT_TRUE(second.ok) << second.message;
  EXPECT_GT(second.elements_checked, 0u);
}

// The generators are linear in theta (projective: a quotient of linear maps), so the outer
// tanh gives their backward's own backward a gradient that depends on theta.
std::vector<SpatialCase> grid_cases() {
  std::vector<SpatialCase> cases;
  for (bool align_corners : {false, true}) {
    const std::string suffix = align_corners ? "_corners" : "_centres";
    Generator g(align_corners ? 21 : 22);
    cases.push_back({"affine_grid" + suffix, {random_theta("affine", 2, 0.3f, g)},
                     [align_corners](V v) { return tanh(affine_grid(v[0], 3, 4, align_corners)); }});
    cases.push_back({"attention_grid" + suffix, {random_theta("attention", 2, 0.3f, g)},
                     [align_corners](V v) { return tanh(attention_grid(v[0], 4, 3, align_corners)); }});
    cases.push_back({"projective_grid" + suffix, {random_theta("projective", 2, 0.3f, g)},
                     [align_corners](V v) { return projective_grid(v[0], 3, 4, align_corners); }});
    cases.push_back({"projective_grid_tanh" + suffix, {random_theta("projective", 2, 0.3f, g)},
                     [align_corners](V v) { return tanh(projective_grid(v[0], 4, 3, align_corners)); }});
    cases.push_back({"tps_grid_k9" + suffix, {random_theta("tps", 2, 0.2f, g, 9)},
                     [align_corners](V v) { return tanh(tps_grid(v[0], 3, 4, align_corners)); }});
    cases.push_back({"tps_grid_k16" + suffix, {random_theta("tps", 1, 0.2f, g, 16)},
                     [align_corners](V v) { return tanh(tps_grid(v[0], 4, 3, align_corners)); }});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Grids, SpatialSecondOrder, ::testing::ValuesIn(grid_cases()),
                         [](const auto& info) { return info.param.name; });

// A projective grid point at infinity (w' = 0) gets no gradient (from the sampler, or here
// from a slice that leaves it out); the recorded backward must pass nothing on from it (not
// 0 * inf = NaN), like the fast one.
TEST(ProjectiveGridDoubleBackward, PointAtInfinityPassesNothing) {
  Tape tape;
  // align_corners with width 3 puts x_t at exactly -1, 0, 1: h31 = 1 makes w' = 0 at x_t = -1.
  Var theta = tape.input(test::tensor_from({1, 8}, {1.0f, 0.1f, 0.0f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f}), true);
  Var grid = projective_grid(theta, 2, 3, true);
  ASSERT_FALSE(std::isfinite(grid.value().data()[0]));
  Var finite_part = tanh(slice(grid, 2, 1, 3));  // the gradient reaching x_t = -1 is 0
  Var loss = sum(mul(finite_part, finite_part));
  const Tensor fast = grad(loss, {theta})[0].value();
  const std::vector<Var> recorded = grad(loss, {theta}, {.create_graph = true});
  ASSERT_TRUE(all_finite(fast));
  EXPECT_LT(test::max_abs_difference(recorded[0].value(), fast), 1e-5f);
  const Var second = grad(sum(mul(recorded[0], recorded[0])), {theta})[0];
  EXPECT_TRUE(all_finite(second.value()));
}

// ---- The sampler ------------------------------------------------------------------------

// Sampling points for gradgradcheck: at least this far (pixels) from an integer coordinate,
// beyond the finite-difference stencil (2 * 2^-8 normalised = 0.0195 pixels on a 5-pixel axis).
constexpr double kMargin = 0.05;

struct SamplerSetup {
  PaddingMode padding;
  bool align_corners;
};

const SamplerSetup kSetups[] = {{PaddingMode::zeros, false}, {PaddingMode::zeros, true},
                                {PaddingMode::border, false}, {PaddingMode::border, true}};

// U (2, 2, 4, 5) and a grid (2, 3, 2, 2) of points in [-1.4, 1.4]: some leave the image (the
// zeros padding's partial corners, the border clamp), none near a kink.
std::vector<Tensor> sampler_inputs(const SamplerSetup& setup, std::uint64_t seed) {
  Generator g(seed);
  const std::size_t height = 4, width = 5;
  Tensor input = random_tensor({2, 2, height, width}, g);
  Tensor grid = random_grid({2, 3, 2, 2}, -1.4f, 1.4f, height, width, setup.align_corners, kMargin, g);
  if (!(kink_distance(grid, height, width, setup.align_corners) > stencil_in_pixels({}, height, width)))
    throw std::logic_error("sampling points too close to a kink for the stencil");
  bool outside = false;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const std::size_t size = i % 2 == 0 ? width : height;
    const double p = pixel(grid.data()[i], size, setup.align_corners);
    outside |= p < 0 || p > size - 1.0;
  }
  if (!outside) throw std::logic_error("no sampling point leaves the image");
  return {input, grid};
}

std::vector<SpatialCase> sampler_cases() {
  std::vector<SpatialCase> cases;
  std::uint64_t seed = 40;
  for (const SamplerSetup& setup : kSetups) {
    const GridSampleOptions options = sampler_options(setup.padding, setup.align_corners);
    const std::string name = "grid_sample_" + configuration_name(setup.padding, setup.align_corners);
    cases.push_back({name, sampler_inputs(setup, seed++),
                     [options](V v) { return grid_sample(v[0], v[1], options); }});
    // Squared: the input gradient depends on the input and the grid, so A_00's own backward
    // (and S_10, S_01's) is exercised by the second derivative.
    cases.push_back({name + "_squared", sampler_inputs(setup, seed++), [options](V v) {
                       Var sampled = grid_sample(v[0], v[1], options);
                       return mul(sampled, sampled);
                     }});
    // The spatial transformer's case: only the grid needs a gradient.
    SpatialCase grid_only{name + "_grid_only", sampler_inputs(setup, seed++), [options](V v) {
                            return tanh(grid_sample(v[0], v[1], options));
                          }};
    grid_only.options.requires_grad = {false, true};
    cases.push_back(grid_only);
  }
  // Nearest mode: the input's second derivative through the nearest scatter (the grid has
  // no gradient). Points are random, so none sits on a rounding tie.
  for (bool align_corners : {false, true}) {
    GridSampleOptions options = sampler_options(PaddingMode::zeros, align_corners);
    options.mode = SampleMode::nearest;
    SpatialCase nearest{std::string("grid_sample_nearest") + (align_corners ? "_corners" : "_centres"),
                        sampler_inputs({PaddingMode::zeros, align_corners}, seed++), [options](V v) {
                          Var sampled = grid_sample(v[0], v[1], options);
                          return mul(sampled, sampled);
                        }};
    nearest.options.requires_grad = {true, false};
    cases.push_back(nearest);
  }
  return cases;
}

// affine_grid -> grid_sample, differentiated twice with respect to theta (and the image).
// theta is redrawn until every sampling point is kMargin pixels from a kink; a step of 2 eps
// in one entry of theta moves a point by at most 2 eps (|x_t|, |y_t| <= 1).
std::vector<SpatialCase> transformer_cases() {
  std::vector<SpatialCase> cases;
  std::uint64_t seed = 60;
  for (const SamplerSetup& setup : kSetups) {
    const GridSampleOptions options = sampler_options(setup.padding, setup.align_corners);
    Generator g(seed++);
    Tensor theta;
    do {
      theta = random_theta("affine", 2, 0.4f, g);
    } while (kink_distance(affine_grid(theta, 3, 3, setup.align_corners), 4, 5, setup.align_corners) < kMargin);
    cases.push_back({"affine_grid_then_grid_sample_" + configuration_name(setup.padding, setup.align_corners),
                     {theta, random_tensor({2, 2, 4, 5}, g)}, [options](V v) {
                       return grid_sample(v[1], affine_grid(v[0], 3, 3, options.align_corners), options);
                     }});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Sampler, SpatialSecondOrder, ::testing::ValuesIn(sampler_cases()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Transformer, SpatialSecondOrder, ::testing::ValuesIn(transformer_cases()),
                         [](const auto& info) { return info.param.name; });

// One point inside a cell of a 2 x 2 image, exactly: V = sum_k w_k U_k is linear in x and in y
// separately, so d2V/dx2 = d2V/dy2 = 0 while d2V/dxdy = (U00 - U01 - U10 + U11) mx my.
TEST(GridSampleDoubleBackward, CrossDerivativeIsNonzeroWhileSecondDerivativesVanish) {
  for (bool align_corners : {false, true}) {
    Tape tape;
    Var image = tape.input(test::tensor_from({1, 1, 2, 2}, {1.0f, 2.0f, 3.0f, 7.0f}), true);
    Var grid = tape.input(test::tensor_from({1, 1, 1, 2}, {0.25f, -0.125f}), true);
    Var sampled = grid_sample(image, grid, sampler_options(PaddingMode::zeros, align_corners));
    Var dgrid = grad(sampled, {grid}, {.create_graph = true})[0];
    const Tensor along_x = grad(sum(slice(dgrid, 3, 0, 1)), {grid})[0].value();
    const Tensor along_y = grad(sum(slice(dgrid, 3, 1, 2)), {grid})[0].value();
    const float scale = align_corners ? 0.5f : 1.0f;  // (W - 1) / 2 or W / 2
    const float cross = (1.0f - 2.0f - 3.0f + 7.0f) * scale * scale;
    EXPECT_EQ(along_x.data()[0], 0.0f);
    EXPECT_FLOAT_EQ(along_x.data()[1], cross);
    EXPECT_FLOAT_EQ(along_y.data()[0], cross);
    EXPECT_EQ(along_y.data()[1], 0.0f);
    // The input-grid cross term: d/dU of dV/dx is the x-derivative of the weights.
    const Tensor input_x = grad(sum(slice(dgrid, 3, 0, 1)), {image})[0].value();
    const float fx = align_corners ? 0.625f : 0.75f, fy = align_corners ? 0.4375f : 0.375f;
    const float expected[4] = {-(1 - fy) * scale, (1 - fy) * scale, -fy * scale, fy * scale};
    for (int k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(input_x.data()[k], expected[k]) << k;
  }
}

// ---- The derivative kernels against the fast sampler ---------------------------------------

// A grid (1, 4, 6, 2) for a square image of `size` pixels: random points in [-1.6, 1.6],
// every integer pixel coordinate from -1 to size (cell edges, the border clamp's bounds, the
// zeros support's edges), NaN, +-Inf and +-1e30. The size makes those integers exact floats:
// the pixel scale is 2 (size 4 with align_corners false, 5 with true).
Tensor awkward_grid(std::size_t size, bool align_corners, Generator& g) {
  Tensor grid = random_tensor({1, 4, 6, 2}, g, -1.6f, 1.6f);
  const float specials[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f};
  const std::size_t points = grid.size() / 2;
  for (std::size_t p = 0; p < points; ++p) {
    const float integer = static_cast<float>(p % (size + 2)) - 1.0f;  // -1 .. size
    const float normalised = align_corners ? integer / 2.0f - 1.0f : (2.0f * integer + 1.0f) / 4.0f - 1.0f;
    if (p % 3 < 2) grid.data()[2 * p + p % 3] = normalised;
    if (p % 4 == 1 && p >= 5) grid.data()[2 * p + (p / 4) % 2] = specials[(p - 5) / 4];
  }
  return grid;
}

// How many coordinates of `grid` land exactly on an integer pixel (the sampler's formula).
std::size_t integer_coordinates(const Tensor& grid, bool align_corners) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const float p = std::fma(grid.data()[i] + 1.0f, 2.0f, align_corners ? 0.0f : -0.5f);
    count += std::isfinite(p) && p == std::floor(p) && std::abs(p) < 10;
  }
  return count;
}

TEST(SamplerDerivativeKernels, OrderZeroEqualsTheFastSampler) {
  for (const SamplerSetup& setup : kSetups) {
    SCOPED_TRACE(configuration_name(setup.padding, setup.align_corners));
    const GridSampleOptions options = sampler_options(setup.padding, setup.align_corners);
    const std::size_t size = setup.align_corners ? 5 : 4;
    Generator g(7);
    const Tensor input = random_tensor({1, 3, size, size}, g);
    const Tensor grid = awkward_grid(size, setup.align_corners, g);
    ASSERT_GE(integer_coordinates(grid, setup.align_corners), 12u);
    const Tensor upstream = random_tensor({1, 3, 4, 6}, g);
    const kernels::SamplerGeometry geometry{1, 3, size, size, 4, 6};

    Tensor fast_output = empty({1, 3, 4, 6}), output = zeros({1, 3, 4, 6});
    kernels::grid_sample_forward(geometry, options, input.data(), grid.data(), fast_output.data());
    kernels::sampler_derivative(geometry, options, {0, 0}, input.data(), grid.data(), output.data());
    EXPECT_EQ(test::max_abs_difference(output, fast_output), 0.0f);

    Tensor fast_input_grad = zeros(shape_of(input)), fast_grid_grad = zeros(shape_of(grid));
    kernels::grid_sample_backward(geometry, options, input.data(), grid.data(), upstream.data(),
                                  fast_input_grad.data(), fast_grid_grad.data());
    Tensor input_grad = zeros(shape_of(input)), grid_grad = zeros(shape_of(grid));
    kernels::sampler_derivative_adjoint(geometry, options, {0, 0}, upstream.data(), grid.data(),
                                        input_grad.data());
    kernels::sampler_derivative_contract(geometry, options, {0, 0}, input.data(), upstream.data(),
                                         grid.data(), grid_grad.data());
    EXPECT_EQ(test::max_abs_difference(input_grad, fast_input_grad), 0.0f);
    EXPECT_LT(test::max_abs_difference(grid_grad, fast_grid_grad), 1e-5f);
    EXPECT_TRUE(all_finite(output) && all_finite(input_grad) && all_finite(grid_grad));
  }
}

// ---- Beyond second order ------------------------------------------------------------------

using Scalar = std::function<double(const std::vector<Tensor>&)>;

// Richardson-extrapolated central differences of `scalar` along every element of x[i].
Tensor numeric_gradient(const Scalar& scalar, std::vector<Tensor> x, std::size_t i, double eps) {
  Tensor result = empty(shape_of(x[i]));
  for (std::size_t j = 0; j < x[i].size(); ++j) {
    const float original = x[i].data()[j];
    auto central = [&](double h) {
      x[i].data()[j] = static_cast<float>(original + h);
      const double plus = scalar(x);
      x[i].data()[j] = static_cast<float>(original - h);
      const double minus = scalar(x);
      x[i].data()[j] = original;
      return (plus - minus) / (2 * h);
    };
    result.data()[j] = static_cast<float>((4 * central(eps) - central(2 * eps)) / 3);
  }
  return result;
}

void expect_near_numeric(const Tensor& analytic, const Tensor& numeric, const std::string& what) {
  ASSERT_EQ(shape_of(analytic), shape_of(numeric)) << what;
  for (std::size_t j = 0; j < numeric.size(); ++j)
    EXPECT_NEAR(analytic.data()[j], numeric.data()[j], 2e-3 + 5e-3 * std::abs(numeric.data()[j]))
        << what << " element " << j;
}

double value_of(Var v) {
  double total = 0;
  for (std::size_t i = 0; i < v.numel(); ++i) total += v.value().data()[i];
  return total;
}

Var dot(Var a, const Tensor& b) { return sum(mul(a, a.tape().constant(b))); }

struct PenaltySetup {
  SamplerSetup sampler;
  Tensor weight, tangent_input, tangent_grid;
  std::vector<Tensor> inputs;
};

PenaltySetup penalty_setup(const SamplerSetup& sampler, std::uint64_t seed) {
  PenaltySetup s{sampler, {}, {}, {}, sampler_inputs(sampler, seed)};
  Generator g(seed + 100);
  s.weight = random_tensor({2, 2, 3, 2}, g);
  s.tangent_input = random_tensor(shape_of(s.inputs[0]), g);
  s.tangent_grid = random_tensor(shape_of(s.inputs[1]), g);
  return s;
}

// L = sum(W * grid_sample(U, G)^2); its gradients (recorded when create_graph).
std::vector<Var> loss_gradients(const PenaltySetup& s, std::vector<Var>& vars, bool create_graph) {
  Var sampled = grid_sample(vars[0], vars[1], sampler_options(s.sampler.padding, s.sampler.align_corners));
  Var loss = dot(mul(sampled, sampled), s.weight);
  return grad(loss, vars, {.create_graph = create_graph});
}

// A gradient penalty, sum(dL/dU^2) + sum(dL/dG^2): tape.backward through the recorded
// double backward runs the derivative ops' fast backwards; checked against finite
// differences of the penalty.
TEST(GridSampleDoubleBackward, GradientPenaltyBackwardMatchesFiniteDifferences) {
  std::uint64_t seed = 80;
  for (const SamplerSetup& setup : kSetups) {
    SCOPED_TRACE(configuration_name(setup.padding, setup.align_corners));
    const PenaltySetup s = penalty_setup(setup, seed++);
    auto penalty = [&](Tape& tape, const std::vector<Tensor>& x, std::vector<Var>& vars, bool create_graph) {
      for (const Tensor& t : x) vars.push_back(tape.input(t, true));
      std::vector<Var> g = loss_gradients(s, vars, create_graph);
      return add(sum(mul(g[0], g[0])), sum(mul(g[1], g[1])));
    };
    Tape tape;
    std::vector<Var> vars;
    tape.backward(penalty(tape, s.inputs, vars, true));
    const Scalar numeric = [&](const std::vector<Tensor>& x) {
      Tape t;
      std::vector<Var> v;
      return value_of(penalty(t, x, v, false));
    };
    expect_near_numeric(vars[0].grad(), numeric_gradient(numeric, s.inputs, 0, 1.0 / 256), "d penalty / dU");
    expect_near_numeric(vars[1].grad(), numeric_gradient(numeric, s.inputs, 1, 1.0 / 256), "d penalty / dG");
  }
}

// Third order: T = <u, H v> with H v the Hessian-vector product recorded by a second
// create_graph; dT/dx runs the vjps of the derivative ops themselves (S_10, S_01, A_00, ...).
TEST(GridSampleDoubleBackward, ThirdOrderMatchesFiniteDifferencesOfTheSecond) {
  std::uint64_t seed = 90;
  for (const SamplerSetup& setup : kSetups) {
    SCOPED_TRACE(configuration_name(setup.padding, setup.align_corners));
    const PenaltySetup s = penalty_setup(setup, seed++);
    auto third = [&](Tape& tape, const std::vector<Tensor>& x, std::vector<Var>& vars) {
      for (const Tensor& t : x) vars.push_back(tape.input(t, true));
      std::vector<Var> g = loss_gradients(s, vars, true);
      Var inner = add(dot(g[0], s.tangent_input), dot(g[1], s.tangent_grid));
      std::vector<Var> hvp = grad(inner, vars, {.create_graph = true});
      return add(dot(hvp[0], s.tangent_input),
                 dot(hvp[1], s.tangent_grid));
    };
    Tape tape;
    std::vector<Var> vars;
    const std::vector<Var> analytic = grad(third(tape, s.inputs, vars), vars);
    {  // The recorded Hessian-vector product equals the fast one (the derivative ops' vjps
       // against their raw-tensor backwards).
      Tape t;
      std::vector<Var> v;
      for (const Tensor& x : s.inputs) v.push_back(t.input(x, true));
      std::vector<Var> g = loss_gradients(s, v, true);
      Var inner = add(dot(g[0], s.tangent_input), dot(g[1], s.tangent_grid));
      const std::vector<Var> fast = grad(inner, v), recorded = grad(inner, v, {.create_graph = true});
      for (std::size_t k = 0; k < 2; ++k)
        EXPECT_LT(test::max_abs_difference(recorded[k].value(), fast[k].value()), 1e-4f) << k;
    }
    const Scalar numeric = [&](const std::vector<Tensor>& x) {
      Tape t;
      std::vector<Var> v;
      return value_of(third(t, x, v));
    };
    expect_near_numeric(analytic[0].value(), numeric_gradient(numeric, s.inputs, 0, 1.0 / 256), "dT/dU");
    expect_near_numeric(analytic[1].value(), numeric_gradient(numeric, s.inputs, 1, 1.0 / 256), "dT/dG");
  }
}

// ---- Golden second derivatives -------------------------------------------------------------

using nlohmann::json;

const json& spatial_golden() {
  static const json content = [] {
    const std::string path = std::string(STN_TEST_DATA_DIR) + "/double_backward_spatial.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open golden file " + path);
    return json::parse(in);
  }();
  return content;
}

Tensor tensor_from_json(const json& value) {
  Tensor t = empty(value.at("shape").get<Shape>());
  const json& data = value.at("data");
  if (data.size() != t.size()) throw std::runtime_error("golden tensor size mismatch");
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = data[i].get<float>();
  return t;
}

// The comparison rule: a tensor passes when every element has
//   |ours - reference| <= 1e-4 * max|reference| + 1e-6,
// the maximum over that tensor (the generator asserts every stored derivative is exactly 0
// or has max |value| >= 1e-3, so the 1e-6 floor never decides). Returns the largest
// |ours - reference| / max|reference| (the absolute error where the reference is all 0).
double expect_golden(const Tensor& ours, const Tensor& reference, const std::string& what) {
  EXPECT_EQ(shape_of(ours), shape_of(reference)) << what;
  if (shape_of(ours) != shape_of(reference)) return INFINITY;
  double scale = 0, error = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) scale = std::max(scale, double(std::abs(reference.data()[i])));
  for (std::size_t i = 0; i < reference.size(); ++i)
    error = std::max(error, double(std::abs(ours.data()[i] - reference.data()[i])));
  EXPECT_LE(error, 1e-4 * scale + 1e-6) << what << ": max error " << error << ", reference scale " << scale;
  return scale > 0 ? error / scale : error;
}

struct GoldenCase {
  std::size_t index;
  std::string name;
};
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name; }

// Which golden cases run: every case of the spatial file.
std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  const json& list = spatial_golden().at("cases");
  for (std::size_t i = 0; i < list.size(); ++i)
    cases.push_back({i, list[i].at("name").get<std::string>()});
  return cases;
}

Var golden_grid(const std::string& kind, Var theta, const json& a) {
  const std::size_t height = a.at("height"), width = a.at("width");
  const bool align_corners = a.at("align_corners");
  if (kind == "affine") return affine_grid(theta, height, width, align_corners);
  if (kind == "attention") return attention_grid(theta, height, width, align_corners);
  if (kind == "projective") return projective_grid(theta, height, width, align_corners);
  return tps_grid(theta, height, width, align_corners);
}

Var golden_op(const json& c, const std::vector<Var>& x) {
  const std::string op = c.at("op");
  const json& a = c.at("attributes");
  if (op != "grid_sample") return golden_grid(op.substr(0, op.size() - 5), x[0], a);
  Var grid = a.contains("grid_generator") ? golden_grid(a.at("grid_generator"), x[1], a) : x[1];
  return grid_sample(x[0], grid, sampler_options(a.at("padding") == "border" ? PaddingMode::border : PaddingMode::zeros,
                                                 a.at("align_corners").get<bool>()));
}

struct GoldenErrors {
  double gradient = 0, hvp = 0;  // the largest relative errors (see expect_golden)
};

// L = sum(W * y) (or sum(W * y * y)), y = op(inputs); the gradients from stn::grad with
// create_graph, then the Hessian-vector products as the gradient of sum_k <g_k, v_k> (golden
// directions v_k).
GoldenErrors check_golden_case(const json& c) {
  SCOPED_TRACE(c.at("name").get<std::string>());
  Tape tape;
  std::vector<Var> inputs, wrt;
  for (const json& input : c.at("inputs")) {
    inputs.push_back(tape.input(tensor_from_json(input.at("value")), input.at("requires_grad").get<bool>()));
    if (input.at("requires_grad").get<bool>()) wrt.push_back(inputs.back());
  }
  Var y = golden_op(c, inputs);
  if (c.at("outer") == "square") y = mul(y, y);
  Var loss = sum(mul(tape.constant(tensor_from_json(c.at("output_weight"))), y));
  const float expected_loss = c.at("loss");
  EXPECT_NEAR(loss.value().data()[0], expected_loss, 1e-4 * std::max(1.0f, std::abs(expected_loss)));

  GoldenErrors errors;
  const std::vector<Var> grads = grad(loss, wrt, {.create_graph = true});
  Var inner;
  for (std::size_t k = 0; k < wrt.size(); ++k) {
    errors.gradient = std::max(errors.gradient,
        expect_golden(grads[k].value(), tensor_from_json(c.at("grads")[k]), "gradient " + std::to_string(k)));
    Var term = sum(mul(grads[k], tape.constant(tensor_from_json(c.at("directions")[k]))));
    inner = inner.valid() ? add(inner, term) : term;
  }
  // The second backward both ways: fast (the derivative ops' raw-tensor backwards) and
  // recorded (their vjps, which only a third order would otherwise reach).
  for (bool create_graph : {false, true}) {
    const std::vector<Var> hvp = grad(inner, wrt, {.create_graph = create_graph});
    for (std::size_t k = 0; k < wrt.size(); ++k)
      errors.hvp = std::max(errors.hvp, expect_golden(hvp[k].value(), tensor_from_json(c.at("hvp")[k]),
                                                      std::string(create_graph ? "recorded " : "") + "hvp " +
                                                          std::to_string(k)));
  }
  return errors;
}

class SpatialDoubleBackwardGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(SpatialDoubleBackwardGolden, GradientsAndHessianVectorProductsMatch) {
  check_golden_case(spatial_golden().at("cases").at(GetParam().index));
}

INSTANTIATE_TEST_SUITE_P(DoubleBackwardSpatial, SpatialDoubleBackwardGolden, ::testing::ValuesIn(golden_cases()),
                         [](const auto& info) { return info.param.name; });

// Every case once more, for the figures: the worst errors over the file.
TEST(SpatialDoubleBackwardGoldenSummary, WorstErrors) {
  GoldenErrors worst;
  const std::vector<GoldenCase> cases = golden_cases();
  for (const GoldenCase& c : cases) {
    const GoldenErrors errors = check_golden_case(spatial_golden().at("cases").at(c.index));
    worst.gradient = std::max(worst.gradient, errors.gradient);
    worst.hvp = std::max(worst.hvp, errors.hvp);
  }
  std::printf("spatial goldens, %zu cases: worst relative error, gradients %.3g, Hessian-vector products %.3g\n",
              cases.size(), worst.gradient, worst.hvp);
  EXPECT_GE(cases.size(), 41u);
}

}  // namespace
}  // namespace stn
