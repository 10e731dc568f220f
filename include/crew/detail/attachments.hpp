// crew/detail/attachments.hpp — descriptors that travel beside an encoded message.
//
// Purpose: a crew::shared_array crosses to another process as a memfd descriptor, not as its
// bytes. The codec writes bytes only, so the descriptors ride beside the message: while a
// transport that can carry descriptors (a process pool's Unix socket) encodes a message, it
// points `outgoing` at a list that serialize() appends to; while it decodes one, it points
// `incoming` at the descriptors that arrived with it. Without a list (an MPI message, a plain
// codec::encode), such a value refuses to be encoded: it cannot leave the machine.
// Thread-safety: the pointers are thread_local; a list belongs to the thread that set it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace crew::detail {

/// Descriptors a message being encoded sends along. Each entry keeps the object whose
/// descriptor it is alive (the descriptor is not copied) until the message has gone.
struct outgoing_attachments {
  std::vector<std::pair<int, std::shared_ptr<const void>>> entries;

  [[nodiscard]] std::size_t size() const noexcept { return entries.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries.empty(); }
  [[nodiscard]] std::vector<int> fds() const {
    std::vector<int> out;
    out.reserve(entries.size());
    for (const auto& entry : entries) out.push_back(entry.first);
    return out;
  }
};

/// Descriptors that arrived with a message being decoded (owned by the receiver; a value that
/// takes one duplicates it).
struct incoming_attachments {
  std::span<const int> fds;
};

inline thread_local outgoing_attachments* outgoing = nullptr;
inline thread_local const incoming_attachments* incoming = nullptr;

/// Points `outgoing` at `list` for the scope's life (null: no descriptor may go along).
class sending_attachments {
 public:
  explicit sending_attachments(outgoing_attachments* list) noexcept
      : previous_(std::exchange(outgoing, list)) {}
  sending_attachments(const sending_attachments&) = delete;
  sending_attachments& operator=(const sending_attachments&) = delete;
  ~sending_attachments() { outgoing = previous_; }

 private:
  outgoing_attachments* previous_;
};

/// Points `incoming` at `list` for the scope's life (null: none arrived).
class receiving_attachments {
 public:
  explicit receiving_attachments(const incoming_attachments* list) noexcept
      : previous_(std::exchange(incoming, list)) {}
  receiving_attachments(const receiving_attachments&) = delete;
  receiving_attachments& operator=(const receiving_attachments&) = delete;
  ~receiving_attachments() { incoming = previous_; }

 private:
  const incoming_attachments* previous_;
};

/// Most descriptors one message may carry (below the kernel's SCM_MAX_FD of 253, leaving room
/// for a large payload's own memfd).
inline constexpr std::size_t max_attachments = 64;

}  // namespace crew::detail
