// The byte-level queue of crew::shared_queue (crew/shared_queue.hpp).
//
// Layout of the shared region: a header (two robust process-shared mutexes, positions, futex
// words) and a ring of `capacity` bytes of records. A record is an 8-byte prefix (its payload
// size) and the payload padded to 8 bytes; a record never wraps: at the end of the ring a skip
// marker sends the reader to the start. head and tail count bytes since creation (offset =
// position % capacity), so that head == tail means empty. A message may take up to half the
// ring, so that it always fits once the ring has emptied, wherever the tail stands.
//
// Two locks, as in Michael and Scott's two-lock queue: producers serialise on one, consumers on
// the other, and a producer and a consumer never wait for each other's lock — they meet only on
// head and tail. A push writes its record, then publishes tail (release); a pop reads tail
// (acquire), copies the record out, then publishes head (release), which the producers read
// (acquire) before reusing the space. Each side commits with that one store under its own lock,
// so a holder killed at any moment leaves a consistent queue, and the next locker (told
// EOWNERDEAD) marks the mutex consistent and goes on.
#include "crew/shared_queue.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <system_error>

#include "ipc/doorbell.hpp"
#include "ipc/futex.hpp"

namespace crew::detail {
namespace {

constexpr std::uint32_t magic = 0x63717565;  // "cque"
constexpr std::uint64_t skip_marker = ~std::uint64_t{0};
constexpr std::size_t prefix = 8;
constexpr auto wait_slice = std::chrono::milliseconds{100};
constexpr int lock_spins = 100;
constexpr int wait_spins = 4000;  // some tens of microseconds

// Each group on its own cache line: the producers' (written at every push), the consumers'
// (written at every pop), and the sleepers' words, written only around a sleep.
struct queue_header {
  alignas(64) pthread_mutex_t push_mu;  // producers
  std::atomic<std::uint64_t> tail;      // written under push_mu
  alignas(64) pthread_mutex_t pop_mu;   // consumers
  std::atomic<std::uint64_t> head;      // written under pop_mu
  // A consumer sleeps on `pushed` after announcing itself in pop_waiters; a producer that sees
  // a sleeper after its commit moves `pushed` and wakes it. Likewise for producers on `popped`.
  alignas(64) std::atomic<std::uint32_t> pushed;
  std::atomic<std::uint32_t> pop_waiters;
  alignas(64) std::atomic<std::uint32_t> popped;
  std::atomic<std::uint32_t> push_waiters;
  alignas(64) std::uint32_t magic;
  std::atomic<std::uint32_t> closed;      // set under push_mu
  std::uint64_t capacity;                 // bytes of records; a multiple of 8
  std::atomic<std::uint64_t> recoveries;  // locks taken over from a dead holder
};

constexpr std::size_t data_offset = (sizeof(queue_header) + 63) / 64 * 64;

std::size_t padded(std::size_t n) noexcept {
  return (n + 7) / 8 * 8;
}

queue_header& header_of(const shared_array<std::byte>& memory) noexcept {
  return *reinterpret_cast<queue_header*>(memory.data());
}

std::byte* ring_of(const shared_array<std::byte>& memory) noexcept {
  return memory.data() + data_offset;
}

/// The queue's lock; takes over a lock whose holder died (the queue is consistent at every
/// moment a holder can die).
class queue_lock {
 public:
  queue_lock(queue_header& h, pthread_mutex_t& mu) : h_(h), mu_(mu) { acquire(); }
  queue_lock(const queue_lock&) = delete;
  queue_lock& operator=(const queue_lock&) = delete;
  ~queue_lock() {
    if (locked_) pthread_mutex_unlock(&mu_);
    if (wake_all_) {
      ipc::futex_wake(&h_.pushed, INT_MAX);
      ipc::futex_wake(&h_.popped, INT_MAX);
    }
  }
  void unlock() {
    pthread_mutex_unlock(&mu_);
    locked_ = false;
  }
  void relock() {
    acquire();
    locked_ = true;
  }

 private:
  void acquire() {
    // Held for a copy of a message at a time: spinning briefly on trylock beats going to sleep
    // in the kernel (glibc's robust mutexes do not spin on their own).
    int rc = EBUSY;
    for (int spin = 0; spin < lock_spins && rc == EBUSY; ++spin) {
      rc = pthread_mutex_trylock(&mu_);
      if (rc == EBUSY) ipc::cpu_relax();
    }
    if (rc == EBUSY) rc = pthread_mutex_lock(&mu_);
    if (rc == EOWNERDEAD) {
      pthread_mutex_consistent(&mu_);
      h_.recoveries.fetch_add(1, std::memory_order_relaxed);
      // The dead holder may have committed without waking anyone: wake everyone to re-check.
      h_.pushed.fetch_add(1, std::memory_order_release);
      h_.popped.fetch_add(1, std::memory_order_release);
      wake_all_ = true;
    } else if (rc != 0) {
      throw std::system_error(rc, std::generic_category(), "crew::shared_queue: lock");
    }
  }

