// Starting worker processes: fork, spawn, forkserver; entering an exec'd copy of the binary;
// and crew::init().
#include "executors/process/launch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdio_ext.h>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "executors/process/startup.hpp"

extern char** environ;

namespace crew::detail::process {
namespace {

// What an exec'd copy of the binary is to become, and where (see entry_point):
//   CREW_WORKER=<load|init>:<encoded worker_config>
//   CREW_FORKSERVER=<load|init>:<socket fd>,<parent pid>
constexpr std::string_view worker_env = "CREW_WORKER";
constexpr std::string_view server_env = "CREW_FORKSERVER";

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(),
                          std::string{"crew process_pool: "} + call);
}

struct launch_state {
  bool init_called = false;
  std::vector<std::string> init_argv;
  // The forkserver of this process: a copy of the binary exec'd on first use. A process forked
  // from this one inherits these fields but not the server (server_owner tells).
  std::mutex server_mu;
  pid_t server_pid = -1;
  pid_t server_owner = -1;
  int server_socket = -1;
  std::map<pid_t, int> exit_status;  // reported by the server, not yet claimed
};

launch_state& state() {
  static launch_state s;
  return s;
}

/// A pidfd for `child`, a child of this process. When none can be had (no descriptor left), the
/// child is killed and reaped before the error is thrown: nobody could watch it.
int open_pidfd(pid_t child) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  if (fd >= 0) return fd;
  const int error = errno;
  kill(child, SIGKILL);
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  errno = error;
  throw_errno("pidfd_open");
}

/// In a new worker, right after fork: die with the thread that forked it, and check that the
/// parent did not die before the death signal was armed.
void bind_to_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
}

// --- what an exec'd child is given ----------------------------------------------------------

const char* entry_name() {
  return state().init_called ? "init" : "load";
}

/// This process's environment without crew's own variables, plus `name=value`.
std::vector<std::string> child_environment(std::string_view name, const std::string& value) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry{*e};
    bool ours = false;
    for (std::string_view var : {worker_env, server_env}) {
      if (entry.size() > var.size() && entry.starts_with(var) && entry[var.size()] == '=') {
        ours = true;
      }
    }
    if (!ours) out.emplace_back(entry);
  }
  out.push_back(std::string{name} + '=' + value);
  return out;
}

/// argv and envp for execve, prepared before fork: the child of a threaded parent must not
/// allocate between fork and exec.
struct exec_image {
  std::vector<std::string> env_strings;
  std::vector<std::string> arg_strings;
  std::vector<char*> envp;
  std::vector<char*> argv;

  exec_image(std::string_view var, const std::string& value)
      : env_strings(child_environment(var, value)) {
    const launch_state& s = state();
    arg_strings = s.init_called ? s.init_argv : startup().argv;
    if (arg_strings.empty()) arg_strings.emplace_back("/proc/self/exe");
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : arg_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
  }

  /// Starts the image with posix_spawn: glibc's clones the calling thread with CLONE_VM |
  /// CLONE_VFORK, so, unlike fork, the cost does not grow with this process's memory, and the
  /// child runs nothing of this process before exec. `keep` stay open across exec; `stderr_fd`
  /// (if not -1) becomes the child's stderr; `own_group` makes it lead a process group.
  pid_t spawn(const char* what, std::initializer_list<std::span<const int>> keep, int stderr_fd,
              bool own_group) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    // dup2 of a descriptor onto itself clears its close-on-exec flag (glibc 2.29 and later).
    for (const std::span<const int> fds : keep) {
      for (const int fd : fds) posix_spawn_file_actions_adddup2(&actions, fd, fd);
    }
    if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    short flags = POSIX_SPAWN_SETSIGMASK;
    if (own_group) {
      flags |= POSIX_SPAWN_SETPGROUP;
      posix_spawnattr_setpgroup(&attributes, 0);
    }
    posix_spawnattr_setflags(&attributes, flags);
    pid_t pid = -1;
    const int error =
        posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      errno = error;
      throw_errno(what);
    }
    return pid;
  }
};

void require_exec_entry(start_method method) {
  if (initialized()) return;
  throw std::logic_error(
      std::string{"crew::process_pool: start_method::"} +
      (method == start_method::spawn ? "spawn" : "forkserver") +
      " cannot start workers before main() here: crew is not linked into the executable itself "
      "(it is a shared library, or linked into one). Call crew::init(argc, argv) at the top of "
      "main(), or link crew statically into the program");
}

