// Passing memfds between processes with SCM_RIGHTS.
#include "ipc/fd_passing.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <system_error>

#include "ipc/child.hpp"
#include "ipc/shared_region.hpp"
#include "support/process.hpp"

namespace crew::detail::ipc {
namespace {

TEST(FdPassing, ChildMapsAMemfdItReceived) {
  const int fds_before = crew::test::open_fd_count();
  {
    auto [parent_end, child_end] = make_socketpair();
    test::forked_child child([&] {
      auto fds = recv_fds(child_end.get());
      if (fds.size() != 1) return 2;
      if (!(::fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC)) return 3;
      auto region = shared_region::attach(std::move(fds[0]), 1 << 20);
      std::memset(region.data(), 0xab, region.size());
      return 0;
    });
    auto payload = shared_region::create("payload", 1 << 20);
    const int fd = payload.fd();
    send_fds(parent_end.get(), std::span(&fd, 1));
    EXPECT_EQ(child.exit_code(), 0);
    EXPECT_EQ(payload.data()[0], std::byte{0xab});
    EXPECT_EQ(payload.data()[(1 << 20) - 1], std::byte{0xab});
  }
  EXPECT_EQ(crew::test::open_fd_count(), fds_before);
}

TEST(FdPassing, SeveralDescriptorsInOneMessage) {
  const int fds_before = crew::test::open_fd_count();
  {
    auto [a, b] = make_socketpair();
    std::vector<shared_region> regions;
    std::vector<int> fds;
    for (int i = 0; i < 5; ++i) {
      regions.push_back(shared_region::create("payload", 4096));
      regions.back().data()[0] = static_cast<std::byte>(i + 1);
      fds.push_back(regions.back().fd());
    }
    send_fds(a.get(), fds);
    auto got = recv_fds(b.get());
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      auto r = shared_region::attach(std::move(got[i]), 4096);
      EXPECT_EQ(r.data()[0], static_cast<std::byte>(i + 1));
    }
  }
  EXPECT_EQ(crew::test::open_fd_count(), fds_before);
}

TEST(FdPassing, TruncatedDescriptorsAreRefusedAndClosed) {
  const int fds_before = crew::test::open_fd_count();
  {
    auto [a, b] = make_socketpair();
    auto r1 = shared_region::create("payload", 4096);
    const int fds[4] = {r1.fd(), r1.fd(), r1.fd(), r1.fd()};
    send_fds(a.get(), fds);
    EXPECT_THROW((void)recv_fds(b.get(), 1), std::system_error);
    send_fds(a.get(), std::span(fds, 2));  // fits the buffer's slack, still more than asked
    EXPECT_THROW((void)recv_fds(b.get(), 1), std::system_error);
  }
  EXPECT_EQ(crew::test::open_fd_count(), fds_before);
}

TEST(FdPassing, ErrorsAreSystemErrors) {
  auto [a, b] = make_socketpair();
  a.reset();
  EXPECT_THROW((void)recv_fds(b.get()), std::system_error);  // peer closed
  const int fd = b.get();
  EXPECT_THROW(send_fds(-1, std::span(&fd, 1)), std::system_error);
  EXPECT_THROW(send_fds(b.get(), {}), std::invalid_argument);
}

TEST(FdPassing, SetCloexecTogglesTheFlag) {
  auto r = shared_region::create("payload", 4096);
  set_cloexec(r.fd(), false);
  EXPECT_FALSE(::fcntl(r.fd(), F_GETFD) & FD_CLOEXEC);
  set_cloexec(r.fd(), true);
  EXPECT_TRUE(::fcntl(r.fd(), F_GETFD) & FD_CLOEXEC);
  EXPECT_THROW(set_cloexec(-1, true), std::system_error);
}

}  // namespace
}  // namespace crew::detail::ipc
