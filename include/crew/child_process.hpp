// crew/child_process.hpp — run a piece of code, or a command, in one supervised child process.
//
//   crew::child_result r = crew::run_child([](int out) { return compute_and_write(out); },
//                                          {.timeout = 5s, .memory_limit = 1 << 30});
//   crew::child_result c = crew::run_command({"./job", "input.dat"}, {.timeout = 60s});
//
// The primitive under crew::run_isolated (crew/isolated.hpp), for callers who want the raw facts
// rather than a typed result: how the child ended (exit code or signal, killed at its timeout or
// memory limit), what it wrote to its output pipe, the tail of its stderr, and what it cost —
// wall time, user+system CPU (with the children it waited for), peak resident memory and its
// I/O counters from /proc/<pid>/io. A child that crashes, hangs or blows up is reported here,
// never propagated: this process is not harmed. The child never outlives the call, nor this
// process (PR_SET_PDEATHSIG); with `own_process_group`, nothing it started outlives it either.
//
// Thread-safety: may be called from several threads at once (each call has its own pipes and
// child). Forking while other threads hold locks has the usual caveat: in the child, call only
// what is safe after fork() in a threaded program (see process_pool's start methods), or exec.
// Blocking: until the child has ended and been reaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace crew {

struct child_options {
  /// Zero: none. Past it the child (its group, with own_process_group) gets SIGTERM, then
  /// SIGKILL after `kill_grace`.
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds kill_grace{200};
  /// Resident bytes, checked every 2 ms; past it the child is killed (SIGKILL). Zero: none.
  std::size_t memory_limit = 0;
  /// The child leads a new process group: the timeout's signals go to the whole group, and
  /// whatever is still in the group when the child ends is killed.
  bool own_process_group = false;
  /// Empty: the child inherits this process's stdin. Otherwise a file opened read-only as its
  /// stdin ("/dev/null" for none).
  std::string stdin_path;
  /// The child's stdout is the output pipe (what run_command needs); otherwise stdout is
  /// inherited and only the fd given to the body reaches `output`.
  bool stdout_to_output = false;
  /// At most this many output bytes are kept in child_result::output; all are counted.
  std::size_t output_limit = std::numeric_limits<std::size_t>::max();
  enum class stderr_mode {
    inherit,           ///< the child writes to this process's stderr
    capture,           ///< kept (the last stderr_tail_bytes) in child_result::stderr_tail
    capture_and_echo,  ///< both: echoed to this process's stderr as it comes, and kept
  };
  stderr_mode child_stderr = stderr_mode::inherit;
  std::size_t stderr_tail_bytes = 16384;
};

/// /proc/<pid>/io of the child when it ended, including the children it waited for.
struct child_io {
  bool known = false;             ///< false when /proc/<pid>/io could not be read
  std::uint64_t read_chars = 0;   ///< rchar: bytes read by read()-like calls (pipes, cache too)
  std::uint64_t write_chars = 0;  ///< wchar
  std::uint64_t read_bytes = 0;   ///< read_bytes: fetched from storage
  std::uint64_t write_bytes = 0;  ///< write_bytes: sent to storage
  std::uint64_t read_calls = 0;   ///< syscr
  std::uint64_t write_calls = 0;  ///< syscw
};

struct child_result {
  pid_t pid = 0;
  bool exited = false;  ///< ended by _exit/exit (whatever the code)
  int exit_code = -1;
  int signal = 0;              ///< the signal that ended it, 0 if none
  bool timed_out = false;      ///< stopped at options.timeout
  bool out_of_memory = false;  ///< killed past options.memory_limit
  std::string output;          ///< what it wrote to the output pipe (up to output_limit)
  std::size_t output_bytes = 0;
  std::string stderr_tail;  ///< with stderr_mode::capture*
  double wall_seconds = 0;
  double cpu_seconds = 0;  ///< user + system, its own and its waited-for children's (wait4)
  std::size_t peak_resident_bytes = 0;  ///< ru_maxrss, or the largest RSS polled if larger
  child_io io;
  /// Time its main thread spent blocked on block I/O (delay accounting, /proc/<pid>/stat field
  /// 42); negative when the kernel does not keep it (sysctl kernel.task_delayacct=0).
  double io_wait_seconds = -1;
  bool ok() const noexcept { return exited && exit_code == 0 && !timed_out && !out_of_memory; }
};

/// Forks; the child runs `body(output_fd)` and exits with its return value (70 if it throws).
/// `output_fd` is a pipe to this process: bytes written to it survive a later crash. Throws
/// std::system_error only when the child cannot be started (pipe, fork, pidfd_open).
child_result run_child(const std::function<int(int output_fd)>& body,
                       const child_options& options = {});

/// Runs the program `argv[0]` (searched in PATH) with `argv` in a child, as run_child does.
/// Throws std::system_error with the exec's errno and the message "cannot run 'x': ..." when
/// the program cannot be started, and std::invalid_argument for an empty argv.
child_result run_command(const std::vector<std::string>& argv, const child_options& options = {});

}  // namespace crew
