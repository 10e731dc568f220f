// executors/process/pool_core.hpp — a process pool's parts, put together: the scheduler core
// (executors/remote/scheduler.hpp), one channel per lane (the transport, channel.hpp), the
// supervisor thread that owns the worker processes (supervisor.cpp), and the collecting of
// results (pool_core.cpp).
//
// Results are collected by whoever gets there first: a thread waiting on a future of this pool
// drains the result rings itself (no hand-off between threads on the hot path), and the
// collector thread drains them when nobody waits (detached tasks, continuations). A lane's
// result ring has one reader at a time: its `reading` flag.
//
// Lock order: lane.reading -> scheduler's mutex -> supervisor's command mutex. The supervisor
// thread alone owns processes; other threads ask it to stop one through request_stop().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crew/process_pool.hpp"
#include "executors/process/channel.hpp"
#include "executors/process/protocol.hpp"
#include "executors/remote/scheduler.hpp"
#include "ipc/doorbell.hpp"
#include "ipc/shared_region.hpp"
#include "ipc/unique_fd.hpp"

namespace crew::detail {

namespace process {

using clock = std::chrono::steady_clock;

/// One worker thread's lane: its channel (while a worker serves it) as the scheduler's port.
class lane_slot final : public remote::lane_port {
 public:
  std::size_t index = 0;
  std::size_t process = 0;
  /// Present while a worker serves the lane. Written by the supervisor with `reading` held;
  /// read by drainers with `reading` held, and by the scheduler (through this port) between
  /// lane_ready and settle_lane.
  std::optional<channel> chan;
  std::atomic_flag reading;
  /// The worker has been launched and has not yet said it is ready (set by the supervisor,
  /// cleared by the drainer that hands the lane to the scheduler).
  std::atomic<bool> starting{false};
  /// A worker is attached (cheap pre-check for drainers).
  std::atomic<bool> attached{false};
  /// Its worker broke the protocol: the lane is not read again until the next worker.
  std::atomic<bool> broken{false};
  /// Bumped for each worker the lane gets: stop requests name the worker they mean.
  std::atomic<std::uint64_t> generation{0};
  /// Fixed addresses in the pool region (valid for the pool's life, whoever the worker is).
  slot_control* control = nullptr;
  ipc::ring_header* results_header = nullptr;

  sent send(remote::task_record& record, std::uint32_t claim) override;
  bool send_exit() override { return chan->send_exit(); }
  bool cancel_claim(std::uint32_t claim) noexcept override { return chan->cancel_claim(claim); }
  [[nodiscard]] bool claim_started(std::uint32_t claim) const noexcept override {
    return chan->claim_started(claim);
  }
  [[nodiscard]] std::uint64_t running_seq() const noexcept override {
    return control->running_seq.load(std::memory_order_acquire);
  }
};

/// One worker process, as the supervisor thread sees it.
struct worker_process {
  enum class phase { down, starting, ready, exiting };
  std::size_t index = 0;
  phase state = phase::down;
  pid_t pid = -1;
  ipc::unique_fd pidfd;
  ipc::unique_fd stderr_fd;
  std::string stderr_tail;
  std::uint64_t generation = 0;
  clock::time_point launched{};
  clock::time_point restart_at{};  // when down: the next start attempt
  unsigned failed_starts = 0;      // consecutive, not counting those for want of a resource
  // Starts that failed for want of a resource (EMFILE, ENFILE, ENOMEM, EAGAIN) in a row, and
  // since when: retried until supervisor.cpp's transient_start_limit has passed.
  unsigned short_starts = 0;
  clock::time_point short_since{};
  std::string last_start_error;
  // Why it is being stopped, and for which task.
  remote::stop_reason reason = remote::stop_reason::none;
  std::uint64_t stopped_for = 0;
  std::size_t peak_memory = 0;  // over start_memory, when stopped for its memory
  // Resident bytes it started with (for a forked worker, the parent's pages it shares), which
  // memory_limit does not count; known once it is ready.
  std::size_t start_memory = 0;
  bool term_pending = false;
  clock::time_point term_sent{};
  // Per lane: the task being run, since when, and its timeout (0: none), for timeouts.
  std::vector<std::uint64_t> watched_seq;
  std::vector<clock::time_point> watched_since;
  std::vector<std::chrono::nanoseconds> watched_limit;
};

/// The pool whose results this thread delivers now (a drainer, or the supervisor thread): a
/// submission to that pool from here — a continuation — must not wait for room in its queue.
inline thread_local const process_pool_core* delivering_for = nullptr;

class delivering_scope {
 public:
  explicit delivering_scope(const process_pool_core* core) noexcept : saved_(delivering_for) {
    delivering_for = core;
  }
  delivering_scope(const delivering_scope&) = delete;
  delivering_scope& operator=(const delivering_scope&) = delete;
  ~delivering_scope() { delivering_for = saved_; }

