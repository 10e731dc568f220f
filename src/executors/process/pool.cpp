// The parent side of a process pool.
//
// Two threads per pool besides the callers:
//  - the manager owns the result rings: it sleeps on the pool's collector doorbell, turns results
//    into fulfilled futures, deals queued tasks to workers, and handles every worker's death
//    (it also forks the workers, so PR_SET_PDEATHSIG binds them to a thread that lives as long
//    as the pool);
//  - the watcher sleeps in epoll on the workers' pidfds and stderr pipes and on a timer that
//    samples deadlines and memory; it only observes, kills and posts events to the manager.
// One mutex (mu_) guards the queues, the slots' bookkeeping and the request rings' writers.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "crew/hybrid_pool.hpp"
#include "crew/process_pool.hpp"
#include "executors/process/launch.hpp"
#include "executors/process/payload.hpp"
#include "executors/process/proc.hpp"
#include "executors/process/protocol.hpp"
#include "ipc/doorbell.hpp"
#include "ipc/fd_passing.hpp"
#include "ipc/shared_region.hpp"
#include "ipc/spsc_ring.hpp"

namespace crew::detail {

using process::flag_in_payload_fd;
using process::last_lines;
using process::payload;
using process::peak_resident_bytes;
using process::region_layout;
using process::request_header;
using process::request_kind;
using process::resident_bytes;
using process::result_header;
using process::result_status;
using process::slot_control;

namespace {

using clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(),
                          std::string{"crew process_pool: "} + call);
}

std::size_t round_up_pow2(std::size_t value) {
  std::size_t out = ipc::spsc_ring::min_capacity;
  while (out < value) out <<= 1;
  return out;
}

// Encoded arguments above this size go in a memfd rather than the request ring.
constexpr std::size_t large_args_threshold = 64 * 1024;

enum class kill_reason { none, timed_out, out_of_memory, cancelled, protocol, retiring, shutdown };

}  // namespace

struct task_record {
  std::uint64_t seq = 0;
  const task_entry* entry = nullptr;
  state_ptr<state_base> state;
  result_decoder decode = nullptr;
  std::vector<std::byte> args;   // small arguments, encoded
  std::optional<payload> large;  // large arguments, encoded in a memfd
  unsigned deaths = 0;           // workers that died running it
  bool cancel_requested = false;
};
using record_ptr = std::unique_ptr<task_record>;

/// One worker process. It serves `threads` consecutive slots, one thread each (a process pool
/// has one thread per process; a hybrid pool several).
struct worker_process {
  std::size_t index = 0;
  std::uint64_t generation = 0;
  bool live = false;
  bool dead = false;  // pidfd fired; waiting for the manager
  pid_t pid = -1;
  ipc::unique_fd pidfd;
  ipc::unique_fd stderr_fd;
  std::string stderr_tail;
};

/// One thread's channel pair and bookkeeping. A slot answers in order.
struct worker_slot {
  enum class phase { empty, live, exiting };

  std::size_t index = 0;
  worker_process* process = nullptr;
  phase state = phase::empty;
  ipc::unique_fd socket;  // parent's end; large payload descriptors
  slot_control* control = nullptr;
  std::optional<ipc::ring_writer> requests;
  std::optional<ipc::ring_reader> results;  // manager thread only
  std::deque<record_ptr> in_flight;         // in the order sent; the worker answers in order
  std::size_t sent = 0;                     // tasks sent to this slot
  bool exit_sent = false;
  // Supervision (watcher): what the slot runs and since when, and why its process was killed.
  std::uint64_t watched_seq = 0;
  clock::time_point watched_since{};
  kill_reason reason = kill_reason::none;
  std::uint64_t killed_seq = 0;
  std::size_t peak_memory = 0;
  clock::time_point term_sent{};
  bool term_pending = false;
  // Pipelining: how long a task takes on this worker (EWMA), to decide how many to send ahead.
  clock::time_point last_result{};
  double task_ns = 100'000;

  [[nodiscard]] bool usable() const noexcept {
    return state == phase::live && !process->dead && !exit_sent;
  }
};

class process_pool_core {
 public:
  /// `threads` slots (threads) per worker process; options.workers processes.
  process_pool_core(process_pool_options options, std::size_t threads);
  ~process_pool_core();

  void start();
  std::uint64_t enqueue(submission job);
  bool cancel(std::uint64_t seq) noexcept;
  void wait_idle();
  void shutdown(shutdown_mode mode);
  process_pool_stats stats() const;
  std::vector<int> worker_pids() const;
  std::size_t concurrency() const noexcept { return slots_.size(); }

