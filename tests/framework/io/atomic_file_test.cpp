#include "stn/framework/io/atomic_file.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>

#include <gtest/gtest.h>

#include "stn/framework/error.h"
#include "temp_dir.h"

namespace stn {
namespace {

using test::TempDir;

std::size_t count_entries(const std::string& directory) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory)) ++count;
  return count;
}

void write_plain(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Root ignores directory permissions, so as root the attempt runs in a child process that
// has become "nobody". Returns whether `attempt` returned true, or nullopt if it cannot run.
std::optional<bool> run_without_privileges(const std::function<bool()>& attempt) {
  if (::geteuid() != 0) return attempt();
  pid_t child = ::fork();
  if (child < 0) return std::nullopt;
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    ::_exit(attempt() ? 0 : 1);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) == 2)
    return std::nullopt;
  return WEXITSTATUS(status) == 0;
}

TEST(AtomicFileTest, WritesAndReadsBack) {
  TempDir directory;
  std::string bytes("binary\0data\xff", 12);
  write_file_atomically(directory.file("out.bin"), bytes);
  EXPECT_EQ(read_file(directory.file("out.bin")), bytes);
}

TEST(AtomicFileTest, WritesEmptyFile) {
  TempDir directory;
  write_file_atomically(directory.file("empty"), "");
  EXPECT_EQ(read_file(directory.file("empty")), "");
}

TEST(AtomicFileTest, ReplacesExistingFileAndLeavesNoTemporaryFile) {
  TempDir directory;
  write_plain(directory.file("out.txt"), "old contents that are longer");
  write_file_atomically(directory.file("out.txt"), "new");
  EXPECT_EQ(read_file(directory.file("out.txt")), "new");
  EXPECT_EQ(count_entries(directory.path()), 1u);
}

TEST(AtomicFileTest, NewFileGetsUmaskPermissionsNotPrivateOnes) {
  TempDir directory;
  mode_t old_mask = ::umask(022);
  write_file_atomically(directory.file("out.txt"), "x");
  ::umask(old_mask);
  struct stat status {};
  ASSERT_EQ(::stat(directory.file("out.txt").c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0644u);
}

TEST(AtomicFileTest, TargetThatIsADirectoryIsLeftUntouched) {
  TempDir directory;
  const std::string target = directory.file("target");
  std::filesystem::create_directory(target);
  write_plain(target + "/inside.txt", "kept");
  try {
    write_file_atomically(target, "new");
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(target), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("Is a directory"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(std::filesystem::is_directory(target));
  EXPECT_EQ(read_file(target + "/inside.txt"), "kept");
  EXPECT_EQ(count_entries(directory.path()), 1u) << "temporary file left behind";
}

TEST(AtomicFileTest, PathEndingInSlashIsRejected) {
  TempDir directory;
  EXPECT_THROW(write_file_atomically(directory.path() + "/", "x"), std::runtime_error);
}

TEST(AtomicFileTest, UnwritableDirectoryLeavesOldFileIntact) {
  TempDir directory;
  const std::string locked = directory.file("locked");
  std::filesystem::create_directory(locked);
  const std::string target = locked + "/checkpoint";
  write_plain(target, "old");
  ASSERT_EQ(::chmod(directory.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(locked.c_str(), 0555), 0);
  ASSERT_EQ(::chmod(target.c_str(), 0666), 0);

  std::optional<bool> failed_as_expected = run_without_privileges([&] {
    try {
      write_file_atomically(target, "new");
      return false;
    } catch (const std::runtime_error& error) {
      const std::string message = error.what();
      return message.find(target) != std::string::npos &&
             message.find("Permission denied") != std::string::npos;
    }
  });
  if (!failed_as_expected) GTEST_SKIP() << "cannot drop root privileges here";
  EXPECT_TRUE(*failed_as_expected);
  EXPECT_EQ(read_file(target), "old");
  EXPECT_EQ(count_entries(locked), 1u);
}

TEST(AtomicFileTest, ReadingMissingFileIsDataErrorNamingIt) {
  TempDir directory;
  const std::string path = directory.file("missing.bin");
  try {
    read_file(path);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path, 0), 0u) << error.what();
    EXPECT_NE(std::string(error.what()).find("No such file"), std::string::npos) << error.what();
  }
}

TEST(AtomicFileTest, ReadingDirectoryIsDataError) {
  TempDir directory;
  EXPECT_THROW(read_file(directory.path()), DataError);
}

}  // namespace
}  // namespace stn
