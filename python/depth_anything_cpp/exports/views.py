"""Per-view files of the ``da3cpp depth`` command: 16-bit depth, visualisations, JSON
summary and NPZ of one view."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .depth_maps import write_depth_png8, write_depth_png16
from .files import IMAGE_FORMATS, PathLike, atomic_write_bytes, write_image, write_npz
from .visual import depth_to_normals, normals_to_rgb, write_depth_vis


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

