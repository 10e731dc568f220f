// The thread pool's scheduler: workers, the injection queue, searching and parking, and what a
// waiting thread may run.
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
//
// Waiting (the policy is stated in crew/thread_pool.hpp): a worker whose task T waits on a future
// runs only (1) the awaited task itself, if nobody started it, and (2) tasks that T spawned,
// directly or through tasks T spawned. (2) needs a task's ancestry without keeping finished
// ancestors alive. Every task that runs on a worker gets a frame: one slot per nesting depth per
// worker, holding the task's serial (worker index, depth and a per-worker count in 64 bits) and
// its parent's serial; a task gets its frame when it first submits a child. A task submitted on a
// worker records the serial of the task running there (its parent) in its node and in its deque
// slot. To decide whether a queued task descends from T, a waiting worker follows parent serials
// from the slot's tag through the frames: a frame whose serial no longer matches belongs to a task
// that has ended, and the answer is "no" (never a wrong "yes"; at worst a descendant is left for
// another worker). Frames are written by their worker only and read by any: see worker::enter() and
// pool_core::descends_from() for the order.
#include "crew/thread_pool.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <condition_variable>
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
  return task_error{error_kind::pool_closed, "crew::thread_pool is shut down: task not accepted"};
}

task_error queue_full_error(std::size_t max_queued) {
  return task_error{error_kind::queue_full,
                    "crew::thread_pool: " + std::to_string(max_queued) +
                        " tasks are queued (max_queued) and on_full is fail: task not accepted"};
}

std::string call_name(const std::string& name) {
  return name.empty() ? std::string{"a task"} : "task " + name;
}

constexpr std::size_t max_workers = 4096;
// Largest batch a worker moves from the injection queue into its own deque at once: enough to
// make the shared lock rare under a flood of outside submissions, small enough to leave work for
// the other workers to take directly.
constexpr std::size_t max_inject_batch = 64;

// Lineage (see the file comment). A serial is count << 24 | depth << 12 | worker index; the count
// starts at 1, so 0 means "no task". max_workers fits the index field.
constexpr unsigned index_bits = 12;
constexpr unsigned depth_bits = 12;
constexpr std::uint64_t index_mask = (std::uint64_t{1} << index_bits) - 1;
constexpr std::uint64_t depth_mask = (std::uint64_t{1} << depth_bits) - 1;
static_assert(max_workers <= index_mask + 1);
constexpr std::size_t frames_per_block = 64;
// Tasks nested deeper than this on one worker run without a frame: they can still run what they
// wait for, but waits inside them help with nothing else.
constexpr std::size_t frame_blocks = (depth_mask + 1) / frames_per_block;
// A walk up the ancestry gives up (answers "no") after this many steps.
constexpr unsigned max_lineage_hops = 128;

}  // namespace

class pool_core;

// Fails the futures of tasks that run past their per-call timeout. Only running tasks are armed
// (a task arms itself when it starts and disarms when it returns), so it holds at most one entry
// per thread that runs tasks: a plain vector, scanned.
class call_timer {
 public:
  explicit call_timer(pool_core& pool) : pool_(pool), thread_([this] { main(); }) {}
  call_timer(const call_timer&) = delete;
  call_timer& operator=(const call_timer&) = delete;
  ~call_timer() {
    {
      std::lock_guard lock{mu_};
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  std::uint64_t arm(const call_watch& watch) {
    state_base* state = watch.state;
    state->add_ref();  // released when the entry goes
    std::lock_guard lock{mu_};
    const std::uint64_t id = ++next_id_;
    entries_.push_back({id, std::chrono::steady_clock::now() + watch.timeout,
                        state_ptr<state_base>{state}, watch.name, watch.timeout});
    cv_.notify_all();
    return id;
  }

  void disarm(std::uint64_t id) noexcept {
    state_ptr<state_base> drop;  // released outside the lock
    std::lock_guard lock{mu_};
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->id != id) continue;
      drop = std::move(it->state);
      entries_.erase(it);
      return;
    }
  }

 private:
  struct entry {
    std::uint64_t id;
    std::chrono::steady_clock::time_point deadline;
    state_ptr<state_base> state;
    std::string name;
    std::chrono::nanoseconds timeout;
  };

  void main();

  pool_core& pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<entry> entries_;  // guarded by mu_
  std::uint64_t next_id_ = 0;   // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  std::thread thread_;
};

