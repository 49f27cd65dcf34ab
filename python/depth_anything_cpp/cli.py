"""``da3cpp`` command line: depth maps, point clouds and exports for images and videos.

Entry point: ``da3cpp = "depth_anything_cpp.cli:main"``. Exit status: 0 success,
1 some inputs failed (the others are still written), 2 usage or model error,
130 interrupted (Ctrl-C: the current input's files are removed, no temp files remain),
143 terminated (SIGTERM: the same clean-up).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from .api import PRECISIONS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
#: environment variable naming the default model of every command (--model omitted)
MODEL_ENV = "DA3CPP_MODEL"

EXAMPLES = {
    "depth": """\
examples:
  da3cpp depth photo.jpg --model da3-small-f32.gguf --out out/
  da3cpp depth images/ more.png --model depth-anything/DA3-SMALL --out out/ --threads 4
  da3cpp depth scans/ --model da3metric-large.gguf --out out/ --cmap Spectral_r --process-res 756
  da3cpp depth clip.mp4 --model da3-small-f32.gguf --out frames/ --fps 2

outputs per image (video frames are named <video stem>_<frame index>):
  <stem>_depth.png      16-bit depth: metric models in millimetres (0 = invalid);
                        relative models min..max scaled to 0..65535 (min/max in the NPZ
                        and in the PNG text chunks depth_min/depth_max)
  <stem>_depth_vis.png  colorized inverse depth (--cmap, --no-vis to skip)
  <stem>.npz            depth, conf, extrinsics, intrinsics, image (processed), ...
""",
    "points": """\
examples:
  da3cpp points photo.jpg --model da3-small-f32.gguf --out clouds/             # photo.ply, photo.glb
  da3cpp points a.png b.png --multiview --model da3-base.gguf --out scene/     # scene.ply, scene.glb
  da3cpp points clip.mp4 --multiview --fps 2 --format glb --no-cameras -m da3-small-f32.gguf -o out/

outputs: <stem>.ply / <stem>.glb per image, or scene.ply / scene.glb (--name) with --multiview.
PLY: binary little-endian, float x y z + uchar red green blue, world frame (first camera
at the origin). GLB: points + camera frustums, aligned to the first camera (glTF axes).
""",
    "export": """\
examples:
  da3cpp export a.png b.png --multiview --format mini_npz-glb-colmap -m da3-small-f32.gguf -o scene/
  da3cpp export images/ --format depth-disparity-depth_vis -m da3-small-f32.gguf -o out/
  da3cpp export clip.mp4 --multiview --fps 1 --format glb-colmap -m da3-small-f32.gguf -o out/

formats (join with '-'): mini_npz, npz, glb, colmap, depth_vis, feat_vis (with --export-feat),
depth, disparity, ply.
Files go to --out with --multiview (one scene), else to --out/<stem>/ per image; see
depth_anything_cpp.exports for the layout. COLMAP of video frames: the sampled frames are
written to <dir>/images/<stem>.jpg so the model has its images.
""",
    "colmap": """\
examples:
  da3cpp colmap scene/ --sparse-subdir 0 -m da3-small-f32.gguf -o out/ --format glb-colmap
  da3cpp colmap scene/ -m da3-base.gguf -o out/ --no-align-to-input-ext-scale

DIR holds images/ and sparse/ (or sparse/<--sparse-subdir>/), a COLMAP model (.bin or .txt) as
the official `da3 colmap` reads it. Every registered image found under images/ is one view of
one scene, conditioned on its COLMAP pose (world-to-camera) and intrinsics (the pinhole part
of any camera model; distortion is ignored). Needs a model file with the camera encoder
(converted with `da3cpp convert`; the published GGUF files lack it).
""",
}

EPILOG = """\
examples:
  da3cpp depth photo.jpg --model da3-small-f32.gguf --out out/
  da3cpp depth images/ clip.mp4 --model depth-anything/DA3-SMALL --out out/ --fps 2
  da3cpp points photo.jpg --model da3-small-f32.gguf --out clouds/
  da3cpp export a.png b.png --multiview --format mini_npz-glb-colmap -m da3-small-f32.gguf -o scene/
  da3cpp colmap scene/ --sparse-subdir 0 -m da3-small-f32.gguf -o out/
  da3cpp info --model da3-small-f32.gguf
  da3cpp convert --help
  da3cpp bench --model da3-small-f32.gguf --no-torch

