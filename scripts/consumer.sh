#!/usr/bin/env bash
# Installs crew into a temporary prefix and builds test_package/ against it with find_package,
# then runs the result: proof that the exported CMake package works for users.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d)
trap 'rm -rf "$prefix" build-install build-consumer' EXIT
cmake -S . -B build-install -G Ninja -DCMAKE_BUILD_TYPE=Release -DCREW_BUILD_TESTS=OFF \
  -DCREW_BUILD_BENCHMARKS=OFF -DCREW_BUILD_EXAMPLES=OFF -DCREW_BUILD_TOOLS=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build build-install -j "$(nproc)"
cmake --install build-install >/dev/null
cmake -S test_package -B build-consumer -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build-consumer
./build-consumer/crew_consumer
