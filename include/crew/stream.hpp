// crew/stream.hpp — imap / imap_unordered: Fn over a stream of inputs, on any executor, with
// memory that stays flat however long the input is.
//
//   for (crew::outcome<int>& r : crew::imap<&square>(pool, std::views::iota(0)))  // infinite
//     if (r) use(*r); else if (enough) break;
//
// The input (any std::ranges::input_range: a container, a view, a generator, possibly infinite)
// is read lazily, `grain` items per task, and at most `max_in_flight` tasks are in flight
// (submitted, their results not yet taken by the stream) at any time, beside the one task whose
// items are being handed out: at most (max_in_flight + 1) * grain items are read ahead of the
// caller, and a new task is submitted only when the stream takes a finished one.
// Each item yields a crew::outcome — its value, or the task_error that says why not: Fn's own
// exception (per item: one bad item does not fail the others; on a process pool it is rebuilt
// with its type, see crew/exception.hpp), or the task's failure (crashed, timed_out, ...) for
// every item of that task. imap yields in input order, imap_unordered in completion order (a
// task's items in their order); index() tells which input an item was.
//
// Works on every executor: it only calls ex.concurrency() and ex.template submit<&chunk>(...).
// On executors in other processes, inputs and results are serialized (crew/codec.hpp).
//
// Lifetime: nothing is read or submitted before begin(). The stream refers to the executor (which
// must outlive it) and to an lvalue input (which must outlive it; an rvalue input is moved in).
// Destroying the stream before its end (e.g. leaving the loop with break) never blocks and
// never waits: by default (on_close = cancel) it calls cancel() on the futures of the tasks in
// flight — at most max_in_flight — like concurrent.futures' map generator on close: a task not
// started never runs; a running one is stopped where its executor can (a process pool replaces
// the worker; a thread runs on, its result dropped). With on_close = detach they all run to their
// end and their results are dropped, as multiprocessing's imap leaves them.
// Deadline: once `deadline` (or `timeout` after the call) passes, no more input is read or
// submitted; each item already submitted still yields — its value if its task completed in time,
// else a task_error of kind timed_out (and the task is cancelled if it has not started) — then
// the stream ends and timed_out() is true. A zero or negative timeout yields nothing.
// Errors: max_in_flight == 0 throws std::invalid_argument from the call. grain == 0 is automatic:
// map's grain for a sized input, capped by a byte budget for the items in flight (see
// stream_options::grain); grain() tells the grain chosen. An
// exception thrown by the input range (its begin() or ++) propagates from begin()/++ on the
// stream; the stream then reads no more input, and what was submitted still yields.
// Progress: {.progress = callback} (crew/progress.hpp) reports, on the iterating thread, the items
// the caller is done with (handed out and moved past with ++, as tqdm counts a loop) out of the
// input's size (0 when the input is not a sized range), every progress_interval — also while
// begin()/++ wait for a slow task — and once when the stream reaches its end (after a deadline
// too; done is then below total). A stream destroyed before its end makes no final call. A
// callback that throws: the exception propagates from that begin()/++ (the iterator is on the
// item it was handed, if any); the stream makes no more progress calls and otherwise goes on.
// Thread-safety: a stream is used by one thread. Blocking: begin() and ++ block until the next
// item's task completes; on a pool worker they run other tasks meanwhile.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "crew/codec.hpp"
#include "crew/detail/algorithm/chunk.hpp"
#include "crew/detail/algorithm/progress.hpp"
#include "crew/detail/completion_queue.hpp"
#include "crew/error.hpp"
#include "crew/exception.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"
#include "crew/outcome.hpp"
#include "crew/progress.hpp"

