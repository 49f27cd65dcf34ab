"""Writing predictions to disk.

:func:`export` is the official ``export_dir`` / ``export_format`` surface (ref:
depth_anything_3/utils/export/__init__.py): ``export_format`` names one format or several
joined by ``-`` (``"mini_npz-glb-colmap"``), all validated before anything is written.

=============  ===============================================================================
format         files under ``export_dir``
=============  ===============================================================================
``mini_npz``   ``exports/mini_npz/results.npz``: depth (rounded to 8 decimals), conf (2),
               extrinsics, intrinsics (ref: utils/export/npz.py)
``npz``        ``exports/npz/results.npz``: image (N, H, W, 3) uint8, depth (6 decimals),
               conf (2), extrinsics, intrinsics, and ``sky`` (N, H, W) bool when the model
               predicts one (an addition to the official keys)
``glb``        ``scene.glb`` (points + camera frustums, aligned to the first camera, ref:
               utils/export/glb.py), plus ``depth_vis/*.jpg`` and ``scene.jpg`` (a copy of
               ``depth_vis/0000.jpg``) unless ``export_depth_vis=False``
``colmap``     ``cameras.bin``, ``images.bin``, ``points3D.bin`` (``.txt`` with
               ``binary=False``) directly in ``export_dir``, as the official exporter
               (ref: utils/export/colmap.py): PINHOLE cameras at the original image sizes
``depth_vis``  ``depth_vis/0000.jpg``...: processed image | colorized depth side by side
               (2W x H, JPEG quality 95; ref: utils/export/depth_vis.py)
``feat_vis``   ``feat_vis/feat_layer_<i>/000000.jpg``...: processed image | PCA of the
               features as RGB (:func:`features_to_rgb`), and ``feat_vis/feat_layer_<i>.mp4``
               (``fps``, with PyAV); needs ``export_feat_layers`` (ref: utils/export/feat_vis.py)
``depth``      ``depth/0000.png``...: 16-bit depth PNG (encoding below)
``disparity``  ``disparity/0000.png``...: 16-bit PNG of 1/depth (encoding below)
``ply``        ``scene.ply``: binary little-endian point cloud, float32 x y z + uchar
               red green blue, world frame, same filtering as ``glb``
=============  ===============================================================================

Per-format options are passed as ``export(..., glb={"show_cameras": False})`` (the official
``export_kwargs`` dict); unknown formats or options raise before anything is written.

16-bit depth PNG encoding (``depth`` format and ``<stem>_depth.png`` of the CLI):

- metric models (``is_metric``): ``value = round(depth_m * 1000)``, i.e. millimetres,
  clipped to [1, 65535] (65.535 m max); 0 = invalid (non-finite or <= 0).
- relative models: ``value = round((depth - min) / (max - min) * 65535)`` over the finite
  pixels; ``depth = min + value / 65535 * (max - min)``.

The PNG text chunks ``depth_encoding`` (``"metric_mm"`` or ``"relative_minmax"``),
``depth_min``, ``depth_max`` and ``depth_scale`` describe the encoding in the file itself;
:func:`read_depth_png16` decodes it. Disparity PNGs store ``value = round(d / d_max *
65535)`` with ``d = 1 / depth`` (0 = invalid) and the text chunks ``depth_encoding =
"disparity_linear"`` and ``depth_scale = d_max / 65535`` (1/depth units per count).

Colorized depth maps inverse depth between its 2nd and 98th percentiles (ref:
depth_anything_3/utils/visualize.py, ``visualize_depth``) through a matplotlib colormap.

All writers are atomic: each file is written as ``.<name>.<random>.tmp`` (created new, as
``tempfile.mkstemp`` does, so a file or link planted there is never followed) next to the
target and renamed over it, so an interrupted run never leaves a half-written file under the
final name; :func:`track_writes` lists the files written so a caller can remove an
incomplete set.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

__all__ = [
    "FORMATS",
    "parse_export_format",
    "check_options",
    "export",
    "encode_depth_u16",
    "decode_depth_u16",
    "read_depth_png16",
    "encode_disparity_u16",
    "colorize_depth",
    "write_depth_png16",
    "write_disparity_png16",
    "write_depth_vis",
    "write_image",
    "write_depth_png8",
    "depth_to_gray8",
    "depth_to_normals",
    "normals_to_rgb",
    "features_to_rgb",
    "view_summary",
    "write_npz",
    "write_ply",
    "write_glb",
    "export_view",
    "atomic_write_bytes",
    "track_writes",
]

PathLike = Union[str, "os.PathLike[str]"]
METRIC_SCALE = 1e-3  # metres per unit of the metric 16-bit encoding

#: Known ``export_format`` names (ours: depth, disparity, ply; the rest are official).
FORMATS = ("mini_npz", "npz", "glb", "colmap", "depth_vis", "feat_vis", "depth", "disparity", "ply")
#: Official format names this package does not write (they raise UnsupportedError).
UNPORTED_FORMATS = ("gs_ply", "gs_video")

# ------------------------------------------------------------------------ atomic writes
_tracking = threading.local()


@contextlib.contextmanager
def track_writes() -> Iterator[list]:
    """Collect the paths written by this thread's exporters inside the ``with`` block.

    Yields a list that grows with each completed file (``Path``); nested blocks all see
    the files. Used by the CLI to delete the outputs of an image interrupted halfway.
    """
    stack = getattr(_tracking, "stack", None)
    if stack is None:
        stack = _tracking.stack = []
    written: list = []
    stack.append(written)
    try:
        yield written
    finally:  # by identity: lists compare by value
        del stack[next(i for i, w in enumerate(stack) if w is written)]


def _record(path: Path) -> None:
    for written in getattr(_tracking, "stack", ()):
        written.append(path)


def atomic_write_bytes(path: PathLike, produce: Callable[[io.BufferedIOBase], None]) -> Path:
    """Write a file atomically: ``produce(f)`` writes into a temp file in the same
    directory, which then replaces ``path``. Returns ``path``.

    Raises:
        OSError: the directory is missing or not writable (the temp file is removed).
        whatever ``produce`` raises (the temp file is removed, ``path`` is untouched).
    """
    path = Path(path)
    # a new file of a random name (O_CREAT | O_EXCL, as mkstemp): never one planted there
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # the mode open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            fd = -1
            produce(f)
        os.replace(tmp, path)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:  # e.g. ENOSPC from a write: name the file
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _record(path)
    return path


def _read_umask() -> int:  # at import: os.umask() sets it, which is not thread-safe later
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


# ------------------------------------------------------------------------ depth encodings
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


# ------------------------------------------------------------------------ colour
def _colormap(name: str) -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("colorized depth needs matplotlib: pip install matplotlib") from exc
    try:
        return matplotlib.colormaps[name]
    except KeyError as exc:
        raise ValueError(
            f"unknown colormap {name!r}; e.g. turbo, viridis, magma, inferno, plasma, gray, Spectral"
        ) from exc


def colorize_depth(depth: np.ndarray, cmap: str = "turbo", percentile: float = 2.0,
                   invert: bool = False) -> np.ndarray:
    """Colorize one (H, W) depth map: (H, W, 3) uint8 RGB.

    Inverse depth of the valid (finite, > 0) pixels is normalized between its
    ``percentile`` and ``100 - percentile`` percentiles (ref:
    depth_anything_3/utils/visualize.py, ``visualize_depth``) and mapped through the
    matplotlib colormap ``cmap`` with near pixels at its high end, or at its low end with
    ``invert=True`` (the official ``visualize_depth`` is ``cmap="Spectral", invert=True``);
    invalid pixels are black.

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
    if invert:
        norm = 1.0 - norm
    rgb = colormap(norm, bytes=True)[..., :3]
    rgb[~valid] = 0
    return np.ascontiguousarray(rgb, dtype=np.uint8)


