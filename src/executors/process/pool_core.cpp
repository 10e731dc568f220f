// A process pool's construction, shutdown and result collection. The supervisor thread's side
// is in supervisor.cpp; the scheduling in executors/remote/scheduler.cpp.
#include "executors/process/pool_core.hpp"

#include <linux/futex.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "crew/exception.hpp"
#include "executors/process/launch.hpp"
#include "executors/process/payload.hpp"

namespace crew::detail {

using process::clock;
using process::lane_slot;
using process::worker_process;

namespace {

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(),
                          std::string{"crew process_pool: "} + call);
}

std::size_t checked_channel_bytes(std::size_t requested) {
  if (requested < process::min_channel_bytes || requested > process::max_channel_bytes) {
    throw std::invalid_argument(
        "crew::process_pool: channel_bytes must be between 4096 and 1 GiB (got " +
        std::to_string(requested) + ")");
  }
  return std::bit_ceil(requested);
}

remote::scheduler::options scheduler_options(const process_pool_options& o, std::size_t threads) {
  if (o.workers == 0) throw std::invalid_argument("crew::process_pool: workers must be at least 1");
  if (threads == 0 || threads > process::max_threads_per_process) {
    throw std::invalid_argument("crew::hybrid_pool: threads_per_process must be 1 to 64");
  }
  if (o.pipeline_depth >= process::claim_slots) {
    throw std::invalid_argument("crew::process_pool: pipeline_depth must be below " +
                                std::to_string(process::claim_slots) + " (0: automatic)");
  }
  if (o.task_timeout.count() < 0 || o.kill_grace.count() < 0 || o.start_timeout.count() < 0 ||
      o.stop_timeout.count() < 0) {
    throw std::invalid_argument("crew::process_pool: durations must not be negative");
  }
  remote::scheduler::options out;
  out.lanes = o.workers * threads;
  out.pipeline_depth = o.pipeline_depth;
  out.max_tasks_per_lane = o.max_tasks_per_worker;
  out.retries = o.retries;
  out.task_timeout = o.task_timeout;
  out.memory_limit = o.memory_limit;
  out.claim_words = static_cast<std::uint32_t>(process::claim_slots);
  if (o.on_full != queue_full::block && o.on_full != queue_full::fail) {
    throw std::invalid_argument("crew::process_pool: on_full must be queue_full::block or fail");
  }
  out.max_queued = o.max_queued;
  out.on_full = o.on_full;
  out.pool_name = threads > 1 ? "crew::hybrid_pool" : "crew::process_pool";
  return out;
}

// Private futex on a word of this process (the collector naps on drivers_).
void nap_on(std::atomic<int>& word, int seen, std::chrono::microseconds timeout) noexcept {
  const timespec relative{0, static_cast<long>(timeout.count() * 1000)};
  syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAIT_PRIVATE, seen, &relative, nullptr,
          0);
}

}  // namespace

// --- the lane as the scheduler's port
// -------------------------------------------------------------

namespace process {

lane_slot::sent lane_slot::send(remote::task_record& record, std::uint32_t claim) {
  outgoing_request request;
  request.seq = record.seq;
  request.task_id = record.entry->id;
  request.args = record.args;
  request.large = record.large.get();
  const std::vector<int> fds = record.attachments.fds();
  request.attachments = fds;
  switch (chan->send(request, claim)) {
    case channel::send_status::sent:
      return sent::ok;
    case channel::send_status::full:
      return sent::full;
    case channel::send_status::peer_gone:
      return sent::gone;
  }
  return sent::gone;
}

}  // namespace process

// --- construction and shutdown ---------------------------------------------------------------

