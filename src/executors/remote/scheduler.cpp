#include "executors/remote/scheduler.hpp"

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "crew/call.hpp"

namespace crew::detail::remote {

using clock = std::chrono::steady_clock;

scheduler::scheduler(options opts, stop_request stop)
    : options_(std::move(opts)), stop_(std::move(stop)), lanes_(options_.lanes) {}

// --- submitters ---------------------------------------------------------------------------------

std::uint64_t scheduler::enqueue(record_ptr record, bool inside) {
  completions done;
  std::uint64_t seq = 0;
  {
    std::unique_lock lock{mu_};
    bool full = false;
    if (options_.max_queued != 0 && !inside) {
      while (!closed_ && broken_.empty() && pending_.size() >= options_.max_queued) {
        if (options_.on_full == queue_full::fail) {
          full = true;
          break;
        }
        ++room_waiters_;
        room_cv_.wait(lock);
        --room_waiters_;
      }
    }
    record->seq = seq = ++next_seq_;
    // From here on the future's cancel() goes through the pool (cancel_running), which knows
    // where the task is: queued here, sent ahead to a worker, or running.
    (void)record->state->try_start();
    if (closed_) {
      fail_locked(
          std::move(record),
          task_error{error_kind::pool_closed, options_.pool_name + ": submit after shutdown", {}},
          done);
      seq = 0;
    } else if (!broken_.empty()) {
      fail_locked(std::move(record), task_error{error_kind::worker_lost, broken_, {}}, done);
      seq = 0;
    } else if (full) {
      ++stats_.rejected;
      fail_locked(std::move(record),
                  task_error{error_kind::queue_full,
                             options_.pool_name + ": " + std::to_string(options_.max_queued) +
                                 " tasks are queued (max_queued) and on_full is fail: task not "
                                 "accepted",
                             {}},
                  done);
      seq = 0;
    } else {
      pending_.push_back(std::move(record));
      dispatch_locked();
    }
  }
  complete(done);
  return seq;
}

bool scheduler::cancel(std::uint64_t seq) noexcept {
  record_ptr owned;                      // taken off the queue: fail it outside the lock
  state_ptr<state_base> running;         // sent: fail it outside the lock, it stays in flight
  std::optional<std::size_t> stop_lane;  // running now: its worker is stopped
  {
    std::lock_guard lock{mu_};
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if ((*it)->seq != seq) continue;
      owned = std::move(*it);
      pending_.erase(it);
      note_room_locked();
      // Completing until its future is failed below: wait_idle() must not return before.
      completing_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    for (std::size_t i = 0; i < lanes_.size() && !owned && !running; ++i) {
      lane& l = lanes_[i];
      for (const record_ptr& record : l.in_flight) {
        if (record->seq != seq) continue;
        if (record->cancel_requested) return false;  // a cancel() before this one decided
        if (l.port != nullptr && l.port->cancel_claim(record->claim)) {
          // Sent ahead, not started: the worker will skip it (and answer `skipped`).
          record->cancel_requested = true;
          running = record->state;
        } else if (l.port != nullptr && l.port->running_seq() == seq) {
          record->cancel_requested = true;
          running = record->state;
          stop_lane = i;
        } else {
          // Finished (its result is on its way) or its worker is gone: too late to cancel.
          return false;
        }
        break;
      }
    }
  }
  if (owned) {
    const bool won = owned->state->fail(task_error{error_kind::cancelled, "task cancelled",
                                                   task_error::details::named(owned->name())});
    std::lock_guard lock{mu_};
    if (won) ++stats_.cancelled;
    completing_.fetch_sub(1, std::memory_order_seq_cst);
    note_idle_locked();
    return won;
  }
  if (!running) return false;
  // A running task's result races with this: whoever claims the state first wins. Only when
  // cancel wins is the worker stopped.
  const bool won = running->fail(task_error{error_kind::cancelled, "task cancelled", {}});
  {
    std::lock_guard lock{mu_};
    if (won) ++stats_.cancelled;
  }
  if (won && stop_lane) stop_(*stop_lane, stop_reason::cancelled, seq);
  return won;
}

// --- dealing tasks to lanes ---------------------------------------------------------------------

std::size_t scheduler::depth_for(const lane& l) const noexcept {
  if (options_.pipeline_depth != 0) return options_.pipeline_depth;
  // Until a task has been timed here, one at a time: a long task must not hold others back on
  // this lane while another lane idles.
  if (l.task_ns <= 0) return 1;
  // Send ahead about 200 µs of work: enough that a worker never waits for the parent between
  // short tasks, little enough that long tasks do not queue behind each other on one worker
  // while another idles.
  const double ahead = 200'000.0 / std::max(l.task_ns, 1.0);
  return static_cast<std::size_t>(std::clamp(ahead, 1.0, 64.0));
}

void scheduler::dispatch_locked() {
  std::vector<bool> full(lanes_.size(), false);  // lanes whose ring has no room this round
  while (!pending_.empty()) {
    // The emptiest live lane first, so that work spreads before it queues deep.
    lane* best = nullptr;
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
      lane& l = lanes_[i];
      if (full[i] || l.phase != lane_phase::live || l.exit_sent) continue;
      if (l.in_flight.size() >= depth_for(l)) continue;
      if (options_.max_tasks_per_lane > 0 && l.sent >= options_.max_tasks_per_lane) continue;
      if (best == nullptr || l.in_flight.size() < best->in_flight.size()) best = &l;
    }
    if (best == nullptr) break;
    const auto index = static_cast<std::size_t>(best - lanes_.data());
    record_ptr record = std::move(pending_.front());
    pending_.pop_front();
    if (record->state->is_ready()) {  // cancelled while queued
      note_idle_locked();
      continue;
    }
    const std::uint32_t claim = best->next_claim;
    lane_port::sent result = lane_port::sent::gone;
    try {
      result = best->port->send(*record, claim);
    } catch (const std::exception&) {
      // The worker broke its side of the channel: it is stopped (outside the lock).
      stops_.emplace_back(index, 0);
      stops_waiting_.store(true, std::memory_order_release);
    }
    if (result != lane_port::sent::ok) {
      pending_.push_front(std::move(record));
      if (result == lane_port::sent::gone) best->phase = lane_phase::stopping;
      full[index] = true;
      continue;  // another lane may take it
    }
    record->claim = claim;
    record->sent_at = clock::now();
    best->next_claim = (claim + 1) % options_.claim_words;
    ++best->sent;
    in_flight_count_.fetch_add(1, std::memory_order_relaxed);
    best->in_flight.push_back(std::move(record));
  }
  note_room_locked();
}

