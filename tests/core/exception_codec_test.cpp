// crew/exception.hpp: exceptions described as bytes and rebuilt with their type.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <any>
#include <atomic>
#include <cstring>
#include <functional>
#include <future>
#include <ios>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <typeinfo>
#include <variant>
#include <vector>

#include "crew/codec.hpp"
#include "crew/exception.hpp"
#include "crew/future.hpp"

namespace {

using crew::decode_exception;
using crew::encode_exception;

struct my_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
CREW_REGISTER_EXCEPTION(my_error);

struct my_logic_error : std::logic_error {
  explicit my_logic_error(const std::string& what) : std::logic_error(what) {}
};

/// what() is not the constructor's argument: cannot be registered without a factory.
struct prefixed_error : std::runtime_error {
  explicit prefixed_error(const std::string& what) : std::runtime_error("prefixed: " + what) {}
};
constexpr std::string_view prefix = "prefixed: ";

/// Refuses some messages: those levels cannot be rebuilt and fall back to task_error.
struct picky_error : std::runtime_error {
  explicit picky_error(const std::string& what) : std::runtime_error(check(what)) {}
  static const std::string& check(const std::string& what) {
    if (what.find("refuse") != std::string::npos) throw std::invalid_argument("picky");
    return what;
  }
};

struct never_registered : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The encoding of a one-level chain, written by hand.
std::vector<std::byte> one_level(const std::string& type, const std::string& what) {
  crew::codec::size_archive sizer;
  sizer(std::uint8_t{1}, std::uint8_t{0}, std::uint32_t{1}, type, what, std::uint8_t{0},
        std::int32_t{0}, false);
  std::vector<std::byte> bytes(sizer.size());
  crew::codec::output_archive out{bytes};
  out(std::uint8_t{1}, std::uint8_t{0}, std::uint32_t{1}, type, what, std::uint8_t{0},
      std::int32_t{0}, false);
  return bytes;
}

std::exception_ptr round_trip(const std::exception_ptr& error) {
  return decode_exception(encode_exception(error));
}

template <class E>
void expect_same_type_and_message(const E& original) {
  SCOPED_TRACE(typeid(E).name());
  const std::exception_ptr back = round_trip(std::make_exception_ptr(original));
  try {
    std::rethrow_exception(back);
  } catch (const E& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << "rebuilt as a derived type";
    EXPECT_STREQ(e.what(), original.what());
    return;
  } catch (...) {
  }
  try {
    std::rethrow_exception(back);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "rebuilt as " << typeid(e).name() << ": " << e.what();
  } catch (...) {
    ADD_FAILURE() << "rebuilt as a non-std exception";
  }
}

/// The levels of a nested chain, outermost first: (type, what).
std::vector<std::pair<const std::type_info*, std::string>> chain_of(const std::exception_ptr& p) {
  std::vector<std::pair<const std::type_info*, std::string>> out;
  std::function<void(const std::exception_ptr&)> walk = [&](const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.emplace_back(&typeid(ex), ex.what());
      try {
        std::rethrow_if_nested(ex);
      } catch (...) {
        walk(std::current_exception());
      }
    }
  };
  walk(p);
  return out;
}

TEST(ExceptionCodec, StandardMessageTypesKeepTypeAndMessage) {
  expect_same_type_and_message(std::logic_error{"logic"});
  expect_same_type_and_message(std::invalid_argument{"bad argument"});
  expect_same_type_and_message(std::domain_error{"domain"});
  expect_same_type_and_message(std::length_error{"length"});
  expect_same_type_and_message(std::out_of_range{"index 9 of 3"});
  expect_same_type_and_message(std::runtime_error{"runtime"});
  expect_same_type_and_message(std::range_error{"range"});
  expect_same_type_and_message(std::overflow_error{"overflow"});
  expect_same_type_and_message(std::underflow_error{"underflow"});
  expect_same_type_and_message(std::runtime_error{""});
  expect_same_type_and_message(std::runtime_error{std::string("nul\0inside", 10)});
}

