// crew/auto_pool.hpp — an executor that chooses threads, processes or hybrid for you, and says
// what it chose and why.
//
//   auto pool = crew::auto_pool::for_task<&parse>(sample_files);  // measures parse (crew::advise)
//   std::cout << pool.report();                                    // the choice, with the numbers
//   auto results = crew::map<&parse>(pool, all_files);
//
// An auto_pool holds one of crew::thread_pool, crew::process_pool or crew::hybrid_pool, built
// from a crew::recommendation (crew/advise.hpp) with its worker count, and forwards the calls
// every crew pool accepts (crew::pool in crew/executor.hpp: submit, detach, wait_idle, shutdown,
// closed, stats, concurrency), so the algorithms in crew/algorithm.hpp run on it. MPI advice
// runs as processes on this one machine, and the reasons say so. Because the choice is made at
// run time, a task submitted to an auto_pool must suit every executor, as for a process_pool: a
// function (submit<&fn>) or a stateless callable (submit(f, args...): a captureless lambda or an
// empty function object), with serializable arguments and result (crew/codec.hpp) — whichever
// pool it holds, so that code that compiles keeps working when the choice changes.
//
// Thread-safety: as the pool it holds — every member may be called from any thread at once.
// Blocking: for_task blocks while it measures the task (advise_options::budget, plus a
// calibration of well under a second unless the costs are given); wait_idle, shutdown and the
// destructor block as the held pool's do; submit never blocks. Lifetime: neither copyable nor
// movable, like the pools (for_task's result initializes a variable directly); futures may
// outlive the pool; the destructor drains.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "crew/advise.hpp"
#include "crew/detail/pool_calls.hpp"
#include "crew/detail/registry.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"
#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "crew/thread_pool.hpp"

namespace crew {

struct auto_pool_options {
  /// Give process and hybrid pools the recommended timeout as their task_timeout. Off by
  /// default: the advice's timeout is for a submission of `choice().chunk` tasks, and an
  /// algorithm's automatic grain may put many more tasks in one submission.
  bool apply_timeout = false;
  /// Passed to process and hybrid pools (process_pool_options has the meaning of each).
  std::size_t memory_limit = 0;
  unsigned retries = 0;
  start_method start = start_method::forkserver;
  /// Passed to whichever pool is built: at most this many tasks queued (0: no bound), and what
  /// a submission does past it (thread_pool_options and process_pool_options say more).
  std::size_t max_queued = 0;
  queue_full on_full = queue_full::block;
};

class auto_pool : public detail::stateless_calls<auto_pool> {
 public:
  /// Builds the pool `choice` describes: threads → thread_pool(workers); processes →
  /// process_pool(workers); hybrid → hybrid_pool(workers processes × threads_per_worker threads,
  /// at most 64 each); mpi → process_pool on this machine. The stored choice() says what runs,
  /// with a reason added for every adjustment. Throws std::invalid_argument for 0 workers (or 0
  /// threads per worker) and what the pool's constructor throws (std::system_error).
  explicit auto_pool(recommendation choice, const auto_pool_options& options = {});

  /// Measures Fn on `samples` (crew::advise<Fn>) and builds the pool it recommends. Throws
  /// std::invalid_argument for empty samples.
  template <auto Fn, std::ranges::forward_range Range>
  [[nodiscard]] static auto_pool for_task(const Range& samples, const advise_options& advice = {},
                                          const auto_pool_options& options = {}) {
    return auto_pool(advise<Fn>(samples, advice), options);
  }

  auto_pool(const auto_pool&) = delete;
  auto_pool& operator=(const auto_pool&) = delete;
  /// Drains the held pool (runs every queued task) unless shutdown said otherwise.
  ~auto_pool();

  /// What runs and why: model (never mpi), workers, chunk, timeout, predicted speed-up, reasons.
  [[nodiscard]] const recommendation& choice() const noexcept { return choice_; }
  /// choice().model: threads, processes or hybrid.
  [[nodiscard]] execution_model model() const noexcept { return choice_.model; }
  /// describe(choice()): a few lines for a person.
  [[nodiscard]] std::string report() const;