 private:
  const process_pool_core* saved_;
};

}  // namespace process

class process_pool_core {
 public:
  /// `threads` lanes (threads) per worker process; options.workers processes.
  process_pool_core(process_pool_options options, std::size_t threads);
  ~process_pool_core();
  process_pool_core(const process_pool_core&) = delete;
  process_pool_core& operator=(const process_pool_core&) = delete;

  void start();
  std::uint64_t enqueue(submission job);
  bool cancel(std::uint64_t seq) noexcept { return scheduler_.cancel(seq); }
  bool drive(const state_base& state, const process::clock::time_point* deadline) noexcept;
  /// On the collector thread (a continuation waiting for the pool), collects results itself.
  void wait_idle();
  /// Throws std::logic_error on the collector thread: it would wait for itself.
  void shutdown(shutdown_mode mode);
  void close(shutdown_mode mode) { scheduler_.close(mode); }
  stop_report stop_now();
  void count_expired() noexcept { scheduler_.count_expired(); }
  [[nodiscard]] bool closed() const noexcept { return scheduler_.closed(); }
  [[nodiscard]] process_pool_stats stats() const;
  [[nodiscard]] std::vector<int> worker_pids() const;
  [[nodiscard]] std::size_t concurrency() const noexcept { return lanes_.size(); }
  [[nodiscard]] std::size_t inline_args_limit() const noexcept { return inline_args_limit_; }

 private:
  // collecting results (pool_core.cpp)
  bool drain_all() noexcept;
  bool drain_lane(process::lane_slot& lane) noexcept;
  bool drain_lane_held(process::lane_slot& lane) noexcept;
  [[nodiscard]] bool any_news() const noexcept;
  void collector_main();
  // Continuations of the tasks the supervisor ends run on the collector thread (or on a thread
  // that collects in drive()), so the supervisor never waits for user code.
  void hand_continuations(std::vector<deferred_continuations::entry> entries) noexcept;
  void run_handed_continuations() noexcept;
  [[nodiscard]] bool on_collector_thread() const noexcept;

  // the supervisor (supervisor.cpp)
  void supervisor_main();
  void request_stop(std::size_t lane, remote::stop_reason reason, std::uint64_t seq);
  void launch(process::worker_process& process, bool replacement);
  void handle_death(process::worker_process& process);
  /// `short_of_resource`: the start failed for want of descriptors, memory or processes, which
  /// may be back soon; such failures are retried for a while before they count.
  void after_start_failure(process::worker_process& process, const std::string& why,
                           bool short_of_resource = false);
  /// Why launching `process` threw (what the worker said, if it said anything); forgets its
  /// lanes' channels.
  std::string launch_failure(process::worker_process& process, const std::exception& e);
  void stop_process(process::worker_process& process, remote::stop_reason reason, std::uint64_t seq,
                    std::size_t lane, int signal);
  void supervise(process::clock::time_point now);
  void drain_stderr(process::worker_process& process);
  void run_commands();
  [[nodiscard]] int next_wake_ms(process::clock::time_point now) const;
  std::span<process::lane_slot> lanes_of(const process::worker_process& process) noexcept {
    return std::span{lanes_}.subspan(process.index * threads_, threads_);
  }

  const process_pool_options options_;
  const std::size_t threads_;
  const process::region_layout layout_;
  ipc::shared_region region_;
  ipc::doorbell* collector_bell_ = nullptr;
  std::vector<process::lane_slot> lanes_;
  std::size_t inline_args_limit_ = 0;
  remote::scheduler scheduler_;

  // Supervisor thread only.
  std::vector<process::worker_process> processes_;
  ipc::unique_fd epoll_;
  ipc::unique_fd wake_;  // eventfd: commands, shutdown
  process::clock::time_point stop_deadline_ = process::clock::time_point::max();

  // Commands to the supervisor.
  struct stop_command {
    std::size_t lane;
    std::uint64_t generation;
    remote::stop_reason reason;
    std::uint64_t seq;
  };
  std::mutex command_mu_;
  std::vector<stop_command> commands_;  // guarded by command_mu_
  std::atomic<bool> stopping_{false};   // shutdown: exits sent, no restarts without work
  std::atomic<bool> kill_all_{false};   // stop_now(): kill every worker at once

  // Start-up hand-shake with the constructor.
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  bool start_round_done_ = false;   // guarded by start_mu_
  std::exception_ptr start_error_;  // guarded by start_mu_: every first launch failed

  mutable std::mutex pids_mu_;
  std::vector<int> pids_;  // guarded by pids_mu_: live worker pids, by process index (-1: none)

  std::mutex handed_mu_;
  std::vector<deferred_continuations::entry> handed_;  // guarded by handed_mu_
  std::atomic<bool> handed_waiting_{false};            // handed_ is not empty

  std::atomic<int> drivers_{0};  // threads draining in drive(); the collector naps meanwhile
  std::atomic<bool> collector_stop_{false};
  std::mutex shutdown_mu_;
  bool shut_down_ = false;  // guarded by shutdown_mu_
  std::thread supervisor_;
  std::thread collector_;
};

}  // namespace crew::detail
