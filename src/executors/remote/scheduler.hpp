// executors/remote/scheduler.hpp — the scheduler core of the pools whose tasks run in other
// processes: what is queued, what each lane (one worker thread) holds, pipelining, retries and
// quarantine, cancellation, statistics and shutdown.
//
// It knows tasks, not processes: a lane's transport is a lane_port, and process lifetimes
// reach it as events (lane_ready, settle_lane). See docs/remote_pools.md for a task's way
// through the scheduler, the transport and the supervisor.
//
// Locks: one mutex, mu_, guards everything below it. It is never held while a future is
// fulfilled (a continuation may submit to this pool), while a process is started or waited
// for, or while a result is decoded. Every path that ends tasks under mu_ collects them in a
// completion list and fulfils them after mu_ is released.
//
// Thread-safety: every public member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crew/error.hpp"
#include "crew/executor.hpp"
#include "crew/process_pool.hpp"

namespace crew::detail::remote {

/// One submitted task, owned by the scheduler from enqueue to completion.
struct task_record {
  task_record() = default;
  task_record(const task_record&) = delete;
  task_record& operator=(const task_record&) = delete;
  ~task_record() {
    if (timed != nullptr) timed->fetch_sub(1, std::memory_order_relaxed);
  }

  std::uint64_t seq = 0;
  const task_entry* entry = nullptr;
  state_ptr<state_base> state;
  result_decoder decode = nullptr;
  std::vector<std::byte> args;                               // small arguments, encoded
  std::unique_ptr<process::payload, payload_deleter> large;  // large ones, in a memfd
  outgoing_attachments attachments;  // descriptors sent with it (kept open until it ends)
  unsigned deaths = 0;               // workers that died running it
  std::uint32_t claim = 0;           // claim word of its current send
  std::chrono::steady_clock::time_point sent_at{};
  bool cancel_requested = false;
  // Per-call options (crew/call.hpp).
  std::string call_name;                      // empty: the function's name
  std::chrono::nanoseconds timeout{0};        // 0: the pool's task_timeout
  std::optional<unsigned> retries;            // unset: the pool's retries
  std::atomic<std::size_t>* timed = nullptr;  // the scheduler's count of timed tasks, if counted

  [[nodiscard]] std::string name() const {
    return call_name.empty() ? std::string{entry->name} : call_name;
  }
};
using record_ptr = std::unique_ptr<task_record>;

/// A lane's transport, as the scheduler uses it (always under the scheduler's lock).
class lane_port {
 public:
  enum class sent { ok, full, gone };
  /// Sends `record` with claim word `claim`. gone: the lane cannot take it (its worker died or
  /// broke the protocol; the port has asked for the worker to be stopped if needed).
  virtual sent send(task_record& record, std::uint32_t claim) = 0;
  /// Asks the worker thread to exit when done with what it holds. False: try again later.
  virtual bool send_exit() = 0;
  /// Claim word: queued -> cancelled. False when the worker started the task first.
  virtual bool cancel_claim(std::uint32_t claim) noexcept = 0;
  /// Whether the worker started the request with this claim word.
  [[nodiscard]] virtual bool claim_started(std::uint32_t claim) const noexcept = 0;
  /// The seq of the task the worker runs now, 0 between tasks.
  [[nodiscard]] virtual std::uint64_t running_seq() const noexcept = 0;

