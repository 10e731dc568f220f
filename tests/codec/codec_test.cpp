// Round trips, exact sizes and the wire format of crew's codec.
#include "crew/codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace codec = crew::codec;

namespace {

enum class color : std::uint8_t { red = 1, green = 2, blue = 200 };
enum legacy_flags : std::uint32_t { flag_a = 1, flag_b = 0x80000000U };

// A user type with a member serialize, including C arrays (cereal's convention).
struct sample {
  int id = 0;
  std::string name;
  double weights[3] = {0, 0, 0};
  std::string tags[2];
  bool flags[2] = {false, false};
  std::vector<std::pair<int, std::string>> items;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, name, weights, tags, flags, items);
  }
  bool operator==(const sample& other) const {
    return id == other.id && name == other.name &&
           std::equal(std::begin(weights), std::end(weights), std::begin(other.weights)) &&
           std::equal(std::begin(tags), std::end(tags), std::begin(other.tags)) &&
           std::equal(std::begin(flags), std::end(flags), std::begin(other.flags)) &&
           items == other.items;
  }
};

// A bitwise opt-in type: copied as its bytes, one memcpy for a whole vector of them.
struct point3 {
  float x, y, z;
  bool operator==(const point3&) const = default;
};

}  // namespace

template <>
inline constexpr bool crew::codec::is_bitwise<point3> = true;

namespace geometry {
// A user type serialized through a free function found by argument-dependent lookup.
struct segment {
  point3 from;
  point3 to;
  std::optional<std::string> label;
  bool operator==(const segment&) const = default;
};
template <class Archive>
void serialize(Archive& ar, segment& s) {
  ar(s.from, s.to, s.label);
}
}  // namespace geometry

namespace {

// A recursive user type: only user types can nest without bound.
struct tree {
  int value = 0;
  std::vector<tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
  bool operator==(const tree&) const = default;
};

// Encodes `value` every way the API offers, checks they agree and match encoded_size, decodes
// both ways and returns the decoded value.
// Unordered containers may list their elements in another order after a round trip, so their
// re-encoding is compared by size, not byte for byte.
template <class T>
T round_trip(const T& value, bool canonical = true) {
  const std::vector<std::byte> bytes = codec::encode(value);
  EXPECT_EQ(bytes.size(), codec::encoded_size(value));

  // encode_into a larger span writes exactly encoded_size bytes and leaves the rest alone.
  std::vector<std::byte> larger(bytes.size() + 16, std::byte{0xAB});
  EXPECT_EQ(codec::encode_into(larger, value), bytes.size());
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), larger.begin()));
  EXPECT_TRUE(std::all_of(larger.begin() + static_cast<std::ptrdiff_t>(bytes.size()), larger.end(),
                          [](std::byte b) { return b == std::byte{0xAB}; }));

  T decoded = codec::decode<T>(bytes);
  // decode_into over an object that already holds the decoded value gives the same bytes back.
  T again = decoded;
  codec::decode_into(bytes, again);
  if (canonical) {
    EXPECT_EQ(codec::encode(again), bytes);
    EXPECT_EQ(codec::encode(decoded), bytes);
  } else {
    EXPECT_EQ(codec::encoded_size(again), bytes.size());
    EXPECT_EQ(codec::encoded_size(decoded), bytes.size());
  }
  return decoded;
}

