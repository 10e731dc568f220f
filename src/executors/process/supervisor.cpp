// The supervisor of a process pool: one thread, one event loop (epoll over the workers' pidfds
// and stderr pipes, and an eventfd for requests), which owns every worker process from launch to
// reaping. It starts workers (so PR_SET_PDEATHSIG binds them to a thread that lives as long as
// the pool), watches their start deadline, task timeouts and memory, stops them (their whole
// process group), settles what a dead worker held with the scheduler, and restarts them with
// backoff — or declares the pool broken when no worker can start at all. A start that fails for
// want of a resource (descriptors, memory, processes) is retried for a while before it counts:
// such a shortage is often over in a moment, and a broken pool stays broken.
//
// It never holds the scheduler's lock while it forks, waits or reads a pipe; it takes a lane's
// `reading` flag to collect the last results of a dead worker before settling its lane.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "executors/process/launch.hpp"
#include "executors/process/pool_core.hpp"
#include "executors/process/proc.hpp"

namespace crew::detail {

using process::clock;
using process::lane_slot;
using process::worker_process;
using remote::stop_reason;

namespace {

// epoll data: bits 0..1 kind (0 wake, 2 pidfd, 3 stderr), then the process index, generation.
constexpr std::uint64_t tag_pidfd = 2;
constexpr std::uint64_t tag_stderr = 3;
std::uint64_t make_tag(std::uint64_t kind, std::size_t index, std::uint64_t generation) {
  return kind | (static_cast<std::uint64_t>(index) << 2) | (generation << 32);
}

// A worker that fails to start this many times in a row is retried only with the longest
// backoff; when every worker has, and none serves, the pool is broken.
constexpr unsigned max_start_attempts = 3;
constexpr auto first_backoff = std::chrono::milliseconds{10};
constexpr auto longest_backoff = std::chrono::milliseconds{1000};
// A start that fails for want of a resource is retried, with the same backoff but at most
// `shortage_backoff` apart (so that tasks go on soon after the resource is back), for this
// long; past it, the failure counts as any other and can break the pool. Documented in
// docs/process_pool.md.
constexpr auto transient_start_limit = std::chrono::seconds{5};
constexpr auto shortage_backoff = std::chrono::milliseconds{200};

/// Whether a start failed for want of something the system may have again soon: descriptors
/// (EMFILE, ENFILE), memory (ENOMEM) or processes (EAGAIN from fork).
bool short_of_resource(const std::exception& e) noexcept {
  const auto* error = dynamic_cast<const std::system_error*>(&e);
  if (error == nullptr) return false;
  const std::error_code code = error->code();
  return code == std::errc::too_many_files_open ||
         code == std::errc::too_many_files_open_in_system || code == std::errc::not_enough_memory ||
         code == std::errc::resource_unavailable_try_again;
}

void signal_group(pid_t leader, int pidfd, int signal) noexcept {
  // The group goes first: a task's helpers must not outlive the worker they belong to. The
  // leader itself also by pidfd, in case it has not made its group yet.
  if (leader > 0) kill(-leader, signal);
  if (pidfd >= 0) syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0);
}

std::uint64_t monotonic_ns() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(now.tv_nsec);
}

