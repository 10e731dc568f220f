// crew/detail/completion_queue.hpp — a fixed set of slots, each watching one future's state, and
// a queue of the slots whose state became ready, in the order they did. Used by imap_unordered
// (watch(): it owns the futures) and, as a detail::watcher, by wait and as_completed (futures
// the caller keeps).
//
// Lifetime: a watched state's continuation holds a shared_ptr to the queue, so a state that
// becomes ready after the queue's owner is gone still has somewhere to report (the queue goes
// with the last continuation). The queue also keeps a reference to each state it expects (watch,
// expect) until the state's slot is handed out, so that a pool worker blocked in pop() can run a
// task it waits for that has not started (crew/thread_pool.hpp, "Waiting"). Thread-safety:
// watch/pop are for the owner's thread; the continuations push from any thread. A slot is watched
// again only after it was popped, so the ring never holds more entries than there are slots and
// push never allocates (it runs in a noexcept continuation).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "crew/detail/notifier.hpp"
#include "crew/detail/shared_state.hpp"
#include "crew/detail/watch.hpp"

namespace crew::detail {

class completion_queue final : public watcher,
                               public std::enable_shared_from_this<completion_queue> {
 public:
  /// Use make(): the queue must be owned by a shared_ptr before watch().
  explicit completion_queue(std::size_t slots)
      : nodes_(slots), ring_(slots), expected_(slots, nullptr) {}
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;
  ~completion_queue() {
    for (state_base* state : expected_) {
      if (state != nullptr) state->release();
    }
  }

  static std::shared_ptr<completion_queue> make(std::size_t slots) {
    return std::make_shared<completion_queue>(slots);
  }

  [[nodiscard]] std::size_t slots() const noexcept { return nodes_.size(); }

  /// Reports `slot` once `state` is ready (at once, from this call, if it is already).
  /// Precondition: the slot is not watched now.
  void watch(std::size_t slot, state_base& state) {
    expect(slot, state);
    nodes_[slot].owner = this->shared_from_this();
    nodes_[slot].slot = slot;
    state.set_continuation(&nodes_[slot]);
  }

  /// The state that will report under `slot` (watch() says so itself; a caller that subscribes
  /// the queue with detail::watch() says it here): a pool worker blocked in pop() may run its
  /// task if it has not started. Owner's thread.
  void expect(std::size_t slot, state_base& state) {
    to_try_.push_back(slot);  // may throw: before anything else changes
    state.add_ref();
    forget(slot);
    expected_[slot] = &state;
  }

  /// As a watcher (crew/detail/watch.hpp): the slot is the tag. Same precondition as watch().
  void on_ready(std::size_t slot) noexcept override { push(slot); }

  /// A ready slot, if there is one; never blocks.
  std::optional<std::size_t> try_pop() {
    std::size_t slot = 0;
    {
      std::lock_guard lock{mutex_};
      if (count_ == 0) return std::nullopt;
      slot = ring_[head_];
      head_ = (head_ + 1) % ring_.size();
      --count_;
    }
    forget(slot);  // handed out: its owner may drop the state from now on
    return slot;
  }

  /// The next ready slot; blocks until there is one, or until `deadline` (null: no deadline)
  /// passes, then nullopt. On a pool worker it runs other tasks meanwhile.
  std::optional<std::size_t> pop(const std::chrono::steady_clock::time_point* deadline) {
    wait_helper* helper = current_wait_helper();
    for (;;) {
      if (auto slot = try_pop()) return slot;
      // On a pool worker: its own subtasks, else a task it waits for that has not started.
      if (helper != nullptr && (helper->try_run_one(nullptr) || run_one_unstarted())) continue;
      const std::uint32_t key = notifier_.prepare_wait();
      if (auto slot = try_pop()) {
        notifier_.cancel_wait();
        return slot;
      }
      std::chrono::nanoseconds nap{-1};                             // forever
      if (helper != nullptr) nap = std::chrono::microseconds{500};  // look for work again soon
      if (deadline != nullptr) {
        const auto left = *deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) {
          notifier_.cancel_wait();
          return try_pop();
        }
        const auto left_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left);
        if (nap.count() < 0 || left_ns < nap) nap = left_ns;
      }
      notifier_.commit_wait(key, nap);
    }
  }

 private:
  struct node final : continuation {
    std::shared_ptr<completion_queue> owner;
    std::size_t slot = 0;
    void on_ready(state_base& /*state*/) noexcept override {
      auto keep = std::move(owner);  // may be the last reference: *this is not used after push
      keep->push(slot);
    }
  };

  // Runs, on this pool worker, the task of an expected state that has not started and that the
  // worker may run (state_base::run_here). A state passed over (started, handed out, or not this
  // worker's to run) is never looked at again until it is expected anew: O(1) amortized.
  bool run_one_unstarted() noexcept {
    while (!to_try_.empty()) {
      state_base* state = expected_[to_try_.back()];
      if (state != nullptr && state->run_here()) return true;  // dropped on the next call
      to_try_.pop_back();
    }
    return false;
  }

  void forget(std::size_t slot) noexcept {
    if (state_base* state = std::exchange(expected_[slot], nullptr); state != nullptr) {
      state->release();
    }
  }

  void push(std::size_t slot) noexcept {
    {
      std::lock_guard lock{mutex_};
      ring_[(head_ + count_) % ring_.size()] = slot;
      ++count_;
    }
    notifier_.notify_all();
  }

  std::vector<node> nodes_;
  std::mutex mutex_;
  std::vector<std::size_t> ring_;  // guarded by mutex_
  std::size_t head_ = 0;           // guarded by mutex_
  std::size_t count_ = 0;          // guarded by mutex_
  notifier notifier_;
  std::vector<state_base*> expected_;  // owner's thread; a reference each, until handed out
  std::vector<std::size_t> to_try_;    // owner's thread; slots whose task may not have started
};

}  // namespace crew::detail
