"""``glb``: ``scene.glb`` (points + camera frustums, aligned to the first camera; ref:
depth_anything_3/utils/export/glb.py), plus ``depth_vis/*.jpg`` and ``scene.jpg`` (a copy of
``depth_vis/0000.jpg``) unless ``export_depth_vis=False``."""

from __future__ import annotations

from ..._checks import _finite
from .. import scene
from ..files import atomic_write_bytes
from ..format import ExportContext, ExportFormat
from . import depth_vis

OPTIONS = {**scene.POINT_OPTIONS, "show_cameras": True, "camera_size": 0.03, "export_depth_vis": True}


def _check(opts: dict) -> None:
    scene.check_point_options("glb", opts)
    if not _finite("glb camera_size", opts["camera_size"]) > 0:
        raise ValueError(f"glb camera_size: expected a finite value > 0, got {opts['camera_size']}")


def _write(ctx: ExportContext, opts: dict) -> None:
    glb = dict(opts)
    show, size, vis = glb.pop("show_cameras"), glb.pop("camera_size"), glb.pop("export_depth_vis")
    scene.write_glb(ctx.out / "scene.glb", ctx.prediction, points=ctx.prediction.points(**glb),
                    show_cameras=show, camera_size=size)
    if vis:  # as upstream: depth_vis/ and scene.jpg = depth_vis/0000.jpg
        depth_vis.write_once(ctx, depth_vis.OPTIONS)
        first = ctx.out / "depth_vis" / "0000.jpg"
        atomic_write_bytes(ctx.out / "scene.jpg", lambda f: f.write(first.read_bytes()))


FORMAT = ExportFormat(
    name="glb", summary="points + cameras (glTF binary)", write=_write, options=OPTIONS, check=_check,
    needs_images=True, needs_cameras=True,
    shared_args={"conf_thresh_percentile": "conf_thresh_percentile", "num_max_points": "num_max_points",
                 "remove_sky": "remove_sky", "show_cameras": "show_cameras"},
    order=2, official=True)
