// ipc/fd_passing.hpp — handing descriptors to another process over a Unix socket.
//
// Purpose: a payload too large for a ring travels as a memfd (shared_region) whose descriptor
// is sent to the peer with SCM_RIGHTS; the peer maps it with shared_region::attach. Also the
// close-on-exec switch for descriptors a fork+exec'd worker must inherit.
// Every received descriptor is close-on-exec (MSG_CMSG_CLOEXEC) and owned by a unique_fd, so
// nothing leaks on any error path; a message whose descriptors were truncated is refused and
// whatever did arrive is closed.
// Thread-safety: as the socket's; one sender and one receiver at a time per socket.
// Blocking: send_fds/recv_fds block as the socket does (EINTR is retried).
// Errors: std::system_error naming the call (sendmsg, recvmsg, fcntl); recv_fds throws
// std::system_error(ECONNRESET) if the peer closed the socket, and std::system_error(EMFILE)
// when descriptors were sent but none could be installed (this process is at its open-files
// limit: the kernel drops them).
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "ipc/unique_fd.hpp"

namespace crew::detail::ipc {

/// Most descriptors one send_fds call may carry (the kernel's SCM_MAX_FD).
inline constexpr std::size_t max_fds_per_message = 253;

/// Sends copies of `fds` (1..max_fds_per_message) as one message with a one-byte payload.
void send_fds(int unix_socket, std::span<const int> fds);

/// Receives one message sent by send_fds; returns its descriptors (at most `max_fds`).
[[nodiscard]] std::vector<unique_fd> recv_fds(int unix_socket,
                                              std::size_t max_fds = max_fds_per_message);

/// A connected AF_UNIX SOCK_STREAM pair, both ends close-on-exec.
[[nodiscard]] std::pair<unique_fd, unique_fd> make_socketpair();

/// Sets or clears FD_CLOEXEC (clear it on a descriptor an exec'd child must inherit).
void set_cloexec(int fd, bool on);

}  // namespace crew::detail::ipc
