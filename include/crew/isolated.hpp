// crew/isolated.hpp — run one piece of risky code in a throw-away process.
//
//   int n = crew::run_isolated([&] { return parse_untrusted(blob); }, {.timeout = 2s});
//
// The callable (captures allowed: the child is a fork of this process and sees its memory as it
// was) runs in a freshly forked child under the same limits as a process_pool task: a timeout,
// a memory limit. Its result is serialized back (crew/codec.hpp). A crash, a hang, a memory
// blow-up or an exception in the callable becomes a crew::task_error thrown here, with the same
// kinds and fields as on a pool; this process is never harmed. The child never outlives the
// call (nor this process, even on SIGKILL).
//
// Thread-safety: may be called from several threads at once. Blocking: until the child ends.
// Forking while other threads hold locks has the usual caveat (see process_pool's start methods).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "crew/codec.hpp"
#include "crew/detail/registry.hpp"
#include "crew/error.hpp"

namespace crew {

struct isolation_options {
  std::chrono::milliseconds timeout{0};       ///< zero: none
  std::chrono::milliseconds kill_grace{200};  ///< between SIGTERM and SIGKILL on timeout
  std::size_t memory_limit = 0;               ///< bytes of resident memory; zero: none
  std::string name = "run_isolated";          ///< reported as task_error::task_name()
};

namespace detail {

/// Forks, runs `body` in the child (which writes the encoded result through the sink), and
/// returns the result's bytes; throws task_error for every failure.
std::vector<std::byte> run_in_child(const std::function<void(byte_sink&)>& body,
                                    const isolation_options& options);

}  // namespace detail

/// Runs `fn()` in a forked child and returns its result; throws crew::task_error when the child
/// throws (kind exception), crashes, times out or passes its memory limit.
template <class F>
requires std::is_invocable_v<F&>
auto run_isolated(F&& fn, const isolation_options& options = {}) {
  using R = std::decay_t<std::invoke_result_t<F&>>;
  static_assert(std::is_void_v<R> || codec::serializable<R>,
                "crew::run_isolated: the callable's result must be serializable (crew/codec.hpp)");
  const std::vector<std::byte> bytes = detail::run_in_child(
      [&fn](detail::byte_sink& out) {
        if constexpr (std::is_void_v<R>) {
          fn();
          out.acquire(0);
        } else {
          const R value = fn();
          codec::encode_into(out.acquire(codec::encoded_size(value)), value);
        }
      },
      options);
  if constexpr (std::is_void_v<R>) {
    return;
  } else {
    try {
      return codec::decode<R>(bytes);
    } catch (const serialization_error& e) {
      throw task_error{error_kind::serialization, e.what(),
                       task_error::details::named(options.name)};
    }
  }
}

}  // namespace crew
