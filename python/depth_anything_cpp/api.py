"""High-level Python API: :class:`DepthAnything3` and :class:`Prediction`.

Mirrors the official ``depth_anything_3.api.DepthAnything3.inference`` and
``depth_anything_3.specs.Prediction`` (depth-anything-3 0.1.1) without PyTorch: the
network, preprocessing (resize to ``process_res``, crop mixed sizes, ImageNet
normalization) and camera post-processing run in the compiled ggml core.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .errors import ModelFormatError, ModelNotFoundError, UnsupportedError, VariantError
from .images import DEFAULT_MAX_IMAGE_PIXELS, ImageInput, check_max_image_pixels, count_images, input_paths, load_images

__all__ = ["DepthAnything3", "Prediction", "get_core"]

PROCESS_RES_METHODS = ("upper_bound_resize", "lower_bound_resize")
_CROP_METHODS = ("upper_bound_crop", "lower_bound_crop")
REF_VIEW_STRATEGIES = ("saddle_balanced", "first", "middle", "saddle_sim_range")
BACKENDS = ("cpu", "gpu", "auto")
#: process_res range the core accepts (14 = the patch size).
PROCESS_RES_RANGE = (14, 8192)
# ViT linear arithmetic on the CPU backend (C: da3_precision); "auto": by the file's weight type (README)
PRECISIONS = ("auto", "f32", "bf16")
# Keys of the core's result dict that become Prediction fields; everything else goes to aux.
_FIELD_KEYS = {"depth", "conf", "extrinsics", "intrinsics", "sky", "processed_images", "is_metric"}


@dataclass
class Prediction:
    """Outputs of :meth:`DepthAnything3.inference` for N views, at the processed
    resolution H x W (not resized back to the input size), like the official
    ``depth_anything_3.specs.Prediction``.

    Attributes:
        depth: (N, H, W) float32. Relative depth (arbitrary scale, shared by the views of
            one call) or metres when ``is_metric`` is 1.
        is_metric: 1 when ``depth`` is in metres, else 0.
        sky: (N, H, W) bool sky mask (mono/metric models only), else None.
        conf: (N, H, W) float32 confidence (>= 1, higher is better), None for models
            without one (mono/metric).
        extrinsics: (N, 3, 4) float32 world-to-camera [R | t], OpenCV axes, or None.
        intrinsics: (N, 3, 3) float32 pinhole matrices in pixels at H x W, or None.
        processed_images: (N, H, W, 3) uint8 RGB images the network saw.
        gaussians: always None (the 3D Gaussian head is not ported).
        aux: extra outputs (``ray`` (N, h, w, 6), ``ray_conf``, requested taps, ...).
        scale_factor: metric scale if the model reports one, else None.
    """

    depth: np.ndarray
    is_metric: int
    sky: Optional[np.ndarray] = None
    conf: Optional[np.ndarray] = None
    extrinsics: Optional[np.ndarray] = None
    intrinsics: Optional[np.ndarray] = None
    processed_images: Optional[np.ndarray] = None
    gaussians: Any = None
    aux: dict = field(default_factory=dict)
    scale_factor: Optional[float] = None

    # Not dataclass fields (no annotation), so the field list stays the official one.
    #: [(width, height)] of the N input images as loaded (after EXIF orientation), set by
    #: DepthAnything3.inference; used to rescale cameras for the COLMAP export.
    original_sizes = None
    #: [str or None] the input path of each view when it was given as a path, else None.
    image_paths = None
    #: process_res and process_res_method of the inference call (for at_original_size)
    process_res = None
    process_res_method = None

    def at_original_size(self, view: int = 0) -> dict:
        """View ``view`` resized back to its input image's size (after EXIF orientation).

        Depth and confidence are resampled bilinearly (pixel centres aligned, as
        ``cv2.INTER_LINEAR`` / ``align_corners=False``), the sky mask by nearest neighbour.
        A view center-cropped to a batch's common size (views of different aspect ratios)
        is put back at its place, and the original pixels outside that crop are NaN
        (depth, conf) / False (sky). The intrinsics are those of the original image
        (the inverse of the official ``_resize_ixt`` / crop steps).

        Returns:
            dict: ``depth`` (H0, W0) float32, ``conf`` (H0, W0) float32 or None, ``sky``
            (H0, W0) bool or None, ``intrinsics`` (3, 3) float32 or None, ``size``
            (W0, H0).

        Raises:
            ValueError: ``view`` out of range, or the prediction does not record its
                original sizes (not made by :meth:`DepthAnything3.inference`).
        """
        n = self.depth.shape[0]
        if isinstance(view, bool) or not isinstance(view, (int, np.integer)) or not 0 <= view < n:
            raise ValueError(f"view: expected an index in [0, {n}), got {view!r}")
        if self.original_sizes is None or self.process_res is None:
            raise ValueError("at_original_size: this prediction does not record its original image sizes "
                             "(set by DepthAnything3.inference)")
        w0, h0 = self.original_sizes[view]
        h, w = self.depth.shape[1:]
        pw, ph = _patch_size(w0, h0, int(self.process_res), str(self.process_res_method))
        # ref: input_processor.py _unify_batch_shapes: image crop round(d / 2), intrinsics d // 2
        x0, y0 = int(round((pw - w) / 2.0)), int(round((ph - h) / 2.0))

        def place(a: np.ndarray, fill: Any) -> np.ndarray:
            canvas = np.full((ph, pw), fill, dtype=a.dtype)
            canvas[y0:y0 + h, x0:x0 + w] = a
            return canvas

        out: dict = {"size": (int(w0), int(h0)), "conf": None, "sky": None, "intrinsics": None}
        out["depth"] = _resize_bilinear(place(self.depth[view].astype(np.float32), np.nan), h0, w0)
        if self.conf is not None:
            out["conf"] = _resize_bilinear(place(self.conf[view].astype(np.float32), np.nan), h0, w0)
        if self.sky is not None:
            out["sky"] = _resize_nearest(place(np.asarray(self.sky[view], dtype=bool), False), h0, w0)
        if self.intrinsics is not None:
            k = np.array(self.intrinsics[view], dtype=np.float64)
            k[0, 2] += (pw - w) // 2
            k[1, 2] += (ph - h) // 2
            k[0] *= w0 / pw
            k[1] *= h0 / ph
            out["intrinsics"] = k.astype(np.float32)
        return out

    def normals(self, view: int = 0) -> np.ndarray:
        """Surface normals of view ``view`` from its depth and intrinsics (camera frame,
        OpenCV axes, facing the camera): (H, W, 3) float32 unit vectors, 0 where undefined.
        Without intrinsics (mono models) a pinhole with ``fx = fy = max(H, W)`` is assumed.
        See :func:`depth_anything_cpp.exports.depth_to_normals` and ``normals_to_rgb``.

        Raises:
            ValueError: ``view`` out of range.
        """
        from .exports import depth_to_normals

        n = self.depth.shape[0]
        if isinstance(view, bool) or not isinstance(view, (int, np.integer)) or not 0 <= view < n:
            raise ValueError(f"view: expected an index in [0, {n}), got {view!r}")
        return depth_to_normals(self.depth[view], None if self.intrinsics is None else self.intrinsics[view])

    def points(self, *, conf_thresh: float = 1.05, conf_thresh_percentile: float = 40.0,
               ensure_thresh_percentile: float = 90.0, remove_sky: bool = True,
               sky_thresh: float = 0.5, num_max_points: int = 1_000_000, seed: int = 0,
               filter_black_bg: bool = False, filter_white_bg: bool = False,
               sky_depth_def: Optional[float] = None) -> dict:
        """Back-project the depth of all views into one world-frame point cloud with the
        compiled ``points`` (ref: depth_anything_3/utils/export/glb.py,
        ``get_conf_thresh`` and ``_depths_to_world_points_with_colors``).

        Confidence threshold ``thr = min(max(conf_thresh, p_lo), p_hi)`` with ``p_lo`` /
        ``p_hi`` the ``conf_thresh_percentile`` / ``ensure_thresh_percentile`` percentiles
        of the confidence of the valid non-sky pixels; kept pixels have finite depth > 0,
        ``conf >= thr`` (no confidence filtering for models without ``conf``) and, with
        ``remove_sky``, a sky probability below ``sky_thresh`` (models with a sky head:
        mono, metric, nested). ``filter_black_bg`` / ``filter_white_bg`` set the confidence
        of pixels whose processed colour is below 16 / at least 240 in every channel to 1.0
        (the minimum), like the official GLB options, so any threshold above 1 drops them.
        Above ``num_max_points`` (0 = no limit) a subset is drawn with the seeded
        generator ``seed`` (deterministic), kept in (view, row, column) order.
        Sky pixels kept (``remove_sky=False``) get the ``sky_depth_def`` percentile of the
        non-sky depth of all views, as the official GLB exporter's ``set_sky_depth`` (the
        glb/ply exports pass 98.0; None: their predicted depth); the prediction itself is
        not modified.

        Returns:
            dict with ``xyz`` (M, 3) float32 world frame (metres when ``is_metric``, else
            model units), ``rgb`` (M, 3) uint8 from ``processed_images`` (grey without them),
            ``view`` (M,) int32, ``pixel`` (M, 2) int32 (column, row) at H x W, and
            ``conf_thresh`` (float; NaN without conf).

        Raises:
            ValueError: the prediction has no extrinsics/intrinsics (models without a camera
                head), bad option values.
        """
        if self.extrinsics is None or self.intrinsics is None:
            raise ValueError("points: this prediction has no extrinsics/intrinsics (the model "
                             "predicts no cameras); pass intrinsics to DepthAnything3.inference")
        from .exports import _finite, check_count

        num_max_points = check_count("num_max_points", num_max_points, "(0 = no limit)")
        seed = check_count("seed", seed, hi=2**64 - 1)
        for name, value in (("conf_thresh", conf_thresh), ("conf_thresh_percentile", conf_thresh_percentile),
                            ("ensure_thresh_percentile", ensure_thresh_percentile), ("sky_thresh", sky_thresh)):
            _finite(name, value)
        conf = self.conf
        if conf is not None and (filter_black_bg or filter_white_bg) and self.processed_images is not None:
            # ref: utils/export/glb.py: background pixels get conf 1.0 (the minimum)
            conf = np.array(conf, dtype=np.float32, copy=True)
            if filter_black_bg:
                conf[(self.processed_images < 16).all(axis=-1)] = 1.0
            if filter_white_bg:
                conf[(self.processed_images >= 240).all(axis=-1)] = 1.0
        sky = self.aux.get("sky_prob", self.sky)
        depth = self.depth
        if sky is not None and not remove_sky and sky_depth_def is not None:
            # ref: depth_anything_3/utils/export/glb.py set_sky_depth (on a copy)
            if not 0.0 <= float(sky_depth_def) <= 100.0:
                raise ValueError(f"sky_depth_def: expected a percentile in [0, 100], got {sky_depth_def!r}")
            mask = np.asarray(sky) >= sky_thresh if np.asarray(sky).dtype != np.bool_ else np.asarray(sky)
            ground = depth[~mask]
            if ground.size and mask.any():
                depth = np.array(depth, dtype=np.float32, copy=True)
                depth[mask] = np.percentile(ground, float(sky_depth_def))
        if not remove_sky:
            sky = None
        return get_core().points(
            depth, self.intrinsics, self.extrinsics, self.processed_images, conf, sky,
            conf_thresh=float(conf_thresh), conf_thresh_percentile=float(conf_thresh_percentile),
            ensure_thresh_percentile=float(ensure_thresh_percentile), remove_sky=bool(remove_sky),
            sky_thresh=float(sky_thresh), num_max_points=int(num_max_points), seed=int(seed))

    def __repr__(self) -> str:
        def shape(a: Any) -> str:
            return "None" if a is None else f"{getattr(a, 'dtype', '')}{tuple(np.shape(a))}"

        return (f"Prediction(depth={shape(self.depth)}, conf={shape(self.conf)}, "
                f"extrinsics={shape(self.extrinsics)}, intrinsics={shape(self.intrinsics)}, "
                f"sky={shape(self.sky)}, processed_images={shape(self.processed_images)}, "
                f"is_metric={self.is_metric}, aux={sorted(self.aux)})")


def _patch_size(w: int, h: int, res: int, method: str) -> tuple[int, int]:
    """(width, height) after the official boundary resize and the rounding to multiples
    of 14, before any batch crop (ref: input_processor.py _resize_*_side,
    _make_divisible_by_resize; cpp/src/host/preprocess.cpp plan_batch)."""
    side = max(w, h) if method == "upper_bound_resize" else min(w, h)
    if side != res:
        scale = res / float(side)
        w, h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))

    def nearest(x: int) -> int:
        down = x // 14 * 14
        return down + 14 if abs(down + 14 - x) <= abs(x - down) else down
    return max(1, nearest(w)), max(1, nearest(h))


def _axis_linear(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # pixel centres aligned: src = (dst + 0.5) * n_in / n_out - 0.5, clamped at the borders
    x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0.0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, x - i0


def _resize_bilinear(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of an (H, W) float array (cv2.INTER_LINEAR's sampling, no antialias)."""
    y0, y1, fy = _axis_linear(a.shape[0], out_h)
    x0, x1, fx = _axis_linear(a.shape[1], out_w)
    a = a.astype(np.float64)
    rows = a[y0] * (1 - fy)[:, None] + a[y1] * fy[:, None]
    return (rows[:, x0] * (1 - fx) + rows[:, x1] * fx).astype(np.float32)


