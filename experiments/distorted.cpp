#include "stn/experiments/distorted.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <stdexcept>
#include <utility>

#include "stn/experiments/distort.h"
#include "stn/framework/error.h"
#include "stn/framework/io/safetensors.h"
#include "stn/framework/threads.h"

namespace stn {
namespace {

constexpr std::size_t kDigitPixels = kDigitSide * kDigitSide;
constexpr const char* kCacheFormat = "stn distorted MNIST fixed set";
// Bump whenever a change would make the same (kind, seed) produce different images. It is
// part of the file name too, so a checkout of another version sharing the cache directory
// neither reads these files nor overwrites them. 2: P reads like E (sampling corners moved).
constexpr int kCacheFormatVersion = 2;
// Keep the fixed sets' generators apart from every training batch's and from each other.
constexpr std::uint64_t kTestSetSalt = 0x7465737473657421ull;
constexpr std::uint64_t kValidationSetSalt = 0x76616c6964617465ull;
// Test digits per warp call: bounds the grids' memory (2 x 10k x 42 x 42 x 2 floats at once
// would be 280 MB) without changing the result, which depends on the draw order only.
constexpr std::size_t kTestChunk = 1000;

struct KindInfo {
  DistortionKind kind;
  const char* name;
  std::size_t canvas_side;
  std::size_t channels;
  int classes;
  std::size_t parameter_count;
  const char* description;
};

constexpr KindInfo kKinds[] = {
    {DistortionKind::none, "none", kDigitSide, 1, 10, 0, "undistorted 28x28"},
    {DistortionKind::r, "r", kDigitSide, 1, 10, 1, "R: rotation U[-90, 90] deg about the centre; 28x28"},
    {DistortionKind::rts, "rts", kRtsCanvasSide, 1, 10, 4,
     "RTS: rotation U[-45, 45] deg, scale U[0.7, 1.2], centre offset U[-(21 - 14 s), 21 - 14 s] px per axis; 42x42"},
    {DistortionKind::p, "p", kDigitSide, 1, 10, 9,
     "P: scale U[0.75, 1], then the 4 corners of the sampling quadrilateral (where the canvas corners read from) + "
     "N(0, 5 px) per coordinate (folded quadrilaterals redrawn), homography; 28x28"},
    {DistortionKind::e, "e", kDigitSide, 1, 10, 33,
     "E: scale U[0.75, 1], 4x4 TPS control points + N(0, 1.5 px) per coordinate; 28x28"},
    {DistortionKind::tc, "tc", kClutterCanvasSide, 1, 10, 32,
     "TC: digit at a uniform integer position, six 6x6 crops of other digits at uniform integer positions, max; 60x60"},
    {DistortionKind::add, "add", kAdditionCanvasSide, 2, 19, 9,
     "addition: two digits, each RTS on its own channel of 2x42x42; label = sum (19 classes)"},
};

const KindInfo& info(DistortionKind kind) {
  for (const KindInfo& entry : kKinds)
    if (entry.kind == kind) return entry;
  throw std::invalid_argument("unknown DistortionKind " + std::to_string(static_cast<int>(kind)));
}

void check_source(const Dataset& source, const char* who) {
  const Shape shape = shape_of(source.images);
  if (shape.size() != 4 || shape[1] != 1 || shape[2] != kDigitSide || shape[3] != kDigitSide ||
      shape[0] == 0 || shape[0] != source.labels.size())
    throw_shape_error(who, "dataset '" + source.name + "' has images " + shape_string(shape) + " and " +
                               std::to_string(source.labels.size()) +
                               " labels; need [N, 1, 28, 28] and N >= 1 labels");
  for (std::int32_t label : source.labels)
    if (label < 0 || label >= 10)
      throw DataError(std::string(who) + ": dataset '" + source.name + "' has the label " +
                      std::to_string(label) + ", not a digit");
}

Tensor gather_digits(const Dataset& source, std::span<const std::size_t> indices) {
  Tensor digits = empty({indices.size(), 1, kDigitSide, kDigitSide});
  for (std::size_t k = 0; k < indices.size(); ++k)
    std::copy_n(source.images.data() + indices[k] * kDigitPixels, kDigitPixels, digits.data() + k * kDigitPixels);
  return digits;
}

void put_rts(const RtsParameters& p, float* row) {
  row[0] = p.angle_degrees, row[1] = p.scale, row[2] = p.offset_x, row[3] = p.offset_y;
}

// Draws the parameters of every sample in order, writes the parameter table rows of the
// samples [begin, end) and warps those.
template <typename Parameters, typename Draw, typename Row, typename Warp>
Tensor draw_and_warp(std::size_t count, BatchPart part, Tensor& table, Draw draw, Row row, Warp warp) {
  std::vector<Parameters> parameters(count);
  for (std::size_t k = 0; k < count; ++k) parameters[k] = draw(k);
  parameters.erase(parameters.begin() + static_cast<std::ptrdiff_t>(part.end), parameters.end());
  parameters.erase(parameters.begin(), parameters.begin() + static_cast<std::ptrdiff_t>(part.begin));
  for (std::size_t k = 0; k < parameters.size(); ++k) row(parameters[k], table.data() + k * table.shape()[1]);
  return warp(parameters);
}

std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// Identifies the test set a cache was made from, so a cache made from other digits (Fashion-
// MNIST, a synthetic set) is never returned for this one.
std::string fingerprint(const Dataset& source) {
  std::uint64_t hash = splitmix64(source.labels.size());
  const float* pixels = source.images.data();
  for (std::size_t i = 0; i < source.images.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, pixels + i, sizeof bits);
    hash = splitmix64(hash ^ bits);
  }
  for (std::int32_t label : source.labels) hash = splitmix64(hash ^ static_cast<std::uint32_t>(label));
  return hex(hash);
}

const char* role_name(FixedSet role) { return role == FixedSet::test ? "test" : "validation"; }
std::uint64_t role_salt(FixedSet role) { return role == FixedSet::test ? kTestSetSalt : kValidationSetSalt; }

std::map<std::string, std::string> cache_metadata(const Dataset& source, DistortionKind kind,
                                                  std::uint64_t seed, FixedSet role) {
  return {{"format", kCacheFormat},
          {"format_version", std::to_string(kCacheFormatVersion)},
          {"set", role_name(role)},
          {"kind", distortion_name(kind)},
          {"seed", std::to_string(seed)},
          {"generator", "mt19937_64 seeded SplitMix64(SplitMix64(seed ^ 0x" + hex(role_salt(role)) +
                            ")); per test digit in order: parameters, then batched grid + "
                            "grid_sample (bilinear, zeros, align_corners false); " +
                            distortion_description(kind)},
          {"source", source.name},
          {"source_size", std::to_string(source.size())},
          {"source_fingerprint", fingerprint(source)}};
}

Dataset make_dataset(DistortionKind kind, FixedSet role, Tensor images, std::vector<std::int32_t> labels) {
  Dataset dataset;
  dataset.name = "mnist-" + distortion_name(kind) + "/" + role_name(role);
  dataset.images = std::move(images);
  dataset.labels = std::move(labels);
  dataset.num_classes = distortion_classes(kind);
  return dataset;
}

// The cached set, or a DataError saying why the file cannot be used.
Dataset load_cached(const std::string& path, DistortionKind kind, FixedSet role, std::size_t count,
                    const std::map<std::string, std::string>& expected) {
  SafetensorsFile file = load_safetensors(path);
  for (const auto& [key, value] : expected) {
    auto found = file.metadata.find(key);
    if (found == file.metadata.end() || found->second != value)
      throw DataError(path + ": metadata '" + key + "' is '" +
                      (found == file.metadata.end() ? std::string("(missing)") : found->second) +
                      "', expected '" + value + "'");
  }
  const std::size_t side = distortion_canvas_side(kind);
  const std::pair<const char*, Shape> expected_shapes[] = {
      {"images", {count, distortion_channels(kind), side, side}},
      {"labels", {count}},
      {"parameters", {count, distortion_parameter_count(kind)}}};
  for (const auto& [name, shape] : expected_shapes) {
    const Tensor* tensor = file.find(name);
    if (tensor == nullptr) throw DataError(path + ": no tensor '" + name + "'");
    if (shape_of(*tensor) != shape)
      throw DataError(path + ": '" + name + "' is " + shape_string(*tensor) + ", expected " + shape_string(shape));
  }
  const Tensor& images = *file.find("images");
  for (std::size_t i = 0; i < images.size(); ++i)
    if (!(images.data()[i] >= 0.0f && images.data()[i] <= 1.0f))
      throw DataError(path + ": pixel " + std::to_string(i) + " is " + std::to_string(images.data()[i]) +
                      ", outside [0, 1]");
  const Tensor& label_values = *file.find("labels");
  std::vector<std::int32_t> labels(count);
  for (std::size_t i = 0; i < count; ++i) {
    const float value = label_values.data()[i];
    if (!(value >= 0.0f && value < distortion_classes(kind)) || value != std::floor(value))
      throw DataError(path + ": label " + std::to_string(i) + " is " + std::to_string(value));
    labels[i] = static_cast<std::int32_t>(value);
  }
  for (auto& [name, tensor] : file.tensors)
    if (name == "images") return make_dataset(kind, role, std::move(tensor), std::move(labels));
  throw DataError(path + ": no tensor 'images'");
}

}  // namespace

