// executors/process/launch.hpp — starting worker processes: fork, spawn (fork + exec of this
// binary) and forkserver, and crew::init(), which an exec'd worker enters through.
#pragma once

#include <sys/types.h>

#include <string>

#include "crew/process_pool.hpp"
#include "executors/process/protocol.hpp"
#include "ipc/unique_fd.hpp"

namespace crew::detail::process {

struct launched_worker {
  pid_t pid = -1;
  ipc::unique_fd pidfd;
  ipc::unique_fd stderr_read;  ///< the worker's stderr, for the parent to tail and forward
};

/// Starts a worker for `config`. `region` is the parent's mapping of the pool region (a forked
/// worker uses it as is). Must be called from a thread that lives as long as the pool: workers
/// are bound to it with PR_SET_PDEATHSIG. Throws std::system_error naming the failed call.
launched_worker launch_worker(start_method method, std::byte* region, worker_config config);

/// Whether crew::init() ran in this process (spawn and forkserver need it).
bool initialized() noexcept;

/// Prints once per process a warning when a fork-start pool is made while other threads run.
void warn_if_threaded_fork();

/// Reaps a worker that is a child of this process, or asks the forkserver for its status.
/// Returns the raw wait status (as from waitpid); -1 when it cannot be known.
int reap_worker(start_method method, pid_t pid, int pidfd);

}  // namespace crew::detail::process
