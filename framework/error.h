// Errors raised by the framework: std::runtime_error subclasses whose message names what was
// wrong (the op and the shapes, the file, the flag).
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace stn {

// A shape or argument that an op cannot accept: "conv2d: input [2, 3, 8, 8] has 3 channels
// but weight [4, 1, 3, 3] expects 1".
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Bad data or file contents (IDX, checkpoints, images).
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_shape_error(const std::string& op, const std::string& message);

// Axis `axis` of `shape` counted from the front (-1 is the last), or a ShapeError
// "op: axis 3 out of range for shape [2, 3]".
int normalise_axis(const std::string& op, int axis, std::span<const std::size_t> shape);

}  // namespace stn