Exit status: 0 ok, 1 some inputs failed (the others are written), 2 usage or model error,
130 interrupted (Ctrl-C stops cleanly), 143 terminated (SIGTERM, the same clean-up).
Run `da3cpp COMMAND --help` for details.
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    from .video import DEFAULT_FPS

    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, directories (their images, not recursive) or video files")
    p.add_argument("--model", "-m", default=None,
                   help="GGUF file, official snapshot directory, Hugging Face repo id or preset name "
                        f"(da3-small...; default: ${MODEL_ENV}, else the one GGUF in the cache)")
    p.add_argument("--metric-model", default=None, metavar="GGUF",
                   help="metric file of a nested pair (da3metric-large) when --model is its any-view "
                        "file (da3-giant): both run as da3nested-giant-large")
    p.add_argument("--out", "-o", required=True, help="output directory (created)")
    p.add_argument("--multiview", action="store_true",
                   help="treat all inputs as the views of one scene: one inference, shared poses")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS,
                   help=f"video sampling rate in frames/s (default {DEFAULT_FPS:g}; every "
                        "int(video_rate / fps)-th frame, as the official CLI)")
    p.add_argument("--process-res", type=int, default=504, help="processing resolution (default 504)")
    p.add_argument("--process-res-method", default="upper_bound_resize",
                   choices=["upper_bound_resize", "lower_bound_resize"],
                   help="which image side --process-res sets (default: the longest)")
    p.add_argument("--use-ray-pose", action="store_true",
                   help="poses from the aux ray head instead of the camera decoder (as the official CLI)")
    p.add_argument("--ref-view-strategy", default="saddle_balanced",
                   choices=["saddle_balanced", "first", "middle", "saddle_sim_range"],
                   help="reference view choice with 3 or more views (default saddle_balanced)")
    p.add_argument("--align-to-input-ext-scale", action=argparse.BooleanOptionalAction, default=True,
                   help="with input poses (colmap command): keep their scale (default on)")
    p.add_argument("--export-feat", default="",
                   help="backbone layers (comma-separated, e.g. 0,5,11) whose features the feat_vis "
                        "format shows (export/colmap commands with --format ...-feat_vis)")
    p.add_argument("--feat-vis-fps", type=float, default=15, help="feat_vis video frame rate (default 15)")
    p.add_argument("--image-extensions", default=None,
                   help="comma-separated suffixes of the images taken from directories (default: "
                        + ",".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)) + ")")
    p.add_argument("--threads", "-t", type=int, default=None,
                   help="CPU threads (default: number of physical cores)")
    p.add_argument("--variant", default=None, help="compiled core variant (see `da3cpp info`)")
    p.add_argument("--backend", default="cpu", choices=["cpu", "gpu", "auto"],
                   help="compute backend (default cpu)")
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                   help="ViT linear arithmetic on the CPU: f32, bf16 (AMX/AVX512-BF16 where present), "
                        "auto (default: f32 for f32 files, bf16 for f16/bf16 files)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-image lines, no progress bar")


def _add_point_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf-thresh-percentile", type=float, default=40.0,
                   help="drop points below this confidence percentile (default 40, as upstream)")
    p.add_argument("--num-max-points", type=int, default=1_000_000,
                   help="keep at most this many points, deterministic subset (default 1000000; 0 = all)")
    p.add_argument("--keep-sky", action="store_true",
                   help="keep sky pixels (models with a sky head drop them by default)")
    p.add_argument("--no-cameras", action="store_true", help="GLB without camera frustums")


