#!/usr/bin/env bash
# Builds build/fuzz/da3_fuzz_load, the libFuzzer harness of the GGUF loader (tests/cpp/fuzz_load.cpp),
# outside CI. Needs clang with libFuzzer (Debian: apt-get install clang). ggml and the loader are
# compiled by clang with AddressSanitizer and coverage; our SIMD kernel files use GCC's
# __builtin_shuffle, which clang lacks, so they are compiled by g++ (no sanitizer, no coverage).
# usage: bash tests/cpp/build_fuzz.sh   (from the repository root; then see fuzz_load.cpp)
set -euo pipefail
root=$(pwd)
out=$root/build/fuzz
CC=clang CXX=clang++ cmake -S . -B "$out" -G Ninja -DDA3CPP_VARIANTS=avx512 -DDA3CPP_SANITIZE=address \
    -DDA3CPP_COPY_TO_SOURCE=OFF -DPython_EXECUTABLE="$(command -v python3)" > "$out.cmake.log"
cmake --build "$out" --target ggml_cpu_avx512
ggml=$out/ggml/cpu_avx512/install
ISA="-msse4.2 -mavx -mf16c -mfma -mavx2 -mbmi2 -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw -mavx512vnni"
ver=$(sed -n 's/.*DA3_GGML_VERSION=\\"\([0-9.]*\)\\".*/\1/p' "$out/build.ninja" | head -1)
DEF="-DDA3_GGML_VERSION=\"$ver\" -DDA3_VARIANT_NAME=\"cpu_avx512\""
INC="-I$root/cpp/include -I$root/cpp/src -isystem $ggml/include"
mkdir -p "$out/objs"
for src in "$root"/cpp/src/*/*.cpp; do
    f=$(basename "$src" .cpp)
    if grep -q "cpu_simd.h\|__builtin_shuffle" "$src"; then
        g++ -O3 -DNDEBUG -std=c++17 -g1 $ISA $DEF $INC -c "$src" -o "$out/objs/$f.o"
    else
        clang++ -O2 -DNDEBUG -std=c++17 -g1 -fno-omit-frame-pointer -fsanitize=address,fuzzer-no-link $ISA $DEF $INC \
            -c "$src" -o "$out/objs/$f.o"
    fi
done
clang++ -O2 -g1 -fsanitize=address,fuzzer $ISA $DEF $INC "$root/tests/cpp/fuzz_load.cpp" "$out"/objs/*.o \
    "$ggml/lib/libggml.a" "$ggml/lib/libggml-cpu.a" "$ggml/lib/libggml-base.a" -lpthread -lgomp -o "$out/da3_fuzz_load"
echo "built $out/da3_fuzz_load"
