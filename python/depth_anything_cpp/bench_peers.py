"""``da3cpp bench --peers torch,onnxruntime,openvino``: ours beside the runtimes a CPU user
would pick (issue #23).

The same seeded random weights as ``da3cpp bench`` (``tests/reference``: the official
``depth_anything_3`` network, perturbed, seed 0) run as

- ours, one GGUF per weight type (``--types``, default f32,f16,q8_0,q4_k,bf16), each loaded
  with ``precision="auto"`` (the linear engine each used is printed);
- ``torch``: the PyTorch network itself (fp32);
- ``onnxruntime`` / ``openvino``: an ONNX file exported from that network (torch's
  TorchScript-based exporter, opset 18), run by ONNX Runtime (f32) and by OpenVINO twice: its
  default (``INFERENCE_PRECISION_HINT`` left alone: bf16 on AMX/AVX512-BF16 CPUs) and with the
  f32 hint.

Each runtime runs in its own process, started fresh in each of ``--rounds`` rounds; a round
visits every runtime in turn (alternated), loads, makes one warm-up call, then ``--calls``
timed calls. The table gives the median over all timed calls, the ratio to OpenVINO's default
(median of per-round ratios), peak RSS (VmHWM, median over rounds) and load time (file ->
ready to infer, median over rounds). Needs ``pip install depth-anything-cpp[peers]`` and a
source checkout's ``tests/reference`` (for the weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from . import bench

PEERS = ("torch", "onnxruntime", "openvino")
TYPES = ("f32", "f16", "q8_0", "q4_k", "bf16")
OPSET = 18
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


# ---------------------------------------------------------------------------------- export

@contextlib.contextmanager
def _exportable():
    """Plain stand-ins, for the export only, of the two things torch 2.13's TorchScript-based
    exporter cannot take in depth_anything_3 0.1.1: ``torch.cartesian_prod`` (RoPE positions,
    model/dinov2/layers/rope.py) and the scripted ``affine_inverse`` (utils/geometry.py,
    ``aten::mT``). Same values; restored on exit."""
    import torch

    import depth_anything_3.model.cam_enc as cam_enc
    import depth_anything_3.model.da3 as da3_mod

    def cartesian_prod(a, b):
        return torch.stack([a[:, None].expand(-1, b.shape[0]).reshape(-1),
                            b[None, :].expand(a.shape[0], -1).reshape(-1)], dim=-1)

    def affine_inverse(A):  # ref: depth_anything_3/utils/geometry.py affine_inverse
        rt = A[..., :3, :3].transpose(-1, -2)
        return torch.cat([torch.cat([rt, -rt @ A[..., :3, 3:]], dim=-1), A[..., 3:, :]], dim=-2)

    saved = (torch.cartesian_prod, da3_mod.affine_inverse, cam_enc.affine_inverse)
    torch.cartesian_prod = cartesian_prod
    da3_mod.affine_inverse = cam_enc.affine_inverse = affine_inverse
    try:
        yield
    finally:
        torch.cartesian_prod, da3_mod.affine_inverse, cam_enc.affine_inverse = saved


def _export_onnx(preset: str, x_path: str, out: Path) -> None:
    """ONNX of the harness network (preset, seed 0) for the input's shape; checks it against
    PyTorch with ONNX Runtime. Run in a child process."""
    import numpy as np
    import torch

    from reference import make_model

    class Net(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            o = self.net(x, None, None, [], False, False, "saddle_balanced")
            return o["depth"], o["extrinsics"], o["intrinsics"]

    import warnings

    warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape-dependent Python branches: fixed shape here
    net = Net(make_model(preset, 0)).eval()
    x = torch.from_numpy(np.load(x_path))[None]   # (1, 1, 3, H, W)
    with torch.inference_mode():
        ref = [t.numpy() for t in net(x)]
    tmp = out.with_suffix(".tmp.onnx")
    with _exportable(), torch.no_grad():
        torch.onnx.export(net, (x,), str(tmp), opset_version=OPSET, dynamo=False,
                          input_names=["x"], output_names=["depth", "extrinsics", "intrinsics"])
    import onnxruntime as ort

    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
    err = max(float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-12)) for g, r in zip(got, ref))
    print(f"exported {out.name}: ONNX Runtime vs PyTorch max rel err {err:.1e}", file=sys.stderr)
    if err > 1e-3:
        raise RuntimeError(f"the exported ONNX differs from PyTorch by {err:.1e} (relative)")
    tmp.replace(out)


# --------------------------------------------------------------------------------- workers

def _runner(kind: str, model: str, x, threads: int, preset: str):
    """(load seconds, engine label, call) for one runtime; ``kind`` as in :func:`_jobs`."""
    t0 = time.perf_counter()
    if kind == "ours":
        from depth_anything_cpp import _core as core

        if core is None:
            import depth_anything_cpp

            raise RuntimeError(depth_anything_cpp._core_reason)
        m = core.Model(model, n_threads=threads, precision="auto")
        return time.perf_counter() - t0, m.info().get("linear_engine", "?"), lambda: m.infer_tensor(x)
    if kind == "torch":
        import torch

        from reference import make_model

        torch.set_num_threads(threads)
        net = make_model(preset, 0)
        xt = torch.from_numpy(x)[None]

        def call():
            with torch.inference_mode():
                net(xt)
        return time.perf_counter() - t0, "fp32", call
    x5 = x[None]
    if kind == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        return time.perf_counter() - t0, "f32", lambda: s.run(None, {"x": x5})
    if kind.startswith("openvino"):
        import openvino as ov

        cfg = {"INFERENCE_NUM_THREADS": threads}
        if kind == "openvino-f32":
            cfg["INFERENCE_PRECISION_HINT"] = "f32"
        c = ov.Core().compile_model(model, "CPU", cfg)
        req = c.create_infer_request()
        hint = c.get_property("INFERENCE_PRECISION_HINT")
        return time.perf_counter() - t0, getattr(hint, "to_string", hint.__str__)(), lambda: req.infer({0: x5})
    raise ValueError(f"unknown runtime {kind!r}")


def _worker(kind: str, model: str, x_path: str, threads: int, preset: str, calls: int) -> int:
    """One runtime, one round: load, warm up, ``calls`` timed calls; one JSON line on stdout."""
    import numpy as np

    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)   # whatever the runtimes print goes to stderr
    load_s, engine, call = _runner(kind, model, np.load(x_path), threads, preset)
    call()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    out.write(json.dumps({"load_s": load_s, "engine": engine, "times": times,
                          "hwm_kb": bench._status_kb("VmHWM")}) + "\n")
    out.close()
    return 0


def _run_worker(job: dict, x_path: Path, args, env: dict) -> dict:
    cmd = [sys.executable, "-m", "depth_anything_cpp.bench_peers", "--_worker", job["kind"], "--_model", job["model"],
           "--_input", str(x_path), "--threads", str(args.threads), "--_preset", job["preset"],
           "--calls", str(args.calls)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"bench worker {job['label']} exited with {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ main

def cpu_flags() -> str:
    """The matrix/vector engine flags of this CPU that matter here, from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln.split(":", 1)[1].split() for ln in fh if ln.startswith("flags")), [])
    except OSError:
        flags = []
    return " ".join(f for f in CPU_FLAGS if f in flags) or "unknown"


