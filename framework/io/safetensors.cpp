#include "stn/framework/io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is copied to and from tensors as is"
#endif

namespace stn {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

const std::string kMetadataKey = "__metadata__";
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
// A valid header nests three deep (file object, tensor entry, shape array); refusing deeper
// or longer containers while parsing keeps hostile headers from costing time or memory.
constexpr std::size_t kMaxNesting = 3;
constexpr std::size_t kMaxArrayLength = 64;

// Names and JSON values from a hostile file can be megabytes long; messages show a prefix.
std::string shortened(const std::string& text) {
  constexpr std::size_t kLimit = 80;
  return text.size() <= kLimit ? text : text.substr(0, kLimit) + "...";
}
std::string quoted(const std::string& name) {
  std::string text(1, '\'');
  return text.append(shortened(name)).append(1, '\'');
}

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw DataError(source + ": " + message);
}

std::string encode(const std::vector<NamedTensor>& tensors,
                   const std::map<std::string, std::string>& metadata, const std::string& source) {
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const NamedTensor& named : tensors) {
    if (named.name.empty()) fail(source, "empty tensor name");
    if (named.name == kMetadataKey) fail(source, "tensor name '__metadata__' is reserved");
    if (!names.insert(named.name).second)
      fail(source, "duplicate tensor name " + quoted(named.name));
    if (named.tensor == nullptr) fail(source, "tensor " + quoted(named.name) + " is null");
    std::uint64_t size = named.tensor->size() * sizeof(float);
    OrderedJson entry = OrderedJson::object();
    entry["dtype"] = "F32";
    entry["shape"] = shape_of(*named.tensor);
    entry["data_offsets"] = OrderedJson::array({offset, offset + size});
    header[named.name] = std::move(entry);
    offset += size;
  }

  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const OrderedJson::exception& error) {
    fail(source,
         std::string("a tensor name or metadata string is not valid UTF-8 (") + error.what() + ")");
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  std::string bytes(8, '\0');
  std::uint64_t header_length = header_text.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header_length >> (8 * i)) & 0xff);
  bytes.reserve(8 + header_text.size() + offset);
  bytes += header_text;
  for (const NamedTensor& named : tensors)
    bytes.append(reinterpret_cast<const char*>(named.tensor->data()),
                 named.tensor->size() * sizeof(float));
  return bytes;
}

// Parses the header, refusing duplicate keys (nlohmann would silently keep the last one),
// deep nesting and long arrays. Returns the top-level keys in file order.
Json parse_header(const char* begin, const char* end, const std::string& source,
                  std::vector<std::string>& top_level_keys) {
  struct Container {
    bool is_object;
    std::set<std::string> keys;
    std::size_t length = 0;
  };
  std::vector<Container> open_containers;
  auto count_array_element = [&] {
    if (open_containers.empty() || open_containers.back().is_object) return;
    if (++open_containers.back().length > kMaxArrayLength)
      fail(source,
           "header has an array longer than " + std::to_string(kMaxArrayLength) + " elements");
  };
  Json::parser_callback_t check = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (open_containers.size() >= kMaxNesting)
          fail(source, "header nests deeper than a safetensors header can");
        open_containers.push_back({event == Json::parse_event_t::object_start, {}, 0});
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        open_containers.pop_back();
        count_array_element();
        break;
      case Json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_containers.back().keys.insert(key).second)
          fail(source, "duplicate key " + quoted(key) + " in header");
        if (open_containers.size() == 1) top_level_keys.push_back(key);
        break;
      }
      case Json::parse_event_t::value:
        count_array_element();
        break;
    }
    return true;
  };
  try {
    return Json::parse(begin, end, check);
  } catch (const Json::exception& error) {
    fail(source, std::string("header is not valid JSON: ") + error.what());
  }
}

std::uint64_t non_negative_integer(const Json& value, const std::string& where,
                                   const std::string& what) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer()) {
    if (value.get<std::int64_t>() >= 0) return value.get<std::uint64_t>();
    fail(where, what + " " + value.dump() + " is negative");
  }
  if (value.is_number_float()) fail(where, what + " " + value.dump() + " is not an integer");
  fail(where, what + " " + shortened(value.dump()) + " is not a number");
}

struct Entry {
  std::string name;
  Shape shape;
  std::uint64_t begin;
  std::uint64_t end;
};

