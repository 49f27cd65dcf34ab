"""Run the official fp32 network and capture the graph intermediates ("taps") the C++
engine can return, under the tap names of the project contract.

All taps are float32 numpy arrays in PyTorch memory order, one row per view, in the
*input* view order (the official backbone reorders views when it picks a reference view;
block taps are put back in input order here):

- ``vit.embed`` [N, 1+hw, C]: cls + patches + pos_embed (input of block 0)
- ``vit.blk.{i}`` [N, 1+hw, C]: output of block i (global blocks run on [1, N*T, C]: reshaped)
- ``vit.feat.{k}`` [N, hw, 2C] (any-view) or [N, hw, C] (mono): backbone features after
  cat + norm, token 0 dropped; ``vit.cam_tok.{k}`` [N, 2C]: un-normalized token 0
- ``head.proj.{k}`` [N, C_k, ph, pw]: after 1x1 project (+ UV pos-embed for DualDPT)
- ``head.resize.{k}``, ``head.layer_rn.{k}``, ``head.fuse.{k}`` (refinenet{k+1} output)
- ``head.out1`` (output_conv1), ``head.logits`` [N, out_dim, H, W] (output_conv2,
  pre-activation), ``head.sky_logits`` [N, 1, H, W] (mono/metric)
- ``head.aux_logits`` [N, 7, 8ph, 8pw] (aux ray head, finest level, pre-activation)
- ``cam.pose_enc`` [N, 9] (t, quat xyzw, fov_h, fov_w); ``cam.enc`` [N, C] (camera
  encoder output, pose-conditioned input only)

For the nested preset, taps of the metric branch carry the prefix ``m.`` (``m.vit.blk.0``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, List, Optional

import numpy as np

from . import shims

shims.install()

import torch  # noqa: E402

REF_VIEW_STRATEGIES = ("saddle_balanced", "first", "middle", "saddle_sim_range")


def _np(t) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


class _Taps:
    """Forward hooks on one DepthAnything3Net; collects per-call tensors by tap name."""

    def __init__(self, net, prefix: str, n_views: int, ref_idx: List[Optional[int]]):
        self.net, self.prefix, self.n = net, prefix, n_views
        self.ref_idx = ref_idx
        self.parts: Dict[str, List[np.ndarray]] = {}
        self.handles = []

    def _put(self, name: str, arr: np.ndarray) -> None:
        self.parts.setdefault(self.prefix + name, []).append(arr)

    def _restore(self, arr: np.ndarray, block: int) -> np.ndarray:
        """Undo the official reference-view reordering for block outputs after it."""
        vit = self.net.backbone.pretrained
        b = self.ref_idx[0]
        if b is None or b == 0 or vit.alt_start == -1 or block < vit.alt_start - 1:
            return arr
        order = [b] + [i for i in range(self.n) if i != b]      # position p holds view order[p]
        out = np.empty_like(arr)
        out[order] = arr
        return out

    def add(self, module, name: str, *, pre: bool = False, fn=None) -> None:
        def hook(mod, args, output=None):
            t = args[0] if pre else output
            self._put(name, fn(t) if fn else _np(t))
        if pre:
            self.handles.append(module.register_forward_pre_hook(hook))
        else:
            self.handles.append(module.register_forward_hook(hook))

    def register(self) -> "_Taps":
        net, n = self.net, self.n
        vit = net.backbone.pretrained
        self.add(vit.blocks[0], "vit.embed", pre=True, fn=lambda t: _np(t).reshape(n, -1, t.shape[-1]))
        for i, blk in enumerate(vit.blocks):
            self.add(blk, f"vit.blk.{i}",
                     fn=lambda t, i=i: self._restore(_np(t).reshape(n, -1, t.shape[-1]), i))

        def backbone_out(mod, args, output):
            feats = output[0]
            for k, (feat, cam_tok) in enumerate(feats):
                self._put(f"vit.feat.{k}", _np(feat).reshape(n, feat.shape[-2], feat.shape[-1]))
                self._put(f"vit.cam_tok.{k}", _np(cam_tok).reshape(n, cam_tok.shape[-1]))
        self.handles.append(net.backbone.register_forward_hook(backbone_out))

        head = net.head
        for k in range(4):
            self.add(head.resize_layers[k], f"head.proj.{k}", pre=True)
            self.add(head.resize_layers[k], f"head.resize.{k}")
            self.add(getattr(head.scratch, f"layer{k + 1}_rn"), f"head.layer_rn.{k}")
            self.add(getattr(head.scratch, f"refinenet{k + 1}"), f"head.fuse.{k}")
        self.add(head.scratch.output_conv1, "head.out1")
        self.add(head.scratch.output_conv2, "head.logits")
        if hasattr(head.scratch, "sky_output_conv2"):
            self.add(head.scratch.sky_output_conv2, "head.sky_logits")
        if hasattr(head.scratch, "output_conv2_aux"):
            self.add(head.scratch.output_conv2_aux[-1], "head.aux_logits")

            def head_out(mod, args, output):
                if "ray" in output:
                    self._put("head.ray", _np(output["ray"]).reshape(n, *output["ray"].shape[2:]))
                    self._put("head.ray_conf", _np(output["ray_conf"]).reshape(n, *output["ray_conf"].shape[2:]))
            self.handles.append(head.register_forward_hook(head_out))
        if getattr(net, "cam_dec", None) is not None:
            self.add(net.cam_dec, "cam.pose_enc", fn=lambda t: _np(t).reshape(n, -1))
            self.add(net.cam_enc, "cam.enc", fn=lambda t: _np(t).reshape(n, -1))
        return self

    def collect(self) -> Dict[str, np.ndarray]:
        out = {}
        for name, parts in self.parts.items():
            # the heads run views in chunks of 8: one call per chunk, concatenated along views
            out[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@contextmanager
def _capture_ref_view(ref_idx: List[Optional[int]]):
    """Record the reference view the backbone selects (wraps the function it calls)."""
    import depth_anything_3.model.dinov2.vision_transformer as vt

    orig = vt.select_reference_view

    def wrapped(x, strategy="saddle_balanced"):
        b = orig(x, strategy=strategy)
        ref_idx[0] = int(b[0])
        return b
    vt.select_reference_view = wrapped
    try:
        yield
    finally:
        vt.select_reference_view = orig


def _to44(ext: np.ndarray) -> np.ndarray:
    ext = np.asarray(ext, dtype=np.float32)
    if ext.shape[-2:] == (4, 4):
        return ext
    out = np.tile(np.eye(4, dtype=np.float32), (ext.shape[0], 1, 1))
    out[:, :3, :4] = ext
    return out


def normalize_extrinsics(ext44: torch.Tensor) -> torch.Tensor:
    """As DepthAnything3._normalize_extrinsics (ref: depth_anything_3/api.py): express all
    poses relative to view 0, divide translations by the median camera distance (torch's
    lower median for an even count), clamped to >= 0.1. ext44: [1, N, 4, 4]."""
    from depth_anything_3.utils.geometry import affine_inverse

    transform = affine_inverse(ext44[:, :1])
    ex_t_norm = ext44 @ transform
    c2ws = affine_inverse(ex_t_norm)
    dists = c2ws[..., :3, 3].norm(dim=-1)
    median_dist = torch.clamp(torch.median(dists), min=1e-1)
    ex_t_norm[..., :3, 3] = ex_t_norm[..., :3, 3] / median_dist
    return ex_t_norm


@torch.no_grad()
def run_reference(model, input: np.ndarray, extrinsics: Optional[np.ndarray] = None,  # noqa: A002
                  intrinsics: Optional[np.ndarray] = None, use_ray_pose: bool = False,
                  ref_view_strategy: str = "saddle_balanced", taps: bool = True,
                  align_to_input_ext_scale: bool = True, ray_seed: int = 0) -> Dict[str, np.ndarray]:
    """Run the official fp32 network on a preprocessed batch and return outputs + taps.

    Args:
        model: DepthAnything3Net or NestedDepthAnything3Net (eval, fp32).
        input: [N, 3, H, W] float32, normalized (H, W multiples of 14).
        extrinsics: optional [N, 4, 4] or [N, 3, 4] world-to-camera; with ``intrinsics``
            [N, 3, 3] (pixels at the processed resolution) it conditions the network through
            the camera encoder, normalized as the official API does.
        use_ray_pose: pose from the aux ray head (official RANSAC, torch RNG seeded ``ray_seed``).
        ref_view_strategy: used with >= 3 views and no input poses.
        taps: capture the intermediates listed in the module docstring.
        align_to_input_ext_scale: with input poses, post-process like the API: Umeyama
            (evo) alignment of the input camera centres to the predicted ones; depth divided
            by its scale; extrinsics/intrinsics replaced by the inputs.

    Returns dict: ``depth`` [N,H,W], ``conf`` [N,H,W] (any-view), ``sky`` [N,H,W]
        (mono/metric), ``extrinsics`` [N,3,4], ``intrinsics`` [N,3,3] (when predicted),
        ``ref_view`` (index chosen, -1 if none), with input poses also ``depth_raw``,
        ``extrinsics_raw``, ``intrinsics_raw`` (network output), ``align_scale``; for ray
        pose ``ray`` [N,h,w,6], ``ray_conf`` [N,h,w]; plus taps.
    """
    if ref_view_strategy not in REF_VIEW_STRATEGIES:
        raise ValueError(f"ref_view_strategy must be one of {REF_VIEW_STRATEGIES}")
    x = torch.from_numpy(np.ascontiguousarray(input, dtype=np.float32))
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"input must be [N, 3, H, W], got {tuple(x.shape)}")
    n = x.shape[0]
    ex_t = in_t = None
    if (extrinsics is None) != (intrinsics is None):
        raise ValueError("extrinsics and intrinsics go together")
    if extrinsics is not None:
        ex_t = normalize_extrinsics(torch.from_numpy(_to44(extrinsics))[None].float())
        in_t = torch.from_numpy(np.asarray(intrinsics, dtype=np.float32))[None]

    nested = hasattr(model, "da3_metric")
    ref_idx: List[Optional[int]] = [None]
    tap_sets = []
    if taps:
        tap_sets.append(_Taps(model.da3 if nested else model, "", n, ref_idx).register())
        if nested:
            tap_sets.append(_Taps(model.da3_metric, "m.", n, [None]).register())
    try:
        with _capture_ref_view(ref_idx):
            if use_ray_pose:
                torch.manual_seed(ray_seed)
            out = model(x[None], ex_t, in_t, export_feat_layers=[], use_ray_pose=use_ray_pose,
                        ref_view_strategy=ref_view_strategy)
    finally:
        for t in tap_sets:
            t.remove()

    res: Dict[str, np.ndarray] = {"depth": _np(out["depth"][0]).reshape(n, *x.shape[-2:])}
    if "depth_conf" in out:
        res["conf"] = _np(out["depth_conf"][0])
    if "sky" in out:
        res["sky"] = _np(out["sky"][0])
    if "extrinsics" in out:
        res["extrinsics"] = _np(out["extrinsics"][0])[:, :3, :4]
        res["intrinsics"] = _np(out["intrinsics"][0])
    res["ref_view"] = np.array(-1 if ref_idx[0] is None else ref_idx[0])
    res["is_metric"] = np.array(int(out.get("is_metric", 0)))
    for t in tap_sets:
        res.update(t.collect())
    for k in ("head.ray", "head.ray_conf"):
        if k in res:
            res[k[len("head."):]] = res.pop(k)

    if extrinsics is not None and align_to_input_ext_scale and "extrinsics" in res:
        from depth_anything_3.utils.pose_align import align_poses_umeyama

        res["depth_raw"] = res["depth"].copy()
        res["extrinsics_raw"] = res["extrinsics"].copy()
        res["intrinsics_raw"] = res["intrinsics"].copy()
        ext_in = _to44(extrinsics)
        _, _, scale, _ = align_poses_umeyama(res["extrinsics"], ext_in, ransac=n >= 10,
                                             return_aligned=True, random_state=42)
        res["align_scale"] = np.array(float(scale))
        res["depth"] = (res["depth"] / scale).astype(np.float32)
        res["extrinsics"] = ext_in[:, :3, :4].astype(np.float32)
        res["intrinsics"] = np.asarray(intrinsics, dtype=np.float32)
    return res
