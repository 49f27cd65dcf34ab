"""The outputs of one inference call (:class:`Prediction`, as the official
``depth_anything_3.specs.Prediction``) and their resampling to the input image sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ._native import get_core

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
        from ._checks import _finite, check_count

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



def prediction_from_result(result: dict, tap_names: tuple, feat_taps: tuple, feat_layers: tuple) -> Prediction:
    """The :class:`Prediction` of the core's result dict, with the requested taps checked
    and the backbone features as ``aux["feat_layer_<i>"]`` (N, H/14, W/14, C)."""
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
    return prediction