# ------------------------------------------------------------------------ single files
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


def write_depth_vis(path: PathLike, depth: np.ndarray, cmap: str = "turbo", *,
                    image: Optional[np.ndarray] = None, invert: bool = False,
                    percentile: float = 2.0, quality: int = 95) -> None:
    """Write the colorized depth (see :func:`colorize_depth`); with ``image`` (H, W, 3)
    uint8, the image and the colorized depth side by side (2W x H). The format follows
    the suffix (:func:`write_image`): ``.png``, ``.jpg``/``.jpeg`` or ``.webp``
    (``quality`` for the last two); another suffix raises ValueError.

    Raises:
        ValueError: bad arrays, colormap or percentile. OSError: write failure.
    """
    from PIL import Image

    rgb = colorize_depth(depth, cmap, percentile=percentile, invert=invert)
    if image is not None:
        image = np.asarray(image)
        if image.shape != rgb.shape or image.dtype != np.uint8:
            raise ValueError(f"image: expected a uint8 array of shape {rgb.shape}, got "
                             f"{image.dtype}{image.shape}")
        rgb = np.concatenate([image, rgb], axis=1)
    write_image(path, rgb, quality=quality)


#: image file suffix -> Pillow format of the visualisations (:func:`write_image`)
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def write_image(path: PathLike, pixels: np.ndarray, *, quality: int = 95) -> None:
    """Write an (H, W, 3) or (H, W) uint8 image in the format its suffix names: ``.png``,
    ``.jpg``/``.jpeg`` (``quality`` 1..100) or ``.webp`` (``quality`` 1..100, lossy).

    Raises:
        ValueError: another suffix, a bad array or quality. OSError: write failure.
    """
    from PIL import Image

    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported image suffix; use one of {', '.join(IMAGE_FORMATS)}")
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"image: expected a uint8 (H, W) or (H, W, 3) array, got {pixels.dtype}{pixels.shape}")
    if isinstance(quality, bool) or not 1 <= int(quality) <= 100:
        raise ValueError(f"quality: expected 1..100, got {quality!r}")
    img = Image.fromarray(pixels)
    opts = {} if fmt == "PNG" else {"quality": int(quality)}
    atomic_write_bytes(path, lambda f: img.save(f, format=fmt, **opts))


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


