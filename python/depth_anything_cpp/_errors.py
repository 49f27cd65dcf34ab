"""Exceptions raised by depth_anything_cpp (defined here, a module that imports nothing, so the
compiled core can raise them without importing the package; :mod:`depth_anything_cpp.errors`
re-exports them).

Every error the package raises on purpose derives from :class:`DA3Error`, and also from
the built-in exception a caller would naturally catch (``ValueError``, ``OSError``, ...),
so ``except ValueError`` keeps working for bad files and ``except DA3Error`` catches all.

The compiled core maps its C status codes onto these classes by one table (src/binding.cpp,
shown by ``status_exception`` of the core): INVALID_ARGUMENT -> ``ValueError``, IO ->
:class:`ModelLoadError` (:class:`ModelNotFoundError` when the OS says ENOENT/ENOTDIR; for the
GLB/COLMAP writers the ``OSError`` subclass of the errno), FORMAT and MISSING_TENSOR ->
:class:`ModelFormatError`, UNSUPPORTED -> :class:`UnsupportedError`, OUT_OF_MEMORY ->
``MemoryError``, BACKEND and INTERNAL -> :class:`BackendError`, NON_FINITE ->
:class:`NonFiniteOutputError`.
"""

from __future__ import annotations

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


class DA3Error(Exception):
    """Base class of every exception raised on purpose by depth_anything_cpp."""


class ModelFormatError(DA3Error, ValueError):
    """The model file is not a usable DA3 GGUF (bad magic, truncated, wrong
    architecture, missing or misshaped tensor, bad metadata)."""


class ModelLoadError(DA3Error, OSError):
    """The model could not be read or obtained (I/O error, download impossible,
    e.g. offline with nothing cached)."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """The model file (or path given to ``from_pretrained``) does not exist."""


class UnsupportedError(DA3Error, NotImplementedError):
    """The request is valid but not supported by this model or build (e.g. input
    poses on a model without a camera encoder, an unsupported tensor type)."""


class BackendError(DA3Error, RuntimeError):
    """The ggml compute backend failed (device lost, compute error, internal bug)."""


class NonFiniteOutputError(DA3Error, FloatingPointError):
    """An output of the network (depth, conf, sky, extrinsics, intrinsics, ray) holds NaN or
    inf; the message names it. The model's weights or metadata, or the input (images,
    poses), are invalid: no result is returned rather than a non-finite one."""


class VariantError(DA3Error, ImportError):
    """No compiled variant of the core can be loaded, or the requested one is not
    available on this machine."""


# shown (repr, tracebacks, pickling) under the public module that re-exports them
for _name in __all__:
    globals()[_name].__module__ = __name__.rpartition(".")[0] + ".errors"
del _name
