"""``ply``: ``scene.ply``: binary little-endian point cloud (float32 x y z + uchar red green
blue), world frame, filtered as the glb format."""

from __future__ import annotations

from .. import scene
from ..format import ExportContext, ExportFormat


def _write(ctx: ExportContext, options: dict) -> None:
    pts = ctx.prediction.points(**options)
    scene.write_ply(ctx.out / "scene.ply", pts["xyz"], pts["rgb"])


FORMAT = ExportFormat(
    name="ply", summary="point cloud (binary PLY)", write=_write, options=dict(scene.POINT_OPTIONS),
    check=lambda opts: scene.check_point_options("ply", opts), needs_images=True, needs_cameras=True,
    shared_args={"conf_thresh_percentile": "conf_thresh_percentile", "num_max_points": "num_max_points",
                 "remove_sky": "remove_sky"},
    order=8)
