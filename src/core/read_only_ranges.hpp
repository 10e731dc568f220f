// core/read_only_ranges.hpp — the address ranges of crew::shared_array memory this process
// received read-only, so that a worker's fault handler can say that a task wrote to one.
// Thread-safety: any thread; in_read_only_range is async-signal-safe (atomic loads only).
#pragma once

#include <cstddef>

namespace crew::detail {

/// Remembers [begin, begin + bytes). Up to a fixed number of ranges; beyond it, a range is
/// simply not remembered (a fault there is reported without the hint).
void note_read_only_range(const void* begin, std::size_t bytes) noexcept;
/// Forgets the range that starts at `begin`, if remembered.
void forget_read_only_range(const void* begin) noexcept;
/// Whether `address` lies in a remembered range.
[[nodiscard]] bool in_read_only_range(const void* address) noexcept;

}  // namespace crew::detail
