#include "executors/process/channel.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>
#include <vector>

#include "crew/codec.hpp"
#include "crew/detail/attachments.hpp"
#include "ipc/fd_passing.hpp"

namespace crew::detail::process {
namespace {

constexpr auto as_word(claim_state state) noexcept {
  return static_cast<std::uint32_t>(state);
}

bool peer_closed(const std::system_error& e) noexcept {
  const int code = e.code().value();
  return code == EPIPE || code == ECONNRESET || code == ENOTCONN;
}

}  // namespace

channel::channel(ipc::shared_region& region, const region_layout& layout, std::size_t slot,
                 ipc::unique_fd& worker_socket)
    : control_(new (region.data() + layout.slot(slot).control) slot_control{}),
      requests_(
          ipc::spsc_ring::create(region.bytes(), layout.slot(slot).requests, layout.channel_bytes)),
      results_(ipc::spsc_ring::create(region.bytes(), layout.slot(slot).results,
                                      layout.channel_bytes, region_layout::doorbell_offset)) {
  auto [parent_end, worker_end] = ipc::make_socketpair();
  if (fcntl(parent_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "crew process_pool: fcntl");
  }
  socket_ = std::move(parent_end);
  worker_socket = std::move(worker_end);
}

std::size_t channel::inline_args_limit() const noexcept {
  return inline_limit(requests_) - sizeof(request_header);
}

channel::send_status channel::send(const outgoing_request& request, std::uint32_t claim) {
  request_header header{request.seq,
                        request.task_id,
                        request_kind::run,
                        0,
                        claim % static_cast<std::uint32_t>(claim_slots),
                        static_cast<std::uint32_t>(request.attachments.size())};
  std::span<const std::byte> body = request.args;
  std::uint64_t large_size = 0;
  if (request.large != nullptr) {
    header.flags = flag_in_payload_fd;
    large_size = request.large->size();
    body = std::as_bytes(std::span{&large_size, 1});
  } else if (body.size() > inline_args_limit()) {
    // The pool encodes large arguments straight into a memfd; this only guards the contract.
    throw std::length_error("crew process_pool: arguments too large for the request ring");
  }
  const std::size_t total = sizeof header + body.size();
  std::optional<std::span<std::byte>> room;
  try {
    room = requests_.try_reserve(total);
  } catch (const ipc::corrupt_channel& e) {
    throw protocol_error(std::string{"the worker corrupted its request ring: "} + e.what());
  }
  if (!room) return send_status::full;
  if (request.large != nullptr || !request.attachments.empty()) {
    // The payload's memfd first, then the descriptors of the arguments, in one message.
    std::vector<int> fds;
    fds.reserve(1 + request.attachments.size());
    if (request.large != nullptr) fds.push_back(request.large->fd());
    fds.insert(fds.end(), request.attachments.begin(), request.attachments.end());
    try {
      ipc::send_fds(socket_.get(), fds);
    } catch (const std::system_error& e) {
      if (e.code().value() == EAGAIN || e.code().value() == EWOULDBLOCK) return send_status::full;
      if (peer_closed(e)) return send_status::peer_gone;
      throw;
    }
  }
  control_->claims[header.claim].store(as_word(claim_state::queued), std::memory_order_relaxed);
  std::memcpy(room->data(), &header, sizeof header);
  if (!body.empty()) std::memcpy(room->data() + sizeof header, body.data(), body.size());
  requests_.commit(total);  // release: the claim word and the message before the new head
  return send_status::sent;
}

bool channel::send_exit() {
  const request_header bye{0, 0, request_kind::exit, 0, 0, 0};
  std::optional<std::span<std::byte>> room;
  try {
    room = requests_.try_reserve(sizeof bye);
  } catch (const ipc::corrupt_channel&) {
    return false;
  }
  if (!room) return false;
  std::memcpy(room->data(), &bye, sizeof bye);
  requests_.commit();
  return true;
}

bool channel::readable() const noexcept {
  return results_.readable();
}

std::optional<incoming_result> channel::receive() {
  std::optional<ipc::ring_message> message;
  try {
    message = results_.peek();
  } catch (const std::exception& e) {
    throw protocol_error(std::string{"the worker corrupted its result ring: "} + e.what());
  }
  if (!message) return std::nullopt;
  result_header header{};
  if (message->streamed || message->bytes.size() < sizeof header) {
    throw protocol_error("the worker sent a malformed result message");
  }
  std::memcpy(&header, message->bytes.data(), sizeof header);
  incoming_result out;
  out.seq = header.seq;
  out.status = header.status;
  out.body = message->bytes.subspan(sizeof header);
  switch (header.status) {
    case result_status::ok:
    case result_status::exception:
    case result_status::bad_request:
    case result_status::skipped:
      break;
    default:
      throw protocol_error("the worker sent a result with an unknown status");
  }
  const std::uint32_t in_payload = header.flags & flag_in_payload_fd;
  const std::uint32_t attached = header.flags >> attachments_shift;
  if ((header.flags & ~(flag_in_payload_fd | (0xffU << attachments_shift))) != 0 ||
      attached > max_attachments || (attached != 0 && header.status != result_status::ok)) {
    throw protocol_error("the worker sent a result with unknown flags");
  }
  // Out of descriptors or memory here: the result is lost, but the worker is not at fault.
  const auto ours = [](const std::system_error& e) {
    const int code = e.code().value();
    return e.code().category() == std::system_category() &&
           (code == EMFILE || code == ENFILE || code == ENOMEM);
  };
  std::vector<ipc::unique_fd> fds;
  if (in_payload != 0 || attached != 0) {
    try {
      // The worker sent the descriptors before the message; the socket is non-blocking.
      fds = ipc::recv_fds(socket_.get(), in_payload + attached);
    } catch (const std::system_error& e) {
      if (!ours(e)) {
        throw protocol_error(std::string{"a result arrived without its descriptors: "} + e.what());
      }
      out.lost = e.what();
      out.body = {};
      return out;
    } catch (const std::exception& e) {
      throw protocol_error(std::string{"a result arrived without its descriptors: "} + e.what());
    }
    if (fds.size() != in_payload + attached) {
      throw protocol_error("a result arrived without its descriptors");
    }
    for (std::size_t i = in_payload; i < fds.size(); ++i) {
      out.attachments.push_back(std::move(fds[i]));
    }
  }
  if (in_payload != 0) {
    std::uint64_t size = 0;
    if (out.body.size() != sizeof size) throw protocol_error("bad large-result reference");
    std::memcpy(&size, out.body.data(), sizeof size);
    try {
      out.large.emplace(payload::attach_untrusted(std::move(fds[0]), size));
    } catch (const std::system_error& e) {
      if (!ours(e)) throw protocol_error(e.what());
      out.lost = e.what();
      out.body = {};
      return out;
    } catch (const std::exception& e) {
      throw protocol_error(e.what());
    }
    out.body = out.large->bytes();
  }
  return out;
}

void channel::release() noexcept {
  results_.release();
}

bool channel::cancel_claim(std::uint32_t claim) noexcept {
  auto queued = as_word(claim_state::queued);
  return control_->claims[claim % claim_slots].compare_exchange_strong(
      queued, as_word(claim_state::cancelled), std::memory_order_acq_rel);
}

bool channel::claim_started(std::uint32_t claim) const noexcept {
  return control_->claims[claim % claim_slots].load(std::memory_order_acquire) ==
         as_word(claim_state::started);
}

}  // namespace crew::detail::process
