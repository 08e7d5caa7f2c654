#include <algorithm>
#include "stn/framework/io/npy.h"

#include <cstdint>
#include <cstring>
#include <string_view>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy '<f4' and '<f8' data is little-endian and is copied as is"
#endif

namespace stn {
namespace {

constexpr std::string_view kMagic("\x93NUMPY", 6);
constexpr std::size_t kMaxRank = 8;
constexpr std::size_t kHeaderAlignment = 64;  // what NumPy writes, so data can be memory-mapped

struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }. NumPy writes exactly these three keys; this accepts that grammar
// (either quote style, any whitespace, trailing commas) and nothing more.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source_name)
      : text_(text), source_name_(source_name) {}

  Header parse() {
    Header header;
    bool has_descr = false, has_fortran_order = false, has_shape = false;
    skip_spaces();
    expect('{');
    for (;;) {
      skip_spaces();
      if (consume('}')) break;
      std::string key = parse_string();
      skip_spaces();
      expect(':');
      skip_spaces();
      if (key == "descr") {
        mark_seen(has_descr, key);
        header.descr = parse_string();
      } else if (key == "fortran_order") {
        mark_seen(has_fortran_order, key);
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        mark_seen(has_shape, key);
        header.shape = parse_shape();
      } else {
        fail("has an unexpected key '" + key + "'");
      }
      skip_spaces();
      if (consume(',')) continue;
      if (consume('}')) break;
      fail("expects ',' or '}'");
    }
    skip_spaces();
    if (position_ != text_.size()) fail("has text after the dictionary");
    if (!has_descr) fail("lacks 'descr'");
    if (!has_fortran_order) fail("lacks 'fortran_order'");
    if (!has_shape) fail("lacks 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw DataError(source_name_ + ": npy header " + message + " (at byte " +
                    std::to_string(position_) + " of the header)");
  }

  void mark_seen(bool& seen, const std::string& key) {
    if (seen) fail("repeats the key '" + key + "'");
    seen = true;
  }

  void skip_spaces() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\t' ||
                                        text_[position_] == '\n' || text_[position_] == '\r'))
      ++position_;
  }

  bool consume(char c) {
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expects '") + c + "'");
  }

  bool consume_word(std::string_view word) {
    if (text_.substr(position_, word.size()) != word) return false;
    position_ += word.size();
    return true;
  }

  std::string parse_string() {
    char quote = position_ < text_.size() ? text_[position_] : '\0';
    if (quote != '\'' && quote != '"') fail("expects a quoted string");
    std::size_t begin = ++position_;
    while (position_ < text_.size() && text_[position_] != quote) {
      if (text_[position_] == '\\')
        fail("has an escape sequence, which no valid key or dtype needs");
      ++position_;
    }
    if (position_ == text_.size()) fail("has an unterminated string");
    return std::string(text_.substr(begin, position_++ - begin));
  }

  bool parse_bool() {
    if (consume_word("True")) return true;
    if (consume_word("False")) return false;
    fail("expects True or False for 'fortran_order'");
  }

  std::size_t parse_dimension() {
    if (position_ < text_.size() && text_[position_] == '-') fail("has a negative dimension");
    std::size_t begin = position_;
    std::uint64_t value = 0;
    while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') {
      if (value > (std::uint64_t{1} << 48)) fail("has an absurdly large dimension");
      value = value * 10 + static_cast<std::uint64_t>(text_[position_++] - '0');
    }
    if (position_ == begin) fail("expects a non-negative integer dimension");
    return static_cast<std::size_t>(value);
  }

  Shape parse_shape() {
    Shape shape;
    expect('(');
    skip_spaces();
    if (consume(')')) return shape;
    for (;;) {
      shape.push_back(parse_dimension());
      if (shape.size() > kMaxRank) fail("has a shape of rank above " + std::to_string(kMaxRank));
      skip_spaces();
      if (consume(',')) {
        skip_spaces();
        if (consume(')')) return shape;
        continue;
      }
      if (consume(')')) {
        if (shape.size() == 1) fail("has a shape that is not a tuple: (n) needs a comma, (n,)");
        return shape;
      }
      fail("expects ',' or ')' in the shape");
    }
  }

  std::string_view text_;
  const std::string& source_name_;
  std::size_t position_ = 0;
};