  queue_header& h_;
  pthread_mutex_t& mu_;
  bool locked_ = true;
  bool wake_all_ = false;
};

/// Spins while `word` holds `seen`, for a bounded time: true when it changed. A partner that is
/// running answers within microseconds, and neither side then pays for a futex sleep and wake.
template <class Word>
bool spin_on(const std::atomic<Word>& word, Word seen) noexcept {
  for (int i = 0; i < wait_spins; ++i) {
    if (word.load(std::memory_order_acquire) != seen) return true;
    ipc::cpu_relax();
  }
  return false;
}

/// Sleeps on `word` while it holds `seen`, at most until `deadline` and at most one slice.
/// False when the deadline has passed.
bool sleep_on(std::atomic<std::uint32_t>& word, std::uint32_t seen,
              std::optional<queue_core::clock::time_point> deadline) {
  auto slice = std::chrono::duration_cast<std::chrono::nanoseconds>(wait_slice);
  if (deadline) {
    const auto now = queue_core::clock::now();
    if (now >= *deadline) return false;
    slice = std::min(slice, std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now));
  }
  (void)ipc::futex_wait(&word, seen, slice);
  return true;
}

bool no_wait(const std::optional<queue_core::clock::time_point>& deadline) noexcept {
  return deadline && *deadline == queue_core::clock::time_point::min();
}

}  // namespace

void throw_empty_queue_handle() {
  throw std::logic_error("crew::shared_queue: an empty handle (make one with create())");
}

void throw_message_too_large(std::size_t bytes, std::size_t largest) {
  throw std::length_error("crew::shared_queue: a message of " + std::to_string(bytes) +
                          " bytes can never fit a queue whose largest message is " +
                          std::to_string(largest) + " bytes");
}

queue_core queue_core::create(std::size_t capacity) {
  capacity = std::max<std::size_t>(padded(capacity), 64);
  auto memory = shared_array<std::byte>::create(data_offset + capacity);
  auto* h = new (memory.data()) queue_header{};
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(&h->push_mu, &attr);
  if (rc == 0) rc = pthread_mutex_init(&h->pop_mu, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "crew::shared_queue: mutex");
  h->capacity = capacity;
  h->magic = magic;
  return queue_core{std::move(memory)};
}

queue_core queue_core::adopt(shared_array<std::byte> memory) {
  if (memory.empty()) return queue_core{};
  const auto& h = header_of(memory);
  if (memory.size() < data_offset || h.magic != magic || h.capacity % 8 != 0 ||
      h.capacity > memory.size() - data_offset) {
    throw serialization_error("a crew::shared_queue arrived in memory that is not a queue", 0);
  }
  return queue_core{std::move(memory)};
}

std::size_t queue_core::capacity() const noexcept {
  return header_of(memory_).capacity;
}

std::size_t queue_core::max_message() const noexcept {
  return capacity() / 2 - prefix;
}

queue_core::status queue_core::push(std::span<const std::byte> message,
                                    std::optional<clock::time_point> deadline) {
  queue_header& h = header_of(memory_);
  std::byte* ring = ring_of(memory_);
  const std::uint64_t cap = h.capacity;
  const std::uint64_t need = prefix + padded(message.size());
  if (message.size() > max_message()) throw_message_too_large(message.size(), max_message());
  queue_lock lock{h, h.push_mu};
  for (;;) {
    if (h.closed.load(std::memory_order_relaxed) != 0) return status::closed;
    const std::uint64_t tail = h.tail.load(std::memory_order_relaxed);
    const std::uint64_t head = h.head.load(std::memory_order_acquire);
    const std::uint64_t offset = tail % cap;
    const std::uint64_t skip = offset + need > cap ? cap - offset : 0;
    if (cap - (tail - head) >= skip + need) {
      std::uint64_t at = offset;
      if (skip != 0) {
        std::memcpy(ring + at, &skip_marker, prefix);
        at = 0;
      }
      const std::uint64_t size = message.size();
      std::memcpy(ring + at, &size, prefix);
      if (!message.empty()) std::memcpy(ring + at + prefix, message.data(), message.size());
      std::atomic_signal_fence(std::memory_order_seq_cst);
      h.tail.store(tail + skip + need, std::memory_order_seq_cst);  // the commit
      const bool sleepers = h.pop_waiters.load(std::memory_order_seq_cst) != 0;
      lock.unlock();
      if (sleepers) {
        h.pushed.fetch_add(1, std::memory_order_seq_cst);
        ipc::futex_wake(&h.pushed, 1);
      }
      return status::ok;
    }
    if (no_wait(deadline)) return status::full;
    if (spin_on(h.head, head)) continue;
    // Announce the wait, then look again: a pop whose commit this look misses sees the
    // announcement (both sides are sequentially consistent), moves `popped` and wakes us.
    const std::uint32_t seen = h.popped.load(std::memory_order_seq_cst);
    h.push_waiters.fetch_add(1, std::memory_order_seq_cst);
    bool in_time = true;
    if (h.head.load(std::memory_order_seq_cst) == head &&
        h.closed.load(std::memory_order_seq_cst) == 0) {
      lock.unlock();
      in_time = sleep_on(h.popped, seen, deadline);
      lock.relock();
    }
    h.push_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (!in_time) return status::timed_out;
  }
}

