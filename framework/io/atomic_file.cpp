#include "stn/framework/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "stn/framework/error.h"

namespace stn {
namespace {

std::string errno_text(int error_number) { return std::generic_category().message(error_number); }

[[noreturn]] void fail_write(const std::string& path, const std::string& what, int error_number) {
  throw std::runtime_error("write_file_atomically: " + path + ": " + what + ": " +
                           errno_text(error_number));
}

// The directory holding `path` and the name inside it; the temporary file must live in the
// same directory, because rename() is only atomic within one filesystem.
void split_path(const std::string& path, std::string& directory, std::string& name) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    directory = ".";
    name = path;
  } else {
    directory = slash == 0 ? "/" : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
}

void write_all(int descriptor, const std::string& bytes, const std::string& path) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(descriptor, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_write(path, "cannot write temporary file", errno);
    }
    written += static_cast<std::size_t>(n);
  }
}

// Closes a descriptor and removes the temporary file unless released, so that every early
// exit (exceptions included) cleans up.
class TemporaryFile {
 public:
  TemporaryFile(int descriptor, std::string path)
      : descriptor_(descriptor), path_(std::move(path)) {}
  ~TemporaryFile() {
    if (descriptor_ >= 0) ::close(descriptor_);
    if (!released_) ::unlink(path_.c_str());
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  int descriptor() const { return descriptor_; }
  const std::string& path() const { return path_; }
  // close() reports deferred write errors (NFS, quota), so its result matters.
  int close() {
    int result = ::close(descriptor_);
    descriptor_ = -1;
    return result;
  }
  void release() { released_ = true; }

 private:
  int descriptor_;
  std::string path_;
  bool released_ = false;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  std::string directory, name;
  split_path(path, directory, name);
  if (name.empty()) fail_write(path, "path names a directory", EISDIR);

  // O_EXCL with a per-process counter instead of mkstemp, so the file gets the usual
  // umask-derived permissions rather than mkstemp's 0600.
  static std::atomic<unsigned> counter{0};
  int descriptor = -1;
  std::string temporary_path;
  for (int attempt = 0; attempt < 100 && descriptor < 0; ++attempt) {
    temporary_path = directory + "/." + name + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++);
    descriptor = ::open(temporary_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (descriptor < 0 && errno != EEXIST) break;
  }
  if (descriptor < 0) fail_write(path, "cannot create temporary file in " + directory, errno);

  TemporaryFile temporary(descriptor, temporary_path);
  write_all(temporary.descriptor(), bytes, path);
  if (::fsync(temporary.descriptor()) != 0) fail_write(path, "cannot fsync temporary file", errno);
  if (temporary.close() != 0) fail_write(path, "cannot close temporary file", errno);
  if (::rename(temporary.path().c_str(), path.c_str()) != 0)
    fail_write(path, "cannot rename temporary file over it", errno);
  temporary.release();

  // Without this the rename itself may be lost on a crash. The new contents are in place
  // by now, so an error here means "maybe not durable", not "not written"; EINVAL only says
  // the filesystem cannot sync directories at all.
  int directory_descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_descriptor < 0) fail_write(path, "cannot open directory " + directory, errno);
  int result = ::fsync(directory_descriptor);
  int fsync_errno = errno;
  ::close(directory_descriptor);
  if (result != 0 && fsync_errno != EINVAL)
    fail_write(path, "cannot fsync directory " + directory, fsync_errno);
}

std::string read_file(const std::string& path) {
  int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) throw DataError(path + ": cannot open: " + errno_text(errno));
  std::string bytes;
  struct stat status {};
  if (::fstat(descriptor, &status) == 0 && S_ISREG(status.st_mode))
    bytes.reserve(static_cast<std::size_t>(status.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(descriptor, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      int error_number = errno;
      ::close(descriptor);
      throw DataError(path + ": cannot read: " + errno_text(error_number));
    }
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(descriptor);
  return bytes;
}

}  // namespace stn