def depth_to_normals(depth: np.ndarray, intrinsics: Optional[np.ndarray] = None) -> np.ndarray:
    """Surface normals of one (H, W) depth map in the camera frame (OpenCV axes: x right,
    y down, z forward): the cross product of the back-projected points' central
    differences along the rows and columns, oriented towards the camera (``n . P <= 0``
    for the back-projected point P).

    Args:
        depth: (H, W) float depth (any unit). intrinsics: (3, 3) pixel intrinsics at H x W;
            None assumes a pinhole with ``fx = fy = max(H, W)`` and the centre as principal point.

    Returns:
        (H, W, 3) float32 unit vectors; 0 where the depth or a neighbour is not finite and > 0.

    Raises:
        ValueError: bad depth or intrinsics arrays.
    """
    depth = _check_depth(depth).astype(np.float64)
    h, w = depth.shape
    if intrinsics is None:
        f = float(max(h, w))
        k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    else:
        k = np.asarray(intrinsics, dtype=np.float64)
        if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ValueError(f"intrinsics: expected a finite (3, 3) matrix with fx, fy > 0, got {k.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    d = np.where(valid, depth, 0.0)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pts = np.stack([(u - k[0, 2]) / k[0, 0] * d, (v - k[1, 2]) / k[1, 1] * d, d], axis=-1)
    du = np.gradient(pts, axis=1) if w > 1 else np.zeros_like(pts)
    dv = np.gradient(pts, axis=0) if h > 1 else np.zeros_like(pts)
    n = np.cross(dv, du)  # fronto-parallel plane: (0, 0, -1), towards the camera
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    ok = valid & (norm[..., 0] > 0)
    # a pixel whose neighbours are invalid gets no normal
    pad = np.pad(valid, 1, mode="edge")
    ok &= pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    n = n / np.where(norm > 0, norm, 1.0)
    n[np.sum(n * pts, axis=-1) > 0] *= -1.0  # oriented towards the camera (n . P <= 0)
    out = np.zeros((h, w, 3), np.float32)
    out[ok] = n[ok].astype(np.float32)
    return out


def normals_to_rgb(normals: np.ndarray) -> np.ndarray:
    """RGB encoding of (H, W, 3) camera-frame normals (OpenCV axes) in the usual normal-map
    convention (x right, y up, z towards the viewer): ``rgb = round((n' + 1) / 2 * 255)``
    with ``n' = (n_x, -n_y, -n_z)``; a surface facing the camera is (128, 128, 255), pixels
    without a normal are black. Returns (H, W, 3) uint8.

    Raises:
        ValueError: not an (H, W, 3) array.
    """
    normals = np.asarray(normals, dtype=np.float64)
    if normals.ndim != 3 or normals.shape[2] != 3:
        raise ValueError(f"normals: expected an (H, W, 3) array, got {normals.shape}")
    gl = normals * np.array([1.0, -1.0, -1.0])
    rgb = np.round((np.clip(gl, -1.0, 1.0) + 1.0) / 2.0 * 255.0).astype(np.uint8)
    rgb[~np.any(normals != 0, axis=-1)] = 0
    return rgb


def write_npz(path: PathLike, **arrays: Optional[np.ndarray]) -> None:
    """Write the given arrays (None values skipped) to a compressed NPZ, atomically."""
    data = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **data))


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


# ------------------------------------------------------------------------ points, GLB, COLMAP
_POINT_OPTIONS = ("conf_thresh", "conf_thresh_percentile", "ensure_thresh_percentile",
                  "num_max_points", "remove_sky", "seed", "filter_black_bg", "filter_white_bg",
                  "sky_depth_def")


def _points(prediction: Any, options: dict) -> dict:
    return prediction.points(**options)


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
    from .api import get_core

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


