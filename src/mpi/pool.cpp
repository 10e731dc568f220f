// Rank 0's side of an MPI pool.
//
// Every MPI call on rank 0 happens under engine_mu_, made by whichever thread holds it: the
// pool's manager thread when nobody waits, or the thread that waits on a future (run_inline), so
// that a submit-then-get round trip involves no hand-off between threads. Completed futures are
// fulfilled after engine_mu_ is released: a continuation (as_completed, when_all) may submit or
// wait without deadlocking the engine.
//
// Locks: queue_mu_ guards the submission queue and the pool's open/closed state; engine_mu_
// guards the ranks' bookkeeping, the backlog and every MPI call. engine_mu_ is never taken while
// queue_mu_ is held.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "crew/exception.hpp"
#include "crew/mpi_pool.hpp"
#include "mpi/protocol.hpp"
#include "mpi/runtime.hpp"

namespace crew::detail {

using mpi::control_message;
using mpi::control_op;
using mpi::flag_separate;
using mpi::request_header;
using mpi::result_header;
using mpi::result_status;

namespace {

using clock = std::chrono::steady_clock;

// How often rank 0 checks that the ranks on its own host still live (recovery mode only matters).
constexpr auto liveness_period = std::chrono::milliseconds{100};
// A waiting thread drives the traffic itself this long, then sleeps and leaves it to the manager.
constexpr auto drive_budget = std::chrono::milliseconds{2};
// The manager naps this long between looks while work may come, and sleeps until woken once
// nothing came for manager_nap_limit. A task submitted while it naps and awaited by nobody (not
// yet) leaves within a nap; one that is awaited leaves at once, sent by the waiting thread. Each
// look costs a wake-up that competes with the spinning threads: 100 µs naps added ~0.7 µs to a
// round trip on the 2-core reference machine, 1 ms naps nothing measurable (docs/mpi.md).
constexpr auto manager_nap = std::chrono::milliseconds{1};
constexpr auto manager_nap_limit = std::chrono::milliseconds{20};

std::string this_host() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// The pool whose results this thread is delivering (complete()): a continuation that submits
// from there never waits for room in the queue, since this thread may be the one that makes it.
thread_local const void* delivering_for = nullptr;

}  // namespace

struct mpi_task_record;
/// Timed tasks at a rank, by deadline.
using deadline_map = std::multimap<clock::time_point, mpi_task_record*>;

struct mpi_task_record {
  std::uint64_t seq = 0;
  const task_entry* entry = nullptr;
  state_ptr<state_base> state;
  mpi_result_decoder decode = nullptr;
  std::vector<std::byte> args;
  std::string name;                                // per-call name; empty: the function's
  std::chrono::nanoseconds timeout{0};             // per-call timeout; zero: none
  unsigned retries_left = 0;                       // per-call retries not used yet
  std::vector<std::byte> kept_args;                // the arguments again, for a retry
  bool timed_out = false;                          // failed at its deadline; its rank runs it on
  std::size_t slot = 0;                            // the rank it was sent to
  std::optional<deadline_map::iterator> deadline;  // while timed and at a rank

  [[nodiscard]] std::string task_name() const {
    return name.empty() ? std::string{entry->name} : name;
  }
};
using mpi_record_ptr = std::unique_ptr<mpi_task_record>;

struct mpi_rank_slot {
  std::size_t comm_index = 0;  // which communicator of the pool
  int rank = 0;                // the rank within it
  int world_rank = -1;         // MPI_COMM_WORLD rank (-1 - i for spawned rank i)
  int pid = 0;
  std::string host;
  bool same_host = false;
  bool lost = false;
  bool hello = false;
  bool closed = false;
  std::size_t threads = 1;
  std::unordered_map<std::uint64_t, mpi_record_ptr> in_flight;
  std::vector<std::byte> outbox;
  std::size_t outbox_tasks = 0;
  std::vector<std::vector<std::byte>> outbox_separate;
};

/// A result taken off the wire, fulfilled once engine_mu_ is released.
struct mpi_completion {
  mpi_completion() = default;
  explicit mpi_completion(mpi_record_ptr task) noexcept : record(std::move(task)) {}

  mpi_record_ptr record;
  result_status status = result_status::ok;
  std::shared_ptr<const std::vector<std::byte>> storage;  // keeps `payload` alive
  std::span<const std::byte> payload;
  std::optional<task_error> error;  // set when the engine itself failed the task
  int pid = 0;
  // A deadline notice: `expired` fails with `error` (timed_out) while the record stays with its
  // rank, which runs the task on; no record, and not counted as finished.
  state_ptr<state_base> expired;
};

class mpi_pool_core {
 public:
  mpi_pool_core(mpi::runtime& runtime, mpi_pool_options options);
  ~mpi_pool_core();

  void open();
  bool enqueue(mpi_submission job);
  bool drive_until_ready(const state_base& state) noexcept;
  void wait_idle();
  void shutdown(shutdown_mode mode);
  std::size_t close(shutdown_mode mode, const char* by);
  stop_report stop_now();
  mpi_pool_stats stats() const;
  bool closed() const noexcept {
    std::lock_guard lock{queue_mu_};
    return closed_;
  }
  std::size_t concurrency() const noexcept { return concurrency_.load(std::memory_order_relaxed); }
  std::vector<int> ranks() const;
  task_error expired_call(const call_options& options, std::string function) noexcept;

 private:
  struct pending_send {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<std::byte> bytes;
    std::size_t slot = 0;
  };

