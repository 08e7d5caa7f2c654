// Data-parallel training over MPI: K processes (ranks), each with the whole model, each
// computing the gradient of its share of every batch; the gradients are summed across ranks
// so that every rank takes the same optimizer step, the step one process would take on the
// whole batch.
//
//   int main(int argc, char** argv) {
//     stn::distributed::Session mpi(argc, argv);      // MPI only when started by mpirun
//     ... build the model (every rank the same way), then:
//     stn::distributed::broadcast_parameters(model);   // every rank starts from rank 0's
//     stn::distributed::GradientReducer reducer(model);
//     for (...) {
//       auto part = stn::distributed::share_of(batch_size);   // this rank's samples
//       ... forward and backward on samples [part.begin, part.end) ...
//       reducer.allreduce(float(part.size()) / batch_size);    // grad = the whole batch's
//       optimizer.step();
//     }
//   }
//   $ mpirun -np 2 ./my_program
//
// A process not started by an MPI launcher is one rank of one (rank 0, size 1) and never
// touches MPI, in a build with MPI or without; every function below then works on that one
// process (allreduce and broadcast change nothing). A build without MPI (Open MPI was not
// found, or -DSTN_MPI=OFF) refuses to start as one of several ranks, naming why.
//
// All communication is MPI (MPI_COMM_WORLD): collectives must be called by every rank in the
// same order, with the same sizes. A rank that fails should call abort(), which ends every
// rank, rather than return: the others would wait for it in their next collective.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stn/layers/module.h"

namespace stn::distributed {

// Whether this build has MPI.
bool compiled_with_mpi();

// The number of ranks an MPI launcher (mpirun / mpiexec of Open MPI or MPICH, srun) says this
// process is one of, from its environment; 0 when no launcher started it. Known before MPI
// starts, so that a build without MPI can refuse instead of running K copies of one job.
int launcher_size();

// Starts MPI for the life of the object (MPI_Init_thread; only the thread that made the
// Session may call the functions below) when an MPI launcher started this process, and ends
// it (MPI_Finalize) in the destructor; otherwise does nothing. One Session per process.
// Throws std::runtime_error when a launcher started this process as one of several ranks and
// the build has no MPI, or when MPI fails to start.
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  bool started_ = false;
};

int rank();    // this process's rank, 0..size()-1 (0 without MPI)
int size();    // the number of ranks (1 without MPI)
bool active(); // size() > 1: there is someone to talk to

// Rank `rank`'s contiguous share of `count` items (a batch's samples, a test set): the
// shares are balanced (sizes differ by at most one, larger first) and in rank order, so that
// rank 0's come first and the union is [0, count).
struct Share {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};
Share share_of(std::size_t count, int rank, int size);
inline Share share_of(std::size_t count) { return share_of(count, rank(), size()); }

// Sums `values` over all ranks, in place on every rank (MPI_Allreduce).
void allreduce_sum(std::span<double> values);
void allreduce_sum(std::span<float> values);
// Rank `root`'s values on every rank (MPI_Bcast).
void broadcast(std::span<float> values, int root = 0);
void broadcast(std::span<double> values, int root = 0);
void broadcast(std::string& bytes, int root = 0);  // resized on the receiving ranks

// Every rank's parameters set to rank `root`'s (the model must have the same parameters, in
// the same order and shapes, on every rank; a mismatch is a std::runtime_error on the rank
// that sees it). One MPI_Bcast of one buffer.
void broadcast_parameters(Module& module, int root = 0);

// A 64-bit digest of a module's parameter values (bits, in order); equal digests on every
// rank mean the ranks hold the same model.
std::uint64_t parameter_digest(const Module& module);
// How many ranks hold parameters that differ from rank `root`'s (by digest), on every rank:
// 0 when data-parallel training kept the ranks in step, as it should.
int ranks_differing_from(const Module& module, int root = 0);

// Sums a module's gradients over the ranks: after allreduce(weight), every rank's gradient of
// every parameter is sum over ranks r of weight_r * grad_r. Give each rank's share of the
// batch as its weight (samples_r / batch) and a mean loss per rank, and the result is the
// gradient of the mean loss over the whole batch. The gradients travel in one buffer (one
// MPI_Allreduce per step, after the backward: no overlap with it), allocated once. Parameters
// that need no gradient are left out. With one rank nothing is sent.
//
// Micro-batches (a share too big for one pass): after each one's backward, accumulate(weight)
// adds weight * grad to the buffer (the first call after an allreduce replaces it) and the
// caller zeroes the gradients; allreduce() then sums the buffers over the ranks and writes the
// result into the gradients. The sums are formed in the same order either way, so one process
// with K micro-batches and K ranks of one micro-batch each take the same step, bit for bit
// for K = 2 (and for any K whose reduction MPI happens to do in rank order).
class GradientReducer {
 public:
  explicit GradientReducer(const Module& module);
  void accumulate(float weight);
  void allreduce();
  void allreduce(float weight) {
    accumulate(weight);
    allreduce();
  }
  std::size_t values() const { return buffer_.size(); }  // floats per allreduce
  double seconds() const { return seconds_; }            // time spent in MPI_Allreduce so far

 private:
  std::vector<Parameter*> parameters_;
  std::vector<float> buffer_;
  bool empty_ = true;  // no accumulate() since the last allreduce()
  double seconds_ = 0.0;
};

// Ends every rank (MPI_Abort with `exit_code`: the launcher stops the others and exits
// non-zero), half a second after flushing stdout and stderr so that the launcher can pass on
// what this rank last printed; without MPI, std::exit(exit_code).
[[noreturn]] void abort(int exit_code);

}  // namespace stn::distributed
