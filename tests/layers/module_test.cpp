// Modules: hierarchical names, counts, modes, initialisation, and weight files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "stn/framework/error.h"
#include "stn/framework/io/safetensors.h"
#include "stn/layers/weights.h"
#include "stn/layers/layers.h"

namespace stn {
namespace {

class Block : public Module {
 public:
  explicit Block(Generator& g) {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(Conv2dLayerOptions{.in = 1, .out = 4, .kernel = 3}, g));
    fc = register_module("fc", std::make_shared<Linear>(LinearOptions{.in = 4, .out = 2}, g));
  }
  Var forward(Var x) override { return x; }
  std::string describe() const override { return "Block"; }
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<Linear> fc;
};

class Outer : public Module {
 public:
  explicit Outer(Generator& g) {
    loc = register_module("loc", std::make_shared<Block>(g));
    dropout = register_module("dropout", std::make_shared<Dropout>(0.5f, g));
  }
  Var forward(Var x) override { return x; }
  std::string describe() const override { return "Outer"; }
  std::shared_ptr<Block> loc;
  std::shared_ptr<Dropout> dropout;
};

TEST(Module, HierarchicalNamesAndCount) {
  Generator g(0);
  Outer model(g);
  std::vector<std::string> names;
  for (Parameter* p : model.parameters()) names.push_back(p->name);
  EXPECT_EQ(names, (std::vector<std::string>{"loc.conv1.weight", "loc.conv1.bias", "loc.fc.weight", "loc.fc.bias"}));
  EXPECT_EQ(model.parameter_count(), 4u * 9 + 4 + 4 * 2 + 2);
  EXPECT_NE(model.summary().find("  loc: Block  [50 parameters]"), std::string::npos) << model.summary();
}

TEST(Module, TrainAndEvalReachEveryChild) {
  Generator g(0);
  Outer model(g);
  model.eval();
  EXPECT_FALSE(model.loc->conv1->is_training());
  EXPECT_FALSE(model.dropout->is_training());
  model.train();
  EXPECT_TRUE(model.loc->fc->is_training());
}

TEST(Module, PytorchDefaultInitialisationBounds) {
  Generator g(3);
  Linear layer(LinearOptions{.in = 100, .out = 50}, g);
  const float bound = 1.0f / std::sqrt(100.0f);
  float largest = 0.0f;
  for (std::size_t i = 0; i < layer.weight().value.size(); ++i)
    largest = std::max(largest, std::abs(layer.weight().value.data()[i]));
  EXPECT_LE(largest, bound);
  EXPECT_GT(largest, 0.9f * bound);
  EXPECT_THROW(Linear(LinearOptions{.in = 0, .out = 3}, g), std::invalid_argument);
}

TEST(Module, SameSeedSameWeights) {
  Generator first(11), second(11);
  Outer a(first);
  Outer b(second);
  for (std::size_t k = 0; k < a.parameters().size(); ++k)
    EXPECT_EQ(a.parameters()[k]->value, b.parameters()[k]->value);
}

TEST(Module, DifferentSeedsDifferentWeights) {
  Generator first(11), second(12);
  Outer a(first);
  Outer b(second);
  for (std::size_t k = 0; k < a.parameters().size(); ++k) {
    const Tensor& x = a.parameters()[k]->value;
    const Tensor& y = b.parameters()[k]->value;
    std::size_t equal = 0;
    for (std::size_t i = 0; i < x.size(); ++i) equal += x.data()[i] == y.data()[i];
    EXPECT_EQ(equal, 0u) << a.parameters()[k]->name << ": " << equal << " of " << x.size() << " elements equal";
  }
}

TEST(Module, LayersDrawFromTheGeneratorTheyAreGiven) {
  // Two layers from one generator differ from each other, and building a layer advances the
  // generator it was given by exactly one draw per weight and bias element.
  Generator g(5);
  Linear a(LinearOptions{.in = 8, .out = 8}, g);
  Linear b(LinearOptions{.in = 8, .out = 8}, g);
  EXPECT_NE(a.weight().value, b.weight().value);
  Generator replay(5);
  for (int i = 0; i < 2 * (64 + 8); ++i) replay.next_u64();
  EXPECT_EQ(g.next_u64(), replay.next_u64());
}

TEST(Checkpoint, SaveLoadRoundTripAndErrors) {
  const std::string dir = std::filesystem::temp_directory_path() / ("stn_module_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Generator g1(1), g2(2);
  Outer saved(g1);
  save_parameters(dir + "/w.safetensors", saved, {{"model", "outer"}});
  Outer loaded(g2);
  auto metadata = load_parameters(dir + "/w.safetensors", loaded);
  EXPECT_EQ(metadata["model"], "outer");
  for (std::size_t k = 0; k < saved.parameters().size(); ++k)
    EXPECT_EQ(saved.parameters()[k]->value, loaded.parameters()[k]->value);

  Block other(g2);  // names without the "loc." prefix
  try {
    load_parameters(dir + "/w.safetensors", other);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'conv1.weight' is missing"), std::string::npos) << e.what();
  }
  Linear wrong(LinearOptions{.in = 3, .out = 2}, g1);
  save_parameters(dir + "/linear.safetensors", wrong);
  Linear target(LinearOptions{.in = 4, .out = 2}, g1);
  const Tensor before = target.weight().value;
  try {
    load_parameters(dir + "/linear.safetensors", target);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [2, 3] but the model expects [2, 4]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(target.weight().value, before);  // unchanged on error
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stn