 private:
  // manager
  void manager_main();
  bool collect(worker_slot& slot);
  void retire_if_done_locked(worker_slot& slot);
  void handle_death(worker_process& process);
  void settle_slot(worker_slot& slot, const task_error::details& base, bool clean_exit,
                   bool killed_on_purpose);
  void start_process(worker_process& process);
  void dispatch_locked();
  bool send_locked(worker_slot& slot, task_record& record);
  void send_exit_locked(worker_slot& slot);
  void complete_locked(record_ptr record, std::optional<task_error> error);
  void kill_locked(worker_slot& slot, kill_reason reason, int signal);
  void note_idle_locked();
  bool idle_locked() const noexcept;
  std::size_t depth_for(const worker_slot& slot) const noexcept;
  bool any_readable() const noexcept;
  void wake_manager() noexcept;
  std::span<worker_slot> slots_of(const worker_process& process) noexcept {
    return std::span{slots_}.subspan(process.index * threads_, threads_);
  }
  // watcher
  void watcher_main();
  void watch(worker_process& process);
  void drain_stderr_locked(worker_process& process);
  void supervise_locked();

  const process_pool_options options_;
  const std::size_t threads_;
  const region_layout layout_;
  ipc::shared_region region_;
  ipc::doorbell* collector_bell_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::deque<record_ptr> pending_;
  std::vector<worker_process> processes_;
  std::vector<worker_slot> slots_;
  std::uint64_t next_seq_ = 0;
  std::size_t in_flight_ = 0;
  bool closed_ = false;    // no more submissions
  bool stopping_ = false;  // workers are told to exit; no replacements
  bool started_ = false;
  std::exception_ptr start_error_;
  std::condition_variable started_cv_;
  process_pool_stats stats_{};

  std::atomic<std::size_t> completing_{0};  // results taken off in_flight, not yet published
  std::atomic<std::size_t> completed_{0};   // tasks that produced a value
  std::atomic<bool> events_{false};         // the watcher or a caller has news for the manager
  std::atomic<bool> manager_done_{false};
  ipc::unique_fd epoll_;
  ipc::unique_fd watcher_wake_;  // eventfd
  ipc::unique_fd timer_;         // timerfd; armed when limits are set
  std::thread manager_;
  std::thread watcher_;
};

// --- construction and teardown ------------------------------------------------------------

process_pool_core::process_pool_core(process_pool_options options, std::size_t threads)
    : options_(std::move(options)),
      threads_(threads),
      layout_{round_up_pow2(options_.channel_bytes), options_.workers * threads} {
  if (options_.workers == 0) {
    throw std::invalid_argument("crew::process_pool: workers must be at least 1");
  }
  if (threads_ == 0 || threads_ > process::max_threads_per_process) {
    throw std::invalid_argument("crew::hybrid_pool: threads_per_process must be 1 to 64");
  }
  if ((options_.start == start_method::spawn || options_.start == start_method::forkserver) &&
      !process::initialized()) {
    throw std::logic_error(
        "crew::process_pool: start_method::spawn and forkserver need crew::init(argc, argv) at "
        "the top of main()");
  }
  if (options_.start == start_method::fork) process::warn_if_threaded_fork();

  region_ = ipc::shared_region::create("crew-pool", layout_.total_bytes());
  collector_bell_ = &ipc::make_doorbell(region_.bytes(), region_layout::doorbell_offset);
  processes_.resize(options_.workers);
  slots_.resize(options_.workers * threads_);
  for (std::size_t i = 0; i < processes_.size(); ++i) processes_[i].index = i;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].index = i;
    slots_[i].process = &processes_[i / threads_];
  }

  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw_errno("epoll_create1");
  watcher_wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!watcher_wake_) throw_errno("eventfd");
  epoll_event wake{EPOLLIN, {.u64 = 0}};
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, watcher_wake_.get(), &wake) != 0) {
    throw_errno("epoll_ctl");
  }
  if (options_.task_timeout.count() > 0 || options_.memory_limit > 0) {
    timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer_) throw_errno("timerfd_create");
    // Sample often enough to stop an overdue task within ~5% of its timeout, and a growing
    // worker within a few milliseconds; never more often than every millisecond.
    auto period = std::chrono::milliseconds{5};
    if (options_.task_timeout.count() > 0) {
      period = std::clamp(options_.task_timeout / 20, std::chrono::milliseconds{1},
                          std::chrono::milliseconds{50});
    }
    if (options_.memory_limit > 0) period = std::min(period, std::chrono::milliseconds{2});
    const long ns = static_cast<long>(std::chrono::nanoseconds{period}.count());
    itimerspec spec{{ns / 1'000'000'000, ns % 1'000'000'000},
                    {ns / 1'000'000'000, ns % 1'000'000'000}};
    if (timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0) throw_errno("timerfd_settime");
    epoll_event tick{EPOLLIN, {.u64 = 1}};
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &tick) != 0) throw_errno("epoll_ctl");
  }
}