void scheduler::note_room_locked() {
  if (room_waiters_ == 0) return;
  if (closed_ || !broken_.empty() || pending_.size() < options_.max_queued) room_cv_.notify_all();
}

void scheduler::retire_if_done_locked(lane& l) {
  if (options_.max_tasks_per_lane == 0 || l.sent < options_.max_tasks_per_lane) return;
  if (!l.in_flight.empty() || l.exit_sent || l.phase != lane_phase::live) return;
  if (l.port->send_exit()) l.exit_sent = true;
}

void scheduler::lane_ready(std::size_t index, lane_port* port) {
  completions done;
  {
    std::lock_guard lock{mu_};
    lane& l = lanes_[index];
    l.phase = lane_phase::live;
    l.port = port;
    l.sent = 0;
    l.next_claim = 0;
    l.exit_sent = false;
    l.last_result = {};
    l.task_ns = 0;
    dispatch_locked();
  }
  complete(done);
}

void scheduler::lane_stopping(std::size_t index) {
  std::lock_guard lock{mu_};
  if (lanes_[index].phase == lane_phase::live) lanes_[index].phase = lane_phase::stopping;
}

std::string scheduler::running_name(std::size_t index) const {
  std::lock_guard lock{mu_};
  const lane& l = lanes_[index];
  if (l.in_flight.empty() || l.port == nullptr) return {};
  const task_record& front = *l.in_flight.front();
  return l.port->claim_started(front.claim) ? front.name() : std::string{};
}

