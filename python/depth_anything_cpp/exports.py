"""Writing predictions to disk: 16-bit depth PNG, colorized depth PNG, NPZ.

All writers are atomic: they write ``.<name>.<pid>.tmp`` next to the target and
``os.replace`` it, so an interrupted run never leaves a half-written file under the
final name.

16-bit depth PNG encoding (``<stem>_depth.png``, single-channel uint16):

- metric models (``is_metric``): ``value = round(depth_m * 1000)``, i.e. millimetres,
  clipped to [1, 65535] (65.535 m max); 0 = invalid (non-finite or <= 0).
  ``depth_m = value / 1000``.
- relative models: ``value = round((depth - min) / (max - min) * 65535)`` over the finite
  pixels; ``depth = min + value / 65535 * (max - min)``. ``min``/``max`` are stored in
  the NPZ (``depth_png_min``, ``depth_png_max``) and in PNG text chunks.

The PNG text chunks ``depth_encoding`` (``"metric_mm"`` or ``"relative_minmax"``),
``depth_min``, ``depth_max`` and ``depth_scale`` describe the encoding in the file itself.

The colorized PNG maps inverse depth (near = high end of the colormap) between its 2nd
and 98th percentiles, like the official ``depth_anything_3.utils.visualize.visualize_depth``
(which draws near pixels with the low end of ``Spectral``: pass ``cmap="Spectral_r"`` for
its look). Colormaps come from matplotlib.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

__all__ = [
    "encode_depth_u16",
    "decode_depth_u16",
    "colorize_depth",
    "write_depth_png16",
    "write_depth_vis",
    "write_npz",
    "export_view",
    "atomic_write_bytes",
]

PathLike = Union[str, "os.PathLike[str]"]
METRIC_SCALE = 1e-3  # metres per unit of the metric 16-bit encoding


def atomic_write_bytes(path: PathLike, produce: Callable[[io.BufferedIOBase], None]) -> Path:
    """Write a file atomically: ``produce(f)`` writes into a temp file in the same
    directory, which then replaces ``path``. Returns ``path``.

    Raises:
        OSError: the directory is not writable (the temp file is removed).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            produce(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _check_depth(depth: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.size == 0:
        raise ValueError(f"depth: expected a non-empty (H, W) array, got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth: expected a float array, got {depth.dtype}")
    return depth


def encode_depth_u16(depth: np.ndarray, is_metric: bool) -> tuple[np.ndarray, dict]:
    """Encode one (H, W) float depth map as uint16 (see the module docstring).

    Returns:
        (values (H, W) uint16, meta) with meta keys ``encoding`` (str), ``min``, ``max``
        (float, depth units; NaN when no pixel is valid) and ``scale`` (depth units per
        count).

    Raises:
        ValueError: not a non-empty 2-D float array.
    """
    depth = _check_depth(depth).astype(np.float64)
    if is_metric:
        valid = np.isfinite(depth) & (depth > 0)
        values = np.zeros(depth.shape, np.uint16)
        values[valid] = np.clip(np.round(depth[valid] / METRIC_SCALE), 1, 65535).astype(np.uint16)
        lo = float(depth[valid].min()) if valid.any() else float("nan")
        hi = float(depth[valid].max()) if valid.any() else float("nan")
        return values, {"encoding": "metric_mm", "min": lo, "max": hi, "scale": METRIC_SCALE}
    valid = np.isfinite(depth)
    values = np.zeros(depth.shape, np.uint16)
    if not valid.any():
        return values, {"encoding": "relative_minmax", "min": float("nan"), "max": float("nan"), "scale": 0.0}
    lo, hi = float(depth[valid].min()), float(depth[valid].max())
    span = hi - lo
    if span > 0:
        values[valid] = np.round((depth[valid] - lo) / span * 65535.0).astype(np.uint16)
    return values, {"encoding": "relative_minmax", "min": lo, "max": hi, "scale": span / 65535.0}


def decode_depth_u16(values: np.ndarray, meta: dict) -> np.ndarray:
    """Inverse of :func:`encode_depth_u16` (up to rounding): (H, W) float32 depth;
    invalid metric pixels (0) become NaN."""
    values = np.asarray(values).astype(np.float64)
    if meta["encoding"] == "metric_mm":
        depth = values * meta["scale"]
        depth[values == 0] = np.nan
        return depth.astype(np.float32)
    return (meta["min"] + values * meta["scale"]).astype(np.float32)


def _colormap(name: str) -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("colorized depth needs matplotlib: pip install matplotlib") from exc
    try:
        return matplotlib.colormaps[name]
    except KeyError as exc:
        raise ValueError(
            f"unknown colormap {name!r}; e.g. turbo, Spectral, viridis, magma, inferno, gray"
        ) from exc


def colorize_depth(depth: np.ndarray, cmap: str = "turbo", percentile: float = 2.0) -> np.ndarray:
    """Colorize one (H, W) depth map: (H, W, 3) uint8 RGB.

    Inverse depth of the valid (finite, > 0) pixels is normalized between its
    ``percentile`` and ``100 - percentile`` percentiles (ref:
    depth_anything_3/utils/visualize.py, ``visualize_depth``) and mapped through the
    matplotlib colormap ``cmap`` with near pixels at its high end; invalid pixels are black.

    Raises:
        ValueError: bad depth array, unknown colormap or percentile outside [0, 50).
        ImportError: matplotlib is not installed.
    """
    depth = _check_depth(depth)
    if not 0.0 <= percentile < 50.0:
        raise ValueError(f"percentile: expected a value in [0, 50), got {percentile}")
    colormap = _colormap(cmap)
    valid = np.isfinite(depth) & (depth > 0)
    disp = np.zeros(depth.shape, np.float64)
    disp[valid] = 1.0 / depth[valid]
    if valid.sum() > 10:
        lo, hi = np.percentile(disp[valid], [percentile, 100.0 - percentile])
    else:
        lo = hi = 0.0
    if hi <= lo:
        lo, hi = lo - 1e-6, hi + 1e-6
    norm = np.clip((disp - lo) / (hi - lo), 0.0, 1.0)
    rgb = colormap(norm, bytes=True)[..., :3]
    rgb[~valid] = 0
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def write_depth_png16(path: PathLike, depth: np.ndarray, is_metric: bool) -> dict:
    """Write ``depth`` (H, W) as a 16-bit grayscale PNG; return the encoding meta
    (see :func:`encode_depth_u16`).

    Raises:
        ValueError: bad depth array. OSError: write failure.
    """
    from PIL import Image, PngImagePlugin

    values, meta = encode_depth_u16(depth, is_metric)
    info = PngImagePlugin.PngInfo()
    info.add_text("depth_encoding", meta["encoding"])
    info.add_text("depth_min", repr(meta["min"]))
    info.add_text("depth_max", repr(meta["max"]))
    info.add_text("depth_scale", repr(meta["scale"]))
    img = Image.fromarray(values)  # uint16 (H, W) -> mode I;16
    atomic_write_bytes(path, lambda f: img.save(f, format="PNG", pnginfo=info))
    return meta


def write_depth_vis(path: PathLike, depth: np.ndarray, cmap: str = "turbo") -> None:
    """Write the colorized depth (see :func:`colorize_depth`) as an 8-bit RGB PNG."""
    from PIL import Image

    img = Image.fromarray(colorize_depth(depth, cmap))
    atomic_write_bytes(path, lambda f: img.save(f, format="PNG"))


def write_npz(path: PathLike, **arrays: Optional[np.ndarray]) -> None:
    """Write the given arrays (None values skipped) to a compressed NPZ, atomically."""
    data = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **data))