void process_pool_core::start() {
  watcher_ = std::thread{[this] { watcher_main(); }};
  manager_ = std::thread{[this] { manager_main(); }};
  std::unique_lock lock{mu_};
  started_cv_.wait(lock, [this] { return started_; });
  if (start_error_) {
    lock.unlock();
    shutdown(shutdown_mode::cancel_pending);
    std::rethrow_exception(start_error_);
  }
}

process_pool_core::~process_pool_core() {
  shutdown(shutdown_mode::drain);
}

void process_pool_core::shutdown(shutdown_mode mode) {
  {
    std::unique_lock lock{mu_};
    closed_ = true;
    if (mode == shutdown_mode::cancel_pending) {
      while (!pending_.empty()) {
        record_ptr record = std::move(pending_.front());
        pending_.pop_front();
        ++stats_.cancelled;
        ++stats_.failed;
        record->state->fail(
            task_error{error_kind::cancelled, "cancelled by process_pool::shutdown",
                       task_error::details::named(std::string{record->entry->name})});
      }
    }
    idle_cv_.wait(lock, [this] { return idle_locked(); });
    stopping_ = true;
  }
  wake_manager();
  if (manager_.joinable()) manager_.join();
  if (watcher_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(watcher_wake_.get(), &one, sizeof one);
    watcher_.join();
  }
}

// --- the caller's side ----------------------------------------------------------------------

std::uint64_t process_pool_core::enqueue(submission job) {
  auto record = std::make_unique<task_record>();
  record->entry = job.entry;
  record->state = state_ptr<state_base>{job.state};
  job.state->add_ref();
  record->decode = job.decode;
  record->args = std::move(job.args);
  if (job.large) record->large.emplace(std::move(*job.large));
  std::lock_guard lock{mu_};
  record->seq = ++next_seq_;
  // From here on the future's cancel() goes through the pool (cancel_running), which knows
  // where the task is: queued here, sent ahead to a worker, or running.
  (void)record->state->try_start();
  const std::uint64_t seq = record->seq;
  if (closed_) {
    ++stats_.failed;
    record->state->fail(task_error{error_kind::pool_closed,
                                   "crew::process_pool: submit after shutdown",
                                   task_error::details::named(std::string{record->entry->name})});
    return seq;
  }
  pending_.push_back(std::move(record));
  dispatch_locked();
  return seq;
}

bool process_pool_core::cancel(std::uint64_t seq) noexcept {
  std::lock_guard lock{mu_};
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if ((*it)->seq != seq) continue;
    record_ptr record = std::move(*it);
    pending_.erase(it);
    complete_locked(std::move(record), task_error{error_kind::cancelled, "task cancelled"});
    return true;
  }
  for (worker_slot& slot : slots_) {
    for (std::size_t i = 0; i < slot.in_flight.size(); ++i) {
      task_record& record = *slot.in_flight[i];
      if (record.seq != seq) continue;
      if (record.cancel_requested) return true;
      record.cancel_requested = true;
      if (i == 0) {
        // The worker is running it (or about to): stop the worker; its death reports it.
        kill_locked(slot, kill_reason::cancelled, SIGKILL);
        slot.killed_seq = seq;
      } else {
        // Still queued in the worker's ring: fail it now; its result will be dropped.
        ++stats_.cancelled;
        ++stats_.failed;
        record.state->fail(task_error{error_kind::cancelled, "task cancelled",
                                      task_error::details::named(std::string{record.entry->name})});
      }
      return true;
    }
  }
  return false;  // already completed
}

void process_pool_core::wait_idle() {
  std::unique_lock lock{mu_};
  idle_cv_.wait(lock, [this] { return idle_locked(); });
}

process_pool_stats process_pool_core::stats() const {
  std::lock_guard lock{mu_};
  process_pool_stats out = stats_;
  out.completed = completed_.load(std::memory_order_relaxed);
  out.queued = pending_.size();
  out.running = in_flight_;
  out.workers = static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(),
                    [](const worker_slot& s) { return s.state != worker_slot::phase::empty; }));
  return out;
}

std::vector<int> process_pool_core::worker_pids() const {
  std::lock_guard lock{mu_};
  std::vector<int> pids;
  for (const worker_process& process : processes_) {
    if (process.live) pids.push_back(process.pid);
  }
  return pids;
}

// --- dealing tasks to workers ------------------------------------------------------------

std::size_t process_pool_core::depth_for(const worker_slot& slot) const noexcept {
  if (options_.pipeline_depth != 0) return options_.pipeline_depth;
  // Send ahead about 200 µs of work: enough that a worker never waits for the manager between
  // short tasks, little enough that long tasks do not queue behind each other on one worker
  // while another idles.
  const double ahead = 200'000.0 / std::max(slot.task_ns, 1.0);
  return static_cast<std::size_t>(std::clamp(ahead, 2.0, 64.0));
}