  bool progress_locked(std::vector<mpi_completion>& done);
  bool dispatch_locked(std::vector<mpi_completion>& done);
  mpi_rank_slot* pick_slot_locked(const mpi_task_record& record, std::size_t& index);
  bool expire_locked(std::vector<mpi_completion>& done);
  void forget_deadline_locked(mpi_task_record& record) noexcept;
  bool admit(std::unique_lock<std::mutex>& lock);
  void wake_room_waiters() noexcept;
  void flush_locked(std::size_t slot_index);
  void send_locked(std::size_t slot_index, std::vector<std::byte> bytes, int tag);
  bool test_sends_locked();
  bool receive_locked(std::vector<mpi_completion>& done);
  void parse_results_locked(mpi_rank_slot& slot, std::shared_ptr<std::vector<std::byte>> message,
                            std::vector<mpi_completion>& done);
  void check_liveness_locked(std::vector<mpi_completion>& done);
  void lose_slot_locked(mpi_rank_slot& slot, std::vector<mpi_completion>& done);
  void fail_everything_locked(const std::string& why, std::vector<mpi_completion>& done) noexcept;
  void complete(std::vector<mpi_completion>& done) noexcept;
  void fulfil(mpi_completion& c) noexcept;
  void finished(std::size_t count) noexcept;
  void manager_main();
  void close_ranks();
  int slot_of(std::size_t comm_index, int rank) const noexcept;

  mpi::runtime& runtime_;
  const mpi_pool_options options_;
  std::atomic<std::size_t> concurrency_{0};
  std::vector<MPI_Comm> comms_;  // [0] the session's communicator; [1] spawned ranks, if any

  // --- queue_mu_ ---
  mutable std::mutex queue_mu_;
  std::condition_variable work_cv_;  // the manager sleeps here when nothing is outstanding
  std::condition_variable idle_cv_;
  std::condition_variable room_cv_;  // submitters waiting for room (max_queued)
  std::atomic<int> room_waiters_{0};
  std::deque<mpi_record_ptr> queue_;
  std::size_t outstanding_ = 0;  // accepted, not yet fulfilled
  bool closed_ = false;
  bool stop_ = false;
  bool manager_sleeping_ = false;
  bool shut_down_ = false;
  std::string broken_;  // why the pool can no longer run tasks

  // --- engine_mu_ ---
  mutable std::mutex engine_mu_;
  std::deque<mpi_record_ptr> backlog_;
  std::vector<mpi_rank_slot> slots_;
  std::vector<int> slot_by_rank_;  // comm 0 rank -> slot index (-1 none)
  std::deque<pending_send> sends_;
  deadline_map deadlines_;  // timed tasks at a rank
  clock::time_point next_liveness_{};
  std::uint64_t progress_calls_ = 0;
  std::string host_;

