// Mini-batches over an in-memory Dataset: shuffled (or not), normalised, in a reproducible
// order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "stn/framework/data/mnist.h"
#include "stn/framework/random.h"
#include "stn/framework/tensor.h"

namespace stn {

struct Batch {
  Tensor images;                     // [B, sample dims...] of the dataset's images, normalised
  std::vector<std::int32_t> labels;  // B labels
};

// Samples [begin, end) of `batch`, copied into `into` (std::invalid_argument unless
// begin < end <= B).
void copy_batch_rows(const Batch& batch, std::size_t begin, std::size_t end, Batch& into);

struct LoaderOptions {
  std::size_t batch_size = 256;
  bool shuffle = true;
  bool drop_last = false;  // skip the last batch when it is smaller than batch_size
  // next() never runs out: at the end of epoch e it starts epoch e + 1 and returns its first
  // batch. A batch never spans two epochs (the last one of an epoch may be smaller, unless
  // drop_last). For training by iteration count rather than by epochs.
  bool endless = false;
  std::uint64_t seed = 0;
  // Each pixel x becomes (x - mean) / stddev.
  float mean = 0.0f;
  float stddev = 1.0f;
};

// Walks a dataset in batches, one epoch at a time. Epoch e visits every sample exactly once
// (minus the dropped tail under drop_last) in an order that is a function of options.seed and
// e alone: a Fisher-Yates shuffle by the loader's own Generator, reseeded from (seed, e) at
// the start of each epoch. So a run resumed at epoch e sees the same batches, and the
// process-wide generator is neither used nor disturbed.
//
// The loader keeps a reference to `data`, which must outlive it and keep its size.
class DataLoader {
 public:
  // Throws std::invalid_argument for batch_size 0, a mean or stddev that is not finite
  // (stddev must also be positive), or endless mode with no batch in an epoch (an empty
  // dataset, or fewer samples than batch_size under drop_last), and stn::ShapeError when the
  // dataset's image count differs from its label count. Starts at epoch 0.
  DataLoader(const Dataset& data, LoaderOptions options);
  DataLoader(Dataset&& data, LoaderOptions options) = delete;

  std::size_t batches_per_epoch() const;

  // Starts epoch `epoch` (any number, in any order) from its first batch.
  void start_epoch(std::size_t epoch);

  // Fills `batch` with the next batch, reusing its storage when the shape is unchanged.
  // Returns false, leaving `batch` untouched, once the epoch is over, and keeps doing so
  // until start_epoch is called; in endless mode it moves on to the next epoch (in the
  // order start_epoch(epoch() + 1) gives) and always returns true.
  bool next(Batch& batch);

  std::size_t epoch() const { return epoch_; }
  // Samples delivered so far in the current epoch.
  std::size_t position() const { return position_; }

 private:
  const Dataset* data_;
  LoaderOptions options_;
  Generator generator_;
  std::vector<std::size_t> order_;
  Shape sample_shape_;
  std::size_t sample_size_ = 0;
  std::size_t epoch_ = 0;
  std::size_t position_ = 0;
};

}  // namespace stn