void lock_reading(lane_slot& lane) noexcept {
  while (lane.reading.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
}

std::string describe_status(int status) {
  if (status >= 0 && WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  if (status >= 0 && WIFEXITED(status))
    return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "ended";
}

}  // namespace

void process_pool_core::request_stop(std::size_t lane, stop_reason reason, std::uint64_t seq) {
  {
    std::lock_guard lock{command_mu_};
    commands_.push_back(
        {lane, lanes_[lane].generation.load(std::memory_order_acquire), reason, seq});
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = write(wake_.get(), &one, sizeof one);
}

void process_pool_core::run_commands() {
  std::vector<stop_command> commands;
  {
    std::lock_guard lock{command_mu_};
    commands.swap(commands_);
  }
  for (const stop_command& c : commands) {
    lane_slot& lane = lanes_[c.lane];
    worker_process& p = processes_[lane.process];
    if (lane.generation.load(std::memory_order_acquire) != c.generation ||
        p.state == worker_process::phase::down) {
      continue;  // that worker is gone already
    }
    if (c.reason == stop_reason::cancelled &&
        lane.control->running_seq.load(std::memory_order_acquire) != c.seq) {
      continue;  // it finished meanwhile; its result is not accepted, the worker goes on
    }
    stop_process(p, c.reason, c.seq, c.lane, SIGKILL);
  }
}

void process_pool_core::stop_process(worker_process& p, stop_reason reason, std::uint64_t seq,
                                     std::size_t /*lane*/, int signal) {
  if (p.state == worker_process::phase::down) return;
  if (p.reason == stop_reason::none) {
    p.reason = reason;
    p.stopped_for = seq;
  }
  for (lane_slot& l : lanes_of(p)) scheduler_.lane_stopping(l.index);
  signal_group(p.pid, p.pidfd.get(), signal);
  if (signal == SIGTERM && !p.term_pending) {
    p.term_pending = true;
    p.term_sent = clock::now();
  }
}

void process_pool_core::launch(worker_process& p, bool replacement) {
  std::vector<ipc::unique_fd> worker_ends(threads_);
  process::worker_config config;
  for (std::size_t t = 0; t < threads_; ++t) {
    lane_slot& lane = lanes_of(p)[t];
    lock_reading(lane);
    lane.chan.reset();
    try {
      lane.chan.emplace(region_, layout_, lane.index, worker_ends[t]);
    } catch (...) {
      lane.reading.clear(std::memory_order_release);
      throw;
    }
    lane.generation.fetch_add(1, std::memory_order_acq_rel);
    lane.broken.store(false, std::memory_order_relaxed);
    lane.reading.clear(std::memory_order_release);
    config.socket_fds[t] = worker_ends[t].get();
  }
  config.region_fd = region_.fd();
  config.region_bytes = region_.size();
  config.channel_bytes = layout_.channel_bytes;
  config.slot_count = layout_.slot_count;
  config.slot = p.index * threads_;
  config.threads = threads_;
  config.initializer_id = options_.initializer ? options_.initializer.entry->id : 0;
  config.parent_pid = static_cast<int>(getpid());
  process::launched_worker worker = process::launch_worker(options_.start, region_.data(), config);

  p.pid = worker.pid;
  p.pidfd = std::move(worker.pidfd);
  p.stderr_fd = std::move(worker.stderr_read);
  p.generation += 1;
  p.state = worker_process::phase::starting;
  p.launched = clock::now();
  p.reason = stop_reason::none;
  p.stopped_for = 0;
  p.peak_memory = 0;
  p.start_memory = 0;
  p.term_pending = false;
  p.stderr_tail.clear();
  std::fill(p.watched_seq.begin(), p.watched_seq.end(), 0);
  std::fill(p.watched_limit.begin(), p.watched_limit.end(), std::chrono::nanoseconds{0});
  epoll_event death{EPOLLIN, {.u64 = make_tag(tag_pidfd, p.index, p.generation)}};
  epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, p.pidfd.get(), &death);
  if (p.stderr_fd) {
    epoll_event output{EPOLLIN, {.u64 = make_tag(tag_stderr, p.index, p.generation)}};
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, p.stderr_fd.get(), &output);
  }
  {
    std::lock_guard lock{pids_mu_};
    pids_[p.index] = p.pid;
  }
  // Counted before the lanes can be handed work: a task the replacement runs is never seen
  // before its restart is.
  if (replacement) scheduler_.count_restart();
  for (lane_slot& lane : lanes_of(p)) {
    lane.starting.store(true, std::memory_order_release);
    lane.attached.store(true, std::memory_order_release);
  }
  // A worker that became ready before `attached` was set rang a doorbell nobody checked.
  collector_bell_->ring();
}

std::string process_pool_core::launch_failure(worker_process& p, const std::exception& e) {
  std::string why = std::string{"could not be started: "} + e.what();
  // A worker that ended while it was being launched (an initializer that threw at once, with
  // the forkserver) may have said why in its control block before it went.
  const char* said = lanes_of(p).front().control->start_error;
  const std::string reported{said, strnlen(said, sizeof lanes_of(p).front().control->start_error)};
  if (!reported.empty()) why = "failed: " + reported + " (" + e.what() + ")";
  for (lane_slot& lane : lanes_of(p)) {
    lock_reading(lane);
    lane.chan.reset();
    lane.reading.clear(std::memory_order_release);
  }
  return why;
}

