"""In-memory encodings of predictions for the HTTP responses (the files of
:mod:`depth_anything_cpp.exports`, as bytes)."""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import exports

_PIL_FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png16(values: np.ndarray, meta: dict) -> bytes:
    """A 16-bit grayscale PNG with the ``depth_*`` text chunks of
    :func:`exports.write_depth_png16` (decodable by :func:`exports.read_depth_png16`)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("depth_encoding", meta["encoding"])
    for key in ("min", "max", "scale"):
        info.add_text(f"depth_{key}", repr(meta[key]))
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def rgb_image(rgb: np.ndarray, output_format: str, quality: int) -> tuple[bytes, str]:
    """(encoded bytes, MIME type) of an (H, W, 3) uint8 image."""
    from PIL import Image

    fmt, mime = _PIL_FORMATS[output_format]
    buf = io.BytesIO()
    kwargs = {} if fmt == "PNG" else {"quality": int(quality)}
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    return buf.getvalue(), mime


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an (h, w) float map to (height, width) float32 (identity if equal)."""
    if depth.shape == (height, width):
        return np.asarray(depth, np.float32)
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(depth, np.float32), mode="F")
    return np.asarray(img.resize((int(width), int(height)), Image.BILINEAR), np.float32)


def normals_rgb(depth: np.ndarray) -> np.ndarray:
    """Surface normals from the depth gradient, ``n = normalize(-dz/dx, -dz/dy, 1)`` per
    pixel, as RGB ``(n + 1) / 2 * 255`` (H, W, 3) uint8 (camera-facing = (128, 128, 255))."""
    z = np.nan_to_num(np.asarray(depth, np.float64))
    dzdy, dzdx = np.gradient(z)
    scale = max(float(np.median(np.abs(z))), 1e-12)  # unitless gradients for any depth scale
    n = np.stack([-dzdx / scale * z.shape[1], -dzdy / scale * z.shape[1], np.ones_like(z)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return np.round((n + 1.0) * 0.5 * 255.0).astype(np.uint8)


def npz(**arrays: Optional[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return buf.getvalue()


def glb(prediction: Any, num_max_points: int) -> bytes:
    """The GLB scene (points + cameras) of :func:`exports.write_glb`, as bytes."""
    with tempfile.TemporaryDirectory(prefix="da3-glb-") as tmp:
        path = Path(tmp) / "scene.glb"
        exports.write_glb(path, prediction, num_max_points=int(num_max_points))
        return path.read_bytes()
