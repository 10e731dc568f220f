// experiments/common.hpp — small pieces several experiments use. Not thread-safe unless noted.
#pragma once

#include <sched.h>

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "lab/experiment.hpp"

namespace crew::lab {

/// Doubles to bytes and back, for samples measured in a child and sent through a pipe.
std::string pack_doubles(const std::vector<double>& v);
std::vector<double> unpack_doubles(const std::string& bytes);

/// Waits for `pid`, retrying on EINTR; returns the raw wait status.
int wait_for(pid_t pid) noexcept;

/// Maps `bytes` of anonymous shared memory (MAP_SHARED, visible across fork); throws on error.
void* map_shared(std::size_t bytes);
void unmap(void* p, std::size_t bytes) noexcept;

/// Maps `bytes` of private memory and writes every page so it is really resident.
unsigned char* map_touched(std::size_t bytes);

/// Pins the calling thread to CPU `cpu` (modulo the CPUs available); false if not possible.
bool pin_to_cpu(unsigned cpu) noexcept;

/// The two peers of a communication measurement on cores of their own, when the process may use
/// two: the measuring thread is pinned to the first (until this object goes), and the peer
/// (echo thread or child) calls place_peer() to take the second. Otherwise the scheduler's
/// placement (a new thread or child often starts on its parent's core) decides the comparison,
/// not the transport. With one core both run there, unpinned.
class peer_placement {
 public:
  peer_placement() noexcept;
  peer_placement(const peer_placement&) = delete;
  peer_placement& operator=(const peer_placement&) = delete;
  ~peer_placement();
  /// In the peer: pins it to the second core, if the measuring side took the first.
  void place_peer() const noexcept;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

/// Splits a series's samples (taken in a child) into warm-up and measured parts.
void file_samples(series& s, const std::vector<double>& all, int warmup);

/// "verdict" helpers: the ratio a / b of two series' medians, NaN when either has no data.
double median_ratio(const series* a, const series* b);

/// The path of a trivial program to exec (true), or empty.
std::string true_program();

}  // namespace crew::lab

namespace crew::lab {

/// Starts `workers` threads or forked processes that each run `body(id, go)`: the body does its
/// own setup, calls `go()` (which blocks until every member is ready and the clock starts), then
/// works until the shared work runs out. Returns the seconds from the start signal until every
/// member has finished, or NaN if a process member failed.
double timed_team(bool processes, unsigned workers,
                  const std::function<void(unsigned id, const std::function<void()>& go)>& body);

}  // namespace crew::lab