record_ptr scheduler::accept(std::size_t index, std::uint64_t seq) {
  completions done;
  record_ptr record;
  {
    std::lock_guard lock{mu_};
    lane& l = lanes_[index];
    if (l.in_flight.empty() || (seq != 0 && l.in_flight.front()->seq != seq)) return nullptr;
    // How long a task takes here: from when the worker could start it (sent, or the previous
    // result) to its result.
    const auto now = clock::now();
    const auto since = std::max(l.last_result, l.in_flight.front()->sent_at);
    const double sample = std::chrono::duration<double, std::nano>(now - since).count();
    l.task_ns = l.task_ns <= 0 ? std::max(sample, 1.0) : 0.8 * l.task_ns + 0.2 * sample;
    l.last_result = now;
    record = std::move(l.in_flight.front());
    l.in_flight.pop_front();
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
    completing_.fetch_add(1, std::memory_order_relaxed);
    dispatch_locked();  // refill the worker before spending time on the result
    retire_if_done_locked(l);
  }
  complete(done);
  return record;
}

void scheduler::finish(record_ptr record, std::optional<task_error> error) noexcept {
  if (error) {
    task_error::details info = error->info();
    if (info.task_name.empty()) info.task_name = record->name();
    // Counted before the future is ready, so that whoever sees it ready sees the count; taken
    // back if the future was ready already (cancelled).
    {
      std::lock_guard lock{mu_};
      count_failure_locked(error->kind(), 1);
    }
    if (!record->state->fail(task_error{error->kind(), error->what(), std::move(info)})) {
      std::lock_guard lock{mu_};
      count_failure_locked(error->kind(), -1);
    }
  }
  record.reset();
  // Only a thread in wait_idle() (or shutdown) needs to hear of the last completion; it
  // announces itself before it checks, under mu_, so this check cannot miss it.
  if (completing_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      idle_waiters_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard lock{mu_};
    note_idle_locked();
  }
}

void scheduler::fail_locked(record_ptr record, task_error error, completions& done) {
  // Until complete() has failed it, the task counts as completing: wait_idle() waits for it.
  completing_.fetch_add(1, std::memory_order_relaxed);
  done.emplace_back(std::move(record), std::move(error));
}

void scheduler::complete(completions& done) noexcept {
  if (done.empty() && !stops_waiting_.load(std::memory_order_acquire)) return;
  std::vector<std::pair<std::size_t, std::uint64_t>> stops;
  // Counted before the futures are ready, so that whoever sees one ready sees its count; the
  // ones that were ready already (cancelled by their future) are taken back after.
  if (!done.empty()) {
    std::lock_guard lock{mu_};
    for (const auto& entry : done) count_failure_locked(entry.second.kind(), 1);
  }
  std::vector<error_kind> not_failed;
  for (auto& [record, error] : done) {
    task_error::details info = error.info();
    if (info.task_name.empty()) info.task_name = record->name();
    if (!record->state->fail(task_error{error.kind(), error.what(), std::move(info)})) {
      not_failed.push_back(error.kind());
    }
    record.reset();
  }
  const std::size_t ended = done.size();
  done.clear();
  {
    std::lock_guard lock{mu_};
    completing_.fetch_sub(ended, std::memory_order_seq_cst);
    for (const error_kind kind : not_failed) count_failure_locked(kind, -1);
    stops.swap(stops_);
    stops_waiting_.store(false, std::memory_order_relaxed);
    note_idle_locked();
  }
  for (auto& [index, seq] : stops) stop_(index, stop_reason::protocol, seq);
}

// --- the end of a worker ------------------------------------------------------------------------

