#include "executors/process/payload.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "crew/codec.hpp"

namespace crew::detail::process {
namespace {

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(), std::string{"crew payload: "} + call);
}

std::byte* map(int fd, std::size_t size, int protection) {
  if (size == 0) return nullptr;
  // MAP_POPULATE faults the pages in one pass instead of one fault per page.
  void* data = mmap(nullptr, size, protection, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (data == MAP_FAILED) throw_errno("mmap");
  return static_cast<std::byte*>(data);
}

}  // namespace

payload payload::create(std::size_t size, bool sealable) {
  ipc::unique_fd fd{
      memfd_create("crew-payload", MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0U))};
  if (!fd) throw_errno("memfd_create");
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
  std::byte* data = map(fd.get(), size, PROT_READ | PROT_WRITE);
  return payload{std::move(fd), data, size};
}

payload payload::attach(ipc::unique_fd fd, std::size_t size) {
  std::byte* data = map(fd.get(), size, PROT_READ);
  return payload{std::move(fd), data, size};
}

payload payload::attach_untrusted(ipc::unique_fd fd, std::size_t size) {
  const int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    throw serialization_error("a large result's memfd is not sealed against shrinking", 0);
  }
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) throw_errno("fstat");
  if (static_cast<std::uint64_t>(info.st_size) < size) {
    throw serialization_error("a large result's memfd is smaller than announced", 0);
  }
  return attach(std::move(fd), size);
}

payload::payload(payload&& other) noexcept
    : fd_(std::move(other.fd_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

payload& payload::operator=(payload&& other) noexcept {
  if (this != &other) {
    unmap();
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

payload::~payload() {
  unmap();
}

void payload::unmap() noexcept {
  if (data_ != nullptr) munmap(data_, size_);
  data_ = nullptr;
}

void payload::seal() {
  if (fcntl(fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    throw_errno("fcntl(F_ADD_SEALS)");
  }
}

}  // namespace crew::detail::process
