"""Record a sha256 of every output array of a fixed set of inference runs, to prove a refactor
keeps the outputs bit-identical (issue #21: "record output hashes before, compare after").

Usage (from the repository root, the compiled core built into python/)::

    PYTHONPATH=python python tests/output_hashes.py --out before.json      # at the old commit
    PYTHONPATH=python python tests/output_hashes.py --out after.json       # after the change
    python tests/output_hashes.py --compare before.json after.json          # exit 1 on any difference

Models: the shared fixture (``<shared>/fixtures/da3-small-anchor-layout/*.gguf``), every GGUF in
the test cache (``$DA3CPP_TEST_CACHE/<hash>/models/*/*.gguf``, made by
tests/reference/make_cases.py), every ``*.gguf`` of ``--models-dir`` and any ``--gguf`` given
(e.g. q8_0 / q4_k conversions of the cached da3-small snapshot). The test cache drops its
entries when the converter changes: for a before/after comparison copy the models into a
directory of their own, pass it as ``--models-dir`` and unset ``DA3CPP_TEST_CACHE``. Images: the real images of ``<shared>/data``. Runs (see ``runs_for``):
one view for every model; for any-view models also two views, ray pose with aux rays, input
poses, and (da3-small f32) bf16, three views with each reference-view strategy, taps that
unfuse the head's resizes, feature layers, points with subsampling and the GLB/COLMAP/npz
exports (hashes of the written files). Threads: ``--threads`` (default 2; results must not
depend on it).

The JSON maps ``"<model>|<run>|<output>"`` to ``"<dtype> <shape> <sha256>"``; the run
names, not the order, identify an entry. Nothing here is compared with a reference: it only
tells whether two builds give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import numpy as np

TESTS = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("DA3CPP_SHARED", TESTS.parent.parent / "shared"))
if not SHARED.is_dir():
    SHARED = Path("/work/shared")
DATA = SHARED / "data"
IMAGES = [DATA / "da3_examples" / "assets_examples_SOH_000.png",
          DATA / "da3_examples" / "assets_examples_SOH_010.png",
          DATA / "metric3d" / "data" / "nyu_demo" / "rgb" / "rgb_00000.jpg"]


def digest(a) -> str:
    """'<dtype> <shape> <sha256 of the C-order bytes>' of an array or scalar."""
    a = np.ascontiguousarray(np.asarray(a))
    return f"{a.dtype} {list(a.shape)} {hashlib.sha256(a.tobytes()).hexdigest()}"


def prediction_hashes(pred) -> Dict[str, str]:
    out = {}
    for k in ("depth", "conf", "extrinsics", "intrinsics", "sky", "processed_images", "is_metric", "scale_factor"):
        v = getattr(pred, k)
        if v is not None:
            out[k] = digest(v)
    for k, v in sorted(pred.aux.items()):
        out[f"aux.{k}"] = digest(v)
    return out


def file_hashes(root: Path) -> Dict[str, str]:
    return {f"file.{p.relative_to(root)}": hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def poses(n: int, sizes: List[Tuple[int, int]]) -> Tuple[np.ndarray, np.ndarray]:
    """Plausible world-to-camera (n, 4, 4) and intrinsics (n, 3, 3) of the original images."""
    ext = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
    for i in range(n):
        a = np.deg2rad(4.0 * i)
        ext[i, :3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
        ext[i, :3, 3] = [0.3 * i, 0.02 * i, 0.1 * i]
    k = np.zeros((n, 3, 3), np.float32)
    for i, (w, h) in enumerate(sizes):
        k[i] = [[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1]]
    return ext, k


Run = Tuple[str, Callable]


def runs_for(path: Path, info: dict, res: int, threads: int) -> Iterator[Run]:
    """(name, fn(model) -> {output: hash}) of the runs for one model file."""
    from PIL import Image

    from depth_anything_cpp import DepthAnything3

    tag = path.stem
    sizes = [Image.open(p).size for p in IMAGES]
    one, two, three = [str(IMAGES[0])], [str(p) for p in IMAGES[:2]], [str(p) for p in IMAGES]

    def infer(images, **kw):
        kw.setdefault("process_res", res)
        return lambda m: prediction_hashes(m.inference(images, **kw))

    yield "1v", infer(one)
    anyview = info.get("has_camera_decoder", False)
    if not anyview:   # mono / metric: intrinsics alone (metric scaling, cameras for points)
        _, k = poses(1, sizes[:1])
        yield "1v_intrinsics", infer(one, intrinsics=k)
        return
    yield "2v", infer(two)
    if info.get("has_aux_head", False):
        yield "1v_raypose", infer(one, use_ray_pose=True)
        yield "2v_raypose_aux", infer(two, use_ray_pose=True, compute_aux=True)
    if info.get("has_camera_encoder", False):
        e, k = poses(2, sizes[:2])
        yield "2v_poses", infer(two, extrinsics=e, intrinsics=k)
        yield "2v_poses_noalign", infer(two, extrinsics=e, intrinsics=k, align_to_input_ext_scale=False)
    if tag != "da3-small_s0-f32":
        return

    def bf16(_):
        with DepthAnything3.from_file(path, n_threads=threads, precision="bf16") as mb:
            out = prediction_hashes(mb.inference(one, process_res=res))
            out["linear_engine"] = str(mb.info.get("linear_engine"))
        return out

    yield "1v_bf16", bf16
    yield "2v_aux", infer(two, compute_aux=True)
    yield "3v_balanced", infer(three)
    yield "3v_simrange", infer(three, ref_view_strategy="saddle_sim_range")
    yield "3v_first_lowerbound", infer(three, ref_view_strategy="first", process_res=280,
                                       process_res_method="lower_bound_resize")
    yield "1v_taps_unfused", infer(one, use_ray_pose=True, compute_aux=True,
                                   taps=["head.fuse.0", "head.fuse_aux.0", "head.out2_in", "vit.blk.0"])
    yield "1v_feat_layers", infer(one, export_feat_layers=[0, 5])

    def points_and_exports(m):
        with tempfile.TemporaryDirectory() as d:
            p = m.inference(two, process_res=res, export_dir=d, export_format="mini_npz-glb-colmap",
                            num_max_points=20000)
            out = prediction_hashes(p)
            out.update(file_hashes(Path(d)))
        pts = p.points(num_max_points=5000, seed=7)
        out.update({f"points.{k}": digest(v) for k, v in pts.items()})
        pts = p.points(num_max_points=0, remove_sky=False, filter_black_bg=True)
        out.update({f"points_all.{k}": digest(v) for k, v in pts.items()})
        return out

    yield "2v_points_exports", points_and_exports


def model_files(extra: List[str], models_dir: str = None) -> List[Path]:
    files = sorted((SHARED / "fixtures" / "da3-small-anchor-layout").glob("*.gguf"))
    if models_dir:
        files += sorted(Path(models_dir).glob("*.gguf"))
    cache = os.environ.get("DA3CPP_TEST_CACHE")
    if cache:
        files += sorted(Path(cache).glob("*/models/*/*.gguf"))
    return files + [Path(p) for p in extra]


def record(args) -> Dict[str, str]:
    from depth_anything_cpp import DepthAnything3

    hashes: Dict[str, str] = {}
    for path in model_files(args.gguf, args.models_dir):
        tag = path.stem
        res = 252 if "large" in tag or "giant" in tag else 504   # the big d4 models at the parity size
        model = DepthAnything3.from_file(path, n_threads=args.threads, precision="f32")
        info = model.info
        for name, fn in runs_for(path, info, res, args.threads):
            got = fn(model)
            for k, v in got.items():
                hashes[f"{tag}|{name}|{k}"] = v
            print(f"{tag} {name}: {len(got)} outputs", flush=True)
        model.close()
    return hashes


def compare(a: Path, b: Path) -> int:
    x, y = json.loads(a.read_text()), json.loads(b.read_text())
    diff = sorted(k for k in x.keys() & y.keys() if x[k] != y[k])
    only = sorted(x.keys() ^ y.keys())
    for k in diff:
        print(f"DIFFERENT {k}\n  {x[k]}\n  {y[k]}")
    for k in only:
        print(f"ONLY IN {'first' if k in x else 'second'}: {k}")
    print(f"{len(x.keys() & y.keys())} outputs compared, {len(diff)} different, {len(only)} in one file only")
    return 1 if diff or only else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="JSON file to write")
    ap.add_argument("--gguf", action="append", default=[], help="extra GGUF model file (repeatable)")
    ap.add_argument("--models-dir", help="directory whose *.gguf files are added")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two JSON files")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(Path(args.compare[0]), Path(args.compare[1]))
    if not args.out:
        ap.error("--out or --compare is required")
    hashes = record(args)
    Path(args.out).write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(f"{len(hashes)} output hashes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
