// crew/thread_pool.hpp — a work-stealing pool of threads: crew's in-process executor.
//
// Purpose: run many small tasks on a fixed set of worker threads. Each worker owns a deque
// (LIFO for itself, FIFO for thieves); submissions from threads outside the pool go to one
// injection queue. Idle workers search briefly, then park on a futex; a submission wakes a parked
// worker only when no worker is already searching, so a busy pool makes no system calls.
//
// Waiting: a thread that waits on a task's future runs work meanwhile, but only work it may run
// safely. The policy (like oneTBB's task isolation, applied to every wait):
//   * A thread outside the pool that waits with get()/wait()/result() on a task that has not
//     started runs that task itself, right there, like TBB's task_group::wait(): a submit-then-
//     get round trip costs no thread hand-off. Only the awaited task, never another one; and
//     only on the thread that submitted to this pool last (it alone is known to keep the pool
//     alive). Timed waits (wait_for/wait_until) outside the pool never run the task.
//   * A pool worker whose task T waits (get, wait, result, wait_for, wait_until, crew::wait,
//     as_completed, when_all/when_any/then(...).get()) runs (1) the awaited task (or the tasks
//     such a combined future waits for), if nobody started it, and (2) tasks that T
//     submitted, directly or through tasks it submitted — never an unrelated task. So a task may
//     hold a lock across a wait on its own subtasks without its thread being made to run another
//     task that takes the same lock, and recursive fork-join (submit + get per call) never
//     deadlocks, even with 1 worker. A timed wait helps the same way until its deadline; it may
//     return later than the deadline by as long as the task it started last runs.
// A task must therefore not assume it runs on a worker (thread-locals, thread id). A task that
// waits on a future of one of its own ancestors can deadlock, as in any pool that runs work
// while waiting.
//
// Thread-safety: every member function may be called from any thread at the same time, unless
// its comment says otherwise; shutdown(), wait_idle() and the destructor too, from any number of
// threads at once. What blocks: wait_idle(), shutdown() and the destructor; nothing else does
// (submission takes a short internal lock when called from outside the pool).
//
// Lifetime: the destructor drains (runs every queued task, then joins the workers); calls to
// shutdown() or wait_idle() already in progress on other threads return normally. Futures may
// outlive the pool: they own their result. A submission after shutdown() or close() returns a
// future that holds error_kind::pool_closed; it never crashes or blocks.
//
// Stopping without waiting: close() closes the pool and returns at once (the workers finish in
// the background; the destructor joins them); stop_now() also cancels every queued task and
// returns at once — a running thread cannot be stopped, so running tasks finish, and its
// stop_report says how many still run.
//
// A bound on queued tasks (options.max_queued): a submission from outside the pool that finds
// that many tasks queued blocks until one leaves the queue (on_full = block) or fails with
// error_kind::queue_full (on_full = fail); close()/shutdown() wake blocked submitters with
// pool_closed. Submissions from the pool's own tasks are never blocked or refused (a task that
// blocked on its own pool's queue could wait forever).
//
// Errors: a task's exception never kills a worker; future::get() rethrows the task's own
// exception (whatever its type), future::result() gives task_error with error_kind::exception.
// shutdown(cancel_pending) ends tasks that never started with error_kind::cancelled, as every
// crew executor does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/call.hpp"
#include "crew/detail/thread_pool/task.hpp"
#include "crew/error.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"

