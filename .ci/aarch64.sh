#!/usr/bin/env bash
# aarch64 under emulation (issue #22 items 2-3): cross-build the aarch64 wheel with zig, unpack an
# arm64 Python (no root file system) with numpy and Pillow, install the wheel there and run, with
# qemu-aarch64-static:
#   1. QEMU_CPU=cortex-a53 (Armv8.0): the probe refuses the dotprod level, chooses neon;
#      the dotprod module itself dies with SIGILL there (the refusal is real);
#   2. QEMU_CPU=cortex-a76 (Armv8.2 + dotprod, no SVE, like Jetson Orin's A78AE): dotprod chosen,
#      the README's main job on a real image, the precision test's check (f32 accumulation, #18;
#      also neon on cortex-a53 and i8mm on qemu's max model, where i8mm is chosen),
#      and f32/f16/q8_0/q4_k parity on two real images against this machine's x86-64 build
#      (.ci/aarch64_parity.py; reference variant avx2: the same f32-activation kernels).
# Needs: Debian (dpkg/apt, root), python3 with depth_anything_cpp installed for x86-64 (or
# PYTHONPATH=python with a developer build), pip. About 10-15 minutes on 2 cores.
# Env: DA3CPP_AARCH64_DIR (work folder, default build/aarch64-ci), DA3CPP_AARCH64_WHEEL (use
# this wheel instead of building one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
W=$(realpath -m "${DA3CPP_AARCH64_DIR:-build/aarch64-ci}")
t0=$SECONDS
step() { printf '\n=== aarch64: %s (%ds)\n' "$*" "$((SECONDS - t0))"; }
mkdir -p "$W"

step "tools: zig (PyPI ziglang), qemu-user-static, llvm-strip"
command -v qemu-aarch64-static >/dev/null && command -v llvm-strip >/dev/null ||
    apt-get install -y -q --no-install-recommends qemu-user-static llvm >/dev/null
"$PY" -c 'import ziglang' 2>/dev/null || "$PY" -m pip install -q ziglang
"$PY" cmake/wheel_aarch64.py sysroot "$W/root" --site-packages numpy pillow matplotlib tqdm pytest

if [ -n "${DA3CPP_AARCH64_WHEEL:-}" ]; then
    whl=$DA3CPP_AARCH64_WHEEL
else
    step "cross-build the aarch64 wheel"
    rm -rf "$W/dist"
    "$PY" cmake/wheel_aarch64.py wheel --out "$W/dist" --sysroot "$W/root" --build-dir "$W/build" \
        --jobs "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
    whl=$(ls "$W"/dist/*.whl)
fi
ls -l "$whl"
"$PY" -m auditwheel show "$whl" 2>/dev/null || echo "(auditwheel not installed: policy not shown)"

step "install into the arm64 site folder"
site=$W/site-da3
rm -rf "$site" && mkdir -p "$site"
"$PY" -m zipfile -e "$whl" "$site"
R=$W/root
arm() {  # arm <QEMU_CPU> <python args...>
    local cpu=$1; shift
    QEMU_CPU=$cpu PYTHONPATH="$site:$R/site" PYTHONDONTWRITEBYTECODE=1 \
        qemu-aarch64-static -L "$R" "$R/usr/bin/python3.11" "$@"
}
CHOSEN='import depth_anything_cpp as d; i = d.backend_info(); print(i["chosen"], "|", i["reason"], "|", i["cpu_features"])'

step "cortex-a53 (Armv8.0): the probe chooses neon"
out=$(arm cortex-a53 -c "$CHOSEN")
echo "$out"
case "$out" in cpu_neon*) ;; *) echo "expected cpu_neon on cortex-a53"; exit 1 ;; esac
# the module alone (outside the package, which has loaded neon already), running one product
rc=0
QEMU_CPU=cortex-a53 PYTHONPATH="$site/depth_anything_cpp:$R/site" qemu-aarch64-static -L "$R" "$R/usr/bin/python3.11" -c '
import numpy as np, _da3_cpu_dotprod as m
m.check_linear_f16(np.ones((64, 256), np.uint16), np.ones((64, 256), np.float32), backend="cpu", n_threads=2)' \
    2>/dev/null || rc=$?
echo "the dotprod module run on cortex-a53 directly: rc=$rc (132: SIGILL, what the probe's refusal prevents)"
[ "$rc" -eq 132 ] || { echo "expected SIGILL"; exit 1; }
arm cortex-a53 -c 'import os; os.environ["DA3CPP_VARIANT"] = "dotprod"
from depth_anything_cpp import _variants
from depth_anything_cpp.errors import VariantError
try:
    _variants.load_core()
except VariantError as e:
    print("refused:", e)
else:
    raise SystemExit("DA3CPP_VARIANT=dotprod was not refused on cortex-a53")'

step "cortex-a76 (Armv8.2 + dotprod): dotprod chosen; README main job"
out=$(arm cortex-a76 -c "$CHOSEN")
echo "$out"
case "$out" in cpu_dotprod*) ;; *) echo "expected cpu_dotprod on cortex-a76"; exit 1 ;; esac
rm -rf "$W/out"
arm cortex-a76 -m depth_anything_cpp.cli depth ../shared/data/da3_examples/assets_examples_SOH_000.png \
    --model ../shared/fixtures/da3-small-anchor-layout/da3-small-rand-f16.gguf --out "$W/out" --process-res 140
ls -l "$W/out"

step "f16 products accumulate in f32 (tests/test_precision.py's check, in-process), every level"
arm cortex-a76 .ci/aarch64_parity.py precision cpu_dotprod
arm cortex-a53 .ci/aarch64_parity.py precision cpu_neon
# qemu's "max" model has i8mm + bf16 (and SVE, which no level uses)
out=$(arm max -c "$CHOSEN")
echo "$out"
case "$out" in cpu_i8mm*) ;; *) echo "expected cpu_i8mm on qemu max"; exit 1 ;; esac
arm max .ci/aarch64_parity.py precision cpu_i8mm

step "parity: x86-64 (avx2) against aarch64 (dotprod under qemu), 4 weight types x 2 images"
"$PY" .ci/aarch64_parity.py models "$W/models"
DA3CPP_VARIANT=avx2 "$PY" .ci/aarch64_parity.py run "$W/models" "$W/ref-x86.npz"
arm cortex-a76 .ci/aarch64_parity.py run "$W/models" "$W/arm.npz"
"$PY" .ci/aarch64_parity.py compare "$W/ref-x86.npz" "$W/arm.npz"
step "done"
