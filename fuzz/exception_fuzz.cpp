// libFuzzer target for crew's exception decoder (crew/exception.hpp): untrusted bytes from a
// worker. Decoding may throw crew::serialization_error and nothing else; it must never crash,
// read out of bounds, hang or allocate far beyond the input. Whatever decodes must encode again
// and decode to a chain with the same messages.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "crew/codec.hpp"
#include "crew/exception.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "exception_fuzz: %s\n", what);
  std::abort();
}

std::vector<std::string> messages(const std::exception_ptr& error) {
  std::vector<std::string> out;
  std::exception_ptr next = error;
  while (next && out.size() <= crew::max_exception_chain) {
    std::exception_ptr inner;
    try {
      std::rethrow_exception(next);
    } catch (const std::exception& e) {
      out.emplace_back(e.what());
      try {
        std::rethrow_if_nested(e);
      } catch (...) {
        inner = std::current_exception();
      }
    } catch (...) {
      fail("decoded to an exception that does not derive from std::exception");
    }
    next = inner;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  std::exception_ptr decoded;
  try {
    decoded = crew::decode_exception(input);
  } catch (const crew::serialization_error&) {
    return 0;
  }
  if (!decoded) fail("decode returned null");
  const std::vector<std::string> first = messages(decoded);
  if (first.empty() || first.size() > crew::max_exception_chain) fail("chain length out of range");
  const std::vector<std::byte> again = crew::encode_exception(decoded);
  std::exception_ptr redecoded;
  try {
    redecoded = crew::decode_exception(again);
  } catch (const crew::serialization_error&) {
    fail("a decoded exception encodes to bytes that do not decode");
  }
  if (messages(redecoded) != first) fail("the round trip changed a message");
  return 0;
}
