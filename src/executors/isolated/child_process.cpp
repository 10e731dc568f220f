// crew::run_child and crew::run_command: one child process, supervised on one poll loop —
// its pidfd, its output pipe and its stderr pipe — with a timeout and a memory limit.
#include "crew/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

// Read-only use of the process supervisors' /proc reader (resident_bytes).
#include "executors/process/proc.hpp"
#include "ipc/unique_fd.hpp"

namespace crew {
namespace {

using clock = std::chrono::steady_clock;
using detail::ipc::unique_fd;

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(), std::string{"crew::run_child: "} + call);
}

void make_pipe(unique_fd& read_end, unique_fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  read_end = unique_fd{fds[0]};
  write_end = unique_fd{fds[1]};
}

bool write_all(int fd, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// /proc/<pid>/io of a child that has exited but is not reaped yet: its own counters plus those
// of the children it reaped (the kernel folds them in at each wait).
child_io read_io(pid_t pid) {
  child_io io;
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    io.known = true;
    if (key == "rchar:") io.read_chars = value;
    if (key == "wchar:") io.write_chars = value;
    if (key == "syscr:") io.read_calls = value;
    if (key == "syscw:") io.write_calls = value;
    if (key == "read_bytes:") io.read_bytes = value;
    if (key == "write_bytes:") io.write_bytes = value;
  }
  return io;
}

// delayacct_blkio_ticks, field 42 of /proc/<pid>/stat; -1 when delay accounting is off.
double read_io_wait(pid_t pid) {
  int enabled = 0;
  std::ifstream("/proc/sys/kernel/task_delayacct") >> enabled;
  if (enabled == 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 42 && (fields >> field); ++i) {
    if (i == 42) return std::stod(field) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return -1;
}

}  // namespace

