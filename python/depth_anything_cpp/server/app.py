"""The FastAPI application: ``POST /v1/depth`` (LocalAI), ``POST /v1/batch`` (serverless
workers), ``GET /v1/models``, ``/healthz``, ``/readyz``, ``/metrics``.

Request flow: the body-size middleware buffers at most ``max_body_bytes`` (413 beyond);
the API key is checked in constant time (401); images are decoded on the thread pool with
the pixel limit checked from the header (413); inference runs on the model's worker
thread behind its bounded queue (429 when full, 408 past ``request_timeout_s``, 503 while
shutting down); the encodings run on the thread pool. Every error is JSON
``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import hmac
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import BackendError, UnsupportedError
from . import render
from .config import ServerConfig
from .errors import ApiError
from .inputs import load_request_image
from .metrics import Metrics
from .pool import ModelPool
from .schemas import BatchRequest, BatchResponse, DepthRequest, DepthResponse


def _map_error(exc: BaseException, label: str) -> ApiError:
    """An exception from loading/inference/encoding as an ApiError (4xx for bad input)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnsupportedError):
        return ApiError(422, "unsupported", f"{label}: {exc}")
    if isinstance(exc, (ValueError, TypeError)):
        return ApiError(400, "invalid_request", f"{label}: {exc}")
    if isinstance(exc, MemoryError):
        return ApiError(413, "too_large", f"{label}: out of memory for this input ({exc})")
    if isinstance(exc, (BackendError, OSError)):
        return ApiError(500, "internal", f"{label}: {type(exc).__name__}: {exc}")
    return ApiError(500, "internal", f"{label}: {type(exc).__name__}: {exc}")


class _BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = ApiError(413, "body_too_large", f"request body over {self.limit} bytes")
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_error(send, ApiError(400, "bad_request", "invalid Content-Length"))
                if declared > self.limit:
                    return await _send_error(send, too_large)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await _send_error(send, too_large)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_error(send: Any, error: ApiError) -> None:
    response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def _floats(a: Optional[np.ndarray], encoding: str) -> Any:
    """A float array as a JSON list (non-finite -> null) or base64 little-endian float32."""
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype="<f4").ravel()
    if encoding == "base64":
        return render.b64(a.tobytes())
    if np.isfinite(a).all():
        return a.tolist()
    return [float(v) if np.isfinite(v) else None for v in a]