void process_pool_core::after_start_failure(worker_process& p, const std::string& why,
                                            bool short_of_resource) {
  const auto now = clock::now();
  p.state = worker_process::phase::down;
  p.last_start_error = why;
  scheduler_.count_start_failure();
  clock::duration backoff{};
  if (short_of_resource) {
    if (p.short_starts++ == 0) p.short_since = now;
    backoff = std::min<clock::duration>(first_backoff * (1U << std::min(p.short_starts - 1, 7U)),
                                        shortage_backoff);
  } else {
    ++p.failed_starts;
    backoff = std::min<clock::duration>(first_backoff * (1U << std::min(p.failed_starts - 1, 7U)),
                                        longest_backoff);
  }
  p.restart_at = now + backoff;
  // A worker is given up on after max_start_attempts failures of its own, or a shortage that
  // lasted transient_start_limit; the pool, when every worker is.
  const auto given_up = [now](const worker_process& q) {
    return q.state == worker_process::phase::down &&
           (q.failed_starts >= max_start_attempts ||
            (q.short_starts > 0 && now - q.short_since >= transient_start_limit));
  };
  if (!std::all_of(processes_.begin(), processes_.end(), given_up) || scheduler_.broken()) return;
  std::string cause;
  if (short_of_resource) {
    cause = "for " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(transient_start_limit).count()) +
            " s, for want of descriptors, memory or processes (" + std::to_string(p.short_starts) +
            " attempts)";
  } else {
    cause = "(" + std::to_string(max_start_attempts) + " attempts each)";
  }
  scheduler_.set_broken(std::string{threads_ > 1 ? "crew::hybrid_pool" : "crew::process_pool"} +
                        ": no worker could be started " + cause + "; the last one " + why);
}

void process_pool_core::drain_stderr(worker_process& p) {
  if (!p.stderr_fd) return;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(p.stderr_fd.get(), buffer, sizeof buffer);
    if (n <= 0) break;
    // Forward what the worker says, as it would have appeared without the pool.
    [[maybe_unused]] auto written = write(STDERR_FILENO, buffer, static_cast<std::size_t>(n));
    p.stderr_tail.append(buffer, static_cast<std::size_t>(n));
    constexpr std::size_t keep = 8192;
    if (p.stderr_tail.size() > 2 * keep) p.stderr_tail.erase(0, p.stderr_tail.size() - keep);
  }
}

void process_pool_core::handle_death(worker_process& p) {
  signal_group(p.pid, -1, SIGKILL);  // what its tasks started goes with it
  drain_stderr(p);
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.pidfd.get(), nullptr);
  if (p.stderr_fd) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.stderr_fd.get(), nullptr);
  const int status = process::reap_worker(options_.start, p.pid, p.pidfd.get());

  task_error::details base;
  base.pid = p.pid;
  if (status >= 0 && WIFSIGNALED(status)) base.signal = WTERMSIG(status);
  if (status >= 0 && WIFEXITED(status)) base.exit_code = WEXITSTATUS(status);
  base.stderr_tail = process::last_lines(p.stderr_tail, 20);

  // Results the worker finished before it died still count: collect them first.
  std::span<lane_slot> lanes = lanes_of(p);
  bool ready = true;
  for (lane_slot& lane : lanes) {
    lock_reading(lane);
    drain_lane_held(lane);
    ready = ready && lane.control->ready.load(std::memory_order_acquire) != 0;
  }
  // Which thread faulted (hybrid pools): its task is the culprit, the others' are not.
  std::vector<std::string> running(lanes.size());
  std::size_t culprit = lanes.size();
  int culprit_signal = 0;
  bool culprit_read_only = false;
  for (std::size_t t = 0; t < lanes.size(); ++t) {
    running[t] = scheduler_.running_name(lanes[t].index);
    const auto fault =
        static_cast<int>(lanes[t].control->fault_signal.load(std::memory_order_relaxed));
    if (fault > 0 && fault < 65 && culprit == lanes.size() && !running[t].empty()) {
      culprit = t;
      culprit_signal = fault;
      culprit_read_only = lanes[t].control->fault_read_only.load(std::memory_order_relaxed) != 0;
    }
  }
  for (std::size_t t = 0; t < lanes.size(); ++t) {
    remote::lane_end end;
    end.base = base;
    end.reason = p.reason;
    end.stopped_for = p.stopped_for;
    end.peak_memory = p.peak_memory;
    end.start_memory = p.start_memory;
    if (culprit < lanes.size()) {
      if (culprit == t) {
        end.fault_signal = culprit_signal;
        end.fault_read_only = culprit_read_only;
      } else {
        end.sibling_culprit = running[culprit];
        end.sibling_signal = culprit_signal;
      }
    } else {
      for (std::size_t u = 0; u < lanes.size(); ++u) {
        if (u != t && !running[u].empty()) end.siblings_running.push_back(running[u]);
      }
    }
    scheduler_.settle_lane(lanes[t].index, end);
    lanes[t].attached.store(false, std::memory_order_release);
    lanes[t].starting.store(false, std::memory_order_release);
    lanes[t].chan.reset();
    lanes[t].reading.clear(std::memory_order_release);
  }
  {
    std::lock_guard lock{pids_mu_};
    pids_[p.index] = -1;
  }
  const stop_reason reason = p.reason;
  p.pidfd.reset();
  p.stderr_fd.reset();
  p.pid = -1;
  if (!ready) {
    std::string why;
    const char* said = lanes.front().control->start_error;
    const std::string reported{said, strnlen(said, sizeof lanes.front().control->start_error)};
    if (reason == stop_reason::timed_out) {
      why = "did not become ready within " + std::to_string(options_.start_timeout.count()) +
            " ms (start-up and initializer) and was stopped";
    } else if (!reported.empty()) {
      why = "failed: " + reported;
    } else {
      why = describe_status(status) + " before it was ready";
      if (!base.stderr_tail.empty())
        why += "; its last output: " + process::last_lines(p.stderr_tail, 3);
    }
    after_start_failure(p, "worker " + std::to_string(base.pid) + " " + why);
    return;
  }
  p.state = worker_process::phase::down;
  p.failed_starts = 0;
  p.restart_at = clock::now();
}

