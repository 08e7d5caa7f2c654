// Second-order gradients of every op against independent references
// (tests/golden/make_double_backward_golden.py, tests/data/double_backward_*.json): PyTorch
// 1.13's double backward in float64, and for grid_sample, whose double backward PyTorch 1.13
// lacks, a bilinear sampler in plain differentiable PyTorch ops.
//
// Per case: L = sum(W * y) (or sum(W * y * y)), y = op(inputs), on one tape. Then
//   g_i   = stn::grad(L, inputs, {.create_graph = true})
//   hvp_j = stn::grad(sum_i sum(g_i * v_i), inputs)      (the golden directions v_i)
// and, for the tiny cases, the full Hessian column by column from one-hot directions.
//
// Tolerance: a tensor passes when every element has |ours - reference| <= 1e-4 * max|reference|
// + 1e-6, the maximum taken over that tensor (for Hessians, over that block). The generator
// asserts every stored derivative is exactly 0 or has max |value| >= 1e-3, so the absolute
// term never decides a case. L itself: |ours - reference| <= 1e-4 * max(|reference|, 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <ostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "stn/framework/ops.h"
#include "stn/framework/ops/spatial.h"

namespace stn {
namespace {

using nlohmann::json;

constexpr float kRelativeTolerance = 1e-4f;
constexpr float kAbsoluteTolerance = 1e-6f;

const std::set<std::string> kAwaitingRecordedBackward = {};

// The op and, for grid_sample of a generator's grid, the generator: both need a recorded
// backward for the case to go through create_graph.
bool awaiting_recorded_backward(const json& c) {
  const std::string op = c.at("op");
  const json& a = c.at("attributes");
  const bool generator_pending =
      a.contains("grid_generator") &&
      kAwaitingRecordedBackward.count(a.at("grid_generator").get<std::string>() + "_grid");
  return kAwaitingRecordedBackward.count(op) || generator_pending;
}

const char* const kGoldenFiles[] = {
    "double_backward_elementwise.json", "double_backward_shape.json",
    "double_backward_linalg_loss.json", "double_backward_conv_pool.json",
    "double_backward_spatial.json",
};

// Parsed once per file; a file that cannot be read becomes an error message, so that the
// test reports it instead of the binary dying while it registers its tests.
struct GoldenFile {
  json content;
  std::string error;
};

const GoldenFile& golden_file(const std::string& name) {
  static std::map<std::string, GoldenFile> files;
  auto found = files.find(name);
  if (found != files.end()) return found->second;
  GoldenFile file;
  const std::string path = std::string(STN_TEST_DATA_DIR) + "/" + name;
  std::ifstream in(path);
  if (!in) {
    file.error = "cannot open golden file " + path;
  } else {
    try {
      file.content = json::parse(in);
      if (!file.content.contains("cases") || !file.content.at("cases").is_array())
        file.error = path + " has no \"cases\" array";
    } catch (const json::exception& e) {
      file.error = path + ": " + e.what();
    }
  }
  return files.emplace(name, std::move(file)).first->second;
}

struct GoldenCase {
  std::string file;
  std::size_t index = 0;
  std::string name;   // the test's name: the case's name, or the file's for an unreadable file
  std::string error;  // set when the file could not be read
};

// What GoogleTest prints for a parameter (instead of its bytes).
void PrintTo(const GoldenCase& golden, std::ostream* out) {
  *out << golden.file << " case " << golden.index << " (" << golden.name << ")";
}

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  for (const char* file : kGoldenFiles) {
    const GoldenFile& golden = golden_file(file);
    if (!golden.error.empty()) {
      std::string name = std::string("unreadable_") + file;
      std::replace_if(name.begin(), name.end(), [](unsigned char ch) { return !std::isalnum(ch); }, '_');
      cases.push_back({file, 0, name, golden.error});
      continue;
    }
    const json& list = golden.content.at("cases");
    for (std::size_t i = 0; i < list.size(); ++i)
      cases.push_back({file, i, list[i].at("name").get<std::string>(), ""});
  }
  return cases;
}

Tensor tensor_from_json(const json& value, const std::string& what) {
  const Shape shape = value.at("shape").get<Shape>();
  Tensor t = empty(shape);
  const json& data = value.at("data");
  if (data.size() != t.size())
    throw std::runtime_error(what + ": shape " + shape_string(shape) + " but " +
                             std::to_string(data.size()) + " values");
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = data[i].get<float>();
  return t;
}

// Passes when every |actual - expected| <= 1e-4 * max|expected| + 1e-6 (see the top).
void expect_close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_EQ(shape_of(actual), shape_of(expected)) << what;
  float scale = 0.0f;
  for (std::size_t i = 0; i < expected.size(); ++i)
    scale = std::max(scale, std::abs(expected.data()[i]));
  const float tolerance = kRelativeTolerance * scale + kAbsoluteTolerance;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const float a = actual.data()[i], e = expected.data()[i];
    if (!(std::abs(a - e) <= tolerance) && failures++ < 5)
      ADD_FAILURE() << what << " element " << i << ": " << a << " vs reference " << e
                    << " (difference " << a - e << ", tolerance " << tolerance << ")";
  }
  if (failures > 5) ADD_FAILURE() << what << ": " << failures << " elements differ in all";
}

