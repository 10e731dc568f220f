// crew/error.hpp — how a task fails: `crew::task_error` and its `error_kind`.
//
// Every executor reports a task's failure the same way: the task's future holds a task_error whose
// kind() says what happened (the task threw, its worker crashed or timed out, ...). Fields that do
// not apply to a kind are empty or zero (a thread-pool task has no pid). task_error is an ordinary
// value type: copyable, thread-safe to read from several threads, never blocks.
#pragma once

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace crew {

/// What made a task fail.
enum class error_kind {
  exception,      ///< the task threw; remote_type() and what() describe the exception
  crashed,        ///< the worker running the task died (signal() or exit_code() say how)
  timed_out,      ///< the task ran past its deadline and its worker was stopped
  out_of_memory,  ///< the worker passed its memory limit (peak_memory() says how far)
  cancelled,      ///< cancel() before the task produced a result, or shutdown(cancel_pending)
  worker_lost,    ///< the worker broke its protocol (corrupt or truncated message) and was replaced
  serialization,  ///< an argument or result could not be encoded or decoded
  pool_closed,    ///< the task was submitted after shutdown() began (a task it had accepted and
                  ///< shutdown(cancel_pending) dropped is `cancelled`)
  queue_full,     ///< the pool's queue held max_queued tasks and its on_full is queue_full::fail
};

/// A short lower-case name for `kind`, e.g. "timed_out".
std::string_view to_string(error_kind kind) noexcept;

/// The failure of one task, held by `outcome<T>` and thrown by `future::get()` — except when the
/// task threw an exception that crew can rebuild (its own, on a thread pool; a standard or
/// registered type, from another process): get() rethrows that one, available as original().
class task_error : public std::runtime_error {
 public:
  /// Everything an executor knows about a failure; fields that do not apply stay at their default.
  struct details {
    int pid = 0;                  ///< the worker process that ran the task, 0 for threads
    int signal = 0;               ///< the signal that ended the worker, 0 if none
    int exit_code = -1;           ///< the worker's exit code when it exited, -1 otherwise
    std::string remote_type;      ///< the type name of the exception the task threw
    std::string stderr_tail;      ///< the last lines the worker wrote to stderr
    std::string task_name;        ///< the task's function name, when known
    std::size_t peak_memory = 0;  ///< bytes, for out_of_memory
    bool poisoned = false;        ///< the task killed every worker it was retried on
    std::exception_ptr
        original;  ///< the task's own exception (or its rebuilt copy), see original()

    /// Details that only name the task.
    static details named(std::string task) {
      details out;
      out.task_name = std::move(task);
      return out;
    }
  };

  task_error(error_kind kind, const std::string& message);
  task_error(error_kind kind, const std::string& message, details info);

  /// The message. Each copy owns its own: std::runtime_error's message is shared between copies
  /// through a reference count inside libstdc++, which ThreadSanitizer cannot see, so copies
  /// handed across threads would be reported as races.
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }
  [[nodiscard]] error_kind kind() const noexcept { return kind_; }
  [[nodiscard]] int pid() const noexcept { return info_.pid; }
  [[nodiscard]] int signal() const noexcept { return info_.signal; }
  [[nodiscard]] int exit_code() const noexcept { return info_.exit_code; }
  [[nodiscard]] const std::string& remote_type() const noexcept { return info_.remote_type; }
  [[nodiscard]] const std::string& stderr_tail() const noexcept { return info_.stderr_tail; }
  [[nodiscard]] const std::string& task_name() const noexcept { return info_.task_name; }
  [[nodiscard]] std::size_t peak_memory() const noexcept { return info_.peak_memory; }
  [[nodiscard]] bool poisoned() const noexcept { return info_.poisoned; }
  /// The exception the task threw, when it ran in this process (thread pool), or its rebuilt copy
  /// when it ran in another and its type is known there (crew/exception.hpp); null otherwise.
  [[nodiscard]] const std::exception_ptr& original() const noexcept { return info_.original; }
  [[nodiscard]] const details& info() const noexcept { return info_; }

  /// Wraps a caught exception as kind exception, keeping it in original().
  static task_error from_exception(std::exception_ptr error);

 private:
  std::string message_;
  error_kind kind_;
  details info_;
};

}  // namespace crew
