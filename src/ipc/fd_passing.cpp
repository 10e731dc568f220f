#include "ipc/fd_passing.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace crew::detail::ipc {
namespace {

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::system_category(), call);
}

}  // namespace

void send_fds(int unix_socket, std::span<const int> fds) {
  if (fds.empty() || fds.size() > max_fds_per_message) {
    throw std::invalid_argument("send_fds: 1..253 descriptors per message");
  }
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  char byte = 'F';  // SCM_RIGHTS needs at least one byte of ordinary data
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  for (;;) {
    ssize_t n = ::sendmsg(unix_socket, &msg, MSG_NOSIGNAL);
    if (n == 1) return;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("sendmsg");
  }
}

std::vector<unique_fd> recv_fds(int unix_socket, std::size_t max_fds) {
  max_fds = std::min(max_fds, max_fds_per_message);
  if (max_fds == 0) throw std::invalid_argument("recv_fds: max_fds must be > 0");
  std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
  char byte = 0;
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(unix_socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno("recvmsg");

  std::vector<unique_fd> out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.emplace_back(fd);  // owned at once: closed on every error path below
    }
  }
  if (n == 0) throw std::system_error(ECONNRESET, std::system_category(), "recvmsg: peer closed");
  // More than asked for can arrive in the control buffer's alignment slack: refuse that too.
  if ((msg.msg_flags & MSG_CTRUNC) != 0 && out.empty()) {
    // Nothing installed although there was room: the kernel could not give this process a
    // descriptor (it drops them when the process is at its open-files limit).
    throw std::system_error(EMFILE, std::system_category(),
                            "recvmsg: a descriptor was sent but this process could not take it");
  }
  if ((msg.msg_flags & MSG_CTRUNC) || out.size() > max_fds) {
    throw std::system_error(EMSGSIZE, std::system_category(), "recvmsg: descriptors truncated");
  }
  return out;
}

std::pair<unique_fd, unique_fd> make_socketpair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
  return {unique_fd(sv[0]), unique_fd(sv[1])};
}

void set_cloexec(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) throw_errno("fcntl");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, flags) != 0) throw_errno("fcntl");
}

}  // namespace crew::detail::ipc