def _jobs(args, presets: Sequence[str], types: Sequence[str], peers: Sequence[str], cache: Path, env: dict,
          x_path: Path) -> List[dict]:
    """Every runtime of every preset: GGUFs made (``da3cpp bench``'s cache), ONNX exported."""
    jobs = []
    for preset in presets:
        d = cache / f"{preset}_s0"
        subprocess.run([sys.executable, "-m", "depth_anything_cpp.bench", "--_make", f"{preset}:{','.join(types)}",
                        "--cache", str(cache)], env=env, check=True)
        jobs += [dict(preset=preset, kind="ours", model=str(d / f"{preset}_s0-{t}.gguf"), label=f"ours {t}")
                 for t in types]
        if "torch" in peers:
            jobs.append(dict(preset=preset, kind="torch", model="", label="PyTorch"))
        if "onnxruntime" in peers or "openvino" in peers:
            import numpy as np

            h, w = np.load(x_path, mmap_mode="r").shape[-2:]
            onnx = d / f"{preset}_s0-{w}x{h}-opset{OPSET}.onnx"
            if not onnx.is_file():
                subprocess.run([sys.executable, "-m", "depth_anything_cpp.bench_peers", "--_export", preset,
                                "--_input", str(x_path), "--_model", str(onnx)], env=env, check=True)
            if "onnxruntime" in peers:
                jobs.append(dict(preset=preset, kind="onnxruntime", model=str(onnx), label="ONNX Runtime"))
            if "openvino" in peers:
                jobs += [dict(preset=preset, kind="openvino", model=str(onnx), label="OpenVINO default"),
                         dict(preset=preset, kind="openvino-f32", model=str(onnx), label="OpenVINO f32 hint")]
    return jobs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="da3cpp bench --peers", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", default="", help=f"comma list of {','.join(PEERS)}")
    p.add_argument("--presets", default="da3-small", help="comma list of any-view presets (default da3-small)")
    p.add_argument("--types", default=",".join(TYPES), help=f"our GGUF weight types (default {','.join(TYPES)})")
    p.add_argument("--threads", type=int, default=2, help="threads for every runtime (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each runtime once per round (default 3)")
    p.add_argument("--calls", type=int, default=3, help="timed calls per runtime and round (default 3)")
    p.add_argument("--cache", default=str(bench.DEFAULT_CACHE), help=f"GGUF/ONNX cache (default {bench.DEFAULT_CACHE})")
    p.add_argument("--repo", default=None, help="source checkout holding tests/reference (default: auto)")
    p.add_argument("--shared", default=None, help="shared data dir (default: $DA3CPP_SHARED or <repo>/../shared)")
    for hidden in ("--_worker", "--_model", "--_input", "--_preset", "--_export"):
        p.add_argument(hidden, default=None, help=argparse.SUPPRESS)
    return p


