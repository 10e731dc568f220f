// executors/process/payload.hpp — a large message in its own memfd, mapped by both sides.
//
// Messages too large for a channel ring are encoded straight into a fresh memfd; its descriptor
// crosses over the slot's Unix socket. A payload from an untrusted worker is accepted only when
// sealed against shrinking (F_SEAL_SHRINK) and at least as large as announced, so the worker
// cannot truncate it under the parent's reads (which would raise SIGBUS in the parent).
#pragma once

#include <cstddef>
#include <span>

#include "ipc/unique_fd.hpp"

namespace crew::detail::process {

class payload {
 public:
  /// A new writable payload of `size` bytes (sealable when it will be sent to the parent).
  static payload create(std::size_t size, bool sealable);
  /// Maps a payload received from a trusted peer (the parent), read-only.
  static payload attach(ipc::unique_fd fd, std::size_t size);
  /// Maps a payload received from an untrusted peer; throws codec::serialization_error unless
  /// it is sealed against shrinking and holds at least `size` bytes.
  static payload attach_untrusted(ipc::unique_fd fd, std::size_t size);

  payload(payload&& other) noexcept;
  payload& operator=(payload&& other) noexcept;
  payload(const payload&) = delete;
  payload& operator=(const payload&) = delete;
  ~payload();

  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  /// Seals the memfd against resizing (the receiver checks this: see attach_untrusted).
  void seal();

 private:
  payload(ipc::unique_fd fd, std::byte* data, std::size_t size) noexcept
      : fd_(std::move(fd)), data_(data), size_(size) {}
  void unmap() noexcept;

  ipc::unique_fd fd_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace crew::detail::process
