// The SpatialTransformer layer: identity at the start, parameters per kind, parallel
// transformers, learning-rate groups, and gradients reaching the localisation network.
#include <gtest/gtest.h>

#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "layers/layers.h"
#include "layers/spatial_transformer.h"
#include "test_util.h"

namespace stn {
namespace {

std::shared_ptr<Module> small_localisation(int features) {
  auto net = std::make_shared<Sequential>();
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc", std::make_shared<Linear>(LinearOptions{.in = 2 * 8 * 8, .out = features}));
  net->add("relu", std::make_shared<ReLU>());
  return net;
}

TEST(SpatialTransformer, StartsAtTheIdentityForEveryKind) {
  Generator g(1);
  Tensor image = test::random_tensor({3, 2, 8, 8}, g, 0.0f, 1.0f);
  for (const char* kind : {"aff", "att", "proj", "tps"}) {
    SpatialTransformer st(small_localisation(6),
                          {.kind = parse_transform_kind(kind), .output_height = 8, .output_width = 8,
                           .localisation_features = 6, .tps_points = 9});
    Tape tape;
    auto result = st.transform(tape.input(image));
    EXPECT_LT(test::max_abs_difference(result.output.value(), image), 1e-4f) << kind;
    EXPECT_EQ(result.theta.numel(), 3u * static_cast<std::size_t>(transform_parameter_count(parse_transform_kind(kind), 9)));
  }
}

TEST(SpatialTransformer, GradientReachesTheLocalisationNetwork) {
  Generator g(2);
  Tensor image = test::random_tensor({2, 2, 8, 8}, g, 0.0f, 1.0f);
  SpatialTransformer st(small_localisation(6), {.output_height = 6, .output_width = 5, .localisation_features = 6});
  Tape tape;
  Var v = st.forward(tape.input(image));
  EXPECT_EQ(v.shape(), (Shape{2, 2, 6, 5}));
  tape.backward(sum(v * v));
  double regression_bias_grad = 0.0;
  for (std::size_t i = 0; i < 6; ++i) regression_bias_grad += std::abs(st.regression().bias()->grad.data()[i]);
  EXPECT_GT(regression_bias_grad, 0.0);
}

TEST(SpatialTransformer, ParallelTransformersConcatenateChannels) {
  Generator g(3);
  Tensor image = test::random_tensor({2, 2, 8, 8}, g);
  auto a = std::make_shared<SpatialTransformer>(small_localisation(4), SpatialTransformerOptions{.output_height = 8, .output_width = 8, .localisation_features = 4});
  auto b = std::make_shared<SpatialTransformer>(small_localisation(4), SpatialTransformerOptions{.output_height = 8, .output_width = 8, .localisation_features = 4});
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
  EXPECT_THROW(SpatialTransformer(small_localisation(4), {.output_height = 0, .localisation_features = 4}), std::invalid_argument);
  EXPECT_THROW(SpatialTransformer(small_localisation(4), {.kind = TransformKind::tps, .localisation_features = 4, .tps_points = 10}),
               std::invalid_argument);
  EXPECT_THROW(parse_transform_kind("spline"), std::invalid_argument);
  SpatialTransformer st(small_localisation(4), {.localisation_features = 5});
  Tape tape;
  EXPECT_THROW(st.forward(tape.input(zeros({1, 2, 8, 8}))), std::invalid_argument);  // features 4 != 5
}

}  // namespace
}  // namespace stn
