// executors/process/proc.hpp — what the supervisors read about a worker process from /proc, and
// how they quote its stderr.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace crew::detail::process {

/// Resident set size of `pid` in bytes (0 when it cannot be read: the process is gone).
std::size_t resident_bytes(pid_t pid);
/// Resident set size of the calling process in bytes, read without allocating (a worker reads it
/// as it starts, right after fork); 0 when it cannot be read (no descriptor left, say).
std::size_t own_resident_bytes() noexcept;
/// The largest resident set size `pid` has had (VmHWM), in bytes; 0 when unknown.
std::size_t peak_resident_bytes(pid_t pid);
/// The last `max_lines` lines of `text`, without the final newline.
std::string last_lines(const std::string& text, std::size_t max_lines);

}  // namespace crew::detail::process