std::string encode_config(const worker_config& c) {
  std::string out = std::to_string(c.region_fd) + ',' + std::to_string(c.region_bytes) + ',' +
                    std::to_string(c.channel_bytes) + ',' + std::to_string(c.slot_count) + ',' +
                    std::to_string(c.slot) + ',' + std::to_string(c.initializer_id) + ',' +
                    std::to_string(c.max_tasks) + ',' + std::to_string(c.parent_pid) + ',' +
                    std::to_string(c.threads);
  for (std::size_t t = 0; t < c.threads; ++t) out += ',' + std::to_string(c.socket_fds[t]);
  return out;
}

bool decode_config(const char* text, worker_config& c) {
  std::vector<std::uint64_t> fields;
  const char* p = text;
  const char* end = text + std::strlen(text);
  while (p != end) {
    std::uint64_t value = 0;
    auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc{}) return false;
    fields.push_back(value);
    p = next;
    if (p != end) {
      if (*p != ',') return false;
      ++p;
    }
  }
  if (fields.size() < 9) return false;
  c.region_fd = static_cast<int>(fields[0]);
  c.region_bytes = fields[1];
  c.channel_bytes = fields[2];
  c.slot_count = fields[3];
  c.slot = fields[4];
  c.initializer_id = fields[5];
  c.max_tasks = fields[6];
  c.parent_pid = static_cast<int>(fields[7]);
  c.threads = fields[8];
  if (c.threads == 0 || c.threads > max_threads_per_process || fields.size() != 9 + c.threads) {
    return false;
  }
  for (std::size_t t = 0; t < c.threads; ++t) c.socket_fds[t] = static_cast<int>(fields[9 + t]);
  return true;
}

[[noreturn]] void serve_mapped(const worker_config& config) {
  void* region =
      mmap(nullptr, config.region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, config.region_fd, 0);
  if (region == MAP_FAILED) {
    std::perror("crew worker: mmap");
    _exit(76);
  }
  close(config.region_fd);
  run_worker(static_cast<std::byte*>(region), config);
}

// --- forkserver --------------------------------------------------------------------------
//
// A copy of this binary, exec'd on first use (so it starts clean, one thread, whatever this
// process runs), that forks workers on request. Talks over a SOCK_SEQPACKET pair.
// Requests: config bytes + SCM_RIGHTS {region, stderr, one socket per thread}.
// Replies: {kind, pid, status}. It exits when this process does (a pidfd on it) or closes the
// socket; its workers are bound to it with PR_SET_PDEATHSIG, so they go with it.

struct server_request {
  worker_config config;
};
enum reply_kind : int { started = 1, exited = 2, failed = 3, ready = 4 };
struct server_reply {
  int kind;
  pid_t pid;
  int status;  // exited: the wait status; failed: errno
};

void send_reply(int socket, const server_reply& reply) {
  [[maybe_unused]] auto n = send(socket, &reply, sizeof reply, MSG_NOSIGNAL);
}

