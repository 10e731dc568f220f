// The worker side of a process pool: serve requests from one slot until told to exit.
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include <cxxabi.h>

#include "core/exception_name.hpp"
#include "core/read_only_ranges.hpp"
#include "crew/codec.hpp"
#include "crew/detail/registry.hpp"
#include "crew/exception.hpp"
#include "executors/process/payload.hpp"
#include "executors/process/proc.hpp"
#include "executors/process/protocol.hpp"
#include "ipc/fd_passing.hpp"

namespace crew::detail::process {
namespace {

std::uint64_t monotonic_ns() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(now.tv_nsec);
}

/// Writes one result: in place in the result ring when it fits, else into a sealed memfd whose
/// descriptor goes over the slot's socket.
class result_writer final : public byte_sink {
 public:
  result_writer(ipc::ring_writer& ring, int socket, const ipc::wait_options& wait)
      : ring_(ring), socket_(socket), wait_(wait) {}

  void begin(std::uint64_t seq, const incoming_attachments* received) noexcept {
    header_ = {seq, result_status::ok, 0};
    received_ = received;
    sent_.entries.clear();
    in_ring_ = {};
    large_.reset();
    acquired_ = false;
    published_ = false;
  }

  std::span<std::byte> acquire(std::size_t bytes) override {
    acquired_ = true;
    const std::size_t total = sizeof(result_header) + bytes;
    if (total <= inline_limit(ring_)) {
      in_ring_ = ring_.reserve(total, wait_);
      return in_ring_.subspan(sizeof(result_header), bytes);
    }
    header_.flags = flag_in_payload_fd;
    large_.emplace(payload::create(bytes, /*sealable=*/true));
    return large_->bytes();
  }

  void done() override { finish(); }
  outgoing_attachments* attachments() override { return &sent_; }
  [[nodiscard]] const incoming_attachments* received() const override { return received_; }

  /// Publishes the result acquired and filled by the task (once; later calls do nothing).
  void finish() {
    if (published_) return;
    if (!acquired_) acquire(0);
    published_ = true;
    // The descriptors of crew::shared_array values in the result go just before the message,
    // after a large result's own memfd, in one send.
    std::vector<int> fds = sent_.fds();
    header_.flags = static_cast<std::uint32_t>(fds.size()) << attachments_shift;
    if (large_) {
      const std::uint64_t size = large_->size();
      large_->seal();
      fds.insert(fds.begin(), large_->fd());
      header_.flags |= flag_in_payload_fd;
      ipc::send_fds(socket_, fds);
      sent_.entries.clear();
      auto slot = ring_.reserve(sizeof(result_header) + sizeof size, wait_);
      std::memcpy(slot.data(), &header_, sizeof header_);
      std::memcpy(slot.data() + sizeof header_, &size, sizeof size);
      ring_.commit();
      large_.reset();  // unmapping a large result happens after the parent has it
      return;
    }
    if (!fds.empty()) ipc::send_fds(socket_, fds);
    sent_.entries.clear();
    std::memcpy(in_ring_.data(), &header_, sizeof header_);
    ring_.commit();
  }

  /// Publishes a failure instead of (or after a partial) result. A failure of any size gets
  /// through: what does not fit the ring goes in a memfd, as a large result does.
  void fail(result_status status, const std::vector<std::byte>& encoded) {
    if (published_) return;  // the result went out; what failed after it is not the task's
    published_ = true;
    large_.reset();
    sent_.entries.clear();  // a failure carries no descriptors
    header_ = {header_.seq, status, 0};
    const std::size_t inline_total = sizeof header_ + encoded.size();
    std::span<std::byte> room = in_ring_;  // an open reservation must be used: it cannot be undone
    if (room.empty()) {
      room = ring_.reserve(std::min(inline_total, std::max(inline_limit(ring_),
                                                           sizeof header_ + sizeof(std::uint64_t))),
                           wait_);
    }
    if (inline_total <= room.size()) {
      std::memcpy(room.data(), &header_, sizeof header_);
      if (!encoded.empty())
        std::memcpy(room.data() + sizeof header_, encoded.data(), encoded.size());
      ring_.commit(inline_total);
      return;
    }
    if (room.size() < sizeof header_ + sizeof(std::uint64_t)) {
      // A result reservation too small to point at a memfd: the parent reads a failure whose
      // description was lost, which it reports as such.
      std::memcpy(room.data(), &header_, sizeof header_);
      ring_.commit(sizeof header_);
      return;
    }
    payload big = payload::create(encoded.size(), /*sealable=*/true);
    if (!encoded.empty()) std::memcpy(big.bytes().data(), encoded.data(), encoded.size());
    big.seal();
    const int fd = big.fd();
    ipc::send_fds(socket_, std::span<const int>{&fd, 1});
    header_.flags = flag_in_payload_fd;
    const std::uint64_t size = encoded.size();
    std::memcpy(room.data(), &header_, sizeof header_);
    std::memcpy(room.data() + sizeof header_, &size, sizeof size);
    ring_.commit(sizeof header_ + sizeof size);
  }

