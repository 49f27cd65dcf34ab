"""``mini_npz``: ``exports/mini_npz/results.npz`` with depth (rounded to 8 decimals), conf
(2), extrinsics, intrinsics (ref: depth_anything_3/utils/export/npz.py)."""

from __future__ import annotations

from ..format import ExportContext, ExportFormat
from ._npz import write_results


def _write(ctx: ExportContext, options: dict) -> None:
    write_results(ctx, mini=True)


FORMAT = ExportFormat(name="mini_npz", summary="depth, conf, extrinsics, intrinsics (NPZ)", write=_write,
                      order=0, official=True)
