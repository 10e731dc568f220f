// crew/shared_queue.hpp — a bounded multi-producer, multi-consumer queue of T, and a two-way
// channel, that work the same between threads and between processes.
//
// Purpose: the IPC the textbooks name, as a tool: producers and consumers in any mix of threads
// and processes (pool workers included: a queue passed to a task crosses as its memory's
// descriptor, see crew/shared_array.hpp) exchange values of any serializable T (crew/codec.hpp)
// through one region of shared memory. Switching the other side from a thread to a process is
// one line: the queue is the same.
//
//   auto jobs = crew::shared_queue<job>::create(1 << 20);  // 1 MiB of messages
//   pool.submit<&consume>(jobs);  // void consume(crew::shared_queue<job>)
//   jobs.push(job{...});          // ... and at the end jobs.close(): consumers drain, then
//                                 // pop() returns nothing
//
// Semantics: FIFO for each producer; push blocks while the queue is full, pop while it is empty,
// each with an optional timeout (try_ and _for forms). close() ends the queue: pushes are
// refused (queue_closed), pops drain what is left and then return nothing.
// Faults: every operation commits with one store under a robust process-shared mutex, so a
// participant killed at any moment — SIGKILL mid-push, mid-pop, or while waiting — loses and
// duplicates nothing that was committed: a push that returned is delivered exactly once, a pop
// that did not return leaves its message for the next consumer. The next locker takes over the
// dead holder's lock (recoveries() counts these). Waits re-check the queue at least every
// 100 ms, so a wake-up lost with a dead participant delays a waiter, never strands it.
// Errors: a message larger than the queue can ever hold is std::length_error naming both sizes,
// before anything is taken; an encoding failure is crew::serialization_error and nothing is
// pushed; a message that fails to decode is consumed and reported as serialization_error.
// Thread-safety: every member may be called from any thread of any process holding a handle.
// Lifetime: handles share ownership of the memory as crew::shared_array does; it is freed with
// the last handle in the last process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include "crew/codec.hpp"
#include "crew/shared_array.hpp"

namespace crew {

/// push() on a closed queue.
class queue_closed : public std::runtime_error {
 public:
  queue_closed() : std::runtime_error("crew::shared_queue: the queue is closed") {}
};

namespace detail {

/// The byte-level queue in a shared region: what shared_queue<T> is made of.
class queue_core {
 public:
  enum class status { ok, full, empty, closed, timed_out };
  using clock = std::chrono::steady_clock;

  queue_core() noexcept = default;
  /// A new queue with `capacity` bytes of messages (each costs its encoded size plus 8 bytes).
  static queue_core create(std::size_t capacity);
  /// A queue over memory received from another process (checks its header).
  static queue_core adopt(shared_array<std::byte> memory);

  /// Appends `message`. `deadline`: none waits as long as needed; clock::time_point::min() does
  /// not wait at all.
  status push(std::span<const std::byte> message, std::optional<clock::time_point> deadline);
  /// Takes the oldest message into `out` (resized to fit).
  status pop(std::vector<std::byte>& out, std::optional<clock::time_point> deadline);
  void close();
  [[nodiscard]] bool closed() const;
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::size_t capacity() const noexcept;
  /// The largest message that can ever be pushed.
  [[nodiscard]] std::size_t max_message() const noexcept;
  [[nodiscard]] std::uint64_t recoveries() const;
  [[nodiscard]] const shared_array<std::byte>& memory() const noexcept { return memory_; }
  [[nodiscard]] bool valid() const noexcept { return !memory_.empty(); }

 private:
  explicit queue_core(shared_array<std::byte> memory) noexcept : memory_(std::move(memory)) {}
  shared_array<std::byte> memory_;
};

[[noreturn]] void throw_empty_queue_handle();
[[noreturn]] void throw_message_too_large(std::size_t bytes, std::size_t largest);

}  // namespace detail

template <class T>
class shared_queue {
  static_assert(codec::serializable<T>, "crew::shared_queue<T>: T must be serializable");

 public:
  using value_type = T;
  using clock = std::chrono::steady_clock;

  /// An empty handle: every operation throws std::logic_error.
  shared_queue() noexcept = default;

  /// A new queue holding up to `capacity_bytes` of messages (each takes its encoded size plus 8
  /// bytes; at least 64 bytes).
  [[nodiscard]] static shared_queue create(std::size_t capacity_bytes) {
    shared_queue q;
    q.core_ = detail::queue_core::create(capacity_bytes);
    return q;
  }

