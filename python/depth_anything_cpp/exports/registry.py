"""The export formats by name (found in :mod:`.formats`), ``export_format`` parsing and
option checks (:class:`ExportPlan`: done once, before the network runs), and :func:`export`."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import formats as _formats
from .files import PathLike, _prepare_dir, track_writes
from .format import ExportContext, ExportFormat
from .scene import _require_cameras

#: Official format names this package does not write (they raise UnsupportedError).
UNPORTED_FORMATS = ("gs_ply", "gs_video")


def _discover() -> dict[str, ExportFormat]:
    found = []
    for info in pkgutil.iter_modules(_formats.__path__):
        if not info.name.startswith("_"):
            found.append(importlib.import_module(f"{_formats.__name__}.{info.name}").FORMAT)
    return {f.name: f for f in sorted(found, key=lambda f: (f.order, f.name))}


#: name -> :class:`ExportFormat` of every format, in :data:`FORMATS` order.
REGISTRY = _discover()
#: Known ``export_format`` names (official first; ours: depth, disparity, ply).
FORMATS = tuple(REGISTRY)


def parse_export_format(export_format: Union[str, Sequence[str]]) -> list[str]:
    """Split ``"mini_npz-glb"`` (or take a list of names) into known format names, in the
    given order, duplicates removed.

    Raises:
        ValueError: empty, or a name not in :data:`FORMATS` (the message lists them).
        UnsupportedError: an official format that is not ported (:data:`UNPORTED_FORMATS`).
        TypeError: not a str or a sequence of str.
    """
    if isinstance(export_format, str):
        names = export_format.split("-")
    elif isinstance(export_format, (list, tuple)) and all(isinstance(s, str) for s in export_format):
        names = list(export_format)
    else:
        raise TypeError(f"export_format: expected a str like 'mini_npz-glb', got {type(export_format).__name__}")
    names = [s.strip() for s in names]
    unported = [s for s in names if s in UNPORTED_FORMATS]
    if unported:
        from ..errors import UnsupportedError

        raise UnsupportedError(
            f"export_format {export_format!r}: {', '.join(map(repr, unported))} not ported to "
            f"depth-anything-cpp (the 3D Gaussian head); available: {', '.join(FORMATS)}")
    unknown = [s for s in names if s not in FORMATS]
    if unknown or not names:
        raise ValueError(
            f"export_format {export_format!r}: unknown format(s) {', '.join(map(repr, unknown)) or '(empty)'}; "
            f"valid formats: {', '.join(FORMATS)} (join several with '-')"
        )
    return list(dict.fromkeys(names))


# Options each format accepts (the official names where there is one).
_OPTIONS: dict[str, dict[str, Any]] = {
    "mini_npz": {},
    "npz": {},
    "glb": {"conf_thresh": 1.05, "conf_thresh_percentile": 40.0, "ensure_thresh_percentile": 90.0,
            "num_max_points": 1_000_000, "remove_sky": True, "seed": 0, "filter_black_bg": False,
            "filter_white_bg": False, "sky_depth_def": 98.0, "show_cameras": True, "camera_size": 0.03,
            "export_depth_vis": True},
    # official COLMAP export: threshold = percentile(conf, 40), no cap, sky kept
    "colmap": {"conf_thresh_percentile": 40.0, "num_max_points": 0, "remove_sky": False,
               "binary": True, "image_paths": None, "process_res_method": "upper_bound_resize"},
    # Spectral_r with near at the high end = the official look (Spectral, near = low end)
    "depth_vis": {"cmap": "Spectral_r", "invert": False, "percentile": 2.0, "quality": 95},
    "feat_vis": {"fps": 15, "clip_percent": 10.0, "video": True},
    "depth": {},
    "disparity": {},
    "ply": {"conf_thresh": 1.05, "conf_thresh_percentile": 40.0, "ensure_thresh_percentile": 90.0,
            "num_max_points": 1_000_000, "remove_sky": True, "seed": 0, "filter_black_bg": False,
            "filter_white_bg": False, "sky_depth_def": 98.0},
}


def _resolve_options(formats: list[str], kwargs: dict) -> dict[str, dict]:
    stray = [k for k in kwargs if k not in FORMATS]
    if stray:
        raise TypeError(f"export: unexpected keyword(s) {', '.join(stray)}; per-format options go "
                        f"in a dict named after the format (e.g. glb={{'show_cameras': False}})")
    resolved = {}
    for fmt in formats:
        given = kwargs.get(fmt) or {}
        if not isinstance(given, dict):
            raise TypeError(f"export: options for {fmt!r} must be a dict, got {type(given).__name__}")
        bad = [k for k in given if k not in REGISTRY[fmt].options]
        if bad:
            accepted = ", ".join(REGISTRY[fmt].options) or "none"
            raise TypeError(f"export: unknown option(s) {', '.join(bad)} for {fmt!r}; accepted: {accepted}")
        resolved[fmt] = {**REGISTRY[fmt].options, **given}
    return resolved


class ExportPlan:
    """``export_format`` and the per-format options, parsed and checked once.

    Args:
        export_format: one name of :data:`FORMATS` or several joined by ``-`` (or a list).
        options: ``{format: {option: value}}``, each format's defaults filled in.
        shared_args: values of the arguments every format may take (``num_max_points``,
            ``conf_thresh_percentile``... see :attr:`ExportFormat.shared_args`); they win
            over ``options``, as upstream's top-level ``inference`` arguments.

    Attributes:
        formats: the format names, in the given order, duplicates removed.
        options: ``{format: resolved options}``.

    Raises:
        ValueError, TypeError, UnsupportedError: as :func:`export`, before anything is written.
    """

    def __init__(self, export_format: Union[str, Sequence[str]], options: Optional[dict] = None,
                 shared_args: Optional[dict] = None) -> None:
        self.formats = parse_export_format(export_format)
        given = dict(options or {})
        for fmt in self.formats:  # as upstream, the top-level argument wins over export_kwargs
            top = {opt: shared_args[arg] for opt, arg in REGISTRY[fmt].shared_args.items()
                   if shared_args and arg in shared_args}
            if top:
                given[fmt] = {**given.get(fmt, {}), **top}
        self.options = _resolve_options(self.formats, given)
        for fmt in self.formats:
            check = REGISTRY[fmt].check
            if check is not None:
                check(self.options[fmt])

    def write(self, prediction: Any, export_dir: PathLike,
              image_paths: Optional[Sequence[Any]] = None) -> dict[str, list[Path]]:
        """Write ``prediction`` in every format of the plan (see :func:`export`)."""
        _check_prediction(prediction, self.formats)
        states = {}
        for fmt in self.formats:
            prepare = REGISTRY[fmt].prepare
            if prepare is not None:
                states[fmt] = prepare(prediction, self.options[fmt], image_paths)
        out = _prepare_dir(export_dir)
        shared: dict = {}
        written: dict[str, list[Path]] = {}
        for fmt in self.formats:
            ctx = ExportContext(prediction, out, states.get(fmt), shared)
            with track_writes() as files:
                earlier = REGISTRY[fmt].write(ctx, self.options[fmt])
                if earlier:
                    files.extend(earlier)
            written[fmt] = list(dict.fromkeys(files))
        return written


def _check_prediction(prediction: Any, formats: list[str]) -> None:
    depth = getattr(prediction, "depth", None)
    if depth is None or np.ndim(depth) != 3 or depth.shape[0] == 0:
        raise ValueError("prediction.depth: expected an (N, H, W) array")
    needs_images = sorted(fmt for fmt in formats if REGISTRY[fmt].needs_images)
    if needs_images and getattr(prediction, "processed_images", None) is None:
        raise ValueError(f"export {needs_images}: prediction.processed_images is required")
    for fmt in formats:
        if REGISTRY[fmt].needs_cameras:
            _require_cameras(prediction, f"{fmt!r} export")


def check_options(formats: Union[str, Sequence[str]], kwargs: dict) -> dict[str, dict]:
    """Validate ``export_format`` and the per-format option dicts ``kwargs`` as
    :func:`export` does, without a prediction; return the resolved options per format.

    Raises:
        ValueError, TypeError: as :func:`export`.
    """
    return ExportPlan(formats, kwargs).options


def export(prediction: Any, export_format: Union[str, Sequence[str]], export_dir: PathLike,
           image_paths: Optional[Sequence[Any]] = None, **kwargs: Any) -> dict[str, list[Path]]:
    """Write ``prediction`` to ``export_dir`` in one or several formats (see the module
    docstring for the files of each format).

    Args:
        prediction: a :class:`~depth_anything_cpp.Prediction`.
        export_format: one name of :data:`FORMATS` or several joined by ``-``.
        export_dir: output directory, created (with parents) if missing.
        image_paths: the N input paths, used by ``colmap`` for image names (basenames) and,
            when the prediction does not record them, original sizes. Default: the paths
            recorded by :meth:`DepthAnything3.inference`; views given as arrays are named
            ``0000.png``, ``0001.png``...
        **kwargs: per-format option dicts, e.g. ``glb={"num_max_points": 200_000}``,
            ``depth_vis={"cmap": "turbo", "invert": False}``, ``colmap={"binary": False}``.
            glb/ply options: those of :meth:`Prediction.points` plus (glb) ``show_cameras``,
            ``camera_size``, ``export_depth_vis``.

    Returns:
        ``{format: [paths written]}``.

    Raises:
        ValueError: unknown format (lists the valid ones), missing prediction fields for a
            format (e.g. cameras for glb/colmap/ply), bad option values.
        TypeError: unknown option names.
        NotADirectoryError, PermissionError, OSError: ``export_dir`` is a file, not
            writable, or a write fails. Everything above except write failures is checked
            before any file is written; each file is written atomically.
    """
    return ExportPlan(export_format, kwargs).write(prediction, export_dir, image_paths)
