// crew/detail/codec/walk.hpp — the encoding and decoding of every supported type.
// Internal to crew/codec.hpp (included from its middle, after the archives); include that instead.
//
// save<Ar> serves both the sizing pass (size_archive) and the writing pass (output_archive), so
// the two cannot disagree for built-in types. load reads from an untrusted input_archive: every
// count is checked against the bytes that remain *before* anything is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace crew::codec::detail {

// --- user types --------------------------------------------------------------------------------

template <class T, class Ar>
concept has_member_serialize = requires(T& value, Ar& ar) {
  value.serialize(ar);
};

template <class T, class Ar>
concept has_adl_serialize = requires(T& value, Ar& ar) {
  serialize(ar, value);
};

template <class T, class Ar>
concept user_serializable_with = has_member_serialize<T, Ar> || has_adl_serialize<T, Ar>;

template <class T>
concept user_serializable = user_serializable_with<T, size_archive> &&
    user_serializable_with<T, output_archive> && user_serializable_with<T, input_archive>;

// Counts nesting of user types, the only way a type can be recursive.
template <class Ar>
class nesting_guard {
 public:
  explicit nesting_guard(Ar& ar) : ar_(ar) {
    if (ar_.depth_ >= max_depth) {
      throw serialization_error("user types nested deeper than crew::codec::max_depth (" +
                                    std::to_string(max_depth) + ")",
                                ar_.offset());
    }
    ++ar_.depth_;
  }
  ~nesting_guard() { --ar_.depth_; }
  nesting_guard(const nesting_guard&) = delete;
  nesting_guard& operator=(const nesting_guard&) = delete;

 private:
  Ar& ar_;
};

template <class Ar, class T>
void call_serialize(Ar& ar, T& value) {
  nesting_guard<Ar> guard(ar);
  if constexpr (has_member_serialize<T, Ar>) {
    value.serialize(ar);
  } else {
    serialize(ar, value);
  }
}

// --- what is serializable ---------------------------------------------------------------------

template <class T>
constexpr bool serializable_impl();

template <class... E>
constexpr bool all_serializable() {
  return (serializable_impl<std::remove_cvref_t<E>>() && ...);
}

// A length-prefixed container's elements must each take at least one byte, so that a count can
// be bounded by the bytes that remain. Element types that always encode to nothing are refused.
template <class E>
constexpr bool countable_element() {
  return serializable_impl<std::remove_cvref_t<E>>() && fixed_size<E> != 0;
}

template <class T>
constexpr bool serializable_impl() {
  if constexpr (std::is_const_v<T> || std::is_volatile_v<T> || is_view<T>) {
    return false;
  } else if constexpr (memcpyable<T> || std::is_same_v<T, bool> ||
                       std::is_same_v<T, std::monostate>) {
    return true;
  } else if constexpr (is_string<T>) {
    return memcpyable<typename T::value_type>;
  } else if constexpr (is_vector_bool<T>) {
    return true;
  } else if constexpr (is_vector<T> || is_set<T>) {
    return countable_element<typename T::value_type>();
  } else if constexpr (is_map<T>) {
    return countable_element<std::pair<typename T::key_type, typename T::mapped_type>>();
  } else if constexpr (is_std_array<T> || is_c_array<T>) {
    return serializable_impl<std::remove_cvref_t<decltype(std::declval<T&>()[0])>>();
  } else if constexpr (is_pair<T>) {
    return all_serializable<typename T::first_type, typename T::second_type>();
  } else if constexpr (is_tuple<T> || is_variant<T>) {
    return []<template <class...> class Tmpl, class... E>(std::type_identity<Tmpl<E...>>) {
      return (!is_variant<T> || sizeof...(E) <= max_variant_alternatives) &&
             all_serializable<E...>();
    }(std::type_identity<T>{});
  } else if constexpr (is_optional<T>) {
    return serializable_impl<typename T::value_type>();
  } else if constexpr (is_duration<T>) {
    return serializable_impl<typename T::rep>();
  } else {
    return user_serializable<T>;
  }
}

