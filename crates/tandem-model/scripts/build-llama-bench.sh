#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` from the SAME llama.cpp sources that `llama-cpp-sys-2`
# vendors, so `cargo bench -p tandem-model --bench embedded` can report ratios against it.
#
# The crate on crates.io ships llama.cpp without its tools' sources, so the llama-bench tool
# sources (tools/llama-bench/*) are taken from the `llama-cpp-python` sdist on PyPI, which
# vendors a full llama.cpp tree; everything else (ggml, llama) comes from llama-cpp-sys-2.
# Output: /tmp/llama-bench-build/bin/llama-bench (the bench looks there, or set LLAMA_BENCH).
# Needs: cmake, g++, python3 with pip. Takes ~5-8 minutes on 2 cores.
set -euo pipefail

OUT=${OUT:-/tmp/llama-bench-build}
SYS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-*/llama.cpp | sort -V | tail -1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 -m pip download --no-deps --no-binary :all: --disable-pip-version-check -q \
    -d "$WORK" "llama-cpp-python==0.3.36"
tar xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
PY_LLAMA=$(ls -d "$WORK"/llama_cpp_python-*/vendor/llama.cpp)

SRC="$WORK/src"
cp -r "$SYS" "$SRC"
mkdir -p "$SRC/tools/llama-bench"
cp -r "$PY_LLAMA/tools/llama-bench/." "$SRC/tools/llama-bench/"
echo 'add_subdirectory(llama-bench)' > "$SRC/tools/CMakeLists.txt"

# GGML_NATIVE=ON: the same CPU features as the Rust build with -C target-cpu=native.
cmake -S "$SRC" -B "$OUT" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DBUILD_SHARED_LIBS=OFF
cmake --build "$OUT" -j"$(nproc)" --target llama-bench
echo "built $OUT/bin/llama-bench"