  /// Answers a request the parent cancelled before it started: the task did not run.
  void skip(std::uint64_t seq) {
    const result_header header{seq, result_status::skipped, 0};
    auto room = ring_.reserve(sizeof header, wait_);
    std::memcpy(room.data(), &header, sizeof header);
    ring_.commit();
  }

 private:
  ipc::ring_writer& ring_;
  int socket_;
  const ipc::wait_options& wait_;
  result_header header_{};
  std::span<std::byte> in_ring_;
  std::optional<payload> large_;
  outgoing_attachments sent_;
  const incoming_attachments* received_ = nullptr;
  bool acquired_ = false;
  bool published_ = false;
};

class null_sink final : public byte_sink {
 public:
  std::span<std::byte> acquire(std::size_t bytes) override {
    buffer_.resize(bytes);
    return buffer_;
  }

 private:
  std::vector<std::byte> buffer_;
};

}  // namespace

namespace {

/// The slot the calling worker thread serves, for the fault handler.
thread_local slot_control* current_control = nullptr;

/// Records which thread faulted (so that a hybrid pool blames the right task), then lets the
/// signal kill the process as it would have without the handler.
void on_fault(int signal, siginfo_t* info, void* /*context*/) {
  if (slot_control* control = current_control) {
    if (signal == SIGSEGV && info != nullptr && in_read_only_range(info->si_addr)) {
      control->fault_read_only.store(1, std::memory_order_relaxed);
    }
    control->fault_signal.store(static_cast<std::uint32_t>(signal), std::memory_order_relaxed);
  }
  // SA_RESETHAND restored the default action: raising again (a fault would also recur on return)
  // ends the process by this signal.
  raise(signal);
}

constexpr int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};

void install_fault_handlers() {
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (int signal : fault_signals) sigaction(signal, &action, nullptr);
}

/// A stack for the fault handler, so that a stack overflow is still attributed to its thread.
class alternate_stack {
 public:
  alternate_stack() : memory_(std::size_t{64} * 1024) {
    stack_t stack{};
    stack.ss_sp = memory_.data();
    stack.ss_size = memory_.size();
    sigaltstack(&stack, nullptr);
  }
  ~alternate_stack() {
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
  }
  alternate_stack(const alternate_stack&) = delete;
  alternate_stack& operator=(const alternate_stack&) = delete;

 private:
  std::vector<char> memory_;
};

slot_control* control_of(std::byte* region, const worker_config& config, std::size_t thread) {
  const region_layout layout{config.channel_bytes, config.slot_count};
  return reinterpret_cast<slot_control*>(region + layout.slot(config.slot + thread).control);
}