# ------------------------------------------------------------------------ export()
def parse_export_format(export_format: Union[str, Sequence[str]]) -> list[str]:
    """Split ``"mini_npz-glb"`` (or take a list of names) into known format names, in the
    given order, duplicates removed.

    Raises:
        ValueError: empty, or a name not in :data:`FORMATS` (the message lists them).
        UnsupportedError: an official format that is not ported (:data:`UNPORTED_FORMATS`).
        TypeError: not a str or a sequence of str.
    """
    if isinstance(export_format, str):
        names = export_format.split("-")
    elif isinstance(export_format, (list, tuple)) and all(isinstance(s, str) for s in export_format):
        names = list(export_format)
    else:
        raise TypeError(f"export_format: expected a str like 'mini_npz-glb', got {type(export_format).__name__}")
    names = [s.strip() for s in names]
    unported = [s for s in names if s in UNPORTED_FORMATS]
    if unported:
        from .errors import UnsupportedError

        raise UnsupportedError(
            f"export_format {export_format!r}: {', '.join(map(repr, unported))} not ported to "
            f"depth-anything-cpp (the 3D Gaussian head); available: {', '.join(FORMATS)}")
    unknown = [s for s in names if s not in FORMATS]
    if unknown or not names:
        raise ValueError(
            f"export_format {export_format!r}: unknown format(s) {', '.join(map(repr, unknown)) or '(empty)'}; "
            f"valid formats: {', '.join(FORMATS)} (join several with '-')"
        )
    return list(dict.fromkeys(names))


# Options each format accepts (the official names where there is one).
_OPTIONS: dict[str, dict[str, Any]] = {
    "mini_npz": {},
    "npz": {},
    "glb": {"conf_thresh": 1.05, "conf_thresh_percentile": 40.0, "ensure_thresh_percentile": 90.0,
            "num_max_points": 1_000_000, "remove_sky": True, "seed": 0, "filter_black_bg": False,
            "filter_white_bg": False, "sky_depth_def": 98.0, "show_cameras": True, "camera_size": 0.03,
            "export_depth_vis": True},
    # official COLMAP export: threshold = percentile(conf, 40), no cap, sky kept
    "colmap": {"conf_thresh_percentile": 40.0, "num_max_points": 0, "remove_sky": False,
               "binary": True, "image_paths": None, "process_res_method": "upper_bound_resize"},
    # Spectral_r with near at the high end = the official look (Spectral, near = low end)
    "depth_vis": {"cmap": "Spectral_r", "invert": False, "percentile": 2.0, "quality": 95},
    "feat_vis": {"fps": 15, "clip_percent": 10.0, "video": True},
    "depth": {},
    "disparity": {},
    "ply": {"conf_thresh": 1.05, "conf_thresh_percentile": 40.0, "ensure_thresh_percentile": 90.0,
            "num_max_points": 1_000_000, "remove_sky": True, "seed": 0, "filter_black_bg": False,
            "filter_white_bg": False, "sky_depth_def": 98.0},
}


def _resolve_options(formats: list[str], kwargs: dict) -> dict[str, dict]:
    stray = [k for k in kwargs if k not in FORMATS]
    if stray:
        raise TypeError(f"export: unexpected keyword(s) {', '.join(stray)}; per-format options go "
                        f"in a dict named after the format (e.g. glb={{'show_cameras': False}})")
    resolved = {}
    for fmt in formats:
        given = kwargs.get(fmt) or {}
        if not isinstance(given, dict):
            raise TypeError(f"export: options for {fmt!r} must be a dict, got {type(given).__name__}")
        bad = [k for k in given if k not in _OPTIONS[fmt]]
        if bad:
            accepted = ", ".join(_OPTIONS[fmt]) or "none"
            raise TypeError(f"export: unknown option(s) {', '.join(bad)} for {fmt!r}; accepted: {accepted}")
        resolved[fmt] = {**_OPTIONS[fmt], **given}
    return resolved


def _check_option_values(options: dict[str, dict]) -> None:
    fv = options.get("feat_vis")
    if fv is not None:
        if isinstance(fv["fps"], bool) or not float(fv["fps"]) > 0:
            raise ValueError(f"feat_vis fps: expected a value > 0, got {fv['fps']!r}")
        if not 0.0 <= float(fv["clip_percent"]) < 50.0:
            raise ValueError(f"feat_vis clip_percent: expected a value in [0, 50), got {fv['clip_percent']}")
    vis = options.get("depth_vis")
    if vis is not None:
        _colormap(vis["cmap"])
        if not 0.0 <= float(vis["percentile"]) < 50.0:
            raise ValueError(f"depth_vis percentile: expected a value in [0, 50), got {vis['percentile']}")
        if isinstance(vis["quality"], bool) or not 1 <= int(vis["quality"]) <= 100:
            raise ValueError(f"depth_vis quality: expected 1..100, got {vis['quality']}")
    for fmt in ("glb", "ply", "colmap"):
        opts = options.get(fmt)
        if opts is None:
            continue
        check_count(f"{fmt} num_max_points", opts["num_max_points"], "(0 = no limit)")
        if "seed" in opts:
            check_count(f"{fmt} seed", opts["seed"], "", hi=2**64 - 1)
        for key in ("conf_thresh_percentile", "ensure_thresh_percentile"):
            if key in opts and not 0.0 <= _finite(f"{fmt} {key}", opts[key]) <= 100.0:
                raise ValueError(f"{fmt} {key}: expected a value in [0, 100], got {opts[key]}")
        for key in ("conf_thresh", "sky_thresh"):
            if key in opts:
                _finite(f"{fmt} {key}", opts[key])
    if "glb" in options and not _finite("glb camera_size", options["glb"]["camera_size"]) > 0:
        raise ValueError(f"glb camera_size: expected a finite value > 0, got {options['glb']['camera_size']}")