queue_core::status queue_core::pop(std::vector<std::byte>& out,
                                   std::optional<clock::time_point> deadline) {
  queue_header& h = header_of(memory_);
  const std::byte* ring = ring_of(memory_);
  const std::uint64_t cap = h.capacity;
  queue_lock lock{h, h.pop_mu};
  for (;;) {
    // Closed is read before the tail: everything pushed before close() is then visible.
    const bool was_closed = h.closed.load(std::memory_order_acquire) != 0;
    std::uint64_t head = h.head.load(std::memory_order_relaxed);
    const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
    if (head != tail) {
      std::uint64_t size = 0;
      std::memcpy(&size, ring + head % cap, prefix);
      if (size == skip_marker) {
        head += cap - head % cap;
        std::memcpy(&size, ring + head % cap, prefix);
      }
      const std::uint64_t offset = head % cap;
      if (head == tail || size > cap - offset - prefix) {
        throw std::runtime_error("crew::shared_queue: the queue's memory is corrupt");
      }
      out.resize(size);
      if (size != 0) std::memcpy(out.data(), ring + offset + prefix, size);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      h.head.store(head + prefix + padded(size), std::memory_order_seq_cst);  // the commit
      const bool sleepers = h.push_waiters.load(std::memory_order_seq_cst) != 0;
      lock.unlock();
      if (sleepers) {
        // Every sleeping producer: the room made may fit a small message but not a large one.
        h.popped.fetch_add(1, std::memory_order_seq_cst);
        ipc::futex_wake(&h.popped, INT_MAX);
      }
      return status::ok;
    }
    if (was_closed) return status::closed;
    if (no_wait(deadline)) return status::empty;
    if (spin_on(h.tail, tail)) continue;
    const std::uint32_t seen = h.pushed.load(std::memory_order_seq_cst);
    h.pop_waiters.fetch_add(1, std::memory_order_seq_cst);
    bool in_time = true;
    if (h.tail.load(std::memory_order_seq_cst) == tail &&
        h.closed.load(std::memory_order_seq_cst) == 0) {
      lock.unlock();
      in_time = sleep_on(h.pushed, seen, deadline);
      lock.relock();
    }
    h.pop_waiters.fetch_sub(1, std::memory_order_relaxed);
    if (!in_time) return status::timed_out;
  }
}

void queue_core::close() {
  queue_header& h = header_of(memory_);
  {
    // Under the producers' lock: no push is half done when the queue closes, so a consumer
    // that sees it closed and empty has seen every value.
    queue_lock lock{h, h.push_mu};
    h.closed.store(1, std::memory_order_release);
    h.pushed.fetch_add(1, std::memory_order_seq_cst);
    h.popped.fetch_add(1, std::memory_order_seq_cst);
  }
  ipc::futex_wake(&h.pushed, INT_MAX);
  ipc::futex_wake(&h.popped, INT_MAX);
}

bool queue_core::closed() const {
  return header_of(memory_).closed.load(std::memory_order_acquire) != 0;
}

std::size_t queue_core::size() const {
  queue_header& h = header_of(memory_);
  const std::byte* ring = ring_of(memory_);
  const std::uint64_t cap = h.capacity;
  queue_lock lock{h, h.pop_mu};  // the head stays put while the records are counted
  const std::uint64_t tail = h.tail.load(std::memory_order_acquire);
  std::size_t n = 0;
  for (std::uint64_t at = h.head.load(std::memory_order_relaxed); at != tail;) {
    std::uint64_t size = 0;
    std::memcpy(&size, ring + at % cap, prefix);
    if (size == skip_marker) {
      at += cap - at % cap;
      continue;
    }
    at += prefix + padded(size);
    ++n;
  }
  return n;
}

std::uint64_t queue_core::recoveries() const {
  return header_of(memory_).recoveries.load(std::memory_order_relaxed);
}

}  // namespace crew::detail
