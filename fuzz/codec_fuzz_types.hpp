// Types that the codec fuzzer decodes, and sample values of them for the seed corpus.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "crew/codec.hpp"

namespace crew_fuzz {

enum class shade : std::uint8_t { light, dark };

struct pod {
  std::int32_t a;
  float b;
  bool operator==(const pod&) const = default;
};

}  // namespace crew_fuzz

template <>
inline constexpr bool crew::codec::is_bitwise<crew_fuzz::pod> = true;

namespace crew_fuzz {

struct record {
  std::int32_t id = 0;
  std::string name;
  std::vector<std::optional<double>> values;
  std::variant<std::monostate, std::int64_t, std::string, std::vector<bool>> extra;
  std::array<std::uint16_t, 3> small{};
  bool flags[2] = {false, false};
  std::chrono::milliseconds elapsed{0};
  shade tone = shade::light;
  std::vector<pod> pods;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, name, values, extra, small, flags, elapsed, tone, pods);
  }
};

struct tree {
  std::int32_t value = 0;
  std::vector<tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
  bool operator==(const tree&) const = default;
};

// Decoding must be canonical for these: whatever decodes re-encodes to the same bytes.
using rich =
    std::tuple<std::vector<std::string>, std::map<int, std::vector<double>>,
               std::variant<std::monostate, int, std::string, record>, std::optional<record>,
               std::tuple<std::uint8_t, std::set<std::string>, std::pair<char, bool>>,
               std::vector<record>, std::tuple<>>;

// Hash containers list elements in an order of their own: checked by value, not by bytes.
using hashed =
    std::tuple<std::unordered_map<std::string, std::vector<int>>, std::unordered_set<std::int64_t>>;

// The first input byte chooses the type; the rest is its encoding.
enum class target : std::uint8_t { rich = 0, hashed = 1, tree = 2 };
inline constexpr std::uint8_t target_count = 3;

inline record sample_record(int seed) {
  record r;
  r.id = seed;
  r.name = "record-" + std::to_string(seed);
  r.values = {1.5 * seed, std::nullopt, -0.25};
  if (seed % 3 == 0) r.extra = std::int64_t{seed} << 40;
  if (seed % 3 == 1) r.extra = std::string("extra");
  if (seed % 3 == 2)
    r.extra = std::vector<bool>{true, false, true, true, false, true, true, true, true};
  r.small = {1, 2, static_cast<std::uint16_t>(seed)};
  r.flags[1] = true;
  r.elapsed = std::chrono::milliseconds(seed * 1000);
  r.tone = seed % 2 == 0 ? shade::light : shade::dark;
  r.pods = {{seed, 0.5F}, {-seed, 2.0F}};
  return r;
}

inline rich sample_rich(int seed) {
  rich value;
  std::get<0>(value) = {"alpha", "", std::string(static_cast<std::size_t>(seed), 'z')};
  std::get<1>(value) = {{-1, {}}, {seed, {1.0, 2.0, 3.0}}};
  std::get<2>(value) = sample_record(seed);
  if (seed % 2 == 0) std::get<3>(value) = sample_record(seed + 1);
  std::get<4>(value) = {static_cast<std::uint8_t>(seed), {"a", "b"}, {'c', true}};
  std::get<5>(value) = {sample_record(seed + 2), sample_record(seed + 3)};
  return value;
}

inline hashed sample_hashed(int seed) {
  return hashed{{{"k" + std::to_string(seed), {1, 2}}, {"other", {}}}, {seed, -7, 1LL << 50}};
}

inline tree sample_tree(int depth) {
  tree t{depth, {}};
  for (int i = 0; i < depth; ++i) t.children.push_back(sample_tree(depth - 1 - i));
  return t;
}

}  // namespace crew_fuzz
