"""Reference harness: the official PyTorch DA3 network (``depth_anything_3`` 0.1.1) with
seeded perturbed random weights, HF-style snapshots of it, fp32 runs with graph taps, and
the official preprocessing. Test-only; needs torch and depth_anything_3 (tests skip
without them)."""

from .model import PRESETS, build_model, load_gguf_weights, make_model, perturb, save_snapshot
from .preprocess import preprocess_reference
from .run import REF_VIEW_STRATEGIES, normalize_extrinsics, run_reference

__all__ = ["PRESETS", "build_model", "make_model", "perturb", "save_snapshot", "load_gguf_weights",
           "run_reference", "normalize_extrinsics", "preprocess_reference", "REF_VIEW_STRATEGIES"]
