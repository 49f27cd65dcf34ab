"""Running a ``da3cpp`` command over its inputs: argument checks, model choice, progress,
per-input errors and clean-up of interrupted outputs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .inputs import _collect_inputs, _expected_count, _Item, _iter_items, _load, _parse_suffixes
from .parser import MODEL_ENV


def _err(msg: str) -> None:
    print(f"da3cpp: error: {msg}", file=sys.stderr)


class _Batch:
    """Progress bar, per-item error reporting and clean-up of an interrupted item."""

    def __init__(self, args: argparse.Namespace, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.quiet = args.quiet
        self.failed = 0
        self.bar = tqdm(total=total, desc=desc, unit="img", disable=True if args.quiet else None,
                        file=sys.stderr)

    def error(self, label: str, exc: BaseException) -> None:
        self.failed += 1
        msg = f"{label}: {type(exc).__name__}: {exc}"
        if self.quiet:
            _err(msg)
        else:
            self.bar.write(f"da3cpp: error: {msg}", file=sys.stderr)

    def info(self, line: str) -> None:
        if not self.quiet:
            self.bar.write(line, file=sys.stdout)

    def run(self, label: str, work: Callable[[], Optional[str]], advance: int = 1) -> bool:
        """Run ``work``; report its summary line or its error. When it fails or is
        interrupted, the files it wrote are removed; KeyboardInterrupt propagates."""
        from .. import exports

        with exports.track_writes() as written:
            try:
                line = work()
            except BaseException as exc:
                for path in written:  # no incomplete set of outputs for this input
                    Path(path).unlink(missing_ok=True)
                if not isinstance(exc, Exception):  # Ctrl-C, SystemExit
                    raise
                self.error(label, exc)
                return False
            finally:
                self.bar.update(advance)
        if line:
            self.info(line)
        return True

    def close(self) -> None:
        self.bar.close()


def _summary(name: str, rgb: Any, pred: Any, view: int, seconds: float, extra: str = "") -> str:
    import numpy as np

    depth = pred.depth[view]
    finite = depth[np.isfinite(depth)]
    unit = " m" if pred.is_metric else ""
    stats = (f"{finite.min():.4g}/{np.median(finite):.4g}/{finite.max():.4g}{unit}"
             if finite.size else "no finite depth")
    size = f"{rgb.shape[1]}x{rgb.shape[0]} -> " if rgb is not None else ""
    return (f"{name}: {size}{depth.shape[1]}x{depth.shape[0]}, depth min/median/max {stats}"
            f"{extra}, {seconds:.2f} s")


def _feat_layers(args: argparse.Namespace, command: Any) -> list:
    """--export-feat "0,5" -> [0, 5]; only with a feat_vis export.

    Raises:
        ValueError: bad indices, or --export-feat without the feat_vis format (or the reverse).
    """
    text = args.export_feat.strip()
    wants = "feat_vis" in getattr(command, "formats", ())
    if not text:
        if wants:
            raise ValueError("--format feat_vis needs --export-feat LAYERS (e.g. 0,5,11)")
        return []
    if not wants:
        raise ValueError("--export-feat: the features are written by the feat_vis format only "
                         "(da3cpp export/colmap --format ...-feat_vis)")
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--export-feat: expected comma-separated layer indices, got {text!r}") from None


def _default_model(model: Optional[str]) -> str:
    """--model, else $DA3CPP_MODEL, else the only GGUF in the conversion cache.

    Raises:
        ValueError: none of them gives a model (the message says how to set one).
    """
    import os

    from ..hub import cache_dir

    if model:
        return model
    env = os.environ.get(MODEL_ENV, "").strip()
    if env:
        return env
    cached = sorted(cache_dir().glob("*.gguf")) if cache_dir().is_dir() else []
    if len(cached) == 1:
        return str(cached[0])
    found = f"{len(cached)} GGUF files in {cache_dir()}" if cached else f"no GGUF file in {cache_dir()}"
    raise ValueError(f"no model: pass --model (a .gguf, snapshot directory, repo id or preset such as "
                     f"da3-small) or set {MODEL_ENV} ({found})")


def _check_args(args: argparse.Namespace) -> Optional[str]:
    import math

    from ..api import PROCESS_RES_RANGE

    lo, hi = PROCESS_RES_RANGE
    if not lo <= args.process_res <= hi:
        return f"--process-res must be in [{lo}, {hi}], got {args.process_res}"
    if args.threads is not None and not 0 <= args.threads <= 512:
        return f"--threads must be in [0, 512], got {args.threads}"
    if not math.isfinite(args.fps) or args.fps <= 0:
        return f"--fps must be > 0, got {args.fps}"
    if getattr(args, "num_max_points", 0) < 0:
        return f"--num-max-points must be >= 0, got {args.num_max_points}"
    if not 0.0 <= getattr(args, "conf_thresh_percentile", 0.0) <= 100.0:
        return f"--conf-thresh-percentile must be in [0, 100], got {args.conf_thresh_percentile}"
    return None


def _point_options(args: argparse.Namespace) -> dict:
    return {"conf_thresh_percentile": args.conf_thresh_percentile,
            "num_max_points": args.num_max_points, "remove_sky": not args.keep_sky}



def _run(args: argparse.Namespace, command: Any) -> int:
    from ..api import DepthAnything3

    problem = _check_args(args) or command.validate()
    if problem:
        _err(problem)
        return 2
    try:
        feat_layers = _feat_layers(args, command)
        suffixes = _parse_suffixes(args.image_extensions)
        args.model = _default_model(args.model)
    except ValueError as exc:
        _err(str(exc))
        return 2
    paths, input_errors = _collect_inputs(args.inputs, suffixes)
    for msg in input_errors:
        _err(msg)
    if not paths:
        _err("no input images")
        return 2
    try:
        if args.metric_model:
            model = DepthAnything3.from_file(args.model, variant=args.variant, n_threads=args.threads,
                                             backend=args.backend, metric_path=args.metric_model,
                                             precision=args.precision)
        else:
            model = DepthAnything3.from_pretrained(args.model, variant=args.variant, n_threads=args.threads,
                                                   backend=args.backend, precision=args.precision)
    except Exception as exc:  # any load failure ends the run with a message, not a traceback
        _err(f"cannot load model {args.model}: {exc}")
        return 2
    try:
        command.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"cannot create output directory {command.out}: {exc}")
        return 2
    infer = dict(process_res=args.process_res, process_res_method=args.process_res_method,
                 use_ray_pose=args.use_ray_pose, ref_view_strategy=args.ref_view_strategy,
                 align_to_input_ext_scale=args.align_to_input_ext_scale, export_feat_layers=feat_layers)
    total = _expected_count(paths, args.fps)
    max_views = int(getattr(model._core, "max_views", total))
    if args.multiview and total > max_views:  # before anything is decoded
        _err(f"--multiview: {total} views (images and sampled video frames), at most {max_views} in one scene; "
             "lower --fps or give fewer inputs")
        return 2
    batch = _Batch(args, total if not args.multiview else total + 1, command.desc)
    n_items = 0
    try:
        if args.multiview:
            items, rgbs = [], []
            for item in _iter_items(paths, args.fps):
                n_items += 1

                def load(item: _Item = item) -> str:
                    rgbs.append(_load(item))
                    items.append(item)
                    return ""
                batch.run(item.label, load)
            if items:
                def scene() -> str:
                    t0 = time.perf_counter()
                    pred = model.inference(rgbs, **infer)
                    line = command.write_scene(pred, items, rgbs, time.perf_counter() - t0)
                    return f"{line}, {time.perf_counter() - t0:.2f} s"
                batch.run("scene", scene)
        else:
            for item in _iter_items(paths, args.fps):
                n_items += 1

                def one(item: _Item = item) -> str:
                    t0 = time.perf_counter()
                    rgb = _load(item)
                    pred = model.inference([rgb], **infer)
                    extra = command.write_one(pred, item, rgb, time.perf_counter() - t0)
                    name = item.path.name if item.path is not None else item.stem
                    return _summary(name, rgb, pred, 0, time.perf_counter() - t0, extra)
                batch.run(item.label, one)
    finally:
        batch.close()
    failed = batch.failed + len(input_errors)
    if failed:
        _err(f"{failed} of {n_items + len(input_errors)} inputs failed")
        return 1
    return 0

