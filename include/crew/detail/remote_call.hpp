// crew/detail/remote_call.hpp — what every executor that runs tasks in another process (process,
// hybrid and MPI pools) does the same way on the caller's side: encode a call's arguments as the
// task's parameter types, and decode its result into the future's state.
#pragma once

#include <cstddef>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

#include "crew/codec.hpp"
#include "crew/detail/shared_state.hpp"

namespace crew::detail {

/// How a pool turns a worker's encoded result into the future's value.
using result_decoder = void (*)(state_base& state, std::span<const std::byte> bytes);

/// Decodes a result of type R into `state`, which must be a shared_state<R>. Throws
/// serialization_error for bytes that are not one R.
template <class R>
void decode_result(state_base& state, std::span<const std::byte> bytes) {
  auto& typed = static_cast<shared_state<R>&>(state);
  if constexpr (std::is_void_v<R>) {
    if (!bytes.empty()) throw serialization_error("a void task's result carries bytes", 0);
    typed.set_value();
  } else {
    R value{};
    codec::decode_into(bytes, value);
    typed.set_value(std::move(value));
  }
}

/// An argument as the task's parameter type: a reference when it already is one, else converted
/// (a string literal for a std::string parameter, say).
template <class P, class A>
decltype(auto) as_param(A&& arg) {
  if constexpr (std::is_same_v<std::remove_cvref_t<A>, P>) {
    return static_cast<const P&>(arg);
  } else {
    return P(std::forward<A>(arg));
  }
}

/// Encodes `args` as the decayed `Params` of a task, into the bytes `allocate(size)` returns.
template <class Params, class Allocate, std::size_t... I, class... A>
void encode_call(Allocate&& allocate, std::index_sequence<I...> /*unused*/, A&&... args) {
  const auto view = std::tuple<decltype(as_param<std::decay_t<std::tuple_element_t<I, Params>>>(
      std::forward<A>(args)))...>(
      as_param<std::decay_t<std::tuple_element_t<I, Params>>>(std::forward<A>(args))...);
  codec::encode_into(allocate(codec::encoded_size(view)), view);
}

}  // namespace crew::detail