void process_pool_core::dispatch_locked() {
  if (pending_.empty()) return;
  // Fill the emptiest live worker first, so work spreads before it queues deep.
  for (;;) {
    worker_slot* best = nullptr;
    for (worker_slot& slot : slots_) {
      if (!slot.usable()) continue;
      if (slot.in_flight.size() >= depth_for(slot)) continue;
      if (options_.max_tasks_per_worker > 0 && slot.sent >= options_.max_tasks_per_worker) continue;
      if (best == nullptr || slot.in_flight.size() < best->in_flight.size()) best = &slot;
    }
    if (best == nullptr) return;
    while (!pending_.empty()) {
      record_ptr record = std::move(pending_.front());
      pending_.pop_front();
      if (record->state->is_ready()) continue;  // cancelled after it was sent ahead
      if (!send_locked(*best, *record)) {
        pending_.push_front(std::move(record));
        return;  // the ring is full; results will make room
      }
      ++best->sent;
      ++in_flight_;
      best->in_flight.push_back(std::move(record));
      break;
    }
    if (pending_.empty()) return;
  }
}

bool process_pool_core::send_locked(worker_slot& slot, task_record& record) {
  request_header header{record.seq, record.entry->id, request_kind::run, 0};
  std::span<const std::byte> body = record.args;
  std::uint64_t large_size = 0;
  if (record.large) {
    header.reserved = flag_in_payload_fd;
    large_size = record.large->size();
    body = std::as_bytes(std::span{&large_size, 1});
  }
  const std::size_t total = sizeof header + body.size();
  std::optional<std::span<std::byte>> room;
  try {
    room = slot.requests->try_reserve(total);
  } catch (const std::exception&) {
    kill_locked(slot, kill_reason::protocol, SIGKILL);  // the worker broke its ring
    return false;
  }
  if (!room) return false;
  if (record.large) {
    const int fd = record.large->fd();
    try {
      ipc::send_fds(slot.socket.get(), std::span<const int>{&fd, 1});
    } catch (const std::exception&) {
      kill_locked(slot, kill_reason::protocol, SIGKILL);
      return false;
    }
  }
  std::memcpy(room->data(), &header, sizeof header);
  if (!body.empty()) std::memcpy(room->data() + sizeof header, body.data(), body.size());
  slot.requests->commit(total);
  return true;
}

void process_pool_core::complete_locked(record_ptr record, std::optional<task_error> error) {
  if (error) {
    ++stats_.failed;
    if (error->kind() == error_kind::cancelled) ++stats_.cancelled;
    if (error->task_name().empty()) {
      task_error::details info = error->info();
      info.task_name = std::string{record->entry->name};
      task_error named{error->kind(), error->what(), std::move(info)};
      error.emplace(std::move(named));
    }
    record->state->fail(std::move(*error));
  }
  // record (and its reference to the state) goes here.
}

bool process_pool_core::idle_locked() const noexcept {
  return pending_.empty() && in_flight_ == 0 && completing_.load(std::memory_order_acquire) == 0;
}

void process_pool_core::note_idle_locked() {
  if (idle_locked()) idle_cv_.notify_all();
}

void process_pool_core::kill_locked(worker_slot& slot, kill_reason reason, int signal) {
  if (slot.state == worker_slot::phase::empty || slot.process->dead) return;
  if (slot.reason == kill_reason::none) slot.reason = reason;
  syscall(SYS_pidfd_send_signal, slot.process->pidfd.get(), signal, nullptr, 0);
}

// --- the manager thread ------------------------------------------------------------------

void process_pool_core::wake_manager() noexcept {
  events_.store(true, std::memory_order_release);
  collector_bell_->ring();
}

bool process_pool_core::any_readable() const noexcept {
  if (events_.load(std::memory_order_acquire)) return true;
  for (const worker_slot& slot : slots_) {
    if (slot.results && slot.results->readable()) return true;
  }
  return false;
}

void process_pool_core::manager_main() {
  {
    std::lock_guard lock{mu_};
    try {
      for (worker_process& process : processes_) start_process(process);
    } catch (...) {
      start_error_ = std::current_exception();
    }
    started_ = true;
    started_cv_.notify_all();
    dispatch_locked();
  }
  ipc::wait_options wait;
  wait.spin = std::chrono::microseconds{20};
  wait.poll = std::chrono::milliseconds{50};
  for (;;) {
    bool progress = false;
    for (worker_slot& slot : slots_) progress |= collect(slot);

    if (events_.exchange(false, std::memory_order_acq_rel)) {
      progress = true;
      std::lock_guard lock{mu_};
      for (worker_process& process : processes_) {
        if (process.dead) handle_death(process);
      }
      if (stopping_) {
        for (worker_slot& slot : slots_) {
          if (slot.state == worker_slot::phase::live && slot.in_flight.empty() && !slot.exit_sent) {
            request_header bye{0, 0, request_kind::exit, 0};
            auto room = slot.requests->try_reserve(sizeof bye);
            if (room) {
              std::memcpy(room->data(), &bye, sizeof bye);
              slot.requests->commit();
              slot.exit_sent = true;
              slot.state = worker_slot::phase::exiting;
            } else {
              kill_locked(slot, kill_reason::shutdown, SIGKILL);
            }
          }
        }
      }
      dispatch_locked();
      const bool all_gone = std::all_of(slots_.begin(), slots_.end(), [](const worker_slot& s) {
        return s.state == worker_slot::phase::empty;
      });
      if (stopping_ && all_gone) break;
    }
    if (progress) continue;
    try {
      wait.deadline = clock::now() + std::chrono::milliseconds{200};
      ipc::wait_until(
          *collector_bell_, [this] { return any_readable(); }, wait);
    } catch (const ipc::wait_timeout&) {
      // Periodic look: if a worker corrupted the doorbell, we still make progress.
      if (stopping_) events_.store(true);
    }
  }
  manager_done_.store(true);
}

