// crew/when.hpp — waiting on many futures: `as_completed` (one by one, in the order they finish)
// and `when_all` (one future for all of them). Both work with futures from any crew executor,
// mixed.
//
// Thread-safety: an as_completed range is used by one thread. Blocking: next()/iteration blocks
// until some future is ready; on a pool worker it runs other tasks meanwhile. Lifetime: the range
// owns the futures it was given; it may be destroyed while tasks still run.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "crew/detail/notifier.hpp"
#include "crew/future.hpp"

namespace crew {
namespace detail {

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
      if (helper != nullptr && helper->try_run_one(next_unstarted())) continue;
      const std::uint32_t key = notifier_.prepare_wait();
      if (pop(index)) {
        notifier_.cancel_wait();
        return index;
      }
      notifier_.commit_wait(
          key, helper != nullptr ? std::chrono::microseconds{500} : std::chrono::nanoseconds{-1});
    }
  }

  // The first future whose task has not started, for a pool worker that waits here to run it
  // (wait_helper::try_run_one). A task seen started runs somewhere already, so each future is
  // passed over once: the whole scan costs O(n) however many times this is called.
  state_base* next_unstarted() noexcept {
    for (; scan_ < futures_.size(); ++scan_) {
      state_base* state = futures_[scan_].state();
      if (state != nullptr && state->status() == state_base::pending) return state;
    }
    return nullptr;
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
as_completed_range<T> as_completed(std::vector<future<T>> futures) {
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

}  // namespace crew
