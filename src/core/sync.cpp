// crew/sync.hpp: the synchronisation objects' state in a page of shared memory.
//
// The mutex is glibc's robust, process-shared pthread mutex. The others are futex words
// (ipc/futex.hpp, process-shared): they keep no owner, so a participant's death cannot leave
// them inconsistent, and a dead waiter is simply no longer on the futex's queue.
#include "crew/sync.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "ipc/futex.hpp"

namespace crew {
namespace detail {
namespace {

struct tag {
  std::uint32_t kind;
};

std::optional<std::chrono::nanoseconds> left_until(
    const std::optional<std::chrono::steady_clock::time_point>& deadline) {
  if (!deadline) return std::nullopt;
  const auto left = *deadline - std::chrono::steady_clock::now();
  return std::max(std::chrono::nanoseconds{0},
                  std::chrono::duration_cast<std::chrono::nanoseconds>(left));
}

bool passed(const std::optional<std::chrono::steady_clock::time_point>& deadline) {
  return deadline && std::chrono::steady_clock::now() >= *deadline;
}

}  // namespace

sync_memory sync_memory::create(std::uint32_t kind) {
  sync_memory out;
  out.memory_ = shared_array<std::byte>::create(4096);
  new (out.memory_.data()) tag{kind};
  return out;
}

void throw_empty_sync_handle() {
  throw std::logic_error("crew: an empty synchronisation handle (make one with create())");
}

std::byte* sync_memory::checked() const {
  if (memory_.empty()) throw_empty_sync_handle();
  return memory_.data();
}

void sync_memory::check_kind(std::uint32_t kind) const {
  if (memory_.empty()) return;
  tag t{};
  if (memory_.size() >= state_offset) std::memcpy(&t, memory_.data(), sizeof t);
  if (memory_.size() < 4096 || t.kind != kind) {
    throw serialization_error("crew: memory received as a synchronisation object is not one", 0);
  }
}

timespec monotonic_deadline(std::chrono::steady_clock::time_point deadline) noexcept {
  const auto since = deadline.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(std::max<std::int64_t>(0, seconds.count()));
  ts.tv_nsec = static_cast<long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since - seconds).count());
  if (seconds.count() < 0) ts.tv_nsec = 0;
  return ts;
}

}  // namespace detail

// --- process_mutex -----------------------------------------------------------------------------

namespace {

struct mutex_state {
  pthread_mutex_t mu;
  std::uint32_t owner_died;  // read and written by the holder only
};

struct condition_state {
  std::atomic<std::uint32_t> sequence;  // futex word: moves at every notify
};

struct semaphore_state {
  std::atomic<std::uint32_t> permits;  // futex word
  std::atomic<std::uint32_t> waiters;
};

struct barrier_state {
  std::atomic<std::uint64_t> phase;       // generation << 32 | arrivals in this phase
  std::atomic<std::uint32_t> generation;  // futex word: the generation, moved after `phase`
  std::uint32_t participants;
};

struct latch_state {
  std::atomic<std::uint32_t> count;  // futex word
};

constexpr std::uint32_t max_permits = INT32_MAX;

}  // namespace

process_mutex process_mutex::create() {
  process_mutex m;
  m.memory_ = detail::sync_memory::create(kind);
  auto* s = new (m.memory_.state<mutex_state>()) mutex_state{};
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(&s->mu, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "crew::process_mutex: init");
  m.mu_ = &s->mu;
  return m;
}

pthread_mutex_t* process_mutex::find_mutex() const {
  return &memory_.state<mutex_state>()->mu;
}

void process_mutex::unlock_failed(int rc) {
  throw std::system_error(rc, std::generic_category(), "crew::process_mutex: unlock");
}

bool process_mutex::took(int rc, const char* call) {
  mutex_state* s = memory_.state<mutex_state>();
  // A plain success needs nothing here: owner_died is 0 whenever the mutex can be had that way
  // (it is set only with EOWNERDEAD, and cleared by consistent() or never usable again).
  if (rc == 0) return true;
  if (rc == EOWNERDEAD) {
    s->owner_died = 1;  // held, inconsistent until consistent()
    return true;
  }
  if (rc == EBUSY || rc == ETIMEDOUT) return false;
  if (rc == ENOTRECOVERABLE) {
    throw std::system_error(rc, std::generic_category(),
                            "crew::process_mutex: not recoverable: a holder died in its critical "
                            "section and the next holder unlocked without calling consistent()");
  }
  throw std::system_error(rc, std::generic_category(), std::string{"crew::process_mutex: "} + call);
}

bool process_mutex::try_lock() {
  return took(pthread_mutex_trylock(native_handle()), "trylock");
}

