"""What each ``da3cpp`` command writes per image or per scene (depth, points, export)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from .inputs import _Item
from .running import _point_options


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
        from ..exports.visual import _colormap

        if not 1 <= self.args.quality <= 100:
            return f"--quality must be in 1..100, got {self.args.quality}"
        self.cmap = None if self.args.no_vis else self.args.cmap
        if self.cmap is not None:
            try:
                _colormap(self.cmap)
            except (ImportError, ValueError) as exc:
                return f"{exc} (or pass --no-vis)"
        return None

    def _view(self, pred: Any, i: int, stem: str, seconds: float) -> None:
        from .. import exports

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
        from .. import exports

        try:
            formats = exports.parse_export_format(self.args.format)
        except ValueError:
            formats = []
        if not formats or not set(formats) <= {"ply", "glb"}:
            return f"--format: expected 'ply', 'glb' or 'ply-glb', got {self.args.format!r}"
        self.formats = formats
        return None

    def _write(self, pred: Any, stem: str) -> str:
        from .. import exports

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
        from .. import exports

        a = self.args
        shared = {"conf_thresh_percentile": a.conf_thresh_percentile, "num_max_points": a.num_max_points,
                  "remove_sky": not a.keep_sky, "show_cameras": not a.no_cameras,
                  "colmap_binary": not a.colmap_text, "process_res_method": a.process_res_method,
                  "feat_vis_fps": a.feat_vis_fps}
        if a.cmap is not None:
            shared["depth_vis_cmap"] = a.cmap
        try:
            self.plan = exports.ExportPlan(a.format, shared_args=shared)
        except (ValueError, TypeError, ImportError) as exc:
            return f"--format/--cmap: {exc}"
        self.formats = self.plan.formats
        return None

    def _image_paths(self, scene_dir: Path, items: list, rgbs: list) -> list:
        """Paths naming the views; frames are saved as JPEG when COLMAP needs image files."""
        from PIL import Image

        from .. import exports

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
        paths = self._image_paths(scene_dir, items, rgbs)
        written = self.plan.write(pred, scene_dir, image_paths=paths)
        return f", {sum(len(v) for v in written.values())} files in {scene_dir}"

    def write_one(self, pred: Any, item: _Item, rgb: Any, seconds: float = 0.0) -> str:
        return self._write(pred, self.out / item.stem, [item], [rgb])

    def write_scene(self, pred: Any, items: list, rgbs: list, seconds: float = 0.0) -> str:
        return f"scene: {len(items)} views" + self._write(pred, self.out, items, rgbs)