DistortionKind parse_distortion(const std::string& name) {
  if (name == "mnist") return DistortionKind::none;
  std::string names = "mnist";
  for (const KindInfo& entry : kKinds) {
    if (name == entry.name) return entry.kind;
    names += std::string(", ") + entry.name;
  }
  throw std::invalid_argument("unknown distortion '" + name + "'; expected one of " + names);
}

std::string distortion_name(DistortionKind kind) { return info(kind).name; }
std::size_t distortion_canvas_side(DistortionKind kind) { return info(kind).canvas_side; }
std::size_t distortion_channels(DistortionKind kind) { return info(kind).channels; }
int distortion_classes(DistortionKind kind) { return info(kind).classes; }
std::string distortion_description(DistortionKind kind) { return info(kind).description; }
std::size_t distortion_parameter_count(DistortionKind kind) { return info(kind).parameter_count; }

DistortedSamples distort_samples(const Dataset& source, DistortionKind kind,
                                 std::span<const std::size_t> digit_indices, Generator& generator, BatchPart part) {
  check_source(source, "distort_samples");
  if (digit_indices.empty()) throw std::invalid_argument("distort_samples: no digits to distort");
  for (std::size_t index : digit_indices)
    if (index >= source.size())
      throw std::invalid_argument("distort_samples: digit index " + std::to_string(index) + " of a dataset of " +
                                  std::to_string(source.size()));
  const std::size_t count = digit_indices.size();
  part.end = std::min(part.end, count);
  if (part.begin >= part.end)
    throw std::invalid_argument("distort_samples: samples [" + std::to_string(part.begin) + ", " +
                                std::to_string(part.end) + ") of a batch of " + std::to_string(count) + " are none");
  const std::span<const std::size_t> kept = digit_indices.subspan(part.begin, part.end - part.begin);
  DistortedSamples samples;
  samples.parameters = empty({kept.size(), distortion_parameter_count(kind)});
  samples.labels.resize(kept.size());
  for (std::size_t k = 0; k < kept.size(); ++k) samples.labels[k] = source.labels[kept[k]];
  const Tensor digits = gather_digits(source, kept);
  Tensor& table = samples.parameters;

  switch (kind) {
    case DistortionKind::none:
      samples.images = digits;
      break;
    case DistortionKind::r:
      samples.images = draw_and_warp<RotationParameters>(
          count, part, table, [&](std::size_t) { return draw_rotation(generator); },
          [](const RotationParameters& p, float* row) { row[0] = p.angle_degrees; },
          [&](const std::vector<RotationParameters>& all) { return warp_rotation(digits, all); });
      break;
    case DistortionKind::rts:
      samples.images = draw_and_warp<RtsParameters>(
          count, part, table, [&](std::size_t) { return draw_rts(generator); }, put_rts,
          [&](const std::vector<RtsParameters>& all) { return warp_rts(digits, all); });
      break;
    case DistortionKind::p:
      samples.images = draw_and_warp<ProjectiveParameters>(
          count, part, table, [&](std::size_t) { return draw_projective(generator); },
          [](const ProjectiveParameters& p, float* row) {
            row[0] = p.scale;
            std::copy(p.corner_noise.begin(), p.corner_noise.end(), row + 1);
          },
          [&](const std::vector<ProjectiveParameters>& all) { return warp_projective(digits, all); });
      break;
    case DistortionKind::e:
      samples.images = draw_and_warp<ElasticParameters>(
          count, part, table, [&](std::size_t) { return draw_elastic(generator); },
          [](const ElasticParameters& p, float* row) {
            row[0] = p.scale;
            std::copy(p.control_noise.begin(), p.control_noise.end(), row + 1);
          },
          [&](const std::vector<ElasticParameters>& all) { return warp_elastic(digits, all); });
      break;
    case DistortionKind::tc:
      samples.images = draw_and_warp<ClutterParameters>(
          count, part, table, [&](std::size_t k) { return draw_clutter(generator, source.size(), digit_indices[k]); },
          [](const ClutterParameters& p, float* row) {
            row[0] = static_cast<float>(p.digit_x), row[1] = static_cast<float>(p.digit_y);
            for (std::size_t i = 0; i < kClutterPatchCount; ++i) {
              const ClutterPatch& patch = p.patches[i];
              float* out = row + 2 + 5 * i;
              out[0] = static_cast<float>(patch.source_index);
              out[1] = static_cast<float>(patch.crop_x), out[2] = static_cast<float>(patch.crop_y);
              out[3] = static_cast<float>(patch.paste_x), out[4] = static_cast<float>(patch.paste_y);
            }
          },
          [&](const std::vector<ClutterParameters>& all) { return warp_clutter(digits, all, source.images); });
      break;
    case DistortionKind::add:
      samples.images = draw_and_warp<AdditionParameters>(
          count, part, table, [&](std::size_t) { return draw_addition(generator, source.size()); },
          [](const AdditionParameters& p, float* row) {
            row[0] = static_cast<float>(p.second_index);
            put_rts(p.first, row + 1);
            put_rts(p.second, row + 5);
          },
          [&](const std::vector<AdditionParameters>& all) {
            std::vector<std::size_t> second_indices(all.size());
            for (std::size_t k = 0; k < all.size(); ++k) {
              second_indices[k] = all[k].second_index;
              samples.labels[k] += source.labels[all[k].second_index];
            }
            return warp_addition(digits, gather_digits(source, second_indices), all);
          });
      break;
  }
  return samples;
}