  std::atomic<std::uint64_t> next_seq_{0};
  std::atomic<int> drivers_{0};
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::size_t> running_{0};
  std::atomic<std::size_t> completed_{0};
  std::atomic<std::size_t> failed_{0};
  std::atomic<std::size_t> cancelled_{0};
  std::atomic<std::size_t> lost_{0};
  std::atomic<std::size_t> sent_{0};
  std::atomic<std::size_t> received_{0};
  std::atomic<std::size_t> timed_out_{0};
  std::atomic<std::size_t> rejected_{0};
  std::atomic<std::size_t> retried_{0};
  std::thread manager_;
  std::mutex shutdown_mu_;  // one shutdown at a time
};

// --- opening and closing ---------------------------------------------------------------------

mpi_pool_core::mpi_pool_core(mpi::runtime& runtime, mpi_pool_options options)
    : runtime_(runtime), options_(std::move(options)), host_(this_host()) {
  if (options_.threads_per_rank == 0 || options_.threads_per_rank > 4096) {
    throw std::invalid_argument("crew::mpi_pool: threads_per_rank must be in 1..4096");
  }
  if (options_.pipeline_depth == 0 || options_.batch_tasks == 0) {
    throw std::invalid_argument("crew::mpi_pool: pipeline_depth and batch_tasks must be >= 1");
  }
  if (options_.on_full != queue_full::block && options_.on_full != queue_full::fail) {
    throw std::invalid_argument("crew::mpi_pool: on_full must be queue_full::block or fail");
  }
  const std::size_t available = static_cast<std::size_t>(runtime_.size - 1);
  if (options_.ranks > available) {
    throw std::invalid_argument("crew::mpi_pool: " + std::to_string(options_.ranks) +
                                " ranks asked for, the job has " + std::to_string(available) +
                                " besides rank 0");
  }
  const std::size_t world_ranks = options_.ranks == 0 ? available : options_.ranks;
  if (world_ranks + options_.spawn == 0) {
    throw std::runtime_error(
        "crew::mpi_pool: no rank can serve tasks: run the program under `mpirun -n N` with "
        "N >= 2, or set mpi_pool_options::spawn");
  }
  comms_.push_back(runtime_.comm);
  slot_by_rank_.assign(static_cast<std::size_t>(runtime_.size), -1);
  for (std::size_t i = 0; i < world_ranks; ++i) {
    mpi_rank_slot slot;
    slot.comm_index = 0;
    slot.rank = static_cast<int>(i + 1);
    slot.world_rank = slot.rank;
    slot_by_rank_[i + 1] = static_cast<int>(slots_.size());
    slots_.push_back(std::move(slot));
  }
}

mpi_pool_core::~mpi_pool_core() {
  shutdown(shutdown_mode::drain);
}

int mpi_pool_core::slot_of(std::size_t comm_index, int rank) const noexcept {
  if (comm_index == 0) {
    if (rank < 0 || static_cast<std::size_t>(rank) >= slot_by_rank_.size()) return -1;
    return slot_by_rank_[static_cast<std::size_t>(rank)];
  }
  const std::size_t base = slots_.size() - options_.spawn;
  if (rank < 0 || static_cast<std::size_t>(rank) >= options_.spawn) return -1;
  return static_cast<int>(base + static_cast<std::size_t>(rank));
}

void mpi_pool_core::open() {
  std::lock_guard engine{engine_mu_};
  if (options_.spawn > 0) {
    // The same binary with the same arguments: its mpi_session sees a parent and serves.
    std::vector<char*> args;
    for (int i = 1; i < runtime_.argc; ++i) args.push_back(runtime_.argv[i]);
    args.push_back(nullptr);
    char exe[4096] = {};
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) throw std::runtime_error("crew::mpi_pool: cannot find this program's path");
    MPI_Comm children = MPI_COMM_NULL;
    std::vector<int> codes(options_.spawn);
    mpi::check(MPI_Comm_spawn(exe, args.data(), static_cast<int>(options_.spawn), MPI_INFO_NULL, 0,
                              MPI_COMM_SELF, &children, codes.data()),
               "MPI_Comm_spawn");
    MPI_Comm_set_errhandler(children, MPI_ERRORS_RETURN);
    comms_.push_back(children);
    for (std::size_t i = 0; i < options_.spawn; ++i) {
      mpi_rank_slot slot;
      slot.comm_index = 1;
      slot.rank = static_cast<int>(i);
      slot.world_rank = -1 - static_cast<int>(i);
      slots_.push_back(std::move(slot));
    }
  }
  control_message open{};
  open.op = control_op::open;
  open.threads = static_cast<std::uint32_t>(options_.threads_per_rank);
  for (mpi_rank_slot& slot : slots_) {
    mpi::check(MPI_Send(&open, sizeof open, MPI_BYTE, slot.rank, mpi::tag::control,
                        comms_[slot.comm_index]),
               "MPI_Send");
  }
  const auto deadline = clock::now() + options_.start_timeout;
  std::size_t answered = 0;
  mpi::backoff wait{std::chrono::microseconds{1000}};
  while (answered < slots_.size()) {
    for (mpi_rank_slot& slot : slots_) {
      if (slot.hello) continue;
      int flag = 0;
      MPI_Comm comm = comms_[slot.comm_index];
      mpi::check(MPI_Iprobe(slot.rank, mpi::tag::control, comm, &flag, MPI_STATUS_IGNORE),
                 "MPI_Iprobe");
      if (flag == 0) continue;
      control_message hello{};
      mpi::check(MPI_Recv(&hello, sizeof hello, MPI_BYTE, slot.rank, mpi::tag::control, comm,
                          MPI_STATUS_IGNORE),
                 "MPI_Recv");
      if (hello.op != control_op::hello) {
        throw std::runtime_error("crew::mpi_pool: a rank answered the pool's opening wrongly");
      }
      hello.host[sizeof hello.host - 1] = '\0';
      slot.hello = true;
      slot.pid = hello.pid;
      slot.host = hello.host;
      slot.same_host = slot.host == host_;
      slot.threads = hello.threads;
      concurrency_ += slot.threads;
      ++answered;
    }
    if (answered == slots_.size()) break;
    if (clock::now() > deadline) {
      throw std::runtime_error("crew::mpi_pool: " + std::to_string(slots_.size() - answered) +
                               " rank(s) did not answer within the start timeout");
    }
    wait.pause();
  }
  next_liveness_ = clock::now() + liveness_period;
  manager_ = std::thread{[this] { manager_main(); }};
}

std::size_t mpi_pool_core::close(shutdown_mode mode, const char* by) {
  std::vector<mpi_completion> cancelled;
  {
    std::lock_guard lock{queue_mu_};
    if (shut_down_) return 0;
    closed_ = true;
    if (mode == shutdown_mode::cancel_pending) {
      for (auto& record : queue_) cancelled.push_back(mpi_completion{std::move(record)});
      queue_.clear();
    }
  }
  if (mode == shutdown_mode::cancel_pending) {
    std::lock_guard engine{engine_mu_};
    for (auto& record : backlog_) cancelled.push_back(mpi_completion{std::move(record)});
    backlog_.clear();
  }
  wake_room_waiters();
  for (mpi_completion& c : cancelled) {
    c.error = task_error{error_kind::cancelled, std::string{"cancelled by "} + by,
                         task_error::details::named(c.record->task_name())};
  }
  const std::size_t count = cancelled.size();
  queued_.fetch_sub(count);
  complete(cancelled);
  return count;
}

stop_report mpi_pool_core::stop_now() {
  stop_report report;
  report.cancelled =
      close(shutdown_mode::cancel_pending, "mpi_pool::stop_now() before it was sent to a rank");
  // Tasks a rank holds: a rank cannot be stopped from rank 0 (only the recovery extension could
  // drop it from the job), so it runs them to their end and their results count, as a thread
  // pool's running tasks do; the report says how many.
  {
    std::lock_guard engine{engine_mu_};
    for (mpi_rank_slot& slot : slots_) {
      for (auto& entry : slot.in_flight) {
        if (!entry.second->state->is_ready()) ++report.still_running;
      }
    }
  }
  return report;
}

void mpi_pool_core::shutdown(shutdown_mode mode) {
  std::lock_guard once{shutdown_mu_};
  {
    std::lock_guard lock{queue_mu_};
    if (shut_down_) return;
  }
  close(mode, "mpi_pool::shutdown");
  wait_idle();
  {
    std::lock_guard lock{queue_mu_};
    stop_ = true;
  }
  work_cv_.notify_all();
  if (manager_.joinable()) manager_.join();
  close_ranks();
  std::lock_guard lock{queue_mu_};
  shut_down_ = true;
}

