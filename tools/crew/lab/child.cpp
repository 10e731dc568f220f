#include "lab/child.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "crew/child_process.hpp"

namespace crew::lab {

bool write_all(int fd, const void* data, std::size_t size) noexcept {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t size) noexcept {
  auto p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

child_outcome run_in_child(const std::function<std::string(int fd)>& body, double timeout_s) {
  crew::child_options options;
  options.timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));
  options.kill_grace = std::chrono::milliseconds(0);  // a subject past its time gets SIGKILL
  const crew::child_result c = crew::run_child(
      [&body](int fd) {
        try {
          const std::string out = body(fd);
          return write_all(fd, out.data(), out.size()) ? 0 : 71;
        } catch (...) {
          return 70;
        }
      },
      options);
  child_outcome r;
  r.exited = c.exited;
  r.exit_code = c.exit_code;
  r.signal = c.signal;
  r.timed_out = c.timed_out;
  r.output = c.output;
  return r;
}

}  // namespace crew::lab