[[noreturn]] void forkserver_main(int socket, int parent_pidfd) {
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int children = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  send_reply(socket, {ready, getpid(), 0});
  for (;;) {
    pollfd fds[3] = {{socket, POLLIN, 0}, {children, POLLIN, 0}, {parent_pidfd, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(0);
    }
    if ((fds[2].revents & POLLIN) != 0) _exit(0);  // the parent is gone
    if ((fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      while (read(children, &info, sizeof info) > 0) {
      }
      int status = 0;
      pid_t pid = 0;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) send_reply(socket, {exited, pid, status});
    }
    if ((fds[0].revents & (POLLHUP | POLLERR)) != 0 && (fds[0].revents & POLLIN) == 0) _exit(0);
    if ((fds[0].revents & POLLIN) == 0) continue;

    // Descriptors: the region, the worker's stderr, then one socket per thread.
    server_request request{};
    int passed[2 + max_threads_per_process];
    iovec io{&request, sizeof request};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof passed)];
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (got <= 0) _exit(0);  // the parent is gone
    cmsghdr* cm = CMSG_FIRSTHDR(&message);
    std::size_t count = 0;
    if (cm != nullptr && cm->cmsg_type == SCM_RIGHTS) {
      count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      std::memcpy(passed, CMSG_DATA(cm), count * sizeof(int));
    }
    worker_config config = request.config;
    if (got != sizeof request || config.threads == 0 || config.threads > max_threads_per_process ||
        count != 2 + config.threads) {
      for (std::size_t i = 0; i < count; ++i) close(passed[i]);
      send_reply(socket, {failed, -1, EINVAL});
      continue;
    }
    const pid_t server = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      bind_to_parent(server);
      setpgid(0, 0);
      close(socket);
      close(children);
      close(parent_pidfd);
      sigprocmask(SIG_UNBLOCK, &mask, nullptr);
      signal(SIGPIPE, SIG_DFL);
      dup2(passed[1], STDERR_FILENO);
      close(passed[1]);
      config.region_fd = passed[0];
      for (std::size_t t = 0; t < config.threads; ++t) config.socket_fds[t] = passed[2 + t];
      config.parent_pid = server;
      serve_mapped(config);
    }
    const int fork_error = errno;
    if (pid > 0) setpgid(pid, pid);  // as the child does: whichever runs first
    for (std::size_t i = 0; i < count; ++i) close(passed[i]);
    send_reply(socket,
               pid > 0 ? server_reply{started, pid, 0} : server_reply{failed, -1, fork_error});
  }
}

enum class read_result { done, timed_out, closed };

