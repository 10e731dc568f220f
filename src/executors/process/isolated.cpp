// crew::run_isolated: one callable in one forked child, supervised like a pool worker.
#include "crew/isolated.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdio_ext.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <typeinfo>

#include <cxxabi.h>

#include "core/exception_name.hpp"
#include "executors/process/proc.hpp"
#include "ipc/unique_fd.hpp"

namespace crew::detail {
namespace {

using process::last_lines;
using process::resident_bytes;

using clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const char* call) {
  throw std::system_error(errno, std::generic_category(),
                          std::string{"crew::run_isolated: "} + call);
}

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

[[noreturn]] void child_main(const std::function<void(byte_sink&)>& body, int result_fd) {
  std::uint32_t status = status_value;
  std::vector<std::byte> payload;
  try {
    buffer_sink sink;
    body(sink);
    payload = std::move(sink.buffer);
  } catch (const serialization_error& e) {
    status = status_serialization;
    payload = codec::encode(std::string{e.what()});
  } catch (const std::exception& e) {
    status = status_exception;
    payload =
        codec::encode(std::pair<std::string, std::string>{current_exception_type_name(), e.what()});
  } catch (...) {
    status = status_exception;
    payload = codec::encode(std::pair<std::string, std::string>{
        current_exception_type_name(),
        "the callable threw an exception that does not derive from std::exception"});
  }
  const bool ok = write_all(result_fd, &status, sizeof status) &&
                  write_all(result_fd, payload.data(), payload.size());
  std::fflush(nullptr);
  _exit(ok ? 0 : 70);
}

}  // namespace

std::vector<std::byte> run_in_child(const std::function<void(byte_sink&)>& body,
                                    const isolation_options& options) {
  int result_pipe[2];
  int error_pipe[2];
  if (pipe2(result_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
  ipc::unique_fd result_read{result_pipe[0]};
  ipc::unique_fd result_write{result_pipe[1]};
  if (pipe2(error_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
  ipc::unique_fd error_read{error_pipe[0]};
  ipc::unique_fd error_write{error_pipe[1]};

  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    __fpurge(stdout);  // flushed just before fork; drop what another thread buffered since
    signal(SIGINT, SIG_IGN);
    dup2(error_write.get(), STDERR_FILENO);
    child_main(body, result_write.get());
  }
  result_write.reset();
  error_write.reset();
  ipc::unique_fd pidfd{static_cast<int>(syscall(SYS_pidfd_open, pid, 0))};
  if (!pidfd) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw_errno("pidfd_open");
  }

  fcntl(result_read.get(), F_SETFL, O_NONBLOCK);
  fcntl(error_read.get(), F_SETFL, O_NONBLOCK);
  std::vector<std::byte> received;
  std::string stderr_text;
  // Reads what is there now; false once the pipe is closed.
  auto drain = [&](int fd, bool is_result) {
    char chunk[65536];
    for (;;) {
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      if (is_result) {
        const auto* bytes = reinterpret_cast<const std::byte*>(chunk);
        received.insert(received.end(), bytes, bytes + n);
      } else {
        [[maybe_unused]] auto w = write(STDERR_FILENO, chunk, static_cast<std::size_t>(n));
        stderr_text.append(chunk, static_cast<std::size_t>(n));
        if (stderr_text.size() > 16384) stderr_text.erase(0, stderr_text.size() - 8192);
      }
    }
  };

  const auto start = clock::now();
  enum class reason { none, timed_out, out_of_memory } why = reason::none;
  std::size_t peak = 0;
  bool term_sent = false;
  clock::time_point term_at{};
  bool result_open = true;
  bool error_open = true;
  for (;;) {
    int slice = -1;
    if (options.memory_limit > 0) slice = 2;
    if (options.timeout.count() > 0) slice = slice < 0 ? 5 : std::min(slice, 5);
    pollfd fds[3] = {{pidfd.get(), POLLIN, 0},
                     {result_open ? result_read.get() : -1, POLLIN, 0},
                     {error_open ? error_read.get() : -1, POLLIN, 0}};
    if (poll(fds, 3, slice) < 0 && errno != EINTR) throw_errno("poll");
    if (result_open && fds[1].revents != 0) result_open = drain(result_read.get(), true);
    if (error_open && fds[2].revents != 0) error_open = drain(error_read.get(), false);
    if ((fds[0].revents & POLLIN) != 0) {
      // The child is gone; take what it wrote. Its own children may still hold the pipes open,
      // so read only what is there.
      if (result_open) drain(result_read.get(), true);
      if (error_open) drain(error_read.get(), false);
      break;
    }
    const auto now = clock::now();
    if (options.timeout.count() > 0 && why == reason::none && now - start > options.timeout) {
      why = reason::timed_out;
      term_sent = true;
      term_at = now;
      syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0);
    }
    if (term_sent && now - term_at > options.kill_grace) {
      syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    }
    if (options.memory_limit > 0 && why == reason::none) {
      const std::size_t resident = resident_bytes(pid);
      peak = std::max(peak, resident);
      if (resident > options.memory_limit) {
        why = reason::out_of_memory;
        syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
      }
    }
  }

  siginfo_t info{};
  waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info, WEXITED);
  task_error::details details = task_error::details::named(options.name);
  details.pid = pid;
  details.stderr_tail = last_lines(stderr_text, 20);
  if (info.si_code == CLD_EXITED) {
    details.exit_code = info.si_status;
  } else {
    details.signal = info.si_status;
  }
  std::ostringstream what;
  if (why == reason::timed_out) {
    what << options.name << " ran past its timeout of " << options.timeout.count() << " ms";
    throw task_error{error_kind::timed_out, what.str(), std::move(details)};
  }
  if (why == reason::out_of_memory) {
    details.peak_memory = peak;
    what << options.name << " passed its memory limit of " << options.memory_limit << " bytes";
    throw task_error{error_kind::out_of_memory, what.str(), std::move(details)};
  }
  if (info.si_code != CLD_EXITED || info.si_status != 0 ||
      received.size() < sizeof(std::uint32_t)) {
    what << options.name << " (pid " << pid << ") ";
    if (info.si_code != CLD_EXITED) {
      what << "was killed by signal " << info.si_status << " (" << strsignal(info.si_status) << ")";
    } else {
      what << "exited with code " << info.si_status << " before returning a result";
    }
    throw task_error{error_kind::crashed, what.str(), std::move(details)};
  }
  std::uint32_t status = 0;
  std::memcpy(&status, received.data(), sizeof status);
  received.erase(received.begin(), received.begin() + sizeof status);
  try {
    if (status == status_value) return received;
    if (status == status_exception) {
      auto [type, message] = codec::decode<std::pair<std::string, std::string>>(received);
      details.remote_type = std::move(type);
      throw task_error{error_kind::exception, message, std::move(details)};
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