bool process_pool_core::collect(worker_slot& slot) {
  if (!slot.results || slot.state == worker_slot::phase::empty) return false;
  bool any = false;
  for (int budget = 0; budget < 256; ++budget) {
    std::optional<ipc::ring_message> message;
    try {
      message = slot.results->peek();
    } catch (const std::exception&) {
      std::lock_guard lock{mu_};
      kill_locked(slot, kill_reason::protocol, SIGKILL);
      return any;
    }
    if (!message) break;
    any = true;
    result_header header{};
    record_ptr record;
    {
      std::lock_guard lock{mu_};
      if (message->streamed || message->bytes.size() < sizeof header) {
        kill_locked(slot, kill_reason::protocol, SIGKILL);
        return any;
      }
      std::memcpy(&header, message->bytes.data(), sizeof header);
      if (slot.in_flight.empty() || slot.in_flight.front()->seq != header.seq) {
        kill_locked(slot, kill_reason::protocol, SIGKILL);  // answers a task it was not given
        return any;
      }
      // How long a task takes here: the gap between results while the worker had more queued.
      const auto now = clock::now();
      if (slot.in_flight.size() >= 2 && slot.last_result != clock::time_point{}) {
        const double sample =
            std::chrono::duration<double, std::nano>(now - slot.last_result).count();
        slot.task_ns = 0.8 * slot.task_ns + 0.2 * sample;
      }
      slot.last_result = now;
      record = std::move(slot.in_flight.front());
      slot.in_flight.pop_front();
      --in_flight_;
      completing_.fetch_add(1, std::memory_order_relaxed);
      dispatch_locked();  // refill the worker before spending time on the result
      retire_if_done_locked(slot);
    }
    // Outside the lock: decode and fulfil the future, so the woken caller's next submit does
    // not wait for the manager to let go of mu_.
    std::optional<payload> large;
    std::optional<task_error> failure;
    bool broken = false;
    bool delivered = false;
    try {
      std::span<const std::byte> body = message->bytes.subspan(sizeof header);
      if (header.reserved == flag_in_payload_fd) {
        std::uint64_t size = 0;
        if (body.size() != sizeof size) throw serialization_error("bad large-result reference", 0);
        std::memcpy(&size, body.data(), sizeof size);
        // The worker sent the descriptor before the message; the socket is non-blocking.
        std::vector<ipc::unique_fd> fds = ipc::recv_fds(slot.socket.get(), 1);
        if (fds.size() != 1)
          throw serialization_error("a large result arrived without its memfd", 0);
        large.emplace(payload::attach_untrusted(std::move(fds[0]), size));
        body = large->bytes();
      } else if (header.reserved != 0) {
        throw serialization_error("unknown result flags", 0);
      }
      switch (header.status) {
        case result_status::ok:
          // A task cancelled after it was sent ahead is complete already: drop the value.
          if (!record->state->is_ready()) {
            record->decode(*record->state, body);
            delivered = true;
          }
          break;
        case result_status::exception: {
          std::pair<std::string, std::string> what;
          codec::decode_into(body, what);
          task_error::details details;
          details.remote_type = std::move(what.first);
          details.pid = slot.process->pid;
          failure.emplace(error_kind::exception, what.second, std::move(details));
          break;
        }
        case result_status::bad_request: {
          std::string what;
          codec::decode_into(body, what);
          task_error::details details;
          details.pid = slot.process->pid;
          failure.emplace(error_kind::serialization, what, std::move(details));
          break;
        }
        default:
          throw serialization_error("unknown result status", 0);
      }
    } catch (const std::exception& e) {
      // A result we cannot read: that task fails; the worker is not to be trusted any more.
      task_error::details details;
      details.pid = slot.process->pid;
      failure.emplace(error_kind::serialization,
                      std::string{"the worker's result could not be decoded: "} + e.what(),
                      std::move(details));
      broken = true;
    }
    large.reset();
    slot.results->release();
    if (failure || broken) {
      std::lock_guard lock{mu_};
      if (failure) complete_locked(std::move(record), std::move(failure));
      if (broken) {
        kill_locked(slot, kill_reason::protocol, SIGKILL);
        slot.killed_seq = 0;
      }
    } else {
      if (delivered) completed_.fetch_add(1, std::memory_order_relaxed);
      record.reset();
    }
    if (completing_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock{mu_};
      note_idle_locked();
    }
  }
  return any;
}

