"""Server configuration: every default of the HTTP server, written once."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..api import INFERENCE_DEFAULTS, PROCESS_RES_RANGE

#: Environment variable holding the API key (``da3cpp serve`` and ServerConfig.from_env).
API_KEY_ENV = "DA3CPP_API_KEY"


@dataclass
class ServerConfig:
    """Settings of :func:`depth_anything_cpp.server.create_app`.

    Attributes:
        models_dir: directory of ``*.gguf`` files; a model's name is its file stem.
        api_key: required key (``Authorization: Bearer``, ``X-API-Key`` or ``da3-api-key``
            header); None = no authentication (then loopback only unless ``allow_open``).
        allow_open: allow binding a non-loopback address without an API key.
        default_model: name used when a request names none (None: the only model, if one).
        max_models, max_model_bytes: LRU cache bounds (models loaded at once; sum of their
            GGUF file sizes). The least recently used idle model is dropped first.
        queue_size: requests waiting per model beyond the one running (429 when full).
        max_body_bytes: request body limit (413).
        max_pixels: per-image width x height limit, checked from the header before decoding (413).
        max_views: images per request (413).
        request_timeout_s: time from queueing to result (408 after it; the job is dropped
            if it has not started, else its result is discarded).
        process_res: default processing resolution (longest side, pixels).
        n_threads: threads per model (None: physical cores).
        image_root: server-side image paths allowed under this directory (None: off).
        export_root: ``dst`` of exports must lie under this directory (None: exports off).
        allow_urls: fetch ``http(s)://`` images (off by default); private, loopback and
            link-local addresses are refused, redirects included, except ``url_allow_hosts``.
        url_allow_hosts: hostnames or IPs (optionally ``host:port``) fetched even if private.
        url_timeout_s, url_max_redirects: URL fetch limits.
        shutdown_grace_s: on shutdown, time given to queued requests before they are failed (503).
        retry_after_s: ``Retry-After`` sent with 429/503.
    """

    models_dir: Path
    api_key: Optional[str] = None
    allow_open: bool = False
    default_model: Optional[str] = None
    max_models: int = 2
    max_model_bytes: int = 8 << 30
    queue_size: int = 8
    max_body_bytes: int = 64 << 20
    max_pixels: int = 4096 * 4096
    max_views: int = 16
    request_timeout_s: float = 120.0
    process_res: int = INFERENCE_DEFAULTS["process_res"]
    n_threads: Optional[int] = None
    image_root: Optional[Path] = None
    export_root: Optional[Path] = None
    allow_urls: bool = False
    url_allow_hosts: tuple = field(default_factory=tuple)
    url_timeout_s: float = 10.0
    url_max_redirects: int = 3
    shutdown_grace_s: float = 30.0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        self.models_dir = Path(self.models_dir).expanduser()
        if not self.models_dir.is_dir():
            raise NotADirectoryError(f"models_dir: not a directory: {self.models_dir}")
        for name in ("image_root", "export_root"):
            value = getattr(self, name)
            if value is not None:
                value = Path(value).expanduser().resolve()
                if not value.is_dir():
                    raise NotADirectoryError(f"{name}: not a directory: {value}")
                setattr(self, name, value)
        if self.api_key is not None and not self.api_key:
            self.api_key = None
        for name in ("max_models", "max_model_bytes", "queue_size", "max_body_bytes", "max_pixels",
                     "max_views", "process_res"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not PROCESS_RES_RANGE[0] <= self.process_res <= PROCESS_RES_RANGE[1]:
            raise ValueError(f"process_res: must be in {list(PROCESS_RES_RANGE)}, got {self.process_res}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s: must be > 0, got {self.request_timeout_s}")
        self.url_allow_hosts = tuple(str(h).lower() for h in self.url_allow_hosts)

    @classmethod
    def from_env(cls, models_dir: Path, **kwargs) -> "ServerConfig":
        """A config whose ``api_key`` is ``$DA3CPP_API_KEY`` unless given."""
        kwargs.setdefault("api_key", os.environ.get(API_KEY_ENV) or None)
        return cls(models_dir=models_dir, **kwargs)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