def _subparser(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description, epilog=EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="da3cpp", description="Depth Anything 3 on a C++/ggml core (no PyTorch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{depth,points,export,colmap,info,convert,bench,serve}")

    d = _subparser(sub, "depth", "depth maps for images, directories or videos",
                   "Estimate depth and write <stem>_depth.png, <stem>_depth_vis.png and <stem>.npz "
                   "per image to --out.")
    _add_common(d)
    from .exports import _OPTIONS

    vis = _OPTIONS["depth_vis"]
    d.add_argument("--cmap", default=vis["cmap"],
                   help=f"matplotlib colormap of _depth_vis (default {vis['cmap']}, as the depth_vis export)")
    d.add_argument("--invert", action="store_true", help="reverse the colormap (and the --gray ramp)")
    d.add_argument("--vis-format", default="png", choices=["png", "jpg", "webp"],
                   help="file format of _depth_vis, _normals (default png)")
    d.add_argument("--quality", type=int, default=vis["quality"],
                   help=f"jpg/webp quality 1..100 (default {vis['quality']})")
    d.add_argument("--no-vis", action="store_true", help="do not write _depth_vis")
    d.add_argument("--gray", action="store_true",
                   help="also write <stem>_depth_gray.png: 8-bit min-max depth (far = white; --invert: near)")
    d.add_argument("--normals", action="store_true",
                   help="also write <stem>_normals.<vis-format> (RGB normal map) and 'normals' in the NPZ")
    d.add_argument("--json", action="store_true",
                   help="also write <stem>.json: sizes, depth min/max/mean, is_metric, cameras, timing")
    d.add_argument("--original-size", action="store_true",
                   help="write depth, conf, sky and images at the input image size (bilinear; sky nearest)")

    p = _subparser(sub, "points", "point clouds (PLY and/or GLB) per image or per scene",
                   "Back-project depth with the predicted cameras and write point clouds.")
    _add_common(p)
    p.add_argument("--format", default="ply-glb",
                   help="'ply', 'glb' or 'ply-glb' (default ply-glb)")
    p.add_argument("--name", default="scene", help="file stem with --multiview (default scene)")
    _add_point_options(p)

    e = _subparser(sub, "export", "any export formats (the official export_format names)",
                   "Run the model and write the requested formats (mini_npz, npz, glb, colmap, "
                   "depth_vis, depth, disparity, ply).")
    _add_common(e)
    e.add_argument("--format", "-f", default="glb",
                   help="formats joined by '-', e.g. mini_npz-glb-colmap (default glb, as the official CLI)")
    e.add_argument("--cmap", default=None, help="depth_vis colormap (default Spectral_r: the official look)")
    e.add_argument("--colmap-text", action="store_true", help="COLMAP model as .txt instead of .bin")
    _add_point_options(e)

    c = _subparser(sub, "colmap", "pose-conditioned run on a COLMAP model (images/ + sparse/)",
                   "Read the poses and intrinsics of a COLMAP sparse model, run the images as one scene "
                   "conditioned on them, and write the requested formats to --out.")
    _add_common(c)
    c.add_argument("--sparse-subdir", default="",
                   help="sparse model subdirectory, e.g. 0 for sparse/0/ (default: sparse/ itself)")
    c.add_argument("--format", "-f", default="glb",
                   help="formats joined by '-' (default glb, as the official CLI)")
    c.add_argument("--cmap", default=None, help="depth_vis colormap (default Spectral_r)")
    c.add_argument("--colmap-text", action="store_true", help="COLMAP output as .txt instead of .bin")
    _add_point_options(c)

    i = sub.add_parser("info", help="show the compiled core, variants and devices",
                       epilog="examples:\n  da3cpp info\n  da3cpp info --model da3-small-f32.gguf --json\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("--model", "-m", default=None, help="also describe this model file")
    i.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("convert", help="convert an official checkpoint to GGUF (see `da3cpp convert --help`)",
                   add_help=False)
    sub.add_parser("bench", help="time our core against the official PyTorch package (see `da3cpp bench --help`)",
                   add_help=False)
    sub.add_parser("serve", help="HTTP server (see `da3cpp serve --help`; extra: serve)", add_help=False)
    return parser


# ------------------------------------------------------------------------ inputs
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
    from .video import is_video, probe_video

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
    from .video import is_video, iter_video_frames

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
    from .images import load_image

    if item.error is not None:
        raise item.error
    return item.rgb if item.rgb is not None else load_image(item.path)


# ------------------------------------------------------------------------ running
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
        from . import exports

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

    from .hub import cache_dir

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

    from .api import PROCESS_RES_RANGE

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


class _Command:
    """What a subcommand writes: for one image (``write_one``) or one scene (``write_scene``)."""

    desc = "depth"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)

    def validate(self) -> Optional[str]:
        return None

    def write_one(self, pred: Any, item: _Item, rgb: Any, seconds: float = 0.0) -> str:
        raise NotImplementedError

    def write_scene(self, pred: Any, items: list, rgbs: list, seconds: float = 0.0) -> str:
        raise NotImplementedError


