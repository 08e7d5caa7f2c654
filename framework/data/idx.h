// IDX files (the MNIST format, http://yann.lecun.com/exdb/mnist/): a big-endian header
// (two zero bytes, an element type code, the number of dimensions, one 32-bit size per
// dimension) followed by the elements in row-major order. Files may be gzip-compressed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stn {

// An IDX array of unsigned bytes (type code 0x08): data.size() is the product of dims.
struct IdxArray {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;
};

// Reads an unsigned-byte IDX file, plain or gzip-compressed (recognised by its magic bytes
// 0x1f 0x8b, not by its name). Accepts 1 to 4 dimensions, none of them zero, and exactly the
// payload bytes the dimensions describe. Any other input (a missing or unreadable file, a
// short or malformed header, another element type, a truncated or overlong payload, a corrupt
// gzip stream, a FIFO or device instead of a regular file, a file or payload above 1 GiB)
// raises stn::DataError with a message that starts with `path`. Memory grows with the bytes
// actually present, never with what a header merely claims.
IdxArray read_idx(const std::string& path);

// Writes `array` as an unsigned-byte IDX file, gzip-compressed when `path` ends in ".gz".
// Throws std::invalid_argument (message starting with `path`) when the array is not
// something read_idx accepts, and stn::DataError when the file cannot be written.
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace stn
