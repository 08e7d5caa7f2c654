#include "stn/framework/error.h"

namespace stn {

void throw_shape_error(const std::string& op, const std::string& message) {
  throw ShapeError(op + ": " + message);
}

}  // namespace stn