def create_app(config: ServerConfig) -> FastAPI:
    """The ASGI app serving the models of ``config.models_dir`` (see the module docstring)."""
    from .. import __version__, backend_info

    metrics = Metrics()
    pool = ModelPool(config, metrics)
    device = str(backend_info().get("variant", "cpu"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(pool.close)

    app = FastAPI(title="depth-anything-cpp", version=__version__, lifespan=lifespan,
                  description="Depth Anything 3 on a C++/ggml core. `POST /v1/depth` follows LocalAI's "
                              "depth API; `POST /v1/batch` the serverless depth workers' batch shape.")
    app.state.pool, app.state.metrics, app.state.config = pool, metrics, config
    _add_middleware(app, metrics, config)
    _add_error_handlers(app)
    secured = [Depends(_authorizer(config))]
    _add_info_routes(app, pool, metrics, secured)
    _add_depth_route(app, pool, metrics, config, secured)
    _add_batch_route(app, pool, metrics, config, device, secured)
    return app


def _add_middleware(app: FastAPI, metrics: Metrics, config: ServerConfig) -> None:
    """Request counting/latency metrics, and the body-size limit."""
    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        status = str(response.status_code)
        metrics.requests.labels(endpoint, status).inc()
        if response.status_code >= 400:
            metrics.errors.labels(endpoint, status).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    app.add_middleware(_BodyLimit, limit=config.max_body_bytes)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error": {...}}``: ApiError, validation errors, anything else."""
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # still JSON, never a bare 500
        error = _map_error(exc, f"{request.method} {request.url.path}")
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
                  for e in exc.errors()]
        body = ApiError(422, "invalid_request", "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)[:2000]).body()
        body["error"]["details"] = errors[:50]
        return JSONResponse(body, status_code=422)


def _authorizer(config: ServerConfig) -> Any:
    """The dependency checking the API key (401 without a matching one; no check without a key)."""
    expected_key = None if config.api_key is None else config.api_key.encode()

    def authorize(request: Request) -> None:
        if expected_key is None:
            return
        given = []
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given.append(auth[7:].strip())
        given += [request.headers[h] for h in ("x-api-key", "da3-api-key") if h in request.headers]
        ok = False
        for key in given:  # every candidate compared, in constant time each
            ok |= hmac.compare_digest(key.encode("utf-8", "surrogateescape"), expected_key)
        if not ok:
            raise ApiError(401, "unauthorized", "Unauthorized: send the API key as 'Authorization: "
                           "Bearer <key>', 'X-API-Key' or 'da3-api-key'", {"WWW-Authenticate": "Bearer"})

    return authorize


def _add_info_routes(app: FastAPI, pool: ModelPool, metrics: Metrics, secured: list) -> None:
    """Probes (``/healthz``, ``/readyz``), ``/metrics`` and ``/v1/models``."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.get("/healthz", summary="liveness")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="readiness: not shutting down and at least one model available")
    async def readyz() -> JSONResponse:
        models = pool.available()
        ready = bool(models) and not pool.closing
        return JSONResponse({"ready": ready, "models": len(models), "shutting_down": pool.closing},
                            status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=secured, summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=secured, summary="models in the models directory")
    async def models() -> dict:
        loaded = pool.loaded()
        data = []
        for name, path in pool.available().items():
            entry = {"id": name, "object": "model", "size_bytes": path.stat().st_size,
                     "loaded": name in loaded, "queue_depth": pool.queue_depth(name)}
            if name in loaded:
                info = loaded[name].info
                entry.update({k: info.get(k) for k in ("preset", "weight_type", "is_metric", "has_sky",
                                                       "has_camera_decoder")})
            data.append(entry)
        return {"object": "list", "data": data}


def _add_depth_route(app: FastAPI, pool: ModelPool, metrics: Metrics, config: ServerConfig,
                     secured: list) -> None:
    """LocalAI's ``POST /v1/depth``."""
    @app.post("/v1/depth", dependencies=secured, response_model=DepthResponse,
              summary="depth, confidence, pose, sky and points of one image (LocalAI schema)")
    async def depth(req: DepthRequest) -> JSONResponse:
        start = time.perf_counter()
        name, _ = pool.resolve(req.model)
        dst = _export_dir(req, config)
        image = await run_in_threadpool(load_request_image, req.image if req.image is not None else req.src,
                                        config, "image")
        flags = {k: getattr(req, f"include_{k}") for k in ("depth", "confidence", "pose", "sky", "points")}
        if not any(v is True for v in flags.values()):  # LocalAI: everything the model produces
            flags = {"depth": True, "confidence": True, "pose": True, "sky": True, "points": False}
        res = req.process_res or config.process_res

        def job(model: Any) -> dict:
            t0 = time.perf_counter()
            pred = model.inference([image], process_res=res)
            metrics.inference.labels(name).observe(time.perf_counter() - t0)
            metrics.images.labels(name).inc()
            out: dict = {"pred": pred, "points": None, "export_paths": []}
            if flags["points"] and pred.extrinsics is not None:
                opts = {} if req.points_conf_thresh is None else {
                    "conf_thresh": req.points_conf_thresh, "conf_thresh_percentile": 0.0,
                    "ensure_thresh_percentile": 100.0}
                out["points"] = pred.points(**opts)
            if req.exports:
                from ..exports import export

                written = export(pred, "-".join(req.exports), dst)
                out["export_paths"] = [os.fspath(p) for files in written.values() for p in files]
            return out

        try:
            out = await pool.submit(name, job)
        except Exception as exc:
            raise _map_error(exc, "image") from exc
        body = await run_in_threadpool(_depth_body, out, flags, req.array_encoding, name,
                                       time.perf_counter() - start)
        return JSONResponse(body)


def _add_batch_route(app: FastAPI, pool: ModelPool, metrics: Metrics, config: ServerConfig, device: str,
                     secured: list) -> None:
    """The serverless workers' ``POST /v1/batch``."""
    @app.post("/v1/batch", dependencies=secured, response_model=BatchResponse,
              summary="several images, per-image results and errors (serverless workers' shape)")
    async def batch(req: BatchRequest) -> JSONResponse:
        start = time.perf_counter()
        name, _ = pool.resolve(req.model)
        sources = req.sources()
        if not sources:
            raise ApiError(400, "no_images", "no image given (images, image_url, image_urls or image_b64)")
        if len(sources) > config.max_views:
            raise ApiError(413, "too_many_images",
                           f"{len(sources)} images, over the limit of {config.max_views} per request")
        res = req.max_size or config.process_res
        tasks = list(dict.fromkeys(req.tasks))

        def decode(i: int, kind: str, data: str) -> tuple[Any, Optional[ApiError], float]:
            t0 = time.perf_counter()
            try:
                return load_request_image(data, config, f"images[{i}]", kind=kind), None, time.perf_counter() - t0
            except Exception as exc:
                return None, _map_error(exc, f"images[{i}]"), time.perf_counter() - t0

        decoded = [await run_in_threadpool(decode, i, k, d) for i, (k, d) in enumerate(sources)]

        def job(model: Any) -> list:
            """[(prediction or None, error or None, seconds)] per image, or one scene."""
            valid = [i for i, (img, err, _) in enumerate(decoded) if err is None]
            outs: list = [None] * len(decoded)
            groups = [valid] if req.multiview else [[i] for i in valid]
            for group in groups:
                if not group:
                    continue
                t0 = time.perf_counter()
                try:
                    pred, err = model.inference([decoded[i][0] for i in group], process_res=res), None
                    metrics.images.labels(name).inc(len(group))
                except Exception as exc:
                    pred, err = None, _map_error(exc, f"images{group}")
                dt = time.perf_counter() - t0
                metrics.inference.labels(name).observe(dt)
                for i in group:
                    outs[i] = (pred, err, dt / len(group))
            return outs

        outs = await pool.submit(name, job)
        results, scene = await run_in_threadpool(_batch_body, req, tasks, sources, decoded, outs, name)
        body = {"results": results, "scene": scene, "model": name, "tasks": tasks,
                "colormap": req.colormap, "output_format": req.output_format, "max_size": res,
                "invert": req.invert, "multiview": req.multiview, "device": device,
                "count": len(results), "elapsed_sec": time.perf_counter() - start}
        return JSONResponse(body)


def _export_dir(req: DepthRequest, config: ServerConfig) -> Optional[Path]:
    """The checked export directory of a request with ``exports`` (created), else None."""
    if not req.exports:
        return None
    if config.export_root is None:
        raise ApiError(403, "exports_disabled", "exports are disabled on this server (no export root)")
    if not req.dst:
        raise ApiError(400, "dst_required", "'exports' needs 'dst', a directory under the export root")
    try:
        dst = (config.export_root / req.dst).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ApiError(400, "bad_dst", f"dst: {exc}") from None
    if not dst.is_relative_to(config.export_root):
        raise ApiError(403, "dst_forbidden", "dst: must be a directory under the server's export root")
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApiError(400, "bad_dst", f"dst: cannot create the directory: {exc.strerror}") from None
    return dst


def _depth_body(out: dict, flags: dict, encoding: str, name: str, elapsed: float) -> dict:
    pred = out["pred"]
    h, w = pred.depth.shape[1:3]
    sky = pred.aux.get("sky_prob", pred.sky)
    arrays = {
        "depth": pred.depth[0] if flags["depth"] else None,
        "confidence": pred.conf[0] if flags["confidence"] and pred.conf is not None else None,
        "sky": sky[0].astype(np.float32) if flags["sky"] and sky is not None else None,
        "extrinsics": pred.extrinsics[0] if flags["pose"] and pred.extrinsics is not None else None,
        "intrinsics": pred.intrinsics[0] if flags["pose"] and pred.intrinsics is not None else None,
    }
    pts = out["points"]
    num_points = 0 if pts is None else int(len(pts["xyz"]))
    arrays["points"] = None if pts is None else pts["xyz"]
    colors = None if pts is None else np.ascontiguousarray(pts["rgb"], np.uint8)
    body: dict = {"width": int(w), "height": int(h), "num_points": num_points,
                  "export_paths": out["export_paths"], "is_metric": bool(pred.is_metric),
                  "model": name, "array_encoding": encoding, "npz": None}
    if encoding == "npz":
        body.update({k: None for k in arrays})
        body["point_colors"] = None
        body["npz"] = render.b64(render.npz(**arrays, point_colors=colors))
    else:
        body.update({k: _floats(v, encoding) for k, v in arrays.items()})
        body["point_colors"] = None if colors is None else render.b64(colors.tobytes())
    body["elapsed_sec"] = elapsed
    return body


def _batch_body(req: BatchRequest, tasks: list, sources: list, decoded: list, outs: list,
                name: str) -> tuple[list, Optional[dict]]:
    results = []
    for i, ((kind, data), (image, derr, dtime), out) in enumerate(zip(sources, decoded, outs)):
        t0 = time.perf_counter()
        entry: dict = {"index": i, "input": {"kind": kind, **({"url": data} if kind == "url" else {})},
                       "model": name, "tasks": tasks}
        err = derr or (out[1] if out is not None else None)
        if err is None:
            try:
                view = 0 if not req.multiview else sum(1 for o in decoded[:i] if o[1] is None)
                entry.update(_render_view(req, tasks, image, out[0], view))
            except Exception as exc:
                err = _map_error(exc, f"images[{i}]")
        if err is not None:
            entry = {k: v for k, v in entry.items() if k in ("index", "input", "model", "tasks")}
            entry["error"] = err.body()["error"]
        infer = out[2] if out is not None and out[1] is None else 0.0
        entry["elapsed_sec"] = dtime + infer + (time.perf_counter() - t0)
        results.append(entry)
    scene = None
    if req.multiview and "point_cloud" in tasks:
        preds = [o[0] for o in outs if o is not None and o[0] is not None]
        if preds:
            t0 = time.perf_counter()
            try:
                scene = {"point_cloud_b64": render.b64(render.glb(preds[0], req.point_cloud_grid ** 2)),
                         "views": preds[0].depth.shape[0]}
            except Exception as exc:
                scene = {"error": _map_error(exc, "scene").body()["error"]}
            scene["elapsed_sec"] = time.perf_counter() - t0
    return results, scene


def _render_view(req: BatchRequest, tasks: list, image: np.ndarray, pred: Any, view: int) -> dict:
    """The serverless worker's per-image fields; renderings at the input image's size."""
    depth = pred.depth[view]
    height, width = image.shape[:2]
    full = render.resize_depth(depth, width, height)
    valid = np.isfinite(depth)
    out: dict = {"metric": bool(pred.is_metric), "width": int(width), "height": int(height),
                 "inference_size": [int(depth.shape[1]), int(depth.shape[0])],
                 "depth_min": float(depth[valid].min()) if valid.any() else None,
                 "depth_max": float(depth[valid].max()) if valid.any() else None,
                 "depth_mean": float(depth[valid].mean()) if valid.any() else None}
    if pred.extrinsics is not None:
        out["extrinsics"] = np.asarray(pred.extrinsics[view], np.float64).ravel().tolist()
        out["intrinsics"] = np.asarray(pred.intrinsics[view], np.float64).ravel().tolist()
    from .. import exports

    if "depth" in tasks:
        values, meta = exports.encode_depth_u16(full, bool(pred.is_metric))
        out["depth_png_b64"], out["depth_png_mime"] = render.b64(render.png16(values, meta)), "image/png"
    if "colorized" in tasks:
        rgb = exports.colorize_depth(full, req.colormap, percentile=2.0 if req.normalize else 0.0,
                                     invert=req.invert)
        data, mime = render.rgb_image(rgb, req.output_format, req.quality)
        out["colorized_b64"], out["colorized_mime"], out["colormap"] = render.b64(data), mime, req.colormap
    if "normals" in tasks:
        data, _ = render.rgb_image(render.normals_rgb(full), req.output_format, req.quality)
        out["normals_b64"] = render.b64(data)
    if "disparity" in tasks:
        values, meta = exports.encode_disparity_u16(full)
        out["disparity_b64"] = render.b64(render.png16(values, meta))
    if "point_cloud" in tasks and not req.multiview:
        out["point_cloud_b64"] = render.b64(render.glb(pred, req.point_cloud_grid ** 2))
    if req.include_raw:
        out["depth_npz_b64"] = render.b64(render.npz(
            depth=depth, conf=None if pred.conf is None else pred.conf[view],
            extrinsics=None if pred.extrinsics is None else pred.extrinsics[view],
            intrinsics=None if pred.intrinsics is None else pred.intrinsics[view]))
    return out
