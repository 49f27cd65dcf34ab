"""``depth_vis``: ``depth_vis/0000.jpg``...: processed image | colorized depth side by side
(2W x H, JPEG; ref: depth_anything_3/utils/export/depth_vis.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..format import ExportContext, ExportFormat
from ..visual import _colormap, write_depth_vis

# Spectral_r with near at the high end = the official look (Spectral, near = low end)
OPTIONS = {"cmap": "Spectral_r", "invert": False, "percentile": 2.0, "quality": 95}


def _check(vis: dict) -> None:
    _colormap(vis["cmap"])
    if not 0.0 <= float(vis["percentile"]) < 50.0:
        raise ValueError(f"depth_vis percentile: expected a value in [0, 50), got {vis['percentile']}")
    if isinstance(vis["quality"], bool) or not 1 <= int(vis["quality"]) <= 100:
        raise ValueError(f"depth_vis quality: expected 1..100, got {vis['quality']}")


def write_once(ctx: ExportContext, options: dict) -> Optional[list]:
    """Write ``depth_vis/`` unless a format of this call already did (the glb format writes
    it too); return the earlier files in that case, else None."""
    if ctx.shared.get("depth_vis"):
        return list(ctx.shared["depth_vis"])
    ctx.shared["depth_vis"] = _export_depth_vis(ctx, **options)
    return None


def _export_depth_vis(ctx: ExportContext, *, cmap: str, invert: bool, percentile: float,
                      quality: int) -> list[Path]:
    # ref: depth_anything_3/utils/export/depth_vis.py (image | depth, depth_vis/%04d.jpg)
    prediction = ctx.prediction
    d = ctx.subdir("depth_vis")
    paths = []
    for i in range(prediction.depth.shape[0]):
        path = d / f"{i:04d}.jpg"
        write_depth_vis(path, prediction.depth[i], cmap, image=prediction.processed_images[i],
                        invert=invert, percentile=percentile, quality=quality)
        paths.append(path)
    return paths


FORMAT = ExportFormat(name="depth_vis", summary="image | colorized depth (JPEG)", write=write_once,
                      options=OPTIONS, check=_check, needs_images=True, shared_args={"cmap": "depth_vis_cmap"},
                      order=4, official=True)
