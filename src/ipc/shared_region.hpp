// ipc/shared_region.hpp — an anonymous shared-memory mapping that a child process can share.
//
// Purpose: memory the parent and its worker processes all map. The region is a memfd (no name
// in /dev/shm, nothing to clean up after a crash) mapped MAP_SHARED. A forked child inherits the
// mapping at the same address; a fork+exec'd child inherits the descriptor (the caller clears
// FD_CLOEXEC on it, see fd_passing.hpp: set_cloexec) and maps it again with attach(fd, size),
// usually at a different address — so anything stored inside refers to other things by offset,
// never by pointer.
// Thread-safety: the object is immutable after construction; the bytes are shared memory whose
// access rules are those of whatever lives in them (spsc_ring, doorbell).
// Blocking: creation and destruction make system calls; nothing else does.
// Lifetime: move-only; the destructor unmaps and closes the descriptor. The memory itself lives
// until the last process that maps it or holds the descriptor lets go.
// Errors: std::system_error whose what() names the failed call (memfd_create, ftruncate, fstat,
// mmap).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "ipc/unique_fd.hpp"

namespace crew::detail::ipc {

class shared_region {
 public:
  /// An empty region: data() == nullptr, size() == 0, fd() == -1.
  shared_region() noexcept = default;

  /// A new zero-filled region of `size` bytes (> 0). `name` only labels the memfd in
  /// /proc/<pid>/fd for debugging. The descriptor is close-on-exec.
  [[nodiscard]] static shared_region create(const std::string& name, std::size_t size);

  /// Maps `size` bytes of an existing memfd (inherited through exec or received with recv_fds).
  /// Takes ownership of `fd`. Fails if the file is smaller than `size`.
  [[nodiscard]] static shared_region attach(unique_fd fd, std::size_t size);

  shared_region(shared_region&& other) noexcept;
  shared_region& operator=(shared_region&& other) noexcept;
  shared_region(const shared_region&) = delete;
  shared_region& operator=(const shared_region&) = delete;
  ~shared_region();

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  shared_region(unique_fd fd, std::byte* data, std::size_t size) noexcept
      : fd_(std::move(fd)), data_(data), size_(size) {}
  void unmap() noexcept;

  unique_fd fd_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace crew::detail::ipc
