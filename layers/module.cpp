#include "stn/layers/module.h"

#include <stdexcept>

namespace stn {

std::vector<Parameter*> Module::parameters() const {
  std::vector<Parameter*> all;
  for (const auto& p : parameters_) all.push_back(p.get());
  for (const auto& [name, child] : children_)
    for (Parameter* p : child->parameters()) all.push_back(p);
  return all;
}

std::size_t Module::parameter_count() const {
  std::size_t total = 0;
  for (const Parameter* p : parameters()) total += p->value.size();
  return total;
}

void Module::zero_grad() {
  for (Parameter* p : parameters()) p->zero_grad();
}

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->train(training);
}

Parameter& Module::register_parameter(const std::string& name, Tensor value) {
  for (const auto& p : parameters_)
    if (p->name == name) throw std::logic_error("Module: parameter '" + name + "' registered twice");
  parameters_.push_back(std::make_unique<Parameter>(name, std::move(value)));
  return *parameters_.back();
}

void Module::adopt(const std::string& name, std::shared_ptr<Module> module) {
  if (!module) throw std::invalid_argument("Module: child '" + name + "' is null");
  for (const auto& [existing, child] : children_)
    if (existing == name) throw std::logic_error("Module: child '" + name + "' registered twice");
  for (Parameter* p : module->parameters()) p->name = name + "." + p->name;
  children_.emplace_back(name, std::move(module));
}

void Module::summarise(const std::string& name, int depth, std::string& out) const {
  std::string line(static_cast<std::size_t>(depth) * 2, ' ');
  if (!name.empty()) line += name + ": ";
  line += describe();
  std::size_t count = parameter_count();
  if (count) line += "  [" + std::to_string(count) + " parameters]";
  out += line + "\n";
  for (const auto& [child_name, child] : children_) child->summarise(child_name, depth + 1, out);
}

std::string Module::summary() const {
  std::string out;
  summarise("", 0, out);
  return out;
}

}  // namespace stn