namespace crew {

/// What destroying a stream does with the tasks it still has in flight (at most max_in_flight).
enum class stream_close {
  cancel,  ///< future::cancel() each: a queued task never runs; a running one is stopped where
           ///< the executor can (a process pool replaces its worker; a thread keeps running)
  detach,  ///< leave them: they run to their end and their results are dropped
};

struct stream_options {
  /// Tasks submitted and not yet handed back, at most. Unset: 16 per unit of the executor's
  /// concurrency (detail::stream_tasks_per_worker). 0 throws std::invalid_argument.
  std::optional<std::size_t> max_in_flight{};
  /// Items per task (1: one task per item; more amortizes the per-task cost of tiny items).
  /// 0: automatic — for a sized input, map's automatic grain (about 4 tasks per unit of
  /// concurrency, 16 with a progress callback) but at most what keeps the items of the tasks in
  /// flight and the one handed out within 32 MiB (detail::stream_automatic_bytes, counting
  /// sizeof(input) + sizeof(result) per item), so memory stays flat however long the input; for
  /// an input of unknown size, 1.
  std::size_t grain = 1;
  /// No more input is read once this passes (see the header comment). Unset: none.
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  /// As deadline, counted from the call; with both, the earlier one counts.
  std::optional<std::chrono::steady_clock::duration> timeout{};
  /// Destroying the stream before its end: cancel the tasks in flight, or let them finish.
  stream_close on_close = stream_close::cancel;
  /// Called with the stream's progress (see the header comment); empty: no reporting.
  progress_callback progress{};
  /// At most one progress call per interval, plus the final one; 0: one per item handed out.
  /// Negative: std::invalid_argument.
  std::chrono::steady_clock::duration progress_interval = default_progress_interval;
};

namespace detail {

template <class R>
using stream_value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

/// An item's exception: the exception_ptr itself when the task ran in this process, its
/// encoding (crew/exception.hpp) when it ran in another.
template <bool Local>
using stream_error_t = std::conditional_t<Local, std::exception_ptr, std::vector<std::byte>>;

/// A task's per-item results: the values of the items that succeeded, in order (one block for
/// arithmetic results: as cheap to ship as map's), and the failed ones by position, ascending.
template <class R, bool Local>
using stream_chunk_result_t =
    std::pair<std::vector<stream_value_t<R>>,
              std::vector<std::pair<std::uint64_t, stream_error_t<Local>>>>;

template <auto Fn, class In>
using stream_result_t = std::decay_t<std::invoke_result_t<decltype(Fn), In&&>>;

/// The task a stream submits: Fn over `grain` items, catching each item's exception.
template <auto Fn, class In, bool Local>
stream_chunk_result_t<stream_result_t<Fn, In>, Local> stream_chunk(std::vector<In> items) {
  using result = stream_result_t<Fn, In>;
  stream_chunk_result_t<result, Local> out;
  out.first.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    try {
      if constexpr (std::is_void_v<result>) {
        std::invoke(Fn, std::move(items[i]));
        out.first.emplace_back();
      } else {
        out.first.push_back(std::invoke(Fn, std::move(items[i])));
      }
    } catch (...) {
      if constexpr (Local) {
        out.second.emplace_back(i, std::current_exception());
      } else {
        out.second.emplace_back(i, encode_exception(std::current_exception()));
      }
    }
  }
  return out;
}

/// Tasks in flight per unit of concurrency when max_in_flight is unset. A process pool's task
/// costs ~30 µs of messaging (docs/benchmarks/process_pool.md) against ~1 µs of work for 1,000
/// trivial items: with 4 per worker the workers ran dry at grain 1,000 (imap took 1.27-1.83x
/// map's time), with 16 less so (0.87-1.43x), docs/benchmarks/imap.md. Memory stays flat in N.
inline constexpr std::size_t stream_tasks_per_worker = 16;

/// What the items in flight of a stream with an automatic grain may take, at most, counting each
/// item as sizeof(input) + sizeof(result) (memory an item owns on the heap is not counted). With
/// 2 workers (33 tasks) and int -> int it caps the grain at 127,100 items: 10^6 items keep map's
/// automatic grain (125,000), and 10^8 items took 21 MiB of peak RSS growth where map's grain
/// (12.5 M) took 479 MiB (docs/benchmarks/imap.md).
inline constexpr std::size_t stream_automatic_bytes = std::size_t{32} << 20;

/// The automatic grain (stream_options::grain = 0) of a stream over `size` items (0: not a sized
/// range) with at most `in_flight` tasks in flight (and one being handed out): map's automatic
/// grain, capped so that those tasks' items take at most stream_automatic_bytes; 1 for an input
/// of unknown size.
constexpr std::size_t stream_automatic_grain(std::size_t size, std::size_t concurrency,
                                             std::size_t in_flight, std::size_t item_bytes,
                                             bool progress) noexcept {
  if (size == 0) return 1;
  const std::size_t per_worker = progress ? progress_chunks_per_worker : chunks_per_worker;
  const std::size_t grain = plan_chunks(size, concurrency, 0, per_worker).grain;
  const std::size_t tasks = in_flight >= SIZE_MAX / 2 ? SIZE_MAX / 2 : in_flight + 1;
  const std::size_t cap = stream_automatic_bytes / tasks / std::max<std::size_t>(1, item_bytes);
  return std::max<std::size_t>(1, std::min(grain, cap));
}

/// Whether an executor runs tasks in the caller's process (results are not serialized).
template <class E>
concept local_executor = requires(E& ex) {
  { ex.submit(any_closure{}) } -> std::same_as<future<void>>;
};

}  // namespace detail

