"""Resolve what ``DepthAnything3.from_pretrained`` is given to a local GGUF file.

Accepted, in this order:

1. a path to a ``.gguf`` file (used as is);
2. a directory holding a Hugging Face snapshot of an official DA3 checkpoint
   (``config.json`` + ``model.safetensors``): converted once with
   :func:`depth_anything_cpp.convert.convert` into the user cache (see :func:`cache_dir`)
   and reused afterwards; a directory holding exactly one ``.gguf`` is also accepted;
3. a Hugging Face Hub repo id such as ``"depth-anything/DA3-SMALL"``, or a short preset
   name of :data:`PRESETS` (``"da3-small"``, ``"da3nested-giant-large-1.1"``...): the official
   snapshot (``config.json`` + ``model.safetensors`` only) is downloaded with
   ``huggingface_hub`` and converted as in 2; with ``filename=`` one file of a GGUF
   repository is downloaded instead.

Offline (``HF_HUB_OFFLINE=1`` or no network) with nothing cached, 3 fails quickly with a
:class:`~depth_anything_cpp.errors.ModelLoadError` saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Optional, Union

from .errors import ModelFormatError, ModelLoadError, ModelNotFoundError

__all__ = ["cache_dir", "resolve_model", "is_gguf_file", "PRESETS", "DEFAULT_MODEL", "preset_repo"]

#: Short names (the official ``model_name`` presets and the retrained 1.1 checkpoints) ->
#: Hugging Face repo ids of the official snapshots.
PRESETS = {
    "da3-small": "depth-anything/DA3-SMALL",
    "da3-base": "depth-anything/DA3-BASE",
    "da3-large": "depth-anything/DA3-LARGE",
    "da3-giant": "depth-anything/DA3-GIANT",
    "da3mono-large": "depth-anything/DA3MONO-LARGE",
    "da3metric-large": "depth-anything/DA3METRIC-LARGE",
    "da3nested-giant-large": "depth-anything/DA3NESTED-GIANT-LARGE",
    "da3-large-1.1": "depth-anything/DA3-LARGE-1.1",
    "da3-giant-1.1": "depth-anything/DA3-GIANT-1.1",
    "da3nested-giant-large-1.1": "depth-anything/DA3NESTED-GIANT-LARGE-1.1",
}
#: The official package's default model.
DEFAULT_MODEL = "depth-anything/DA3NESTED-GIANT-LARGE-1.1"


def preset_repo(name: str) -> Optional[str]:
    """Repo id of a short preset name (case-insensitive, e.g. ``"da3-small"`` or
    ``"DA3-SMALL"``), else None."""
    return PRESETS.get(name.strip().lower())

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

PathLike = Union[str, "os.PathLike[str]"]


def cache_dir() -> Path:
    """Directory of converted GGUF files: ``$DA3CPP_CACHE`` if set, else
    ``$XDG_CACHE_HOME/depth-anything-cpp``, else ``~/.cache/depth-anything-cpp``."""
    env = os.environ.get("DA3CPP_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "depth-anything-cpp"


def is_gguf_file(path: PathLike) -> bool:
    """True when ``path`` is a regular file starting with the GGUF magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _is_snapshot(directory: Path) -> bool:
    return (directory / CONFIG_NAME).is_file() and (directory / SAFETENSORS_NAME).is_file()


def _read_model_name(directory: Path) -> str:
    try:
        config = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{directory / CONFIG_NAME}: unreadable config: {exc}") from exc
    name = config.get("model_name") if isinstance(config, dict) else None
    if not isinstance(name, str) or not name:
        raise ModelFormatError(
            f"{directory / CONFIG_NAME}: no 'model_name' (expected e.g. 'da3-small'); "
            "is this an official Depth Anything 3 snapshot?"
        )
    return name


def cached_gguf_path(snapshot: Path, root: Optional[Path] = None) -> Path:
    """Where the conversion of ``snapshot`` is (or will be) cached.

    The key hashes the resolved weights path (Hugging Face cache blobs are named by
    content hash), its size and mtime, and config.json, so an edited checkpoint gets a
    new file.
    """
    weights = (snapshot / SAFETENSORS_NAME).resolve()
    st = weights.stat()
    config = (snapshot / CONFIG_NAME).read_bytes()
    h = hashlib.sha256()
    h.update(str(weights).encode())
    h.update(f"|{st.st_size}|{st.st_mtime_ns}|".encode())
    h.update(config)
    name = re.sub(r"[^\w.-]", "_", _read_model_name(snapshot))
    return (root or cache_dir()) / f"{name}-{h.hexdigest()[:16]}.gguf"


