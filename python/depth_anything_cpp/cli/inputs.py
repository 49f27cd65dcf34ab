"""Inputs of the ``da3cpp`` commands: files, directories and video frames as items with
unique output stems."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}


@dataclass
class _Item:
    """One image to process: a file (``path``) or a decoded video frame (``rgb``)."""

    label: str
    stem: str
    path: Optional[Path] = None
    rgb: Any = None
    error: Optional[BaseException] = None


def _parse_suffixes(text: Optional[str]) -> set:
    """``--image-extensions`` ("png,jpg" or ".png, .JPG") -> {".png", ".jpg"}."""
    if text is None:
        return set(IMAGE_SUFFIXES)
    found = {"." + t.strip().lower().lstrip(".") for t in text.split(",") if t.strip().lstrip(".")}
    if not found:
        raise ValueError(f"--image-extensions: no suffix in {text!r}")
    return found


def _collect_inputs(inputs: Iterable[str], suffixes: Optional[set] = None) -> tuple[list[Path], list[str]]:
    """Expand directories; return (image/video paths, error messages for bad inputs)."""
    suffixes = IMAGE_SUFFIXES if suffixes is None else suffixes
    found: list[Path] = []
    errors: list[str] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            imgs = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in suffixes)
            if not imgs:
                errors.append(f"{raw}: directory has no images ({', '.join(sorted(suffixes))})")
            found.extend(imgs)
        elif p.is_file():
            found.append(p)
        else:
            errors.append(f"{raw}: no such file or directory")
    return found, errors


def _expected_count(paths: Sequence[Path], fps: float) -> int:
    from ..video import is_video, probe_video

    total = 0
    for p in paths:
        if is_video(p):
            try:
                total += max(1, probe_video(p, fps).expected)
            except (ImportError, OSError, ValueError):
                total += 1
        else:
            total += 1
    return total


def _safe_stem(stem: str) -> str:
    """A file stem usable as one name inside --out: ``..``, ``.`` or an empty stem (inputs
    named ``...png``, ``..png``) would name the output directory's parent or itself."""
    return stem if stem.strip(".") else "image"


def _iter_items(paths: Sequence[Path], fps: float) -> Iterator[_Item]:
    """Images as they are; videos as their sampled frames (``<stem>_<frame index>``).
    Output stems are unique, deterministic and single names inside --out: the file stem
    (``image`` for stems made of dots); a stem already taken gets the first free ``_1``,
    ``_2``... suffix, never one another input has as its own stem (``a.jpg``, ``a.png``,
    ``a_1.png`` -> ``a``, ``a_2``, ``a_1``). A video that cannot be read is one failed item."""
    from ..video import is_video, iter_video_frames

    reserved = {_safe_stem(p.stem) for p in paths if not is_video(p)}  # each input's own stem
    used: set[str] = set()

    def unique(stem: str) -> str:
        stem = _safe_stem(stem)
        name, k = stem, 0
        while name in used or (name != stem and name in reserved):
            k += 1
            name = f"{stem}_{k}"
        used.add(name)
        return name

    for p in paths:
        if not is_video(p):
            yield _Item(str(p), unique(p.stem), path=p)
            continue
        frames = iter_video_frames(p, fps)
        try:
            for index, rgb in frames:
                yield _Item(f"{p} frame {index}", unique(f"{p.stem}_{index:06d}"), rgb=rgb)
        except (ImportError, OSError, ValueError) as exc:
            yield _Item(str(p), unique(p.stem), error=exc)
        finally:
            frames.close()


def _load(item: _Item) -> Any:
    from ..images import load_image

    if item.error is not None:
        raise item.error
    return item.rgb if item.rgb is not None else load_image(item.path)

