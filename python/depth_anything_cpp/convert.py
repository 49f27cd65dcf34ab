"""Convert an official Depth Anything 3 Hugging Face snapshot to a GGUF file.

Command line (also ``python -m depth_anything_cpp.convert``)::

    da3cpp convert SNAPSHOT_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_k] [--no-extras]

Python::

    from depth_anything_cpp.convert import convert
    report = convert("DA3-SMALL/", "da3-small-f16.gguf", type="f16")

Input: a snapshot directory holding ``config.json`` (``{"model_name": "<preset>"}``, presets
in :data:`PRESETS`) and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``)
with keys ``model.<DepthAnything3Net path>`` (nested: ``model.da3.*``, ``model.da3_metric.*``).
No PyTorch is needed: the file is read with numpy.

Output: the published depth-anything.cpp GGUF layout (``docs/gguf-layout.md`` of the shared
docs): same tensor names, shapes, order, dtypes and metadata keys as the published files,
plus, unless ``extras=False``, the tensors those files lack, under our own names:

- camera encoder (pose-conditioned input): its official names with the ``cam_enc.`` prefix
  (``cam_enc.trunk.{i}.attn.qkv.weight``, ``cam_enc.token_norm.weight``,
  ``cam_enc.pose_branch.fc1.weight``, ...); metadata ``depthanything3.has_cam_enc`` and
  ``depthanything3.cam_enc.*``;
- aux ray head (ray pose): ``head.scratch.rn{i}_aux.*``, ``head.scratch.out1_aux.{j}``,
  ``head.scratch.out2a_aux``, ``head.scratch.out2_aux_ln``, ``head.scratch.out2b_aux``
  (finest level only, the only one the network uses); metadata ``depthanything3.head.has_aux``,
  ``head.aux_ray_dim``, ``head.aux_levels``.

A nested checkpoint becomes one file: the any-view giant under ``vit.*``/``head.*``/``cam.*``/
``cam_enc.*``/``gs.*`` and the metric branch under ``m_vit.*``/``m_head.*``.

Quantization (``type``) follows the published rule: only the transformer-block matmul weights
(``attn_qkv``, ``attn_proj``, ``mlp_fc1``/``mlp_fc2`` or ``mlp_w12``/``mlp_w3`` of ``vit`` and
``m_vit`` blocks, the same four of ``cam_enc.trunk`` blocks) and the camera-decoder linear
weights take the requested
type; everything else stays f32. ``q8_0`` needs rows (ggml ``ne[0]``) that are a multiple of
32 and ``q4_k`` a multiple of 256; a row that does not fit falls back to ``q8_0``, else ``f16``.
``bf16`` applies to the ViT blocks' weights only (what the CPU's bf16 matrix engines read, no
rounding at load); the camera encoder/decoder weights take ``f16`` (camera error, README).
The file records ``general.file_type``, ``depthanything3.quant_rule`` and the names of
fallen-back tensors in ``depthanything3.quant_fallback``.

Completeness: every tensor of the official network for the preset must be present (the
shared aux LayerNorm may be stored once, its other names given as safetensors metadata
aliases), and no other tensor may be: either is a :class:`ModelFormatError` naming it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import DA3Error, ModelFormatError, ModelNotFoundError

__all__ = ["convert", "main", "PRESETS", "WEIGHT_TYPES", "expected_tensors", "ConversionReport"]

# --------------------------------------------------------------------------------------
# Names: metadata keys and tensor-name pieces (the one place they are spelled)
# --------------------------------------------------------------------------------------

ARCH = "depthanything3"
WEIGHT_TYPES = ("f32", "f16", "q8_0", "q4_k", "bf16")
PATCH_SIZE = 14
POS_EMBED_GRID = 37
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
RESIZE_TARGET = 504
HEAD_FEATURES_2 = 32          # width of output_conv2's hidden conv (DPT/DualDPT)
AUX_OUT1_CONVS = 5            # convs in each output_conv1_aux level
AUX_RAY_DIM = 6               # ray channels of the aux head (+1 confidence)
CAM_ENC_DEPTH = 4             # transformer blocks of the camera encoder
CAM_ENC_HEADS = 16            # whatever its width
CAM_ENC_IN = 9                # pose encoding: t(3), quat xyzw(4), fov_h, fov_w


def meta_key(name: str) -> str:
    """Full GGUF metadata key of ``name`` (``"vit.depth"`` -> ``"depthanything3.vit.depth"``)."""
    return f"{ARCH}.{name}"


KEY_ARCH = meta_key("arch")
KEY_CHECKPOINT = meta_key("checkpoint_name")
KEY_PATCH_SIZE = meta_key("patch_size")
KEY_PRESET = meta_key("preset")                 # ours: official preset name
KEY_HAS_CAM_ENC = meta_key("has_cam_enc")       # ours
KEY_QUANT_RULE = meta_key("quant_rule")         # ours
KEY_QUANT_FALLBACK = meta_key("quant_fallback")  # ours, only when some tensor fell back
KEY_FILE_TYPE = "general.file_type"
KEY_QUANT_VERSION = "general.quantization_version"

# official block sub-key -> GGUF block sub-name (vit.blk.{i}.*, m_vit.blk.{i}.*)
BLOCK_NAMES = {
    "norm1.weight": "norm1.weight", "norm1.bias": "norm1.bias",
    "attn.qkv.weight": "attn_qkv.weight", "attn.qkv.bias": "attn_qkv.bias",
    "attn.q_norm.weight": "attn_qnorm.weight", "attn.q_norm.bias": "attn_qnorm.bias",
    "attn.k_norm.weight": "attn_knorm.weight", "attn.k_norm.bias": "attn_knorm.bias",
    "attn.proj.weight": "attn_proj.weight", "attn.proj.bias": "attn_proj.bias",
    "ls1.gamma": "ls1",
    "norm2.weight": "norm2.weight", "norm2.bias": "norm2.bias",
    "mlp.fc1.weight": "mlp_fc1.weight", "mlp.fc1.bias": "mlp_fc1.bias",
    "mlp.fc2.weight": "mlp_fc2.weight", "mlp.fc2.bias": "mlp_fc2.bias",
    "mlp.w12.weight": "mlp_w12.weight", "mlp.w12.bias": "mlp_w12.bias",
    "mlp.w3.weight": "mlp_w3.weight", "mlp.w3.bias": "mlp_w3.bias",
    "ls2.gamma": "ls2",
}
CAM_DEC_NAMES = {"backbone.0": "bb0", "backbone.2": "bb2", "fc_t": "fc_t", "fc_qvec": "fc_q",
                 "fc_fov.0": "fc_fov"}
OUT2_NAMES = {0: "out2a", 2: "out2b"}           # output_conv2.{0,2}
SKY_OUT2_NAMES = {0: "sky_out2a", 2: "sky_out2b"}
AUX_OUT2_NAMES = {0: "out2a_aux", 2: "out2_aux_ln", 5: "out2b_aux"}
GS_MERGER_NAMES = {0: "merger.0", 2: "merger.1", 4: "merger.2"}

# Tensors the quantization rule applies to (GGUF names).
QUANTIZED_TENSORS = (
    re.compile(r"^(m_)?vit\.blk\.\d+\.(attn_qkv|attn_proj|mlp_fc1|mlp_fc2|mlp_w12|mlp_w3)\.weight$"),
    re.compile(r"^cam\.(bb0|bb2|fc_t|fc_q|fc_fov)\.weight$"),
    re.compile(r"^cam_enc\.trunk\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.weight$"),
)
QUANT_RULE = ("transformer-block matmul weights ({m_,}vit.blk.*: attn_qkv, attn_proj, mlp_fc1, "
              "mlp_fc2, mlp_w12, mlp_w3; cam_enc.trunk.*: attn.qkv, attn.proj, mlp.fc1, mlp.fc2) "
              "and camera-decoder linear weights "
              "(cam.*.weight) take the file type; all other tensors f32; rows not a multiple of "
              "the block size fall back to q8_0, else f16; bf16: the vit blocks' weights only, "
              "the camera ones f16")

# --------------------------------------------------------------------------------------
# Presets (configs/*.yaml of depth_anything_3 0.1.1)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViTConfig:
    """DINOv2 backbone of a preset. ``*_start`` are -1 when off."""
    embed_dim: int
    depth: int
    num_heads: int
    ffn: str                  # "mlp" (fc1/fc2) or "swiglu" (w12/w3)
    out_layers: Tuple[int, ...]
    alt_start: int
    rope_start: int
    qknorm_start: int
    cat_token: bool

    @property
    def mlp_hidden(self) -> int:
        """fc1 width, or for SwiGLU the gated width (w3 input): int(4C*2/3) rounded up to 8."""
        if self.ffn == "swiglu":
            h = int(self.embed_dim * 4 * 2 / 3)
            return (h + 7) // 8 * 8
        return 4 * self.embed_dim


@dataclass(frozen=True)
class HeadConfig:
    """DualDPT (any-view: norm, UV pos-embed, 2 outputs, aux ray head) or DPT (mono/metric:
    no norm, no pos-embed, 1 output, sky head; GSDPT: no sky, images merger)."""
    kind: str                 # "dualdpt" | "dpt" | "gsdpt"
    dim_in: int
    features: int
    out_channels: Tuple[int, int, int, int]
    output_dim: int


@dataclass(frozen=True)
class GSConfig:
    output_dim: int = 38
    sh_degree: int = 2
    scale_min: float = 1e-5
    scale_max: float = 30.0
    pred_color: bool = False
    pred_offset_depth: bool = True
    pred_offset_xy: bool = True


@dataclass(frozen=True)
class NetConfig:
    """One DepthAnything3Net: backbone, head, optional camera decoder/encoder, gaussian head."""
    vit: ViTConfig
    head: HeadConfig
    cam: bool
    gs: Optional[GSConfig] = None


def _vit(name: str, out_layers, start: int, cat_token: bool = True) -> ViTConfig:
    dims = {"vits": (384, 12, 6), "vitb": (768, 12, 12), "vitl": (1024, 24, 16),
            "vitg": (1536, 40, 24)}[name]
    return ViTConfig(dims[0], dims[1], dims[2], "swiglu" if name == "vitg" else "mlp",
                     tuple(out_layers), start, start, start, cat_token)


_BIG_OC = (256, 512, 1024, 1024)
_SMALL = NetConfig(_vit("vits", (5, 7, 9, 11), 4), HeadConfig("dualdpt", 768, 64, (48, 96, 192, 384), 2), True)
_BASE = NetConfig(_vit("vitb", (5, 7, 9, 11), 4), HeadConfig("dualdpt", 1536, 128, (96, 192, 384, 768), 2), True)
_LARGE = NetConfig(_vit("vitl", (11, 15, 19, 23), 8), HeadConfig("dualdpt", 2048, 256, _BIG_OC, 2), True)
_GIANT = NetConfig(_vit("vitg", (19, 27, 33, 39), 13), HeadConfig("dualdpt", 3072, 256, _BIG_OC, 2), True,
                   GSConfig())
_MONO = NetConfig(_vit("vitl", (4, 11, 17, 23), -1, cat_token=False), HeadConfig("dpt", 1024, 256, _BIG_OC, 1),
                  False)

#: preset name -> {state-dict prefix: (GGUF role, NetConfig)}; role "main" writes vit/head/cam/
#: cam_enc/gs, role "metric" writes m_vit/m_head.
PRESETS: Dict[str, Dict[str, Tuple[str, NetConfig]]] = {
    "da3-small": {"": ("main", _SMALL)},
    "da3-base": {"": ("main", _BASE)},
    "da3-large": {"": ("main", _LARGE)},
    "da3-giant": {"": ("main", _GIANT)},
    "da3mono-large": {"": ("main", _MONO)},
    "da3metric-large": {"": ("main", _MONO)},
    "da3nested-giant-large": {"da3.": ("main", _GIANT), "da3_metric.": ("metric", _MONO)},
}

#: config.json key of reduced test snapshots (never in official ones): ``{"depth": int,
#: "out_layers": [4 ints], "alt_start": int}`` for every branch, or per branch under "da3" /
#: "da3_metric" for the nested preset. alt_start also sets rope_start and qknorm_start.
OVERRIDES_KEY = "da3cpp_overrides"


def _nets(preset: str, overrides: Optional[dict] = None) -> Dict[str, Tuple[str, NetConfig]]:
    """The branches of ``preset`` with test ``overrides`` applied (see OVERRIDES_KEY)."""
    if preset not in PRESETS:
        raise ModelFormatError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    nets = dict(PRESETS[preset])
    if not overrides:
        return nets
    if not isinstance(overrides, dict):
        raise ModelFormatError(f"{OVERRIDES_KEY} must be an object")
    for prefix, (role, net) in list(nets.items()):
        branch = prefix.rstrip(".")
        ov = overrides.get(branch, overrides) if branch else overrides
        if not isinstance(ov, dict):
            raise ModelFormatError(f"{OVERRIDES_KEY}.{branch} must be an object")
        unknown = set(ov) - {"depth", "out_layers", "alt_start", "da3", "da3_metric"}
        if unknown:
            raise ModelFormatError(f"{OVERRIDES_KEY}: unknown key {sorted(unknown)[0]!r}")
        v = net.vit
        try:
            depth = int(ov.get("depth", v.depth))
            out_layers = tuple(int(i) for i in ov.get("out_layers", v.out_layers))
            start = int(ov.get("alt_start", v.alt_start)) if v.alt_start != -1 else -1
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{OVERRIDES_KEY}: bad value ({exc})") from exc
        if not 1 <= depth <= v.depth or len(out_layers) != 4 or not all(0 <= i < depth for i in out_layers) \
                or not (start == -1 or 0 < start < depth):
            raise ModelFormatError(f"{OVERRIDES_KEY}: inconsistent depth/out_layers/alt_start for {preset}")
        v = replace(v, depth=depth, out_layers=out_layers, alt_start=start, rope_start=start, qknorm_start=start)
        nets[prefix] = (role, replace(net, vit=v))
    return nets


# --------------------------------------------------------------------------------------
# Expected tensors
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the official state dict.

    key: state-dict key without the ``model.`` prefix; shape: PyTorch shape; name: GGUF name,
    or None for a tensor the network never uses (aux levels other than the finest), which is
    checked but not written; out_shape: numpy shape written (ggml ne = reversed);
    shared: keys of a module shared under several names (any one of them may be stored).
    """
    key: str
    shape: Tuple[int, ...]
    name: Optional[str]
    out_shape: Tuple[int, ...]
    shared: Tuple[str, ...] = ()


