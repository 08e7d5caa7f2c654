// NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
// for exchanging arrays with Python scripts.
#pragma once

#include <string>

#include "stn/framework/tensor.h"

namespace stn {

// Reads a C-order array of '<f4', '<f8' or '|u1' (the last two converted to float, values
// unchanged) and rank 0 to 8, from a version 1.0 or 2.0 file. Anything else, and any
// inconsistency between header and file size, is a stn::DataError naming the file.
Tensor read_npy(const std::string& path);
// The same from a file's bytes; errors start with `source_name`.
Tensor decode_npy(const std::string& bytes, const std::string& source_name);

// Writes a '<f4' version 1.0 file, atomically. Ranks above 8 are a stn::ShapeError, since
// read_npy would refuse them.
void write_npy(const std::string& path, const Tensor& tensor);
// The bytes write_npy writes.
std::string encode_npy(const Tensor& tensor);

}  // namespace stn