template <class T>
void expect_round_trip(const T& value) {
  EXPECT_EQ(round_trip(value), value);
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

// --- concept ------------------------------------------------------------------------------------

static_assert(codec::serializable<int>);
static_assert(codec::serializable<std::byte>);
static_assert(codec::serializable<color>);
static_assert(codec::serializable<std::vector<bool>>);
static_assert(codec::serializable<std::tuple<>>);
static_assert(codec::serializable<std::variant<std::monostate, int>>);
static_assert(codec::serializable<std::map<std::string, std::vector<std::optional<double>>>>);
static_assert(codec::serializable<sample>);
static_assert(codec::serializable<geometry::segment>);
static_assert(codec::serializable<point3>);
static_assert(codec::serializable<tree>);
static_assert(codec::serializable<std::chrono::milliseconds>);
static_assert(codec::serializable<std::tuple<const int&, const std::string&>>);
static_assert(!codec::serializable<int*>);
static_assert(!codec::serializable<const char*>);
static_assert(!codec::serializable<std::string_view>);
static_assert(!codec::serializable<std::span<int>>);
static_assert(!codec::serializable<std::vector<int*>>);
static_assert(!codec::serializable<std::unique_ptr<int>>);
static_assert(!codec::serializable<std::vector<std::monostate>>);
static_assert(!codec::serializable<std::set<std::tuple<>>>);
struct no_serialize {
  int* p;
};
static_assert(!codec::serializable<no_serialize>);
enum unfixed_enum { unfixed_a, unfixed_b };
static_assert(!codec::serializable<unfixed_enum>);

// --- scalars ------------------------------------------------------------------------------------

TEST(CodecScalars, ArithmeticRoundTripAtTheirLimits) {
  expect_round_trip(std::numeric_limits<std::int8_t>::min());
  expect_round_trip(std::numeric_limits<std::uint8_t>::max());
  expect_round_trip(std::numeric_limits<std::int16_t>::min());
  expect_round_trip(std::numeric_limits<std::int32_t>::min());
  expect_round_trip(std::numeric_limits<std::int64_t>::min());
  expect_round_trip(std::numeric_limits<std::uint64_t>::max());
  expect_round_trip(std::numeric_limits<double>::lowest());
  expect_round_trip(std::numeric_limits<float>::denorm_min());
  expect_round_trip(-std::numeric_limits<double>::infinity());
  expect_round_trip('x');
  expect_round_trip(L'\u20ac');
  expect_round_trip(u8'a');
  expect_round_trip(char32_t{0x1F600});
  EXPECT_EQ(codec::encoded_size(std::int64_t{1}), 8U);
  EXPECT_EQ(codec::encoded_size('a'), 1U);
}

TEST(CodecScalars, NaNKeepsItsBits) {
  const double nan = std::nan("0x5a5");
  const auto decoded = codec::decode<double>(codec::encode(nan));
  EXPECT_TRUE(std::isnan(decoded));
  EXPECT_EQ(bytes_of(decoded), bytes_of(nan));
}

TEST(CodecScalars, BoolIsOneByteZeroOrOne) {
  EXPECT_EQ(codec::encode(true), std::vector<std::byte>{std::byte{1}});
  EXPECT_EQ(codec::encode(false), std::vector<std::byte>{std::byte{0}});
  expect_round_trip(true);
  expect_round_trip(false);
}

TEST(CodecScalars, EnumsAndBytes) {
  expect_round_trip(color::blue);
  expect_round_trip(flag_b);
  expect_round_trip(std::byte{0xFE});
  EXPECT_EQ(codec::encoded_size(color::red), 1U);
  EXPECT_EQ(codec::encoded_size(flag_a), 4U);
  // A fixed enum may carry any value of its underlying type.
  expect_round_trip(static_cast<color>(77));
}

TEST(CodecScalars, Durations) {
  expect_round_trip(std::chrono::milliseconds(-1234));
  expect_round_trip(std::chrono::nanoseconds::max());
  expect_round_trip(std::chrono::duration<double>(2.5));
  EXPECT_EQ(codec::encoded_size(std::chrono::seconds(1)), sizeof(std::chrono::seconds::rep));
}

TEST(CodecScalars, MonostateEncodesToNothing) {
  EXPECT_EQ(codec::encoded_size(std::monostate{}), 0U);
  expect_round_trip(std::monostate{});
  EXPECT_EQ(codec::encoded_size(std::tuple<>{}), 0U);
  expect_round_trip(std::tuple<>{});
}

// --- strings and sequences ----------------------------------------------------------------------

TEST(CodecSequences, StringsIncludingEmptyAndEmbeddedNul) {
  expect_round_trip(std::string());
  expect_round_trip(std::string("hello"));
  expect_round_trip(std::string("a\0b\0", 4));
  expect_round_trip(std::string(100000, 'q'));
  expect_round_trip(std::u16string(u"\u00e9t\u00e9"));
  expect_round_trip(std::u32string(U"\U0001F600"));
  EXPECT_EQ(codec::encoded_size(std::string("abc")), 8U + 3U);
  EXPECT_EQ(codec::encoded_size(std::u16string(u"abc")), 8U + 6U);
}

TEST(CodecSequences, StringWireFormatIsLengthThenBytes) {
  const auto expected = concat({bytes_of(std::uint64_t{2}), {std::byte{'h'}, std::byte{'i'}}});
  EXPECT_EQ(codec::encode(std::string("hi")), expected);
}

TEST(CodecSequences, VectorsOfEveryKind) {
  expect_round_trip(std::vector<int>{});
  expect_round_trip(std::vector<int>{1, -2, 3});
  expect_round_trip(std::vector<double>{1.5, -0.0, 1e300});
  expect_round_trip(std::vector<std::byte>{std::byte{1}, std::byte{255}});
  expect_round_trip(std::vector<char>{'a', '\0', 'z'});
  expect_round_trip(std::vector<unsigned char>{0, 255});
  expect_round_trip(std::vector<color>{color::red, color::blue});
  expect_round_trip(std::vector<std::string>{"", "one", std::string(300, 'x')});
  expect_round_trip(std::vector<std::vector<int>>{{}, {1}, {2, 3}});
  expect_round_trip(std::vector<std::optional<int>>{std::nullopt, 4});
  EXPECT_EQ(codec::encoded_size(std::vector<double>(3)), 8U + 3 * 8U);
  EXPECT_EQ(codec::encoded_size(std::vector<std::string>{"ab", ""}), 8U + (8U + 2U) + 8U);
}

TEST(CodecSequences, VectorOfDoublesIsLengthThenRawBytes) {
  const std::vector<double> v{1.0, 2.0};
  const auto expected = concat({bytes_of(std::uint64_t{2}), bytes_of(1.0), bytes_of(2.0)});
  EXPECT_EQ(codec::encode(v), expected);
}

TEST(CodecSequences, VectorBoolIsPackedBits) {
  for (std::size_t n : {0U, 1U, 7U, 8U, 9U, 64U, 100U}) {
    std::vector<bool> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = (i * 7 + 3) % 5 < 2;
    EXPECT_EQ(codec::encoded_size(v), 8U + (n + 7) / 8) << n;
    expect_round_trip(v);
  }
  const std::vector<bool> bits{true, false, true, true, false, false, false, false, true};
  const auto expected =
      concat({bytes_of(std::uint64_t{9}), {std::byte{0b00001101}, std::byte{0b00000001}}});
  EXPECT_EQ(codec::encode(bits), expected);
}

TEST(CodecSequences, Arrays) {
  expect_round_trip(std::array<int, 3>{1, 2, 3});
  expect_round_trip(std::array<bool, 3>{true, false, true});
  expect_round_trip(std::array<std::string, 2>{"a", "bc"});
  expect_round_trip(std::array<int, 0>{});
  expect_round_trip(std::array<std::array<double, 2>, 2>{{{1, 2}, {3, 4}}});
  EXPECT_EQ(codec::encoded_size(std::array<int, 3>{}), 12U);  // no length: it is in the type
  EXPECT_EQ(codec::encoded_size(std::array<bool, 5>{}), 5U);
}

// --- products and sums --------------------------------------------------------------------------

TEST(CodecProducts, PairsAndTuples) {
  expect_round_trip(std::pair<int, std::string>{7, "seven"});
  expect_round_trip(std::tuple<int, double, std::string, bool>{1, 2.5, "x", true});
  expect_round_trip(std::tuple<std::tuple<>, std::pair<char, char>>{{}, {'a', 'b'}});
  EXPECT_EQ(codec::encoded_size(std::pair<std::int32_t, double>{}), 12U);  // no padding
}

TEST(CodecSums, Optionals) {
  expect_round_trip(std::optional<int>{});
  expect_round_trip(std::optional<int>{42});
  expect_round_trip(std::optional<std::string>{"text"});
  expect_round_trip(std::optional<std::optional<int>>{std::optional<int>{}});
  expect_round_trip(std::optional<std::optional<int>>{std::nullopt});
  EXPECT_EQ(codec::encoded_size(std::optional<int>{}), 1U);
  EXPECT_EQ(codec::encoded_size(std::optional<int>{1}), 5U);
}

TEST(CodecSums, DecodeIntoResetsAnEngagedOptional) {
  std::optional<std::string> out = "old";
  codec::decode_into(codec::encode(std::optional<std::string>{}), out);
  EXPECT_FALSE(out.has_value());
}

TEST(CodecSums, VariantsEveryAlternative) {
  using v = std::variant<std::monostate, int, std::string, std::vector<double>>;
  expect_round_trip(v{});
  expect_round_trip(v{5});
  expect_round_trip(v{std::string("s")});
  expect_round_trip(v{std::vector<double>{1, 2}});
  EXPECT_EQ(codec::encoded_size(v{}), 1U);
  EXPECT_EQ(codec::encoded_size(v{5}), 5U);
  // Same alternative type twice: the index, not the type, is what is sent.
  using twice = std::variant<int, int>;
  const auto decoded = round_trip(twice{std::in_place_index<1>, 9});
  EXPECT_EQ(decoded.index(), 1U);
  EXPECT_EQ(std::get<1>(decoded), 9);
}

template <int I>
struct tag {
  template <class Archive>
  void serialize(Archive&) {}
};

template <std::size_t... I>
auto make_variant_of_tags(std::index_sequence<I...>) -> std::variant<tag<static_cast<int>(I)>...>;
template <std::size_t N>
using variant_of_tags = decltype(make_variant_of_tags(std::make_index_sequence<N>{}));

// The index is one byte: 256 alternatives fit. (A 257-alternative variant is refused, but merely
// instantiating one exceeds clang's fold-expression limit inside libstdc++'s <variant>.)
static_assert(codec::serializable<variant_of_tags<256>>);

struct throws_on_construction {
  std::string text;  // not trivially copyable, so std::variant cannot keep its old value
  throws_on_construction() = default;
  explicit throws_on_construction(int) { throw std::runtime_error("no"); }
  template <class Archive>
  void serialize(Archive&) {}
};

TEST(CodecSums, ValuelessVariantIsAnEncodingError) {
  std::variant<std::string, throws_on_construction> value{"x"};
  EXPECT_THROW(value.emplace<1>(1), std::runtime_error);
  ASSERT_TRUE(value.valueless_by_exception());
  EXPECT_THROW((void)codec::encoded_size(value), crew::serialization_error);
  std::vector<std::byte> buffer(64);
  EXPECT_THROW(codec::encode_into(buffer, value), crew::serialization_error);
}

// --- associative containers --------------------------------------------------------------------

TEST(CodecAssociative, MapsAndSets) {
  expect_round_trip(std::map<int, std::string>{});
  expect_round_trip(std::map<int, std::string>{{3, "c"}, {1, "a"}, {2, "b"}});
  expect_round_trip(std::map<std::string, std::vector<int>>{{"x", {1}}, {"y", {}}});
  expect_round_trip(std::map<int, int, std::greater<>>{{1, 1}, {2, 2}, {3, 3}});
  expect_round_trip(std::set<std::string>{"b", "a", "c"});
  expect_round_trip(std::set<int>{});
  EXPECT_EQ(codec::encoded_size(std::map<int, int>{{1, 2}}), 8U + 8U);
}

TEST(CodecAssociative, UnorderedMapsAndSets) {
  std::unordered_map<std::string, double> um;
  for (int i = 0; i < 100; ++i) um["k" + std::to_string(i)] = i * 0.5;
  EXPECT_EQ(round_trip(um, false), um);
  const std::unordered_set<int> us{1, 5, 9, -3};
  EXPECT_EQ(round_trip(us, false), us);
  EXPECT_EQ(round_trip(std::unordered_map<int, int>{}), (std::unordered_map<int, int>{}));
}

TEST(CodecAssociative, DecodeIntoReplacesExistingEntries) {
  std::map<int, int> out{{100, 1}, {200, 2}};
  codec::decode_into(codec::encode(std::map<int, int>{{1, 10}}), out);
  EXPECT_EQ(out, (std::map<int, int>{{1, 10}}));
  std::vector<std::string> strings{"stale", "data"};
  codec::decode_into(codec::encode(std::vector<std::string>{"new"}), strings);
  EXPECT_EQ(strings, std::vector<std::string>{"new"});
}

// --- user types ---------------------------------------------------------------------------------

TEST(CodecUserTypes, MemberSerializeWithCArrays) {
  sample s;
  s.id = 9;
  s.name = "nine";
  s.weights[0] = 0.25;
  s.weights[2] = -1;
  s.tags[0] = "t0";
  s.tags[1] = "t1";
  s.flags[1] = true;
  s.items = {{1, "one"}, {2, "two"}};
  expect_round_trip(s);
  // Exactly the sum of its members' encodings: no header, no padding.
  const std::size_t expected = 4 + (8 + 4) + 3 * 8 + (8 + 2) * 2 + 2 + 8 + (4 + 8 + 3) * 2;
  EXPECT_EQ(codec::encoded_size(s), expected);
}

TEST(CodecUserTypes, FreeSerializeFoundByAdl) {
  const geometry::segment s{{1, 2, 3}, {4, 5, 6}, "edge"};
  expect_round_trip(s);
  expect_round_trip(std::vector<geometry::segment>{s, {{}, {}, std::nullopt}});
}

TEST(CodecUserTypes, BitwiseTypesAreTheirBytes) {
  const point3 p{1.5F, -2.0F, 3.25F};
  EXPECT_EQ(codec::encode(p), bytes_of(p));
  const std::vector<point3> points{p, {0, 0, 0}, {7, 8, 9}};
  EXPECT_EQ(codec::encoded_size(points), 8U + 3 * sizeof(point3));
  expect_round_trip(points);
  expect_round_trip(std::array<point3, 2>{p, p});
}

TEST(CodecUserTypes, RecursiveTypes) {
  tree t{1, {{2, {}}, {3, {{4, {}}, {5, {}}}}}};
  expect_round_trip(t);
}

tree chain(std::size_t depth) {
  tree root;
  tree* node = &root;
  for (std::size_t i = 1; i < depth; ++i) {
    node->children.emplace_back();
    node = &node->children.back();
    node->value = static_cast<int>(i);
  }
  return root;
}

TEST(CodecUserTypes, NestingUpToMaxDepthWorksAndDeeperIsRefused) {
  const tree ok = chain(codec::max_depth);
  expect_round_trip(ok);
  const tree too_deep = chain(codec::max_depth + 1);
  EXPECT_THROW((void)codec::encoded_size(too_deep), crew::serialization_error);
  std::vector<std::byte> buffer(codec::encoded_size(ok) + 64);
  EXPECT_THROW(codec::encode_into(buffer, too_deep), crew::serialization_error);
}

struct empty_type {
  template <class Archive>
  void serialize(Archive&) {}
  bool operator==(const empty_type&) const = default;
};

TEST(CodecUserTypes, EmptyUserTypeIsFineAloneButNotAsAContainerElement) {
  expect_round_trip(empty_type{});
  expect_round_trip(std::vector<empty_type>{});
  EXPECT_THROW((void)codec::encoded_size(std::vector<empty_type>(3)), crew::serialization_error);
}

struct load_aware {
  int value = 0;
  int loads = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value);
    if constexpr (Archive::is_loading) ++loads;
  }
};

