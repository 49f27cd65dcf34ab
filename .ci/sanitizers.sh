#!/usr/bin/env bash
# Sanitizer check (issue #6), run by .ci/run after the main tests; runnable alone from the repo root.
#
# 1. builds one fixed CPU level, the release avx512 variant (_da3_cpu_avx512: Skylake-X + VNNI,
#    the level users of every AVX-512 host run), with AddressSanitizer + UndefinedBehaviorSanitizer
#    (ggml, the core, the module and the C/C++ tests: CMake options DA3CPP_SANITIZE,
#    DA3CPP_BUILD_TESTS; DA3CPP_SHARED_LIB for libdepth_anything and its dlopen test) in
#    build/asan with cmake + ninja (no pip install of the package). Not
#    -march=native: the code under test and its rounding must not depend on the host CI lands on
#    (issue #18). DA3CPP_SAN_LEVEL=avx2 selects the Haswell level instead (hosts without AVX-512);
# 2. runs the C/C++ tests (ctest) with LeakSanitizer on;
# 3. runs the model-file fuzz test and the parity tests of the small cases with Python on the
#    sanitized module (libasan preloaded, leak checks off for the interpreter).
# Any sanitizer report fails it: UBSan findings abort (-fno-sanitize-recover), ASan halts, and the
# report logs (build/asan/reports) must stay empty, subprocesses included.
#
# Env: PYTHON (python3), DA3CPP_SAN_BUILD (build/asan), DA3CPP_SAN_LEVEL (avx512 or avx2; default
# avx512), DA3CPP_SAN_PARITY (pytest -k expression of the parity cases), DA3CPP_SHARED (../shared),
# DA3CPP_GGML_SOURCE_DIR (offline ggml tree). The parity tolerances are the main run's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
B=$(realpath -m "${DA3CPP_SAN_BUILD:-build/asan}")
SHARED=${DA3CPP_SHARED:-$(cd .. && pwd)/shared}
LEVEL=${DA3CPP_SAN_LEVEL:-avx512}
case "$LEVEL" in avx512|avx2) ;; *) echo "DA3CPP_SAN_LEVEL must be avx512 or avx2, not '$LEVEL'"; exit 2;; esac
VARIANT=cpu_$LEVEL
if [ "$LEVEL" = avx512 ] && [ -r /proc/cpuinfo ] && ! grep -qw avx512_vnni /proc/cpuinfo; then
    echo "this CPU lacks AVX-512 VNNI (the avx512 level): run with DA3CPP_SAN_LEVEL=avx2"
    exit 2
fi
PARITY=${DA3CPP_SAN_PARITY:-"fixture_reference_reproduced or small_soh000-f32 or small_raypose-f32 or small_3v_poses-f32"}
t0=$SECONDS
say() { printf -- '--- sanitizers: %s (%ds)\n' "$*" "$((SECONDS - t0))"; }

# build tools: cmake >= 3.26, ninja and pybind11 (pip's isolated build of the package kept none)
if ! "$PY" - <<'EOF' 2>/dev/null
import re, shutil, subprocess, sys
import pybind11  # noqa: F401
out = subprocess.run(["cmake", "--version"], capture_output=True, text=True).stdout
v = tuple(int(x) for x in re.search(r"(\d+)\.(\d+)", out).groups())
sys.exit(0 if v >= (3, 26) and shutil.which("ninja") else 1)
EOF
then
    say "installing build tools (cmake, ninja, pybind11)"
    "$PY" -m pip install -q "cmake>=3.26" "ninja>=1.10" "pybind11>=2.12"
    hash -r
fi

say "configure $B (level $LEVEL)"
mkdir -p "$B"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDA3CPP_VARIANTS="$LEVEL" \
    -DDA3CPP_SANITIZE=address,undefined -DDA3CPP_BUILD_TESTS=ON -DDA3CPP_SHARED_LIB=ON -DDA3CPP_COPY_TO_SOURCE=OFF \
    -DDA3CPP_TEST_MODEL="$SHARED/fixtures/da3-small-anchor-layout/da3-small-rand-f16.gguf" \
    -DPython_EXECUTABLE="$(command -v "$PY")" >"$B/da3-configure.log" 2>&1 || { cat "$B/da3-configure.log"; exit 1; }
say "build"
cmake --build "$B" --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" >"$B/da3-build.log" 2>&1 \
    || { tail -n 80 "$B/da3-build.log"; exit 1; }

reports="$B/reports"
rm -rf "$reports"
mkdir -p "$reports"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
fail=0

say "C/C++ tests (ASan, UBSan, LeakSanitizer)"
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$reports/asan-ctest" \
    ctest --test-dir "$B" --output-on-failure || fail=1

# the package as a developer tree: our Python sources + the sanitized modules
pkg="$B/py/depth_anything_cpp"
rm -rf "$B/py"
mkdir -p "$pkg"
cp -r python/depth_anything_cpp/. "$pkg/"  # subpackages (cli, exports, server) and cpu_levels.json too
find "$pkg" -name '*.so' -delete          # a developer tree's own modules: only the sanitized ones below
find "$pkg" -name __pycache__ -prune -exec rm -rf {} +
cp "$B"/_da3_"$VARIANT"*.so "$B"/_cpuprobe*.so "$pkg/"
# the ASan runtime first; libstdc++ too, or ASan cannot intercept C++ throws from the module
# (python itself does not link libstdc++)
preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"

say "python: fuzz + parity on the sanitized module"
# detect_leaks=0: CPython keeps its own allocations at exit; leaks are checked by ctest above
env LD_PRELOAD="$preload" DA3CPP_VARIANT="$VARIANT" PYTHONPATH="$B/py" \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$reports/asan-python" \
    "$PY" -c 'import depth_anything_cpp as d, sys
info = d.backend_info()
print("sanitized core:", d.__file__, info.get("variant", info))
sys.exit(0 if str(d.__file__).startswith(sys.argv[1]) else 1)' "$B/py" || fail=1
env LD_PRELOAD="$preload" DA3CPP_VARIANT="$VARIANT" PYTHONPATH="$B/py" \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$reports/asan-python" \
    "$PY" -m pytest -q -p no:cacheprovider tests/test_robustness_model.py tests/test_parity.py tests/test_precision.py \
    -k "test_robustness_model or test_precision or $PARITY" || fail=1

if [ -n "$(ls -A "$reports")" ]; then
    echo "sanitizer reports:"
    for f in "$reports"/*; do
        echo "==== $f"
        head -n 60 "$f"
    done
    fail=1
fi
say "done (fail=$fail)"
exit "$fail"
