"""f16 matrix products accumulate in f32 in every variant of this build (issue #18).

A long-K product of positive f16 values, through the same graph builder as the network's
linear layers (ggml's mul_mat for a few rows, our packed GEMM for many), must match a float64
reference to f32 rounding. Summed in half precision (AVX512-FP16 or ARM fp16 vector arithmetic
compiled into ggml) it drifts: a -march=native build without -mno-avx512fp16 on Sapphire
Rapids gave 1.1e-3 for one row (ggml's f16 dot product; the bound is 5e-5, f32 gives 4e-7 here
and 6e-6 on lavapipe) and failed the build_info check, while its tiled GEMM rows stayed at 4e-7. Each variant runs
in its own process (the Vulkan one also on its device, lavapipe included), so a new CPU level or
GPU variant is covered as soon as it is built.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from depth_anything_cpp import _variants

K, N = 16384, 64
#: max |y - ref| / sum |w x|: f32 accumulation gives 3e-7 to 4e-7 on the CPU (blocked sums) and
#: 6e-6 on lavapipe's Vulkan matmul (longer sequential sums); half precision 2e-4 to 1.1e-3
TOL = 5e-5

_CHILD = r"""
import json, sys
import numpy as np
from depth_anything_cpp import _variants
mod = _variants.load_core(sys.argv[1])[0]
backend, K, N = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(18)
w = rng.uniform(0.5, 1.5, (N, K)).astype(np.float16)
out = {"build": dict(mod.build_info()), "errors": {}}
# 1 row: ggml's f16 dot product (a view's camera token); 4: ggml's tiled f16 GEMM (llamafile);
# 64: our packed GEMM (the ViT's linears)
for m in (1, 4, 64):
    x = rng.uniform(0.5, 1.5, (m, K)).astype(np.float16).astype(np.float32)  # exact in f16 too
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    y = mod.check_linear_f16(w.view(np.uint16), x, backend=backend, n_threads=2)
    out["errors"][str(m)] = float(np.max(np.abs(y - ref) / (np.abs(x).astype(np.float64) @ np.abs(w.astype(np.float64)).T)))
print(json.dumps(out))
"""


def _cases() -> list:
    cases = []
    for v in _variants.available_variants():
        if _variants._missing_features(v):
            continue
        cases.append(pytest.param(v, "cpu", id=f"{v}-cpu"))
        if v == "vulkan":
            cases.append(pytest.param(v, "gpu", id=f"{v}-gpu"))
    return cases


@pytest.mark.parametrize("variant,backend", _cases())
def test_f16_products_accumulate_in_f32(variant, backend):
    env = dict(os.environ)
    if backend == "gpu":
        env.setdefault("GGML_VK_VISIBLE_DEVICES", "0")  # lavapipe counts: it runs the same shaders
    r = subprocess.run([sys.executable, "-c", _CHILD, variant, backend, str(K), str(N)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    build = out["build"]
    print(f"{variant}/{backend}: level {build['isa_level']} ({build['isa_flags']}), errors {out['errors']}")
    assert build["reduced_precision"] == "", build
    for m, err in out["errors"].items():
        assert err < TOL, f"{variant} on {backend}, {m} rows: relative error {err:.2e} (f16 accumulation?) {build}"


def test_half_precision_accumulation_would_fail_the_bound():
    # the bound separates the two: the same product summed in float16 (128 partial sums, as
    # ggml's AVX512-FP16 dot product) misses it
    rng = np.random.default_rng(18)
    w = rng.uniform(0.5, 1.5, (8, K)).astype(np.float16)
    x = rng.uniform(0.5, 1.5, (1, K)).astype(np.float16)
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    prod = (x * w).reshape(8, K // 128, 128)
    acc = np.zeros((8, 128), np.float16)
    for i in range(K // 128):
        acc = (acc + prod[:, i, :]).astype(np.float16)
    y = acc.astype(np.float32).sum(axis=1)
    err = np.max(np.abs(y - ref) / ref)
    assert err > 3 * TOL, err


def test_build_info_reported():
    info = _variants.backend_info()
    if info["chosen"] is None:
        pytest.fail(f"no core: {info['reason']}")
    build = info["build"]
    assert build["variant"] == info["chosen"]
    assert build["isa_level"] in set(_variants._LEVELS) | {"native"}  # cpu_levels.json
    assert build["reduced_precision"] == ""
    assert set(build["bf16_engines"].split(",")) <= {"", "amx_bf16", "avx512_bf16"}, build
    if build["isa_level"] == "avx512":
        assert "avx512f" in build["isa_features"].split(",")
    if build["isa_level"] == "native" and platform.machine().lower() in ("x86_64", "amd64"):
        assert "-mno-avx512fp16" in build["isa_flags"].split(), build
