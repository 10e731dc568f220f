// crew/process_group.hpp — asymmetric multiprocessing: named, long-lived roles, each in its own
// supervised process, restarted as an Erlang/OTP supervisor restarts its children.
//
//   crew::process_group group{{.strategy = crew::restart_strategy::one_for_one}};
//   auto jobs = crew::shared_queue<job>::create(1 << 20);      // made before start: inherited
//   group.add("requests", [&](crew::role_context& ctx) { listen(); ctx.ready(); serve(jobs); });
//   group.add("analytics", [&](crew::role_context& ctx) { ctx.ready(); analyse(); });
//   group.add_command("jobs", {"./background-jobs", "--queue", "q"});
//   group.start();          // in order; each is ready (or has failed) before the next starts
//   ...                     // a role that crashes is restarted; the others go on
//   group.stop();           // in reverse order: SIGTERM, then SIGKILL after its stop_timeout
//
// Roles: a function (run in a child forked from this process, so it inherits what was made
// before: shared queues, channels, shared arrays, locks, open files) or a command (exec'd).
// Each role leads its own process group; stopping it — or its end, however it comes — kills
// what is left in that group, so helpers it started go with it (a helper that calls setsid()
// leaves the group and is not followed). A role dies with this process (PR_SET_PDEATHSIG).
// A role may run its own threads (a crew::thread_pool inside the function, say).
//
// Readiness (s6's notification): with `await_ready`, a role is "starting" until it says it is
// ready — a function calls ctx.ready(); a command writes a byte to the descriptor named by the
// environment variable CREW_READY_FD — and start() waits for it up to `ready_timeout` before it
// starts the next role. Without `await_ready` a role is ready once forked (or exec'd).
//
// How a role ends, and what follows (OTP's restart types):
//   - normal: the function returned, or the command exited with 0;
//   - abnormal: another exit code, a signal (a crash), an exception out of the function (exit
//     code 70, its type and message kept), or no ready within ready_timeout (then it is killed).
//   permanent roles are always restarted, transient ones only after an abnormal end, temporary
//   ones never. Restart strategies: one_for_one restarts that role alone; one_for_all stops the
//   others (in reverse order) and restarts all in order; rest_for_one stops and restarts the
//   roles added after it. A role the group stopped is not a failure and is not restarted.
// Intensity: more than `max_restarts` restarts within `restart_window` (OTP's default: 1 in 5 s)
// stops the whole group, in reverse order; wait() then throws crew::group_error naming the role
// and its last failures. When no role is left running and none is to be restarted (temporary
// and transient roles that ended), the group has ended on its own: wait() returns.
// Stopping: SIGTERM to the role's process group; a function role with `handles_stop` is asked
// through ctx.stop_fd() instead and returns by itself. Either way SIGKILL follows at stop_timeout.
// Events (s6's finish step): group_options::on_exit learns each end — the role, its pid, how it
// ended, and whether it will be restarted. It runs on the group's supervising thread: keep it
// short; calling stop() or wait() from it throws std::logic_error (it would wait for itself).
//
// Thread-safety: every member function may be called from any thread, also concurrently;
// add() only before start(). Blocking: start() until every role is ready (or the start failed),
// stop() until every role is reaped, wait() until the group ends. The destructor calls stop().
// Errors: a duplicate or empty role name, an empty command, or a zero ready_timeout with
// await_ready throw std::invalid_argument; add() after start() and a second start() throw
// std::logic_error; a role that cannot start (fork fails, it dies or is not ready in time) makes
// start() stop the roles already started and throw crew::group_error.
// Inside a role's process the group object is a copy without its thread: calling its members
// there throws std::logic_error (a role sees its group through its role_context).
// Caveats: roles are forked from a process that runs threads (the group's own, and the
// caller's): in the function, as after any fork() in a threaded program, do not rely on locks
// another thread may have held. Nothing else in this process may reap the roles (waitpid(-1)).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace crew {

/// OTP's restart types.
enum class role_restart {
  permanent,  ///< always restarted
  transient,  ///< restarted after an abnormal end only
  temporary,  ///< never restarted
};

/// OTP's restart strategies: which roles restart when one must.
enum class restart_strategy { one_for_one, one_for_all, rest_for_one };

struct role_options {
  role_restart restart = role_restart::permanent;
  /// The role says when it is ready (ctx.ready(), or a byte on CREW_READY_FD); start() waits.
  bool await_ready = false;
  /// With await_ready: past it the role is killed and counts as an abnormal end.
  std::chrono::milliseconds ready_timeout{5000};
  /// At stop: SIGTERM to the role's process group, then SIGKILL once this has passed.
  std::chrono::milliseconds stop_timeout{5000};
  /// A function role stops by itself: at stop the group does not send SIGTERM but asks through
  /// ctx.stop_fd() (it turns readable) and ctx.stop_requested() (it turns true); the role
  /// returns when it has finished its work. SIGKILL still follows at stop_timeout.
  bool handles_stop = false;
};

