"""Shared writer of the npz and mini_npz formats (ref: depth_anything_3/utils/export/npz.py:
keys, rounding, paths)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..files import write_npz
from ..format import ExportContext


def write_results(ctx: ExportContext, *, mini: bool) -> None:
    """``exports/<mini_npz|npz>/results.npz`` of the prediction."""
    prediction = ctx.prediction
    d = ctx.subdir("exports", "mini_npz" if mini else "npz")
    arrays: dict[str, Optional[np.ndarray]] = {}
    if not mini:
        arrays["image"] = prediction.processed_images
    arrays["depth"] = np.round(prediction.depth, 8 if mini else 6)
    arrays["conf"] = None if prediction.conf is None else np.round(prediction.conf, 2)
    arrays["extrinsics"] = prediction.extrinsics
    arrays["intrinsics"] = prediction.intrinsics
    if not mini:
        arrays["sky"] = prediction.sky
    write_npz(d / "results.npz", **arrays)