/// Reads server replies until `want(reply)` says stop. Caller holds server_mu.
template <class Want>
read_result read_replies(Want want, std::chrono::milliseconds timeout) {
  launch_state& s = state();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return read_result::timed_out;
    pollfd p{s.server_socket, POLLIN, 0};
    const int ready_count = poll(&p, 1, static_cast<int>(left.count()));
    if (ready_count < 0 && errno != EINTR) return read_result::closed;
    if (ready_count <= 0) continue;
    server_reply reply{};
    if (recv(s.server_socket, &reply, sizeof reply, 0) != static_cast<ssize_t>(sizeof reply)) {
      return read_result::closed;
    }
    if (reply.kind == exited) s.exit_status[reply.pid] = reply.status;
    if (want(reply)) return read_result::done;
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string{"signal "} + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

/// The server is gone (its socket closed): forget it, reap it, and let the next launch start
/// another. Its workers died with it. Caller holds server_mu.
void forget_server_locked() {
  launch_state& s = state();
  if (s.server_socket >= 0) close(s.server_socket);
  s.server_socket = -1;
  if (s.server_owner == getpid() && s.server_pid > 0) waitpid(s.server_pid, nullptr, 0);
  s.server_pid = -1;
  s.server_owner = -1;
  s.exit_status.clear();
}

/// Starts this process's forkserver: fork + exec of the binary. The fork is followed by exec at
/// once, so it is safe from a threaded process. Caller holds server_mu.
void start_server_locked() {
  launch_state& s = state();
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw_errno("socketpair");
  ipc::unique_fd mine{pair[0]};
  ipc::unique_fd theirs{pair[1]};
  const pid_t parent = getpid();
  exec_image image{server_env, std::string{entry_name()} + ':' + std::to_string(theirs.get()) +
                                   ',' + std::to_string(parent)};
  const int keep[] = {theirs.get()};
  const pid_t pid = image.spawn("posix_spawn of the forkserver", {keep}, -1, false);
  theirs.reset();
  s.server_pid = pid;
  s.server_owner = parent;
  s.server_socket = mine.release();
  // The server says it is ready once the binary's static initializers ran. Generous: a loaded
  // machine, a sanitizer build, heavy static initializers.
  server_reply hello{};
  const read_result got = read_replies(
      [&](const server_reply& r) {
        hello = r;
        return r.kind == ready;
      },
      std::chrono::seconds{60});
  if (got == read_result::done) return;
  if (got == read_result::timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(s.server_socket);
  s.server_socket = -1;
  s.server_pid = -1;
  s.server_owner = -1;
  throw std::runtime_error(
      got == read_result::timed_out
          ? std::string{"crew process_pool: the forkserver did not start within 60 s"}
          : "crew process_pool: the forkserver ended before it was ready (" +
                describe_status(status) + ")");
}

/// Caller holds server_mu.
void ensure_server_locked() {
  launch_state& s = state();
  if (s.server_owner != getpid()) {
    // Inherited from the process this one was forked from: that server is not ours.
    if (s.server_socket >= 0) close(s.server_socket);
    s.server_socket = -1;
    s.server_pid = -1;
    s.server_owner = -1;
    s.exit_status.clear();
  }
  if (s.server_socket < 0) start_server_locked();
}

launched_worker launch_from_server(int stderr_write, const worker_config& config) {
  launch_state& s = state();
  std::lock_guard lock{s.server_mu};
  server_request request{config};
  int passed[2 + max_threads_per_process];
  passed[0] = config.region_fd;
  passed[1] = stderr_write;
  for (std::size_t t = 0; t < config.threads; ++t) passed[2 + t] = config.socket_fds[t];
  const std::size_t fd_bytes = (2 + config.threads) * sizeof(int);
  // A server that died (killed, say) is replaced once; a second loss in a row is an error.
  for (int attempt = 0;; ++attempt) {
    ensure_server_locked();
    iovec io{&request, sizeof request};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof passed)] = {};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(fd_bytes);
    cmsghdr* cm = CMSG_FIRSTHDR(&message);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(fd_bytes);
    std::memcpy(CMSG_DATA(cm), passed, fd_bytes);
    if (sendmsg(s.server_socket, &message, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof request)) {
      const int error = errno;
      if (error != EPIPE && error != ECONNRESET && error != ENOTCONN) {
        throw_errno("sendmsg to the forkserver");
      }
      forget_server_locked();
      if (attempt == 0) continue;
      errno = error;
      throw_errno("sendmsg to the forkserver");
    }
    server_reply answer{};
    const read_result got = read_replies(
        [&](const server_reply& r) {
          answer = r;
          return r.kind == started || r.kind == failed;
        },
        std::chrono::seconds{30});
    if (got == read_result::timed_out) {
      throw std::runtime_error("crew process_pool: the forkserver did not answer within 30 s");
    }
    if (got == read_result::closed) {
      forget_server_locked();
      if (attempt == 0) continue;
      throw std::runtime_error("crew process_pool: the forkserver ended while starting a worker");
    }
    if (answer.kind != started) {
      errno = answer.status;
      throw_errno("fork in the forkserver");
    }
    launched_worker out;
    out.pid = answer.pid;
    // Its status, which the server sends once it has reaped it.
    const auto exit_status = [&s](pid_t pid) {
      int status = -1;
      if (auto it = s.exit_status.find(pid); it != s.exit_status.end()) {
        status = it->second;
        s.exit_status.erase(it);
      } else {
        (void)read_replies(
            [&](const server_reply& r) {
              if (r.kind != exited || r.pid != pid) return false;
              status = r.status;
              s.exit_status.erase(pid);
              return true;
            },
            std::chrono::seconds{5});
      }
      return status;
    };
    const int fd = static_cast<int>(syscall(SYS_pidfd_open, answer.pid, 0));
    if (fd < 0 && errno == ESRCH) {
      // The worker ended (and the server reaped it) before we could watch it: an initializer
      // that exits at once, say. Its status is on its way from the server; say what it was.
      const int status = exit_status(answer.pid);
      std::string how = "ended";
      if (status >= 0 && WIFEXITED(status)) {
        how = "exited with code " + std::to_string(WEXITSTATUS(status));
      } else if (status >= 0 && WIFSIGNALED(status)) {
        how = "was killed by signal " + std::to_string(WTERMSIG(status));
      }
      throw worker_ended_at_start("worker " + std::to_string(answer.pid) + " " + how +
                                  " as soon as it started");
    }
    if (fd < 0) {
      // No descriptor to watch it with: nobody could, so it goes (the server reaps it).
      const int error = errno;
      kill(answer.pid, SIGKILL);
      (void)exit_status(answer.pid);
      errno = error;
      throw_errno("pidfd_open");
    }
    out.pidfd.reset(fd);
    return out;
  }
}

// --- the warning about forking a threaded process ----------------------------------------

std::atomic<std::size_t> service_threads{0};
thread_local bool is_service_thread = false;
std::atomic<std::uint64_t> threaded_forks{0};

// At most one line per this interval after the first warning: a pool restarting workers in a
// loop must not flood stderr.
constexpr auto warning_interval = std::chrono::seconds{10};