child_result run_child(const std::function<int(int output_fd)>& body,
                       const child_options& options) {
  using mode = child_options::stderr_mode;
  unique_fd output_read, output_write, error_read, error_write, stdin_fd;
  make_pipe(output_read, output_write);
  const bool capture_stderr = options.child_stderr != mode::inherit;
  if (capture_stderr) make_pipe(error_read, error_write);
  if (!options.stdin_path.empty()) {
    stdin_fd = unique_fd{::open(options.stdin_path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (!stdin_fd)
      throw std::system_error(errno, std::generic_category(),
                              "crew::run_child: cannot open '" + options.stdin_path + "'");
  }

  std::fflush(nullptr);  // what this process buffered must not be written twice
  const pid_t parent = ::getpid();
  const auto start = clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);  // the parent died before prctl
    if (options.own_process_group) ::setpgid(0, 0);
    if (stdin_fd) ::dup2(stdin_fd.get(), STDIN_FILENO);
    if (options.stdout_to_output) ::dup2(output_write.get(), STDOUT_FILENO);
    if (capture_stderr) ::dup2(error_write.get(), STDERR_FILENO);
    int code = 70;
    try {
      code = body(output_write.get());
    } catch (...) {
      code = 70;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  // Both sides set the group, so that a signal sent right after fork reaches the group.
  if (options.own_process_group) ::setpgid(pid, pid);
  output_write.reset();
  error_write.reset();
  stdin_fd.reset();
  unique_fd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
  if (!pidfd) {
    const int e = errno;
    ::kill(options.own_process_group ? -pid : pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    errno = e;
    throw_errno("pidfd_open");
  }
  const auto send = [&](int sig) {
    if (options.own_process_group) {
      ::kill(-pid, sig);
    } else {
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0);
    }
  };

  child_result r;
  r.pid = pid;
  ::fcntl(output_read.get(), F_SETFL, O_NONBLOCK);
  if (capture_stderr) ::fcntl(error_read.get(), F_SETFL, O_NONBLOCK);
  // Reads what is there now; false once the pipe is closed.
  const auto drain = [&](int fd, bool is_output) {
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      const auto size = static_cast<std::size_t>(n);
      if (is_output) {
        r.output_bytes += size;
        if (r.output.size() < options.output_limit)
          r.output.append(chunk, std::min(size, options.output_limit - r.output.size()));
      } else {
        if (options.child_stderr == mode::capture_and_echo) [[maybe_unused]]
          auto w = ::write(STDERR_FILENO, chunk, size);
        r.stderr_tail.append(chunk, size);
        if (r.stderr_tail.size() > 2 * options.stderr_tail_bytes)
          r.stderr_tail.erase(0, r.stderr_tail.size() - options.stderr_tail_bytes);
      }
    }
  };

  bool output_open = true;
  bool error_open = capture_stderr;
  bool term_sent = false;
  clock::time_point term_at{};
  for (;;) {
    // Sleep until something happens, or until the next check of the timeout or memory.
    int slice = -1;
    if (options.memory_limit > 0) slice = 2;
    if (options.timeout.count() > 0 || term_sent) slice = slice < 0 ? 5 : std::min(slice, 5);
    pollfd fds[3] = {{pidfd.get(), POLLIN, 0},
                     {output_open ? output_read.get() : -1, POLLIN, 0},
                     {error_open ? error_read.get() : -1, POLLIN, 0}};
    if (::poll(fds, 3, slice) < 0 && errno != EINTR) {
      send(SIGKILL);  // never leave the child behind, even on a failing poll
      ::waitpid(pid, nullptr, 0);
      throw_errno("poll");
    }
    if (output_open && fds[1].revents != 0) output_open = drain(output_read.get(), true);
    if (error_open && fds[2].revents != 0) error_open = drain(error_read.get(), false);
    if ((fds[0].revents & POLLIN) != 0) {
      // The child is gone; take what it wrote. Its own children may still hold the pipes open,
      // so read only what is there.
      if (output_open) drain(output_read.get(), true);
      if (error_open) drain(error_read.get(), false);
      break;
    }
    const auto now = clock::now();
    if (options.timeout.count() > 0 && !term_sent && !r.out_of_memory &&
        now - start > options.timeout) {
      r.timed_out = true;
      term_sent = true;
      term_at = now;
      send(SIGTERM);
    }
    if (term_sent && now - term_at >= options.kill_grace) send(SIGKILL);
    if (options.memory_limit > 0 && !r.out_of_memory && !r.timed_out) {
      const std::size_t resident = detail::process::resident_bytes(pid);
      r.peak_resident_bytes = std::max(r.peak_resident_bytes, resident);
      if (resident > options.memory_limit) {
        r.out_of_memory = true;
        send(SIGKILL);
      }
    }
  }
  r.wall_seconds = std::chrono::duration<double>(clock::now() - start).count();

  // The child is a zombie now: its pid cannot be reused, so its /proc entry and its process
  // group are still its own. Read the counters, end what it left in its group, then reap.
  siginfo_t info{};
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info,
           WEXITED | WNOWAIT);
  r.io = read_io(pid);
  r.io_wait_seconds = read_io_wait(pid);
  if (options.own_process_group) ::kill(-pid, SIGKILL);
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exited = true;
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  r.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                  static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  r.peak_resident_bytes =
      std::max(r.peak_resident_bytes, static_cast<std::size_t>(usage.ru_maxrss) * 1024);
  if (r.stderr_tail.size() > options.stderr_tail_bytes)
    r.stderr_tail.erase(0, r.stderr_tail.size() - options.stderr_tail_bytes);
  return r;
}

child_result run_command(const std::vector<std::string>& argv, const child_options& options) {
  if (argv.empty()) throw std::invalid_argument("crew::run_command: empty argv");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // exec's errno travels back through a close-on-exec pipe: a successful exec closes it.
  unique_fd exec_read, exec_write;
  make_pipe(exec_read, exec_write);
  ::fcntl(exec_read.get(), F_SETFL, O_NONBLOCK);
  child_result r = run_child(
      [&](int) {
        ::execvp(args[0], args.data());
        const int e = errno;
        write_all(exec_write.get(), &e, sizeof e);
        return 127;
      },
      options);
  exec_write.reset();
  int e = 0;
  if (::read(exec_read.get(), &e, sizeof e) == static_cast<ssize_t>(sizeof e))
    throw std::system_error(e, std::generic_category(), "cannot run '" + argv[0] + "'");
  return r;
}

}  // namespace crew
