// shared_region: creation, attach by descriptor, moves, errors, and no names in /dev/shm.
#include "ipc/shared_region.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "ipc/child.hpp"
#include "support/process.hpp"

namespace crew::detail::ipc {
namespace {

int dev_shm_entries() {
  int n = 0;
  std::error_code ec;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) ++n;
  return n;
}

TEST(SharedRegion, CreateGivesZeroedSharedMemoryWithoutAName) {
  const int shm_before = dev_shm_entries();
  auto r = shared_region::create("crew-test", 1 << 20);
  ASSERT_NE(r.data(), nullptr);
  EXPECT_EQ(r.size(), 1u << 20);
  EXPECT_GE(r.fd(), 0);
  EXPECT_EQ(r.bytes().size(), r.size());
  for (std::size_t i = 0; i < r.size(); i += 4096) EXPECT_EQ(r.data()[i], std::byte{0});
  EXPECT_EQ(dev_shm_entries(), shm_before);
  EXPECT_TRUE(::fcntl(r.fd(), F_GETFD) & FD_CLOEXEC);
}

TEST(SharedRegion, AttachMapsTheSameBytesElsewhere) {
  auto r = shared_region::create("crew-test", 8192);
  auto again = shared_region::attach(unique_fd(::dup(r.fd())), 8192);
  EXPECT_NE(again.data(), r.data());
  std::memcpy(r.data() + 100, "hello", 5);
  EXPECT_EQ(std::memcmp(again.data() + 100, "hello", 5), 0);
}

TEST(SharedRegion, ForkedChildWritesAreSeenByTheParent) {
  auto r = shared_region::create("crew-test", 4096);
  test::forked_child child([&] {
    std::memcpy(r.data(), "from child", 10);
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(std::memcmp(r.data(), "from child", 10), 0);
}

TEST(SharedRegion, ErrorsNameTheFailedCall) {
  try {
    (void)shared_region::attach(unique_fd(-1), 4096);
    FAIL() << "attach of a bad descriptor succeeded";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("fstat"), std::string::npos) << e.what();
    EXPECT_EQ(e.code().value(), EBADF);
  }
  auto small = shared_region::create("crew-test", 4096);
  EXPECT_THROW((void)shared_region::attach(unique_fd(::dup(small.fd())), 8192), std::system_error);
  EXPECT_THROW((void)shared_region::create("crew-test", 0), std::system_error);
  try {
    (void)shared_region::create("crew-test", std::size_t{1} << 62);
    FAIL() << "a 4 EiB region";
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("ftruncate") != std::string::npos ||
                what.find("mmap") != std::string::npos)
        << what;
  }
}

TEST(SharedRegion, MovesTransferOwnershipAndNothingLeaks) {
  const int fds = crew::test::open_fd_count();
  const int maps = test::memfd_mapping_count();
  {
    auto a = shared_region::create("crew-test", 4096);
    std::byte* p = a.data();
    shared_region b(std::move(a));
    EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): documented empty state
    EXPECT_EQ(a.fd(), -1);
    EXPECT_EQ(b.data(), p);
    shared_region c = shared_region::create("crew-test", 8192);
    c = std::move(b);  // c's old mapping and fd are released
    EXPECT_EQ(c.data(), p);
    EXPECT_EQ(c.size(), 4096u);
  }
  EXPECT_EQ(crew::test::open_fd_count(), fds);
  EXPECT_EQ(test::memfd_mapping_count(), maps);
}

}  // namespace
}  // namespace crew::detail::ipc
