// A module's parameters to and from a safetensors file, by hierarchical name.
#pragma once

#include <map>
#include <string>

#include "stn/layers/module.h"

namespace stn {

// Writes every parameter of `module` (atomically) with its name and the given metadata.
void save_parameters(const std::string& path, const Module& module,
                     const std::map<std::string, std::string>& metadata = {});

// Loads every parameter of `module` from `path`. Throws DataError naming the file and the
// tensor when a name is missing or unexpected, a shape differs or a value is not finite
// (NaN, infinity); the module is left unchanged on error.
std::map<std::string, std::string> load_parameters(const std::string& path, Module& module);

}  // namespace stn
