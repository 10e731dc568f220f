// Untrusted input: every malformed message must throw crew::serialization_error, never crash,
// read out of bounds, loop without bound or allocate far more than its size. Run these under
// -DCREW_SANITIZE=address,undefined too.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "crew/codec.hpp"

namespace codec = crew::codec;

namespace {

struct record {
  std::string name;
  std::vector<std::optional<double>> values;
  std::variant<std::monostate, int, std::string> extra;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values, extra);
  }
};

struct node {
  std::vector<node> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(children);
  }
};

struct empty_type {
  template <class Archive>
  void serialize(Archive&) {}
};

using nested = std::tuple<std::vector<std::string>, std::map<int, std::vector<double>>,
                          std::optional<record>, std::vector<bool>, std::set<std::string>,
                          std::unordered_map<std::string, int>, bool>;

nested sample_value() {
  record r{"rec", {1.5, std::nullopt, -2.0}, std::string("tail")};
  return nested{{"alpha", "", "gamma"},
                {{1, {1.0, 2.0}}, {5, {}}},
                r,
                {true, false, true, true, true, false, false, true, true},
                {"x", "y"},
                {{"k", 1}},
                true};
}

template <class T>
std::vector<std::byte> bytes_of(const T& value) {
  std::vector<std::byte> out(sizeof value);
  std::memcpy(out.data(), &value, sizeof value);
  return out;
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// Decodes `bytes` as T and returns the serialization_error it must throw.
template <class T>
crew::serialization_error decode_error(const std::vector<std::byte>& bytes) {
  try {
    (void)codec::decode<T>(bytes);
  } catch (const crew::serialization_error& e) {
    return e;
  }
  ADD_FAILURE() << "decoding did not throw";
  return crew::serialization_error("none", 0);
}

TEST(CodecMalformed, EveryTruncationOfANestedMessageThrows) {
  const auto bytes = codec::encode(sample_value());
  ASSERT_GT(bytes.size(), 100U);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::byte> prefix(bytes.begin(),
                                        bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW((void)codec::decode<nested>(prefix), crew::serialization_error) << "prefix " << n;
  }
  EXPECT_NO_THROW((void)codec::decode<nested>(bytes));
}

TEST(CodecMalformed, EverySingleByteCorruptionThrowsOrDecodes) {
  // Any outcome but a serialization_error or a clean decode (a crash, a sanitizer report,
  // another exception such as bad_alloc) fails this test.
  const auto bytes = codec::encode(sample_value());
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned value : {0x00U, 0x01U, 0x02U, 0x7FU, 0x80U, 0xFFU}) {
      auto corrupt = bytes;
      corrupt[i] = std::byte(value);
      try {
        const auto decoded = codec::decode<nested>(corrupt);
        // Whatever decodes must encode to the same size it was decoded from.
        EXPECT_EQ(codec::encoded_size(decoded), corrupt.size());
      } catch (const crew::serialization_error&) {
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0U);
}

TEST(CodecMalformed, TrailingBytesAreRejected) {
  auto bytes = codec::encode(std::string("abc"));
  bytes.push_back(std::byte{0});
  const auto e = decode_error<std::string>(bytes);
  EXPECT_EQ(e.offset(), 11U);
  EXPECT_NE(std::string(e.what()).find("trailing"), std::string::npos) << e.what();
}

TEST(CodecMalformed, EmptyInputIsTruncated) {
  const auto e = decode_error<int>({});
  EXPECT_EQ(e.offset(), 0U);
  EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
}

// 16 bytes that claim 2^60 elements: must be refused from the length alone, before allocating.
const std::vector<std::byte> forged_huge =
    concat({bytes_of(std::uint64_t{1} << 60), bytes_of(std::uint64_t{0})});

template <class T>
void expect_huge_length_refused() {
  const auto e = decode_error<T>(forged_huge);
  EXPECT_EQ(e.offset(), 0U);
  EXPECT_NE(std::string(e.what()).find("1152921504606846976"), std::string::npos) << e.what();
}

TEST(CodecMalformed, HugeForgedLengthsAreRefusedBeforeAllocating) {
  expect_huge_length_refused<std::string>();
  expect_huge_length_refused<std::u32string>();
  expect_huge_length_refused<std::vector<double>>();
  expect_huge_length_refused<std::vector<char>>();
  expect_huge_length_refused<std::vector<std::string>>();
  expect_huge_length_refused<std::vector<std::optional<int>>>();
  expect_huge_length_refused<std::vector<record>>();
  expect_huge_length_refused<std::vector<empty_type>>();
  expect_huge_length_refused<std::vector<bool>>();
  expect_huge_length_refused<std::map<int, int>>();
  expect_huge_length_refused<std::unordered_map<int, std::string>>();
  expect_huge_length_refused<std::set<std::string>>();
  expect_huge_length_refused<std::unordered_set<int>>();
}

TEST(CodecMalformed, MaxLengthDoesNotOverflowTheBoundCheck) {
  const auto bytes = concat({bytes_of(std::numeric_limits<std::uint64_t>::max())});
  EXPECT_THROW((void)codec::decode<std::vector<std::uint64_t>>(bytes), crew::serialization_error);
  EXPECT_THROW((void)codec::decode<std::vector<bool>>(bytes), crew::serialization_error);
  EXPECT_THROW((void)codec::decode<std::u32string>(bytes), crew::serialization_error);
}

// Counts what a container allocates.
inline std::size_t allocated_bytes = 0;
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    allocated_bytes += n * sizeof(T);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>&) const noexcept {
    return true;
  }
};

