#include "stn/framework/io/npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"
#include "temp_dir.h"

namespace stn {
namespace {

using test::TempDir;

// An npy file of the given version whose header is `dictionary` padded NumPy's way.
std::string npy_file(int major, const std::string& dictionary, const std::string& data) {
  const std::size_t prefix_length = major == 1 ? 10 : 12;
  std::string header = dictionary;
  header.append((64 - (prefix_length + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY", 6);
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (std::size_t i = 0; i < prefix_length - 8; ++i)
    bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + data;
}

std::string f4_dictionary(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

template <typename Element>
std::string raw_bytes(const std::vector<Element>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(Element));
}

class NpyTest : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes) {
    const std::string path = directory_.file("array.npy");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    return path;
  }

  // read_npy must throw a DataError that starts with the path and mentions `problem`.
  void expect_rejected(const std::string& bytes, const std::string& problem) {
    const std::string path = write(bytes);
    try {
      read_npy(path);
      ADD_FAILURE() << "accepted a file that should fail with '" << problem << "'";
    } catch (const DataError& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(problem), std::string::npos) << message;
    }
  }

  TempDir directory_;
};

TEST_F(NpyTest, RoundTripsRanksZeroToEight) {
  for (std::size_t rank = 0; rank <= 8; ++rank) {
    Shape shape(rank, 2);
    if (rank > 0) shape[0] = 3;
    Tensor tensor = empty(shape);
    for (std::size_t i = 0; i < tensor.size(); ++i) tensor.data()[i] = 0.5f * i - 3.0f;
    const std::string path = directory_.file("rank" + std::to_string(rank) + ".npy");
    write_npy(path, tensor);
    Tensor read = read_npy(path);
    ASSERT_EQ(shape_of(read), shape) << rank;
    EXPECT_EQ(std::memcmp(read.data(), tensor.data(), tensor.size() * sizeof(float)), 0) << rank;
  }
}

TEST_F(NpyTest, RoundTripsEmptyArrays) {
  const std::string path = directory_.file("empty.npy");
  write_npy(path, empty({0, 4}));
  EXPECT_EQ(shape_of(read_npy(path)), (Shape{0, 4}));
}

TEST_F(NpyTest, WritesNumPysVersionOneLayout) {
  const std::string path = directory_.file("layout.npy");
  write_npy(path, zeros({2, 3}));
  const std::string bytes = read_file(path);
  EXPECT_EQ(bytes, npy_file(1, f4_dictionary("(2, 3)"), std::string(24, '\0')));
  EXPECT_EQ(bytes.size() - 24, 128u);  // header padded to a multiple of 64

  write_npy(path, zeros({5}));
  EXPECT_NE(read_file(path).find("'shape': (5,), }"), std::string::npos);
  write_npy(path, zeros({}));
  EXPECT_NE(read_file(path).find("'shape': (), }"), std::string::npos);
}

TEST_F(NpyTest, ReadsFloat64AndUint8ConvertingToFloat) {
  Tensor doubles =
      read_npy(write(npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                              raw_bytes<double>({0.25, -1e10, 3.0}))));
  ASSERT_EQ(shape_of(doubles), Shape{3});
  EXPECT_EQ(doubles.data()[0], 0.25f);
  EXPECT_EQ(doubles.data()[1], -1e10f);
  EXPECT_EQ(doubles.data()[2], 3.0f);

  Tensor bytes =
      read_npy(write(npy_file(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
                              raw_bytes<std::uint8_t>({0, 1, 128, 255}))));
  ASSERT_EQ(shape_of(bytes), (Shape{2, 2}));
  EXPECT_EQ(bytes.data()[2], 128.0f);
  EXPECT_EQ(bytes.data()[3], 255.0f);
}

TEST_F(NpyTest, ReadsVersionTwoHeaders) {
  Tensor tensor =
      read_npy(write(npy_file(2, f4_dictionary("(2,)"), raw_bytes<float>({1.5f, -2.5f}))));
  ASSERT_EQ(shape_of(tensor), Shape{2});
  EXPECT_EQ(tensor.data()[1], -2.5f);
}

TEST_F(NpyTest, AcceptsOtherSpellingsOfTheSameDictionary) {
  Tensor tensor =
      read_npy(write(npy_file(1, "{ \"shape\" : ( 1 , 2 ) ,\"fortran_order\":False,'descr':'<f4'}",
                              raw_bytes<float>({1.0f, 2.0f}))));
  EXPECT_EQ(shape_of(tensor), (Shape{1, 2}));
}

TEST_F(NpyTest, RejectsFilesWithoutTheMagic) {
  expect_rejected("", "not an npy file");
  expect_rejected("\x93NUMP", "not an npy file");
  expect_rejected("PK\x03\x04 this is a zip file", "not an npy file");
}

TEST_F(NpyTest, RejectsUnsupportedVersions) {
  std::string bytes = npy_file(1, f4_dictionary("(1,)"), raw_bytes<float>({1.0f}));
  bytes[6] = 3;
  expect_rejected(bytes, "unsupported npy version 3.0 (only 1.0 and 2.0)");
  bytes[6] = 1;
  bytes[7] = 1;
  expect_rejected(bytes, "unsupported npy version 1.1");
}

TEST_F(NpyTest, RejectsHeaderLengthPastTheEnd) {
  std::string bytes = npy_file(1, f4_dictionary("(1,)"), "");
  bytes[9] = '\x7f';
  expect_rejected(bytes, "header length 32630 runs past the end of the file");
  expect_rejected(std::string("\x93NUMPY\x02\x00\x01\x00", 10), "too short for an npy 2.0");
}

TEST_F(NpyTest, RejectsFortranOrder) {
  expect_rejected(npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                           std::string(16, '\0')),
                  "Fortran-order arrays are not supported");
}

