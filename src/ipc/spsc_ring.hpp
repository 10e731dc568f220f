// ipc/spsc_ring.hpp — a single-producer single-consumer ring of variable-length messages in
// shared memory, safe against a peer that scribbles on it.
//
// Purpose: the request channel (parent → worker) and result channel (worker → parent) of a
// process pool. A ring is placed at an offset of an externally owned region (shared_region), so
// several rings and doorbells can share one region. Layout at that offset:
//   ring_header (640 bytes: constants, head, tail and the two doorbells on separate 128-byte
//   lines, so producer and consumer never write the same line) followed by `capacity` data bytes.
// The data area holds records, each an 8-byte record header {u32 size, u32 kind} plus payload,
// padded to 8 bytes and never wrapping: a record that would cross the end is preceded by a
// padding record that fills the rest of the ring. `head` and `tail` are byte counters that only
// grow (64-bit: they do not wrap in practice); offset = counter mod capacity.
//
// API: ring_writer::reserve(n) → span to encode into in place; commit(used). ring_reader::peek()
// → the next message in place; release(). Messages up to max_message_size() (capacity − 8)
// travel whole; ring_writer::write() streams larger ones as fragments (first / middle / last,
// the first carrying the total size) while the reader drains them with read_streamed() into a
// caller buffer, so a 1 GiB message passes through a 4 MiB ring.
//
// Memory ordering:
//   writer: payload stores → head.store(release) [C1] → data doorbell ring() (an RMW, see
//           doorbell.hpp).  Reader: head.load(acquire) [R1] pairs with C1, so the payload is
//           visible before the reader looks at it.
//   reader: payload loads → tail.store(release) [R2] → space doorbell ring(). Writer:
//           tail.load(acquire) [C2] pairs with R2, so the writer never overwrites bytes the
//           reader is still reading.
//   Sleeping: the reader waits on the data doorbell (its own, or a shared one given at create),
//   the writer on the ring's space doorbell; the Dekker argument is in doorbell.hpp.
//
// Untrusted peer: each endpoint keeps its own counter in local memory and only WRITES it to the
// shared header; it reads the other side's counter and validates it (the reader: 0 ≤ head − tail
// ≤ capacity, 8-aligned; the writer: tail between its last-seen tail and its head) and every
// record header (known kind, size within the published bytes and within the ring, fragments in
// order and adding up to the announced total). Any violation throws corrupt_channel and the
// endpoint stays broken. The ring's constants (capacity, doorbell offset) are read from shared
// memory only by attach(), i.e. by the side that trusts the creator; the creator keeps its own
// copies. Bytes of a message returned in place may still change under a misbehaving peer: decode
// them with bounds checks, reading each field once.
//
// Thread-safety: one ring_writer and one ring_reader per ring, each used by one thread at a time
// (they may be in different processes). spsc_ring itself is an immutable view.
// Blocking: reserve, write, wait_peek, read_streamed and receive block (spin, then futex) as
// wait_options says, and throw wait_timeout / peer_lost instead of hanging. try_reserve, commit,
// peek and release never block and make no system call unless the peer sleeps.
// Lifetime: the views point into the region; the region must outlive them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "ipc/doorbell.hpp"
#include "ipc/error.hpp"

namespace crew::detail::ipc {

/// The shared part of a ring. Exposed for tests and diagnostics.
struct ring_header {
  static constexpr std::uint64_t magic_value = 0x676e69725f776572;  // "rew_ring"
  static constexpr std::uint32_t version_value = 1;

  // Written once by spsc_ring::create, read by spsc_ring::attach.
  alignas(128) std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t reserved;
  std::uint64_t capacity;
  std::uint64_t data_bell_offset;  ///< region offset of the doorbell that commits ring
  // Written by the writer only.
  alignas(128) std::atomic<std::uint64_t> head;
  // Written by the reader only.
  alignas(128) std::atomic<std::uint64_t> tail;
  // The ring's own doorbells: the reader sleeps on data_bell (unless a shared doorbell was
  // given), the writer on space_bell.
  alignas(128) doorbell data_bell;
  alignas(128) doorbell space_bell;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// Record kinds in the data area (the u32 after a record's size).
enum class record_kind : std::uint32_t {
  whole = 1,
  padding = 2,
  first = 3,  ///< payload: u64 total size, then the first bytes of the message
  middle = 4,
  last = 5,
};

/// A non-owning, immutable view of a ring placed in a region. Cheap to copy.
class spsc_ring {
 public:
  static constexpr std::size_t header_bytes = sizeof(ring_header);
  static constexpr std::size_t record_header_bytes = 8;
  static constexpr std::size_t min_capacity = 256;
  static constexpr std::size_t max_capacity = std::size_t{1} << 31;
  static constexpr std::size_t alignment = 128;

  /// Bytes a ring of `capacity` occupies in a region (its offset must be 128-aligned).
  [[nodiscard]] static constexpr std::size_t footprint(std::size_t capacity) noexcept {
    return header_bytes + capacity;
  }

  /// Initialises a ring at `offset` of `region`. `capacity` is a power of two in
  /// [min_capacity, max_capacity]. With `data_bell_offset`, commits ring that doorbell (made by
  /// make_doorbell, possibly shared with other rings) instead of the ring's own. Throws
  /// std::invalid_argument on a bad layout. Call before any peer uses the memory.
  [[nodiscard]] static spsc_ring create(std::span<std::byte> region, std::size_t offset,
                                        std::size_t capacity,
                                        std::optional<std::size_t> data_bell_offset = {});

