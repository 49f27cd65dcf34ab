"""Print '<include dir>;<libcublas>;<libcublasLt>' of the cuBLAS pip wheel (nvidia-cublas).

Run by cmake/Da3Cuda.cmake with the build's Python. Exit status 1 if not installed.
Layouts: CUDA 13 wheels put files in nvidia/cu13/{include,lib}, CUDA 12 ones in nvidia/cublas/.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main() -> int:
    spec = importlib.util.find_spec("nvidia")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        for sub in ("cu13", "cublas", "cu12"):
            inc, lib = root / sub / "include", root / sub / "lib"
            if not (inc / "cublas_v2.h").is_file():
                continue
            blas = sorted(lib.glob("libcublas.so*"))
            blas_lt = sorted(lib.glob("libcublasLt.so*"))
            if blas and blas_lt:
                print(f"{inc};{blas[0]};{blas_lt[0]}")
                return 0
    print("nvidia-cublas is not installed in this Python (pip install nvidia-cublas)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
