#include "ipc/spsc_ring.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <stdexcept>

namespace crew::detail::ipc {
namespace {

constexpr std::size_t align8(std::size_t n) noexcept {
  return (n + 7) & ~std::size_t{7};
}

// Records are at least this large: the header alone.
constexpr std::size_t rec_hdr = spsc_ring::record_header_bytes;

// Streamed messages go in fragments of at most a quarter of the ring, so the writer fills one
// fragment while the reader copies out another.
std::size_t fragment_payload(std::size_t capacity) noexcept {
  return capacity / 4 - rec_hdr;
}

bool valid_capacity(std::uint64_t c) noexcept {
  return c >= spsc_ring::min_capacity && c <= spsc_ring::max_capacity && std::has_single_bit(c);
}

bool fits(std::span<std::byte> region, std::size_t offset, std::size_t bytes) noexcept {
  return offset <= region.size() && region.size() - offset >= bytes;
}

}  // namespace

// --- spsc_ring ----------------------------------------------------------------------------

spsc_ring spsc_ring::create(std::span<std::byte> region, std::size_t offset, std::size_t capacity,
                            std::optional<std::size_t> data_bell_offset) {
  if (!valid_capacity(capacity)) {
    throw std::invalid_argument("spsc_ring: capacity must be a power of two in [256, 2^31]");
  }
  if (offset % alignment != 0 || reinterpret_cast<std::uintptr_t>(region.data()) % alignment != 0 ||
      !fits(region, offset, footprint(capacity))) {
    throw std::invalid_argument("spsc_ring: ring does not fit the region or is misaligned");
  }
  auto* h = ::new (region.data() + offset) ring_header{};
  h->magic = ring_header::magic_value;
  h->version = ring_header::version_value;
  h->capacity = capacity;
  doorbell* bell = &h->data_bell;
  if (data_bell_offset) {
    if (*data_bell_offset >= offset && *data_bell_offset < offset + footprint(capacity)) {
      throw std::invalid_argument("spsc_ring: shared doorbell overlaps the ring");
    }
    bell = &doorbell_at(region, *data_bell_offset);
    h->data_bell_offset = *data_bell_offset;
  } else {
    h->data_bell_offset = offset + offsetof(ring_header, data_bell);
  }
  // Release so that a peer that learns of the ring through another atomic sees it initialised.
  h->head.store(0, std::memory_order_release);
  h->tail.store(0, std::memory_order_release);
  return spsc_ring(h, capacity, bell);
}

spsc_ring spsc_ring::attach(std::span<std::byte> region, std::size_t offset) {
  if (offset % alignment != 0 || reinterpret_cast<std::uintptr_t>(region.data()) % alignment != 0 ||
      !fits(region, offset, header_bytes)) {
    throw corrupt_channel("spsc_ring::attach: header out of the region or misaligned");
  }
  auto* h = std::launder(reinterpret_cast<ring_header*>(region.data() + offset));
  const std::uint64_t capacity = h->capacity;
  const std::uint64_t bell_offset = h->data_bell_offset;
  if (h->magic != ring_header::magic_value || h->version != ring_header::version_value ||
      !valid_capacity(capacity) || !fits(region, offset, footprint(capacity)) ||
      bell_offset % alignof(doorbell) != 0 || !fits(region, bell_offset, sizeof(doorbell))) {
    throw corrupt_channel("spsc_ring::attach: not a valid ring header");
  }
  auto* bell = std::launder(reinterpret_cast<doorbell*>(region.data() + bell_offset));
  return spsc_ring(h, capacity, bell);
}

// --- ring_writer --------------------------------------------------------------------------

ring_writer::ring_writer(const spsc_ring& ring) : ring_(ring) {
  head_ = ring_.header().head.load(std::memory_order_relaxed);
  tail_seen_ = ring_.header().tail.load(std::memory_order_acquire);
  if (head_ - tail_seen_ > ring_.capacity() || head_ % 8 != 0 || tail_seen_ % 8 != 0) {
    fail("ring_writer: head/tail inconsistent");
  }
}

void ring_writer::fail(const char* what) {
  broken_ = true;
  throw corrupt_channel(what);
}

bool ring_writer::has_space(std::size_t bytes) {
  const std::size_t cap = ring_.capacity();
  if (cap - (head_ - tail_seen_) >= bytes) return true;
  const std::uint64_t t = ring_.header().tail.load(std::memory_order_acquire);  // C2: pairs with R2
  // The reader may only move tail forward, and never past what we published.
  if (t - tail_seen_ > head_ - tail_seen_ || t % 8 != 0) fail("spsc_ring: tail out of range");
  tail_seen_ = t;
  return cap - (head_ - tail_seen_) >= bytes;
}

std::optional<std::span<std::byte>> ring_writer::try_reserve_record(std::size_t n) {
  if (broken_) throw corrupt_channel("spsc_ring: writer is broken");
  const std::size_t cap = ring_.capacity();
  const std::size_t need = align8(rec_hdr + n);
  std::size_t off = head_ & (cap - 1);
  if (off + need > cap) {
    // Records never wrap: fill the rest of the ring with padding first, and publish it at once
    // so the reader frees that space for us. The reader must be woken for it too: if the
    // record needs more room than the padding leaves free, we are about to sleep on the space
    // doorbell, and a reader asleep on the data doorbell would never free it.
    const std::size_t pad = cap - off;
    if (!has_space(pad)) return std::nullopt;
    const std::uint32_t hdr[2] = {static_cast<std::uint32_t>(pad - rec_hdr),
                                  static_cast<std::uint32_t>(record_kind::padding)};
    std::memcpy(ring_.data() + off, hdr, sizeof hdr);
    head_ += pad;
    ring_.header().head.store(head_, std::memory_order_release);  // C1
    ring_.data_bell().ring();
    off = 0;
  }
  if (!has_space(need)) return std::nullopt;
  reserved_ = n;
  open_ = true;
  return std::span<std::byte>(ring_.data() + off + rec_hdr, n);
}

std::span<std::byte> ring_writer::reserve_record(std::size_t n, const wait_options& opts) {
  for (;;) {
    if (auto s = try_reserve_record(n)) return *s;
    // Wait until the reader has freed what the next attempt needs (padding or the record).
    const std::size_t cap = ring_.capacity();
    const std::size_t off = head_ & (cap - 1);
    const std::size_t need = align8(rec_hdr + n);
    const std::size_t want = off + need > cap ? cap - off : need;
    wait_until(
        ring_.space_bell(), [&] { return has_space(want); }, opts);
  }
}

std::optional<std::span<std::byte>> ring_writer::try_reserve(std::size_t n) {
  if (n > max_message_size()) throw std::length_error("spsc_ring: message larger than the ring");
  return try_reserve_record(n);
}

std::span<std::byte> ring_writer::reserve(std::size_t n, const wait_options& opts) {
  if (n > max_message_size()) throw std::length_error("spsc_ring: message larger than the ring");
  return reserve_record(n, opts);
}

void ring_writer::commit_record(std::size_t used, record_kind kind) noexcept {
  if (!open_) return;  // nothing reserved: publishing would overwrite unread bytes
  open_ = false;
  used = std::min(used, reserved_);
  const std::size_t off = head_ & (ring_.capacity() - 1);
  const std::uint32_t hdr[2] = {static_cast<std::uint32_t>(used), static_cast<std::uint32_t>(kind)};
  std::memcpy(ring_.data() + off, hdr, sizeof hdr);
  head_ += align8(rec_hdr + used);
  reserved_ = 0;
  ring_.header().head.store(head_, std::memory_order_release);  // C1: pairs with R1
  ring_.data_bell().ring();
}

void ring_writer::commit(std::size_t used) noexcept {
  commit_record(used, record_kind::whole);
}

void ring_writer::write(std::span<const std::byte> message, const wait_options& opts) {
  if (message.size() <= max_message_size()) {
    auto dst = reserve_record(message.size(), opts);
    if (!message.empty()) std::memcpy(dst.data(), message.data(), message.size());
    commit_record(message.size(), record_kind::whole);
    return;
  }
  const std::size_t chunk = fragment_payload(ring_.capacity());
  const std::uint64_t total = message.size();
  // First fragment: the total size, then data.
  std::size_t n = std::min<std::size_t>(chunk - 8, message.size());
  auto dst = reserve_record(8 + n, opts);
  std::memcpy(dst.data(), &total, 8);
  std::memcpy(dst.data() + 8, message.data(), n);
  commit_record(8 + n, record_kind::first);
  std::size_t done = n;
  while (done < message.size()) {
    n = std::min(chunk, message.size() - done);
    const bool is_last = done + n == message.size();
    dst = reserve_record(n, opts);
    std::memcpy(dst.data(), message.data() + done, n);
    commit_record(n, is_last ? record_kind::last : record_kind::middle);
    done += n;
  }
}

// --- ring_reader --------------------------------------------------------------------------

ring_reader::ring_reader(const spsc_ring& ring) : ring_(ring) {
  tail_ = ring_.header().tail.load(std::memory_order_relaxed);
  head_seen_ = ring_.header().head.load(std::memory_order_acquire);
  if (head_seen_ - tail_ > ring_.capacity() || head_seen_ % 8 != 0 || tail_ % 8 != 0) {
    fail("ring_reader: head/tail inconsistent");
  }
}

void ring_reader::fail(const char* what) {
  broken_ = true;
  pending_.reset();
  throw corrupt_channel(what);
}

std::optional<ring_reader::record> ring_reader::next_record() {
  if (broken_) throw corrupt_channel("spsc_ring: reader is broken");
  const std::size_t cap = ring_.capacity();
  if (head_seen_ == tail_) {
    const std::uint64_t h = ring_.header().head.load(std::memory_order_acquire);  // R1: pairs C1
    // The writer may only publish up to a full ring ahead of us, in 8-byte steps.
    if (h - tail_ > cap || h % 8 != 0) fail("spsc_ring: head out of range");
    head_seen_ = h;
    if (h == tail_) return std::nullopt;
  }
  const std::size_t avail = head_seen_ - tail_;  // > 0 and a multiple of 8
  const std::size_t off = tail_ & (cap - 1);
  std::uint32_t hdr[2];
  std::memcpy(hdr, ring_.data() + off, sizeof hdr);  // read once; validate the copy
  const std::size_t size = hdr[0];
  const auto kind = static_cast<record_kind>(hdr[1]);
  if (hdr[1] < static_cast<std::uint32_t>(record_kind::whole) ||
      hdr[1] > static_cast<std::uint32_t>(record_kind::last)) {
    fail("spsc_ring: unknown record kind");
  }
  const std::size_t span = align8(rec_hdr + size);
  if (span > avail || span > cap - off) fail("spsc_ring: record length past the published data");
  if (kind == record_kind::padding && off + span != cap) fail("spsc_ring: padding not at the end");
  return record{kind, size, ring_.data() + off + rec_hdr, span};
}

void ring_reader::consume(std::size_t span) noexcept {
  tail_ += span;
  ring_.header().tail.store(tail_, std::memory_order_release);  // R2: pairs with C2
  ring_.space_bell().ring();
}

std::optional<ring_message> ring_reader::peek() {
  for (;;) {
    auto r = next_record();
    if (!r) return std::nullopt;
    switch (r->kind) {
      case record_kind::padding:
        consume(r->span);
        continue;
      case record_kind::whole:
        pending_ = r;
        return ring_message{{r->payload, r->size}, r->size, false};
      case record_kind::first: {
        std::uint64_t total = 0;
        if (r->size < 8) fail("spsc_ring: first fragment too short");
        std::memcpy(&total, r->payload, 8);
        if (total <= r->size - 8) fail("spsc_ring: streamed message shorter than its first part");
        pending_ = r;
        pending_total_ = total;
        return ring_message{{}, total, true};
      }
      default:
        fail("spsc_ring: fragment without a first fragment");
    }
  }
}

ring_message ring_reader::wait_peek(const wait_options& opts) {
  for (;;) {
    if (auto m = peek()) return *m;
    wait_until(
        ring_.data_bell(), [&] { return readable(); }, opts);
  }
}

void ring_reader::release() noexcept {
  // A streamed message is consumed by read_streamed(); releasing only its first fragment would
  // leave the rest looking like fragments without a start.
  if (!pending_ || pending_->kind != record_kind::whole) return;
  consume(pending_->span);
  pending_.reset();
}

void ring_reader::read_streamed(std::span<std::byte> dest, const wait_options& opts) {
  if (broken_) throw corrupt_channel("spsc_ring: reader is broken");
  if (!pending_ || pending_->kind != record_kind::first) {
    throw std::logic_error("ring_reader::read_streamed: peek() did not return a streamed message");
  }
  // The total peek() validated, not a fresh read: the peer may have changed the bytes since.
  const std::uint64_t total = pending_total_;
  if (dest.size() != total) {
    throw std::invalid_argument("ring_reader::read_streamed: buffer size != message size");
  }
  std::size_t got = pending_->size - 8;
  if (got >= total) fail("spsc_ring: streamed message shorter than its first part");
  std::memcpy(dest.data(), pending_->payload + 8, got);
  consume(pending_->span);
  pending_.reset();
  for (;;) {
    std::optional<record> r;
    while (!(r = next_record())) {
      wait_until(
          ring_.data_bell(), [&] { return readable(); }, opts);
    }
    if (r->kind == record_kind::padding) {
      consume(r->span);
      continue;
    }
    if (r->kind != record_kind::middle && r->kind != record_kind::last) {
      fail("spsc_ring: unexpected record inside a streamed message");
    }
    const std::size_t left = total - got;
    if (r->size > left || r->size == 0 || (r->kind == record_kind::last) != (r->size == left)) {
      fail("spsc_ring: fragments do not add up to the announced size");
    }
    std::memcpy(dest.data() + got, r->payload, r->size);
    got += r->size;
    consume(r->span);
    if (r->kind == record_kind::last) return;
  }
}

void ring_reader::receive(std::vector<std::byte>& out, const wait_options& opts,
                          std::size_t max_size) {
  const ring_message m = wait_peek(opts);
  if (m.size > max_size) fail("spsc_ring: message larger than the receiver allows");
  if (!m.streamed) {
    out.assign(m.bytes.begin(), m.bytes.end());
    release();
    return;
  }
  out.resize(m.size);
  read_streamed(out, opts);
}

}  // namespace crew::detail::ipc
