// Whole-file reads and crash-safe whole-file writes: a reader of `path` sees either the old
// contents or the new ones, never a truncated mix, even if the process dies mid-write.
#pragma once

#include <string>

namespace stn {

// Writes `bytes` to a temporary file next to `path`, fsyncs it, renames it over `path` and
// fsyncs the directory. If anything fails before the rename, the old file is untouched, the
// temporary file is removed and a std::runtime_error names the path and the errno text.
void write_file_atomically(const std::string& path, const std::string& bytes);

// The whole contents of `path`; stn::DataError naming the path if it cannot be read.
std::string read_file(const std::string& path);

}  // namespace stn