template <auto Fn, executor E, std::ranges::view V, bool Ordered>
class stream_range {
  using in = std::ranges::range_value_t<V>;
  static constexpr bool local = detail::local_executor<E>;

 public:
  using result_type = detail::stream_result_t<Fn, in>;
  using value_type = outcome<result_type>;

  stream_range(E& ex, V input, const stream_options& options)
      : ex_(&ex),
        input_(std::move(input)),
        grain_(options.grain),
        on_close_(options.on_close),
        progress_callback_(options.progress),
        progress_interval_(options.progress_interval) {
    detail::check_progress_interval(progress_interval_, "crew::imap");
    if (options.max_in_flight && *options.max_in_flight == 0) {
      throw std::invalid_argument("crew::imap: max_in_flight must be at least 1");
    }
    bound_ = options.max_in_flight.value_or(std::max<std::size_t>(1, ex.concurrency()) *
                                            detail::stream_tasks_per_worker);
    if (grain_ == 0) {
      std::size_t size = 0;
      if constexpr (std::ranges::sized_range<V>) size = std::ranges::size(input_);
      grain_ = detail::stream_automatic_grain(
          size, ex.concurrency(), bound_, sizeof(in) + sizeof(detail::stream_value_t<result_type>),
          static_cast<bool>(progress_callback_));
    }
    deadline_ = options.deadline;
    if (options.timeout) {
      const auto from_timeout = std::chrono::steady_clock::now() + *options.timeout;
      if (!deadline_ || from_timeout < *deadline_) deadline_ = from_timeout;
    }
    if constexpr (!Ordered) {
      queue_ = detail::completion_queue::make(bound_);
      slots_.resize(bound_);
      for (std::size_t i = bound_; i-- > 0;) free_.push_back(i);
    }
  }

  stream_range(const stream_range&) = delete;
  stream_range& operator=(const stream_range&) = delete;
  stream_range(stream_range&&) = default;  // not while iterating
  stream_range& operator=(stream_range&&) = delete;

