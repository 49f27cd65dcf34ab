"""``npz``: ``exports/npz/results.npz`` with image (N, H, W, 3) uint8, depth (6 decimals),
conf (2), extrinsics, intrinsics and ``sky`` (N, H, W) bool when the model predicts one
(ref: depth_anything_3/utils/export/npz.py)."""

from __future__ import annotations

from ..format import ExportContext, ExportFormat
from ._npz import write_results


def _write(ctx: ExportContext, options: dict) -> None:
    write_results(ctx, mini=False)


FORMAT = ExportFormat(name="npz", summary="mini_npz plus the processed images and sky (NPZ)", write=_write,
                      needs_images=True, order=1, official=True)
