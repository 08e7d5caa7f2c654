// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes    little-endian u64 N, the header length
//   N bytes    JSON: {"__metadata__": {string: string},
//                     "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
//              padded with spaces to a multiple of 8 bytes
//   the rest   raw little-endian tensor data; offsets are relative to its start
// Only F32 tensors are read and written. Tensors are laid out contiguously in the order given.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "stn/framework/tensor.h"

namespace stn {

struct NamedTensor {
  std::string name;
  const Tensor* tensor;
};

// The file's bytes. Empty, duplicate or "__metadata__" names are a stn::DataError.
std::string encode_safetensors(const std::vector<NamedTensor>& tensors,
                               const std::map<std::string, std::string>& metadata = {});
// encode_safetensors, then write_file_atomically.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in the order of their data
  std::map<std::string, std::string> metadata;

  // nullptr if there is no tensor of that name.
  const Tensor* find(const std::string& name) const;
};

// Parses and fully validates `bytes`; any problem is a stn::DataError whose message starts
// with `source_name` (a path, usually) and says what was wrong. Nothing is allocated from
// header sizes before they have been checked against the actual length of `bytes`.
SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& source_name);
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace stn