Entry parse_entry(const std::string& name, const Json& value, std::uint64_t data_length,
                  const std::string& source) {
  if (name.empty()) fail(source, "empty tensor name");
  const std::string where = source + ": tensor " + quoted(name);
  if (!value.is_object()) fail(where, "entry is not a JSON object");
  for (const auto& item : value.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      fail(where, "unexpected key " + quoted(item.key()));

  auto dtype = value.find("dtype");
  if (dtype == value.end()) fail(where, "missing 'dtype'");
  if (!dtype->is_string()) fail(where, "'dtype' is not a string");
  if (*dtype != "F32")
    fail(where, "dtype " + shortened(dtype->get<std::string>()) + " is not supported (only F32)");

  auto shape_value = value.find("shape");
  if (shape_value == value.end()) fail(where, "missing 'shape'");
  if (!shape_value->is_array()) fail(where, "'shape' is not an array");
  Entry entry{name, {}, 0, 0};
  std::uint64_t byte_count = sizeof(float);
  bool too_large = false;
  // Each dimension also counted as at least 1: an empty tensor with huge dimensions would
  // overflow the tensor's strides.
  std::uint64_t extent = 1;
  for (const Json& dimension_value : *shape_value) {
    std::uint64_t dimension = non_negative_integer(dimension_value, where, "dimension");
    entry.shape.push_back(static_cast<std::size_t>(dimension));
    too_large = too_large || __builtin_mul_overflow(byte_count, dimension, &byte_count);
    too_large = too_large || __builtin_mul_overflow(extent, std::max<std::uint64_t>(dimension, 1), &extent);
  }
  too_large = too_large || extent > (std::uint64_t{1} << 40);

  auto offsets = value.find("data_offsets");
  if (offsets == value.end()) fail(where, "missing 'data_offsets'");
  if (!offsets->is_array() || offsets->size() != 2)
    fail(where, "'data_offsets' " + shortened(offsets->dump()) + " is not a pair [begin, end]");
  entry.begin = non_negative_integer((*offsets)[0], where, "data offset");
  entry.end = non_negative_integer((*offsets)[1], where, "data offset");
  const std::string offsets_text =
      "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
  if (entry.begin > entry.end) fail(where, offsets_text + " are reversed");
  if (entry.end > data_length)
    fail(where, offsets_text + " run past the end of the data (" + std::to_string(data_length) +
                    " bytes)");
  if (too_large || byte_count != entry.end - entry.begin)
    fail(where, "shape " + shape_string(entry.shape) + " does not match " + offsets_text + " (" +
                    std::to_string(entry.end - entry.begin) + " bytes of F32)");
  return entry;
}

// The reference implementation demands exactly this: the tensors tile the data section.
void check_layout(std::vector<Entry>& entries, std::uint64_t data_length,
                  const std::string& source) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  std::uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    if (entry.begin < expected)
      fail(source, "tensors " + quoted(previous->name) + " and " + quoted(entry.name) + " overlap");
    if (entry.begin > expected)
      fail(source, "gap of " + std::to_string(entry.begin - expected) + " bytes before tensor " +
                       quoted(entry.name));
    expected = entry.end;
    previous = &entry;
  }
  if (expected != data_length)
    fail(source, std::to_string(data_length - expected) +
                     " bytes of data after the last tensor belong to no tensor");
}

std::map<std::string, std::string> parse_metadata(const Json& value, const std::string& source) {
  std::map<std::string, std::string> metadata;
  if (value.is_null()) return metadata;
  if (!value.is_object()) fail(source, "__metadata__ is not a JSON object");
  for (const auto& item : value.items()) {
    if (!item.value().is_string())
      fail(source, "__metadata__ value for " + quoted(item.key()) + " is not a string");
    metadata[item.key()] = item.value().get<std::string>();
  }
  return metadata;
}

}  // namespace

std::string encode_safetensors(const std::vector<NamedTensor>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  return encode(tensors, metadata, "encode_safetensors");
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, encode(tensors, metadata, path));
}

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [tensor_name, tensor] : tensors)
    if (tensor_name == name) return &tensor;
  return nullptr;
}

SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8)
    fail(source, "file is " + std::to_string(bytes.size()) +
                     " bytes, shorter than the 8-byte header length");
  std::uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i)
    header_length |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  if (header_length > kMaxHeaderBytes)
    fail(source, "header length " + std::to_string(header_length) + " is absurd (more than " +
                     std::to_string(kMaxHeaderBytes) + " bytes)");
  if (header_length > bytes.size() - 8)
    fail(source, "header length " + std::to_string(header_length) + " exceeds the " +
                     std::to_string(bytes.size() - 8) + " bytes after the length field");

  const char* header_begin = bytes.data() + 8;
  // nlohmann's lexer takes a NUL for the end of input and would ignore what follows it.
  if (std::memchr(header_begin, '\0', header_length) != nullptr)
    fail(source, "header contains a NUL byte");
  std::vector<std::string> keys_in_file_order;
  Json header =
      parse_header(header_begin, header_begin + header_length, source, keys_in_file_order);
  if (!header.is_object()) fail(source, "header is not a JSON object");

  const std::uint64_t data_start = 8 + header_length;
  const std::uint64_t data_length = bytes.size() - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const std::string& key : keys_in_file_order) {
    if (key == kMetadataKey)
      file.metadata = parse_metadata(header.at(key), source);
    else
      entries.push_back(parse_entry(key, header.at(key), data_length, source));
  }
  check_layout(entries, data_length, source);

  file.tensors.reserve(entries.size());
  for (const Entry& entry : entries) {
    Tensor tensor = empty(entry.shape);
    if (entry.end > entry.begin)
      std::memcpy(tensor.data(), bytes.data() + data_start + entry.begin, entry.end - entry.begin);
    file.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  return decode_safetensors(read_file(path), path);
}

}  // namespace stn
