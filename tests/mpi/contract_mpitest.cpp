// The executor contract (tests/contract/executor_contract_test.cpp), run over mpi_pool. The
// contract's own file is compiled here unchanged; only its list of executors is replaced, since
// under mpirun only the MPI pool belongs in this program (forking a process pool inside an MPI
// rank is not supported by Open MPI).
#include <gtest/gtest.h>

#include <memory>

#include "crew/mpi_pool.hpp"

namespace {

template <class Pool>
struct maker;

// A contract pool of `workers` task threads out of the job's serving ranks: one rank per worker
// while there are ranks, then several threads per rank.
template <>
struct maker<crew::mpi_pool> {
  static auto make(std::size_t workers) {
    const auto ranks = static_cast<std::size_t>(crew::mpi_session::current()->size() - 1);
    crew::mpi_pool_options options;
    options.ranks = std::min(workers, ranks);
    options.threads_per_rank = workers / options.ranks;
    return std::make_unique<crew::mpi_pool>(options);
  }
};

using mpi_contract_executors = ::testing::Types<crew::mpi_pool>;

}  // namespace

// Swap the contract's executor list for the MPI pool.
#undef TYPED_TEST_SUITE
#define TYPED_TEST_SUITE(CaseName, Types, ...)                                                    \
  typedef ::testing::internal::GenerateTypeList<mpi_contract_executors>::type GTEST_TYPE_PARAMS_( \
      CaseName);                                                                                  \
  typedef ::testing::internal::NameGeneratorSelector<>::type GTEST_NAME_GENERATOR_(CaseName)

#include "contract/executor_contract_test.cpp"
