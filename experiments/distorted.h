// The distorted MNIST datasets of the paper (§4.1, Appendix A.4): which distortion, the
// training batches (a fresh draw every time, reproducible per batch) and the test set
// (distorted once per seed and cached on disk, so every model sees the same test set).
// The warps themselves are in distort.h.
//
// Pixels stay in [0, 1] (no normalisation), like Dataset's.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "stn/framework/data/loader.h"
#include "stn/framework/data/mnist.h"
#include "stn/framework/random.h"
#include "stn/framework/tensor.h"

namespace stn {

enum class DistortionKind { none, r, rts, p, e, tc, add };

// "mnist" or "none", "r", "rts", "p", "e", "tc", "add" (lower case, exact); anything else is
// a std::invalid_argument that lists the accepted names.
DistortionKind parse_distortion(const std::string& name);
// "none", "r", "rts", "p", "e", "tc" or "add": parse_distortion's inverse, and the prefix of
// the cached test set's file name.
std::string distortion_name(DistortionKind kind);
// Side of the square canvas: 28 (none, r, p, e), 42 (rts, add) or 60 (tc).
std::size_t distortion_canvas_side(DistortionKind kind);
// Image channels: 2 for add (one digit each), else 1.
std::size_t distortion_channels(DistortionKind kind);
// Label classes: 19 for add (sums 0 to 18), else 10.
int distortion_classes(DistortionKind kind);
// The ranges drawn from, in words (recorded in the test-set cache's metadata).
std::string distortion_description(DistortionKind kind);

// Columns of the parameter table, one row per sample, in the order of distort.h's structs
// (pixels, degrees; indices as exactly representable floats):
//   none  0
//   r     1   angle_degrees
//   rts   4   angle_degrees, scale, offset_x, offset_y
//   p     9   scale, corner_noise[8]
//   e     33  scale, control_noise[32]
//   tc    32  digit_x, digit_y, then per patch: source_index, crop_x, crop_y, paste_x, paste_y
//   add   9   second_index, first (as rts), second (as rts)
std::size_t distortion_parameter_count(DistortionKind kind);

struct DistortedSamples {
  Tensor images;                     // [B, channels, side, side], values in [0, 1]
  std::vector<std::int32_t> labels;  // B labels (add: the sum of the two digits' labels)
  Tensor parameters;                 // [B, distortion_parameter_count(kind)]
};

// Samples [begin, end) of a batch (end is clamped to the batch size): the part one rank of a
// data-parallel run trains on. The default is the whole batch.
struct BatchPart {
  std::size_t begin = 0;
  std::size_t end = static_cast<std::size_t>(-1);
};

// Distorts the digits source[digit_indices[k]], k = 0..B-1: per sample in order, draws its
// parameters from `generator` (draw_rotation, ..., with tc's patches and add's second digit
// taken from `source`), then warps all B in one batch. `source` must hold [N, 1, 28, 28]
// images and N labels in [0, 10), N >= 1 (else stn::ShapeError / stn::DataError); an index
// of N or more, or an empty index list, is a std::invalid_argument. With a `part`, every
// sample's parameters are still drawn (so the generator ends where it would), but only the
// part's samples are warped and returned: they are exactly those samples of the whole batch.
DistortedSamples distort_samples(const Dataset& source, DistortionKind kind,
                                 std::span<const std::size_t> digit_indices,
                                 Generator& generator, BatchPart part = {});

// Training batch `batch_index` of the stream (mnist_train, kind, batch_size, seed): a pure
// function of its arguments. A Generator is seeded with SplitMix64(SplitMix64(seed) ^
// batch_index); it draws the batch_size digit indices uniformly with replacement (no epochs:
// each batch is independent, so any batch can be made without its predecessors), then
// distort_samples draws the parameters. With a `part`: only those samples of the batch (an
// empty part is a std::invalid_argument).
Batch distorted_batch(const Dataset& mnist_train, DistortionKind kind, std::size_t batch_size,
                      std::uint64_t seed, std::uint64_t batch_index, BatchPart part = {});

// An endless stream of distorted training batches, distorted_batch(..., b) for b = 0, 1, 2,
// ..., made one ahead on a background thread: while the caller trains on batch b, batch b + 1
// is being made, so next() returns at once unless warping is slower than training. The
// background thread runs the grid and sampler kernels with one OpenMP thread, leaving the
// cores to the trainer.
//
// The stream keeps a reference to mnist_train, which must outlive it and stay unchanged.
// next, seek and batches_drawn are for one caller thread; the destructor stops the
// background thread (waiting for the batch in progress) and is safe at any point.
class DistortedBatches {
 public:
  // Throws std::invalid_argument for batch_size 0, and distort_samples' errors for a source
  // it cannot use. Starts at batch 0.
  DistortedBatches(const Dataset& mnist_train, DistortionKind kind, std::size_t batch_size,
                   std::uint64_t seed, BatchPart part = {});
  DistortedBatches(Dataset&& mnist_train, DistortionKind kind, std::size_t batch_size,
                   std::uint64_t seed, BatchPart part = {}) = delete;
  ~DistortedBatches();
  DistortedBatches(const DistortedBatches&) = delete;
  DistortedBatches& operator=(const DistortedBatches&) = delete;

