// crew::process_group: one supervising thread per group owns every role's process. It runs a
// plan — a queue of "start role i" and "stop role i" steps, taken one at a time, each finished
// when its role is ready or reaped — and a poll loop over the roles' pidfds and status pipes, an
// eventfd that API calls ring, and the nearest deadline (ready_timeout, stop_timeout). Starts and
// stops in order, OTP's strategies and the graceful stop are all plans; API threads only set a
// flag and wait on the condition variable.
#include "crew/process_group.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

#include "core/exception_name.hpp"
#include "ipc/unique_fd.hpp"

namespace crew {
namespace {

using clock = std::chrono::steady_clock;
using detail::ipc::unique_fd;

constexpr std::size_t kFailuresKept = 5;
constexpr char kReady = 'R';
constexpr char kThrew = 'X';

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

std::string millis(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

// --- role_exit, group_error, role_context -------------------------------------------------------

bool role_exit::normal() const noexcept {
  return stopped ||
         (exited && exit_code == 0 && exception.empty() && start_error.empty() && !not_ready);
}

std::string role_exit::describe() const {
  std::ostringstream out;
  if (not_ready) {
    out << "did not say it was ready in time; killed";
  } else if (!start_error.empty()) {
    out << start_error;
  } else if (!exception.empty()) {
    out << "threw " << exception;
  } else if (signal != 0) {
    out << "killed by signal " << signal << " (" << ::strsignal(signal) << ")";
  } else if (exited) {
    out << "exited with code " << exit_code;
  } else {
    out << "ended (its status could not be read)";
  }
  if (stopped) out << (stop_forced ? " (stopped: ignored SIGTERM, killed)" : " (stopped)");
  return out.str();
}

group_error::group_error(std::string role, std::vector<std::string> failures,
                         const std::string& what)
    : std::runtime_error(what), role_(std::move(role)), failures_(std::move(failures)) {}

void role_context::ready() {
  if (ready_sent_.exchange(true)) return;
  write_all(status_fd_, &kReady, 1);
}

bool role_context::stop_requested() const noexcept {
  if (stop_fd_ < 0) return false;
  pollfd p{stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

int role_context::stop_fd() const noexcept {
  return stop_fd_;
}

// --- the group's state --------------------------------------------------------------------------

namespace {

struct role_def {
  std::string name;
  std::function<void(role_context&)> body;
  std::vector<std::string> argv;  // a command role when not empty
  role_options options;

  // Written by the supervising thread under the group's mutex.
  role_state state = role_state::idle;
  pid_t pid = 0;
  unique_fd pidfd;
  unique_fd status;  // read end: ready bytes, then what the function threw
  unique_fd stop;    // with handles_stop, write end: a byte asks the role to stop
  unique_fd exec;    // a command's exec errno, if the exec failed
  clock::time_point deadline = clock::time_point::max();
  bool not_ready = false;
  bool stop_forced = false;
  bool threw = false;  // kThrew came: the rest of the pipe is what it threw
  std::string exception;
  std::string start_error;
  unsigned starts = 0;
  std::string last_exit;
  std::deque<std::string> failures;
};

struct step {
  enum kind { start, stop } what;
  std::size_t role;
};

enum class phase { created, starting, running, stopping, ended };

}  // namespace

struct process_group::state {
  explicit state(group_options o) : options(std::move(o)) {}

  // A role's process holds a copy of this object, whose mutex may have been locked at the fork
  // and whose thread does not exist there: every public call checks it is in the group's own.
  void check_owner(const char* call) const {
    if (::getpid() != owner)
      throw std::logic_error(std::string{"crew::process_group: "} + call +
                             " called in a role's process; a role sees its group through its "
                             "role_context");
  }

  const pid_t owner = ::getpid();

  group_options options;
  mutable std::mutex mu;
  std::condition_variable changed;
  std::vector<role_def> roles;
  phase now = phase::created;
  bool stop_wanted = false;  // stop() asked; the thread takes it
  bool stopped_while_starting = false;
  std::optional<group_error> error;
  std::thread thread;
  std::thread::id thread_id;
  unique_fd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};

  // The supervising thread's own.
  std::deque<step> plan;
  bool head_issued = false;
  std::deque<clock::time_point> restarts;
  std::vector<role_exit> events;  // to hand to on_exit once the lock is released

  void ring() const {
    const std::uint64_t one = 1;
    write_all(wake.get(), &one, sizeof one);
  }

  void run() noexcept;
  void loop(std::unique_lock<std::mutex>& lock);
  bool advance();
  void launch(std::size_t i);
  // To its process group, and to the role itself by its pidfd (should it have left the group).
  void signal_group(const role_def& r, int sig) const {
    ::kill(-r.pid, sig);
    if (r.pidfd) ::syscall(SYS_pidfd_send_signal, r.pidfd.get(), sig, nullptr, 0);
  }
  void read_exec_error(role_def& r);
  void read_status(role_def& r);
  void ended(std::size_t i, role_exit e);
  void reaped(std::size_t i);
  void fail(std::size_t i, const std::string& why);
  void stop_all();
  void deliver_events(std::unique_lock<std::mutex>& lock);
};

// --- launching a role ---------------------------------------------------------------------------

void process_group::state::launch(std::size_t i) {
  role_def& r = roles[i];
  r.not_ready = false;
  r.stop_forced = false;
  r.threw = false;
  r.exception.clear();
  r.start_error.clear();
  ++r.starts;
  const auto cannot = [&](const char* call) {
    role_exit e;
    e.role = r.name;
    e.start_error = std::string{"could not be started: "} + call + ": " + std::strerror(errno);
    ended(i, std::move(e));
  };
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return cannot("pipe2");
  unique_fd status_read{fds[0]}, status_write{fds[1]};
  unique_fd stop_read, stop_write;
  if (r.options.handles_stop && r.argv.empty()) {
    // A socket, so that asking a role that has died is EPIPE, not SIGPIPE (MSG_NOSIGNAL).
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return cannot("socketpair");
    stop_read = unique_fd{fds[0]};
    stop_write = unique_fd{fds[1]};
  }
  unique_fd exec_read, exec_write;  // a command's exec errno; a successful exec closes it
  if (!r.argv.empty()) {
    if (::pipe2(fds, O_CLOEXEC) != 0) return cannot("pipe2");
    exec_read = unique_fd{fds[0]};
    exec_write = unique_fd{fds[1]};
  }
  std::vector<char*> args;
  for (auto& a : r.argv) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string ready_env = "CREW_READY_FD=" + std::to_string(status_write.get());

  // What this process buffered must not be written twice. Not fflush(nullptr): it would wait
  // for stdin's lock, held by any thread blocked reading it.
  std::fflush(stdout);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return cannot("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    ::setpgid(0, 0);
    for (auto& other : roles) {  // the other roles' descriptors are none of its business
      other.pidfd.reset();
      other.status.reset();
      other.stop.reset();
      other.exec.reset();
    }
    stop_write.reset();
    sigset_t all;
    ::sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    if (!r.argv.empty()) {
      ::fcntl(status_write.get(), F_SETFD, 0);  // the program inherits it
      ::putenv(const_cast<char*>(ready_env.c_str()));
      ::execvp(args[0], args.data());
      const int e = errno;
      write_all(exec_write.get(), &e, sizeof e);
      ::_exit(127);
    }
    role_context context{r.name, r.starts, status_write.get(), stop_read.get()};
    try {
      r.body(context);
    } catch (...) {
      std::string what = detail::current_exception_type_name();
      try {
        throw;
      } catch (const std::exception& ex) {
        what += std::string{": "} + ex.what();
      } catch (...) {
      }
      write_all(status_write.get(), &kThrew, 1);
      write_all(status_write.get(), what.data(), what.size());
      std::fflush(stdout);
      ::_exit(70);
    }
    std::fflush(stdout);
    ::_exit(0);
  }
  ::setpgid(pid, pid);  // both sides: a signal sent right after fork reaches the group
  status_write.reset();
  stop_read.reset();
  r.stop = std::move(stop_write);
  r.pid = pid;
  r.pidfd = unique_fd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
  if (!r.pidfd) {
    const int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    r.pid = 0;
    errno = e;
    return cannot("pidfd_open");
  }
  if (exec_read) {
    // A successful exec closes the pipe: wait for that, or for the errno of a failed one. A
    // process forked elsewhere meanwhile may hold the write end too, so the wait is bounded;
    // past it the pipe is read again when the role ends.
    exec_write.reset();
    r.exec = std::move(exec_read);
    pollfd p{r.exec.get(), POLLIN, 0};
    int got;
    do got = ::poll(&p, 1, 1000);
    while (got < 0 && errno == EINTR);
    read_exec_error(r);
    if (!r.start_error.empty()) {
      r.state = role_state::starting;
      return reaped(i);  // it exits (127) right after telling: its end is known now
    }
  }
  ::fcntl(status_read.get(), F_SETFL, O_NONBLOCK);
  r.status = std::move(status_read);
  if (r.options.await_ready) {
    r.state = role_state::starting;
    r.deadline = clock::now() + r.options.ready_timeout;
  } else {
    r.state = role_state::running;
    r.deadline = clock::time_point::max();
  }
}

// --- the plan -----------------------------------------------------------------------------------

// Takes the plan's steps as far as they go; true when the group is over (every role reaped
// and nothing left to do).
bool process_group::state::advance() {
  while (!plan.empty()) {
    const step s = plan.front();
    role_def& r = roles[s.role];
    if (s.what == step::start) {
      if (!head_issued) {
        if (r.state != role_state::idle) {
          plan.pop_front();
          continue;
        }
        head_issued = true;
        launch(s.role);  // may end it at once (and pop this step)
        continue;
      }
      if (r.state == role_state::running) {
        plan.pop_front();
        head_issued = false;
        continue;
      }
      return false;  // starting: waits for ready or its end
    }
    if (!head_issued) {
      if (r.state == role_state::idle) {
        plan.pop_front();
        continue;
      }
      head_issued = true;
      if (r.state != role_state::stopping) {
        r.state = role_state::stopping;
        r.deadline = clock::now() + r.options.stop_timeout;
        const char c = 's';
        if (!r.stop || ::send(r.stop.get(), &c, 1, MSG_NOSIGNAL) != 1) signal_group(r, SIGTERM);
      }
    }
    if (r.state != role_state::idle) return false;  // waits until it is reaped
    plan.pop_front();
    head_issued = false;
  }
  if (now == phase::starting) {
    now = phase::running;
    changed.notify_all();
  }
  return now == phase::stopping ||
         (now == phase::running && std::all_of(roles.begin(), roles.end(), [](const role_def& r) {
            return r.state == role_state::idle;
          }));
}

void process_group::state::stop_all() {
  plan.clear();
  head_issued = false;
  now = phase::stopping;
  for (std::size_t j = roles.size(); j-- > 0;) plan.push_back({step::stop, j});
}

void process_group::state::fail(std::size_t i, const std::string& why) {
  const role_def& r = roles[i];
  std::string what = "crew::process_group: role '" + r.name + "' " + why;
  if (!r.failures.empty()) {
    what += "; its last failures:";
    for (const auto& f : r.failures) what += " [" + f + "]";
  }
  error.emplace(r.name, std::vector<std::string>(r.failures.begin(), r.failures.end()), what);
  stop_all();
}

// A role's run is over (reaped, or never started): record it and decide what follows.
void process_group::state::ended(std::size_t i, role_exit e) {
  role_def& r = roles[i];
  // Never became ready (or never ran): if it is the role being started, its start failed.
  const bool never_ready = r.state == role_state::starting || r.state == role_state::idle;
  r.state = role_state::idle;
  r.pid = 0;
  r.pidfd.reset();
  r.status.reset();
  r.stop.reset();
  r.exec.reset();
  r.deadline = clock::time_point::max();
  const bool head =
      !plan.empty() && head_issued && plan.front().role == i && plan.front().what == step::start;
  if (head) {
    plan.pop_front();
    head_issued = false;
  }
  const bool normal = e.normal();
  r.last_exit = e.describe();
  if (!normal) {
    r.failures.push_back(r.last_exit);
    if (r.failures.size() > kFailuresKept) r.failures.pop_front();
  }
  const auto report = [&] { events.push_back(std::move(e)); };
  if (e.stopped || now == phase::stopping || now == phase::ended) return report();
  if (!normal && now == phase::starting && head && never_ready) {
    fail(i, "failed to start: " + r.last_exit);
    return report();
  }
  const role_restart type = r.options.restart;
  const bool restart =
      type == role_restart::permanent || (type == role_restart::transient && !normal);
  if (!restart) return report();
  const auto at = clock::now();
  restarts.push_back(at);
  while (!restarts.empty() && at - restarts.front() > options.restart_window) restarts.pop_front();
  if (restarts.size() > options.max_restarts) {
    fail(i, "ended " + std::to_string(restarts.size()) + " times within " +
                millis(options.restart_window) + " (max_restarts " +
                std::to_string(options.max_restarts) + "); the group stopped");
    return report();
  }
  e.restarting = true;
  const std::size_t n = roles.size();
  const auto restartable = [&](std::size_t j) {
    return roles[j].options.restart != role_restart::temporary;
  };
  switch (options.strategy) {
    case restart_strategy::one_for_one:
      plan.push_back({step::start, i});
      break;
    case restart_strategy::one_for_all:
      for (std::size_t j = n; j-- > 0;)
        if (j != i) plan.push_back({step::stop, j});
      for (std::size_t j = 0; j < n; ++j)
        if (j == i || restartable(j)) plan.push_back({step::start, j});
      break;
    case restart_strategy::rest_for_one:
      for (std::size_t j = n; j-- > i + 1;) plan.push_back({step::stop, j});
      for (std::size_t j = i; j < n; ++j)
        if (j == i || restartable(j)) plan.push_back({step::start, j});
      break;
  }
  report();
}

void process_group::state::read_exec_error(role_def& r) {
  if (!r.exec) return;
  ::fcntl(r.exec.get(), F_SETFL, O_NONBLOCK);
  int e = 0;
  ssize_t n;
  do n = ::read(r.exec.get(), &e, sizeof e);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return;  // neither closed nor written yet
  if (n == static_cast<ssize_t>(sizeof e))
    r.start_error = "cannot run '" + r.argv[0] + "': " + std::strerror(e);
  r.exec.reset();
}

void process_group::state::read_status(role_def& r) {
  if (!r.status) return;
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(r.status.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      r.status.reset();
      return;
    }
    if (n < 0) return;  // EAGAIN: nothing more now
    std::string_view got{chunk, static_cast<std::size_t>(n)};
    if (r.argv.empty()) {
      // A function writes kReady, then perhaps kThrew and what it threw.
      if (r.threw) {
        r.exception.append(got);
        continue;
      }
      while (!got.empty() && got.front() == kReady) got.remove_prefix(1);
      if (!got.empty() && got.front() == kThrew) {
        r.threw = true;
        r.exception.assign(got.substr(1));
      }
      if (r.state == role_state::starting) r.state = role_state::running;
    } else if (r.state == role_state::starting) {
      r.state = role_state::running;  // a command: any byte on CREW_READY_FD
    }
    if (r.state == role_state::running) r.deadline = clock::time_point::max();
  }
}

void process_group::state::reaped(std::size_t i) {
  role_def& r = roles[i];
  signal_group(r, SIGKILL);  // what it started goes with it; the zombie keeps the group's id
  read_status(r);
  read_exec_error(r);
  role_exit e;
  e.role = r.name;
  e.pid = r.pid;
  int status = 0;
  pid_t got;
  do got = ::waitpid(r.pid, &status, 0);
  while (got < 0 && errno == EINTR);
  if (got == r.pid) {
    e.exited = WIFEXITED(status);
    if (e.exited) e.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  }
  e.exception = r.exception;
  e.start_error = r.start_error;
  e.not_ready = r.not_ready;
  e.stopped = r.state == role_state::stopping;
  e.stop_forced = e.stopped && r.stop_forced;
  ended(i, std::move(e));
}

void process_group::state::deliver_events(std::unique_lock<std::mutex>& lock) {
  if (events.empty()) return;
  std::vector<role_exit> out;
  out.swap(events);
  if (!options.on_exit) return;
  lock.unlock();
  for (const auto& e : out) {
    try {
      options.on_exit(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "crew::process_group: on_exit threw: %s\n", ex.what());
    } catch (...) {
      std::fprintf(stderr, "crew::process_group: on_exit threw\n");
    }
  }
  lock.lock();
}

void process_group::state::loop(std::unique_lock<std::mutex>& lock) {
  std::vector<pollfd> fds;
  std::vector<std::size_t> role_of;  // fds[k] belongs to roles[role_of[k]] (k >= 1)
  for (;;) {
    const bool over = advance();
    deliver_events(lock);  // every end is reported before wait() returns
    if (over) {
      now = phase::ended;
      changed.notify_all();
      return;
    }

    fds.assign(1, pollfd{wake.get(), POLLIN, 0});
    role_of.assign(1, 0);
    auto deadline = clock::time_point::max();
    for (std::size_t i = 0; i < roles.size(); ++i) {
      const role_def& r = roles[i];
      if (r.state == role_state::idle) continue;
      fds.push_back({r.pidfd.get(), POLLIN, 0});
      role_of.push_back(i);
      if (r.status) {
        fds.push_back({r.status.get(), POLLIN, 0});
        role_of.push_back(i);
      }
      deadline = std::min(deadline, r.deadline);
    }
    int timeout = -1;
    if (deadline != clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
      timeout = static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
    }
    lock.unlock();
    const int ready = ::poll(fds.data(), fds.size(), timeout);
    lock.lock();
    if (ready < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "poll");

    if (fds[0].revents != 0) {
      std::uint64_t count;
      [[maybe_unused]] const ssize_t n = ::read(wake.get(), &count, sizeof count);
    }
    if (stop_wanted && now != phase::stopping && now != phase::ended) {
      if (now == phase::starting) stopped_while_starting = true;
      stop_all();
    }
    // Status bytes first: a role's last words arrive before its end is handled.
    for (std::size_t k = 1; k < fds.size(); ++k)
      if (fds[k].revents != 0 && fds[k].fd != roles[role_of[k]].pidfd.get())
        read_status(roles[role_of[k]]);
    for (std::size_t k = 1; k < fds.size(); ++k) {
      role_def& r = roles[role_of[k]];
      if (fds[k].revents != 0 && r.pidfd && fds[k].fd == r.pidfd.get()) reaped(role_of[k]);
    }
    const auto at = clock::now();
    for (auto& r : roles) {
      if (r.state == role_state::idle || at < r.deadline) continue;
      r.deadline = clock::time_point::max();
      if (r.state == role_state::starting) {
        r.not_ready = true;
      } else if (r.state == role_state::stopping) {
        r.stop_forced = true;
      }
      signal_group(r, SIGKILL);
    }
  }
}

void process_group::state::run() noexcept {
  std::unique_lock lock{mu};
  try {
    loop(lock);
  } catch (const std::exception& ex) {
    // Nothing is left behind: every role still running is killed and reaped.
    for (auto& r : roles) {
      if (r.state == role_state::idle) continue;
      signal_group(r, SIGKILL);
      ::waitpid(r.pid, nullptr, 0);
      r.state = role_state::idle;
      r.pid = 0;
    }
    if (!error)
      error.emplace(
          "", std::vector<std::string>{},
          std::string{"crew::process_group: its supervising thread failed: "} + ex.what());
    now = phase::ended;
    changed.notify_all();
  }
}

// --- the public face ----------------------------------------------------------------------------

process_group::process_group(group_options options)
    : state_(std::make_unique<state>(std::move(options))) {
  if (!state_->wake)
    throw std::system_error(errno, std::generic_category(), "crew::process_group: eventfd");
}

process_group::~process_group() {
  if (::getpid() != state_->owner) {
    // In a role's process (it called exit()): its copy has no thread to stop or join.
    (void)state_.release();
    return;
  }
  try {
    stop();
  } catch (...) {
  }
  if (state_->thread.joinable()) state_->thread.join();
}

namespace {

void check_new_role(const std::vector<role_def>& roles, const std::string& name,
                    const role_options& options) {
  if (name.empty()) throw std::invalid_argument("crew::process_group: a role needs a name");
  for (const auto& r : roles)
    if (r.name == name)
      throw std::invalid_argument("crew::process_group: two roles named '" + name + "'");
  if (options.await_ready && options.ready_timeout <= std::chrono::milliseconds::zero())
    throw std::invalid_argument("crew::process_group: role '" + name +
                                "' awaits ready with a ready_timeout that is not positive");
}

}  // namespace

process_group& process_group::add(std::string name, std::function<void(role_context&)> body,
                                  role_options options) {
  state_->check_owner("add()");
  if (!body)
    throw std::invalid_argument("crew::process_group: role '" + name + "' has no function");
  std::lock_guard lock{state_->mu};
  if (state_->now != phase::created)
    throw std::logic_error("crew::process_group: add() after start()");
  check_new_role(state_->roles, name, options);
  role_def r;
  r.name = std::move(name);
  r.body = std::move(body);
  r.options = options;
  state_->roles.push_back(std::move(r));
  return *this;
}

process_group& process_group::add_command(std::string name, std::vector<std::string> argv,
                                          role_options options) {
  state_->check_owner("add_command()");
  if (argv.empty() || argv[0].empty())
    throw std::invalid_argument("crew::process_group: role '" + name + "' has an empty command");
  std::lock_guard lock{state_->mu};
  if (state_->now != phase::created)
    throw std::logic_error("crew::process_group: add_command() after start()");
  check_new_role(state_->roles, name, options);
  role_def r;
  r.name = std::move(name);
  r.argv = std::move(argv);
  r.options = options;
  state_->roles.push_back(std::move(r));
  return *this;
}

void process_group::start() {
  state& s = *state_;
  s.check_owner("start()");
  std::unique_lock lock{s.mu};
  if (s.now != phase::created)
    throw std::logic_error("crew::process_group: start() called twice, or after stop()");
  s.now = phase::starting;
  for (std::size_t i = 0; i < s.roles.size(); ++i) s.plan.push_back({step::start, i});
  s.thread = std::thread([&s] { s.run(); });
  s.thread_id = s.thread.get_id();
  // A failed start returns once the roles it started are stopped again.
  s.changed.wait(lock, [&] { return s.now == phase::running || s.now == phase::ended; });
  if (s.error) throw *s.error;
  if (s.stopped_while_starting)
    throw group_error("", {}, "crew::process_group: stop() was called while the group started");
}

void process_group::stop() {
  state& s = *state_;
  s.check_owner("stop()");
  std::unique_lock lock{s.mu};
  if (s.now == phase::created) {
    s.now = phase::ended;
    s.changed.notify_all();
    return;
  }
  if (std::this_thread::get_id() == s.thread_id)
    throw std::logic_error(
        "crew::process_group: stop() called from on_exit, on the group's own thread");
  s.stop_wanted = true;
  s.ring();
  s.changed.wait(lock, [&] { return s.now == phase::ended; });
}

bool process_group::wait_for(std::chrono::milliseconds timeout) {
  state& s = *state_;
  s.check_owner("wait()");
  std::unique_lock lock{s.mu};
  if (s.now == phase::created) throw std::logic_error("crew::process_group: wait() before start()");
  if (std::this_thread::get_id() == s.thread_id)
    throw std::logic_error(
        "crew::process_group: wait() called from on_exit, on the group's own thread");
  if (!s.changed.wait_for(lock, timeout, [&] { return s.now == phase::ended; })) return false;
  if (s.error) throw *s.error;
  return true;
}

void process_group::wait() {
  while (!wait_for(std::chrono::hours{24})) {
  }
}

bool process_group::running() const {
  state_->check_owner("running()");
  std::lock_guard lock{state_->mu};
  return state_->now == phase::running;
}

std::vector<role_status> process_group::status() const {
  state_->check_owner("status()");
  std::lock_guard lock{state_->mu};
  std::vector<role_status> out;
  for (const auto& r : state_->roles)
    out.push_back({r.name, r.state, r.pid, r.starts, r.last_exit});
  return out;
}

pid_t process_group::pid(std::string_view role) const {
  state_->check_owner("pid()");
  std::lock_guard lock{state_->mu};
  for (const auto& r : state_->roles)
    if (r.name == role) return r.pid;
  throw std::invalid_argument("crew::process_group: no role named '" + std::string{role} + "'");
}

}  // namespace crew
