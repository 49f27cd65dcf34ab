"""``da3cpp`` command line: depth maps for many images, backend info, conversion.

Entry point: ``da3cpp = "depth_anything_cpp.cli:main"``. Exit status: 0 success,
1 some images failed (the others are still written), 2 usage or model error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}

EPILOG = """\
examples:
  da3cpp depth photo.jpg --model da3-small-f32.gguf --out out/
  da3cpp depth images/ more.png --model depth-anything/DA3-SMALL --out out/ --threads 4
  da3cpp depth scans/ --model da3metric-large.gguf --out out/ --cmap Spectral_r --process-res 756
  da3cpp info
  da3cpp convert --help
  da3cpp bench --model da3-small-f32.gguf --no-torch

outputs per image (see depth_anything_cpp.exports):
  <stem>_depth.png      16-bit depth: metric models in millimetres (0 = invalid);
                        relative models min..max scaled to 0..65535 (min/max in the NPZ
                        and in the PNG text chunks depth_min/depth_max)
  <stem>_depth_vis.png  colorized inverse depth (--cmap, --no-vis to skip)
  <stem>.npz            depth, conf, extrinsics, intrinsics, processed_image, ...
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="da3cpp",
        description="Depth Anything 3 on a C++/ggml core (no PyTorch).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{depth,info,convert,bench}")

    d = sub.add_parser(
        "depth", help="estimate depth for images or directories of images",
        description="Estimate depth for each image independently and write "
                    "<stem>_depth.png, <stem>_depth_vis.png and <stem>.npz to --out.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files, or directories (their images, not recursive)")
    d.add_argument("--model", "-m", required=True,
                   help="GGUF file, official snapshot directory, or Hugging Face repo id")
    d.add_argument("--out", "-o", required=True, help="output directory (created)")
    d.add_argument("--process-res", type=int, default=504, help="processing resolution (default 504)")
    d.add_argument("--process-res-method", default="upper_bound_resize",
                   choices=["upper_bound_resize", "lower_bound_resize"],
                   help="which image side --process-res sets (default: the longest)")
    d.add_argument("--threads", "-t", type=int, default=None,
                   help="CPU threads (default: number of physical cores)")
    d.add_argument("--variant", default=None, help="compiled core variant (see `da3cpp info`)")
    d.add_argument("--backend", default="cpu", choices=["cpu", "gpu", "auto"],
                   help="compute backend (default cpu)")
    d.add_argument("--cmap", default="turbo", help="matplotlib colormap for _depth_vis.png (default turbo)")
    d.add_argument("--no-vis", action="store_true", help="do not write _depth_vis.png")
    d.add_argument("--quiet", "-q", action="store_true", help="no per-image lines, no progress bar")

    i = sub.add_parser("info", help="show the compiled core, variants and devices")
    i.add_argument("--model", "-m", default=None, help="also describe this model file")
    i.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("convert", help="convert an official checkpoint to GGUF (see `da3cpp convert --help`)",
                   add_help=False)
    sub.add_parser("bench", help="time our core against the official PyTorch package (see `da3cpp bench --help`)",
                   add_help=False)
    return parser


def _collect_images(inputs: Iterable[str]) -> tuple[list[Path], list[str]]:
    """Expand directories; return (image paths, error messages for bad inputs)."""
    found: list[Path] = []
    errors: list[str] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            imgs = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not imgs:
                errors.append(f"{raw}: directory has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found.extend(imgs)
        elif p.is_file():
            found.append(p)
        else:
            errors.append(f"{raw}: no such file or directory")
    return found, errors


def _unique_stems(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        stem = p.stem
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}_{n}")
    return stems


def _err(msg: str) -> None:
    print(f"da3cpp: error: {msg}", file=sys.stderr)


def _cmd_depth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import exports
    from .api import DepthAnything3
    from .images import load_image

    if args.process_res < 14:
        _err(f"--process-res must be >= 14, got {args.process_res}")
        return 2
    if args.threads is not None and args.threads < 0:
        _err(f"--threads must be >= 0, got {args.threads}")
        return 2
    cmap = None if args.no_vis else args.cmap
    if cmap is not None:
        try:
            exports._colormap(cmap)
        except (ImportError, ValueError) as exc:
            _err(f"{exc} (or pass --no-vis)")
            return 2
    paths, input_errors = _collect_images(args.inputs)
    for msg in input_errors:
        _err(msg)
    if not paths:
        _err("no input images")
        return 2
    try:
        model = DepthAnything3.from_pretrained(args.model, variant=args.variant,
                                               n_threads=args.threads, backend=args.backend)
    except Exception as exc:  # any load failure ends the run with a message, not a traceback
        _err(f"cannot load model {args.model}: {exc}")
        return 2
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"cannot create output directory {out_dir}: {exc}")
        return 2

    failed = len(input_errors)
    bar = tqdm(list(zip(paths, _unique_stems(paths))), desc="depth", unit="img",
               disable=True if args.quiet else None, file=sys.stderr)
    for path, stem in bar:
        t0 = time.perf_counter()
        try:
            rgb = load_image(path)
            pred = model.inference([rgb], process_res=args.process_res,
                                   process_res_method=args.process_res_method)
            exports.export_view(pred, 0, out_dir, stem, cmap=cmap)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # per-image failure: report, go on
            failed += 1
            msg = f"{path}: {type(exc).__name__}: {exc}"
            if args.quiet:
                _err(msg)
            else:
                tqdm.write(f"da3cpp: error: {msg}", file=sys.stderr)
            continue
        dt = time.perf_counter() - t0
        if not args.quiet:
            import numpy as np

            depth = pred.depth[0]
            finite = depth[np.isfinite(depth)]
            unit = " m" if pred.is_metric else ""
            stats = (f"{finite.min():.4g}/{np.median(finite):.4g}/{finite.max():.4g}{unit}"
                     if finite.size else "no finite depth")
            tqdm.write(f"{path.name}: {rgb.shape[1]}x{rgb.shape[0]} -> {depth.shape[1]}x{depth.shape[0]}, "
                       f"depth min/median/max {stats}, {dt:.2f} s", file=sys.stdout)
    total = len(paths) + len(input_errors)
    if failed:
        _err(f"{failed} of {total} inputs failed")
        return 1
    return 0


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``da3cpp`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        from . import convert

        return int(convert.main(argv[1:]) or 0)
    if argv and argv[0] == "bench":
        from . import bench

        return int(bench.main(argv[1:]) or 0)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "depth":
        return _cmd_depth(args)
    if args.command == "info":
        return _cmd_info(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
