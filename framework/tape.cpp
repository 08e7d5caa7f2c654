#include "framework/tape.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "framework/error.h"

namespace stn {

void throw_shape_error(const std::string& op, const std::string& message) {
  throw ShapeError(op + ": " + message);
}

Parameter::Parameter(std::string name_, Tensor value_)
    : name(std::move(name_)), value(std::move(value_)), grad(zeros(shape_of(value))) {}

void Parameter::zero_grad() {
  if (shape_of(grad) != shape_of(value)) grad = zeros(shape_of(value));
  std::fill(grad.data(), grad.data() + grad.size(), 0.0f);
}

// ---- Var -------------------------------------------------------------------------------

Tape& Var::tape() const {
  if (!tape_) throw std::logic_error("Var: used before being assigned (no tape)");
  return *tape_;
}
const Tensor& Var::value() const { return tape().entry(index_).value; }
Shape Var::shape() const { return shape_of(value()); }
std::size_t Var::ndim() const { return value().dimension(); }
std::size_t Var::numel() const { return value().size(); }
std::size_t Var::dim(int axis) const {
  const auto& s = value().shape();
  int n = static_cast<int>(s.size());
  int a = axis < 0 ? axis + n : axis;
  if (a < 0 || a >= n)
    throw ShapeError("dim: axis " + std::to_string(axis) + " out of range for shape " +
                     shape_string(value()));
  return s[static_cast<std::size_t>(a)];
}
bool Var::requires_grad() const { return tape().entry(index_).requires_grad; }
const Tensor& Var::grad() const {
  static const Tensor no_gradient = Tensor::from_shape({0});
  const TapeEntry& e = tape().entry(index_);
  if (e.parameter) return e.parameter->grad;
  return e.has_grad ? e.grad : no_gradient;
}

// ---- Tape ------------------------------------------------------------------------------

const TapeEntry& Tape::entry(std::size_t index) const {
  if (index >= entries_.size())
    throw std::out_of_range("Tape: entry " + std::to_string(index) + " does not exist (tape has " +
                            std::to_string(entries_.size()) + "; was it cleared?)");
  return entries_[index];
}
TapeEntry& Tape::entry(std::size_t index) {
  return const_cast<TapeEntry&>(static_cast<const Tape*>(this)->entry(index));
}

Var Tape::input(Tensor value, bool requires_grad) {
  TapeEntry& e = entries_.emplace_back();
  e.op = "input";
  e.value = std::move(value);
  e.requires_grad = requires_grad && grad_enabled_;
  return Var(this, entries_.size() - 1);
}

Var Tape::param(Parameter& parameter) {
  TapeEntry& e = entries_.emplace_back();
  e.op = "param";
  e.label = parameter.name;
  // The value is copied so the tape stays valid if the optimizer updates the parameter
  // before the tape is cleared; a parameter copy is small next to the activations.
  e.value = parameter.value;
  e.requires_grad = parameter.requires_grad && grad_enabled_;
  if (e.requires_grad) e.parameter = &parameter;
  return Var(this, entries_.size() - 1);
}

void Tape::check_same_tape(const char* op, const std::vector<Var>& inputs) const {
  for (const Var& v : inputs) {
    if (!v.valid()) throw std::invalid_argument(std::string(op) + ": an input Var is unset");
    if (&v.tape() != this)
      throw std::invalid_argument(std::string(op) + ": inputs come from different tapes");
    if (v.index() >= entries_.size())
      throw std::out_of_range(std::string(op) + ": input entry " + std::to_string(v.index()) +
                              " no longer exists (the tape was cleared)");
  }
}

bool Tape::needs_grad(const std::vector<Var>& inputs) const {
  if (!grad_enabled_) return false;
  for (const Var& v : inputs)
    if (entries_[v.index()].requires_grad) return true;
  return false;
}

Var Tape::record(const char* op, const std::vector<Var>& inputs, Tensor value, BackwardFn backward,
                 std::size_t saved_bytes) {
  check_same_tape(op, inputs);
  bool keep = needs_grad(inputs) && backward;
  TapeEntry& e = entries_.emplace_back();
  e.op = op;
  e.value = std::move(value);
  if (grad_enabled_) {
    e.inputs.reserve(inputs.size());
    for (const Var& v : inputs) e.inputs.push_back(v.index());
  }
  if (keep) {
    e.requires_grad = true;
    e.backward = std::move(backward);
    e.saved_bytes = saved_bytes;
  }
  if (anomaly_detection_ && !all_finite(e.value))
    throw NonFiniteError("anomaly: forward of " + describe_entry(entries_.size() - 1) + " produced NaN or Inf");
  return Var(this, entries_.size() - 1);
}

Tensor* Tape::grad_slot(std::size_t index) {
  TapeEntry& e = entries_[index];
  if (!e.requires_grad) return nullptr;
  if (e.parameter) {
    Tensor& g = e.parameter->grad;
    if (shape_of(g) != shape_of(e.value)) g = zeros(shape_of(e.value));
    return &g;
  }
  if (!e.has_grad) {
    e.grad = zeros(shape_of(e.value));
    e.has_grad = true;
  }
  return &e.grad;
}

void Tape::backward(Var loss) {
  if (loss.numel() != 1)
    throw ShapeError("backward: the loss must have exactly one element, got shape " +
                     shape_string(loss.value()) + " (pass a seed to backward a tensor)");
  backward(loss, full(loss.shape(), 1.0f));
}

void Tape::backward(Var output, const Tensor& seed) {
  check_same_tape("backward", {output});
  if (shape_of(seed) != output.shape())
    throw ShapeError("backward: seed shape " + shape_string(seed) + " does not match output " +
                     shape_string(output.value()));
  if (!entries_[output.index()].requires_grad)
    throw std::logic_error(
        "backward: the output does not depend on anything that needs a gradient (no "
        "parameters or inputs with requires_grad, or it was computed in a no-grad scope)");
  Tensor* seed_slot = grad_slot(output.index());
  for (std::size_t i = 0; i < seed.size(); ++i) seed_slot->data()[i] += seed.data()[i];

  for (std::size_t i = output.index() + 1; i-- > 0;) {
    TapeEntry& e = entries_[i];
    if (!e.backward || !e.has_grad) continue;  // no gradient reached this entry
    BackwardContext ctx{e.grad, e.value, {}, {}};
    ctx.inputs.reserve(e.inputs.size());
    ctx.grads.reserve(e.inputs.size());
    for (std::size_t in : e.inputs) {
      ctx.inputs.push_back(&entries_[in].value);
      ctx.grads.push_back(grad_slot(in));
    }
    e.backward(ctx);
    if (anomaly_detection_)
      for (std::size_t k = 0; k < ctx.grads.size(); ++k)
        if (ctx.grads[k] && !all_finite(*ctx.grads[k]))
          throw NonFiniteError("anomaly: backward of " + describe_entry(i) + " produced NaN or Inf in the gradient of " +
                               describe_entry(e.inputs[k]));
  }
}

bool all_finite(const Tensor& t) {
  const float* p = t.data();
  bool finite = true;
  for (std::size_t i = 0; i < t.size(); ++i) finite &= std::isfinite(p[i]);
  return finite;
}

std::optional<std::size_t> Tape::first_non_finite_value() const {
  for (std::size_t i = 0; i < entries_.size(); ++i)
    if (!all_finite(entries_[i].value)) return i;
  return std::nullopt;
}

std::optional<std::size_t> Tape::first_non_finite_gradient() const {
  for (std::size_t i = entries_.size(); i-- > 0;) {
    const TapeEntry& e = entries_[i];
    const Tensor* g = e.parameter ? &e.parameter->grad : (e.has_grad ? &e.grad : nullptr);
    if (g && !all_finite(*g)) return i;
  }
  return std::nullopt;
}

std::string Tape::describe_entry(std::size_t index) const {
  const TapeEntry& e = entry(index);
  std::string s = "#" + std::to_string(index) + " " + e.op;
  if (!e.label.empty()) s += " (" + e.label + ")";
  return s + " " + shape_string(e.value);
}

void Tape::clear() { entries_.clear(); }

// ---- Inspection ------------------------------------------------------------------------

namespace {
std::string human_bytes(std::size_t bytes) {
  char buf[32];
  if (bytes < 1024) std::snprintf(buf, sizeof buf, "%zu B", bytes);
  else if (bytes < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

void Tape::print(std::ostream& out) const {
  out << "tape: " << entries_.size() << " entries\n";
  std::size_t total_saved = 0, total_values = 0;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const TapeEntry& e = entries_[i];
    std::string inputs = "(";
    for (std::size_t k = 0; k < e.inputs.size(); ++k)
      inputs += (k ? ", " : "") + std::to_string(e.inputs[k]);
    inputs += ")";
    char line[256];
    std::snprintf(line, sizeof line, "%4zu  %-16s %-14s -> %-20s saved %s%s", i, e.op,
                  inputs.c_str(), shape_string(e.value).c_str(),
                  human_bytes(e.saved_bytes).c_str(), e.requires_grad ? "" : "  (no grad)");
    out << line;
    if (!e.label.empty()) out << "  " << e.label;
    out << "\n";
    total_saved += e.saved_bytes;
    total_values += e.value.size() * sizeof(float);
  }
  out << "values " << human_bytes(total_values) << ", saved for backward "
      << human_bytes(total_saved) << "\n";
}

std::string Tape::to_string() const {
  std::ostringstream s;
  print(s);
  return s.str();
}

std::string Tape::to_dot() const {
  std::ostringstream s;
  s << "digraph tape {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n";
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const TapeEntry& e = entries_[i];
    s << "  n" << i << " [label=\"#" << i << " " << e.op;
    if (!e.label.empty()) s << "\\n" << e.label;
    s << "\\n" << shape_string(e.value) << "\"";
    if (e.parameter) s << ", style=filled, fillcolor=\"#ffe9b3\"";
    else if (e.inputs.empty()) s << ", style=filled, fillcolor=\"#dde8ff\"";
    s << "];\n";
  }
  for (std::size_t i = 0; i < entries_.size(); ++i)
    for (std::size_t in : entries_[i].inputs) s << "  n" << in << " -> n" << i << ";\n";
  s << "}\n";
  return s.str();
}

}  // namespace stn