// Bytes per element of the dtypes read_npy converts, 0 for the rest.
std::size_t element_size_of(const std::string& descr) {
  if (descr == "<f4") return 4;
  if (descr == "<f8") return 8;
  if (descr == "|u1") return 1;
  return 0;
}

std::uint64_t little_endian(const std::string& bytes, std::size_t offset, int width) {
  std::uint64_t value = 0;
  for (int i = 0; i < width; ++i)
    value |= std::uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  return value;
}

template <typename Element>
void convert(const char* source, float* destination, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    Element element;
    std::memcpy(&element, source + i * sizeof(Element), sizeof(Element));
    destination[i] = static_cast<float>(element);
  }
}

// Python's spelling: (), (3,), (2, 3).
std::string shape_tuple(const Shape& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

}  // namespace

Tensor read_npy(const std::string& path) { return decode_npy(read_file(path), path); }

Tensor decode_npy(const std::string& bytes, const std::string& source_name) {
  auto fail = [&](const std::string& message) { throw DataError(source_name + ": " + message); };
  if (bytes.size() < 10 || std::string_view(bytes).substr(0, 6) != kMagic)
    fail("not an npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  std::size_t prefix_length = 0;
  std::uint64_t header_length = 0;
  if (major == 1 && minor == 0) {
    prefix_length = 10;
    header_length = little_endian(bytes, 8, 2);
  } else if (major == 2 && minor == 0) {
    if (bytes.size() < 12) fail("file too short for an npy 2.0 header length");
    prefix_length = 12;
    header_length = little_endian(bytes, 8, 4);
  } else {
    fail("unsupported npy version " + std::to_string(major) + "." + std::to_string(minor) +
         " (only 1.0 and 2.0)");
  }
  if (header_length > bytes.size() - prefix_length)
    fail("npy header length " + std::to_string(header_length) + " runs past the end of the file");

  Header header =
      HeaderParser(std::string_view(bytes).substr(prefix_length, header_length), source_name)
          .parse();
  if (header.fortran_order)
    fail("Fortran-order arrays are not supported (save np.ascontiguousarray(array))");
  const std::size_t element_size = element_size_of(header.descr);
  if (element_size == 0)
    fail("dtype '" + header.descr + "' is not supported (only '<f4', '<f8', '|u1')");

  std::uint64_t needed = element_size;
  bool overflow = false;
  // Each dimension also counted as at least 1: an empty array with huge dimensions would
  // overflow the tensor's strides.
  std::uint64_t extent = 1;
  for (std::size_t dimension : header.shape) {
    overflow = overflow || __builtin_mul_overflow(needed, dimension, &needed);
    overflow = overflow || __builtin_mul_overflow(extent, std::max<std::uint64_t>(dimension, 1), &extent);
  }
  overflow = overflow || extent > (std::uint64_t{1} << 40);
  const std::size_t data_start = prefix_length + header_length;
  const std::uint64_t available = bytes.size() - data_start;
  if (overflow || needed != available)
    fail("data is " + std::to_string(available) + " bytes but shape " + shape_string(header.shape) +
         " of '" + header.descr + "' needs " +
         (overflow ? std::string("more than 2^64") : std::to_string(needed)));

  Tensor tensor = empty(header.shape);
  const char* data = bytes.data() + data_start;
  if (element_size == 4)
    convert<float>(data, tensor.data(), tensor.size());
  else if (element_size == 8)
    convert<double>(data, tensor.data(), tensor.size());
  else
    convert<std::uint8_t>(data, tensor.data(), tensor.size());
  return tensor;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  if (tensor.dimension() > kMaxRank)
    throw ShapeError("write_npy: " + path + ": tensor " + shape_string(tensor) +
                     " has rank above " + std::to_string(kMaxRank));
  write_file_atomically(path, encode_npy(tensor));
}

std::string encode_npy(const Tensor& tensor) {
  const Shape shape = shape_of(tensor);
  if (shape.size() > kMaxRank)
    throw ShapeError("encode_npy: tensor " + shape_string(shape) + " has rank above " +
                     std::to_string(kMaxRank));
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  const std::size_t prefix_length = 10;
  header.append((kHeaderAlignment - (prefix_length + header.size() + 1) % kHeaderAlignment) %
                    kHeaderAlignment,
                ' ');
  header += '\n';

  std::string bytes(kMagic);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(tensor.data()), tensor.size() * sizeof(float));
  return bytes;
}

}  // namespace stn
