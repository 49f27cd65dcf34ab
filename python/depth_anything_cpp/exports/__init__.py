"""Writing predictions to disk.

:func:`export` is the official ``export_dir`` / ``export_format`` surface (ref:
depth_anything_3/utils/export/__init__.py): ``export_format`` names one format or several
joined by ``-`` (``"mini_npz-glb-colmap"``), all validated before anything is written.

=============  ===============================================================================
format         files under ``export_dir``
=============  ===============================================================================
``mini_npz``   ``exports/mini_npz/results.npz``: depth (rounded to 8 decimals), conf (2),
               extrinsics, intrinsics (ref: utils/export/npz.py)
``npz``        ``exports/npz/results.npz``: image (N, H, W, 3) uint8, depth (6 decimals),
               conf (2), extrinsics, intrinsics, and ``sky`` (N, H, W) bool when the model
               predicts one (an addition to the official keys)
``glb``        ``scene.glb`` (points + camera frustums, aligned to the first camera, ref:
               utils/export/glb.py), plus ``depth_vis/*.jpg`` and ``scene.jpg`` (a copy of
               ``depth_vis/0000.jpg``) unless ``export_depth_vis=False``
``colmap``     ``cameras.bin``, ``images.bin``, ``points3D.bin`` (``.txt`` with
               ``binary=False``) directly in ``export_dir``, as the official exporter
               (ref: utils/export/colmap.py): PINHOLE cameras at the original image sizes
``depth_vis``  ``depth_vis/0000.jpg``...: processed image | colorized depth side by side
               (2W x H, JPEG quality 95; ref: utils/export/depth_vis.py)
``feat_vis``   ``feat_vis/feat_layer_<i>/000000.jpg``...: processed image | PCA of the
               features as RGB (:func:`features_to_rgb`), and ``feat_vis/feat_layer_<i>.mp4``
               (``fps``, with PyAV); needs ``export_feat_layers`` (ref: utils/export/feat_vis.py)
``depth``      ``depth/0000.png``...: 16-bit depth PNG (encoding below)
``disparity``  ``disparity/0000.png``...: 16-bit PNG of 1/depth (encoding below)
``ply``        ``scene.ply``: binary little-endian point cloud, float32 x y z + uchar
               red green blue, world frame, same filtering as ``glb``
=============  ===============================================================================

Per-format options are passed as ``export(..., glb={"show_cameras": False})`` (the official
``export_kwargs`` dict); unknown formats or options raise before anything is written. Each
format is one module of :mod:`.formats` (name, options with defaults, checks, writer): adding
a module adds a format to :func:`export`, ``DepthAnything3.inference`` and the CLI.

16-bit depth PNG encoding (``depth`` format and ``<stem>_depth.png`` of the CLI):

- metric models (``is_metric``): ``value = round(depth_m * 1000)``, i.e. millimetres,
  clipped to [1, 65535] (65.535 m max); 0 = invalid (non-finite or <= 0).
- relative models: ``value = round((depth - min) / (max - min) * 65535)`` over the finite
  pixels; ``depth = min + value / 65535 * (max - min)``.

The PNG text chunks ``depth_encoding`` (``"metric_mm"`` or ``"relative_minmax"``),
``depth_min``, ``depth_max`` and ``depth_scale`` describe the encoding in the file itself;
:func:`read_depth_png16` decodes it. Disparity PNGs store ``value = round(d / d_max *
65535)`` with ``d = 1 / depth`` (0 = invalid) and the text chunks ``depth_encoding =
"disparity_linear"`` and ``depth_scale = d_max / 65535`` (1/depth units per count).

Colorized depth maps inverse depth between its 2nd and 98th percentiles (ref:
depth_anything_3/utils/visualize.py, ``visualize_depth``) through a matplotlib colormap.

All writers are atomic: each file is written as ``.<name>.<random>.tmp`` (created new, as
``tempfile.mkstemp`` does, so a file or link planted there is never followed) next to the
target and renamed over it, so an interrupted run never leaves a half-written file under the
final name; :func:`track_writes` lists the files written so a caller can remove an
incomplete set.
"""

from __future__ import annotations

from .depth_maps import (METRIC_SCALE, decode_depth_u16, depth_to_gray8, encode_depth_u16, encode_disparity_u16,
                         read_depth_png16, write_depth_png8, write_depth_png16, write_disparity_png16)
from .files import IMAGE_FORMATS, atomic_write_bytes, track_writes, write_image, write_npz
from .format import ExportContext, ExportFormat
from .registry import FORMATS, REGISTRY, UNPORTED_FORMATS, ExportPlan, check_options, export, parse_export_format
from .scene import POINT_OPTIONS, write_glb, write_ply
from .views import export_view, view_summary
from .visual import colorize_depth, depth_to_normals, features_to_rgb, normals_to_rgb, write_depth_vis

__all__ = [
    "FORMATS",
    "UNPORTED_FORMATS",
    "REGISTRY",
    "POINT_OPTIONS",
    "METRIC_SCALE",
    "IMAGE_FORMATS",
    "ExportFormat",
    "ExportContext",
    "ExportPlan",
    "parse_export_format",
    "check_options",
    "export",
    "encode_depth_u16",
    "decode_depth_u16",
    "read_depth_png16",
    "encode_disparity_u16",
    "colorize_depth",
    "write_depth_png16",
    "write_disparity_png16",
    "write_depth_vis",
    "write_image",
    "write_depth_png8",
    "depth_to_gray8",
    "depth_to_normals",
    "normals_to_rgb",
    "features_to_rgb",
    "view_summary",
    "write_npz",
    "write_ply",
    "write_glb",
    "export_view",
    "atomic_write_bytes",
    "track_writes",
]
