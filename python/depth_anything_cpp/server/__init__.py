"""HTTP serving of depth_anything_cpp models (``pip install depth-anything-cpp[serve]``).

``da3cpp serve --models DIR`` runs :func:`create_app` under uvicorn. Endpoints, limits and
security are described in the README ("Serving") and in :mod:`.app`. Only the standard
library and numpy are imported here; FastAPI, uvicorn and prometheus_client are imported by
:func:`create_app` / :func:`serve`, which raise ImportError naming the extra when missing.
"""

from __future__ import annotations

from typing import Any

from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve", "main"]


def _need_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"serving needs the 'serve' extra: pip install 'depth-anything-cpp[serve]' ({exc})") from exc


def create_app(config: ServerConfig) -> Any:
    """The ASGI application (a FastAPI instance) for ``config``; see :mod:`.app`."""
    _need_extra()
    from .app import create_app as _create

    return _create(config)


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8080, **uvicorn_kwargs: Any) -> None:
    """Run the app under uvicorn until SIGINT/SIGTERM (graceful: queued requests finish).

    Raises:
        PermissionError: ``host`` is not a loopback address, no API key is configured and
            ``config.allow_open`` is False.
    """
    _need_extra()
    from .cli import run

    run(config, host, port, **uvicorn_kwargs)


def main(argv: Any = None) -> int:
    """``da3cpp serve`` entry point; returns the exit status."""
    from .cli import main as _main

    return _main(argv)
