"""Storage types and encoding of the converter's tensors (the published quantization rule)."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .gguf_schema import QUANTIZED_TENSORS

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