TEST(ExceptionCodec, StandardTypesWithoutMessageKeepTheirType) {
  expect_same_type_and_message(std::exception{});
  expect_same_type_and_message(std::bad_alloc{});
  expect_same_type_and_message(std::bad_array_new_length{});
  expect_same_type_and_message(std::bad_cast{});
  expect_same_type_and_message(std::bad_typeid{});
  expect_same_type_and_message(std::bad_exception{});
  expect_same_type_and_message(std::bad_function_call{});
  expect_same_type_and_message(std::bad_weak_ptr{});
  expect_same_type_and_message(std::bad_optional_access{});
  expect_same_type_and_message(std::bad_any_cast{});
  // What the library throws (with its own message) still arrives as the type.
  try {
    std::variant<int, double> v = 1;
    (void)std::get<double>(v);
  } catch (...) {
    const std::exception_ptr back = round_trip(std::current_exception());
    EXPECT_THROW(std::rethrow_exception(back), std::bad_variant_access);
  }
}

TEST(ExceptionCodec, SystemErrorKeepsCodeCategoryAndMessage) {
  for (const std::error_code code :
       {std::make_error_code(std::errc::no_such_file_or_directory),
        std::error_code{EACCES, std::system_category()},
        std::error_code{0, std::generic_category()}, std::error_code{-7, std::system_category()},
        std::make_error_code(std::io_errc::stream)}) {
    for (const bool with_prefix : {true, false}) {
      const std::system_error original =
          with_prefix ? std::system_error(code, "open /nonexistent") : std::system_error(code);
      const std::exception_ptr back = round_trip(std::make_exception_ptr(original));
      try {
        std::rethrow_exception(back);
      } catch (const std::system_error& e) {
        EXPECT_EQ(typeid(e), typeid(std::system_error));
        EXPECT_EQ(e.code(), code) << code.category().name() << " " << code.value();
        EXPECT_STREQ(e.what(), original.what());
      } catch (...) {
        ADD_FAILURE() << "not rebuilt as std::system_error";
      }
    }
  }
}

TEST(ExceptionCodec, IosFailureAndFutureErrorKeepTheirCodes) {
  const std::ios_base::failure io{"stream broke", std::make_error_code(std::io_errc::stream)};
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(io)));
  } catch (const std::ios_base::failure& e) {
    EXPECT_EQ(e.code(), io.code());
    EXPECT_STREQ(e.what(), io.what());
  } catch (...) {
    ADD_FAILURE() << "not rebuilt as std::ios_base::failure";
  }
  for (const auto errc :
       {std::future_errc::broken_promise, std::future_errc::no_state,
        std::future_errc::future_already_retrieved, std::future_errc::promise_already_satisfied}) {
    const std::future_error original{errc};
    try {
      std::rethrow_exception(round_trip(std::make_exception_ptr(original)));
    } catch (const std::future_error& e) {
      EXPECT_EQ(e.code(), original.code());
      EXPECT_STREQ(e.what(), original.what());
    } catch (...) {
      ADD_FAILURE() << "not rebuilt as std::future_error";
    }
  }
}

class odd_category : public std::error_category {
 public:
  const char* name() const noexcept override { return "odd"; }
  std::string message(int value) const override { return "odd " + std::to_string(value); }
};

TEST(ExceptionCodec, SystemErrorOfAnotherCategoryArrivesAsTaskError) {
  static const odd_category category;
  const std::system_error original{std::error_code{3, category}, "custom"};
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(original)));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), crew::error_kind::exception);
    EXPECT_EQ(e.remote_type(), "std::system_error");
    EXPECT_STREQ(e.what(), original.what());
  } catch (...) {
    ADD_FAILURE() << "expected a task_error";
  }
}

TEST(ExceptionCodec, RegisteredTypeIsRebuilt) {
  expect_same_type_and_message(my_error{"mine"});
}