  ~stream_range() {
    if (on_close_ != stream_close::cancel) return;  // detach: they finish unobserved
    for (auto& b : ordered_) {
      if (b.result.valid()) (void)b.result.cancel();
    }
    for (auto& s : slots_) {
      if (s && s->result.valid()) (void)s->result.cancel();
    }
  }

  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = outcome<result_type>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(stream_range* range) : range_(range) {}
    value_type& operator*() const { return *range_->item_; }
    value_type* operator->() const { return &*range_->item_; }
    iterator& operator++() {
      stream_range& s = *range_;
      if (s.run_next_ != s.run_end_) [[likely]] {
        // The common case, per item: a value follows a value within the batch. It is assigned
        // in place into the outcome handed out — no outcome built, moved or destroyed per item,
        // one compare and one store: the caller's per-item cost is what separates imap from map
        // for tiny items (docs/benchmarks/imap.md).
        if constexpr (!std::is_void_v<result_type>) *s.run_slot_ = std::move(*s.run_next_);
        ++s.run_next_;
      } else {
        s.advance();
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    [[nodiscard]] bool at_end() const { return !range_->item_; }
    stream_range* range_ = nullptr;
  };

  /// Starts the stream (reads input, submits the first tasks) and waits for the first item.
  iterator begin() {
    if (!started_) {
      started_ = true;
      std::size_t total = 0;
      if constexpr (std::ranges::sized_range<V>) total = std::ranges::size(input_);
      progress_.emplace(progress_callback_, progress_interval_, total);
      input_it_.emplace(std::ranges::begin(input_));
      advance();
    }
    return iterator{this};
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// The input index (0-based) of the item the iterator is on.
  [[nodiscard]] std::size_t index() const noexcept {
    const std::size_t pos = handed_pos();
    return current_first_ + (pos == 0 ? 0 : pos - 1);
  }
  /// Items per task: options.grain, or the automatic grain it chose (see stream_options::grain).
  [[nodiscard]] std::size_t grain() const noexcept { return grain_; }
  /// Whether the stream stopped reading input because its deadline passed.
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_; }
  /// Tasks submitted and not yet handed back (at most max_in_flight).
  [[nodiscard]] std::size_t in_flight() const noexcept {
    return Ordered ? ordered_.size() : bound_ - free_.size();
  }

 private:
  using chunk_result = detail::stream_chunk_result_t<result_type, local>;

  struct batch {
    future<chunk_result> result;
    std::size_t first = 0;  ///< input index of its first item
    std::size_t count = 0;
    bool cut = false;  ///< cancelled by the stream at its deadline: its items are timed_out
  };

  /// The deadline passed: every task in flight that has not finished is cancelled now (a queued
  /// one never runs, a process pool's running one loses its worker), not as the caller reaches
  /// it; its items yield timed_out.
  void cut_at_deadline() {
    if (cut_done_) return;
    cut_done_ = true;
    auto cut = [](batch& b) {
      if (b.result.valid() && !b.result.ready() && b.result.cancel()) b.cut = true;
    };
    for (auto& b : ordered_) cut(b);
    for (auto& s : slots_) {
      if (s) cut(*s);
    }
  }

  /// When a wait must return: the deadline or the next progress report, whichever is first.
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> wake_time() const {
    const auto due = progress_->next_due();
    if (!due) return deadline_;
    if (!deadline_) return due;
    return std::min(*due, *deadline_);
  }

  [[nodiscard]] bool past_deadline() const {
    return deadline_ && std::chrono::steady_clock::now() >= *deadline_;
  }

  /// Reads up to grain_ items; false when the input has none left (or threw).
  bool read_chunk(std::vector<in>& items) {
    try {
      if constexpr (std::sized_sentinel_for<std::ranges::sentinel_t<V>,
                                            std::ranges::iterator_t<V>> &&
                    std::default_initializable<in> && std::is_trivially_copyable_v<in>) {
        // The count is known up front: one copy loop without a bound check per item (an iota
        // or a vector of numbers, the tiny-item case).
        auto& it = *input_it_;
        const auto left = static_cast<std::size_t>(std::ranges::end(input_) - it);
        items.resize(std::min(grain_, left));
        for (auto& item : items) {
          item = *it;
          ++it;
        }
      } else {
        items.reserve(grain_);
        while (items.size() < grain_ && *input_it_ != std::ranges::end(input_)) {
          items.push_back(**input_it_);
          ++*input_it_;
        }
      }
    } catch (...) {
      input_done_ = true;
      throw;
    }
    if (items.size() < grain_) input_done_ = true;
    return !items.empty();
  }

  void fill() {
    while (!input_done_ && in_flight() < bound_) {
      if (past_deadline()) {
        timed_out_ = true;
        input_done_ = true;
        cut_at_deadline();
        return;
      }
      std::vector<in> items;
      if (!read_chunk(items)) return;
      batch b;
      b.first = next_index_;
      b.count = items.size();
      next_index_ += items.size();
      b.result = ex_->template submit<&detail::stream_chunk<Fn, in, local>>(std::move(items));
      if constexpr (Ordered) {
        ordered_.push_back(std::move(b));
      } else {
        const std::size_t slot = free_.back();
        free_.pop_back();
        slots_[slot].emplace(std::move(b));
        queue_->watch(slot, *slots_[slot]->result.state());
      }
    }
  }

  /// The next finished batch, or nullopt when nothing is in flight.
  std::optional<batch> take() {
    if constexpr (Ordered) {
      if (ordered_.empty()) return std::nullopt;
      // Waits on the batch in place: a progress callback that throws leaves it in the stream.
      const future<chunk_result>& front = ordered_.front().result;
      for (;;) {
        const auto until = wake_time();
        if (!until) {
          front.wait();
          break;
        }
        if (front.wait_until(*until) == std::future_status::ready) break;
        if (past_deadline()) {
          timed_out_ = true;
          cut_at_deadline();
          break;
        }
        progress_->tick();
      }
      batch b = std::move(ordered_.front());
      ordered_.pop_front();
      return b;
    } else {
      if (free_.size() == bound_) return std::nullopt;
      std::optional<std::size_t> slot;
      // A slot handed back past the deadline, unfinished, still reports when it completes:
      // such stale entries name empty slots and are skipped.
      while (!slot || !slots_[*slot]) {
        if (timed_out_) {
          slot = queue_->try_pop();
        } else {
          const auto until = wake_time();
          slot = queue_->pop(until ? &*until : nullptr);
          if (!slot && !past_deadline()) {  // a progress report is due, not the deadline
            progress_->tick();
            continue;
          }
        }
        if (!slot) {
          timed_out_ = true;
          cut_at_deadline();
          // Hand back what is left, ready or not: those not ready are timed out in unpack().
          for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (slots_[i]) {
              slot = i;
              break;
            }
          }
        }
      }
      batch b = std::move(*slots_[*slot]);
      slots_[*slot].reset();
      free_.push_back(*slot);
      return b;
    }
  }

