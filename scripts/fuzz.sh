#!/usr/bin/env bash
# Builds crew's libFuzzer targets (fuzz/*_fuzz.cpp) with clang in build-fuzz/ and runs each for
# the given number of seconds (default 60). Exits non-zero if any fuzzer finds a crash, a
# sanitizer report, a hang or an oversized allocation; its reproducer is left in
# build-fuzz/fuzz-artifacts/<fuzzer>/.
#   scripts/fuzz.sh [seconds]
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build-fuzz"

launcher=()
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

cmake -S "${root}" -B "${build}" -G Ninja "${launcher[@]}" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCREW_BUILD_FUZZERS=ON -DCREW_BUILD_TESTS=OFF -DCREW_BUILD_BENCHMARKS=OFF \
  -DCREW_BUILD_TOOLS=OFF -DCREW_BUILD_EXAMPLES=OFF >/dev/null
ninja -C "${build}" -j2 crew_fuzzers

status=0
for fuzzer in "${build}"/fuzz/*_fuzz; do
  [ -x "${fuzzer}" ] || continue
  name="$(basename "${fuzzer}")"
  corpus="${build}/fuzz-corpus/${name}"
  artifacts="${build}/fuzz-artifacts/${name}"
  mkdir -p "${corpus}" "${artifacts}"
  if [ -x "${fuzzer}_seeds" ]; then "${fuzzer}_seeds" "${corpus}"; fi

  echo "fuzz: ${name} for ${seconds} s"
  # -malloc_limit_mb turns any single allocation far beyond the input's size into a finding;
  # -timeout does the same for an input that takes too long (a loop without bound).
  if "${fuzzer}" "${corpus}" -max_total_time="${seconds}" -timeout=10 -malloc_limit_mb=128 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="${artifacts}/" \
      >"${build}/fuzz-${name}.log" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "${build}/fuzz-${name}.log" || true
    echo "fuzz: ${name}: no finding ($(ls "${corpus}" | wc -l) inputs in corpus)"
  else
    status=1
    tail -n 40 "${build}/fuzz-${name}.log"
    echo "fuzz: ${name}: FINDING, reproducer in ${artifacts}/" >&2
  fi
done
exit "${status}"