// Fails to compile with a message that names the fix; the compiler's "required from" notes name
// the offending type.
template <class T>
constexpr void reject_type() {
  if constexpr (std::is_pointer_v<T> || std::is_member_pointer_v<T>) {
    static_assert(always_false<T>,
                  "crew::codec: type is not serializable: a pointer means nothing in another "
                  "process; send the value it points to (e.g. a std::string or std::vector)");
  } else if constexpr (is_view<T>) {
    static_assert(always_false<T>,
                  "crew::codec: type is not serializable: a view (std::string_view, std::span) "
                  "refers to memory it does not own; send a std::string or std::vector");
  } else if constexpr (std::is_enum_v<T>) {
    static_assert(always_false<T>,
                  "crew::codec: type is not serializable: an enum without a fixed underlying type "
                  "cannot hold every decoded value; declare it `enum e : int { ... }` or "
                  "`enum class e { ... }`");
  } else if constexpr (is_bitwise<T> && !std::is_trivially_copyable_v<T>) {
    static_assert(always_false<T>,
                  "crew::codec: type is not serializable: is_bitwise<T> is set but T is not "
                  "trivially copyable; give it a serialize member instead");
  } else if constexpr (std::is_trivially_copyable_v<T> && std::is_class_v<T>) {
    static_assert(always_false<T>,
                  "crew::codec: type is not serializable: give it a member "
                  "`template <class Archive> void serialize(Archive& ar) { ar(members...); }` or, "
                  "if every bit pattern is a valid value, specialise "
                  "`template <> inline constexpr bool crew::codec::is_bitwise<T> = true;`");
  } else {
    static_assert(always_false<T>,
                  "crew::codec: type is not serializable: give it a member "
                  "`template <class Archive> void serialize(Archive& ar) { ar(members...); }` or a "
                  "free `serialize(Archive&, T&)` found by argument-dependent lookup");
  }
}

template <class E>
constexpr void check_countable() {
  static_assert(fixed_size<E> != 0,
                "crew::codec: type is not serializable: a vector, map or set of elements that "
                "always encode to zero bytes (std::monostate, std::tuple<>, empty std::array) "
                "cannot be bounded by the message size; use a count instead");
}

template <class V>
constexpr void check_variant_width() {
  static_assert(std::variant_size_v<V> <= max_variant_alternatives,
                "crew::codec: type is not serializable: a std::variant with more than 256 "
                "alternatives (its index is sent as one byte)");
}

// --- saving ------------------------------------------------------------------------------------

template <class Ar>
inline constexpr bool is_size_archive = std::is_same_v<Ar, size_archive>;

template <class Ar>
void save_length(Ar& ar, std::size_t n) {
  const std::uint64_t length = n;
  ar.put(&length, sizeof length);
}

// One element of a length-prefixed container. Only element types that may encode to zero bytes
// (those of user types) pay for the check; the decoder makes the same one.
template <class Ar, class E>
void save_counted_element(Ar& ar, const E& element) {
  if constexpr (min_size<E> == 0) {
    const std::size_t before = ar.offset();
    save(ar, element);
    if (ar.offset() == before) {
      throw serialization_error("an element of a vector, map or set encodes to zero bytes", before);
    }
  } else {
    save(ar, element);
  }
}

template <class Ar, class Range>
void save_elements(Ar& ar, const Range& range, std::size_t count, bool counted) {
  using E = bare<decltype(*std::begin(range))>;
  if constexpr (is_size_archive<Ar> && fixed_size<E> != variable_size) {
    ar.add(count * fixed_size<E>);  // every element the same size: no loop
  } else {
    for (const auto& element : range) {
      if (counted) {
        save_counted_element(ar, element);
      } else {
        save(ar, element);
      }
    }
  }
}