def _finite(name: str, value: Any) -> float:
    """float(value), which must be a finite real number (ValueError naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


def check_count(name: str, value: Any, note: str = "", hi: int = 2**63 - 1) -> int:
    """int(value) for an integer count in [0, hi] (an integral float is accepted); raises
    ValueError naming ``name`` otherwise (NaN, inf, 1e300, fractions, bools, strings)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if ok and isinstance(value, (float, np.floating)):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    if not ok or not 0 <= int(value) <= hi:
        raise ValueError(f"{name}: expected an integer in [0, {hi}]{' ' + note if note else ''}, got {value!r}")
    return int(value)


def check_options(formats: Union[str, Sequence[str]], kwargs: dict) -> dict[str, dict]:
    """Validate ``export_format`` and the per-format option dicts ``kwargs`` as
    :func:`export` does, without a prediction; return the resolved options per format.

    Raises:
        ValueError, TypeError: as :func:`export`.
    """
    options = _resolve_options(parse_export_format(formats), kwargs)
    _check_option_values(options)
    return options


def _prepare_dir(export_dir: PathLike) -> Path:
    out = Path(export_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"export_dir {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create export directory ({exc.strerror})", str(out)) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"export_dir {out} is not writable")
    return out


def _subdir(out: Path, *parts: str) -> Path:
    d = out.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _check_prediction(prediction: Any, formats: list[str]) -> None:
    depth = getattr(prediction, "depth", None)
    if depth is None or np.ndim(depth) != 3 or depth.shape[0] == 0:
        raise ValueError("prediction.depth: expected an (N, H, W) array")
    needs_images = {"npz", "depth_vis", "glb", "colmap", "ply"}
    if needs_images & set(formats) and getattr(prediction, "processed_images", None) is None:
        raise ValueError(f"export {sorted(needs_images & set(formats))}: prediction.processed_images is required")
    for fmt in ("glb", "colmap", "ply"):
        if fmt in formats:
            _require_cameras(prediction, f"{fmt!r} export")
    if "feat_vis" in formats:
        if getattr(prediction, "processed_images", None) is None:
            raise ValueError("export 'feat_vis': prediction.processed_images is required")
        if not any(k.startswith("feat_layer_") for k in getattr(prediction, "aux", {})):
            raise ValueError("export 'feat_vis' needs features: pass export_feat_layers=[...] to inference")


