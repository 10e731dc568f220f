// lab/child.hpp — run a piece of a measurement in a sacrificial child process.
// A subject that may crash (a segfaulting task), leave threads behind (oneTBB's workers) or
// grow the address space (a 1 GiB dataset) runs in a fork()ed child; only the bytes it writes
// back reach the bench. Blocks until the child exits or the timeout passes (then SIGKILL).
// Call from a single-threaded process: the child inherits only the calling thread.
// A thin shape over crew::run_child (crew/child_process.hpp), the one "run this in a child".
#pragma once

#include <functional>
#include <string>

namespace crew::lab {

struct child_outcome {
  bool exited = false;  // exited normally (whatever the code)
  int exit_code = -1;
  int signal = 0;          // the signal that ended it, 0 if none
  bool timed_out = false;  // killed by run_in_child after `timeout_s`
  std::string output;      // what the child's body returned (or wrote before dying)
  bool ok() const noexcept { return exited && exit_code == 0 && !timed_out; }
};

/// Forks; the child runs `body(fd)` where `fd` is a pipe to the parent the body may write to
/// as it goes (so output survives a crash), then writes `body`'s return value and exits 0.
/// An exception in the child ends it with exit code 70; a failed write with 71.
child_outcome run_in_child(const std::function<std::string(int fd)>& body, double timeout_s);

/// Writes all of `text` to `fd`, retrying on EINTR/short writes; false on error.
bool write_all(int fd, const void* data, std::size_t size) noexcept;

/// Reads exactly `size` bytes; false on EOF or error.
bool read_all(int fd, void* data, std::size_t size) noexcept;

}  // namespace crew::lab
