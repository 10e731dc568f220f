// crew/shared_array.hpp — memory shared between threads and processes: handed to tasks by
// mapping, never by copying.
//
// Purpose: a task that reads a large input should not pay for copying it through a pipe or a
// ring. A shared_array<T> is a handle to an array of trivially copyable T that lives in shared
// memory (a memfd: nothing is named in /dev/shm, nothing is left behind after a crash). Passed
// to a task of a process or hybrid pool — as an argument, or returned as a result — only its
// descriptor crosses; the other side maps the same pages. Passed to a thread_pool's task, it is
// the same handle. Either way the task sees the same bytes, and changing the pool is one line.
//
//   auto data = crew::shared_array<double>::create(n);   // zero-filled, writable
//   std::iota(data.begin(), data.end(), 0.0);
//   auto sum = pool.submit<&sum_all>(data).get();        // double sum_all(crew::shared_array<const
//   double>)
//
// Access follows the element type, as with std::span: shared_array<const T> is read-only, and a
// shared_array<T> converts to it. A task that takes shared_array<const T> maps the memory
// read-only in its process — a write there faults, and the task fails as crashed while the pool
// goes on; a task that takes shared_array<T> may write, and its writes are seen by every holder.
// Nothing orders those accesses: synchronise them as you would between threads (a task's
// result, or crew's process-shared locks).
//
// Lifetime: handles share ownership like std::shared_ptr. The memory is freed when the last
// handle in the last process that holds one is gone — also when workers crash or the parent is
// killed with SIGKILL, since the kernel frees a memfd with its last descriptor and mapping.
// Space: create() reserves every page up front (fallocate), so an exhausted tmpfs or memory
// cgroup is a std::system_error naming the size asked for, never a SIGBUS on first touch. The
// memfd is sealed against shrinking: no holder can truncate it under the others.
// Limits: it crosses processes on one machine only. Encoding one for mpi_pool, or with
// codec::encode outside a process pool, throws crew::serialization_error saying so; at most
// detail::max_attachments (64) of them travel in one task's arguments or result.
// Bounds: at() always checks; operator[] checks when CREW_CHECKED_INDEXING is 1 (the default
// when NDEBUG is not defined), throwing std::out_of_range.
// Thread-safety: a handle is as safe as a std::shared_ptr (distinct handles may be used from
// any thread); the elements are plain memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "crew/codec.hpp"
#include "crew/detail/attachments.hpp"

#ifndef CREW_CHECKED_INDEXING
#ifdef NDEBUG
#define CREW_CHECKED_INDEXING 0
#else
#define CREW_CHECKED_INDEXING 1
#endif
#endif

namespace crew {

namespace detail {

/// One mapping of a memfd in this process. Unmaps and closes on destruction.
struct shared_mapping {
  shared_mapping() = default;
  shared_mapping(const shared_mapping&) = delete;
  shared_mapping& operator=(const shared_mapping&) = delete;
  ~shared_mapping();

  int fd = -1;
  std::byte* data = nullptr;
  std::size_t bytes = 0;
  bool writable = false;
};

/// A new zero-filled, sealed memfd of `bytes` (> 0) bytes, every page reserved, mapped
/// read-write. Throws std::system_error naming the size (and `what`) when it cannot be had.
std::shared_ptr<shared_mapping> create_shared_mapping(std::size_t bytes, const char* what);
/// Maps a received memfd: checks that it is sealed against shrinking and holds `bytes`, and
/// maps it read-only unless `writable`. Duplicates `fd` (the caller keeps its own).
std::shared_ptr<shared_mapping> attach_shared_mapping(int fd, std::size_t bytes, bool writable);
/// The size of `count` elements of `element` bytes; throws std::length_error on overflow.
std::size_t shared_array_bytes(std::size_t count, std::size_t element, const char* what);
/// Out-of-range index: std::out_of_range naming the index and the size.
[[noreturn]] void throw_shared_index(std::size_t index, std::size_t size);
/// An array encoded where no descriptor can go along (crew::serialization_error).
[[noreturn]] void throw_not_attachable();

}  // namespace detail

template <class T>
class shared_array {
  static_assert(std::is_trivially_copyable_v<T>,
                "crew::shared_array<T>: T must be trivially copyable (it is shared as raw bytes)");
  static_assert(!std::is_volatile_v<T>, "crew::shared_array<T>: T must not be volatile");

 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  /// An empty array (no memory).
  shared_array() noexcept = default;

