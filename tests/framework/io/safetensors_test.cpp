#include "stn/framework/io/safetensors.h"

#include <cstdint>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"
#include "temp_dir.h"

namespace stn {
namespace {

using test::TempDir;

const std::string kSource = "model.safetensors";

Tensor tensor_of(const Shape& shape, float start) {
  Tensor tensor = empty(shape);
  for (std::size_t i = 0; i < tensor.size(); ++i) tensor.data()[i] = start + 0.5f * i;
  return tensor;
}

std::string little_endian_u64(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A file with this exact header text, followed by `data_length` bytes of zeros.
std::string file_with_header(const std::string& header, std::size_t data_length = 0) {
  return little_endian_u64(header.size()) + header + std::string(data_length, '\0');
}

// Decoding must throw a DataError that starts with the source name and mentions `problem`.
void expect_rejected(const std::string& bytes, const std::string& problem) {
  try {
    decode_safetensors(bytes, kSource);
    ADD_FAILURE() << "accepted a file that should fail with '" << problem << "'";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.rfind(kSource + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
  }
}

void expect_header_rejected(const std::string& header, std::size_t data_length,
                            const std::string& problem) {
  SCOPED_TRACE(header);
  expect_rejected(file_with_header(header, data_length), problem);
}

void expect_encode_rejected(const std::vector<NamedTensor>& tensors, const std::string& problem) {
  try {
    encode_safetensors(tensors);
    ADD_FAILURE() << "encoded tensors that should fail with '" << problem << "'";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find(problem), std::string::npos) << error.what();
  }
}

void expect_equal(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(shape_of(actual), shape_of(expected));
  for (std::size_t i = 0; i < expected.size(); ++i)
    ASSERT_EQ(actual.data()[i], expected.data()[i]) << i;
}

TEST(SafetensorsTest, RoundTripKeepsOrderShapesValuesAndMetadata) {
  const Tensor weight = tensor_of({3, 4}, -2.0f);
  const Tensor scalar = tensor_of({}, 7.0f);
  const Tensor nothing = tensor_of({0, 5}, 0.0f);
  const Tensor image = tensor_of({2, 1, 3, 3}, 1.0f);
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"step", "1200"}};
  const std::string bytes = encode_safetensors(
      {{"z.weight", &weight}, {"scalar", &scalar}, {"empty", &nothing}, {"a.image", &image}},
      metadata);

  SafetensorsFile file = decode_safetensors(bytes, kSource);
  ASSERT_EQ(file.tensors.size(), 4u);
  EXPECT_EQ(file.tensors[0].first, "z.weight");
  EXPECT_EQ(file.tensors[1].first, "scalar");
  EXPECT_EQ(file.tensors[2].first, "empty");
  EXPECT_EQ(file.tensors[3].first, "a.image");
  expect_equal(file.tensors[0].second, weight);
  expect_equal(file.tensors[1].second, scalar);
  expect_equal(file.tensors[2].second, nothing);
  expect_equal(file.tensors[3].second, image);
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_NE(file.find("a.image"), nullptr);
  expect_equal(*file.find("a.image"), image);
  EXPECT_EQ(file.find("missing"), nullptr);
}

TEST(SafetensorsTest, SaveAndLoadThroughAFile) {
  TempDir directory;
  const Tensor bias = tensor_of({10}, 0.25f);
  save_safetensors(directory.file("model.safetensors"), {{"fc.bias", &bias}}, {{"epoch", "3"}});
  SafetensorsFile file = load_safetensors(directory.file("model.safetensors"));
  ASSERT_EQ(file.tensors.size(), 1u);
  expect_equal(file.tensors[0].second, bias);
  EXPECT_EQ(file.metadata.at("epoch"), "3");
}

TEST(SafetensorsTest, NoTensorsRoundTrips) {
  SafetensorsFile file = decode_safetensors(encode_safetensors({}), kSource);
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_TRUE(file.metadata.empty());
}

TEST(SafetensorsTest, EncodesTheReferenceLayoutByteForByte) {
  const Tensor values = tensor_of({2}, 1.0f);  // 1.0, 1.5
  const std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  const std::string padded = header + "  ";
  std::string data(8, '\0');
  std::memcpy(data.data(), values.data(), 8);
  EXPECT_EQ(encode_safetensors({{"w", &values}}), little_endian_u64(56) + padded + data);
}

TEST(SafetensorsTest, MetadataComesFirstAndHeaderIsPaddedToEightBytes) {
  const Tensor values = tensor_of({1}, 0.0f);
  for (std::string name : {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
    const std::string bytes = encode_safetensors({{name, &values}}, {{"k", "v"}});
    std::uint64_t header_length = 0;
    std::memcpy(&header_length, bytes.data(), 8);
    EXPECT_EQ(header_length % 8, 0u) << name;
    const std::string start = R"({"__metadata__":{"k":"v"},")";
    EXPECT_EQ(bytes.substr(8, start.size()), start) << name;
    EXPECT_EQ(bytes.size(), 8 + header_length + 4) << name;
  }
}

TEST(SafetensorsTest, EncodeRejectsEmptyDuplicateReservedAndNullNames) {
  const Tensor values = tensor_of({1}, 0.0f);
  expect_encode_rejected({{"", &values}}, "empty tensor name");
  expect_encode_rejected({{"w", &values}, {"w", &values}}, "duplicate tensor name 'w'");
  expect_encode_rejected({{"__metadata__", &values}}, "reserved");
  expect_encode_rejected({{"w", nullptr}}, "'w' is null");
  expect_encode_rejected({{"bad\xff", &values}}, "not valid UTF-8");
}

TEST(SafetensorsTest, SaveRejectionNamesThePathAndKeepsTheOldFile) {
  TempDir directory;
  const std::string path = directory.file("model.safetensors");
  write_file_atomically(path, "old");
  const Tensor values = tensor_of({1}, 0.0f);
  try {
    save_safetensors(path, {{"w", &values}, {"w", &values}});
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path + ": duplicate", 0), 0u) << error.what();
  }
  EXPECT_EQ(read_file(path), "old");
}

