"""High-level Python API: :class:`DepthAnything3` and :class:`Prediction`.

Mirrors the official ``depth_anything_3.api.DepthAnything3.inference`` and
``depth_anything_3.specs.Prediction`` (depth-anything-3 0.1.1) without PyTorch: the
network, preprocessing (resize to ``process_res``, crop mixed sizes, ImageNet
normalization) and camera post-processing run in the compiled ggml core.
"""

from __future__ import annotations
# The implementation lives in model.py (DepthAnything3), prediction.py (Prediction),
# arguments.py (argument checks) and _native.py (the compiled core); these names stay
# importable from here.
from ._native import get_core  # noqa: F401
from .arguments import (BACKENDS, PRECISIONS, PROCESS_RES_METHODS, PROCESS_RES_RANGE,  # noqa: F401
                        REF_VIEW_STRATEGIES)
from .model import INFERENCE_DEFAULTS, LOAD_DEFAULTS, DepthAnything3  # noqa: F401
from .prediction import Prediction, _patch_size, _resize_bilinear, _resize_nearest  # noqa: F401

__all__ = ["DepthAnything3", "Prediction", "get_core"]
