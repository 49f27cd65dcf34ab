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
# ViT linear arithmetic on the CPU backend (C: da3_precision); "auto": by the file's weight type (README)
PRECISIONS = ("auto", "f32", "bf16")


def _check_n_threads(n_threads: Optional[int]) -> int:
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads: expected int or None, got {type(n_threads).__name__}")
    if not 0 <= n_threads <= 512:  # 512: ggml's GGML_MAX_N_THREADS
        raise ValueError(f"n_threads: must be in [0, 512] (0 = all physical cores), got {n_threads}")
    return int(n_threads)


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
