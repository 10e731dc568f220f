#include "ipc/shared_region.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace crew::detail::ipc {
namespace {

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::system_category(), call);
}

std::byte* map_shared(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("mmap");
  return static_cast<std::byte*>(p);
}

}  // namespace

shared_region shared_region::create(const std::string& name, std::size_t size) {
  if (size == 0) throw std::system_error(EINVAL, std::system_category(), "shared_region: size 0");
  unique_fd fd(::memfd_create(name.c_str(), MFD_CLOEXEC));
  if (!fd) throw_errno("memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
  std::byte* data = map_shared(fd.get(), size);
  return shared_region(std::move(fd), data, size);
}

shared_region shared_region::attach(unique_fd fd, std::size_t size) {
  if (size == 0) throw std::system_error(EINVAL, std::system_category(), "shared_region: size 0");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("fstat");
  if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) < size) {
    // Mapping past the end of the file would turn every access there into SIGBUS.
    throw std::system_error(EINVAL, std::system_category(),
                            "shared_region::attach: file smaller than requested size (fstat)");
  }
  std::byte* data = map_shared(fd.get(), size);
  return shared_region(std::move(fd), data, size);
}

shared_region::shared_region(shared_region&& other) noexcept
    : fd_(std::move(other.fd_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

shared_region& shared_region::operator=(shared_region&& other) noexcept {
  if (this != &other) {
    unmap();
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

shared_region::~shared_region() {
  unmap();
}

void shared_region::unmap() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace crew::detail::ipc
