#include <map>
#include <stdexcept>

#include "models/models.h"

namespace stn {

namespace {

const std::map<std::string, ModelFactory>& registry() {
  static const std::map<std::string, ModelFactory> factories = {
      {"fcn", [](const InputSpec& input) { return make_fcn(input); }},
      {"cnn", [](const InputSpec& input) { return make_cnn(input); }},
  };
  return factories;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::shared_ptr<Module> make_model(const std::string& name, const InputSpec& input) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model '" + name + "' (known: " + known + ")");
  }
  return it->second(input);
}

}  // namespace stn
