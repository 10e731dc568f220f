#include "advise/profile.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lab/experiment.hpp"
#include "lab/stats.hpp"

namespace crew::lab {
namespace {

int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

std::string describe_signal(int sig) {
  const char* d = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (d ? std::string(" (") + d + ")" : "");
}

}  // namespace

command_run run_command(const std::vector<std::string>& argv, double timeout_seconds) {
  if (argv.empty()) throw advise_error("no command given");
  int out[2], err[2], exec_err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(exec_err, O_CLOEXEC) != 0)
    throw advise_error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  const auto t0 = clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw advise_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);  // its own group, so a timeout can stop everything it started
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execvp(args[0], args.data());
    const int e = errno;
    [[maybe_unused]] auto n = ::write(exec_err[1], &e, sizeof e);
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ::close(out[1]);
  ::close(err[1]);
  ::close(exec_err[1]);
  int e = 0;
  const bool exec_failed = ::read(exec_err[0], &e, sizeof e) == static_cast<ssize_t>(sizeof e);
  ::close(exec_err[0]);

  command_run r;
  const int pfd = pidfd_open(pid);
  bool out_open = true, err_open = true, exited = false, term_sent = false;
  auto deadline = t0 + std::chrono::duration_cast<clock::duration>(
                           std::chrono::duration<double>(timeout_seconds));
  char buf[65536];
  while (!exited || out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out[0], POLLIN, 0};
    if (err_open) fds[n++] = {err[0], POLLIN, 0};
    if (!exited && pfd >= 0) fds[n++] = {pfd, POLLIN, 0};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    int wait_ms = static_cast<int>(std::max<long long>(0, left));
    if (pfd < 0 && !exited) wait_ms = std::min(wait_ms, 5);  // no pidfd: poll for the exit
    if (exited) wait_ms = std::min(wait_ms, 100);            // a grandchild may hold the pipes open
    const int k = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (k < 0 && errno != EINTR) break;
    for (int i = 0; i < n && k > 0; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (fds[i].fd == pfd) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        (fds[i].fd == out[0] ? out_open : err_open) = false;
      } else if (fds[i].fd == out[0]) {
        r.stdout_bytes += static_cast<double>(got);
      } else {
        r.stderr_tail.append(buf, static_cast<std::size_t>(got));
        if (r.stderr_tail.size() > 400) r.stderr_tail.erase(0, r.stderr_tail.size() - 400);
      }
    }
    if (!exited) {
      int status = 0;
      rusage ru{};
      const pid_t w = ::wait4(pid, &status, WNOHANG, &ru);
      if (w == pid) {
        exited = true;
        r.wall_seconds = seconds_since(t0);
        r.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
        r.max_rss_bytes = static_cast<double>(ru.ru_maxrss) * 1024;
        if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        deadline = std::min(deadline, clock::now() + std::chrono::seconds(2));
        continue;
      }
    }
    if (clock::now() >= deadline) {
      if (exited) break;  // pipes held by leftovers: stop reading
      if (!term_sent) {
        r.timed_out = true;
        ::kill(-pid, SIGTERM);
        term_sent = true;
        deadline = clock::now() + std::chrono::seconds(2);
      } else {
        ::kill(-pid, SIGKILL);
        deadline = clock::now() + std::chrono::seconds(5);
      }
    }
  }
  if (!exited) {
    ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.wall_seconds = seconds_since(t0);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  }
  ::kill(-pid, SIGKILL);  // anything it left behind in its group
  if (pfd >= 0) ::close(pfd);
  ::close(out[0]);
  ::close(err[0]);
  if (exec_failed) throw advise_error("cannot run '" + argv[0] + "': " + std::strerror(e));
  return r;
}

workload_profile profile_command(const std::vector<std::string>& argv, unsigned runs,
                                 double budget_seconds, std::vector<command_run>* raw) {
  workload_profile p;
  for (const auto& a : argv) p.description += (p.description.empty() ? "" : " ") + a;
  for (const auto& a : argv) p.arg_bytes += static_cast<double>(a.size() + 1);
  std::vector<double> wall, cpu, out;
  const auto t0 = clock::now();
  for (unsigned i = 0; i < std::max(1u, runs); ++i) {
    const double left = budget_seconds - seconds_since(t0);
    // Stop early rather than overrun: another run as long as the slowest would not fit.
    if (i > 0 && (left <= 0 || p.max_wall_seconds > left)) break;
    const command_run r = run_command(argv, std::max(0.1, left));
    if (raw) raw->push_back(r);
    ++p.runs;
    p.max_wall_seconds = std::max(p.max_wall_seconds, r.wall_seconds);
    p.peak_rss_bytes = std::max(p.peak_rss_bytes, r.max_rss_bytes);
    if (r.timed_out) {
      ++p.timeouts;
      ++p.crashes;
      p.crash_detail = "killed after the " + format_value(budget_seconds, "s") + " budget";
      break;
    }
    if (r.signal != 0) {
      ++p.crashes;
      p.crash_detail = describe_signal(r.signal);
      continue;
    }
    wall.push_back(r.wall_seconds);
    cpu.push_back(r.cpu_seconds);
    out.push_back(r.stdout_bytes);
  }
  p.wall_seconds = median(wall);
  p.cpu_seconds = median(cpu);
  p.result_bytes = median(out);
  if (wall.empty()) p.wall_seconds = p.max_wall_seconds;
  return p;
}

}  // namespace crew::lab
