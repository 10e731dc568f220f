// crew/detail/algorithm/progress.hpp — when the algorithms and streams call a progress callback
// (the rules are in crew/progress.hpp), and the algorithms' wait that reports while it waits.
//
// Everything here runs on the caller's thread: the chunks only complete their futures, and the
// caller, waiting on a completion_queue with the next report as its deadline, counts the items of
// each chunk that completed and calls the callback. So the callback is never concurrent with
// itself and never runs on a worker or a result thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <vector>

#include "crew/detail/completion_queue.hpp"
#include "crew/future.hpp"
#include "crew/progress.hpp"

namespace crew::detail {

/// Chunks per unit of concurrency when the grain is automatic and progress is asked for: finer
/// steps for the bar than chunks_per_worker gives, at a per-chunk cost (a task, a future, for a
/// process pool a message of ~30 µs, docs/benchmarks/process_pool.md) that stays far below any
/// work worth a progress bar.
inline constexpr std::size_t progress_chunks_per_worker = 16;

/// Throws std::invalid_argument for a negative interval (0 is allowed: report every change).
inline void check_progress_interval(std::chrono::steady_clock::duration interval, const char* who) {
  if (interval < std::chrono::steady_clock::duration::zero()) {
    throw std::invalid_argument(std::string{who} + ": progress_interval must not be negative");
  }
}

/// Counts items done and calls the callback when a report is due. Caller's thread only.
class progress_reporter {
 public:
  using clock = std::chrono::steady_clock;
  /// Intervals from here on (duration::max() included: ~73 years) mean "only the final call":
  /// adding them to a time point would overflow.
  static constexpr clock::duration longest_interval = clock::duration::max() / 4;

  /// No callback (an empty std::function): every member is a no-op.
  progress_reporter(const progress_callback& callback, clock::duration interval, std::size_t total)
      : callback_(callback ? &callback : nullptr),
        interval_(interval),
        total_(total),
        start_(clock::now()),
        timed_(interval > clock::duration::zero() && interval < longest_interval),
        next_(timed_ ? start_ + interval : clock::time_point::max()) {}

  explicit operator bool() const noexcept { return callback_ != nullptr; }

  void add(std::size_t items) noexcept { done_ += items; }
  [[nodiscard]] std::size_t done() const noexcept { return done_; }
  void set_total(std::size_t total) noexcept { total_ = total; }

  /// When the next timed report is due; nullopt with interval 0 (reports follow changes) or when
  /// reporting stopped.
  [[nodiscard]] std::optional<clock::time_point> next_due() const noexcept {
    if (callback_ == nullptr || stopped_ || !timed_) return std::nullopt;
    return next_;
  }

  /// A non-final report, if one is due: interval 0 → when done changed; else when the interval
  /// since the last report (or the start) has passed.
  void tick() {
    if (callback_ != nullptr && !stopped_) tick_due();  // inline: a stream ticks per item
  }

  /// The final report (once; not after the callback threw).
  void finish() {
    if (callback_ == nullptr || stopped_) return;
    call(clock::now(), true);
    stopped_ = true;
  }

 private:
  void tick_due() {
    if (interval_ == clock::duration::zero()) {
      if (done_ != reported_) call(clock::now(), false);
      return;
    }
    if (!timed_) return;
    const auto now = clock::now();
    if (now >= next_) call(now, false);
  }

  void call(clock::time_point now, bool final) {
    const progress_info info{done_, total_, now - start_, final};
    reported_ = done_;
    if (timed_) next_ = now + interval_;
    stopped_ = true;  // stays so if the callback throws: no call after that
    (*callback_)(info);
    stopped_ = false;
  }

  const progress_callback* callback_;
  clock::duration interval_;
  std::size_t total_;
  clock::time_point start_;
  bool timed_;  // reports on a timer (not for interval 0, nor for one too long to add to a time)
  clock::time_point next_;
  std::size_t done_ = 0;
  std::size_t reported_ = 0;
  bool stopped_ = false;
};

/// Waits for every future (chunk i holds min(grain, n - i * grain) items), reporting progress as
/// chunks complete, then makes the final report. If the callback throws: cancels every chunk,
/// waits for all of them (no task still refers to the caller's data), rethrows.
template <class T>
void wait_reporting(std::vector<future<T>>& futures, std::size_t n, std::size_t grain,
                    progress_reporter& reporter,
                    const std::optional<std::chrono::steady_clock::time_point>& deadline = {}) {
  try {
    if (!futures.empty()) {
      auto queue = completion_queue::make(futures.size());
      for (std::size_t i = 0; i < futures.size(); ++i) queue->watch(i, *futures[i].state());
      for (std::size_t left = futures.size(); left > 0;) {
        auto due = reporter.next_due();
        if (deadline && (!due || *deadline < *due)) due = deadline;
        if (const auto slot = queue->pop(due ? &*due : nullptr)) {
          const std::size_t lo = *slot * grain;
          reporter.add(std::min(n, lo + grain) - lo);
          --left;
        } else if (deadline && std::chrono::steady_clock::now() >= *deadline) {
          return;  // the caller cancels what is late and throws timed_out (no final report)
        }
        // done == total is the final report's alone.
        if (left > 0) reporter.tick();
      }
    }
    reporter.finish();
  } catch (...) {
    for (auto& f : futures) (void)f.cancel();
    for (auto& f : futures) f.wait();
    throw;
  }
}

}  // namespace crew::detail