def _t(key, shape, name, out_shape=None, shared=()):
    shape = tuple(int(s) for s in shape)
    return TensorSpec(key, shape, name, tuple(out_shape) if out_shape is not None else shape, tuple(shared))


def _linear(key, name, n_out, n_in, bias=True):
    yield _t(f"{key}.weight", (n_out, n_in), f"{name}.weight" if name else None)
    if bias:
        yield _t(f"{key}.bias", (n_out,), f"{name}.bias" if name else None)


def _conv(key, name, n_out, n_in, k, bias=True, transposed=False):
    shape = (n_in, n_out, k, k) if transposed else (n_out, n_in, k, k)
    yield _t(f"{key}.weight", shape, f"{name}.weight" if name else None)
    if bias:
        yield _t(f"{key}.bias", (n_out,), f"{name}.bias" if name else None)


def _norm(key, name, n):
    yield _t(f"{key}.weight", (n,), f"{name}.weight" if name else None)
    yield _t(f"{key}.bias", (n,), f"{name}.bias" if name else None)


def _block_specs(key, name, c, hidden, ffn, qk_norm, head_dim) -> List[TensorSpec]:
    """A transformer block (dinov2 Block / model.utils Block), in state-dict order."""
    def t(sub, shape):
        return _t(f"{key}.{sub}", shape, f"{name}.{BLOCK_NAMES[sub]}" if name else None)
    specs = [t("norm1.weight", (c,)), t("norm1.bias", (c,)),
             t("attn.qkv.weight", (3 * c, c)), t("attn.qkv.bias", (3 * c,))]
    if qk_norm:
        for s in ("q_norm", "k_norm"):
            specs += [t(f"attn.{s}.weight", (head_dim,)), t(f"attn.{s}.bias", (head_dim,))]
    specs += [t("attn.proj.weight", (c, c)), t("attn.proj.bias", (c,)), t("ls1.gamma", (c,)),
              t("norm2.weight", (c,)), t("norm2.bias", (c,))]
    if ffn == "swiglu":
        specs += [t("mlp.w12.weight", (2 * hidden, c)), t("mlp.w12.bias", (2 * hidden,)),
                  t("mlp.w3.weight", (c, hidden)), t("mlp.w3.bias", (c,))]
    else:
        specs += [t("mlp.fc1.weight", (hidden, c)), t("mlp.fc1.bias", (hidden,)),
                  t("mlp.fc2.weight", (c, hidden)), t("mlp.fc2.bias", (c,))]
    specs.append(t("ls2.gamma", (c,)))
    return specs


