// Codec throughput on a 64 MiB std::vector<double>, against memcpy of the same bytes.
//
// Reference cases: BM_memcpy (one memcpy between two buffers that are already faulted in) for the
// non-allocating calls, BM_allocate_and_memcpy (a fresh std::vector filled by one memcpy) for the
// allocating ones. The codec's contiguous path is one memcpy plus an 8-byte length, so encode_into
// and decode_into should match BM_memcpy, and encode/decode should match BM_allocate_and_memcpy.
//
// Prints a markdown report (bench/common/markdown_report.hpp): medians, ranges and each case's
// ratio to its reference, measured in the same run. scripts/bench-report.sh codec keeps one run
// in docs/benchmarks/codec.md, which docs/codec.md cites.
//   codec_bench [--benchmark_repetitions=N] [--benchmark_min_time=S]
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstring>
#include <numeric>
#include <span>
#include <vector>

#include "../common/markdown_report.hpp"
#include "crew/codec.hpp"

namespace {

constexpr std::size_t payload_bytes = std::size_t{64} << 20;
constexpr std::size_t count = payload_bytes / sizeof(double);

const std::vector<double>& source() {
  static const std::vector<double> values = [] {
    std::vector<double> v(count);
    std::iota(v.begin(), v.end(), 0.5);
    return v;
  }();
  return values;
}

void set_throughput(benchmark::State& state, std::size_t bytes_per_iteration) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes_per_iteration));
}

void BM_memcpy(benchmark::State& state) {
  const auto& src = source();
  std::vector<double> dst(count);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), payload_bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, payload_bytes);
}
BENCHMARK(BM_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_encode_into(benchmark::State& state) {
  const auto& src = source();
  std::vector<std::byte> buffer(crew::codec::encoded_size(src));
  for (auto _ : state) {
    benchmark::DoNotOptimize(crew::codec::encode_into(buffer, src));
    benchmark::ClobberMemory();
  }
  set_throughput(state, payload_bytes);
}
BENCHMARK(BM_encode_into)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_decode_into(benchmark::State& state) {
  const auto buffer = crew::codec::encode(source());
  std::vector<double> out(count);
  for (auto _ : state) {
    crew::codec::decode_into(buffer, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, payload_bytes);
}
BENCHMARK(BM_decode_into)->Unit(benchmark::kMillisecond)->UseRealTime();

// What the process pool does with a result: size, encode into a reserved slot, decode from it.
void BM_round_trip_into(benchmark::State& state) {
  const auto& src = source();
  std::vector<std::byte> slot(crew::codec::encoded_size(src));
  std::vector<double> out(count);
  for (auto _ : state) {
    const std::size_t n = crew::codec::encoded_size(src);
    crew::codec::encode_into(std::span(slot.data(), n), src);
    crew::codec::decode_into(std::span<const std::byte>(slot.data(), n), out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, 2 * payload_bytes);
}
BENCHMARK(BM_round_trip_into)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_two_memcpy(benchmark::State& state) {
  const auto& src = source();
  std::vector<double> slot(count);
  std::vector<double> out(count);
  for (auto _ : state) {
    std::memcpy(slot.data(), src.data(), payload_bytes);
    std::memcpy(out.data(), slot.data(), payload_bytes);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, 2 * payload_bytes);
}
BENCHMARK(BM_two_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_allocate_and_memcpy(benchmark::State& state) {
  const auto& src = source();
  for (auto _ : state) {
    std::vector<double> out(count);
    std::memcpy(out.data(), src.data(), payload_bytes);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, payload_bytes);
}
BENCHMARK(BM_allocate_and_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_encode(benchmark::State& state) {
  const auto& src = source();
  for (auto _ : state) {
    auto bytes = crew::codec::encode(src);
    benchmark::DoNotOptimize(bytes.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, payload_bytes);
}
BENCHMARK(BM_encode)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_decode(benchmark::State& state) {
  const auto buffer = crew::codec::encode(source());
  for (auto _ : state) {
    auto out = crew::codec::decode<std::vector<double>>(buffer);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_throughput(state, payload_bytes);
}
BENCHMARK(BM_decode)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  constexpr double mib64 = static_cast<double>(payload_bytes);
  return crew_bench::markdown_main(
      argc, argv, "codec_bench: the codec against memcpy on a 64 MiB std::vector<double>",
      "Each case copies the same 64 MiB of doubles. The non-allocating calls are compared with "
      "memcpy between buffers already faulted in; the allocating ones with a fresh std::vector "
      "filled by one memcpy.",
      {
          {"BM_memcpy", "`memcpy` 64 MiB", "", mib64},
          {"BM_encode_into", "`encode_into` a reserved buffer", "BM_memcpy", mib64},
          {"BM_decode_into", "`decode_into` an existing vector", "BM_memcpy", mib64},
          {"BM_two_memcpy", "two `memcpy`s (64 MiB each)", "", 2 * mib64},
          {"BM_round_trip_into", "`encoded_size` + `encode_into` + `decode_into`", "BM_two_memcpy",
           2 * mib64},
          {"BM_allocate_and_memcpy", "new vector + `memcpy`", "", mib64},
          {"BM_encode", "`encode` (new buffer)", "BM_allocate_and_memcpy", mib64},
          {"BM_decode", "`decode` (new vector)", "BM_allocate_and_memcpy", mib64},
      });
}
