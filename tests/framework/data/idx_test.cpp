#include "stn/framework/data/idx.h"

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "stn/framework/error.h"
#include "stn/framework/random.h"

namespace stn {
namespace {

using Bytes = std::vector<std::uint8_t>;

// Header of an unsigned-byte IDX file with the given dimensions.
Bytes idx_header(const std::vector<std::uint32_t>& dims, std::uint8_t type_code = 0x08) {
  Bytes bytes{0, 0, type_code, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<std::uint8_t>(dim >> shift));
  }
  return bytes;
}

Bytes concatenate(Bytes first, const Bytes& second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

Bytes count_up(std::size_t size) {
  Bytes bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return bytes;
}

class IdxReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "stn_idx_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  std::string path(const std::string& name) const { return (directory_ / name).string(); }

  std::string write_plain(const std::string& name, const Bytes& bytes) const {
    const std::string file_path = path(name);
    std::FILE* file = std::fopen(file_path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
    return file_path;
  }

  // Each element of `members` becomes one gzip member, appended in order.
  std::string write_gzip(const std::string& name, const std::vector<Bytes>& members) const {
    const std::string file_path = path(name);
    std::filesystem::remove(file_path);
    for (const Bytes& member : members) {
      gzFile file = gzopen(file_path.c_str(), "ab");
      EXPECT_NE(file, nullptr);
      if (!member.empty()) gzwrite(file, member.data(), static_cast<unsigned>(member.size()));
      gzclose(file);
    }
    return file_path;
  }

  Bytes file_bytes(const std::string& file_path) const {
    Bytes bytes(std::filesystem::file_size(file_path));
    std::FILE* file = std::fopen(file_path.c_str(), "rb");
    std::fread(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
    return bytes;
  }

  // read_idx(file_path) must throw a DataError that starts with the path and mentions every
  // one of `fragments`.
  static void expect_data_error(const std::string& file_path, const std::vector<std::string>& fragments) {
    try {
      read_idx(file_path);
      ADD_FAILURE() << "read_idx(" << file_path << ") did not throw";
    } catch (const DataError& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.rfind(file_path, 0), 0u) << message;
      for (const std::string& fragment : fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
      }
    }
  }

  std::filesystem::path directory_;
};

TEST_F(IdxReaderTest, ReadsHandWrittenPlainFile) {
  const Bytes payload{1, 2, 3, 250, 251, 255};
  const IdxArray array = read_idx(write_plain("a.idx", concatenate(idx_header({2, 3, 1}), payload)));
  EXPECT_EQ(array.dims, (std::vector<std::size_t>{2, 3, 1}));
  EXPECT_EQ(array.data, payload);
}

TEST_F(IdxReaderTest, ReadsGzipFileWhateverItsName) {
  const Bytes payload = count_up(12);
  const IdxArray array = read_idx(write_gzip("no-suffix", {concatenate(idx_header({3, 4}), payload)}));
  EXPECT_EQ(array.dims, (std::vector<std::size_t>{3, 4}));
  EXPECT_EQ(array.data, payload);
}

TEST_F(IdxReaderTest, ReadsConcatenatedGzipMembers) {
  const Bytes payload = count_up(10);
  const IdxArray array = read_idx(write_gzip("two.gz", {idx_header({10}), payload}));
  EXPECT_EQ(array.data, payload);
}

TEST_F(IdxReaderTest, ReadsPayloadsLargerThanOneChunk) {
  // 3 MiB: more than the reader's first 1 MiB buffer, so the payload grows in steps.
  const std::vector<std::uint32_t> dims{3, 1024, 1024};
  const Bytes payload = count_up(3u << 20);
  const Bytes file = concatenate(idx_header(dims), payload);
  EXPECT_EQ(read_idx(write_plain("big.idx", file)).data, payload);
  EXPECT_EQ(read_idx(write_gzip("big.idx.gz", {file})).data, payload);
}

TEST_F(IdxReaderTest, WriteThenReadRoundTrips) {
  IdxArray array;
  array.dims = {2, 3, 4, 5};
  array.data = count_up(120);
  for (const std::string name : {"round.idx", "round.idx.gz"}) {
    write_idx(path(name), array);
    const IdxArray read = read_idx(path(name));
    EXPECT_EQ(read.dims, array.dims) << name;
    EXPECT_EQ(read.data, array.data) << name;
  }
  const Bytes compressed = file_bytes(path("round.idx.gz"));
  EXPECT_EQ(compressed[0], 0x1f);
  EXPECT_EQ(compressed[1], 0x8b);
  EXPECT_EQ(file_bytes(path("round.idx")), concatenate(idx_header({2, 3, 4, 5}), array.data));
}

TEST_F(IdxReaderTest, WriteRejectsInconsistentArray) {
  IdxArray array;
  array.dims = {2, 2};
  array.data = count_up(3);
  EXPECT_THROW(write_idx(path("bad.idx"), array), std::invalid_argument);
  array.dims = {};
  EXPECT_THROW(write_idx(path("bad.idx"), array), std::invalid_argument);
}

TEST_F(IdxReaderTest, MissingFileIsNamed) {
  expect_data_error(path("absent.idx"), {"cannot open", "No such file"});
}

TEST_F(IdxReaderTest, DirectoryIsNotReadable) { expect_data_error(directory_.string(), {"cannot read"}); }

TEST_F(IdxReaderTest, EmptyFileIsTooShort) { expect_data_error(write_plain("empty", {}), {"too short", "0 bytes"}); }

TEST_F(IdxReaderTest, HeaderShorterThanItsDimensions) {
  Bytes header = idx_header({2, 3, 4});
  header.resize(header.size() - 2);
  expect_data_error(write_plain("short", header), {"3 dimensions need 16 header bytes", "there are 14"});
}

TEST_F(IdxReaderTest, BadMagicNumber) {
  expect_data_error(write_plain("text", {'h', 'e', 'l', 'l', 'o'}), {"not an IDX file", "0x68 0x65"});
}

TEST_F(IdxReaderTest, OtherElementTypesAreNamed) {
  expect_data_error(write_plain("float", concatenate(idx_header({1}, 0x0D), {0, 0, 0, 0})),
                    {"unsupported IDX element type 0x0D (float32)", "only 0x08"});
  expect_data_error(write_plain("unknown", concatenate(idx_header({1}, 0x42), {0})),
                    {"unknown IDX element type 0x42"});
}

TEST_F(IdxReaderTest, DimensionCountMustBeOneToFour) {
  expect_data_error(write_plain("zero", {0, 0, 8, 0}), {"declares 0 dimensions"});
  expect_data_error(write_plain("five", concatenate(idx_header({1, 1, 1, 1, 1}), {7})), {"declares 5 dimensions"});
}

TEST_F(IdxReaderTest, ZeroSizedDimension) {
  expect_data_error(write_plain("zero-size", idx_header({4, 0})), {"dimension 1 is zero", "[4, 0]"});
}

TEST_F(IdxReaderTest, DimensionProductOverflow) {
  expect_data_error(write_plain("overflow", idx_header({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu})),
                    {"more elements than can be addressed"});
}

TEST_F(IdxReaderTest, TruncatedPayloadNamesBothCounts) {
  expect_data_error(write_plain("truncated", concatenate(idx_header({10, 10}), count_up(99))),
                    {"truncated", "need 100 bytes", "holds 99"});
  expect_data_error(write_gzip("truncated.gz", {concatenate(idx_header({10, 10}), count_up(7))}),
                    {"truncated", "need 100 bytes", "decompressed data holds 7"});
}

TEST_F(IdxReaderTest, HugeClaimInTinyFileFailsWithoutAllocating) {
  // Under the 1 GiB payload limit (900 MB), the claim meets the two bytes actually there.
  expect_data_error(write_plain("huge", concatenate(idx_header({30000u, 30000u}), {1, 2})), {"truncated", "holds 2"});
  expect_data_error(write_gzip("huge.gz", {concatenate(idx_header({30000u, 30000u}), {1, 2})}),
                    {"truncated", "holds 2"});
}

TEST_F(IdxReaderTest, PayloadsAbove1GiBAreRefusedUpFront) {
  expect_data_error(write_plain("huge", concatenate(idx_header({0xFFFFFFFFu, 0xFFFFFFFFu}), {1, 2})),
                    {"describe 18446744065119617025 bytes, more than the 1073741824 (1 GiB) allowed"});
  expect_data_error(write_gzip("huge.gz", {concatenate(idx_header({40000u, 40000u}), {1, 2})}),
                    {"describe 1600000000 bytes, more than the 1073741824 (1 GiB) allowed"});
}

// A FIFO would block the open forever, /dev/zero would fill memory: only regular files are read.
TEST_F(IdxReaderTest, FifosAndDevicesAreRefused) {
  const std::string fifo = (directory_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_data_error(fifo, {"not a regular file (a FIFO, device or socket)"});
  const std::string zero = (directory_ / "zero").string();
  std::filesystem::create_symlink("/dev/zero", zero);
  expect_data_error(zero, {"not a regular file (a FIFO, device or socket)"});
}

TEST_F(IdxReaderTest, TrailingBytesAreRejected) {
  expect_data_error(write_plain("long", concatenate(idx_header({4}), count_up(7))),
                    {"3 extra bytes after the 4-byte payload"});
  expect_data_error(write_gzip("long.gz", {concatenate(idx_header({4}), count_up(5))}), {"1 extra bytes"});
}

TEST_F(IdxReaderTest, CorruptGzipStream) {
  const std::string good = write_gzip("good.gz", {concatenate(idx_header({64}), count_up(64))});
  Bytes bytes = file_bytes(good);
  Bytes garbage = bytes;
  for (std::size_t i = 10; i < garbage.size(); ++i) garbage[i] = 0xFF;
  expect_data_error(write_plain("garbage.gz", garbage), {"corrupt gzip stream"});

  Bytes bad_checksum = bytes;
  bad_checksum[bad_checksum.size() - 6] ^= 0x01;  // inside the CRC-32 trailer
  expect_data_error(write_plain("checksum.gz", bad_checksum), {"corrupt gzip stream"});

  expect_data_error(write_plain("junk-after.gz", concatenate(bytes, {'j', 'u', 'n', 'k'})),
                    {"corrupt gzip stream", "4 unexpected bytes"});
}

TEST_F(IdxReaderTest, TruncatedGzipStream) {
  const Bytes bytes = file_bytes(write_gzip("good.gz", {concatenate(idx_header({64}), count_up(64))}));
  for (std::size_t keep : {std::size_t{2}, std::size_t{11}, bytes.size() / 2, bytes.size() - 1}) {
    expect_data_error(write_plain("cut.gz", Bytes(bytes.begin(), bytes.begin() + keep)), {});
  }
  expect_data_error(write_plain("cut.gz", Bytes(bytes.begin(), bytes.end() - 4)), {"truncated gzip stream"});
}

// A small fuzz: random corruptions of valid files (plain and gzip) either read cleanly into a
// consistent array or raise DataError; nothing else escapes and nothing crashes (run under
// STN_SANITIZE to catch out-of-bounds reads).
TEST_F(IdxReaderTest, RandomCorruptionsOnlyEverRaiseDataError) {
  const Bytes plain = concatenate(idx_header({3, 5, 4}), count_up(60));
  const Bytes compressed = file_bytes(write_gzip("seed.gz", {plain}));
  Generator generator(1234);
  for (int trial = 0; trial < 600; ++trial) {
    Bytes bytes = trial % 2 ? plain : compressed;
    const std::uint64_t mutation = generator.below(3);
    if (mutation == 0) {
      bytes.resize(generator.below(bytes.size() + 1));
    } else {
      const std::uint64_t flips = 1 + generator.below(4);
      for (std::uint64_t f = 0; f < flips; ++f) {
        bytes[generator.below(bytes.size())] = static_cast<std::uint8_t>(generator.below(256));
      }
      if (mutation == 2) bytes.push_back(static_cast<std::uint8_t>(generator.below(256)));
    }
    const std::string file_path = write_plain("fuzz", bytes);
    try {
      const IdxArray array = read_idx(file_path);
      std::size_t count = 1;
      for (std::size_t dim : array.dims) count *= dim;
      EXPECT_EQ(array.data.size(), count);
    } catch (const DataError& error) {
      EXPECT_EQ(std::string(error.what()).rfind(file_path, 0), 0u) << error.what();
    }
  }
}

}  // namespace
}  // namespace stn
