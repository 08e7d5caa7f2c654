// The SpatialTransformer layer: identity at the start, parameters per kind, parallel
// transformers, learning-rate groups, and gradients reaching the localisation network.
#include <gtest/gtest.h>

#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/reduce.h"
#include "stn/layers/layers.h"
#include "stn/layers/parameter_groups.h"
#include "stn/layers/spatial_transformer.h"
#include "test_util.h"

namespace stn {
namespace {

std::shared_ptr<Module> small_localisation(int features, Generator& g) {
  auto net = std::make_shared<Sequential>();
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc", std::make_shared<Linear>(LinearOptions{.in = 2 * 8 * 8, .out = features}, g));
  net->add("relu", std::make_shared<ReLU>());
  return net;
}

TEST(SpatialTransformer, StartsAtTheIdentityForEveryKind) {
  Generator g(1);
  Tensor image = test::random_tensor({3, 2, 8, 8}, g, 0.0f, 1.0f);
  for (const char* kind : {"aff", "att", "proj", "tps"}) {
    SpatialTransformer st(small_localisation(6, g),
                          {.kind = parse_transform_kind(kind), .output_height = 8, .output_width = 8,
                           .localisation_features = 6, .tps_points = 9},
                          g);
    Tape tape;
    auto result = st.transform(tape.input(image));
    EXPECT_LT(test::max_abs_difference(result.output.value(), image), 1e-4f) << kind;
    EXPECT_EQ(result.theta.numel(), 3u * static_cast<std::size_t>(transform_parameter_count(parse_transform_kind(kind), 9)));
  }
}

TEST(SpatialTransformer, GradientReachesTheLocalisationNetwork) {
  // The regression weight starts at zero, which blocks the chain to the localisation
  // network; moved off zero, the localisation layer's weight gradient must match central
  // finite differences of the loss (so a broken link anywhere on the way fails this).
  Generator g(2);
  Tensor image = test::random_tensor({2, 2, 8, 8}, g, 0.0f, 1.0f);
  auto localisation = small_localisation(6, g);
  SpatialTransformer st(localisation, {.output_height = 6, .output_width = 5, .localisation_features = 6}, g);
  Tensor& regression = st.regression().weight().value;
  for (std::size_t i = 0; i < regression.size(); ++i) regression.data()[i] = g.uniform(-0.2f, 0.2f);
  auto loss_of = [&](Tape& tape) {
    Var v = st.forward(tape.input(image));
    return sum(v * v);
  };
  Tape tape;
  Var v = st.forward(tape.input(image));
  EXPECT_EQ(v.shape(), (Shape{2, 2, 6, 5}));
  tape.clear();
  tape.backward(loss_of(tape));
  Parameter& fc = *localisation->parameters().front();  // the localisation layer's weight
  ASSERT_EQ(fc.name, "localisation.fc.weight");
  double largest = 0.0;
  for (std::size_t i : {0u, 37u, 130u, 511u, 700u}) {
    const float saved = fc.value.data()[i], eps = 2e-3f;
    Tape plus_tape, minus_tape;
    fc.value.data()[i] = saved + eps;
    const double plus = loss_of(plus_tape).value()();
    fc.value.data()[i] = saved - eps;
    const double minus = loss_of(minus_tape).value()();
    fc.value.data()[i] = saved;
    const double numeric = (plus - minus) / (2.0 * eps), analytic = fc.grad.data()[i];
    EXPECT_NEAR(analytic, numeric, 2e-2 * std::max(1.0, std::abs(numeric))) << "fc.weight[" << i << "]";
    largest = std::max(largest, std::abs(analytic));
  }
  EXPECT_GT(largest, 1e-3) << "the localisation network gets no gradient";
}

TEST(SpatialTransformer, ParallelTransformersConcatenateChannels) {
  Generator g(3);
  Tensor image = test::random_tensor({2, 2, 8, 8}, g);
  auto a = std::make_shared<SpatialTransformer>(small_localisation(4, g), SpatialTransformerOptions{.output_height = 8, .output_width = 8, .localisation_features = 4}, g);
  auto b = std::make_shared<SpatialTransformer>(small_localisation(4, g), SpatialTransformerOptions{.output_height = 8, .output_width = 8, .localisation_features = 4}, g);
  ParallelTransformers both({a, b});
  Tape tape;
  Var out = both.forward(tape.input(image));
  EXPECT_EQ(out.shape(), (Shape{2, 4, 8, 8}));
  EXPECT_EQ(find_transformers(both).size(), 2u);
  auto groups = localisation_parameter_groups(both, 0.1f);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_TRUE(groups[0].parameters.empty());
  EXPECT_EQ(groups[1].parameters.size(), both.parameters().size());
  EXPECT_FLOAT_EQ(groups[1].learning_rate_scale, 0.1f);
}

TEST(SpatialTransformer, RejectsBadOptions) {
  Generator g(4);
  EXPECT_THROW(SpatialTransformer(small_localisation(4, g), {.output_height = 0, .localisation_features = 4}, g), std::invalid_argument);
  EXPECT_THROW(SpatialTransformer(small_localisation(4, g), {.kind = TransformKind::tps, .localisation_features = 4, .tps_points = 10}, g),
               std::invalid_argument);
  EXPECT_THROW(parse_transform_kind("spline"), std::invalid_argument);
  SpatialTransformer st(small_localisation(4, g), {.localisation_features = 5}, g);
  Tape tape;
  EXPECT_THROW(st.forward(tape.input(zeros({1, 2, 8, 8}))), std::invalid_argument);  // features 4 != 5
}

TEST(SpatialTransformer, ItsResultIsOnTheTapeNotInTheModule) {
  // Inside a model, the transformer's theta, grid and output are read from the tape the
  // model ran on (Tape::report); the module keeps nothing, so they go with the tape.
  Generator g(5);
  auto st = std::make_shared<SpatialTransformer>(
      small_localisation(4, g), SpatialTransformerOptions{.output_height = 8, .output_width = 8, .localisation_features = 4}, g);
  Sequential model;
  model.add("st", st);
  model.add("flatten", std::make_shared<Flatten>());
  const Tensor image = test::random_tensor({3, 2, 8, 8}, g, 0.0f, 1.0f);
  Tape tape, other;
  EXPECT_FALSE(st->result_on(tape).has_value());
  model.forward(tape.input(image));
  std::optional<SpatialTransformer::Result> result = st->result_on(tape);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->theta.shape(), (Shape{3, 2, 3}));
  EXPECT_EQ(result->sampling_grid.shape(), (Shape{3, 8, 8, 2}));
  EXPECT_LT(test::max_abs_difference(result->output.value(), image), 1e-4f);  // the identity at the start
  EXPECT_FALSE(st->result_on(other).has_value());
  tape.clear();
  EXPECT_FALSE(st->result_on(tape).has_value());
}

}  // namespace
}  // namespace stn
