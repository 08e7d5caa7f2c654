#include "stn/layers/distributed.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>

#if STN_WITH_MPI
#include <mpi.h>
#endif

namespace stn::distributed {

namespace {

int the_rank = 0;
int the_size = 1;

int environment_int(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < 0 || parsed > std::numeric_limits<int>::max()) return 0;
  return static_cast<int>(parsed);
}

#if STN_WITH_MPI
// MPI counts are ints: a larger buffer goes in pieces.
constexpr std::size_t kMaxChunk = static_cast<std::size_t>(std::numeric_limits<int>::max());

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(call) + " failed on rank " + std::to_string(the_rank) + ": " +
                           std::string(text, static_cast<std::size_t>(length)));
}

template <class T>
void allreduce_chunks(T* data, std::size_t count, MPI_Datatype type) {
  for (std::size_t done = 0; done < count; done += kMaxChunk) {
    const int n = static_cast<int>(std::min(kMaxChunk, count - done));
    check(MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
}

template <class T>
void broadcast_chunks(T* data, std::size_t count, MPI_Datatype type, int root) {
  for (std::size_t done = 0; done < count; done += kMaxChunk) {
    const int n = static_cast<int>(std::min(kMaxChunk, count - done));
    check(MPI_Bcast(data + done, n, type, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
}
#endif

}  // namespace

bool compiled_with_mpi() { return STN_WITH_MPI != 0; }

int launcher_size() {
  // Open MPI, MPICH / Intel MPI (Hydra's PMI), PMIx launchers, Slurm's srun.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"})
    if (const int n = environment_int(name)) return n;
  // Open MPI 4 sets PMIX_RANK but not always a size variable for PMIx.
  if (std::getenv("PMIX_RANK") != nullptr) return 1;
  return 0;
}

Session::Session(int& argc, char**& argv) {
  const int launched = launcher_size();
  if (launched == 0) return;
#if STN_WITH_MPI
  int provided = 0;
  // Only the main thread calls MPI (the data thread and OpenMP's teams never do).
  check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  started_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &the_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &the_size);
#else
  (void)argc, (void)argv;
  if (launched > 1)
    throw std::runtime_error("started by an MPI launcher as one of " + std::to_string(launched) +
                             " processes, but this build has no MPI (Open MPI was not found when it was configured, or "
                             "-DSTN_MPI=OFF): install openmpi-bin and libopenmpi-dev (scripts/setup.sh does) and "
                             "rebuild, or run one process without mpirun");
#endif
}

Session::~Session() {
#if STN_WITH_MPI
  if (started_) MPI_Finalize();
#endif
  the_rank = 0, the_size = 1;
}

int rank() { return the_rank; }
int size() { return the_size; }
bool active() { return the_size > 1; }

Share share_of(std::size_t count, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("share_of: rank " + std::to_string(rank) + " of " + std::to_string(size));
  const std::size_t k = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
  const std::size_t base = count / k, extra = count % k;
  const std::size_t begin = r * base + std::min(r, extra);
  return Share{begin, begin + base + (r < extra ? 1 : 0)};
}

void allreduce_sum(std::span<double> values) {
#if STN_WITH_MPI
  if (active()) allreduce_chunks(values.data(), values.size(), MPI_DOUBLE);
#endif
  (void)values;
}

void allreduce_sum(std::span<float> values) {
#if STN_WITH_MPI
  if (active()) allreduce_chunks(values.data(), values.size(), MPI_FLOAT);
#endif
  (void)values;
}

void broadcast(std::span<float> values, int root) {
#if STN_WITH_MPI
  if (active()) broadcast_chunks(values.data(), values.size(), MPI_FLOAT, root);
#endif
  (void)values, (void)root;
}

void broadcast(std::span<double> values, int root) {
#if STN_WITH_MPI
  if (active()) broadcast_chunks(values.data(), values.size(), MPI_DOUBLE, root);
#endif
  (void)values, (void)root;
}

void broadcast(std::string& bytes, int root) {
#if STN_WITH_MPI
  if (!active()) return;
  double length = static_cast<double>(bytes.size());  // exact below 2^53
  broadcast(std::span<double>(&length, 1), root);
  bytes.resize(static_cast<std::size_t>(length));
  broadcast_chunks(bytes.data(), bytes.size(), MPI_CHAR, root);
#endif
  (void)bytes, (void)root;
}

void broadcast_parameters(Module& module, int root) {
  if (!active()) return;
  const std::vector<Parameter*> parameters = module.parameters();
  // The shapes first: a rank with another model fails here, naming it, not in a garbled copy.
  std::vector<double> layout;
  for (const Parameter* p : parameters) layout.push_back(static_cast<double>(p->value.size()));
  std::vector<double> root_layout = layout;
  double count = static_cast<double>(layout.size());
  broadcast(std::span<double>(&count, 1), root);
  root_layout.resize(static_cast<std::size_t>(count));
  broadcast(std::span<double>(root_layout), root);
  if (root_layout != layout)
    throw std::runtime_error("broadcast_parameters: rank " + std::to_string(rank()) + "'s model has " +
                             std::to_string(layout.size()) + " parameter tensors, rank " + std::to_string(root) +
                             "'s " + std::to_string(root_layout.size()) + ", or their sizes differ");
  std::vector<float> buffer;
  for (const Parameter* p : parameters) buffer.insert(buffer.end(), p->value.data(), p->value.data() + p->value.size());
  broadcast(std::span<float>(buffer), root);
  const float* from = buffer.data();
  for (Parameter* p : parameters) {
    std::copy_n(from, p->value.size(), p->value.data());
    from += p->value.size();
  }
}

std::uint64_t parameter_digest(const Module& module) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a over the value bits
  for (const Parameter* p : module.parameters())
    for (std::size_t i = 0; i < p->value.size(); ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, p->value.data() + i, sizeof bits);
      hash = (hash ^ bits) * 0x100000001b3ULL;
    }
  return hash;
}

int ranks_differing_from(const Module& module, int root) {
  const std::uint64_t digest = parameter_digest(module);
  // Two exact halves: a double holds 53 bits, not 64.
  const double mine[2] = {static_cast<double>(digest >> 32), static_cast<double>(digest & 0xffffffffULL)};
  double roots[2] = {mine[0], mine[1]};
  broadcast(std::span<double>(roots), root);
  double differ = roots[0] != mine[0] || roots[1] != mine[1] ? 1.0 : 0.0;
  allreduce_sum(std::span<double>(&differ, 1));
  return static_cast<int>(differ);
}

GradientReducer::GradientReducer(const Module& module) {
  std::size_t total = 0;
  for (Parameter* p : module.parameters())
    if (p->requires_grad) {
      parameters_.push_back(p);
      total += p->value.size();
    }
  buffer_.resize(total);
}

void GradientReducer::accumulate(float weight) {
  float* to = buffer_.data();
  for (const Parameter* p : parameters_) {
    if (p->grad.size() != p->value.size())
      throw std::runtime_error("GradientReducer: parameter " + p->name + " has no gradient of its size");
    const float* grad = p->grad.data();
    if (empty_)
      for (std::size_t i = 0; i < p->grad.size(); ++i) to[i] = weight * grad[i];
    else
      for (std::size_t i = 0; i < p->grad.size(); ++i) to[i] += weight * grad[i];
    to += p->grad.size();
  }
  empty_ = false;
}

void GradientReducer::allreduce() {
  if (empty_) throw std::logic_error("GradientReducer::allreduce: nothing accumulated since the last one");
  const auto start = std::chrono::steady_clock::now();
  allreduce_sum(std::span<float>(buffer_));
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const float* from = buffer_.data();
  for (Parameter* p : parameters_) {
    std::copy_n(from, p->grad.size(), p->grad.data());
    from += p->grad.size();
  }
  empty_ = true;
}

void abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
#if STN_WITH_MPI
  if (active()) {
    // The launcher forwards a rank's output asynchronously and MPI_Abort ends the forwarding:
    // without a pause, the message saying why a rank failed is often lost (always, seen with
    // Open MPI 4.1 when mpirun's output goes to a file).
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
#endif
  std::exit(exit_code);
}

}  // namespace stn::distributed
