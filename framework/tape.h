// The reverse-mode tape: a Wengert list.
//
// Every differentiable op appends one entry (op name, input entries, output value, what it
// saved for backward, its backward function). `Tape::backward(loss)` walks the entries once,
// in reverse creation order, and each entry's backward adds its contribution into the
// gradients of its inputs (`+=`), so a value used twice gets the sum of both uses.
// Parameters live outside the tape: a parameter leaf's gradient *is* the parameter's `grad`
// tensor, which keeps its value across steps until the optimizer zeroes it. Leaves (parameters
// and inputs created with requires_grad) accumulate over backward calls; intermediate
// gradients are reset at the start of every backward, so two backward calls give what one
// backward of the sum would.
//
// Higher order: an op may also record its backward as a function of Vars (`VjpFn`), built
// from ops that are themselves differentiable. `stn::grad(output, inputs, {.create_graph =
// true})` runs those, appending the backward's own entries to the tape (marked as such in the
// printer), so the gradients it returns are Vars that can be differentiated again.
//
//   stn::Tape tape;
//   stn::Var x = tape.input(images);            // a leaf that needs no gradient
//   stn::Var loss = stn::cross_entropy(model.forward(x), labels);
//   tape.backward(loss);                         // one reverse loop over the entries
//   optimizer.step();
//   tape.clear();                                // activations released
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "stn/framework/tensor.h"

namespace stn {

class Tape;

// A learnable tensor and its gradient; owned by a Module (or by the user), never by a tape.
struct Parameter {
  Parameter() = default;
  Parameter(std::string name, Tensor value);

  std::string name;  // hierarchical once registered in a module tree: "loc.conv1.weight"
  Tensor value;
  Tensor grad;  // same shape as value; accumulates over backward calls until zero_grad()
  bool requires_grad = true;

  void zero_grad();
};

// A handle to one tape entry. Cheap to copy; valid until the tape is cleared: each clear()
// starts a new generation of the tape, and a Var of an earlier generation raises an error
// naming its entry and both generations instead of reading whatever entry now has its index.
class Var {
 public:
  Var() = default;
  Var(Tape* tape, std::size_t index, std::uint64_t generation)
      : tape_(tape), index_(index), generation_(generation) {}

  // The tape, after checking that this Var still belongs to its current generation.
  Tape& tape() const;
  std::size_t index() const { return index_; }
  std::uint64_t generation() const { return generation_; }
  bool valid() const { return tape_ != nullptr; }

  const Tensor& value() const;
  Shape shape() const;
  std::size_t ndim() const;
  // Size along `axis`; negative axes count from the end.
  std::size_t dim(int axis) const;
  std::size_t numel() const;
  bool requires_grad() const;
  // The gradient computed by the last backward (shape [0] if none reached this value).
  const Tensor& grad() const;

 private:
  Tape* tape_ = nullptr;
  std::size_t index_ = 0;
  std::uint64_t generation_ = 0;
};

// What an entry's backward function sees: the gradient of its output, its output value, its
// inputs' values, and for each input a pointer to the gradient to add into (nullptr when
// that input needs no gradient, so its gradient is never computed).
struct BackwardContext {
  const Tensor& grad_output;
  const Tensor& output;
  std::vector<const Tensor*> inputs;
  std::vector<Tensor*> grads;

  const Tensor& input(std::size_t i) const { return *inputs[i]; }
  Tensor* grad(std::size_t i) const { return grads[i]; }
};

using BackwardFn = std::function<void(const BackwardContext&)>;

// What an entry's differentiable backward sees: the same as BackwardContext, but as Vars on
// the tape, so that the gradients it returns are recorded ops. `needed(i)` is false for
// inputs whose gradient nobody asked for; return an unset Var for those (and for inputs the
// output does not depend on).
struct VjpContext {
  Var grad_output;
  Var output;
  std::vector<Var> inputs;
  std::vector<bool> needed_inputs;

  const Var& input(std::size_t i) const { return inputs[i]; }
  bool needed(std::size_t i) const { return needed_inputs[i]; }
};

// Returns one gradient per input, each of that input's shape (or unset).
using VjpFn = std::function<std::vector<Var>(const VjpContext&)>;

struct TapeEntry {
  std::string op;                // "conv2d", "input", "param", ... (owned: any string will do)
  std::string label;             // parameter name for parameter leaves
  std::vector<std::size_t> inputs;
  Tensor value;
  Tensor grad;                   // allocated (zeros) when a gradient first reaches it
  bool has_grad = false;         // (a default xarray is 0-d with one element, not empty)
  bool requires_grad = false;
  Parameter* parameter = nullptr;
  std::size_t saved_bytes = 0;   // memory the backward keeps beyond inputs and output
  BackwardFn backward;
  VjpFn vjp;                     // the backward as recorded ops (higher-order gradients)
  bool from_backward = false;    // recorded by stn::grad with create_graph
};

class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Leaves.
  Var input(Tensor value, bool requires_grad = false);
  Var param(Parameter& parameter);
  Var constant(Tensor value) { return input(std::move(value), false); }

