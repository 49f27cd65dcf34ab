"""Emulated aarch64 parity (issue #22 item 3): the same files and images through the x86-64 build
and the aarch64 wheel under qemu-user, compared.

    python .ci/aarch64_parity.py models DIR           # x86-64: da3-small seeded weights in f32 f16 q8_0 q4_k
    python .ci/aarch64_parity.py run DIR OUT.npz [f32,q8_0]  # either architecture: outputs of every file (or
                                                      # those types) x image
    python .ci/aarch64_parity.py compare REF.npz ARM.npz
    python .ci/aarch64_parity.py precision VARIANT    # tests/test_precision.py's check, in-process

``run`` needs only numpy and depth_anything_cpp (it runs inside the arm64 Python too); ``models``
converts the seeded random-weight da3-small snapshot of the test cache (or makes it with the
tests' reference package). Outputs at a small ``process_res`` (emulation runs f32 matmuls at
about 0.4 GFLOP/s). Tolerances (``TOL``): f32 as issue #22 asks; the others are set by what
differs between the two builds besides summation order, written beside each.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DA3CPP_SHARED", REPO.parent / "shared"))
IMAGES = (SHARED / "data/da3_examples/assets_examples_SOH_000.png",
          SHARED / "data/metric3d/data/nyu_demo/rgb/rgb_00050.jpg")
TYPES = ("f32", "f16", "q8_0", "q4_k")
PROCESS_RES = 140
#: (depth: max |a - b| / depth range, cameras: max relative error of extrinsics and intrinsics).
#: The reference is the x86-64 avx2 level: like every ARM level, no int8 (VNNI) GEMM, so our GEMM
#: turns f16/q8_0/q4_k weights into exact f32 on both sides and the depth path differs only in
#: summation order (measured 0.9e-6 to 1.7e-6 for all four types).
TOL = {
    "f32": (1e-5, 1e-5),
    # the camera tokens' few-row matmuls are ggml's: on f16 weights it rounds the activations to
    # f16 on both architectures, so a last-bit difference before can flip one rounding
    # (measured 8.6e-5 and 3.0e-4)
    "f16": (1e-5, 1e-3),
    # ... and on q8_0 / q4_K weights it quantizes them to 8 bits: one flipped step is up to 1/127
    # of a product (measured 6e-8 to 2e-6: no flip on these images)
    "q8_0": (1e-5, 1e-2),
    "q4_k": (1e-5, 1e-2),
}


def _snapshot(out: Path) -> Path:
    """The tests' seeded da3-small snapshot from their cache, else made in ``out``."""
    cache = Path(os.environ.get("DA3CPP_TEST_CACHE", REPO / "tests/.cache"))
    found = sorted(cache.glob("*/models/da3-small_s0/snapshot/model.safetensors"))
    if found:
        return found[-1].parent
    sys.path.insert(0, str(REPO / "tests"))
    from reference.model import make_model, save_snapshot  # torch + depth-anything-3 (CI has both)
    return save_snapshot(make_model("da3-small", seed=0), out / "snapshot", preset="da3-small")


def make_models(out: Path) -> None:
    from depth_anything_cpp.convert import convert
    snap = _snapshot(out)
    out.mkdir(parents=True, exist_ok=True)
    for t in TYPES:
        dst = out / f"da3-small-{t}.gguf"
        if not dst.exists():
            convert(snap, dst, type=t)
        print(dst)


def run(models: Path, out: Path, types: tuple[str, ...] = TYPES) -> None:
    import depth_anything_cpp as d
    info = d.backend_info()
    res: dict[str, np.ndarray] = {}
    for t in types:
        model = d.DepthAnything3.from_file(models / f"da3-small-{t}.gguf")
        for i, img in enumerate(IMAGES):
            t0 = time.time()
            p = model.inference([str(img)], process_res=PROCESS_RES)
            for k in ("depth", "conf", "extrinsics", "intrinsics"):
                res[f"{t}/{i}/{k}"] = np.asarray(getattr(p, k), dtype=np.float32)
            print(f"{info['chosen']} {t} {img.name}: {time.time() - t0:.1f} s", flush=True)
        model.close()
    res["variant"] = np.array(info["chosen"])
    np.savez(out, **res)


def compare(ref_path: Path, arm_path: Path) -> int:
    ref, arm = np.load(ref_path), np.load(arm_path)
    print(f"reference {ref['variant']} vs {arm['variant']} (process_res {PROCESS_RES})")
    print("| file | image | depth err / range | conf err / range | camera rel err | tolerance (depth, camera) |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for t in (t for t in TYPES if f"{t}/0/depth" in arm):
        for i, img in enumerate(IMAGES):
            k = f"{t}/{i}/"
            rng = float(np.ptp(ref[k + "depth"]))
            e_d = float(np.max(np.abs(ref[k + "depth"] - arm[k + "depth"]))) / rng
            e_c = float(np.max(np.abs(ref[k + "conf"] - arm[k + "conf"]))) / float(np.ptp(ref[k + "conf"]))
            e_cam = max(float(np.max(np.abs(ref[k + n] - arm[k + n]))) / float(np.max(np.abs(ref[k + n])))
                        for n in ("extrinsics", "intrinsics"))
            tol = TOL[t]
            ok = e_d <= tol[0] and e_cam <= tol[1]
            bad += not ok
            print(f"| {t} | {img.name} | {e_d:.1e} | {e_c:.1e} | {e_cam:.1e} | {tol[0]:.0e}, {tol[1]:.0e}"
                  f"{'' if ok else ' FAIL'} |")
    return 1 if bad else 0


def precision(variant: str) -> int:
    """tests/test_precision.py's f16 check of one variant, run in this process: under qemu-user
    without binfmt_misc the test's own subprocess (an aarch64 python) cannot be executed."""
    import contextlib
    import io
    sys.path.insert(0, str(REPO / "tests"))
    import test_precision as tp
    buf = io.StringIO()
    argv0 = sys.argv
    sys.argv = ["-c", variant, "cpu", str(tp.K), str(tp.N)]  # the child takes a variant name (load_core)
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(tp._CHILD, "test_precision._CHILD", "exec"), {"__name__": "__child__"})
    finally:
        sys.argv = argv0
    out = json.loads(buf.getvalue().strip().splitlines()[-1])
    build = out["build"]
    print(f"{variant}: level {build['isa_level']} ({build['isa_flags']}), features {build['isa_features']}, "
          f"reduced_precision {build['reduced_precision']!r}, errors {out['errors']} (bound {tp.TOL})")
    ok = build["reduced_precision"] == "" and all(e < tp.TOL for e in out["errors"].values())
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "models":
        make_models(Path(argv[1]))
    elif len(argv) >= 3 and argv[0] == "run":
        run(Path(argv[1]), Path(argv[2]), tuple(argv[3].split(",")) if len(argv) > 3 else TYPES)
    elif len(argv) >= 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    elif len(argv) >= 2 and argv[0] == "precision":
        return precision(argv[1])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
