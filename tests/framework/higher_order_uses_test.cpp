// What higher-order gradients are for (issue 12, point 6), as tests that double as examples:
// a Hessian-vector product of an MLP against PyTorch, Newton's method on a logistic
// regression, one MAML inner step differentiated through, and a gradient-penalty training
// step of a small ST-CNN (through the sampler's input gradient and the grid's second
// derivatives). docs/autodiff.md explains the API they use.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "stn/framework/ops.h"
#include "stn/framework/ops/spatial.h"
#include "stn/layers/layers.h"
#include "stn/layers/spatial_transformer.h"
#include "test_util.h"

namespace stn {
namespace {

using nlohmann::json;
using test::random_tensor;
using V = const std::vector<Var>&;

Tensor tensor_from_json(const json& value) {
  Tensor t = empty(value.at("shape").get<Shape>());
  const json& data = value.at("data");
  if (data.size() != t.size()) throw std::runtime_error("golden tensor size mismatch");
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(data[i].get<double>());
  return t;
}

// Worst |a - e| / max(|e|, floor) over the elements; floor keeps near-zero entries from
// dominating (they are held to floor * 1e-4 absolute instead).
double worst_relative_error(const Tensor& actual, const Tensor& expected, double floor) {
  EXPECT_EQ(shape_of(actual), shape_of(expected));
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = expected.data()[i];
    worst = std::max(worst, std::abs(actual.data()[i] - e) / std::max(std::abs(e), floor));
  }
  return worst;
}

// ---- (a) Hessian-vector product of an MLP, against PyTorch 1.13 ------------------------

TEST(HigherOrderUses, MlpHessianVectorProductMatchesPyTorch) {
  std::ifstream in(std::string(STN_TEST_DATA_DIR) + "/hvp_mlp.json");
  ASSERT_TRUE(in) << "missing tests/data/hvp_mlp.json (tests/golden/make_hvp_golden.py writes it)";
  const json golden = json::parse(in);
  const std::vector<std::string> names = {"W1", "b1", "W2", "b2"};
  ASSERT_EQ(golden.at("cases").size(), 2u);
  for (const json& c : golden.at("cases")) {
    const std::string kind = c.at("loss_kind");
    const Tensor x = tensor_from_json(c.at("x"));
    std::vector<Tensor> parameters, vectors;
    for (const std::string& n : names) {
      parameters.push_back(tensor_from_json(c.at(n)));
      vectors.push_back(tensor_from_json(c.at("v_" + n)));
    }
    // The model: z = tanh(x W1^T + b1) W2^T + b2, then the case's loss.
    const GradFunction loss = [&](V p) {
      Tape& tape = p[0].tape();
      Var z = linear(tanh(linear(tape.constant(x), p[0], p[1])), p[2], p[3]);
      if (kind == "cross_entropy") return cross_entropy(z, c.at("labels").get<std::vector<std::int32_t>>());
      return mse_loss(z, tape.constant(tensor_from_json(c.at("target"))));
    };
    const HvpResult r = hvp(loss, parameters, vectors);
    EXPECT_NEAR(r.output, c.at("loss").get<double>(), 1e-6 * std::abs(c.at("loss").get<double>())) << kind;
    for (std::size_t k = 0; k < names.size(); ++k) {
      const Tensor expected_grad = tensor_from_json(c.at("grad_" + names[k]));
      const Tensor expected_hvp = tensor_from_json(c.at("hvp_" + names[k]));
      const double grad_error = worst_relative_error(r.grad[k], expected_grad, 1e-2);
      const double hvp_error = worst_relative_error(r.hvp[k], expected_hvp, 1e-2);
      EXPECT_LT(grad_error, 1e-4) << kind << " grad " << names[k];
      EXPECT_LT(hvp_error, 1e-4) << kind << " hvp " << names[k];
      std::cout << "[ figures  ] " << kind << " " << names[k] << ": worst relative error vs PyTorch, gradient "
                << grad_error << ", Hessian-vector product " << hvp_error << "\n";
    }
  }
}

// ---- (b) Newton's method on a logistic regression --------------------------------------

// 50 points, 2 features and a constant 1 (the bias), labels drawn from a logistic model so
// that the classes overlap (no separating line, so the unregularised optimum is finite too).
struct LogisticData {
  Tensor features = empty({50, 3});
  std::vector<std::int32_t> labels;
};

LogisticData logistic_data() {
  LogisticData d;
  Generator g(2026);
  for (std::size_t n = 0; n < 50; ++n) {
    const float a = g.uniform(-2.0f, 2.0f), b = g.uniform(-2.0f, 2.0f);
    d.features.data()[3 * n] = a;
    d.features.data()[3 * n + 1] = b;
    d.features.data()[3 * n + 2] = 1.0f;
    const double p = 1 / (1 + std::exp(-(1.5 * a - 2.0 * b + 0.3)));
    d.labels.push_back(g.uniform(0.0f, 1.0f) < p ? 1 : 0);
  }
  return d;
}

constexpr float kL2 = 0.01f;

// L(w) = mean_n [log(1 + e^{z_n}) - y_n z_n] + kL2/2 |w|^2, z = X w, with the two-class
// cross-entropy over logits (0, z) standing in for the logistic loss (it is the same, and
// stable).
Var logistic_loss(Var w, const LogisticData& d) {
  Tape& tape = w.tape();
  Var z = linear(tape.constant(d.features), reshape(w, {1, 3}));  // [50, 1]
  Var logits = concat({tape.constant(zeros({50, 1})), z}, 1);
  return cross_entropy(logits, d.labels) + sum(w * w) * (0.5f * kL2);
}

// Solves H d = g (3 x 3) by Gaussian elimination with partial pivoting, in double.
std::vector<double> solve3(std::vector<std::vector<double>> h, std::vector<double> g) {
  for (int col = 0; col < 3; ++col) {
    int pivot = col;
    for (int r = col + 1; r < 3; ++r)
      if (std::abs(h[r][col]) > std::abs(h[pivot][col])) pivot = r;
    std::swap(h[col], h[pivot]);
    std::swap(g[col], g[pivot]);
    for (int r = col + 1; r < 3; ++r) {
      const double f = h[r][col] / h[col][col];
      for (int k = col; k < 3; ++k) h[r][k] -= f * h[col][k];
      g[r] -= f * g[col];
    }
  }
  std::vector<double> d(3);
  for (int r = 2; r >= 0; --r) {
    double s = g[r];
    for (int k = r + 1; k < 3; ++k) s -= h[r][k] * d[k];
    d[r] = s / h[r][r];
  }
  return d;
}

// The same Newton iteration in plain double arithmetic, no tape: the independent optimum.
std::vector<double> reference_optimum(const LogisticData& d) {
  std::vector<double> w(3, 0.0);
  for (int step = 0; step < 30; ++step) {
    std::vector<double> g(3, 0.0);
    std::vector<std::vector<double>> h(3, std::vector<double>(3, 0.0));
    for (std::size_t n = 0; n < 50; ++n) {
      const float* x = d.features.data() + 3 * n;
      const double z = w[0] * x[0] + w[1] * x[1] + w[2] * x[2];
      const double p = 1 / (1 + std::exp(-z));
      for (int i = 0; i < 3; ++i) {
        g[i] += (p - d.labels[n]) * x[i] / 50;
        for (int j = 0; j < 3; ++j) h[i][j] += p * (1 - p) * x[i] * x[j] / 50;
      }
    }
    for (int i = 0; i < 3; ++i) {
      g[i] += kL2 * w[i];
      h[i][i] += kL2;
    }
    const std::vector<double> step_direction = solve3(h, g);
    for (int i = 0; i < 3; ++i) w[i] -= step_direction[i];
  }
  return w;
}

TEST(HigherOrderUses, NewtonsMethodOnALogisticRegressionConvergesInAFewSteps) {
  const LogisticData data = logistic_data();
  Tensor w = zeros({3});
  std::vector<double> norms;
  for (int step = 0; step <= 10; ++step) {
    Tape tape;
    Var wv = tape.input(w, true);
    Var loss = logistic_loss(wv, data);
    // The gradient as recorded Vars, then the Hessian column by column: H e_j = d<g, e_j>/dw.
    Var g = grad(loss, {wv}, {.create_graph = true})[0];
    double norm = 0;
    for (std::size_t i = 0; i < 3; ++i) norm += double(g.value().data()[i]) * g.value().data()[i];
    norms.push_back(std::sqrt(norm));
    if (norms.back() < 1e-6) break;
    std::vector<std::vector<double>> h(3, std::vector<double>(3));
    for (std::size_t j = 0; j < 3; ++j) {
      Tensor e = zeros({3});
      e.data()[j] = 1.0f;
      const Tensor column = grad(sum(g * tape.constant(e)), {wv})[0].value();
      for (std::size_t i = 0; i < 3; ++i) h[i][j] = column.data()[i];
    }
    EXPECT_NEAR(h[0][1], h[1][0], 1e-6);  // a Hessian is symmetric
    // The engine's Hessian-vector product agrees with the assembled columns.
    const Tensor v = test::tensor_from({3}, {0.3f, -0.2f, 0.5f});
    const Tensor hv = hvp([&](V x) { return logistic_loss(x[0], data); }, {w}, {v}).hvp[0];
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_NEAR(hv.data()[i], 0.3 * h[i][0] - 0.2 * h[i][1] + 0.5 * h[i][2], 1e-6);
    const std::vector<double> d =
        solve3(h, {g.value().data()[0], g.value().data()[1], g.value().data()[2]});
    for (std::size_t i = 0; i < 3; ++i) w.data()[i] = static_cast<float>(w.data()[i] - d[i]);
  }
  std::cout << "[ figures  ] Newton gradient norms per step:";
  for (double n : norms) std::cout << " " << n;
  std::cout << "\n";
  ASSERT_LT(norms.back(), 1e-6) << "no convergence in 10 Newton steps";
  EXPECT_LE(norms.size() - 1, 10u);
  // Newton converges quadratically: once close, each step at least squares the error
  // (up to float32 rounding of the gradient, about 1e-8 here).
  for (std::size_t s = 2; s < norms.size(); ++s)
    if (norms[s - 1] < 0.1) EXPECT_LT(norms[s], std::max(10 * norms[s - 1] * norms[s - 1], 1e-7)) << "step " << s;
  const std::vector<double> optimum = reference_optimum(data);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(w.data()[i], optimum[i], 1e-5) << "w[" << i << "]";
}

// ---- Finite differences of a whole procedure -------------------------------------------

// d objective / d value[j], Richardson-extrapolated central differences (as gradcheck),
// the objective evaluated in double from float32 values.
double numeric_derivative(const std::function<double()>& objective, float& value, double h) {
  const float original = value;
  auto central = [&](double step) {
    value = static_cast<float>(original + step);
    const double up = value, plus = objective();
    value = static_cast<float>(original - step);
    const double down = value, minus = objective();
    value = original;
    return (plus - minus) / (up - down);
  };
  return (4 * central(h) - central(2 * h)) / 3;
}

// ---- (c) One MAML inner step, differentiated through -----------------------------------

struct Task {
  Tensor train_x, train_y, val_x, val_y;
};

Task small_task() {
  Generator g(12);
  return {random_tensor({6, 3}, g), random_tensor({6, 2}, g), random_tensor({5, 3}, g), random_tensor({5, 2}, g)};
}

constexpr float kInnerRate = 0.5f;

// L_val(theta'), theta' = theta - a dL_train/dtheta. With create_graph the inner gradient is
// recorded, so the meta-gradient dL_val/dtheta includes the second-order term
// -a H_train dL_val/dtheta'; without it, theta' is a constant function of theta (first-order
// MAML).
Var maml_objective(Var weight, Var bias, const Task& task, bool second_order) {
  Tape& tape = weight.tape();
  auto model = [](Var x, Var w, Var b) { return tanh(linear(x, w, b)); };
  Var train_loss = mse_loss(model(tape.constant(task.train_x), weight, bias), tape.constant(task.train_y));
  std::vector<Var> g = grad(train_loss, {weight, bias}, {.create_graph = second_order});
  Var adapted_weight = weight - g[0] * kInnerRate;
  Var adapted_bias = bias - g[1] * kInnerRate;
  return mse_loss(model(tape.constant(task.val_x), adapted_weight, adapted_bias), tape.constant(task.val_y));
}

TEST(HigherOrderUses, MamlMetaGradientMatchesFiniteDifferencesOfTheInnerStepThenValidation) {
  const Task task = small_task();
  Generator g(4);
  Parameter weight("weight", random_tensor({2, 3}, g)), bias("bias", random_tensor({2}, g));
  weight.zero_grad();
  bias.zero_grad();
  {
    Tape tape;
    Var w = tape.param(weight), b = tape.param(bias);  // one entry each, used in both losses
    tape.backward(maml_objective(w, b, task, true));   // meta-gradient into Parameter::grad
  }
  Tensor first_order_weight;
  {
    Tape tape;
    Var w = tape.param(weight), b = tape.param(bias);
    first_order_weight = grad(maml_objective(w, b, task, false), {w})[0].value();
  }
  const auto objective = [&] {
    Tape tape;
    return double(maml_objective(tape.param(weight), tape.param(bias), task, false).value().data()[0]);
  };  // the value of theta' does not depend on create_graph; only its derivative does
  double second_order_part = 0;
  for (Parameter* p : {&weight, &bias})
    for (std::size_t j = 0; j < p->value.size(); ++j) {
      const double numeric = numeric_derivative(objective, p->value.data()[j], 1.0 / 256);
      EXPECT_NEAR(p->grad.data()[j], numeric, 1e-5 + 2e-3 * std::abs(numeric)) << p->name << "[" << j << "]";
      if (p == &weight) second_order_part = std::max(second_order_part, std::abs(numeric - first_order_weight.data()[j]));
    }
  // The check can tell: first-order MAML (no create_graph) misses the Hessian term.
  EXPECT_GT(second_order_part, 1e-2) << "the second-order term is too small to be seen";
}

// ---- (d) Gradient-penalty training step of a small ST-CNN ------------------------------

// Smooth activations and average pooling: the penalty contains relu' and max-pool's argmax,
// which jump, so finite differences of a relu network's penalty meet discontinuities.
class Tanh : public Module {
 public:
  Var forward(Var input) override { return tanh(input); }
  std::string describe() const override { return "Tanh"; }
};

// An ST-CNN on 12x12 images: a localisation CNN (conv 3x3 -> tanh -> avg-pool -> linear ->
// tanh) and an affine transformer sampling 12x12, then a classifier CNN (conv 3x3 -> tanh ->
// avg-pool -> linear, 4 classes).
std::shared_ptr<Sequential> tiny_st_cnn() {
  Generator init(21);
  auto localisation = std::make_shared<Sequential>();
  localisation->add("conv1", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = 1, .out = 2, .kernel = 3}, init));
  localisation->add("tanh1", std::make_shared<Tanh>());
  localisation->add("pool", std::make_shared<AvgPool2d>(Pool2dOptions{.kernel = 2}));
  localisation->add("flatten", std::make_shared<Flatten>());
  localisation->add("fc", std::make_shared<Linear>(LinearOptions{.in = 50, .out = 8}, init));
  localisation->add("tanh2", std::make_shared<Tanh>());
  auto st = std::make_shared<SpatialTransformer>(
      localisation, SpatialTransformerOptions{.kind = TransformKind::affine, .output_height = 12,
                                              .output_width = 12, .localisation_features = 8},
      init);
  // Away from the identity, whose sampling points are pixel centres (the sampler's kinks):
  // a half-pixel shift (1/12 in [-1, 1] coordinates) puts every point half a pixel from
  // them, and small regression weights keep the feature-dependent part under a quarter pixel,
  // so finite differences never cross a kink.
  Tensor& weight = st->regression().weight().value;
  for (std::size_t i = 0; i < weight.size(); ++i) weight.data()[i] = init.uniform(-0.005f, 0.005f);
  const float shifted[6] = {1, 0, 1.0f / 12, 0, 1, 1.0f / 12};
  std::copy(shifted, shifted + 6, st->regression().bias()->value.data());

  auto model = std::make_shared<Sequential>();
  model->add("st", st);
  model->add("conv", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = 1, .out = 3, .kernel = 3}, init));
  model->add("tanh", std::make_shared<Tanh>());
  model->add("pool", std::make_shared<AvgPool2d>(Pool2dOptions{.kernel = 2}));
  model->add("flatten", std::make_shared<Flatten>());
  model->add("fc", std::make_shared<Linear>(LinearOptions{.in = 75, .out = 4}, init));
  return model;
}

