"""Helpers for the serving tests: a uvicorn server on 127.0.0.1 in a thread, small images."""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from conftest import DATA_DIR, FIXTURE_DIR

FIXTURE_MODEL = FIXTURE_DIR / "da3-small-rand-f16.gguf"
IMAGES = [DATA_DIR / "da3_examples" / f"assets_examples_SOH_0{i}0.png" for i in (0, 1)]
SMALL_WIDTH = 140  # images resized to this width so inference takes tens of ms
PROCESS_RES = 140


def small_image(index: int = 0, width: int = SMALL_WIDTH) -> np.ndarray:
    """A shared example image resized to ``width`` (H, W, 3) uint8."""
    from PIL import Image

    with Image.open(IMAGES[index]) as img:
        img = img.convert("RGB")
        return np.asarray(img.resize((width, round(img.height * width / img.width)), Image.BILINEAR))


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def models_dir(tmp: Path, names=("small",)) -> Path:
    """A models directory holding the fixture under each name (symlinks)."""
    d = tmp / "models"
    d.mkdir(parents=True, exist_ok=True)
    for name in names:
        (d / f"{name}.gguf").symlink_to(FIXTURE_MODEL)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app, **uvicorn_kwargs) -> Iterator[tuple[str, object]]:
    """Serve ``app`` on 127.0.0.1:<free port> in a thread; yields (base URL, uvicorn.Server)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **uvicorn_kwargs))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(60)
