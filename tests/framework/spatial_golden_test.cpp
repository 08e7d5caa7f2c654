// The spatial transformer against PyTorch 1.13 (tests/golden/make_spatial_golden.py): the
// sampler and affine grid against torch.nn.functional.grid_sample / affine_grid, and the
// grid generators PyTorch lacks against float64 recomputations.
//
// Tolerance: an element passes when |ours - reference| <= 1e-5 * max(|reference|, 1), i.e.
// 1e-5 relative, or absolute for values below 1. Where the reference is not finite
// (PyTorch on NaN / Inf grids) it is skipped, and ours must be finite.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "stn/framework/ops/spatial.h"

namespace stn {
namespace {

using nlohmann::json;

json load(const std::string& name) {
  const std::string path = std::string(STN_TEST_DATA_DIR) + "/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path);
  return json::parse(in);
}

Tensor tensor_from_json(const json& value) {
  Shape shape = value.at("shape").get<Shape>();
  Tensor t = empty(shape);
  const json& data = value.at("data");
  if (data.size() != t.size()) throw std::runtime_error("golden tensor size mismatch");
  for (std::size_t i = 0; i < t.size(); ++i) {
    const json& v = data[i];
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      t.data()[i] = s == "nan" ? NAN : s == "inf" ? INFINITY : -INFINITY;
    } else {
      t.data()[i] = static_cast<float>(v.get<double>());
    }
  }
  return t;
}

// Compares element by element; returns how many elements were bit-for-bit equal.
std::size_t expect_close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  EXPECT_EQ(shape_of(actual), shape_of(expected)) << what;
  if (shape_of(actual) != shape_of(expected)) return 0;
  std::size_t failures = 0, identical = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const float a = actual.data()[i], e = expected.data()[i];
    if (!std::isfinite(e)) {
      EXPECT_TRUE(std::isfinite(a)) << what << " element " << i << " is " << a;
      continue;
    }
    if (a == e) ++identical;
    const float tolerance = 1e-5f * std::max(std::abs(e), 1.0f);
    if (!(std::abs(a - e) <= tolerance) && failures++ < 5)
      ADD_FAILURE() << what << " element " << i << ": " << a << " vs reference " << e
                    << " (difference " << a - e << ")";
  }
  return identical;
}

GridSampleOptions options_of(const json& c) {
  GridSampleOptions options;
  options.mode = c.at("mode") == "nearest" ? SampleMode::nearest : SampleMode::bilinear;
  options.padding = c.at("padding") == "border" ? PaddingMode::border : PaddingMode::zeros;
  options.align_corners = c.at("align_corners").get<bool>();
  return options;
}

TEST(SpatialGolden, SamplerMatchesPyTorch) {
  const json file = load("spatial_sampler.json");
  ASSERT_GE(file.at("cases").size(), 20u);
  std::size_t identical = 0, total = 0;
  for (const json& c : file.at("cases")) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const GridSampleOptions options = options_of(c);
    const Tensor input = tensor_from_json(c.at("input"));
    const Tensor grid = tensor_from_json(c.at("grid"));
    const Tensor expected_output = tensor_from_json(c.at("output"));

    // The sampler alone, on PyTorch's own grid.
    Tape tape;
    Var u = tape.input(input, true);
    Var g = tape.input(grid, true);
    Var v = grid_sample(u, g, options);
    identical += expect_close(v.value(), expected_output, name + " output");
    total += expected_output.size();
    tape.backward(v, tensor_from_json(c.at("grad_output")));
    expect_close(u.grad(), tensor_from_json(c.at("grad_input")), name + " grad_input");
    expect_close(g.grad(), tensor_from_json(c.at("grad_grid")), name + " grad_grid");
  }
  // Same arithmetic as PyTorch's kernel, so nearly every output is bit-for-bit equal.
  EXPECT_GE(identical, total * 95 / 100) << identical << " of " << total << " identical";
}

TEST(SpatialGolden, AffineGridAndChainMatchPyTorch) {
  const json file = load("spatial_sampler.json");
  std::size_t cases = 0;
  for (const json& c : file.at("cases")) {
    if (!c.contains("theta")) continue;
    ++cases;
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const GridSampleOptions options = options_of(c);
    const Tensor theta = tensor_from_json(c.at("theta"));
    const Tensor expected_grid = tensor_from_json(c.at("grid"));
    const std::size_t height = expected_grid.shape()[1], width = expected_grid.shape()[2];

    Tape tape;
    Var t = tape.input(theta, true);
    Var u = tape.input(tensor_from_json(c.at("input")), true);
    Var grid = affine_grid(t, height, width, options.align_corners);
    // PyTorch's base grid and bmm rounding are reproduced, so the grids agree bit for bit
    // (the identity cases land on exactly the same pixel centres).
    const std::size_t identical = expect_close(grid.value(), expected_grid, name + " grid");
    EXPECT_EQ(identical, expected_grid.size()) << name << ": grid not bit-for-bit equal";
    Var v = grid_sample(u, grid, options);
    expect_close(v.value(), tensor_from_json(c.at("output")), name + " output");
    tape.backward(v, tensor_from_json(c.at("grad_output")));
    expect_close(t.grad(), tensor_from_json(c.at("grad_theta")), name + " grad_theta");
    expect_close(u.grad(), tensor_from_json(c.at("grad_input")), name + " grad_input");
  }
  EXPECT_GE(cases, 10u);
}

using GridFunction = Var (*)(Var, std::size_t, std::size_t, bool);

void check_grid_cases(const json& cases, GridFunction generator, const std::string& kind) {
  ASSERT_FALSE(cases.empty());
  for (const json& c : cases) {
    const std::size_t height = c.at("height"), width = c.at("width");
    const bool align_corners = c.at("align_corners");
    const std::string name = kind + " " + std::to_string(height) + "x" + std::to_string(width) +
                             (align_corners ? " corners" : " centres");
    SCOPED_TRACE(name);
    Tape tape;
    Var theta = tape.input(tensor_from_json(c.at("theta")), true);
    Var grid = generator(theta, height, width, align_corners);
    expect_close(grid.value(), tensor_from_json(c.at("grid")), name + " grid");
    tape.backward(grid, tensor_from_json(c.at("grad_grid")));
    expect_close(theta.grad(), tensor_from_json(c.at("grad_theta")), name + " grad_theta");
  }
}

Var attention(Var t, std::size_t h, std::size_t w, bool a) { return attention_grid(t, h, w, a); }
Var projective(Var t, std::size_t h, std::size_t w, bool a) { return projective_grid(t, h, w, a); }
Var tps(Var t, std::size_t h, std::size_t w, bool a) { return tps_grid(t, h, w, a); }

TEST(SpatialGolden, AttentionGridMatchesPyTorchAffineGrid) {
  check_grid_cases(load("spatial_grids.json").at("attention"), attention, "attention");
}

TEST(SpatialGolden, ProjectiveGridMatchesFloat64Recomputation) {
  check_grid_cases(load("spatial_grids.json").at("projective"), projective, "projective");
}

TEST(SpatialGolden, TpsGridMatchesNumPySolve) {
  check_grid_cases(load("spatial_grids.json").at("tps"), tps, "tps");
}

}  // namespace
}  // namespace stn
