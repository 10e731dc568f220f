// core/exception_codec.hpp — the executor side of crew/exception.hpp: how a worker's exception
// becomes a task_error on the caller's future.
//
// Worker, inside its catch block:   bytes = crew::encode_exception(std::current_exception());
// Caller, on reading those bytes:   state.fail(remote_exception_error(bytes, details));
// The caller's future then behaves as on a thread pool: get() rethrows the rebuilt exception
// (its own type, nested chain and all) when its type is known, and the task_error otherwise.
#pragma once

#include <cstddef>
#include <span>

#include "crew/error.hpp"

namespace crew::detail {

/// The task_error for a task whose worker sent `bytes` (from crew::encode_exception): kind
/// exception, what() and remote_type() from the outermost level, the other fields from `base`
/// (pid, task name, ...). original() holds the rebuilt exception when the outermost level's type
/// is known or it has nested levels, so that get() rethrows it; null otherwise (get() throws the
/// task_error). Throws crew::serialization_error for malformed bytes.
task_error remote_exception_error(std::span<const std::byte> bytes, task_error::details base);

}  // namespace crew::detail