TEST_F(NpyTest, RejectsUnsupportedDtypesNamingThem) {
  expect_rejected(npy_file(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                           std::string(4, '\0')),
                  "dtype '>f4' is not supported");
  expect_rejected(npy_file(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                           std::string(8, '\0')),
                  "dtype '<i8' is not supported");
}

TEST_F(NpyTest, RejectsMissingUnexpectedAndRepeatedKeys) {
  expect_rejected(npy_file(1, "{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0')),
                  "lacks 'fortran_order'");
  expect_rejected(npy_file(1, "{'descr': '<f4', 'fortran_order': False, }", std::string(4, '\0')),
                  "lacks 'shape'");
  expect_rejected(npy_file(1, "{'fortran_order': False, 'shape': (1,)}", std::string(4, '\0')),
                  "lacks 'descr'");
  expect_rejected(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                           std::string(4, '\0')),
                  "unexpected key 'x'");
  expect_rejected(npy_file(1,
                           "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                           "'shape': (1,)}",
                           std::string(4, '\0')),
                  "repeats the key 'descr'");
}

TEST_F(NpyTest, RejectsMalformedDictionarySyntax) {
  const std::string data(4, '\0');
  expect_rejected(npy_file(1, "'descr': '<f4'", data), "expects '{'");
  expect_rejected(npy_file(1, "{'descr' '<f4'}", data), "expects ':'");
  expect_rejected(npy_file(1, "{'descr': '<f4", data), "unterminated string");
  expect_rejected(npy_file(1, "{descr: '<f4'}", data), "expects a quoted string");
  expect_rejected(npy_file(1, "{'fortran_order': false}", data), "expects True or False");
  expect_rejected(npy_file(1, "{'descr': '<f4' 'shape': (1,)}", data), "expects ',' or '}'");
  expect_rejected(npy_file(1, f4_dictionary("(1,)") + " x", data), "text after the dictionary");
  expect_rejected(npy_file(1, "{'descr': '<\\x66'}", data), "escape sequence");
}

TEST_F(NpyTest, RejectsBadShapes) {
  const std::string data(4, '\0');
  expect_rejected(npy_file(1, f4_dictionary("(-1,)"), data), "negative dimension");
  expect_rejected(npy_file(1, f4_dictionary("(1.5,)"), data), "expects ',' or ')' in the shape");
  expect_rejected(npy_file(1, f4_dictionary("[1]"), data), "expects '('");
  expect_rejected(npy_file(1, f4_dictionary("(1)"), data), "(n) needs a comma");
  expect_rejected(npy_file(1, f4_dictionary("(1, 1, 1, 1, 1, 1, 1, 1, 1)"), data), "rank above 8");
  expect_rejected(npy_file(1, f4_dictionary("(99999999999999999999,)"), data),
                  "absurdly large dimension");
}

TEST_F(NpyTest, RejectsDataSizeThatDisagreesWithTheShape) {
  expect_rejected(npy_file(1, f4_dictionary("(2, 3)"), std::string(20, '\0')),
                  "data is 20 bytes but shape [2, 3] of '<f4' needs 24");
  expect_rejected(npy_file(1, f4_dictionary("(2, 3)"), std::string(28, '\0')),
                  "data is 28 bytes but shape [2, 3] of '<f4' needs 24");
  expect_rejected(npy_file(1, f4_dictionary("(281474976710656, 281474976710656)"), ""),
                  "needs more than 2^64");
}

TEST_F(NpyTest, MissingFileIsDataErrorNamingIt) {
  EXPECT_THROW(read_npy(directory_.file("absent.npy")), DataError);
}

TEST_F(NpyTest, WritingRankAboveEightIsShapeError) {
  EXPECT_THROW(write_npy(directory_.file("deep.npy"), zeros(Shape(9, 1))), ShapeError);
}

TEST_F(NpyTest, EncodeMatchesWhatWriteWrites) {
  const Tensor tensor = zeros({4, 1});
  write_npy(directory_.file("written.npy"), tensor);
  EXPECT_EQ(encode_npy(tensor), read_file(directory_.file("written.npy")));
  EXPECT_EQ(shape_of(decode_npy(encode_npy(tensor), "memory")), (Shape{4, 1}));
}

// Every truncation and many random corruptions either decode or raise DataError: nothing
// else escapes, nothing crashes (run under STN_SANITIZE to check reads).
TEST_F(NpyTest, TruncatedAndCorruptedFilesOnlyEverRaiseDataError) {
  const std::string valid = npy_file(1, f4_dictionary("(2, 3)"), std::string(24, '\0'));
  auto decode_or_data_error = [&](const std::string& bytes) {
    try {
      decode_npy(bytes, "fuzz.npy");
    } catch (const DataError&) {
    }
  };
  for (std::size_t length = 0; length < valid.size(); ++length)
    EXPECT_NO_THROW(decode_or_data_error(valid.substr(0, length))) << length;
  std::mt19937 generator(99);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string corrupted = valid;
    const int changes = 1 + trial % 3;
    for (int change = 0; change < changes; ++change)
      corrupted[generator() % 128] = static_cast<char>(generator() & 0xff);
    EXPECT_NO_THROW(decode_or_data_error(corrupted)) << trial;
  }
}

}  // namespace
}  // namespace stn