Batch distorted_batch(const Dataset& mnist_train, DistortionKind kind, std::size_t batch_size,
                      std::uint64_t seed, std::uint64_t batch_index, BatchPart part) {
  if (batch_size == 0) throw std::invalid_argument("distorted_batch: batch_size must be at least 1, got 0");
  check_source(mnist_train, "distorted_batch");
  Generator generator(splitmix64(splitmix64(seed) ^ batch_index));
  std::vector<std::size_t> indices(batch_size);
  for (std::size_t& index : indices) index = static_cast<std::size_t>(generator.below(mnist_train.size()));
  DistortedSamples samples = distort_samples(mnist_train, kind, indices, generator, part);
  return Batch{std::move(samples.images), std::move(samples.labels)};
}

DistortedBatches::DistortedBatches(const Dataset& mnist_train, DistortionKind kind,
                                   std::size_t batch_size, std::uint64_t seed, BatchPart part)
    : source_(&mnist_train), kind_(kind), batch_size_(batch_size), seed_(seed), part_(part) {
  if (batch_size == 0) throw std::invalid_argument("DistortedBatches: batch_size must be at least 1, got 0");
  part_.end = std::min(part_.end, batch_size);
  if (part_.begin >= part_.end)
    throw std::invalid_argument("DistortedBatches: samples [" + std::to_string(part_.begin) + ", " +
                                std::to_string(part_.end) + ") of a batch of " + std::to_string(batch_size) +
                                " are none");
  info(kind);
  check_source(mnist_train, "DistortedBatches");
  worker_ = std::thread([this] { run_background(); });
}

