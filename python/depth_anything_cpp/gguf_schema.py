"""The GGUF layout the converter writes: metadata keys, tensor names, presets, expected tensors
and metadata per preset (the published depth-anything.cpp layout, ``docs/gguf-layout.md`` of the
shared docs). The preset list (names, model kind, metric scaling, backbone width), the groups,
the metadata keys and the tensor-name parts come from the core's schema (``da3_gguf_schema_json``,
cpp/src/gguf/schema.h), which the core's loaders read; the configs only the converter needs (depths, heads, out_layers,
head widths) and the upstream state-dict names are here. tests/test_schema.py checks the rest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

from ._native import get_core
from .errors import ModelFormatError

#: The core's GGUF schema (cpp/src/gguf/schema.h); raises VariantError without a usable core.
CORE_SCHEMA = json.loads(get_core().gguf_schema_json())
_PARTS = CORE_SCHEMA["tensor_parts"]    # upstream module name -> GGUF name part, per group

# --------------------------------------------------------------------------------------
# Names: metadata keys and tensor-name pieces (the one place they are spelled)
# --------------------------------------------------------------------------------------

ARCH = CORE_SCHEMA["arch"]
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


_FILE_KEYS: Dict[str, str] = CORE_SCHEMA["keys"]          # file-level key by role
_META_KEYS: Dict[str, Dict[str, str]] = CORE_SCHEMA["metadata_keys"]   # part -> role -> key
#: group (tensor-name and metadata-key prefix, with its dot) by role: vit, head, cam, cam_enc, gs,
#: metric_vit, metric_head, img
GROUPS: Dict[str, str] = CORE_SCHEMA["group_roles"]
_G = {role: prefix[:-1] for role, prefix in GROUPS.items()}   # without the dot, for f"{g}.{part}"

KEY_ARCH = meta_key(_FILE_KEYS["arch"])
KEY_CHECKPOINT = meta_key(_FILE_KEYS["checkpoint"])
KEY_PATCH_SIZE = meta_key(_FILE_KEYS["patch_size"])
KEY_PRESET = meta_key(_FILE_KEYS["preset"])  # ours: official preset name
KEY_HAS_CAM_ENC = meta_key(_FILE_KEYS["has_cam_enc"])       # ours
KEY_QUANT_RULE = meta_key(_FILE_KEYS["quant_rule"])         # ours
KEY_QUANT_FALLBACK = meta_key(_FILE_KEYS["quant_fallback"])  # ours, only when some tensor fell back
KEY_FILE_TYPE = "general.file_type"
KEY_QUANT_VERSION = "general.quantization_version"

# official sub-key -> GGUF sub-name: ViT (vit.*, m_vit.*), its blocks (vit.blk.{i}.*), the heads
# (head.*, m_head.*, gs.*: HEAD_PARTS by upstream module name) and the camera decoder (cam.*)
VIT_PARTS: Dict[str, str] = _PARTS["vit"]
_BLOCK_PARTS: Dict[str, str] = {k: v for k, v in _PARTS["block"].items() if not k.endswith(".gamma")}
BLOCK_NAMES = {f"{k}.{wb}": f"{v}.{wb}" for k, v in _BLOCK_PARTS.items() for wb in ("weight", "bias")}
BLOCK_NAMES.update({k: v for k, v in _PARTS["block"].items() if k.endswith(".gamma")})
HEAD_PARTS: Dict[str, str] = _PARTS["head"]
CAM_DEC_NAMES: Dict[str, str] = _PARTS["cam"]
CAM_ENC_PARTS: Dict[str, str] = _PARTS["cam_enc"]   # written under the upstream names
OUT2_NAMES = {i: HEAD_PARTS[f"output_conv2.{i}"] for i in (0, 2)}
SKY_OUT2_NAMES = {i: HEAD_PARTS[f"sky_output_conv2.{i}"] for i in (0, 2)}
AUX_OUT2_NAMES = {i: HEAD_PARTS[f"output_conv2_aux.{i}"] for i in (0, 2, 5)}
GS_MERGER_NAMES = {0: "merger.0", 2: "merger.1", 4: "merger.2"}   # the core does not read the gs head

# Tensors the quantization rule applies to (GGUF names): the blocks' matmuls, the camera
# decoder's linears, the camera encoder's matmuls (official names).
_QUANT_BLOCK = [_BLOCK_PARTS[k] for k in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "mlp.w12", "mlp.w3")]
_QUANT_CAM_ENC = [CAM_ENC_PARTS[k] for k in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")]
_TRUNK = CAM_ENC_PARTS["trunk"]
_BLK = VIT_PARTS["blocks"]
QUANTIZED_TENSORS = (
    re.compile(rf"^({re.escape(GROUPS['vit'])}|{re.escape(GROUPS['metric_vit'])}){_BLK}\.\d+\."
               rf"({'|'.join(_QUANT_BLOCK)})\.weight$"),
    re.compile(rf"^{re.escape(GROUPS['cam'])}({'|'.join(CAM_DEC_NAMES.values())})\.weight$"),
    re.compile(rf"^{re.escape(GROUPS['cam_enc'])}{_TRUNK}\.\d+\."
               rf"({'|'.join(re.escape(n) for n in _QUANT_CAM_ENC)})\.weight$"),
)
QUANT_RULE = (f"transformer-block matmul weights ({{m_,}}vit.{_BLK}.*: {', '.join(_QUANT_BLOCK)}; "
              f"cam_enc.{_TRUNK}.*: {', '.join(_QUANT_CAM_ENC)}) "
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


# DINOv2 depth and heads by backbone width (vits, vitb, vitl, vitg: the width is the core's)
_VIT_DEPTH_HEADS = {384: (12, 6), 768: (12, 12), 1024: (24, 16), 1536: (40, 24)}
_SWIGLU_WIDTH = 1536   # vitg
_BIG_OC = (256, 512, 1024, 1024)


def _vit(c: int, out_layers, start: int, cat_token: bool = True) -> ViTConfig:
    depth, heads = _VIT_DEPTH_HEADS[c]
    return ViTConfig(c, depth, heads, "swiglu" if c == _SWIGLU_WIDTH else "mlp",
                     tuple(out_layers), start, start, start, cat_token)


def _any_view(c: int) -> NetConfig:
    """The any-view DualDPT net of backbone width ``c`` (configs/da3-{small,base,large,giant}.yaml)."""
    out_layers, start, features, oc = {
        384: ((5, 7, 9, 11), 4, 64, (48, 96, 192, 384)), 768: ((5, 7, 9, 11), 4, 128, (96, 192, 384, 768)),
        1024: ((11, 15, 19, 23), 8, 256, _BIG_OC), 1536: ((19, 27, 33, 39), 13, 256, _BIG_OC)}[c]
    return NetConfig(_vit(c, out_layers, start), HeadConfig("dualdpt", 2 * c, features, oc, 2), True,
                     GSConfig() if c == _SWIGLU_WIDTH else None)


def _dpt_sky(c: int) -> NetConfig:
    """The mono / metric DPT net with sky head (configs/da3{mono,metric}-large.yaml; vitl only)."""
    return NetConfig(_vit(c, (4, 11, 17, 23), -1, cat_token=False), HeadConfig("dpt", c, 256, _BIG_OC, 1), False)


_METRIC_WIDTH = 1024   # the nested preset's metric branch: da3metric-large


def _branches(entry: dict) -> Dict[str, Tuple[str, NetConfig]]:
    """The branches of a core preset entry (kind, embed_dim): {state-dict prefix: (role, net)}."""
    c = entry["embed_dim"]
    if entry["kind"] == "nested":
        return {"da3.": ("main", _any_view(c)), "da3_metric.": ("metric", _dpt_sky(_METRIC_WIDTH))}
    return {"": ("main", {"anyview": _any_view, "dpt_sky": _dpt_sky}[entry["kind"]](c))}


#: preset name (the core's list) -> {state-dict prefix: (GGUF role, NetConfig)}; role "main"
#: writes vit/head/cam/cam_enc/gs, role "metric" writes m_vit/m_head.
PRESETS: Dict[str, Dict[str, Tuple[str, NetConfig]]] = {
    name: _branches(entry) for name, entry in CORE_SCHEMA["presets"].items()}

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
    n = VIT_PARTS
    out = [_t(k + "cls_token", (1, 1, c), f"{g}.{n['cls_token']}", (c,))]
    if v.alt_start != -1:
        out.append(_t(k + "camera_token", (1, 2, c), f"{g}.{n['camera_token']}", (2, c)))
    n_pos = POS_EMBED_GRID * POS_EMBED_GRID + 1
    out.append(_t(k + "pos_embed", (1, n_pos, c), f"{g}.{n['pos_embed']}", (n_pos, c)))
    out += list(_conv(k + "patch_embed.proj", f"{g}.{n['patch_embed.proj']}", c, 3, PATCH_SIZE))
    for i in range(v.depth):
        qk = v.qknorm_start != -1 and i >= v.qknorm_start
        out += _block_specs(f"{k}blocks.{i}", f"{g}.{n['blocks']}.{i}", c, v.mlp_hidden, v.ffn, qk, c // v.num_heads)
    out += list(_norm(k + "norm", f"{g}.{n['norm']}", c))
    return out


def _fusion_specs(k, g, f, has_rc1=True):
    n = HEAD_PARTS
    out = []
    for u in ((1, 2) if has_rc1 else (2,)):
        for cv in (1, 2):
            out += _conv(f"{k}.resConfUnit{u}.conv{cv}", f"{g}.{n['resConfUnit']}{u}.{n['conv']}{cv}" if g else None,
                         f, f, 3)
    out += _conv(f"{k}.out_conv", f"{g}.{n['out_conv']}" if g else None, f, f, 1)
    return out


def _head_specs(p: str, g: str, h: HeadConfig, aux: bool) -> List[TensorSpec]:
    """DualDPT / DPT / GSDPT head under state-dict prefix ``p`` and GGUF prefix ``g``."""
    f, oc, n = h.features, h.out_channels, HEAD_PARTS
    gs = f"{g}.{n['scratch']}"
    out: List[TensorSpec] = []
    if h.kind == "dualdpt":
        out += _norm(p + "norm", f"{g}.{n['norm']}", h.dim_in)
    for i in range(4):
        out += _conv(f"{p}projects.{i}", f"{g}.{n['projects']}.{i}", oc[i], h.dim_in, 1)
    out += _conv(p + "resize_layers.0", f"{g}.{n['resize_layers']}.0", oc[0], oc[0], 4, transposed=True)
    out += _conv(p + "resize_layers.1", f"{g}.{n['resize_layers']}.1", oc[1], oc[1], 2, transposed=True)
    out += _conv(p + "resize_layers.3", f"{g}.{n['resize_layers']}.3", oc[3], oc[3], 3)
    for i in range(4):
        out += _conv(f"{p}scratch.layer{i + 1}_rn", f"{gs}.{n['layer_rn']}{i + 1}{n['layer_rn_end']}", f, oc[i], 3,
                     bias=False)
    for i in (1, 2, 3, 4):
        out += _fusion_specs(f"{p}scratch.refinenet{i}", f"{gs}.{n['refinenet']}{i}", f, has_rc1=i != 4)
    out += _conv(p + "scratch.output_conv1", f"{gs}.{n['output_conv1']}", f // 2, f, 3)
    out += _conv(p + "scratch.output_conv2.0", f"{gs}.{OUT2_NAMES[0]}", HEAD_FEATURES_2, f // 2, 3)
    out += _conv(p + "scratch.output_conv2.2", f"{gs}.{OUT2_NAMES[2]}", h.output_dim, HEAD_FEATURES_2, 1)
    if h.kind == "dpt":
        out += _conv(p + "scratch.sky_output_conv2.0", f"{gs}.{SKY_OUT2_NAMES[0]}", HEAD_FEATURES_2, f // 2, 3)
        out += _conv(p + "scratch.sky_output_conv2.2", f"{gs}.{SKY_OUT2_NAMES[2]}", 1, HEAD_FEATURES_2, 1)
    if h.kind == "gsdpt":
        m = f // 2
        for idx, (n_out, n_in) in zip((0, 2, 4), ((m // 4, 3), (m // 2, m // 4), (m, m // 2))):
            out += _conv(f"{p}images_merger.{idx}", f"{g}.{GS_MERGER_NAMES[idx]}", n_out, n_in, 3)
    if h.kind == "dualdpt":
        ga = g if aux else None
        for i in (1, 2, 3, 4):
            out += _fusion_specs(f"{p}scratch.refinenet{i}_aux",
                                 f"{ga}.{n['scratch']}.{n['refinenet']}{i}{n['aux']}" if ga else None, f, has_rc1=i != 4)
        levels = 4
        for lvl in range(levels):
            last = ga if lvl == levels - 1 else None
            for j in range(AUX_OUT1_CONVS):
                n_out, n_in = (f // 2, f) if j % 2 == 0 else (f, f // 2)
                out += _conv(f"{p}scratch.output_conv1_aux.{lvl}.{j}",
                             f"{last}.{n['scratch']}.{n['output_conv1_aux']}.{j}" if last else None, n_out, n_in, 3)
        ln_keys = [f"{p}scratch.output_conv2_aux.{lvl}.2" for lvl in range(levels)]
        for lvl in range(levels):
            last = ga if lvl == levels - 1 else None
            k = f"{p}scratch.output_conv2_aux.{lvl}"
            out += _conv(f"{k}.0", f"{last}.{n['scratch']}.{AUX_OUT2_NAMES[0]}" if last else None,
                         HEAD_FEATURES_2, f // 2, 3)
            for wb in ("weight", "bias"):
                out.append(_t(f"{k}.2.{wb}", (HEAD_FEATURES_2,),
                              f"{last}.{n['scratch']}.{AUX_OUT2_NAMES[2]}.{wb}" if last else None,
                              shared=[f"{lk}.{wb}" for lk in ln_keys]))
            out += _conv(f"{k}.5", f"{last}.{n['scratch']}.{AUX_OUT2_NAMES[5]}" if last else None,
                         AUX_RAY_DIM + 1, HEAD_FEATURES_2, 1)
    return out


def _cam_dec_specs(p: str, d: int) -> List[TensorSpec]:
    out: List[TensorSpec] = []
    for sub, n_out in (("backbone.0", d), ("backbone.2", d), ("fc_t", 3), ("fc_qvec", 4), ("fc_fov.0", 2)):
        out += _linear(f"{p}cam_dec.{sub}", f"{_G['cam']}.{CAM_DEC_NAMES[sub]}", n_out, d)
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
        vg, hg = (_G["vit"], _G["head"]) if role == "main" else (_G["metric_vit"], _G["metric_head"])
        out += _vit_specs(prefix, vg, net.vit)
        out += _head_specs(prefix + "head.", hg, net.head, aux=extras)
        if net.cam:
            out += _cam_dec_specs(prefix, 2 * net.vit.embed_dim)
            out += _cam_enc_specs(prefix, net.vit.embed_dim, write=extras)
        if net.gs is not None:
            gs_head = HeadConfig("gsdpt", net.head.dim_in, net.head.features, net.head.out_channels,
                                 net.gs.output_dim)
            out += _head_specs(prefix + "gs_head.", _G["gs"], gs_head, aux=False)
    return out


# --------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------

def _part_keys(group: str, part: str):
    """``key(role)``: the full metadata key of ``role`` of the part ``part`` (its key table in
    the core's schema) under the group prefix ``group`` (e.g. ``"m_vit."``)."""
    table = _META_KEYS[part]
    return lambda role: meta_key(group + table[role])


def _metadata(preset: str, checkpoint_name: str, extras: bool,
              overrides: Optional[dict] = None) -> List[Tuple[str, str, object]]:
    """(key, gguf value kind, value) in the published order, then ours."""
    kv: List[Tuple[str, str, object]] = [
        (KEY_ARCH, "str", ARCH), (KEY_CHECKPOINT, "str", checkpoint_name), (KEY_PATCH_SIZE, "u32", PATCH_SIZE)]
    ours: List[Tuple[str, str, object]] = [(KEY_PRESET, "str", preset)]
    img = _part_keys(GROUPS["img"], "img")
    for prefix, (role, net) in _nets(preset, overrides).items():
        v, h = net.vit, net.head
        main = role == "main"
        vk = _part_keys(GROUPS["vit" if main else "metric_vit"], "vit")
        hk = _part_keys(GROUPS["head" if main else "metric_head"], "head")
        kv += [
            (vk("embed_dim"), "u32", v.embed_dim), (vk("depth"), "u32", v.depth),
            (vk("num_heads"), "u32", v.num_heads),
            (vk("head_dim"), "u32", v.embed_dim // v.num_heads),
            (vk("mlp_hidden"), "u32", v.mlp_hidden),
            (vk("num_register_tokens"), "u32", 0),
            (vk("init_values"), "f32", 0.0),   # informational, as published
            (vk("alt_start"), "i32", v.alt_start), (vk("rope_start"), "i32", v.rope_start),
            (vk("qknorm_start"), "i32", v.qknorm_start), (vk("rope_freq"), "f32", 100.0),
            (vk("cat_token"), "bool", v.cat_token), (vk("qkv_bias"), "bool", True),
            (vk("ln_eps"), "f32", 1e-6), (vk("interpolate_offset"), "f32", 0.1),
            (vk("interpolate_antialias"), "bool", False),
            (vk("pos_embed_grid"), "u32", POS_EMBED_GRID),
            (vk("ffn_type"), "str", v.ffn),
            (vk("out_layers"), "i32[]", list(v.out_layers)),
        ]
        if main:
            kv += [(img("mean"), "f32[]", list(IMAGE_MEAN)), (img("std"), "f32[]", list(IMAGE_STD)),
                   (img("resize_mode"), "str", "upper_bound"),
                   (img("resize_target"), "u32", RESIZE_TARGET)]
        dual = h.kind == "dualdpt"
        kv += [(hk("features"), "u32", h.features),
               (hk("out_channels"), "i32[]", list(h.out_channels)),
               (hk("output_dim"), "u32", h.output_dim)]
        if main:
            kv.append((hk("pos_embed"), "bool", dual))
        kv += [(hk("down_ratio"), "u32", 1), (hk("activation"), "str", "exp"),
               (hk("conf_activation"), "str", "expp1")]
        if not dual:
            kv += [(hk("sky_activation"), "str", "relu"), (hk("norm_type"), "str", "idt")]
        if dual and extras:
            kv += [(hk("has_aux"), "bool", True), (hk("aux_ray_dim"), "u32", AUX_RAY_DIM),
                   (hk("aux_levels"), "u32", 4)]
        if net.cam:
            kv.append((_part_keys(GROUPS["cam"], "cam")("dim_in"), "u32", 2 * v.embed_dim))
            if extras:
                e, ek = v.embed_dim, _part_keys(GROUPS["cam_enc"], "cam_enc")
                ours += [(KEY_HAS_CAM_ENC, "bool", True), (ek("embed_dim"), "u32", e),
                         (ek("depth"), "u32", CAM_ENC_DEPTH),
                         (ek("num_heads"), "u32", CAM_ENC_HEADS),
                         (ek("mlp_hidden"), "u32", 4 * e),
                         (ek("in_dim"), "u32", CAM_ENC_IN),
                         (ek("ln_eps"), "f32", 1e-5)]
        if net.gs is not None:
            gs, gk = net.gs, _part_keys(GROUPS["gs"], "gs")
            kv += [(gk("output_dim"), "u32", gs.output_dim), (gk("features"), "u32", h.features),
                   (gk("out_channels"), "i32[]", list(h.out_channels)),
                   (gk("sh_degree"), "u32", gs.sh_degree), (gk("scale_min"), "f32", gs.scale_min),
                   (gk("scale_max"), "f32", gs.scale_max),
                   (gk("pred_offset_depth"), "bool", gs.pred_offset_depth),
                   (gk("pred_offset_xy"), "bool", gs.pred_offset_xy),
                   (gk("pred_color"), "bool", gs.pred_color)]
    return kv + ours
