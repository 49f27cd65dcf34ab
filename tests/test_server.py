"""HTTP server (depth_anything_cpp.server) over real HTTP on 127.0.0.1: every field of
/v1/depth and /v1/batch against direct DepthAnything3 inference, auth, limits, bad inputs,
queueing, shutdown, metrics, a bounded schema fuzz and a short load test."""

from __future__ import annotations

import base64
import io
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")
pytest.importorskip("prometheus_client", reason="the 'serve' extra (prometheus_client) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from conftest import REPO  # noqa: E402
from serving import (FIXTURE_MODEL, PROCESS_RES, b64, free_port, models_dir, png_bytes, running,  # noqa: E402
                     small_image)

import depth_anything_cpp  # noqa: E402
from depth_anything_cpp import DepthAnything3, exports  # noqa: E402
from depth_anything_cpp.server import ServerConfig, create_app  # noqa: E402
from depth_anything_cpp.server.cli import check_bind  # noqa: E402

if not FIXTURE_MODEL.exists():
    pytest.skip(f"fixture model missing: {FIXTURE_MODEL}", allow_module_level=True)

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def direct():
    return DepthAnything3.from_file(FIXTURE_MODEL, n_threads=1)


@pytest.fixture(scope="module")
def image():
    return small_image(0)


@pytest.fixture(scope="module")
def image_b64(image):
    return b64(png_bytes(image))


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    img_root, exp_root = tmp / "images", tmp / "exports"
    img_root.mkdir()
    exp_root.mkdir()
    (img_root / "a.png").write_bytes(png_bytes(small_image(0)))
    (tmp / "outside.png").write_bytes(png_bytes(small_image(0)))
    return tmp, models_dir(tmp, ("small", "other")), img_root, exp_root


@pytest.fixture(scope="module")
def server(roots):
    """Main server: two model names, API key, image/export roots, small limits."""
    tmp, mdir, img_root, exp_root = roots
    cfg = ServerConfig(models_dir=mdir, api_key=KEY, default_model="small", process_res=PROCESS_RES,
                       n_threads=1, image_root=img_root, export_root=exp_root, max_models=1,
                       max_views=4, max_body_bytes=4 << 20, max_pixels=1000 * 1000)
    with running(create_app(cfg)) as (url, _):
        with httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": KEY}) as client:
            yield client


def _arr(values, shape):
    return np.asarray(values, np.float32).reshape(shape)


def _assert_error(r, status, code=None):
    assert r.status_code == status, r.text[:500]
    body = r.json()
    assert body["error"]["status"] == status and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


# ---------------------------------------------------------------- /v1/depth, every field
def test_depth_default_fields_equal_direct_inference(server, direct, image, image_b64):
    pred = direct.inference([image], process_res=PROCESS_RES)
    r = server.post("/v1/depth", json={"model": "small", "image": image_b64})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    h, w = pred.depth.shape[1:]
    assert (body["width"], body["height"]) == (w, h)
    np.testing.assert_array_equal(_arr(body["depth"], (h, w)), pred.depth[0])
    np.testing.assert_array_equal(_arr(body["confidence"], (h, w)), pred.conf[0])
    np.testing.assert_array_equal(_arr(body["extrinsics"], (3, 4)), pred.extrinsics[0])
    np.testing.assert_array_equal(_arr(body["intrinsics"], (3, 3)), pred.intrinsics[0])
    assert body["sky"] is None  # this model has no sky head
    assert body["num_points"] == 0 and body["points"] is None and body["point_colors"] is None
    assert body["export_paths"] == [] and body["is_metric"] is False and body["model"] == "small"


def test_depth_include_flags_and_points(server, direct, image, image_b64):
    pred = direct.inference([image], process_res=PROCESS_RES)
    r = server.post("/v1/depth", json={"src": "data:image/png;base64," + image_b64, "include_depth": True,
                                      "include_points": True, "points_conf_thresh": 1.2})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["confidence"] is None and body["extrinsics"] is None and body["intrinsics"] is None
    np.testing.assert_array_equal(_arr(body["depth"], pred.depth.shape[1:]), pred.depth[0])
    pts = pred.points(conf_thresh=1.2, conf_thresh_percentile=0.0, ensure_thresh_percentile=100.0)
    assert body["num_points"] == len(pts["xyz"]) > 0
    np.testing.assert_array_equal(_arr(body["points"], (-1, 3)), pts["xyz"])
    colors = np.frombuffer(base64.b64decode(body["point_colors"]), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(colors, pts["rgb"])
    # only pose
    body = server.post("/v1/depth", json={"image": image_b64, "include_pose": True}).json()
    assert body["depth"] is None and body["confidence"] is None
    np.testing.assert_array_equal(_arr(body["extrinsics"], (3, 4)), pred.extrinsics[0])


@pytest.mark.parametrize("encoding", ["base64", "npz"])
def test_depth_compact_encodings(server, direct, image, image_b64, encoding):
    pred = direct.inference([image], process_res=PROCESS_RES)
    pts = pred.points()
    r = server.post("/v1/depth", json={"image": image_b64, "array_encoding": encoding, "include_depth": True,
                                      "include_confidence": True, "include_pose": True, "include_points": True})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    h, w = pred.depth.shape[1:]
    if encoding == "base64":
        def dec(k, shape):
            return np.frombuffer(base64.b64decode(body[k]), "<f4").reshape(shape)
        arrays = {k: dec(k, s) for k, s in (("depth", (h, w)), ("confidence", (h, w)), ("extrinsics", (3, 4)),
                                            ("intrinsics", (3, 3)), ("points", (-1, 3)))}
        arrays["point_colors"] = np.frombuffer(base64.b64decode(body["point_colors"]), np.uint8).reshape(-1, 3)
    else:
        assert body["depth"] is None and body["points"] is None
        with np.load(io.BytesIO(base64.b64decode(body["npz"]))) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["depth"], arrays["confidence"] = arrays["depth"].reshape(h, w), arrays["confidence"].reshape(h, w)
    np.testing.assert_array_equal(arrays["depth"], pred.depth[0])
    np.testing.assert_array_equal(arrays["confidence"], pred.conf[0])
    np.testing.assert_array_equal(arrays["extrinsics"], pred.extrinsics[0])
    np.testing.assert_array_equal(arrays["intrinsics"], pred.intrinsics[0])
    np.testing.assert_array_equal(arrays["points"], pts["xyz"])
    np.testing.assert_array_equal(arrays["point_colors"], pts["rgb"])
    assert body["num_points"] == len(pts["xyz"])


def test_depth_exports_under_export_root(server, roots, image_b64):
    exp_root = roots[3]
    r = server.post("/v1/depth", json={"image": image_b64, "exports": ["glb", "colmap"], "dst": "job1"})
    assert r.status_code == 200, r.text[:500]
    paths = [Path(p) for p in r.json()["export_paths"]]
    names = {p.name for p in paths}
    assert {"scene.glb", "cameras.bin", "images.bin", "points3D.bin"} <= names
    for p in paths:
        assert p.is_file() and p.resolve().is_relative_to(exp_root)
    _assert_error(server.post("/v1/depth", json={"image": image_b64, "exports": ["glb"], "dst": "../escape"}),
                  403, "dst_forbidden")
    _assert_error(server.post("/v1/depth", json={"image": image_b64, "exports": ["glb"], "dst": "/tmp"}),
                  403, "dst_forbidden")
    _assert_error(server.post("/v1/depth", json={"image": image_b64, "exports": ["glb"]}), 400, "dst_required")
    _assert_error(server.post("/v1/depth", json={"image": image_b64, "exports": ["ply"], "dst": "x"}), 422)
    assert not (roots[0] / "escape").exists()


def test_server_paths_confined_to_image_root(server, roots, direct):
    tmp, _, img_root, _ = roots
    r = server.post("/v1/depth", json={"src": "a.png", "include_depth": True})
    assert r.status_code == 200, r.text[:500]
    pred = direct.inference([small_image(0)], process_res=PROCESS_RES)
    np.testing.assert_array_equal(_arr(r.json()["depth"], pred.depth.shape[1:]), pred.depth[0])
    r = server.post("/v1/batch", json={"images": [{"type": "path", "data": "../outside.png"},
                                                  {"type": "path", "data": str(tmp / "outside.png")},
                                                  {"type": "path", "data": str(img_root / "a.png")}]})
    res = r.json()["results"]
    assert [e.get("error", {}).get("code") for e in res] == ["path_not_found", "path_not_found", None]


# ---------------------------------------------------------------- /v1/batch
def test_batch_tasks_and_per_image_errors(server, direct, image, image_b64):
    pred = direct.inference([image], process_res=PROCESS_RES)
    r = server.post("/v1/batch", json={"input": {
        "images": [{"type": "b64", "data": image_b64}, {"type": "b64", "data": "not base64!"},
                   {"type": "b64", "data": b64(b"plain text, not an image")}],
        "tasks": ["depth", "colorized", "normals", "disparity", "point_cloud"], "colormap": "magma",
        "output_format": "jpg", "include_raw": True}})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["count"] == 3 and body["elapsed_sec"] > 0 and body["model"] == "small"
    ok, bad_b64, not_image = body["results"]
    assert bad_b64["error"]["code"] == "bad_base64" and not_image["error"]["code"] == "bad_image"
    assert "depth_png_b64" not in bad_b64 and bad_b64["elapsed_sec"] >= 0
    assert "error" not in ok and ok["elapsed_sec"] > 0
    h, w = image.shape[:2]
    assert (ok["width"], ok["height"]) == (w, h)
    assert ok["inference_size"] == [pred.depth.shape[2], pred.depth.shape[1]]
    assert ok["depth_min"] == pytest.approx(float(pred.depth.min()))
    assert ok["depth_max"] == pytest.approx(float(pred.depth.max()))
    np.testing.assert_allclose(ok["extrinsics"], pred.extrinsics[0].ravel(), rtol=0, atol=0)
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(ok["depth_png_b64"]))) as png:
        meta = {"encoding": png.text["depth_encoding"], **{k: float(png.text[f"depth_{k}"]) for k in ("min", "max", "scale")}}
        values = np.asarray(png)
    assert values.shape == (h, w) and ok["depth_png_mime"] == "image/png"
    decoded = exports.decode_depth_u16(values, meta)
    from depth_anything_cpp.server.render import resize_depth

    full = resize_depth(pred.depth[0], w, h)
    assert np.abs(decoded - full).max() <= meta["scale"]  # one 16-bit step
    for key, fmt in (("colorized_b64", "JPEG"), ("normals_b64", "JPEG"), ("disparity_b64", "PNG")):
        with Image.open(io.BytesIO(base64.b64decode(ok[key]))) as img:
            assert img.format == fmt and img.size == (w, h)
    assert ok["colorized_mime"] == "image/jpeg" and ok["colormap"] == "magma"
    assert base64.b64decode(ok["point_cloud_b64"])[:4] == b"glTF"
    with np.load(io.BytesIO(base64.b64decode(ok["depth_npz_b64"]))) as z:
        np.testing.assert_array_equal(z["depth"], pred.depth[0])
        np.testing.assert_array_equal(z["conf"], pred.conf[0])