TEST(CodecUserTypes, ArchivesSayWhichWayTheyGo) {
  const auto decoded = codec::decode<load_aware>(codec::encode(load_aware{5, 0}));
  EXPECT_EQ(decoded.value, 5);
  EXPECT_EQ(decoded.loads, 1);
}

// --- the caller-facing API ----------------------------------------------------------------------

TEST(CodecApi, EncodeIntoATooSmallSpanThrowsWithoutWritingPastIt) {
  const std::vector<std::string> value{"abcdef", "ghijkl"};
  const std::size_t size = codec::encoded_size(value);
  std::vector<std::byte> buffer(size + 8, std::byte{0x5A});
  const std::span<std::byte> short_span(buffer.data(), size - 1);
  EXPECT_THROW(codec::encode_into(short_span, value), crew::serialization_error);
  for (std::size_t i = size - 1; i < buffer.size(); ++i) EXPECT_EQ(buffer[i], std::byte{0x5A});
}

TEST(CodecApi, ArgumentsEncodeFromReferencesAndDecodeToValues) {
  const std::string text = "arg";
  const std::vector<double> numbers{1, 2, 3};
  const int n = 7;
  const auto view = codec::args_view(n, text, numbers);
  static_assert(
      std::is_same_v<decltype(view),
                     const std::tuple<const int&, const std::string&, const std::vector<double>&>>);
  using decoded_t = codec::decoded_args_t<int, const std::string&, std::vector<double>&&>;
  static_assert(std::is_same_v<decoded_t, std::tuple<int, std::string, std::vector<double>>>);

  const decoded_t copy{n, text, numbers};
  EXPECT_EQ(codec::encoded_size(view), codec::encoded_size(copy));
  const auto bytes = codec::encode(view);
  EXPECT_EQ(bytes, codec::encode(copy));
  EXPECT_EQ(codec::decode<decoded_t>(bytes), copy);
}

