#!/usr/bin/env python3
"""f32 against bf16 compute precision on one GGUF, in one process (issue #23).

Loads the file twice (``precision="f32"`` and ``"bf16"``), then on the same seeded input
(1 x 3 x 280 x 504, SOH_000's processed size):

- ``--profiled`` profiled calls of each, alternated (``DA3CPP_PROFILE_NODES=1``); each node's
  time is the minimum over its calls (on a shared machine noise only adds), summed per kind:
  the ViT linears (qkv, proj, fc1, fc2, with GFLOP/s from their shapes), the bf16 mode's
  activation packing nodes, the rest of the backbone (attention, norms), head + camera;
- ``--calls`` plain calls of each, alternated: medians, the median of per-pair ratios, minima.

Example (GGUFs from ``da3cpp bench``'s cache, or any file)::

    python benchmarks/precision_ab.py ~/.cache/depth-anything-cpp/bench/da3-small_s0/da3-small_s0-f32.gguf
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ["DA3CPP_PROFILE_NODES"] = "1"  # read when a context is made
try:
    import depth_anything_cpp as da3
except ImportError:  # not installed: use the source tree (needs a dev build of the core)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import depth_anything_cpp as da3

PRECISIONS = ("f32", "bf16")
NODE = re.compile(r"node (\S+)\s+(\S+)\s+(.*?)\s+\[(\d+) (\d+) (\d+) (\d+)\] (\w+)$")


def profiled_nodes(model, x) -> list:
    """One profiled call; the node lines ggml's eval callback prints on fd 2."""
    fd, path = tempfile.mkstemp()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        model.infer_tensor(x, profile=True)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.startswith("node ")]
    os.unlink(path)
    return lines


def per_kind(calls: list) -> dict:
    """kind -> [ms (sum of per-node minima), GFLOP]."""
    rows = []
    for i, line in enumerate(calls[0]):
        m = NODE.match(line)
        t = min(float(c[i].split()[1]) for c in calls)
        rows.append((t, m.group(2), m.group(3), [int(m.group(j)) for j in range(4, 8)], m.group(8)))
    C = next(r[3][0] for r in rows if r[2].startswith("vit.blk."))  # embed dim
    kinds = collections.defaultdict(lambda: [0.0, 0.0])
    for t, op, name, ne, ty in rows:
        M, flop, custom = ne[1], 0.0, op == "CUSTOM"
        if name.startswith(("head.", "cam")):
            kind = "head+camera"
        elif custom and ty == "bf16":
            kind = "pack_x"
        elif custom and ne[2] == 1 and ne[0] in (3 * C, 4 * C) and name.startswith("node_"):
            kind, flop = ("qkv", 6 * M * C * C) if ne[0] == 3 * C else ("fc1", 8 * M * C * C)
        elif custom and re.fullmatch(r"vit\.blk\.\d+\.attn_res", name):
            kind, flop = "proj", 2 * M * C * C
        elif custom and re.fullmatch(r"vit\.blk\.\d+", name):
            kind, flop = "fc2", 8 * M * C * C
        else:
            kind = "rest_of_backbone"
        kinds[kind][0] += t
        kinds[kind][1] += flop / 1e9
    return kinds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="GGUF file (f32 or f16 weights)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profiled", type=int, default=6, help="profiled calls per precision (default 6)")
    p.add_argument("--calls", type=int, default=9, help="plain calls per precision (default 9)")
    a = p.parse_args()
    models = {q: da3.DepthAnything3.from_file(a.model, precision=q, n_threads=a.threads) for q in PRECISIONS}
    print(f"{Path(a.model).name}, {a.threads} threads, linear engines:",
          {q: m.info["linear_engine"] for q, m in models.items()})
    cores = {q: m._model for q, m in models.items()}
    x = np.random.default_rng(0).standard_normal((1, 3, 280, 504)).astype(np.float32)
    for c in cores.values():
        c.infer_tensor(x)  # warm-up: graph, caches
    calls = {q: [] for q in PRECISIONS}
    for _ in range(a.profiled):
        for q, c in cores.items():
            calls[q].append(profiled_nodes(c, x))
    for q in PRECISIONS:
        k = per_kind(calls[q])
        total = sum(v[0] for v in k.values())
        lin = sum(k[n][0] for n in ("qkv", "proj", "fc1", "fc2"))
        rates = {n: f"{k[n][0]:.1f} ms" + (f" {k[n][1] / k[n][0] * 1e3:.0f} GFLOP/s" if k[n][1] else "")
                 for n in sorted(k)}
        print(f"{q}: per-node minima sum {total:.1f} ms, ViT linears {lin:.1f} ms; {rates}")
    times = {q: [] for q in PRECISIONS}
    for _ in range(a.calls):
        for q, c in cores.items():
            t0 = time.perf_counter()
            c.infer_tensor(x)
            times[q].append(time.perf_counter() - t0)
    ratios = [b / f for f, b in zip(times["f32"], times["bf16"])]
    print(f"whole calls, {a.calls} alternated: f32 {np.median(times['f32']):.3f} s, bf16 {np.median(times['bf16']):.3f} s,"
          f" bf16/f32 {np.median(ratios):.3f} (median of pair ratios; {min(ratios):.2f}-{max(ratios):.2f});"
          f" minima {min(times['f32']):.3f} / {min(times['bf16']):.3f} s ({min(times['bf16']) / min(times['f32']):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