  /// Makes `b` the batch being handed out: its per-item results, or one error for all its items.
  /// Items are turned into outcomes one at a time, as they are handed out.
  void unpack(batch& b) {
    current_items_.first.clear();
    current_items_.second.clear();
    current_value_ = 0;
    current_failure_ = 0;
    current_error_.reset();
    current_count_ = b.count;
    if (b.cut || !b.result.ready()) {
      // Past the deadline: the task did not finish in time.
      input_done_ = true;
      (void)b.result.cancel();
      current_error_.emplace(error_kind::timed_out,
                             "the stream's deadline passed before the item's task completed");
    } else {
      outcome<chunk_result> whole = b.result.result();
      if (!whole) {
        current_error_.emplace(whole.error());
      } else if (!well_formed(*whole, b.count)) {
        current_error_.emplace(
            error_kind::serialization,
            "a stream task's results do not match its " + std::to_string(b.count) + " items");
      } else {
        current_items_ = std::move(*whole);
      }
    }
    current_first_ = b.first;
    current_pos_ = 0;
  }

  /// Values and failures account for every item once, failures at ascending positions.
  static bool well_formed(const chunk_result& r, std::size_t count) {
    if (r.first.size() + r.second.size() != count) return false;
    for (std::size_t i = 0; i < r.second.size(); ++i) {
      if (r.second[i].first >= count) return false;
      if (i > 0 && r.second[i].first <= r.second[i - 1].first) return false;
    }
    return true;
  }

  /// Whether the item at current_pos_ is a value of the batch being handed out, and item_ holds
  /// a value (the previous item's) that it can be assigned to.
  [[nodiscard]] bool next_is_plain_value() const noexcept {
    if (current_pos_ == current_count_ || current_error_ || !item_ || !item_->has_value()) {
      return false;
    }
    const auto& failures = current_items_.second;
    return current_failure_ == failures.size() || failures[current_failure_].first != current_pos_;
  }

  /// The outcome of the item at current_pos_ of the batch being handed out.
  value_type next_outcome() {
    auto& [values, failures] = current_items_;
    if (current_failure_ < failures.size() && failures[current_failure_].first == current_pos_) {
      auto& error = failures[current_failure_++].second;
      if constexpr (local) {
        return value_type{task_error::from_exception(error)};
      } else {
        try {
          return value_type{detail::remote_exception_error(error, {})};
        } catch (const serialization_error& e) {
          return value_type{task_error{error_kind::serialization, e.what()}};
        }
      }
    }
    if constexpr (std::is_void_v<result_type>) {
      ++current_value_;
      return value_type{};
    } else {
      return value_type{std::move(values[current_value_++])};
    }
  }

  /// Items of the batch handed out so far: those counted in current_pos_, and those the
  /// iterator's fast path handed out since.
  [[nodiscard]] std::size_t handed_pos() const noexcept {
    return current_pos_ + static_cast<std::size_t>(run_next_ - run_mark_);
  }

  /// Opens the fast path over the values that follow the item just handed out, up to the next
  /// failure or the end of the batch — when the item holds a value it can be assigned to, and no
  /// progress callback needs to count each item.
  void open_run() noexcept {
    if constexpr (std::is_void_v<result_type> || std::is_move_assignable_v<result_type>) {
      if (progress_callback_ || current_error_ || !item_ || !item_->has_value()) return;
      const auto& failures = current_items_.second;
      const std::size_t stop =
          current_failure_ < failures.size() ? failures[current_failure_].first : current_count_;
      run_mark_ = run_next_ = current_items_.first.data() + current_value_;
      run_end_ = run_next_ + (stop - current_pos_);
      if constexpr (!std::is_void_v<result_type>) run_slot_ = &item_->value();
    }
  }

