#!/usr/bin/env bash
# Jetson (issue #22 item 4), checked without a Jetson: the aarch64 + CUDA configuration of this
# project configures (cmake/Da3Cuda.cmake, variant cuda at the dotprod CPU level) and ggml-cuda's
# sources compile to sm_87 objects, with CUDA 13's x86-64 nvcc wheel cross-compiling through
# Debian's aarch64 GCC (cmake/toolchains/gcc-aarch64.cmake) against the aarch64 cudart/cuBLAS
# wheels. What it cannot show: that the module loads on L4T's CUDA 12 runtime (README "Jetson").
#   CUDA_ROOT=<folder with bin/nvcc, include, lib> bash .ci/jetson_cuda_check.sh [N_OBJECTS]
# Without CUDA_ROOT it pip-downloads the wheels (about 700 MB, cuBLAS most of it) into build/;
# a CUDA_ROOT needs bin/cuobjdump too (wheel nvidia-cuda-cuobjdump).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
B=$(realpath -m build/jetson-cuda)
N=${1:-6}
command -v aarch64-linux-gnu-g++ >/dev/null || apt-get install -y -q --no-install-recommends g++-aarch64-linux-gnu
if [ -z "${CUDA_ROOT:-}" ]; then
    tk=$B/cuda && mkdir -p "$tk/dl"
    if [ ! -x "$tk/nvidia/cu13/bin/nvcc" ]; then
        pip_dl() { "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 -d "$tk/dl" "$@"; }
        pip_dl --platform manylinux2014_x86_64 "nvidia-cuda-nvcc==13.*" "nvidia-nvvm==13.*" "nvidia-cuda-crt==13.*" "nvidia-cuda-cccl==13.*" \
            "nvidia-cuda-cuobjdump==13.*"
        pip_dl --platform manylinux2014_aarch64 "nvidia-cuda-runtime==13.*" "nvidia-cublas==13.*"
        for w in "$tk"/dl/*.whl; do "$PY" -m zipfile -e "$w" "$tk"; done
        rm -rf "$tk/dl"
    fi
    CUDA_ROOT=$tk/nvidia/cu13
fi
chmod +x "$CUDA_ROOT"/bin/* "$CUDA_ROOT"/nvvm/bin/* 2>/dev/null || true
for l in cudart cublas cublasLt; do  # the wheels have only the versioned names
    [ -e "$CUDA_ROOT/lib/lib$l.so" ] || ln -s "$(basename "$(ls "$CUDA_ROOT"/lib/lib$l.so.* | head -1)")" "$CUDA_ROOT/lib/lib$l.so"
done
t0=$SECONDS
# the arm64 Python headers (cmake/wheel_aarch64.py: Debian's arm64 packages, unpacked)
root=${DA3CPP_AARCH64_SYSROOT:-$B/root}
"$PY" -c 'import sys; sys.path.insert(0, "cmake"); from pathlib import Path; import wheel_aarch64 as w
w.make_sysroot(Path(sys.argv[1]), None)' "$root"
inc=$("$PY" -c 'import sys; sys.path.insert(0, "cmake"); from pathlib import Path; import wheel_aarch64 as w
print(w.python_include(Path(sys.argv[1]), Path(sys.argv[2])))' "$root" "$B/python3.11-include")
cmake -S . -B "$B/build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/gcc-aarch64.cmake" \
    -DDA3CPP_VARIANTS=cuda -DCMAKE_CUDA_COMPILER="$CUDA_ROOT/bin/nvcc" -DCMAKE_CUDA_ARCHITECTURES=87 \
    -DPython_EXECUTABLE="$(command -v "$PY")" -DPython_INCLUDE_DIR="$inc" \
    -DDA3_PYTHON_SOABI=cpython-311-aarch64-linux-gnu -DDA3CPP_COPY_TO_SOURCE=OFF
# ggml's own configure (ExternalProject), then N of ggml-cuda's objects
ninja -C "$B/build" "$B/build/ggml/cuda/src/ggml_cuda-stamp/ggml_cuda-configure"
gb=$B/build/ggml/cuda/build
objs=$(ninja -C "$gb" -t targets all | grep -o '^[^:]*ggml-cuda[^:]*\.cu\.o' | grep -E 'mmvq|norm|binbcast|conv2d|softmax|getrows|mmq\.cu|ggml-cuda\.cu' | head -n "$N")
echo "compiling: $objs"
ninja -C "$gb" $objs
for o in $objs; do  # an aarch64 object whose fatbin holds an sm_87 cubin (cuobjdump: its own wheel)
    f=$gb/$o
    file -b "$f" | grep -q 'ARM aarch64' || { echo "$o: not aarch64"; exit 1; }
    elf=$("$CUDA_ROOT/bin/cuobjdump" --list-elf "$f")
    case "$elf" in *sm_87.cubin*) ;; *) echo "$o: no sm_87 cubin ($elf)"; exit 1 ;; esac
    echo "$o: aarch64; $elf"
done
echo "aarch64 + CUDA: configured and compiled $(echo "$objs" | wc -w) ggml-cuda objects for sm_87 in $((SECONDS - t0)) s"