void mpi_pool_core::close_ranks() {
  std::lock_guard engine{engine_mu_};
  if (!broken_.empty()) return;  // the communicator may be unusable: nothing more to say
  try {
    control_message close{};
    close.op = control_op::close;
    for (mpi_rank_slot& slot : slots_) {
      if (slot.lost) continue;
      mpi::check(MPI_Send(&close, sizeof close, MPI_BYTE, slot.rank, mpi::tag::control,
                          comms_[slot.comm_index]),
                 "MPI_Send");
    }
    mpi::backoff wait{std::chrono::microseconds{1000}};
    for (;;) {
      bool all = true;
      for (mpi_rank_slot& slot : slots_) {
        if (slot.lost || slot.closed) continue;
        MPI_Comm comm = comms_[slot.comm_index];
        int flag = 0;
        mpi::check(MPI_Iprobe(slot.rank, mpi::tag::control, comm, &flag, MPI_STATUS_IGNORE),
                   "MPI_Iprobe");
        if (flag == 0) {
          all = false;
          continue;
        }
        control_message answer{};
        mpi::check(MPI_Recv(&answer, sizeof answer, MPI_BYTE, slot.rank, mpi::tag::control, comm,
                            MPI_STATUS_IGNORE),
                   "MPI_Recv");
        slot.closed = answer.op == control_op::closed;
      }
      std::vector<mpi_completion> none;
      check_liveness_locked(none);
      complete(none);
      test_sends_locked();
      if (all) break;
      wait.pause();
    }
    // Sends to lost ranks may never complete; every other one has by now.
    for (pending_send& send : sends_) {
      if (!slots_[send.slot].lost) MPI_Wait(&send.request, MPI_STATUS_IGNORE);
    }
    sends_.clear();
    if (comms_.size() > 1) MPI_Comm_disconnect(&comms_[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crew::mpi_pool: closing the pool on the ranks failed: %s\n", e.what());
  }
}

// --- the caller's side -------------------------------------------------------------------------

bool mpi_pool_core::enqueue(mpi_submission job) {
  auto record = std::make_unique<mpi_task_record>();
  record->entry = job.entry;
  record->state = state_ptr<state_base>{job.state};
  job.state->add_ref();
  record->decode = job.decode;
  record->args = std::move(job.args);
  if (job.call != nullptr) {
    record->name = job.call->name;
    record->timeout = job.call->timeout.value_or(std::chrono::nanoseconds{0});
    record->retries_left = job.call->retries.value_or(0);
  }
  record->seq = next_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::unique_lock lock{queue_mu_};
  if (!admit(lock)) {
    if (!closed_ && broken_.empty()) {  // the queue is full and on_full is fail
      lock.unlock();
      rejected_.fetch_add(1, std::memory_order_relaxed);
      record->state->fail(
          task_error{error_kind::queue_full,
                     "crew::mpi_pool: " + std::to_string(options_.max_queued) +
                         " tasks are queued (max_queued) and on_full is fail: task not accepted",
                     task_error::details::named(record->task_name())});
      return false;
    }
    const bool closed = closed_;
    const std::string why = broken_;
    lock.unlock();
    // As pool_stats counts (crew/executor.hpp): a refused submission is not counted.
    if (!closed) failed_.fetch_add(1);
    record->state->fail(closed ? task_error{error_kind::pool_closed,
                                            "crew::mpi_pool: submit after shutdown",
                                            task_error::details::named(record->task_name())}
                               : task_error{error_kind::worker_lost, why,
                                            task_error::details::named(record->task_name())});
    return false;
  }
  queue_.push_back(std::move(record));
  ++outstanding_;
  queued_.fetch_add(1, std::memory_order_relaxed);
  const bool wake = manager_sleeping_;
  lock.unlock();
  if (wake) work_cv_.notify_one();
  return true;
}

bool mpi_pool_core::admit(std::unique_lock<std::mutex>& lock) {
  const auto open = [this] { return !closed_ && broken_.empty(); };
  if (!open()) return false;
  if (options_.max_queued == 0 || delivering_for == this) return true;
  const auto room = [this] { return queued_.load() < options_.max_queued; };
  if (room()) return true;
  if (options_.on_full == queue_full::fail) return false;
  room_waiters_.fetch_add(1);
  work_cv_.notify_one();  // the manager sends what is queued while this thread waits
  room_cv_.wait(lock, [&] { return room() || !open(); });
  room_waiters_.fetch_sub(1);
  return open();
}

void mpi_pool_core::wake_room_waiters() noexcept {
  if (room_waiters_.load() == 0) return;
  { std::lock_guard lock{queue_mu_}; }  // a waiter is either before its check or asleep
  room_cv_.notify_all();
}

task_error mpi_pool_core::expired_call(const call_options& options, std::string function) noexcept {
  timed_out_.fetch_add(1, std::memory_order_relaxed);
  failed_.fetch_add(1, std::memory_order_relaxed);
  return expired_call_error(options, function);
}

bool mpi_pool_core::drive_until_ready(const state_base& state) noexcept {
  drivers_.fetch_add(1);
  const auto give_up = clock::now() + drive_budget;
  std::vector<mpi_completion> done;
  unsigned polls = 0;
  while (!state.is_ready()) {
    bool did = false;
    if (engine_mu_.try_lock()) {
      did = progress_locked(done);
      engine_mu_.unlock();
      complete(done);
    }
    if (state.is_ready()) break;
    if (did) {
      polls = 0;
      continue;
    }
    if (clock::now() > give_up) break;
    // A reply usually comes within microseconds: spin first (yielding would hand the core to
    // anything runnable), then yield so that an oversubscribed node still takes turns.
    if (++polls < 1024) {
      mpi::cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  drivers_.fetch_sub(1);
  const bool ready = state.is_ready();
  if (!ready) work_cv_.notify_one();  // the manager takes over while this thread sleeps
  return ready;
}

void mpi_pool_core::wait_idle() {
  work_cv_.notify_one();  // the manager moves the traffic while this thread sleeps
  std::unique_lock lock{queue_mu_};
  idle_cv_.wait(lock, [this] { return outstanding_ == 0; });
}

mpi_pool_stats mpi_pool_core::stats() const {
  mpi_pool_stats out;
  {
    std::lock_guard engine{engine_mu_};
    for (const mpi_rank_slot& slot : slots_) {
      if (slot.lost) continue;
      ++out.ranks;
      out.workers += slot.threads;
    }
  }
  out.queued = queued_.load();
  out.running = running_.load();
  out.completed = completed_.load();
  out.failed = failed_.load();
  out.cancelled = cancelled_.load();
  out.lost_ranks = lost_.load();
  out.messages_sent = sent_.load();
  out.messages_received = received_.load();
  out.timed_out = timed_out_.load();
  out.rejected = rejected_.load();
  out.retried = retried_.load();
  return out;
}

std::vector<int> mpi_pool_core::ranks() const {
  std::lock_guard engine{engine_mu_};
  std::vector<int> out;
  for (const mpi_rank_slot& slot : slots_) {
    if (!slot.lost) out.push_back(slot.world_rank);
  }
  return out;
}

// --- the engine ----------------------------------------------------------------------------------

void mpi_pool_core::manager_main() {
  mpi::backoff idle{std::chrono::microseconds{200}};
  std::vector<mpi_completion> done;
  auto last_work = clock::now();
  for (;;) {
    {
      std::unique_lock lock{queue_mu_};
      if (stop_) return;
      if (outstanding_ == 0 || drivers_.load() > 0) {
        // Nothing to do, or a waiting thread moves the traffic itself. Shortly after work, nap
        // and look again: a submit then needs no wake-up call, which on a round trip would cost
        // a system call and a third runnable thread. Long idle, sleep until a submit wakes us.
        if (outstanding_ == 0 && clock::now() - last_work > manager_nap_limit) {
          manager_sleeping_ = true;
          work_cv_.wait(lock, [this] { return stop_ || outstanding_ > 0; });
          manager_sleeping_ = false;
        } else {
          work_cv_.wait_for(lock, manager_nap);
        }
        idle.reset();
        continue;
      }
    }
    bool did = false;
    if (engine_mu_.try_lock()) {
      did = progress_locked(done);
      engine_mu_.unlock();
      complete(done);
    }
    last_work = clock::now();
    if (did) {
      idle.reset();
    } else {
      idle.pause();
    }
  }
}

bool mpi_pool_core::progress_locked(std::vector<mpi_completion>& done) {
  if (!broken_.empty()) return false;
  try {
    bool did = dispatch_locked(done);
    did |= test_sends_locked();
    did |= receive_locked(done);
    if (!deadlines_.empty() && clock::now() >= deadlines_.begin()->first) {
      did |= expire_locked(done);
    }
    if ((++progress_calls_ & 255) == 0 && clock::now() >= next_liveness_) {
      check_liveness_locked(done);
      next_liveness_ = clock::now() + liveness_period;
    }
    return did;
  } catch (const std::exception& e) {
    fail_everything_locked(std::string{"crew::mpi_pool: MPI failed: "} + e.what(), done);
    return true;
  }
}

bool mpi_pool_core::dispatch_locked(std::vector<mpi_completion>& done) {
  // queued_ counts the backlog too; a submission it misses now is seen on the next call.
  if (queued_.load(std::memory_order_relaxed) == 0) return false;
  {
    std::lock_guard lock{queue_mu_};
    if (backlog_.empty()) {
      backlog_.swap(queue_);
    } else {
      for (auto& record : queue_) backlog_.push_back(std::move(record));
      queue_.clear();
    }
  }
  if (backlog_.empty()) return false;
  bool did = false;
  bool sent_tasks = false;
  while (!backlog_.empty()) {
    mpi_record_ptr& front = backlog_.front();
    if (front->state->is_ready()) {  // cancelled while queued: it never runs
      queued_.fetch_sub(1);
      done.push_back(mpi_completion{std::move(front)});
      backlog_.pop_front();
      did = true;
      continue;
    }
    std::size_t best_index = 0;
    mpi_rank_slot* best = pick_slot_locked(*front, best_index);
    if (best == nullptr) break;  // in order: a timed task waits for an idle thread
    mpi_record_ptr record = std::move(front);
    backlog_.pop_front();
    queued_.fetch_sub(1, std::memory_order_relaxed);
    running_.fetch_add(1, std::memory_order_relaxed);
    sent_tasks = true;
    record->slot = best_index;
    if (record->timeout.count() > 0) {
      record->deadline = deadlines_.emplace(clock::now() + record->timeout, record.get());
    }
    if (record->retries_left > 0) record->kept_args = record->args;
    request_header header{record->seq, record->entry->id, record->args.size(), 0, 0};
    const bool separate = record->args.size() > options_.large_bytes;
    if (separate) header.flags = flag_separate;
    const std::size_t at = best->outbox.size();
    best->outbox.resize(at + sizeof header + (separate ? 0 : record->args.size()));
    std::memcpy(best->outbox.data() + at, &header, sizeof header);
    if (separate) {
      // Its own message, sent from the encoded buffer itself.
      best->outbox_separate.push_back(std::move(record->args));
    } else if (!record->args.empty()) {
      std::memcpy(best->outbox.data() + at + sizeof header, record->args.data(),
                  record->args.size());
    }
    record->args = {};
    ++best->outbox_tasks;
    const std::uint64_t seq = record->seq;
    best->in_flight.emplace(seq, std::move(record));
    if (best->outbox_tasks >= options_.batch_tasks || best->outbox.size() >= options_.batch_bytes ||
        !best->outbox_separate.empty()) {
      flush_locked(best_index);
    }
    did = true;
  }
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].outbox_tasks > 0) flush_locked(i);
  }
  if (sent_tasks) wake_room_waiters();
  return did;
}

mpi_rank_slot* mpi_pool_core::pick_slot_locked(const mpi_task_record& record, std::size_t& index) {
  // A task with a timeout goes only to a rank with an idle task thread, so that its time counts
  // from its start, not from a wait behind tasks sent ahead of it; any other task to the least
  // loaded rank with room, by tasks per task thread.
  const bool timed = record.timeout.count() > 0;
  mpi_rank_slot* best = nullptr;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    mpi_rank_slot& slot = slots_[i];
    if (slot.lost) continue;
    const std::size_t limit = timed ? slot.threads : options_.pipeline_depth * slot.threads;
    if (slot.in_flight.size() >= limit) continue;
    if (best == nullptr ||
        slot.in_flight.size() * best->threads < best->in_flight.size() * slot.threads) {
      best = &slot;
      index = i;
    }
  }
  return best;
}

