// crew/hybrid_pool.hpp — P worker processes × T threads each.
//
// The hybrid model: tasks are dealt to the threads of a few worker processes. Isolation is per
// process — a task that crashes takes down its own process, failing (`crashed`) the tasks that
// were running on that process's threads and no others; the process is replaced. Sharing is per
// thread — the threads of one worker share its memory (e.g. what an `initializer` loaded).
// Each worker gets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set to T, so that
// libraries inside tasks do not oversubscribe the machine.
//
// Same calls as every crew pool (crew::pool in crew/executor.hpp: submit<&fn>, submit(f) for a
// stateless f, detach, wait_idle, shutdown, closed, stats, and the algorithms). Thread-safety,
// blocking and lifetime: as process_pool (crew/process_pool.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>

#include "crew/process_pool.hpp"

namespace crew {

struct hybrid_pool_options {
  /// Threads per worker process (at least 1, at most 64). Default: 2, or 1 on a 1-core machine.
  std::size_t threads_per_process = std::min<std::size_t>(2, detail::hardware_workers());
  /// Worker processes (at least 1). Default: enough that processes × threads = cores.
  std::size_t processes = std::max<std::size_t>(
      1, detail::hardware_workers() / std::min<std::size_t>(2, detail::hardware_workers()));
  start_method start = start_method::forkserver;
  /// As process_pool_options; a timeout stops the whole process of the overdue task (its other
  /// running tasks are retried elsewhere, not failed), a memory limit applies to each process
  /// and fails every task running in it, recycling counts tasks per thread.
  std::chrono::milliseconds task_timeout{0};
  std::chrono::milliseconds kill_grace{200};
  std::size_t memory_limit = 0;
  std::size_t max_tasks_per_worker = 0;
  unsigned retries = 0;
  task_ref initializer{};
  std::size_t pipeline_depth = 0;
  std::size_t channel_bytes = std::size_t{1} << 20;
  std::chrono::milliseconds start_timeout{30'000};
  std::chrono::milliseconds stop_timeout{2'000};
  /// As process_pool_options: tasks queued and not yet sent to a worker thread, at most (0:
  /// unbounded), and what a submission does when they are reached.
  std::size_t max_queued = 0;
  queue_full on_full = queue_full::block;

  [[nodiscard]] process_pool_options to_process_options() const {
    process_pool_options out;
    out.workers = processes;
    out.start = start;
    out.task_timeout = task_timeout;
    out.kill_grace = kill_grace;
    out.memory_limit = memory_limit;
    out.max_tasks_per_worker = max_tasks_per_worker;
    out.retries = retries;
    out.initializer = initializer;
    out.pipeline_depth = pipeline_depth;
    out.channel_bytes = channel_bytes;
    out.start_timeout = start_timeout;
    out.stop_timeout = stop_timeout;
    out.max_queued = max_queued;
    out.on_full = on_full;
    return out;
  }
};

class hybrid_pool : public detail::remote_pool {
 public:
  hybrid_pool() : hybrid_pool(hybrid_pool_options{}) {}
  /// Throws std::invalid_argument for 0 processes, 0 threads or more than 64 threads.
  explicit hybrid_pool(const hybrid_pool_options& options);
};

static_assert(pool<hybrid_pool>);

}  // namespace crew
