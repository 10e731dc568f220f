// crew/when.hpp — waiting on many futures from any crew executors, mixed:
//   as_completed   one by one, in the order they finish (owning them, or over the caller's
//                  vector; optionally with a timeout)
//   when_all       one future for all of them
//   when_any       one future for the first of them (index + all the futures)
//   wait           block until FIRST_COMPLETED / FIRST_EXCEPTION / ALL_COMPLETED, optionally
//                  with a timeout: which are done, which are not (concurrent.futures.wait)
//   then           a callback on a future's result, giving a future for the callback's result
//
// Thread-safety: a range or a future is used by one thread at a time; the futures passed by
// reference must not be used by another thread during the call. Blocking: iteration and wait()
// block until some future is ready (or the timeout); on a pool worker they run other tasks of the
// pool meanwhile. when_all/when_any/then never block. Lifetime: owning ranges and the futures
// returned by when_all/when_any/then own the futures they were given; nothing here needs the
// executors to outlive it. docs/api.md describes every call and its edge cases.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <type_traits>

#include "crew/detail/completion_queue.hpp"
#include "crew/detail/notifier.hpp"
#include "crew/detail/watch.hpp"
#include "crew/future.hpp"

namespace crew {
namespace detail {

/// A state completed by continuations on other states (when_any, then). A pool worker that waits
/// on it may run the tasks of those states that have not started, as it would run a task it
/// waited for directly (crew/thread_pool.hpp, "Waiting"): with one worker nothing else could.
/// Holds a reference to each such state, since its continuation may drop the state before this
/// one is ready.
template <class R>
class dependent_state final : public shared_state<R> {
 public:
  dependent_state() = default;
  dependent_state(const dependent_state&) = delete;
  dependent_state& operator=(const dependent_state&) = delete;

  /// Before the state is shared with anybody.
  void depends_on(state_base& state) {
    inner_.push_back(&state);  // may throw: before the reference is taken
    state.add_ref();
  }

 protected:
  ~dependent_state() override {
    for (state_base* state : inner_) state->release();
  }

 private:
  // Called by the one thread that waits on this state. A state passed over (started, or not this
  // worker's to run) is never looked at again: O(n) over the whole wait.
  bool run_on_worker() noexcept override {
    for (; scan_ < inner_.size(); ++scan_) {
      if (inner_[scan_]->run_here()) return true;
    }
    return false;
  }

  std::vector<state_base*> inner_;
  std::size_t scan_ = 0;
};

/// Completion order of a set of futures. Kept alive by its owner and by every continuation that
/// has not fired yet, so a state finishing after the owner is gone still has somewhere to report.
template <class T>
class completion_set : public std::enable_shared_from_this<completion_set<T>> {
 public:
  explicit completion_set(std::vector<future<T>> futures) : futures_(std::move(futures)) {
    nodes_.resize(futures_.size());
    done_.reserve(futures_.size());  // push() must not allocate: it runs in a noexcept callback
  }

  void arm() {
    for (std::size_t i = 0; i < futures_.size(); ++i) {
      nodes_[i].owner = this->shared_from_this();
      nodes_[i].index = i;
      futures_[i].state()->set_continuation(&nodes_[i]);
    }
  }

  std::optional<future<T>> next() {
    if (taken_ == futures_.size()) return std::nullopt;
    const std::size_t index = wait_for_one();
    ++taken_;
    return std::move(futures_[index]);
  }

  [[nodiscard]] std::size_t size() const noexcept { return futures_.size(); }

 private:
  struct node final : continuation {
    std::shared_ptr<completion_set> owner;
    std::size_t index = 0;
    void on_ready(state_base& /*state*/) noexcept override {
      auto keep = std::move(owner);  // may be the last reference: nothing of *this is used after
      keep->push(index);
    }
  };

  void push(std::size_t index) noexcept {
    {
      std::lock_guard lock{mutex_};
      done_.push_back(index);
    }
    notifier_.notify_all();
  }

  bool pop(std::size_t& index) {
    std::lock_guard lock{mutex_};
    if (head_ == done_.size()) return false;
    index = done_[head_++];
    return true;
  }