void process_pool_core::supervise(clock::time_point now) {
  const std::uint64_t now_ns = monotonic_ns();
  for (worker_process& p : processes_) {
    using phase = worker_process::phase;
    if (p.state == phase::down) {
      if (stopping_.load() || scheduler_.broken() || now < p.restart_at) continue;
      try {
        launch(p, /*replacement=*/true);
      } catch (const std::exception& e) {
        after_start_failure(p, launch_failure(p, e), short_of_resource(e));
      }
      continue;
    }
    if (p.term_pending && now - p.term_sent >= options_.kill_grace) {
      p.term_pending = false;
      signal_group(p.pid, p.pidfd.get(), SIGKILL);
    }
    if (p.state == phase::starting) {
      bool all_ready = true;
      for (lane_slot& lane : lanes_of(p)) {
        all_ready = all_ready && lane.control->ready.load(std::memory_order_acquire) != 0;
      }
      if (all_ready) {
        p.state = phase::ready;
        p.failed_starts = 0;
        p.short_starts = 0;
        if (options_.memory_limit > 0) {
          // What it says it started with, but never more than it holds now (it is untrusted).
          const std::size_t said = static_cast<std::size_t>(
              lanes_of(p).front().control->start_resident.load(std::memory_order_acquire));
          const std::size_t now_resident = process::resident_bytes(p.pid);
          p.start_memory = said == 0           ? now_resident
                           : now_resident == 0 ? said
                                               : std::min(said, now_resident);
        }
      } else if (options_.start_timeout.count() > 0 && now - p.launched > options_.start_timeout &&
                 p.reason == stop_reason::none) {
        stop_process(p, stop_reason::timed_out, 0, 0, SIGKILL);
      }
      continue;
    }
    if (p.reason != stop_reason::none) continue;  // being stopped already
    // Memory first: a task over both limits when this look comes (a late look on a busy
    // machine) is stopped for its memory, the harder fact and the likely cause of its slowness.
    // What the worker added to what it started with: a forked worker starts with every resident
    // page of the parent, shared until written, which is not the task's doing.
    if (options_.memory_limit > 0 && p.reason == stop_reason::none) {
      const std::size_t resident = process::resident_bytes(p.pid);
      if (resident > p.start_memory && resident - p.start_memory > options_.memory_limit) {
        bool running = false;
        for (lane_slot& lane : lanes_of(p)) {
          running = running || lane.control->running_seq.load(std::memory_order_acquire) != 0;
        }
        if (running) {
          p.peak_memory = std::max(resident, process::peak_resident_bytes(p.pid)) - p.start_memory;
          stop_process(p, stop_reason::out_of_memory, 0, 0, SIGKILL);
        }
      }
    }
    // Timeouts: the pool's task_timeout, or a task's own (crew/call.hpp), which replaces it.
    const bool call_timeouts = scheduler_.timed_tasks() > 0;
    if (options_.task_timeout.count() > 0 || call_timeouts) {
      for (std::size_t t = 0; t < threads_ && p.reason == stop_reason::none; ++t) {
        lane_slot& lane = lanes_of(p)[t];
        const std::uint64_t running = lane.control->running_seq.load(std::memory_order_acquire);
        if (running == 0) continue;
        // The worker's own start time (same clock): exact, however late this look is.
        const std::uint64_t started = lane.control->started_ns.load(std::memory_order_relaxed);
        if (running != p.watched_seq[t]) {
          p.watched_seq[t] = running;
          p.watched_since[t] = now;
          std::chrono::nanoseconds limit{0};
          if (call_timeouts) limit = scheduler_.call_timeout(lane.index, running);
          p.watched_limit[t] = limit.count() > 0 ? limit : options_.task_timeout;
        }
        const std::chrono::nanoseconds limit = p.watched_limit[t];
        if (limit.count() <= 0) continue;
        const auto limit_ns = static_cast<std::uint64_t>(limit.count());
        const bool over = started != 0 && started <= now_ns ? now_ns - started > limit_ns
                                                            : now - p.watched_since[t] > limit;
        if (over) stop_process(p, stop_reason::timed_out, running, lane.index, SIGTERM);
      }
    }
  }
}

