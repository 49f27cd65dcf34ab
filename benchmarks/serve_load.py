"""Load test of ``da3cpp serve``: N concurrent clients posting ``/v1/depth`` for D seconds.

    python benchmarks/serve_load.py --model ../shared/fixtures/da3-small-anchor-layout/da3-small-rand-f16.gguf \
        --clients 8 --seconds 60 --width 140 --process-res 140

Starts the server as a subprocess on 127.0.0.1 (a free port), waits for /readyz, sends one
warm-up request, runs the clients (threads, one httpx client each), then prints requests,
throughput, p50/p99 latency, status counts (target: no 5xx and no connection errors) and the
server's RSS before and after. All traffic goes to 127.0.0.1. ``load()`` is reused by
tests/test_server.py for the short CI run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional


def load(base_url: str, payload: dict, clients: int, seconds: float, path: str = "/v1/depth",
         headers: Optional[dict] = None) -> dict:
    """Run ``clients`` threads posting ``payload`` for ``seconds``; return the statistics:
    requests, throughput_rps, p50_s, p99_s, statuses {code: n}, errors (exceptions, e.g.
    connection failures) and 5xx (responses with status >= 500)."""
    import httpx
    import numpy as np

    latencies: list = []
    statuses: Counter = Counter()
    errors: list = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base_url, timeout=120, headers=headers or {}) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    r = c.post(path, json=payload)
                    code = r.status_code
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(repr(exc))
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    statuses[code] += 1
                    if code == 200:
                        latencies.append(dt)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": sum(statuses.values()),
            "throughput_rps": round(len(latencies) / elapsed, 2),
            "p50_s": round(float(np.percentile(lat, 50)), 4), "p99_s": round(float(np.percentile(lat, 99)), 4),
            "statuses": dict(statuses), "5xx": sum(n for s, n in statuses.items() if s >= 500),
            "errors": len(errors), "first_errors": errors[:3]}


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def _payload(width: int, process_res: int) -> dict:
    import base64
    import io

    from PIL import Image

    src = Path(__file__).resolve().parents[2] / "shared/data/da3_examples/assets_examples_SOH_000.png"
    with Image.open(src) as img:
        img = img.convert("RGB").resize((width, round(img.height * width / img.width)))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    return {"image": base64.b64encode(buf.getvalue()).decode(), "process_res": process_res}


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="GGUF file served as the only model")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--width", type=int, default=140, help="image width sent (px)")
    p.add_argument("--process-res", type=int, default=140)
    p.add_argument("--threads", type=int, default=None, help="server threads per model")
    args = p.parse_args(argv)
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model.gguf").symlink_to(Path(args.model).resolve())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "depth_anything_cpp.cli", "serve", "--models", tmp, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--queue-size", str(max(8, args.clients))]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = {k: v for k, v in os.environ.items() if k != "DA3CPP_API_KEY"}
        proc = subprocess.Popen(cmd, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.1)
            payload = _payload(args.width, args.process_res)
            rss_start = rss_kib(proc.pid)
            httpx.post(base + "/v1/depth", json=payload, timeout=120).raise_for_status()  # loads the model
            rss_before = rss_kib(proc.pid)
            stats = load(base, payload, args.clients, args.seconds)
            stats.update(rss_start_kib=rss_start, rss_before_kib=rss_before, rss_after_kib=rss_kib(proc.pid))
            print(json.dumps(stats, indent=2))
        finally:
            proc.terminate()
            proc.wait(60)
    return 0 if stats["5xx"] == 0 and stats["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
