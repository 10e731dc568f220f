// tests/ipc/child.hpp — a forked peer for the ipc tests, plus deterministic test data.
//
// forked_child runs a body in a child process while the test goes on in the parent (unlike
// crew::test::run_in_child, which waits). The destructor SIGKILLs and reaps a child still
// running, so a failing test leaves no process behind.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ipc/doorbell.hpp"

namespace crew::detail::ipc::test {

class forked_child {
 public:
  /// Forks; the child runs `body` and _exits with its return value (99 if it throws).
  explicit forked_child(const std::function<int()>& body) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      int code = 99;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child threw: %s\n", e.what());
      } catch (...) {
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
  }
  forked_child(const forked_child&) = delete;
  forked_child& operator=(const forked_child&) = delete;
  ~forked_child() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  /// True while the child has not exited. Reaps it when it has (so it is safe to poll).
  bool alive() {
    if (reaped_) return false;
    int raw = 0;
    pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = raw;
      return false;
    }
    return r == 0;
  }

  void kill() const { ::kill(pid_, SIGKILL); }

  /// Waits for the child; returns its raw wait status.
  int wait() {
    if (!reaped_) {
      int raw = 0;
      while (::waitpid(pid_, &raw, 0) < 0) {
        if (errno != EINTR) break;
      }
      reaped_ = true;
      status_ = raw;
    }
    return status_;
  }

  /// Exit code, or -signal if killed.
  int exit_code() {
    const int raw = wait();
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

/// peer_alive for a child's side: the parent that forked it is still its parent.
inline std::function<bool()> parent_alive() {
  const pid_t parent = ::getppid();
  return [parent] { return ::getppid() == parent; };
}

/// Wait options for tests: never wait longer than `seconds` in total, so a bug fails the test
/// instead of hanging it.
inline wait_options test_wait(int seconds = 60,
                              std::chrono::nanoseconds spin = std::chrono::microseconds(5)) {
  wait_options w;
  w.spin = spin;
  w.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  return w;
}

/// Mappings of memfds in this process (the allocator, and sanitizers' shadow memory, map and
/// unmap other memory at will, so counting every mapping would not measure our leaks).
inline int memfd_mapping_count() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) n += line.find("/memfd:") != std::string::npos;
  return n;
}

/// Deterministic bytes for message `id`: a cheap xorshift stream seeded by id.
inline void fill_pattern(std::span<std::byte> out, std::uint64_t id) {
  std::uint64_t x = id * 0x9E3779B97F4A7C15ull + 1;
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, 8);
  }
  for (; i < out.size(); ++i) out[i] = static_cast<std::byte>(id + i);
}

inline std::vector<std::byte> pattern(std::size_t n, std::uint64_t id) {
  std::vector<std::byte> v(n);
  fill_pattern(v, id);
  return v;
}

/// FNV-1a over 8-byte words (fast enough for hundreds of MiB), then the tail bytes.
inline std::uint64_t checksum(std::span<const std::byte> data) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  std::size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  for (; i < data.size(); ++i) h = (h ^ static_cast<std::uint64_t>(data[i])) * 0x100000001b3ull;
  return h;
}

}  // namespace crew::detail::ipc::test