  std::size_t wait_for_one() {
    std::size_t index = 0;
    wait_helper* helper = current_wait_helper();
    for (;;) {
      if (pop(index)) return index;
      // On a pool worker: its own subtasks, else a task it waits for that has not started.
      if (helper != nullptr && (helper->try_run_one(nullptr) || run_one_unstarted())) continue;
      const std::uint32_t key = notifier_.prepare_wait();
      if (pop(index)) {
        notifier_.cancel_wait();
        return index;
      }
      notifier_.commit_wait(
          key, helper != nullptr ? std::chrono::microseconds{500} : std::chrono::nanoseconds{-1});
    }
  }

  // Runs, on this pool worker, the task of a future here that has not started and that the
  // worker may run (state_base::run_here). A future passed over (started, handed out, or not this
  // worker's to run) is never looked at again: O(n) over the whole wait.
  bool run_one_unstarted() noexcept {
    for (; scan_ < futures_.size(); ++scan_) {
      state_base* state = futures_[scan_].state();
      if (state != nullptr && state->run_here()) return true;
    }
    return false;
  }

  std::vector<future<T>> futures_;
  std::size_t scan_ = 0;
  std::vector<node> nodes_;
  std::mutex mutex_;
  std::vector<std::size_t> done_;
  std::size_t head_ = 0;
  std::size_t taken_ = 0;
  notifier notifier_;
};

}  // namespace detail

/// The futures, handed back one at a time as each becomes ready. Usage:
///   for (crew::future<int>& f : crew::as_completed(std::move(futures))) use(f.get());
template <class T>
class as_completed_range {
 public:
  explicit as_completed_range(std::vector<future<T>> futures)
      : set_(std::make_shared<detail::completion_set<T>>(std::move(futures))) {
    set_->arm();
  }

  /// The next future to complete, or nullopt when all were handed out. Blocks.
  std::optional<future<T>> next() { return set_->next(); }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = future<T>;
    using difference_type = std::ptrdiff_t;
    using pointer = future<T>*;
    using reference = future<T>&;

    iterator() = default;
    explicit iterator(as_completed_range* range) : range_(range) { advance(); }
    reference operator*() { return *current_; }
    pointer operator->() { return &*current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.current_; }

   private:
    void advance() { current_ = range_->next(); }
    as_completed_range* range_ = nullptr;
    std::optional<future<T>> current_;
  };

  iterator begin() { return iterator{this}; }
  std::default_sentinel_t end() { return {}; }

 private:
  std::shared_ptr<detail::completion_set<T>> set_;
};

/// Hands the futures back in completion order. Every future must be valid (std::future_error
/// with no_state otherwise, before anything is waited for).
template <class T>
as_completed_range<T> as_completed(std::vector<future<T>>&& futures) {
  for (const auto& f : futures) {
    if (!f.valid()) throw std::future_error(std::future_errc::no_state);
  }
  return as_completed_range<T>{std::move(futures)};
}

namespace detail {

template <class T>
class all_state final : public shared_state<std::vector<future<T>>> {
 public:
  explicit all_state(std::vector<future<T>> futures)
      : futures_(std::move(futures)), nodes_(futures_.size()), left_(futures_.size() + 1) {}

  void arm() {
    for (std::size_t i = 0; i < futures_.size(); ++i) {
      nodes_[i].owner = this;
      this->add_ref();  // each armed continuation keeps the state alive until it fires
      futures_[i].state()->set_continuation(&nodes_[i]);
    }
    arrive();
  }

 private:
  struct node final : continuation {
    all_state* owner = nullptr;
    void on_ready(state_base& /*state*/) noexcept override {
      all_state* self = owner;
      self->arrive();
      self->release();
    }
  };

  void arrive() noexcept {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) this->set_value(std::move(futures_));
  }

  // A pool worker waits on this state: it runs one of the tasks this state waits for that has
  // not started, as it would run a task it waited for directly (see crew/thread_pool.hpp,
  // "Waiting"). Reads the states saved at construction, never futures_, which the last arrive()
  // moves out meanwhile; the states stay alive in futures_ or in the value. A task seen started
  // runs somewhere already, so each is passed over once: O(n) over the whole wait.
  bool run_on_worker() noexcept override {
    for (; scan_ < inner_.size(); ++scan_) {
      if (inner_[scan_]->run_here()) return true;
    }
    return false;
  }

