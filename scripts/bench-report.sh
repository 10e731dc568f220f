#!/usr/bin/env bash
# Regenerates one of the measured tables in docs/benchmarks/ from one run of the program that
# makes it, its standard output kept verbatim under a header naming the command and the machine.
# Needs a build with benchmarks in build/ (or --build DIR); `mpi` needs -DCREW_WITH_MPI=ON.
#   bash scripts/bench-report.sh [--build DIR] NAME [program options...]
# NAME            program                                   writes
#   codec         bench/codec/codec_bench                   docs/benchmarks/codec.md
#   ipc           bench/ipc/bench_ipc                       docs/benchmarks/ipc.md
#   mpi           bench/mpi/run.sh (mpi_pool_bench, mpi4py) docs/benchmarks/mpi_pool.md
#   start-methods bench/process_pool/bench_start_methods    docs/benchmarks/start_methods.md
#   exceptions    bench/process_pool/bench_exceptions       docs/benchmarks/exceptions.md
#   thread-pool   bench/thread_pool/bench_thread_pool       docs/benchmarks/thread_pool.md
#   queue         bench/queue/bench_queue                   docs/benchmarks/queue.md
#   sync          bench/sync/bench_sync                     docs/benchmarks/sync.md
#   roles         bench/roles/bench_roles                   docs/benchmarks/roles.md
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = "--build" ]; then build="$2"; shift 2; fi
name="${1:-}"
[ -n "$name" ] || { sed -n '2,16p' "$0" >&2; exit 2; }
shift
case "$name" in
  codec) program=("$build/bench/codec/codec_bench"); out=codec ;;
  ipc) program=("$build/bench/ipc/bench_ipc"); out=ipc ;;
  mpi) program=(bash bench/mpi/run.sh "$build"); out=mpi_pool ;;
  start-methods) program=("$build/bench/process_pool/bench_start_methods"); out=start_methods ;;
  exceptions) program=("$build/bench/process_pool/bench_exceptions"); out=exceptions ;;
  thread-pool) program=("$build/bench/thread_pool/bench_thread_pool"); out=thread_pool ;;
  queue) program=("$build/bench/queue/bench_queue"); out=queue ;;
  sync) program=("$build/bench/sync/bench_sync"); out=sync ;;
  roles) program=("$build/bench/roles/bench_roles"); out=roles ;;
  *) echo "bench-report.sh: unknown report '$name' (see the list at the top of $0)" >&2; exit 2 ;;
esac
binary="${program[0]}"
[ "$binary" = bash ] && binary="$build/bench/mpi/mpi_pool_bench"
[ -x "$binary" ] || { echo "bench-report.sh: $binary is not built" >&2; exit 2; }
out="docs/benchmarks/$out.md"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "Made by \`bash scripts/bench-report.sh $name${*:+ $*}\` on $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Everything below is the program's standard output, unedited."
  echo
  "${program[@]}" "$@"
} > "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
