#!/usr/bin/env bash
# crew::mpi_pool against raw MPI ping-pong and mpi4py.futures.MPIPoolExecutor, on the same no-op
# task, in one run; prints one table with the ratios (docs/mpi.md).
#
#   bench/mpi/run.sh [build-dir] [ranks]     (default: build-bench, 2 ranks: rank 0 + one worker)
#
# Needs a build with crew::mpi (the mpi_pool_bench target) and Debian's python3-mpi4py.
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

crew_out="$(mpirun "${mpirun_flags[@]}" "$bench" --roundtrips 20000 --tasks 200000 --repeats 7)"
py_out="$(mpirun "${mpirun_flags[@]}" "$python" -m mpi4py.futures "$here/mpi4py_peer.py" \
  --roundtrips 2000 --tasks 20000 --repeats 3)"

value() { printf '%s\n%s\n' "$crew_out" "$py_out" | awk -v k="$1" '$1 == k { print $2 }'; }
raw_rt=$(value raw_roundtrip_us)
crew_rt=$(value crew_roundtrip_us)
crew_tp=$(value crew_throughput_per_s)
py_rt=$(value mpi4py_roundtrip_us)
py_tp=$(value mpi4py_throughput_per_s)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(mpirun --version | head -1), $ranks ranks"
awk -v raw="$raw_rt" -v crt="$crew_rt" -v ctp="$crew_tp" -v prt="$py_rt" -v ptp="$py_tp" 'BEGIN {
  printf "%-34s %14s %14s\n", "no-op task", "round trip", "throughput"
  printf "%-34s %11.2f us %14s\n", "raw MPI ping-pong (8 bytes)", raw, "-"
  printf "%-34s %11.2f us %12.0f/s\n", "crew::mpi_pool", crt, ctp
  printf "%-34s %11.2f us %12.0f/s\n", "mpi4py.futures.MPIPoolExecutor", prt, ptp
  printf "\n"
  printf "crew round trip / raw MPI:            %6.1fx   (target <= 8x)\n", crt / raw
  printf "crew throughput / mpi4py.futures:     %6.0fx   (target >= 50x)\n", ctp / ptp
  printf "mpi4py round trip / crew round trip:  %6.0fx\n", prt / crt
}'