  /// Closes the fast path, counting what it handed out.
  void close_run() noexcept {
    const auto k = static_cast<std::size_t>(run_next_ - run_mark_);
    current_pos_ += k;
    current_value_ += k;
    progress_->add(k);  // each ++ on the fast path moved past an item
    run_mark_ = run_next_ = run_end_ = nullptr;
  }

  void advance() {
    close_run();
    if (item_) progress_->add(1);  // the caller is done with it
    if (next_is_plain_value()) {
      // A value follows a value, but the fast path was closed (a progress callback): assigned in
      // place all the same.
      if constexpr (std::is_void_v<result_type>) {
        ++current_value_;
      } else {
        item_->value() = std::move(current_items_.first[current_value_++]);
      }
      ++current_pos_;
      progress_->tick();
      return;
    }
    item_.reset();
    while (current_pos_ == current_count_) {
      fill();
      std::optional<batch> b = take();
      if (!b) {
        progress_->finish();
        return;
      }
      fill();  // keep the executor busy while the caller works on this batch
      unpack(*b);
    }
    if (current_error_) {
      item_.emplace(*current_error_);
    } else {
      item_.emplace(next_outcome());
    }
    ++current_pos_;
    open_run();
    progress_->tick();
  }

  E* ex_;
  V input_;
  std::optional<std::ranges::iterator_t<V>> input_it_;
  std::size_t grain_;
  stream_close on_close_;
  progress_callback progress_callback_;
  std::chrono::steady_clock::duration progress_interval_;
  std::optional<detail::progress_reporter> progress_;  // from begin(); refers to the callback
  std::size_t bound_ = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  bool started_ = false;
  bool input_done_ = false;
  bool timed_out_ = false;
  bool cut_done_ = false;
  std::size_t next_index_ = 0;

  std::deque<batch> ordered_;                        // Ordered: in submission order
  std::shared_ptr<detail::completion_queue> queue_;  // !Ordered
  std::vector<std::optional<batch>> slots_;          // !Ordered: by completion-queue slot
  std::vector<std::size_t> free_;                    // !Ordered: free slots

  chunk_result current_items_;               // the batch being handed out: its items' results,
  std::optional<task_error> current_error_;  // or the error of all of them
  std::size_t current_count_ = 0;
  std::size_t current_value_ = 0;    // next of current_items_.first
  std::size_t current_failure_ = 0;  // next of current_items_.second
  std::size_t current_first_ = 0;
  std::size_t current_pos_ = 0;  // items of the batch handed out, but the fast path's run
  std::optional<value_type> item_;
  // The iterator's fast path: values run_next_..run_end_ of current_items_.first are handed out
  // by assignment to *run_slot_ (the value in item_); run_mark_ is where the run started.
  detail::stream_value_t<result_type>* run_next_ = nullptr;
  detail::stream_value_t<result_type>* run_end_ = nullptr;
  detail::stream_value_t<result_type>* run_mark_ = nullptr;
  detail::stream_value_t<result_type>* run_slot_ = nullptr;
};

/// Fn over `inputs`, yielding per-item outcomes in input order (see the header comment).
template <auto Fn, executor E, std::ranges::input_range R>
requires std::ranges::viewable_range<R> && std::copy_constructible<std::ranges::range_value_t<R>>
[[nodiscard]] auto imap(E& ex, R&& inputs, const stream_options& options = {}) {
  return stream_range<Fn, E, std::views::all_t<R>, true>{
      ex, std::views::all(std::forward<R>(inputs)), options};
}

/// Fn over `inputs`, yielding per-item outcomes as their tasks complete; index() says which.
template <auto Fn, executor E, std::ranges::input_range R>
requires std::ranges::viewable_range<R> && std::copy_constructible<std::ranges::range_value_t<R>>
[[nodiscard]] auto imap_unordered(E& ex, R&& inputs, const stream_options& options = {}) {
  return stream_range<Fn, E, std::views::all_t<R>, false>{
      ex, std::views::all(std::forward<R>(inputs)), options};
}

}  // namespace crew
