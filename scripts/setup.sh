#!/usr/bin/env bash
# Installs everything crew needs to build, test and benchmark, from Debian's packages.
# Idempotent: when every package is present it runs no apt command at all.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache git pkg-config   # toolchain
  clang clang-format clang-tidy libclang-rt-14-dev           # sanitizers, libFuzzer, formatting
  libgtest-dev libgmock-dev                                  # tests
  libbenchmark-dev                                           # micro benchmarks
  libcli11-dev                                               # the crew command line
  nlohmann-json3-dev                                         # crew bench --json / advise input
  libtbb-dev libboost-dev libomp-dev                         # peers in the benchmarks
  libconcurrentqueue-dev                                     # moodycamel's queue, a peer in bench_queue
  libopenmpi-dev openmpi-bin python3-mpi4py                  # mpi_pool and its peer
  python3                                                    # CPython peers in crew bench
  chromium                                                   # headless check of the HTML report
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
