"""The official preprocessing (depth_anything_3.utils.io.input_processor.InputProcessor)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from . import shims

shims.install()

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def preprocess_reference(images: Sequence, process_res: int = 504, method: str = "upper_bound_resize",
                         intrinsics: Optional[np.ndarray] = None
                         ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Preprocess like ``DepthAnything3.inference`` does.

    Args:
        images: paths, PIL images or HxWx3 uint8 arrays.
        process_res, method: as the official API ("upper_bound_resize", "lower_bound_resize").
        intrinsics: optional [N, 3, 3] at the original sizes; returned rescaled/cropped.

    Returns:
        (input [N, 3, H, W] float32 normalized, processed_images [N, H, W, 3] uint8 as the API
        returns them: (x*std+mean) clipped to [0, 1], *255, truncated; intrinsics or None).
    """
    from depth_anything_3.utils.io.input_processor import InputProcessor

    imgs = [str(i) if hasattr(i, "__fspath__") else i for i in images]
    batch, _, ixt = InputProcessor()(imgs, None, None if intrinsics is None else np.asarray(intrinsics),
                                     process_res, method, num_workers=1, sequential=True)
    x = batch.numpy().astype(np.float32)
    rgb = np.clip(x.transpose(0, 2, 3, 1) * STD + MEAN, 0, 1)
    rgb = (rgb * 255).astype(np.uint8)
    return x, rgb, None if ixt is None else ixt.numpy().astype(np.float32)
