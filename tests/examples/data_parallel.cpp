// Data-parallel training with stn::distributed: run it as `mpirun -np K ./data_parallel` (or
// alone, as one rank of one). Every rank makes the same global batch of 2-D points, trains on
// its own share of it, and the gradients are summed across the ranks before every step, so
// all ranks take the step one process would take on the whole batch.
#include <cstdio>

#include <stn/stn.h>

int main(int argc, char** argv) {
  stn::distributed::Session mpi(argc, argv);  // MPI only when a launcher started us
  const int rank = stn::distributed::rank(), ranks = stn::distributed::size();

  stn::Generator init(42);
  stn::Sequential model;
  model.add("hidden", std::make_shared<stn::Linear>(stn::LinearOptions{.in = 2, .out = 32}, init));
  model.add("relu", std::make_shared<stn::ReLU>());
  model.add("output", std::make_shared<stn::Linear>(stn::LinearOptions{.in = 32, .out = 4}, init));
  stn::distributed::broadcast_parameters(model);  // every rank starts from rank 0's weights
  stn::distributed::GradientReducer reducer(model);
  stn::SGD optimizer({{model.parameters()}}, {.learning_rate = 0.1f, .momentum = 0.9f});

  const std::size_t batch = 64;
  const stn::distributed::Share mine = stn::distributed::share_of(batch);  // this rank's samples
  stn::Generator data(7);  // the same on every rank: the same global batches
  stn::Tape tape;
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    stn::Tensor points = stn::empty({mine.size(), 2});
    std::vector<std::int32_t> labels(mine.size());
    for (std::size_t i = 0; i < batch; ++i) {
      const float x = data.uniform(-1, 1), y = data.uniform(-1, 1);
      if (i < mine.begin || i >= mine.end) continue;  // another rank's sample
      points(i - mine.begin, 0) = x;
      points(i - mine.begin, 1) = y;
      labels[i - mine.begin] = (x > 0) + 2 * (y > 0);
    }
    stn::Var loss = stn::cross_entropy(model(tape.input(points)), labels);  // mean over my share
    tape.backward(loss);
    reducer.allreduce(static_cast<float>(mine.size()) / batch);  // now the whole batch's gradient
    optimizer.step();
    optimizer.zero_grad();
    double loss_sum[1] = {loss.value()() * static_cast<double>(mine.size())};
    stn::distributed::allreduce_sum(loss_sum);  // the whole batch's loss, for the printout
    last = loss_sum[0] / batch;
    if (step == 0) first = last;
    if (rank == 0 && step % 100 == 0) std::printf("step %3d  loss %.4f\n", step, last);
    tape.clear();
  }
  const int differ = stn::distributed::ranks_differing_from(model);  // 0: the ranks stayed in step
  if (rank == 0)
    std::printf("%d rank%s, loss %.4f -> %.4f, %s\n", ranks, ranks == 1 ? "" : "s", first, last,
                differ == 0 ? "the same weights on every rank" : "the ranks' weights differ");
  return last < 0.5 * first && differ == 0 ? 0 : 1;
}