bool process_mutex::lock_until(std::chrono::steady_clock::time_point deadline) {
#if defined(__SANITIZE_THREAD__)
  // GCC 12's ThreadSanitizer does not intercept pthread_mutex_clocklock, and its timedlock does
  // not record a lock taken with EOWNERDEAD (it would then report the unlock): poll with
  // trylock, which it handles fully.
  for (;;) {
    const int rc = pthread_mutex_trylock(native_handle());
    if (rc != EBUSY) return took(rc, "trylock");
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds{50});
  }
#else
  const timespec ts = detail::monotonic_deadline(deadline);
  return took(pthread_mutex_clocklock(native_handle(), CLOCK_MONOTONIC, &ts), "clocklock");
#endif
}

bool process_mutex::owner_died() const {
  return memory_.state<mutex_state>()->owner_died != 0;
}

void process_mutex::consistent() {
  mutex_state* s = memory_.state<mutex_state>();
  if (s->owner_died == 0) return;
  const int rc = pthread_mutex_consistent(&s->mu);
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(), "crew::process_mutex: consistent");
  }
  s->owner_died = 0;
}

// --- process_condition_variable ------------------------------------------------------------------

process_condition_variable process_condition_variable::create() {
  process_condition_variable c;
  c.memory_ = detail::sync_memory::create(kind);
  new (c.memory_.state<condition_state>()) condition_state{};
  return c;
}

void process_condition_variable::wait(std::unique_lock<process_mutex>& lock) {
  (void)wait_steady(lock, std::nullopt);
}

std::cv_status process_condition_variable::wait_steady(
    std::unique_lock<process_mutex>& lock,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!lock.owns_lock()) {
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "crew::process_condition_variable: wait without holding the lock");
  }
  condition_state* s = memory_.state<condition_state>();
  // Read under the lock: a notify after the unlock moves the word, and the futex sees it.
  const std::uint32_t seen = s->sequence.load(std::memory_order_acquire);
  lock.unlock();
  const auto status = detail::ipc::futex_wait(&s->sequence, seen, detail::left_until(deadline));
  lock.lock();  // owner_died() tells the caller if the holder it waited behind died
  return status == detail::ipc::futex_status::timed_out || detail::passed(deadline)
             ? std::cv_status::timeout
             : std::cv_status::no_timeout;
}

void process_condition_variable::notify_one() {
  condition_state* s = memory_.state<condition_state>();
  s->sequence.fetch_add(1, std::memory_order_release);
  detail::ipc::futex_wake(&s->sequence, 1);
}

void process_condition_variable::notify_all() {
  condition_state* s = memory_.state<condition_state>();
  s->sequence.fetch_add(1, std::memory_order_release);
  detail::ipc::futex_wake(&s->sequence, INT_MAX);
}

// --- process_semaphore
// -----------------------------------------------------------------------------

process_semaphore process_semaphore::create(std::uint32_t initial) {
  if (initial > max_permits) {
    throw std::invalid_argument("crew::process_semaphore: at most 2^31 - 1 permits");
  }
  process_semaphore sem;
  sem.memory_ = detail::sync_memory::create(kind);
  new (sem.memory_.state<semaphore_state>()) semaphore_state{{initial}, {0}};
  return sem;
}

void process_semaphore::acquire() {
  (void)acquire_until(std::nullopt);
}

