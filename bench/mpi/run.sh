#!/usr/bin/env bash
# crew::mpi_pool against raw MPI ping-pong and mpi4py.futures.MPIPoolExecutor, on the same no-op
# task, in one run; prints a markdown report: the machine, the load average at the start and at
# the end, the commands, one table of medians and ranges, and the ratios of the medians.
# scripts/bench-report.sh mpi keeps one run in docs/benchmarks/mpi_pool.md (docs/mpi.md cites it).
#
#   bench/mpi/run.sh [build-dir] [ranks]     (default: build-bench, 2 ranks: rank 0 + one worker)
#
# Needs a build with crew::mpi (the mpi_pool_bench target). The mpi4py row needs Debian's
# python3-mpi4py; without it the report says so and has no mpi4py figures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build-bench}"
ranks="${2:-2}"
bench="$build/bench/mpi/mpi_pool_bench"
if [ ! -x "$bench" ]; then
  echo "no $bench: build the mpi_pool_bench target first (cmake -DCREW_WITH_MPI=ON)" >&2
  exit 1
fi
python=/usr/bin/python3  # Debian's interpreter, where python3-mpi4py lives
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpirun_flags=(-n "$ranks" --oversubscribe --mca btl self,vader)
crew_args=(--roundtrips "${CREW_MPI_ROUNDTRIPS:-20000}" --tasks "${CREW_MPI_TASKS:-200000}" --repeats 7)
py_args=(--roundtrips 2000 --tasks 20000 --repeats 5)

echo "# crew::mpi_pool against raw MPI and mpi4py.futures"
echo
echo "- command: \`bench/mpi/run.sh $build $ranks\`, which runs"
echo "  \`mpirun ${mpirun_flags[*]} $(basename "$bench") ${crew_args[*]}\` and"
echo "  \`mpirun ${mpirun_flags[*]} python3 -m mpi4py.futures mpi4py_peer.py ${py_args[*]}\`"
echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(mpirun --version | head -1), $ranks ranks (rank 0 + $((ranks - 1)) serving)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- round trip: \`submit<&noop>(i).get()\` in a loop (crew: a pool of one serving rank, one"
echo "  thread); throughput: all tasks submitted at once, then collected. Each figure: median"
echo "  (min–max) over the repeats after a warm-up."
echo

crew_out="$(mpirun "${mpirun_flags[@]}" "$bench" "${crew_args[@]}")"
py_out=""
py_note=""
if "$python" -c 'import mpi4py' 2>/dev/null; then
  py_out="$(mpirun "${mpirun_flags[@]}" "$python" -m mpi4py.futures "$here/mpi4py_peer.py" \
    "${py_args[@]}")"
else
  py_note="mpi4py is not installed for $python (Debian: python3-mpi4py): no mpi4py figures."
fi

# field NAME INDEX: 2 = median, 3 = min, 4 = max; empty when the figure is missing.
field() { printf '%s\n%s\n' "$crew_out" "$py_out" | awk -v k="$1" -v i="$2" '$1 == k { print $i }'; }
row() {  # label, name, unit
  local m lo hi
  m=$(field "$2" 2); lo=$(field "$2" 3); hi=$(field "$2" 4)
  if [ -z "$m" ]; then echo "| $1 | not measured | |"; return; fi
  echo "| $1 | $m $3 | $lo – $hi $3 |"
}
echo "| no-op task | median | range (min–max) |"
echo "|---|---|---|"
row "raw MPI ping-pong (8 bytes), round trip" raw_roundtrip_us µs
row "crew::mpi_pool, round trip" crew_roundtrip_us µs
row "mpi4py.futures.MPIPoolExecutor, round trip" mpi4py_roundtrip_us µs
row "crew::mpi_pool, throughput" crew_throughput_per_s tasks/s
row "mpi4py.futures.MPIPoolExecutor, throughput" mpi4py_throughput_per_s tasks/s
echo
[ -n "$py_note" ] && { echo "$py_note"; echo; }

ratio() {  # label, numerator, denominator, target
  local a b
  a=$(field "$2" 2); b=$(field "$3" 2)
  if [ -z "$a" ] || [ -z "$b" ]; then echo "| $1 | not measured | $4 |"; return; fi
  awk -v a="$a" -v b="$b" -v l="$1" -v t="$4" 'BEGIN { printf "| %s | %.1f× | %s |\n", l, a / b, t }'
}
echo "| ratio of the medians | value | target |"
echo "|---|---|---|"
ratio "crew round trip / raw MPI round trip" crew_roundtrip_us raw_roundtrip_us "≤ 8×"
ratio "crew throughput / mpi4py.futures throughput" crew_throughput_per_s mpi4py_throughput_per_s "≥ 50×"
ratio "mpi4py round trip / crew round trip" mpi4py_roundtrip_us crew_roundtrip_us ""
echo
echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
