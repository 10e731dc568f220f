// crew/sync.hpp — synchronisation that works the same between threads and between processes,
// and survives a participant's death: a robust mutex, a condition variable, a semaphore, a
// barrier, a latch and an atomic counter.
//
// Purpose: processes that share data (crew::shared_array, crew::shared_queue) need the locks
// threads use, and a lock that a crashed process held must not stop the others. Each type here
// is a handle to its state in a page of shared memory (a memfd, as crew::shared_array): copy it
// to another thread, let a forked child inherit it, or pass it to a pool task as an argument —
// every copy is the same object.
//
//   auto m = crew::process_mutex::create();
//   auto total = crew::shared_counter::create();
//   pool.submit<&work>(m, total);                     // void work(crew::process_mutex, ...)
//   std::lock_guard lock{m};                          // std's lock types work as with std::mutex
//   if (m.owner_died()) { repair(); m.consistent(); } // the last holder died inside
//
// Death of a participant:
//   - process_mutex is robust: when its holder dies, the next lock() acquires it and
//     owner_died() says so; the new holder repairs what the lock guards and calls consistent().
//     Unlocking without consistent() makes the mutex unrecoverable: every later lock() throws
//     std::system_error (ENOTRECOVERABLE) with a message saying why — never a silent poison,
//     never a hang.
//   - process_condition_variable, semaphore, barrier and latch keep no owner, so a death leaves
//     them consistent; what a dead participant would have done (a release, an arrival, a
//     count_down) does not happen, so waits that depend on it should have a timeout
//     (try_acquire_for, arrive_and_wait_for, wait_for).
// Memory ordering: each gives the happens-before of its std:: counterpart (a release and the
// acquire that takes it, a barrier phase, a latch reaching zero, the counter's memory_order).
// Handles: create() makes the state; a default-constructed handle is empty and every operation
// on it throws std::logic_error. Bad arguments (a barrier of 0, a count_down below zero) throw
// std::invalid_argument. Thread-safety: every member, from any thread of any process.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "crew/codec.hpp"
#include "crew/shared_array.hpp"

namespace crew {

namespace detail {

/// One page of shared memory holding a synchronisation object's state, tagged with its kind.
class sync_memory {
 public:
  sync_memory() noexcept = default;
  /// A fresh zero-filled page tagged `kind`.
  static sync_memory create(std::uint32_t kind);

  /// The state, placed after the tag; throws std::logic_error on an empty handle.
  template <class State>
  [[nodiscard]] State* state() const {
    return reinterpret_cast<State*>(checked() + state_offset);
  }
  [[nodiscard]] bool empty() const noexcept { return memory_.empty(); }

  /// Sends the page along; after receiving, checks that it holds an object of `kind`.
  template <class Archive>
  void serialize(Archive& ar, std::uint32_t kind) {
    ar(memory_);
    if constexpr (Archive::is_loading) check_kind(kind);
  }

  static constexpr std::size_t state_offset = 64;

 private:
  [[nodiscard]] std::byte* checked() const;
  void check_kind(std::uint32_t kind) const;
  shared_array<std::byte> memory_;
};

[[noreturn]] void throw_empty_sync_handle();

/// A steady_clock deadline as a CLOCK_MONOTONIC timespec (libstdc++'s steady_clock is
/// CLOCK_MONOTONIC); deadlines of other clocks are converted through the time left.
timespec monotonic_deadline(std::chrono::steady_clock::time_point deadline) noexcept;
template <class Clock, class Duration>
std::chrono::steady_clock::time_point to_steady(std::chrono::time_point<Clock, Duration> t) {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    return std::chrono::time_point_cast<std::chrono::steady_clock::duration>(t);
  } else {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(t - Clock::now());
  }
}

}  // namespace detail

/// A robust, process-shared mutex (Lockable and TimedLockable: std::lock_guard,
/// std::unique_lock and std::scoped_lock work). Not recursive: locking it again from the thread
/// that holds it deadlocks, as std::mutex does.
class process_mutex {
 public:
  process_mutex() noexcept = default;
  [[nodiscard]] static process_mutex create();