 protected:
  ~lane_port() = default;
};

/// Why a worker was stopped on purpose; the supervisor records it, settle_lane reads it.
enum class stop_reason { none, timed_out, out_of_memory, cancelled, protocol, retiring, shutdown };

/// What the supervisor knows about the end of the worker that served a lane.
struct lane_end {
  task_error::details base;                // pid, signal or exit code, stderr tail
  stop_reason reason = stop_reason::none;  // why it was stopped, if on purpose
  std::uint64_t stopped_for = 0;           // the task it was stopped for (this lane's or another's)
  std::string stopped_for_name;            // that task's name, for other lanes' messages
  std::size_t peak_memory = 0;   // what memory_limit measured at its peak: growth over start_memory
  std::size_t start_memory = 0;  // resident bytes the worker started with (not counted); 0: none
  int fault_signal = 0;          // a fault recorded by this lane's thread (it is the culprit)
  bool fault_read_only = false;  // that fault wrote to shared memory received read-only
  /// Another lane of the same process faulted: its task's name and the signal.
  std::string sibling_culprit;
  int sibling_signal = 0;
  /// Tasks running on the other lanes of the same process (for crash messages).
  std::vector<std::string> siblings_running;
};

/// Called by the scheduler to have a lane's worker stopped (cancel of a running task, a
/// protocol violation found while sending). Never called with mu_ held.
using stop_request = std::function<void(std::size_t lane, stop_reason reason, std::uint64_t seq)>;

class scheduler {
 public:
  struct options {
    std::size_t lanes = 1;
    std::size_t pipeline_depth = 0;  // 0: automatic
    std::size_t max_tasks_per_lane = 0;
    unsigned retries = 0;
    std::chrono::milliseconds task_timeout{0};
    std::size_t memory_limit = 0;
    std::string pool_name = "crew::process_pool";
    /// Claim words per lane (lane_port): a lane holds fewer tasks than this.
    std::uint32_t claim_words = 256;
    /// Tasks queued (not sent to a lane) at most, 0: unbounded; and what enqueue does then.
    std::size_t max_queued = 0;
    queue_full on_full = queue_full::block;
  };

  scheduler(options opts, stop_request stop);

  // --- submitters -----------------------------------------------------------------------------
  /// Queues `record` and returns its seq (at least 1), or fails it at once and returns 0
  /// (refused) when the pool is closed or broken, or its queue is full with on_full = fail. With
  /// max_queued reached and on_full = block it waits for room — unless `inside`: submitted while
  /// the pool delivers a result, which must never wait on the pool.
  std::uint64_t enqueue(record_ptr record, bool inside = false);
  /// cancel() of a started future: see crew/future.hpp. True: the task's code will not run, or
  /// its worker is being stopped and its result will not be accepted.
  bool cancel(std::uint64_t seq) noexcept;

  // --- lanes ----------------------------------------------------------------------------------
  /// A worker serves `lane` through `port` now; tasks may be sent to it.
  void lane_ready(std::size_t lane, lane_port* port);
  /// The lane's worker is gone: settle what it held (blame, retry, requeue) and forget the port.
  void settle_lane(std::size_t lane, const lane_end& end);
  /// The lane's worker must not be given more work (it is being stopped).
  void lane_stopping(std::size_t lane);
  /// The name of the task the lane's worker has started and not answered, or "".
  [[nodiscard]] std::string running_name(std::size_t lane) const;

  /// A result arrived on `lane` for `seq`: takes the task off the lane (refilling the lane), or
  /// null when `seq` is not the task the lane holds next (a protocol violation). seq 0: the
  /// task the lane holds next, whatever it is (to fail it). Pair with finish().
  record_ptr accept(std::size_t lane, std::uint64_t seq);
  /// Ends a task accepted with accept() (error: it failed). Not under any lock.
  void finish(record_ptr record, std::optional<task_error> error) noexcept;
  /// A task whose result counted (value delivered).
  void count_completed() noexcept { completed_.fetch_add(1, std::memory_order_relaxed); }
  /// Takes back a count_completed() whose value could not be delivered after all.
  void uncount_completed() noexcept { completed_.fetch_sub(1, std::memory_order_relaxed); }