namespace crew {

/// How to build a thread_pool.
struct thread_pool_options {
  /// Number of worker threads (default: std::thread::hardware_concurrency(), at least 1).
  /// 0 is rejected with std::invalid_argument.
  std::size_t workers = std::max(1U, std::thread::hardware_concurrency());
  /// How many rounds an idle worker scans the queues before it parks. Each round ends with a
  /// yield, so spinning never starves a thread that has real work on a busy machine.
  std::uint32_t spin_rounds = 32;
  /// Worker threads are named `<prefix><index>` (cut to 15 characters, the kernel's limit).
  std::string thread_name_prefix = "crew-worker-";
  /// Tasks submitted from outside the pool and not yet started, at most; 0: unbounded. Tasks
  /// submitted by the pool's own tasks are not counted (see on_full).
  std::size_t max_queued = 0;
  /// What a submission from outside the pool does when max_queued tasks are queued.
  queue_full on_full = queue_full::block;
};

/// A snapshot of a pool's counters: pool_stats (crew/executor.hpp, the same on every pool) and
/// the thread pool's own. Here `running` counts tasks executing on workers (a waiting task and
/// the tasks it helps both count) and on threads outside the pool that run a task they wait
/// for; `completed` and `failed` count tasks that ran on a worker (returned / threw);
/// `cancelled` tasks that never ran (cancelled while queued, or by shutdown).
struct thread_pool_stats : pool_stats {
  std::uint64_t stolen = 0;  ///< taken by a worker from another worker's deque
  /// Ran on a thread outside the pool that waited for it (see "Waiting" above), whatever its
  /// outcome; not counted in completed or failed.
  std::uint64_t inlined = 0;
  /// Futures failed timed_out by a per-call timeout (with(...)): the task itself ran on.
  std::uint64_t timed_out = 0;
  /// Submissions refused with queue_full (max_queued reached, on_full = fail).
  std::uint64_t rejected = 0;
};

namespace detail {
class pool_core;
}

class thread_pool {
 public:
  /// std::thread::hardware_concurrency() workers (1 if unknown). Blocks until they exist.
  thread_pool();
  /// `workers` threads; throws std::invalid_argument if workers == 0.
  explicit thread_pool(std::size_t workers);
  /// Throws std::invalid_argument when options.workers is 0 or absurd (> 4096).
  explicit thread_pool(thread_pool_options options);

  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// Drains: runs every queued task, then joins the workers (shutdown(drain)). Blocks. Safe while
  /// other threads are inside shutdown() or wait_idle() (they return normally); a call that
  /// starts after the destructor did is a use after destruction, as for any object.
  /// Must not run on one of this pool's own workers (it would join itself): it then terminates.
  ~thread_pool();

  /// Thread-safe, never blocks: the number of workers.
  [[nodiscard]] std::size_t concurrency() const noexcept;

  /// Thread-safe, never blocks. Runs fn(args...) on a worker; `Fn` is a function pointer, a
  /// function template specialization or a captureless lambda. The form every crew executor
  /// accepts. Arguments are decay-copied into the task, like std::async.
  template <auto Fn, class... A>
  auto submit(A&&... args) {
    return submit(detail::constant_fn<Fn>{}, std::forward<A>(args)...);
  }

  /// Thread-safe, never blocks. Runs f(args...) — or f(stop_token, args...) when f accepts a
  /// std::stop_token first; future::cancel() on a running task then requests a stop (and returns
  /// false: the task may still finish normally). f may be any callable, member function pointers
  /// included (std::invoke). After shutdown the future holds error_kind::pool_closed.
  template <class F, class... A>
  requires std::is_invocable_v < std::decay_t<F>
  &, std::decay_t<A>... > || detail::takes_stop_token_v<std::decay_t<F>, std::decay_t<A>...>
                                 future<detail::task_result_t<F, A...>> submit(F&& f, A&&... args) {
    using result = detail::task_result_t<F, A...>;
    using state = detail::task_state<result, std::decay_t<F>, std::decay_t<A>...>;
    auto* task = new state(std::forward<F>(f), std::forward<A>(args)...);
    future<result> out{detail::state_ptr<detail::shared_state<result>>{task}};
    submit_node(task);
    return out;
  }