  static std::vector<state_base*> states_of(const std::vector<future<T>>& futures) {
    std::vector<state_base*> out;
    out.reserve(futures.size());
    for (const auto& f : futures) out.push_back(f.state());
    return out;
  }

  std::vector<future<T>> futures_;
  std::vector<state_base*> inner_ = states_of(futures_);
  std::size_t scan_ = 0;  // used by the one thread that waits on this state
  std::vector<node> nodes_;
  std::atomic<std::size_t> left_;
};

}  // namespace detail

/// One future that becomes ready when every future in `futures` is ready; it holds them all,
/// ready, in their original order. Every future must be valid (std::future_error otherwise).
template <class T>
future<std::vector<future<T>>> when_all(std::vector<future<T>> futures) {
  for (const auto& f : futures) {
    if (!f.valid()) throw std::future_error(std::future_errc::no_state);
  }
  auto* state = new detail::all_state<T>(std::move(futures));
  detail::state_ptr<detail::shared_state<std::vector<future<T>>>> ptr{state};
  state->arm();
  return future<std::vector<future<T>>>{std::move(ptr)};
}

// ------------------------------------------------------------- as_completed with a timeout

/// The futures of a vector in the order they become ready, as references into that vector (the
/// caller's, or one the range owns). Iteration ends when every future was handed out, or when
/// the timeout passes: then timed_out() is true and the futures not handed out are still in the
/// vector, untouched (concurrent.futures raises TimeoutError; a range cannot, so check).
template <class T>
class completion_order {
 public:
  completion_order(std::vector<future<T>>* futures, std::vector<future<T>> owned,
                   std::optional<std::chrono::steady_clock::time_point> deadline)
      : owned_(std::move(owned)),
        futures_(futures != nullptr ? futures : &owned_),
        deadline_(deadline) {
    for (const auto& f : *futures_) {
      if (!f.valid()) throw std::future_error(std::future_errc::no_state);
    }
    queue_ = detail::completion_queue::make(futures_->size());
    for (std::size_t i = 0; i < futures_->size(); ++i) {
      queue_->expect(i, *(*futures_)[i].state());
      detail::watch(*(*futures_)[i].state(), queue_, i);
    }
  }
  completion_order(const completion_order&) = delete;
  completion_order& operator=(const completion_order&) = delete;
  ~completion_order() { release(); }

  /// The index (into the vector) of the next future to be ready, or nullopt at the end.
  std::optional<std::size_t> next_index() {
    if (taken_ == futures_->size() || timed_out_) return std::nullopt;
    std::optional<std::size_t> slot = queue_->pop(deadline_ ? &*deadline_ : nullptr);
    if (!slot) {
      timed_out_ = true;
      release();
      return std::nullopt;
    }
    ++taken_;
    return slot;
  }

  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(completion_order* range) : range_(range) { advance(); }
    future<T>& operator*() const { return (*range_->futures_)[*index_]; }
    future<T>* operator->() const { return &**this; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.index_; }

   private:
    void advance() { index_ = range_->next_index(); }
    completion_order* range_ = nullptr;
    std::optional<std::size_t> index_;
  };

  iterator begin() { return iterator{this}; }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Whether iteration ended because the timeout passed.
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_; }
  /// The futures (the caller's vector, or the one the range owns).
  std::vector<future<T>>& futures() noexcept { return *futures_; }

 private:
  /// Stops watching the futures not ready yet (so that they can be waited on again cheaply).
  void release() noexcept {
    if (!queue_) return;
    for (auto& f : *futures_) {
      if (f.valid()) detail::unwatch(*f.state(), queue_.get());
    }
  }

  std::vector<future<T>> owned_;
  std::vector<future<T>>* futures_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::shared_ptr<detail::completion_queue> queue_;
  std::size_t taken_ = 0;
  bool timed_out_ = false;
};

/// The caller's futures in completion order, as references into `futures` (which must outlive
/// the range and not be resized meanwhile; the futures stay in it, so they can be read at any
/// time). Every future must be valid (std::future_error with no_state otherwise).
template <class T>
completion_order<T> as_completed(std::vector<future<T>>& futures) {
  return completion_order<T>{&futures, {}, std::nullopt};
}

