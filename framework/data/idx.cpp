#include "stn/framework/data/idx.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>

#include "stn/framework/error.h"
#include "stn/framework/tensor.h"

namespace stn {
namespace {

constexpr std::uint8_t kUnsignedByteType = 0x08;
constexpr std::size_t kMaxDimensions = 4;
constexpr std::size_t kMaxDimensionSize = 0xFFFFFFFFu;
// zlib counts bytes in 32-bit unsigned ints; larger buffers are handed over in pieces.
constexpr std::size_t kMaxZlibChunk = std::size_t{1} << 30;
// The payload buffer starts at this size and doubles, so a header's claim is never allocated
// ahead of the bytes that back it.
constexpr std::size_t kFirstPayloadChunk = std::size_t{1} << 20;
// The largest payload (decompressed) and file accepted: MNIST's training images are 47 MB;
// 1 GiB of bytes is 4 GiB as float images. Checked before anything is allocated.
constexpr std::size_t kMaxPayloadBytes = std::size_t{1} << 30;
constexpr std::uint64_t kMaxFileBytes = std::uint64_t{1} << 30;
// How far past the payload we count surplus bytes before saying "more than".
constexpr std::size_t kTrailingCountLimit = std::size_t{1} << 20;

[[noreturn]] void fail(const std::string& path, const std::string& message) {
  throw DataError(path + ": " + message);
}

std::string hex_byte(std::uint8_t value) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02X", static_cast<unsigned>(value));
  return text;
}

std::string type_description(std::uint8_t type_code) {
  switch (type_code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "";
  }
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

std::vector<std::uint8_t> read_whole_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. Only
  // regular files are read, so /dev/zero cannot fill memory either.
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (descriptor < 0) fail(path, std::string("cannot open file (") + std::strerror(errno) + ")");
  struct stat status {};
  if (::fstat(descriptor, &status) != 0 || !S_ISREG(status.st_mode)) {
    const bool directory = S_ISDIR(status.st_mode);
    ::close(descriptor);
    if (directory) fail(path, "cannot read file (Is a directory)");
    fail(path, "not a regular file (a FIFO, device or socket); IDX data must be a file");
  }
  if (static_cast<std::uint64_t>(status.st_size) > kMaxFileBytes) {
    ::close(descriptor);
    fail(path, "the file is " + std::to_string(status.st_size) + " bytes, more than the " +
                   std::to_string(kMaxFileBytes) + " (1 GiB) an IDX file may have here");
  }
  ::fcntl(descriptor, F_SETFL, ::fcntl(descriptor, F_GETFL) & ~O_NONBLOCK);
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(::fdopen(descriptor, "rb"));
  if (!file) {
    ::close(descriptor);
    fail(path, std::string("cannot open file (") + std::strerror(errno) + ")");
  }
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  for (;;) {
    const std::size_t count = std::fread(buffer, 1, sizeof buffer, file.get());
    bytes.insert(bytes.end(), buffer, buffer + count);
    if (count < sizeof buffer) break;
  }
  // fopen succeeds on a directory; the read is where Linux reports EISDIR.
  if (std::ferror(file.get())) fail(path, std::string("cannot read file (") + std::strerror(errno) + ")");
  return bytes;
}

bool starts_with_gzip_magic(const std::uint8_t* bytes, std::size_t size) {
  return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// The IDX bytes of a file: the file itself, or the decompression of its gzip members,
// produced on demand so that reading stops as soon as the header's promise is checked.
class IdxByteStream {
 public:
  IdxByteStream(const std::string& path, const std::vector<std::uint8_t>& file)
      : path_(path), file_(file), gzip_(starts_with_gzip_magic(file.data(), file.size())) {
    if (!gzip_) return;
    std::memset(&zlib_, 0, sizeof zlib_);
    // 16 + MAX_WBITS: expect a gzip wrapper (header and CRC-32 trailer), not raw zlib.
    const int status = inflateInit2(&zlib_, 16 + MAX_WBITS);
    if (status != Z_OK) fail(path_, std::string("cannot start gzip decompression (") + zError(status) + ")");
  }
  ~IdxByteStream() {
    if (gzip_) inflateEnd(&zlib_);
  }
  IdxByteStream(const IdxByteStream&) = delete;
  IdxByteStream& operator=(const IdxByteStream&) = delete;

  bool compressed() const { return gzip_; }

  // Reads up to `count` bytes into `out`; fewer only at the end of the data.
  std::size_t read(std::uint8_t* out, std::size_t count) {
    if (!gzip_) {
      const std::size_t available = std::min(count, file_.size() - offset_);
      std::copy_n(file_.data() + offset_, available, out);
      offset_ += available;
      return available;
    }
    std::size_t produced = 0;
    while (produced < count && !finished_) {
      if (zlib_.avail_in == 0) feed_input();
      const std::size_t wanted = std::min(count - produced, kMaxZlibChunk);
      zlib_.next_out = out + produced;
      zlib_.avail_out = static_cast<uInt>(wanted);
      const int status = inflate(&zlib_, Z_NO_FLUSH);
      produced += wanted - zlib_.avail_out;
      if (status == Z_STREAM_END) {
        end_member();
      } else if (status == Z_BUF_ERROR && zlib_.avail_in == 0) {
        // No progress without more input; the next round feeds it, if there is any.
        if (offset_ == file_.size()) fail(path_, "truncated gzip stream (the file ends inside compressed data)");
      } else if (status != Z_OK) {
        const std::string reason = zlib_.msg ? zlib_.msg : zError(status);
        fail(path_, "corrupt gzip stream (" + reason + ")");
      }
    }
    return produced;
  }

  // Counts the bytes left (up to `limit`; a count above it means "more than").
  std::size_t count_remaining(std::size_t limit) {
    std::uint8_t scratch[1 << 12];
    std::size_t total = 0;
    while (total <= limit) {
      const std::size_t count = read(scratch, sizeof scratch);
      if (count == 0) break;
      total += count;
    }
    return total;
  }

 private:
  void feed_input() {
    // With no input left, inflate may still flush output it holds; it reports the
    // truncation itself (Z_BUF_ERROR) once it has nothing more to give.
    const std::size_t chunk = std::min(file_.size() - offset_, kMaxZlibChunk);
    zlib_.next_in = const_cast<Bytef*>(file_.data() + offset_);
    zlib_.avail_in = static_cast<uInt>(chunk);
    offset_ += chunk;
  }

  // A gzip file may hold several members back to back (what `cat a.gz b.gz` makes); their
  // decompressions concatenate. Anything else after a member is damage.
  void end_member() {
    offset_ -= zlib_.avail_in;
    zlib_.avail_in = 0;
    const std::size_t remaining = file_.size() - offset_;
    if (remaining == 0) {
      finished_ = true;
    } else if (starts_with_gzip_magic(file_.data() + offset_, remaining)) {
      inflateReset(&zlib_);
    } else {
      fail(path_, "corrupt gzip stream (" + std::to_string(remaining) +
                      " unexpected bytes after the end of the compressed data)");
    }
  }

  const std::string& path_;
  const std::vector<std::uint8_t>& file_;
  const bool gzip_;
  std::size_t offset_ = 0;
  bool finished_ = false;
  z_stream zlib_;
};

std::uint32_t read_big_endian_u32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

void write_big_endian_u32(std::uint32_t value, std::uint8_t* bytes) {
  bytes[0] = static_cast<std::uint8_t>(value >> 24);
  bytes[1] = static_cast<std::uint8_t>(value >> 16);
  bytes[2] = static_cast<std::uint8_t>(value >> 8);
  bytes[3] = static_cast<std::uint8_t>(value);
}

// Reads the four-byte magic number and the dimensions; returns the dimensions.
std::vector<std::size_t> read_header(const std::string& path, IdxByteStream& stream) {
  std::uint8_t magic[4];
  const std::size_t magic_size = stream.read(magic, sizeof magic);
  if (magic_size < sizeof magic) {
    fail(path, "too short for an IDX header (" + std::to_string(magic_size) +
                   " bytes, need at least 4)");
  }
  if (magic[0] != 0 || magic[1] != 0) {
    fail(path, "not an IDX file (magic number " + hex_byte(magic[0]) + " " + hex_byte(magic[1]) + " " +
                   hex_byte(magic[2]) + " " + hex_byte(magic[3]) + " does not start with two zero bytes)");
  }
  const std::uint8_t type_code = magic[2];
  if (type_code != kUnsignedByteType) {
    const std::string description = type_description(type_code);
    fail(path, (description.empty() ? "unknown IDX element type " + hex_byte(type_code)
                                    : "unsupported IDX element type " + hex_byte(type_code) + " (" +
                                          description + ")") +
                   "; only 0x08 (unsigned byte) is supported");
  }
  const std::size_t dimension_count = magic[3];
  if (dimension_count < 1 || dimension_count > kMaxDimensions) {
    fail(path, "IDX header declares " + std::to_string(dimension_count) +
                   " dimensions; supported are 1 to " + std::to_string(kMaxDimensions));
  }

  std::uint8_t sizes[4 * kMaxDimensions];
  const std::size_t sizes_bytes = 4 * dimension_count;
  const std::size_t sizes_read = stream.read(sizes, sizes_bytes);
  if (sizes_read < sizes_bytes) {
    fail(path, "too short for its IDX header (" + std::to_string(dimension_count) + " dimensions need " +
                   std::to_string(4 + sizes_bytes) + " header bytes, there are " +
                   std::to_string(4 + sizes_read) + ")");
  }
  std::vector<std::size_t> dims(dimension_count);
  for (std::size_t i = 0; i < dimension_count; ++i) dims[i] = read_big_endian_u32(sizes + 4 * i);
  for (std::size_t i = 0; i < dimension_count; ++i) {
    if (dims[i] == 0) fail(path, "dimension " + std::to_string(i) + " is zero in IDX dimensions " + shape_string(dims));
  }
  return dims;
}

std::size_t element_count(const std::string& path, const std::vector<std::size_t>& dims) {
  std::size_t count = 1;
  for (std::size_t dim : dims) {
    if (dim > std::numeric_limits<std::size_t>::max() / count) {
      fail(path, "IDX dimensions " + shape_string(dims) + " describe more elements than can be addressed");
    }
    count *= dim;
  }
  if (count > kMaxPayloadBytes)
    fail(path, "IDX dimensions " + shape_string(dims) + " describe " + std::to_string(count) + " bytes, more than the " +
                   std::to_string(kMaxPayloadBytes) + " (1 GiB) allowed");
  return count;
}

std::vector<std::uint8_t> read_payload(const std::string& path, IdxByteStream& stream,
                                       const std::vector<std::size_t>& dims, std::size_t expected) {
  std::vector<std::uint8_t> payload;
  std::size_t filled = 0;
  while (filled < expected) {
    const std::size_t chunk = std::min(expected - filled, std::max(kFirstPayloadChunk, filled));
    payload.resize(filled + chunk);
    const std::size_t count = stream.read(payload.data() + filled, chunk);
    filled += count;
    if (count < chunk) {
      fail(path, "truncated IDX payload: dimensions " + shape_string(dims) + " need " +
                     std::to_string(expected) + " bytes but the " +
                     (stream.compressed() ? "decompressed data holds " : "file holds ") +
                     std::to_string(filled));
    }
  }
  return payload;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  const std::vector<std::uint8_t> file = read_whole_file(path);
  IdxByteStream stream(path, file);
  IdxArray array;
  array.dims = read_header(path, stream);
  const std::size_t expected = element_count(path, array.dims);
  array.data = read_payload(path, stream, array.dims, expected);
  const std::size_t surplus = stream.count_remaining(kTrailingCountLimit);
  if (surplus > 0) {
    const std::string amount = surplus > kTrailingCountLimit ? "more than " + std::to_string(kTrailingCountLimit)
                                                             : std::to_string(surplus);
    fail(path, amount + " extra bytes after the " + std::to_string(expected) +
                   "-byte payload that IDX dimensions " + shape_string(array.dims) + " describe");
  }
  return array;
}

void write_idx(const std::string& path, const IdxArray& array) {
  const std::size_t dimension_count = array.dims.size();
  if (dimension_count < 1 || dimension_count > kMaxDimensions) {
    throw std::invalid_argument(path + ": write_idx: an IDX array needs 1 to 4 dimensions, got " +
                                std::to_string(dimension_count));
  }
  std::size_t count = 1;
  for (std::size_t dim : array.dims) {
    if (dim == 0 || dim > kMaxDimensionSize || dim > std::numeric_limits<std::size_t>::max() / count) {
      throw std::invalid_argument(path + ": write_idx: dimensions " + shape_string(array.dims) +
                                  " must be positive and fit in 32 bits");
    }
    count *= dim;
  }
  if (count != array.data.size()) {
    throw std::invalid_argument(path + ": write_idx: dimensions " + shape_string(array.dims) + " describe " +
                                std::to_string(count) + " bytes but the data holds " +
                                std::to_string(array.data.size()));
  }

  std::vector<std::uint8_t> bytes(4 + 4 * dimension_count);
  bytes[2] = kUnsignedByteType;
  bytes[3] = static_cast<std::uint8_t>(dimension_count);
  for (std::size_t i = 0; i < dimension_count; ++i) {
    write_big_endian_u32(static_cast<std::uint32_t>(array.dims[i]), bytes.data() + 4 + 4 * i);
  }
  bytes.insert(bytes.end(), array.data.begin(), array.data.end());

  const bool gzip = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  errno = 0;
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    if (!file) fail(path, std::string("cannot create file (") + std::strerror(errno) + ")");
    bool written = true;
    for (std::size_t offset = 0; offset < bytes.size() && written;) {
      const std::size_t chunk = std::min(bytes.size() - offset, kMaxZlibChunk);
      written = gzwrite(file, bytes.data() + offset, static_cast<unsigned>(chunk)) == static_cast<int>(chunk);
      offset += chunk;
    }
    if (gzclose(file) != Z_OK || !written) fail(path, "cannot write gzip file");
  } else {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
    if (!file) fail(path, std::string("cannot create file (") + std::strerror(errno) + ")");
    const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file.get()) == bytes.size();
    if (!written || std::fclose(file.release()) != 0) {
      fail(path, std::string("cannot write file (") + std::strerror(errno) + ")");
    }
  }
}

}  // namespace stn
