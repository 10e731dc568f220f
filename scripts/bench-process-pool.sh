#!/usr/bin/env bash
# Regenerates docs/benchmarks/process_pool-run.md: one run of bench_process_pool, its output kept
# verbatim, with the command and the machine it ran on. Needs a build with benchmarks (the
# README's test command makes one in build/).
#   bash scripts/bench-process-pool.sh [--build DIR] [bench_process_pool options...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = "--build" ]; then build="$2"; shift 2; fi
program="$build/bench/process_pool/bench_process_pool"
[ -x "$program" ] || { echo "bench-process-pool.sh: $program is not built (run scripts/test.sh first)" >&2; exit 2; }
out=docs/benchmarks/process_pool-run.md
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# bench_process_pool: one run"
  echo
  echo "Made by \`bash scripts/bench-process-pool.sh $*\` on $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Everything below is the program's standard output, unedited."
  echo
  "$program" "$@"
} > "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
