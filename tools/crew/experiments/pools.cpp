#include "experiments/pools.hpp"

namespace crew::lab::pools {
namespace {

series not_yet(std::string name, const char* part, std::string group = {}, double x = 0,
               std::string unit = "s") {
  return absent(
      std::move(name), series_state::not_built,
      std::string(part) + " is not built yet; its figures join this experiment when it lands",
      std::move(group), x, std::move(unit));
}

}  // namespace

series thread_pool_startup(const config&) {
  return not_yet("crew thread_pool start-up to first result", "crew::thread_pool");
}

series process_pool_startup(const config&, std::string_view start_method) {
  return not_yet("crew process_pool start-up to first result (" + std::string(start_method) + ")",
                 "crew::process_pool");
}

series shm_ring_round_trip(const config&, std::size_t bytes) {
  return not_yet("processes: crew shared-memory ring", "crew's shared-memory ring",
                 "processes: crew ring", static_cast<double>(bytes));
}

series mpi_round_trip(const config&, std::size_t bytes) {
  return not_yet("MPI ranks", "crew's mpi_pool", "MPI", static_cast<double>(bytes));
}

series thread_pool_cpu(const config&, unsigned workers, unsigned, std::uint64_t) {
  return not_yet("crew thread_pool", "crew::thread_pool", "crew thread_pool", workers, "x");
}

series process_pool_cpu(const config&, unsigned workers, unsigned, std::uint64_t) {
  return not_yet("crew process_pool", "crew::process_pool", "crew process_pool", workers, "x");
}

series hybrid_pool_cpu(const config&, unsigned workers, unsigned, std::uint64_t) {
  return not_yet("crew hybrid_pool", "crew::hybrid_pool", "crew hybrid_pool", workers, "x");
}

series thread_pool_sleep(const config&, unsigned workers, unsigned, double) {
  return not_yet("crew thread_pool", "crew::thread_pool", "crew thread_pool", workers, "tasks/s");
}

series process_pool_sleep(const config&, unsigned workers, unsigned, double) {
  return not_yet("crew process_pool", "crew::process_pool", "crew process_pool", workers,
                 "tasks/s");
}

series process_pool_shared_buffer(const config&, unsigned, unsigned, std::size_t) {
  return not_yet("processes, zero-copy shared buffer", "crew's shared buffer");
}

series thread_pool_fault(const config&, unsigned, unsigned) {
  return not_yet("crew thread_pool: tasks completed", "crew::thread_pool", {}, 0, "count");
}

series process_pool_fault(const config&, unsigned, unsigned) {
  return not_yet("crew process_pool: tasks completed", "crew::process_pool", {}, 0, "count");
}

}  // namespace crew::lab::pools
