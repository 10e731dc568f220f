// crew/detail/remote_call.hpp — what every executor that runs tasks in another process (process,
// hybrid and MPI pools) does the same way on the caller's side: encode a call's arguments as the
// task's parameter types, and decode its result into the future's state.
#pragma once

#include <cstddef>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

#include <string>

#include "crew/call.hpp"
#include "crew/codec.hpp"
#include "crew/detail/registry.hpp"
#include "crew/detail/shared_state.hpp"
#include "crew/error.hpp"

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

/// The name a task goes by in its errors: the per-call name if it has one, else the function's.
inline std::string call_name(const call_options* options, const task_entry& entry) {
  return options != nullptr && !options->name.empty() ? options->name : std::string{entry.name};
}

/// Encodes Fn's arguments into the bytes `allocate(size)` returns. When an argument's
/// serialization throws, the task never runs: `state` fails with error_kind::serialization and
/// the result is false.
template <auto Fn, class Allocate, class... A>
bool encode_arguments(state_base& state, const call_options* options, Allocate&& allocate,
                      A&&... args) {
  using params = typename task_traits<Fn>::params;
  static_assert(std::tuple_size_v<params> == sizeof...(A),
                "crew: submit<&fn>(args...) needs exactly fn's number of arguments");
  try {
    encode_call<params>(std::forward<Allocate>(allocate), std::index_sequence_for<A...>{},
                        std::forward<A>(args)...);
    return true;
  } catch (const std::exception& e) {
    state.fail(task_error{error_kind::serialization,
                          std::string{"encoding the task's arguments: "} + e.what(),
                          task_error::details::named(call_name(options, registered_task<Fn>))});
    return false;
  }
}

/// The error of a per-call timeout of zero or less: the task never ran.
inline task_error expired_call_error(const call_options& options, const std::string& function) {
  const std::string name = options.name.empty() ? function : options.name;
  return task_error{error_kind::timed_out,
                    "task " + name + " was given a timeout of " +
                        describe_timeout(options.timeout.value_or(std::chrono::nanoseconds{0})) +
                        ": its time was up before it started, and it never ran",
                    task_error::details::named(name)};
}

}  // namespace crew::detail
