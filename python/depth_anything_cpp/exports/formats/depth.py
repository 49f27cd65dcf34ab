"""``depth``: ``depth/0000.png``...: 16-bit depth PNGs (encoding in
:mod:`depth_anything_cpp.exports`)."""

from __future__ import annotations

from ..depth_maps import write_depth_png16
from ..format import ExportContext, ExportFormat


def _write(ctx: ExportContext, options: dict) -> None:
    prediction = ctx.prediction
    d = ctx.subdir("depth")
    for i in range(prediction.depth.shape[0]):
        write_depth_png16(d / f"{i:04d}.png", prediction.depth[i], bool(prediction.is_metric))


FORMAT = ExportFormat(name="depth", summary="16-bit depth PNGs", write=_write, order=6)