std::vector<int> ints(const json& value) { return value.get<std::vector<int>>(); }

GridSampleOptions sampler_options(const json& attributes) {
  GridSampleOptions options;
  options.mode = SampleMode::bilinear;
  options.padding = attributes.at("padding") == "border" ? PaddingMode::border : PaddingMode::zeros;
  options.align_corners = attributes.at("align_corners").get<bool>();
  return options;
}

Var grid_of(const std::string& generator, Var theta, const json& attributes) {
  const std::size_t height = attributes.at("height"), width = attributes.at("width");
  const bool align_corners = attributes.at("align_corners");
  if (generator == "affine") return affine_grid(theta, height, width, align_corners);
  if (generator == "attention") return attention_grid(theta, height, width, align_corners);
  if (generator == "projective") return projective_grid(theta, height, width, align_corners);
  if (generator == "tps") return tps_grid(theta, height, width, align_corners);
  throw std::runtime_error("unknown grid generator " + generator);
}

// y = op(x) with the engine's ops; the op names and attributes are the generator's.
Var apply_op(const json& c, const std::vector<Var>& x) {
  const std::string op = c.at("op");
  const json& a = c.at("attributes");
  if (op == "add") return add(x.at(0), x.at(1));
  if (op == "sub") return sub(x.at(0), x.at(1));
  if (op == "mul") return mul(x.at(0), x.at(1));
  if (op == "div") return div(x.at(0), x.at(1));
  if (op == "mul_same") return mul(x.at(0), x.at(0));
  if (op == "add_scalar") return add(x.at(0), a.at("scalar").get<float>());
  if (op == "sub_scalar") return sub(x.at(0), a.at("scalar").get<float>());
  if (op == "scalar_sub") return sub(a.at("scalar").get<float>(), x.at(0));
  if (op == "mul_scalar") return mul(x.at(0), a.at("scalar").get<float>());
  if (op == "div_scalar") return div(x.at(0), a.at("scalar").get<float>());
  if (op == "scalar_div") return div(a.at("scalar").get<float>(), x.at(0));
  if (op == "neg") return neg(x.at(0));
  if (op == "exp") return exp(x.at(0));
  if (op == "log") return log(x.at(0));
  if (op == "sqrt") return sqrt(x.at(0));
  if (op == "pow") return pow(x.at(0), a.at("exponent").get<float>());
  if (op == "relu") return relu(x.at(0));
  if (op == "sigmoid") return sigmoid(x.at(0));
  if (op == "tanh") return tanh(x.at(0));
  if (op == "sum") return sum(x.at(0), ints(a.at("axes")), a.at("keepdim").get<bool>());
  if (op == "mean") return mean(x.at(0), ints(a.at("axes")), a.at("keepdim").get<bool>());
  if (op == "reshape") return reshape(x.at(0), a.at("shape").get<std::vector<std::int64_t>>());
  if (op == "flatten") return flatten(x.at(0), a.at("start_axis").get<int>());
  if (op == "permute") return permute(x.at(0), ints(a.at("order")));
  if (op == "transpose")
    return transpose(x.at(0), a.at("axis0").get<int>(), a.at("axis1").get<int>());
  if (op == "concat") return concat(x, a.at("axis").get<int>());
  if (op == "slice")
    return slice(x.at(0), a.at("axis").get<int>(), a.at("start").get<std::int64_t>(),
                 a.at("end").get<std::int64_t>());
  if (op == "matmul") return matmul(x.at(0), x.at(1));
  if (op == "linear") return linear(x.at(0), x.at(1), x.size() > 2 ? x[2] : Var{});
  if (op == "softmax") return softmax(x.at(0), a.at("axis").get<int>());
  if (op == "log_softmax") return log_softmax(x.at(0), a.at("axis").get<int>());
  if (op == "cross_entropy")
    return cross_entropy(x.at(0), c.at("labels").get<std::vector<std::int32_t>>());
  if (op == "mse_loss") return mse_loss(x.at(0), x.at(1));
  if (op == "conv2d") {
    Conv2dOptions options;
    options.stride = a.at("stride");
    options.padding = a.at("padding");
    options.dilation = a.at("dilation");
    return conv2d(x.at(0), x.at(1), x.size() > 2 ? x[2] : Var{}, options);
  }
  if (op == "max_pool2d" || op == "avg_pool2d") {
    Pool2dOptions options;
    options.kernel = a.at("kernel");
    options.stride = a.at("stride");
    options.padding = a.at("padding");
    return op == "max_pool2d" ? max_pool2d(x.at(0), options) : avg_pool2d(x.at(0), options);
  }
  if (op == "affine_grid" || op == "attention_grid" || op == "projective_grid" ||
      op == "tps_grid")
    return grid_of(op.substr(0, op.size() - 5), x.at(0), a);
  if (op == "grid_sample") {
    // The second input is the grid itself, or theta of a grid generator (the transformer).
    Var grid = a.contains("grid_generator")
                   ? grid_of(a.at("grid_generator").get<std::string>(), x.at(1), a)
                   : x.at(1);
    return grid_sample(x.at(0), grid, sampler_options(a));
  }
  throw std::runtime_error("unknown op " + op);
}

class DoubleBackwardGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(DoubleBackwardGolden, MatchesReference) {
  const GoldenCase& param = GetParam();
  ASSERT_TRUE(param.error.empty()) << param.error;
  const json& c = golden_file(param.file).content.at("cases").at(param.index);

  Tape tape;
  std::vector<Var> inputs, wrt;
  for (const json& input : c.at("inputs")) {
    const bool requires_grad = input.at("requires_grad");
    const std::string name = input.at("name").get<std::string>();
    Var v = tape.input(tensor_from_json(input.at("value"), name), requires_grad);
    inputs.push_back(v);
    if (requires_grad) wrt.push_back(v);
  }
  std::vector<std::string> names;
  for (const json& input : c.at("inputs"))
    if (input.at("requires_grad").get<bool>()) names.push_back(input.at("name").get<std::string>());

  Var y = apply_op(c, inputs);
  Var weighted = c.at("outer") == "square" ? mul(y, y) : y;
  Var loss = sum(mul(tape.constant(tensor_from_json(c.at("output_weight"), "W")), weighted));
  const float expected_loss = c.at("loss");
  ASSERT_EQ(loss.numel(), 1u);
  EXPECT_NEAR(loss.value().data()[0], expected_loss,
              kRelativeTolerance * std::max(std::abs(expected_loss), 1.0f));

  const json& expected_grads = c.at("grads");
  ASSERT_EQ(expected_grads.size(), wrt.size());
  // First order without create_graph (constants) and with it (recorded Vars): same values.
  const std::vector<Var> plain = grad(loss, wrt);
  GradOptions create_graph;
  create_graph.create_graph = true;
  ASSERT_EQ(plain.size(), wrt.size());
  for (std::size_t i = 0; i < wrt.size(); ++i)
    expect_close(plain[i].value(), tensor_from_json(expected_grads[i], "grad " + names[i]),
                 "dL/d" + names[i] + " (no create_graph)");
  std::vector<Var> grads;
  if (awaiting_recorded_backward(c)) {
    try {
      grads = grad(loss, wrt, create_graph);
    } catch (const std::logic_error& error) {
      if (std::string(error.what()).find("has no differentiable backward") == std::string::npos)
        throw;
      GTEST_SKIP() << "second order awaits a recorded backward (" << error.what() << ")";
    }
    ADD_FAILURE() << c.at("op").get<std::string>()
                  << " now has a recorded backward: take it off kAwaitingRecordedBackward";
  } else {
    grads = grad(loss, wrt, create_graph);
  }
  ASSERT_EQ(grads.size(), wrt.size());
  for (std::size_t i = 0; i < wrt.size(); ++i)
    expect_close(grads[i].value(), tensor_from_json(expected_grads[i], "grad " + names[i]),
                 "dL/d" + names[i]);