bool mpi_pool_core::expire_locked(std::vector<mpi_completion>& done) {
  const clock::time_point now = clock::now();
  bool did = false;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    mpi_task_record& record = *deadlines_.begin()->second;
    forget_deadline_locked(record);
    if (record.state->is_ready()) continue;  // cancelled by its future
    const mpi_rank_slot& slot = slots_[record.slot];
    record.timed_out = true;
    std::ostringstream what;
    what << "task " << record.task_name() << " ran past its timeout of "
         << describe_timeout(record.timeout) << " on rank " << slot.world_rank
         << "; crew::mpi_pool cannot stop a running rank: the task runs on to its end there and "
            "its result is dropped";
    task_error::details info = task_error::details::named(record.task_name());
    info.pid = slot.pid;
    mpi_completion notice;
    notice.expired = record.state;
    notice.error = task_error{error_kind::timed_out, what.str(), std::move(info)};
    done.push_back(std::move(notice));
    did = true;
  }
  return did;
}

void mpi_pool_core::forget_deadline_locked(mpi_task_record& record) noexcept {
  if (!record.deadline) return;
  deadlines_.erase(*record.deadline);
  record.deadline.reset();
}

void mpi_pool_core::flush_locked(std::size_t slot_index) {
  mpi_rank_slot& slot = slots_[slot_index];
  if (slot.outbox_tasks == 0) return;
  send_locked(slot_index, std::move(slot.outbox), mpi::tag::tasks);
  for (auto& args : slot.outbox_separate)
    send_locked(slot_index, std::move(args), mpi::tag::large_args);
  slot.outbox = {};
  slot.outbox_separate.clear();
  slot.outbox_tasks = 0;
}

