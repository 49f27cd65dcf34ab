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
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ._quant import _FILE_TYPES, _encode, _encoded_shape, _gguf, _is_quantized, _tensor_type, quantize_q4_k
from ._safetensors import _SafeTensors, _snapshot_files
from .errors import DA3Error, ModelFormatError, ModelNotFoundError
from .gguf_schema import (ARCH, KEY_CHECKPOINT, KEY_HAS_CAM_ENC, KEY_PRESET, KEY_QUANT_FALLBACK, KEY_QUANT_RULE,
                          PRESETS, QUANT_RULE, WEIGHT_TYPES, _metadata, expected_tensors)

__all__ = ["convert", "main", "PRESETS", "WEIGHT_TYPES", "expected_tensors", "ConversionReport"]
# names of the layout (gguf_schema.py) and of the encoding (_quant.py) that callers and tests use from here
_REEXPORTED = (KEY_CHECKPOINT, KEY_HAS_CAM_ENC, KEY_PRESET, KEY_QUANT_FALLBACK, quantize_q4_k, _is_quantized)

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