def test_batch_multiview_is_one_scene(server, direct):
    views = [small_image(0), small_image(1)]
    pred = direct.inference(views, process_res=PROCESS_RES)
    r = server.post("/v1/batch", json={"image_b64": b64(png_bytes(views[0])),
                                      "images": [{"type": "b64", "data": b64(png_bytes(views[1]))}],
                                      "multiview": True, "tasks": ["depth", "point_cloud"], "include_raw": True})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["multiview"] is True and body["scene"]["views"] == 2
    assert base64.b64decode(body["scene"]["point_cloud_b64"])[:4] == b"glTF"
    for i, res in enumerate(body["results"]):
        with np.load(io.BytesIO(base64.b64decode(res["depth_npz_b64"]))) as z:
            np.testing.assert_array_equal(z["depth"], pred.depth[i])
            np.testing.assert_array_equal(z["extrinsics"], pred.extrinsics[i])


# ---------------------------------------------------------------- models, probes, metrics
def test_models_lru_probes_and_metrics(server, image_b64):
    assert server.post("/v1/depth", json={"model": "other", "image": image_b64, "include_pose": True}).status_code == 200
    data = {m["id"]: m for m in server.get("/v1/models").json()["data"]}
    assert set(data) == {"small", "other"}
    assert data["other"]["loaded"] and not data["small"]["loaded"]  # max_models=1: LRU dropped small
    assert data["other"]["preset"] == "da3-small"
    assert server.post("/v1/depth", json={"model": "small", "image": image_b64, "include_pose": True}).status_code == 200
    data = {m["id"]: m for m in server.get("/v1/models").json()["data"]}
    assert data["small"]["loaded"] and not data["other"]["loaded"]
    _assert_error(server.post("/v1/depth", json={"model": "../etc/passwd", "image": image_b64}), 404, "model_not_found")
    assert server.get("/healthz").json() == {"status": "ok"}
    assert server.get("/readyz").status_code == 200
    text = server.get("/metrics").text
    for needle in ('da3_requests_total{endpoint="/v1/depth",status="200"}',
                   'da3_request_errors_total{endpoint="/v1/depth",status="404"}',
                   'da3_request_seconds_bucket{endpoint="/v1/depth"', 'da3_queue_depth{model="small"}',
                   'da3_model_loads_total{model="other",result="ok"}', "da3_models_loaded 1.0",
                   'da3_inference_seconds_count{model="small"}'):
        assert needle in text, needle