/// As above, ending when `timeout` passes (zero or negative: hands out only those ready now).
template <class T, class Rep, class Period>
completion_order<T> as_completed(std::vector<future<T>>& futures,
                                 std::chrono::duration<Rep, Period> timeout) {
  return completion_order<T>{&futures,
                             {},
                             std::chrono::steady_clock::now() +
                                 std::chrono::ceil<std::chrono::steady_clock::duration>(timeout)};
}

/// Owning the futures, ending when `timeout` passes; futures() holds those not handed out.
template <class T, class Rep, class Period>
completion_order<T> as_completed(std::vector<future<T>>&& futures,
                                 std::chrono::duration<Rep, Period> timeout) {
  return completion_order<T>{nullptr, std::move(futures),
                             std::chrono::steady_clock::now() +
                                 std::chrono::ceil<std::chrono::steady_clock::duration>(timeout)};
}

// ---------------------------------------------------------------------------------- when_any

/// What when_any's future holds: every future it was given, in their order, and the index of
/// one that is ready (the first seen ready). For an empty set, index is npos.
template <class T>
struct when_any_result {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t index = npos;
  std::vector<future<T>> futures;
};

namespace detail {

template <class T>
class any_watcher final : public watcher {
 public:
  any_watcher(std::vector<future<T>> futures, state_ptr<shared_state<when_any_result<T>>> result)
      : futures_(std::move(futures)), result_(std::move(result)) {}

  void on_ready(std::size_t index) noexcept override {
    if (fired_.exchange(true, std::memory_order_acq_rel)) return;
    for (std::size_t i = 0; i < futures_.size(); ++i) {
      if (i != index) unwatch(*futures_[i].state(), this);
    }
    auto result = std::move(result_);
    result->set_value(when_any_result<T>{index, std::move(futures_)});
  }

 private:
  std::atomic<bool> fired_{false};
  std::vector<future<T>> futures_;
  state_ptr<shared_state<when_any_result<T>>> result_;
};

}  // namespace detail

/// One future that becomes ready as soon as one of `futures` is; it holds them all. Every
/// future must be valid (std::future_error otherwise). An empty set gives a future that is ready
/// at once, with index npos and no futures (as std::experimental::when_any).
template <class T>
future<when_any_result<T>> when_any(std::vector<future<T>> futures) {
  for (const auto& f : futures) {
    if (!f.valid()) throw std::future_error(std::future_errc::no_state);
  }
  auto typed = detail::make_state<detail::dependent_state<when_any_result<T>>>();
  for (auto& f : futures) typed->depends_on(*f.state());
  detail::state_ptr<detail::shared_state<when_any_result<T>>> state{std::move(typed)};
  future<when_any_result<T>> out{state};
  if (futures.empty()) {
    state->set_value(when_any_result<T>{});
    return out;
  }
  std::vector<detail::state_base*> states;
  states.reserve(futures.size());
  for (auto& f : futures) states.push_back(f.state());
  auto w = std::make_shared<detail::any_watcher<T>>(std::move(futures), std::move(state));
  // The futures now live in the watcher; their states are kept alive by the watcher (until it
  // fires) and then by the result.
  for (std::size_t i = 0; i < states.size(); ++i) {
    detail::watch(*states[i], w, i);
    if (states[i]->is_ready()) break;  // fired: the rest need no watching
  }
  return out;
}

// -------------------------------------------------------------------------------------- wait

/// When wait() returns (concurrent.futures' FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class return_when {
  first_completed,  ///< as soon as any future is ready
  first_exception,  ///< as soon as any future fails (holds a task_error), else when all are ready
  all_completed,    ///< when every future is ready
};

/// Which futures were ready when wait() returned, as indices into its vector, ascending.
struct wait_result {
  std::vector<std::size_t> done;
  std::vector<std::size_t> not_done;
};

