// crew/detail/registry.hpp — the table of task functions a binary can run in another process.
//
// `submit<&fn>` names a function at compile time. Every such function is registered, before
// main() runs, under a 64-bit id derived from its name; a worker process built from the same
// binary (forked, exec'd, or an MPI rank on another node) has the same table, so a request
// carries only the id. A worker refuses ids it does not know: a forged or corrupted message can
// name only functions the binary registered, never an arbitrary address.
//
// Thread-safety: registration happens during static initialization (single-threaded); lookups
// afterwards are read-only and safe from any thread. Two functions whose names collide get
// distinct ids by registration order, which is fixed for a given binary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "crew/codec.hpp"
#include "crew/detail/attachments.hpp"
#include "crew/future.hpp"

namespace crew::detail {

/// Where a worker writes an encoded result: the transport hands out space for exactly n bytes.
class byte_sink {
 public:
  virtual std::span<std::byte> acquire(std::size_t bytes) = 0;
  /// The acquired bytes are written: publish them now, before the result object is destroyed
  /// (freeing a large result takes time the caller need not wait for).
  virtual void done() {}
  /// Descriptors that may travel beside the result (crew/detail/attachments.hpp); null where
  /// none can (an MPI rank).
  virtual outgoing_attachments* attachments() { return nullptr; }
  /// Descriptors that arrived beside the arguments, or null.
  [[nodiscard]] virtual const incoming_attachments* received() const { return nullptr; }

 protected:
  ~byte_sink() = default;
};

struct task_entry {
  /// Decodes the arguments from `args`, runs the function and encodes its result into `out`.
  /// Throws serialization_error for bad arguments and whatever the function throws.
  using invoker = void (*)(std::span<const std::byte> args, byte_sink& out);

