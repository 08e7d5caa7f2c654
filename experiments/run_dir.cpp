#include "stn/experiments/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <regex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/core.h>

#include "stn/framework/error.h"

namespace stn::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".lock";

// What stn itself writes into a run directory and its checkpoints/ subdirectory; only these
// are removed by --overwrite.
const std::set<std::string>& run_files() {
  static const std::set<std::string> names = {
      "config.json",    "metrics.jsonl",   "model.safetensors", "result.json",   "transformer.png",
      "curves.png",     "curves.gp",       "curves_loss.dat",   "curves_error.dat", kLockName};
  return names;
}

bool is_checkpoint_file(const std::string& name) {
  static const std::regex pattern(R"(step-[0-9]{8}(\.state)?\.safetensors)");
  return std::regex_match(name, pattern);
}

// A temporary file of write_file_atomically (framework/io/atomic_file.cpp): ".NAME.tmp-PID-N".
bool is_temporary_file(const std::string& name, long* pid = nullptr) {
  static const std::regex pattern(R"(\..+\.tmp-([0-9]{1,9})-[0-9]+)");
  std::smatch match;
  if (!std::regex_match(name, match, pattern)) return false;
  if (pid) *pid = std::stol(match[1].str());
  return true;
}

std::string errno_text(int error_number) { return std::generic_category().message(error_number); }

std::vector<fs::path> entries_of(const fs::path& directory) {
  std::vector<fs::path> entries;
  std::error_code error;
  for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error))
    entries.push_back(it->path());
  if (error) throw DataError(directory.string() + ": cannot list the directory: " + error.message());
  return entries;
}

// The entries of a directory other than the lock file.
std::vector<fs::path> contents(const fs::path& directory) {
  std::vector<fs::path> found;
  for (const fs::path& entry : entries_of(directory))
    if (entry.filename() != kLockName) found.push_back(entry);
  std::sort(found.begin(), found.end());
  return found;
}

std::string listing(const std::vector<fs::path>& entries) {
  std::string text;
  for (std::size_t i = 0; i < entries.size() && i < 3; ++i)
    text += (i ? ", " : "") + entries[i].filename().string() + (fs::is_directory(entries[i]) ? "/" : "");
  if (entries.size() > 3) text += fmt::format(", ... ({} entries)", entries.size());
  return text;
}

// Removes a previous run: first checks that every entry is one stn writes, then removes them.
void remove_previous_run(const fs::path& directory) {
  std::vector<fs::path> doomed;
  auto foreign = [&](const fs::path& entry) {
    throw DataError(directory.string() + ": --overwrite removes only what stn writes into a run directory, and '" +
                    entry.lexically_relative(directory).string() +
                    "' is not one of those; remove it yourself or choose another --out");
  };
  for (const fs::path& entry : contents(directory)) {
    const std::string name = entry.filename().string();
    if (name == "checkpoints" && fs::is_directory(fs::symlink_status(entry))) {
      for (const fs::path& inner : entries_of(entry)) {
        const std::string inner_name = inner.filename().string();
        if (!fs::is_regular_file(fs::symlink_status(inner)) ||
            !(is_checkpoint_file(inner_name) || is_temporary_file(inner_name)))
          foreign(inner);
        doomed.push_back(inner);
      }
      doomed.push_back(entry);  // after its contents: removed empty
    } else if (fs::is_regular_file(fs::symlink_status(entry)) && (run_files().count(name) || is_temporary_file(name))) {
      doomed.push_back(entry);
    } else {
      foreign(entry);
    }
  }
  for (const fs::path& entry : doomed) {
    std::error_code error;
    fs::remove(entry, error);
    if (error) throw DataError(entry.string() + ": cannot remove it (--overwrite): " + error.message());
  }
}

// Removes `.NAME.tmp-PID-N` files in the directory and its checkpoints/. They belong to a
// process that died inside an atomic write: the lock we hold means no other stn is writing
// here (a live PID is then a reused one).
std::size_t remove_stale_temporaries(const fs::path& directory) {
  std::size_t removed = 0;
  const long own = static_cast<long>(::getpid());
  for (const fs::path& dir : {directory, directory / "checkpoints"}) {
    if (!fs::is_directory(dir)) continue;
    for (const fs::path& entry : entries_of(dir)) {
      long pid = 0;
      if (!is_temporary_file(entry.filename().string(), &pid) || pid == own) continue;
      std::error_code error;
      if (fs::remove(entry, error)) ++removed;
      else if (error) throw DataError(entry.string() + ": cannot remove this stale temporary file: " + error.message());
    }
  }
  return removed;
}

}  // namespace

