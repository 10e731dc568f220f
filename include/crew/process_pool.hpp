// crew/process_pool.hpp — tasks run in a warm pool of worker processes.
//
// A process_pool accepts the same calls as a thread_pool (`submit<&fn>(args...)`, and every
// algorithm in crew/algorithm.hpp), but each task runs in a worker process. What that buys:
// a task that segfaults, aborts, hangs past `task_timeout`, grows past `memory_limit` or calls
// exit() fails alone, with an error on its own future; its worker is replaced, every other task
// completes, and nothing is left behind when the pool goes (workers also die with the parent,
// even on SIGKILL). Requests and results travel through shared memory, with no system call
// while both sides are awake.
//
// Tasks are functions known at compile time (submit<&fn>) or stateless callables
// (submit([](int x) { ... }, 7): captureless lambdas, empty function objects), which a worker
// builds for itself; their arguments and results are serialized with crew/codec.hpp. A worker runs
// only functions the binary registered, so a corrupt message can never make it call an arbitrary
// address.
//
// Thread-safety: every public member is safe to call from any thread, including from inside
// another pool's tasks. Blocking: submit never blocks on the workers (it queues) — unless
// max_queued is set and on_full is block, when a submission from outside the pool waits for room
// in the queue (one made while the pool delivers a result, e.g. from a continuation, never
// waits); wait_idle, shutdown and the destructor block until the work they wait for is done;
// close() and stop_now() never block. Lifetime: futures may outlive the pool; the destructor
// drains (runs every queued task) unless shutdown, close or stop_now said otherwise, and always
// joins every worker process before it returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/call.hpp"
#include "crew/codec.hpp"
#include "crew/detail/pool_calls.hpp"
#include "crew/detail/registry.hpp"
#include "crew/detail/remote_call.hpp"
#include "crew/detail/shared_state.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"
#include "crew/init.hpp"

