"""``disparity``: ``disparity/0000.png``...: 16-bit PNGs of 1/depth (encoding in
:mod:`depth_anything_cpp.exports`)."""

from __future__ import annotations

from ..depth_maps import write_disparity_png16
from ..format import ExportContext, ExportFormat


def _write(ctx: ExportContext, options: dict) -> None:
    prediction = ctx.prediction
    d = ctx.subdir("disparity")
    for i in range(prediction.depth.shape[0]):
        write_disparity_png16(d / f"{i:04d}.png", prediction.depth[i])


FORMAT = ExportFormat(name="disparity", summary="16-bit disparity (1/depth) PNGs", write=_write, order=7)
