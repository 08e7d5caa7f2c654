#include <map>
#include <stdexcept>

#include "stn/layers/spatial_transformer.h"
#include "stn/models/models.h"

namespace stn {

namespace {

std::map<std::string, ModelFactory> build_registry();

const std::map<std::string, ModelFactory>& registry() {
  static const std::map<std::string, ModelFactory> factories = build_registry();
  return factories;
}

std::map<std::string, ModelFactory> build_registry() {
  std::map<std::string, ModelFactory> factories = {
      {"fcn", [](const InputSpec& input, Generator& g) { return make_sized_fcn(input, g); }},
      {"fcn-256", [](const InputSpec& input, Generator& g) { return make_fcn(input, g, {.hidden_units = 256}); }},
      {"cnn", [](const InputSpec& input, Generator& g) { return make_cnn(input, g); }},
      // TPS, as in the paper's illustration of the addition model (PAPER.md, A.1).
      {"2xst-fcn", [](const InputSpec& input, Generator& g) { return make_2xst_fcn(input, TransformKind::tps, g); }},
  };
  for (const char* kind : {"aff", "att", "proj", "tps"}) {
    TransformKind k = parse_transform_kind(kind);
    factories[std::string("st-fcn-") + kind] = [k](const InputSpec& input, Generator& g) { return make_st_fcn(input, k, g); };
    factories[std::string("st-cnn-") + kind] = [k](const InputSpec& input, Generator& g) { return make_st_cnn(input, k, g); };
  }
  return factories;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::shared_ptr<Module> make_model(const std::string& name, const InputSpec& input, Generator& generator) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model '" + name + "' (known: " + known + ")");
  }
  return it->second(input, generator);
}

}  // namespace stn
