"""Atomic file writing for the exporters: temp file + rename, and the record of the files
written (:func:`track_writes`), plus the single-file writers every format shares (images,
NPZ) and the output directories."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

_tracking = threading.local()


@contextlib.contextmanager
def track_writes() -> Iterator[list]:
    """Collect the paths written by this thread's exporters inside the ``with`` block.

    Yields a list that grows with each completed file (``Path``); nested blocks all see
    the files. Used by the CLI to delete the outputs of an image interrupted halfway.
    """
    stack = getattr(_tracking, "stack", None)
    if stack is None:
        stack = _tracking.stack = []
    written: list = []
    stack.append(written)
    try:
        yield written
    finally:  # by identity: lists compare by value
        del stack[next(i for i, w in enumerate(stack) if w is written)]


def _record(path: Path) -> None:
    for written in getattr(_tracking, "stack", ()):
        written.append(path)


def atomic_write_bytes(path: PathLike, produce: Callable[[io.BufferedIOBase], None]) -> Path:
    """Write a file atomically: ``produce(f)`` writes into a temp file in the same
    directory, which then replaces ``path``. Returns ``path``.

    Raises:
        OSError: the directory is missing or not writable (the temp file is removed).
        whatever ``produce`` raises (the temp file is removed, ``path`` is untouched).
    """
    path = Path(path)
    # a new file of a random name (O_CREAT | O_EXCL, as mkstemp): never one planted there
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # the mode open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            fd = -1
            produce(f)
        os.replace(tmp, path)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:  # e.g. ENOSPC from a write: name the file
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _record(path)
    return path


def _read_umask() -> int:  # at import: os.umask() sets it, which is not thread-safe later
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


#: image file suffix -> Pillow format of the visualisations (:func:`write_image`)
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def write_image(path: PathLike, pixels: np.ndarray, *, quality: int = 95) -> None:
    """Write an (H, W, 3) or (H, W) uint8 image in the format its suffix names: ``.png``,
    ``.jpg``/``.jpeg`` (``quality`` 1..100) or ``.webp`` (``quality`` 1..100, lossy).

    Raises:
        ValueError: another suffix, a bad array or quality. OSError: write failure.
    """
    from PIL import Image

    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported image suffix; use one of {', '.join(IMAGE_FORMATS)}")
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"image: expected a uint8 (H, W) or (H, W, 3) array, got {pixels.dtype}{pixels.shape}")
    if isinstance(quality, bool) or not 1 <= int(quality) <= 100:
        raise ValueError(f"quality: expected 1..100, got {quality!r}")
    img = Image.fromarray(pixels)
    opts = {} if fmt == "PNG" else {"quality": int(quality)}
    atomic_write_bytes(path, lambda f: img.save(f, format=fmt, **opts))


def write_npz(path: PathLike, **arrays: Optional[np.ndarray]) -> None:
    """Write the given arrays (None values skipped) to a compressed NPZ, atomically."""
    data = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **data))


def _prepare_dir(export_dir: PathLike) -> Path:
    out = Path(export_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"export_dir {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create export directory ({exc.strerror})", str(out)) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"export_dir {out} is not writable")
    return out


def _subdir(out: Path, *parts: str) -> Path:
    d = out.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d

