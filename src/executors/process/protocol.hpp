// executors/process/protocol.hpp — what a process pool's parent and workers say to each other,
// and where it lives in their shared memory.
//
// One shared region per pool:
//   [pool header: the collector doorbell]
//   [slot 0: control block | request ring | result ring] [slot 1: ...] ...
// A slot belongs to one worker at a time; when the worker is replaced, the parent re-creates the
// slot's rings (the dead worker can no longer touch them). Every result ring rings the one
// collector doorbell, so one parent thread sleeps until any worker answers.
//
// Messages (host byte order: the same binary on both sides):
//   request  = request_header + encoded arguments
//   result   = result_header + payload (status ok: the encoded value; exception: the encoded
//              pair<type name, what()>; bad_request: a message)
// The worker is untrusted: the parent checks every header field and decodes payloads with
// bounds checks (crew/codec.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipc/doorbell.hpp"
#include "ipc/spsc_ring.hpp"

namespace crew::detail::process {

enum class request_kind : std::uint32_t { run = 1, exit = 2 };
/// skipped: the parent cancelled the request (its claim word) before the worker reached it; the
/// task did not run. Answered anyway, so that every request has exactly one answer, in order.
enum class result_status : std::uint32_t { ok = 0, exception = 1, bad_request = 2, skipped = 3 };

struct request_header {
  std::uint64_t seq;
  std::uint64_t task_id;
  request_kind kind;
  std::uint32_t flags;        ///< flag_in_payload_fd, or 0
  std::uint32_t claim;        ///< index of the request's claim word in slot_control::claims
  std::uint32_t attachments;  ///< descriptors sent beside it (after the payload's, if any)
};

struct result_header {
  std::uint64_t seq;
  result_status status;
  std::uint32_t flags;  ///< flag_in_payload_fd or 0, | descriptors beside it << 8
};

/// A request's claim word: the parent sets `queued` before it sends the request; then exactly
/// one side moves it on with a compare-and-swap — the worker to `started` just before it runs
/// the task, or the parent to `cancelled` (the worker then skips the task). This is what lets
/// cancel() promise that a task sent ahead to a worker will not run.
enum class claim_state : std::uint32_t { queued = 0, started = 1, cancelled = 2 };

/// Requests a slot may have outstanding (sent, not answered) at once: the pipeline depth's bound.
inline constexpr std::size_t claim_slots = 256;

/// Shared by the parent and one worker thread. The worker writes running_seq, started_ns, ready,
/// fault_signal, start_error and start_resident, and moves claim words from queued to started; the
/// parent reads all of it as untrusted input.
struct alignas(128) slot_control {
  std::atomic<std::uint64_t> running_seq;  ///< task being run, 0 between tasks
  std::atomic<std::uint64_t> started_ns;   ///< CLOCK_MONOTONIC when it started
  std::atomic<std::uint32_t> ready;        ///< 1 once the worker is initialised
  /// The signal of a fault raised on this thread (SIGSEGV, SIGABRT, ...), stored by the worker's
  /// fault handler just before the process dies: names the culprit among a process's threads.
  std::atomic<std::uint32_t> fault_signal;
  /// 1 when that fault was a write to crew::shared_array memory the task received read-only.
  std::atomic<std::uint32_t> fault_read_only;
  /// Why the worker could not start (initializer threw, ...), NUL-terminated; written before
  /// the worker exits, read by the parent after it died.
  char start_error[240];
  /// The worker's resident bytes when it began, before its initializer (slot 0 of a process
  /// only; 0: unknown): what a forked worker shares with its parent, which memory_limit does not
  /// count. Written before `ready`.
  std::atomic<std::uint64_t> start_resident;
  alignas(64) std::atomic<std::uint32_t> claims[claim_slots];
};

/// Offsets of one slot's parts inside the pool region.
struct slot_layout {
  std::size_t control;
  std::size_t requests;
  std::size_t results;
};

struct region_layout {
  static constexpr std::size_t doorbell_offset = 0;
  static constexpr std::size_t slots_offset = 128;

  std::size_t channel_bytes;  // capacity of each ring (a power of two)
  std::size_t slot_count;

  [[nodiscard]] std::size_t slot_bytes() const noexcept {
    return sizeof(slot_control) + 2 * ipc::spsc_ring::footprint(channel_bytes);
  }
  [[nodiscard]] std::size_t total_bytes() const noexcept {
    return slots_offset + slot_count * slot_bytes();
  }
  [[nodiscard]] slot_layout slot(std::size_t index) const noexcept {
    const std::size_t base = slots_offset + index * slot_bytes();
    return {base, base + sizeof(slot_control),
            base + sizeof(slot_control) + ipc::spsc_ring::footprint(channel_bytes)};
  }
};

/// Everything a worker needs to serve a slot (passed through fork, or encoded into the
/// environment of an exec'd worker).
/// Most threads one worker process may run (hybrid_pool's threads_per_process).
inline constexpr std::size_t max_threads_per_process = 64;

struct worker_config {
  int region_fd = -1;
  std::size_t region_bytes = 0;
  std::size_t channel_bytes = 0;
  std::size_t slot_count = 0;
  std::size_t slot = 0;              ///< the first slot this process serves
  std::size_t threads = 1;           ///< it serves slots [slot, slot + threads), one thread each
  std::uint64_t initializer_id = 0;  ///< 0: none
  std::size_t max_tasks = 0;         ///< 0: unlimited
  int parent_pid = 0;
  /// The worker's end of each slot's socket (descriptors: large payloads, shared arrays), by
  /// thread.
  int socket_fds[max_threads_per_process] = {};
};

/// request_header::flags / result_header::flags: the payload is a u64 size, and the bytes
/// are in a memfd sent over the slot's socket just before the message.
inline constexpr std::uint32_t flag_in_payload_fd = 1;
/// Where a result header's flags hold the number of descriptors sent beside it.
inline constexpr unsigned attachments_shift = 8;

/// Messages (header included) up to this size travel in the ring itself; larger ones in a
/// memfd. A quarter of the ring keeps several messages in flight, and 64 KiB bounds what one
/// message holds the ring for (a memfd costs ~10 µs; copying 64 KiB about as much).
inline constexpr std::size_t inline_limit_for(std::size_t max_message_size) noexcept {
  const std::size_t quarter = max_message_size / 4;
  return quarter < 64 * 1024 ? quarter : 64 * 1024;
}
inline std::size_t inline_limit(const ipc::ring_writer& ring) noexcept {
  return inline_limit_for(ring.max_message_size());
}

/// Smallest and largest channel_bytes a pool accepts (before rounding up to a power of two).
inline constexpr std::size_t min_channel_bytes = 4096;
inline constexpr std::size_t max_channel_bytes = std::size_t{1} << 30;

/// The worker process: serves its slots (one thread each) until every slot is told to exit or
/// the parent dies. `region` is the mapped pool region. Never returns; ends the process with
/// _exit. Sets OMP_NUM_THREADS and friends to `threads` so that libraries inside tasks do not
/// oversubscribe the machine.
[[noreturn]] void run_worker(std::byte* region, const worker_config& config);

}  // namespace crew::detail::process