TEST(SafetensorsTest, RejectsFilesShorterThanTheLengthField) {
  expect_rejected("", "0 bytes, shorter than the 8-byte header length");
  expect_rejected(std::string("\x02\0\0\0\0\0\0", 7),
                  "7 bytes, shorter than the 8-byte header length");
}

TEST(SafetensorsTest, RejectsHeaderLengthPastTheEndOfTheFile) {
  expect_rejected(little_endian_u64(100) + "{}", "header length 100 exceeds the 2 bytes");
}

TEST(SafetensorsTest, RejectsAbsurdHeaderLength) {
  expect_rejected(little_endian_u64(100'000'001) + "{}", "is absurd");
  expect_rejected(little_endian_u64(UINT64_MAX) + "{}", "is absurd");
}

TEST(SafetensorsTest, RejectsHeaderThatIsNotJson) {
  expect_header_rejected("{not json}", 0, "header is not valid JSON");
  expect_header_rejected("", 0, "header is not valid JSON");
  expect_header_rejected("{\"w\":\"\xff\"}", 0, "header is not valid JSON");
  expect_header_rejected(std::string("{}\0", 3), 0, "header contains a NUL byte");
  expect_header_rejected(std::string("{}\0{\"w\":1}", 10), 0, "header contains a NUL byte");
}

TEST(SafetensorsTest, RejectsHeaderThatIsNotAnObject) {
  expect_header_rejected("[1, 2]", 0, "header is not a JSON object");
  expect_header_rejected("42", 0, "header is not a JSON object");
}

TEST(SafetensorsTest, RejectsEntryThatIsNotAnObject) {
  expect_header_rejected(R"({"w": [1, 2]})", 0, "tensor 'w': entry is not a JSON object");
  expect_header_rejected(R"({"w": 3})", 0, "tensor 'w': entry is not a JSON object");
}

TEST(SafetensorsTest, RejectsMissingOrIllTypedDtype) {
  expect_header_rejected(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4, "missing 'dtype'");
  expect_header_rejected(R"({"w":{"dtype":1,"shape":[1],"data_offsets":[0,4]}})", 4,
                         "'dtype' is not a string");
}

TEST(SafetensorsTest, RejectsDtypesOtherThanF32NamingThem) {
  expect_header_rejected(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4,
                         "tensor 'w': dtype F16 is not supported (only F32)");
  expect_header_rejected(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4,
                         "dtype f32 is not supported");
}

TEST(SafetensorsTest, RejectsMissingOrIllTypedShape) {
  expect_header_rejected(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4, "missing 'shape'");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", 4,
                         "'shape' is not an array");
}

TEST(SafetensorsTest, RejectsNegativeAndNonIntegerDimensions) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
                         "dimension -1 is negative");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4,
                         "dimension 1.5 is not an integer");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4,
                         "is not an integer");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4,
                         "dimension \"1\" is not a number");
  expect_header_rejected(
      R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}})", 4,
      "is not an integer");
}

TEST(SafetensorsTest, RejectsMissingOrIllTypedDataOffsets) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1]}})", 4, "missing 'data_offsets'");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4,
                         "is not a pair [begin, end]");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"a":1}}})", 4,
                         "is not a pair [begin, end]");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4,
                         "data offset -4 is negative");
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", 4,
                         "data offset \"4\" is not a number");
}