def export(prediction: Any, export_format: Union[str, Sequence[str]], export_dir: PathLike,
           image_paths: Optional[Sequence[Any]] = None, **kwargs: Any) -> dict[str, list[Path]]:
    """Write ``prediction`` to ``export_dir`` in one or several formats (see the module
    docstring for the files of each format).

    Args:
        prediction: a :class:`~depth_anything_cpp.Prediction`.
        export_format: one name of :data:`FORMATS` or several joined by ``-``.
        export_dir: output directory, created (with parents) if missing.
        image_paths: the N input paths, used by ``colmap`` for image names (basenames) and,
            when the prediction does not record them, original sizes. Default: the paths
            recorded by :meth:`DepthAnything3.inference`; views given as arrays are named
            ``0000.png``, ``0001.png``...
        **kwargs: per-format option dicts, e.g. ``glb={"num_max_points": 200_000}``,
            ``depth_vis={"cmap": "turbo", "invert": False}``, ``colmap={"binary": False}``.
            glb/ply options: those of :meth:`Prediction.points` plus (glb) ``show_cameras``,
            ``camera_size``, ``export_depth_vis``.

    Returns:
        ``{format: [paths written]}``.

    Raises:
        ValueError: unknown format (lists the valid ones), missing prediction fields for a
            format (e.g. cameras for glb/colmap/ply), bad option values.
        TypeError: unknown option names.
        NotADirectoryError, PermissionError, OSError: ``export_dir`` is a file, not
            writable, or a write fails. Everything above except write failures is checked
            before any file is written; each file is written atomically.
    """
    formats = parse_export_format(export_format)
    options = _resolve_options(formats, kwargs)
    _check_prediction(prediction, formats)
    colmap_views = None
    if "colmap" in formats:
        method = options["colmap"]["process_res_method"]
        if not str(method).endswith("resize"):
            raise ValueError(f"COLMAP export supports the *_resize process_res_method only, got {method!r}")
        paths = options["colmap"]["image_paths"] if options["colmap"]["image_paths"] is not None else image_paths
        colmap_views = _colmap_views(prediction, paths)
    _check_option_values(options)
    out = _prepare_dir(export_dir)

    written: dict[str, list[Path]] = {}
    vis_done: list[Path] = []
    for fmt in formats:
        opts = options[fmt]
        with track_writes() as files:
            if fmt == "mini_npz":
                _export_npz(prediction, out, mini=True)
            elif fmt == "npz":
                _export_npz(prediction, out, mini=False)
            elif fmt == "depth_vis":
                if not vis_done:
                    vis_done = _export_depth_vis(prediction, out, **opts)
                else:
                    files.extend(vis_done)
            elif fmt == "depth":
                d = _subdir(out, "depth")
                for i in range(prediction.depth.shape[0]):
                    write_depth_png16(d / f"{i:04d}.png", prediction.depth[i], bool(prediction.is_metric))
            elif fmt == "disparity":
                d = _subdir(out, "disparity")
                for i in range(prediction.depth.shape[0]):
                    write_disparity_png16(d / f"{i:04d}.png", prediction.depth[i])
            elif fmt == "ply":
                pts = _points(prediction, opts)
                write_ply(out / "scene.ply", pts["xyz"], pts["rgb"])
            elif fmt == "glb":
                glb = dict(opts)
                show, size, vis = glb.pop("show_cameras"), glb.pop("camera_size"), glb.pop("export_depth_vis")
                write_glb(out / "scene.glb", prediction, points=_points(prediction, glb),
                          show_cameras=show, camera_size=size)
                if vis:  # as upstream: depth_vis/ and scene.jpg = depth_vis/0000.jpg
                    if not vis_done:
                        vis_done = _export_depth_vis(prediction, out, **_OPTIONS["depth_vis"])
                    first = out / "depth_vis" / "0000.jpg"
                    atomic_write_bytes(out / "scene.jpg", lambda f: f.write(first.read_bytes()))
            elif fmt == "colmap":
                _export_colmap(prediction, out, colmap_views, **opts)
            elif fmt == "feat_vis":
                _export_feat_vis(prediction, out, **opts)
        written[fmt] = list(dict.fromkeys(files))
    return written


def _export_npz(prediction: Any, out: Path, *, mini: bool) -> None:
    # ref: depth_anything_3/utils/export/npz.py (keys, rounding, paths)
    d = _subdir(out, "exports", "mini_npz" if mini else "npz")
    arrays: dict[str, Optional[np.ndarray]] = {}
    if not mini:
        arrays["image"] = prediction.processed_images
    arrays["depth"] = np.round(prediction.depth, 8 if mini else 6)
    arrays["conf"] = None if prediction.conf is None else np.round(prediction.conf, 2)
    arrays["extrinsics"] = prediction.extrinsics
    arrays["intrinsics"] = prediction.intrinsics
    if not mini:
        arrays["sky"] = prediction.sky
    write_npz(d / "results.npz", **arrays)


def _export_depth_vis(prediction: Any, out: Path, *, cmap: str, invert: bool, percentile: float,
                      quality: int) -> list[Path]:
    # ref: depth_anything_3/utils/export/depth_vis.py (image | depth, depth_vis/%04d.jpg)
    d = _subdir(out, "depth_vis")
    paths = []
    for i in range(prediction.depth.shape[0]):
        path = d / f"{i:04d}.jpg"
        write_depth_vis(path, prediction.depth[i], cmap, image=prediction.processed_images[i],
                        invert=invert, percentile=percentile, quality=quality)
        paths.append(path)
    return paths


def features_to_rgb(features: np.ndarray, clip_percent: float = 10.0) -> np.ndarray:
    """PCA of (N, h, w, C) features to (N, h, w, 3) uint8 RGB, one basis for all views
    (ref: depth_anything_3/utils/pca_utils.py PCARGBVisualizer with basis_mode="fixed",
    percentile_mode="global"): the first three principal axes of the centred features
    (exact SVD where upstream uses the randomized ``torch.pca_lowrank``; each axis's sign
    set so its largest component is positive), each clipped to its ``clip_percent`` ..
    ``100 - clip_percent`` quantiles and scaled to 0..255 (truncated, as upstream).

    Raises:
        ValueError: not a 4-D array, or clip_percent outside [0, 50).
    """
    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 4:
        raise ValueError(f"features: expected an (N, h, w, C) array, got {f.shape}")
    if not 0.0 <= clip_percent < 50.0:
        raise ValueError(f"clip_percent: expected a value in [0, 50), got {clip_percent}")
    x = np.nan_to_num(f.reshape(-1, f.shape[-1]), nan=0.0, posinf=1e6, neginf=-1e6).astype(np.float64)
    xc = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    v3 = vt[:3].T
    v3 = v3 * np.sign(v3[np.abs(v3).argmax(axis=0), np.arange(v3.shape[1])])
    pcs = xc @ v3
    lo, hi = np.quantile(pcs, [clip_percent / 100.0, 1.0 - clip_percent / 100.0], axis=0)
    pcs = (np.clip(pcs, lo, hi) - lo) / np.maximum(hi - lo, 1e-4)
    rgb = (np.clip(pcs, 0.0, 1.0) * 255).astype(np.uint8)
    if rgb.shape[1] < 3:  # fewer than 3 channels of features
        rgb = np.pad(rgb, ((0, 0), (0, 3 - rgb.shape[1])))
    return rgb.reshape(*f.shape[:3], 3)


