"""The one exception type the server turns into a JSON error response."""

from __future__ import annotations

from typing import Optional


class ApiError(Exception):
    """An HTTP error answered as ``{"error": {"code", "message"}}`` with ``status``.

    ``code`` is a stable machine-readable token (``bad_image``, ``image_too_large``,
    ``unauthorized``, ``queue_full``, ...); ``headers`` are added to the response
    (``Retry-After`` for 429/503, ``WWW-Authenticate`` for 401).
    """

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict] = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}