TEST(ExceptionCodec, RegistrationAtRunTimeAndWithAFactory) {
  // Before registration: a task_error naming the type, and catch (std::logic_error&) misses.
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(my_logic_error{"x"})));
  } catch (const crew::task_error& e) {
    EXPECT_NE(e.remote_type().find("my_logic_error"), std::string::npos) << e.remote_type();
    EXPECT_STREQ(e.what(), "x");
  }
  crew::register_exception<my_logic_error>();
  crew::register_exception<my_logic_error>();  // again: harmless
  expect_same_type_and_message(my_logic_error{"x"});

  try {
    crew::register_exception<prefixed_error>();
    FAIL() << "a type whose what() is not its message must be refused";
  } catch (const crew::exception_registration_error& e) {
    EXPECT_NE(std::string{e.what()}.find("factory"), std::string::npos) << e.what();
  }
  crew::register_exception<prefixed_error>(+[](const std::string& what) {
    return prefixed_error{what.starts_with(prefix) ? what.substr(prefix.size()) : what};
  });
  expect_same_type_and_message(prefixed_error{"p"});
  expect_same_type_and_message(prefixed_error{""});
  // A message the factory cannot turn back into the same what(): a task_error naming the type.
  try {
    std::rethrow_exception(
        decode_exception(one_level("(anonymous namespace)::prefixed_error", "no prefix")));
    FAIL();
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.remote_type(), "(anonymous namespace)::prefixed_error");
    EXPECT_STREQ(e.what(), "no prefix");
  }

  EXPECT_THROW(crew::register_exception<picky_error>(nullptr), std::invalid_argument);
}

TEST(ExceptionCodec, RegisteredTypeThatRefusesAMessageFallsBackToTaskError) {
  crew::register_exception<picky_error>();
  expect_same_type_and_message(picky_error{"fine"});
  // A level of that type whose message its constructor refuses (forged: picky_error itself
  // never holds one).
  const std::string name = "(anonymous namespace)::picky_error";
  const std::string what = "please refuse me";
  const std::vector<std::byte> hand = one_level(name, what);
  try {
    std::rethrow_exception(decode_exception(hand));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.remote_type(), name);
    EXPECT_EQ(std::string{e.what()}, what);
  } catch (...) {
    ADD_FAILURE() << "expected the task_error fallback";
  }
}

TEST(ExceptionCodec, UnknownTypesArriveAsTaskErrorWithTypeAndMessage) {
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(never_registered{"nope"})));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), crew::error_kind::exception);
    EXPECT_EQ(e.remote_type(), "(anonymous namespace)::never_registered");
    EXPECT_STREQ(e.what(), "nope");
    EXPECT_FALSE(e.original());
  }
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(42)));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.remote_type(), "int");
    EXPECT_NE(std::string{e.what()}.find("does not derive from std::exception"), std::string::npos);
  }
  // Null: a std::bad_exception.
  EXPECT_THROW(std::rethrow_exception(round_trip(nullptr)), std::bad_exception);
}

TEST(ExceptionCodec, NestedChainsArriveWhole) {
  std::exception_ptr original;
  try {
    try {
      try {
        throw never_registered{"innermost"};
      } catch (...) {
        std::throw_with_nested(
            std::system_error(std::make_error_code(std::errc::timed_out), "mid"));
      }
    } catch (...) {
      std::throw_with_nested(my_error{"middle"});
    }
  } catch (...) {
    try {
      std::throw_with_nested(std::invalid_argument{"outer"});
    } catch (...) {
      original = std::current_exception();
    }
  }
  const auto before = chain_of(original);
  const auto after = chain_of(round_trip(original));
  ASSERT_EQ(before.size(), 4U);
  ASSERT_EQ(after.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(after[i].second, before[i].second) << i;
  // Levels of known types are what throw_with_nested made of that type; the unknown one is a
  // task_error.
  try {
    std::rethrow_exception(round_trip(original));
  } catch (const std::invalid_argument& outer) {
    try {
      std::rethrow_if_nested(outer);
    } catch (const my_error& middle) {
      try {
        std::rethrow_if_nested(middle);
      } catch (const std::system_error& mid) {
        EXPECT_EQ(mid.code(), std::make_error_code(std::errc::timed_out));
        try {
          std::rethrow_if_nested(mid);
        } catch (const crew::task_error& inner) {
          EXPECT_EQ(inner.remote_type(), "(anonymous namespace)::never_registered");
          EXPECT_STREQ(inner.what(), "innermost");
          return;
        }
      }
    }
  }
  FAIL() << "the chain was not rebuilt level by level";
}

TEST(ExceptionCodec, UnknownOuterLevelWithNestedCauseKeepsTheCause) {
  std::exception_ptr original;
  try {
    try {
      throw std::out_of_range{"cause"};
    } catch (...) {
      std::throw_with_nested(never_registered{"wrapper"});
    }
  } catch (...) {
    original = std::current_exception();
  }
  try {
    std::rethrow_exception(round_trip(original));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.remote_type(), "(anonymous namespace)::never_registered");
    EXPECT_THROW(std::rethrow_if_nested(e), std::out_of_range);
    return;
  }
  FAIL();
}