TEST(CodecMalformed, APlausibleCountWithMissingElementsAllocatesAtMostTheInputSize) {
  // 1000 elements of 520 bytes each would be ~520 KB; each element takes at least one byte, so
  // a count of 1000 passes the length check against 1000 remaining bytes. The first element is
  // bad, and what was reserved up front must stay within the input's size.
  using big = std::optional<std::array<double, 64>>;
  std::vector<std::byte> bytes = bytes_of(std::uint64_t{1000});
  bytes.resize(bytes.size() + 1000, std::byte{7});  // flag 7: invalid
  allocated_bytes = 0;
  std::vector<big, counting_allocator<big>> out;
  EXPECT_THROW(codec::decode_into(bytes, out), crew::serialization_error);
  EXPECT_LE(allocated_bytes, bytes.size());
}

TEST(CodecMalformed, BadBoolBytes) {
  for (unsigned value : {2U, 0x80U, 0xFFU}) {
    const std::vector<std::byte> bytes{std::byte(value)};
    const auto e = decode_error<bool>(bytes);
    EXPECT_EQ(e.offset(), 0U);
    EXPECT_NE(std::string(e.what()).find("bool"), std::string::npos) << e.what();
  }
  // Inside a structure, the offset points at the bad byte.
  auto bytes = codec::encode(std::tuple<int, bool>{1, true});
  bytes[4] = std::byte{3};
  EXPECT_EQ((decode_error<std::tuple<int, bool>>(bytes).offset()), 4U);
  auto array_bytes = codec::encode(std::array<bool, 3>{true, true, true});
  array_bytes[2] = std::byte{2};
  EXPECT_EQ((decode_error<std::array<bool, 3>>(array_bytes).offset()), 2U);
}

TEST(CodecMalformed, BadOptionalFlag) {
  auto bytes = codec::encode(std::optional<int>{5});
  bytes[0] = std::byte{2};
  const auto e = decode_error<std::optional<int>>(bytes);
  EXPECT_EQ(e.offset(), 0U);
  EXPECT_NE(std::string(e.what()).find("optional"), std::string::npos) << e.what();
}

TEST(CodecMalformed, VariantIndexOutOfRange) {
  using v = std::variant<int, std::string, double>;
  for (unsigned index : {3U, 4U, 255U}) {
    auto bytes = codec::encode(v{1});
    bytes[0] = std::byte(index);
    const auto e = decode_error<v>(bytes);
    EXPECT_EQ(e.offset(), 0U);
    EXPECT_NE(std::string(e.what()).find("variant index"), std::string::npos) << e.what();
  }
}