int process_pool_core::next_wake_ms(clock::time_point now) const {
  using std::chrono::milliseconds;
  auto wake = clock::time_point::max();
  const bool call_timeouts = scheduler_.timed_tasks() > 0;
  const bool limits =
      options_.task_timeout.count() > 0 || options_.memory_limit > 0 || call_timeouts;
  for (const worker_process& p : processes_) {
    using phase = worker_process::phase;
    if (p.state == phase::down) {
      if (!stopping_.load() && !scheduler_.broken()) wake = std::min(wake, p.restart_at);
      continue;
    }
    if (p.term_pending) wake = std::min(wake, p.term_sent + options_.kill_grace);
    if (p.state == phase::starting) {
      // Readiness is looked at often while a worker starts; its deadline bounds the wait.
      wake = std::min(wake, now + milliseconds{20});
      if (options_.start_timeout.count() > 0)
        wake = std::min(wake, p.launched + options_.start_timeout);
    }
  }
  if (limits) {
    // Sample often enough to stop an overdue task within ~5% of its timeout, and a growing
    // worker within a few milliseconds; look every 50 ms while nothing runs.
    auto period = milliseconds{50};
    if (scheduler_.in_flight() > 0) {
      if (options_.task_timeout.count() > 0) {
        period = std::clamp(options_.task_timeout / 20, milliseconds{1}, milliseconds{50});
      }
      if (call_timeouts) {
        // To notice a timed task's start soon enough; once it is seen, its own deadline below.
        const auto shortest =
            std::chrono::duration_cast<milliseconds>(scheduler_.shortest_call_timeout() / 20);
        period = std::min(period, std::clamp(shortest, milliseconds{1}, milliseconds{50}));
      }
      if (options_.memory_limit > 0) period = std::min(period, milliseconds{2});
    }
    wake = std::min(wake, now + period);
  }
  // The exact deadline of each watched task with a timeout.
  for (const worker_process& p : processes_) {
    if (p.state != worker_process::phase::ready || p.reason != stop_reason::none) continue;
    for (std::size_t t = 0; t < threads_; ++t) {
      if (p.watched_seq[t] == 0 || p.watched_limit[t].count() <= 0) continue;
      wake = std::min(wake, p.watched_since[t] +
                                std::chrono::duration_cast<clock::duration>(p.watched_limit[t]));
    }
  }
  if (stopping_.load()) wake = std::min(wake, stop_deadline_);
  if (wake == clock::time_point::max()) return -1;
  if (wake <= now) return 0;
  return static_cast<int>(std::chrono::ceil<milliseconds>(wake - now).count());
}

namespace {
// Continuations of the tasks the supervisor ends are kept while it handles an event, then
// handed to the collector thread: a continuation that waits for another task of this pool must
// not hold up the supervisor, which may have to start the worker that task needs.
struct continuations_to_collector {
  const std::function<void(std::vector<deferred_continuations::entry>)>& hand;
  deferred_continuations kept;
  ~continuations_to_collector() { hand(kept.take()); }
};
}  // namespace

