// Optimizers and schedules against the update rules written out by hand (PyTorch's
// definitions), step by step.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "stn/framework/optim/optimizer.h"
#include "stn/framework/optim/schedule.h"
#include "test_util.h"

namespace stn {
namespace {

using test::tensor_from;

// Three steps on one parameter with a fixed gradient sequence.
std::vector<float> run(Optimizer& optimizer, Parameter& p, const std::vector<float>& grads) {
  std::vector<float> values;
  for (float g : grads) {
    p.grad.data()[0] = g;
    optimizer.step();
    values.push_back(p.value.data()[0]);
  }
  return values;
}

TEST(Sgd, PlainMomentumNesterovAndWeightDecay) {
  const std::vector<float> grads = {1.0f, -0.5f, 2.0f};
  {
    Parameter p("w", tensor_from({1}, {1.0f}));
    SGD sgd({{{&p}}}, {.learning_rate = 0.1f});
    auto v = run(sgd, p, grads);
    EXPECT_FLOAT_EQ(v[2], 1.0f - 0.1f * (1.0f - 0.5f + 2.0f));
  }
  {
    Parameter p("w", tensor_from({1}, {1.0f}));
    SGD sgd({{{&p}}}, {.learning_rate = 0.1f, .momentum = 0.9f});
    auto v = run(sgd, p, grads);
    // buffers: 1, 0.9 - 0.5 = 0.4, 0.36 + 2 = 2.36
    EXPECT_NEAR(v[0], 0.9f, 1e-6);
    EXPECT_NEAR(v[1], 0.86f, 1e-6);
    EXPECT_NEAR(v[2], 0.86f - 0.236f, 1e-6);
  }
  {
    Parameter p("w", tensor_from({1}, {1.0f}));
    SGD sgd({{{&p}}}, {.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true});
    auto v = run(sgd, p, grads);
    // step 1: buf 1, update g + m * buf = 1.9
    EXPECT_NEAR(v[0], 1.0f - 0.19f, 1e-6);
    // step 2: buf 0.4, update -0.5 + 0.36 = -0.14
    EXPECT_NEAR(v[1], 0.81f + 0.014f, 1e-6);
    // step 3: buf 0.36 + 2 = 2.36, update 2 + 0.9 * 2.36 = 4.124
    EXPECT_NEAR(v[2], 0.824f - 0.4124f, 1e-6);
  }
  {
    Parameter p("w", tensor_from({1}, {2.0f}));
    SGD sgd({{{&p}}}, {.learning_rate = 0.1f, .weight_decay = 0.5f});
    auto v = run(sgd, p, {0.0f});
    EXPECT_NEAR(v[0], 2.0f - 0.1f * 1.0f, 1e-6);
  }
}

// A value replaced by one of another shape after the optimizer was built would make step()
// read past the gradient and the state buffers: it must refuse, naming the parameter.
TEST(Optimizers, RefuseAParameterWhoseShapeChanged) {
  for (const bool adam : {false, true}) {
    Parameter p("layer.weight", tensor_from({2}, {1.0f, 2.0f}));
    std::unique_ptr<Optimizer> optimizer;
    if (adam) optimizer = std::make_unique<Adam>(std::vector<ParameterGroup>{{{&p}}}, AdamOptions{.learning_rate = 0.1f});
    else optimizer = std::make_unique<SGD>(std::vector<ParameterGroup>{{{&p}}}, SgdOptions{.learning_rate = 0.1f, .momentum = 0.9f});
    optimizer->step();
    p.value = tensor_from({3}, {1.0f, 2.0f, 3.0f});
    try {
      optimizer->step();
      ADD_FAILURE() << (adam ? "Adam" : "SGD") << " stepped a parameter whose shape changed";
    } catch (const std::logic_error& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string(adam ? "Adam" : "SGD") +
                    ": parameter 'layer.weight' has 3 values but a gradient of 2 and optimizer state of 2 (its value "
                    "changed shape after the optimizer was built)");
    }
    EXPECT_EQ(p.value.data()[2], 3.0f) << "nothing may be updated before the refusal";
  }
}

TEST(Sgd, GroupsScaleTheLearningRate) {
  Parameter a("a", tensor_from({1}, {1.0f})), b("b", tensor_from({1}, {1.0f}));
  SGD sgd({{{&a}, 1.0f}, {{&b}, 0.1f}}, {.learning_rate = 0.5f});
  a.grad.data()[0] = 1.0f;
  b.grad.data()[0] = 1.0f;
  sgd.step();
  EXPECT_FLOAT_EQ(a.value.data()[0], 0.5f);
  EXPECT_FLOAT_EQ(b.value.data()[0], 0.95f);
  sgd.zero_grad();
  EXPECT_EQ(a.grad.data()[0], 0.0f);
}

TEST(Adam, MatchesTheUpdateRule) {
  Parameter p("w", tensor_from({1}, {1.0f}));
  Adam adam({{{&p}}}, {.learning_rate = 0.01f});
  const std::vector<float> grads = {1.0f, -0.5f, 2.0f};
  double w = 1.0, m = 0.0, v = 0.0;
  for (std::size_t t = 1; t <= grads.size(); ++t) {
    double g = grads[t - 1];
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    double m_hat = m / (1 - std::pow(0.9, t)), v_hat = v / (1 - std::pow(0.999, t));
    w -= 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8);
    p.grad.data()[0] = grads[t - 1];
    adam.step();
    EXPECT_NEAR(p.value.data()[0], w, 1e-6) << "step " << t;
  }
  EXPECT_EQ(adam.state().size(), 2u);
}

TEST(Optimizers, RejectBadOptions) {
  Parameter p("w", tensor_from({1}, {1.0f}));
  EXPECT_THROW(SGD({{{&p}}}, {.learning_rate = 0.0f}), std::invalid_argument);
  EXPECT_THROW(SGD({{{&p}}}, {.learning_rate = 0.1f, .nesterov = true}), std::invalid_argument);
  EXPECT_THROW(Adam({{{&p}}}, {.learning_rate = -1.0f}), std::invalid_argument);
  EXPECT_THROW(Adam({{{&p}}}, {.learning_rate = 0.1f, .beta1 = 1.0f}), std::invalid_argument);
}

TEST(Schedule, StepCosineAndWarmup) {
  Schedule step{.kind = Schedule::Kind::Step, .step_every = 50000};
  EXPECT_FLOAT_EQ(step.learning_rate(0.01f, 0), 0.01f);
  EXPECT_FLOAT_EQ(step.learning_rate(0.01f, 49999), 0.01f);
  EXPECT_NEAR(step.learning_rate(0.01f, 50000), 0.001f, 1e-9);
  EXPECT_NEAR(step.learning_rate(0.01f, 149999), 0.0001f, 1e-9);
  Schedule cosine{.kind = Schedule::Kind::Cosine, .total = 100};
  EXPECT_FLOAT_EQ(cosine.learning_rate(1.0f, 0), 1.0f);
  EXPECT_NEAR(cosine.learning_rate(1.0f, 50), 0.5f, 1e-6);
  EXPECT_NEAR(cosine.learning_rate(1.0f, 100), 0.0f, 1e-6);
  Schedule warm{.kind = Schedule::Kind::Constant, .warmup = 4};
  EXPECT_FLOAT_EQ(warm.learning_rate(1.0f, 0), 0.25f);
  EXPECT_FLOAT_EQ(warm.learning_rate(1.0f, 4), 1.0f);
  EXPECT_THROW(parse_schedule_kind("linear"), std::invalid_argument);
}

}  // namespace
}  // namespace stn