std::size_t threads_in_process() {
  std::ifstream status{"/proc/self/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("Threads:")) {
      std::size_t n = 0;
      const char* p = line.data() + 8;
      while (*p == ' ' || *p == '\t') ++p;
      std::from_chars(p, line.data() + line.size(), n);
      return n;
    }
  }
  return 1;
}

void warn_threaded_fork(std::size_t hazard) {
  threaded_forks.fetch_add(1, std::memory_order_relaxed);
  static std::mutex mu;
  static bool warned = false;
  static std::chrono::steady_clock::time_point last;
  static std::uint64_t since_last = 0;
  std::lock_guard lock{mu};
  const auto now = std::chrono::steady_clock::now();
  if (!warned) {
    warned = true;
    last = now;
    std::fprintf(stderr,
                 "crew: warning: process_pool forks a worker while %zu other thread%s of this "
                 "process run%s. A forked worker starts as a copy of the forking thread alone: if "
                 "another thread held a lock at that moment (a mutex of the program or of a "
                 "library), the worker may deadlock on it. start_method::forkserver and "
                 "start_method::spawn do not fork this process. Later forks made while other "
                 "threads run are counted here, one line every %lld s at most.\n",
                 hazard, hazard == 1 ? "" : "s", hazard == 1 ? "s" : "",
                 static_cast<long long>(warning_interval.count()));
    return;
  }
  ++since_last;
  if (now - last < warning_interval) return;
  std::fprintf(stderr,
               "crew: warning: %llu more process_pool worker%s forked while other threads ran "
               "(%zu now); see the first warning\n",
               static_cast<unsigned long long>(since_last), since_last == 1 ? " was" : "s were",
               hazard);
  since_last = 0;
  last = now;
}

}  // namespace

bool initialized() noexcept {
  return state().init_called || startup().entry_in_executable;
}

void warn_if_threaded_fork() {}

std::thread start_service_thread(std::function<void()> body) {
  service_threads.fetch_add(1, std::memory_order_relaxed);
  try {
    return std::thread{[body = std::move(body)] {
      is_service_thread = true;
      struct leave {
        ~leave() { service_threads.fetch_sub(1, std::memory_order_relaxed); }
      } on_exit;
      body();
    }};
  } catch (...) {
    service_threads.fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
}

std::size_t fork_hazard_threads() {
  const std::size_t total = threads_in_process();
  // A service thread counted before it exists (just created) makes this an undercount, never a
  // false alarm; one counted after its body returned, while it still exits, the other way.
  std::size_t others = service_threads.load(std::memory_order_relaxed);
  if (is_service_thread && others > 0) --others;
  const std::size_t not_hazard = 1 + others;  // the caller, and crew's service threads
  return total > not_hazard ? total - not_hazard : 0;
}

std::uint64_t threaded_fork_count() noexcept {
  return threaded_forks.load(std::memory_order_relaxed);
}

launched_worker launch_worker(start_method method, std::byte* region, worker_config config) {
  if (method != start_method::fork) require_exec_entry(method);
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) throw_errno("pipe2");
  ipc::unique_fd err_read{err[0]};
  ipc::unique_fd err_write{err[1]};
  if (fcntl(err_read.get(), F_SETFL, O_NONBLOCK) != 0) throw_errno("fcntl");

  if (method == start_method::forkserver) {
    launched_worker out = launch_from_server(err_write.get(), config);
    out.stderr_read = std::move(err_read);
    return out;
  }

  if (method == start_method::spawn) {
    exec_image image{worker_env, std::string{entry_name()} + ':' + encode_config(config)};
    const int region_fd[] = {config.region_fd};
    const pid_t pid =
        image.spawn("posix_spawn of a worker",
                    {region_fd, std::span<const int>{config.socket_fds, config.threads}},
                    err_write.get(), true);
    // The worker arms its death signal and checks its parent when it starts (enter_child).
    launched_worker out;
    out.pid = pid;
    out.pidfd.reset(open_pidfd(pid));
    out.stderr_read = std::move(err_read);
    return out;
  }

  if (const std::size_t hazard = fork_hazard_threads(); hazard > 0) warn_threaded_fork(hazard);
  // What this process buffered for stdout must not be written a second time by the worker
  // when it exits: flush it now, and drop in the child whatever another thread buffered since.
  std::fflush(nullptr);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    bind_to_parent(parent);
    setpgid(0, 0);  // each worker leads its own process group: kills reach what it starts
    dup2(err_write.get(), STDERR_FILENO);
    __fpurge(stdout);
    run_worker(region, config);
  }
  // As the child does, whichever runs first.
  setpgid(pid, pid);
  launched_worker out;
  out.pid = pid;
  out.pidfd.reset(open_pidfd(pid));
  out.stderr_read = std::move(err_read);
  return out;
}

