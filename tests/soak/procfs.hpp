// crew-soak: what this process holds, read from /proc — descriptors, shared mappings, /dev/shm
// entries and processes — so that a run can compare before and after each pool.
//
// Everything here reads /proc and /dev/shm only; nothing depends on crew. Not thread-safe in any
// interesting sense (each call reads a fresh snapshot); never blocks for long.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

namespace soak {

struct process_entry {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  char state = '?';
  std::string comm;
};

/// Every process visible in /proc (those that vanish while being read are skipped).
std::vector<process_entry> all_processes();

/// Processes whose ancestry includes this process (zombies included: a zombie child is one
/// nobody reaped).
std::vector<process_entry> descendants_of_self(const std::vector<process_entry>& all);

/// Processes other than this one in its process group. (Not its session: that holds the shell or
/// test runner that started the soak, and whatever else they run.)
std::vector<process_entry> group_peers(const std::vector<process_entry>& all);

/// Live (non-zombie) processes carrying `token`: named `cs-<token>` (comm) or with
/// CREW_SOAK_MARK=<token> in their environment.
std::vector<process_entry> marked_processes(const std::vector<process_entry>& all,
                                            const std::string& token);

/// Open descriptors of this process, each as "fd -> target".
std::vector<std::string> open_descriptors();

/// Shared mappings of this process (MAP_SHARED, memfd or /dev/shm), one line of maps each.
std::vector<std::string> shared_mappings();

/// Names in /dev/shm.
std::set<std::string> shm_entries();

std::string describe(const process_entry& p);

}  // namespace soak
