// crew/codec.hpp — serialization of task arguments and results.
//
// Purpose: one binary codec for the process pool (shared memory between a parent and workers of
// the same binary) and the MPI pool (the same binary on homogeneous nodes). Native byte order,
// no versioning, no alignment padding. docs/codec.md describes the wire format.
//
// Two passes: encoded_size(v) says exactly how many bytes encode_into(dst, v) will write, so a
// caller can reserve that many bytes (e.g. in a shared-memory ring) and encode straight into
// them. Contiguous runs of trivially copyable data (vectors, arrays and strings of arithmetic
// types, fixed enums, std::byte and opted-in bitwise types) are copied in one memcpy.
//
// Untrusted input: decode never reads outside its span, never loops or recurses without bound,
// and never allocates much more than the input's size: every length is checked against the bytes
// that remain before anything is allocated. Malformed input throws crew::serialization_error
// naming what was wrong and at which byte offset.
//
// Thread-safety: every function is reentrant; concurrent calls on different objects are safe.
// An archive object is used by one thread at a time. Nothing here blocks.
// Lifetime: archives refer to the span they were built on; the span must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "crew/detail/codec/traits.hpp"

namespace crew {

/// Thrown when a message cannot be decoded (truncated, a length that does not fit, a bool,
/// optional flag or variant index out of range, misordered or duplicate keys, trailing bytes,
/// nesting too deep), or when a value cannot be encoded (a valueless variant, a destination span
/// too small). what() says what was wrong and where; offset() is the byte offset in the message.
class serialization_error : public std::runtime_error {
 public:
  serialization_error(const std::string& what, std::size_t offset)
      : std::runtime_error("crew::codec: " + what + " at offset " + std::to_string(offset)),
        offset_(offset) {}

  /// Byte offset in the message where the problem was found.
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

 private:
  std::size_t offset_;
};

}  // namespace crew

namespace crew::codec {

/// Deepest nesting of user types (types with serialize) that encode and decode accept. Only a
/// user type can be recursive (e.g. a tree node holding a vector of nodes); the limit turns a
/// forged deep message into an error instead of a stack overflow.
inline constexpr std::size_t max_depth = 256;

class size_archive;
class output_archive;
class input_archive;

namespace detail {
template <class Ar, class T>
void save(Ar& ar, const T& value);
template <class T>
void load(input_archive& ar, T& value);
template <class Ar>
class nesting_guard;
}  // namespace detail

/// The sizing pass: counts the bytes output_archive would write. User serialize members see it
/// as `Archive` during encoded_size.
class size_archive {
 public:
  static constexpr bool is_loading = false;
  static constexpr bool is_saving = true;

  size_archive() noexcept = default;

  /// Counts the encodings of `values`, in order.
  template <class... T>
  size_archive& operator()(const T&... values) {
    (detail::save(*this, values), ...);
    return *this;
  }

  /// Counts `n` raw bytes (for custom encodings in a serialize member).
  void put(const void* /*bytes*/, std::size_t n) noexcept { size_ += n; }
  void add(std::size_t n) noexcept { size_ += n; }

  /// Bytes counted so far.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t offset() const noexcept { return size_; }

 private:
  template <class Ar>
  friend class detail::nesting_guard;
  std::size_t size_ = 0;
  std::size_t depth_ = 0;
};

/// The writing pass: writes encodings into a caller-provided span, checking every write against
/// its end (a serialize member that writes more than it sized throws instead of overflowing).
class output_archive {
 public:
  static constexpr bool is_loading = false;
  static constexpr bool is_saving = true;

  explicit output_archive(std::span<std::byte> dst) noexcept
      : begin_(dst.data()), pos_(dst.data()), end_(dst.data() + dst.size()) {}

  /// Writes the encodings of `values`, in order.
  template <class... T>
  output_archive& operator()(const T&... values) {
    (detail::save(*this, values), ...);
    return *this;
  }

  /// Writes `n` raw bytes. Throws serialization_error if fewer than `n` bytes are left.
  void put(const void* bytes, std::size_t n) {
    std::byte* dst = claim(n);
    if (n != 0) std::memcpy(dst, bytes, n);
  }

  /// Reserves the next `n` bytes for the caller to fill, and returns where they start.
  [[nodiscard]] std::byte* claim(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - pos_)) {
      throw serialization_error("destination too small: " + std::to_string(n) +
                                    " bytes to write, " + std::to_string(end_ - pos_) + " left",
                                offset());
    }
    std::byte* at = pos_;
    pos_ += n;
    return at;
  }

  /// Bytes written so far.
  [[nodiscard]] std::size_t offset() const noexcept {
    return static_cast<std::size_t>(pos_ - begin_);
  }

 private:
  template <class Ar>
  friend class detail::nesting_guard;
  std::byte* begin_;
  std::byte* pos_;
  std::byte* end_;
  std::size_t depth_ = 0;
};