void scheduler::settle_front_locked(lane& l, const lane_end& end, completions& done) {
  record_ptr culprit = std::move(l.in_flight.front());
  l.in_flight.pop_front();
  in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
  if (culprit->cancel_requested || culprit->state->is_ready()) return;  // cancel() failed it
  const bool started = l.port != nullptr && l.port->claim_started(culprit->claim);
  if (!started) {
    pending_.push_front(std::move(culprit));  // it never ran: it runs elsewhere, no blame
    return;
  }
  const bool stopped_for_it = end.stopped_for == culprit->seq;
  task_error::details info = end.base;
  info.task_name = culprit->name();
  std::ostringstream what;
  const int pid = end.base.pid;
  switch (end.reason) {
    case stop_reason::timed_out:
      if (!stopped_for_it) break;
      ++stats_.timeouts;
      what << "task " << info.task_name << " ran past its timeout of "
           << describe_timeout(culprit->timeout.count() > 0 ? culprit->timeout
                                                            : options_.task_timeout)
           << "; worker " << pid << " was stopped";
      fail_locked(std::move(culprit), task_error{error_kind::timed_out, what.str(), info}, done);
      return;
    case stop_reason::out_of_memory:
      info.peak_memory = end.peak_memory;
      what << "worker " << pid << " passed its memory limit of " << options_.memory_limit
           << " bytes (peak " << end.peak_memory << ") running " << info.task_name;
      if (end.start_memory > 0) {
        what << "; measured as resident memory over the " << end.start_memory
             << " bytes the worker started with (peak resident "
             << end.peak_memory + end.start_memory << ")";
      }
      fail_locked(std::move(culprit), task_error{error_kind::out_of_memory, what.str(), info},
                  done);
      return;
    case stop_reason::protocol:
      if (!stopped_for_it) break;
      what << "worker " << pid << " broke the channel protocol while running " << info.task_name;
      fail_locked(std::move(culprit), task_error{error_kind::worker_lost, what.str(), info}, done);
      return;
    default:
      break;
  }
  if (end.reason != stop_reason::none && end.reason != stop_reason::retiring &&
      end.reason != stop_reason::shutdown) {
    // The process was stopped for another task: this one did nothing wrong and runs again.
    pending_.push_front(std::move(culprit));
    return;
  }
  if (!end.sibling_culprit.empty()) {
    // Another thread of the same process crashed it: this task is not to blame, but its
    // process (its memory, which it shared with the culprit) is gone.
    what << "task " << info.task_name << " failed because task " << end.sibling_culprit
         << " in the same process (worker " << pid << ") crashed with signal " << end.sibling_signal
         << " (" << strsignal(end.sibling_signal) << ")";
    fail_locked(std::move(culprit), task_error{error_kind::crashed, what.str(), info}, done);
    return;
  }
  ++stats_.crashes;
  ++culprit->deaths;
  const unsigned retries = culprit->retries.value_or(options_.retries);
  if (culprit->deaths <= retries) {
    pending_.push_front(std::move(culprit));
    return;
  }
  info.poisoned = retries > 0;
  what << "worker " << pid << " running " << info.task_name;
  if (info.signal != 0) {
    what << " was killed by signal " << info.signal << " (" << strsignal(info.signal) << ")";
    if (end.fault_read_only) {
      what << ": it wrote to crew::shared_array memory it received read-only (a parameter of "
              "type shared_array<const T>; take shared_array<T> to write)";
    }
  } else if (info.exit_code >= 0) {
    what << " exited with code " << info.exit_code;
  } else {
    what << " ended";
  }
  if (end.fault_signal == 0 && !end.siblings_running.empty()) {
    what << "; tasks also running in that process: ";
    for (std::size_t i = 0; i < end.siblings_running.size(); ++i) {
      what << (i ? ", " : "") << end.siblings_running[i];
    }
    what << " (which one ended it is not known)";
  }
  if (info.poisoned) {
    what << "; the task killed " << culprit->deaths << " workers and is quarantined";
  }
  fail_locked(std::move(culprit), task_error{error_kind::crashed, what.str(), info}, done);
}

