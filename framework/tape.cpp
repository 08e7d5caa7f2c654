#include "stn/framework/tape.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "stn/framework/error.h"

namespace stn {

Parameter::Parameter(std::string name_, Tensor value_)
    : name(std::move(name_)), value(std::move(value_)), grad(zeros(shape_of(value))) {}

void Parameter::zero_grad() {
  if (shape_of(grad) != shape_of(value)) grad = zeros(shape_of(value));
  std::fill(grad.data(), grad.data() + grad.size(), 0.0f);
}

// ---- Var -------------------------------------------------------------------------------

Tape& Var::tape() const {
  if (!tape_) throw std::logic_error("Var: used before being assigned (no tape)");
  if (generation_ != tape_->generation())
    throw std::logic_error("Var: entry #" + std::to_string(index_) + " belongs to generation " +
                           std::to_string(generation_) + " of its tape, which was cleared (the tape is at generation " +
                           std::to_string(tape_->generation()) + "); Vars are valid until tape.clear()");
  return *tape_;
}
const Tensor& Var::value() const { return tape().entry(index_).value; }
Shape Var::shape() const { return shape_of(value()); }
std::size_t Var::ndim() const { return value().dimension(); }
std::size_t Var::numel() const { return value().size(); }
std::size_t Var::dim(int axis) const {
  const auto& shape = value().shape();  // no copy: dim() runs in every op's checks
  return shape[static_cast<std::size_t>(normalise_axis("dim", axis, {shape.data(), shape.size()}))];
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
  e.from_backward = recording_backward_;
  return make_var(entries_.size() - 1);
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
  return make_var(entries_.size() - 1);
}

void Tape::check_var(std::string_view op, const Var& v) const {
  if (!v.valid()) throw std::invalid_argument(std::string(op) + ": an input Var is unset");
  if (&v.tape() != this)  // v.tape() itself rejects a Var of an earlier generation
    throw std::invalid_argument(std::string(op) + ": entry #" + std::to_string(v.index()) +
                                " comes from a different tape");
  if (v.index() >= entries_.size())
    throw std::out_of_range(std::string(op) + ": input entry " + std::to_string(v.index()) +
                            " no longer exists (the tape was cleared)");
}

void Tape::check_same_tape(std::string_view op, const std::vector<Var>& inputs) const {
  for (const Var& v : inputs) check_var(op, v);
}

bool Tape::needs_grad(const std::vector<Var>& inputs) const {
  if (!grad_enabled_) return false;
  for (const Var& v : inputs)
    if (entries_[v.index()].requires_grad) return true;
  return false;
}

Var Tape::record(std::string_view op, const std::vector<Var>& inputs, Tensor value,
                 BackwardFn backward, std::size_t saved_bytes) {
  return record(op, inputs, std::move(value), std::move(backward), VjpFn{}, saved_bytes);
}

Var Tape::record(std::string_view op, const std::vector<Var>& inputs, Tensor value,
                 BackwardFn backward, VjpFn vjp, std::size_t saved_bytes) {
  check_same_tape(op, inputs);
  bool keep = needs_grad(inputs) && backward;
  TapeEntry& e = entries_.emplace_back();
  e.op = op;
  e.value = std::move(value);
  e.from_backward = recording_backward_;
  if (grad_enabled_) {
    e.inputs.reserve(inputs.size());
    for (const Var& v : inputs) e.inputs.push_back(v.index());
  }
  if (keep) {
    e.requires_grad = true;
    e.backward = std::move(backward);
    e.vjp = std::move(vjp);
    e.saved_bytes = saved_bytes;
  }
  if (anomaly_detection_ && !all_finite(e.value))
    throw NonFiniteError("anomaly: forward of " + describe_entry(entries_.size() - 1) + " produced NaN or Inf");
  return make_var(entries_.size() - 1);
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
  check_var("backward", loss);
  if (loss.numel() != 1)
    throw ShapeError("backward: the loss must have exactly one element, got shape " +
                     shape_string(loss.value()) + " (pass a seed to backward a tensor)");
  backward(loss, full(loss.shape(), 1.0f));
}

void Tape::backward(Var output, const Tensor& seed) {
  check_var("backward", output);
  if (shape_of(seed) != output.shape())
    throw ShapeError("backward: seed shape " + shape_string(seed) + " does not match output " +
                     shape_string(output.value()));
  if (!entries_[output.index()].requires_grad)
    throw std::logic_error(
        "backward: the output does not depend on anything that needs a gradient (no "
        "parameters or inputs with requires_grad, or it was computed in a no-grad scope)");
  // Intermediate gradients belong to one pass: a second backward must not propagate the
  // first one's again. Leaves keep theirs and accumulate.
  for (TapeEntry& e : entries_)
    if (e.has_grad && !e.inputs.empty()) {
      e.has_grad = false;
      e.grad = Tensor();
    }
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

// ---- Gradients as values or as recorded Vars (stn::grad) -------------------------------

std::vector<char> Tape::depends_on(const std::vector<Var>& targets, std::size_t last) const {
  std::vector<char> depends(last + 1, 0);
  std::size_t first = last;
  for (const Var& v : targets)
    if (v.index() <= last) {
      depends[v.index()] = 1;
      first = std::min(first, v.index());
    }
  for (std::size_t i = first; i <= last; ++i) {
    if (depends[i] || !entries_[i].backward) continue;
    for (std::size_t in : entries_[i].inputs)
      if (depends[in]) {
        depends[i] = 1;
        break;
      }
  }
  return depends;
}

std::vector<Var> Tape::gradients(Var output, const std::vector<Var>& inputs, bool create_graph) {
  check_var("grad", output);
  check_same_tape("grad", inputs);
  if (output.numel() != 1)
    throw ShapeError("grad: the output must have exactly one element, got shape " +
                     shape_string(output.value()));
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (!entries_[inputs[k].index()].requires_grad)
      throw std::invalid_argument(
          "grad: input " + std::to_string(k) + " (" + describe_entry(inputs[k].index()) +
          ") does not require a gradient (make leaves with tape.input(value, true); values "
          "computed only from constants or in a no-grad scope have none)");
  return create_graph ? gradients_recorded(output, inputs) : gradients_values(output, inputs);
}

std::vector<Var> Tape::gradients_values(Var output, const std::vector<Var>& inputs) {
  const std::size_t last = output.index();
  const std::vector<char> depends = depends_on(inputs, last);
  std::vector<Tensor> grads(last + 1);
  std::vector<char> reached(last + 1, 0);
  auto slot = [&](std::size_t i) -> Tensor* {
    if (!depends[i]) return nullptr;
    if (!reached[i]) {
      grads[i] = zeros(shape_of(entries_[i].value));
      reached[i] = 1;
    }
    return &grads[i];
  };
  if (depends[last]) slot(last)->data()[0] = 1.0f;
  for (std::size_t i = last + 1; i-- > 0;) {
    TapeEntry& e = entries_[i];
    if (!reached[i] || !e.backward) continue;
    BackwardContext ctx{grads[i], e.value, {}, {}};
    bool any = false;
    for (std::size_t in : e.inputs) {
      ctx.inputs.push_back(&entries_[in].value);
      ctx.grads.push_back(entries_[in].requires_grad ? slot(in) : nullptr);
      any |= ctx.grads.back() != nullptr;
    }
    if (!any) continue;  // a target reached from above, with nothing asked for below it
    e.backward(ctx);
  }
  NoGradScope no_grad(*this);
  std::vector<Var> result;
  for (const Var& v : inputs)
    result.push_back(input(v.index() <= last && reached[v.index()] ? grads[v.index()] : zeros(v.shape())));
  return result;
}

// a + b for two gradients of one shape: the sum of two uses of a value. Written here, not
// taken from ops/, because the tape sits below the ops.
Var Tape::accumulate(Var a, Var b) {
  Tensor sum = a.value();
  const float* pb = b.value().data();
  for (std::size_t i = 0; i < sum.size(); ++i) sum.data()[i] += pb[i];
  return record(
      "accumulate", {a, b}, std::move(sum),
      [](const BackwardContext& ctx) {
        for (std::size_t k = 0; k < 2; ++k)
          if (Tensor* g = ctx.grad(k))
            for (std::size_t i = 0; i < g->size(); ++i) g->data()[i] += ctx.grad_output.data()[i];
      },
      [](const VjpContext& ctx) { return std::vector<Var>{ctx.grad_output, ctx.grad_output}; });
}

std::vector<Var> Tape::gradients_recorded(Var output, const std::vector<Var>& inputs) {
  const std::size_t last = output.index();
  const std::vector<char> depends = depends_on(inputs, last);
  std::vector<Var> grads(last + 1);
  struct Marker {  // entries appended from here on are the backward's
    Tape& tape;
    bool previous;
    ~Marker() { tape.recording_backward_ = previous; }
  } marker{*this, recording_backward_};
  recording_backward_ = true;

  if (depends[last]) grads[last] = input(full(output.shape(), 1.0f));
  for (std::size_t i = last + 1; i-- > 0;) {
    if (!grads[i].valid() || !entries_[i].backward) continue;
    const TapeEntry& e = entries_[i];  // a deque: stays put while the vjp appends entries
    VjpContext ctx{grads[i], make_var(i), {}, {}};
    bool any = false;
    for (std::size_t in : e.inputs) {
      ctx.inputs.push_back(make_var(in));
      ctx.needed_inputs.push_back(depends[in] && entries_[in].requires_grad);
      any |= ctx.needed_inputs.back();
    }
    if (!any) continue;
    if (!e.vjp)
      throw std::logic_error("grad: " + describe_entry(i) +
                             " has no differentiable backward, so create_graph cannot go through it "
                             "(record the op with a VjpFn)");
    std::vector<Var> contributions = e.vjp(ctx);
    for (std::size_t k = 0; k < e.inputs.size(); ++k) {
      if (!ctx.needed(k) || k >= contributions.size() || !contributions[k].valid()) continue;
      const std::size_t in = e.inputs[k];
      if (contributions[k].shape() != shape_of(entries_[in].value))
        throw std::logic_error("grad: the differentiable backward of " + describe_entry(i) +
                               " gave input " + std::to_string(k) + " a gradient of shape " +
                               shape_string(contributions[k].value()) + ", expected " +
                               shape_string(entries_[in].value));
      if (anomaly_detection_ && !all_finite(contributions[k].value()))
        throw NonFiniteError("anomaly: backward of " + describe_entry(i) +
                             " produced NaN or Inf in the gradient of " + describe_entry(in));
      grads[in] = grads[in].valid() ? accumulate(grads[in], contributions[k]) : contributions[k];
    }
  }
  std::vector<Var> result;
  for (const Var& v : inputs)
    result.push_back(v.index() <= last && grads[v.index()].valid() ? grads[v.index()] : input(zeros(v.shape())));
  return result;
}

std::vector<Var> grad(Var output, const std::vector<Var>& inputs, const GradOptions& options) {
  return output.tape().gradients(output, inputs, options.create_graph);
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

void Tape::clear() {
  entries_.clear();
  reports_.clear();
  ++generation_;
}

void Tape::report(const void* module, std::vector<Var> values) {
  for (const Var& v : values) check_var("Tape::report", v);
  reports_.emplace_back(module, std::move(values));
}

const std::vector<Var>* Tape::last_report(const void* module) const {
  for (auto it = reports_.rbegin(); it != reports_.rend(); ++it)
    if (it->first == module) return &it->second;
  return nullptr;
}

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
    char line[320];
    std::snprintf(line, sizeof line, "%4zu  %-16s %-14s -> %-20s saved %s%s", i, e.op.c_str(),
                  inputs.c_str(), shape_string(e.value).c_str(),
                  human_bytes(e.saved_bytes).c_str(), e.requires_grad ? "" : "  (no grad)");
    out << line;
    if (e.from_backward) out << "  [backward]";
    if (!e.label.empty()) out << "  " << e.label;
    const Tensor* g = e.parameter ? &e.parameter->grad : (e.has_grad ? &e.grad : nullptr);
    if (g && g->size() > 0) {
      double norm = 0;
      for (std::size_t k = 0; k < g->size(); ++k) norm += double(g->data()[k]) * g->data()[k];
      char grad_text[48];
      std::snprintf(grad_text, sizeof grad_text, "  |grad| %.4g", std::sqrt(norm));
      out << grad_text;
    }
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
    if (e.from_backward) s << ", style=\"filled,dashed\", fillcolor=\"#e8f5e0\"";
    else if (e.parameter) s << ", style=filled, fillcolor=\"#ffe9b3\"";
    else if (e.inputs.empty()) s << ", style=filled, fillcolor=\"#dde8ff\"";
    s << "];\n";
  }
  for (std::size_t i = 0; i < entries_.size(); ++i)
    for (std::size_t in : entries_[i].inputs) s << "  n" << in << " -> n" << i << ";\n";
  s << "}\n";
  return s.str();
}

}  // namespace stn
