#!/usr/bin/env python3
"""Benchmark depth_anything_cpp against the official PyTorch network (same random weights).

Source-tree entry point of ``da3cpp bench`` (``depth_anything_cpp.bench``); see
``benchmarks/README.md``. Example::

    python benchmarks/bench.py --presets da3-small,da3-base --precisions f32,f16,q8_0,q4_k --threads 2 --reps 5
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

try:
    import depth_anything_cpp.bench as bench
except ImportError:  # not installed: use the source tree (needs a dev build of the core)
    sys.path.insert(0, str(REPO / "python"))
    import depth_anything_cpp.bench as bench

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--repo" or a.startswith("--repo=") for a in argv):
        argv = ["--repo", str(REPO)] + argv
    sys.exit(bench.main(argv))