void process_pool_core::supervisor_main() {
  // Futures fulfilled here (a dead worker's tasks) run their continuations on this thread:
  // those must never wait for room in this pool's queue.
  const process::delivering_scope delivering{this};
  const std::function<void(std::vector<deferred_continuations::entry>)> to_collector =
      [this](std::vector<deferred_continuations::entry> entries) {
        hand_continuations(std::move(entries));
      };
  // The first round: the constructor learns whether any worker could be launched at all.
  bool any = false;
  std::exception_ptr first_error;
  for (worker_process& p : processes_) {
    continuations_to_collector round{to_collector, {}};
    try {
      launch(p, /*replacement=*/false);
      any = true;
    } catch (const process::worker_ended_at_start& e) {
      // Workers can be created: this one failed as a started worker does, later, with retries.
      any = true;
      after_start_failure(p, launch_failure(p, e));
    } catch (const std::exception& e) {
      const std::string why = launch_failure(p, e);
      if (short_of_resource(e)) {
        // Out of descriptors or memory for a moment: the pool is made, its tasks wait.
        any = true;
        after_start_failure(p, why, true);
        continue;
      }
      if (!first_error) {
        // What the worker said is the news; otherwise the launch's own error, as thrown.
        first_error = why.starts_with("failed: ")
                          ? std::make_exception_ptr(std::runtime_error("crew: a worker " + why))
                          : std::current_exception();
      }
      after_start_failure(p, why);
    }
  }
  {
    std::lock_guard lock{start_mu_};
    start_round_done_ = true;
    if (!any) start_error_ = first_error;
  }
  start_cv_.notify_all();

  bool exits_sent = false;
  bool killed_all = false;
  epoll_event events[32];
  for (;;) {
    continuations_to_collector round{to_collector, {}};
    const int n = epoll_wait(epoll_.get(), events, 32, next_wake_ms(clock::now()));
    if (n < 0 && errno != EINTR) {
      std::perror("crew process_pool: epoll_wait");
      break;
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == 0) {
        std::uint64_t count = 0;
        [[maybe_unused]] auto r = read(wake_.get(), &count, sizeof count);
        continue;
      }
      const std::uint64_t kind = tag & 3;
      const auto index = static_cast<std::size_t>((tag >> 2) & 0x3fffffff);
      const std::uint64_t generation = tag >> 32;
      if (index >= processes_.size()) continue;
      worker_process& p = processes_[index];
      if (p.generation != generation || p.state == worker_process::phase::down) continue;
      if (kind == tag_stderr) {
        drain_stderr(p);
      } else if (kind == tag_pidfd) {
        handle_death(p);
      }
    }
    run_commands();
    if (kill_all_.load() && !killed_all) {
      // stop_now(): every worker's group at once, whatever it runs; no restarts (stopping_).
      killed_all = true;
      for (worker_process& p : processes_) {
        if (p.state != worker_process::phase::down) {
          stop_process(p, stop_reason::shutdown, 0, 0, SIGKILL);
        }
      }
    }
    const auto now = clock::now();
    supervise(now);

    if (!stopping_.load()) continue;
    if (!exits_sent) {
      exits_sent = true;
      stop_deadline_ = now + options_.stop_timeout;
      for (std::size_t lane : scheduler_.send_exits()) {
        stop_process(processes_[lanes_[lane].process], stop_reason::shutdown, 0, lane, SIGKILL);
      }
      for (worker_process& p : processes_) {
        if (p.state == worker_process::phase::starting) {
          stop_process(p, stop_reason::shutdown, 0, 0, SIGKILL);
        } else if (p.state == worker_process::phase::ready) {
          p.state = worker_process::phase::exiting;
        }
      }
    }
    const bool all_down = std::all_of(processes_.begin(), processes_.end(), [](const auto& p) {
      return p.state == worker_process::phase::down;
    });
    if (all_down) break;
    if (now >= stop_deadline_) {
      for (worker_process& p : processes_) {
        if (p.state != worker_process::phase::down) {
          stop_process(p, stop_reason::shutdown, 0, 0, SIGKILL);
        }
      }
      stop_deadline_ = clock::time_point::max();
    }
  }
}

}  // namespace crew::detail