/// One thread's loop over one slot: returns when the slot is told to exit. A broken channel or
/// a lost parent ends the whole process.
void serve_slot(std::byte* region, const worker_config& config, std::size_t thread) {
  const region_layout layout{config.channel_bytes, config.slot_count};
  const std::span<std::byte> bytes{region, config.region_bytes};
  const slot_layout where = layout.slot(config.slot + thread);
  auto* control = reinterpret_cast<slot_control*>(region + where.control);
  const int socket = config.socket_fds[thread];
  alternate_stack fault_stack;
  current_control = control;
  try {
    ipc::ring_reader requests{ipc::spsc_ring::attach(bytes, where.requests)};
    ipc::ring_writer results{ipc::spsc_ring::attach(bytes, where.results)};
    ipc::wait_options wait;
    wait.spin = std::chrono::microseconds{50};
    wait.poll = std::chrono::milliseconds{100};
    const int parent = config.parent_pid;
    wait.peer_alive = [parent] { return getppid() == parent; };
    control->ready.store(1, std::memory_order_release);
    // The parent sleeps on the collector doorbell until a worker is ready: tell it.
    ipc::doorbell_at(bytes, region_layout::doorbell_offset).ring();

    result_writer out{results, socket, wait};
    std::vector<std::byte> big;
    const task_entry* last = nullptr;
    for (;;) {
      const ipc::ring_message message = requests.wait_peek(wait);
      std::span<const std::byte> request = message.bytes;
      if (message.streamed) {
        big.resize(message.size);
        requests.read_streamed(big, wait);
        request = big;
      }
      request_header header{};
      if (request.size() < sizeof header) _exit(72);  // the parent is trusted: this is a bug
      std::memcpy(&header, request.data(), sizeof header);
      if (header.kind == request_kind::exit) return;
      std::span<const std::byte> args = request.subspan(sizeof header);

      std::optional<payload> large_args;
      const std::size_t in_payload = header.flags == flag_in_payload_fd ? 1 : 0;
      if (header.attachments > max_attachments) _exit(74);
      std::vector<ipc::unique_fd> fds;
      if (in_payload + header.attachments != 0) {
        fds = ipc::recv_fds(socket, in_payload + header.attachments);
        if (fds.size() != in_payload + header.attachments) _exit(74);
      }
      if (in_payload != 0) {
        std::uint64_t size = 0;
        if (args.size() != sizeof size) _exit(73);
        std::memcpy(&size, args.data(), sizeof size);
        large_args.emplace(payload::attach(std::move(fds[0]), size));
        args = large_args->bytes();
      }
      // The descriptors of crew::shared_array arguments, for the arguments' decoding.
      std::vector<int> attached;
      for (std::size_t i = in_payload; i < fds.size(); ++i) attached.push_back(fds[i].get());
      const incoming_attachments received{attached};

      auto& claim = control->claims[header.claim % claim_slots];
      auto queued = static_cast<std::uint32_t>(claim_state::queued);
      if (!claim.compare_exchange_strong(queued, static_cast<std::uint32_t>(claim_state::started),
                                         std::memory_order_acq_rel)) {
        out.skip(header.seq);  // cancelled by the parent before it started
      } else {
        control->started_ns.store(monotonic_ns(), std::memory_order_relaxed);
        control->running_seq.store(header.seq, std::memory_order_release);
        out.begin(header.seq, &received);
        const task_entry* entry =
            last != nullptr && last->id == header.task_id ? last : find_task(header.task_id);
        if (entry == nullptr) {
          out.fail(result_status::bad_request,
                   codec::encode(std::string{"the worker has no task with this id"}));
        } else {
          last = entry;
          try {
            entry->invoke(args, out);
            out.finish();
          } catch (const serialization_error& e) {
            out.fail(result_status::bad_request, codec::encode(std::string{e.what()}));
          } catch (...) {
            // Type, message, system_error code, nested chain: the caller rebuilds what it can.
            out.fail(result_status::exception, encode_exception(std::current_exception()));
          }
        }
        control->running_seq.store(0, std::memory_order_release);
      }
      large_args.reset();
      if (!message.streamed) requests.release();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crew worker %d: %s\n", static_cast<int>(getpid()), e.what());
    std::fflush(stderr);
    _exit(75);
  }
}

/// Tells the parent why this worker cannot start, then ends it.
[[noreturn]] void fail_start(std::byte* region, const worker_config& config, const std::string& why,
                             int code) {
  for (std::size_t t = 0; t < config.threads; ++t) {
    slot_control* control = control_of(region, config, t);
    const std::size_t n = std::min(why.size(), sizeof control->start_error - 1);
    std::memcpy(control->start_error, why.data(), n);
    control->start_error[n] = '\0';
  }
  std::fprintf(stderr, "crew worker %d: %s\n", static_cast<int>(getpid()), why.c_str());
  std::fflush(nullptr);
  _exit(code);
}

}  // namespace

void run_worker(std::byte* region, const worker_config& config) {
  // What this worker holds before it runs anything of its own: for a forked worker, every page
  // of the parent that was resident (shared until written). memory_limit counts what the
  // worker adds to it.
  control_of(region, config, 0)
      ->start_resident.store(own_resident_bytes(), std::memory_order_relaxed);
  // Each worker leads its own process group, so that stopping it also stops what its tasks
  // started (a helper run by system() or popen(), a daemon a library spawns): the parent's kills
  // go to the group. Done first, before a task can start anything.
  setpgid(0, 0);
  // The parent stops workers on purpose; Ctrl-C in a terminal goes to the parent, which decides.
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  install_fault_handlers();
  // exit() in a forked worker must not run the exit handlers and static destructors it
  // inherited from the parent (they would flush the parent's buffers and files a second time):
  // this handler, registered after all of them, runs first and ends the process.
  on_exit(
      [](int status, void*) {
        std::fflush(nullptr);
        _exit(status);
      },
      nullptr);
  // Libraries that start their own threads (OpenMP, BLAS) should use this process's share.
  const std::string threads = std::to_string(config.threads);
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
    setenv(name, threads.c_str(), 1);
  }

  if (config.initializer_id != 0) {
    const task_entry* init = find_task(config.initializer_id);
    if (init == nullptr) fail_start(region, config, "the initializer is not registered here", 71);
    try {
      null_sink sink;
      init->invoke(codec::encode(std::tuple<>{}), sink);
    } catch (const std::exception& e) {
      fail_start(region, config,
                 "the initializer threw " + current_exception_type_name() + ": " + e.what(), 77);
    } catch (...) {
      fail_start(region, config, "the initializer threw " + current_exception_type_name(), 77);
    }
  }

  std::vector<std::thread> others;
  for (std::size_t t = 1; t < config.threads; ++t) {
    others.emplace_back([region, &config, t] { serve_slot(region, config, t); });
  }
  serve_slot(region, config, 0);
  for (std::thread& other : others) other.join();
  std::fflush(nullptr);
  _exit(0);
}

}  // namespace crew::detail::process
