// Fuzz target: stn::read_idx (framework/data/idx.h), the IDX reader behind every MNIST and
// Fashion-MNIST file, plain or gzip-compressed. The input is the whole file.
//
// Checks: read_idx either throws stn::DataError whose message starts with the path, or
// returns 1 to 4 non-zero dimensions whose product is the payload size; an accepted array
// survives write_idx -> read_idx unchanged.
#include <cstdint>
#include <cstring>
#include <string>

#include "stn/framework/data/idx.h"
#include "stn/framework/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const stn::fuzz::ScratchFile input(".idx");
  static const stn::fuzz::ScratchFile copy(".idx");
  const std::string& path = input.write(data, size);

  stn::IdxArray array;
  try {
    array = stn::read_idx(path);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), path.c_str(), path.size()) == 0,
               "message does not start with the path: %s", error.what());
    return 0;
  }

  FUZZ_CHECK(!array.dims.empty() && array.dims.size() <= 4, "%zu dimensions", array.dims.size());
  std::size_t count = 1;
  for (std::size_t dim : array.dims) {
    FUZZ_CHECK(dim > 0 && dim <= 0xFFFFFFFFu, "dimension %zu", dim);
    count *= dim;
  }
  FUZZ_CHECK(count == array.data.size(), "dimensions describe %zu bytes, data holds %zu", count,
             array.data.size());

  stn::write_idx(copy.path(), array);
  const stn::IdxArray again = stn::read_idx(copy.path());
  FUZZ_CHECK(again.dims == array.dims && again.data == array.data, "write_idx -> read_idx changed the array");
  return 0;
}