// One task's place in the lineage: written by its worker when the task starts, read by any worker
// deciding whether a queued task descends from the task it waits in.
struct frame {
  std::atomic<std::uint64_t> serial{0};
  std::atomic<std::uint64_t> parent{0};
};

struct worker final : wait_helper {
  worker(pool_core& owner, std::size_t position) : pool(&owner), index(position) {}
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker() {
    for (auto& block : frames) delete[] block.load(std::memory_order_relaxed);
  }
  bool try_run_one(state_base* awaited) override;

  // Owner only: the serial of the innermost task running here, for a child it submits. A task
  // gets its frame when it first submits one: most tasks of a fork-join tree are leaves and never
  // pay for it, and a task without a frame has no descendants a waiter could look for.
  std::uint64_t lineage() noexcept {
    if (current == 0 && depth != 0) current = enter(depth - 1, current_parent);
    return current;
  }

  // Owner only: gives the task running at nesting `level` a frame; returns its serial (0 when it
  // gets none: too deep, or out of memory).
  std::uint64_t enter(std::uint32_t level, std::uint64_t parent) noexcept {
    if (level > depth_mask) return 0;
    std::atomic<frame*>& slot = frames[level / frames_per_block];
    frame* block = slot.load(std::memory_order_relaxed);
    if (block == nullptr) {
      block = new (std::nothrow) frame[frames_per_block];
      if (block == nullptr) return 0;
      slot.store(block, std::memory_order_release);  // pairs with the acquire in find_frame()
    }
    frame& f = block[level % frames_per_block];
    // Unique per worker, so unique per frame: a stale serial never matches a reused frame.
    const std::uint64_t serial =
        (++serials << (index_bits + depth_bits)) | (std::uint64_t{level} << index_bits) | index;
    // A reader that validated the old serial must never pair it with the new parent: clear the
    // serial first. The release store of parent orders the clearing before it; a reader that sees
    // the new parent (acquire) then rereads serial and cannot find the old value. Matches the
    // loads in pool_core::descends_from().
    f.serial.store(0, std::memory_order_relaxed);
    f.parent.store(parent, std::memory_order_release);
    f.serial.store(serial, std::memory_order_release);
    return serial;
  }

  pool_core* pool;
  std::size_t index;
  work_deque<task_node> deque;
  std::atomic<std::uint32_t> wake_word{0};  // 1 once a waker took this worker off the idle list
  std::atomic<std::uint32_t> running{0};    // tasks executing on this thread (nested ones too)
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> stolen{0};
  // Owner only: the innermost task running here — its serial (0 until it gets a frame, see
  // lineage()) and its parent's — and how many tasks are nested on this thread now.
  std::uint64_t current = 0;
  std::uint64_t current_parent = 0;
  std::uint32_t depth = 0;
  std::uint64_t serials = 0;  // owner only: serials handed out by enter()
  std::array<std::atomic<frame*>, frame_blocks> frames{};  // allocated by the owner as it nests
  std::uint64_t rng = 0;
  std::thread thread;
};

