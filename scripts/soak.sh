#!/usr/bin/env bash
# Builds crew-soak and runs it: a seeded random mix of faults and payloads on every executor,
# every outcome checked, leaks looked for after every pool (docs/soak.md).
#   scripts/soak.sh                              # 60 s per executor, a fresh seed
#   scripts/soak.sh --seconds 600                # 10 minutes per executor
#   scripts/soak.sh --seed 42 --executors fork,hybrid --keep-going
#   scripts/soak.sh --sanitize address,undefined --seconds 12
#   scripts/soak.sh --mpi --seconds 60           # mpi_pool, under mpirun with 3 ranks
# Every other option goes to crew-soak as is (crew-soak --help lists them). Exits with
# crew-soak's status: 0 when every task matched and nothing leaked.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
mpi=0
seconds=60
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize="$2"; shift 2 ;;
    --mpi) mpi=1; shift ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

build=build
[ -n "$sanitize" ] && build="build-${sanitize//,/-}"
launcher=()
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCREW_WERROR=ON \
    -DCREW_SANITIZE="$sanitize" -DCREW_BUILD_BENCHMARKS=OFF -DCREW_BUILD_TOOLS=OFF \
    -DCREW_BUILD_EXAMPLES=OFF -DCREW_WITH_MPI=$([ -z "$sanitize" ] && echo ON || echo OFF) \
    "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j "$(nproc)" -t crew-soak

case "$sanitize" in
  # The soak crashes workers on purpose and checks the signal they died of.
  *address*) export ASAN_OPTIONS="detect_leaks=1:handle_segv=0:handle_abort=0:handle_sigbus=0" ;;
  *thread*) export TSAN_OPTIONS="halt_on_error=1:die_after_fork=0:handle_segv=0:handle_abort=0:suppressions=$PWD/tests/sanitizers/tsan.supp" ;;
esac
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

soak="$build/tests/soak/crew-soak"
if [ "$mpi" = 1 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  exec mpirun -n 3 --oversubscribe --mca btl self,vader "$soak" --executors mpi \
    --seconds "$seconds" "${args[@]}"
fi
exec "$soak" --seconds "$seconds" "${args[@]}"
