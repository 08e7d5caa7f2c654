#include "stn/framework/data/loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "stn/framework/error.h"

namespace stn {

void copy_batch_rows(const Batch& batch, std::size_t begin, std::size_t end, Batch& into) {
  const std::size_t count = batch.labels.size();
  if (!(begin < end && end <= count) || batch.images.dimension() < 1 || batch.images.shape()[0] != count)
    throw std::invalid_argument("copy_batch_rows: samples [" + std::to_string(begin) + ", " + std::to_string(end) +
                                ") of a batch of " + std::to_string(count));
  Shape shape(batch.images.shape().begin(), batch.images.shape().end());
  const std::size_t sample = batch.images.size() / count;
  shape[0] = end - begin;
  // Reuses the destination's storage when it already has this shape (micro-batches of one
  // size, step after step): no allocation in the steady state.
  if (shape_of(into.images) != shape) into.images = empty(shape);
  std::copy_n(batch.images.data() + begin * sample, (end - begin) * sample, into.images.data());
  into.labels.assign(batch.labels.begin() + static_cast<std::ptrdiff_t>(begin),
                     batch.labels.begin() + static_cast<std::ptrdiff_t>(end));
}

namespace {

std::uint64_t epoch_seed(std::uint64_t seed, std::size_t epoch) {
  return splitmix64(splitmix64(seed) ^ static_cast<std::uint64_t>(epoch));
}

}  // namespace

DataLoader::DataLoader(const Dataset& data, LoaderOptions options) : data_(&data), options_(options) {
  if (options_.batch_size == 0) throw std::invalid_argument("DataLoader: batch_size must be at least 1, got 0");
  if (!std::isfinite(options_.mean)) {
    throw std::invalid_argument("DataLoader: mean must be finite, got " + std::to_string(options_.mean));
  }
  if (!std::isfinite(options_.stddev) || options_.stddev <= 0.0f) {
    throw std::invalid_argument("DataLoader: stddev must be positive and finite, got " +
                                std::to_string(options_.stddev));
  }
  const Shape images_shape = shape_of(data.images);
  if (images_shape.empty() || images_shape[0] != data.labels.size()) {
    throw_shape_error("DataLoader", "dataset '" + data.name + "' has images " + shape_string(images_shape) +
                                        " but " + std::to_string(data.labels.size()) + " labels");
  }
  sample_shape_.assign(images_shape.begin() + 1, images_shape.end());
  sample_size_ = numel(sample_shape_);
  order_.resize(data.labels.size());
  if (options_.endless && batches_per_epoch() == 0) {
    throw std::invalid_argument("DataLoader: endless mode needs at least one batch per epoch, but dataset '" +
                                data.name + "' has " + std::to_string(data.labels.size()) +
                                " samples for batch_size " + std::to_string(options_.batch_size) +
                                (options_.drop_last ? " with drop_last" : ""));
  }
  start_epoch(0);
}

std::size_t DataLoader::batches_per_epoch() const {
  const std::size_t count = order_.size();
  const std::size_t full_batches = count / options_.batch_size;
  const bool partial = count % options_.batch_size != 0;
  return full_batches + (partial && !options_.drop_last ? 1 : 0);
}

void DataLoader::start_epoch(std::size_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  if (!options_.shuffle) return;
  generator_.seed(epoch_seed(options_.seed, epoch));
  for (std::size_t i = order_.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(generator_.below(i));
    std::swap(order_[i - 1], order_[j]);
  }
}

bool DataLoader::next(Batch& batch) {
  // The dataset is held by reference; a caller that resized it since would send us out of bounds.
  if (data_->labels.size() != order_.size() || data_->images.size() != order_.size() * sample_size_) {
    throw std::logic_error("DataLoader: dataset '" + data_->name + "' changed size after the loader was made");
  }
  std::size_t count = std::min(options_.batch_size, order_.size() - position_);
  if (count == 0 || (options_.drop_last && count < options_.batch_size)) {
    if (!options_.endless) return false;
    start_epoch(epoch_ + 1);  // the constructor made sure an epoch has a batch
    count = std::min(options_.batch_size, order_.size());
  }

  Shape batch_shape{count};
  batch_shape.insert(batch_shape.end(), sample_shape_.begin(), sample_shape_.end());
  if (shape_of(batch.images) != batch_shape) batch.images = empty(batch_shape);
  batch.labels.resize(count);

  const float* source = data_->images.data();
  float* destination = batch.images.data();
  const float mean = options_.mean;
  const float stddev = options_.stddev;
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t sample = order_[position_ + k];
    const float* in = source + sample * sample_size_;
    float* out = destination + k * sample_size_;
    for (std::size_t i = 0; i < sample_size_; ++i) out[i] = (in[i] - mean) / stddev;
    batch.labels[k] = data_->labels[sample];
  }
  position_ += count;
  return true;
}

}  // namespace stn
