// Shared by the fuzz targets in this directory (one per reader a user can reach with a file:
// IDX, safetensors checkpoints, npy, images).
//
// Each target defines LLVMFuzzerTestOneInput. Built with clang and -DSTN_FUZZ=ON, it links
// libFuzzer and is run by scripts/fuzz.sh; built with any other compiler, it links
// replay_main.cc instead and runs the committed corpus once (a regression test).
//
// The contract every target checks: a reader either returns a value that satisfies its
// documented invariants or throws stn::DataError. Any other exception escapes, ends in
// std::terminate and is reported as a crash; a broken invariant is reported by FUZZ_CHECK.
// The files here end in .cc so that tests/CMakeLists.txt's *.cpp glob leaves them out of
// stn_tests (each defines the same entry point).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(condition, ...)                                                       \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ", __FILE__, __LINE__,     \
                   #condition);                                                          \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fprintf(stderr, "\n");                                                        \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace stn::fuzz {

// A scratch file for readers that take a path. One per process and suffix (libFuzzer runs
// one input at a time per process), on tmpfs when there is one, removed at exit.
class ScratchFile {
 public:
  explicit ScratchFile(const char* suffix) {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : nullptr;
    if (!dir) dir = std::getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    path_ = std::string(dir) + "/stn-fuzz-" + std::to_string(getpid()) + "-" + std::to_string(counter()++) +
            suffix;
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& path() const { return path_; }

  // Replaces the file's contents with `size` bytes.
  const std::string& write(const std::uint8_t* data, std::size_t size) const {
    std::FILE* file = std::fopen(path_.c_str(), "wb");
    FUZZ_CHECK(file != nullptr, "cannot create scratch file %s", path_.c_str());
    const bool written = size == 0 || std::fwrite(data, 1, size, file) == size;
    FUZZ_CHECK(std::fclose(file) == 0 && written, "cannot write scratch file %s", path_.c_str());
    return path_;
  }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }
  std::string path_;
};

}  // namespace stn::fuzz
