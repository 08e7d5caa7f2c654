#include "stn/layers/weights.h"

#include <cmath>
#include <set>

#include "stn/framework/error.h"
#include "stn/framework/io/safetensors.h"

namespace stn {

void save_parameters(const std::string& path, const Module& module,
                     const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensor> tensors;
  for (const Parameter* p : module.parameters()) tensors.push_back({p->name, &p->value});
  save_safetensors(path, tensors, metadata);
}

std::map<std::string, std::string> load_parameters(const std::string& path, Module& module) {
  SafetensorsFile file = load_safetensors(path);
  std::vector<Parameter*> parameters = module.parameters();
  std::set<std::string> expected;
  // Validate everything before touching the module.
  for (const Parameter* p : parameters) {
    expected.insert(p->name);
    const Tensor* t = file.find(p->name);
    if (!t) throw DataError(path + ": tensor '" + p->name + "' is missing");
    if (shape_of(*t) != shape_of(p->value))
      throw DataError(path + ": tensor '" + p->name + "' has shape " + shape_string(*t) +
                      " but the model expects " + shape_string(p->value));
    // Weights full of NaN would otherwise evaluate to a plausible-looking 90% error.
    for (std::size_t i = 0; i < t->size(); ++i)
      if (!std::isfinite(t->data()[i]))
        throw DataError(path + ": tensor '" + p->name + "' holds " + (std::isnan(t->data()[i]) ? "a NaN" : "an infinity") +
                        " at element " + std::to_string(i) + " (weights must be finite)");
  }
  for (const auto& [name, tensor] : file.tensors)
    if (!expected.count(name)) throw DataError(path + ": unexpected tensor '" + name + "' (not in the model)");
  for (Parameter* p : parameters) p->value = *file.find(p->name);
  return file.metadata;
}

}  // namespace stn
