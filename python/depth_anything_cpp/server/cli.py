"""``da3cpp serve``: run the HTTP server under uvicorn."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

from .config import API_KEY_ENV, ServerConfig, is_loopback_host

_DEFAULTS = ServerConfig.__dataclass_fields__

EPILOG = f"""\
examples:
  da3cpp serve --models models/                                # http://127.0.0.1:8080, no key
  {API_KEY_ENV}=secret da3cpp serve --models models/ --host 0.0.0.0 --port 9000
  da3cpp serve --models models/ --image-root /data --export-root /srv/exports

A model's name is its GGUF file's stem in --models. Without {API_KEY_ENV}, only a loopback
address is served unless --allow-open is given. Endpoints: POST /v1/depth, POST /v1/batch,
GET /v1/models, /healthz, /readyz, /metrics (see the README, "Serving").
"""


def build_parser() -> argparse.ArgumentParser:
    d = {k: f.default for k, f in _DEFAULTS.items() if not callable(getattr(f, "default_factory", None))}
    p = argparse.ArgumentParser(prog="da3cpp serve", description="Serve depth models over HTTP.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="directory of *.gguf models (name = file stem)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--allow-open", action="store_true",
                   help=f"serve a non-loopback address without {API_KEY_ENV} (anyone reaching it may use it)")
    p.add_argument("--default-model", default=None, help="model used when a request names none")
    p.add_argument("--max-models", type=int, default=d["max_models"], help="models kept loaded (LRU)")
    p.add_argument("--max-model-mb", type=int, default=d["max_model_bytes"] >> 20,
                   help="total GGUF size of the loaded models, MiB")
    p.add_argument("--queue-size", type=int, default=d["queue_size"], help="waiting requests per model (then 429)")
    p.add_argument("--max-body-mb", type=int, default=d["max_body_bytes"] >> 20, help="request body limit, MiB")
    p.add_argument("--max-pixels", type=int, default=d["max_pixels"], help="width x height limit per image")
    p.add_argument("--max-views", type=int, default=d["max_views"], help="images per request")
    p.add_argument("--timeout", type=float, default=d["request_timeout_s"], help="seconds per request (then 408)")
    p.add_argument("--process-res", type=int, default=d["process_res"], help="default processing resolution")
    p.add_argument("--threads", type=int, default=None, help="threads per model (default: physical cores)")
    p.add_argument("--image-root", default=None, help="allow server-side image paths under this directory")
    p.add_argument("--export-root", default=None, help="allow exports (dst) under this directory")
    p.add_argument("--allow-urls", action="store_true", help="fetch http(s) image URLs (public addresses only)")
    p.add_argument("--url-allow-host", action="append", default=[], metavar="HOST[:PORT]",
                   help="also fetch from this host even if its address is private (repeatable)")
    p.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig.from_env(
        args.models, allow_open=args.allow_open, default_model=args.default_model,
        max_models=args.max_models, max_model_bytes=args.max_model_mb << 20, queue_size=args.queue_size,
        max_body_bytes=args.max_body_mb << 20, max_pixels=args.max_pixels, max_views=args.max_views,
        request_timeout_s=args.timeout, process_res=args.process_res, n_threads=args.threads,
        image_root=args.image_root, export_root=args.export_root, allow_urls=args.allow_urls,
        url_allow_hosts=tuple(args.url_allow_host))


def check_bind(config: ServerConfig, host: str) -> None:
    """Raises PermissionError for a non-loopback ``host`` without API key or ``allow_open``."""
    if config.api_key is None and not config.allow_open and not is_loopback_host(host):
        raise PermissionError(
            f"refusing to serve {host!r} without an API key: set {API_KEY_ENV}, bind 127.0.0.1, "
            "or pass --allow-open")


def run(config: ServerConfig, host: str, port: int, **uvicorn_kwargs: Any) -> None:
    import uvicorn

    from . import create_app

    check_bind(config, host)
    uvicorn_kwargs.setdefault("timeout_graceful_shutdown", int(config.shutdown_grace_s))
    uvicorn.run(create_app(config), host=host, port=port, **uvicorn_kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        run(config, args.host, args.port, log_level=args.log_level)
    except (PermissionError, NotADirectoryError, ValueError, ImportError) as exc:
        print(f"da3cpp serve: {exc}", file=sys.stderr)
        return 2
    return 0