  /// Per-call options (crew/call.hpp): pool.with({.timeout = 1s, .name = "x"}).submit<&fn>(...)
  /// or .submit(callable, ...). A running thread cannot be stopped: at the timeout the future
  /// fails timed_out (its message says so), the task's std::stop_token — if it takes one — is
  /// asked to stop, and the task runs on, its result dropped. The timeout counts from the task's
  /// start. A thread outside the pool that waits for a timed task never runs it itself (it could
  /// not return at the deadline); a task of this pool that waits for one may (fork-join must not
  /// deadlock), and its wait then returns when the task ends — with timed_out if it overran.
  /// Zero or less: the future holds timed_out at once and the task never runs. `retries` is
  /// accepted and has no effect: a thread cannot die alone.
  [[nodiscard]] call_with<thread_pool> with(call_options options) {
    return call_with<thread_pool>{*this, std::move(options)};
  }

  /// What with(options).submit<Fn>(args...) calls.
  template <auto Fn, class... A>
  auto submit_with(const call_options& options, A&&... args) {
    return submit_with(options, detail::constant_fn<Fn>{}, std::forward<A>(args)...);
  }

  /// What with(options).submit(f, args...) calls.
  template <class F, class... A>
  requires std::is_invocable_v < std::decay_t<F>
  &, std::decay_t<A>... > ||
         detail::takes_stop_token_v<std::decay_t<F>, std::decay_t<A>...>
             future<detail::task_result_t<F, A...>> submit_with(const call_options& options, F&& f,
                                                                A&&... args) {
    bool accepted = false;
    return submit_call(options, accepted, std::forward<F>(f), std::forward<A>(args)...);
  }

  /// What with(options).detach<Fn>(args...) calls: false when the task will never run (the pool
  /// is closed or full, or the timeout is zero or less).
  template <auto Fn, class... A>
  bool detach_with(const call_options& options, A&&... args) {
    if (!options.timeout && options.name.empty()) return detach<Fn>(std::forward<A>(args)...);
    bool accepted = false;
    (void)submit_call(options, accepted, detail::constant_fn<Fn>{}, std::forward<A>(args)...);
    return accepted;
  }

  /// Thread-safe, never blocks. Like submit() without a future: returns false (and drops the
  /// task) after shutdown. An exception thrown by a detached task is counted in stats().failed
  /// and otherwise ignored.
  template <auto Fn, class... A>
  bool detach(A&&... args) {
    return detach(detail::constant_fn<Fn>{}, std::forward<A>(args)...);
  }
  template <class F, class... A>
  bool detach(F&& f, A&&... args) {
    using task = detail::detached_task<std::decay_t<F>, std::decay_t<A>...>;
    auto* node = new task(std::forward<F>(f), std::forward<A>(args)...);
    return submit_node(node);
  }

  /// Thread-safe, never blocks. Submits `count` tasks f(0) ... f(count - 1) (a copy of f each)
  /// under one lock and one wake-up; returns their futures in index order.
  template <class F>
  auto submit_bulk(std::size_t count, const F& f)
      -> std::vector<future<detail::task_result_t<F, std::size_t>>> {
    using result = detail::task_result_t<F, std::size_t>;
    using state = detail::task_state<result, F, std::size_t>;
    std::vector<future<result>> out;
    std::vector<detail::task_node*> nodes;
    out.reserve(count);
    nodes.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      auto* task = new state(f, i);
      out.emplace_back(detail::state_ptr<detail::shared_state<result>>{task});
      nodes.push_back(task);
    }
    submit_nodes(nodes);
    return out;
  }