  void lock() {
    if (const int rc = pthread_mutex_lock(native_handle()); rc != 0) (void)took(rc, "lock");
  }
  [[nodiscard]] bool try_lock();
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_lock_until(std::chrono::steady_clock::now() + timeout);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) {
    return lock_until(detail::to_steady(deadline));
  }
  void unlock() {
    if (const int rc = pthread_mutex_unlock(native_handle()); rc != 0) unlock_failed(rc);
  }

  /// For the holder: true when it took the lock from a holder that died holding it, until
  /// consistent() is called.
  [[nodiscard]] bool owner_died() const;
  /// For the holder: what the lock guards is repaired; the mutex is usable again after unlock().
  void consistent();

  /// The pthread mutex itself.
  [[nodiscard]] pthread_mutex_t* native_handle() const {
    if (mu_ == nullptr) detail::throw_empty_sync_handle();
    return mu_;
  }

  template <class Archive>
  void serialize(Archive& ar) {
    memory_.serialize(ar, kind);
    if constexpr (Archive::is_loading) mu_ = memory_.empty() ? nullptr : find_mutex();
  }

  static constexpr std::uint32_t kind = 0x6d757478;  // "mutx"

 private:
  bool lock_until(std::chrono::steady_clock::time_point deadline);
  /// A lock call's result other than 0: EOWNERDEAD (held, owner died), EBUSY and ETIMEDOUT (not
  /// held), ENOTRECOVERABLE and errors (thrown). True when the lock is held.
  bool took(int rc, const char* call);
  [[noreturn]] static void unlock_failed(int rc);
  [[nodiscard]] pthread_mutex_t* find_mutex() const;
  detail::sync_memory memory_;
  pthread_mutex_t* mu_ = nullptr;  // in memory_, cached: lock and unlock are the hot path
};

/// A condition variable for process_mutex. Waits may wake spuriously (use the predicate forms).
/// A waiter that dies while waiting does not absorb a notify_one.
class process_condition_variable {
 public:
  process_condition_variable() noexcept = default;
  [[nodiscard]] static process_condition_variable create();

  void wait(std::unique_lock<process_mutex>& lock);
  template <class Predicate>
  void wait(std::unique_lock<process_mutex>& lock, Predicate done) {
    while (!done()) wait(lock);
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<process_mutex>& lock,
                            std::chrono::time_point<Clock, Duration> deadline) {
    return wait_steady(lock, detail::to_steady(deadline));
  }
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::unique_lock<process_mutex>& lock,
                  std::chrono::time_point<Clock, Duration> deadline, Predicate done) {
    const auto until = detail::to_steady(deadline);
    while (!done()) {
      if (wait_steady(lock, until) == std::cv_status::timeout) return done();
    }
    return true;
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<process_mutex>& lock,
                          std::chrono::duration<Rep, Period> timeout) {
    return wait_until(lock, std::chrono::steady_clock::now() + timeout);
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<process_mutex>& lock, std::chrono::duration<Rep, Period> timeout,
                Predicate done) {
    return wait_until(lock, std::chrono::steady_clock::now() + timeout, std::move(done));
  }
  void notify_one();
  void notify_all();

  template <class Archive>
  void serialize(Archive& ar) {
    memory_.serialize(ar, kind);
  }

  static constexpr std::uint32_t kind = 0x636f6e64;  // "cond"

 private:
  std::cv_status wait_steady(std::unique_lock<process_mutex>& lock,
                             std::optional<std::chrono::steady_clock::time_point> deadline);
  detail::sync_memory memory_;
};

/// A counting semaphore.
class process_semaphore {
 public:
  process_semaphore() noexcept = default;
  /// Starts with `initial` permits (at most 2^31 - 1).
  [[nodiscard]] static process_semaphore create(std::uint32_t initial);

  void acquire();
  [[nodiscard]] bool try_acquire();
  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(std::chrono::steady_clock::now() + timeout);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_acquire_until(std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_until(detail::to_steady(deadline));
  }
  /// Adds `n` permits (throws std::invalid_argument past 2^31 - 1 in all).
  void release(std::uint32_t n = 1);
  /// Permits now (a snapshot).
  [[nodiscard]] std::uint32_t value() const;