def export_view(prediction: Any, index: int, out_dir: PathLike, stem: str, *,
                cmap: Optional[str] = "turbo") -> dict:
    """Write view ``index`` of a :class:`~depth_anything_cpp.Prediction` to ``out_dir``:
    ``<stem>_depth.png`` (16-bit), ``<stem>_depth_vis.png`` (colorized, skipped when
    ``cmap`` is None) and ``<stem>.npz`` with ``depth`` (H, W) float32, ``conf`` (H, W),
    ``extrinsics`` (3, 4), ``intrinsics`` (3, 3), ``processed_image`` (H, W, 3) uint8,
    ``sky`` (H, W) bool if any, ``is_metric`` and ``depth_png_encoding``/``_min``/``_max``/
    ``_scale`` describing the PNG. Returns ``{"depth_png", "depth_vis", "npz"}`` -> Path.

    Raises:
        ValueError: bad index or arrays. OSError: write failure.
    """
    n = prediction.depth.shape[0]
    if not 0 <= index < n:
        raise ValueError(f"index {index} out of range for {n} views")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    depth = prediction.depth[index]

    def pick(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
        return None if a is None else a[index]

    paths = {"depth_png": out / f"{stem}_depth.png", "npz": out / f"{stem}.npz"}
    meta = write_depth_png16(paths["depth_png"], depth, bool(prediction.is_metric))
    if cmap is not None:
        paths["depth_vis"] = out / f"{stem}_depth_vis.png"
        write_depth_vis(paths["depth_vis"], depth, cmap)
    write_npz(
        paths["npz"],
        depth=depth,
        conf=pick(prediction.conf),
        extrinsics=pick(prediction.extrinsics),
        intrinsics=pick(prediction.intrinsics),
        processed_image=pick(prediction.processed_images),
        sky=pick(prediction.sky),
        is_metric=np.array(bool(prediction.is_metric)),
        depth_png_encoding=np.array(meta["encoding"]),
        depth_png_min=np.array(meta["min"]),
        depth_png_max=np.array(meta["max"]),
        depth_png_scale=np.array(meta["scale"]),
    )
    return paths
