// Progress reporting for long work: a one-line bar redrawn in place on a terminal, or a
// plain line every `plain_every` steps when stdout is a file or a pipe.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace stn::cli {

class Progress {
 public:
  // `first`: the step this process starts from (a resumed run starts past 0); the ETA comes
  // from the rate of the steps done since.
  Progress(std::string label, std::size_t total, std::size_t plain_every, std::size_t first = 0);
  // `status` is shown after the bar ("loss 0.123  acc 97.1%  4100 samples/s").
  void update(std::size_t done, const std::string& status);
  void finish(const std::string& status);
  // True once a write to stdout has failed (a closed pipe: `stn train | head -1`); nothing
  // more is printed then, and the caller decides how to stop.
  bool output_failed() const { return output_failed_; }

 private:
  void emit(const std::string& text);

  std::string label_;
  std::size_t total_;
  std::size_t plain_every_;
  std::size_t first_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool output_failed_ = false;
};

std::string format_duration(double seconds);

}  // namespace stn::cli
