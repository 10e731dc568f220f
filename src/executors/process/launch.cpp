// Starting worker processes: fork, spawn, forkserver; and crew::init().
#include "executors/process/launch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "ipc/fd_passing.hpp"

extern char** environ;

namespace crew::detail::process {
namespace {

constexpr const char* worker_env = "CREW_WORKER";

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(),
                          std::string{"crew process_pool: "} + call);
}

struct init_state {
  bool done = false;
  std::vector<std::string> argv;
  // The forkserver: a process forked by init() before any thread exists.
  pid_t server_pid = -1;
  pid_t server_owner = -1;  // the process whose child the server is
  int server_socket = -1;
  std::mutex server_mu;
  std::map<pid_t, int> exit_status;  // reported by the server, not yet claimed
};

init_state& state() {
  static init_state s;
  return s;
}

int open_pidfd(pid_t pid) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw_errno("pidfd_open");
  return fd;
}

/// In a new worker, right after fork: die with the thread that forked it, and check that the
/// parent did not die before the death signal was armed.
void bind_to_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
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

// Requests: config bytes + SCM_RIGHTS {region, socket, stderr}. Replies: {kind, pid, status}.
struct server_request {
  worker_config config;
};
struct server_reply {
  int kind;  // 1 started, 2 exited, 3 failed to start
  pid_t pid;
  int status;
};

void send_reply(int socket, const server_reply& reply) {
  [[maybe_unused]] auto n = send(socket, &reply, sizeof reply, MSG_NOSIGNAL);
}

[[noreturn]] void forkserver_main(int socket) {
  signal(SIGINT, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int children = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  for (;;) {
    pollfd fds[2] = {{socket, POLLIN, 0}, {children, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(0);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      while (read(children, &info, sizeof info) > 0) {
      }
      int status = 0;
      pid_t pid = 0;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) send_reply(socket, {2, pid, status});
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
      send_reply(socket, {3, -1, EINVAL});
      continue;
    }
    const pid_t server = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      bind_to_parent(server);
      close(socket);
      close(children);
      sigprocmask(SIG_UNBLOCK, &mask, nullptr);
      dup2(passed[1], STDERR_FILENO);
      close(passed[1]);
      config.region_fd = passed[0];
      for (std::size_t t = 0; t < config.threads; ++t) config.socket_fds[t] = passed[2 + t];
      config.parent_pid = server;
      serve_mapped(config);
    }
    for (std::size_t i = 0; i < count; ++i) close(passed[i]);
    send_reply(socket, pid > 0 ? server_reply{1, pid, 0} : server_reply{3, -1, errno});
  }
}

void start_forkserver() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw_errno("socketpair");
  std::fflush(nullptr);  // the server and its workers must not repeat this process's output
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    bind_to_parent(parent);
    __fpurge(stdout);
    close(pair[0]);
    forkserver_main(pair[1]);
  }
  close(pair[1]);
  state().server_pid = pid;
  state().server_owner = parent;
  state().server_socket = pair[0];
}

/// A process forked from the one that ran crew::init() has no server of its own (the inherited
/// one is its parent's, and dies with it, not with us). Start one, from a thread that lives as
/// long as this process, since the server is bound to the thread that forks it.
void ensure_own_forkserver() {
  init_state& s = state();
  if (s.server_owner == getpid()) return;
  if (s.server_socket >= 0) close(s.server_socket);
  s.server_socket = -1;
  s.exit_status.clear();
  std::mutex started_mu;
  std::condition_variable started_cv;
  bool started = false;
  std::exception_ptr error;
  std::thread keeper{[&] {
    try {
      start_forkserver();
    } catch (...) {
      error = std::current_exception();
    }
    {
      // Notify under the lock: the waiter owns these and may return as soon as it can lock.
      std::lock_guard lock{started_mu};
      started = true;
      started_cv.notify_all();
    }
    for (;;) pause();
  }};
  keeper.detach();
  std::unique_lock lock{started_mu};
  started_cv.wait(lock, [&] { return started; });
  if (error) std::rethrow_exception(error);
}

/// Reads server replies until `want(reply)` says stop. Caller holds server_mu.
template <class Want>
bool read_replies(Want want, std::chrono::milliseconds timeout) {
  init_state& s = state();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{s.server_socket, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    server_reply reply{};
    if (recv(s.server_socket, &reply, sizeof reply, 0) != static_cast<ssize_t>(sizeof reply)) {
      return false;
    }
    if (reply.kind == 2) {
      s.exit_status[reply.pid] = reply.status;
      if (want(reply)) return true;
      continue;
    }
    if (want(reply)) return true;
  }
}