  // Fills `batch` with batch batches_drawn() and advances. An error the background thread
  // met while making that batch is rethrown here.
  void next(Batch& batch);
  // Batches delivered so far, counting from the last seek (i.e. the index next() delivers).
  std::uint64_t batches_drawn() const;
  // The next call of next() delivers batch `batch_index` (a resumed run seeks to the number
  // of batches it had trained on).
  void seek(std::uint64_t batch_index);

  DistortionKind kind() const { return kind_; }
  std::size_t batch_size() const { return batch_size_; }

 private:
  void run_background();

  const Dataset* source_;
  DistortionKind kind_;
  std::size_t batch_size_;
  std::uint64_t seed_;
  BatchPart part_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t wanted_ = 0;                // the batch next() delivers next
  std::optional<std::uint64_t> ready_index_;  // which batch `ready_` holds, if any
  Batch ready_;
  std::optional<std::uint64_t> failed_index_;
  std::exception_ptr failure_;
  bool stopping_ = false;
  std::thread worker_;
};

// The fixed (distorted once, cached) sets: the test set, and the validation set made from
// the training digits held out of training (see experiments/datasets.h).
enum class FixedSet { test, validation };

// The distorted test set for (kind, seed), made from mnist_test (one distorted sample per
// test digit, in order; add pairs digit i with a second test digit drawn per sample, and tc
// crops its clutter from the other test digits).
//
// It is cached as <cache_dir>/<distortion_name>-test-seed<seed>-v<format version>.safetensors:
// F32 tensors "images" [N, C, S, S], "labels" [N] and "parameters" [N, P] (see
// distortion_parameter_count), and metadata naming the format and its version, the set, the
// kind, the seed, the generator and distortion ranges, and a fingerprint of mnist_test. The
// version in the name means a checkout that makes these sets differently (version 1 moved P's
// landing corners) never reads, nor overwrites, this version's files in a shared cache. A
// file whose metadata, shapes or values do not match is reported on stderr and replaced by a
// fresh one, as is a corrupt file. The file is written atomically (cache_dir is created if
// missing); if it cannot be written, that is reported on stderr and the set is still
// returned. Generation is a pure function of (mnist_test, kind, seed): one Generator, seeded
// from seed through SplitMix64 with a salt that keeps it apart from the training stream,
// draws every sample's parameters in order.
//
// kind none returns mnist_test itself (copied, nothing cached). The dataset is named
// "mnist-<kind>/test" and has distortion_classes(kind) classes.
Dataset distorted_test_set(const Dataset& mnist_test, DistortionKind kind, std::uint64_t seed,
                           const std::string& cache_dir);

// distorted_test_set for either fixed set: `digits` are the test digits or the held-out
// training digits; the validation set has its own salt, file name (-validation-) and name
// ("mnist-<kind>/validation"); its tc clutter and add pairs come from the held-out digits.
Dataset distorted_fixed_set(const Dataset& digits, DistortionKind kind, std::uint64_t seed,
                            const std::string& cache_dir, FixedSet role);

// Where distorted_test_set / distorted_fixed_set cache (kind, seed).
std::string distorted_test_set_path(DistortionKind kind, std::uint64_t seed,
                                    const std::string& cache_dir);
std::string distorted_set_path(DistortionKind kind, std::uint64_t seed, const std::string& cache_dir,
                               FixedSet role);

}  // namespace stn