DistortedBatches::~DistortedBatches() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void DistortedBatches::run_background() {
  // This thread's own OpenMP setting: the kernels' parallel regions opened from here run on
  // one thread instead of competing with the trainer's team for the same cores.
  set_num_threads(1);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || (ready_index_ != wanted_ && failed_index_ != wanted_); });
    if (stopping_) return;
    const std::uint64_t index = wanted_;
    lock.unlock();
    Batch batch;
    std::exception_ptr failure;
    try {
      batch = distorted_batch(*source_, kind_, batch_size_, seed_, index, part_);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    // A seek while we were working makes this batch stale; the loop then makes the new one.
    if (index != wanted_) continue;
    if (failure) {
      failed_index_ = index;
      failure_ = failure;
    } else {
      ready_ = std::move(batch);
      ready_index_ = index;
    }
    changed_.notify_all();
  }
}

void DistortedBatches::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return ready_index_ == wanted_ || failed_index_ == wanted_; });
  if (failed_index_ == wanted_) {
    std::exception_ptr failure = std::exchange(failure_, nullptr);
    failed_index_.reset();  // a later call tries again
    changed_.notify_all();
    std::rethrow_exception(failure);
  }
  std::swap(batch, ready_);
  ready_index_.reset();
  ++wanted_;
  changed_.notify_all();
}

