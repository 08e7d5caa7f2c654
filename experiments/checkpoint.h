// Training checkpoints: everything needed to continue a run exactly.
//
// A checkpoint of iteration N is two files under RUN/checkpoints/:
//   step-NNNNNNNN.safetensors        the model's parameters by name (opens in any
//                                    safetensors reader: PyTorch, NumPy, ...)
//   step-NNNNNNNN.state.safetensors  the training state: the optimizer's tensors (momentum
//                                    buffers or Adam moments, named "<parameter>.<slot>")
//                                    and, in the metadata, the format ("stn-train-state",
//                                    version 1), the iteration, the optimizer's step count,
//                                    the training seconds so far, the state of the
//                                    default random generator (dropout masks) and the
//                                    metrics window open at that iteration (loss sum,
//                                    correct and samples since the last metrics line).
// The data position needs no state of its own: training batch b is a pure function of
// (seed, b), so the run seeks its stream to batch N.
// Both files are written atomically (temporary file, fsync, rename, directory fsync), the
// state first; a checkpoint counts only when both files load. The newest `keep` are kept.
#pragma once

#include <optional>
#include <string>

#include "stn/framework/optim/optimizer.h"
#include "stn/framework/random.h"
#include "stn/layers/module.h"

namespace stn::cli {

// The steps since the last metrics line, so that a resumed run's first line averages the
// same steps as an uninterrupted run's.
struct MetricsWindow {
  double loss_sum = 0.0;
  std::size_t correct = 0, samples = 0;
};

struct CheckpointState {
  std::size_t iteration = 0;
  double train_seconds = 0.0;
  std::optional<MetricsWindow> window;  // absent in checkpoints of older versions
};

// `model_generator` is the generator the model was built from (and that its dropout layers,
// if any, draw from): its state is part of the checkpoint.
void write_checkpoint(const std::string& run_dir, const Module& model, Optimizer& optimizer,
                      const Generator& model_generator, const CheckpointState& state, std::size_t keep);

// Loads the newest checkpoint that is valid into model, optimizer and model_generator. An unusable newer one (truncated, corrupt, mismatched) is reported on stderr
// and the previous one tried; so is one holding a NaN or an infinity. Returns nothing when
// there is no usable checkpoint.
std::optional<CheckpointState> load_newest_checkpoint(const std::string& run_dir, Module& model,
                                                      Optimizer& optimizer, Generator& model_generator);

}  // namespace stn::cli
