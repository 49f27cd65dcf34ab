"""Argument checks of :class:`~depth_anything_cpp.DepthAnything3` (loading and
``inference``): choices, ranges, input cameras, export options. Each raises an exception
naming the argument."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .errors import UnsupportedError
from .images import check_max_image_pixels

PROCESS_RES_METHODS = ("upper_bound_resize", "lower_bound_resize")
_CROP_METHODS = ("upper_bound_crop", "lower_bound_crop")
REF_VIEW_STRATEGIES = ("saddle_balanced", "first", "middle", "saddle_sim_range")
BACKENDS = ("cpu", "gpu", "auto")
#: process_res range the core accepts (14 = the patch size).
PROCESS_RES_RANGE = (14, 8192)
# ViT linear arithmetic on the CPU backend (C: da3_precision); "auto" is f32 for now (README)
PRECISIONS = ("auto", "f32", "bf16")


def _check_n_threads(n_threads: Optional[int]) -> int:
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads: expected int or None, got {type(n_threads).__name__}")
    if not 0 <= n_threads <= 512:  # 512: ggml's GGML_MAX_N_THREADS
        raise ValueError(f"n_threads: must be in [0, 512] (0 = all physical cores), got {n_threads}")
    return int(n_threads)


def _as_float_array(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not convertible to an array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def validate_cameras(extrinsics: Any, intrinsics: Any,
                     n_views: int) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Check optional input cameras; return them as C-contiguous float32 arrays.

    extrinsics: (N, 3, 4) or (N, 4, 4) world-to-camera, OpenCV axes (a 4x4's last row must
    be [0, 0, 0, 1]); intrinsics: (N, 3, 3) in pixels of the ORIGINAL images, fx, fy > 0.
    Both, neither, or intrinsics alone (models without a camera decoder: metric scaling and
    the cameras of point clouds).

    Raises:
        ValueError: extrinsics without intrinsics, wrong shape, N mismatch, non-finite
            values, singular rotation part of an extrinsic matrix.
    """
    if extrinsics is None and intrinsics is None:
        return None, None
    if intrinsics is None:
        raise ValueError("extrinsics need intrinsics (give both, or intrinsics alone)")
    intr = _as_float_array("intrinsics", intrinsics)
    if intr.ndim != 3 or intr.shape[1:] != (3, 3):
        raise ValueError(f"intrinsics: expected shape (N, 3, 3), got {intr.shape}")
    if intr.shape[0] != n_views:
        raise ValueError(f"got {n_views} images but {intr.shape[0]} intrinsics")
    if np.any(intr[:, 0, 0] <= 0) or np.any(intr[:, 1, 1] <= 0):
        raise ValueError("intrinsics: focal lengths fx = K[0, 0] and fy = K[1, 1] must be > 0")
    if extrinsics is None:
        return None, intr
    ext = _as_float_array("extrinsics", extrinsics)
    if ext.ndim != 3 or ext.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(f"extrinsics: expected shape (N, 3, 4) or (N, 4, 4), got {ext.shape}")
    if ext.shape[0] != n_views:
        raise ValueError(f"got {n_views} images but {ext.shape[0]} extrinsics")
    if ext.shape[1] == 4 and not np.allclose(ext[:, 3, :], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError("extrinsics: the last row of each 4x4 matrix must be [0, 0, 0, 1]")
    singular = np.flatnonzero(np.abs(np.linalg.det(ext[:, :3, :3].astype(np.float64))) < 1e-9)
    if singular.size:
        raise ValueError(
            f"extrinsics: the 3x3 rotation part of view {int(singular[0])} is singular "
            "(not invertible), so it is not a world-to-camera transform"
        )
    return ext, intr


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


_UNPORTED_ARGS = {"infer_gs": "the 3D Gaussian head (infer_gs) is not ported",
                  "render_exts": "Gaussian video rendering (render_exts) is not ported",
                  "render_ixts": "Gaussian video rendering (render_ixts) is not ported",
                  "render_hw": "Gaussian video rendering (render_hw) is not ported"}


def _check_unported(**values: Any) -> None:
    """UnsupportedError for an official argument whose feature is not ported, when set."""
    for name, value in values.items():
        unset = value is None or value is False
        if not unset:
            raise UnsupportedError(f"{name}={value!r}: {_UNPORTED_ARGS[name]} in depth-anything-cpp")



def take_image_alias(image: Any, images: Any) -> Any:
    """``image``, or the deprecated alias ``images`` (DeprecationWarning); TypeError when
    both or neither are given."""
    if images is not None:
        if image is not None:
            raise TypeError("inference: give `image` (the official name), not both `image` and `images`")
        import warnings

        warnings.warn("inference(images=...) is deprecated; use `image` (the official name)",
                      DeprecationWarning, stacklevel=3)
        image = images
    if image is None:
        raise TypeError("inference: missing the images (`image`: a list of paths, arrays or PIL images)")
    return image


def check_inference_args(process_res: Any, process_res_method: Any, ref_view_strategy: Any,
                         max_image_pixels: Any, taps: Any) -> tuple[int, tuple]:
    """Check the preprocessing arguments of ``inference``; return (max_image_pixels, tap names)."""
    if process_res_method in _CROP_METHODS:
        raise UnsupportedError(
            f"process_res_method={process_res_method!r} is not supported; use "
            "'upper_bound_resize' or 'lower_bound_resize'"
        )
    _check_choice("process_res_method", process_res_method, PROCESS_RES_METHODS)
    _check_choice("ref_view_strategy", ref_view_strategy, REF_VIEW_STRATEGIES)
    if isinstance(process_res, bool) or not isinstance(process_res, (int, np.integer)):
        raise TypeError(f"process_res: expected int, got {type(process_res).__name__}")
    lo, hi = PROCESS_RES_RANGE
    if not lo <= process_res <= hi:
        raise ValueError(f"process_res: expected {lo} (the patch size) to {hi}, got {process_res}")
    max_image_pixels = check_max_image_pixels(max_image_pixels)
    if isinstance(taps, str):
        raise TypeError("taps: expected a sequence of str, got one str")
    tap_names = tuple(taps) if taps is not None else ()
    if not all(isinstance(t, str) for t in tap_names):
        raise TypeError("taps: expected a sequence of str")
    return max_image_pixels, tap_names


def export_plan(export_format: Any, export_kwargs: Optional[dict], conf_thresh_percentile: float,
                num_max_points: int, show_cameras: bool, process_res_method: str,
                feat_vis_fps: float = 15) -> Any:
    """The validated :class:`~depth_anything_cpp.exports.ExportPlan` of ``inference``'s
    export arguments.

    ref: depth_anything_3/api.py inference(): the top-level GLB/COLMAP arguments are merged
    into the per-format kwargs and override the same keys there (``dict.update``), here on
    copies (the caller's dicts are left alone)."""
    from .exports import ExportPlan

    if export_kwargs is not None and not isinstance(export_kwargs, dict):
        raise TypeError(f"export_kwargs: expected a dict or None, got {type(export_kwargs).__name__}")
    per_format = {}
    for key, value in (export_kwargs or {}).items():
        if not isinstance(value, dict):
            raise TypeError(f"export_kwargs[{key!r}]: expected a dict, got {type(value).__name__}")
        per_format[key] = dict(value)
    shared = dict(conf_thresh_percentile=conf_thresh_percentile, num_max_points=num_max_points,
                  show_cameras=show_cameras, process_res_method=process_res_method, feat_vis_fps=feat_vis_fps)
    return ExportPlan(export_format, per_format, shared_args=shared)
