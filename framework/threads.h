// How many threads the engine's parallel ops use (conv2d, the GEMM, the sampler run over
// OpenMP). The count starts at OpenMP's default: OMP_NUM_THREADS, or else every core.
#pragma once

namespace stn {

// Each thread a parallel op starts gets a stack; tens of thousands of them crash the process.
constexpr int kMaxNumThreads = 256;

// Sets the thread count of the parallel ops run from the calling thread (OpenMP keeps the
// setting per thread: call it from the thread that trains). Results are bitwise
// reproducible for a fixed count, not across counts. Throws std::invalid_argument naming
// the value unless 1 <= threads <= kMaxNumThreads.
void set_num_threads(int threads);

// The thread count a parallel op started from the calling thread uses.
int num_threads();

}  // namespace stn
