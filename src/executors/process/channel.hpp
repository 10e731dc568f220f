// executors/process/channel.hpp — the parent's end of one worker thread's channel pair: the
// transport of a process pool.
//
// A channel is a request ring (parent → worker), a result ring (worker → parent), a Unix socket
// for descriptors (large payloads' memfds, and those of crew::shared_array values, which travel
// beside a message: crew/detail/attachments.hpp), and the slot's control block, all made
// fresh for each worker the slot gets. It speaks the wire protocol and nothing else: it knows
// neither which task is which nor when processes live or die.
//
// Sending: anything whose encoding (header included) exceeds the ring's inline limit travels in
// a memfd, so a message of any size gets through a ring of any (valid) size. Receiving: every
// field the worker wrote is checked; a message that breaks the protocol throws protocol_error,
// and the caller decides what to do with the worker.
//
// Thread-safety: none of its own. The scheduler's lock serialises the sending side; the lane's
// read lock serialises the receiving side; the two sides may run at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "executors/process/payload.hpp"
#include "executors/process/protocol.hpp"
#include "ipc/shared_region.hpp"
#include "ipc/spsc_ring.hpp"
#include "ipc/unique_fd.hpp"

namespace crew::detail::process {

/// The worker broke the wire protocol: it can no longer be trusted with tasks.
class protocol_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One request to send: the encoded arguments, in memory or already in a memfd.
struct outgoing_request {
  std::uint64_t seq = 0;
  std::uint64_t task_id = 0;
  std::span<const std::byte> args;  // when `large` is null
  const payload* large = nullptr;
  std::span<const int> attachments;  // descriptors that go along (crew::shared_array)
};

/// One result as received; `body` stays valid until release().
struct incoming_result {
  std::uint64_t seq = 0;
  result_status status = result_status::ok;
  std::span<const std::byte> body;
  std::optional<payload> large;             // holds `body` when the result came in a memfd
  std::vector<ipc::unique_fd> attachments;  // descriptors that came along (crew::shared_array)
  /// Non-empty when a large result could not be taken for a reason of this process (no
  /// descriptor or address space left): the task's result is lost, the worker is not at fault.
  std::string lost;
};

class channel {
 public:
  /// Builds the slot's rings and control block afresh in `region` (no worker may be attached to
  /// the old ones any more) and a socket pair; `worker_socket` receives the worker's end.
  channel(ipc::shared_region& region, const region_layout& layout, std::size_t slot,
          ipc::unique_fd& worker_socket);

  enum class send_status {
    sent,
    full,       ///< no room now; results will make some
    peer_gone,  ///< the worker's end of the socket is closed: it died (its death is reported)
  };
  /// Sends `request` with claim word `claim` (set to queued first). Throws protocol_error when
  /// the worker corrupted its request ring.
  send_status send(const outgoing_request& request, std::uint32_t claim);
  /// Asks the worker thread to exit after what it was sent. False when the ring is full.
  bool send_exit();

  /// The next result, or nothing. Throws protocol_error for a malformed message (the message is
  /// consumed: the caller must not call release()).
  std::optional<incoming_result> receive();
  /// Frees the ring space of the result receive() returned.
  void release() noexcept;
  [[nodiscard]] bool readable() const noexcept;

  /// Moves claim `claim` from queued to cancelled. False when the worker started it first.
  bool cancel_claim(std::uint32_t claim) noexcept;
  [[nodiscard]] bool claim_started(std::uint32_t claim) const noexcept;

  [[nodiscard]] slot_control& control() const noexcept { return *control_; }
  /// Largest encoded argument size that still travels inside the request ring.
  [[nodiscard]] std::size_t inline_args_limit() const noexcept;

 private:
  slot_control* control_;
  ipc::ring_writer requests_;
  ipc::ring_reader results_;
  ipc::unique_fd socket_;
};

}  // namespace crew::detail::process
