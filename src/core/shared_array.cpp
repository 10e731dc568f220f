// The process-local half of crew::shared_array (crew/shared_array.hpp): memfds made, reserved,
// sealed and mapped.
#include "crew/shared_array.hpp"

#include "core/read_only_ranges.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <system_error>

namespace crew::detail {
namespace {

std::string describe_bytes(std::size_t bytes) {
  char text[64];
  const double gib = static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0);
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (gib >= 1.0) {
    std::snprintf(text, sizeof text, "%zu bytes (%.1f GiB)", bytes, gib);
  } else if (mib >= 1.0) {
    std::snprintf(text, sizeof text, "%zu bytes (%.1f MiB)", bytes, mib);
  } else {
    std::snprintf(text, sizeof text, "%zu bytes", bytes);
  }
  return text;
}

[[noreturn]] void fail(int error, const char* what, const char* call, std::size_t bytes) {
  throw std::system_error(error, std::generic_category(),
                          std::string{what} + ": cannot have " + describe_bytes(bytes) +
                              " of shared memory (" + call + ")");
}

/// Bytes this process may still reserve: available memory and swap, and what its cgroup (v2)
/// has left when it has a limit. Unknown parts count as unlimited.
std::uint64_t reservable_bytes() {
  std::uint64_t room = std::numeric_limits<std::uint64_t>::max();
  if (std::FILE* meminfo = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    std::uint64_t available = 0;
    std::uint64_t swap_free = 0;
    bool seen = false;
    while (std::fgets(line, sizeof line, meminfo) != nullptr) {
      unsigned long long kib = 0;
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
        available = kib * 1024;
        seen = true;
      } else if (std::sscanf(line, "SwapFree: %llu kB", &kib) == 1) {
        swap_free = kib * 1024;
      }
    }
    std::fclose(meminfo);
    if (seen) room = available + swap_free;
  }
  char group[512] = {};
  if (std::FILE* cgroup = std::fopen("/proc/self/cgroup", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, cgroup) != nullptr) {
      if (std::sscanf(line, "0::%511s", group) == 1) break;
    }
    std::fclose(cgroup);
  }
  if (group[0] == '/') {
    const std::string base = std::string{"/sys/fs/cgroup"} + group;
    unsigned long long max = 0;
    unsigned long long current = 0;
    std::FILE* max_file = std::fopen((base + "/memory.max").c_str(), "r");
    std::FILE* current_file = std::fopen((base + "/memory.current").c_str(), "r");
    if (max_file != nullptr && current_file != nullptr &&
        std::fscanf(max_file, "%llu", &max) == 1 &&
        std::fscanf(current_file, "%llu", &current) == 1) {
      room = std::min<std::uint64_t>(room, max > current ? max - current : 0);
    }
    if (max_file != nullptr) std::fclose(max_file);
    if (current_file != nullptr) std::fclose(current_file);
  }
  return room;
}

struct range {
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::uintptr_t> end{0};
};
constexpr std::size_t max_ranges = 256;
range ranges[max_ranges];

}  // namespace

void note_read_only_range(const void* begin, std::size_t bytes) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(begin);
  for (range& r : ranges) {
    std::uintptr_t empty = 0;
    if (r.begin.compare_exchange_strong(empty, at, std::memory_order_acq_rel)) {
      r.end.store(at + bytes, std::memory_order_release);
      return;
    }
  }
}

void forget_read_only_range(const void* begin) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(begin);
  for (range& r : ranges) {
    if (r.begin.load(std::memory_order_acquire) == at) {
      r.end.store(0, std::memory_order_release);
      r.begin.store(0, std::memory_order_release);
      return;
    }
  }
}

bool in_read_only_range(const void* address) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  for (const range& r : ranges) {
    const std::uintptr_t begin = r.begin.load(std::memory_order_acquire);
    if (begin != 0 && at >= begin && at < r.end.load(std::memory_order_acquire)) return true;
  }
  return false;
}

shared_mapping::~shared_mapping() {
  if (data != nullptr && !writable) forget_read_only_range(data);
  if (data != nullptr) ::munmap(data, bytes);
  if (fd >= 0) ::close(fd);
}

std::size_t shared_array_bytes(std::size_t count, std::size_t element, const char* what) {
  if (element != 0 && count > std::numeric_limits<std::size_t>::max() / element) {
    throw std::length_error(std::string{what} + ": " + std::to_string(count) + " elements of " +
                            std::to_string(element) + " bytes do not fit in the address space");
  }
  return count * element;
}

std::shared_ptr<shared_mapping> create_shared_mapping(std::size_t bytes, const char* what) {
  // A memfd has no size limit of its own: reserving more than the machine (or the cgroup) has
  // would end in the OOM killer, not in an error. Refuse that first.
  if (const std::uint64_t room = reservable_bytes(); bytes > room) {
    throw std::system_error(ENOMEM, std::generic_category(),
                            std::string{what} + ": cannot have " + describe_bytes(bytes) +
                                " of shared memory: " + describe_bytes(room) +
                                " are available to this process");
  }
  auto map = std::make_shared<shared_mapping>();
  map->fd = ::memfd_create("crew-shared", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (map->fd < 0) fail(errno, what, "memfd_create", bytes);
  if (::ftruncate(map->fd, static_cast<off_t>(bytes)) != 0) fail(errno, what, "ftruncate", bytes);
  // Every page now, so that running out of space is this error and not a SIGBUS at first touch.
  if (const int rc = ::posix_fallocate(map->fd, 0, static_cast<off_t>(bytes)); rc != 0) {
    fail(rc, what, "fallocate", bytes);
  }
  // No holder, in any process, may shrink or grow it under the others' mappings.
  if (::fcntl(map->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    fail(errno, what, "fcntl(F_ADD_SEALS)", bytes);
  }
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, map->fd, 0);
  if (data == MAP_FAILED) fail(errno, what, "mmap", bytes);
  map->data = static_cast<std::byte*>(data);
  map->bytes = bytes;
  map->writable = true;
  return map;
}

std::shared_ptr<shared_mapping> attach_shared_mapping(int fd, std::size_t bytes, bool writable) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    throw serialization_error("a crew::shared_array arrived in memory that may shrink", 0);
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || info.st_size < 0 ||
      static_cast<std::uint64_t>(info.st_size) < bytes) {
    throw serialization_error("a crew::shared_array arrived in memory smaller than announced", 0);
  }
  auto map = std::make_shared<shared_mapping>();
  map->fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (map->fd < 0) fail(errno, "crew::shared_array", "fcntl(F_DUPFD_CLOEXEC)", bytes);
  const int protection = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void* data = ::mmap(nullptr, bytes, protection, MAP_SHARED, map->fd, 0);
  if (data == MAP_FAILED) fail(errno, "crew::shared_array", "mmap", bytes);
  map->data = static_cast<std::byte*>(data);
  map->bytes = bytes;
  map->writable = writable;
  if (!writable) note_read_only_range(map->data, bytes);
  return map;
}

void throw_shared_index(std::size_t index, std::size_t size) {
  throw std::out_of_range("crew::shared_array: index " + std::to_string(index) +
                          " is out of range for size " + std::to_string(size));
}

void throw_not_attachable() {
  throw serialization_error(
      "a crew::shared_array crosses only to a task of a process or hybrid pool on this machine "
      "(its memory travels as a descriptor): it cannot be encoded here — for mpi_pool or "
      "codec::encode, send its contents instead",
      0);
}

}  // namespace crew::detail