def _export_feat_vis(prediction: Any, out: Path, *, fps: float, clip_percent: float, video: bool) -> None:
    # ref: depth_anything_3/utils/export/feat_vis.py (feat_vis/<key>/%06d.jpg: image | PCA,
    # nearest-upsampled; <key>.mp4 at fps)
    images = prediction.processed_images
    for key in sorted(k for k in prediction.aux if k.startswith("feat_layer_")):
        rgb = features_to_rgb(prediction.aux[key], clip_percent)
        d = _subdir(out, "feat_vis", key)
        frames = []
        for i in range(rgb.shape[0]):
            img = images[i]
            sy, sx = img.shape[0] // rgb.shape[1], img.shape[1] // rgb.shape[2]
            vis = np.repeat(np.repeat(rgb[i], sy, axis=0), sx, axis=1)
            frame = np.concatenate([img, vis], axis=1)
            write_image(d / f"{i:06d}.jpg", frame, quality=95)
            frames.append(frame)
        if video:
            _write_video(out / "feat_vis" / f"{key}.mp4", frames, fps)


def _write_video(path: Path, frames: list, fps: float) -> None:
    """H.264 MP4 of uint8 RGB frames with PyAV; skipped (no file) when PyAV is missing."""
    try:
        import av
    except ImportError:
        return
    from fractions import Fraction

    def produce(f: io.BufferedIOBase) -> None:
        with av.open(f, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                                          rate=Fraction(fps).limit_denominator(1000))
            h, w = frames[0].shape[:2]
            stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
            for frame in frames:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: h - h % 2, : w - w % 2]), format="rgb24")
                container.mux(stream.encode(vf))
            container.mux(stream.encode())
    atomic_write_bytes(path, produce)


def _export_colmap(prediction: Any, out: Path, views: tuple[list, list], *, binary: bool,
                   image_paths: Any, process_res_method: str, **point_options: Any) -> None:
    from .api import get_core

    names, sizes = views
    pts = prediction.points(conf_thresh=0.0, ensure_thresh_percentile=100.0, **point_options)
    h, w = prediction.depth.shape[1:3]
    get_core().export_colmap(
        os.fspath(out), pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], _f32(prediction.extrinsics),
        _f32(prediction.intrinsics), (int(h), int(w)), sizes, names, binary=bool(binary))
    suffix = ".bin" if binary else ".txt"
    for name in ("cameras", "images", "points3D"):
        _record(out / f"{name}{suffix}")


# ------------------------------------------------------------------------ CLI per-view files
def view_summary(prediction: Any, index: int, *, seconds: Optional[float] = None,
                 original_size: bool = False) -> dict:
    """JSON-ready description of view ``index``: ``width``, ``height`` (input image),
    ``processed_width``, ``processed_height``, ``output_width``, ``output_height`` (of the
    written maps), ``depth_min``, ``depth_max``, ``depth_mean`` (finite pixels, null if
    none), ``is_metric`` (bool), ``depth_unit`` ("m" or "relative"), ``extrinsics`` (3x4
    list or null), ``intrinsics`` (3x3 list at the output size, or null), ``seconds``.

    Raises:
        ValueError: bad index; ``original_size`` on a prediction without original sizes.
    """
    n = prediction.depth.shape[0]
    if not 0 <= index < n:
        raise ValueError(f"index {index} out of range for {n} views")
    h, w = prediction.depth.shape[1:]
    sizes = getattr(prediction, "original_sizes", None)
    w0, h0 = sizes[index] if sizes else (None, None)
    intr = None if prediction.intrinsics is None else prediction.intrinsics[index]
    depth = prediction.depth[index]
    if original_size:
        full = prediction.at_original_size(index)
        depth, intr = full["depth"], full["intrinsics"]
    finite = depth[np.isfinite(depth)]

    def num(v: Any) -> Optional[float]:
        return None if v is None else float(v)
    return {
        "width": w0, "height": h0, "processed_width": int(w), "processed_height": int(h),
        "output_width": int(depth.shape[1]), "output_height": int(depth.shape[0]),
        "depth_min": num(finite.min()) if finite.size else None,
        "depth_max": num(finite.max()) if finite.size else None,
        "depth_mean": num(finite.mean(dtype=np.float64)) if finite.size else None,
        "is_metric": bool(prediction.is_metric), "depth_unit": "m" if prediction.is_metric else "relative",
        "extrinsics": None if prediction.extrinsics is None else np.asarray(prediction.extrinsics[index]).tolist(),
        "intrinsics": None if intr is None else np.asarray(intr).tolist(),
        "seconds": num(seconds),
    }