class _Depth(_Command):
    def validate(self) -> Optional[str]:
        from . import exports

        if not 1 <= self.args.quality <= 100:
            return f"--quality must be in 1..100, got {self.args.quality}"
        self.cmap = None if self.args.no_vis else self.args.cmap
        if self.cmap is not None:
            try:
                exports._colormap(self.cmap)
            except (ImportError, ValueError) as exc:
                return f"{exc} (or pass --no-vis)"
        return None

    def _view(self, pred: Any, i: int, stem: str, seconds: float) -> None:
        from . import exports

        a = self.args
        exports.export_view(pred, i, self.out, stem, cmap=self.cmap, invert=a.invert,
                            vis_format=a.vis_format, quality=a.quality, gray=a.gray, normals=a.normals,
                            summary={"seconds": round(seconds, 4)} if a.json else None,
                            original_size=a.original_size)

    def write_one(self, pred: Any, item: _Item, rgb: Any, seconds: float = 0.0) -> str:
        self._view(pred, 0, item.stem, seconds)
        return ""

    def write_scene(self, pred: Any, items: list, rgbs: list, seconds: float = 0.0) -> str:
        for i, item in enumerate(items):
            self._view(pred, i, item.stem, seconds)
        return f"{len(items)} views written"


class _Points(_Command):
    desc = "points"

    def validate(self) -> Optional[str]:
        from . import exports

        try:
            formats = exports.parse_export_format(self.args.format)
        except ValueError:
            formats = []
        if not formats or not set(formats) <= {"ply", "glb"}:
            return f"--format: expected 'ply', 'glb' or 'ply-glb', got {self.args.format!r}"
        self.formats = formats
        return None

    def _write(self, pred: Any, stem: str) -> str:
        from . import exports

        pts = pred.points(**_point_options(self.args))
        if "ply" in self.formats:
            exports.write_ply(self.out / f"{stem}.ply", pts["xyz"], pts["rgb"])
        if "glb" in self.formats:
            exports.write_glb(self.out / f"{stem}.glb", pred, points=pts,
                              show_cameras=not self.args.no_cameras)
        return f", {len(pts['xyz'])} points"

    def write_one(self, pred: Any, item: _Item, rgb: Any, seconds: float = 0.0) -> str:
        return self._write(pred, item.stem)

    def write_scene(self, pred: Any, items: list, rgbs: list, seconds: float = 0.0) -> str:
        return f"{self.args.name}: {len(items)} views" + self._write(pred, self.args.name)


