"""Depth for a folder of images on a local Ray cluster, written as Parquet.

    python examples/ray_depth_parquet.py --model da3-small-f16.gguf --out depth_parquet/ \
        ../shared/data/da3_examples/*.png ../shared/data/metric3d/data/nyu_demo/rgb/*.jpg

On a multi-node cluster, connect with ``ray.init("auto")`` (or ``--address``) and read and
write object storage (``s3://...``, ``gs://...``); see the README, "Scale-out on Ray".
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional


def run(model: str, images: list, out: str, *, actors: int = 2, cpus_per_actor: float = 0.75,
        read_cpus: float = 0.5, process_res: int = 504, batch_size: int = 2) -> dict:
    """Read ``images`` with ``ray.data.read_images`` (tasks of ``read_cpus`` CPUs), map
    :class:`DepthPredictor` over them on ``actors`` actors of ``cpus_per_actor`` CPUs (each
    runs round(cpus_per_actor) threads), write Parquet to ``out``. Ray must be initialised.
    The actors must leave ``read_cpus`` free, or the read waits for CPUs forever (on 2
    CPUs: 2 x 0.75 + 0.5). Returns {"rows", "seconds"}."""
    import ray

    from depth_anything_cpp.ray_data import DepthPredictor

    start = time.perf_counter()
    ds = ray.data.read_images(images, include_paths=True, mode="RGB", num_cpus=read_cpus)
    ds = ds.map_batches(DepthPredictor, fn_constructor_kwargs={"model_path": model, "process_res": process_res},
                        batch_size=batch_size, batch_format="numpy", concurrency=actors, num_cpus=cpus_per_actor)
    ds.write_parquet(out)
    seconds = time.perf_counter() - start
    return {"rows": ray.data.read_parquet(out).count(), "seconds": seconds}  # ds.count() would run it again


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="image files or directories (local paths or s3://, gs://...)")
    p.add_argument("--model", required=True, help="GGUF file, readable on every node")
    p.add_argument("--out", required=True, help="Parquet output directory (local or object storage)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' on a cluster); default: local")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local cluster (default 2)")
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--cpus-per-actor", type=float, default=0.75)
    p.add_argument("--read-cpus", type=float, default=0.5)
    p.add_argument("--process-res", type=int, default=504)
    args = p.parse_args(argv)
    import ray

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    try:
        print(run(args.model, args.images, args.out, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                  read_cpus=args.read_cpus, process_res=args.process_res))
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