def export_view(prediction: Any, index: int, out_dir: PathLike, stem: str, *,
                cmap: Optional[str] = "Spectral_r", invert: bool = False, vis_format: str = "png",
                quality: int = 95, gray: bool = False, normals: bool = False,
                summary: Optional[dict] = None, original_size: bool = False) -> dict:
    """Write view ``index`` of a :class:`~depth_anything_cpp.Prediction` to ``out_dir``:

    - ``<stem>_depth.png``: 16-bit depth (see the module docstring);
    - ``<stem>_depth_vis.<vis_format>``: colorized depth (:func:`colorize_depth` with
      ``cmap`` and ``invert``; skipped when ``cmap`` is None); ``vis_format`` png, jpg or
      webp (``quality``);
    - ``<stem>_depth_gray.png`` with ``gray``: 8-bit min-max depth (:func:`depth_to_gray8`);
    - ``<stem>_normals.<vis_format>`` with ``normals``: :func:`normals_to_rgb` of
      :meth:`Prediction.normals`;
    - ``<stem>.json`` when ``summary`` is a dict: :func:`view_summary` updated with it;
    - ``<stem>.npz`` with ``depth`` (H, W) float32, ``conf`` (H, W), ``extrinsics`` (3, 4),
      ``intrinsics`` (3, 3), ``image`` (H, W, 3) uint8 (the processed image, the official
      npz key), ``sky`` (H, W) bool if any, ``normals`` (H, W, 3) float32 with
      ``normals``, ``is_metric`` and ``depth_png_encoding``/``_min``/``_max``/``_scale``
      describing the PNG.

    With ``original_size`` every map is at the input image's size
    (:meth:`Prediction.at_original_size`: depth/conf bilinear, sky nearest, intrinsics of
    the original image) and ``image`` is the processed image resized the same way.

    Returns ``{"depth_png", "depth_vis", "depth_gray", "normals", "json", "npz"}`` -> Path
    (those written).

    Raises:
        ValueError: bad index, arrays or options. OSError: write failure.
    """
    n = prediction.depth.shape[0]
    if not 0 <= index < n:
        raise ValueError(f"index {index} out of range for {n} views")
    ext = "." + str(vis_format).lower().lstrip(".")
    if ext not in IMAGE_FORMATS:
        raise ValueError(f"vis_format: expected one of png, jpg, webp, got {vis_format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def pick(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
        return None if a is None else a[index]

    depth, conf, sky = prediction.depth[index], pick(prediction.conf), pick(prediction.sky)
    intr, image = pick(prediction.intrinsics), pick(prediction.processed_images)
    if original_size:
        full = prediction.at_original_size(index)
        depth, conf, sky, intr = full["depth"], full["conf"], full["sky"], full["intrinsics"]
        if image is not None:
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize(full["size"], Image.BILINEAR))

    paths = {"depth_png": out / f"{stem}_depth.png", "npz": out / f"{stem}.npz"}
    meta = write_depth_png16(paths["depth_png"], depth, bool(prediction.is_metric))
    if cmap is not None:
        paths["depth_vis"] = out / f"{stem}_depth_vis{ext}"
        write_depth_vis(paths["depth_vis"], depth, cmap, invert=invert, quality=quality)
    if gray:
        paths["depth_gray"] = out / f"{stem}_depth_gray.png"
        write_depth_png8(paths["depth_gray"], depth, invert=invert)
    normal_map = None
    if normals:
        normal_map = depth_to_normals(depth, intr)
        paths["normals"] = out / f"{stem}_normals{ext}"
        write_image(paths["normals"], normals_to_rgb(normal_map), quality=quality)
    if summary is not None:
        import json

        info = {**view_summary(prediction, index, original_size=original_size), **summary}
        paths["json"] = out / f"{stem}.json"
        text = json.dumps(info, indent=2).encode()
        atomic_write_bytes(paths["json"], lambda f: f.write(text))
    write_npz(
        paths["npz"],
        depth=depth,
        conf=conf,
        extrinsics=pick(prediction.extrinsics),
        intrinsics=intr,
        image=image,
        sky=sky,
        normals=normal_map,
        is_metric=np.array(bool(prediction.is_metric)),
        depth_png_encoding=np.array(meta["encoding"]),
        depth_png_min=np.array(meta["min"]),
        depth_png_max=np.array(meta["max"]),
        depth_png_scale=np.array(meta["scale"]),
    )
    return paths
