#include "procfs.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace soak {
namespace {

std::string read_whole(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> numeric_entries(const char* dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir);
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    if (std::isdigit(static_cast<unsigned char>(e->d_name[0])) != 0) out.emplace_back(e->d_name);
  }
  closedir(d);
  return out;
}

}  // namespace

std::vector<process_entry> all_processes() {
  std::vector<process_entry> out;
  for (const std::string& name : numeric_entries("/proc")) {
    const std::string stat = read_whole("/proc/" + name + "/stat");
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) {
      continue;
    }
    process_entry p;
    p.pid = static_cast<pid_t>(std::atoi(name.c_str()));
    p.comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest{stat.substr(close + 2)};
    rest >> p.state >> p.ppid >> p.pgrp >> p.session;
    if (rest) out.push_back(p);
  }
  return out;
}

std::vector<process_entry> descendants_of_self(const std::vector<process_entry>& all) {
  std::multimap<pid_t, const process_entry*> children;
  for (const auto& p : all) children.emplace(p.ppid, &p);
  std::vector<process_entry> out;
  std::vector<pid_t> frontier{getpid()};
  while (!frontier.empty()) {
    const pid_t parent = frontier.back();
    frontier.pop_back();
    auto [first, last] = children.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      out.push_back(*it->second);
      frontier.push_back(it->second->pid);
    }
  }
  return out;
}

std::vector<process_entry> group_peers(const std::vector<process_entry>& all) {
  const pid_t self = getpid();
  const pid_t group = getpgrp();
  std::vector<process_entry> out;
  for (const auto& p : all) {
    if (p.pid != self && p.pgrp == group) out.push_back(p);
  }
  return out;
}

std::vector<process_entry> marked_processes(const std::vector<process_entry>& all,
                                            const std::string& token) {
  const std::string comm = ("cs-" + token).substr(0, 15);
  const std::string mark = "CREW_SOAK_MARK=" + token;
  std::vector<process_entry> out;
  for (const auto& p : all) {
    if (p.state == 'Z' || p.state == 'X') continue;
    bool marked = p.comm == comm;
    if (!marked) {
      const std::string env = read_whole("/proc/" + std::to_string(p.pid) + "/environ");
      marked = env.find(mark) != std::string::npos;
    }
    if (marked) out.push_back(p);
  }
  return out;
}

std::vector<std::string> open_descriptors() {
  const std::string own_dir = "/proc/" + std::to_string(getpid()) + "/fd";
  std::vector<std::string> out;
  for (const std::string& name : numeric_entries("/proc/self/fd")) {
    char target[PATH_MAX] = {};
    const std::string path = "/proc/self/fd/" + name;
    const ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    if (n < 0) continue;  // the descriptor opendir used, already closed
    const std::string what{target, static_cast<std::size_t>(n)};
    if (what == own_dir) continue;  // the directory stream that lists them
    out.push_back(name + " -> " + what);
  }
  return out;
}

std::vector<std::string> shared_mappings() {
  std::vector<std::string> out;
  std::istringstream maps{read_whole("/proc/self/maps")};
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields{line};
    std::string range;
    std::string perms;
    fields >> range >> perms;
    const bool shared = perms.size() == 4 && perms[3] == 's';
    if (shared || line.find("memfd:") != std::string::npos ||
        line.find("/dev/shm/") != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

std::set<std::string> shm_entries() {
  std::set<std::string> out;
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    // /dev/shm is the machine's: Open MPI's shared-memory transport (an MPI test running beside
    // the soak) names its segments so. crew itself never names shared memory (memfd only).
    if (name.starts_with("vader_segment.") || name.starts_with("sm_segment.")) continue;
    out.insert(name);
  }
  closedir(d);
  return out;
}

std::string describe(const process_entry& p) {
  std::ostringstream out;
  out << "pid " << p.pid << " (" << p.comm << ") state " << p.state << " ppid " << p.ppid
      << " pgrp " << p.pgrp << " sid " << p.session;
  return out.str();
}

}  // namespace soak