process_pool_core::process_pool_core(process_pool_options options, std::size_t threads)
    : options_(std::move(options)),
      threads_(threads),
      layout_{checked_channel_bytes(options_.channel_bytes), options_.workers * threads},
      lanes_(options_.workers * threads),
      scheduler_(scheduler_options(options_, threads),
                 [this](std::size_t lane, remote::stop_reason reason, std::uint64_t seq) {
                   request_stop(lane, reason, seq);
                 }) {
  region_ = ipc::shared_region::create("crew-pool", layout_.total_bytes());
  collector_bell_ = &ipc::make_doorbell(region_.bytes(), process::region_layout::doorbell_offset);
  const std::size_t max_message = layout_.channel_bytes - 8;  // spsc_ring::max_message_size
  inline_args_limit_ = process::inline_limit_for(max_message) - sizeof(process::request_header);
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    lanes_[i].index = i;
    lanes_[i].process = i / threads_;
    const process::slot_layout where = layout_.slot(i);
    lanes_[i].control = reinterpret_cast<process::slot_control*>(region_.data() + where.control);
    lanes_[i].results_header = reinterpret_cast<ipc::ring_header*>(region_.data() + where.results);
  }
  processes_.resize(options_.workers);
  pids_.assign(options_.workers, -1);
  for (std::size_t i = 0; i < processes_.size(); ++i) {
    processes_[i].index = i;
    processes_[i].watched_seq.assign(threads_, 0);
    processes_[i].watched_since.assign(threads_, clock::time_point{});
    processes_[i].watched_limit.assign(threads_, std::chrono::nanoseconds{0});
  }
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw_errno("epoll_create1");
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) throw_errno("eventfd");
  epoll_event wake{EPOLLIN, {.u64 = 0}};
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &wake) != 0) throw_errno("epoll_ctl");
}

void process_pool_core::start() {
  // Service threads: they run no user code that could hold a lock a forked worker needs, so
  // they do not count as threads that make a fork unsafe.
  supervisor_ = process::start_service_thread([this] { supervisor_main(); });
  collector_ = process::start_service_thread([this] { collector_main(); });
  std::unique_lock lock{start_mu_};
  start_cv_.wait(lock, [this] { return start_round_done_; });
  if (start_error_) {
    std::exception_ptr error = start_error_;
    lock.unlock();
    shutdown(shutdown_mode::cancel_pending);
    std::rethrow_exception(error);
  }
}

process_pool_core::~process_pool_core() {
  shutdown(shutdown_mode::drain);
}

namespace {
// The pool whose collector runs on this thread, if any.
thread_local const process_pool_core* collecting_for = nullptr;
}  // namespace

bool process_pool_core::on_collector_thread() const noexcept {
  return collecting_for == this;
}

void process_pool_core::wait_idle() {
  if (!on_collector_thread()) {
    scheduler_.wait_idle();
    return;
  }
  // A continuation on the collector thread waits for the pool: nobody else collects.
  while (!scheduler_.idle()) {
    run_handed_continuations();
    if (!drain_all()) std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
}

void process_pool_core::shutdown(shutdown_mode mode) {
  if (on_collector_thread()) {
    throw std::logic_error(
        "crew: shutdown() called from a continuation running on the pool's own result thread "
        "would wait for that thread; call it from another thread");
  }
  // Closing first, outside shutdown_mu_: a cancel_pending that arrives while another thread
  // drains still cancels what is queued.
  scheduler_.close(mode);
  std::lock_guard serial{shutdown_mu_};
  if (shut_down_) return;
  scheduler_.wait_idle();
  stopping_.store(true);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = write(wake_.get(), &one, sizeof one);
  if (supervisor_.joinable()) supervisor_.join();
  collector_stop_.store(true);
  collector_bell_->ring();
  if (collector_.joinable()) collector_.join();
  shut_down_ = true;
}

stop_report process_pool_core::stop_now() {
  // Results already back count as results: collect them first (a lane another thread reads is
  // skipped; what it holds is stopped).
  drain_all();
  const stop_report report = scheduler_.stop_all();
  kill_all_.store(true);
  stopping_.store(true);  // no restarts
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = write(wake_.get(), &one, sizeof one);
  return report;
}

std::uint64_t process_pool_core::enqueue(submission job) {
  auto record = std::make_unique<remote::task_record>();
  record->entry = job.entry;
  record->state = state_ptr<state_base>{job.state};
  job.state->add_ref();
  record->decode = job.decode;
  record->args = std::move(job.args);
  record->large = std::move(job.large);
  record->attachments = std::move(job.attachments);
  bool wake_supervisor = false;
  if (job.call != nullptr) {
    record->call_name = job.call->name;
    record->retries = job.call->retries;
    if (job.call->timeout) {
      record->timeout = *job.call->timeout;
      // The supervisor may sleep without a deadline: it must start sampling (or sample faster).
      wake_supervisor = scheduler_.count_timed(*record);
    }
  }
  const std::uint64_t seq = scheduler_.enqueue(std::move(record), process::delivering_for == this);
  if (wake_supervisor) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_.get(), &one, sizeof one);
  }
  return seq;
}

