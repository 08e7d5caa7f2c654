// The reverse-mode tape: a Wengert list.
//
// Every differentiable op appends one entry (op name, input entries, output value, what it
// saved for backward, its backward function). `Tape::backward(loss)` walks the entries once,
// in reverse creation order, and each entry's backward adds its contribution into the
// gradients of its inputs (`+=`), so a value used twice gets the sum of both uses.
// Parameters live outside the tape: a parameter leaf's gradient *is* the parameter's `grad`
// tensor, which keeps its value across steps until the optimizer zeroes it.
//
//   stn::Tape tape;
//   stn::Var x = tape.input(images);            // a leaf that needs no gradient
//   stn::Var loss = stn::cross_entropy(model.forward(x), labels);
//   tape.backward(loss);                         // one reverse loop over the entries
//   optimizer.step();
//   tape.clear();                                // activations released
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/tensor.h"

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

// A handle to one tape entry. Cheap to copy; valid until the tape is cleared.
class Var {
 public:
  Var() = default;
  Var(Tape* tape, std::size_t index) : tape_(tape), index_(index) {}

  Tape& tape() const;
  std::size_t index() const { return index_; }
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

struct TapeEntry {
  const char* op = "";           // "conv2d", "input", "param", ...
  std::string label;             // parameter name for parameter leaves
  std::vector<std::size_t> inputs;
  Tensor value;
  Tensor grad;                   // allocated (zeros) when a gradient first reaches it
  bool has_grad = false;         // (a default xarray is 0-d with one element, not empty)
  bool requires_grad = false;
  Parameter* parameter = nullptr;
  std::size_t saved_bytes = 0;   // memory the backward keeps beyond inputs and output
  BackwardFn backward;
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
  // input needs a gradient; otherwise the entry is a constant holding just the value.
  Var record(const char* op, const std::vector<Var>& inputs, Tensor value, BackwardFn backward,
             std::size_t saved_bytes = 0);
  // True when an op with these inputs will keep its backward (ops use this to skip saving).
  bool needs_grad(const std::vector<Var>& inputs) const;

  // Reverse pass from a one-element loss (seeded with 1), or from any output with `seed`.
  void backward(Var loss);
  void backward(Var output, const Tensor& seed);

  // Releases every entry (activations, saved tensors, gradients of non-parameters).
  void clear();

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

  // Inspection: one line per entry (id, op, inputs, output shape, bytes saved), and the
  // recorded graph in Graphviz DOT.
  void print(std::ostream& out) const;
  std::string to_string() const;
  std::string to_dot() const;

 private:
  Tensor* grad_slot(std::size_t index);
  void check_same_tape(const char* op, const std::vector<Var>& inputs) const;

  std::deque<TapeEntry> entries_;  // a deque: appending never moves existing values
  bool grad_enabled_ = true;
  bool anomaly_detection_ = false;
};

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