TEST(CodecMalformed, VectorBoolPaddingBitsMustBeZero) {
  auto bytes = codec::encode(std::vector<bool>{true, false, true});
  bytes.back() |= std::byte{0x80};
  EXPECT_EQ(decode_error<std::vector<bool>>(bytes).offset(), 8U);
}

TEST(CodecMalformed, MapKeysOutOfOrderOrDuplicate) {
  const auto good = codec::encode(std::map<int, int>{{1, 10}, {2, 20}});
  // Swap the two keys: 2 then 1.
  auto swapped = good;
  std::memcpy(swapped.data() + 8, bytes_of(2).data(), 4);
  std::memcpy(swapped.data() + 16, bytes_of(1).data(), 4);
  EXPECT_EQ((decode_error<std::map<int, int>>(swapped).offset()), 16U);
  auto duplicate = good;
  std::memcpy(duplicate.data() + 16, bytes_of(1).data(), 4);
  EXPECT_EQ((decode_error<std::map<int, int>>(duplicate).offset()), 16U);

  const auto unordered =
      concat({bytes_of(std::uint64_t{2}), bytes_of(5), bytes_of(1), bytes_of(5), bytes_of(2)});
  EXPECT_EQ((decode_error<std::unordered_map<int, int>>(unordered).offset()), 16U);
}

TEST(CodecMalformed, SetElementsOutOfOrderOrDuplicate) {
  const auto descending = concat({bytes_of(std::uint64_t{2}), bytes_of(9), bytes_of(3)});
  EXPECT_EQ(decode_error<std::set<int>>(descending).offset(), 12U);
  const auto duplicate = concat({bytes_of(std::uint64_t{2}), bytes_of(3), bytes_of(3)});
  EXPECT_EQ(decode_error<std::set<int>>(duplicate).offset(), 12U);
  EXPECT_EQ(decode_error<std::unordered_set<int>>(duplicate).offset(), 12U);
}

TEST(CodecMalformed, ZeroSizeElementsAreRefused) {
  // One empty element followed by an int: the count fits the remaining bytes, but an element
  // that takes no bytes would let a count run without bound.
  const auto bytes = concat({bytes_of(std::uint64_t{1}), bytes_of(42)});
  const auto e = decode_error<std::tuple<std::vector<empty_type>, int>>(bytes);
  EXPECT_EQ(e.offset(), 8U);
  EXPECT_NE(std::string(e.what()).find("zero bytes"), std::string::npos) << e.what();
}

TEST(CodecMalformed, ForgedDeepNestingIsRefusedWithoutOverflowingTheStack) {
  // 100000 levels of "one child", which would overflow the stack if followed.
  std::vector<std::byte> bytes;
  const auto one = bytes_of(std::uint64_t{1});
  for (int i = 0; i < 100000; ++i) bytes.insert(bytes.end(), one.begin(), one.end());
  const auto zero = bytes_of(std::uint64_t{0});
  bytes.insert(bytes.end(), zero.begin(), zero.end());
  const auto e = decode_error<node>(bytes);
  EXPECT_NE(std::string(e.what()).find("max_depth"), std::string::npos) << e.what();
  EXPECT_EQ(e.offset(), 8U * codec::max_depth);
}

TEST(CodecMalformed, ErrorsNameTheOffset) {
  auto bytes = codec::encode(std::tuple<std::string, bool>{"ab", false});
  bytes.back() = std::byte{9};
  const auto e = decode_error<std::tuple<std::string, bool>>(bytes);
  EXPECT_EQ(e.offset(), 10U);
  EXPECT_NE(std::string(e.what()).find("at offset 10"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("crew::codec"), std::string::npos) << e.what();
}

TEST(CodecMalformed, SerializationErrorIsARuntimeError) {
  EXPECT_THROW((void)codec::decode<int>(std::vector<std::byte>(3)), std::runtime_error);
}

}  // namespace