process_pool_stats process_pool_core::stats() const {
  process_pool_stats out = scheduler_.stats();
  // Worker threads (lanes) with a live worker: processes x threads when all are up.
  out.workers = static_cast<std::size_t>(std::count_if(
      lanes_.begin(), lanes_.end(),
      [](const lane_slot& lane) { return lane.attached.load(std::memory_order_relaxed); }));
  return out;
}

std::vector<int> process_pool_core::worker_pids() const {
  std::lock_guard lock{pids_mu_};
  std::vector<int> out;
  for (int pid : pids_) {
    if (pid > 0) out.push_back(pid);
  }
  return out;
}

// --- collecting results
// ---------------------------------------------------------------------------

bool process_pool_core::any_news() const noexcept {
  if (collector_stop_.load(std::memory_order_relaxed)) return true;
  if (handed_waiting_.load(std::memory_order_relaxed)) return true;
  if (drivers_.load(std::memory_order_relaxed) > 0) return true;
  for (const lane_slot& lane : lanes_) {
    if (!lane.attached.load(std::memory_order_acquire)) continue;
    // Looked at under the lane's `reading` flag, like any other read of its result ring: the
    // supervisor takes the flag before it rebuilds the lane for a new worker, so no look can
    // overlap that. A lane another thread is draining has nothing for us.
    auto& flag = const_cast<std::atomic_flag&>(lane.reading);
    if (flag.test_and_set(std::memory_order_acquire)) continue;
    const bool news = lane.attached.load(std::memory_order_relaxed) &&
                      (lane.results_header->head.load(std::memory_order_acquire) !=
                           lane.results_header->tail.load(std::memory_order_relaxed) ||
                       (lane.starting.load(std::memory_order_relaxed) &&
                        lane.control->ready.load(std::memory_order_acquire) != 0));
    flag.clear(std::memory_order_release);
    if (news) return true;
  }
  return false;
}

bool process_pool_core::drain_all() noexcept {
  bool any = false;
  for (lane_slot& lane : lanes_) any |= drain_lane(lane);
  return any;
}

bool process_pool_core::drain_lane(lane_slot& lane) noexcept {
  if (!lane.attached.load(std::memory_order_acquire)) return false;
  // While this thread delivers results — the continuations too, which run at the end of this
  // scope — its submissions to this pool never wait for room in the queue.
  const process::delivering_scope delivering{this};
  // Continuations of the tasks completed here run after the lane is let go (declared first,
  // ended last): one that waits for another task of this lane must be able to read it.
  deferred_continuations later;
  if (lane.reading.test_and_set(std::memory_order_acquire)) return false;  // another drains it
  const bool any = drain_lane_held(lane);
  lane.reading.clear(std::memory_order_release);
  return any;
}