template <class Ar, class T>
void save(Ar& ar, const T& value) {
  using U = std::remove_cv_t<T>;
  if constexpr (memcpyable<U>) {
    ar.put(&value, sizeof(U));
  } else if constexpr (std::is_same_v<U, bool>) {
    const unsigned char byte = value ? 1 : 0;
    ar.put(&byte, 1);
  } else if constexpr (std::is_same_v<U, std::monostate>) {
    // nothing to write
  } else if constexpr (is_string<U>) {
    using C = typename U::value_type;
    if constexpr (!memcpyable<C>) {
      reject_type<C>();
    } else {
      save_length(ar, value.size());
      ar.put(value.data(), value.size() * sizeof(C));
    }
  } else if constexpr (is_vector_bool<U>) {
    const std::size_t n = value.size();
    save_length(ar, n);
    const std::size_t bytes = n / 8 + (n % 8 != 0 ? 1 : 0);
    if constexpr (is_size_archive<Ar>) {
      ar.add(bytes);
    } else {
      std::byte* dst = ar.claim(bytes);
      std::memset(dst, 0, bytes);
      for (std::size_t i = 0; i < n; ++i) {
        if (value[i]) dst[i / 8] |= std::byte{1} << (i % 8);
      }
    }
  } else if constexpr (is_vector<U>) {
    using E = typename U::value_type;
    check_countable<E>();
    save_length(ar, value.size());
    if constexpr (memcpyable<E>) {
      ar.put(value.data(), value.size() * sizeof(E));  // one memcpy for the whole run
    } else {
      save_elements(ar, value, value.size(), true);
    }
  } else if constexpr (is_std_array<U> || is_c_array<U>) {
    // memcpyable arrays took the first branch; these hold bool or non-trivial elements.
    save_elements(ar, value, std::size(value), false);
  } else if constexpr (is_pair<U>) {
    save(ar, value.first);
    save(ar, value.second);
  } else if constexpr (is_tuple<U>) {
    std::apply([&ar](const auto&... elements) { (save(ar, elements), ...); }, value);
  } else if constexpr (is_optional<U>) {
    const unsigned char flag = value.has_value() ? 1 : 0;
    ar.put(&flag, 1);
    if (value) save(ar, *value);
  } else if constexpr (is_variant<U>) {
    if (value.valueless_by_exception()) {
      throw serialization_error("cannot encode a valueless std::variant", ar.offset());
    }
    check_variant_width<U>();
    const auto index = static_cast<std::uint8_t>(value.index());
    ar.put(&index, 1);
    std::visit([&ar](const auto& alternative) { save(ar, alternative); }, value);
  } else if constexpr (is_map<U> || is_set<U>) {
    check_countable<typename U::value_type>();
    save_length(ar, value.size());
    save_elements(ar, value, value.size(), true);
  } else if constexpr (is_duration<U>) {
    save(ar, value.count());
  } else if constexpr (is_view<U> || std::is_enum_v<U> || is_bitwise<U>) {
    reject_type<U>();
  } else if constexpr (user_serializable_with<U, Ar>) {
    // serialize is one non-const member for both directions (cereal's convention); saving
    // archives only read through the references it passes.
    call_serialize(ar, const_cast<U&>(value));
  } else {
    reject_type<U>();
  }
}

// --- loading -----------------------------------------------------------------------------------

// Reads an element count and rejects it unless `count * max(1, min_element)` bytes remain, so a
// forged count of 2^60 fails here, before any allocation.
inline std::size_t load_count(input_archive& ar, std::size_t min_element) {
  const std::size_t at = ar.offset();
  std::uint64_t count = 0;
  ar.get(&count, sizeof count);
  const std::size_t per = min_element == 0 ? 1 : min_element;
  if (count > ar.remaining() / per) {
    throw serialization_error("element count " + std::to_string(count) + " needs at least " +
                                  std::to_string(per) + " bytes each, but only " +
                                  std::to_string(ar.remaining()) + " bytes remain",
                              at);
  }
  return static_cast<std::size_t>(count);
}

