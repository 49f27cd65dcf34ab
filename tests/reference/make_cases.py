"""Generate (and cache) the parity test material: GGUF files of perturbed random-weight
models and the official network's outputs + taps on real images.

Usage::

    python tests/reference/make_cases.py --list
    python tests/reference/make_cases.py [--case NAME ...] [--fast]   # default: all cases

Cache (``DA3CPP_TEST_CACHE``, default ``tests/.cache``), keyed by a hash of the converter and
of this harness, so edits regenerate what they affect::

    <cache>/<hash>/models/<model>/snapshot/{config.json, model.safetensors}   (kept for da3-small only)
    <cache>/<hash>/models/<model>/<model>-<type>.gguf
    <cache>/<hash>/cases/<case>.npz      (input, outputs, taps, meta JSON)

A model is (preset, seed, overrides), e.g. ``da3-small_s0`` or ``da3-large_s0_d4`` (depth
reduced to 4 blocks through ``da3cpp_overrides``: same code paths, small cost).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

if __package__ in (None, ""):  # run as a script: make `reference` and the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "reference"
    try:
        import depth_anything_cpp.convert  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SHARED = Path(os.environ.get("DA3CPP_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"

IMAGES = {
    "SOH_000": "da3_examples/assets_examples_SOH_000.png",      # 1208x680 -> 504x280
    "SOH_010": "da3_examples/assets_examples_SOH_010.png",
    "NYU_00000": "metric3d/data/nyu_demo/rgb/rgb_00000.jpg",     # 640x480 -> 504x378
    "KITTI_05": "metric3d/data/kitti_demo/rgb/0000000005.png",   # 1242x375 -> 504x154
}


@dataclass(frozen=True)
class ModelId:
    """A generated model: official preset, seed, optional reduced depth (same for all branches)."""
    preset: str
    seed: int = 0
    depth: Optional[int] = None

    @property
    def tag(self) -> str:
        return f"{self.preset}_s{self.seed}" + (f"_d{self.depth}" if self.depth else "")

    @property
    def overrides(self) -> Optional[dict]:
        if not self.depth:
            return None
        d = self.depth   # >= 4: the 4 out layers must be distinct blocks
        # out layers: the last 4 blocks; alternating attention from block 2 (odd = global);
        # reference-view selection happens before block alt_start-1 = 1, after a local block
        return {"depth": d, "out_layers": list(range(d - 4, d)), "alt_start": 2}


@dataclass(frozen=True)
class Case:
    """One reference run: images (name or name:rot90), options, precisions to test."""
    name: str
    model: ModelId
    images: Tuple[str, ...]
    process_res: int = 504
    poses: bool = False
    ray: bool = False
    ref_view_strategy: str = "saddle_balanced"
    precisions: Tuple[str, ...] = ("f32",)
    slow: bool = False


SMALL = ModelId("da3-small")
BASE = ModelId("da3-base")
CASES: List[Case] = [
    Case("small_soh000", SMALL, ("SOH_000",), precisions=("f32", "f16", "q8_0", "q4_k")),
    Case("small_portrait", SMALL, ("SOH_010:rot90",)),
    Case("small_nyu", SMALL, ("NYU_00000",)),
    Case("small_2v", SMALL, ("SOH_000", "SOH_010"), precisions=("f32", "f16")),
    Case("small_3v", SMALL, ("SOH_000", "SOH_010", "NYU_00000")),
    Case("small_3v_simrange", SMALL, ("NYU_00000", "SOH_000", "SOH_010"), ref_view_strategy="saddle_sim_range"),
    Case("small_3v_poses", SMALL, ("SOH_000", "SOH_010", "NYU_00000"), poses=True),
    Case("small_raypose", SMALL, ("SOH_000",), ray=True),
    Case("base_soh000", BASE, ("SOH_000",), precisions=("f32", "f16", "q8_0", "q4_k"), slow=True),
    Case("base_portrait", BASE, ("SOH_010:rot90",), slow=True),
    Case("base_3v", BASE, ("SOH_000", "SOH_010", "NYU_00000"), slow=True),
    Case("large_d4", ModelId("da3-large", depth=4), ("SOH_000",), process_res=252, slow=True),
    Case("giant_d4", ModelId("da3-giant", depth=4), ("SOH_000", "SOH_010"), process_res=252, slow=True),
    Case("mono_d4", ModelId("da3mono-large", depth=4), ("SOH_000",), process_res=252, slow=True),
    Case("metric_d4", ModelId("da3metric-large", depth=4), ("KITTI_05",), process_res=252, slow=True),
    Case("nested_d4", ModelId("da3nested-giant-large", depth=4), ("SOH_000",), process_res=252, slow=True),
]
CASES_BY_NAME: Dict[str, Case] = {c.name: c for c in CASES}
KEEP_SNAPSHOTS = (SMALL,)   # used by tests/test_convert.py; other snapshots are rebuilt on demand


@functools.lru_cache(maxsize=None)
def _source_hash() -> str:
    """Hash of the converter and harness sources (computed once per process)."""
    h = hashlib.sha1()
    import depth_anything_cpp.convert as conv   # the converter actually used (installed or source)

    pkg = Path(conv.__file__).parent   # convert.py and the modules it writes with
    files = [pkg / f for f in ("convert.py", "gguf_schema.py", "_quant.py", "_safetensors.py")]
    files += sorted((TESTS / "reference").glob("*.py"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def cache_dir() -> Path:
    root = Path(os.environ.get("DA3CPP_TEST_CACHE", TESTS / ".cache"))
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".gitignore").exists():
        (root / ".gitignore").write_text("*\n")
    key = _source_hash()
    for old in root.iterdir():   # entries of older sources: regenerated, not kept
        if old.is_dir() and old.name != key and re.fullmatch(r"[0-9a-f]{10}", old.name):
            shutil.rmtree(old, ignore_errors=True)
    d = root / key
    d.mkdir(exist_ok=True)
    return d


def load_image(spec: str) -> np.ndarray:
    """HxWx3 uint8 RGB of an IMAGES entry, ``:rot90`` rotates it a quarter turn (portrait)."""
    from PIL import Image

    name, _, op = spec.partition(":")
    img = np.asarray(Image.open(DATA / IMAGES[name]).convert("RGB"))
    if op == "rot90":
        img = np.ascontiguousarray(np.rot90(img))
    elif op:
        raise ValueError(f"unknown image op {op!r}")
    return img


def synthetic_poses(n: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Plausible non-collinear cameras: (world-to-camera [n,4,4], intrinsics [n,3,3] px at
    the processed size, fx = fy = 0.8 W, principal point at the centre)."""
    def rot(ax, deg):
        a = np.deg2rad(deg)
        c, s = np.cos(a), np.sin(a)
        if ax == "y":
            return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    c2ws = []
    params = [(0.0, 0.0, (0.0, 0.0, 0.0)), (5.0, 0.0, (0.3, 0.0, 0.0)), (-7.0, 3.0, (-0.25, 0.05, 0.1)),
              (10.0, -2.0, (0.5, -0.05, 0.2))]
    for i in range(n):
        ry, rx, t = params[i % len(params)]
        m = np.eye(4)
        m[:3, :3] = rot("y", ry) @ rot("x", rx)
        m[:3, 3] = np.array(t) * (1 + i // len(params))
        c2ws.append(m)
    ext = np.linalg.inv(np.stack(c2ws)).astype(np.float32)
    k = np.array([[0.8 * width, 0, width / 2], [0, 0.8 * width, height / 2], [0, 0, 1]], dtype=np.float32)
    return ext, np.tile(k, (n, 1, 1))


def _atomic_savez(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".part.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file left (e.g. a full disk)
        raise


_MODEL_CACHE: Dict[str, object] = {}


def torch_model(mid: ModelId):
    """The perturbed official network of ``mid`` (kept in memory for the last model used)."""
    from . import make_model

    if mid.tag not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[mid.tag] = make_model(mid.preset, mid.seed, overrides=mid.overrides)
    return _MODEL_CACHE[mid.tag]


def model_snapshot(mid: ModelId) -> Path:
    """HF-style snapshot directory of ``mid`` (cached)."""
    from . import save_snapshot

    d = cache_dir() / "models" / mid.tag / "snapshot"
    if not (d / "model.safetensors").is_file():
        tmp = d.with_name("snapshot.part")
        save_snapshot(torch_model(mid), tmp)
        if d.exists():
            shutil.rmtree(d)
        os.replace(tmp, d)
    return d


def model_gguf(mid: ModelId, weight_type: str = "f32") -> Path:
    """GGUF of ``mid`` in ``weight_type`` (published quantization rule, with extras; cached)."""
    from depth_anything_cpp.convert import convert

    out = cache_dir() / "models" / mid.tag / f"{mid.tag}-{weight_type}.gguf"
    if not out.is_file():
        convert(model_snapshot(mid), out, type=weight_type, checkpoint_name=mid.tag, progress=False)
        # big snapshots are only an intermediate: drop them once every file the cases need exists
        needed = {t for c in CASES if c.model == mid for t in c.precisions}
        if mid not in KEEP_SNAPSHOTS and all((out.parent / f"{mid.tag}-{t}.gguf").is_file() for t in needed):
            shutil.rmtree(out.parent / "snapshot", ignore_errors=True)
    return out


def case_inputs(case: Case):
    """(input [N,3,H,W] float32, processed uint8, extrinsics or None, intrinsics or None)."""
    from . import preprocess_reference

    x, rgb, _ = preprocess_reference([load_image(s) for s in case.images], case.process_res)
    ext = ixt = None
    if case.poses:
        ext, ixt = synthetic_poses(x.shape[0], x.shape[2], x.shape[3])
    return x, rgb, ext, ixt


def case_reference(case: Case) -> Path:
    """npz with the official fp32 outputs and taps for ``case`` (cached).

    Keys: ``input``, ``processed_images``, optional ``extrinsics_in``/``intrinsics_in``, the
    outputs of ``run_reference`` and ``meta`` (JSON: case, model, images, options, timing).
    """
    import torch

    from . import run_reference

    out = cache_dir() / "cases" / f"{case.name}.npz"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    x, rgb, ext, ixt = case_inputs(case)
    model = torch_model(case.model)
    torch.manual_seed(0)   # official sky/nested quantiles subsample with the torch RNG
    t0 = time.perf_counter()
    res = run_reference(model, x, ext, ixt, use_ray_pose=case.ray, ref_view_strategy=case.ref_view_strategy)
    dt = time.perf_counter() - t0
    arrays = dict(res)
    arrays["input"] = x
    arrays["processed_images"] = rgb
    if ext is not None:
        arrays["extrinsics_in"], arrays["intrinsics_in"] = ext, ixt
    meta = {"case": case.name, "model": case.model.tag, "preset": case.model.preset, "seed": case.model.seed,
            "overrides": case.model.overrides, "images": list(case.images), "process_res": case.process_res,
            "poses": case.poses, "ray": case.ray, "ref_view_strategy": case.ref_view_strategy,
            "torch_forward_s_with_taps": round(dt, 3), "torch_threads": torch.get_num_threads()}
    arrays["meta"] = np.array(json.dumps(meta))
    _atomic_savez(out, arrays)
    return out


def load_case(path: Path) -> Tuple[dict, dict]:
    """(arrays, meta) of a case npz."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return arrays, meta


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", action="append", help="case name (repeatable; default all)")
    p.add_argument("--fast", action="store_true", help="skip cases marked slow")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args(argv)
    if args.list:
        for c in CASES:
            print(f"{c.name:20s} {c.model.tag:28s} {','.join(c.images):40s} res={c.process_res} "
                  f"{'poses ' if c.poses else ''}{'ray ' if c.ray else ''}{'/'.join(c.precisions)}"
                  f"{' slow' if c.slow else ''}")
        return 0
    names = args.case or [c.name for c in CASES if not (args.fast and c.slow)]
    unknown = [n for n in names if n not in CASES_BY_NAME]
    if unknown:
        p.error(f"unknown case {unknown[0]!r}")
    print(f"cache: {cache_dir()}")
    for n in names:
        case = CASES_BY_NAME[n]
        t0 = time.perf_counter()
        ggufs = [model_gguf(case.model, t) for t in case.precisions]
        t1 = time.perf_counter()
        path = case_reference(case)
        _, meta = load_case(path)
        print(f"{n:20s} gguf {t1 - t0:6.1f}s  reference {time.perf_counter() - t1:6.1f}s "
              f"(torch forward {meta['torch_forward_s_with_taps']}s)  {path.name} "
              + " ".join(g.name for g in ggufs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
