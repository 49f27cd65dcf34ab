"""depth_anything_cpp: Depth Anything 3 without PyTorch, on a C++/ggml core.

Quick start::

    from depth_anything_cpp import DepthAnything3
    model = DepthAnything3.from_file("da3-small-f32.gguf")
    pred = model.inference(["a.png", "b.png"])
    pred.depth        # (N, H, W) float32
    pred.extrinsics   # (N, 3, 4) world-to-camera, OpenCV
    pts = pred.points()                 # world-frame xyz (M, 3) float32 + rgb (M, 3) uint8
    export(pred, "glb-colmap", "out/")  # or model.inference(..., export_dir=..., export_format=...)

The compiled core variant best suited to this CPU (or ``DA3CPP_VARIANT``) is chosen at
import; :func:`backend_info` says which and why. Importing never fails because of the core:
if none loads, the reason is kept and raised as :class:`VariantError` on first use.
"""

from __future__ import annotations

from . import _variants
from ._variants import available_variants, backend_info
from .api import DepthAnything3, Prediction
from .exports import FORMATS as EXPORT_FORMATS, export
from . import errors
from .errors import *  # noqa: F401,F403  (DA3Error and its subclasses: errors.__all__)

try:
    from importlib.metadata import PackageNotFoundError, version as _dist_version

    __version__ = _dist_version("depth-anything-cpp")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

try:
    _core, _core_reason = _variants.load_core()
except ImportError as _exc:  # VariantError included: kept, raised on first use
    _core, _core_reason = None, str(_exc)

__all__ = [
    "DepthAnything3",
    "Prediction",
    "export",
    "EXPORT_FORMATS",
    "backend_info",
    "available_variants",
    *errors.__all__,
    "__version__",
]
