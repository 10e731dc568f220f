// Test support: run code in a sacrificial child process, and count what a process holds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace crew::test {

struct child_status {
  bool exited = false;  ///< exited normally (exit_code is valid)
  int exit_code = -1;
  int signal = 0;          ///< the signal that ended it, 0 if none
  bool timed_out = false;  ///< killed by run_in_child because it overran
  std::string output;      ///< what it wrote to stdout and stderr
};

/// Runs `body` in a forked child; the child exits 0 when body returns, 1 when it throws (a gtest
/// failure inside the child also exits 1). Kills it with SIGKILL past `timeout`.
child_status run_in_child(const std::function<void()>& body,
                          std::chrono::milliseconds timeout = std::chrono::seconds{60});

/// Forks a child that runs `body` and then _exit(0)s (an exception, or a gtest assertion that
/// returns, does not stop the exit: the parent checks the status). For tests whose parent and
/// child talk through shared memory while both run.
pid_t fork_running(const std::function<void()>& body);

/// Waits for `pid` to end, up to `bound`; a child still running then is SIGKILLed, reaped and
/// reported as a test failure (-1 returned). Otherwise returns its waitpid status.
int wait_for_child(pid_t pid, std::chrono::milliseconds bound = std::chrono::seconds{60});

/// Forks a parent process that runs `make_pool(report)`: it starts a pool and calls
/// report(worker pids) with the pool alive (report never returns). Then SIGKILLs that parent and
/// returns the pids it reported, checked alive before the kill. Throws on a broken protocol.
std::vector<int> pids_of_a_killed_parent(
    const std::function<void(const std::function<void(const std::vector<int>&)>&)>& make_pool);

/// Waits up to `timeout` for every pid to be gone; returns the ones still alive.
std::vector<int> still_alive_after(const std::vector<int>& pids, std::chrono::milliseconds timeout);

/// Number of open file descriptors of this process.
int open_fd_count();
/// Number of shared mappings (MAP_SHARED: memfds, shared memory) in /proc/self/maps. Private
/// mappings are left out: the allocator keeps arenas and thread stacks mapped for reuse.
int shared_mapping_count();
/// Whether a process with this pid exists and is not a zombie.
bool process_alive(pid_t pid);

}  // namespace crew::test
