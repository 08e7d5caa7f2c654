#include "stn/framework/threads.h"

#include <omp.h>

#include <stdexcept>
#include <string>

namespace stn {

void set_num_threads(int threads) {
  if (threads < 1 || threads > kMaxNumThreads) {
    throw std::invalid_argument("stn::set_num_threads: the thread count must be between 1 and " +
                                std::to_string(kMaxNumThreads) + ", got " + std::to_string(threads));
  }
  omp_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace stn
