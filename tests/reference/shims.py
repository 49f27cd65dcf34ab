"""Tiny stand-ins for the optional imports of the official ``depth_anything_3`` package.

The official network code needs only torch/numpy/einops/addict/omegaconf, but a few of
its modules import extras at top level: ``torchvision.transforms`` (InputProcessor) and
``evo`` (pose alignment, imported by the giant's Gaussian adapter and by api.py). Test
machines do not carry those, so :func:`install` registers minimal, behaviour-equivalent
modules under those names *only if the real ones are missing*.

- ``torchvision.transforms``: ``ToTensor`` (HWC uint8 PIL/ndarray -> CHW float32 / 255),
  ``Normalize`` and ``CenterCrop`` (torchvision's rounding: top = round((H - h) / 2)).
- ``imageio``: an empty module (``utils/parallel_utils.py`` imports it, the
  preprocessing path never calls it).
- ``evo.core.trajectory.PosePath3D`` with ``align(ref, correct_scale=True)`` and
  ``evo.core.geometry.umeyama_alignment`` exactly as evo computes them (Umeyama 1991,
  raising ``GeometryException`` on a degenerate covariance, e.g. fewer than 3
  non-collinear camera centres).
"""

from __future__ import annotations

import sys
import types

import numpy as np

__all__ = ["install", "GeometryException"]


class GeometryException(Exception):
    """Raised like evo's for a degenerate Umeyama problem."""


def umeyama_alignment(x: np.ndarray, y: np.ndarray, with_scale: bool = False):
    """Sim(m) (r, t, c) minimising ||y - (c r x + t)||; x, y are (m, n). As evo does it."""
    m, n = x.shape
    mean_x = x.mean(axis=1)
    mean_y = y.mean(axis=1)
    sigma_x = 1.0 / n * (np.linalg.norm(x - mean_x[:, np.newaxis]) ** 2)
    outer_sum = np.zeros((m, m))
    for i in range(n):
        outer_sum += np.outer((y[:, i] - mean_y), (x[:, i] - mean_x))
    cov_xy = np.multiply(1.0 / n, outer_sum)
    u, d, v = np.linalg.svd(cov_xy)
    if np.count_nonzero(d > np.finfo(d.dtype).eps) < m - 1:
        raise GeometryException("Degenerate covariance rank, Umeyama alignment is not possible")
    s = np.eye(m)
    if np.linalg.det(u) * np.linalg.det(v) < 0.0:
        s[m - 1, m - 1] = -1
    r = u.dot(s).dot(v)
    c = 1 / sigma_x * np.trace(np.diag(d).dot(s)) if with_scale else 1.0
    t = mean_y - np.multiply(c, r.dot(mean_x))
    return r, t, c


class PosePath3D:
    """The part of evo's PosePath3D that depth_anything_3.utils.pose_align uses."""

    def __init__(self, poses_se3):
        self.poses_se3 = [np.asarray(p, dtype=np.float64) for p in poses_se3]

    @property
    def positions_xyz(self) -> np.ndarray:
        return np.array([p[:3, 3] for p in self.poses_se3])

    def align(self, traj_ref: "PosePath3D", correct_scale: bool = False,
              correct_only_scale: bool = False, n: int = -1):
        with_scale = correct_scale or correct_only_scale
        xs = self.positions_xyz if n == -1 else self.positions_xyz[:n]
        ys = traj_ref.positions_xyz if n == -1 else traj_ref.positions_xyz[:n]
        r_a, t_a, s = umeyama_alignment(xs.T, ys.T, with_scale)
        if correct_only_scale or correct_scale:
            scaled = []
            for p in self.poses_se3:
                q = p.copy()
                q[:3, 3] = s * p[:3, 3]
                scaled.append(q)
            self.poses_se3 = scaled
        if not correct_only_scale:
            tf = np.eye(4)
            tf[:3, :3] = r_a
            tf[:3, 3] = t_a
            self.poses_se3 = [tf @ p for p in self.poses_se3]
        return r_a, t_a, s


class _ToTensor:
    def __call__(self, pic):
        import torch

        arr = np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        return t.float().div(255) if arr.dtype == np.uint8 else t.float()


class _Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = list(mean), list(std)

    def __call__(self, t):
        import torch

        mean = torch.as_tensor(self.mean, dtype=t.dtype)[:, None, None]
        std = torch.as_tensor(self.std, dtype=t.dtype)[:, None, None]
        return (t - mean) / std


class _CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, t):
        h, w = t.shape[-2:]
        th, tw = self.size
        top = int(round((h - th) / 2.0))
        left = int(round((w - tw) / 2.0))
        return t[..., top:top + th, left:left + tw]


def install() -> None:
    """Register the stand-ins in ``sys.modules`` where the real packages are absent."""
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tr = types.ModuleType("torchvision.transforms")
        tr.ToTensor, tr.Normalize, tr.CenterCrop = _ToTensor, _Normalize, _CenterCrop
        tv.transforms = tr
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tr
    try:
        import imageio  # noqa: F401
    except ImportError:
        sys.modules["imageio"] = types.ModuleType("imageio")
    try:
        import evo.core.trajectory  # noqa: F401
    except ImportError:
        evo = types.ModuleType("evo")
        core = types.ModuleType("evo.core")
        traj = types.ModuleType("evo.core.trajectory")
        geom = types.ModuleType("evo.core.geometry")
        traj.PosePath3D = PosePath3D
        geom.umeyama_alignment = umeyama_alignment
        geom.GeometryException = GeometryException
        evo.core, core.trajectory, core.geometry = core, traj, geom
        sys.modules.update({"evo": evo, "evo.core": core, "evo.core.trajectory": traj,
                            "evo.core.geometry": geom})
