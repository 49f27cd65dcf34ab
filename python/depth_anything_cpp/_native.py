"""Access to the compiled core module chosen at import (see :mod:`depth_anything_cpp._variants`)."""

from __future__ import annotations

import sys
from typing import Any, Optional

from .errors import VariantError


def get_core(variant: Optional[str] = None) -> Any:
    """Return the compiled core module.

    ``variant=None``: the one chosen at import (``DA3CPP_VARIANT`` or the best one this
    CPU runs, see :func:`depth_anything_cpp.backend_info`). A name (e.g. ``"cpu_avx2"``):
    that variant, overriding the environment.

    Raises:
        VariantError: no usable core, or the named variant is not built/runnable here.
    """
    from . import _variants

    if variant is None:
        pkg = sys.modules[__package__]
        core = getattr(pkg, "_core", None)
        if core is None:
            reason = getattr(pkg, "_core_reason", "unknown reason")
            raise VariantError(f"the compiled depth-anything core is not available: {reason}")
        return core
    if not isinstance(variant, str):
        raise TypeError(f"variant: expected str, got {type(variant).__name__}")
    return _variants.load_core(variant)[0]

