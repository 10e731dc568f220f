// crew-soak: the tasks the soak submits, one per kind of fault or payload, and the deterministic
// data they work on. Every task returns a `soak::value`, so that one batch of futures can mix them.
//
// All are free functions in namespace soak, so a worker reports them as "soak::<name>" and an
// exception of soak::custom_error as that exact type name. Tasks that fault do so for real: a
// signal, _Exit, a sleep past the timeout, memory touched page by page, a child process started.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace soak {

using value = std::variant<std::uint64_t, std::string, std::vector<std::uint32_t>>;

/// A user exception type, so the soak checks the demangled name crew reports for it.
class custom_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::uint64_t mix(std::uint64_t x) noexcept;
/// `bytes` printable characters drawn from `seed`.
std::string make_string(std::uint64_t seed, std::size_t bytes);
/// `count` words drawn from `seed`.
std::vector<std::uint32_t> make_words(std::uint64_t seed, std::size_t count);
std::uint64_t checksum(const std::vector<std::uint32_t>& words) noexcept;

/// How crash() ends its process.
enum crash_how : int { raise_segv = 0, null_write = 1, abort_call = 2, kill_self = 3 };
/// How spawn_then() starts its child, and what the task does afterwards.
enum spawn_how : int { exec_sleep = 0, shell_background = 1, fork_sleeper = 2 };
enum spawn_then_do : int { then_hang = 0, then_crash = 1, then_return = 2 };
/// Which exception throw_it() throws.
enum throw_what : int {
  runtime_error = 0,
  out_of_range = 1,
  invalid_argument = 2,
  logic_error = 3,
  custom = 4,
  an_int = 5,
  bad_alloc = 6,
  throw_what_count = 7,
};

value compute(std::uint64_t seed);
value nap(int ms, std::uint64_t seed);
value crash(int how);
value quit(int code);
value hang(int ms);
value throw_it(int what, std::string message);
value hog(std::size_t mib, int hold_ms);
value digest(std::vector<std::uint32_t> words);
value produce_string(std::uint64_t seed, std::size_t bytes);
value produce_words(std::uint64_t seed, std::size_t count);
value transform(std::vector<std::uint32_t> words, std::uint32_t key);
/// Starts a child that sleeps 30 s and is marked with `token` (see procfs.hpp), then hangs for
/// `ms`, crashes with SIGSEGV or returns mix(ms).
value spawn_then(int how, std::string token, int then, int ms);

}  // namespace soak