  /// Waits while the queue is full. Throws queue_closed after close().
  void push(const T& value) { (void)push_until(value, std::nullopt); }
  /// False when the queue is full. Throws queue_closed after close().
  [[nodiscard]] bool try_push(const T& value) {
    return push_until(value, clock::time_point::min());
  }
  /// False when still full after `timeout`. Throws queue_closed after close().
  template <class Rep, class Period>
  [[nodiscard]] bool push_for(const T& value, std::chrono::duration<Rep, Period> timeout) {
    return push_until(value, clock::now() + timeout);
  }

  /// The oldest value; waits while the queue is empty. Nothing once it is closed and drained.
  [[nodiscard]] std::optional<T> pop() { return pop_until(std::nullopt); }
  /// The oldest value, or nothing when empty (or closed and drained).
  [[nodiscard]] std::optional<T> try_pop() { return pop_until(clock::time_point::min()); }
  /// The oldest value, or nothing after `timeout` (or when closed and drained: see closed()).
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> pop_for(std::chrono::duration<Rep, Period> timeout) {
    return pop_until(clock::now() + timeout);
  }

  /// Refuses later pushes and wakes every waiter; what is queued can still be popped.
  void close() { core().close(); }
  [[nodiscard]] bool closed() const { return core().closed(); }
  /// Messages queued now (a snapshot).
  [[nodiscard]] std::size_t size() const { return core().size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] std::size_t capacity_bytes() const { return core().capacity(); }
  /// Locks taken over from a participant that died holding the queue's lock.
  [[nodiscard]] std::uint64_t recoveries() const { return core().recoveries(); }

  template <class Archive>
  void serialize(Archive& ar) {
    shared_array<std::byte> memory = core_.memory();
    ar(memory);
    if constexpr (Archive::is_loading) core_ = detail::queue_core::adopt(std::move(memory));
  }

 private:
  detail::queue_core& core() {
    if (!core_.valid()) detail::throw_empty_queue_handle();
    return core_;
  }
  const detail::queue_core& core() const {
    if (!core_.valid()) detail::throw_empty_queue_handle();
    return core_;
  }

  bool push_until(const T& value, std::optional<clock::time_point> deadline) {
    detail::queue_core& q = core();
    thread_local std::vector<std::byte> buffer;
    const std::size_t bytes = codec::encoded_size(value);
    if (bytes > q.max_message()) detail::throw_message_too_large(bytes, q.max_message());
    buffer.resize(bytes);
    codec::encode_into(buffer, value);
    switch (q.push(buffer, deadline)) {
      case detail::queue_core::status::ok:
        return true;
      case detail::queue_core::status::closed:
        throw queue_closed{};
      default:
        return false;
    }
  }

  std::optional<T> pop_until(std::optional<clock::time_point> deadline) {
    detail::queue_core& q = core();
    thread_local std::vector<std::byte> buffer;
    if (q.pop(buffer, deadline) != detail::queue_core::status::ok) return std::nullopt;
    T value{};
    codec::decode_into(buffer, value);
    return value;
  }

  detail::queue_core core_;
};

/// One end of a two-way channel: sends `Send`, receives `Receive`. Made in pairs by
/// make_channel; each end may go to another thread or process (a task argument).
template <class Send, class Receive>
class channel_end {
 public:
  channel_end() noexcept = default;
  channel_end(shared_queue<Send> out, shared_queue<Receive> in) noexcept
      : out_(std::move(out)), in_(std::move(in)) {}

  void send(const Send& value) { out_.push(value); }
  template <class Rep, class Period>
  [[nodiscard]] bool send_for(const Send& value, std::chrono::duration<Rep, Period> timeout) {
    return out_.push_for(value, timeout);
  }
  /// The next value from the other end; nothing once the other end closed and all was read.
  [[nodiscard]] std::optional<Receive> receive() { return in_.pop(); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<Receive> receive_for(std::chrono::duration<Rep, Period> timeout) {
    return in_.pop_for(timeout);
  }
  [[nodiscard]] std::optional<Receive> try_receive() { return in_.try_pop(); }
  /// No more sends from this end: the other end's receive() ends after what was sent.
  void close() { out_.close(); }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(out_, in_);
  }

 private:
  shared_queue<Send> out_;
  shared_queue<Receive> in_;
};

/// Two connected ends: the first sends A and receives B, the second the reverse. Each direction
/// holds `capacity_bytes` of messages.
template <class A, class B>
[[nodiscard]] std::pair<channel_end<A, B>, channel_end<B, A>> make_channel(
    std::size_t capacity_bytes) {
  auto forward = shared_queue<A>::create(capacity_bytes);
  auto backward = shared_queue<B>::create(capacity_bytes);
  return {channel_end<A, B>{forward, backward}, channel_end<B, A>{backward, forward}};
}

}  // namespace crew