int reap_worker(start_method method, pid_t pid, int pidfd) {
  if (method != start_method::forkserver) {
    siginfo_t info{};
    if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) != 0) {
      return -1;
    }
    if (info.si_code == CLD_EXITED) return W_EXITCODE(info.si_status, 0);
    return info.si_status & 0x7f;  // killed or dumped: a raw status with WTERMSIG = the signal
  }
  launch_state& s = state();
  std::lock_guard lock{s.server_mu};
  if (auto it = s.exit_status.find(pid); it != s.exit_status.end()) {
    const int status = it->second;
    s.exit_status.erase(it);
    return status;
  }
  if (s.server_owner != getpid() || s.server_socket < 0) return -1;
  int status = -1;
  const read_result got = read_replies(
      [&](const server_reply& r) {
        if (r.kind == exited && r.pid == pid) {
          status = r.status;
          s.exit_status.erase(pid);
          return true;
        }
        return false;
      },
      std::chrono::seconds{5});
  if (got == read_result::closed) forget_server_locked();
  return status;
}

// --- entering an exec'd child ------------------------------------------------------------

namespace {

/// The value of crew's variable `name` if it asks for entry at `at`, without the prefix.
const char* requested(std::string_view name, entry_point at) {
  const char* value = std::getenv(std::string{name}.c_str());
  if (value == nullptr) return nullptr;
  const std::string_view text{value};
  // Entry asked at load is also taken at init (never reached when the entry at load works).
  if (text.starts_with("load:")) return value + 5;
  if (text.starts_with("init:")) return at == entry_point::init ? value + 5 : nullptr;
  return at == entry_point::init ? value : nullptr;  // malformed: reported by enter_child
}

[[noreturn]] void malformed(std::string_view name) {
  std::fprintf(stderr, "crew: malformed %.*s in the environment\n", static_cast<int>(name.size()),
               name.data());
  std::_Exit(2);
}

}  // namespace

bool child_requested(entry_point at) noexcept {
  return requested(worker_env, at) != nullptr || requested(server_env, at) != nullptr;
}

void enter_child(entry_point at) {
  // Output buffered by static initializers is the parent's too, printed there already.
  if (const char* text = requested(worker_env, at)) {
    worker_config config;
    if (!decode_config(text, config)) malformed(worker_env);
    unsetenv(std::string{worker_env}.c_str());
    __fpurge(stdout);
    bind_to_parent(config.parent_pid);
    serve_mapped(config);
  }
  if (const char* text = requested(server_env, at)) {
    int socket = -1;
    pid_t parent = 0;
    const char* end = text + std::strlen(text);
    auto [p, ec] = std::from_chars(text, end, socket);
    if (ec != std::errc{} || p == end || *p != ',') malformed(server_env);
    auto [q, ec2] = std::from_chars(p + 1, end, parent);
    if (ec2 != std::errc{} || q != end || socket < 0 || parent <= 0) malformed(server_env);
    unsetenv(std::string{server_env}.c_str());
    __fpurge(stdout);
    // Watch the parent process (not a thread of it): opened, then checked, so that a parent
    // that died before the open (its pid reused) is caught by getppid.
    const int parent_pidfd = static_cast<int>(syscall(SYS_pidfd_open, parent, 0));
    if (parent_pidfd < 0 || getppid() != parent) _exit(0);
    fcntl(socket, F_SETFD, FD_CLOEXEC);
    forkserver_main(socket, parent_pidfd);
  }
}

}  // namespace crew::detail::process

namespace crew {

void init(int argc, char** argv) {
  detail::process::enter_child(detail::process::entry_point::init);
  auto& s = detail::process::state();
  if (s.init_called) return;
  s.init_argv.assign(argv, argv + argc);
  s.init_called = true;
}

}  // namespace crew
