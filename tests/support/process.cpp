#include "support/process.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace crew::test {

child_status run_in_child(const std::function<void()>& body, std::chrono::milliseconds timeout) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(out[0]);
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    close(out[1]);
    int code = 0;
    try {
      body();
      if (::testing::Test::HasFailure()) code = 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child threw: %s\n", e.what());
      code = 1;
    } catch (...) {
      code = 1;
    }
    std::fflush(nullptr);
    _exit(code);
  }
  close(out[1]);
  child_status status;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      status.timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    if (ready > 0) {
      const ssize_t n = read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;  // EOF: the child (and anything it forked holding the pipe) is done
      status.output.append(buffer, static_cast<std::size_t>(n));
    }
  }
  close(out[0]);
  int raw = 0;
  while (waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(raw)) {
    status.exited = true;
    status.exit_code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    status.signal = WTERMSIG(raw);
  }
  return status;
}

std::vector<int> pids_of_a_killed_parent(
    const std::function<void(const std::function<void(const std::vector<int>&)>&)>& make_pool) {
  int channel[2];
  if (pipe(channel) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t parent = fork();
  if (parent < 0) throw std::runtime_error("fork failed");
  if (parent == 0) {
    close(channel[0]);
    make_pool([&](const std::vector<int>& pids) {
      const int count = static_cast<int>(pids.size());
      [[maybe_unused]] auto a = write(channel[1], &count, sizeof count);
      [[maybe_unused]] auto b = write(channel[1], pids.data(), pids.size() * sizeof(int));
      close(channel[1]);
      for (;;) pause();
    });
    _exit(1);  // make_pool returned without reporting
  }
  close(channel[1]);
  auto read_exactly = [&](void* into, std::size_t bytes) {
    std::size_t got = 0;
    while (got < bytes) {
      const ssize_t n = read(channel[0], static_cast<char*>(into) + got, bytes - got);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  };
  int count = 0;
  std::vector<int> pids;
  bool ok = read_exactly(&count, sizeof count) && count > 0 && count < 1024;
  if (ok) {
    pids.resize(static_cast<std::size_t>(count));
    ok = read_exactly(pids.data(), pids.size() * sizeof(int));
  }
  close(channel[0]);
  for (int pid : pids) ok = ok && process_alive(pid);
  kill(parent, SIGKILL);
  waitpid(parent, nullptr, 0);
  if (!ok) throw std::runtime_error("the pool's parent did not report live workers");
  return pids;
}

std::vector<int> still_alive_after(const std::vector<int>& pids,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<int> alive;
  for (int pid : pids) {
    while (process_alive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    if (process_alive(pid)) alive.push_back(pid);
  }
  return alive;
}

pid_t fork_running(const std::function<void()>& body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    try {
      body();
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

int wait_for_child(pid_t pid, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "child " << pid << " did not end within " << bound.count() << " ms";
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return status;
}

int open_fd_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator{"/proc/self/fd"}) {
    ++count;
  }
  return count - 1;  // the iterator's own descriptor
}

int shared_mapping_count() {
  std::ifstream maps{"/proc/self/maps"};
  std::string line;
  int count = 0;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode path": perms is e.g. "rw-s" for a shared mapping.
    const auto space = line.find(' ');
    if (space != std::string::npos && space + 4 < line.size() && line[space + 4] == 's') ++count;
  }
  return count;
}

bool process_alive(pid_t pid) {
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  if (!stat) return false;
  std::string content;
  std::getline(stat, content);
  const auto paren = content.rfind(')');
  if (paren == std::string::npos || paren + 2 >= content.size()) return false;
  const char state = content[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace crew::test
