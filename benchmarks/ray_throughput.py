"""Ray Data example vs a plain loop on the same images (images/s).

    python benchmarks/ray_throughput.py --model ../shared/fixtures/da3-small-anchor-layout/da3-small-rand-f16.gguf \
        --repeat 4 --process-res 280

Plain loop: one model (``--threads``, default 2), images read and inferred one after the
other, model load included. Ray: ``ray.init(num_cpus=2)`` (not timed), then
depth_anything_cpp.ray_data.run_parquet (2 actors x 1 thread, read tasks, Parquet write; actor
start and model loads included). The image list is the shared images repeated ``--repeat``
times.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import depth_anything_cpp

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--repeat", type=int, default=4)
    p.add_argument("--process-res", type=int, default=280)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    images = sorted((DATA / "da3_examples").glob("*.png")) + sorted((DATA / "metric3d/data/nyu_demo/rgb").glob("*.jpg"))
    images = [str(x) for x in images] * args.repeat

    from depth_anything_cpp import DepthAnything3

    t0 = time.perf_counter()
    model = DepthAnything3.from_file(args.model, n_threads=args.threads)
    for path in images:
        model.inference([path], process_res=args.process_res)
    loop_s = time.perf_counter() - t0
    del model

    import ray

    from depth_anything_cpp.ray_data import run_parquet as run

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(depth_anything_cpp.__file__).resolve().parents[1])}})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stats = run(args.model, images, tmp + "/out", actors=2, process_res=args.process_res)
    finally:
        ray.shutdown()
    n = len(images)
    print(json.dumps({"images": n, "process_res": args.process_res,
                      "plain_loop": {"threads": args.threads, "seconds": round(loop_s, 2), "images_per_s": round(n / loop_s, 2)},
                      "ray": {"actors": 2, "threads_per_actor": 1, "seconds": round(stats["seconds"], 2),
                              "images_per_s": round(n / stats["seconds"], 2)}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