  std::vector<Tensor> directions;
  for (const json& v : c.at("directions")) directions.push_back(tensor_from_json(v, "direction"));
  ASSERT_EQ(directions.size(), wrt.size());
  const std::vector<Var> hvp = grad(inner_product(tape, grads, directions), wrt);
  ASSERT_EQ(hvp.size(), wrt.size());
  for (std::size_t j = 0; j < wrt.size(); ++j)
    expect_close(hvp[j].value(), tensor_from_json(c.at("hvp").at(j), "hvp " + names[j]),
                 "Hessian-vector product, d/d" + names[j]);

  if (!c.contains("hessian")) return;
  // Column e of block (i, j) is d/dx_i of dL/dx_j[e]: the HVP along the one-hot direction.
  const json& blocks = c.at("hessian");
  std::vector<std::vector<Tensor>> ours(wrt.size());
  for (std::size_t i = 0; i < wrt.size(); ++i)
    for (std::size_t j = 0; j < wrt.size(); ++j) ours[i].push_back(zeros({wrt[i].numel(), wrt[j].numel()}));
  for (std::size_t j = 0; j < wrt.size(); ++j)
    for (std::size_t e = 0; e < wrt[j].numel(); ++e) {
      std::vector<Tensor> one_hot;
      for (const Var& x : wrt) one_hot.push_back(zeros(x.shape()));
      one_hot[j].data()[e] = 1.0f;
      const std::vector<Var> column = grad(inner_product(tape, grads, one_hot), wrt);
      ASSERT_EQ(column.size(), wrt.size());
      for (std::size_t i = 0; i < wrt.size(); ++i)
        for (std::size_t k = 0; k < wrt[i].numel(); ++k)
          ours[i][j].data()[k * wrt[j].numel() + e] = column[i].value().data()[k];
    }
  for (std::size_t i = 0; i < wrt.size(); ++i)
    for (std::size_t j = 0; j < wrt.size(); ++j)
      expect_close(ours[i][j], tensor_from_json(blocks.at(i).at(j), "hessian"),
                   "d2L/d" + names[i] + " d" + names[j]);
}

INSTANTIATE_TEST_SUITE_P(Ops, DoubleBackwardGolden, ::testing::ValuesIn(golden_cases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) {
                           return info.param.name;
                         });

// A regenerated file that silently dropped an op, a padding mode or the Hessians fails here.
TEST(DoubleBackwardGoldenFiles, CoverEveryOpOfTheIssue) {
  std::set<std::string> ops, sampler_configurations;
  std::size_t cases = 0, hessians = 0, leaving_image = 0;
  for (const char* file : kGoldenFiles) {
    const GoldenFile& golden = golden_file(file);
    ASSERT_TRUE(golden.error.empty()) << golden.error;
    for (const json& c : golden.content.at("cases")) {
      ++cases;
      ops.insert(c.at("op").get<std::string>());
      if (c.contains("hessian")) ++hessians;
      if (c.at("op") == "grid_sample") {
        const json& a = c.at("attributes");
        sampler_configurations.insert(a.at("padding").get<std::string>() +
                                      (a.at("align_corners").get<bool>() ? " corners" : " centres"));
        if (c.at("name").get<std::string>().find("leaving_image") != std::string::npos)
          ++leaving_image;
      }
    }
  }
  for (const char* op :
       {"add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "pow", "relu", "sigmoid", "tanh",
        "sum", "mean", "reshape", "flatten", "permute", "transpose", "concat", "slice", "matmul",
        "linear", "softmax", "log_softmax", "cross_entropy", "mse_loss", "conv2d", "max_pool2d",
        "avg_pool2d", "affine_grid", "attention_grid", "projective_grid", "tps_grid",
        "grid_sample"})
    EXPECT_TRUE(ops.count(op)) << "no golden case for " << op;
  EXPECT_EQ(sampler_configurations,
            (std::set<std::string>{"border centres", "border corners", "zeros centres",
                                   "zeros corners"}));
  EXPECT_EQ(leaving_image, 4u);
  EXPECT_GE(cases, 150u);
  EXPECT_GE(hessians, 30u);
}

}  // namespace
}  // namespace stn