/// The reading pass over an untrusted span. Every read is bounds-checked.
class input_archive {
 public:
  static constexpr bool is_loading = true;
  static constexpr bool is_saving = false;

  explicit input_archive(std::span<const std::byte> src) noexcept
      : begin_(src.data()), pos_(src.data()), end_(src.data() + src.size()) {}

  /// Reads `values`, in order, replacing their contents.
  template <class... T>
  input_archive& operator()(T&... values) {
    (detail::load(*this, values), ...);
    return *this;
  }

  /// Consumes the next `n` bytes and returns where they start. Throws serialization_error if
  /// fewer than `n` bytes remain.
  [[nodiscard]] const std::byte* take(std::size_t n) {
    if (n > remaining()) {
      throw serialization_error("truncated message: " + std::to_string(n) + " bytes needed, " +
                                    std::to_string(remaining()) + " left",
                                offset());
    }
    const std::byte* at = pos_;
    pos_ += n;
    return at;
  }

  /// Copies the next `n` bytes into `dst`.
  void get(void* dst, std::size_t n) {
    const std::byte* src = take(n);
    if (n != 0) std::memcpy(dst, src, n);
  }

  /// Throws serialization_error unless every byte has been consumed.
  void expect_end() const {
    if (remaining() != 0) {
      throw serialization_error(std::to_string(remaining()) + " trailing bytes after the value",
                                offset());
    }
  }

  [[nodiscard]] std::size_t offset() const noexcept {
    return static_cast<std::size_t>(pos_ - begin_);
  }
  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(end_ - pos_);
  }

 private:
  template <class Ar>
  friend class detail::nesting_guard;
  const std::byte* begin_;
  const std::byte* pos_;
  const std::byte* end_;
  std::size_t depth_ = 0;
};

}  // namespace crew::codec

#include "crew/detail/codec/walk.hpp"

namespace crew::codec {

/// True for every type the codec can encode and decode. Rejected types fail to compile with a
/// static_assert saying why when passed to encode/decode.
template <class T>
concept serializable = detail::serializable_impl<std::remove_cvref_t<T>>();

/// Exact number of bytes encode_into(dst, value) writes. Throws serialization_error for a value
/// that cannot be encoded (valueless variant, nesting deeper than max_depth).
template <class T>
[[nodiscard]] std::size_t encoded_size(const T& value) {
  size_archive ar;
  detail::save(ar, value);
  return ar.size();
}

/// Writes the encoding of `value` at the start of `dst` and returns the number of bytes written
/// (== encoded_size(value)). Throws serialization_error if `dst` is too small; bytes of `dst`
/// may have been written by then.
template <class T>
std::size_t encode_into(std::span<std::byte> dst, const T& value) {
  output_archive ar(dst);
  detail::save(ar, value);
  return ar.offset();
}

/// The encoding of `value` in a new buffer.
template <class T>
[[nodiscard]] std::vector<std::byte> encode(const T& value) {
  std::vector<std::byte> out(encoded_size(value));
  encode_into(out, value);
  return out;
}

/// Reads `out` from `src`, which must hold exactly one encoded value: bytes left over throw.
/// Containers in `out` are replaced, not appended to. On a throw `out` holds a valid but
/// unspecified value.
template <class T>
void decode_into(std::span<const std::byte> src, T& out) {
  input_archive ar(src);
  detail::load(ar, out);
  ar.expect_end();
}

/// Decodes a T from `src`, which must hold exactly one encoded value. T must be default
/// constructible. Throws serialization_error on malformed input.
template <class T>
[[nodiscard]] T decode(std::span<const std::byte> src) {
  static_assert(std::is_default_constructible_v<T>,
                "crew::codec::decode<T> needs a default-constructible T; use decode_into");
  T out{};
  decode_into(src, out);
  return out;
}

// --- a function's arguments ------------------------------------------------------------------

/// A tuple of references to a call's arguments, to size and encode them without copying:
///   auto args = crew::codec::args_view(a, b);
///   std::size_t n = encoded_size(args); encode_into(slot, args);
/// Its encoding equals that of decoded_args_t<A...>, the tuple the receiving side decodes.
/// Lifetime: the tuple refers to the arguments; do not keep it past them (a temporary argument
/// dies at the end of the full-expression that made the view).
template <class... A>
[[nodiscard]] constexpr std::tuple<const A&...> args_view(const A&... args) noexcept {
  return std::tuple<const A&...>(args...);
}

/// The tuple of values that the encoding of args_view(A...) decodes to.
template <class... A>
using decoded_args_t = std::tuple<std::decay_t<A>...>;

}  // namespace crew::codec