def test_readyz_without_models(tmp_path):
    (tmp_path / "empty").mkdir()
    with running(create_app(ServerConfig(models_dir=tmp_path / "empty"))) as (url, _):
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        _assert_error(httpx.post(url + "/v1/depth", json={"image": "AAAA"}), 400, "model_required")


# ---------------------------------------------------------------- security
def test_api_key_headers(server, image_b64):
    url = str(server.base_url)
    payload = {"image": image_b64, "include_pose": True}
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer"},
                    {"da3-api-key": KEY + "x"}):
        r = httpx.post(url + "/v1/depth", json=payload, headers=headers)
        _assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}, {"da3-api-key": KEY},
                    {"DA3-API-KEY": KEY}, {"X-API-Key": "wrong", "da3-api-key": KEY}):
        assert httpx.post(url + "/v1/depth", json=payload, headers=headers).status_code == 200, headers
    _assert_error(httpx.get(url + "/v1/models"), 401)
    _assert_error(httpx.get(url + "/metrics"), 401)
    assert httpx.get(url + "/healthz").status_code == 200


def test_bind_refused_without_key(tmp_path, monkeypatch):
    cfg = ServerConfig(models_dir=tmp_path)
    check_bind(cfg, "127.0.0.1")
    check_bind(cfg, "localhost")
    check_bind(cfg, "::1")
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        with pytest.raises(PermissionError, match="DA3CPP_API_KEY"):
            check_bind(cfg, host)
    check_bind(ServerConfig(models_dir=tmp_path, allow_open=True), "0.0.0.0")
    check_bind(ServerConfig(models_dir=tmp_path, api_key="k"), "0.0.0.0")
    monkeypatch.delenv("DA3CPP_API_KEY", raising=False)
    from depth_anything_cpp.cli import main

    assert main(["serve", "--models", str(tmp_path), "--host", "0.0.0.0", "--port", str(free_port())]) == 2