def convert_snapshot(snapshot: Path, *, root: Optional[Path] = None, force: bool = False) -> Path:
    """Convert a local official snapshot to GGUF in the cache (once); return the GGUF path.

    Raises:
        ModelFormatError: bad config.json or a checkpoint the converter rejects.
        ModelLoadError: the cache directory is not writable.
    """
    target = cached_gguf_path(snapshot, root)
    if target.is_file() and not force and is_gguf_file(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(f"cannot create cache directory {target.parent}: {exc}") from exc
    from . import convert

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        convert.convert(snapshot, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _hub_cache(hub_cache_dir: Optional[PathLike]) -> str:
    if hub_cache_dir is not None:
        return os.fspath(hub_cache_dir)
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except (ImportError, AttributeError):
        return "~/.cache/huggingface/hub"


def _download(repo_id: str, *, filename: Optional[str], revision: Optional[str],
              hub_cache_dir: Optional[PathLike], local_files_only: bool,
              token: Optional[str]) -> Path:
    try:
        import huggingface_hub
        from huggingface_hub import errors as hf_errors
    except ImportError as exc:
        raise ModelLoadError(
            f"{repo_id!r} is not a local file or directory, and downloading it needs "
            "huggingface_hub: pip install huggingface_hub"
        ) from exc
    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "0").upper() in {"1", "ON", "YES", "TRUE"}
    try:
        if filename is not None:
            return Path(huggingface_hub.hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=hub_cache_dir,
                local_files_only=local_files_only, token=token))
        return Path(huggingface_hub.snapshot_download(
            repo_id, revision=revision, cache_dir=hub_cache_dir,
            allow_patterns=[CONFIG_NAME, SAFETENSORS_NAME],
            local_files_only=local_files_only, token=token))
    except hf_errors.LocalEntryNotFoundError as exc:
        why = ("offline mode (HF_HUB_OFFLINE=1 or local_files_only=True) and it is not in the "
               "Hugging Face cache" if offline else "the Hub cannot be reached and it is not in "
               "the Hugging Face cache")
        files = filename or f"{CONFIG_NAME} {SAFETENSORS_NAME}"
        raise ModelLoadError(
            f"cannot get {repo_id!r}{' / ' + filename if filename else ''}: {why}. "
            f"Download {files} from https://huggingface.co/{repo_id} on a connected machine "
            f"(`huggingface-cli download {repo_id} {files} --local-dir DIR`) and pass DIR, or copy "
            f"that download into the Hugging Face cache ({_hub_cache(hub_cache_dir)}); or pass a local "
            f".gguf file. Converted models are kept in {cache_dir()}."
        ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise ModelLoadError(
            f"{repo_id!r}: no such Hugging Face repository (or it is private: pass token=)"
        ) from exc
    except hf_errors.EntryNotFoundError as exc:
        raise ModelLoadError(f"{repo_id!r}: file {filename!r} not found in the repository") from exc
    except (hf_errors.HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot download {repo_id!r}: {exc}") from exc


def resolve_model(name_or_path: PathLike, *, filename: Optional[str] = None,
                  revision: Optional[str] = None, hub_cache_dir: Optional[PathLike] = None,
                  local_files_only: bool = False, token: Optional[str] = None,
                  force_convert: bool = False) -> Path:
    """Return the path of a GGUF file for ``name_or_path`` (see the module docstring).

    Args:
        name_or_path: GGUF file, snapshot directory, Hugging Face repo id or preset name.
        filename: with a repo id, download this single file (a GGUF) instead of the
            official snapshot.
        revision, hub_cache_dir, local_files_only, token: passed to huggingface_hub.
        force_convert: redo a cached conversion.

    Raises:
        ModelNotFoundError: a path-looking argument that does not exist (a FileNotFoundError).
        ModelFormatError: a file that is not GGUF, a directory that is neither a snapshot
            nor holds exactly one GGUF, a snapshot the converter rejects.
        ModelLoadError: download impossible (offline, unknown repo, network error).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path: expected str or path, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if path.is_file():
        if not is_gguf_file(path):
            raise ModelFormatError(
                f"{path}: not a GGUF file; pass a .gguf, a snapshot directory "
                "(config.json + model.safetensors) or a Hugging Face repo id"
            )
        return path
    if path.is_dir():
        if filename is not None:
            candidate = path / filename
            if not candidate.is_file():
                raise ModelNotFoundError(f"{candidate}: no such file")
            return resolve_model(candidate)
        if _is_snapshot(path):
            return convert_snapshot(path, force=force_convert)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return resolve_model(ggufs[0])
        if ggufs:
            names = ", ".join(p.name for p in ggufs)
            raise ModelFormatError(f"{path}: several GGUF files ({names}); pick one with filename=")
        raise ModelFormatError(
            f"{path}: neither a Hugging Face snapshot (config.json + model.safetensors) "
            "nor a directory with a .gguf file"
        )
    text = os.fspath(name_or_path)
    text = preset_repo(text) or text
    if not _REPO_ID.match(text) or text.endswith(".gguf") or text.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{text}: no such file or directory (and not a Hugging Face repo id like "
            "'depth-anything/DA3-SMALL')"
        )
    downloaded = _download(text, filename=filename, revision=revision,
                           hub_cache_dir=hub_cache_dir, local_files_only=local_files_only,
                           token=token)
    if downloaded.is_file():
        return resolve_model(downloaded)
    if not _is_snapshot(downloaded):
        raise ModelLoadError(
            f"{text!r} has no {CONFIG_NAME} + {SAFETENSORS_NAME}; for a repository of GGUF "
            "files pass filename='<name>.gguf'"
        )
    return convert_snapshot(downloaded, force=force_convert)