void require_utf8(const std::string& text, const std::string& flag) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && i + length <= n && !(c == 0xC0 || c == 0xC1 || c > 0xF4);
    for (std::size_t k = 1; valid && k < length; ++k) valid = (s[i + k] & 0xC0) == 0x80;
    if (valid && length == 3) {
      const unsigned code = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      valid = code >= 0x800 && (code < 0xD800 || code > 0xDFFF);
    }
    if (valid && length == 4) {
      const unsigned code = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12);
      valid = code >= 0x10000 && code <= 0x10FFFF;
    }
    if (!valid)
      throw std::invalid_argument(fmt::format("{}: the path is not valid UTF-8 (byte 0x{:02X} at offset {}); stn records "
                                              "paths in JSON, so give a UTF-8 name",
                                              flag, static_cast<unsigned>(c), i));
    i += length;
  }
}

std::string shell_quote(const std::string& text) {
  static const std::regex safe(R"([A-Za-z0-9_./:=,+@%^-]+)");
  if (!text.empty() && std::regex_match(text, safe)) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

void check_output_file(const std::string& path, const std::string& flag) {
  require_utf8(path, flag);
  const fs::path file(path);
  const fs::path parent = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  std::error_code error;
  if (!fs::is_directory(parent, error))
    throw std::invalid_argument(flag + " '" + path + "': the directory '" + parent.string() + "' does not exist");
  if (fs::is_directory(file, error)) throw std::invalid_argument(flag + " '" + path + "' is a directory");
}

void check_run_directory_path(const std::string& path, const std::string& flag) {
  if (path.empty()) throw std::invalid_argument(flag + " needs a run directory, got an empty string");
  require_utf8(path, flag);
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (fs::exists(status) && !fs::is_directory(status))
    throw std::invalid_argument(flag + " '" + path + "' exists and is not a directory");
}

namespace {

// Opens DIR/.lock and takes the exclusive lock, or throws naming the process that has it.
int lock_run_directory(const fs::path& directory, bool create) {
  const std::string lock_path = (directory / kLockName).string();
  const int descriptor = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0666);
  if (descriptor < 0) throw DataError(lock_path + ": cannot open the lock file: " + errno_text(errno));
  if (::flock(descriptor, LOCK_EX | LOCK_NB) != 0) {
    const int error_number = errno;
    char buffer[32] = {};
    const ssize_t n = ::pread(descriptor, buffer, sizeof buffer - 1, 0);
    std::string pid = n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(descriptor);
    if (error_number == EWOULDBLOCK)
      throw DataError(directory.string() + ": in use by another stn process" + (pid.empty() ? "" : " (pid " + pid + ")") +
                      ", which holds its lock file .lock; wait for it to end, or choose another --out");
    throw DataError(lock_path + ": cannot lock: " + errno_text(error_number));
  }
  // The owner's PID, for the message a second process gets.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(descriptor, 0) != 0 ||
      ::pwrite(descriptor, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error_number = errno;
    ::close(descriptor);
    throw DataError(lock_path + ": cannot write the lock file: " + errno_text(error_number));
  }
  return descriptor;
}

[[noreturn]] void refuse_non_empty(const std::string& path, const std::vector<fs::path>& found) {
  throw DataError(fmt::format("{}: the run directory is not empty ({}); continue that run with "
                              "`stn train --resume {}`, choose another --out, or give --overwrite to "
                              "delete the old run first",
                              path, listing(found), shell_quote(path)));
}

}  // namespace

RunDirectory::RunDirectory(const std::string& path, RunDirectoryMode mode) : path_(path) {
  const fs::path directory(path);
  // The descriptor is owned from here on, so that every throw below releases the lock.
  struct Guard {
    int& descriptor;
    bool armed = true;
    ~Guard() {
      if (armed && descriptor >= 0) ::close(descriptor);
      if (armed) descriptor = -1;
    }
  } guard{lock_descriptor_};
  if (mode == RunDirectoryMode::resume) {
    if (!fs::is_directory(directory)) throw DataError(path + ": not a run directory (no such directory)");
    lock_descriptor_ = lock_run_directory(directory, true);
  } else {
    if (mode == RunDirectoryMode::fresh && fs::is_directory(directory)) {
      // A live owner is named as such; a refused directory is otherwise left as it was.
      if (fs::exists(directory / kLockName)) lock_descriptor_ = lock_run_directory(directory, false);
      const std::vector<fs::path> found = contents(directory);
      if (!found.empty()) refuse_non_empty(path, found);
    }
    std::error_code error;
    fs::create_directories(directory, error);
    if (error) throw DataError(path + ": cannot create the run directory: " + error.message());
    if (lock_descriptor_ < 0) lock_descriptor_ = lock_run_directory(directory, true);
    if (mode == RunDirectoryMode::fresh) {
      // Another process may have filled it between the first look and the lock.
      const std::vector<fs::path> found = contents(directory);
      if (!found.empty()) refuse_non_empty(path, found);
    } else {
      remove_previous_run(directory);
    }
  }
  stale_removed_ = remove_stale_temporaries(directory);
  guard.armed = false;
}

RunDirectory::~RunDirectory() {
  if (lock_descriptor_ >= 0) ::close(lock_descriptor_);
}

}  // namespace stn::cli
