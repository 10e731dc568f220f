// The thread pool's scheduler: workers, the injection queue, searching and parking.
//
// Wake-up protocol (no lost wake-ups, no system call while somebody is already looking for work):
//
//   searching_  workers scanning the queues (plus wake-ups in flight: a waker counts the worker it
//               wakes, see wake_one()).
//   sleepers_   workers on the idle list (parked, or about to park).
//
// A submitter makes the task visible (seq_cst: the deque's bottom_ store or inject_count_'s
// increment), then loads searching_ and sleepers_ (seq_cst) and wakes a parked worker only when
// nobody searches and somebody sleeps. A worker that stops searching first announces it
// (searching_ decrement, seq_cst) and then rechecks every queue (seq_cst loads). Both sides write
// one word and then read the other's, all seq_cst, so at least one of them sees the other
// (store-buffering / Dekker): either the submitter sees no searcher and wakes someone, or the
// searcher's recheck sees the task. A searcher that stops because it found work, and was the last
// searcher, wakes a parked worker to carry on searching (end_search()), so work that it did not
// take is not left behind while workers sleep. Parked workers sleep on their own futex word, set
// by the waker after it took them off the idle list, so a wake-up is never given to a thread that
// is not asleep and never lost.
#include "crew/thread_pool.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crew/detail/notifier.hpp"
#include "crew/detail/shared_state.hpp"
#include "crew/detail/thread_pool/spin_lock.hpp"
#include "crew/detail/thread_pool/work_deque.hpp"

namespace crew::detail {
namespace {

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

// Written only by the owning worker, read by stats(): a plain increment, no read-modify-write.
void bump(std::atomic<std::uint64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

task_error closed_error() {
  return task_error{error_kind::pool_closed, "crew::thread_pool is shut down"};
}

constexpr std::size_t max_workers = 4096;
// Largest batch a worker moves from the injection queue into its own deque at once: enough to
// make the shared lock rare under a flood of outside submissions, small enough to leave work for
// the other workers to take directly.
constexpr std::size_t max_inject_batch = 64;

}  // namespace

class pool_core;

struct worker final : wait_helper {
  worker(pool_core& owner, std::size_t position) : pool(&owner), index(position) {}
  bool try_run_one() override;

  pool_core* pool;
  std::size_t index;
  work_deque<task_node> deque;
  std::atomic<std::uint32_t> wake_word{0};  // 1 once a waker took this worker off the idle list
  std::atomic<std::uint32_t> running{0};    // tasks executing on this thread (nested ones too)
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> stolen{0};
  std::atomic<std::uint64_t> inlined{0};
  std::uint64_t rng = 0;
  std::thread thread;
};

namespace {
thread_local worker* this_worker = nullptr;
// The pool this (non-worker) thread last submitted to. Holding its core lets unqueue_newest()
// touch the pool with no risk of it having been freed; a destroyed pool's core is only memory
// (its workers were joined by ~thread_pool), released when this thread submits elsewhere or ends.
thread_local std::shared_ptr<pool_core> last_pool;
}  // namespace

class pool_core : public std::enable_shared_from_this<pool_core> {
 public:
  explicit pool_core(const thread_pool_options& options)
      : spin_rounds_(std::max<std::uint32_t>(options.spin_rounds, 1)) {
    if (options.workers == 0) {
      throw std::invalid_argument("crew::thread_pool: the number of workers must be at least 1");
    }
    if (options.workers > max_workers) {
      throw std::invalid_argument("crew::thread_pool: " + std::to_string(options.workers) +
                                  " workers is more than the limit of " +
                                  std::to_string(max_workers));
    }
    workers_.reserve(options.workers);
    for (std::size_t i = 0; i < options.workers; ++i) {
      workers_.push_back(std::make_unique<worker>(*this, i));
      workers_.back()->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
    }
    try {
      for (auto& w : workers_) {
        w->thread = std::thread(
            [this, raw = w.get(), name = options.thread_name_prefix] { worker_main(*raw, name); });
      }
    } catch (...) {
      stop_and_join();
      throw;
    }
  }

  ~pool_core() { shutdown(shutdown_mode::drain); }

  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] bool on_own_worker() const noexcept {
    return this_worker != nullptr && this_worker->pool == this;
  }

  bool enqueue(task_node* task) {
    if (worker* self = this_worker; self != nullptr && self->pool == this) {
      self->deque.push(task);  // a running task of this pool: accepted even while draining
    } else {
      if (last_pool.get() != this) last_pool = shared_from_this();
      task->injected_into = this;
      std::lock_guard lock{inject_mu_};
      if (closed_) return false;
      inject_.push_back(task);
      inject_count_.fetch_add(1, std::memory_order_seq_cst);
    }
    notify();
    return true;
  }

