"""Scale-out on Ray Data (``pip install depth-anything-cpp[ray]``).

:class:`DepthPredictor` is a callable class for ``ray.data.Dataset.map_batches``: each
actor loads the model once and runs every image of its batches as one view, with as many
threads as the CPUs Ray gave the actor::

    import ray
    from depth_anything_cpp.ray_data import DepthPredictor

    ds = ray.data.read_images("s3://bucket/photos/", include_paths=True, mode="RGB")
    out = ds.map_batches(DepthPredictor, fn_constructor_kwargs={"model_path": "/models/da3-small-f16.gguf"},
                         batch_size=8, batch_format="numpy", concurrency=4, num_cpus=4)
    out.write_parquet("s3://bucket/depth/")

Output columns (one row per image): ``depth`` (H, W) float32, ``conf`` (H, W) float32
(absent for models without confidence), ``extrinsics`` (3, 4) float32 world-to-camera,
``intrinsics`` (3, 3) float32 pixels at H x W, ``is_metric`` bool, ``width`` / ``height``
(the depth map's size, the processed resolution), the input ``path`` when given, and
``export_paths`` (list of str) with ``export_dir``. The ``image`` column is dropped unless
``keep_image=True``. Rows whose image fails keep going: their ``error`` column holds the
message and their arrays are empty (0 x 0).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .api import INFERENCE_DEFAULTS

__all__ = ["DepthPredictor", "actor_cpus"]

_PROCESS_RES = INFERENCE_DEFAULTS["process_res"]


def actor_cpus(default: Optional[int] = None) -> int:
    """CPUs Ray assigned to the calling task/actor (rounded, >= 1); outside Ray (or
    with none assigned), ``default`` or ``os.cpu_count()``."""
    try:
        import ray

        if ray.is_initialized():
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
            if cpus:
                return max(1, round(cpus))
    except ImportError:
        pass
    return int(default or os.cpu_count() or 1)


class DepthPredictor:
    """Callable class for ``Dataset.map_batches(DepthPredictor, batch_format="numpy", ...)``.

    Args:
        model_path: GGUF file (on every node: a shared filesystem or a path baked into the image).
        n_threads: inference threads; None = the CPUs Ray assigned to this actor (``num_cpus``).
        process_res: processing resolution (longest side), as ``DepthAnything3.inference``.
        image_column: column of decoded images ((H, W, 3) uint8; ``ray.data.read_images``).
        path_column: column of image paths, used when ``image_column`` is absent (paths
            readable from the worker) and passed through to the output.
        export_dir, export_format: write ``DepthAnything3.inference`` exports of each image
            to ``export_dir/<path stem or row id>/`` and list them in ``export_paths``.
        keep_image: keep the input image column in the output.
    """

    def __init__(self, model_path: str, *, n_threads: Optional[int] = None, process_res: int = _PROCESS_RES,
                 image_column: str = "image", path_column: str = "path", export_dir: Optional[str] = None,
                 export_format: str = "mini_npz", keep_image: bool = False, variant: Optional[str] = None) -> None:
        from .api import DepthAnything3

        self.n_threads = int(n_threads) if n_threads else actor_cpus()
        self.model = DepthAnything3.from_file(model_path, n_threads=self.n_threads, variant=variant)
        self.process_res = int(process_res)
        self.image_column, self.path_column = image_column, path_column
        self.export_dir = None if export_dir is None else Path(export_dir)
        self.export_format = export_format
        self.keep_image = bool(keep_image)
        self._rows = 0

    def _one(self, image: Any, name: str) -> dict:
        kwargs: dict = {"process_res": self.process_res}
        if self.export_dir is not None:
            kwargs.update(export_dir=self.export_dir / name, export_format=self.export_format)
        from . import exports

        with exports.track_writes() as written:
            pred = self.model.inference([image], **kwargs)
        h, w = pred.depth.shape[1:3]
        return {"depth": pred.depth[0], "conf": None if pred.conf is None else pred.conf[0],
                "extrinsics": None if pred.extrinsics is None else pred.extrinsics[0],
                "intrinsics": None if pred.intrinsics is None else pred.intrinsics[0],
                "is_metric": bool(pred.is_metric), "width": int(w), "height": int(h),
                "export_paths": [os.fspath(p) for p in written], "error": ""}

    def __call__(self, batch: dict) -> dict:
        """One batch (dict of column -> array, ``batch_format="numpy"``) -> output columns."""
        if self.image_column in batch:
            images = list(batch[self.image_column])
        elif self.path_column in batch:
            images = [str(p) for p in batch[self.path_column]]
        else:
            raise KeyError(f"DepthPredictor: the batch has neither {self.image_column!r} nor "
                           f"{self.path_column!r} (columns: {', '.join(batch)})")
        paths = [str(p) for p in batch[self.path_column]] if self.path_column in batch else None
        rows = []
        for i, image in enumerate(images):
            name = Path(paths[i]).stem if paths else f"{self._rows:06d}"
            self._rows += 1
            try:
                rows.append(self._one(image, name))
            except (ValueError, OSError, MemoryError, NotImplementedError) as exc:
                rows.append({"error": f"{paths[i] if paths else name}: {exc}"})
        out: dict = {}
        empty2 = np.zeros((0, 0), np.float32)
        for key, blank in (("depth", empty2), ("conf", empty2), ("extrinsics", np.zeros((3, 4), np.float32)),
                           ("intrinsics", np.zeros((3, 3), np.float32))):
            values = [r.get(key) if r.get(key) is not None else blank for r in rows]
            if key == "conf" and all(r.get("conf") is None for r in rows):
                continue
            out[key] = _column(values)
        out["is_metric"] = np.array([r.get("is_metric", False) for r in rows], bool)
        out["width"] = np.array([r.get("width", 0) for r in rows], np.int32)
        out["height"] = np.array([r.get("height", 0) for r in rows], np.int32)
        out["error"] = np.array([r["error"] for r in rows], object)
        if self.export_dir is not None:
            out["export_paths"] = _column([np.array(r.get("export_paths", []), dtype=object) for r in rows])
        if paths is not None:
            out[self.path_column] = np.array(paths, object)
        if self.keep_image and self.image_column in batch:
            out[self.image_column] = batch[self.image_column]
        return out


def _column(values: list) -> np.ndarray:
    """Stack equal-shaped arrays; else a 1-D object array (Ray makes it a variable-shaped
    tensor column)."""
    if values and all(v.shape == values[0].shape and v.dtype == values[0].dtype for v in values):
        return np.stack(values)
    column = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        column[i] = v
    return column


# ---- example: a folder of images to Parquet on a (local) cluster ------------------------------
_MAIN_DOC = """Depth for a folder of images on a local Ray cluster, written as Parquet.

    python -m depth_anything_cpp.ray_data --model da3-small-f16.gguf --out depth_parquet/ \
        ../shared/data/da3_examples/*.png ../shared/data/metric3d/data/nyu_demo/rgb/*.jpg

On a multi-node cluster, connect with ``ray.init("auto")`` (or ``--address``) and read and
write object storage (``s3://...``, ``gs://...``); see the README, "Scale-out on Ray".
"""


def run_parquet(model: str, images: list, out: str, *, actors: int = 2, cpus_per_actor: float = 0.75,
        read_cpus: float = 0.5, process_res: int = _PROCESS_RES, batch_size: int = 2) -> dict:
    """Read ``images`` with ``ray.data.read_images`` (tasks of ``read_cpus`` CPUs), map
    :class:`DepthPredictor` over them on ``actors`` actors of ``cpus_per_actor`` CPUs (each
    runs round(cpus_per_actor) threads), write Parquet to ``out``. Ray must be initialised.
    The actors must leave ``read_cpus`` free, or the read waits for CPUs forever (on 2
    CPUs: 2 x 0.75 + 0.5). Returns {"rows", "seconds"}."""
    import ray

    start = time.perf_counter()
    ds = ray.data.read_images(images, include_paths=True, mode="RGB", num_cpus=read_cpus)
    ds = ds.map_batches(DepthPredictor, fn_constructor_kwargs={"model_path": model, "process_res": process_res},
                        batch_size=batch_size, batch_format="numpy", concurrency=actors, num_cpus=cpus_per_actor)
    ds.write_parquet(out)
    seconds = time.perf_counter() - start
    return {"rows": ray.data.read_parquet(out).count(), "seconds": seconds}  # ds.count() would run it again


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m depth_anything_cpp.ray_data", description=_MAIN_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="image files or directories (local paths or s3://, gs://...)")
    p.add_argument("--model", required=True, help="GGUF file, readable on every node")
    p.add_argument("--out", required=True, help="Parquet output directory (local or object storage)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' on a cluster); default: local")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local cluster (default 2)")
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--cpus-per-actor", type=float, default=0.75)
    p.add_argument("--read-cpus", type=float, default=0.5)
    p.add_argument("--process-res", type=int, default=_PROCESS_RES)
    args = p.parse_args(argv)
    import ray

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    try:
        print(run_parquet(args.model, args.images, args.out, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                  read_cpus=args.read_cpus, process_res=args.process_res))
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
