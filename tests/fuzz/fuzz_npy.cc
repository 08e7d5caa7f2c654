// Fuzz target: stn::decode_npy (framework/io/npy.h), the .npy reader behind `stn warp
// --input X.npy` (read_npy is read_file + decode_npy). The input is the whole file.
//
// Checks: decoding either throws stn::DataError whose message starts with the source name or
// returns a tensor of rank 0 to 8 whose shape describes its size; that tensor survives
// encode_npy -> decode_npy bit for bit.
#include <cstdint>
#include <cstring>
#include <string>

#include "stn/framework/error.h"
#include "stn/framework/io/npy.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string source = "fuzz.npy";
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  stn::Tensor tensor;
  try {
    tensor = stn::decode_npy(bytes, source);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), source.c_str(), source.size()) == 0,
               "message does not start with the source name: %s", error.what());
    return 0;
  }
  const stn::Shape shape = stn::shape_of(tensor);
  FUZZ_CHECK(shape.size() <= 8, "rank %zu", shape.size());
  FUZZ_CHECK(stn::numel(shape) == tensor.size(), "shape %s but %zu elements", stn::shape_string(shape).c_str(),
             tensor.size());

  const stn::Tensor again = stn::decode_npy(stn::encode_npy(tensor), "re-encoded");
  FUZZ_CHECK(stn::shape_of(again) == shape, "re-encoding changed the shape");
  FUZZ_CHECK(tensor.size() == 0 || std::memcmp(again.data(), tensor.data(), tensor.size() * sizeof(float)) == 0,
             "re-encoding changed the values");
  return 0;
}
