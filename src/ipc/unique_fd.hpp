// ipc/unique_fd.hpp — an owned file descriptor that is closed exactly once.
//
// Purpose: RAII for descriptors the ipc layer creates or receives (memfds, socket ends, fds
// received with SCM_RIGHTS), so an exception on any path cannot leak one.
// Thread-safety: like an int; distinct objects may be used from distinct threads.
// Blocking: close() may block as close(2) does. Lifetime: move-only; -1 means empty.
#pragma once

#include <unistd.h>

#include <utility>

namespace crew::detail::ipc {

class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  /// Gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  /// Closes the owned descriptor (if any) and takes `fd`. close(2) errors are ignored: after
  /// close the descriptor is gone whatever it returned, and retrying on EINTR is wrong on Linux.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace crew::detail::ipc