TEST(CodecApi, ArchivesComposeIntoAFrame) {
  // How an executor frames (task id, arguments) without an intermediate buffer.
  const std::uint32_t task_id = 17;
  const std::string text = "x";
  const double number = 2.5;
  const auto args = codec::args_view(text, number);  // refers to text and number
  codec::size_archive sizer;
  sizer(task_id, args);
  std::vector<std::byte> frame(sizer.size());
  codec::output_archive writer(frame);
  writer(task_id, args);
  EXPECT_EQ(writer.offset(), frame.size());

  codec::input_archive reader(frame);
  std::uint32_t id = 0;
  codec::decoded_args_t<std::string, double> decoded;
  reader(id, decoded);
  reader.expect_end();
  EXPECT_EQ(id, task_id);
  EXPECT_EQ(decoded, std::make_tuple(std::string("x"), 2.5));
}

TEST(CodecApi, DeepNestingOfStandardTypes) {
  using deep =
      std::map<std::string, std::vector<std::variant<std::monostate, std::tuple<int, std::set<int>>,
                                                     std::optional<std::array<std::string, 2>>>>>;
  deep value;
  value["a"].emplace_back(std::monostate{});
  value["a"].emplace_back(std::tuple<int, std::set<int>>{1, {2, 3}});
  value["b"].emplace_back(std::optional<std::array<std::string, 2>>{{"p", "q"}});
  value["b"].emplace_back(std::optional<std::array<std::string, 2>>{});
  value["c"];
  expect_round_trip(value);
}

}  // namespace
