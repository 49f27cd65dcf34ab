"""Visualisations: colorized depth, surface normals and PCA of features."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .depth_maps import _check_depth
from .files import PathLike, write_image


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

    rgb = colorize_depth(depth, cmap, percentile=percentile, invert=invert)
    if image is not None:
        image = np.asarray(image)
        if image.shape != rgb.shape or image.dtype != np.uint8:
            raise ValueError(f"image: expected a uint8 array of shape {rgb.shape}, got "
                             f"{image.dtype}{image.shape}")
        rgb = np.concatenate([image, rgb], axis=1)
    write_image(path, rgb, quality=quality)


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