TEST(ExceptionCodec, ChainsDeeperThanTheLimitAreCut) {
  std::exception_ptr original = std::make_exception_ptr(std::runtime_error{"level 99"});
  for (int i = 98; i >= 0; --i) {
    try {
      std::rethrow_exception(original);
    } catch (...) {
      try {
        std::throw_with_nested(std::runtime_error{"level " + std::to_string(i)});
      } catch (...) {
        original = std::current_exception();
      }
    }
  }
  const auto after = chain_of(round_trip(original));
  ASSERT_EQ(after.size(), crew::max_exception_chain);
  EXPECT_EQ(after.front().second, "level 0");
  EXPECT_EQ(after.back().second, "level 31");
}

TEST(ExceptionCodec, HugeMessageRoundTrips) {
  std::string message(std::size_t{2} << 20, 'x');
  message[12345] = 'y';
  expect_same_type_and_message(std::runtime_error{message});
}

TEST(ExceptionCodec, TaskErrorsTravelAsWhatTheyStandFor) {
  // A task_error holding the task's own exception (thread pool) travels as that exception.
  const crew::task_error wrapped =
      crew::task_error::from_exception(std::make_exception_ptr(std::domain_error{"d"}));
  EXPECT_THROW(std::rethrow_exception(round_trip(std::make_exception_ptr(wrapped))),
               std::domain_error);
  // One with another kind keeps its kind.
  const crew::task_error timed_out{crew::error_kind::timed_out, "too slow"};
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(timed_out)));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.kind(), crew::error_kind::timed_out);
    EXPECT_STREQ(e.what(), "too slow");
  }
  // One that arrived from another process travels on with its remote type.
  crew::task_error::details info;
  info.remote_type = "some::type";
  const crew::task_error remote{crew::error_kind::exception, "far", info};
  try {
    std::rethrow_exception(round_trip(std::make_exception_ptr(remote)));
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.remote_type(), "some::type");
    EXPECT_STREQ(e.what(), "far");
  }
}

TEST(ExceptionCodec, RemoteExceptionErrorMakesGetRethrowLikeAThreadPool) {
  crew::task_error::details base;
  base.pid = 4242;
  base.task_name = "fn";
  const auto known = crew::detail::remote_exception_error(
      encode_exception(std::make_exception_ptr(std::invalid_argument{"bad"})), base);
  EXPECT_EQ(known.kind(), crew::error_kind::exception);
  EXPECT_EQ(known.remote_type(), "std::invalid_argument");
  EXPECT_EQ(known.pid(), 4242);
  EXPECT_STREQ(known.what(), "bad");
  ASSERT_TRUE(known.original());

  auto state = crew::detail::make_state<crew::detail::shared_state<int>>();
  state->fail(known);
  crew::future<int> f{state};
  EXPECT_THROW((void)f.get(), std::invalid_argument);

  const auto unknown = crew::detail::remote_exception_error(
      encode_exception(std::make_exception_ptr(never_registered{"n"})), base);
  EXPECT_FALSE(unknown.original());
  EXPECT_EQ(unknown.pid(), 4242);
  auto state2 = crew::detail::make_state<crew::detail::shared_state<int>>();
  state2->fail(unknown);
  crew::future<int> f2{state2};
  try {
    (void)f2.get();
    FAIL();
  } catch (const crew::task_error& e) {
    EXPECT_EQ(e.pid(), 4242);
    EXPECT_EQ(e.remote_type(), "(anonymous namespace)::never_registered");
  }
}

// ------------------------------------------------------------------------------ bad input

std::vector<std::byte> valid_chain_bytes() {
  try {
    try {
      throw std::out_of_range{"inner"};
    } catch (...) {
      std::throw_with_nested(std::system_error(std::make_error_code(std::errc::io_error), "io"));
    }
  } catch (...) {
    return encode_exception(std::current_exception());
  }
  return {};
}

