#!/usr/bin/env bash
# Builds crew and runs its whole test suite.
#   scripts/test.sh                       # RelWithDebInfo build in build/
#   scripts/test.sh --sanitize address,undefined [--label L] [--repeat N]
#   scripts/test.sh --sanitize thread --label thread_pool
#   scripts/test.sh --tests-only ...      # skip the crew tool and the examples (and their tests)
# Installs the Debian packages it needs first (scripts/setup.sh; quick when all are present).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
labels=()
exclude=""
repeat=1
build_type=RelWithDebInfo
extras=ON
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize="$2"; shift 2 ;;
    --label) labels+=("$2"); shift 2 ;;
    --exclude-label) exclude="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --debug) build_type=Debug; shift ;;
    --tests-only) extras=OFF; shift ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
# Open MPI is not built with the sanitizers: its own leaks and unsynchronised internals would
# drown crew's reports, so sanitizer builds leave crew::mpi out (the normal build tests it).

build=build
[ -n "$sanitize" ] && build="build-${sanitize//,/-}"
launcher=()
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
jobs=$(nproc)

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" -DCREW_WERROR=ON \
  -DCREW_SANITIZE="$sanitize" -DCREW_BUILD_BENCHMARKS=$([ -z "$sanitize" ] && echo ON || echo OFF) \
  -DCREW_BUILD_TOOLS=$extras -DCREW_BUILD_EXAMPLES=$extras \
  -DCREW_WITH_MPI=$([ -z "$sanitize" ] && echo ON || echo OFF) \
  "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$jobs"

ctest_args=(--test-dir "$build" --output-on-failure -j "$jobs" --timeout 300)
for l in "${labels[@]}"; do ctest_args+=(-L "$l"); done
[ -n "$exclude" ] && ctest_args+=(-LE "$exclude")
[ "$repeat" -gt 1 ] && ctest_args+=(--repeat "until-fail:$repeat")

case "$sanitize" in
  # Fault-injection tests crash workers on purpose and check the signal they died of: let
  # SIGSEGV and SIGABRT kill them as they would in a normal build.
  *address*) export ASAN_OPTIONS="detect_leaks=1:handle_segv=0:handle_abort=0:handle_sigbus=0:strict_string_checks=1" ;;
esac
case "$sanitize" in
  *thread*) export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:die_after_fork=0:handle_segv=0:handle_abort=0:suppressions=$PWD/tests/sanitizers/tsan.supp" ;;
esac
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

ctest "${ctest_args[@]}"