TEST(SafetensorsTest, RejectsShapeThatDoesNotMatchTheOffsets) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20,
                         "shape [2, 3] does not match data_offsets [0, 20] (20 bytes of F32)");
  expect_header_rejected(
      R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0,
      "does not match");
  expect_header_rejected(
      R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0,
      "does not match");
}

TEST(SafetensorsTest, RejectsReversedOffsets) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8,
                         "data_offsets [8, 4] are reversed");
}

TEST(SafetensorsTest, RejectsOffsetsPastTheEndOfTheData) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4,
                         "data_offsets [0, 8] run past the end of the data (4 bytes)");
  expect_header_rejected(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}})",
      4, "run past the end of the data");
}

TEST(SafetensorsTest, RejectsOverlappingTensors) {
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         12, "tensors 'a' and 'b' overlap");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                         8, "overlap");
}

TEST(SafetensorsTest, RejectsGapsAndUnclaimedData) {
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                         12, "gap of 4 bytes before tensor 'b'");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
                         "gap of 4 bytes before tensor 'a'");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6,
                         "2 bytes of data after the last tensor belong to no tensor");
  expect_header_rejected("{}", 1, "1 bytes of data after the last tensor");
}

TEST(SafetensorsTest, RejectsDuplicateTensorNames) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         8, "duplicate key 'w' in header");
}

TEST(SafetensorsTest, RejectsDuplicateKeysInsideAnEntryOrTheMetadata) {
  expect_header_rejected(R"({"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})",
                         4, "duplicate key 'dtype'");
  expect_header_rejected(R"({"__metadata__":{"k":"a","k":"b"}})", 0, "duplicate key 'k'");
}

TEST(SafetensorsTest, RejectsEmptyTensorName) {
  expect_header_rejected(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4,
                         "empty tensor name");
}

TEST(SafetensorsTest, RejectsUnexpectedKeysInAnEntry) {
  expect_header_rejected(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"stride":[1]}})",
                         4, "unexpected key 'stride'");
}

TEST(SafetensorsTest, RejectsMetadataThatIsNotStringToString) {
  expect_header_rejected(R"({"__metadata__":{"step":3}})", 0,
                         "__metadata__ value for 'step' is not a string");
  expect_header_rejected(R"({"__metadata__":[1]})", 0, "__metadata__ is not a JSON object");
}

TEST(SafetensorsTest, AcceptsNullMetadataAndReferenceStyleFiles) {
  SafetensorsFile file = decode_safetensors(
      file_with_header(
          R"({"__metadata__":null,"b":{"dtype":"F32","shape":[1],)"
          R"("data_offsets":[4,8]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}   )",
          8),
      kSource);
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].first, "a");  // data order, not header order
  EXPECT_EQ(shape_of(file.tensors[0].second), Shape{});
  EXPECT_EQ(file.tensors[1].first, "b");
}

TEST(SafetensorsTest, RejectsDeepNestingAndLongArrays) {
  expect_header_rejected(std::string(10000, '[') + std::string(10000, ']'), 0,
                         "nests deeper than a safetensors header can");
  std::string long_shape = R"({"w":{"dtype":"F32","shape":[1)";
  for (int i = 0; i < 100; ++i) long_shape += ",1";
  expect_header_rejected(long_shape + R"(],"data_offsets":[0,4]}})", 4, "array longer than 64");
}

TEST(SafetensorsTest, LoadingAMissingFileNamesIt) {
  TempDir directory;
  const std::string path = directory.file("absent.safetensors");
  try {
    load_safetensors(path);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path, 0), 0u) << error.what();
  }
}

// Every truncation and many random corruptions of a valid file either decode or raise
// DataError: nothing else escapes, nothing crashes (run under STN_SANITIZE to check reads).
TEST(SafetensorsTest, TruncatedAndCorruptedFilesOnlyEverRaiseDataError) {
  const Tensor a = tensor_of({2, 3}, 0.0f);
  const Tensor b = tensor_of({4}, 1.0f);
  const std::string valid = encode_safetensors({{"a", &a}, {"b", &b}}, {{"k", "v"}});
  auto decode_or_data_error = [](const std::string& bytes) {
    try {
      decode_safetensors(bytes, kSource);
    } catch (const DataError&) {
    }
  };
  for (std::size_t length = 0; length < valid.size(); ++length)
    EXPECT_NO_THROW(decode_or_data_error(valid.substr(0, length))) << length;
  std::mt19937 generator(1234);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string corrupted = valid;
    const int changes = 1 + trial % 3;
    for (int change = 0; change < changes; ++change)
      corrupted[generator() % corrupted.size()] = static_cast<char>(generator() & 0xff);
    EXPECT_NO_THROW(decode_or_data_error(corrupted)) << trial;
  }
}

}  // namespace
}  // namespace stn
