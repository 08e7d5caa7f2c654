#include "stn/layers/distributed.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "stn/framework/random.h"
#include "stn/layers/linear.h"
#include "stn/framework/ops.h"

namespace stn {
namespace {

TEST(Distributed, SharesAreBalancedContiguousAndInRankOrder) {
  for (std::size_t count : {0u, 1u, 7u, 64u, 100u})
    for (int size : {1, 2, 3, 8}) {
      std::size_t next = 0, smallest = count, largest = 0;
      for (int rank = 0; rank < size; ++rank) {
        const distributed::Share share = distributed::share_of(count, rank, size);
        EXPECT_EQ(share.begin, next) << count << " over " << size << ", rank " << rank;
        next = share.end;
        smallest = std::min(smallest, share.size());
        largest = std::max(largest, share.size());
      }
      EXPECT_EQ(next, count) << count << " over " << size;
      EXPECT_LE(largest - smallest, 1u) << count << " over " << size;
    }
  const distributed::Share first = distributed::share_of(10, 0, 3);
  EXPECT_EQ(first.size(), 4u);  // the larger shares come first
  EXPECT_THROW(distributed::share_of(10, 3, 3), std::invalid_argument);
  EXPECT_THROW(distributed::share_of(10, 0, 0), std::invalid_argument);
}

TEST(Distributed, OneProcessWithoutALauncherIsRankZeroOfOne) {
  unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMI_SIZE"), unsetenv("PMIX_SIZE"), unsetenv("SLURM_NTASKS"),
      unsetenv("PMIX_RANK");
  EXPECT_EQ(distributed::launcher_size(), 0);
  int argc = 1;
  char name[] = "test";
  char* args[] = {name, nullptr};
  char** argv = args;
  distributed::Session session(argc, argv);
  EXPECT_EQ(distributed::rank(), 0);
  EXPECT_EQ(distributed::size(), 1);
  EXPECT_FALSE(distributed::active());
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  EXPECT_EQ(distributed::launcher_size(), 4);
  if (!distributed::compiled_with_mpi()) {
    try {
      distributed::Session refused(argc, argv);
      ADD_FAILURE() << "a build without MPI started as one of 4 ranks";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("this build has no MPI"), std::string::npos) << e.what();
    }
  }
  unsetenv("OMPI_COMM_WORLD_SIZE");
}

// Micro-batches: weight_k * grad_k summed in order, then written back; one rank sends nothing.
TEST(Distributed, GradientReducerSumsWeightedMicroBatches) {
  Generator generator(3);
  Linear layer({.in = 3, .out = 2}, generator);
  distributed::GradientReducer reducer(layer);
  EXPECT_EQ(reducer.values(), 3u * 2u + 2u);
  auto gradient = [&](float scale) {
    layer.zero_grad();
    Tape tape;
    Var x = tape.input(full({1, 3}, scale));
    tape.backward(sum(layer.forward(x)));
  };
  gradient(1.0f);
  const Tensor first = layer.parameters()[0]->grad;
  reducer.accumulate(0.25f);
  gradient(2.0f);
  const Tensor second = layer.parameters()[0]->grad;
  reducer.accumulate(0.75f);
  reducer.allreduce();
  const Tensor& combined = layer.parameters()[0]->grad;
  for (std::size_t i = 0; i < combined.size(); ++i)
    EXPECT_EQ(combined.data()[i], 0.25f * first.data()[i] + 0.75f * second.data()[i]) << i;
  EXPECT_FLOAT_EQ(layer.parameters()[1]->grad.data()[0], 0.25f + 0.75f);  // d sum / d bias = 1 each time
  EXPECT_THROW(reducer.allreduce(), std::logic_error);  // nothing accumulated since
}

TEST(Distributed, ParameterDigestSeesEveryBit) {
  Generator generator(4);
  Linear a({.in = 4, .out = 3}, generator);
  const std::uint64_t before = distributed::parameter_digest(a);
  EXPECT_EQ(distributed::parameter_digest(a), before);
  float& value = a.parameters()[0]->value.data()[5];
  value = std::nextafter(value, 1.0f);
  EXPECT_NE(distributed::parameter_digest(a), before);
}

}  // namespace
}  // namespace stn