launched_worker launch_from_server(int stderr_write, const worker_config& config) {
  init_state& s = state();
  std::lock_guard lock{s.server_mu};
  ensure_own_forkserver();
  server_request request{config};
  int passed[2 + max_threads_per_process];
  passed[0] = config.region_fd;
  passed[1] = stderr_write;
  for (std::size_t t = 0; t < config.threads; ++t) passed[2 + t] = config.socket_fds[t];
  const std::size_t fd_bytes = (2 + config.threads) * sizeof(int);
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
    throw_errno("sendmsg to the forkserver");
  }
  server_reply started{};
  if (!read_replies(
          [&](const server_reply& r) {
            if (r.kind == 1 || r.kind == 3) {
              started = r;
              return true;
            }
            return false;
          },
          std::chrono::seconds{30})) {
    throw std::runtime_error("crew process_pool: the forkserver did not answer");
  }
  if (started.kind != 1) {
    errno = started.status;
    throw_errno("fork in the forkserver");
  }
  launched_worker out;
  out.pid = started.pid;
  out.pidfd.reset(open_pidfd(started.pid));
  return out;
}

}  // namespace

bool initialized() noexcept {
  return state().done;
}

void warn_if_threaded_fork() {
  static std::atomic<bool> warned{false};
  std::size_t threads = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator{"/proc/self/task", ec};
       !ec && it != std::filesystem::directory_iterator{}; it.increment(ec)) {
    ++threads;
  }
  if (threads <= 1 || warned.exchange(true)) return;
  std::fprintf(stderr,
               "crew: warning: process_pool forks its workers while this process runs %zu "
               "threads. A worker starts as a copy of the forking thread only: if another thread "
               "held a lock (in a library, the allocator of a non-glibc runtime, ...) at that "
               "moment, the worker may deadlock on it. If workers hang, use start_method::spawn "
               "or start_method::forkserver (with crew::init(argc, argv) at the top of main).\n",
               threads);
}

launched_worker launch_worker(start_method method, std::byte* region, worker_config config) {
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

  // Prepare everything exec needs before fork: the child of a threaded parent must not allocate.
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  std::vector<char*> argv;
  std::string exe;
  if (method == start_method::spawn) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (std::strncmp(*e, worker_env, std::strlen(worker_env)) == 0 &&
          (*e)[std::strlen(worker_env)] == '=') {
        continue;
      }
      env_strings.emplace_back(*e);
    }
    env_strings.push_back(std::string{worker_env} + '=' + encode_config(config));
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : state().argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    exe = "/proc/self/exe";
  }

  // What this process buffered for stdout must not be written a second time by the worker
  // when it exits: flush it now, and drop in the child whatever another thread buffered since.
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    bind_to_parent(parent);
    __fpurge(stdout);
    dup2(err_write.get(), STDERR_FILENO);
    if (method == start_method::spawn) {
      // Keep exactly the descriptors the worker needs across exec.
      fcntl(config.region_fd, F_SETFD, 0);
      for (std::size_t t = 0; t < config.threads; ++t) fcntl(config.socket_fds[t], F_SETFD, 0);
      execve(exe.c_str(), argv.data(), envp.data());
      std::perror("crew worker: execve");
      _exit(127);
    }
    run_worker(region, config);
  }
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
  init_state& s = state();
  std::lock_guard lock{s.server_mu};
  if (auto it = s.exit_status.find(pid); it != s.exit_status.end()) {
    const int status = it->second;
    s.exit_status.erase(it);
    return status;
  }
  int status = -1;
  read_replies(
      [&](const server_reply& r) {
        if (r.kind == 2 && r.pid == pid) {
          status = r.status;
          s.exit_status.erase(pid);
          return true;
        }
        return false;
      },
      std::chrono::seconds{5});
  return status;
}

}  // namespace crew::detail::process

namespace crew {

void init(int argc, char** argv) {
  auto& s = detail::process::state();
  if (const char* text = std::getenv(detail::process::worker_env)) {
    detail::process::worker_config config;
    if (!detail::process::decode_config(text, config)) {
      std::fprintf(stderr, "crew: malformed %s in the environment\n", detail::process::worker_env);
      std::_Exit(2);
    }
    unsetenv(detail::process::worker_env);
    detail::process::bind_to_parent(config.parent_pid);
    detail::process::serve_mapped(config);
  }
  if (s.done) return;
  s.argv.assign(argv, argv + argc);
  detail::process::start_forkserver();
  s.done = true;
}

}  // namespace crew