// How many elements to reserve up front: never more than the remaining input's size in bytes,
// so a count that passes load_count but whose elements are missing allocates O(input).
template <class E>
std::size_t reserve_hint(const input_archive& ar, std::size_t count) noexcept {
  const std::size_t cap = ar.remaining() / sizeof(E);
  return count < cap ? count : cap;
}

template <class E>
void load_counted_element(input_archive& ar, E& element) {
  if constexpr (min_size<E> == 0) {
    const std::size_t before = ar.offset();
    load(ar, element);
    if (ar.offset() == before) {
      throw serialization_error("an element of a vector, map or set encodes to zero bytes", before);
    }
  } else {
    load(ar, element);
  }
}

inline void load_flag(input_archive& ar, bool& out, const char* what) {
  const std::size_t at = ar.offset();
  unsigned char byte = 0;
  ar.get(&byte, 1);
  if (byte > 1) {
    throw serialization_error(
        std::string("invalid ") + what + " byte " + std::to_string(byte) + " (expected 0 or 1)",
        at);
  }
  out = byte == 1;
}

template <class V, std::size_t... I>
void load_alternative(input_archive& ar, V& value, std::size_t index, std::index_sequence<I...>) {
  // emplace<I>() returns the new alternative, which is then read in place.
  (void)((index == I ? (load(ar, value.template emplace<I>()), true) : false) || ...);
}