namespace detail {

template <class T>
bool wait_satisfied(const std::vector<future<T>>& futures, return_when when) {
  bool all = true;
  for (const auto& f : futures) {
    const bool ready = f.state()->is_ready();
    if (ready && when == return_when::first_completed) return true;
    if (ready && when == return_when::first_exception && f.state()->has_error()) return true;
    all = all && ready;
  }
  return all;
}

template <class T>
wait_result wait_impl(std::vector<future<T>>& futures, return_when when,
                      const std::chrono::steady_clock::time_point* deadline) {
  for (const auto& f : futures) {
    if (!f.valid()) throw std::future_error(std::future_errc::no_state);
  }
  if (!wait_satisfied(futures, when) &&
      (deadline == nullptr || std::chrono::steady_clock::now() < *deadline)) {
    auto queue = completion_queue::make(futures.size());
    for (std::size_t i = 0; i < futures.size(); ++i) {
      if (futures[i].state()->is_ready()) continue;
      queue->expect(i, *futures[i].state());
      watch(*futures[i].state(), queue, i);
    }
    while (!wait_satisfied(futures, when)) {
      if (!queue->pop(deadline)) break;  // timed out
    }
    for (auto& f : futures) unwatch(*f.state(), queue.get());
  }
  wait_result out;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    (futures[i].state()->is_ready() ? out.done : out.not_done).push_back(i);
  }
  return out;
}

}  // namespace detail

/// Blocks until the condition `when` holds for `futures` (which stay in the caller's vector,
/// unconsumed). Every future must be valid (std::future_error otherwise); an empty vector
/// returns at once with both sets empty.
template <class T>
wait_result wait(std::vector<future<T>>& futures, return_when when = return_when::all_completed) {
  return detail::wait_impl(futures, when, nullptr);
}

/// As above, returning when `timeout` passes at the latest (zero or negative: looks once, never
/// blocks). A timeout is not an error: not_done says what is still running.
template <class T, class Rep, class Period>
wait_result wait(std::vector<future<T>>& futures, return_when when,
                 std::chrono::duration<Rep, Period> timeout) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
  return detail::wait_impl(futures, when, &deadline);
}

// -------------------------------------------------------------------------------------- then

namespace detail {

template <class T, class F>
using then_result_t = std::decay_t<std::invoke_result_t<F&, outcome<T>>>;

template <class T, class F>
class then_watcher final : public watcher {
 public:
  using R = then_result_t<T, F>;
  then_watcher(future<T> source, F fn, state_ptr<shared_state<R>> result)
      : source_(std::move(source)), fn_(std::move(fn)), result_(std::move(result)) {}

  void on_ready(std::size_t /*tag*/) noexcept override {
    auto result = std::move(result_);
    try {
      outcome<T> value = source_.result();  // ready: does not block
      if constexpr (std::is_void_v<R>) {
        std::invoke(fn_, std::move(value));
        result->set_value();
      } else {
        result->set_value(std::invoke(fn_, std::move(value)));
      }
    } catch (...) {
      result->set_exception(std::current_exception());
    }
  }

 private:
  future<T> source_;
  F fn_;
  state_ptr<shared_state<R>> result_;
};

}  // namespace detail

/// Runs fn(outcome<T>) once `f` is ready — on the thread that completes it (a pool worker, a
/// process pool's result thread), or at once in this call if it is ready already — and returns a
/// future for fn's result. fn receives the value or the task_error, so it runs for failures too.
/// If fn throws, the returned future holds that exception: get() rethrows it, result() gives a
/// task_error of kind exception whose original() is it. Keep fn short: it delays whatever that
/// thread does next (submit a task from it for long work); it may wait for other tasks of the
/// same pool (docs/api.md, "Continuations"). `f` is consumed
/// (std::future_error with no_state if it is not valid).
template <class T, class F>
requires std::invocable < std::decay_t<F>
&, outcome < T >> auto then(future<T> f, F&& fn)
                      -> future<detail::then_result_t<T, std::decay_t<F>>> {
  using R = detail::then_result_t<T, std::decay_t<F>>;
  if (!f.valid()) throw std::future_error(std::future_errc::no_state);
  auto typed = detail::make_state<detail::dependent_state<R>>();
  typed->depends_on(*f.state());
  detail::state_ptr<detail::shared_state<R>> state{std::move(typed)};
  future<R> out{state};
  detail::state_base* source = f.state();
  auto w = std::make_shared<detail::then_watcher<T, std::decay_t<F>>>(
      std::move(f), std::forward<F>(fn), std::move(state));
  detail::watch(*source, std::move(w), 0);
  return out;
}

}  // namespace crew