void process_pool_core::retire_if_done_locked(worker_slot& slot) {
  if (options_.max_tasks_per_worker > 0 && slot.sent >= options_.max_tasks_per_worker &&
      slot.in_flight.empty() && !slot.exit_sent && slot.state == worker_slot::phase::live) {
    request_header bye{0, 0, request_kind::exit, 0};
    if (auto room = slot.requests->try_reserve(sizeof bye)) {
      std::memcpy(room->data(), &bye, sizeof bye);
      slot.requests->commit();
      slot.exit_sent = true;
      slot.reason = kill_reason::retiring;
    }
  }
}

void process_pool_core::handle_death(worker_process& process) {
  // Results the worker finished before it died still count.
  for (worker_slot& slot : slots_of(process)) {
    mu_.unlock();
    collect(slot);
    mu_.lock();
  }
  drain_stderr_locked(process);
  const int status = process::reap_worker(options_.start, process.pid, process.pidfd.get());

  task_error::details base;
  base.pid = process.pid;
  if (status >= 0 && WIFSIGNALED(status)) base.signal = WTERMSIG(status);
  if (status >= 0 && WIFEXITED(status)) base.exit_code = WEXITSTATUS(status);
  base.stderr_tail = last_lines(process.stderr_tail, 20);

  bool clean_exit = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  bool killed_on_purpose = false;  // for one slot's task: the others are not to blame
  for (worker_slot& slot : slots_of(process)) {
    clean_exit = clean_exit && slot.exit_sent;
    killed_on_purpose = killed_on_purpose || slot.reason == kill_reason::timed_out ||
                        slot.reason == kill_reason::out_of_memory ||
                        slot.reason == kill_reason::cancelled ||
                        slot.reason == kill_reason::protocol;
  }
  for (worker_slot& slot : slots_of(process))
    settle_slot(slot, base, clean_exit, killed_on_purpose);

  process.pidfd.reset();
  process.stderr_fd.reset();
  process.pid = -1;
  process.dead = false;
  process.live = false;
  if (!stopping_ || !pending_.empty() || in_flight_ > 0) {
    try {
      start_process(process);
      ++stats_.restarts;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "crew process_pool: cannot start a replacement worker: %s\n", e.what());
    }
  }
  note_idle_locked();
}

void process_pool_core::settle_slot(worker_slot& slot, const task_error::details& base,
                                    bool clean_exit, bool killed_on_purpose) {
  // The slot answers in order, so after the drain the front of in_flight is the task it held.
  if (!slot.in_flight.empty() && !clean_exit) {
    record_ptr culprit = std::move(slot.in_flight.front());
    slot.in_flight.pop_front();
    --in_flight_;
    const bool killed_for_it = slot.reason != kill_reason::none && slot.killed_seq == culprit->seq;
    task_error::details info = base;
    info.task_name = std::string{culprit->entry->name};
    std::ostringstream what;
    if (culprit->cancel_requested) {
      complete_locked(std::move(culprit),
                      task_error{error_kind::cancelled, "task cancelled while running", info});
    } else if (slot.reason == kill_reason::timed_out && killed_for_it) {
      ++stats_.timeouts;
      what << "task " << info.task_name << " ran past its timeout of "
           << options_.task_timeout.count() << " ms; worker " << base.pid << " was stopped";
      complete_locked(std::move(culprit), task_error{error_kind::timed_out, what.str(), info});
    } else if (slot.reason == kill_reason::out_of_memory && killed_for_it) {
      info.peak_memory = slot.peak_memory;
      what << "worker " << base.pid << " passed its memory limit of " << options_.memory_limit
           << " bytes (peak " << slot.peak_memory << ") running " << info.task_name;
      complete_locked(std::move(culprit), task_error{error_kind::out_of_memory, what.str(), info});
    } else if (slot.reason == kill_reason::protocol) {
      what << "worker " << base.pid << " broke the channel protocol while running "
           << info.task_name;
      complete_locked(std::move(culprit), task_error{error_kind::worker_lost, what.str(), info});
    } else if (killed_on_purpose) {
      // The process was stopped for another task (or one that had already finished): this one
      // did nothing wrong and runs again.
      pending_.push_front(std::move(culprit));
    } else {
      ++stats_.crashes;
      ++culprit->deaths;
      if (culprit->deaths <= options_.retries) {
        pending_.push_front(std::move(culprit));
      } else {
        info.poisoned = options_.retries > 0;
        what << "worker " << base.pid << " running " << info.task_name;
        if (info.signal != 0) {
          what << " was killed by signal " << info.signal << " (" << strsignal(info.signal) << ")";
        } else {
          what << " exited with code " << info.exit_code;
        }
        if (info.poisoned) {
          what << "; the task killed " << culprit->deaths << " workers and is quarantined";
        }
        complete_locked(std::move(culprit), task_error{error_kind::crashed, what.str(), info});
      }
    }
  }
  // Everything else it held goes back to the front of the queue, in order.
  while (!slot.in_flight.empty()) {
    pending_.push_front(std::move(slot.in_flight.back()));
    slot.in_flight.pop_back();
    --in_flight_;
  }
  slot.requests.reset();
  slot.results.reset();
  slot.socket.reset();
  slot.state = worker_slot::phase::empty;
}

