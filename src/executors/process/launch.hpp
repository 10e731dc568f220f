// executors/process/launch.hpp — starting worker processes: fork, spawn (fork + exec of this
// binary) and forkserver (workers forked by a clean copy of this binary, exec'd on first use);
// and how an exec'd copy enters the worker or the server (before main, or at crew::init()).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "crew/process_pool.hpp"
#include "executors/process/protocol.hpp"
#include "ipc/unique_fd.hpp"

namespace crew::detail::process {

struct launched_worker {
  pid_t pid = -1;
  ipc::unique_fd pidfd;
  ipc::unique_fd stderr_read;  ///< the worker's stderr, for the parent to tail and forward
};

/// The worker was created but ended before it could be watched (an initializer that failed at
/// once, with the forkserver): a start failure like any other, not a failure to create one.
struct worker_ended_at_start : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Starts a worker for `config`. `region` is the parent's mapping of the pool region (a forked
/// worker uses it as is). Must be called from a thread that lives as long as the pool: workers
/// are bound to it with PR_SET_PDEATHSIG (forkserver workers are bound to the server, which
/// lives as long as this process). Each worker leads its own process group (pgid = pid).
/// With fork, warns on stderr when the fork is made while other threads run (rate-limited; see
/// docs/process_pool.md). Throws std::system_error naming the failed call, std::logic_error
/// when spawn or forkserver cannot be used here (see initialized()), worker_ended_at_start.
launched_worker launch_worker(start_method method, std::byte* region, worker_config config);

/// Whether spawn and forkserver can start workers in this process: crew's start-up entry is in
/// the executable (crew linked statically into it: exec'd workers start before main), or
/// crew::init() ran (they start there).
bool initialized() noexcept;

/// Does nothing; kept for source compatibility. The warning about forking a threaded process
/// is given by launch_worker at each such fork.
void warn_if_threaded_fork();

/// Starts one of crew's own service threads (a pool's manager, watcher or supervisor): a thread
/// that runs no user code and holds no lock a forked worker could need, and so does not count
/// as a thread that makes a fork unsafe. Use it instead of std::thread for such threads.
std::thread start_service_thread(std::function<void()> body);

/// Threads that could hold a lock a worker forked now by the calling thread would need: every
/// thread of the process but the caller and crew's service threads.
std::size_t fork_hazard_threads();

/// Forks made by launch_worker while fork_hazard_threads() was not zero (each is warned about,
/// at a limited rate). For tests and diagnostics.
std::uint64_t threaded_fork_count() noexcept;

/// Reaps a worker that is a child of this process, or asks the forkserver for its status.
/// Returns the raw wait status (as from waitpid); -1 when it cannot be known.
int reap_worker(start_method method, pid_t pid, int pidfd);

// --- entering an exec'd child (internal: startup.cpp and crew::init) -------------------------

/// Where an exec'd copy of the binary becomes a worker or the forkserver: before main, from
/// crew's start-up entry (`load`), or in crew::init() (`init`: when the parent itself called
/// crew::init, so that main runs up to it in every process, as before).
enum class entry_point { load, init };

/// Whether this process was exec'd by crew to become a worker or a forkserver at `at`.
bool child_requested(entry_point at) noexcept;

/// Becomes the worker or forkserver the environment asks for at `at`, and never returns; returns
/// at once when nothing is asked. Ends the process with a message if the request is malformed.
void enter_child(entry_point at);

}  // namespace crew::detail::process