  /// Tasks that run at once: threads, processes, or processes × threads.
  [[nodiscard]] std::size_t concurrency() const noexcept;

  /// Runs Fn(args...) on the held pool. Thread-safe; never blocks. After shutdown the future
  /// holds pool_closed.
  template <auto Fn, class... A>
  auto submit(A&&... args) -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
    if (auto* p = std::get_if<std::unique_ptr<thread_pool>>(&pool_))
      return (*p)->template submit<Fn>(std::forward<A>(args)...);
    if (auto* p = std::get_if<std::unique_ptr<process_pool>>(&pool_))
      return (*p)->template submit<Fn>(std::forward<A>(args)...);
    return std::get<std::unique_ptr<hybrid_pool>>(pool_)->template submit<Fn>(
        std::forward<A>(args)...);
  }

  /// submit(f, args...) and detach(f, args...) for a stateless f (a captureless lambda or an
  /// empty, default-constructible function object), from detail::stateless_calls, even when it
  /// holds a thread_pool: see above. A callable with state does not compile, with a message
  /// saying what to write instead.
  using stateless_calls::detach;
  using stateless_calls::submit;

  /// Runs Fn(args...) on the held pool without a future, as its detach does: false when the
  /// pool refused it (it is shut down, or its arguments could not be encoded).
  template <auto Fn, class... A>
  bool detach(A&&... args) {
    if (auto* p = std::get_if<std::unique_ptr<thread_pool>>(&pool_))
      return (*p)->template detach<Fn>(std::forward<A>(args)...);
    if (auto* p = std::get_if<std::unique_ptr<process_pool>>(&pool_))
      return (*p)->template detach<Fn>(std::forward<A>(args)...);
    return std::get<std::unique_ptr<hybrid_pool>>(pool_)->template detach<Fn>(
        std::forward<A>(args)...);
  }

  /// Blocks until nothing is queued or running. Thread-safe.
  void wait_idle();
  /// As the held pool's shutdown: stops accepting tasks, drains or cancels what is queued.
  void shutdown(shutdown_mode mode = shutdown_mode::drain);
  /// As the held pool's close(): shutdown without waiting. Never blocks.
  void close(shutdown_mode mode = shutdown_mode::drain);
  /// As the held pool's stop_now(): a process or hybrid pool kills its workers, a thread pool
  /// cancels what is queued and lets running tasks finish (the report says so). Never blocks.
  stop_report stop_now();

  /// Per-call options (crew/call.hpp), as the held pool takes them.
  [[nodiscard]] call_with<auto_pool> with(call_options options) {
    return call_with<auto_pool>{*this, std::move(options)};
  }
  /// What with(options).submit<Fn>(args...) calls.
  template <auto Fn, class... A>
  auto submit_with(const call_options& options, A&&... args)
      -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
    return std::visit(
        [&](auto& p) -> future<std::decay_t<typename detail::task_traits<Fn>::result>> {
          return p->template submit_with<Fn>(options, std::forward<A>(args)...);
        },
        pool_);
  }
  /// What with(options).detach<Fn>(args...) calls.
  template <auto Fn, class... A>
  bool detach_with(const call_options& options, A&&... args) {
    return std::visit(
        [&](auto& p) { return p->template detach_with<Fn>(options, std::forward<A>(args)...); },
        pool_);
  }
  /// Whether shutdown() has begun. Never blocks.
  [[nodiscard]] bool closed() const noexcept;
  /// The held pool's counters common to every pool; its own extras through threads(),
  /// processes() or hybrid().
  [[nodiscard]] pool_stats stats() const;

  /// The held pool, for what only it offers (its full stats(), worker_pids()); null if it is
  /// another.
  [[nodiscard]] thread_pool* threads() noexcept;
  [[nodiscard]] process_pool* processes() noexcept;
  [[nodiscard]] hybrid_pool* hybrid() noexcept;

 private:
  recommendation choice_;
  std::variant<std::unique_ptr<thread_pool>, std::unique_ptr<process_pool>,
               std::unique_ptr<hybrid_pool>>
      pool_;
};

static_assert(pool<auto_pool>);

}  // namespace crew
