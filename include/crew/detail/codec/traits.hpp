// crew/detail/codec/traits.hpp — compile-time classification of the types crew's codec knows.
// Internal to crew/codec.hpp; include that instead. Pure type traits: no state, never blocks.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace crew::codec {

/// Opt-in: a trivially copyable user type whose bytes may be copied as they are, in one memcpy
/// (and, inside a vector or array, one memcpy for all elements). Specialise it:
///   template <> inline constexpr bool crew::codec::is_bitwise<my_pod> = true;
/// Only do so for types for which every bit pattern is a valid value: decoding accepts any bytes
/// (a `bool` or an enum member of such a struct is not checked).
template <class T>
inline constexpr bool is_bitwise = false;

}  // namespace crew::codec

namespace crew::codec::detail {

template <class T>
inline constexpr bool always_false = false;

template <class T, template <class...> class Tmpl>
inline constexpr bool is_specialization = false;
template <template <class...> class Tmpl, class... A>
inline constexpr bool is_specialization<Tmpl<A...>, Tmpl> = true;

template <class T>
inline constexpr bool is_std_array = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array<std::array<T, N>> = true;

template <class T>
inline constexpr bool is_c_array = std::is_bounded_array_v<T>;

template <class T>
inline constexpr bool is_string = is_specialization<T, std::basic_string>;
template <class T>
inline constexpr bool is_vector = is_specialization<T, std::vector>;
template <class T>
inline constexpr bool is_vector_bool = false;
template <class A>
inline constexpr bool is_vector_bool<std::vector<bool, A>> = true;
template <class T>
inline constexpr bool is_pair = is_specialization<T, std::pair>;
template <class T>
inline constexpr bool is_tuple = is_specialization<T, std::tuple>;
template <class T>
inline constexpr bool is_optional = is_specialization<T, std::optional>;
template <class T>
inline constexpr bool is_variant = is_specialization<T, std::variant>;
template <class T>
inline constexpr bool is_ordered_map = is_specialization<T, std::map>;
template <class T>
inline constexpr bool is_unordered_map = is_specialization<T, std::unordered_map>;
template <class T>
inline constexpr bool is_ordered_set = is_specialization<T, std::set>;
template <class T>
inline constexpr bool is_unordered_set = is_specialization<T, std::unordered_set>;
template <class T>
inline constexpr bool is_map = is_ordered_map<T> || is_unordered_map<T>;
template <class T>
inline constexpr bool is_set = is_ordered_set<T> || is_unordered_set<T>;

template <class T>
inline constexpr bool is_duration = false;
template <class R, class P>
inline constexpr bool is_duration<std::chrono::duration<R, P>> = true;

// Views that do not own what they show: named separately for a precise error message.
template <class T>
inline constexpr bool is_view =
    is_specialization<T, std::basic_string_view> || std::is_pointer_v<T> ||
    std::is_member_pointer_v<T> || std::is_reference_v<T>;
template <class T, std::size_t E>
inline constexpr bool is_view<std::span<T, E>> = true;

// An enum may be decoded from any bit pattern of its underlying type only when that type is
// fixed (`enum class e`, `enum e : int`): list-initialisation from the underlying type is valid
// exactly then. Any other enum has a narrower range of values, and loading one outside it is UB.
template <class T>
concept enum_with_fixed_underlying_type = std::is_enum_v<T> && requires {
  T{std::underlying_type_t<T>{}};
};

// Types whose encoding is their object representation, copied with memcpy: one call for a whole
// contiguous run of them. bool is excluded because a byte other than 0/1 must be rejected.
template <class T>
constexpr bool memcpyable_impl() {
  if constexpr (std::is_same_v<T, bool>) {
    return false;
  } else if constexpr (std::is_arithmetic_v<T>) {
    return true;
  } else if constexpr (std::is_enum_v<T>) {
    return enum_with_fixed_underlying_type<T>;
  } else if constexpr (is_std_array<T>) {
    using E = typename T::value_type;
    return memcpyable_impl<E>() && sizeof(T) == std::tuple_size_v<T> * sizeof(E);
  } else if constexpr (is_c_array<T>) {
    return memcpyable_impl<std::remove_extent_t<T>>();
  } else {
    return is_bitwise<T> && std::is_trivially_copyable_v<T>;
  }
}
template <class T>
inline constexpr bool memcpyable = memcpyable_impl<std::remove_cv_t<T>>();

inline constexpr std::size_t variable_size = std::numeric_limits<std::size_t>::max();

template <class T>
using bare = std::remove_cvref_t<T>;

// A variant's index is one byte, so at most 256 alternatives. Wider variants are refused: they
// are rare, and every per-index access of libstdc++'s variant costs O(N) instantiations, which
// made a 260-alternative variant take 30 s and 1 GB to compile.
inline constexpr std::size_t max_variant_alternatives = 256;

// The encoded size every value of T has, or variable_size. Lets the sizing pass skip loops.
template <class T>
constexpr std::size_t fixed_size_impl();

template <class... E>
constexpr std::size_t fixed_size_sum() {
  std::size_t total = 0;
  bool fixed = true;
  ((fixed = fixed && fixed_size_impl<bare<E>>() != variable_size,
    total += fixed ? fixed_size_impl<bare<E>>() : 0),
   ...);
  return fixed ? total : variable_size;
}

template <class T>
constexpr std::size_t fixed_size_impl() {
  if constexpr (memcpyable<T>) {
    return sizeof(T);
  } else if constexpr (std::is_same_v<T, bool>) {
    return 1;
  } else if constexpr (std::is_same_v<T, std::monostate>) {
    return 0;
  } else if constexpr (is_duration<T>) {
    return fixed_size_impl<typename T::rep>();
  } else if constexpr (is_std_array<T> || is_c_array<T>) {
    constexpr std::size_t n = is_c_array<T> ? std::extent_v<T> : std::tuple_size_v<T>;
    using E = std::remove_cvref_t<decltype(std::declval<T&>()[0])>;
    if constexpr (n == 0) {
      return 0;
    } else {
      constexpr std::size_t e = fixed_size_impl<E>();
      return e == variable_size ? variable_size : n * e;
    }
  } else if constexpr (is_pair<T>) {
    return fixed_size_sum<typename T::first_type, typename T::second_type>();
  } else if constexpr (is_tuple<T>) {
    return []<class... E>(std::type_identity<std::tuple<E...>>) {
      return fixed_size_sum<E...>();
    }(std::type_identity<T>{});
  } else {
    return variable_size;
  }
}
template <class T>
inline constexpr std::size_t fixed_size = fixed_size_impl<bare<T>>();

// A lower bound on the encoded size of any value of T. User types (other than bitwise ones) count
// as 0: nothing is known about them before their serialize runs. Used to reject a forged element
// count before anything is allocated.
template <class T>
constexpr std::size_t min_size_impl() {
  if constexpr (fixed_size<T> != variable_size) {
    return fixed_size<T>;
  } else if constexpr (is_string<T> || is_vector<T> || is_map<T> || is_set<T>) {
    return sizeof(std::uint64_t);
  } else if constexpr (is_optional<T>) {
    return 1;
  } else if constexpr (is_variant<T>) {
    return []<class... E>(std::type_identity<std::variant<E...>>) {
      return 1 + std::min({min_size_impl<bare<E>>()...});
    }(std::type_identity<T>{});
  } else if constexpr (is_std_array<T> || is_c_array<T>) {
    constexpr std::size_t n = is_c_array<T> ? std::extent_v<T> : std::tuple_size_v<T>;
    using E = std::remove_cvref_t<decltype(std::declval<T&>()[0])>;
    if constexpr (n == 0) {
      return 0;
    } else {
      return n * min_size_impl<E>();
    }
  } else if constexpr (is_pair<T>) {
    return min_size_impl<bare<typename T::first_type>>() +
           min_size_impl<bare<typename T::second_type>>();
  } else if constexpr (is_tuple<T>) {
    return []<class... E>(std::type_identity<std::tuple<E...>>) {
      return (std::size_t{0} + ... + min_size_impl<bare<E>>());
    }(std::type_identity<T>{});
  } else {
    return 0;
  }
}
template <class T>
inline constexpr std::size_t min_size = min_size_impl<bare<T>>();

}  // namespace crew::codec::detail
