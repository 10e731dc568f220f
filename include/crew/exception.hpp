// crew/exception.hpp — exceptions that keep their type across a process boundary.
//
// A task on a thread_pool that throws std::invalid_argument makes get() rethrow that very
// std::invalid_argument. A process or MPI worker cannot hand the object over, so it sends a
// description — each level of the exception's std::nested_exception chain as its type name, its
// what() and, for error-code types, the code — and the caller rebuilds an exception of the same
// type from it:
//
//  - the standard exception types (std::logic_error and std::runtime_error and every type the
//    standard derives from them, std::system_error and std::ios_base::failure with their code
//    value and category when it is the generic, system, iostream or future category,
//    std::future_error, std::bad_alloc and the other std::bad_* types) are rebuilt out of the box;
//  - a user's type joins with one line: CREW_REGISTER_EXCEPTION(my_error) at namespace scope, or
//    crew::register_exception<my_error>() at run time (before any task can throw it), in the same
//    binary the workers run — it needs a constructor from the message string, or a factory;
//  - anything else arrives as a crew::task_error of kind `exception` that names the type
//    (remote_type()) and carries the message, as before.
//
// Chains made with std::throw_with_nested arrive whole: each level keeps its type and message,
// and std::rethrow_if_nested walks them as in the worker. docs/api.md describes the encoding.
//
// Thread-safety: registration and encode/decode may run concurrently from any thread; a type
// registered again replaces its earlier registration. Nothing here blocks except on the
// registry's lock. Lifetime: registrations last until the program ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "crew/error.hpp"

namespace crew {

/// Levels of a std::nested_exception chain that cross a process boundary; deeper levels are
/// dropped when encoding (the innermost one kept is then the last one) and refused when decoding.
inline constexpr std::size_t max_exception_chain = 32;

/// Thrown by register_exception when a type cannot be registered: its rebuilt exception has
/// another what() than the message it was built from (e.g. a constructor that adds a prefix),
/// or another name is already registered for a different type.
class exception_registration_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// The description of `error` (the current exception: std::current_exception()), for
/// decode_exception on the other side of a process boundary. Never throws: when memory runs out
/// the description loses its message, and as a last resort it is empty (decode_exception then
/// throws serialization_error). A null `error` encodes as a std::bad_exception.
[[nodiscard]] std::vector<std::byte> encode_exception(const std::exception_ptr& error) noexcept;

/// Rebuilds the exception that encode_exception described, in the same binary. Levels of a known
/// type are rebuilt as that type; other levels become a crew::task_error of kind exception with
/// remote_type() set. Never returns null. Throws crew::serialization_error (crew/codec.hpp) when
/// `bytes` is malformed — truncated, a length that does not fit, an unknown format byte, more
/// than max_exception_chain levels, trailing bytes — and std::bad_alloc when memory runs out.
[[nodiscard]] std::exception_ptr decode_exception(std::span<const std::byte> bytes);

namespace detail {
/// For executors and streams — the caller's side of a task that failed in another process: the
/// task_error for a task whose worker sent `bytes` (from encode_exception): kind exception,
/// what() and remote_type() from the outermost level, the other fields from `base` (pid, task
/// name, ...). original() holds the rebuilt exception when the outermost level's type is known
/// or it has nested levels, so that future::get() rethrows it as on a thread pool; null
/// otherwise (get() throws the task_error). Throws crew::serialization_error for malformed
/// bytes. Call it outside a catch block: a rebuilt std::nested_exception captures the exception
/// being handled.
task_error remote_exception_error(std::span<const std::byte> bytes, task_error::details base);

/// Builds the exception of a registered type from its message; with `nested`, as
/// std::throw_with_nested would (called while the inner exception is being handled).
using exception_builder = std::function<std::exception_ptr(const std::string& what, bool nested)>;

/// probe_message: check at once that E(probe).what() == probe.
void register_exception_type(const std::type_info& type, exception_builder build,
                             bool probe_message);

template <class E, class Make>
exception_builder make_exception_builder(Make make) {
  return [make](const std::string& what, bool nested) -> std::exception_ptr {
    E value = make(what);  // outside the try: a factory's own exception must escape
    if (nested) {
      try {
        std::throw_with_nested(std::move(value));
      } catch (...) {
        return std::current_exception();
      }
    }
    return std::make_exception_ptr(std::move(value));
  };
}
}  // namespace detail

/// Registers E so that it is rebuilt as E(what) on the caller's side. E must derive from
/// std::exception and be constructible from a std::string; its what() must return that string.
/// Registration checks it with a probe message and throws exception_registration_error when
/// what() differs (register the type with a factory instead). A message E's constructor refuses
/// (throws) is not rebuilt: that level arrives as a task_error naming E, with the message.
template <class E>
void register_exception() {
  static_assert(std::is_class_v<E> && std::is_base_of_v<std::exception, E>,
                "crew::register_exception<E>: E must be a class derived from std::exception");
  static_assert(std::is_constructible_v<E, const std::string&>,
                "crew::register_exception<E>: E needs a constructor from the message string "
                "(E(const std::string&)); otherwise register it with a factory: "
                "crew::register_exception<E>(+[](const std::string& what) { return E{...}; })");
  static_assert(std::is_copy_constructible_v<E>, "crew::register_exception<E>: E must be copyable");
  detail::register_exception_type(
      typeid(E), detail::make_exception_builder<E>([](const std::string& what) { return E(what); }),
      true);
}

/// Registers E with a factory that rebuilds it from its what() (for a type whose constructor
/// does not take the message as is, e.g. one that adds a prefix the factory strips). A message
/// for which factory(what).what() != what, or the factory throws, is not rebuilt: that level
/// arrives as a task_error naming E, with the original message.
template <class E>
void register_exception(E (*factory)(const std::string& what)) {
  static_assert(std::is_class_v<E> && std::is_base_of_v<std::exception, E>,
                "crew::register_exception<E>: E must be a class derived from std::exception");
  if (factory == nullptr) throw std::invalid_argument("crew::register_exception: null factory");
  detail::register_exception_type(typeid(E), detail::make_exception_builder<E>(factory), false);
}

}  // namespace crew

#define CREW_DETAIL_CONCAT_IMPL(a, b) a##b
#define CREW_DETAIL_CONCAT(a, b) CREW_DETAIL_CONCAT_IMPL(a, b)

/// At namespace scope: registers an exception type at start-up (see crew::register_exception).
/// A type that cannot be registered stops the program at start-up with
/// crew::exception_registration_error, before main.
#define CREW_REGISTER_EXCEPTION(...)                                                               \
  [[maybe_unused]] static const bool CREW_DETAIL_CONCAT(crew_registered_exception_, __COUNTER__) = \
      (::crew::register_exception<__VA_ARGS__>(), true)