void process_pool_core::hand_continuations(
    std::vector<deferred_continuations::entry> entries) noexcept {
  if (entries.empty()) return;
  {
    std::lock_guard lock{handed_mu_};
    try {
      handed_.insert(handed_.end(), entries.begin(), entries.end());
      entries.clear();
    } catch (...) {
    }
    handed_waiting_.store(true, std::memory_order_release);
  }
  deferred_continuations::run_all(entries);  // what could not be handed (out of memory) runs here
  collector_bell_->ring();
}

void process_pool_core::run_handed_continuations() noexcept {
  if (!handed_waiting_.load(std::memory_order_acquire)) return;
  std::vector<deferred_continuations::entry> entries;
  {
    std::lock_guard lock{handed_mu_};
    entries.swap(handed_);
    handed_waiting_.store(false, std::memory_order_relaxed);
  }
  deferred_continuations::run_all(entries);
}

bool process_pool_core::drain_lane_held(lane_slot& lane) noexcept {
  if (!lane.chan || lane.broken.load(std::memory_order_relaxed)) return false;
  bool any = false;
  if (lane.starting.load(std::memory_order_acquire) &&
      lane.control->ready.load(std::memory_order_acquire) != 0) {
    lane.starting.store(false, std::memory_order_release);
    scheduler_.lane_ready(lane.index, &lane);
    any = true;
  }
  for (int budget = 0; budget < 256; ++budget) {
    std::optional<process::incoming_result> result;
    try {
      result = lane.chan->receive();
    } catch (const process::protocol_error& e) {
      // The task the lane holds next is the one whose answer was broken: it fails; the worker
      // is stopped, and what else it held runs elsewhere. The lane takes no more work and is
      // not read again: its ring cannot be trusted, and nothing else on it is to blame.
      lane.broken.store(true, std::memory_order_relaxed);
      scheduler_.lane_stopping(lane.index);
      if (remote::record_ptr record = scheduler_.accept(lane.index, 0)) {
        const std::uint64_t seq = record->seq;
        scheduler_.finish(
            std::move(record),
            task_error{error_kind::worker_lost,
                       std::string{"the worker broke the channel protocol: "} + e.what(),
                       {}});
        request_stop(lane.index, remote::stop_reason::protocol, seq);
      } else {
        request_stop(lane.index, remote::stop_reason::protocol, 0);
      }
      return true;
    }
    if (!result) break;
    any = true;
    remote::record_ptr record = scheduler_.accept(lane.index, result->seq);
    if (!record) {
      // An answer to a task it was not given (or out of order).
      lane.broken.store(true, std::memory_order_relaxed);
      scheduler_.lane_stopping(lane.index);
      request_stop(lane.index, remote::stop_reason::protocol, 0);
      return true;
    }
    std::optional<task_error> failure;
    task_error::details details;
    if (result->status != process::result_status::ok || !result->lost.empty()) {
      std::lock_guard lock{pids_mu_};
      details.pid = pids_[lane.process];
    }
    if (!result->lost.empty()) {
      // Not the worker's doing: this process could not take the result (no descriptor or
      // address space left). The task fails; the worker goes on.
      failure.emplace(error_kind::serialization,
                      "the task's result could not be received: " + result->lost, details);
    }
    // A lost result has nothing to decode: it takes the no-op branch.
    switch (result->lost.empty() ? result->status : process::result_status::skipped) {
      case process::result_status::ok:
        // A task cancelled after it was sent is complete already: its value is dropped.
        if (!record->state->is_ready()) {
          // Counted before the value is set, so that whoever sees the future ready sees the
          // count (stats() right after get()).
          scheduler_.count_completed();
          try {
            std::vector<int> attached;
            for (const auto& fd : result->attachments) attached.push_back(fd.get());
            const incoming_attachments received{attached};
            const receiving_attachments with{&received};
            record->decode(*record->state, result->body);
          } catch (const std::exception& e) {
            scheduler_.uncount_completed();
            failure.emplace(error_kind::serialization,
                            std::string{"the task's result could not be decoded: "} + e.what(),
                            details);
          }
        }
        break;
      case process::result_status::exception:
        try {
          // The task's own exception, rebuilt with its type where crew knows the type: get()
          // rethrows it as a thread pool's get() would.
          failure.emplace(remote_exception_error(result->body, details));
        } catch (const std::exception& e) {
          failure.emplace(
              error_kind::exception,
              std::string{"the task threw, and its exception could not be decoded: "} + e.what(),
              details);
        }
        break;
      case process::result_status::bad_request:
        try {
          std::string what;
          codec::decode_into(result->body, what);
          failure.emplace(error_kind::serialization, what, details);
        } catch (const std::exception& e) {
          failure.emplace(error_kind::serialization,
                          std::string{"the worker refused the task: "} + e.what(), details);
        }
        break;
      case process::result_status::skipped:
        break;  // cancel() failed it before the worker reached it
    }
    result.reset();  // unmaps a large result before its ring space is reused
    lane.chan->release();
    scheduler_.finish(std::move(record), std::move(failure));
  }
  return any;
}

