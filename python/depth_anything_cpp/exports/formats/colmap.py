"""``colmap``: ``cameras.bin``, ``images.bin``, ``points3D.bin`` (``.txt`` with
``binary=False``) directly in ``export_dir``, as the official exporter (ref:
depth_anything_3/utils/export/colmap.py): PINHOLE cameras at the original image sizes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

from ..._native import get_core
from .. import scene
from ..files import _record
from ..format import ExportContext, ExportFormat
from ..scene import _f32

# official COLMAP export: threshold = percentile(conf, 40), no cap, sky kept
OPTIONS = {"conf_thresh_percentile": 40.0, "num_max_points": 0, "remove_sky": False,
           "binary": True, "image_paths": None, "process_res_method": "upper_bound_resize"}


def _check(opts: dict) -> None:
    method = opts["process_res_method"]
    if not str(method).endswith("resize"):
        raise ValueError(f"COLMAP export supports the *_resize process_res_method only, got {method!r}")
    scene.check_point_options("colmap", opts)


def _prepare(prediction: Any, opts: dict, image_paths: Optional[Sequence[Any]]) -> tuple[list, list]:
    return _colmap_views(prediction, opts["image_paths"] if opts["image_paths"] is not None else image_paths)


def _write(ctx: ExportContext, opts: dict) -> None:
    _export_colmap(ctx.prediction, ctx.out, ctx.state, **opts)


def _export_colmap(prediction: Any, out: Path, views: tuple[list, list], *, binary: bool,
                   image_paths: Any, process_res_method: str, **point_options: Any) -> None:
    names, sizes = views
    pts = prediction.points(conf_thresh=0.0, ensure_thresh_percentile=100.0, **point_options)
    h, w = prediction.depth.shape[1:3]
    get_core().export_colmap(
        os.fspath(out), pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], _f32(prediction.extrinsics),
        _f32(prediction.intrinsics), (int(h), int(w)), sizes, names, binary=bool(binary))
    suffix = ".bin" if binary else ".txt"
    for name in ("cameras", "images", "points3D"):
        _record(out / f"{name}{suffix}")


def _image_size_of(path: str) -> tuple[int, int]:
    """(width, height) of an image file after its EXIF orientation, as our loader sees it."""
    from PIL import Image

    with Image.open(path) as img:
        width, height = img.size
        orientation = img.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _colmap_views(prediction: Any, image_paths: Optional[Sequence[Any]]) -> tuple[list, list]:
    """(image names, original (width, height)) for the COLMAP export."""
    n = prediction.depth.shape[0]
    paths = image_paths if image_paths is not None else getattr(prediction, "image_paths", None)
    if paths is not None:
        paths = list(paths)
        if len(paths) != n:
            raise ValueError(f"image_paths: {len(paths)} paths for {n} views")
    sizes = getattr(prediction, "original_sizes", None)
    if sizes is not None and len(sizes) != n:
        sizes = None
    if sizes is None:
        if paths is None or any(p is None for p in paths):
            raise ValueError("COLMAP export needs the original image sizes: pass image_paths "
                             "(files) or a Prediction from DepthAnything3.inference")
        sizes = [_image_size_of(os.fspath(p)) for p in paths]
    names = []
    for i in range(n):
        p = None if paths is None else paths[i]
        names.append(os.path.basename(os.fspath(p)) if p is not None else f"{i:04d}.png")
    if len(set(names)) != len(names):
        raise ValueError(f"COLMAP export: image names must be unique, got {names}")
    return names, [(int(w), int(h)) for w, h in sizes]


FORMAT = ExportFormat(
    name="colmap", summary="COLMAP sparse model (cameras, images, points3D)", write=_write, options=OPTIONS,
    check=_check, prepare=_prepare, needs_images=True, needs_cameras=True,
    shared_args={"conf_thresh_percentile": "conf_thresh_percentile", "process_res_method": "process_res_method",
                 "binary": "colmap_binary"},
    order=3, official=True)