// Brackets one task on a worker: counts it as running and makes it the innermost task (its frame
// comes when it needs one, see worker::lineage()).
class frame_scope {
 public:
  frame_scope(worker& w, std::uint64_t parent) noexcept
      : worker_(w), saved_(w.current), saved_parent_(w.current_parent) {
    w.running.store(w.running.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    w.current = 0;
    w.current_parent = parent;
    ++w.depth;
  }
  frame_scope(const frame_scope&) = delete;
  frame_scope& operator=(const frame_scope&) = delete;
  ~frame_scope() {
    worker_.current = saved_;
    worker_.current_parent = saved_parent_;
    --worker_.depth;
    worker_.running.store(worker_.running.load(std::memory_order_relaxed) - 1,
                          std::memory_order_relaxed);
  }

 private:
  worker& worker_;
  std::uint64_t saved_;
  std::uint64_t saved_parent_;
};

namespace {
thread_local worker* this_worker = nullptr;
// The pool this (non-worker) thread last submitted to. Holding its core lets a waiter on this
// thread touch the pool (claim_for_outside_waiter) with no risk of it having been freed; a
// destroyed pool's core is only memory (its workers were joined by ~thread_pool), released when
// this thread submits elsewhere or ends.
thread_local std::shared_ptr<pool_core> last_pool;
}  // namespace

class pool_core : public std::enable_shared_from_this<pool_core> {
 public:
  explicit pool_core(const thread_pool_options& options)
      : spin_rounds_(std::max<std::uint32_t>(options.spin_rounds, 1)),
        max_queued_(options.max_queued),
        on_full_(options.on_full) {
    if (options.on_full != queue_full::block && options.on_full != queue_full::fail) {
      throw std::invalid_argument("crew::thread_pool: on_full must be queue_full::block or fail");
    }
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
      joined_ = true;
      throw;
    }
  }

  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;
  ~pool_core() { shutdown(shutdown_mode::drain); }

  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] std::size_t max_queued() const noexcept { return max_queued_; }
  [[nodiscard]] bool on_own_worker() const noexcept {
    return this_worker != nullptr && this_worker->pool == this;
  }

  enum class admission { queued, closed, full };

  admission enqueue(task_node* task) {
    worker* self = this_worker;
    if (self == nullptr || self->pool != this) {
      if (max_queued_ != 0) {
        const admission a = reserve_slot();
        if (a != admission::queued) return a;
        task->bounded = true;  // from here on the first take releases the slot
      }
      return inject(task) ? admission::queued : admission::closed;
    }
    // A running task of this pool: accepted while draining, refused once cancel_pending began.
    // Never counted against max_queued: blocking here could wait for this very task.
    if (discarding_.load(std::memory_order_relaxed)) return admission::closed;
    const std::uint64_t parent = self->lineage();
    task->pool = this;
    task->parent = parent;
    self->deque.push(task, parent);
    notify();
    return admission::queued;
  }

  // Whether submit_bulk from outside must admit its tasks one by one (a bounded queue).
  [[nodiscard]] bool bounded_outside() const noexcept {
    return max_queued_ != 0 && (this_worker == nullptr || this_worker->pool != this);
  }

  // A slot in the bounded queue for a submission from outside: waits for one (block), or
  // refuses (fail); closed when the pool closes meanwhile.
  admission reserve_slot() {
    std::size_t seen = queued_bounded_.load(std::memory_order_relaxed);
    for (;;) {
      while (seen < max_queued_) {
        if (queued_bounded_.compare_exchange_weak(seen, seen + 1, std::memory_order_seq_cst)) {
          return admission::queued;
        }
      }
      if (closed_flag_.load(std::memory_order_acquire)) return admission::closed;
      if (on_full_ == queue_full::fail) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return admission::full;
      }
      std::unique_lock lock{room_mu_};
      // Announced before the check, both seq_cst: pairs with release_slot()'s decrement and load.
      room_waiters_.fetch_add(1, std::memory_order_seq_cst);
      room_cv_.wait(lock, [&] {
        seen = queued_bounded_.load(std::memory_order_seq_cst);
        return seen < max_queued_ || closed_flag_.load(std::memory_order_acquire);
      });
      room_waiters_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // A bounded task was taken (task_node::try_take / take_for_queue): its slot is free.
  void release_slot() noexcept {
    queued_bounded_.fetch_sub(1, std::memory_order_seq_cst);
    if (room_waiters_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard lock{room_mu_};
      room_cv_.notify_one();
    }
  }

  void wake_blocked_submitters() noexcept {
    { std::lock_guard lock{room_mu_}; }  // a waiter is either before its check or asleep
    room_cv_.notify_all();
  }

  std::uint64_t arm_timeout(const call_watch& watch) {
    call_timer* timer = nullptr;
    {
      std::lock_guard lock{timer_mu_};
      if (!timer_) timer_ = std::make_unique<call_timer>(*this);
      timer = timer_.get();
    }
    return timer->arm(watch);
  }
  void disarm_timeout(std::uint64_t id) noexcept {
    // Armed from a running task: the timer exists until the workers are joined.
    timer_->disarm(id);
  }
  void count_timed_out() noexcept { timed_out_.fetch_add(1, std::memory_order_relaxed); }
  void uncount_timed_out() noexcept { timed_out_.fetch_sub(1, std::memory_order_relaxed); }

  // From a thread outside the pool (or another pool's worker): the injection queue.
  bool inject(task_node* task) {
    if (last_pool.get() != this) last_pool = shared_from_this();
    task->pool = this;
    task->injected = true;
    {
      std::lock_guard lock{inject_mu_};
      if (closed_) return false;
      inject_.push_back(task);
      inject_count_.fetch_add(1, std::memory_order_seq_cst);
    }
    notify();
    return true;
  }

  bool enqueue_bulk(const std::vector<task_node*>& tasks) {
    if (worker* self = this_worker; self != nullptr && self->pool == this) {
      if (discarding_.load(std::memory_order_relaxed)) return false;
      const std::uint64_t parent = self->lineage();
      for (task_node* task : tasks) {
        task->pool = this;
        task->parent = parent;
        self->deque.push(task, parent);
      }
    } else {
      if (last_pool.get() != this) last_pool = shared_from_this();
      for (task_node* task : tasks) {
        task->pool = this;
        task->injected = true;
      }
      std::lock_guard lock{inject_mu_};
      if (closed_) return false;
      inject_.insert(inject_.end(), tasks.begin(), tasks.end());
      inject_count_.fetch_add(tasks.size(), std::memory_order_seq_cst);
    }
    // One wake-up: the woken worker hands the search on when it finds work (end_search()).
    notify();
    return true;
  }

  // A thread outside the pool waits on `node`. Only a thread that keeps this core alive itself
  // (it submitted here last) may touch it. The claim and the running count change together under
  // inject_mu_, which is_idle_locked() also takes: wait_idle() never sees the task neither queued
  // nor running.
  outside_claim claim_for_outside_waiter(task_node& node) noexcept {
    if (last_pool.get() != this || node.pool_only) return outside_claim::none;
    std::lock_guard lock{inject_mu_};
    // Once cancel_pending began, queued tasks are the shutdown's to cancel, not a waiter's to run.
    if (discarding_.load(std::memory_order_relaxed)) return outside_claim::none;
    outside_claim claim = outside_claim::taken;
    if (node.injected && !inject_.empty() && inject_.back() == &node) {
      if (!node.try_take(taker::outside_waiter)) return outside_claim::none;
      inject_.pop_back();
      inject_count_.fetch_sub(1, std::memory_order_seq_cst);
      claim = outside_claim::removed;
    } else if (!node.try_take(taker::outside_waiter)) {
      return outside_claim::none;
    }
    inline_running_.store(inline_running_.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
    return claim;
  }

  void end_outside_run(run_status status) noexcept {
    std::lock_guard lock{inject_mu_};
    const std::size_t left = inline_running_.load(std::memory_order_relaxed) - 1;
    inline_running_.store(left, std::memory_order_relaxed);
    auto& counter = status == run_status::cancelled ? discarded_ : inlined_;
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // Under the lock, so a wait_idle() that checked before this sees its waiter count here, and
    // one that checks after sees the count at zero; and the pool cannot be freed until the lock
    // is released (wait_idle() takes it to decide).
    if (left == 0 && idle_waiters_.load(std::memory_order_relaxed) != 0) idle_.notify_all();
  }

  // A worker of this pool runs `node`, which it waits for and took (try_take) itself.
  void run_awaited(worker& self, task_node& node) noexcept {
    frame_scope scope{self, node.parent};
    run_status status;
    if (discarding_.load(std::memory_order_relaxed)) {
      const task_error error = cancelled_error();
      status = node.finish_taken(&error);
    } else {
      status = node.finish_taken(nullptr);
    }
    count(self, status);
  }

  // What a waiting worker may run (see the file comment and thread_pool.hpp, "Waiting").
  bool help(worker& self, state_base* awaited) {
    const std::uint64_t me = self.current;  // 0: it submitted nothing, so nothing descends from it
    auto spawned_by_me = [this, me](std::uint64_t tag) noexcept { return descends_from(tag, me); };
    // The newest task of its own deque, usually the awaited child itself: no dead entry left.
    if (me != 0) {
      if (auto e = self.deque.pop_if(spawned_by_me); e.item != nullptr) {
        execute(self, e);
        return true;
      }
    }
    // The awaited task, wherever it waits to start.
    if (awaited != nullptr && awaited->run_here()) return true;
    // A descendant that another worker has not started yet.
    if (me != 0 && workers_.size() > 1) {
      if (auto e = steal(self, spawned_by_me); e.item != nullptr) {
        execute(self, e);
        return true;
      }
    }
    return false;
  }

  void wait_idle() {
    if (on_own_worker()) {
      throw std::logic_error(
          "crew::thread_pool::wait_idle() called from one of the pool's own tasks: it would wait "
          "for itself");
    }
    idle_waiters_.fetch_add(1, std::memory_order_relaxed);  // published by the lock below
    for (;;) {
      const std::uint32_t key = idle_.prepare_wait();
      bool idle = false;
      {
        std::lock_guard lock{inject_mu_};
        idle = is_idle_locked();
      }
      if (idle) {
        idle_.cancel_wait();
        break;
      }
      idle_.commit_wait(key);
    }
    idle_waiters_.fetch_sub(1, std::memory_order_relaxed);
  }

  // Any number of threads may call this at once: each closes (and, for cancel_pending, cancels
  // what is queued), each waits until idle, and the first to get shutdown_mu_ joins the workers.
  void shutdown(shutdown_mode mode) {
    if (on_own_worker()) {
      throw std::logic_error(
          "crew::thread_pool::shutdown() called from one of the pool's own tasks: it would join "
          "its own thread");
    }
    close(mode, discard_reason::shutdown);
    wait_idle();
    std::lock_guard serial{shutdown_mu_};
    if (joined_) return;
    stop_and_join();
    joined_ = true;
  }

  enum class discard_reason : std::uint8_t { shutdown, stop_now };

  // Closes the pool without waiting; cancel_pending also cancels what is queued (the injection
  // queue now, worker deques as the workers reach them). Returns the tasks it cancelled.
  std::size_t close(shutdown_mode mode, discard_reason reason) {
    std::deque<task_node*> dropped;
    {
      std::lock_guard lock{inject_mu_};
      closed_ = true;
      closed_flag_.store(true, std::memory_order_release);
      if (mode == shutdown_mode::cancel_pending) {
        // The first reason given stays: the messages of tasks cancelled later agree with it.
        if (!discarding_.load(std::memory_order_relaxed)) {
          reason_.store(reason, std::memory_order_relaxed);
        }
        discarding_.store(true, std::memory_order_relaxed);
        dropped.swap(inject_);
        inject_count_.fetch_sub(dropped.size(), std::memory_order_seq_cst);
      }
    }
    wake_blocked_submitters();
    std::uint64_t cancelled = 0;
    for (task_node* task : dropped) {
      if (task->discard(cancelled_error()) == run_status::cancelled) ++cancelled;
    }
    discarded_.fetch_add(cancelled, std::memory_order_relaxed);
    return cancelled;
  }

  stop_report stop_now() {
    stop_report report;
    report.cancelled = close(shutdown_mode::cancel_pending, discard_reason::stop_now);
    // The workers' deques too, now: their owners would discard them one by one, but the caller
    // is told how many there were. steal() is safe from any thread; an entry the owner takes
    // meanwhile is discarded by the owner (discarding_ is set).
    std::uint64_t cancelled = 0;
    for (auto& w : workers_) {
      while (!w->deque.empty()) {
        const entry e = w->deque.steal();
        if (e.item != nullptr && e.item->discard(cancelled_error()) == run_status::cancelled) {
          ++cancelled;
        }
      }
    }
    discarded_.fetch_add(cancelled, std::memory_order_relaxed);
    report.cancelled += cancelled;
    std::size_t running = inline_running_.load(std::memory_order_relaxed);
    for (const auto& w : workers_) running += w->running.load(std::memory_order_relaxed);
    report.still_running = running;
    return report;
  }

  task_error cancelled_error() const {
    return reason_.load(std::memory_order_relaxed) == discard_reason::stop_now
               ? task_error{error_kind::cancelled,
                            "cancelled by crew::thread_pool::stop_now() before it started"}
               : task_error{error_kind::cancelled,
                            "cancelled by crew::thread_pool::shutdown(cancel_pending) before it "
                            "started"};
  }

  [[nodiscard]] bool closed() const noexcept {
    return closed_flag_.load(std::memory_order_acquire);
  }

  [[nodiscard]] thread_pool_stats stats() const noexcept {
    thread_pool_stats out;
    out.workers = workers_.size();
    out.queued = inject_count_.load(std::memory_order_relaxed);
    out.running = inline_running_.load(std::memory_order_relaxed);
    out.cancelled = discarded_.load(std::memory_order_relaxed);
    out.inlined = inlined_.load(std::memory_order_relaxed);
    out.timed_out = timed_out_.load(std::memory_order_relaxed);
    out.rejected = rejected_.load(std::memory_order_relaxed);
    for (const auto& w : workers_) {
      out.queued += w->deque.size();
      out.running += w->running.load(std::memory_order_relaxed);
      out.completed += w->completed.load(std::memory_order_relaxed);
      out.failed += w->failed.load(std::memory_order_relaxed);
      out.cancelled += w->cancelled.load(std::memory_order_relaxed);
      out.stolen += w->stolen.load(std::memory_order_relaxed);
    }
    return out;
  }

 private:
  using entry = work_deque<task_node>::entry;

  void execute(worker& self, entry e) noexcept {
    frame_scope scope{self, e.tag};
    const run_status status = discarding_.load(std::memory_order_relaxed)
                                  ? e.item->discard(cancelled_error())
                                  : e.item->run();
    count(self, status);
  }

  static void count(worker& self, run_status status) noexcept {
    switch (status) {
      case run_status::completed:
        bump(self.completed);
        break;
      case run_status::failed:
        bump(self.failed);
        break;
      case run_status::cancelled:
        bump(self.cancelled);
        break;
      case run_status::taken_by_waiter:
        break;  // the waiter counted it
    }
  }

  // Whether the task whose deque tag (its parent's serial) is `tag` descends from the task with
  // serial `ancestor`. Follows parent serials through the frames; a frame that has moved on to
  // another task ends the walk with "no".
  bool descends_from(std::uint64_t tag, std::uint64_t ancestor) const noexcept {
    if (ancestor == 0) return false;
    for (unsigned hops = 0; hops < max_lineage_hops && tag != 0; ++hops) {
      if (tag == ancestor) return true;
      const frame* f = find_frame(tag);
      if (f == nullptr) return false;
      // Matches the stores in worker::enter(): serial, then parent (acquire), then serial again;
      // the second read cannot see the old serial if the parent read saw a newer task's parent.
      if (f->serial.load(std::memory_order_acquire) != tag) return false;
      const std::uint64_t up = f->parent.load(std::memory_order_acquire);
      if (f->serial.load(std::memory_order_relaxed) != tag) return false;
      tag = up;
    }
    return false;
  }

  const frame* find_frame(std::uint64_t serial) const noexcept {
    const std::uint64_t index = serial & index_mask;
    if (index >= workers_.size()) return nullptr;
    const std::uint64_t level = (serial >> index_bits) & depth_mask;
    const frame* block =
        workers_[index]->frames[level / frames_per_block].load(std::memory_order_acquire);
    return block == nullptr ? nullptr : &block[level % frames_per_block];
  }

  void worker_main(worker& self, const std::string& prefix) {
    this_worker = &self;
    current_wait_helper() = &self;
    const std::string name = (prefix + std::to_string(self.index)).substr(0, 15);
    pthread_setname_np(pthread_self(), name.c_str());
    for (;;) {
      if (entry e = self.deque.pop(); e.item != nullptr) {
        execute(self, e);
        continue;
      }
      searching_.fetch_add(1, std::memory_order_seq_cst);
      const entry e = search(self);
      if (e.item == nullptr) break;  // stopping
      execute(self, e);
    }
    current_wait_helper() = nullptr;
    this_worker = nullptr;
  }

  // Entered counted in searching_; returns a task (no longer counted) or nothing when stopping.
  entry search(worker& self) {
    for (;;) {
      for (std::uint32_t round = 0; round < spin_rounds_; ++round) {
        if (entry e = take_shared(self); e.item != nullptr) {
          end_search();
          return e;
        }
        std::this_thread::yield();
      }
      if (!park(self)) return {};
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

  // Caller holds inject_mu_ (inline_running_ and the injection queue change under it).
  [[nodiscard]] bool is_idle_locked() const noexcept {
    if (stopping_.load(std::memory_order_seq_cst)) return true;
    return static_cast<std::size_t>(sleepers_.load(std::memory_order_seq_cst)) == workers_.size() &&
           inject_count_.load(std::memory_order_seq_cst) == 0 &&
           inline_running_.load(std::memory_order_relaxed) == 0;
  }

  entry take_shared(worker& self) {
    if (entry e = take_injected(self); e.item != nullptr) return e;
    return steal(self, [](std::uint64_t) noexcept { return true; });
  }

  entry take_injected(worker& self) {
    if (inject_count_.load(std::memory_order_relaxed) == 0) return {};
    // A worker never queues behind the submitter: if the lock is busy it looks elsewhere and
    // comes back (its caller loops; the parking recheck reads inject_count_, not the queue).
    std::unique_lock lock{inject_mu_, std::try_to_lock};
    if (!lock.owns_lock()) return {};
    if (inject_.empty()) return {};
    const std::size_t available = inject_.size();
    const std::size_t take =
        std::min(available / workers_.size() + 1, std::min(available, max_inject_batch));
    std::array<task_node*, max_inject_batch> batch;
    std::copy_n(inject_.begin(), take, batch.begin());
    inject_.erase(inject_.begin(), inject_.begin() + static_cast<std::ptrdiff_t>(take));
    inject_count_.fetch_sub(take, std::memory_order_seq_cst);
    lock.unlock();  // the submitter waits for this lock: hold it for the copy only
    // Oldest last, so this worker runs them in submission order (it pops LIFO). Injected tasks
    // have no parent in this pool (tag 0).
    for (std::size_t i = take; i-- > 1;) self.deque.push(batch[i], 0);
    return {batch[0], 0};
  }

  template <class Pred>
  entry steal(worker& self, Pred&& wanted) {
    const std::size_t n = workers_.size();
    if (n == 1) return {};
    self.rng ^= self.rng << 13;
    self.rng ^= self.rng >> 7;
    self.rng ^= self.rng << 17;
    const std::size_t start = static_cast<std::size_t>(self.rng % n);
    for (std::size_t i = 0; i < n; ++i) {
      worker& victim = *workers_[(start + i) % n];
      if (&victim == &self) continue;
      if (entry e = victim.deque.steal_if(wanted); e.item != nullptr) {
        bump(self.stolen);
        return e;
      }
    }
    return {};
  }

  void stop_and_join() noexcept {
    stopping_.store(true, std::memory_order_seq_cst);
    idle_.notify_all();  // wait_idle() callers: a stopped pool is idle
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
    // No task runs any more, so none is armed: the timer can go.
    {
      std::lock_guard lock{timer_mu_};
      timer_.reset();
    }
    // Nothing can be left (the pool was idle and closed), but never leak a future's state.
    for (auto& w : workers_) {
      while (task_node* task = w->deque.steal().item) task->discard(cancelled_error());
    }
    std::lock_guard lock{inject_mu_};
    for (task_node* task : inject_) task->discard(cancelled_error());
    inject_.clear();
  }

  std::vector<std::unique_ptr<worker>> workers_;
  const std::uint32_t spin_rounds_;

  spin_lock inject_mu_;
  std::deque<task_node*> inject_;  // guarded by inject_mu_
  bool closed_ = false;            // guarded by inject_mu_
  std::atomic<std::size_t> inject_count_{0};
  // Tasks that threads outside the pool run as they wait (claim_for_outside_waiter); written
  // under inject_mu_, read there by is_idle_locked() and anywhere by stats().
  std::atomic<std::size_t> inline_running_{0};
  std::atomic<bool> closed_flag_{false};
  std::atomic<bool> discarding_{false};  // written under inject_mu_
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> discarded_{0};
  std::atomic<std::uint64_t> inlined_{0};  // written under inject_mu_

  alignas(64) std::atomic<int> searching_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::mutex idle_mu_;
  std::vector<worker*> idle_list_;  // guarded by idle_mu_
  notifier idle_;                   // wakes wait_idle() when the last worker parks
  std::atomic<int> idle_waiters_{0};

  std::mutex shutdown_mu_;
  bool joined_ = false;  // guarded by shutdown_mu_

  // The bound on queued tasks (0: none): slots taken by outside submissions until their task is
  // taken from the queue.
  const std::size_t max_queued_;
  const queue_full on_full_;
  std::atomic<std::size_t> queued_bounded_{0};
  std::mutex room_mu_;
  std::condition_variable room_cv_;  // submitters waiting for a slot
  std::atomic<int> room_waiters_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<discard_reason> reason_{discard_reason::shutdown};

  // Per-call timeouts.
  std::mutex timer_mu_;
  std::unique_ptr<call_timer> timer_;  // guarded by timer_mu_ (created on first use)
  std::atomic<std::uint64_t> timed_out_{0};
};

void call_timer::main() {
  std::unique_lock lock{mu_};
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    auto next = std::chrono::steady_clock::time_point::max();
    std::vector<entry> due;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->deadline <= now) {
        due.push_back(std::move(*it));
        it = entries_.erase(it);
      } else {
        next = std::min(next, it->deadline);
        ++it;
      }
    }
    if (!due.empty()) {
      lock.unlock();
      for (entry& e : due) {
        // A running state: cancel() only asks its std::stop_token to stop (if it takes one).
        (void)e.state->cancel();
        std::string what = call_name(e.name) + " ran past its timeout of " +
                           describe_timeout(e.timeout) +
                           "; crew::thread_pool cannot stop a running thread: the task runs on "
                           "to its end and its result is dropped (its std::stop_token, if it "
                           "takes one, was asked to stop)";
        // Counted before the future is ready, so whoever sees it ready sees the count.
        pool_.count_timed_out();
        if (!e.state->fail(
                task_error{error_kind::timed_out, what, task_error::details::named(e.name)})) {
          pool_.uncount_timed_out();  // it completed first
        }
      }
      due.clear();
      lock.lock();
      continue;
    }
    if (next == std::chrono::steady_clock::time_point::max()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, next);
    }
  }
}

