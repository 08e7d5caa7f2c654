// The data API: MNIST from its IDX files, an endless DataLoader that trains by step count
// across epochs, and a second loader that walks the test set once for the evaluation.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <stn/stn.h>

int main() {
  const char* from_environment = std::getenv("STN_MNIST_DIR");
  const std::string directory = from_environment ? from_environment : "data/mnist";
  if (!std::filesystem::is_directory(directory)) {
    std::printf("skipped: no MNIST in %s (set STN_MNIST_DIR to the folder of its four IDX files)\n",
                directory.c_str());
    return 77;  // what the test suite counts as skipped
  }
  const stn::Dataset train = stn::load_mnist(directory, stn::Split::Train);  // [60000, 1, 28, 28] in [0, 1]
  const stn::Dataset test = stn::load_mnist(directory, stn::Split::Test);

  stn::Generator init(1);
  std::shared_ptr<stn::Module> model = stn::make_fcn({}, init, {.hidden_units = 64, .hidden_layers = 1});
  stn::SGD optimizer({{model->parameters()}}, {.learning_rate = 0.05f, .momentum = 0.9f});

  // Normalised with MNIST's mean and standard deviation; shuffled afresh every epoch, in an
  // order that depends on the seed and the epoch alone.
  stn::DataLoader batches(train, {.batch_size = 64, .endless = true, .seed = 5, .mean = 0.1307f, .stddev = 0.3081f});
  stn::Batch batch;
  stn::Tape tape;
  for (int step = 0; step < 1200; ++step) {
    batches.next(batch);  // after the epoch's last batch comes the next epoch's first
    stn::Var loss = stn::cross_entropy(model->forward(tape.input(batch.images)), batch.labels);
    tape.backward(loss);
    optimizer.step();
    optimizer.zero_grad();
    tape.clear();
  }
  std::printf("1200 steps of 64: now in epoch %zu, %zu samples into it\n", batches.epoch(), batches.position());

  model->eval();
  stn::DataLoader test_batches(test, {.batch_size = 1000, .shuffle = false, .mean = 0.1307f, .stddev = 0.3081f});
  std::size_t correct = 0;
  while (test_batches.next(batch)) {
    stn::NoGradScope no_grad(tape);
    const stn::Tensor& logits = model->forward(tape.input(batch.images)).value();  // [B, 10]
    for (std::size_t i = 0; i < batch.labels.size(); ++i) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < 10; ++c) best = logits(i, c) > logits(i, best) ? c : best;
      correct += best == static_cast<std::size_t>(batch.labels[i]);
    }
    tape.clear();
  }
  const double error = 100.0 * static_cast<double>(test.size() - correct) / static_cast<double>(test.size());
  std::printf("test error %.2f%% on %zu images\n", error, test.size());
  return error < 10.0 ? 0 : 1;
}
