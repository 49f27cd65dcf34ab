"""Official DA3 networks with seeded, perturbed random weights, and HF-style snapshots of them.

The networks are built from the official ``depth_anything_3`` package (0.1.1) exactly as its
API does (``create_object(load_config(configs/<preset>.yaml))``), in fp32 eval mode.

Perturbation (da3-architecture.md, "Testing a port without trained weights"; matched
tensor by tensor against the fixture ``da3-small-rand-f16.gguf``, whose RNG stream is not
reproduced): ``torch.manual_seed(seed)`` before building (default init), then with a
``torch.Generator`` seeded ``seed``:

- every ``nn.LayerNorm``: weight = 1 + 0.2 N(0,1), bias = 0.1 N(0,1) (backbone, q/k norms,
  head norm, aux LayerNorm, camera encoder);
- every LayerScale gamma: U(0.3, 1.0);
- backbone ``cls_token`` and ``pos_embed``: 0.1 N(0,1); ``camera_token``: 0.5 N(0,1);
- q and k rows of every ``attn.qkv`` weight (backbone and camera encoder): x3;
- ``cam_dec.fc_fov.0.bias``: U(0.8, 1.0) (positive fov);
- final depth conv (``head.scratch.output_conv2.2.weight``) and sky conv
  (``sky_output_conv2.2.weight``): x20.
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import shims

shims.install()

import torch  # noqa: E402
from torch import nn  # noqa: E402

PRESETS = ("da3-small", "da3-base", "da3-large", "da3-giant", "da3mono-large", "da3metric-large",
           "da3nested-giant-large")


def _configs_dir() -> Path:
    import depth_anything_3.cfg as cfg_mod

    return Path(cfg_mod.__file__).resolve().parent / "configs"


@contextlib.contextmanager
def _vit_depth(depth: Optional[int]):
    """Temporarily give the vit_* constructors used by DinoV2 a smaller default depth."""
    import depth_anything_3.model.dinov2.dinov2 as dv

    names = ("vit_small", "vit_base", "vit_large", "vit_giant2")
    saved = {n: getattr(dv, n) for n in names}
    if depth is not None:
        for n in names:
            setattr(dv, n, functools.partial(saved[n], depth=depth))
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(dv, n, f)


@contextlib.contextmanager
def _skip_init():
    """Make nn.init no-ops: builds in milliseconds with uninitialised (untouched) memory."""
    names = ["kaiming_uniform_", "uniform_", "normal_", "trunc_normal_", "zeros_", "ones_",
             "constant_", "xavier_uniform_"]
    saved = {n: getattr(nn.init, n) for n in names}
    for n in names:
        setattr(nn.init, n, lambda t, *a, **k: t)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


def _apply_overrides(cfg, overrides: Optional[dict]):
    """Apply da3cpp_overrides (depth/out_layers/alt_start) to each DinoV2 config in cfg."""
    if not overrides:
        return
    branches = [("da3", cfg.anyview), ("da3_metric", cfg.metric)] if "anyview" in cfg else [("", cfg)]
    for name, branch in branches:
        ov = overrides.get(name, overrides) if name else overrides
        net = branch.net
        if "out_layers" in ov:
            net.out_layers = list(ov["out_layers"])
        if "alt_start" in ov and net.alt_start != -1:
            net.alt_start = net.rope_start = net.qknorm_start = int(ov["alt_start"])


def build_model(preset: str, overrides: Optional[dict] = None, init: bool = True) -> nn.Module:
    """The official network of ``preset`` (eval, fp32), default-initialised from the current
    torch RNG state (or uninitialised with ``init=False``). ``overrides`` as in
    ``depth_anything_cpp.convert.OVERRIDES_KEY`` (one depth for all branches here)."""
    from depth_anything_3.cfg import create_object, load_config

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}")
    cfg = load_config(str(_configs_dir() / f"{preset}.yaml"))
    _apply_overrides(cfg, overrides)
    depth = None
    if overrides:
        depths = {int(v["depth"]) for v in ([overrides] + [overrides.get(k, {}) for k in ("da3", "da3_metric")])
                  if isinstance(v, dict) and "depth" in v}
        if len(depths) > 1:
            raise ValueError("reduced models here use one depth for all branches")
        depth = depths.pop() if depths else None
    with _vit_depth(depth), (contextlib.nullcontext() if init else _skip_init()):
        model = create_object(cfg)
    model.eval()
    model.da3cpp_preset = preset
    model.da3cpp_overrides = overrides or None
    return model


def _layerscales(model: nn.Module):
    for name, mod in model.named_modules():
        if hasattr(mod, "gamma") and isinstance(getattr(mod, "gamma"), nn.Parameter):
            yield name, mod


@torch.no_grad()
def perturb(model: nn.Module, seed: int) -> nn.Module:
    """Randomise the parameters default init leaves trivial (see module docstring). In place."""
    g = torch.Generator().manual_seed(int(seed))

    def randn(p):
        return torch.randn(p.shape, generator=g, dtype=p.dtype)

    def rand(p):
        return torch.rand(p.shape, generator=g, dtype=p.dtype)

    nets = [model.da3, model.da3_metric] if hasattr(model, "da3_metric") else [model]
    for net in nets:
        vit = net.backbone.pretrained
        vit.cls_token.copy_(0.1 * randn(vit.cls_token))
        vit.pos_embed.copy_(0.1 * randn(vit.pos_embed))
        if hasattr(vit, "camera_token"):
            vit.camera_token.copy_(0.5 * randn(vit.camera_token))
        for _, mod in net.named_modules():
            if isinstance(mod, nn.LayerNorm) and mod.elementwise_affine:
                mod.weight.copy_(1 + 0.2 * randn(mod.weight))
                mod.bias.copy_(0.1 * randn(mod.bias))
        for _, mod in _layerscales(net):
            mod.gamma.copy_(0.3 + 0.7 * rand(mod.gamma))
        for name, mod in net.named_modules():
            if name.endswith("attn") and hasattr(mod, "qkv"):
                c = mod.qkv.weight.shape[1]
                mod.qkv.weight[: 2 * c] *= 3.0
        if getattr(net, "cam_dec", None) is not None:
            b = net.cam_dec.fc_fov[0].bias
            b.copy_(0.8 + 0.2 * rand(b))
        head = net.head
        head.scratch.output_conv2[2].weight *= 20.0
        if hasattr(head.scratch, "sky_output_conv2"):
            head.scratch.sky_output_conv2[2].weight *= 20.0
    return model


def make_model(preset: str, seed: int = 0, overrides: Optional[dict] = None) -> nn.Module:
    """Official ``preset`` network, seeded (``torch.manual_seed(seed)`` before building) and
    perturbed with ``seed``; fp32, eval mode."""
    torch.manual_seed(int(seed))
    return perturb(build_model(preset, overrides), seed)


def snapshot_state_dict(model: nn.Module) -> tuple[dict, dict]:
    """(tensors, metadata) as ``safetensors.torch.save_model`` would store the model under
    ``model.``: shared tensors kept once (first name), the others as metadata aliases."""
    tensors: dict = {}
    metadata: dict = {"format": "pt"}
    seen: dict = {}
    for key, t in model.state_dict().items():
        full = f"model.{key}"
        ptr = (t.data_ptr(), t.shape, t.stride())
        if t.numel() and ptr in seen:
            metadata[full] = seen[ptr]
            continue
        seen[ptr] = full
        tensors[full] = t.detach().contiguous()
    return tensors, metadata


def save_snapshot(model: nn.Module, directory, preset: Optional[str] = None,
                  drop: Sequence[str] = (), extra: Optional[dict] = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` like an official HF snapshot.

    ``drop``: state-dict keys (with ``model.``) to leave out; ``extra``: additional tensors
    (name -> torch tensor) to add; both for negative tests.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    preset = preset or getattr(model, "da3cpp_preset")
    cfg = {"model_name": preset}
    if getattr(model, "da3cpp_overrides", None):
        cfg["da3cpp_overrides"] = model.da3cpp_overrides
    (directory / "config.json").write_text(json.dumps(cfg))
    tensors, metadata = snapshot_state_dict(model)
    for k in drop:
        tensors.pop(k, None)
        metadata.pop(k, None)
    if extra:
        tensors.update({k: v.contiguous() for k, v in extra.items()})
    save_file(tensors, str(directory / "model.safetensors"), metadata=metadata)
    return directory


@torch.no_grad()
def load_gguf_weights(model: nn.Module, gguf_path, preset: Optional[str] = None) -> list[str]:
    """Copy the tensors of a GGUF in our layout into ``model`` (dequantized to f32).

    Returns the state-dict keys the file did not provide (e.g. cam_enc/aux for a published
    file); those keep the model's values.
    """
    import gguf

    from depth_anything_cpp.convert import expected_tensors

    preset = preset or getattr(model, "da3cpp_preset")
    reader = gguf.GGUFReader(str(gguf_path))
    data = {}
    for t in reader.tensors:
        arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        data[t.name] = np.array(arr, dtype=np.float32)  # writable copy
    sd = model.state_dict()
    missing = []
    for spec in expected_tensors(preset, extras=True, overrides=getattr(model, "da3cpp_overrides", None)):
        if spec.name is None or spec.name not in data:
            if spec.name is not None:
                missing.append(spec.key)
            continue
        sd[spec.key].copy_(torch.from_numpy(data[spec.name].reshape(spec.shape)))
        for k in spec.shared:
            sd[k].copy_(sd[spec.key])
    return missing