/// How one run of a role ended.
struct role_exit {
  std::string role;
  pid_t pid = 0;
  bool exited = false;  ///< by exit / return (whatever the code)
  int exit_code = -1;
  int signal = 0;            ///< the signal that ended it, 0 if none
  bool not_ready = false;    ///< killed at its ready_timeout
  bool stopped = false;      ///< the group stopped it (a normal end)
  bool stop_forced = false;  ///< ... with SIGKILL, at its stop_timeout
  std::string exception;     ///< "type: message" of what the function threw, if it did
  /// Why it could not be started: "cannot run 'x': No such file or directory" (exec),
  /// "could not be started: fork: Resource temporarily unavailable", ...; empty if it started.
  std::string start_error;
  bool restarting = false;  ///< the group restarts it
  /// Ended normally: returned / exit code 0, or stopped by the group.
  bool normal() const noexcept;
  /// "exited with code 3", "killed by signal 11 (Segmentation fault)", "threw ...", ...
  std::string describe() const;
};

struct group_options {
  restart_strategy strategy = restart_strategy::one_for_one;
  /// Intensity: more than max_restarts restarts within restart_window stop the group.
  unsigned max_restarts = 1;
  std::chrono::milliseconds restart_window{5000};
  /// Called on the group's thread after each role's end (see role_exit).
  std::function<void(const role_exit&)> on_exit = nullptr;
};

enum class role_state { idle, starting, running, stopping };

struct role_status {
  std::string name;
  role_state state = role_state::idle;
  pid_t pid = 0;          ///< 0 when no process runs it
  unsigned starts = 0;    ///< how many times it was started
  std::string last_exit;  ///< role_exit::describe() of its last end, empty if none
};

/// The group stopped because a role could not start or failed too often.
class group_error : public std::runtime_error {
 public:
  group_error(std::string role, std::vector<std::string> failures, const std::string& what);
  /// The role that stopped the group.
  const std::string& role() const noexcept { return role_; }
  /// Its last failures (at most 5), oldest first, as role_exit::describe() words them.
  const std::vector<std::string>& failures() const noexcept { return failures_; }

 private:
  std::string role_;
  std::vector<std::string> failures_;
};

/// What a function role sees of its group, in its own process.
class role_context {
 public:
  std::string_view name() const noexcept { return name_; }
  /// 1 on the first start, 2 after the first restart, ...
  unsigned incarnation() const noexcept { return incarnation_; }
  /// Tells the group this role is ready (with await_ready, start() waits for it). Idempotent.
  void ready();
  /// With handles_stop: true once the group asked this role to stop (a poll of stop_fd()).
  bool stop_requested() const noexcept;
  /// With handles_stop: readable once the group asked this role to stop (to poll with the
  /// role's own descriptors); -1 without.
  int stop_fd() const noexcept;

 private:
  friend class process_group;
  role_context(std::string name, unsigned incarnation, int status_fd, int stop_fd)
      : name_(std::move(name)),
        incarnation_(incarnation),
        status_fd_(status_fd),
        stop_fd_(stop_fd) {}
  std::string name_;
  unsigned incarnation_;
  int status_fd_;
  int stop_fd_;
  std::atomic<bool> ready_sent_{false};
};

class process_group {
 public:
  explicit process_group(group_options options = {});
  ~process_group();
  process_group(const process_group&) = delete;
  process_group& operator=(const process_group&) = delete;

  /// A role that runs `body` in a forked child. Returns *this, to chain.
  process_group& add(std::string name, std::function<void(role_context&)> body,
                     role_options options = {});
  /// A role that runs the program argv[0] (searched in PATH) with `argv`.
  process_group& add_command(std::string name, std::vector<std::string> argv,
                             role_options options = {});

  /// Starts the roles in the order they were added (see the header comment).
  void start();
  /// Stops every role in reverse order and waits until all are reaped. Idempotent.
  void stop();
  /// Until the group has ended; throws crew::group_error when it ended by failure.
  void wait();
  /// wait() with a limit: false if the group is still running when it passes.
  bool wait_for(std::chrono::milliseconds timeout);

  /// True from a successful start() until the group ends.
  bool running() const;
  std::vector<role_status> status() const;
  /// The pid running `role` now, 0 if none; std::invalid_argument for an unknown role.
  pid_t pid(std::string_view role) const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace crew
