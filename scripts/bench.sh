#!/usr/bin/env bash
# Builds crew (Release) and runs its main job: `crew bench`, which measures the threads-vs-
# processes trade-offs on this machine and writes a report.
#   scripts/bench.sh                 # crew bench --quick (about a minute)
#   scripts/bench.sh --full          # every experiment at full size (a few minutes)
#   scripts/bench.sh -- ARGS...      # pass ARGS to crew bench as they are
# Installs the Debian packages it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

args=(--quick)
case "${1:-}" in
  --full) args=(); shift ;;
  --) shift; args=("$@") ;;
esac

bash scripts/setup.sh
launcher=()
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCREW_BUILD_TESTS=OFF \
  -DCREW_BUILD_BENCHMARKS=OFF -DCREW_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
cmake --build build-release --target crew_tool -j "$(nproc)"

mkdir -p out
./build-release/bin/crew bench "${args[@]}" --json out/crew-bench.json --html out/crew-bench.html
echo
echo "report: out/crew-bench.html (open it in a browser), raw samples: out/crew-bench.json"