bool process_pool_core::drive(const state_base& state, const clock::time_point* deadline) noexcept {
  // Collect results on this thread while they keep coming, for up to ~50 µs without progress
  // (a result due within microseconds is not worth a sleep and a wake-up), then leave it to
  // the collector and sleep on the state.
  drivers_.fetch_add(1, std::memory_order_acq_rel);
  auto idle_since = clock::now();
  while (!state.is_ready()) {
    run_handed_continuations();
    if (drain_all()) {
      idle_since = clock::now();
      continue;
    }
    for (int i = 0; i < 32 && !state.is_ready(); ++i) ipc::cpu_relax();
    const auto now = clock::now();
    if (deadline != nullptr && now >= *deadline) break;
    if (now - idle_since > std::chrono::microseconds{50}) {
      // A continuation on the collector thread waits: nobody else would collect for it.
      if (!on_collector_thread()) break;
      std::this_thread::sleep_for(std::chrono::microseconds{200});
      continue;
    }
    if (now - idle_since > std::chrono::microseconds{10}) std::this_thread::yield();
  }
  if (drivers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    // The collector may be napping on drivers_: it takes over now rather than in a nap's time.
    syscall(SYS_futex, reinterpret_cast<int*>(&drivers_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
            0);
  }
  return state.is_ready();
}

void process_pool_core::collector_main() {
  // It delivers results and runs the supervisor's continuations: never blocked by the bound.
  const process::delivering_scope delivering{this};
  ipc::wait_options wait;
  wait.spin = std::chrono::microseconds{0};
  wait.poll = std::chrono::milliseconds{100};
  collecting_for = this;
  while (!collector_stop_.load(std::memory_order_acquire)) {
    run_handed_continuations();
    if (drain_all()) continue;
    const int drivers = drivers_.load(std::memory_order_acquire);
    if (drivers > 0) {
      // A waiting thread collects: stay off the doorbell, so that workers do not wake us (a
      // system call each) for results it takes anyway.
      nap_on(drivers_, drivers, std::chrono::microseconds{1000});
      continue;
    }
    try {
      ipc::wait_until(
          *collector_bell_, [this] { return any_news(); }, wait);
    } catch (const ipc::channel_error&) {
    }
  }
  run_handed_continuations();  // the supervisor has stopped: nothing is handed after this
  collecting_for = nullptr;
}

bool drive_remote(process_pool_core& core, const state_base& state,
                  const clock::time_point* deadline) noexcept {
  return core.drive(state, deadline);
}

bool cancel_remote(process_pool_core& core, std::uint64_t seq) noexcept {
  return core.cancel(seq);
}

void payload_deleter::operator()(process::payload* p) const noexcept {
  delete p;
}

std::span<std::byte> submission::allocate(std::size_t bytes) {
  if (bytes > inline_limit) {
    large.reset(new process::payload(process::payload::create(bytes, false)));
    return large->bytes();
  }
  args.resize(bytes);
  return args;
}

}  // namespace crew::detail