def _resize_nearest(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    ys = np.minimum(((np.arange(out_h) + 0.5) * a.shape[0] / out_h).astype(np.int64), a.shape[0] - 1)
    xs = np.minimum(((np.arange(out_w) + 0.5) * a.shape[1] / out_w).astype(np.int64), a.shape[1] - 1)
    return a[ys][:, xs]


def get_core(variant: Optional[str] = None) -> Any:
    """Return the compiled core module.

    ``variant=None``: the one chosen at import (``DA3CPP_VARIANT`` or the best one this
    CPU runs, see :func:`depth_anything_cpp.backend_info`). A name (e.g. ``"cpu_avx2"``):
    that variant, overriding the environment.

    Raises:
        VariantError: no usable core, or the named variant is not built/runnable here.
    """
    from . import _variants

    if variant is None:
        pkg = sys.modules[__package__]
        core = getattr(pkg, "_core", None)
        if core is None:
            reason = getattr(pkg, "_core_reason", "unknown reason")
            raise VariantError(f"the compiled depth-anything core is not available: {reason}")
        return core
    if not isinstance(variant, str):
        raise TypeError(f"variant: expected str, got {type(variant).__name__}")
    return _variants.load_core(variant)[0]


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


class DepthAnything3:
    """A Depth Anything 3 model loaded from a GGUF file into the ggml core.

    Create it as the official class, ``DepthAnything3(model_name="da3-small")`` or
    :meth:`from_pretrained` (preset name, Hugging Face repo id, official snapshot directory
    or GGUF), or with :meth:`from_file` (a local GGUF); optionally :meth:`to` a device;
    then call :meth:`inference`.
    A model serializes its own inference calls; separate models run in parallel.
    """

    def __init__(self, model_name: Union[str, "os.PathLike[str]"] = "da3-large", *,
                 variant: Optional[str] = None, n_threads: Optional[int] = None, backend: str = "cpu",
                 device: int = -1, metric_path: Optional[Union[str, "os.PathLike[str]"]] = None,
                 precision: str = "auto", **hub_kwargs: Any) -> None:
        """Load a model, as the official ``DepthAnything3(model_name="da3-large")``.

        ``model_name``: a preset name (``"da3-small"`` ... ``"da3nested-giant-large"``, the
        1.1 checkpoints ``"da3-large-1.1"``, ``"da3-giant-1.1"``,
        ``"da3nested-giant-large-1.1"``), a Hugging Face repo id, a snapshot directory or a
        GGUF file: everything but a GGUF file goes through :meth:`from_pretrained`'s
        resolution (download once, convert once, cached); ``hub_kwargs`` are its
        ``filename``, ``revision``, ``cache_dir``, ``local_files_only`` and ``token``. The
        other arguments and the errors are those of :meth:`from_file` and
        :meth:`from_pretrained`.
        """
        if metric_path is None and not (isinstance(model_name, (str, os.PathLike))
                                        and Path(model_name).expanduser().is_file()):
            from .hub import resolve_model

            bad = set(hub_kwargs) - {"filename", "revision", "cache_dir", "local_files_only", "token"}
            if bad:
                raise TypeError(f"DepthAnything3: unexpected keyword(s) {', '.join(sorted(bad))}")
            hub = dict(hub_kwargs)
            hub["hub_cache_dir"] = hub.pop("cache_dir", None)
            model_name = resolve_model(model_name, **hub)
        elif hub_kwargs:
            raise TypeError(f"DepthAnything3: {', '.join(sorted(hub_kwargs))} only apply to models loaded by name")
        self._load(model_name, variant=variant, n_threads=n_threads, backend=backend, device=device,
                   metric_path=metric_path, precision=precision)

    def _load(self, path: Union[str, "os.PathLike[str]"], *, variant: Optional[str], n_threads: Optional[int],
              backend: str, device: int, metric_path: Optional[Union[str, "os.PathLike[str]"]],
              precision: str) -> None:
        path = Path(path).expanduser()
        metric = None if metric_path is None else Path(metric_path).expanduser()
        threads = _check_n_threads(n_threads)
        _check_choice("backend", backend, BACKENDS)
        _check_choice("precision", precision, PRECISIONS)
        if isinstance(device, bool) or not isinstance(device, (int, np.integer)):
            raise TypeError(f"device: expected int, got {type(device).__name__}")
        for p in (path,) if metric is None else (path, metric):
            if not p.exists():
                raise ModelNotFoundError(f"model file not found: {p}")
            if not p.is_file():
                raise IsADirectoryError(
                    f"{p}: is a directory; use DepthAnything3.from_pretrained for snapshot directories"
                )
            with open(p, "rb") as f:
                magic = f.read(4)
            if magic != b"GGUF":
                raise ModelFormatError(
                    f"{p}: not a GGUF file (magic {magic!r}); convert official checkpoints with "
                    "`da3cpp convert` or use DepthAnything3.from_pretrained"
                )
        self._core = get_core(variant)
        self._path = path
        self._metric = metric
        self._threads = threads
        self._backend = backend
        self._precision = precision
        self._model = self._core.Model(str(path), n_threads=threads, backend=backend, device=int(device),
                                       metric_path=None if metric is None else str(metric), precision=precision)
        self._info = dict(self._model.info())

    @classmethod
    def _from_path(cls, path: Union[str, "os.PathLike[str]"], **kwargs: Any) -> "DepthAnything3":
        self = cls.__new__(cls)
        self._load(path, **kwargs)
        return self

    def _check_feat_layers(self, layers: Any) -> tuple:
        """export_feat_layers -> unique block indices in [0, depth), in the given order."""
        if layers is None:
            return ()
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"export_feat_layers: expected a sequence of int, got {type(layers).__name__}")
        layers = list(layers)
        depth = int(self._info.get("depth", 0))
        for i in layers:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"export_feat_layers: expected ints, got {i!r}")
            if not 0 <= i < depth:
                raise ValueError(f"export_feat_layers: layer {i} out of range for this model's {depth} blocks")
        return tuple(dict.fromkeys(int(i) for i in layers))

    def to(self, device: Any) -> "DepthAnything3":
        """Move the model to a device, as the official ``model.to(device)``: ``"cpu"``,
        ``"cuda"`` / ``"cuda:<index>"`` (the CUDA variant), ``"vulkan"`` /
        ``"vulkan:<index>"`` (the Vulkan variant), ``"gpu"`` (the GPU backend of the
        running variant); a ``torch.device`` works through its ``str``. The weights are
        reloaded from the same file. Returns ``self``.

        Raises:
            ValueError: an unknown device name or index.
            VariantError: this installation has no such variant (the message lists those
                it has), or this CPU cannot run it.
            BackendError: the variant finds no usable device.
        """
        from . import _variants

        text = str(device).strip().lower()
        name, _, index = text.partition(":")
        try:
            idx = int(index) if index else -1
        except ValueError:
            raise ValueError(f"device {device!r}: bad index {index!r}") from None
        if idx < -1:
            raise ValueError(f"device {device!r}: index must be >= 0")
        current = self.variant
        if name == "cpu":
            variant = None if _variants._VARIANTS.get(current, ("", "cpu"))[1] == "cpu" else "cpu"
            backend = "cpu"
        elif name in ("cuda", "vulkan"):
            variant, backend = (None if current == name else name), "gpu"
        elif name == "gpu":
            variant, backend = None, "gpu"
        else:
            raise ValueError(f"device {device!r}: expected 'cpu', 'cuda', 'vulkan' or 'gpu' (optionally ':<index>')")
        if variant is None and backend == self._backend and idx == -1:
            return self
        core = self._core if variant is None else get_core(variant)
        model = core.Model(str(self._path), n_threads=self._threads, backend=backend, device=idx,
                           metric_path=None if self._metric is None else str(self._metric),
                           precision=self._precision)
        self._core, self._model, self._backend = core, model, backend
        self._info = dict(model.info())
        return self

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"], variant: Optional[str] = None,
                  n_threads: Optional[int] = None, backend: str = "cpu", device: int = -1,
                  metric_path: Optional[Union[str, "os.PathLike[str]"]] = None,
                  precision: str = "auto") -> "DepthAnything3":
        """Load a GGUF file in the depth-anything.cpp layout.

        Args:
            path: the .gguf file (published depth-anything.cpp files or ``da3cpp convert`` output).
                With ``metric_path``: the any-view file of a nested pair (da3-giant).
            variant: compiled core variant to use (e.g. ``"cpu_avx2"``); overrides the
                ``DA3CPP_VARIANT`` environment variable. None: the one chosen at import.
            n_threads: CPU threads; None or 0 = number of physical cores.
            backend: ``"cpu"``, ``"gpu"`` (Vulkan/CUDA if this build has one) or ``"auto"``
                (first GPU if any, else CPU).
            device: GPU device index for ``backend="gpu"``; -1 = the first GPU.
            metric_path: the metric file (da3metric-large) of the nested da3nested-giant-large
                model published as two files; the result is the same model as one nested file.
            precision: arithmetic of the ViT's linear layers on the CPU backend: ``"f32"`` (exact,
                the parity mode), ``"bf16"`` (f32/f16 weights and the activations rounded to bf16,
                f32 sums, on the CPU's AMX-BF16 or AVX512-BF16 engine: depth correlation >= 0.9999
                against f32, see the README; f32 where the CPU has neither) or ``"auto"`` (f32 for
                f32 files, bf16 for f16/bf16 files). q8_0/q4_k linears stay int8; GPU backends ignore it.
                ``info()["linear_engine"]`` says what runs them.

        Raises:
            ModelNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
            IsADirectoryError: ``path`` is a directory.
            ModelFormatError: not a GGUF / not a DA3 GGUF / missing or misshaped tensors;
                metadata of the wrong type, out of range or contradicting the tensors; a NaN or
                inf in the weights (the message names the key or tensor); a nested pair in
                the wrong order or of the wrong kinds (the message names both files).
            UnsupportedError: a tensor type, activation or model kind this build does not
                support.
            VariantError: the core (or the requested variant) cannot be loaded.
            BackendError: the requested backend cannot be initialised.
            ValueError, TypeError: bad argument values/types.
        """
        return cls._from_path(path, variant=variant, n_threads=n_threads, backend=backend, device=device,
                              metric_path=metric_path, precision=precision)

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, "os.PathLike[str]"], *, filename: Optional[str] = None,
                        revision: Optional[str] = None, cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                        local_files_only: bool = False, token: Optional[str] = None,
                        variant: Optional[str] = None, n_threads: Optional[int] = None,
                        backend: str = "cpu", device: int = -1, precision: str = "auto") -> "DepthAnything3":
        """Load from a GGUF file, an official snapshot directory, a Hugging Face repo id
        (``"depth-anything/DA3-SMALL"``) or a short preset name (``"da3-small"``,
        ``"da3nested-giant-large-1.1"``: see ``depth_anything_cpp.hub.PRESETS``).

        Snapshots (``config.json`` + ``model.safetensors``, e.g. ``"depth-anything/DA3-SMALL"``
        downloaded with ``huggingface_hub``) are converted once to GGUF into the user cache
        (``$DA3CPP_CACHE`` or ``~/.cache/depth-anything-cpp``). ``filename`` picks one file of
        a repository of GGUF files. ``revision``, ``cache_dir`` (Hugging Face cache),
        ``local_files_only`` and ``token`` go to ``huggingface_hub``. The other arguments
        are those of :meth:`from_file`.

        Raises:
            ModelLoadError: download impossible (offline with nothing cached, unknown repo,
                network error, huggingface_hub missing).
            plus everything :meth:`from_file` and the converter raise.
        """
        from .hub import resolve_model

        gguf = resolve_model(name_or_path, filename=filename, revision=revision,
                             hub_cache_dir=cache_dir, local_files_only=local_files_only, token=token)
        return cls._from_path(gguf, variant=variant, n_threads=n_threads, backend=backend, device=device,
                              metric_path=None, precision=precision)

    def close(self) -> None:
        """Free the model's memory now (weights and buffers; a call running in another thread
        finishes first). Further calls raise ValueError. Also done by ``with`` blocks:
        ``with DepthAnything3.from_file(p) as model: ...``."""
        self._model.close()

    def __enter__(self) -> "DepthAnything3":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def path(self) -> Path:
        """The GGUF file this model was loaded from."""
        return self._path

    @property
    def info(self) -> dict:
        """Model description from the core (preset, embed_dim, depth, out_layers,
        has_camera_decoder, has_camera_encoder, has_aux_head, has_sky, is_metric,
        weight_type, image_mean, image_std, weights_bytes, weights_read_bytes, ...). A copy,
        read now: ``weights_read_bytes`` grows when the camera encoder (first call with input
        poses) or the aux ray head (first ``use_ray_pose``) is read from the file."""
        return dict(self._model.info())

    @property
    def variant(self) -> str:
        """Name of the compiled core variant running this model."""
        return str(self._core.variant())

    def __repr__(self) -> str:
        return (f"DepthAnything3(path={str(self._path)!r}, preset={self._info.get('preset')!r}, "
                f"weights={self._info.get('weight_type')!r}, backend={self._backend!r})")

    def inference(self, image: Union[ImageInput, Sequence[ImageInput]] = None, extrinsics: Any = None,
                  intrinsics: Any = None, align_to_input_ext_scale: bool = True, infer_gs: bool = False,
                  use_ray_pose: bool = False, ref_view_strategy: str = "saddle_balanced",
                  render_exts: Any = None, render_ixts: Any = None, render_hw: Any = None,
                  process_res: int = 504, process_res_method: str = "upper_bound_resize",
                  export_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                  export_format: str = "mini_npz", export_feat_layers: Optional[Sequence[int]] = None,
                  conf_thresh_percentile: float = 40.0, num_max_points: int = 1_000_000,
                  show_cameras: bool = True, feat_vis_fps: int = 15,
                  export_kwargs: Optional[dict] = None, *, compute_aux: bool = False,
                  taps: Optional[Sequence[str]] = None,
                  max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, downscale_large_images: bool = False,
                  images: Union[ImageInput, Sequence[ImageInput]] = None) -> Prediction:
        """Run the network on the N views of one scene (one batch along the view axis).

        The signature is ``depth_anything_3.api.DepthAnything3.inference`` (0.1.1): same
        names, order and defaults (``export_kwargs=None`` means the official ``{}``), then
        our keyword-only extras ``compute_aux``, ``taps`` and ``images`` (a deprecated
        alias of ``image``).

        Args:
            image: list of paths, PIL images or uint8 arrays (H, W[, 1|3|4]), or one image,
                or an (N, H, W, C) uint8 array (see :func:`depth_anything_cpp.images.load_images`).
                EXIF orientation is applied. Views of different sizes are center-cropped to
                the smallest processed size, as upstream.
            extrinsics: optional (N, 3, 4) or (N, 4, 4) world-to-camera matrices (OpenCV);
                needs ``intrinsics`` and a model with a camera encoder.
            intrinsics: optional (N, 3, 3) pixel intrinsics of the ORIGINAL images. Alone
                (no extrinsics), only for models without a camera decoder (mono/metric):
                metric-large depth is scaled to metres with them, and the prediction carries
                them (at H x W) with identity extrinsics so points and exports work.
            align_to_input_ext_scale: with input poses, return them and rescale depth to their
                scale (True, default) or return the predicted poses aligned to them (False).
            infer_gs: the 3D Gaussian head is not ported: True raises UnsupportedError.
            use_ray_pose: estimate poses from the aux ray head instead of the camera decoder
                (needs a model file with the aux head).
            ref_view_strategy: reference view choice with >= 3 views and no input poses:
                ``"saddle_balanced"`` (default), ``"first"``, ``"middle"``, ``"saddle_sim_range"``.
            render_exts, render_ixts, render_hw: Gaussian video rendering, not ported: a
                value other than None raises UnsupportedError.
            process_res: target size in pixels (14 to 8192) of the longest side
                (``upper_bound_resize``) or the shortest side (``lower_bound_resize``); each
                side is then rounded to a multiple of the patch size 14. Small images are
                upscaled to it: time and memory grow with its square (and faster in the
                attention), whatever the input size.
            process_res_method: ``"upper_bound_resize"`` (default) or ``"lower_bound_resize"``
                (the ``*_crop`` methods raise UnsupportedError).
            export_dir: when given, write the prediction there with
                :func:`depth_anything_cpp.exports.export` (directory created if missing).
            export_format: format names joined by ``-`` (``"mini_npz"``, ``"npz"``,
                ``"glb"``, ``"colmap"``, ``"depth_vis"``, ``"depth"``, ``"disparity"``,
                ``"ply"``, ``"feat_vis"``), validated before the network runs; ``gs_ply`` and
                ``gs_video`` raise UnsupportedError.
            export_feat_layers: backbone block indices whose output features are returned
                as ``aux["feat_layer_<i>"]``: (N, H/14, W/14, C) float32, the final norm
                applied, without the camera token (as upstream; views in input order).
            conf_thresh_percentile: [GLB, PLY, COLMAP] lower confidence percentile (40).
            num_max_points: [GLB, PLY] maximum number of points (1,000,000).
            show_cameras: [GLB] draw the camera frustums (True).
            feat_vis_fps: [feat_vis] frame rate of the feature videos (15).
            export_kwargs: per-format option dicts, e.g. ``{"glb": {"camera_size": 0.05,
                "sky_depth_def": 98.0}, "colmap": {"binary": False}}`` (not modified). As
                upstream, the three top-level export arguments above override the same keys
                given here for ``glb`` (and ``ply``); ``conf_thresh_percentile`` and
                ``process_res_method`` override them for ``colmap``.
            compute_aux: also return ``aux["ray"]`` and ``aux["ray_conf"]``.
            taps: names of graph intermediates to return in ``aux`` (debugging/parity); a
                name this model's graph does not produce in this call raises ValueError.
            max_image_pixels: largest width x height of an input image (default
                100,000,000), checked from file headers and array shapes before anything is
                decoded or copied; at most 2**31 - 1.
            downscale_large_images: reduce larger images by the smallest integer factor
                that fits ``max_image_pixels`` (box filter) instead of raising ValueError.
            images: deprecated alias of ``image`` (DeprecationWarning).

        Returns:
            :class:`Prediction` (depth, conf, extrinsics, intrinsics, sky, processed_images,
            is_metric, aux), with ``original_sizes`` and ``image_paths`` recorded.

        Raises:
            ValueError: bad images (the message names the file or index), cameras or
                argument values (out of range, NaN, inf); an image over
                ``max_image_pixels``; more than 256 views; unknown export format (the
                message lists the valid ones); unknown tap names; the model was closed.
            TypeError: unknown export option names, arguments of the wrong type; no images;
                ``image`` and ``images`` both.
            OSError: the export directory cannot be created or written (the message
                names the path).
            FileNotFoundError: an image path does not exist.
            UnsupportedError (a NotImplementedError): a feature that is not ported
                (``infer_gs``, ``render_*``, the ``gs_ply`` and ``gs_video`` exports,
                ``*_crop`` methods); input poses on a model without camera encoder;
                ``use_ray_pose`` without aux head.
            NonFiniteOutputError: an output is NaN or inf (invalid weights or input).
            MemoryError: allocation failure.
            BackendError: compute failure.
        """
        if images is not None:
            if image is not None:
                raise TypeError("inference: give `image` (the official name), not both `image` and `images`")
            import warnings

            warnings.warn("inference(images=...) is deprecated; use `image` (the official name)",
                          DeprecationWarning, stacklevel=2)
            image = images
        if image is None:
            raise TypeError("inference: missing the images (`image`: a list of paths, arrays or PIL images)")
        _check_unported(infer_gs=infer_gs, render_exts=render_exts, render_ixts=render_ixts,
                        render_hw=render_hw)
        feat_layers = self._check_feat_layers(export_feat_layers)
        images = image
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
        feat_taps = tuple(f"vit.feat_layer.{i}" for i in feat_layers if f"vit.feat_layer.{i}" not in tap_names)

        per_format: dict = {}
        if export_dir is not None:  # checked before the network runs
            from . import exports

            per_format = _export_options(export_format, export_kwargs, conf_thresh_percentile,
                                         num_max_points, show_cameras, process_res_method, feat_vis_fps)
            if "feat_vis" in per_format and not feat_layers:
                raise ValueError("export_format 'feat_vis' needs export_feat_layers (the layers to show)")

        max_views = int(self._core.max_views)
        if count_images(images) > max_views:  # before anything is decoded
            raise ValueError(f"images: {count_images(images)} views given, at most {max_views} per call")
        views = load_images(images, max_image_pixels=max_image_pixels,
                            downscale_large_images=bool(downscale_large_images))
        ext, intr = validate_cameras(extrinsics, intrinsics, len(views))
        if ext is not None and not self._info.get("has_camera_encoder", True):
            raise UnsupportedError(
                f"{self._path.name}: this model file has no camera encoder, so it cannot take "
                "input extrinsics/intrinsics (convert the checkpoint with `da3cpp convert` to "
                "include it)"
            )
        if ext is None and intr is not None and self._info.get("has_camera_decoder", False):
            raise ValueError(
                "intrinsics alone are for models without a camera decoder (mono/metric: metric "
                "scaling, point clouds); this model predicts its cameras: give extrinsics too "
                "to condition it on known poses, or neither"
            )
        if use_ray_pose and not self._info.get("has_aux_head", True):
            raise UnsupportedError(
                f"{self._path.name}: use_ray_pose needs the aux ray head, absent from this file"
            )

        result = self._model.infer(
            views, extrinsics=ext, intrinsics=intr, process_res=int(process_res),
            process_res_method=process_res_method, ref_view_strategy=ref_view_strategy,
            use_ray_pose=bool(use_ray_pose), compute_aux=bool(compute_aux or use_ray_pose),
            align_to_input_ext_scale=bool(align_to_input_ext_scale), taps=tap_names + feat_taps,
            max_image_pixels=max_image_pixels,
        )
        missing = [t for t in tap_names if t not in result]
        if missing:
            raise ValueError(f"taps: unknown name(s) {', '.join(map(repr, missing))}: not produced by "
                             f"this model's graph in this call (e.g. 'vit.blk.0', 'head.out'; see "
                             "tests/test_parity.py for the names)")
        feats = {i: result.pop(f"vit.feat_layer.{i}") if f"vit.feat_layer.{i}" in feat_taps
                 else result[f"vit.feat_layer.{i}"] for i in feat_layers}
        prediction = _to_prediction(result)
        h, w = prediction.depth.shape[1:]
        for i, f in feats.items():  # ref: model/da3.py _extract_auxiliary_features
            prediction.aux[f"feat_layer_{i}"] = f.reshape(f.shape[0], h // 14, w // 14, f.shape[-1])
        prediction.original_sizes = [(int(v.shape[1]), int(v.shape[0])) for v in views]
        prediction.process_res, prediction.process_res_method = int(process_res), process_res_method
        paths = input_paths(images)
        prediction.image_paths = paths if len(paths) == len(views) else [None] * len(views)
        if export_dir is not None:
            exports.export(prediction, export_format, export_dir, **per_format)
        return prediction


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


def _export_options(export_format: Any, export_kwargs: Optional[dict], conf_thresh_percentile: float,
                    num_max_points: int, show_cameras: bool, process_res_method: str,
                    feat_vis_fps: float = 15) -> dict:
    """Per-format export options for :meth:`DepthAnything3.inference`, validated.

    ref: depth_anything_3/api.py inference(): the top-level GLB/COLMAP arguments are merged
    into the per-format kwargs and override the same keys there (``dict.update``), here on
    copies (the caller's dicts are left alone)."""
    from . import exports

    formats = exports.parse_export_format(export_format)
    if export_kwargs is not None and not isinstance(export_kwargs, dict):
        raise TypeError(f"export_kwargs: expected a dict or None, got {type(export_kwargs).__name__}")
    per_format = {}
    for key, value in (export_kwargs or {}).items():
        if not isinstance(value, dict):
            raise TypeError(f"export_kwargs[{key!r}]: expected a dict, got {type(value).__name__}")
        per_format[key] = dict(value)
    top = {"feat_vis": dict(fps=feat_vis_fps),
           "glb": dict(conf_thresh_percentile=conf_thresh_percentile, num_max_points=num_max_points,
                       show_cameras=show_cameras),
           "ply": dict(conf_thresh_percentile=conf_thresh_percentile, num_max_points=num_max_points),
           "colmap": dict(conf_thresh_percentile=conf_thresh_percentile,
                          process_res_method=process_res_method)}
    for fmt, values in top.items():
        if fmt in formats:  # as upstream, the top-level argument wins over export_kwargs
            per_format[fmt] = {**per_format.get(fmt, {}), **values}
    exports.check_options(formats, per_format)
    return per_format


def _to_prediction(result: dict) -> Prediction:
    aux = {k: v for k, v in result.items() if k not in _FIELD_KEYS}
    sky = result.get("sky")
    if sky is not None and sky.dtype != np.bool_:
        aux["sky_prob"] = sky
        sky = sky >= 0.5  # ref: depth_anything_3/utils/io/output_processor.py (_extract_sky)
    return Prediction(
        depth=result["depth"],
        is_metric=int(bool(result.get("is_metric", False))),
        sky=sky,
        conf=result.get("conf"),
        extrinsics=result.get("extrinsics"),
        intrinsics=result.get("intrinsics"),
        processed_images=result.get("processed_images"),
        aux=aux,
    )