  // --- the pool's life ---------------------------------------------------------------------------
  /// No more submissions. cancel_pending: queued tasks, and tasks sent ahead that no worker has
  /// started, end as cancelled.
  void close(shutdown_mode mode);
  /// stop_now(): closes, fails every queued task and every task a lane holds as cancelled (the
  /// caller then has every worker killed). Their records stay on their lanes until settled.
  stop_report stop_all();
  /// The per-call timeout of the task `seq` that `lane` runs, 0 when it has none.
  [[nodiscard]] std::chrono::nanoseconds call_timeout(std::size_t lane, std::uint64_t seq) const;
  /// Tasks with a per-call timeout, queued or held by a lane (the supervisor samples while >0),
  /// and the shortest such timeout ever submitted (how often it samples).
  [[nodiscard]] std::size_t timed_tasks() const noexcept {
    return timed_tasks_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::chrono::nanoseconds shortest_call_timeout() const noexcept {
    return std::chrono::nanoseconds{shortest_timeout_ns_.load(std::memory_order_relaxed)};
  }
  /// Counts a task with a per-call timeout; true when the supervisor must be woken: it is the
  /// first one after none (the supervisor may sleep without a deadline) or the shortest yet (it
  /// samples faster).
  bool count_timed(task_record& record) noexcept;
  /// A call whose timeout was up before it started (counted in stats().timeouts).
  void count_expired() noexcept;
  /// No worker can be started: queued tasks and later submissions fail with `why`.
  void set_broken(const std::string& why);
  [[nodiscard]] bool broken() const;
  /// Whether close() was called.
  [[nodiscard]] bool closed() const noexcept;
  /// Blocks until nothing is queued, sent or being completed.
  void wait_idle();
  /// Whether nothing is queued, sent or being completed now.
  [[nodiscard]] bool idle() const;
  /// Tells every lane holding nothing to exit; lanes whose exit cannot be sent are returned.
  std::vector<std::size_t> send_exits();
  /// Whether any lane still has work or a task is queued (the supervisor keeps workers for it).
  [[nodiscard]] bool has_work() const;
  [[nodiscard]] std::size_t in_flight() const noexcept {
    return in_flight_count_.load(std::memory_order_relaxed);
  }

  [[nodiscard]] process_pool_stats stats() const;
  void count_restart() noexcept;
  void count_start_failure() noexcept;

 private:
  enum class lane_phase { down, live, stopping };
  struct lane {
    lane_phase phase = lane_phase::down;
    lane_port* port = nullptr;
    std::deque<record_ptr> in_flight;  // in the order sent; the worker answers in order
    std::size_t sent = 0;              // tasks sent to this lane's current worker
    std::uint32_t next_claim = 0;
    bool exit_sent = false;
    std::chrono::steady_clock::time_point last_result{};
    double task_ns = 0;  // how long a task takes here (EWMA; 0: not measured yet)
  };
  using completion = std::pair<record_ptr, task_error>;
  using completions = std::vector<completion>;

  void dispatch_locked();
  std::size_t depth_for(const lane& l) const noexcept;
  void retire_if_done_locked(lane& l);
  void fail_locked(record_ptr record, task_error error, completions& done);
  void settle_front_locked(lane& l, const lane_end& end, completions& done);
  void note_idle_locked();
  void note_room_locked();
  /// A task that ended with an error of this kind, in stats_ (as crew::pool_stats counts).
  void count_failure_locked(error_kind kind, int delta) noexcept;
  [[nodiscard]] bool idle_locked() const noexcept;
  /// Fulfils `done` and makes the stop requests collected under mu_. Called without mu_.
  void complete(completions& done) noexcept;

  const options options_;
  const stop_request stop_;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::deque<record_ptr> pending_;  // guarded by mu_
  std::vector<lane> lanes_;         // guarded by mu_
  std::uint64_t next_seq_ = 0;      // guarded by mu_
  bool closed_ = false;             // guarded by mu_
  std::string broken_;              // guarded by mu_; non-empty: no worker can start
  process_pool_stats stats_{};      // guarded by mu_ (the counters below are not)
  /// Lanes whose worker broke the protocol while being sent to: stopped by complete().
  std::vector<std::pair<std::size_t, std::uint64_t>> stops_;  // guarded by mu_

  std::atomic<bool> stops_waiting_{false};  // stops_ is not empty
  std::atomic<std::size_t> in_flight_count_{0};
  std::atomic<std::size_t> completing_{0};  // accepted, not yet finished
  std::atomic<int> idle_waiters_{0};        // threads in wait_idle()
  std::atomic<std::size_t> completed_{0};
  std::condition_variable room_cv_;  // submitters waiting for room in pending_ (with mu_)
  std::size_t room_waiters_ = 0;     // guarded by mu_
  std::atomic<std::size_t> timed_tasks_{0};
  std::atomic<std::int64_t> shortest_timeout_ns_{INT64_MAX};
};

}  // namespace crew::detail::remote
