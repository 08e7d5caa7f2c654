#include "stn/experiments/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/core.h>

#include "stn/layers/distributed.h"

namespace stn::cli {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::string label, std::size_t total, std::size_t plain_every, std::size_t first)
    : label_(std::move(label)),
      total_(total),
      plain_every_(plain_every ? plain_every : 1),
      first_(first),
      // Under mpirun the output reaches the terminal through the launcher's pseudo-terminal
      // even when mpirun's own output goes to a file: plain lines there.
      terminal_(isatty(fileno(stdout)) != 0 && distributed::launcher_size() == 0),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(std::size_t done, const std::string& status) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::size_t done_here = done > first_ ? done - first_ : 0;
  const double eta = done_here ? elapsed / static_cast<double>(done_here) * static_cast<double>(total_ - std::min(done, total_)) : -1;
  if (terminal_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 24;
    const int filled = total_ ? static_cast<int>(width * done / total_) : width;
    std::string bar = std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(width - filled), '.');
    emit(fmt::format("\r{} [{}] {}/{}  {}  ETA {}\033[K", label_, bar, done, total_, status, format_duration(eta)));
  } else if (done % plain_every_ == 0 || done == total_) {
    emit(fmt::format("{} {}/{}  {}  elapsed {}  ETA {}\n", label_, done, total_, status, format_duration(elapsed),
                     format_duration(eta)));
  }
}

void Progress::emit(const std::string& text) {
  if (output_failed_) return;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    output_failed_ = true;
    std::clearerr(stdout);
  }
}

void Progress::finish(const std::string& status) {
  update(total_, status);
  if (terminal_) emit("\n");
}

}  // namespace stn::cli