namespace crew {

/// How worker processes are started (docs/process_pool.md compares them, with figures).
enum class start_method {
  fork,        ///< fork this process: workers share what it loaded, copy-on-write; risky once
               ///< other threads run (crew warns at each such fork); slower the larger it is
  spawn,       ///< exec this binary for each worker: a clean process, before main()
  forkserver,  ///< (default) fork workers from a clean copy of this binary, exec'd on first use
};

namespace detail {
inline std::size_t hardware_workers() noexcept {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}
}  // namespace detail

struct process_pool_options {
  /// Worker processes; at least 1 (std::invalid_argument otherwise).
  std::size_t workers = detail::hardware_workers();
  start_method start = start_method::forkserver;
  /// A task running longer is stopped (SIGTERM, then SIGKILL after kill_grace): timed_out.
  /// Zero: no limit.
  std::chrono::milliseconds task_timeout{0};
  std::chrono::milliseconds kill_grace{200};
  /// Resident memory (bytes) a worker may add to what it started with (before its initializer:
  /// for a forked worker, the parent's pages it shares); past it the worker is killed:
  /// out_of_memory, whose peak_memory() is the most it added. Zero: no limit. Checked by
  /// sampling, every 2 ms or so while tasks run. docs/process_pool.md, "How memory_limit counts".
  std::size_t memory_limit = 0;
  /// Recycle a worker after this many tasks (for leaky libraries). Zero: never.
  std::size_t max_tasks_per_worker = 0;
  /// Times a task whose worker died is tried again on a fresh worker. A task that kills
  /// retries + 1 workers fails as crashed and is marked poisoned().
  unsigned retries = 0;
  /// Runs once at the start of every worker: crew::task<&fn> for a `void fn()`.
  task_ref initializer{};
  /// Tasks sent ahead to each worker, so that it never waits for the parent between tasks.
  /// Zero: automatic — about 200 µs of work, measured as tasks complete (2 to 64 tasks).
  std::size_t pipeline_depth = 0;
  /// Bytes of each shared-memory ring (rounded up to a power of two; 4 KiB to 1 GiB, else
  /// std::invalid_argument). Messages larger than a quarter of it (or 64 KiB) travel in a memfd.
  std::size_t channel_bytes = std::size_t{1} << 20;
  /// A worker must be serving (started, initializer done) within this time, or it is stopped
  /// and counts as a failed start. Zero: no limit.
  std::chrono::milliseconds start_timeout{30'000};
  /// shutdown() and the destructor give workers this long to exit after their last task; past
  /// it they are killed.
  std::chrono::milliseconds stop_timeout{2'000};
  /// Tasks submitted and not yet sent to a worker, at most; 0: unbounded. (Each worker thread
  /// also holds up to pipeline_depth tasks sent ahead.)
  std::size_t max_queued = 0;
  /// What a submission does when max_queued tasks are queued: wait for room, or fail at once
  /// with error_kind::queue_full. A submission made while the pool delivers a result (a
  /// continuation on the pool's collector or supervisor thread) is never blocked or refused.
  queue_full on_full = queue_full::block;
};

/// pool_stats (crew/executor.hpp: workers, queued, running, completed, failed, cancelled, the
/// same on every pool) and what only pools of worker processes count. Here `workers` is the
/// worker threads with a live process (processes × threads when all are up), `queued` includes
/// tasks sent ahead to a worker that has not started them.
struct process_pool_stats : pool_stats {
  std::size_t stolen = 0;          ///< always 0: tasks are dealt, not stolen
  std::size_t restarts = 0;        ///< workers started to replace one that died or retired
  std::size_t crashes = 0;         ///< workers that died while running a task
  std::size_t timeouts = 0;        ///< workers stopped for a task past task_timeout
  std::size_t start_failures = 0;  ///< workers that died or were stopped before serving
  std::size_t rejected = 0;        ///< submissions refused with queue_full (on_full = fail)
  /// No worker could be started (e.g. the initializer always fails, or descriptors ran out for
  /// more than 5 s): queued and later tasks fail as worker_lost with the reason.
  bool broken = false;
};

namespace detail {

class process_pool_core;

/// A task's state on a process pool: cancelling a started task asks the pool to stop it, and a
/// thread waiting for it collects results itself instead of waiting for the pool's collector.
template <class R>
class remote_state final : public shared_state<R> {
 public:
  remote_state(std::shared_ptr<process_pool_core> core) noexcept : core_(std::move(core)) {}
  std::uint64_t seq = 0;

 private:
  bool cancel_running() noexcept override;
  bool drive_until(const std::chrono::steady_clock::time_point* deadline) const noexcept override;
  std::shared_ptr<process_pool_core> core_;
};

bool cancel_remote(process_pool_core& core, std::uint64_t seq) noexcept;
bool drive_remote(process_pool_core& core, const state_base& state,
                  const std::chrono::steady_clock::time_point* deadline) noexcept;

template <class R>
bool remote_state<R>::cancel_running() noexcept {
  return cancel_remote(*core_, seq);
}

template <class R>
bool remote_state<R>::drive_until(
    const std::chrono::steady_clock::time_point* deadline) const noexcept {
  return drive_remote(*core_, *this, deadline);
}

namespace process {
class payload;
}
struct payload_deleter {
  void operator()(process::payload* p) const noexcept;
};

struct submission {
  const task_entry* entry;
  state_base* state;  // the pool keeps a reference
  result_decoder decode;
  std::size_t inline_limit;                                  // largest arguments kept in memory
  std::vector<std::byte> args;                               // small arguments, encoded
  std::unique_ptr<process::payload, payload_deleter> large;  // large ones, encoded in a memfd
  const call_options* call = nullptr;                        // per-call options, if any
  outgoing_attachments attachments;  // descriptors that go along (crew::shared_array arguments)

  /// Room for `bytes` of encoded arguments: in memory for small ones, straight in a memfd (the
  /// one that will cross to the worker) for large ones, so they are copied once.
  std::span<std::byte> allocate(std::size_t bytes);
};

}  // namespace detail

namespace detail {

/// What process_pool and hybrid_pool share: everything but how they are built.
class remote_pool : public remote_calls<remote_pool> {
 public:
  remote_pool(const remote_pool&) = delete;
  remote_pool& operator=(const remote_pool&) = delete;
  /// Drains (like shutdown(drain)) unless shutdown() was called, then stops every worker.
  ~remote_pool();

  /// Runs Fn(args...) in a worker. Arguments are converted to Fn's parameter types and encoded
  /// now, so the caller may change or free them at once. Thread-safe; never blocks on workers.
  /// After shutdown the future holds pool_closed.
  template <auto Fn, class... A>
  auto submit(A&&... args) -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
    return submit_call<Fn>(nullptr, std::forward<A>(args)...);
  }

  /// Also, from detail::remote_calls (crew/detail/pool_calls.hpp):
  ///  - submit(f, args...) / detach(f, args...) for a stateless f (a captureless lambda or an
  ///    empty, default-constructible function object): the worker builds its own F{} and calls
  ///    it; only the arguments travel, converted to f's parameter types (a generic lambda: their
  ///    decayed types). A callable with state does not compile, with a message saying what to
  ///    write instead.
  ///  - detach<&fn>(args...): without a future; its failure is counted in stats().failed. False,
  ///    and the task never runs, when the pool refused it: it is shut down, broken (no worker
  ///    can start) or full (on_full = fail), or the arguments could not be encoded.
  ///  - with(options): per-call options (crew/call.hpp). The timeout is enforced like
  ///    task_timeout (the worker is stopped, the future holds timed_out) and counts from the
  ///    task's start; zero or less: the task never runs and its future holds timed_out at once.
  ///    The name replaces the function's in errors; retries as the pool's `retries`.
  using remote_calls::detach;
  using remote_calls::submit;

  /// Blocks until nothing is queued or running. Thread-safe.
  void wait_idle();

  /// Stops accepting tasks (later submits get pool_closed). drain: waits for every queued and
  /// running task; cancel_pending: queued tasks, and tasks sent ahead to a worker that has not
  /// started them, end as cancelled (they never run); running ones finish. Then the workers are
  /// asked to exit, and killed after stop_timeout. Blocks. Idempotent; safe from any number of
  /// threads at once (each returns when the pool is shut down).
  void shutdown(shutdown_mode mode = shutdown_mode::drain);

  /// Never blocks; safe from any thread, continuations included. Closes the pool as shutdown(mode)
  /// does and returns at once: later submissions (and blocked submitters) get pool_closed; with
  /// drain the queued tasks run in the background, with cancel_pending they end cancelled. The
  /// workers live until shutdown() or the destructor, which then only has to join them.
  /// concurrent.futures' shutdown(wait=False), multiprocessing's close().
  void close(shutdown_mode mode = shutdown_mode::drain);

  /// Never blocks; safe from any thread, continuations included. Stops every worker now: closes
  /// the pool, ends every queued task `cancelled` (it never runs) and every running one
  /// `cancelled` with the note that its worker was stopped, then has the supervisor kill every
  /// worker's process group with SIGKILL (no restarts). Every future the pool holds is resolved
  /// when it returns. The destructor (or shutdown) waits for the killed workers to be reaped.
  /// multiprocessing's terminate().
  stop_report stop_now();

 private:
  template <auto Fn, class... A>
  auto submit_call(const call_options* options, A&&... args)
      -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
    using R = std::decay_t<typename detail::task_traits<Fn>::result>;
    auto state = detail::make_state<detail::remote_state<R>>(core_);
    detail::submission job{&detail::registered_task<Fn>,
                           state.get(),
                           &detail::decode_result<R>,
                           inline_args_limit_,
                           {},
                           {},
                           options,
                           {}};
    const auto allocate = [&job](std::size_t bytes) { return job.allocate(bytes); };
    {
      const detail::sending_attachments with{&job.attachments};
      if (!detail::encode_arguments<Fn>(*state, options, allocate, std::forward<A>(args)...)) {
        return future<R>{std::move(state)};
      }
    }
    state->seq = enqueue(std::move(job));
    return future<R>{std::move(state)};
  }

 public:
  /// Whether shutdown() has begun (submissions are refused with pool_closed). Never blocks.
  [[nodiscard]] bool closed() const noexcept;

  [[nodiscard]] process_pool_stats stats() const;
  /// Tasks that run at once: worker processes × threads per process.
  [[nodiscard]] std::size_t concurrency() const noexcept;
  /// Pids of the live worker processes (for diagnostics and tests).
  [[nodiscard]] std::vector<int> worker_pids() const;

 protected:
  remote_pool(const process_pool_options& options, std::size_t threads_per_process);

 private:
  friend class remote_calls<remote_pool>;
  template <class R>
  static bool accepted(const future<R>& f) noexcept {
    return static_cast<const detail::remote_state<R>*>(f.state())->seq != 0;
  }
  std::uint64_t enqueue(detail::submission job);
  task_error expired_call(const call_options& options, std::string function) noexcept;

  std::shared_ptr<detail::process_pool_core> core_;
  std::size_t inline_args_limit_ = 0;
};

}  // namespace detail

/// Tasks run in worker processes, one task per process at a time.
class process_pool : public detail::remote_pool {
 public:
  process_pool() : process_pool(process_pool_options{}) {}
  explicit process_pool(const process_pool_options& options) : remote_pool(options, 1) {}
};

static_assert(pool<process_pool>);

}  // namespace crew