void scheduler::settle_lane(std::size_t index, const lane_end& end) {
  completions done;
  {
    std::lock_guard lock{mu_};
    lane& l = lanes_[index];
    // The lane answers in order, so after the drain the front is the task its worker held.
    if (!l.in_flight.empty()) settle_front_locked(l, end, done);
    // Everything else it held goes back to the front of the queue, in order; what cancel()
    // already failed is dropped.
    while (!l.in_flight.empty()) {
      record_ptr record = std::move(l.in_flight.back());
      l.in_flight.pop_back();
      in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
      if (record->cancel_requested || record->state->is_ready()) continue;
      pending_.push_front(std::move(record));
    }
    l.phase = lane_phase::down;
    l.port = nullptr;
    if (!broken_.empty()) {
      while (!pending_.empty()) {
        fail_locked(std::move(pending_.front()), task_error{error_kind::worker_lost, broken_, {}},
                    done);
        pending_.pop_front();
      }
    }
    dispatch_locked();
    note_idle_locked();
  }
  complete(done);
}

// --- the pool's life ----------------------------------------------------------------------------

void scheduler::close(shutdown_mode mode) {
  completions done;
  {
    std::lock_guard lock{mu_};
    closed_ = true;
    note_room_locked();
    if (mode == shutdown_mode::cancel_pending) {
      const std::string why = "cancelled by " + options_.pool_name + "::shutdown";
      while (!pending_.empty()) {
        fail_locked(std::move(pending_.front()), task_error{error_kind::cancelled, why, {}}, done);
        pending_.pop_front();
      }
      for (lane& l : lanes_) {
        if (l.port == nullptr) continue;
        for (const record_ptr& record : l.in_flight) {
          if (record->cancel_requested || !l.port->cancel_claim(record->claim)) continue;
          record->cancel_requested = true;
          // The record stays in flight until its `skipped` answer; its state fails now.
          auto proxy = std::make_unique<task_record>();
          proxy->entry = record->entry;
          proxy->state = record->state;
          fail_locked(std::move(proxy), task_error{error_kind::cancelled, why, {}}, done);
        }
      }
    }
  }
  complete(done);
}

stop_report scheduler::stop_all() {
  completions done;
  stop_report report;
  {
    std::lock_guard lock{mu_};
    closed_ = true;
    const std::string queued_why =
        "cancelled by " + options_.pool_name + "::stop_now() before it started";
    while (!pending_.empty()) {
      fail_locked(std::move(pending_.front()), task_error{error_kind::cancelled, queued_why, {}},
                  done);
      pending_.pop_front();
      ++report.cancelled;
    }
    for (lane& l : lanes_) {
      if (l.phase == lane_phase::live) l.phase = lane_phase::stopping;
      if (l.port == nullptr) continue;
      for (const record_ptr& record : l.in_flight) {
        if (record->cancel_requested || record->state->is_ready()) continue;
        record->cancel_requested = true;
        // Not started: the worker will skip it (if it lives that long). Started: it dies with
        // its worker. Either way the record stays in flight until its lane is settled.
        const bool never_ran = l.port->cancel_claim(record->claim);
        auto proxy = std::make_unique<task_record>();
        proxy->entry = record->entry;
        proxy->state = record->state;
        proxy->call_name = record->call_name;
        std::string why = queued_why;
        if (!never_ran) {
          why = "task " + record->name() + " was running when " + options_.pool_name +
                "::stop_now() was called: its worker was stopped";
        }
        fail_locked(std::move(proxy), task_error{error_kind::cancelled, why, {}}, done);
        ++(never_ran ? report.cancelled : report.stopped);
      }
    }
    note_room_locked();
  }
  complete(done);
  return report;
}

std::chrono::nanoseconds scheduler::call_timeout(std::size_t index, std::uint64_t seq) const {
  std::lock_guard lock{mu_};
  for (const record_ptr& record : lanes_[index].in_flight) {
    if (record->seq == seq) return record->timeout;
  }
  return std::chrono::nanoseconds{0};
}

