"""Depth maps as 16-bit and 8-bit PNG files (the encodings are described in
:mod:`depth_anything_cpp.exports`)."""

from __future__ import annotations

import numpy as np

from .files import PathLike, atomic_write_bytes, write_image

METRIC_SCALE = 1e-3  # metres per unit of the metric 16-bit encoding


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


def encode_disparity_u16(depth: np.ndarray) -> tuple[np.ndarray, dict]:
    """Encode the disparity ``1 / depth`` of one (H, W) depth map as uint16:
    ``value = round(d / d_max * 65535)`` over the valid pixels (finite depth > 0), 0 for
    the others. Returns (values, meta) with ``encoding = "disparity_linear"``, ``min`` /
    ``max`` (disparity range, NaN when no pixel is valid) and ``scale = d_max / 65535``.

    Raises:
        ValueError: not a non-empty 2-D float array.
    """
    depth = _check_depth(depth).astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    values = np.zeros(depth.shape, np.uint16)
    if not valid.any():
        return values, {"encoding": "disparity_linear", "min": float("nan"), "max": float("nan"), "scale": 0.0}
    disp = 1.0 / depth[valid]
    hi = float(disp.max())
    if not np.isfinite(hi) or hi <= 0:  # subnormal depth: 1/depth overflows
        raise ValueError("depth: values too close to 0 to encode their inverse")
    values[valid] = np.clip(np.round(disp / hi * 65535.0), 0, 65535).astype(np.uint16)
    return values, {"encoding": "disparity_linear", "min": float(disp.min()), "max": hi,
                    "scale": hi / 65535.0}


def decode_depth_u16(values: np.ndarray, meta: dict) -> np.ndarray:
    """Inverse of :func:`encode_depth_u16` (up to rounding): (H, W) float32 depth;
    invalid metric pixels (0) become NaN. With ``meta["encoding"] == "disparity_linear"``
    (:func:`encode_disparity_u16`) it returns the disparity, 0 where invalid."""
    values = np.asarray(values).astype(np.float64)
    if meta["encoding"] == "metric_mm":
        depth = values * meta["scale"]
        depth[values == 0] = np.nan
        return depth.astype(np.float32)
    if meta["encoding"] == "disparity_linear":
        return (values * meta["scale"]).astype(np.float32)
    return (meta["min"] + values * meta["scale"]).astype(np.float32)


def read_depth_png16(path: PathLike) -> tuple[np.ndarray, dict]:
    """Read a 16-bit PNG written by :func:`write_depth_png16` or
    :func:`write_disparity_png16` and decode it with its text chunks.

    Returns:
        (decoded (H, W) float32 array, meta dict).

    Raises:
        ValueError: not a 16-bit PNG with our ``depth_*`` text chunks.
        OSError: the file cannot be read.
    """
    from PIL import Image

    with Image.open(path) as img:
        text = dict(getattr(img, "text", {}))
        values = np.asarray(img)
    if values.dtype not in (np.uint16, np.int32) or "depth_encoding" not in text:
        raise ValueError(f"{path}: not a 16-bit depth PNG written by depth_anything_cpp")
    meta = {"encoding": text["depth_encoding"]}
    for key in ("min", "max", "scale"):
        meta[key] = float(text[f"depth_{key}"])
    return decode_depth_u16(values, meta), meta


def _write_png16(path: PathLike, values: np.ndarray, meta: dict) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("depth_encoding", meta["encoding"])
    info.add_text("depth_min", repr(meta["min"]))
    info.add_text("depth_max", repr(meta["max"]))
    info.add_text("depth_scale", repr(meta["scale"]))
    img = Image.fromarray(values)  # uint16 (H, W) -> mode I;16
    atomic_write_bytes(path, lambda f: img.save(f, format="PNG", pnginfo=info))


def write_depth_png16(path: PathLike, depth: np.ndarray, is_metric: bool) -> dict:
    """Write ``depth`` (H, W) as a 16-bit grayscale PNG; return the encoding meta
    (see :func:`encode_depth_u16`).

    Raises:
        ValueError: bad depth array. OSError: write failure.
    """
    values, meta = encode_depth_u16(depth, is_metric)
    _write_png16(path, values, meta)
    return meta


def write_disparity_png16(path: PathLike, depth: np.ndarray) -> dict:
    """Write the disparity ``1 / depth`` of ``depth`` (H, W) as a 16-bit PNG; return the
    encoding meta (see :func:`encode_disparity_u16`).

    Raises:
        ValueError: bad depth array. OSError: write failure.
    """
    values, meta = encode_disparity_u16(depth)
    _write_png16(path, values, meta)
    return meta


def depth_to_gray8(depth: np.ndarray, invert: bool = False) -> np.ndarray:
    """Min-max 8-bit grayscale of one (H, W) depth map: ``round((d - min) / (max - min) *
    255)`` over the finite pixels (far = white), or near = white with ``invert``; invalid
    pixels 0. Returns (H, W) uint8.

    Raises:
        ValueError: not a non-empty 2-D float array.
    """
    depth = _check_depth(depth).astype(np.float64)
    valid = np.isfinite(depth)
    out = np.zeros(depth.shape, np.uint8)
    if valid.any():
        lo, hi = depth[valid].min(), depth[valid].max()
        norm = (depth[valid] - lo) / (hi - lo) if hi > lo else np.zeros(int(valid.sum()))
        out[valid] = np.round((1.0 - norm if invert else norm) * 255.0).astype(np.uint8)
    return out


def write_depth_png8(path: PathLike, depth: np.ndarray, invert: bool = False) -> None:
    """Write :func:`depth_to_gray8` of ``depth`` as an 8-bit grayscale PNG.

    Raises:
        ValueError: bad depth array. OSError: write failure.
    """
    write_image(path, depth_to_gray8(depth, invert))