  /// A new array of `count` zero-filled elements. count == 0 gives an empty array.
  [[nodiscard]] static shared_array create(std::size_t count) {
    shared_array out;
    if (count == 0) return out;
    out.map_ = detail::create_shared_mapping(
        detail::shared_array_bytes(count, sizeof(T), "crew::shared_array"), "crew::shared_array");
    out.data_ = reinterpret_cast<T*>(out.map_->data);
    out.size_ = count;
    return out;
  }

  /// A read-only view of a writable array (shared_array<T> -> shared_array<const T>).
  template <class U>
  requires(std::is_const_v<T>&& std::is_same_v<std::remove_const_t<T>, U>)
      shared_array(const shared_array<U>& other)
  noexcept  // NOLINT(google-explicit-constructor)
      : map_(other.map_), data_(other.data_), size_(other.size_) {}

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] std::span<T> span() const noexcept { return {data_, size_}; }
  [[nodiscard]] T* begin() const noexcept { return data_; }
  [[nodiscard]] T* end() const noexcept { return data_ + size_; }

  [[nodiscard]] T& operator[](std::size_t i) const {
#if CREW_CHECKED_INDEXING
    if (i >= size_) detail::throw_shared_index(i, size_);
#endif
    return data_[i];
  }
  [[nodiscard]] T& at(std::size_t i) const {
    if (i >= size_) detail::throw_shared_index(i, size_);
    return data_[i];
  }

  /// Whether two handles share the same memory.
  [[nodiscard]] bool shares_with(const shared_array<const T>& other) const noexcept {
    return static_cast<const void*>(data_) == static_cast<const void*>(other.data()) &&
           map_ != nullptr;
  }

  /// The wire form: element count, access, and the index of the descriptor that travels
  /// beside the message (see crew/detail/attachments.hpp).
  template <class Archive>
  void serialize(Archive& ar) {
    std::uint64_t count = size_;
    std::uint8_t writable = std::is_const_v<T> ? 0 : 1;
    std::uint32_t index = 0;
    if constexpr (std::is_same_v<Archive, codec::output_archive>) {
      if (count != 0) index = attach_for_sending();
    } else if constexpr (std::is_same_v<Archive, codec::size_archive>) {
      if (count != 0 && detail::outgoing == nullptr) detail::throw_not_attachable();
    }
    ar(count, writable, index);
    if constexpr (Archive::is_loading) receive(ar, count, writable != 0, index);
  }

 private:
  template <class U>
  friend class shared_array;

  std::uint32_t attach_for_sending() const {
    detail::outgoing_attachments* list = detail::outgoing;
    if (list == nullptr) detail::throw_not_attachable();
    if (list->size() >= detail::max_attachments) {
      throw serialization_error("more than " + std::to_string(detail::max_attachments) +
                                    " crew::shared_array values in one message",
                                0);
    }
    list->entries.emplace_back(map_->fd, map_);
    return static_cast<std::uint32_t>(list->size() - 1);
  }

  template <class Archive>
  void receive(Archive& ar, std::uint64_t count, bool writable, std::uint32_t index) {
    map_.reset();
    data_ = nullptr;
    size_ = 0;
    if (count == 0) return;
    const detail::incoming_attachments* list = detail::incoming;
    if (list == nullptr || index >= list->fds.size()) {
      throw serialization_error("a crew::shared_array arrived without its memory", ar.offset());
    }
    if (!std::is_const_v<T> && !writable) {
      throw serialization_error("a read-only crew::shared_array cannot be received as writable",
                                ar.offset());
    }
    const std::size_t bytes = detail::shared_array_bytes(count, sizeof(T), "crew::shared_array");
    map_ = detail::attach_shared_mapping(list->fds[index], bytes, !std::is_const_v<T>);
    data_ = reinterpret_cast<T*>(map_->data);
    size_ = static_cast<std::size_t>(count);
  }

  std::shared_ptr<detail::shared_mapping> map_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Shared bytes: a buffer handed to tasks by mapping.
using shared_buffer = shared_array<std::byte>;

}  // namespace crew