  /// A view of a ring that create() made at `offset` (e.g. after shared_region::attach in an
  /// exec'd worker). Validates the header; throws corrupt_channel if it is not a ring.
  [[nodiscard]] static spsc_ring attach(std::span<std::byte> region, std::size_t offset);

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// The largest message that travels in one record; ring_writer::write streams larger ones.
  [[nodiscard]] std::size_t max_message_size() const noexcept {
    return capacity_ - record_header_bytes;
  }
  [[nodiscard]] ring_header& header() const noexcept { return *header_; }
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] doorbell& data_bell() const noexcept { return *data_bell_; }
  [[nodiscard]] doorbell& space_bell() const noexcept { return header_->space_bell; }

 private:
  spsc_ring(ring_header* header, std::size_t capacity, doorbell* data_bell) noexcept
      : header_(header),
        data_(reinterpret_cast<std::byte*>(header) + header_bytes),
        capacity_(capacity),
        data_bell_(data_bell) {}

  ring_header* header_;
  std::byte* data_;
  std::size_t capacity_;
  doorbell* data_bell_;
};

/// The producing end. One per ring.
class ring_writer {
 public:
  /// Starts at the ring's current head. Throws corrupt_channel if head/tail are inconsistent.
  explicit ring_writer(const spsc_ring& ring);

  [[nodiscard]] std::size_t max_message_size() const noexcept { return ring_.max_message_size(); }

  /// Room for an `n`-byte message in shared memory, or nullopt if the ring has no room now.
  /// Throws std::length_error if n > max_message_size(), corrupt_channel on a bad tail.
  /// Only one reservation may be open; commit() closes it.
  [[nodiscard]] std::optional<std::span<std::byte>> try_reserve(std::size_t n);

  /// Like try_reserve but waits for room (spin, then sleep on the space doorbell).
  [[nodiscard]] std::span<std::byte> reserve(std::size_t n, const wait_options& opts = {});

  /// Publishes the reserved message, keeping its first `used` bytes (used ≤ reserved size).
  /// Wakes the reader only if it sleeps. No-op without an open reservation.
  void commit(std::size_t used) noexcept;
  void commit() noexcept { commit(reserved_); }

  /// Copies `message` into the ring; any size (streams in fragments when larger than
  /// max_message_size(), blocking while the reader drains).
  void write(std::span<const std::byte> message, const wait_options& opts = {});

 private:
  bool has_space(std::size_t bytes);
  std::optional<std::span<std::byte>> try_reserve_record(std::size_t n);
  std::span<std::byte> reserve_record(std::size_t n, const wait_options& opts);
  void commit_record(std::size_t used, record_kind kind) noexcept;
  [[noreturn]] void fail(const char* what);

  spsc_ring ring_;
  std::uint64_t head_;        // our counter; the shared head is only written
  std::uint64_t tail_seen_;   // last validated value of the shared tail
  std::size_t reserved_ = 0;  // payload bytes of the open reservation
  bool open_ = false;         // a reservation is open
  bool broken_ = false;
};

/// A message at the front of the ring, as seen by peek().
struct ring_message {
  std::span<const std::byte> bytes;  ///< the whole message in place; empty if `streamed`
  std::uint64_t size = 0;            ///< total size in bytes
  bool streamed = false;             ///< fragments follow: read them with read_streamed()
};

/// The consuming end. One per ring.
class ring_reader {
 public:
  /// Starts at the ring's current tail. Throws corrupt_channel if head/tail are inconsistent.
  explicit ring_reader(const spsc_ring& ring);

  /// True when the writer published something not yet consumed (perhaps only padding). Reads
  /// one shared word; never throws. Useful as a wait_until condition over many rings.
  [[nodiscard]] bool readable() const noexcept {
    return ring_.header().head.load(std::memory_order_acquire) != tail_;  // R1
  }

  /// The next message, or nullopt if none is published. A whole message stays valid until
  /// release(); a streamed one must be read with read_streamed(). Calling peek() again
  /// without release returns the same message. Throws corrupt_channel.
  [[nodiscard]] std::optional<ring_message> peek();

  /// Like peek() but waits for a message.
  [[nodiscard]] ring_message wait_peek(const wait_options& opts = {});

  /// Consumes the whole message that peek() returned. No-op if there is none or if it is a
  /// streamed one (read_streamed() consumes those).
  void release() noexcept;

  /// After peek() returned a streamed message of `size` bytes: copies all of it into `dest`
  /// (dest.size() must equal size, else std::invalid_argument), waiting for each fragment.
  void read_streamed(std::span<std::byte> dest, const wait_options& opts = {});

  /// Waits for the next message and copies it into `out` (resized). Throws corrupt_channel if
  /// it announces more than `max_size` bytes.
  void receive(std::vector<std::byte>& out, const wait_options& opts = {},
               std::size_t max_size = std::size_t{1} << 32);

 private:
  struct record {
    record_kind kind;
    std::size_t size;  // payload bytes
    const std::byte* payload;
    std::size_t span;  // bytes the record occupies (header + payload + alignment)
  };
  std::optional<record> next_record();
  void consume(std::size_t span) noexcept;
  [[noreturn]] void fail(const char* what);

  spsc_ring ring_;
  std::uint64_t tail_;               // our counter; the shared tail is only written
  std::uint64_t head_seen_;          // last validated value of the shared head
  std::optional<record> pending_;    // the record peek() returned
  std::uint64_t pending_total_ = 0;  // announced size, when pending_ is a first fragment
  bool broken_ = false;
};

}  // namespace crew::detail::ipc
