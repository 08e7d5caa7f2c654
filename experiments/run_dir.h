// Owning a run directory: one stn process at a time, never two runs mixed in one directory.
//
// Rules (README, Reliability):
//   - a fresh `stn train --out DIR` needs DIR absent or empty; a DIR holding anything is
//     refused with a message naming it and the three ways on (--resume DIR, another --out,
//     --overwrite);
//   - --overwrite removes the previous run first, but only the files stn writes into a run
//     directory (anything else in DIR makes it refuse, so a mistyped --out cannot wipe a
//     directory of the user's own files);
//   - the owner holds an exclusive flock(2) on DIR/.lock for the life of the process; the
//     kernel drops it when the process ends in any way (kill -9 included), so a killed run
//     can always be resumed, while a second owner (a second `stn train` into DIR, or
//     --resume of a run that is still training) is refused;
//   - once the lock is held, temporary files of atomic writes left by a killed process
//     (`.NAME.tmp-PID-N`) are removed: no other stn can be writing them.
#pragma once

#include <string>

namespace stn::cli {

enum class RunDirectoryMode { fresh, overwrite, resume };

// The path must be valid UTF-8 (it goes into JSON) and not name a file that is not a
// directory. Throws std::invalid_argument (naming `flag`) or stn::DataError.
void check_run_directory_path(const std::string& path, const std::string& flag);

class RunDirectory {
 public:
  // Creates the directory when `mode` is fresh or overwrite and it is missing; throws
  // stn::DataError with the reason (not a directory, not empty, in use, not a run).
  RunDirectory(const std::string& path, RunDirectoryMode mode);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& path() const { return path_; }
  std::size_t stale_files_removed() const { return stale_removed_; }

 private:
  std::string path_;
  int lock_descriptor_ = -1;
  std::size_t stale_removed_ = 0;
};

// `text` as one shell word: unchanged when it holds only safe characters, else in single
// quotes (for messages that tell the user a command to run).
std::string shell_quote(const std::string& text);

// Throws std::invalid_argument("FLAG: ... is not valid UTF-8 ...") unless `text` is UTF-8.
void require_utf8(const std::string& text, const std::string& flag);

// An output file's path, checked before the work that makes it: UTF-8, its directory
// exists, and it does not name a directory. Throws std::invalid_argument naming `flag`.
void check_output_file(const std::string& path, const std::string& flag);

}  // namespace stn::cli
