#include "experiments/presets.h"

#include <stdexcept>

namespace stn::cli {

std::vector<std::string> preset_names() { return {"none", "demo", "fast", "paper"}; }

TrainConfig preset_config(const std::string& preset) {
  TrainConfig c;
  c.preset = preset;
  if (preset == "none") return c;
  if (preset == "paper") {
    c.optimizer = "sgd";
    c.learning_rate = 0.01f;
    c.momentum = 0.9f;
    c.nesterov = false;
    c.batch = 256;
    c.iters = 150000;
    c.schedule = "step";
    c.step_every = 50000;
    c.eval_every = 10000;
    c.log_every = 500;
    return c;
  }
  if (preset == "fast") {
    // Measured on the 2-core machine: ~10k iterations of batch 128 fit in 30 minutes for the
    // slowest model (ST-CNN on 60x60 TC). SGD with Nesterov momentum and a cosine decay from a
    // higher rate converges in far fewer steps than the paper's step schedule; the
    // localisation network learns at a tenth of the rate, which keeps the transformers from
    // collapsing early while the classifier is still random.
    c.optimizer = "sgd";
    c.learning_rate = 0.02f;
    c.momentum = 0.9f;
    c.batch = 128;
    c.iters = 10000;
    c.schedule = "cosine";
    c.localisation_lr_scale = 0.1f;
    c.eval_every = 2000;
    c.log_every = 100;
    return c;
  }
  if (preset == "demo") {
    c.dataset = "rts";
    c.model = "st-cnn-aff";
    c.optimizer = "sgd";
    c.learning_rate = 0.02f;
    c.momentum = 0.9f;
    c.batch = 128;
    c.iters = 2000;
    c.schedule = "cosine";
    c.localisation_lr_scale = 0.1f;
    c.eval_every = 500;
    c.log_every = 50;
    return c;
  }
  throw std::invalid_argument("unknown preset '" + preset + "' (known: none, demo, fast, paper)");
}

}  // namespace stn::cli
