"""``da3cpp colmap``: a pose-conditioned run on a COLMAP model (images/ + sparse/)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .commands import _Export
from .running import _check_args, _default_model, _err, _feat_layers


def read_colmap_inputs(colmap_dir: Path, sparse_subdir: str = "") -> tuple[list, Any, Any]:
    """Image paths, (N, 4, 4) world-to-camera extrinsics and (N, 3, 3) intrinsics of the
    registered images of the COLMAP model in ``colmap_dir/sparse[/sparse_subdir]`` whose
    files exist under ``colmap_dir/images`` (ref: depth_anything_3/services/input_handlers.py
    ColmapHandler; the intrinsics are the camera model's pinhole part,
    ``Camera.calibration_matrix()``), in image-name order.

    Raises:
        FileNotFoundError: a missing directory. ValueError: an unreadable model, or no
        registered image with a file. ImportError: pycolmap is not installed.
    """
    import numpy as np

    try:
        import pycolmap
    except ImportError as exc:
        raise ImportError("the colmap command needs pycolmap: pip install pycolmap") from exc
    images_dir = colmap_dir / "images"
    sparse = colmap_dir / "sparse" / sparse_subdir if sparse_subdir else colmap_dir / "sparse"
    for d, what in ((colmap_dir, "COLMAP directory"), (images_dir, "images directory"),
                    (sparse, "sparse model directory")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} not found: {d}")
    try:
        rec = pycolmap.Reconstruction(str(sparse))
    except Exception as exc:  # pycolmap raises its own types for bad files
        raise ValueError(f"{sparse}: cannot read the COLMAP model: {exc}") from exc
    paths, exts, intrs = [], [], []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        path = images_dir / image.name
        if not image.has_pose or not path.is_file():
            continue
        pose = image.cam_from_world
        ext = np.eye(4)
        ext[:3] = np.asarray((pose() if callable(pose) else pose).matrix())
        paths.append(path)
        exts.append(ext)
        intrs.append(np.asarray(rec.cameras[image.camera_id].calibration_matrix()))
    if not paths:
        raise ValueError(f"{sparse}: no registered image with a file under {images_dir}")
    return paths, np.stack(exts), np.stack(intrs)


def _run_colmap(args: argparse.Namespace) -> int:
    from ..api import DepthAnything3

    problem = _check_args(args)
    command = _Export(args)
    problem = problem or command.validate()
    if problem:
        _err(problem)
        return 2
    if len(args.inputs) != 1:
        _err("colmap: expected one COLMAP directory")
        return 2
    try:
        feat_layers = _feat_layers(args, command)
        paths, ext, intr = read_colmap_inputs(Path(args.inputs[0]), args.sparse_subdir)
        args.model = _default_model(args.model)
    except (OSError, ValueError, ImportError) as exc:
        _err(str(exc))
        return 2
    try:
        model = DepthAnything3.from_pretrained(args.model, variant=args.variant, n_threads=args.threads,
                                               backend=args.backend)
    except Exception as exc:  # any load failure ends the run with a message, not a traceback
        _err(f"cannot load model {args.model}: {exc}")
        return 2
    t0 = time.perf_counter()
    try:
        pred = model.inference([str(p) for p in paths], extrinsics=ext, intrinsics=intr,
                               align_to_input_ext_scale=args.align_to_input_ext_scale,
                               process_res=args.process_res, process_res_method=args.process_res_method,
                               use_ray_pose=args.use_ray_pose, ref_view_strategy=args.ref_view_strategy,
                               export_feat_layers=feat_layers)
        command.out.mkdir(parents=True, exist_ok=True)
        from .. import exports

        with exports.track_writes() as written:
            try:
                exports_written = command.plan.write(pred, command.out, image_paths=[str(p) for p in paths])
            except BaseException:
                for path in written:
                    Path(path).unlink(missing_ok=True)
                raise
    except Exception as exc:
        _err(f"{args.inputs[0]}: {type(exc).__name__}: {exc}")
        return 1
    if not args.quiet:
        n_files = sum(len(v) for v in exports_written.values())
        print(f"colmap: {len(paths)} views, {n_files} files in {command.out}, {time.perf_counter() - t0:.2f} s")
    return 0

