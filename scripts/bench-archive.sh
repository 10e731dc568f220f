#!/usr/bin/env bash
# Regenerates the archived `crew bench` run that README.md quotes: builds crew (Release, as
# scripts/bench.sh does), runs `crew bench --quick`, keeps its JSON, HTML and tables in
# docs/benchmarks/crew-bench.{json,html,txt}, runs one `crew advise` (crew-advise.{json,txt}:
# the calibration's duration and costs), and writes docs/benchmarks/crew-bench.md and the
# README's summary table from the JSON (scripts/bench_summary.py). Run it on a quiet machine.
#   scripts/bench-archive.sh            # about a minute after the build
#   scripts/bench-archive.sh --no-build # use the crew binary as it is: $CREW_BIN, default
#                                       # build-release/bin/crew
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != --no-build ]]; then
  bash scripts/setup.sh
  launcher=()
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCREW_BUILD_TESTS=OFF \
    -DCREW_BUILD_BENCHMARKS=OFF -DCREW_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
  cmake --build build-release --target crew_tool -j "$(nproc)"
fi

out=docs/benchmarks
"${CREW_BIN:-./build-release/bin/crew}" bench --quick --json "$out/crew-bench.json" --html "$out/crew-bench.html" \
  > "$out/crew-bench.txt"
# One crew advise run, for the calibration's duration and costs the docs refer to.
"${CREW_BIN:-./build-release/bin/crew}" advise --runs 3 --json "$out/crew-advise.json" -- sleep 0.1 \
  > "$out/crew-advise.txt"
python3 scripts/bench_summary.py "$out/crew-bench.json" "$out/crew-bench.md" README.md
echo "archived: $out/crew-bench.{json,html,txt,md}, $out/crew-advise.{json,txt}; README.md's summary table rewritten"