bool process_semaphore::try_acquire() {
  semaphore_state* s = memory_.state<semaphore_state>();
  std::uint32_t n = s->permits.load(std::memory_order_relaxed);
  while (n != 0) {
    if (s->permits.compare_exchange_weak(n, n - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

bool process_semaphore::acquire_until(
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  semaphore_state* s = memory_.state<semaphore_state>();
  for (;;) {
    if (try_acquire()) return true;
    if (detail::passed(deadline)) return false;
    s->waiters.fetch_add(1, std::memory_order_seq_cst);
    if (s->permits.load(std::memory_order_seq_cst) == 0) {
      (void)detail::ipc::futex_wait(&s->permits, 0, detail::left_until(deadline));
    }
    s->waiters.fetch_sub(1, std::memory_order_relaxed);
  }
}

void process_semaphore::release(std::uint32_t n) {
  if (n == 0) return;
  semaphore_state* s = memory_.state<semaphore_state>();
  std::uint32_t now = s->permits.load(std::memory_order_relaxed);
  do {
    if (n > max_permits - now) {
      throw std::invalid_argument("crew::process_semaphore: more than 2^31 - 1 permits");
    }
  } while (!s->permits.compare_exchange_weak(now, now + n, std::memory_order_seq_cst));
  if (s->waiters.load(std::memory_order_seq_cst) != 0) {
    detail::ipc::futex_wake(&s->permits, static_cast<int>(std::min<std::uint32_t>(n, INT_MAX)));
  }
}

std::uint32_t process_semaphore::value() const {
  return memory_.state<semaphore_state>()->permits.load(std::memory_order_relaxed);
}

// --- process_barrier
// -------------------------------------------------------------------------------

process_barrier process_barrier::create(std::uint32_t participants) {
  if (participants == 0) {
    throw std::invalid_argument("crew::process_barrier: needs at least one participant");
  }
  process_barrier b;
  b.memory_ = detail::sync_memory::create(kind);
  auto* s = new (b.memory_.state<barrier_state>()) barrier_state{};
  s->participants = participants;
  return b;
}

void process_barrier::arrive_and_wait() {
  (void)arrive_until(std::nullopt);
}

bool process_barrier::arrive_until(std::optional<std::chrono::steady_clock::time_point> deadline) {
  barrier_state* s = memory_.state<barrier_state>();
  // Arrive with a compare-and-swap, so that the last arrival completes the phase in the same
  // step (a withdrawal after a timeout is a compare-and-swap too, and cannot slip in between).
  std::uint64_t now = s->phase.load(std::memory_order_acquire);
  std::uint32_t generation = 0;
  for (;;) {
    generation = static_cast<std::uint32_t>(now >> 32);
    const bool last = (now & 0xffffffffU) + 1 == s->participants;
    const std::uint64_t next = last ? static_cast<std::uint64_t>(generation + 1) << 32 : now + 1;
    if (s->phase.compare_exchange_weak(now, next, std::memory_order_acq_rel)) {
      if (last) {
        s->generation.store(generation + 1, std::memory_order_release);
        detail::ipc::futex_wake(&s->generation, INT_MAX);
        return true;
      }
      break;
    }
  }
  for (;;) {
    // Done once the generation word is past ours (it may still show the previous phase's, if
    // that phase's last arrival has not published it yet).
    const std::uint32_t seen = s->generation.load(std::memory_order_acquire);
    if (static_cast<std::int32_t>(seen - generation) > 0) return true;
    if (detail::passed(deadline)) {
      // Take the arrival back, unless the phase completed meanwhile.
      now = s->phase.load(std::memory_order_acquire);
      while (static_cast<std::uint32_t>(now >> 32) == generation) {
        if (s->phase.compare_exchange_weak(now, now - 1, std::memory_order_acq_rel)) return false;
      }
      return true;
    }
    (void)detail::ipc::futex_wait(&s->generation, seen, detail::left_until(deadline));
  }
}

// --- process_latch
// ---------------------------------------------------------------------------------

process_latch process_latch::create(std::uint32_t count) {
  process_latch l;
  l.memory_ = detail::sync_memory::create(kind);
  new (l.memory_.state<latch_state>()) latch_state{{count}};
  return l;
}

void process_latch::count_down(std::uint32_t n) {
  latch_state* s = memory_.state<latch_state>();
  std::uint32_t now = s->count.load(std::memory_order_relaxed);
  do {
    if (n > now) {
      throw std::invalid_argument("crew::process_latch: count_down(" + std::to_string(n) +
                                  ") with " + std::to_string(now) + " left");
    }
  } while (!s->count.compare_exchange_weak(now, now - n, std::memory_order_acq_rel));
  if (now == n && n != 0) detail::ipc::futex_wake(&s->count, INT_MAX);
}

bool process_latch::try_wait() const {
  return memory_.state<latch_state>()->count.load(std::memory_order_acquire) == 0;
}

void process_latch::wait() const {
  (void)wait_until(std::nullopt);
}

bool process_latch::wait_until(
    std::optional<std::chrono::steady_clock::time_point> deadline) const {
  latch_state* s = memory_.state<latch_state>();
  for (;;) {
    const std::uint32_t now = s->count.load(std::memory_order_acquire);
    if (now == 0) return true;
    if (detail::passed(deadline)) return false;
    (void)detail::ipc::futex_wait(&s->count, now, detail::left_until(deadline));
  }
}

// --- shared_counter
// --------------------------------------------------------------------------------

shared_counter shared_counter::create(std::int64_t initial) {
  static_assert(std::atomic<std::int64_t>::is_always_lock_free,
                "crew::shared_counter needs a lock-free 64-bit atomic");
  shared_counter c;
  c.memory_ = detail::sync_memory::create(kind);
  new (c.memory_.state<std::atomic<std::int64_t>>()) std::atomic<std::int64_t>{initial};
  return c;
}

}  // namespace crew
