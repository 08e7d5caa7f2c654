// The cost of the data-parallel step's communication alone: MPI_Allreduce (through
// stn::distributed::allreduce_sum) of one gradient buffer of each model's size, the ranks
// lined up by a one-value allreduce before every timed call, so that no rank's compute is
// counted as waiting. Run as `mpirun -np K bench/mpi_allreduce [FLOATS...]`; rank 0 prints one
// JSON line per size: {"floats", "bytes", "ranks", "microseconds" (median of 200)}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <stn/stn.h>

int main(int argc, char** argv) {
  stn::distributed::Session mpi(argc, argv);
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {105610, 105433, 1000000};  // CNN 28, ST-CNN Aff 28, 1M
  for (std::size_t floats : sizes) {
    std::vector<float> buffer(floats, 1.0f);
    std::vector<double> times;
    for (int repeat = 0; repeat < 220; ++repeat) {
      double line_up[1] = {0.0};
      stn::distributed::allreduce_sum(line_up);
      const auto start = std::chrono::steady_clock::now();
      stn::distributed::allreduce_sum(std::span<float>(buffer));
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (repeat >= 20) times.push_back(seconds);  // the first ones set up the connections
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    if (stn::distributed::rank() == 0)
      std::printf("{\"floats\": %zu, \"bytes\": %zu, \"ranks\": %d, \"microseconds\": %.1f}\n", floats,
                  floats * sizeof(float), stn::distributed::size(), 1e6 * times[times.size() / 2]);
  }
  return 0;
}
