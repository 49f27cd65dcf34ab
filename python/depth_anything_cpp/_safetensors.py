"""Reading an official snapshot (config.json + safetensors) with numpy only, for the converter."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ModelFormatError, ModelNotFoundError
from .gguf_schema import OVERRIDES_KEY, PRESETS

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
