"""The ``da3cpp`` argument parser: subcommands, their options and help texts."""

from __future__ import annotations

import argparse
from typing import Any

from ..arguments import BACKENDS, PRECISIONS, PROCESS_RES_METHODS, REF_VIEW_STRATEGIES
from ..model import INFERENCE_DEFAULTS, LOAD_DEFAULTS
from .inputs import IMAGE_SUFFIXES

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

formats (join with '-'; feat_vis needs --export-feat):
{formats}
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
    from ..video import DEFAULT_FPS

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
    p.add_argument("--process-res", type=int, default=INFERENCE_DEFAULTS["process_res"],
                   help="processing resolution (default %(default)s)")
    p.add_argument("--process-res-method", default=INFERENCE_DEFAULTS["process_res_method"],
                   choices=list(PROCESS_RES_METHODS),
                   help="which image side --process-res sets (default: the longest)")
    p.add_argument("--use-ray-pose", action="store_true",
                   help="poses from the aux ray head instead of the camera decoder (as the official CLI)")
    p.add_argument("--ref-view-strategy", default=INFERENCE_DEFAULTS["ref_view_strategy"],
                   choices=list(REF_VIEW_STRATEGIES),
                   help="reference view choice with 3 or more views (default %(default)s)")
    p.add_argument("--align-to-input-ext-scale", action=argparse.BooleanOptionalAction,
                   default=INFERENCE_DEFAULTS["align_to_input_ext_scale"],
                   help="with input poses (colmap command): keep their scale (default on)")
    p.add_argument("--export-feat", default="",
                   help="backbone layers (comma-separated, e.g. 0,5,11) whose features the feat_vis "
                        "format shows (export/colmap commands with --format ...-feat_vis)")
    p.add_argument("--feat-vis-fps", type=float, default=INFERENCE_DEFAULTS["feat_vis_fps"],
                   help="feat_vis video frame rate (default %(default)s)")
    p.add_argument("--image-extensions", default=None,
                   help="comma-separated suffixes of the images taken from directories (default: "
                        + ",".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)) + ")")
    p.add_argument("--threads", "-t", type=int, default=None,
                   help="CPU threads (default: number of physical cores)")
    p.add_argument("--variant", default=None, help="compiled core variant (see `da3cpp info`)")
    p.add_argument("--backend", default=LOAD_DEFAULTS["backend"], choices=list(BACKENDS),
                   help="compute backend (default %(default)s)")
    p.add_argument("--precision", default=LOAD_DEFAULTS["precision"], choices=list(PRECISIONS),
                   help="ViT linear arithmetic on the CPU: f32, bf16 (AMX/AVX512-BF16 where present), "
                        "auto (default: f32 for f32 files, bf16 for f16/bf16 files)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-image lines, no progress bar")


def _add_point_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf-thresh-percentile", type=float, default=INFERENCE_DEFAULTS["conf_thresh_percentile"],
                   help="drop points below this confidence percentile (default %(default)s, as upstream)")
    p.add_argument("--num-max-points", type=int, default=INFERENCE_DEFAULTS["num_max_points"],
                   help="keep at most this many points, deterministic subset (default %(default)s; 0 = all)")
    p.add_argument("--keep-sky", action="store_true",
                   help="keep sky pixels (models with a sky head drop them by default)")
    p.add_argument("--no-cameras", action="store_true", help="GLB without camera frustums")


def _subparser(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    epilog = EXAMPLES[name].replace("{formats}", _format_list())
    return sub.add_parser(name, help=help_text, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)




def _format_list() -> str:
    """One line per export format (from the registry, :mod:`depth_anything_cpp.exports`)."""
    from ..exports import REGISTRY

    return "\n".join(f"  {name:<10} {fmt.summary}" for name, fmt in REGISTRY.items())


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="da3cpp", description="Depth Anything 3 on a C++/ggml core (no PyTorch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{depth,points,export,colmap,info,convert,bench,serve}")

    d = _subparser(sub, "depth", "depth maps for images, directories or videos",
                   "Estimate depth and write <stem>_depth.png, <stem>_depth_vis.png and <stem>.npz "
                   "per image to --out.")
    _add_common(d)
    from ..exports import REGISTRY

    vis = REGISTRY["depth_vis"].options
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
                   "Run the model and write the requested formats (see below).")
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