void process_pool_core::start_process(worker_process& process) {
  std::byte* base = region_.data();
  std::vector<ipc::unique_fd> worker_ends;
  const std::size_t first = process.index * threads_;
  for (worker_slot& slot : slots_of(process)) {
    const process::slot_layout where = layout_.slot(slot.index);
    slot.control = new (base + where.control) slot_control{};
    slot.requests.emplace(
        ipc::spsc_ring::create(region_.bytes(), where.requests, layout_.channel_bytes));
    slot.results.emplace(ipc::spsc_ring::create(
        region_.bytes(), where.results, layout_.channel_bytes, region_layout::doorbell_offset));
    auto [parent_end, worker_end] = ipc::make_socketpair();
    if (fcntl(parent_end.get(), F_SETFL, O_NONBLOCK) != 0) throw_errno("fcntl");
    slot.socket = std::move(parent_end);
    worker_ends.push_back(std::move(worker_end));
  }

  process::worker_config config;
  config.region_fd = region_.fd();
  config.region_bytes = region_.size();
  config.channel_bytes = layout_.channel_bytes;
  config.slot_count = layout_.slot_count;
  config.slot = first;
  config.threads = threads_;
  config.initializer_id = options_.initializer ? options_.initializer.entry->id : 0;
  config.parent_pid = static_cast<int>(getpid());
  for (std::size_t t = 0; t < threads_; ++t) config.socket_fds[t] = worker_ends[t].get();
  process::launched_worker worker = process::launch_worker(options_.start, base, config);

  process.pid = worker.pid;
  process.pidfd = std::move(worker.pidfd);
  process.stderr_fd = std::move(worker.stderr_read);
  process.generation += 1;
  process.live = true;
  process.dead = false;
  process.stderr_tail.clear();
  for (worker_slot& slot : slots_of(process)) {
    slot.state = worker_slot::phase::live;
    slot.sent = 0;
    slot.exit_sent = false;
    slot.watched_seq = 0;
    slot.reason = kill_reason::none;
    slot.killed_seq = 0;
    slot.peak_memory = 0;
    slot.term_pending = false;
  }
  watch(process);
}

// --- the watcher thread ------------------------------------------------------------------

// epoll data: bit 0..1 = kind (0 wake, 1 timer, 2 pidfd, 3 stderr), then slot index, generation.
namespace {
constexpr std::uint64_t tag_pidfd = 2;
constexpr std::uint64_t tag_stderr = 3;
std::uint64_t make_tag(std::uint64_t kind, std::size_t slot, std::uint64_t generation) {
  return kind | (static_cast<std::uint64_t>(slot) << 2) | (generation << 32);
}
}  // namespace

void process_pool_core::watch(worker_process& process) {
  epoll_event death{EPOLLIN, {.u64 = make_tag(tag_pidfd, process.index, process.generation)}};
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, process.pidfd.get(), &death) != 0) {
    throw_errno("epoll_ctl");
  }
  if (process.stderr_fd) {
    epoll_event output{EPOLLIN, {.u64 = make_tag(tag_stderr, process.index, process.generation)}};
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, process.stderr_fd.get(), &output) != 0) {
      throw_errno("epoll_ctl");
    }
  }
}

void process_pool_core::drain_stderr_locked(worker_process& process) {
  if (!process.stderr_fd) return;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(process.stderr_fd.get(), buffer, sizeof buffer);
    if (n <= 0) break;
    // Forward what the worker says, as it would have appeared without the pool.
    [[maybe_unused]] auto written = write(STDERR_FILENO, buffer, static_cast<std::size_t>(n));
    process.stderr_tail.append(buffer, static_cast<std::size_t>(n));
    constexpr std::size_t keep = 8192;
    if (process.stderr_tail.size() > 2 * keep) {
      process.stderr_tail.erase(0, process.stderr_tail.size() - keep);
    }
  }
}