bool scheduler::count_timed(task_record& record) noexcept {
  // The first timed task after none: the supervisor may sleep without a deadline.
  const bool first = timed_tasks_.fetch_add(1, std::memory_order_relaxed) == 0;
  record.timed = &timed_tasks_;
  const std::int64_t ns = record.timeout.count();
  std::int64_t seen = shortest_timeout_ns_.load(std::memory_order_relaxed);
  while (ns < seen) {
    if (shortest_timeout_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
      return true;
    }
  }
  return first;
}

void scheduler::count_expired() noexcept {
  std::lock_guard lock{mu_};
  ++stats_.timeouts;
  ++stats_.failed;
}

void scheduler::set_broken(const std::string& why) {
  completions done;
  {
    std::lock_guard lock{mu_};
    broken_ = why;
    note_room_locked();
    while (!pending_.empty()) {
      fail_locked(std::move(pending_.front()), task_error{error_kind::worker_lost, why, {}}, done);
      pending_.pop_front();
    }
  }
  complete(done);
}

bool scheduler::broken() const {
  std::lock_guard lock{mu_};
  return !broken_.empty();
}

bool scheduler::closed() const noexcept {
  std::lock_guard lock{mu_};
  return closed_;
}

void scheduler::count_failure_locked(error_kind kind, int delta) noexcept {
  // As pool_stats says (crew/executor.hpp): a refused submission is not counted.
  if (kind == error_kind::cancelled) {
    stats_.cancelled += static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
  } else if (kind != error_kind::pool_closed && kind != error_kind::queue_full) {
    stats_.failed += static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
  }
}

bool scheduler::idle_locked() const noexcept {
  return pending_.empty() && in_flight_count_.load(std::memory_order_relaxed) == 0 &&
         completing_.load(std::memory_order_seq_cst) == 0;
}

void scheduler::note_idle_locked() {
  if (idle_locked()) idle_cv_.notify_all();
}

void scheduler::wait_idle() {
  std::unique_lock lock{mu_};
  idle_waiters_.fetch_add(1, std::memory_order_seq_cst);  // pairs with the check in finish()
  idle_cv_.wait(lock, [this] { return idle_locked(); });
  idle_waiters_.fetch_sub(1, std::memory_order_relaxed);
}

bool scheduler::idle() const {
  std::lock_guard lock{mu_};
  return idle_locked();
}

bool scheduler::has_work() const {
  std::lock_guard lock{mu_};
  return !pending_.empty() || in_flight_count_.load(std::memory_order_relaxed) > 0;
}

std::vector<std::size_t> scheduler::send_exits() {
  std::vector<std::size_t> refused;
  std::lock_guard lock{mu_};
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    lane& l = lanes_[i];
    if (l.port == nullptr || l.exit_sent || !l.in_flight.empty()) continue;
    if (l.port->send_exit()) {
      l.exit_sent = true;
      l.phase = lane_phase::stopping;
    } else {
      refused.push_back(i);
    }
  }
  return refused;
}

process_pool_stats scheduler::stats() const {
  std::lock_guard lock{mu_};
  process_pool_stats out = stats_;
  out.completed = completed_.load(std::memory_order_relaxed);
  // Running: started by a worker. Queued: not started, here or sent ahead to a worker.
  std::size_t started = 0;
  for (const lane& l : lanes_) {
    if (l.port == nullptr) continue;
    for (const record_ptr& record : l.in_flight) {
      started += l.port->claim_started(record->claim) ? 1 : 0;
    }
  }
  out.running = started;
  out.queued = pending_.size() + in_flight_count_.load(std::memory_order_relaxed) - started;
  out.broken = !broken_.empty();
  return out;
}

void scheduler::count_restart() noexcept {
  std::lock_guard lock{mu_};
  ++stats_.restarts;
}

void scheduler::count_start_failure() noexcept {
  std::lock_guard lock{mu_};
  ++stats_.start_failures;
}

}  // namespace crew::detail::remote
