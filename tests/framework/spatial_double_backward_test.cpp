// Second order through the spatial transformer: gradgradcheck on the four grid generators
// and on grid_sample (input and grid together, both padding modes, both align_corners
// values, grids that leave the image), exact cases, and the golden second derivatives of
// tests/data/double_backward_spatial.json (PyTorch 1.13 in float64; for grid_sample a
// bilinear sampler in plain differentiable PyTorch ops, see
// tests/golden/make_double_backward_golden.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/gradcheck.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape.h"
#include "framework/ops/spatial.h"
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
    if (list[i].at("op") != "grid_sample") cases.push_back({i, list[i].at("name").get<std::string>()});
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
// create_graph, then the Hessian-vector products as the gradient of sum_k <g_k, v_k>.
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
  const std::vector<Var> hvp = grad(inner, wrt);
  for (std::size_t k = 0; k < wrt.size(); ++k)
    errors.hvp = std::max(errors.hvp,
        expect_golden(hvp[k].value(), tensor_from_json(c.at("hvp")[k]), "hvp " + std::to_string(k)));
  return errors;
}

class SpatialGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(SpatialGolden, GradientsAndHessianVectorProductsMatch) {
  check_golden_case(spatial_golden().at("cases").at(GetParam().index));
}

INSTANTIATE_TEST_SUITE_P(DoubleBackwardSpatial, SpatialGolden, ::testing::ValuesIn(golden_cases()),
                         [](const auto& info) { return info.param.name; });

// Every case once more, for the figures: the worst errors over the file.
TEST(SpatialGoldenSummary, WorstErrors) {
  GoldenErrors worst;
  const std::vector<GoldenCase> cases = golden_cases();
  for (const GoldenCase& c : cases) {
    const GoldenErrors errors = check_golden_case(spatial_golden().at("cases").at(c.index));
    worst.gradient = std::max(worst.gradient, errors.gradient);
    worst.hvp = std::max(worst.hvp, errors.hvp);
  }
  std::printf("spatial goldens, %zu cases: worst relative error, gradients %.3g, Hessian-vector products %.3g\n",
              cases.size(), worst.gradient, worst.hvp);
  EXPECT_GE(cases.size(), 13u);
}

}  // namespace
}  // namespace stn