void process_pool_core::supervise_locked() {
  const auto now = clock::now();
  for (worker_slot& slot : slots_) {
    worker_process& process = *slot.process;
    if (slot.state == worker_slot::phase::empty || process.dead || slot.control == nullptr)
      continue;
    if (slot.term_pending && now - slot.term_sent >= options_.kill_grace) {
      slot.term_pending = false;
      syscall(SYS_pidfd_send_signal, process.pidfd.get(), SIGKILL, nullptr, 0);
    }
    const std::uint64_t running = slot.control->running_seq.load(std::memory_order_acquire);
    if (running != slot.watched_seq) {
      slot.watched_seq = running;
      slot.watched_since = now;
    }
    if (running == 0 || slot.reason != kill_reason::none) continue;
    if (options_.task_timeout.count() > 0 && now - slot.watched_since > options_.task_timeout) {
      slot.reason = kill_reason::timed_out;
      slot.killed_seq = running;
      slot.term_sent = now;
      slot.term_pending = true;
      syscall(SYS_pidfd_send_signal, process.pidfd.get(), SIGTERM, nullptr, 0);
    }
  }
  if (options_.memory_limit == 0) return;
  for (worker_process& process : processes_) {
    if (!process.live || process.dead) continue;
    const std::size_t resident = resident_bytes(process.pid);
    if (resident <= options_.memory_limit) continue;
    const std::size_t peak = std::max(resident, peak_resident_bytes(process.pid));
    // Any of its threads may have grown it: every task running in it is charged.
    bool charged = false;
    for (worker_slot& slot : slots_of(process)) {
      const std::uint64_t running = slot.control->running_seq.load(std::memory_order_acquire);
      if (running == 0 || slot.reason != kill_reason::none) continue;
      slot.reason = kill_reason::out_of_memory;
      slot.killed_seq = running;
      slot.peak_memory = peak;
      charged = true;
    }
    if (charged) syscall(SYS_pidfd_send_signal, process.pidfd.get(), SIGKILL, nullptr, 0);
  }
}

void process_pool_core::watcher_main() {
  epoll_event events[16];
  for (;;) {
    const int n = epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("crew process_pool: epoll_wait");
      return;
    }
    bool news = false;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == 0) {
        if (manager_done_.load()) return;
        std::uint64_t count = 0;
        [[maybe_unused]] auto r = read(watcher_wake_.get(), &count, sizeof count);
        continue;
      }
      if (tag == 1) {
        std::uint64_t ticks = 0;
        [[maybe_unused]] auto r = read(timer_.get(), &ticks, sizeof ticks);
        std::lock_guard lock{mu_};
        supervise_locked();
        continue;
      }
      const std::uint64_t kind = tag & 3;
      const std::size_t index = static_cast<std::size_t>((tag >> 2) & 0x3fffffff);
      const std::uint64_t generation = tag >> 32;
      std::lock_guard lock{mu_};
      if (index >= processes_.size()) continue;
      worker_process& process = processes_[index];
      if (process.generation != generation || !process.live) continue;
      if (kind == tag_stderr) {
        drain_stderr_locked(process);
      } else if (kind == tag_pidfd && !process.dead) {
        drain_stderr_locked(process);
        process.dead = true;
        // Level-triggered pidfd stays readable until reaped; stop watching it now.
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.pidfd.get(), nullptr);
        if (process.stderr_fd) {
          epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.stderr_fd.get(), nullptr);
        }
        news = true;
      }
    }
    if (news) wake_manager();
  }
}

bool cancel_remote(process_pool_core& core, std::uint64_t seq) noexcept {
  return core.cancel(seq);
}

void payload_deleter::operator()(process::payload* p) const noexcept {
  delete p;
}

std::span<std::byte> submission::allocate(std::size_t bytes) {
  if (bytes > large_args_threshold) {
    large.reset(new payload(payload::create(bytes, false)));
    return large->bytes();
  }
  args.resize(bytes);
  return args;
}

}  // namespace crew::detail

// --- the public class ----------------------------------------------------------------------

namespace crew {

namespace detail {

remote_pool::remote_pool(const process_pool_options& options, std::size_t threads_per_process)
    : core_(std::make_shared<process_pool_core>(options, threads_per_process)) {
  core_->start();
}

remote_pool::~remote_pool() {
  core_->shutdown(shutdown_mode::drain);
}

std::uint64_t remote_pool::enqueue(submission job) {
  return core_->enqueue(std::move(job));
}
void remote_pool::wait_idle() {
  core_->wait_idle();
}
void remote_pool::shutdown(shutdown_mode mode) {
  core_->shutdown(mode);
}
process_pool_stats remote_pool::stats() const {
  return core_->stats();
}
std::size_t remote_pool::concurrency() const noexcept {
  return core_->concurrency();
}
std::vector<int> remote_pool::worker_pids() const {
  return core_->worker_pids();
}

}  // namespace detail

hybrid_pool::hybrid_pool(const hybrid_pool_options& options)
    : remote_pool(options.to_process_options(), options.threads_per_process) {}

}  // namespace crew
