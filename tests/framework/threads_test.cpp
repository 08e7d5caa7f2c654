#include "stn/framework/threads.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <stdexcept>
#include <string>

namespace stn {
namespace {

// Restores the thread count a test changed, so the tests after it run as configured.
class ThreadCountScope {
 public:
  ThreadCountScope() : previous_(omp_get_max_threads()) {}
  ~ThreadCountScope() { omp_set_num_threads(previous_); }

 private:
  int previous_;
};

TEST(Threads, SetsTheCountParallelRegionsUse) {
  ThreadCountScope scope;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    EXPECT_EQ(num_threads(), threads);
    int team = 0;
#pragma omp parallel
    {
#pragma omp single
      team = omp_get_num_threads();
    }
    EXPECT_EQ(team, threads);
  }
}

TEST(Threads, RejectsCountsOutsideOneToTheMaximum) {
  ThreadCountScope scope;
  set_num_threads(2);
  for (int threads : {0, -3, kMaxNumThreads + 1}) {
    try {
      set_num_threads(threads);
      ADD_FAILURE() << threads << " accepted";
    } catch (const std::invalid_argument& error) {
      EXPECT_EQ(std::string(error.what()),
                "stn::set_num_threads: the thread count must be between 1 and 256, got " + std::to_string(threads));
    }
    EXPECT_EQ(num_threads(), 2) << "a refused count changed the setting";
  }
  set_num_threads(kMaxNumThreads);
  EXPECT_EQ(num_threads(), kMaxNumThreads);
}

}  // namespace
}  // namespace stn