outside_claim claim_for_outside_waiter(pool_core* pool, task_node& node) noexcept {
  return pool == nullptr ? outside_claim::none : pool->claim_for_outside_waiter(node);
}

void end_outside_run(pool_core* pool, run_status status) noexcept {
  pool->end_outside_run(status);
}

bool run_awaited_on_worker(pool_core* pool, task_node& node) noexcept {
  worker* self = this_worker;
  if (self == nullptr || self->pool != pool || pool == nullptr) return false;
  if (!node.try_take(taker::worker_waiter)) return false;
  pool->run_awaited(*self, node);
  return true;
}

void release_queued(pool_core* pool) noexcept {
  pool->release_slot();
}

std::uint64_t arm_call_timeout(const call_watch& watch) noexcept {
  try {
    return watch.pool->arm_timeout(watch);
  } catch (...) {
    return 0;  // out of memory: the task runs without its timeout
  }
}

void disarm_call_timeout(pool_core* pool, std::uint64_t id) noexcept {
  pool->disarm_timeout(id);
}

void rethrow_named(const std::string& name) {
  const task_error error = task_error::from_exception(std::current_exception());
  task_error::details info = error.info();
  info.task_name = name;
  throw task_error{error.kind(), error.what(), std::move(info)};
}

bool worker::try_run_one(state_base* awaited) {
  return pool->help(*this, awaited);
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

// The blocking calls hold a reference of their own: another thread may run the destructor while
// they wait (it waits for the same shutdown), and the core must outlive their return.
void thread_pool::wait_idle() {
  const std::shared_ptr<detail::pool_core> core = core_;
  core->wait_idle();
}

void thread_pool::shutdown(shutdown_mode mode) {
  const std::shared_ptr<detail::pool_core> core = core_;
  core->shutdown(mode);
}

void thread_pool::close(shutdown_mode mode) {
  core_->close(mode, detail::pool_core::discard_reason::shutdown);
}

stop_report thread_pool::stop_now() {
  return core_->stop_now();
}

task_error thread_pool::expired_call(const call_options& options) noexcept {
  core_->count_timed_out();
  return task_error{
      error_kind::timed_out,
      detail::call_name(options.name) + " was given a timeout of " +
          detail::describe_timeout(options.timeout.value_or(std::chrono::nanoseconds{0})) +
          ": its time was up before it started, and it never ran",
      task_error::details::named(options.name)};
}

bool thread_pool::closed() const noexcept {
  return core_->closed();
}

thread_pool_stats thread_pool::stats() const noexcept {
  return core_->stats();
}

bool thread_pool::submit_node(detail::task_node* task) noexcept {
  using admission = detail::pool_core::admission;
  admission result = admission::closed;
  try {
    result = core_->enqueue(task);
  } catch (...) {
    // Out of memory while queuing: the task fails like one submitted after shutdown.
  }
  if (result == admission::queued) return true;
  task->discard(result == admission::full ? detail::queue_full_error(core_->max_queued())
                                          : detail::closed_error());
  return false;
}

bool thread_pool::submit_nodes(const std::vector<detail::task_node*>& tasks) noexcept {
  if (core_->bounded_outside()) {
    // A bounded queue admits tasks one at a time: a batch larger than the bound must not wait
    // for room it can never get.
    bool all = true;
    for (auto* task : tasks) all = submit_node(task) && all;
    return all;
  }
  try {
    if (core_->enqueue_bulk(tasks)) return true;
  } catch (...) {
  }
  for (auto* task : tasks) task->discard(detail::closed_error());
  return false;
}

}  // namespace crew
