"""Exceptions raised by depth_anything_cpp: see :mod:`depth_anything_cpp._errors`, where they are
defined (importable by the compiled core without the package)."""

from __future__ import annotations

from ._errors import (
    BackendError,
    DA3Error,
    ModelFormatError,
    ModelLoadError,
    ModelNotFoundError,
    NonFiniteOutputError,
    UnsupportedError,
    VariantError,
)

__all__ = [
    "DA3Error",
    "ModelFormatError",
    "ModelLoadError",
    "ModelNotFoundError",
    "UnsupportedError",
    "BackendError",
    "NonFiniteOutputError",
    "VariantError",
]
