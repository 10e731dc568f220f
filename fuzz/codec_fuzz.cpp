// libFuzzer target for crew's codec: decodes untrusted bytes as rich nested types. Decoding may
// throw crew::serialization_error and nothing else; it must never crash, read out of bounds,
// hang or allocate far beyond the input (run with -malloc_limit_mb). Whatever decodes must
// encode back to the same bytes (or, for hash containers, to the same value and size).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "codec_fuzz_types.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "codec_fuzz: %s\n", what);
  std::abort();
}

template <class T>
void check_canonical(std::span<const std::byte> input) {
  T value;
  try {
    crew::codec::decode_into(input, value);
  } catch (const crew::serialization_error&) {
    return;
  }
  if (crew::codec::encoded_size(value) != input.size()) fail("encoded_size differs from input");
  const auto bytes = crew::codec::encode(value);
  if (bytes.size() != input.size() || std::memcmp(bytes.data(), input.data(), bytes.size()) != 0) {
    fail("re-encoding differs from the decoded input");
  }
}

void check_hashed(std::span<const std::byte> input) {
  crew_fuzz::hashed value;
  try {
    crew::codec::decode_into(input, value);
  } catch (const crew::serialization_error&) {
    return;
  }
  const auto bytes = crew::codec::encode(value);
  if (bytes.size() != input.size()) fail("re-encoding has another size");
  if (crew::codec::decode<crew_fuzz::hashed>(bytes) != value) fail("round trip changed the value");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (static_cast<crew_fuzz::target>(data[0] % crew_fuzz::target_count)) {
    case crew_fuzz::target::rich:
      check_canonical<crew_fuzz::rich>(input);
      break;
    case crew_fuzz::target::hashed:
      check_hashed(input);
      break;
    case crew_fuzz::target::tree:
      check_canonical<crew_fuzz::tree>(input);
      break;
  }
  return 0;
}