template <class T>
void load(input_archive& ar, T& value) {
  static_assert(!std::is_const_v<T>,
                "crew::codec: cannot decode into a const object (a std::tuple of references "
                "from args_view decodes as decoded_args_t<A...>)");
  using U = T;
  if constexpr (memcpyable<U>) {
    ar.get(&value, sizeof(U));
  } else if constexpr (std::is_same_v<U, bool>) {
    load_flag(ar, value, "bool");
  } else if constexpr (std::is_same_v<U, std::monostate>) {
    // nothing to read
  } else if constexpr (is_string<U>) {
    using C = typename U::value_type;
    if constexpr (!memcpyable<C>) {
      reject_type<C>();
    } else {
      const std::size_t n = load_count(ar, sizeof(C));
      const std::byte* src = ar.take(n * sizeof(C));
      if constexpr (std::is_same_v<C, char>) {
        value.assign(reinterpret_cast<const char*>(src), n);  // char may alias any bytes
      } else {
        value.resize(n);
        if (n != 0) std::memcpy(value.data(), src, n * sizeof(C));
      }
    }
  } else if constexpr (is_vector_bool<U>) {
    const std::size_t at = ar.offset();
    std::uint64_t n = 0;
    ar.get(&n, sizeof n);
    const std::uint64_t bytes = n / 8 + (n % 8 != 0 ? 1 : 0);
    if (bytes > ar.remaining()) {
      throw serialization_error("vector<bool> of " + std::to_string(n) + " bits needs " +
                                    std::to_string(bytes) + " bytes, but only " +
                                    std::to_string(ar.remaining()) + " remain",
                                at);
    }
    const std::byte* src = ar.take(static_cast<std::size_t>(bytes));
    if (n % 8 != 0 && (std::to_integer<unsigned>(src[bytes - 1]) >> (n % 8)) != 0) {
      throw serialization_error("vector<bool> padding bits are not zero", ar.offset() - 1);
    }
    value.assign(static_cast<std::size_t>(n), false);
    for (std::size_t i = 0; i < n; ++i) {
      if (std::to_integer<unsigned>(src[i / 8] >> (i % 8)) & 1U) value[i] = true;
    }
  } else if constexpr (is_vector<U>) {
    using E = typename U::value_type;
    check_countable<E>();
    const std::size_t n = load_count(ar, min_size<E>);
    if constexpr (memcpyable<E>) {
      const std::byte* src = ar.take(n * sizeof(E));  // load_count bounded n * sizeof(E)
      if constexpr (std::is_same_v<E, std::byte> || std::is_same_v<E, char> ||
                    std::is_same_v<E, unsigned char>) {
        // These types may alias any bytes: one copy, no zero-fill first.
        const E* first = reinterpret_cast<const E*>(src);
        value.assign(first, first + n);
      } else {
        value.resize(n);
        if (n != 0) std::memcpy(value.data(), src, n * sizeof(E));
      }
    } else {
      value.clear();
      value.reserve(reserve_hint<E>(ar, n));
      for (std::size_t i = 0; i < n; ++i) {
        load_counted_element(ar, value.emplace_back());
      }
    }
  } else if constexpr (is_std_array<U> || is_c_array<U>) {
    for (auto& element : value) load(ar, element);
  } else if constexpr (is_pair<U>) {
    load(ar, value.first);
    load(ar, value.second);
  } else if constexpr (is_tuple<U>) {
    std::apply([&ar](auto&... elements) { (load(ar, elements), ...); }, value);
  } else if constexpr (is_optional<U>) {
    bool present = false;
    load_flag(ar, present, "std::optional flag");
    if (!present) {
      value.reset();
    } else {
      if (!value) value.emplace();
      load(ar, *value);
    }
  } else if constexpr (is_variant<U>) {
    constexpr std::size_t alternatives = std::variant_size_v<U>;
    const std::size_t at = ar.offset();
    check_variant_width<U>();
    std::uint8_t raw = 0;
    ar.get(&raw, 1);
    const std::size_t index = raw;
    if (index >= alternatives) {
      throw serialization_error("std::variant index " + std::to_string(index) + " out of range (" +
                                    std::to_string(alternatives) + " alternatives)",
                                at);
    }
    load_alternative(ar, value, index, std::make_index_sequence<alternatives>{});
  } else if constexpr (is_map<U>) {
    using K = typename U::key_type;
    using V = typename U::mapped_type;
    using E = std::pair<K, V>;
    check_countable<E>();
    const std::size_t n = load_count(ar, min_size<E>);
    value.clear();
    if constexpr (is_unordered_map<U>) value.reserve(reserve_hint<typename U::value_type>(ar, n));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = ar.offset();
      E entry{};
      load_counted_element(ar, entry);
      if constexpr (is_ordered_map<U>) {
        // The encoder writes keys in the map's order; anything else is not an encoding.
        if (!value.empty() && !value.key_comp()(std::prev(value.end())->first, entry.first)) {
          throw serialization_error("std::map keys not in strictly ascending order", at);
        }
        value.emplace_hint(value.end(), std::move(entry.first), std::move(entry.second));
      } else if (!value.try_emplace(std::move(entry.first), std::move(entry.second)).second) {
        throw serialization_error("duplicate std::unordered_map key", at);
      }
    }
  } else if constexpr (is_set<U>) {
    using K = typename U::value_type;
    check_countable<K>();
    const std::size_t n = load_count(ar, min_size<K>);
    value.clear();
    if constexpr (is_unordered_set<U>) value.reserve(reserve_hint<K>(ar, n));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = ar.offset();
      K key{};
      load_counted_element(ar, key);
      if constexpr (is_ordered_set<U>) {
        if (!value.empty() && !value.key_comp()(*std::prev(value.end()), key)) {
          throw serialization_error("std::set elements not in strictly ascending order", at);
        }
        value.emplace_hint(value.end(), std::move(key));
      } else if (!value.insert(std::move(key)).second) {
        throw serialization_error("duplicate std::unordered_set element", at);
      }
    }
  } else if constexpr (is_duration<U>) {
    typename U::rep count{};
    load(ar, count);
    value = U(count);
  } else if constexpr (is_view<U> || std::is_enum_v<U> || is_bitwise<U>) {
    reject_type<U>();
  } else if constexpr (user_serializable_with<U, input_archive>) {
    call_serialize(ar, value);
  } else {
    reject_type<U>();
  }
}

}  // namespace crew::codec::detail
