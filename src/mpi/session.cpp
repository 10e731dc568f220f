// crew::mpi_session: MPI's lifetime, and the serving loop of every rank but rank 0.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "crew/mpi_pool.hpp"
#include "mpi/protocol.hpp"
#include "mpi/runtime.hpp"

namespace crew::detail {
class mpi_pool_core;
}

namespace crew::detail::mpi {
namespace {

runtime*& live_runtime() noexcept {
  static runtime* live = nullptr;
  return live;
}

mpi_session*& current_session() noexcept {
  static mpi_session* live = nullptr;
  return live;
}

std::mutex& pool_mu() noexcept {
  static std::mutex mu;
  return mu;
}

runtime& state() {
  static runtime instance;
  return instance;
}

}  // namespace

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw std::runtime_error(std::string{call} + ": " +
                           std::string{text, static_cast<std::size_t>(length)});
}

runtime* current_runtime() noexcept {
  return live_runtime();
}

}  // namespace crew::detail::mpi

namespace crew::detail {

// One pool at a time: the ranks serve one pool at a time.
void attach_pool(mpi::runtime& runtime, mpi_pool_core* core) {
  std::lock_guard lock{mpi::pool_mu()};
  if (runtime.active_pool != nullptr) {
    throw std::logic_error(
        "crew::mpi_pool: another mpi_pool is alive; the ranks serve one pool at a time");
  }
  runtime.active_pool = core;
}

void detach_pool(mpi::runtime& runtime, mpi_pool_core* core) noexcept {
  std::lock_guard lock{mpi::pool_mu()};
  if (runtime.active_pool == core) runtime.active_pool = nullptr;
}

// Defined in pool.cpp's class; the session only needs to drain a pool it outlives.
void shutdown_active_pool(mpi_pool_core* core) noexcept;

}  // namespace crew::detail

namespace crew {

mpi_session::mpi_session(int& argc, char**& argv) {
  start(&argc, &argv);
}

mpi_session::mpi_session() {
  start(nullptr, nullptr);
}

void mpi_session::start(int* argc, char*** argv) {
  using namespace detail::mpi;
  if (current_session() != nullptr) {
    throw std::logic_error("crew::mpi_session: a session is already live");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = MPI_THREAD_SINGLE;
  if (initialized != 0) {
    MPI_Query_thread(&provided);
  } else {
    check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    owns_mpi_ = true;
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    throw std::runtime_error(
        "crew::mpi_session: this MPI library gives less than MPI_THREAD_SERIALIZED");
  }
  runtime& rt = state();
  if (argc != nullptr && argv != nullptr) {
    rt.argc = *argc;
    rt.argv = *argv;
  }
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  if (parent != MPI_COMM_NULL) {
    // Started by a pool's MPI_Comm_spawn: serve that pool, then leave.
    MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
    int code = 0;
    try {
      (void)serve(parent, 0, /*spawned=*/true);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crew mpi_pool: spawned rank: %s\n", e.what());
      code = 1;
    }
    MPI_Comm_disconnect(&parent);
    // This process never returns to the program, so nobody else would finalise MPI.
    MPI_Finalize();
    std::exit(code);
  }
  check(MPI_Comm_dup(MPI_COMM_WORLD, &rt.comm), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(rt.comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  rt.rank = rank_;
  rt.size = size_;
  if (rank_ != 0) {
    int code = 0;
    bool finalize = true;
    try {
      finalize = serve(rt.comm, 0, /*spawned=*/false);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crew mpi_pool: rank %d: %s\n", rank_, e.what());
      code = 1;
    }
    // This rank never returns to the program, so nobody else would finalise MPI. After a rank
    // of the job died (mpirun --enable-recovery), Open MPI 4.1's MPI_Finalize may wait for it
    // forever: leave without it then (docs/mpi.md).
    if (finalize) {
      MPI_Comm_free(&rt.comm);
      MPI_Finalize();
    }
    std::exit(code);
  }
  live_runtime() = &rt;
  current_session() = this;
}

mpi_session::~mpi_session() {
  using namespace detail::mpi;
  runtime& rt = state();
  detail::mpi_pool_core* live = nullptr;
  {
    std::lock_guard lock{pool_mu()};
    live = rt.active_pool;
  }
  if (live != nullptr) detail::shutdown_active_pool(live);
  control_message end{};
  end.op = control_op::end;
  end.threads = rt.rank_lost ? flag_skip_finalize : 0;
  for (int rank = 1; rank < size_; ++rank) {
    MPI_Send(&end, sizeof end, MPI_BYTE, rank, tag::control, rt.comm);
  }
  live_runtime() = nullptr;
  current_session() = nullptr;
  if (rt.rank_lost) {
    // Open MPI 4.1's MPI_Finalize may wait forever for the dead rank (docs/mpi.md).
    std::fputs("crew::mpi_session: a rank of the job died; MPI is left without MPI_Finalize\n",
               stderr);
    return;
  }
  MPI_Comm_free(&rt.comm);
  if (owns_mpi_) MPI_Finalize();
}

mpi_session* mpi_session::current() noexcept {
  return detail::mpi::current_session();
}

}  // namespace crew