  // Appends an op's entry. The backward is kept only when gradients are enabled and some
  // input needs a gradient; otherwise the entry is a constant holding just the value. `vjp`,
  // the same backward written with ops, makes the op differentiable more than once.
  Var record(std::string_view op, const std::vector<Var>& inputs, Tensor value,
             BackwardFn backward, std::size_t saved_bytes = 0);
  Var record(std::string_view op, const std::vector<Var>& inputs, Tensor value,
             BackwardFn backward, VjpFn vjp, std::size_t saved_bytes = 0);
  // True when an op with these inputs will keep its backward (ops use this to skip saving).
  bool needs_grad(const std::vector<Var>& inputs) const;

  // Reverse pass from a one-element loss (seeded with 1), or from any output with `seed`.
  // Accumulates into the gradients of leaves (Parameter::grad for parameters); the gradients
  // of intermediate entries are those of this pass only.
  void backward(Var loss);
  void backward(Var output, const Tensor& seed);

  // Gradients of a one-element `output` with respect to `inputs`, without touching any
  // entry's or parameter's gradient (see stn::grad).
  std::vector<Var> gradients(Var output, const std::vector<Var>& inputs, bool create_graph);

  // Releases every entry (activations, saved tensors, gradients of non-parameters) and
  // starts a new generation: Vars of the old one raise an error when used.
  void clear();
  std::uint64_t generation() const { return generation_; }

  // Reports: Vars a module hands out of a forward pass for inspection (a transformer's
  // output, theta and sampling grid), filed under the module. They belong to this generation
  // and go with clear(): modules keep nothing between calls; whoever holds the tape reads
  // them. A module called twice on one tape has two reports; last_report gives the newer.
  void report(const void* module, std::vector<Var> values);
  const std::vector<Var>* last_report(const void* module) const;  // nullptr if none

  // Throws when `v` is unset, of another tape, of an earlier generation, or out of range;
  // `op` names the caller in the message.
  void check_var(std::string_view op, const Var& v) const;

  // Anomaly mode: every recorded value and every gradient a backward produces is checked
  // for NaN / Inf at once, and a NonFiniteError names the entry and op responsible. Costs a
  // pass over each tensor; off by default.
  void set_anomaly_detection(bool enabled) { anomaly_detection_ = enabled; }
  bool anomaly_detection() const { return anomaly_detection_; }

  // The first entry (in creation order) whose value holds a NaN or Inf, if any.
  std::optional<std::size_t> first_non_finite_value() const;
  // The first entry, in the order backward visits them (reverse), whose gradient holds a
  // NaN or Inf, if any.
  std::optional<std::size_t> first_non_finite_gradient() const;
  // "#12 conv2d [256, 32, 20, 20]"
  std::string describe_entry(std::size_t index) const;

  bool grad_enabled() const { return grad_enabled_; }
  void set_grad_enabled(bool enabled) { grad_enabled_ = enabled; }

  std::size_t size() const { return entries_.size(); }
  const TapeEntry& entry(std::size_t index) const;
  TapeEntry& entry(std::size_t index);

  // Inspection: one line per entry (id, op, inputs, output shape, bytes saved, and after a
  // backward the norm of the gradient that reached it; entries recorded by a backward are
  // marked), and the recorded graph in Graphviz DOT.
  void print(std::ostream& out) const;
  std::string to_string() const;
  std::string to_dot() const;

 private:
  Tensor* grad_slot(std::size_t index);
  void check_same_tape(std::string_view op, const std::vector<Var>& inputs) const;
  Var make_var(std::size_t index) { return Var(this, index, generation_); }
  // For each entry up to `last`: does it depend on one of `targets` (or is one)?
  std::vector<char> depends_on(const std::vector<Var>& targets, std::size_t last) const;
  std::vector<Var> gradients_recorded(Var output, const std::vector<Var>& inputs);
  Var accumulate(Var a, Var b);
  std::vector<Var> gradients_values(Var output, const std::vector<Var>& inputs);

  std::deque<TapeEntry> entries_;  // a deque: appending never moves existing values
  std::vector<std::pair<const void*, std::vector<Var>>> reports_;
  bool grad_enabled_ = true;
  bool anomaly_detection_ = false;
  bool recording_backward_ = false;  // entries appended now are a backward's
  std::uint64_t generation_ = 0;
};

// Options of stn::grad.
struct GradOptions {
  // Record the backward on the tape so that the returned gradients can be differentiated
  // again (costs the backward's values as tape entries, about as much memory and time as the
  // forward once more).
  bool create_graph = false;
};

// Gradients of a one-element `output` with respect to each of `inputs` (any Vars of the same
// tape: leaves, parameters' Vars from tape.param, or intermediate values). With create_graph
// the results are Vars recorded on the tape, differentiable again; without, they are
// constants. An input the output does not depend on gets a zero gradient of its shape.
// Neither entries' gradients nor Parameter::grad are changed (tape.backward is the
// first-order training path that accumulates into Parameter::grad).
std::vector<Var> grad(Var output, const std::vector<Var>& inputs, const GradOptions& options = {});

// A NaN or Inf found by anomaly detection (or by a caller checking the tape).
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool all_finite(const Tensor& t);

// RAII: inside this scope the tape records no backward functions and saves nothing.
class NoGradScope {
 public:
  explicit NoGradScope(Tape& tape) : tape_(tape), previous_(tape.grad_enabled()) {
    tape_.set_grad_enabled(false);
  }
  ~NoGradScope() { tape_.set_grad_enabled(previous_); }
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;

 private:
  Tape& tape_;
  bool previous_;
};

}  // namespace stn