  bool unqueue_newest(task_node* task) noexcept {
    if (last_pool.get() != this) return false;
    std::lock_guard lock{inject_mu_};
    if (inject_.empty() || inject_.back() != task) return false;
    inject_.pop_back();
    inject_count_.fetch_sub(1, std::memory_order_seq_cst);
    return true;
  }

  void count_inlined() noexcept { inlined_.fetch_add(1, std::memory_order_relaxed); }

  bool enqueue_bulk(const std::vector<task_node*>& tasks) {
    if (worker* self = this_worker; self != nullptr && self->pool == this) {
      for (task_node* task : tasks) self->deque.push(task);
    } else {
      std::lock_guard lock{inject_mu_};
      if (closed_) return false;
      inject_.insert(inject_.end(), tasks.begin(), tasks.end());
      inject_count_.fetch_add(tasks.size(), std::memory_order_seq_cst);
    }
    // One wake-up: the woken worker hands the search on when it finds work (end_search()).
    notify();
    return true;
  }

  void wait_idle() {
    if (on_own_worker()) {
      throw std::logic_error(
          "crew::thread_pool::wait_idle() called from one of the pool's own tasks: it would wait "
          "for itself");
    }
    for (;;) {
      const std::uint32_t key = idle_.prepare_wait();
      if (is_idle()) {
        idle_.cancel_wait();
        return;
      }
      idle_.commit_wait(key);
    }
  }

  void shutdown(shutdown_mode mode) {
    if (on_own_worker()) {
      throw std::logic_error(
          "crew::thread_pool::shutdown() called from one of the pool's own tasks: it would join "
          "its own thread");
    }
    std::lock_guard serial{shutdown_mu_};
    if (joined_) return;
    std::deque<task_node*> dropped;
    {
      std::lock_guard lock{inject_mu_};
      closed_ = true;
      closed_flag_.store(true, std::memory_order_release);
      if (mode == shutdown_mode::cancel_pending) {
        discarding_.store(true, std::memory_order_relaxed);
        dropped.swap(inject_);
        inject_count_.fetch_sub(dropped.size(), std::memory_order_seq_cst);
      }
    }
    for (task_node* task : dropped) task->discard(closed_error());
    discarded_.fetch_add(dropped.size(), std::memory_order_relaxed);
    // Tasks in workers' deques (cancel_pending) are discarded by the workers as they reach them.
    wait_idle();
    stop_and_join();
    joined_ = true;
  }

  [[nodiscard]] bool closed() const noexcept {
    return closed_flag_.load(std::memory_order_acquire);
  }

  [[nodiscard]] thread_pool_stats stats() const noexcept {
    thread_pool_stats out;
    out.workers = workers_.size();
    out.queued = inject_count_.load(std::memory_order_relaxed);
    out.cancelled = discarded_.load(std::memory_order_relaxed);
    out.inlined = inlined_.load(std::memory_order_relaxed);
    for (const auto& w : workers_) {
      out.queued += w->deque.size();
      out.running += w->running.load(std::memory_order_relaxed);
      out.completed += w->completed.load(std::memory_order_relaxed);
      out.failed += w->failed.load(std::memory_order_relaxed);
      out.cancelled += w->cancelled.load(std::memory_order_relaxed);
      out.stolen += w->stolen.load(std::memory_order_relaxed);
      out.inlined += w->inlined.load(std::memory_order_relaxed);
    }
    return out;
  }

  // Any task this worker may run next: its own deque, then the shared places.
  task_node* find_task(worker& self) {
    if (task_node* task = self.deque.pop()) return task;
    return take_shared(self);
  }

