#include "stn/framework/error.h"

#include "stn/framework/tensor.h"

namespace stn {

void throw_shape_error(const std::string& op, const std::string& message) {
  throw ShapeError(op + ": " + message);
}

int normalise_axis(const std::string& op, int axis, std::span<const std::size_t> shape) {
  const int rank = static_cast<int>(shape.size());
  const int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw_shape_error(op, "axis " + std::to_string(axis) + " out of range for shape " +
                              shape_string(Shape(shape.begin(), shape.end())));
  return a;
}

}  // namespace stn