  /// Thread-safe, never blocks. Like submit_bulk() without futures; false after shutdown.
  template <class F>
  bool detach_bulk(std::size_t count, const F& f) {
    std::vector<detail::task_node*> nodes;
    nodes.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      nodes.push_back(new detail::detached_task<F, std::size_t>(f, i));
    }
    return submit_nodes(nodes);
  }

  /// Thread-safe, from any number of threads at once; blocks until no task is queued or running,
  /// on a worker or on a thread outside the pool that runs a task it waits for (a snapshot:
  /// tasks submitted concurrently may start right after it returns). Returns at once on a pool
  /// that is shut down. Throws std::logic_error when called from one of this pool's own workers,
  /// where it could never return.
  void wait_idle();

  /// Thread-safe, from any number of threads at once; blocks. Stops accepting submissions from
  /// outside the pool (they get pool_closed), then either runs everything queued (drain; running
  /// tasks may still submit subtasks) or ends every task that has not started with
  /// error_kind::cancelled (cancel_pending; such a task never runs, running tasks finish, and
  /// their new submissions get pool_closed), and joins the workers. Every call returns once the
  /// workers are joined; a cancel_pending call made while a drain is in progress still cancels
  /// what is queued. Throws std::logic_error when called from one of this pool's own workers.
  void shutdown(shutdown_mode mode = shutdown_mode::drain);

  /// Thread-safe, never blocks; callable from the pool's own tasks. Closes the pool like
  /// shutdown(mode) and returns at once: later submissions get pool_closed, blocked submitters
  /// wake with pool_closed; drain lets every queued task run in the background, cancel_pending
  /// cancels them (as shutdown does). The workers are joined by shutdown() or the destructor.
  /// concurrent.futures' shutdown(wait=False) and multiprocessing's close().
  void close(shutdown_mode mode = shutdown_mode::drain);

  /// Thread-safe, never blocks; callable from the pool's own tasks. Stops the pool now: closes
  /// it, and every task that has not started ends `cancelled` (it never runs). A thread cannot be
  /// killed, so tasks running now finish and keep their own results: the report counts them in
  /// still_running (stopped is always 0 here). Their new submissions get pool_closed. The
  /// destructor then joins the workers once those tasks end.
  stop_report stop_now();

  /// Thread-safe, never blocks: whether shutdown(), close() or stop_now() has begun.
  [[nodiscard]] bool closed() const noexcept;

  /// Thread-safe, never blocks: a snapshot of the counters.
  [[nodiscard]] thread_pool_stats stats() const noexcept;

 private:
  // Queue a node; when the pool is closed (or queuing fails) the node is discarded with
  // pool_closed and the result is false. Never throws.
  bool submit_node(detail::task_node* task) noexcept;
  bool submit_nodes(const std::vector<detail::task_node*>& tasks) noexcept;
  // The error of a call whose timeout is zero or less (counted in stats().timed_out).
  task_error expired_call(const call_options& options) noexcept;
  // submit_with, saying whether the pool took the task.
  template <class F, class... A>
  future<detail::task_result_t<F, A...>> submit_call(const call_options& options, bool& accepted,
                                                     F&& f, A&&... args) {
    using result = detail::task_result_t<F, A...>;
    if (!options.timeout && options.name.empty()) {
      using state = detail::task_state<result, std::decay_t<F>, std::decay_t<A>...>;
      auto* task = new state(std::forward<F>(f), std::forward<A>(args)...);
      future<result> out{detail::state_ptr<detail::shared_state<result>>{task}};
      accepted = submit_node(task);
      return out;
    }
    if (options.timeout && options.timeout->count() <= 0) {
      return make_failed_future<result>(expired_call(options));
    }
    using call = detail::watched_call<std::decay_t<F>>;
    auto watch = std::make_unique<detail::call_watch>();
    detail::call_watch* w = watch.get();
    w->name = options.name;
    w->timeout = options.timeout.value_or(std::chrono::nanoseconds{0});
    w->pool = core_.get();
    using state = detail::task_state<result, call, std::decay_t<A>...>;
    auto* task = new state(call{std::forward<F>(f), std::move(watch)}, std::forward<A>(args)...);
    w->state = task;
    // A waiter running it itself could not return at the deadline: only workers run it.
    task->pool_only = w->timeout.count() > 0;
    future<result> out{detail::state_ptr<detail::shared_state<result>>{task}};
    accepted = submit_node(task);
    return out;
  }

  std::shared_ptr<detail::pool_core> core_;
};

static_assert(pool<thread_pool>);

}  // namespace crew
