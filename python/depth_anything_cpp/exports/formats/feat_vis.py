"""``feat_vis``: ``feat_vis/feat_layer_<i>/000000.jpg``...: processed image | PCA of the
features as RGB (:func:`~depth_anything_cpp.exports.features_to_rgb`), and
``feat_vis/feat_layer_<i>.mp4`` (``fps``, with PyAV); needs ``export_feat_layers`` (ref:
depth_anything_3/utils/export/feat_vis.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..files import _subdir, atomic_write_bytes, write_image
from ..format import ExportContext, ExportFormat
from ..visual import features_to_rgb

OPTIONS = {"fps": 15, "clip_percent": 10.0, "video": True}


def _check(fv: dict) -> None:
    if isinstance(fv["fps"], bool) or not float(fv["fps"]) > 0:
        raise ValueError(f"feat_vis fps: expected a value > 0, got {fv['fps']!r}")
    if not 0.0 <= float(fv["clip_percent"]) < 50.0:
        raise ValueError(f"feat_vis clip_percent: expected a value in [0, 50), got {fv['clip_percent']}")


def _prepare(prediction: Any, opts: dict, image_paths: Any) -> None:
    if getattr(prediction, "processed_images", None) is None:
        raise ValueError("export 'feat_vis': prediction.processed_images is required")
    if not any(k.startswith("feat_layer_") for k in getattr(prediction, "aux", {})):
        raise ValueError("export 'feat_vis' needs features: pass export_feat_layers=[...] to inference")


def _write(ctx: ExportContext, opts: dict) -> None:
    _export_feat_vis(ctx.prediction, ctx.out, **opts)


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


FORMAT = ExportFormat(name="feat_vis", summary="PCA of backbone features (JPEG, MP4)", write=_write,
                      options=OPTIONS, check=_check, prepare=_prepare, shared_args={"fps": "feat_vis_fps"},
                      order=5, official=True)