def _vit_specs(p: str, g: str, v: ViTConfig) -> List[TensorSpec]:
    c = v.embed_dim
    k = f"{p}backbone.pretrained."
    out = [_t(k + "cls_token", (1, 1, c), f"{g}.cls_token", (c,))]
    if v.alt_start != -1:
        out.append(_t(k + "camera_token", (1, 2, c), f"{g}.camera_token", (2, c)))
    n_pos = POS_EMBED_GRID * POS_EMBED_GRID + 1
    out.append(_t(k + "pos_embed", (1, n_pos, c), f"{g}.pos_embed", (n_pos, c)))
    out += list(_conv(k + "patch_embed.proj", f"{g}.patch_embed", c, 3, PATCH_SIZE))
    for i in range(v.depth):
        qk = v.qknorm_start != -1 and i >= v.qknorm_start
        out += _block_specs(f"{k}blocks.{i}", f"{g}.blk.{i}", c, v.mlp_hidden, v.ffn, qk, c // v.num_heads)
    out += list(_norm(k + "norm", f"{g}.norm", c))
    return out


def _fusion_specs(k, g, f, has_rc1=True):
    out = []
    for u in ((1, 2) if has_rc1 else (2,)):
        for cv in (1, 2):
            out += _conv(f"{k}.resConfUnit{u}.conv{cv}", f"{g}.rc{u}.c{cv}" if g else None, f, f, 3)
    out += _conv(f"{k}.out_conv", f"{g}.out" if g else None, f, f, 1)
    return out


def _head_specs(p: str, g: str, h: HeadConfig, aux: bool) -> List[TensorSpec]:
    """DualDPT / DPT / GSDPT head under state-dict prefix ``p`` and GGUF prefix ``g``."""
    f, oc = h.features, h.out_channels
    out: List[TensorSpec] = []
    if h.kind == "dualdpt":
        out += _norm(p + "norm", f"{g}.norm", h.dim_in)
    for i in range(4):
        out += _conv(f"{p}projects.{i}", f"{g}.proj.{i}", oc[i], h.dim_in, 1)
    out += _conv(p + "resize_layers.0", f"{g}.resize.0", oc[0], oc[0], 4, transposed=True)
    out += _conv(p + "resize_layers.1", f"{g}.resize.1", oc[1], oc[1], 2, transposed=True)
    out += _conv(p + "resize_layers.3", f"{g}.resize.3", oc[3], oc[3], 3)
    for i in range(4):
        out += _conv(f"{p}scratch.layer{i + 1}_rn", f"{g}.scratch.layer{i + 1}_rn", f, oc[i], 3, bias=False)
    for i in (1, 2, 3, 4):
        out += _fusion_specs(f"{p}scratch.refinenet{i}", f"{g}.scratch.rn{i}", f, has_rc1=i != 4)
    out += _conv(p + "scratch.output_conv1", f"{g}.scratch.out1", f // 2, f, 3)
    out += _conv(p + "scratch.output_conv2.0", f"{g}.scratch.{OUT2_NAMES[0]}", HEAD_FEATURES_2, f // 2, 3)
    out += _conv(p + "scratch.output_conv2.2", f"{g}.scratch.{OUT2_NAMES[2]}", h.output_dim, HEAD_FEATURES_2, 1)
    if h.kind == "dpt":
        out += _conv(p + "scratch.sky_output_conv2.0", f"{g}.scratch.{SKY_OUT2_NAMES[0]}", HEAD_FEATURES_2, f // 2, 3)
        out += _conv(p + "scratch.sky_output_conv2.2", f"{g}.scratch.{SKY_OUT2_NAMES[2]}", 1, HEAD_FEATURES_2, 1)
    if h.kind == "gsdpt":
        m = f // 2
        for idx, (n_out, n_in) in zip((0, 2, 4), ((m // 4, 3), (m // 2, m // 4), (m, m // 2))):
            out += _conv(f"{p}images_merger.{idx}", f"{g}.{GS_MERGER_NAMES[idx]}", n_out, n_in, 3)
    if h.kind == "dualdpt":
        ga = g if aux else None
        for i in (1, 2, 3, 4):
            out += _fusion_specs(f"{p}scratch.refinenet{i}_aux", f"{ga}.scratch.rn{i}_aux" if ga else None,
                                 f, has_rc1=i != 4)
        levels = 4
        for lvl in range(levels):
            last = ga if lvl == levels - 1 else None
            for j in range(AUX_OUT1_CONVS):
                n_out, n_in = (f // 2, f) if j % 2 == 0 else (f, f // 2)
                out += _conv(f"{p}scratch.output_conv1_aux.{lvl}.{j}",
                             f"{last}.scratch.out1_aux.{j}" if last else None, n_out, n_in, 3)
        ln_keys = [f"{p}scratch.output_conv2_aux.{lvl}.2" for lvl in range(levels)]
        for lvl in range(levels):
            last = ga if lvl == levels - 1 else None
            k = f"{p}scratch.output_conv2_aux.{lvl}"
            out += _conv(f"{k}.0", f"{last}.scratch.{AUX_OUT2_NAMES[0]}" if last else None,
                         HEAD_FEATURES_2, f // 2, 3)
            for wb in ("weight", "bias"):
                out.append(_t(f"{k}.2.{wb}", (HEAD_FEATURES_2,),
                              f"{last}.scratch.{AUX_OUT2_NAMES[2]}.{wb}" if last else None,
                              shared=[f"{lk}.{wb}" for lk in ln_keys]))
            out += _conv(f"{k}.5", f"{last}.scratch.{AUX_OUT2_NAMES[5]}" if last else None,
                         AUX_RAY_DIM + 1, HEAD_FEATURES_2, 1)
    return out


def _cam_dec_specs(p: str, d: int) -> List[TensorSpec]:
    out: List[TensorSpec] = []
    for sub, n_out in (("backbone.0", d), ("backbone.2", d), ("fc_t", 3), ("fc_qvec", 4), ("fc_fov.0", 2)):
        out += _linear(f"{p}cam_dec.{sub}", f"cam.{CAM_DEC_NAMES[sub]}", n_out, d)
    return out


def _cam_enc_specs(p: str, e: int, write: bool) -> List[TensorSpec]:
    """Camera encoder; written (``write``) under its official names with prefix ``cam_enc.``."""
    out: List[TensorSpec] = []
    for i in range(CAM_ENC_DEPTH):
        out += _block_specs(f"{p}cam_enc.trunk.{i}", None, e, 4 * e, "mlp", False, e // CAM_ENC_HEADS)
    out += _norm(f"{p}cam_enc.token_norm", None, e)
    out += _norm(f"{p}cam_enc.trunk_norm", None, e)
    out += _linear(f"{p}cam_enc.pose_branch.fc1", None, e // 2, CAM_ENC_IN)
    out += _linear(f"{p}cam_enc.pose_branch.fc2", None, e, e // 2)
    if write:
        out = [replace(s, name=s.key[len(p):]) for s in out]
    return out


def expected_tensors(preset: str, extras: bool = True, overrides: Optional[dict] = None) -> List[TensorSpec]:
    """All tensors of the official state dict of ``preset`` (keys without ``model.``), in
    state-dict order, with their GGUF names (None: checked, not written).

    Raises ModelFormatError for an unknown preset or bad ``overrides``.
    """
    out: List[TensorSpec] = []
    for prefix, (role, net) in _nets(preset, overrides).items():
        vg, hg = ("vit", "head") if role == "main" else ("m_vit", "m_head")
        out += _vit_specs(prefix, vg, net.vit)
        out += _head_specs(prefix + "head.", hg, net.head, aux=extras)
        if net.cam:
            out += _cam_dec_specs(prefix, 2 * net.vit.embed_dim)
            out += _cam_enc_specs(prefix, net.vit.embed_dim, write=extras)
        if net.gs is not None:
            gs_head = HeadConfig("gsdpt", net.head.dim_in, net.head.features, net.head.out_channels,
                                 net.gs.output_dim)
            out += _head_specs(prefix + "gs_head.", "gs", gs_head, aux=False)
    return out


# --------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------

def _metadata(preset: str, checkpoint_name: str, extras: bool,
              overrides: Optional[dict] = None) -> List[Tuple[str, str, object]]:
    """(key, gguf value kind, value) in the published order, then ours."""
    kv: List[Tuple[str, str, object]] = [
        (KEY_ARCH, "str", ARCH), (KEY_CHECKPOINT, "str", checkpoint_name), (KEY_PATCH_SIZE, "u32", PATCH_SIZE)]
    ours: List[Tuple[str, str, object]] = [(KEY_PRESET, "str", preset)]
    for prefix, (role, net) in _nets(preset, overrides).items():
        v, h = net.vit, net.head
        vp, hp = ("vit", "head") if role == "main" else ("m_vit", "m_head")
        kv += [
            (meta_key(f"{vp}.embed_dim"), "u32", v.embed_dim), (meta_key(f"{vp}.depth"), "u32", v.depth),
            (meta_key(f"{vp}.num_heads"), "u32", v.num_heads),
            (meta_key(f"{vp}.head_dim"), "u32", v.embed_dim // v.num_heads),
            (meta_key(f"{vp}.mlp_hidden"), "u32", v.mlp_hidden),
            (meta_key(f"{vp}.num_register_tokens"), "u32", 0),
            (meta_key(f"{vp}.init_values"), "f32", 0.0),   # informational, as published
            (meta_key(f"{vp}.alt_start"), "i32", v.alt_start), (meta_key(f"{vp}.rope_start"), "i32", v.rope_start),
            (meta_key(f"{vp}.qknorm_start"), "i32", v.qknorm_start), (meta_key(f"{vp}.rope_freq"), "f32", 100.0),
            (meta_key(f"{vp}.cat_token"), "bool", v.cat_token), (meta_key(f"{vp}.qkv_bias"), "bool", True),
            (meta_key(f"{vp}.ln_eps"), "f32", 1e-6), (meta_key(f"{vp}.interpolate_offset"), "f32", 0.1),
            (meta_key(f"{vp}.interpolate_antialias"), "bool", False),
            (meta_key(f"{vp}.pos_embed_grid"), "u32", POS_EMBED_GRID),
            (meta_key(f"{vp}.ffn_type"), "str", v.ffn),
            (meta_key(f"{vp}.out_layers"), "i32[]", list(v.out_layers)),
        ]
        if role == "main":
            kv += [(meta_key("img.mean"), "f32[]", list(IMAGE_MEAN)), (meta_key("img.std"), "f32[]", list(IMAGE_STD)),
                   (meta_key("img.resize_mode"), "str", "upper_bound"),
                   (meta_key("img.resize_target"), "u32", RESIZE_TARGET)]
        dual = h.kind == "dualdpt"
        kv += [(meta_key(f"{hp}.features"), "u32", h.features),
               (meta_key(f"{hp}.out_channels"), "i32[]", list(h.out_channels)),
               (meta_key(f"{hp}.output_dim"), "u32", h.output_dim)]
        if role == "main":
            kv.append((meta_key(f"{hp}.pos_embed"), "bool", dual))
        kv += [(meta_key(f"{hp}.down_ratio"), "u32", 1), (meta_key(f"{hp}.activation"), "str", "exp"),
               (meta_key(f"{hp}.conf_activation"), "str", "expp1")]
        if not dual:
            kv += [(meta_key(f"{hp}.sky_activation"), "str", "relu"), (meta_key(f"{hp}.norm_type"), "str", "idt")]
        if dual and extras:
            kv += [(meta_key(f"{hp}.has_aux"), "bool", True), (meta_key(f"{hp}.aux_ray_dim"), "u32", AUX_RAY_DIM),
                   (meta_key(f"{hp}.aux_levels"), "u32", 4)]
        if net.cam:
            kv.append((meta_key("cam.dim_in"), "u32", 2 * v.embed_dim))
            if extras:
                e = v.embed_dim
                ours += [(KEY_HAS_CAM_ENC, "bool", True), (meta_key("cam_enc.embed_dim"), "u32", e),
                         (meta_key("cam_enc.depth"), "u32", CAM_ENC_DEPTH),
                         (meta_key("cam_enc.num_heads"), "u32", CAM_ENC_HEADS),
                         (meta_key("cam_enc.mlp_hidden"), "u32", 4 * e),
                         (meta_key("cam_enc.in_dim"), "u32", CAM_ENC_IN),
                         (meta_key("cam_enc.ln_eps"), "f32", 1e-5)]
        if net.gs is not None:
            gs = net.gs
            kv += [(meta_key("gs.output_dim"), "u32", gs.output_dim), (meta_key("gs.features"), "u32", h.features),
                   (meta_key("gs.out_channels"), "i32[]", list(h.out_channels)),
                   (meta_key("gs.sh_degree"), "u32", gs.sh_degree), (meta_key("gs.scale_min"), "f32", gs.scale_min),
                   (meta_key("gs.scale_max"), "f32", gs.scale_max),
                   (meta_key("gs.pred_offset_depth"), "bool", gs.pred_offset_depth),
                   (meta_key("gs.pred_offset_xy"), "bool", gs.pred_offset_xy),
                   (meta_key("gs.pred_color"), "bool", gs.pred_color)]
    return kv + ours


# --------------------------------------------------------------------------------------
# safetensors reading (numpy only)
# --------------------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": np.uint16,
              "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
              "BOOL": np.bool_}


class _SafeTensors:
    """Lazily read tensors of one or more safetensors files; resolves metadata aliases."""

    def __init__(self, paths: Sequence[Path]):
        self._index: Dict[str, Tuple[np.memmap, str, Tuple[int, ...], int, int]] = {}
        self.aliases: Dict[str, str] = {}
        metadata: Dict[str, str] = {}
        for path in paths:
            mm, header = self._open(path)
            for key, info in header.items():
                if key == "__metadata__":
                    if isinstance(info, dict):
                        metadata.update({str(k): str(v) for k, v in info.items()})
                    continue
                if key in self._index:
                    raise ModelFormatError(f"{path}: tensor {key!r} stored twice")
                self._index[key] = self._check(path, mm, key, info)
        for alias, target in metadata.items():
            if target in self._index and alias not in self._index:
                self.aliases[alias] = target

    @staticmethod
    def _open(path: Path):
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                head = fh.read(8)
                if len(head) != 8:
                    raise ModelFormatError(f"{path}: not a safetensors file (truncated header)")
                (n,) = np.frombuffer(head, dtype="<u8")
                if n <= 0 or n > min(size - 8, 100 * 2**20):
                    raise ModelFormatError(f"{path}: not a safetensors file (bad header length {int(n)})")
                header = json.loads(fh.read(int(n)).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path}: not a safetensors file ({exc})") from exc
        if not isinstance(header, dict):
            raise ModelFormatError(f"{path}: not a safetensors file (header is not an object)")
        mm = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + int(n)) if size > 8 + int(n) else None
        return mm, header

    @staticmethod
    def _check(path, mm, key, info):
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(int(s) for s in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{path}: bad header entry for {key!r}") from exc
        if dtype not in _ST_DTYPES:
            raise ModelFormatError(f"{path}: tensor {key!r} has unsupported dtype {dtype}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(_ST_DTYPES[dtype]).itemsize
        if end - begin != nbytes or begin < 0 or mm is None or end > mm.shape[0]:
            raise ModelFormatError(f"{path}: tensor {key!r} data out of bounds or of the wrong size")
        return mm, dtype, shape, int(begin), int(end)

    def keys(self) -> List[str]:
        return list(self._index)

    def shape(self, key: str) -> Tuple[int, ...]:
        return self._index[key][2]

    def float32(self, key: str) -> np.ndarray:
        """The tensor as a float32 numpy array (BF16/F16/F64 converted)."""
        mm, dtype, shape, begin, end = self._index[key]
        raw = np.asarray(mm[begin:end]).view(_ST_DTYPES[dtype]).reshape(shape)
        if dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32)
        return raw.astype(np.float32)


def _snapshot_files(snapshot: Path) -> Tuple[str, Optional[dict], List[Path]]:
    if not snapshot.exists():
        raise ModelNotFoundError(f"snapshot directory not found: {snapshot}")
    if not snapshot.is_dir():
        raise ModelFormatError(f"not a snapshot directory: {snapshot}")
    cfg_path = snapshot / "config.json"
    if not cfg_path.is_file():
        raise ModelNotFoundError(f"{cfg_path} not found (an official snapshot has config.json)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{cfg_path}: invalid JSON ({exc})") from exc
    preset = cfg.get("model_name") if isinstance(cfg, dict) else None
    if not isinstance(preset, str):
        raise ModelFormatError(f"{cfg_path}: no \"model_name\" string")
    if preset not in PRESETS:
        raise ModelFormatError(f"{cfg_path}: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    overrides = cfg.get(OVERRIDES_KEY)
    single = snapshot / "model.safetensors"
    index = snapshot / "model.safetensors.index.json"
    if single.is_file():
        return preset, overrides, [single]
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            entries = sorted(set(weight_map.values()))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{index}: invalid index ({exc})") from exc
        for entry in entries:  # a shard is a file of the snapshot folder, named relative to it
            parts = PurePosixPath(entry).parts if isinstance(entry, str) else ()
            if (not parts or PurePosixPath(entry).is_absolute() or ".." in parts or "\\" in entry
                    or "\0" in entry or PureWindowsPath(entry).drive):
                raise ModelFormatError(f"{index}: shard {entry!r} is not a relative path inside the snapshot folder")
        files = [snapshot / e for e in entries]
        for f in files:
            if not f.is_file():
                raise ModelNotFoundError(f"{f} (listed in {index.name}) not found")
        return preset, overrides, files
    raise ModelNotFoundError(f"{single} not found")


# --------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------

def _gguf():
    try:
        import gguf  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("converting needs the 'gguf' package: pip install gguf") from exc
    return gguf


def _is_quantized(name: str) -> bool:
    return any(p.match(name) for p in QUANTIZED_TENSORS)


def _tensor_type(name: str, out_shape: Tuple[int, ...], weight_type: str) -> str:
    """Storage type of tensor ``name`` ("f32", "f16", "bf16", "q8_0", "q4_k") under the rule."""
    if weight_type == "f32" or not _is_quantized(name):
        return "f32"
    if weight_type == "bf16":  # the ViT blocks' linears (the bf16 engines' input); camera ones f16
        return "bf16" if QUANTIZED_TENSORS[0].match(name) else "f16"
    row = out_shape[-1]
    if weight_type == "q4_k" and row % 256 == 0:
        return "q4_k"
    if weight_type in ("q4_k", "q8_0") and row % 32 == 0:
        return "q8_0"
    return "f16"


def _fp16_round(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


def quantize_q4_k(rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Q4_K blocks of float32 ``rows`` [n, k] (k multiple of 256) -> uint8 [n, k/256*144],
    computed ``chunk`` super-blocks at a time (cache-sized working set)."""
    x = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, 256)
    out = np.empty((x.shape[0], 144), dtype=np.uint8)
    for i in range(0, x.shape[0], chunk):
        out[i:i + chunk] = _q4_k_blocks(x[i:i + chunk])
    return out.reshape(rows.shape[0], -1)


def _q4_k_blocks(rows: np.ndarray) -> np.ndarray:
    """Q4_K blocks of float32 ``rows`` [n, k] (k multiple of 256) -> uint8 [n, k/256*144].

    Follows ggml's ``quantize_row_q4_K_ref`` (ref: ggml/src/ggml-quants.c): per 32-value
    sub-block, ``make_qkx2_quants(32, 15, x, w = rms + |x|, rmin=-1, rdelta=0.1, nstep=20)``
    finds scale and min; scales and mins are quantized to 6 bits against the super-block
    maxima (stored as f16 ``d``/``dmin``) and the 4-bit values recomputed with them.
    """
    x = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, 8, 32)      # [B, 8, 32]
    nb = x.shape[0]
    xs = x.reshape(-1, 32)                                                  # sub-blocks
    av = np.sqrt(np.sum(xs * xs, axis=1, dtype=np.float32) / np.float32(32))
    w = av[:, None] + np.abs(xs)
    mn = np.minimum(xs.min(axis=1), 0).astype(np.float32)
    mx = xs.max(axis=1)
    flat = mx == mn
    rng = np.where(flat, np.float32(1), mx - mn).astype(np.float32)
    sum_w = w.sum(axis=1, dtype=np.float32)
    sum_x = (w * xs).sum(axis=1, dtype=np.float32)
    iscale = np.float32(15) / rng
    scale = np.float32(1) / iscale
    L = np.clip(np.rint(iscale[:, None] * (xs - mn[:, None])), 0, 15).astype(np.float32)
    best = (w * (scale[:, None] * L + mn[:, None] - xs) ** 2).sum(axis=1, dtype=np.float32)
    cur_min = mn.copy()
    for step in range(21):
        # as ggml: a better candidate's min is used by the following steps
        cur_rng = np.where(flat, np.float32(1), mx - cur_min).astype(np.float32)
        isc = (np.float32(-1) + np.float32(0.1) * np.float32(step) + np.float32(15)) / cur_rng
        la = np.clip(np.rint(isc[:, None] * (xs - cur_min[:, None])), 0, 15).astype(np.float32)
        wl = w * la
        sum_l = wl.sum(axis=1, dtype=np.float32)
        sum_l2 = np.einsum("ij,ij->i", wl, la)
        sum_xl = np.einsum("ij,ij->i", wl, xs)
        D = sum_w * sum_l2 - sum_l * sum_l
        ok = D > 0
        Ds = np.where(ok, D, np.float32(1))
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / Ds
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / Ds
        pos = this_min > 0
        this_min = np.where(pos, np.float32(0), this_min)
        this_scale = np.where(pos, sum_xl / np.where(sum_l2 > 0, sum_l2, np.float32(1)), this_scale)
        diff = this_scale[:, None] * la + this_min[:, None] - xs
        err = np.einsum("ij,ij->i", w * diff, diff)
        better = ok & (err < best) & ~flat
        L = np.where(better[:, None], la, L)
        best = np.where(better, err, best)
        scale = np.where(better, this_scale, scale)
        cur_min = np.where(better, this_min, cur_min)
    scale = np.where(flat, np.float32(0), scale).astype(np.float32)
    L = np.where(flat[:, None], np.float32(0), L)
    mins = (-cur_min).astype(np.float32)                                    # the_min = -min >= 0
    scales = scale.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    max_scale = scales.max(axis=1)
    max_min = mins.max(axis=1)
    inv_scale = np.where(max_scale > 0, np.float32(63) / np.where(max_scale > 0, max_scale, 1), 0).astype(np.float32)
    inv_min = np.where(max_min > 0, np.float32(63) / np.where(max_min > 0, max_min, 1), 0).astype(np.float32)
    ls = np.minimum(np.rint(inv_scale[:, None] * scales), 63).astype(np.uint8)
    lm = np.minimum(np.rint(inv_min[:, None] * mins), 63).astype(np.uint8)
    sc = np.zeros((nb, 12), dtype=np.uint8)
    sc[:, 0:4] = ls[:, 0:4]
    sc[:, 4:8] = lm[:, 0:4]
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    sc[:, 0:4] |= (ls[:, 4:8] >> 4) << 6
    sc[:, 4:8] |= (lm[:, 4:8] >> 4) << 6
    d = (max_scale / np.float32(63)).astype(np.float16)
    dmin = (max_min / np.float32(63)).astype(np.float16)
    dd = d.astype(np.float32)[:, None] * ls.astype(np.float32)              # [B, 8]
    dm = dmin.astype(np.float32)[:, None] * lm.astype(np.float32)
    L = L.reshape(nb, 8, 32)
    nz = dd != 0
    q = np.clip(np.rint((x + dm[:, :, None]) / np.where(nz, dd, 1)[:, :, None]), 0, 15)
    L = np.where(nz[:, :, None], q, L).astype(np.uint8).reshape(nb, 4, 2, 32)
    qs = (L[:, :, 0, :] | (L[:, :, 1, :] << 4)).reshape(nb, 128)
    return np.concatenate([d.reshape(nb, 1).view(np.uint8), dmin.reshape(nb, 1).view(np.uint8), sc, qs], axis=1)


def _encode(arr: np.ndarray, ttype: str):
    """numpy data to write for storage type ``ttype`` and the ggml type enum."""
    gguf = _gguf()
    T = gguf.GGMLQuantizationType
    if ttype == "f32":
        return np.ascontiguousarray(arr, dtype=np.float32), T.F32
    if ttype == "f16":
        return np.ascontiguousarray(arr.astype(np.float16)), T.F16
    if ttype == "bf16":  # gguf-py's BF16 quantize: round to nearest even, NaN kept (uint16 data)
        return gguf.quants.quantize(np.ascontiguousarray(arr, dtype=np.float32), T.BF16), T.BF16
    rows = arr.reshape(-1, arr.shape[-1])
    if ttype == "q8_0":
        data = gguf.quants.quantize(rows, T.Q8_0)
        return data.reshape(*arr.shape[:-1], data.shape[-1]), T.Q8_0
    data = quantize_q4_k(rows)
    return data.reshape(*arr.shape[:-1], data.shape[-1]), T.Q4_K


_BYTES_PER_BLOCK = {"q8_0": (32, 34), "q4_k": (256, 144)}


def _encoded_shape(out_shape: Tuple[int, ...], ttype: str) -> Tuple[Tuple[int, ...], int]:
    n = int(np.prod(out_shape, dtype=np.int64))
    if ttype in ("f32", "f16", "bf16"):
        return out_shape, n * (4 if ttype == "f32" else 2)
    blk, nbytes = _BYTES_PER_BLOCK[ttype]
    row_bytes = out_shape[-1] // blk * nbytes
    return tuple(out_shape[:-1]) + (row_bytes,), n // out_shape[-1] * row_bytes


_FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7, "q4_k": 14, "bf16": 32}   # llama_ftype: ALL_F32, MOSTLY_F16, Q8_0, Q4_K_S, MOSTLY_BF16

# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------


@dataclass
class ConversionReport:
    """What :func:`convert` wrote. ``types``: GGUF name -> storage type; ``fallback``: names
    whose rows did not fit the requested block size; ``dropped``: official keys checked but
    not written (unused aux levels, or extras with ``extras=False``)."""
    path: Path
    preset: str
    weight_type: str
    n_tensors: int
    nbytes: int
    types: Dict[str, str]
    fallback: List[str]
    dropped: List[str]


def _plan(st: _SafeTensors, preset: str, extras: bool, overrides: Optional[dict] = None):
    """Match the file against the preset: [(spec, stored key)] to write; raise on any gap."""
    specs = expected_tensors(preset, extras=extras, overrides=overrides)
    present = {k[len("model."):]: k for k in st.keys() if k.startswith("model.")}
    aliases = {k[len("model."):]: v for k, v in st.aliases.items() if k.startswith("model.")}
    stray = [k for k in list(st.keys()) + list(st.aliases) if not k.startswith("model.")]
    if stray:
        raise ModelFormatError(f"unexpected tensor {stray[0]!r} (keys must start with 'model.'); "
                               f"{len(stray)} such")
    expected = {s.key for s in specs}
    unexpected = [k for k in present if k not in expected] + [k for k in aliases if k not in expected]
    if unexpected:
        raise ModelFormatError(f"unexpected tensor 'model.{unexpected[0]}' for preset {preset}"
                               + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    plan, dropped, missing = [], [], []
    for s in specs:
        stored = present.get(s.key) or aliases.get(s.key)
        if stored is None and s.shared:
            stored = next((present.get(k) or aliases.get(k) for k in s.shared
                           if present.get(k) or aliases.get(k)), None)
        if stored is None:
            missing.append(s.key)
            continue
        if st.shape(stored) != s.shape:
            raise ModelFormatError(f"tensor 'model.{s.key}' has shape {list(st.shape(stored))}, "
                                   f"expected {list(s.shape)} for preset {preset}")
        if s.name is None:
            dropped.append(s.key)
        else:
            plan.append((s, stored))
    if missing:
        raise ModelFormatError(f"missing tensor 'model.{missing[0]}' for preset {preset}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return plan, dropped


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="convert", leave=False)


def convert(snapshot_dir, out_path, type: str = "f32", *, extras: bool = True,  # noqa: A002
            checkpoint_name: Optional[str] = None, progress: Optional[bool] = None) -> ConversionReport:
    """Convert the official snapshot ``snapshot_dir`` to the GGUF file ``out_path``.

    Args:
        snapshot_dir: directory with ``config.json`` and ``model.safetensors`` (or a sharded
            ``model.safetensors.index.json``) as published on Hugging Face.
        out_path: GGUF file to write (replaced atomically; parent directory must exist).
        type: weight type of the quantizable tensors: "f32", "f16", "bf16", "q8_0" or "q4_k" (see the
            module docstring for the rule and fallbacks).
        extras: also write the camera encoder and aux ray head (not in published files).
        checkpoint_name: ``depthanything3.checkpoint_name`` (default: the directory name).
        progress: show a tqdm bar (default: when stderr is a terminal).

    Returns:
        ConversionReport.

    Raises:
        ValueError: bad ``type``.
        ModelNotFoundError: snapshot directory, config.json or weights missing.
        ModelFormatError: unknown preset, malformed file, missing/unexpected/misshaped tensor.
        OSError: the output cannot be written.
    """
    if type not in WEIGHT_TYPES:
        raise ValueError(f"type must be one of {', '.join(WEIGHT_TYPES)}, got {type!r}")
    gguf = _gguf()
    snapshot = Path(snapshot_dir)
    out = Path(out_path)
    preset, overrides, files = _snapshot_files(snapshot)
    st = _SafeTensors(files)
    plan, dropped = _plan(st, preset, extras, overrides)
    name = checkpoint_name if checkpoint_name is not None else snapshot.resolve().name

    types = {s.name: _tensor_type(s.name, s.out_shape, type) for s, _ in plan}
    fallback = [n for n, t in types.items() if type in ("q8_0", "q4_k") and _is_quantized(n) and t != type]

    out_dir = out.parent if str(out.parent) else Path(".")
    if not out_dir.is_dir():
        raise ModelNotFoundError(f"output directory not found: {out_dir}")
    fd, tmp_name = tempfile.mkstemp(prefix=out.name + ".", suffix=".part", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    total = 0
    try:
        writer = gguf.GGUFWriter(tmp, ARCH)
        for key, kind, value in _metadata(preset, name, extras, overrides):
            _add_kv(writer, gguf, key, kind, value)
        writer.add_file_type(_FILE_TYPES[type])
        if type in ("q8_0", "q4_k"):
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_string(KEY_QUANT_RULE, f"{type}: {QUANT_RULE}")
        if fallback:
            writer.add_array(KEY_QUANT_FALLBACK, fallback)
        T = gguf.GGMLQuantizationType
        enum = {"f32": T.F32, "f16": T.F16, "q8_0": T.Q8_0, "q4_k": T.Q4_K, "bf16": T.BF16}
        for s, _ in plan:
            ttype = types[s.name]
            shape, nbytes = _encoded_shape(s.out_shape, ttype)
            np_dtype = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}.get(ttype, np.uint8)
            writer.add_tensor_info(s.name, shape, np.dtype(np_dtype), nbytes,
                                   raw_dtype=None if ttype in ("f32", "f16") else enum[ttype])
            total += nbytes
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        show = sys.stderr.isatty() if progress is None else progress
        bar = _progress(total, show)
        for s, stored in plan:
            arr = st.float32(stored).reshape(s.out_shape)
            data, _ = _encode(arr, types[s.name])
            writer.write_tensor_data(data)
            if bar is not None:
                bar.update(data.nbytes)
        if bar is not None:
            bar.close()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return ConversionReport(out, preset, type, len(plan), total, types, fallback, dropped)


def _add_kv(writer, gguf, key: str, kind: str, value) -> None:
    V = gguf.GGUFValueType
    if kind == "str":
        writer.add_string(key, value)
    elif kind == "u32":
        writer.add_uint32(key, int(value))
    elif kind == "i32":
        writer.add_int32(key, int(value))
    elif kind == "f32":
        writer.add_float32(key, float(value))
    elif kind == "bool":
        writer.add_bool(key, bool(value))
    elif kind == "i32[]":
        writer.add_key_value(key, [int(v) for v in value], V.ARRAY, sub_type=V.INT32)
    elif kind == "f32[]":
        writer.add_key_value(key, [float(v) for v in value], V.ARRAY, sub_type=V.FLOAT32)
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="da3cpp convert",
        description="Convert an official Depth Anything 3 Hugging Face snapshot (config.json + "
                    "model.safetensors) to a GGUF file in the published depth-anything.cpp layout.")
    p.add_argument("snapshot", metavar="SNAPSHOT_DIR", help="snapshot directory (config.json, model.safetensors)")
    p.add_argument("out", metavar="OUT.gguf", help="GGUF file to write")
    p.add_argument("--type", "-t", default="f32", choices=WEIGHT_TYPES,
                   help="weight type of the transformer/camera matmul weights (default f32; "
                        "all other tensors stay f32)")
    p.add_argument("--no-extras", action="store_true",
                   help="omit the camera encoder and aux ray head (exactly the published tensor set)")
    p.add_argument("--checkpoint-name", default=None, help="checkpoint_name metadata (default: directory name)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``da3cpp convert`` entry point; returns the exit status (0 ok, 2 error)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        rep = convert(args.snapshot, args.out, type=args.type, extras=not args.no_extras,
                      checkpoint_name=args.checkpoint_name, progress=False if args.quiet else None)
    except (DA3Error, ValueError, OSError, ImportError) as exc:
        print(f"da3cpp convert: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        counts: Dict[str, int] = {}
        for t in rep.types.values():
            counts[t] = counts.get(t, 0) + 1
        mix = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
        print(f"wrote {rep.path} ({rep.preset}, {rep.weight_type}): {rep.n_tensors} tensors ({mix}), "
              f"{rep.nbytes / 2**20:.1f} MiB" + (f"; {len(rep.fallback)} fell back from {rep.weight_type}"
                                                 if rep.fallback else ""))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
