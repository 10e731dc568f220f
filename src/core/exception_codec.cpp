// The encoding of exceptions for crew/exception.hpp.
//
// Wire format (crew/codec.hpp primitives, native byte order):
//   u8 format (1) · u8 flags (bit 0: the chain was cut at max_exception_chain) · u32 level count
//   then, outermost level first, per level:
//   string type · string what · u8 code category · i32 code value · bool thrown by
//   throw_with_nested
// A type is named by its demangled name: the worker and the caller run the same binary, so the
// name identifies the type on both sides without an index that registration order could shift.
//
// Checks on untrusted input: the format byte, the flag bits, 1 <= count <= max_exception_chain,
// every string length against the bytes left (codec), bools and categories in range, no trailing
// bytes. Building the exceptions allocates no more than the strings' lengths.
#include "crew/exception.hpp"

#include <cxxabi.h>

#include <any>
#include <cstdlib>
#include <functional>
#include <future>
#include <ios>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "crew/codec.hpp"
#include "crew/exception.hpp"

namespace crew {
namespace {

constexpr std::uint8_t format_version = 1;
constexpr std::uint8_t flag_truncated = 1;
constexpr std::string_view task_error_name = "crew::task_error";
constexpr std::string_view not_std_exception =
    "task threw an exception that does not derive from std::exception";

/// Which std::error_category an error code belongs to; only these can be rebuilt.
enum code_category : std::uint8_t {
  no_code = 0,
  generic_code = 1,
  system_code = 2,
  iostream_code = 3,
  future_code = 4,
  task_kind_code = 5,  ///< crew::task_error: the code is its error_kind
  other_code = 255,
};

struct level {
  std::string type;
  std::string what;
  std::uint8_t category = no_code;
  std::int32_t code = 0;
  bool wrapper = false;  ///< thrown by std::throw_with_nested: rebuilt the same way
};

/// Thrown by a builder that cannot rebuild a level (e.g. an error code of an unknown category).
struct cannot_rebuild {};

using level_builder = std::function<std::exception_ptr(const level&, bool nested)>;

struct entry {
  std::string name;
  const std::type_info* type = nullptr;
  const std::type_info* nested_type = nullptr;  ///< what throw_with_nested(E) throws, if not E
  level_builder build;
  /// A rebuilt what() must equal the original, else the level falls back to a task_error (false
  /// only for types whose message is the implementation's fixed text, like std::bad_alloc).
  bool exact_message = true;
};

std::string demangle(const std::type_info& type) {
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> name{
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free};
  return status == 0 && name ? std::string{name.get()} : std::string{type.name()};
}

const std::type_info* type_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (...) {
    return abi::__cxa_current_exception_type();
  }
}

std::optional<std::string> what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return std::string{e.what()};
  } catch (...) {
    return std::nullopt;
  }
}

const std::error_category* category_from_wire(std::uint8_t category) {
  switch (category) {
    case generic_code:
      return &std::generic_category();
    case system_code:
      return &std::system_category();
    case iostream_code:
      return &std::iostream_category();
    case future_code:
      return &std::future_category();
    default:
      return nullptr;
  }
}

std::uint8_t category_to_wire(const std::error_category& category) {
  if (category == std::generic_category()) return generic_code;
  if (category == std::system_category()) return system_code;
  if (category == std::iostream_category()) return iostream_code;
  if (category == std::future_category()) return future_code;
  return other_code;
}