def test_cli_serve_subprocess_sigterm(tmp_path, image_b64):
    """`da3cpp serve` as a process: key from the environment, serves, stops on SIGTERM."""
    mdir = models_dir(tmp_path)
    port = free_port()
    env = {**os.environ, "DA3CPP_API_KEY": KEY, "PYTHONPATH": os.pathsep.join(
        [str(Path(depth_anything_cpp.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "depth_anything_cpp.cli", "serve", "--models", str(mdir),
                             "--port", str(port), "--process-res", str(PROCESS_RES), "--threads", "1",
                             "--log-level", "warning"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.post(url + "/v1/depth", json={"image": image_b64}).status_code == 401
        r = httpx.post(url + "/v1/depth", json={"image": image_b64}, headers={"Authorization": f"Bearer {KEY}"},
                       timeout=60)
        assert r.status_code == 200 and r.json()["width"] == PROCESS_RES
        proc.terminate()
        assert proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its clean shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- bad inputs -> 4xx
def _png_header(width: int, height: int) -> bytes:
    """A PNG declaring width x height, with one tiny IDAT: its pixels cannot be decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("payload,status,code", [
    ({"image": "%%% not base64"}, 400, "bad_base64"),
    ({"image": "data:image/png,abc"}, 400, "bad_base64"),
    ({"image": b64(b"GIF89a broken")}, 400, "bad_image"),
    ({"image": b64(b"hello world")}, 400, "bad_image"),
    ({"image": b64(_png_header(100_000, 100_000))}, 413, "image_too_large"),
    ({"image": b64(_png_header(2000, 2000))}, 413, "image_too_large"),
    ({"image": b64(_png_header(64, 64))}, 400, "bad_image"),  # header only, no pixels
    ({"image": ""}, 400, "bad_image"),
    ({"image": 123}, 422, "invalid_request"),
    ({"image": ["a"]}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
    ({"image": "AAAA", "src": "AAAA"}, 422, "invalid_request"),
    ({"image": "AAAA", "include_depth": "yes"}, 422, "invalid_request"),
    ({"image": "AAAA", "points_conf_thresh": -1}, 422, "invalid_request"),
    ({"image": "AAAA", "process_res": 5}, 422, "invalid_request"),
    ({"image": "AAAA", "array_encoding": "xml"}, 422, "invalid_request"),
    ({"image": "http://127.0.0.1:1/x.png"}, 403, "urls_disabled"),
    ({"image": "AAAA", "model": "nope"}, 404, "model_not_found"),
])
def test_depth_bad_inputs(server, payload, status, code):
    _assert_error(server.post("/v1/depth", json=payload), status, code)


def test_batch_and_body_limits(server, image_b64):
    _assert_error(server.post("/v1/batch", json={"images": [{"type": "b64", "data": image_b64}] * 5}),
                  413, "too_many_images")
    _assert_error(server.post("/v1/batch", json={"tasks": ["depth"]}), 400, "no_images")
    _assert_error(server.post("/v1/batch", json={"images": [{"type": "ftp", "data": "x"}]}), 422)
    _assert_error(server.post("/v1/batch", json={"image_b64": image_b64, "tasks": ["segment"]}), 422)
    _assert_error(server.post("/v1/batch", json={"image_b64": image_b64, "colormap": "jet"}), 422)
    big = "A" * (5 << 20)
    _assert_error(server.post("/v1/depth", json={"image": big}), 413, "body_too_large")
    _assert_error(server.post("/v1/depth", content=b"{not json", headers={"content-type": "application/json"}), 422)

    def chunks():  # no Content-Length: counted while streamed
        for _ in range(6):
            yield b"A" * (1 << 20)
    _assert_error(server.post("/v1/depth", content=chunks(), headers={"content-type": "application/json"}),
                  413, "body_too_large")
    assert server.get("/healthz").status_code == 200  # still serving


# ---------------------------------------------------------------- URLs
def test_url_fetch_private_addresses_and_redirects(tmp_path, image):
    """URL fetching (opt-in): private addresses refused, redirects re-checked; only an
    allow-listed 127.0.0.1 image server is reached."""
    import http.server

    data = png_bytes(image)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/img.png":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", "http://10.255.255.1/img.png" if self.path == "/redirect-private"
                                 else "/img.png")
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    img_port = httpd.server_address[1]
    try:
        mdir = models_dir(tmp_path)
        open_cfg = ServerConfig(models_dir=mdir, allow_urls=True, process_res=PROCESS_RES, n_threads=1,
                                url_allow_hosts=(f"127.0.0.1:{img_port}",))
        with running(create_app(open_cfg)) as (url, _):
            base = f"http://127.0.0.1:{img_port}"
            assert httpx.post(url + "/v1/depth", json={"image": base + "/img.png"}, timeout=60).status_code == 200
            assert httpx.post(url + "/v1/depth", json={"image": base + "/redirect"}, timeout=60).status_code == 200
            _assert_error(httpx.post(url + "/v1/depth", json={"image": base + "/redirect-private"}), 403, "url_forbidden")
            _assert_error(httpx.post(url + "/v1/depth", json={"image": base + "/missing"}), 400, "url_failed")
            # same host, other port: not allow-listed, loopback -> refused before connecting
            _assert_error(httpx.post(url + "/v1/depth", json={"image": f"http://127.0.0.1:{free_port()}/x"}),
                          403, "url_forbidden")
            _assert_error(httpx.post(url + "/v1/depth", json={"image": "http://169.254.169.254/latest"}),
                          403, "url_forbidden")
            r = httpx.post(url + "/v1/batch", json={"image_urls": [base + "/img.png", "http://localhost/x"]}, timeout=60)
            assert [e.get("error", {}).get("code") for e in r.json()["results"]] == [None, "url_forbidden"]
    finally:
        httpd.shutdown()


# ---------------------------------------------------------------- load: queue, timeout, shutdown
def _concurrent(url, payload, n):
    out = [None] * n

    def call(i):
        try:
            out[i] = httpx.post(url + "/v1/depth", json=payload, timeout=120)
        except httpx.HTTPError as exc:
            out[i] = exc
    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, out


def test_queue_full_429_and_timeout_408(tmp_path, image_b64):
    cfg = ServerConfig(models_dir=models_dir(tmp_path), queue_size=1, n_threads=1, process_res=504)
    with running(create_app(cfg)) as (url, _):
        threads, out = _concurrent(url, {"image": image_b64, "process_res": 504}, 8)
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in out)
        assert set(codes) <= {200, 429} and 200 in codes and 429 in codes, codes
        limited = next(r for r in out if r.status_code == 429)
        assert limited.headers["retry-after"] == "1" and limited.json()["error"]["code"] == "queue_full"
    cfg = ServerConfig(models_dir=models_dir(tmp_path / "t"), request_timeout_s=0.001, n_threads=1)
    with running(create_app(cfg)) as (url, _):
        _assert_error(httpx.post(url + "/v1/depth", json={"image": image_b64}, timeout=60), 408, "timeout")
        assert httpx.get(url + "/healthz").status_code == 200


def test_graceful_shutdown_answers_every_request(tmp_path, image_b64):
    cfg = ServerConfig(models_dir=models_dir(tmp_path), queue_size=8, n_threads=1, process_res=504)
    app = create_app(cfg)
    with running(app, timeout_graceful_shutdown=60) as (url, server):
        threads, out = _concurrent(url, {"image": image_b64}, 6)
        pool = app.state.pool
        deadline = time.monotonic() + 30
        while pool.queue_depth("small") < 5 and time.monotonic() < deadline:  # 1 running + 5 queued
            time.sleep(0.005)
        assert pool.queue_depth("small") >= 4, "the requests did not reach the queue"
        server.should_exit = True  # stop accepting; in-flight requests finish
        for t in threads:
            t.join(120)
    codes = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in out]
    assert all(c in (200, 503) for c in codes), codes
    assert codes.count(200) >= 1
    import asyncio

    from depth_anything_cpp.server.errors import ApiError

    with pytest.raises(ApiError) as refused:
        asyncio.run(pool.submit("small", lambda m: None))  # closed pool refuses new work
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"


def test_load_short(tmp_path, image_b64, record_property):
    """8 concurrent clients for 5 s: no 5xx, no connection errors, RSS steady."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from serve_load import load, rss_kib
    finally:
        sys.path.pop(0)
    cfg = ServerConfig(models_dir=models_dir(tmp_path), queue_size=8, n_threads=1, process_res=PROCESS_RES)
    with running(create_app(cfg)) as (url, _):
        payload = {"image": image_b64}
        assert httpx.post(url + "/v1/depth", json=payload, timeout=60).status_code == 200
        rss_before = rss_kib(os.getpid())
        stats = load(url, payload, clients=8, seconds=5)
        stats.update(rss_before_kib=rss_before, rss_after_kib=rss_kib(os.getpid()))
    print("load:", stats)
    record_property("load", stats)
    assert stats["5xx"] == 0 and stats["errors"] == 0, stats
    assert stats["statuses"].get(200, 0) == stats["requests"] > 0
    assert stats["rss_after_kib"] < stats["rss_before_kib"] + 200 * 1024


# ---------------------------------------------------------------- schema fuzz
def test_openapi_fuzz_no_server_errors(server):
    """Schema-driven fuzzing of every operation of the OpenAPI document (bounded): nothing
    answers 5xx."""
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
    from hypothesis import HealthCheck, given, settings

    url = str(server.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    seen = {}
    for result in schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            r = case.call(base_url=url, headers={"X-API-Key": KEY})
            seen.setdefault(f"{op.method} {op.path}", set()).add(r.status_code)
            assert r.status_code < 500, (case.body, r.text[:300])
        check()
    assert {"post /v1/depth", "post /v1/batch", "get /v1/models"} <= set(seen)
    assert server.get("/healthz").status_code == 200
