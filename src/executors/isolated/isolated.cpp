// crew::run_isolated: one callable in one forked child (crew::run_child), its result or its
// failure turned into a value or a task_error with the same kinds as a pool's.
#include "crew/isolated.hpp"

#include <signal.h>
#include <unistd.h>

#include <stdio_ext.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <system_error>

#include "core/exception_name.hpp"
#include "crew/child_process.hpp"
#include "crew/exception.hpp"
// Read-only use of the process supervisors' helper that quotes a stderr tail.
#include "executors/process/proc.hpp"

namespace crew::detail {
namespace {

using process::last_lines;

// Result stream: u32 status (0 value, 1 exception, 2 serialization) then the payload.
constexpr std::uint32_t status_value = 0;
constexpr std::uint32_t status_exception = 1;
constexpr std::uint32_t status_serialization = 2;

bool write_all(int fd, const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

class buffer_sink final : public byte_sink {
 public:
  std::span<std::byte> acquire(std::size_t bytes) override {
    buffer.resize(bytes);
    return buffer;
  }
  std::vector<std::byte> buffer;
};

// Runs the callable and writes the status and payload to `result_fd`; run_child's child exits
// with code 0 after it (70 when the write fails: the parent then reports a crash).
void child_main(const std::function<void(byte_sink&)>& body, int result_fd) {
  std::uint32_t status = status_value;
  std::vector<std::byte> payload;
  try {
    buffer_sink sink;
    body(sink);
    payload = std::move(sink.buffer);
  } catch (const serialization_error& e) {
    status = status_serialization;
    payload = codec::encode(std::string{e.what()});
  } catch (...) {
    status = status_exception;
    payload = encode_exception(std::current_exception());
  }
  const bool ok = write_all(result_fd, &status, sizeof status) &&
                  write_all(result_fd, payload.data(), payload.size());
  std::fflush(nullptr);
  if (!ok) _exit(70);
}

}  // namespace

std::vector<std::byte> run_in_child(const std::function<void(byte_sink&)>& body,
                                    const isolation_options& options) {
  child_options child;
  child.timeout = options.timeout;
  child.kill_grace = options.kill_grace;
  child.memory_limit = options.memory_limit;
  child.child_stderr = child_options::stderr_mode::capture_and_echo;
  child_result r;
  try {
    r = run_child(
        [&body](int result_fd) {
          __fpurge(stdout);  // flushed just before fork; drop what another thread buffered since
          signal(SIGINT, SIG_IGN);
          child_main(body, result_fd);
          return 0;
        },
        child);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), std::string{"crew::run_isolated: "} + e.what());
  }

  task_error::details details = task_error::details::named(options.name);
  details.pid = r.pid;
  details.stderr_tail = last_lines(r.stderr_tail, 20);
  if (r.exited) {
    details.exit_code = r.exit_code;
  } else {
    details.signal = r.signal;
  }
  std::ostringstream what;
  if (r.timed_out) {
    what << options.name << " ran past its timeout of " << options.timeout.count() << " ms";
    throw task_error{error_kind::timed_out, what.str(), std::move(details)};
  }
  if (r.out_of_memory) {
    details.peak_memory = r.peak_resident_bytes;
    what << options.name << " passed its memory limit of " << options.memory_limit << " bytes";
    throw task_error{error_kind::out_of_memory, what.str(), std::move(details)};
  }
  std::vector<std::byte> received(r.output.size());
  if (!r.output.empty()) std::memcpy(received.data(), r.output.data(), r.output.size());
  if (!r.exited || r.exit_code != 0 || received.size() < sizeof(std::uint32_t)) {
    what << options.name << " (pid " << r.pid << ") ";
    if (!r.exited) {
      what << "was killed by signal " << r.signal << " (" << strsignal(r.signal) << ")";
    } else {
      what << "exited with code " << r.exit_code << " before returning a result";
    }
    throw task_error{error_kind::crashed, what.str(), std::move(details)};
  }
  std::uint32_t status = 0;
  std::memcpy(&status, received.data(), sizeof status);
  received.erase(received.begin(), received.begin() + sizeof status);
  try {
    if (status == status_value) return received;
    if (status == status_exception) {
      // A task_error of kind exception, whose original() holds the callable's own exception,
      // rebuilt where its type is known.
      throw remote_exception_error(received, std::move(details));
    }
    if (status == status_serialization) {
      throw task_error{error_kind::serialization, codec::decode<std::string>(received),
                       std::move(details)};
    }
  } catch (const serialization_error& e) {
    throw task_error{error_kind::serialization, e.what(), std::move(details)};
  }
  throw task_error{error_kind::serialization, "run_isolated: unknown result status",
                   std::move(details)};
}

}  // namespace crew::detail