def _split(arg: str, allowed: Sequence[str], what: str) -> List[str]:
    items = [s for s in arg.split(",") if s]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise SystemExit(f"error: {what} must be a comma list of {','.join(allowed)}, got {arg!r}")
    return items


def _table(jobs: List[dict], res: Dict[int, List[dict]], args) -> None:
    """Print the markdown table, one row per job, ratios against OpenVINO's default."""
    print(f"CPU: {bench._machine()}; flags: {cpu_flags()}; {args.threads} threads; {args.rounds} rounds x "
          f"{args.calls} calls, runtimes alternated, each in its own process.\n")
    print("| model | runtime | engine | median s | / OpenVINO default | peak RSS MB | load s |")
    print("|---|---|---|---|---|---|---|")
    for i, j in enumerate(jobs):
        rs = res[i]
        ref = next((k for k, r in enumerate(jobs) if r["preset"] == j["preset"] and r["kind"] == "openvino"), None)
        ratio = "—"
        if ref is not None:  # per round: this runtime's median / OpenVINO default's median
            per_round = [statistics.median(a["times"]) / statistics.median(b["times"]) for a, b in zip(rs, res[ref])]
            ratio = f"{statistics.median(per_round):.2f}"
        t = statistics.median(t for r in rs for t in r["times"])
        hwm_mb = statistics.median(r["hwm_kb"] for r in rs) / 1024
        print(f"| {j['preset']} | {j['label']} | {rs[0]['engine']} | {t:.3f} | {ratio} | "
              f"{hwm_mb:.0f} | {statistics.median(r['load_s'] for r in rs):.2f} |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; print a markdown table; return the exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    repo = bench._repo_root(args.repo)
    if repo is not None and str(repo / "tests") not in sys.path:
        sys.path.insert(0, str(repo / "tests"))
    if args._worker:
        return _worker(args._worker, args._model, args._input, args.threads, args._preset, args.calls)
    if args._export:
        _export_onnx(args._export, args._input, Path(args._model))
        return 0
    peers = _split(args.peers, PEERS, "--peers")
    types = _split(args.types, TYPES, "--types")
    if repo is None:
        print("error: the peers' weights need a source checkout's tests/reference (--repo)", file=sys.stderr)
        return 2
    needs = [m for m in ("onnxruntime", "openvino") if m in peers]
    for mod in needs + (["onnx"] if needs else []):
        try:
            __import__(mod)
        except ImportError:
            print(f"error: --peers needs {mod}: pip install 'depth-anything-cpp[peers]'", file=sys.stderr)
            return 2
    env = dict(os.environ)
    paths = [str(Path(__file__).resolve().parents[1]), str(repo / "tests")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared or os.environ.get("DA3CPP_SHARED") or (repo.parent / "shared"))
    if not (shared / bench.IMAGE_REL).is_file():
        print(f"error: image {shared / bench.IMAGE_REL} not found (use --shared)", file=sys.stderr)
        return 2
    x_path = bench._image_input(shared, cache)
    presets = [p for p in args.presets.split(",") if p]
    jobs = _jobs(args, presets, types, peers, cache, env, x_path)
    res: Dict[int, List[dict]] = {i: [] for i in range(len(jobs))}
    for rnd in range(args.rounds):
        for i, j in enumerate(jobs):
            r = _run_worker(j, x_path, args, env)
            res[i].append(r)
            print(f"# round {rnd + 1} {j['preset']} {j['label']} ({r['engine']}): "
                  f"{[round(t, 3) for t in r['times']]} s, load {r['load_s']:.2f} s, "
                  f"peak RSS {r['hwm_kb'] / 1024:.0f} MB", file=sys.stderr)
    _table(jobs, res, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
