"""One stand-in for the compiled core, for tests of the Python layers above it (argument
handling, Prediction building, exports, CLI) where running the network adds nothing.
Its ``Model`` methods take the parameters of the real binding's, by name and in order
(tests/test_api.py::test_fake_core_matches_the_binding checks it against the built module).
"""

from __future__ import annotations

import types
from typing import Any, Optional

import numpy as np


def processed_size(w: int, h: int, res: int, method: str) -> tuple[int, int]:
    """(width, height) of an image after the official resize to ``res`` and the rounding to 14."""
    side = max(w, h) if method == "upper_bound_resize" else min(w, h)
    nw, nh = max(1, round(w * res / side)), max(1, round(h * res / side))

    def mult(x: int) -> int:
        down = x // 14 * 14
        return down + 14 if abs(down + 14 - x) <= abs(x - down) else down
    return max(14, mult(nw)), max(14, mult(nh))


class FakeModel:
    """Stands in for the compiled ``Model``.

    Default (``stride=None``): views resized (nearest) to the processed size of
    ``process_res``, depth = luminance / 255 + 1. With ``stride``: views subsampled by
    ``stride`` whatever ``process_res``, depth = 1 + column index / 10. Records the
    constructor arguments (``args``) and every ``infer`` call (``calls``: (images, kwargs)).
    """

    def __init__(self, path: str, n_threads: Any = None, backend: Any = None, device: Any = None,
                 metric_path: Any = None, precision: Any = None, *, info: Optional[dict] = None,
                 sky: bool = False, stride: Optional[int] = None) -> None:
        self.args = dict(path=path, n_threads=n_threads, backend=backend, device=device, precision=precision)
        self._info = {"preset": "da3-small", "weight_type": "f16", "has_camera_encoder": 1,
                      "has_camera_decoder": 1, "has_aux_head": 1, "has_sky": int(sky), "is_metric": 0}
        self._info.update(info or {})
        self.stride = stride
        self.calls: list = []

    def info(self) -> dict:
        return dict(self._info)

    def close(self) -> None:
        pass

    def infer(self, images: list, extrinsics: Any = None, intrinsics: Any = None, process_res: Any = None,
              process_res_method: Any = None, ref_view_strategy: Any = None, use_ray_pose: Any = None,
              compute_aux: Any = None, align_to_input_ext_scale: Any = None, taps: Any = (),
              max_image_pixels: Any = None, profile: bool = False) -> dict:
        kwargs = dict(extrinsics=extrinsics, intrinsics=intrinsics, process_res=process_res,
                      process_res_method=process_res_method, ref_view_strategy=ref_view_strategy,
                      use_ray_pose=use_ray_pose, compute_aux=compute_aux,
                      align_to_input_ext_scale=align_to_input_ext_scale, taps=taps,
                      max_image_pixels=max_image_pixels)
        self.calls.append((images, kwargs))
        proc = self._views(images, process_res, process_res_method)
        n, h, w = proc.shape[:3]
        if self.stride is None:
            depth = proc.mean(axis=3).astype(np.float32) / 255 + 1
        else:
            depth = np.broadcast_to(1 + np.arange(w, dtype=np.float32) / 10, (n, h, w)).copy()
        out = {
            "depth": depth,
            "conf": np.full((n, h, w), 2.0, np.float32),
            "extrinsics": np.tile(np.eye(3, 4, dtype=np.float32), (n, 1, 1)),
            "intrinsics": np.tile(np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float32), (n, 1, 1)),
            "processed_images": proc,
            "is_metric": bool(self._info["is_metric"]),
        }
        if self._info["has_sky"]:
            out["sky"] = np.linspace(0, 1, n * h * w, dtype=np.float32).reshape(n, h, w)
            del out["conf"]
        for t in taps:
            out[t] = np.zeros((n, 4), np.float32)
        return out

    def _views(self, images: list, process_res: int, method: str) -> np.ndarray:
        if self.stride is not None:
            return np.stack([img[::self.stride, ::self.stride] for img in images])
        h0, w0 = images[0].shape[:2]
        w, h = processed_size(w0, h0, process_res, method)
        rows = np.arange(h) * h0 // h
        cols = np.arange(w) * w0 // w
        return np.stack([img[rows][:, cols] for img in images])


def make_fake_core(**model_kwargs: Any) -> types.SimpleNamespace:
    """A module-like fake core whose ``Model(...)`` makes :class:`FakeModel`s with
    ``model_kwargs`` (``info``, ``sky``, ``stride``); ``core.models`` lists them."""
    core = types.SimpleNamespace(models=[], variant=lambda: "fake", ggml_version=lambda: "0.0", max_views=256)

    def model(path: str, n_threads: Any = None, backend: Any = None, device: Any = None, metric_path: Any = None,
              precision: Any = None) -> FakeModel:
        m = FakeModel(path, n_threads, backend, device, metric_path, precision, **model_kwargs)
        core.models.append(m)
        return m
    core.Model = model
    return core