  std::uint64_t id = 0;
  std::string_view name;
  invoker invoke = nullptr;
};

/// Registers `entry` (its id may be adjusted to stay unique) and returns the stored entry.
const task_entry& register_task(task_entry entry) noexcept;
/// The entry with this id, or null.
const task_entry* find_task(std::uint64_t id) noexcept;
/// Number of registered functions.
std::size_t registered_task_count() noexcept;

template <auto Fn>
constexpr std::string_view raw_function_name() noexcept {
  return __PRETTY_FUNCTION__;
}

/// The source name of Fn as the compiler spells it, e.g. "square" or "ns::parse<int>".
template <auto Fn>
constexpr std::string_view function_name() noexcept {
  constexpr std::string_view raw = raw_function_name<Fn>();
  constexpr std::string_view key = "Fn = ";
  constexpr std::size_t begin = raw.find(key) + key.size();
  constexpr std::size_t end = raw.find_first_of(";]", begin);
  std::string_view name = raw.substr(begin, end - begin);
  if (name.starts_with('&')) name.remove_prefix(1);
  return name;
}

template <class T>
constexpr std::string_view raw_type_name() noexcept {
  return __PRETTY_FUNCTION__;
}

/// The name of type T as the compiler spells it, e.g. "main()::<lambda(int)>" (GCC) or
/// "(lambda at main.cpp:12:5)" (Clang). The same in every process started from one binary.
template <class T>
constexpr std::string_view type_name() noexcept {
  constexpr std::string_view raw = raw_type_name<T>();
  constexpr std::string_view key = "T = ";
  constexpr std::size_t begin = raw.find(key) + key.size();
  // GCC lists the return type's alias after a "; "; both compilers close with ']'.
  constexpr std::size_t alias = raw.find("; std::", begin);
  constexpr std::size_t end = alias != std::string_view::npos ? alias : raw.rfind(']');
  return raw.substr(begin, end - begin);
}

constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// --- the signature of a task function ---------------------------------------------------------

template <class F>
struct signature;
template <class R, class... A>
struct signature<R (*)(A...)> {
  using result = R;
  using params = std::tuple<A...>;
};
template <class R, class... A>
struct signature<R (*)(A...) noexcept> : signature<R (*)(A...)> {};
template <class C, class R, class... A>
struct signature<R (C::*)(A...) const> : signature<R (*)(A...)> {};
template <class C, class R, class... A>
struct signature<R (C::*)(A...) const noexcept> : signature<R (*)(A...)> {};
template <class C, class R, class... A>
struct signature<R (C::*)(A...)> : signature<R (*)(A...)> {};
template <class C, class R, class... A>
struct signature<R (C::*)(A...) noexcept> : signature<R (*)(A...)> {};
template <class F>
requires requires {
  &F::operator();
}
struct signature<F> : signature<decltype(&F::operator())> {};

template <class T>
struct decay_tuple;
template <class... A>
struct decay_tuple<std::tuple<A...>> {
  using type = std::tuple<std::decay_t<A>...>;
};

/// What a task function looks like to an executor that crosses process boundaries.
template <auto Fn>
struct task_traits {
  using fn_type = std::remove_cvref_t<decltype(Fn)>;
  using result = typename signature<fn_type>::result;
  using params = typename signature<fn_type>::params;
  using decoded_args = typename decay_tuple<params>::type;
};

/// True when Fn can run in another process: a function pointer or captureless lambda whose
/// decayed parameters and result are serializable.
template <auto Fn>
concept remote_task = requires {
  typename task_traits<Fn>::result;
};

// Passes a decoded argument the way the parameter wants it: lvalue for `T&`, moved otherwise.
template <class P, class V>
decltype(auto) pass_as(V& value) noexcept {
  if constexpr (std::is_lvalue_reference_v<P>) {
    return static_cast<V&>(value);
  } else {
    return static_cast<V&&>(value);
  }
}

/// Runs `step` (decoding the arguments or encoding the result), turning whatever a user type's
/// serialize() throws there into a serialization_error: the task's own code did not fail.
template <class Step>
void codec_step(const char* what, Step&& step) {
  try {
    step();
  } catch (const serialization_error&) {
    throw;
  } catch (const std::exception& e) {
    throw serialization_error(std::string{what} + ": " + e.what(), 0);
  } catch (...) {
    throw serialization_error(std::string{what} + ": a non-standard exception", 0);
  }
}

template <auto Fn>
void invoke_encoded(std::span<const std::byte> encoded_args, byte_sink& out) {
  using traits = task_traits<Fn>;
  typename traits::decoded_args args{};
  codec_step("decoding the task's arguments", [&] {
    const receiving_attachments with{out.received()};
    codec::decode_into(encoded_args, args);
  });
  auto call = [&args]<std::size_t... I>(std::index_sequence<I...>)->decltype(auto) {
    return std::invoke(
        Fn, pass_as<std::tuple_element_t<I, typename traits::params>>(std::get<I>(args))...);
  };
  constexpr auto indices = std::make_index_sequence<std::tuple_size_v<typename traits::params>>{};
  if constexpr (std::is_void_v<typename traits::result>) {
    call(indices);
    out.acquire(0);
    out.done();
  } else {
    const std::decay_t<typename traits::result> result = call(indices);
    codec_step("encoding the task's result", [&] {
      const sending_attachments with{out.attachments()};
      const std::size_t size = codec::encoded_size(result);
      codec::encode_into(out.acquire(size), result);
    });
    out.done();
  }
}

/// The name Fn is registered under (and its id hashed from): a task type may name itself with a
/// static task_name() (stateless_task does), otherwise the function's source name.
template <auto Fn>
constexpr std::string_view task_name() noexcept {
  using fn_type = std::remove_cvref_t<decltype(Fn)>;
  if constexpr (requires { fn_type::task_name(); }) {
    return fn_type::task_name();
  } else {
    return function_name<Fn>();
  }
}

template <auto Fn>
const task_entry& make_registration() noexcept {
  static_assert(codec::serializable<typename task_traits<Fn>::decoded_args>,
                "crew: every parameter of a task function run in another process must be "
                "serializable (see crew/codec.hpp)");
  static_assert(std::is_void_v<typename task_traits<Fn>::result> ||
                    codec::serializable<std::decay_t<typename task_traits<Fn>::result>>,
                "crew: the result of a task function run in another process must be "
                "serializable (see crew/codec.hpp)");
  return register_task(task_entry{fnv1a(task_name<Fn>()), task_name<Fn>(), &invoke_encoded<Fn>});
}

/// Fn's entry. Instantiating this registers Fn during static initialization of the binary, so
/// every process started from the binary knows it before main().
template <auto Fn>
inline const task_entry& registered_task = make_registration<Fn>();

// --- stateless callables: submit(f, args...) on a pool whose workers are other processes ------
//
// A worker cannot receive `f` itself, but when f's type has no state it can make its own: the
// type is known at compile time, so it is registered like a function. stateless_task<F, Sig> is
// that function: it default-constructs an F and calls it. It is registered under F's type name
// (type_name<F>), the same in every process of the binary; two types with the same name (two
// lambdas of one signature in one function, under GCC) get distinct ids by registration order,
// which static initialization fixes for a given binary — fork, spawn, forkserver and MPI ranks
// all run the same binary.

/// A class with no state that a worker can default-construct: a captureless lambda (C++20) or
/// an empty function object.
template <class F>
concept stateless_callable =
    std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F>;

template <class R, class Params>
struct function_of;
template <class R, class... P>
struct function_of<R, std::tuple<P...>> {
  using type = R(P...);
};

/// The function a stateless F is registered as: its operator()'s own signature when it has
/// exactly one (a plain lambda), else (a generic lambda, overloads) the call with the decayed
/// argument types.
template <class F, class... A>
struct stateless_signature {
  using type = std::invoke_result_t<F&, std::decay_t<A>...>(std::decay_t<A>...);
};
template <class F, class... A>
requires requires {
  &F::operator();
}
struct stateless_signature<F, A...> {
  using type =
      typename function_of<typename signature<F>::result, typename signature<F>::params>::type;
};

template <class Sig>
struct function_result;
template <class R, class... P>
struct function_result<R(P...)> {
  using type = R;
};

/// What submit(f, args...) on a remote pool returns a future of.
template <class F, class... A>
using stateless_result_t =
    std::decay_t<typename function_result<typename stateless_signature<F, A...>::type>::type>;

template <class F, class Sig>
struct stateless_task;
template <class F, class R, class... P>
struct stateless_task<F, R(P...)> {
  static constexpr std::string_view task_name() noexcept { return type_name<F>(); }
  R operator()(P... args) const {
    F f{};
    return std::invoke(f, static_cast<P&&>(args)...);
  }
};

/// The task submit(f, args...) runs for a stateless F: a constant, usable as submit<...>.
template <class F, class... A>
inline constexpr stateless_task<F, typename stateless_signature<F, A...>::type> stateless_task_v{};

/// What submit(f, ...) and detach(f, ...) on a remote pool declare they return for a callable
/// with state: not a future (nor bool), so that a concept asking whether a pool runs arbitrary
/// closures (crew::closure_executor) hears "no"; a real call stops the build with
/// refuse_stateful_callable's message.
struct stateful_callable_refused {};

template <class F, class... A>
struct remote_submit {
  using type = stateful_callable_refused;
};
template <stateless_callable F, class... A>
struct remote_submit<F, A...> {
  using type = future<stateless_result_t<F, A...>>;
};
/// The return type of submit(f, args...) on a remote pool.
template <class F, class... A>
using remote_submit_t = typename remote_submit<std::decay_t<F>, A...>::type;
/// The return type of detach(f, args...) on a remote pool.
template <class F>
using remote_detach_t =
    std::conditional_t<stateless_callable<std::decay_t<F>>, bool, stateful_callable_refused>;

template <class F>
inline constexpr bool always_false_v = false;

/// Stops the build, with the reason and what to do instead, for a callable a worker process
/// cannot make for itself. Call it in the branch taken when !stateless_callable<F>.
template <class F>
constexpr void refuse_stateful_callable() {
  if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
    static_assert(always_false_v<F>,
                  "crew: a function pointer passed at run time cannot be named in a worker "
                  "process (it holds an address, which another process does not share). Name the "
                  "function at compile time instead: pool.submit<&fn>(args...) / "
                  "pool.detach<&fn>(args...).");
  } else {
    static_assert(always_false_v<F>,
                  "crew: this pool runs tasks in other processes, so submit(f, args...) and "
                  "detach(f, args...) take only a stateless callable — a lambda without captures "
                  "or an empty, default-constructible function object — which each worker builds "
                  "for itself; only the arguments travel. This callable has state (a lambda with "
                  "captures, a std::function, or a function object with data members). Pass the "
                  "state as arguments instead — pool.submit([](int x, const std::string& s) { "
                  "... }, x, s) or pool.submit<&fn>(args...) — or run it on a crew::thread_pool.");
  }
}

}  // namespace crew::detail

namespace crew {

/// A reference to a registered task function, usable where a pool option names a function that
/// must also run in a fresh process (e.g. process_pool_options::initializer = crew::task<&setup>).
struct task_ref {
  const detail::task_entry* entry = nullptr;
  explicit operator bool() const noexcept { return entry != nullptr; }
};

template <auto Fn>
inline const task_ref task{&detail::registered_task<Fn>};

}  // namespace crew