template <class E, class Make>
level_builder builder(Make make) {
  return [make](const level& l, bool nested) -> std::exception_ptr {
    E value = make(l);  // outside the try: cannot_rebuild must escape
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

class exception_registry {
 public:
  exception_registry() {
    add_message<std::logic_error>();
    add_message<std::invalid_argument>();
    add_message<std::domain_error>();
    add_message<std::length_error>();
    add_message<std::out_of_range>();
    add_message<std::runtime_error>();
    add_message<std::range_error>();
    add_message<std::overflow_error>();
    add_message<std::underflow_error>();
    // Types without a message of their own: rebuilt with the implementation's text.
    add_fixed<std::exception>();
    add_fixed<std::bad_alloc>();
    add_fixed<std::bad_array_new_length>();
    add_fixed<std::bad_cast>();
    add_fixed<std::bad_typeid>();
    add_fixed<std::bad_exception>();
    add_fixed<std::bad_function_call>();
    add_fixed<std::bad_weak_ptr>();
    add_fixed<std::bad_optional_access>();
    add_fixed<std::bad_variant_access>();
    add_fixed<std::bad_any_cast>();
    // Error-code types: the code travels beside the message.
    add(typeid(std::system_error), builder<std::system_error>([](const level& l) {
          const std::error_category* category = category_from_wire(l.category);
          if (category == nullptr) throw cannot_rebuild{};
          const std::error_code code{l.code, *category};
          const std::string suffix = ": " + code.message();
          if (l.what == code.message()) return std::system_error(code);
          if (l.what.size() >= suffix.size() &&
              l.what.compare(l.what.size() - suffix.size(), suffix.size(), suffix) == 0) {
            return std::system_error(code, l.what.substr(0, l.what.size() - suffix.size()));
          }
          return std::system_error(code, l.what);
        }),
        true);
    add(typeid(std::ios_base::failure), builder<std::ios_base::failure>([](const level& l) {
          const std::error_category* category = category_from_wire(l.category);
          if (category == nullptr) throw cannot_rebuild{};
          const std::error_code code{l.code, *category};
          const std::string suffix = ": " + code.message();
          if (l.what.size() >= suffix.size() &&
              l.what.compare(l.what.size() - suffix.size(), suffix.size(), suffix) == 0) {
            return std::ios_base::failure(l.what.substr(0, l.what.size() - suffix.size()), code);
          }
          return std::ios_base::failure(l.what, code);
        }),
        true);
    add(typeid(std::future_error), builder<std::future_error>([](const level& l) {
          if (l.category != future_code) throw cannot_rebuild{};
          return std::future_error(static_cast<std::future_errc>(l.code));
        }),
        true);
  }

  /// Registers a user type (checked with a probe message first).
  void add_checked(const std::type_info& type, level_builder build, bool probe_message) {
    const std::string name = demangle(type);
    const std::string probe = "crew::register_exception probe for " + name;
    std::exception_ptr made;
    try {
      made = build(level{name, probe, no_code, 0, false}, false);
    } catch (const std::exception& e) {
      throw exception_registration_error("crew::register_exception<" + name +
                                         ">: building it from a message threw: " + e.what());
    }
    if (*type_of(made) != type) {
      throw exception_registration_error("crew::register_exception<" + name +
                                         ">: the factory returns another type");
    }
    const std::optional<std::string> what = what_of(made);
    if (probe_message && what != probe) {
      throw exception_registration_error(
          "crew::register_exception<" + name + ">: " + name + "(\"" + probe +
          "\").what() returns \"" + what.value_or("") +
          "\"; register it with a factory that rebuilds the message exactly: "
          "crew::register_exception<" +
          name + ">(+[](const std::string& what) { return " + name + "{...}; })");
    }
    add(type, std::move(build), true);
  }

  /// The entry for an exception's dynamic type (E itself or what throw_with_nested(E) threw).
  const entry* find(const std::type_info& type) const {
    std::shared_lock lock{mutex_};
    auto it = by_type_.find(std::type_index{type});
    return it == by_type_.end() ? nullptr : it->second;
  }
  const entry* find(const std::string& name) const {
    std::shared_lock lock{mutex_};
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

 private:
  template <class E>
  void add_message() {
    add(typeid(E), builder<E>([](const level& l) { return E(l.what); }), true);
  }
  template <class E>
  void add_fixed() {
    add(typeid(E), builder<E>([](const level& /*l*/) { return E(); }), false);
  }

  void add(const std::type_info& type, level_builder build, bool exact_message) {
    auto made = std::make_unique<entry>();
    made->name = demangle(type);
    made->type = &type;
    made->build = std::move(build);
    made->exact_message = exact_message;
    // What throw_with_nested(E) throws is an unnamed type derived from E; learn it by asking.
    // (An error-code type needs a code of a category it accepts: try the two kinds there are.)
    for (const std::uint8_t category : {system_code, future_code}) {
      try {
        const std::type_info* nested =
            type_of(made->build(level{made->name, "probe", category, 1, true}, true));
        if (*nested != type) made->nested_type = nested;
        break;
      } catch (const cannot_rebuild&) {
      }
    }
    std::unique_lock lock{mutex_};
    if (auto it = by_name_.find(made->name); it != by_name_.end() && *it->second->type != type) {
      throw exception_registration_error("crew::register_exception: the name " + made->name +
                                         " is registered for another type already");
    }
    const entry* e = made.get();
    entries_.push_back(std::move(made));  // entries live forever: readers hold plain pointers
    by_name_[e->name] = e;
    by_type_[std::type_index{type}] = e;
    if (e->nested_type != nullptr) by_type_[std::type_index{*e->nested_type}] = e;
  }

  mutable std::shared_mutex mutex_;
  std::vector<std::unique_ptr<entry>> entries_;
  std::unordered_map<std::type_index, const entry*> by_type_;
  std::unordered_map<std::string, const entry*> by_name_;
};

exception_registry& registry() {
  static exception_registry instance;
  return instance;
}

// ------------------------------------------------------------------------------------ encode

/// The type name for an exception not in the registry; an unknown type thrown with
/// throw_with_nested shows as its own name, not as the library's wrapper template.
std::string unknown_type_name(const std::type_info& type) {
  std::string name = demangle(type);
  constexpr std::string_view wrapper = "std::_Nested_exception<";
  if (name.starts_with(wrapper) && name.ends_with('>')) {
    name = name.substr(wrapper.size(), name.size() - wrapper.size() - 1);
  }
  return name;
}

/// Describes one level of `error` into `out`; returns the next level's exception (or null).
/// `replace` is set instead when `error` is a task_error standing for another exception.
std::exception_ptr describe(const std::exception_ptr& error, level& out,
                            std::exception_ptr& replace) {
  std::exception_ptr inner;
  try {
    std::rethrow_exception(error);
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    bool nested = false;
    try {
      throw;
    } catch (const std::nested_exception& n) {
      nested = true;
      inner = n.nested_ptr();
    } catch (...) {
    }
    const entry* known = type != nullptr ? registry().find(*type) : nullptr;
    try {
      throw;
    } catch (const task_error& e) {
      if (e.original() && !nested) {
        replace = e.original();  // the task's own exception, from a pool in this process
        return nullptr;
      }
      out.what = e.what();
      if (e.kind() == error_kind::exception && !e.remote_type().empty()) {
        out.type = e.remote_type();  // as it arrived: it travels on unchanged
      } else {
        out.type = task_error_name;
        out.category = task_kind_code;
        out.code = static_cast<std::int32_t>(e.kind());
      }
      out.wrapper = nested && *type != typeid(task_error);
      return inner;
    } catch (const std::system_error& e) {
      out.what = e.what();
      out.category = category_to_wire(e.code().category());
      out.code = e.code().value();
    } catch (const std::future_error& e) {
      out.what = e.what();
      out.category = category_to_wire(e.code().category());
      out.code = e.code().value();
    } catch (const std::exception& e) {
      out.what = e.what();
    } catch (...) {
      out.what = not_std_exception;
    }
    if (known != nullptr) {
      out.type = known->name;
      out.wrapper = known->nested_type != nullptr && *type == *known->nested_type;
    } else {
      out.type = type != nullptr ? unknown_type_name(*type) : std::string{"unknown"};
      out.wrapper = nested && type != nullptr && demangle(*type) != out.type;
    }
  }
  return inner;
}

std::vector<std::byte> to_bytes(const std::vector<level>& levels, bool truncated) {
  const std::uint8_t flags = truncated ? flag_truncated : 0;
  const auto count = static_cast<std::uint32_t>(levels.size());
  codec::size_archive sizer;
  sizer(format_version, flags, count);
  for (const level& l : levels) sizer(l.type, l.what, l.category, l.code, l.wrapper);
  std::vector<std::byte> bytes(sizer.size());
  codec::output_archive out{bytes};
  out(format_version, flags, count);
  for (const level& l : levels) out(l.type, l.what, l.category, l.code, l.wrapper);
  return bytes;
}

// ------------------------------------------------------------------------------------ decode

struct decoded {
  std::exception_ptr error;
  level outer;
  bool outer_rebuilt = false;  ///< the outermost level has its own type (not a task_error stand-in)
  std::size_t levels = 0;
};

std::vector<level> parse(std::span<const std::byte> bytes) {
  codec::input_archive in{bytes};
  std::uint8_t version = 0;
  std::uint8_t flags = 0;
  std::uint32_t count = 0;
  in(version);
  if (version != format_version) {
    throw serialization_error("unknown exception format " + std::to_string(version), 0);
  }
  in(flags);
  if ((flags & ~flag_truncated) != 0) {
    throw serialization_error("unknown exception flags " + std::to_string(flags), 1);
  }
  in(count);
  if (count == 0 || count > max_exception_chain) {
    throw serialization_error("an exception chain of " + std::to_string(count) + " levels (1 to " +
                                  std::to_string(max_exception_chain) + " allowed)",
                              2);
  }
  std::vector<level> levels(count);
  for (level& l : levels) {
    in(l.type, l.what, l.category);
    if (l.category > task_kind_code && l.category != other_code) {
      throw serialization_error("unknown error-code category " + std::to_string(l.category),
                                in.offset() - 1);
    }
    in(l.code, l.wrapper);
  }
  in.expect_end();
  return levels;
}

/// Rebuilds one level; called inside the handler of the level it wraps, when there is one.
/// Sets `rebuilt` when the level got its own type.
std::exception_ptr build(const level& l, bool has_inner, const task_error::details& base,
                         bool& rebuilt) {
  rebuilt = false;
  // A wrapper with no cause (the chain was cut, or the level was thrown with nothing to nest)
  // is rebuilt plain: a null nested_ptr would make std::rethrow_if_nested call std::terminate.
  const bool wrap = l.wrapper && has_inner;
  if (const entry* known = registry().find(l.type)) {
    std::exception_ptr made;
    try {
      made = known->build(l, wrap);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (...) {  // cannot_rebuild, or the type's constructor refused the message
    }
    if (made && (!known->exact_message || what_of(made) == l.what)) {
      rebuilt = true;
      return made;
    }
  }
  std::optional<task_error> stand_in;
  if (l.type == task_error_name && l.category == task_kind_code && l.code >= 0 &&
      l.code <= static_cast<std::int32_t>(error_kind::queue_full)) {
    rebuilt = true;
    stand_in.emplace(static_cast<error_kind>(l.code), l.what, base);
  } else {
    task_error::details info = base;
    info.remote_type = l.type;
    stand_in.emplace(error_kind::exception, l.what, std::move(info));
  }
  if (has_inner) {
    try {
      std::throw_with_nested(std::move(*stand_in));
    } catch (...) {
      return std::current_exception();
    }
  }
  return std::make_exception_ptr(std::move(*stand_in));
}

decoded decode_all(std::span<const std::byte> bytes, const task_error::details& base) {
  std::vector<level> levels = parse(bytes);
  decoded out;
  out.levels = levels.size();
  std::exception_ptr inner;
  bool rebuilt = false;
  for (std::size_t i = levels.size(); i-- > 0;) {
    const bool has_inner = static_cast<bool>(inner);
    if (has_inner) {
      try {
        std::rethrow_exception(inner);
      } catch (...) {  // the outer level is built while the inner one is being handled
        inner = build(levels[i], true, base, rebuilt);
      }
    } else {
      inner = build(levels[i], false, base, rebuilt);
    }
  }
  out.error = std::move(inner);
  out.outer = std::move(levels.front());
  out.outer_rebuilt = rebuilt;
  return out;
}

}  // namespace

std::vector<std::byte> encode_exception(const std::exception_ptr& error) noexcept {
  std::vector<level> levels;
  bool truncated = false;
  try {
    std::exception_ptr next = error ? error : std::make_exception_ptr(std::bad_exception{});
    // Each task_error standing for an original takes a step too: the loop ends in any case.
    for (std::size_t steps = 0; next && steps < 2 * max_exception_chain; ++steps) {
      if (levels.size() == max_exception_chain) {
        truncated = true;
        break;
      }
      level l;
      std::exception_ptr replace;
      std::exception_ptr inner = describe(next, l, replace);
      if (replace) {
        next = std::move(replace);
        continue;
      }
      levels.push_back(std::move(l));
      next = std::move(inner);
    }
    return to_bytes(levels, truncated);
  } catch (...) {
  }
  // Out of memory (a huge message): keep the types and codes, drop the messages.
  try {
    for (level& l : levels) l.what = "(message lost: out of memory while encoding it)";
    if (levels.empty()) levels.push_back(level{"std::bad_alloc", "std::bad_alloc", 0, 0, false});
    return to_bytes(levels, truncated);
  } catch (...) {
    return {};
  }
}

std::exception_ptr decode_exception(std::span<const std::byte> bytes) {
  return decode_all(bytes, task_error::details{}).error;
}

namespace detail {

void register_exception_type(const std::type_info& type, exception_builder build,
                             bool probe_message) {
  registry().add_checked(
      type,
      [build = std::move(build)](const level& l, bool nested) { return build(l.what, nested); },
      probe_message);
}

task_error remote_exception_error(std::span<const std::byte> bytes, task_error::details base) {
  decoded d = decode_all(bytes, base);
  task_error::details info = std::move(base);
  info.remote_type = d.outer.type;
  if (d.outer_rebuilt || d.levels > 1) info.original = std::move(d.error);
  return {error_kind::exception, d.outer.what, std::move(info)};
}

}  // namespace detail
}  // namespace crew
