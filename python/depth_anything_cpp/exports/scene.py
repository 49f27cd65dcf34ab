"""Point clouds and scenes: PLY and GLB writers and the point options shared by the glb,
ply and colmap formats."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._checks import _finite, check_count
from .._native import get_core
from .files import PathLike, _record, atomic_write_bytes

def write_ply(path: PathLike, xyz: np.ndarray, rgb: np.ndarray) -> Path:
    """Write a binary little-endian PLY point cloud: one ``vertex`` element with
    ``float x, y, z`` and ``uchar red, green, blue``.

    Args:
        xyz: (M, 3) coordinates (written as float32). rgb: (M, 3) uint8 colours.

    Raises:
        ValueError: shapes or dtypes do not match. OSError: write failure.
    """
    xyz = np.asarray(xyz)
    rgb = np.asarray(rgb)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not np.issubdtype(xyz.dtype, np.floating):
        raise ValueError(f"xyz: expected a float (M, 3) array, got {xyz.dtype}{xyz.shape}")
    if rgb.shape != xyz.shape or rgb.dtype != np.uint8:
        raise ValueError(f"rgb: expected a uint8 array of shape {xyz.shape}, got {rgb.dtype}{rgb.shape}")
    vertex = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by depth_anything_cpp\n"
        f"element vertex {len(xyz)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    ).encode("ascii")

    def produce(f: io.BufferedIOBase) -> None:
        f.write(header)
        f.write(vertex.tobytes())

    return atomic_write_bytes(path, produce)


def _require_cameras(prediction: Any, what: str) -> None:
    missing = [name for name in ("extrinsics", "intrinsics", "processed_images")
               if getattr(prediction, name, None) is None]
    if missing:
        raise ValueError(f"{what} needs prediction.{', prediction.'.join(missing)}, which this "
                         "prediction lacks (models without a camera head predict no poses)")


def write_glb(path: PathLike, prediction: Any, *, points: Optional[dict] = None,
              show_cameras: bool = True, camera_size: float = 0.03, **point_options: Any) -> np.ndarray:
    """Write ``prediction`` as a glTF 2.0 binary point cloud with camera frustums
    through the compiled ``export_glb`` (ref: depth_anything_3/utils/export/glb.py).

    Args:
        path: the .glb file.
        prediction: a :class:`~depth_anything_cpp.Prediction` with cameras.
        points: the output of ``prediction.points(...)`` to reuse (else computed with
            ``point_options``, see :meth:`Prediction.points`).
        show_cameras: draw one frustum per view (LINES). camera_size: frustum size as a
            fraction of the scene diagonal.

    Returns:
        The (4, 4) float64 alignment applied to the world frame (first camera, glTF axes,
        centred on the median point).

    Raises:
        ValueError: no cameras, bad options. OSError: write failure.
    """
    _require_cameras(prediction, "GLB export")
    if points is None:
        points = prediction.points(**point_options)
    elif point_options:
        raise TypeError("write_glb: pass either points or point options, not both")
    h, w = prediction.depth.shape[1:3]
    path = Path(path)
    align = get_core().export_glb(
        os.fspath(path), points["xyz"], points["rgb"], _f32(prediction.extrinsics),
        _f32(prediction.intrinsics), (int(h), int(w)), show_cameras=bool(show_cameras),
        camera_size=float(camera_size))
    _record(path)
    return np.asarray(align)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


#: Options of :meth:`Prediction.points` the glb and ply formats take, with their defaults
#: (the official GLB exporter's, sky_depth_def included).
POINT_OPTIONS: dict[str, Any] = {
    "conf_thresh": 1.05, "conf_thresh_percentile": 40.0, "ensure_thresh_percentile": 90.0,
    "num_max_points": 1_000_000, "remove_sky": True, "seed": 0, "filter_black_bg": False,
    "filter_white_bg": False, "sky_depth_def": 98.0}


def check_point_options(fmt: str, opts: dict) -> None:
    """Check the point options in ``opts`` of format ``fmt`` (ValueError naming both)."""
    check_count(f"{fmt} num_max_points", opts["num_max_points"], "(0 = no limit)")
    if "seed" in opts:
        check_count(f"{fmt} seed", opts["seed"], "", hi=2**64 - 1)
    for key in ("conf_thresh_percentile", "ensure_thresh_percentile"):
        if key in opts and not 0.0 <= _finite(f"{fmt} {key}", opts[key]) <= 100.0:
            raise ValueError(f"{fmt} {key}: expected a value in [0, 100], got {opts[key]}")
    for key in ("conf_thresh", "sky_thresh"):
        if key in opts:
            _finite(f"{fmt} {key}", opts[key])