  void execute(worker& self, task_node* task) noexcept {
    self.running.store(self.running.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (discarding_.load(std::memory_order_relaxed)) {
      task->discard(closed_error());
      bump(self.cancelled);
    } else {
      switch (task->run()) {
        case run_status::completed:
          bump(self.completed);
          break;
        case run_status::failed:
          bump(self.failed);
          break;
        case run_status::cancelled:
          bump(self.cancelled);
          break;
        case run_status::inlined:
          bump(self.inlined);
          break;
      }
    }
    self.running.store(self.running.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }

 private:
  void worker_main(worker& self, const std::string& prefix) {
    this_worker = &self;
    current_wait_helper() = &self;
    const std::string name = (prefix + std::to_string(self.index)).substr(0, 15);
    pthread_setname_np(pthread_self(), name.c_str());
    for (;;) {
      if (task_node* task = self.deque.pop()) {
        execute(self, task);
        continue;
      }
      searching_.fetch_add(1, std::memory_order_seq_cst);
      task_node* task = search(self);
      if (task == nullptr) break;  // stopping
      execute(self, task);
    }
    current_wait_helper() = nullptr;
    this_worker = nullptr;
  }

  // Entered counted in searching_; returns a task (no longer counted) or null when stopping.
  task_node* search(worker& self) {
    for (;;) {
      for (std::uint32_t round = 0; round < spin_rounds_; ++round) {
        if (task_node* task = take_shared(self)) {
          end_search();
          return task;
        }
        std::this_thread::yield();
      }
      if (!park(self)) return nullptr;
    }
  }

  void end_search() {
    // The last searcher to find work hands the search on (see the file comment).
    if (searching_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        sleepers_.load(std::memory_order_seq_cst) > 0) {
      wake_one();
    }
  }

  // Entered counted in searching_. Returns true counted in searching_ again (there is work, or
  // a waker handed this worker its search), false when the pool is stopping.
  bool park(worker& self) {
    std::size_t sleeping = 0;
    {
      std::lock_guard lock{idle_mu_};
      self.wake_word.store(0, std::memory_order_relaxed);
      idle_list_.push_back(&self);
      sleeping = static_cast<std::size_t>(sleepers_.fetch_add(1, std::memory_order_seq_cst)) + 1;
    }
    if (sleeping == workers_.size()) idle_.notify_all();  // maybe idle: wake wait_idle()
    // Matches the submitter's seq_cst push + load of searching_ in notify(): from here on either
    // the submitter sees no searcher and wakes this worker, or the recheck below sees its task.
    searching_.fetch_sub(1, std::memory_order_seq_cst);
    if (stopping_.load(std::memory_order_seq_cst)) return false;
    if (has_shared_work()) {
      std::unique_lock lock{idle_mu_};
      auto it = std::find(idle_list_.begin(), idle_list_.end(), &self);
      if (it != idle_list_.end()) {
        searching_.fetch_add(1, std::memory_order_seq_cst);  // before leaving sleepers_
        idle_list_.erase(it);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        return true;
      }
      // A waker already took this worker off the list and is about to set its word.
    }
    while (self.wake_word.load(std::memory_order_acquire) == 0) futex_wait(self.wake_word, 0);
    // The waker counted this worker in searching_ (wake_one) or the pool is stopping.
    return !stopping_.load(std::memory_order_seq_cst);
  }

  void notify() {
    // Matches the seq_cst searching_ decrement in park(): see the file comment.
    if (searching_.load(std::memory_order_seq_cst) != 0) return;
    if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
    wake_one();
  }

  void wake_one() {
    worker* target = nullptr;
    {
      std::lock_guard lock{idle_mu_};
      if (idle_list_.empty()) return;
      int nobody = 0;
      // Somebody started searching meanwhile: that searcher finds the work or hands it on.
      if (!searching_.compare_exchange_strong(nobody, 1, std::memory_order_seq_cst)) return;
      target = idle_list_.back();
      idle_list_.pop_back();
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
    target->wake_word.store(1, std::memory_order_release);  // pairs with the acquire in park()
    futex_wake(target->wake_word);
  }

  [[nodiscard]] bool has_shared_work() const noexcept {
    if (inject_count_.load(std::memory_order_seq_cst) != 0) return true;
    for (const auto& w : workers_) {
      if (!w->deque.empty()) return true;
    }
    return false;
  }

  [[nodiscard]] bool is_idle() const noexcept {
    if (stopping_.load(std::memory_order_seq_cst)) return true;
    return static_cast<std::size_t>(sleepers_.load(std::memory_order_seq_cst)) == workers_.size() &&
           inject_count_.load(std::memory_order_seq_cst) == 0;
  }

  task_node* take_shared(worker& self) {
    if (task_node* task = take_injected(self)) return task;
    return steal(self);
  }

  task_node* take_injected(worker& self) {
    if (inject_count_.load(std::memory_order_relaxed) == 0) return nullptr;
    // A worker never queues behind the submitter: if the lock is busy it looks elsewhere and
    // comes back (its caller loops; the parking recheck reads inject_count_, not the queue).
    std::unique_lock lock{inject_mu_, std::try_to_lock};
    if (!lock.owns_lock()) return nullptr;
    if (inject_.empty()) return nullptr;
    const std::size_t available = inject_.size();
    const std::size_t take =
        std::min(available / workers_.size() + 1, std::min(available, max_inject_batch));
    std::array<task_node*, max_inject_batch> batch;
    std::copy_n(inject_.begin(), take, batch.begin());
    inject_.erase(inject_.begin(), inject_.begin() + static_cast<std::ptrdiff_t>(take));
    inject_count_.fetch_sub(take, std::memory_order_seq_cst);
    lock.unlock();  // the submitter waits for this lock: hold it for the copy only
    // Oldest last, so this worker runs them in submission order (it pops LIFO).
    for (std::size_t i = take; i-- > 1;) self.deque.push(batch[i]);
    return batch[0];
  }

  task_node* steal(worker& self) {
    const std::size_t n = workers_.size();
    if (n == 1) return nullptr;
    self.rng ^= self.rng << 13;
    self.rng ^= self.rng >> 7;
    self.rng ^= self.rng << 17;
    const std::size_t start = static_cast<std::size_t>(self.rng % n);
    for (std::size_t i = 0; i < n; ++i) {
      worker& victim = *workers_[(start + i) % n];
      if (&victim == &self) continue;
      if (task_node* task = victim.deque.steal()) {
        bump(self.stolen);
        return task;
      }
    }
    return nullptr;
  }

  void stop_and_join() noexcept {
    stopping_.store(true, std::memory_order_seq_cst);
    std::vector<worker*> sleeping;
    {
      std::lock_guard lock{idle_mu_};
      sleeping.swap(idle_list_);
    }
    for (worker* w : sleeping) {
      w->wake_word.store(1, std::memory_order_release);
      futex_wake(w->wake_word);
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    // Nothing can be left (the pool was idle and closed), but never leak a future's state.
    for (auto& w : workers_) {
      while (task_node* task = w->deque.steal()) task->discard(closed_error());
    }
    std::lock_guard lock{inject_mu_};
    for (task_node* task : inject_) task->discard(closed_error());
    inject_.clear();
  }

  std::vector<std::unique_ptr<worker>> workers_;
  const std::uint32_t spin_rounds_;

  spin_lock inject_mu_;
  std::deque<task_node*> inject_;  // guarded by inject_mu_
  bool closed_ = false;            // guarded by inject_mu_
  std::atomic<std::size_t> inject_count_{0};
  std::atomic<bool> closed_flag_{false};
  std::atomic<bool> discarding_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> discarded_{0};
  std::atomic<std::uint64_t> inlined_{0};

  alignas(64) std::atomic<int> searching_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::mutex idle_mu_;
  std::vector<worker*> idle_list_;  // guarded by idle_mu_
  notifier idle_;                   // wakes wait_idle() when the last worker parks

  std::mutex shutdown_mu_;
  bool joined_ = false;  // guarded by shutdown_mu_
};

bool unqueue_newest(pool_core* pool, task_node* node) noexcept {
  return pool->unqueue_newest(node);
}

void count_inlined(pool_core* pool) noexcept {
  pool->count_inlined();
}

bool worker::try_run_one() {
  task_node* task = pool->find_task(*this);
  if (task == nullptr) return false;
  pool->execute(*this, task);
  return true;
}

}  // namespace crew::detail

namespace crew {

thread_pool::thread_pool() : thread_pool(thread_pool_options{}) {}

thread_pool::thread_pool(std::size_t workers)
    : thread_pool([workers] {
        thread_pool_options options;
        options.workers = workers;
        return options;
      }()) {}

thread_pool::thread_pool(thread_pool_options options)
    : core_(std::make_shared<detail::pool_core>(options)) {}

// Drains and joins here; the core itself may live on as memory in a thread's last_pool.
thread_pool::~thread_pool() {
  core_->shutdown(shutdown_mode::drain);
}

std::size_t thread_pool::concurrency() const noexcept {
  return core_->size();
}

void thread_pool::wait_idle() {
  core_->wait_idle();
}

void thread_pool::shutdown(shutdown_mode mode) {
  core_->shutdown(mode);
}

bool thread_pool::closed() const noexcept {
  return core_->closed();
}

thread_pool_stats thread_pool::stats() const noexcept {
  return core_->stats();
}

bool thread_pool::submit_node(detail::task_node* task) noexcept {
  try {
    if (core_->enqueue(task)) return true;
  } catch (...) {
    // Out of memory while queuing: the task fails like one submitted after shutdown.
  }
  task->discard(detail::closed_error());
  return false;
}

bool thread_pool::submit_nodes(const std::vector<detail::task_node*>& tasks) noexcept {
  try {
    if (core_->enqueue_bulk(tasks)) return true;
  } catch (...) {
  }
  for (auto* task : tasks) task->discard(detail::closed_error());
  return false;
}

}  // namespace crew
