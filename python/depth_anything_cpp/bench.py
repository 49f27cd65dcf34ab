"""``da3cpp bench``: time depth_anything_cpp against the official PyTorch network.

Both sides run the SAME seeded random weights (the test harness ``tests/reference``: the
official ``depth_anything_3`` network, perturbed, converted to GGUF per precision) on the
same preprocessed image. Each side lives in its own worker subprocess (so its peak RSS is its
own); the parent alternates single calls between them, ``--reps`` times, and prints a
markdown table: median seconds, ratio ours/PyTorch (median over adjacent pairs of calls, as
the machine's speed may drift during a run), peak RSS (VmHWM), model load time (GGUF
open -> weights ready, and -> first result), RSS growth over ``--leak-calls`` repeated calls, and GFLOP/s per stage
(backbone, head, camera) from one profiled call (``profile=True`` runs nodes one by one:
used only for the per-stage split, never for the headline time).

The weights need the harness of a source checkout (``tests/reference``) plus torch and
``depth_anything_3``; without them pass ``--model FILE.gguf`` (ours only). FLOP counts are
analytic (see :func:`depth_anything_cpp.flops.stage_flops`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .flops import stage_flops

PRECISIONS = ("f32", "f16", "q8_0", "q4_k")
DEFAULT_CACHE = Path.home() / ".cache" / "depth-anything-cpp" / "bench"
IMAGE_REL = "data/da3_examples/assets_examples_SOH_000.png"   # 1208x680 -> 504x280


# ------------------------------------------------------------------------------- workers

def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _worker(kind: str, model: str, input_path: str, threads: int, preset: str) -> int:
    """Serve JSON-line commands on stdin ("run", "profile", "leak N", "quit"); answer on the
    original stdout (everything else printed goes to stderr)."""
    import numpy as np

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(obj):
        out.write(json.dumps(obj) + "\n")

    x = np.load(input_path)
    if kind == "ours":
        from depth_anything_cpp import _core as core

        if core is None:
            import depth_anything_cpp

            raise RuntimeError(depth_anything_cpp._core_reason)
        t0 = time.perf_counter()
        m = core.Model(model, n_threads=threads)
        load_s = time.perf_counter() - t0   # GGUF open to weights in place
        m.infer_tensor(x)
        first_s = time.perf_counter() - t0  # ... to the first result

        def call():
            m.infer_tensor(x)

        def profile():
            r = m.infer_tensor(x, profile=True)
            return {k[5:]: float(np.asarray(v).ravel()[0]) for k, v in r.items() if k.startswith("time.")}

        def views(n):
            # n distinct views (flips, then small offsets) of the input, as one call and as n calls
            v = x[0]  # x: [1, 3, H, W]
            flips = [v, v[..., ::-1], v[..., ::-1, :], v[..., ::-1, ::-1]]
            xs = np.ascontiguousarray(np.stack([flips[i % 4] + 0.01 * (i // 4) for i in range(n)]))
            t = time.perf_counter()
            for i in range(n):
                m.infer_tensor(xs[i:i + 1])
            single = time.perf_counter() - t
            t = time.perf_counter()
            m.infer_tensor(xs)
            return {"single": single, "multi": time.perf_counter() - t}
    else:
        import torch

        from reference import make_model

        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        net = make_model(preset, 0)
        xt = torch.from_numpy(x)[None]
        with torch.inference_mode():
            net(xt)
        load_s = first_s = time.perf_counter() - t0   # build + perturb + first call (not a file load)

        def call():
            with torch.inference_mode():
                net(xt)

        def profile():
            return {}
    reply({"load_s": load_s, "first_s": first_s, "rss_kb": _status_kb("VmRSS")})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "run":
            t = time.perf_counter()
            call()
            reply({"t": time.perf_counter() - t})
        elif cmd[0] == "profile":
            reply(profile())
        elif cmd[0] == "views":
            reply(views(int(cmd[1])))
        elif cmd[0] == "leak":
            before = _status_kb("VmRSS")
            for _ in range(int(cmd[1])):
                call()
            reply({"rss_growth_kb": _status_kb("VmRSS") - before})
        elif cmd[0] == "quit":
            import resource

            reply({"hwm_kb": _status_kb("VmHWM"),
                   "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
            return 0
    return 0


class _Worker:
    def __init__(self, kind: str, model: str, input_path: Path, threads: int, preset: str, env: dict):
        args = [sys.executable, "-m", "depth_anything_cpp.bench", "--_worker", kind, "--_model", str(model),
                "--_input", str(input_path), "--threads", str(threads), "--_preset", preset]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.start = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker {self.proc.args[4]} exited with {self.proc.wait()}")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> dict:
        res = self.ask("quit")
        self.proc.wait()
        return res


# --------------------------------------------------------------------------------- setup

def _repo_root(arg: Optional[str]) -> Optional[Path]:
    cands = [Path(arg)] if arg else []
    if os.environ.get("DA3CPP_REPO"):
        cands.append(Path(os.environ["DA3CPP_REPO"]))
    cands.append(Path(__file__).resolve().parents[2])
    for c in cands:
        if (c / "tests" / "reference" / "model.py").is_file():
            return c
    return None


def _make_ggufs(preset: str, precisions: Sequence[str], cache: Path) -> Dict[str, Path]:
    """GGUFs of the harness model (preset, seed 0) per precision, cached. Run in a child."""
    from reference import make_model, save_snapshot

    from depth_anything_cpp.convert import convert

    d = cache / f"{preset}_s0"
    paths = {p: d / f"{preset}_s0-{p}.gguf" for p in precisions}
    todo = [p for p, path in paths.items() if not path.is_file()]
    if todo:
        snap = d / "snapshot"
        if not (snap / "model.safetensors").is_file():
            save_snapshot(make_model(preset, 0), snap)
        for p in todo:
            print(f"converting {preset} -> {p}", file=sys.stderr)
            convert(snap, paths[p], type=p, checkpoint_name=f"{preset}_s0", progress=False)
    return paths


def _machine() -> str:
    name = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical cores"


def _image_input(shared: Path, cache: Path) -> Path:
    import numpy as np
    from PIL import Image

    from depth_anything_cpp import _core as core

    out = cache / f"input_SOH_000_{core.InferParams().process_res}.npy"  # at the default process_res
    if not out.is_file():
        img = np.asarray(Image.open(shared / IMAGE_REL).convert("RGB"))
        _, x = core.preprocess([img])
        np.save(out, np.ascontiguousarray(x, dtype=np.float32))
    return out


# ---------------------------------------------------------------------------------- main

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="da3cpp bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="da3-small", help="comma list (any-view presets; default da3-small)")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma list of f32,f16,q8_0,q4_k")
    p.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    p.add_argument("--reps", type=int, default=5, help="timed calls per side (default 5)")
    p.add_argument("--leak-calls", type=int, default=20, help="calls for the RSS growth check (0: skip)")
    p.add_argument("--views", default="",
                   help="comma list of view counts N: one call with N views against N single calls, "
                        "ours, the first precision of each preset (default: none)")
    p.add_argument("--settle", type=float, default=0.0,
                   help="seconds of idle before each timed call (default 0: back to back)")
    p.add_argument("--no-torch", action="store_true", help="do not run the PyTorch side")
    p.add_argument("--variant", default=None, help="compiled core variant (sets DA3CPP_VARIANT)")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help=f"GGUF/input cache (default {DEFAULT_CACHE})")
    p.add_argument("--model", action="append", default=[],
                   help="benchmark this GGUF instead of harness weights (repeatable; implies --no-torch)")
    p.add_argument("--repo", default=None, help="source checkout holding tests/reference (default: auto)")
    p.add_argument("--shared", default=None, help="shared data dir (default: $DA3CPP_SHARED or <repo>/../shared)")
    for hidden in ("--_worker", "--_model", "--_input", "--_preset", "--_make"):
        p.add_argument(hidden, default=None, help=argparse.SUPPRESS)
    return p


def _fmt_mb(kb: Optional[float], digits: int = 0) -> str:
    return "—" if kb is None else f"{kb / 1024:.{digits}f}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; print a markdown table; return the exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    repo = _repo_root(args.repo)
    if repo is not None and str(repo / "tests") not in sys.path:
        sys.path.insert(0, str(repo / "tests"))
    if args._worker:
        return _worker(args._worker, args._model, args._input, args.threads, args._preset)
    cache = Path(args.cache).expanduser()
    if args._make:
        preset, precs = args._make.split(":")
        _make_ggufs(preset, precs.split(","), cache)
        return 0

    env = dict(os.environ)
    if args.variant:
        env["DA3CPP_VARIANT"] = args.variant
    paths = [str(Path(__file__).resolve().parents[1])] + ([str(repo / "tests")] if repo else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cache.mkdir(parents=True, exist_ok=True)
    shared = Path(args.shared or os.environ.get("DA3CPP_SHARED") or ((repo or Path.cwd()).parent / "shared"))
    if not (shared / IMAGE_REL).is_file():
        print(f"error: image {shared / IMAGE_REL} not found (use --shared)", file=sys.stderr)
        return 2
    x_path = _image_input(shared, cache)
    import numpy as np

    hw = np.load(x_path, mmap_mode="r").shape[-2:]
    jobs = _jobs(args, repo, cache, env)
    if jobs is None:
        return 2
    view_counts = _view_counts(args.views)
    if view_counts is None:
        return 2
    rows, torch_by_preset = _measure(args, jobs, x_path, env, view_counts)
    _report(args, rows, torch_by_preset, hw)
    return 0


def _jobs(args: argparse.Namespace, repo: Optional[Path], cache: Path,
          env: Dict[str, str]) -> Optional[List[tuple]]:
    """[(preset, precision, gguf path)] to time: the --model files, else random-weight files made
    in ``cache``; None after printing the error for bad arguments. --model sets ``args.no_torch``."""
    jobs = []
    if args.model:
        from depth_anything_cpp import _core as core

        for mp in args.model:
            info = core.Model(mp, n_threads=1).info()
            jobs.append((info["preset"], info["weight_type"], mp))
        args.no_torch = True
        return jobs
    if repo is None:
        print("error: random weights need a source checkout's tests/reference (--repo) or --model",
              file=sys.stderr)
        return None
    precs = [p for p in args.precisions.split(",") if p]
    bad = [p for p in precs if p not in PRECISIONS]
    if bad:
        print(f"error: unknown precision(s) {bad}", file=sys.stderr)
        return None
    for preset in [p for p in args.presets.split(",") if p]:
        subprocess.run([sys.executable, "-m", "depth_anything_cpp.bench", "--_make",
                        f"{preset}:{','.join(precs)}", "--cache", str(cache)], env=env, check=True)
        for p in precs:
            jobs.append((preset, p, str(cache / f"{preset}_s0" / f"{preset}_s0-{p}.gguf")))
    return jobs


def _view_counts(views: str) -> Optional[List[int]]:
    """The --views counts (each at least 2); None after printing the error."""
    try:
        view_counts = [int(v) for v in views.split(",") if v]
    except ValueError:
        view_counts = [0]
    if any(n < 2 for n in view_counts):
        print(f"error: --views takes view counts of at least 2, got {views!r}", file=sys.stderr)
        return None
    return view_counts


def _measure(args: argparse.Namespace, jobs: List[tuple], x_path: Path, env: Dict[str, str],
             view_counts: List[int]) -> tuple:
    """Time every job in worker processes: (rows, PyTorch figures by preset)."""
    precs_of: Dict[str, List[str]] = {}
    for preset, prec, _ in jobs:
        precs_of.setdefault(preset, []).append(prec)
    rows = []
    torch_by_preset: Dict[str, dict] = {}
    for preset in dict.fromkeys(j[0] for j in jobs):
        tw = None
        t_times: List[float] = []
        if not args.no_torch:
            tw = _Worker("torch", "", x_path, args.threads, preset, env)
            tw.ask("run")   # warm-up
        for _, prec, gguf in [j for j in jobs if j[0] == preset]:
            ow = _Worker("ours", gguf, x_path, args.threads, preset, env)
            o_times, pair_times = [], []  # PyTorch calls interleaved with this file's
            for _ in range(args.reps):
                # a pause before each call: the other side's worker threads stop spinning
                # (OpenMP / ggml thread pools busy-wait a while after a call) and the cores are
                # idle when a timed call starts
                time.sleep(args.settle)
                o_times.append(ow.ask("run")["t"])
                if tw is not None:
                    time.sleep(args.settle)
                    pair_times.append(tw.ask("run")["t"])
            t_times += pair_times
            prof = ow.ask("profile")
            leak = ow.ask(f"leak {args.leak_calls}")["rss_growth_kb"] if args.leak_calls > 0 else None
            end = ow.close()
            multi = {}
            if view_counts and prec == precs_of[preset][0]:
                multi = _measure_views(args, gguf, x_path, preset, env, view_counts)
            # the ratio is the median over adjacent (ours, PyTorch) pairs: this VM's speed drifts
            # within a run, and pairs taken seconds apart see the same machine
            pair = dict(t=statistics.median(pair_times),
                        ratio=statistics.median(o / t for o, t in zip(o_times, pair_times))) if pair_times else None
            rows.append(dict(preset=preset, prec=prec, t=statistics.median(o_times), prof=prof, pair=pair,
                             load=ow.start["load_s"], first=ow.start["first_s"], hwm=end["hwm_kb"], leak=leak,
                             multi=multi))
            print(f"# {preset} {prec}: ours {[round(t, 3) for t in o_times]} s, profile {prof}", file=sys.stderr)
        if tw is not None:
            end = tw.close()
            torch_by_preset[preset] = dict(t=statistics.median(t_times), hwm=end["hwm_kb"], n=len(t_times))
            print(f"# {preset} PyTorch: {[round(t, 3) for t in t_times]} s", file=sys.stderr)
    return rows, torch_by_preset


def _measure_views(args: argparse.Namespace, gguf: str, x_path: Path, preset: str, env: Dict[str, str],
                   view_counts: List[int]) -> dict:
    """{N: medians of (one N-view call) / (N single calls)} for each view count."""
    multi = {}
    # a worker of its own, so that the N-view calls do not raise the peak RSS above
    vw = _Worker("ours", gguf, x_path, args.threads, preset, env)
    for n in view_counts:  # adjacent (N single calls, one N-view call) pairs
        pairs = [vw.ask(f"views {n}") for _ in range(args.reps)]
        multi[n] = dict(ratio=statistics.median(q["multi"] / q["single"] for q in pairs),
                        multi=statistics.median(q["multi"] for q in pairs),
                        single=statistics.median(q["single"] for q in pairs))
    vw.close()
    return multi


def _report(args: argparse.Namespace, rows: List[dict], torch_by_preset: Dict[str, dict], hw: tuple) -> None:
    """Print the markdown table, the multi-view ratios and the analytic FLOP notes."""
    print(f"Machine: {_machine()}; {args.threads} threads; input {hw[1]}x{hw[0]} (1 view); "
          f"median of {args.reps} calls per side, alternated; PyTorch: the calls alternated with that row's; "
          f"ratio: median of the per-pair ratios.\n")
    print("| model | weights | ours (s) | PyTorch fp32 (s) | ours / PyTorch | peak RSS ours / PyTorch (MB) "
          "| load / first result (ms) | RSS growth, {} calls (MB) | GFLOP/s backbone / head; camera time |".format(args.leak_calls))
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tt = torch_by_preset.get(r["preset"])
        try:
            fl = stage_flops(r["preset"], int(hw[0]), int(hw[1]))
            rate = " / ".join(f"{fl[s] / r['prof'][s] / 1e9:.0f}" if r["prof"].get(s) else "—"
                              for s in ("backbone", "head"))
        except KeyError:
            rate = "— / —"
        cam = r["prof"].get("camera")
        rate += f" / {cam * 1e3:.2f} ms" if cam is not None else " / —"
        print(f"| {r['preset']} | {r['prec']} | {r['t']:.3f} | {r['pair']['t']:.3f} | {r['pair']['ratio']:.2f} | "
              f"{_fmt_mb(r['hwm'])} / {_fmt_mb(tt['hwm'])} | {r['load'] * 1e3:.0f} / {r['first'] * 1e3:.0f} | {_fmt_mb(r['leak'], 1)} | {rate} |"
              if tt else
              f"| {r['preset']} | {r['prec']} | {r['t']:.3f} | — | — | {_fmt_mb(r['hwm'])} / — | {r['load'] * 1e3:.0f} / {r['first'] * 1e3:.0f} | "
              f"{_fmt_mb(r['leak'], 1)} | {rate} |")
    for r in [r for r in rows if r["multi"]]:
        parts = [f"{n} views {v['ratio']:.2f} ({v['multi']:.3f} s against {v['single']:.3f} s)" for n, v in r["multi"].items()]
        print(f"\nMulti-view, {r['preset']} {r['prec']} (ours): one call with N views / N single calls, median of "
              f"{args.reps} adjacent pairs: " + ", ".join(parts) + ".")
    presets = dict.fromkeys(r["preset"] for r in rows)
    notes = []
    for p in presets:
        try:
            fl = stage_flops(p, int(hw[0]), int(hw[1]))
            fa = stage_flops(p, int(hw[0]), int(hw[1]), aux=True)
        except KeyError:
            continue
        notes.append(f"{p}: backbone {fl['backbone'] / 1e9:.1f}, head {fl['head'] / 1e9:.1f} "
                     f"({fa['head'] / 1e9:.1f} with the aux ray branch PyTorch also runs), "
                     f"camera {fl['camera'] / 1e6:.1f} MFLOP")
    if notes:
        print("\nGFLOP per image (analytic, attention matmuls included): " + "; ".join(notes) + ".")
    print("Stage rates come from one profiled call (nodes run one by one; camera FLOP are too few for a "
          "rate); headline times from plain calls. PyTorch: fp32 network called directly, incl. aux branch.")

if __name__ == "__main__":
    sys.exit(main())