  template <class Archive>
  void serialize(Archive& ar) {
    memory_.serialize(ar, kind);
  }

  static constexpr std::uint32_t kind = 0x73656d61;  // "sema"

 private:
  bool acquire_until(std::optional<std::chrono::steady_clock::time_point> deadline);
  detail::sync_memory memory_;
};

/// A reusable barrier of a fixed number of participants.
class process_barrier {
 public:
  process_barrier() noexcept = default;
  /// For `participants` (at least 1) arrivals per phase.
  [[nodiscard]] static process_barrier create(std::uint32_t participants);

  /// Arrives and waits for the phase to complete.
  void arrive_and_wait();
  /// As arrive_and_wait, but gives up after `timeout`: false, and its arrival is taken back (the
  /// phase then still needs every participant). True when the phase completed.
  template <class Rep, class Period>
  [[nodiscard]] bool arrive_and_wait_for(std::chrono::duration<Rep, Period> timeout) {
    return arrive_until(std::chrono::steady_clock::now() + timeout);
  }

  template <class Archive>
  void serialize(Archive& ar) {
    memory_.serialize(ar, kind);
  }

  static constexpr std::uint32_t kind = 0x62617272;  // "barr"

 private:
  bool arrive_until(std::optional<std::chrono::steady_clock::time_point> deadline);
  detail::sync_memory memory_;
};

/// A single-use latch: waits end when the count reaches zero.
class process_latch {
 public:
  process_latch() noexcept = default;
  [[nodiscard]] static process_latch create(std::uint32_t count);

  /// Throws std::invalid_argument when `n` exceeds the count left.
  void count_down(std::uint32_t n = 1);
  [[nodiscard]] bool try_wait() const;
  void wait() const;
  template <class Rep, class Period>
  [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    return wait_until(std::chrono::steady_clock::now() + timeout);
  }
  void arrive_and_wait(std::uint32_t n = 1) {
    count_down(n);
    wait();
  }

  template <class Archive>
  void serialize(Archive& ar) {
    memory_.serialize(ar, kind);
  }

  static constexpr std::uint32_t kind = 0x6c617463;  // "latc"

 private:
  bool wait_until(std::optional<std::chrono::steady_clock::time_point> deadline) const;
  detail::sync_memory memory_;
};

/// A 64-bit atomic counter in shared memory (lock-free).
class shared_counter {
 public:
  shared_counter() noexcept = default;
  [[nodiscard]] static shared_counter create(std::int64_t initial = 0);

  [[nodiscard]] std::int64_t load(std::memory_order order = std::memory_order_seq_cst) const {
    return word().load(order);
  }
  void store(std::int64_t v, std::memory_order order = std::memory_order_seq_cst) {
    word().store(v, order);
  }
  std::int64_t fetch_add(std::int64_t v, std::memory_order order = std::memory_order_seq_cst) {
    return word().fetch_add(v, order);
  }
  std::int64_t fetch_sub(std::int64_t v, std::memory_order order = std::memory_order_seq_cst) {
    return word().fetch_sub(v, order);
  }
  std::int64_t exchange(std::int64_t v, std::memory_order order = std::memory_order_seq_cst) {
    return word().exchange(v, order);
  }
  bool compare_exchange_strong(std::int64_t& expected, std::int64_t desired,
                               std::memory_order order = std::memory_order_seq_cst) {
    return word().compare_exchange_strong(expected, desired, order);
  }
  std::int64_t operator++() { return fetch_add(1) + 1; }
  std::int64_t operator--() { return fetch_sub(1) - 1; }
  std::int64_t operator+=(std::int64_t v) { return fetch_add(v) + v; }
  std::int64_t operator-=(std::int64_t v) { return fetch_sub(v) - v; }

  template <class Archive>
  void serialize(Archive& ar) {
    memory_.serialize(ar, kind);
  }

  static constexpr std::uint32_t kind = 0x636e7472;  // "cntr"

 private:
  [[nodiscard]] std::atomic<std::int64_t>& word() const {
    return *memory_.state<std::atomic<std::int64_t>>();
  }
  detail::sync_memory memory_;
};

}  // namespace crew
