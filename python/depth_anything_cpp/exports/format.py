"""What one export format declares (:class:`ExportFormat`) and what its writer receives
(:class:`ExportContext`). Each module of :mod:`depth_anything_cpp.exports.formats` defines
one ``FORMAT``; :mod:`.registry` finds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .files import _subdir


@dataclass
class ExportContext:
    """One :func:`~depth_anything_cpp.exports.export` call as a writer sees it: the
    prediction, the output directory, what the format's ``prepare`` returned (``state``)
    and a dict the formats of this call share (e.g. the depth_vis files, written once)."""

    prediction: Any
    out: Path
    state: Any = None
    shared: dict = field(default_factory=dict)

    def subdir(self, *parts: str) -> Path:
        """``out/parts...``, created."""
        return _subdir(self.out, *parts)


@dataclass(frozen=True)
class ExportFormat:
    """One ``export_format`` name.

    Attributes:
        name: the ``export_format`` name.
        summary: one line for listings (CLI help).
        write: ``write(ctx, options)`` writes the files (atomically, through
            :mod:`.files`); it may return paths written by an earlier format of the same
            call that also belong to this one.
        options: the accepted options and their defaults (the official names where there
            is one); ``export(..., name={...})`` overrides them.
        check: ``check(options)`` validates the option values (ValueError naming them),
            before any prediction is at hand.
        prepare: ``prepare(prediction, options, image_paths) -> state``: checks that need the
            prediction, run for every format before anything is written.
        needs_images, needs_cameras: the prediction must have ``processed_images`` /
            extrinsics, intrinsics and images.
        shared_args: option -> name of the argument of ``DepthAnything3.inference`` or of
            the ``da3cpp`` command that sets it for every format (e.g.
            ``num_max_points``); given, it wins over the per-format options, as upstream.
        order: position in :data:`~depth_anything_cpp.exports.FORMATS` (official formats
            first, in upstream order).
        official: an ``export_format`` name of the official package.
    """

    name: str
    summary: str
    write: Callable[[ExportContext, dict], Optional[list]]
    options: Mapping[str, Any] = field(default_factory=dict)
    check: Optional[Callable[[dict], None]] = None
    prepare: Optional[Callable[[Any, dict, Any], Any]] = None
    needs_images: bool = False
    needs_cameras: bool = False
    shared_args: Mapping[str, str] = field(default_factory=dict)
    order: int = 100
    official: bool = False