std::uint64_t DistortedBatches::batches_drawn() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return wanted_;
}

void DistortedBatches::seek(std::uint64_t batch_index) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wanted_ = batch_index;
  }
  changed_.notify_all();
}

std::string distorted_set_path(DistortionKind kind, std::uint64_t seed, const std::string& cache_dir, FixedSet role) {
  return (std::filesystem::path(cache_dir) / (distortion_name(kind) + "-" + role_name(role) + "-seed" +
                                              std::to_string(seed) + "-v" + std::to_string(kCacheFormatVersion) +
                                              ".safetensors"))
      .string();
}

std::string distorted_test_set_path(DistortionKind kind, std::uint64_t seed, const std::string& cache_dir) {
  return distorted_set_path(kind, seed, cache_dir, FixedSet::test);
}

Dataset distorted_test_set(const Dataset& mnist_test, DistortionKind kind, std::uint64_t seed,
                           const std::string& cache_dir) {
  return distorted_fixed_set(mnist_test, kind, seed, cache_dir, FixedSet::test);
}

Dataset distorted_fixed_set(const Dataset& digits, DistortionKind kind, std::uint64_t seed,
                            const std::string& cache_dir, FixedSet role) {
  const char* who = role == FixedSet::test ? "distorted_test_set" : "distorted_validation_set";
  check_source(digits, who);
  if (kind == DistortionKind::none) return make_dataset(kind, role, digits.images, digits.labels);

  const std::string path = distorted_set_path(kind, seed, cache_dir, role);
  const std::map<std::string, std::string> metadata = cache_metadata(digits, kind, seed, role);
  const std::size_t count = digits.size();
  std::error_code error;
  if (std::filesystem::exists(path, error)) {
    try {
      return load_cached(path, kind, role, count, metadata);
    } catch (const DataError& failure) {
      std::cerr << who << ": ignoring the cached " << role_name(role) << " set (" << failure.what()
                << "); making it again\n";
    }
  }

  const std::size_t side = distortion_canvas_side(kind);
  const std::size_t sample_size = distortion_channels(kind) * side * side;
  const std::size_t columns = distortion_parameter_count(kind);
  Tensor images = empty({count, distortion_channels(kind), side, side});
  Tensor labels = empty({count});
  Tensor parameters = empty({count, columns});
  std::vector<std::int32_t> label_values(count);
  Generator generator(splitmix64(splitmix64(seed ^ role_salt(role))));
  for (std::size_t begin = 0; begin < count; begin += kTestChunk) {
    std::vector<std::size_t> indices(std::min(kTestChunk, count - begin));
    for (std::size_t k = 0; k < indices.size(); ++k) indices[k] = begin + k;
    const DistortedSamples chunk = distort_samples(digits, kind, indices, generator);
    std::copy_n(chunk.images.data(), indices.size() * sample_size, images.data() + begin * sample_size);
    std::copy_n(chunk.parameters.data(), indices.size() * columns, parameters.data() + begin * columns);
    for (std::size_t k = 0; k < indices.size(); ++k) {
      label_values[begin + k] = chunk.labels[k];
      labels.data()[begin + k] = static_cast<float>(chunk.labels[k]);
    }
  }
  try {
    std::filesystem::create_directories(cache_dir);
    save_safetensors(path, {{"images", &images}, {"labels", &labels}, {"parameters", &parameters}}, metadata);
  } catch (const std::exception& failure) {
    std::cerr << who << ": could not cache the " << role_name(role) << " set at " << path << ": " << failure.what()
              << "\n";
  }
  return make_dataset(kind, role, std::move(images), std::move(label_values));
}

}  // namespace stn