class _Export(_Command):
    desc = "export"

    def validate(self) -> Optional[str]:
        from . import exports

        opts = {"glb": {**_point_options(self.args), "show_cameras": not self.args.no_cameras},
                "ply": _point_options(self.args),
                "colmap": {"conf_thresh_percentile": self.args.conf_thresh_percentile,
                           "binary": not self.args.colmap_text,
                           "process_res_method": self.args.process_res_method}}
        if self.args.cmap is not None:
            opts["depth_vis"] = {"cmap": self.args.cmap}
        opts["feat_vis"] = {"fps": self.args.feat_vis_fps}
        try:
            self.formats = exports.parse_export_format(self.args.format)
            self.options = {k: v for k, v in opts.items() if k in self.formats}
            exports.check_options(self.formats, self.options)
        except (ValueError, TypeError, ImportError) as exc:
            return f"--format/--cmap: {exc}"
        return None

    def _image_paths(self, scene_dir: Path, items: list, rgbs: list) -> list:
        """Paths naming the views; frames are saved as JPEG when COLMAP needs image files."""
        from PIL import Image

        from . import exports

        paths = []
        for item, rgb in zip(items, rgbs):
            if item.path is not None:
                paths.append(str(item.path))
                continue
            path = scene_dir / "images" / f"{item.stem}.jpg"
            if "colmap" in self.formats:
                path.parent.mkdir(parents=True, exist_ok=True)
                img = Image.fromarray(rgb)
                exports.atomic_write_bytes(path, lambda f: img.save(f, format="JPEG", quality=95))
            paths.append(str(path))
        return paths

    def _write(self, pred: Any, scene_dir: Path, items: list, rgbs: list) -> str:
        from . import exports

        paths = self._image_paths(scene_dir, items, rgbs)
        written = exports.export(pred, self.formats, scene_dir, image_paths=paths, **self.options)
        return f", {sum(len(v) for v in written.values())} files in {scene_dir}"

    def write_one(self, pred: Any, item: _Item, rgb: Any, seconds: float = 0.0) -> str:
        return self._write(pred, self.out / item.stem, [item], [rgb])

    def write_scene(self, pred: Any, items: list, rgbs: list, seconds: float = 0.0) -> str:
        return f"scene: {len(items)} views" + self._write(pred, self.out, items, rgbs)


def read_colmap_inputs(colmap_dir: Path, sparse_subdir: str = "") -> tuple[list, Any, Any]:
    """Image paths, (N, 4, 4) world-to-camera extrinsics and (N, 3, 3) intrinsics of the
    registered images of the COLMAP model in ``colmap_dir/sparse[/sparse_subdir]`` whose
    files exist under ``colmap_dir/images`` (ref: depth_anything_3/services/input_handlers.py
    ColmapHandler; the intrinsics are the camera model's pinhole part,
    ``Camera.calibration_matrix()``), in image-name order.

    Raises:
        FileNotFoundError: a missing directory. ValueError: an unreadable model, or no
        registered image with a file. ImportError: pycolmap is not installed.
    """
    import numpy as np

    try:
        import pycolmap
    except ImportError as exc:
        raise ImportError("the colmap command needs pycolmap: pip install pycolmap") from exc
    images_dir = colmap_dir / "images"
    sparse = colmap_dir / "sparse" / sparse_subdir if sparse_subdir else colmap_dir / "sparse"
    for d, what in ((colmap_dir, "COLMAP directory"), (images_dir, "images directory"),
                    (sparse, "sparse model directory")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} not found: {d}")
    try:
        rec = pycolmap.Reconstruction(str(sparse))
    except Exception as exc:  # pycolmap raises its own types for bad files
        raise ValueError(f"{sparse}: cannot read the COLMAP model: {exc}") from exc
    paths, exts, intrs = [], [], []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        path = images_dir / image.name
        if not image.has_pose or not path.is_file():
            continue
        pose = image.cam_from_world
        ext = np.eye(4)
        ext[:3] = np.asarray((pose() if callable(pose) else pose).matrix())
        paths.append(path)
        exts.append(ext)
        intrs.append(np.asarray(rec.cameras[image.camera_id].calibration_matrix()))
    if not paths:
        raise ValueError(f"{sparse}: no registered image with a file under {images_dir}")
    return paths, np.stack(exts), np.stack(intrs)


