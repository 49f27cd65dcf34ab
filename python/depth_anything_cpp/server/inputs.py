"""Request images -> (H, W, 3) uint8 arrays, within the configured limits.

An image string is, in this order: a ``data:`` URI; an ``http(s)://`` URL (only with
``allow_urls``); a path under ``image_root`` (only when configured and the file exists);
otherwise standard base64. The pixel limit is checked from the image header, before any
pixel is decoded. Every failure is an :class:`ApiError` (4xx) naming the image.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

import numpy as np

from ..images import pil_to_rgb_array
from .config import ServerConfig
from .errors import ApiError

_MAX_PATH_CHARS = 4096


def decode_base64(data: str, label: str, max_bytes: int) -> bytes:
    """Standard base64 (padding required, whitespace ignored) or a ``data:...;base64,`` URI."""
    if data.startswith("data:"):
        header, sep, data = data.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ApiError(400, "bad_base64", f"{label}: a data URI must be 'data:<mime>;base64,<data>'")
    data = "".join(data.split())
    if len(data) // 4 * 3 > max_bytes:
        raise ApiError(413, "body_too_large", f"{label}: decoded image over {max_bytes} bytes")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "bad_base64", f"{label}: not valid base64 ({exc})") from None


def decode_image_bytes(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    """Decode an encoded image (any format Pillow reads; EXIF orientation applied) to RGB.

    Raises:
        ApiError: 400 ``bad_image`` (empty, not an image, corrupt), 413 ``image_too_large``
            (width x height over ``max_pixels``, read from the header before decoding).
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(400, "bad_image", f"{label}: empty image data")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ApiError(413, "image_too_large",
                               f"{label}: {width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
            img.load()
            return pil_to_rgb_array(img, name=label)
    except ApiError:
        raise
    except UnidentifiedImageError:
        raise ApiError(400, "bad_image", f"{label}: not an image format the server reads") from None
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "image_too_large", f"{label}: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ApiError(400, "bad_image", f"{label}: cannot decode image: {exc}") from None


def _check_public(url: str, config: ServerConfig, label: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "bad_url", f"{label}: only http(s) URLs with a host are fetched")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ApiError(400, "bad_url", f"{label}: bad port in URL") from None
    if host in config.url_allow_hosts or f"{host}:{port}" in config.url_allow_hosts:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ApiError(400, "bad_url", f"{label}: cannot resolve host {host!r} ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise ApiError(403, "url_forbidden",
                           f"{label}: {host!r} resolves to a non-public address ({address}); refused")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # followed by hand, each hop checked
        return None


def fetch_url(url: str, config: ServerConfig, label: str) -> bytes:
    """GET ``url`` (each redirect re-checked against private addresses), at most
    ``max_body_bytes``. Blocking: call from a worker thread.

    Known limit: the address check and the connection resolve the name separately, so a
    DNS answer changing in between (rebinding) is not caught.
    """
    if not config.allow_urls:
        raise ApiError(403, "urls_disabled", f"{label}: fetching URLs is disabled on this server")
    opener = urllib.request.build_opener(_NoRedirect())
    for _ in range(config.url_max_redirects + 1):
        _check_public(url, config, label)
        request = urllib.request.Request(url, headers={"User-Agent": "depth-anything-cpp"})
        try:
            with opener.open(request, timeout=config.url_timeout_s) as response:
                data = response.read(config.max_body_bytes + 1)
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.code in (301, 302, 303, 307, 308) else None
            exc.close()
            if location is None:
                raise ApiError(400, "url_failed", f"{label}: HTTP {exc.code} from {url}") from None
            url = urllib.parse.urljoin(url, location)
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError(400, "url_failed", f"{label}: cannot fetch {url}: {exc}") from None
        if len(data) > config.max_body_bytes:
            raise ApiError(413, "body_too_large", f"{label}: {url} is over {config.max_body_bytes} bytes")
        return data
    raise ApiError(400, "url_failed", f"{label}: more than {config.url_max_redirects} redirects")


def server_path(text: str, config: ServerConfig) -> Optional[Path]:
    """The file ``text`` names under ``image_root`` (relative, or absolute inside it), or
    None when paths are disabled or ``text`` is not an existing file there."""
    root = config.image_root
    if root is None or len(text) > _MAX_PATH_CHARS or "\x00" in text:
        return None
    try:
        path = (root / text).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def load_request_image(text: str, config: ServerConfig, label: str, *, kind: Optional[str] = None) -> np.ndarray:
    """One request image (see the module docstring); ``kind`` "b64" / "url" / "path"
    forces the interpretation (the batch endpoint's ``type``). Blocking."""
    if not isinstance(text, str) or not text:
        raise ApiError(400, "bad_image", f"{label}: expected a non-empty string")
    is_url = text[:8].lower().startswith(("http://", "https://"))
    if kind == "url" or (kind is None and is_url):
        if not is_url:
            raise ApiError(400, "bad_url", f"{label}: type 'url' needs an http(s):// URL")
        data = fetch_url(text, config, label)
    elif kind == "path" or (kind is None and not text.startswith("data:") and server_path(text, config)):
        if config.image_root is None:
            raise ApiError(403, "paths_disabled", f"{label}: server-side paths are disabled on this server")
        path = server_path(text, config)
        if path is None:
            raise ApiError(404, "path_not_found", f"{label}: no such file under the server's image root")
        if path.stat().st_size > config.max_body_bytes:
            raise ApiError(413, "body_too_large", f"{label}: file over {config.max_body_bytes} bytes")
        data = path.read_bytes()
    else:
        data = decode_base64(text, label, config.max_body_bytes)
    return decode_image_bytes(data, label, config.max_pixels)