TEST(ExceptionCodec, EveryTruncationIsACleanError) {
  const std::vector<std::byte> bytes = valid_chain_bytes();
  ASSERT_FALSE(bytes.empty());
  EXPECT_NO_THROW((void)decode_exception(bytes));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW((void)decode_exception(std::span{bytes}.first(n)), crew::serialization_error) << n;
  }
  std::vector<std::byte> longer = bytes;
  longer.push_back(std::byte{0});
  EXPECT_THROW((void)decode_exception(longer), crew::serialization_error) << "trailing byte";
}

TEST(ExceptionCodec, CorruptHeadersAndFieldsAreCleanErrors) {
  const std::vector<std::byte> bytes = valid_chain_bytes();
  auto with = [&](std::size_t offset, std::byte value) {
    std::vector<std::byte> copy = bytes;
    copy[offset] = value;
    return copy;
  };
  EXPECT_THROW((void)decode_exception(with(0, std::byte{2})), crew::serialization_error);
  EXPECT_THROW((void)decode_exception(with(1, std::byte{2})), crew::serialization_error);
  std::vector<std::byte> zero = bytes;
  std::memset(zero.data() + 2, 0, 4);
  EXPECT_THROW((void)decode_exception(zero), crew::serialization_error) << "no levels";
  std::vector<std::byte> deep = bytes;
  const std::uint32_t too_many = crew::max_exception_chain + 1;
  std::memcpy(deep.data() + 2, &too_many, 4);
  EXPECT_THROW((void)decode_exception(deep), crew::serialization_error) << "too deep";
  std::vector<std::byte> huge = bytes;
  const std::uint64_t length = std::uint64_t{1} << 62;
  std::memcpy(huge.data() + 6, &length, 8);
  EXPECT_THROW((void)decode_exception(huge), crew::serialization_error) << "type length";
  // Every single-byte corruption decodes or fails cleanly (never crashes, never hangs).
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const std::byte value : {std::byte{0}, std::byte{0x7f}, std::byte{0xff}}) {
      try {
        (void)decode_exception(with(i, value));
      } catch (const crew::serialization_error&) {
      }
    }
  }
}

TEST(ExceptionCodec, CrossesARealProcessBoundary) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    std::vector<std::byte> bytes;
    try {
      try {
        throw std::length_error{"from the child"};
      } catch (...) {
        std::throw_with_nested(my_error{"child wrapper"});
      }
    } catch (...) {
      bytes = encode_exception(std::current_exception());
    }
    const std::size_t n = bytes.size();
    if (write(fds[1], &n, sizeof n) != sizeof n) _exit(2);
    if (write(fds[1], bytes.data(), n) != static_cast<ssize_t>(n)) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  std::size_t n = 0;
  ASSERT_EQ(read(fds[0], &n, sizeof n), static_cast<ssize_t>(sizeof n));
  std::vector<std::byte> bytes(n);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fds[0], bytes.data() + got, n - got);
    ASSERT_GT(r, 0);
    got += static_cast<std::size_t>(r);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  try {
    std::rethrow_exception(decode_exception(bytes));
  } catch (const my_error& e) {
    EXPECT_STREQ(e.what(), "child wrapper");
    EXPECT_THROW(std::rethrow_if_nested(e), std::length_error);
    return;
  }
  FAIL();
}

TEST(ExceptionCodec, ConcurrentRegistrationAndDecoding) {
  struct late_error : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  const std::vector<std::byte> bytes = encode_exception(std::make_exception_ptr(late_error{"l"}));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  std::atomic<int> typed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 200; ++i) {
        if (t == 0 && i == 100) crew::register_exception<late_error>();
        try {
          std::rethrow_exception(decode_exception(bytes));
        } catch (const late_error&) {
          typed.fetch_add(1);
        } catch (const crew::task_error&) {
        }
      }
    });
  }
  go.store(true);
  for (auto& t : threads) t.join();
  EXPECT_GT(typed.load(), 0);
  EXPECT_THROW(std::rethrow_exception(decode_exception(bytes)), late_error);
}

}  // namespace