constexpr float kPenalty = 0.5f;

// loss + lambda ||d loss / d image||^2. With `record`, the image gradient is recorded
// (create_graph), so a backward of the total reaches the parameters through it.
Var penalised_loss(Module& model, Var images, const std::vector<std::int32_t>& labels, bool record) {
  Var loss = cross_entropy(model.forward(images), labels);
  Var image_grad = grad(loss, {images}, {.create_graph = record})[0];
  return loss + sum(image_grad * image_grad) * kPenalty;
}

TEST(HigherOrderUses, GradientPenaltyStepOfAnStCnnMatchesFiniteDifferences) {
  auto model = tiny_st_cnn();
  Generator g(8);
  const Tensor images = random_tensor({3, 1, 12, 12}, g, 0.0f, 1.0f);
  const std::vector<std::int32_t> labels = {0, 3, 1};

  model->zero_grad();
  double penalised_value = 0;
  {
    Tape tape;
    Var x = tape.input(images, true);
    Var total = penalised_loss(*model, x, labels, true);
    penalised_value = total.value().data()[0];
    tape.backward(total);
  }
  const auto objective = [&] {
    Tape tape;
    return double(penalised_loss(*model, tape.input(images, true), labels, false).value().data()[0]);
  };
  EXPECT_NEAR(objective(), penalised_value, 1e-6 * std::abs(penalised_value));

  // A few elements of every parameter tensor: the classifier's, the regression layer's (which
  // move the grid) and the localisation network's (which reach the grid through the image's
  // features).
  std::size_t checked = 0;
  double largest_localisation_grad = 0, worst_error = 0;
  for (Parameter* p : model->parameters()) {
    for (std::size_t j = 0; j < p->value.size(); j += std::max<std::size_t>(1, p->value.size() / 4)) {
      // h = 2^-6: the penalised loss is smooth here, so a larger step than gradcheck's keeps
      // float32 rounding (about 1e-7 / h) well inside the tolerance; the stencil (2h) moves a
      // sampling point by at most 0.19 pixel, which the half-pixel margin allows.
      const double numeric = numeric_derivative(objective, p->value.data()[j], 1.0 / 64);
      EXPECT_NEAR(p->grad.data()[j], numeric, 2e-5 + 2e-3 * std::abs(numeric)) << p->name << "[" << j << "]";
      worst_error = std::max(worst_error, std::abs(p->grad.data()[j] - numeric) / (2e-5 + 2e-3 * std::abs(numeric)));
      if (p->name.rfind("st.", 0) == 0) largest_localisation_grad = std::max(largest_localisation_grad, std::abs(numeric));
      ++checked;
    }
  }
  EXPECT_GT(checked, 40u);
  std::cout << "[ figures  ] gradient penalty: " << checked << " parameter elements against finite differences, worst error / tolerance "
            << worst_error << ", largest transformer-parameter derivative " << largest_localisation_grad << "\n";
  EXPECT_GT(largest_localisation_grad, 1e-3);  // the transformer's parameters are really checked

  // One SGD step on the penalised objective lowers it.
  for (Parameter* p : model->parameters())
    for (std::size_t j = 0; j < p->value.size(); ++j) p->value.data()[j] -= 0.05f * p->grad.data()[j];
  EXPECT_LT(objective(), penalised_value);

  // Figures: the penalised step against a plain one (forward + backward of the loss alone).
  using Clock = std::chrono::steady_clock;
  auto time = [&](const std::function<void()>& step) {
    step();
    const auto start = Clock::now();
    for (int i = 0; i < 20; ++i) step();
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / 20;
  };
  std::size_t plain_entries = 0, penalised_entries = 0;
  const double plain = time([&] {
    Tape tape;
    tape.backward(cross_entropy(model->forward(tape.input(images)), labels));
    plain_entries = tape.size();
  });
  const double penalised = time([&] {
    Tape tape;
    tape.backward(penalised_loss(*model, tape.input(images, true), labels, true));
    penalised_entries = tape.size();
  });
  std::cout << "[ figures  ] gradient-penalty step " << penalised << " ms (" << penalised_entries
            << " tape entries) vs plain step " << plain << " ms (" << plain_entries << " entries), batch 3, 12x12\n";
}

}  // namespace
}  // namespace stn
