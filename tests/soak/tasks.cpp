#include "tasks.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

namespace soak {

std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string make_string(std::uint64_t seed, std::size_t bytes) {
  std::string out(bytes, '\0');
  std::uint64_t state = mix(seed);
  for (std::size_t i = 0; i < bytes; ++i) {
    if (i % 8 == 0) state = mix(state);
    out[i] = static_cast<char>('!' + ((state >> (8 * (i % 8))) & 0xff) % 94);
  }
  return out;
}

std::vector<std::uint32_t> make_words(std::uint64_t seed, std::size_t count) {
  std::vector<std::uint32_t> out(count);
  std::uint64_t state = mix(seed);
  for (std::size_t i = 0; i < count; ++i) {
    state = mix(state + i);
    out[i] = static_cast<std::uint32_t>(state);
  }
  return out;
}

std::uint64_t checksum(const std::vector<std::uint32_t>& words) noexcept {
  std::uint64_t sum = 0xcbf29ce484222325ULL;
  for (const std::uint32_t w : words) sum = (sum ^ w) * 0x100000001b3ULL;
  return sum ^ words.size();
}

value compute(std::uint64_t seed) {
  return mix(seed);
}

value nap(int ms, std::uint64_t seed) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return mix(seed);
}

// The null write must reach the hardware: UBSan would report it (and end the process its own
// way) and ASan would turn the SIGSEGV into a report; the soak wants the plain signal.
__attribute__((no_sanitize("address", "undefined"))) value crash(int how) {
  switch (how) {
    case raise_segv:
      raise(SIGSEGV);
      break;
    case null_write: {
      // The compiler must neither see that the pointer is null nor drop the store.
      volatile int* target = nullptr;
      asm volatile("" : "+r"(target));
      *target = 42;
      break;
    }
    case abort_call:
      std::abort();
    case kill_self:
      kill(getpid(), SIGKILL);
      break;
    default:
      break;
  }
  for (;;) pause();  // a signal that is delivered late still ends the process here
}

value quit(int code) {
  std::_Exit(code);
}

value hang(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return std::uint64_t{0};
}

value throw_it(int what, std::string message) {
  switch (what) {
    case runtime_error:
      throw std::runtime_error(message);
    case out_of_range:
      throw std::out_of_range(message);
    case invalid_argument:
      throw std::invalid_argument(message);
    case logic_error:
      throw std::logic_error(message);
    case custom:
      throw custom_error(message);
    case an_int:
      throw 42;
    default:
      throw std::bad_alloc();
  }
}

value hog(std::size_t mib, int hold_ms) {
  const std::size_t bytes = mib << 20;
  auto* block = static_cast<volatile char*>(std::malloc(bytes));
  if (block == nullptr) throw std::bad_alloc();
  for (std::size_t i = 0; i < bytes; i += 4096) block[i] = static_cast<char>(i >> 12);
  std::this_thread::sleep_for(std::chrono::milliseconds{hold_ms});
  const auto sample = static_cast<std::uint64_t>(block[bytes / 2]);
  std::free(const_cast<char*>(block));
  return sample;
}

value digest(std::vector<std::uint32_t> words) {
  return checksum(words);
}

value produce_string(std::uint64_t seed, std::size_t bytes) {
  return make_string(seed, bytes);
}

value produce_words(std::uint64_t seed, std::size_t count) {
  return make_words(seed, count);
}

value transform(std::vector<std::uint32_t> words, std::uint32_t key) {
  for (auto& w : words) w = (w ^ key) + 1;
  return words;
}

value spawn_then(int how, std::string token, int then, int ms) {
  const std::string mark = "CREW_SOAK_MARK=" + token;
  const std::string name = ("cs-" + token).substr(0, 15);
  if (how == shell_background) {
    const std::string command = mark + " sleep 30 >/dev/null 2>&1 &";
    if (std::system(command.c_str()) != 0) throw std::runtime_error("system() failed");
  } else {
    char* const argv[] = {const_cast<char*>("sleep"), const_cast<char*>("30"), nullptr};
    char* const envp[] = {const_cast<char*>(mark.c_str()), nullptr};
    const pid_t child = fork();
    if (child < 0) throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
    if (child == 0) {
      // Only async-signal-safe calls: the worker may have other threads.
      if (how == exec_sleep) {
        execve("/bin/sleep", argv, envp);
        _exit(127);
      }
      prctl(PR_SET_NAME, name.c_str());
      struct timespec rest {
        30, 0
      };
      while (nanosleep(&rest, &rest) != 0) {
      }
      _exit(0);
    }
  }
  switch (then) {
    case then_hang:
      return hang(ms);
    case then_crash:
      return crash(raise_segv);
    default:
      return mix(static_cast<std::uint64_t>(ms));
  }
}

}  // namespace soak