def _run_colmap(args: argparse.Namespace) -> int:
    from .api import DepthAnything3

    problem = _check_args(args)
    command = _Export(args)
    problem = problem or command.validate()
    if problem:
        _err(problem)
        return 2
    if len(args.inputs) != 1:
        _err("colmap: expected one COLMAP directory")
        return 2
    try:
        feat_layers = _feat_layers(args, command)
        paths, ext, intr = read_colmap_inputs(Path(args.inputs[0]), args.sparse_subdir)
        args.model = _default_model(args.model)
    except (OSError, ValueError, ImportError) as exc:
        _err(str(exc))
        return 2
    try:
        model = DepthAnything3.from_pretrained(args.model, variant=args.variant, n_threads=args.threads,
                                               backend=args.backend)
    except Exception as exc:  # any load failure ends the run with a message, not a traceback
        _err(f"cannot load model {args.model}: {exc}")
        return 2
    t0 = time.perf_counter()
    try:
        pred = model.inference([str(p) for p in paths], extrinsics=ext, intrinsics=intr,
                               align_to_input_ext_scale=args.align_to_input_ext_scale,
                               process_res=args.process_res, process_res_method=args.process_res_method,
                               use_ray_pose=args.use_ray_pose, ref_view_strategy=args.ref_view_strategy,
                               export_feat_layers=feat_layers)
        command.out.mkdir(parents=True, exist_ok=True)
        from . import exports

        with exports.track_writes() as written:
            try:
                exports_written = exports.export(pred, command.formats, command.out,
                                                 image_paths=[str(p) for p in paths], **command.options)
            except BaseException:
                for path in written:
                    Path(path).unlink(missing_ok=True)
                raise
    except Exception as exc:
        _err(f"{args.inputs[0]}: {type(exc).__name__}: {exc}")
        return 1
    if not args.quiet:
        n_files = sum(len(v) for v in exports_written.values())
        print(f"colmap: {len(paths)} views, {n_files} files in {command.out}, {time.perf_counter() - t0:.2f} s")
    return 0


def _run(args: argparse.Namespace, command: _Command) -> int:
    from .api import DepthAnything3

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


# ------------------------------------------------------------------------ info
def _format_value(value: object, indent: str) -> str:
    if isinstance(value, dict):
        lines = [""]
        for k, v in value.items():
            lines.append(f"{indent}  {k}: {_format_value(v, indent + '  ')}")
        return "\n".join(lines)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        lines = [""]
        for j, v in enumerate(value):
            lines.append(f"{indent}  [{j}]{_format_value(v, indent + '    ')}")
        return "\n".join(lines)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


def _cmd_info(args: argparse.Namespace) -> int:
    from . import __version__, backend_info

    info: dict = {"version": __version__}
    info.update(backend_info())
    if args.model is not None:
        from .api import DepthAnything3

        try:
            info["model"] = {"path": args.model, **DepthAnything3.from_pretrained(args.model).info}
        except Exception as exc:  # report, keep the rest of the info
            _err(f"cannot load model {args.model}: {exc}")
            return 2
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key}: {_format_value(value, '')}")
    return 0


_COMMANDS = {"depth": _Depth, "points": _Points, "export": _Export}


def _main(argv: list) -> int:
    if argv and argv[0] == "convert":
        from . import convert

        return int(convert.main(argv[1:]) or 0)
    if argv and argv[0] == "bench" and any(a == "--peers" or a.startswith("--peers=") for a in argv[1:]):
        from . import bench_peers  # issue #23: ours beside ONNX Runtime / OpenVINO / PyTorch

        return int(bench_peers.main(argv[1:]) or 0)
    if argv and argv[0] == "bench":
        from . import bench

        return int(bench.main(argv[1:]) or 0)
    if argv and argv[0] == "serve":
        from . import server

        return int(server.main(argv[1:]) or 0)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "colmap":
        return _run_colmap(args)
    if args.command in _COMMANDS:
        return _run(args, _COMMANDS[args.command](args))
    if args.command == "info":
        return _cmd_info(args)
    parser.print_help()
    return 2


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``da3cpp`` with ``argv`` (default ``sys.argv[1:]``); return the exit status
    (130 after Ctrl-C, 143 after SIGTERM, with a one-line message; both clean up alike)."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except _Terminated:
        print("da3cpp: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("da3cpp: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