void mpi_pool_core::send_locked(std::size_t slot_index, std::vector<std::byte> bytes, int tag) {
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
    throw std::runtime_error("a message larger than 2 GiB");
  }
  const mpi_rank_slot& slot = slots_[slot_index];
  pending_send& send = sends_.emplace_back();
  send.bytes = std::move(bytes);
  send.slot = slot_index;
  mpi::check(MPI_Isend(send.bytes.data(), static_cast<int>(send.bytes.size()), MPI_BYTE, slot.rank,
                       tag, comms_[slot.comm_index], &send.request),
             "MPI_Isend");
  sent_.fetch_add(1, std::memory_order_relaxed);
}

bool mpi_pool_core::test_sends_locked() {
  bool did = false;
  for (auto it = sends_.begin(); it != sends_.end();) {
    int flag = 0;
    mpi::check(MPI_Test(&it->request, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    if (flag != 0) {
      it = sends_.erase(it);
      did = true;
    } else {
      ++it;
    }
  }
  return did;
}

bool mpi_pool_core::receive_locked(std::vector<mpi_completion>& done) {
  bool did = false;
  for (std::size_t c = 0; c < comms_.size(); ++c) {
    // A bounded number per call, so that sending is not starved by a stream of results.
    for (int round = 0; round < 64; ++round) {
      int flag = 0;
      MPI_Message handle = MPI_MESSAGE_NULL;
      MPI_Status status;
      mpi::check(MPI_Improbe(MPI_ANY_SOURCE, mpi::tag::results, comms_[c], &flag, &handle, &status),
                 "MPI_Improbe");
      if (flag == 0) break;
      int bytes = 0;
      MPI_Get_count(&status, MPI_BYTE, &bytes);
      auto message = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(bytes));
      mpi::check(MPI_Mrecv(message->data(), bytes, MPI_BYTE, &handle, MPI_STATUS_IGNORE),
                 "MPI_Mrecv");
      received_.fetch_add(1, std::memory_order_relaxed);
      const int index = slot_of(c, status.MPI_SOURCE);
      if (index < 0) throw std::runtime_error("results from a rank outside the pool");
      parse_results_locked(slots_[static_cast<std::size_t>(index)], std::move(message), done);
      did = true;
    }
  }
  return did;
}

void mpi_pool_core::parse_results_locked(mpi_rank_slot& slot,
                                         std::shared_ptr<std::vector<std::byte>> message,
                                         std::vector<mpi_completion>& done) {
  std::span<const std::byte> rest{*message};
  while (!rest.empty()) {
    result_header header{};
    if (rest.size() < sizeof header) throw std::runtime_error("a truncated result batch");
    std::memcpy(&header, rest.data(), sizeof header);
    rest = rest.subspan(sizeof header);
    mpi_completion c;
    c.status = header.status;
    c.pid = slot.pid;
    if ((header.flags & flag_separate) != 0) {
      if (header.size > static_cast<std::uint64_t>(INT32_MAX)) {
        throw std::runtime_error("a result larger than 2 GiB");
      }
      // Announced by this batch and sent right after it: receive straight into its own buffer.
      auto payload = std::make_shared<std::vector<std::byte>>(header.size);
      MPI_Status status;
      mpi::check(MPI_Recv(payload->data(), static_cast<int>(header.size), MPI_BYTE, slot.rank,
                          mpi::tag::large_result, comms_[slot.comm_index], &status),
                 "MPI_Recv");
      int got = 0;
      MPI_Get_count(&status, MPI_BYTE, &got);
      if (static_cast<std::uint64_t>(got) != header.size) {
        throw std::runtime_error("a large result of the wrong size");
      }
      received_.fetch_add(1, std::memory_order_relaxed);
      c.payload = *payload;
      c.storage = std::move(payload);
    } else {
      if (header.size > rest.size()) throw std::runtime_error("a truncated result batch");
      c.payload = rest.first(header.size);
      c.storage = message;
      rest = rest.subspan(header.size);
    }
    auto it = slot.in_flight.find(header.seq);
    if (it == slot.in_flight.end()) {
      throw std::runtime_error("a result for a task the rank was not given");
    }
    c.record = std::move(it->second);
    slot.in_flight.erase(it);
    forget_deadline_locked(*c.record);
    running_.fetch_sub(1, std::memory_order_relaxed);
    done.push_back(std::move(c));
  }
}

void mpi_pool_core::check_liveness_locked(std::vector<mpi_completion>& done) {
  // Open MPI 4.1 has no way to report a dead peer to the survivors (no ULFM); by default the
  // runtime ends the job. Under --enable-recovery rank 0 lives on: a rank on this host whose
  // process is gone is detected here (a rank on another host cannot be; docs/mpi.md).
  for (mpi_rank_slot& slot : slots_) {
    if (slot.lost || !slot.same_host || slot.pid <= 0) continue;
    if (kill(slot.pid, 0) != 0 && errno == ESRCH) lose_slot_locked(slot, done);
  }
}

void mpi_pool_core::lose_slot_locked(mpi_rank_slot& slot, std::vector<mpi_completion>& done) {
  slot.lost = true;
  runtime_.rank_lost = true;
  lost_.fetch_add(1);
  concurrency_.fetch_sub(std::min(concurrency_.load(), slot.threads));
  for (auto& [seq, record] : slot.in_flight) {
    forget_deadline_locked(*record);
    if (record->retries_left > 0 && !record->state->is_ready()) {
      // Sent again, to another rank, ahead of what waits.
      --record->retries_left;
      record->args = std::move(record->kept_args);
      record->kept_args = {};
      retried_.fetch_add(1, std::memory_order_relaxed);
      running_.fetch_sub(1, std::memory_order_relaxed);
      queued_.fetch_add(1, std::memory_order_relaxed);
      std::fprintf(stderr,
                   "crew::mpi_pool: rank %d died while it held task %s; sending it to another "
                   "rank (%u retries left)\n",
                   slot.world_rank, record->task_name().c_str(), record->retries_left);
      backlog_.push_front(std::move(record));
      continue;
    }
    task_error::details info = task_error::details::named(record->task_name());
    info.pid = slot.pid;
    std::ostringstream what;
    what << "rank " << slot.world_rank << " (pid " << slot.pid << " on " << slot.host
         << ") died while it held task " << info.task_name;
    mpi_completion c{std::move(record)};
    c.error = task_error{error_kind::crashed, what.str(), info};
    running_.fetch_sub(1, std::memory_order_relaxed);
    done.push_back(std::move(c));
  }
  slot.in_flight.clear();
  slot.outbox.clear();
  slot.outbox_separate.clear();
  slot.outbox_tasks = 0;
  std::fprintf(stderr,
               "crew::mpi_pool: rank %d (pid %d on %s) is gone; the pool goes on with %zu "
               "task threads\n",
               slot.world_rank, slot.pid, slot.host.c_str(), concurrency_.load());
  if (std::all_of(slots_.begin(), slots_.end(), [](const mpi_rank_slot& s) { return s.lost; })) {
    fail_everything_locked("crew::mpi_pool: every rank of the pool is gone", done);
  }
}

void mpi_pool_core::fail_everything_locked(const std::string& why,
                                           std::vector<mpi_completion>& done) noexcept {
  try {
    {
      std::lock_guard lock{queue_mu_};
      broken_ = why;
      for (auto& record : queue_) backlog_.push_back(std::move(record));
      queue_.clear();
    }
    std::fprintf(stderr, "%s\n", why.c_str());
    for (auto& record : backlog_) {
      mpi_completion c{std::move(record)};
      c.error = task_error{error_kind::worker_lost, why,
                           task_error::details::named(c.record->task_name())};
      queued_.fetch_sub(1);
      done.push_back(std::move(c));
    }
    backlog_.clear();
    for (mpi_rank_slot& slot : slots_) {
      for (auto& [seq, record] : slot.in_flight) {
        forget_deadline_locked(*record);
        mpi_completion c{std::move(record)};
        c.error = task_error{error_kind::worker_lost, why,
                             task_error::details::named(c.record->task_name())};
        running_.fetch_sub(1);
        done.push_back(std::move(c));
      }
      slot.in_flight.clear();
    }
    wake_room_waiters();
  } catch (...) {
    std::fputs("crew::mpi_pool: out of memory while failing every task\n", stderr);
    std::abort();
  }
}

void mpi_pool_core::complete(std::vector<mpi_completion>& done) noexcept {
  if (done.empty()) return;
  const void* const saved = delivering_for;
  delivering_for = this;
  std::size_t count = 0;
  for (mpi_completion& c : done) {
    if (c.expired) {
      // Counted before the future is ready, so whoever sees it ready sees the count.
      timed_out_.fetch_add(1, std::memory_order_relaxed);
      failed_.fetch_add(1, std::memory_order_relaxed);
      if (!c.expired->fail(std::move(*c.error))) {  // its result came first
        timed_out_.fetch_sub(1, std::memory_order_relaxed);
        failed_.fetch_sub(1, std::memory_order_relaxed);
      }
      continue;
    }
    ++count;
    fulfil(c);
  }
  done.clear();
  delivering_for = saved;
  finished(count);
}

void mpi_pool_core::fulfil(mpi_completion& c) noexcept {
  state_base& state = *c.record->state;
  if (state.is_ready()) {
    // Cancelled by its future, or failed at its deadline (counted then): drop what came back.
    if (!c.record->timed_out) cancelled_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (c.error) {
    if (c.error->kind() == error_kind::cancelled) {
      cancelled_.fetch_add(1, std::memory_order_relaxed);
    } else {
      failed_.fetch_add(1, std::memory_order_relaxed);
    }
    state.fail(std::move(*c.error));
    return;
  }
  task_error::details info = task_error::details::named(c.record->task_name());
  info.pid = c.pid;
  // Each count is made before the future is ready, so that whoever sees it ready sees the count.
  std::optional<task_error> failure;
  try {
    switch (c.status) {
      case result_status::ok:
        completed_.fetch_add(1, std::memory_order_relaxed);
        try {
          c.record->decode(state, c.payload);
          return;
        } catch (...) {
          completed_.fetch_sub(1, std::memory_order_relaxed);
          throw;
        }
      case result_status::exception:
        failure = remote_exception_error(c.payload, info);
        break;
      case result_status::bad_request: {
        std::string what;
        codec::decode_into(c.payload, what);
        failure = task_error{error_kind::serialization, what, info};
        break;
      }
      default:
        failure = task_error{error_kind::worker_lost, "a result with an unknown status", info};
    }
  } catch (const std::exception& e) {
    failure = task_error{error_kind::serialization,
                         std::string{"the rank's result could not be decoded: "} + e.what(), info};
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
  state.fail(std::move(*failure));
}

void mpi_pool_core::finished(std::size_t count) noexcept {
  std::lock_guard lock{queue_mu_};
  outstanding_ -= std::min(outstanding_, count);
  if (outstanding_ == 0) idle_cv_.notify_all();
}

void shutdown_active_pool(mpi_pool_core* core) noexcept {
  try {
    core->shutdown(shutdown_mode::drain);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crew::mpi_pool: draining the pool at the session's end failed: %s\n",
                 e.what());
  }
}

bool mpi_drive_until_ready(mpi_pool_core& core, const state_base& state) noexcept {
  return core.drive_until_ready(state);
}

}  // namespace crew::detail

// --- the public class ----------------------------------------------------------------------

namespace crew {

namespace detail {
void attach_pool(mpi::runtime& runtime, mpi_pool_core* core);
void detach_pool(mpi::runtime& runtime, mpi_pool_core* core) noexcept;
}  // namespace detail

mpi_pool::mpi_pool(mpi_pool_options options) {
  detail::mpi::runtime* runtime = detail::mpi::current_runtime();
  if (runtime == nullptr) {
    throw std::logic_error(
        "crew::mpi_pool needs a crew::mpi_session: construct one at the top of main()");
  }
  core_ = std::make_shared<detail::mpi_pool_core>(*runtime, std::move(options));
  detail::attach_pool(*runtime, core_.get());
  try {
    core_->open();
  } catch (...) {
    detail::detach_pool(*runtime, core_.get());
    throw;
  }
}

mpi_pool::~mpi_pool() {
  core_->shutdown(shutdown_mode::drain);
  if (auto* runtime = detail::mpi::current_runtime()) detail::detach_pool(*runtime, core_.get());
}

bool mpi_pool::enqueue(detail::mpi_submission job) {
  return core_->enqueue(std::move(job));
}
bool mpi_pool::closed() const noexcept {
  return core_->closed();
}
void mpi_pool::wait_idle() {
  core_->wait_idle();
}
void mpi_pool::shutdown(shutdown_mode mode) {
  core_->shutdown(mode);
}
void mpi_pool::close(shutdown_mode mode) {
  core_->close(mode, "mpi_pool::close(cancel_pending)");
}
stop_report mpi_pool::stop_now() {
  return core_->stop_now();
}
mpi_pool_stats mpi_pool::stats() const {
  return core_->stats();
}
std::size_t mpi_pool::concurrency() const noexcept {
  return core_->concurrency();
}
std::vector<int> mpi_pool::ranks() const {
  return core_->ranks();
}
task_error mpi_pool::expired_call(const call_options& options, std::string function) noexcept {
  return core_->expired_call(options, std::move(function));
}

}  // namespace crew
