// crew::profile_task's machinery: measure one call inside a forked child, and the sampling loop
// that runs a few of them within a time budget and turns them into a workload_profile.
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "crew/advise.hpp"
#include "crew/detail/format.hpp"
#include "crew/error.hpp"
#include "crew/isolated.hpp"

namespace crew::detail {
namespace {

using clock = std::chrono::steady_clock;

double seconds(const timeval& tv) noexcept {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

double cpu_of(const rusage& ru) noexcept {
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

// User + system CPU of this process (all its threads) and of the children it has waited for.
// The process clock, not getrusage(RUSAGE_SELF): the latter is scaled from scheduler ticks and
// reads a 20 µs task as 30 µs of CPU; the clock counts the scheduler's nanoseconds.
double cpu_now() noexcept {
  timespec self{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &self);
  rusage children{};
  ::getrusage(RUSAGE_CHILDREN, &children);
  return static_cast<double>(self.tv_sec) + static_cast<double>(self.tv_nsec) * 1e-9 +
         cpu_of(children);
}

double children_cpu_now() noexcept {
  rusage children{};
  ::getrusage(RUSAGE_CHILDREN, &children);
  return cpu_of(children);
}

// A "VmXXX:   1234 kB" line of /proc/self/status, in bytes; -1 if missing.
double proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':')
      return std::strtod(line.c_str() + n + 1, nullptr) * 1024;
  }
  return -1;
}

// Resets the peak-RSS mark (VmHWM) to the current RSS (Linux ≥ 4.0). A forked child inherits
// its parent's mark; without the reset, a parent that once peaked higher would hide the task.
bool reset_peak_rss() noexcept {
  const int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

// Seconds this thread has spent ready to run but waiting for a CPU (the second field of
// /proc/thread-self/schedstat); -1 where the kernel does not keep it.
double run_queue_seconds() {
  std::ifstream in("/proc/thread-self/schedstat");
  double on_cpu = 0;
  double waiting = -1;
  if (!(in >> on_cpu >> waiting)) return -1;
  return waiting * 1e-9;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string describe_signal(int sig) {
  const char* d = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (d ? std::string(" (") + d + ")" : "");
}

}  // namespace

child_metrics measure_call(const std::function<double()>& call) {
  const bool reset = reset_peak_rss();
  const double base = std::max(0.0, proc_status_bytes("VmRSS"));
  const double queued0 = run_queue_seconds();
  const double cpu0 = cpu_now();
  const auto t0 = clock::now();
  const double result_bytes = call();
  const double wall = std::chrono::duration<double>(clock::now() - t0).count();
  const double cpu = cpu_now() - cpu0;
  const double queued1 = run_queue_seconds();
  const double queued = queued0 >= 0 && queued1 >= queued0 ? std::min(wall, queued1 - queued0) : 0;
  double peak = reset ? proc_status_bytes("VmHWM") : -1;
  if (peak < 0) {
    // No reset: ru_maxrss may still be the parent's mark, so this can overstate the task.
    rusage self{};
    ::getrusage(RUSAGE_SELF, &self);
    peak = static_cast<double>(self.ru_maxrss) * 1024;
  }
  return {wall, cpu, std::max(0.0, peak - base), result_bytes, queued};
}

workload_profile profile_samples(std::string description, std::size_t count,
                                 const std::function<double(std::size_t)>& arg_bytes,
                                 const std::function<child_metrics(std::size_t)>& call_in_child,
                                 const advise_options& options, std::vector<task_sample>* raw) {
  if (count == 0)
    throw std::invalid_argument("crew::advise: no sample inputs for " + description +
                                "; give at least one input to measure the task on");
  if (options.budget.count() <= 0)
    throw std::invalid_argument("crew::advise: the time budget must be positive");

  // Spread the samples over the inputs, first and last included: an input that crashes the task
  // is as likely to sit at the end as at the start.
  const std::size_t n = std::min(count, std::max<std::size_t>(1, options.max_samples));
  std::vector<std::size_t> picks;
  for (std::size_t k = 0; k < n; ++k)
    picks.push_back(n == 1 ? 0
                           : static_cast<std::size_t>(
                                 std::llround(double(k) * double(count - 1) / double(n - 1))));

  workload_profile p;
  p.description = std::move(description);
  const double budget = std::chrono::duration<double>(options.budget).count();
  std::vector<double> wall, cpu, out, args, failed_wall, failed_cpu;
  const auto start = clock::now();
  for (std::size_t k = 0; k < picks.size(); ++k) {
    const double left = budget - std::chrono::duration<double>(clock::now() - start).count();
    // Stop early rather than overrun: another run as long as the slowest would not fit.
    if (k > 0 && (left <= 0 || p.max_wall_seconds > left)) break;
    const std::size_t i = picks[k];
    task_sample s;
    s.arg_bytes = arg_bytes(i);
    isolation_options iso;
    iso.timeout =
        std::max(std::chrono::milliseconds{1},
                 std::chrono::milliseconds{static_cast<long long>(std::ceil(left * 1e3))});
    iso.name = p.description;
    const double parent_cpu0 = children_cpu_now();
    const auto t0 = clock::now();
    try {
      const child_metrics m = run_isolated([&call_in_child, i] { return call_in_child(i); }, iso);
      s.wall_seconds = m[0];
      s.cpu_seconds = m[1];
      s.peak_bytes = m[2];
      s.result_bytes = m[3];
      s.cpu_wait_seconds = m[4];
    } catch (const task_error& e) {
      // The child's own figures are lost with it: take the parent's view (fork included).
      s.wall_seconds = std::chrono::duration<double>(clock::now() - t0).count();
      s.cpu_seconds = std::max(0.0, children_cpu_now() - parent_cpu0);
      s.signal = e.signal();
      switch (e.kind()) {
        case error_kind::crashed:
          s.end = task_sample::ending::crashed;
          s.detail = e.signal() != 0 ? describe_signal(e.signal())
                                     : "exited with code " + std::to_string(e.exit_code()) +
                                           " before returning";
          break;
        case error_kind::timed_out:
          s.end = task_sample::ending::timed_out;
          s.detail = "stopped after the " + format_quantity(budget, "s") + " budget";
          break;
        case error_kind::out_of_memory:
          s.end = task_sample::ending::out_of_memory;
          s.detail = e.what();
          break;
        default:
          s.end = task_sample::ending::threw;
          s.detail = (e.remote_type().empty() ? std::string{} : e.remote_type() + ": ") + e.what();
          break;
      }
    }
    ++p.runs;
    p.max_wall_seconds = std::max(p.max_wall_seconds, s.wall_seconds);
    args.push_back(s.arg_bytes);
    switch (s.end) {
      case task_sample::ending::returned:
        // The time the task would take with a core to itself: other work on the machine made
        // it wait for a CPU for cpu_wait_seconds, which says nothing about the task.
        wall.push_back(std::max(s.wall_seconds - s.cpu_wait_seconds, s.wall_seconds * 1e-3));
        cpu.push_back(s.cpu_seconds);
        out.push_back(s.result_bytes);
        p.peak_rss_bytes = std::max(p.peak_rss_bytes, s.peak_bytes);
        break;
      case task_sample::ending::timed_out:
        ++p.timeouts;
        [[fallthrough]];
      case task_sample::ending::crashed:
      case task_sample::ending::out_of_memory:
        ++p.crashes;
        p.crash_detail = s.detail;
        [[fallthrough]];
      case task_sample::ending::threw:
        failed_wall.push_back(s.wall_seconds);
        failed_cpu.push_back(s.cpu_seconds);
        break;
    }
    const bool stop = s.end == task_sample::ending::timed_out;
    if (raw) raw->push_back(std::move(s));
    if (stop) break;  // the budget is spent
  }
  if (!wall.empty()) {
    p.wall_seconds = median(wall);
    p.cpu_seconds = median(cpu);
  } else {
    // No run returned: the parent's view of the failed ones is all there is.
    p.wall_seconds = median(failed_wall);
    p.cpu_seconds = median(failed_cpu);
  }
  p.result_bytes = median(out);
  p.arg_bytes = median(args);
  return p;
}

}  // namespace crew::detail
