"""Number checks shared by the API and the exporters (the message names the argument)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _finite(name: str, value: Any) -> float:
    """float(value), which must be a finite real number (ValueError naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


def check_count(name: str, value: Any, note: str = "", hi: int = 2**63 - 1) -> int:
    """int(value) for an integer count in [0, hi] (an integral float is accepted); raises
    ValueError naming ``name`` otherwise (NaN, inf, 1e300, fractions, bools, strings)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if ok and isinstance(value, (float, np.floating)):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    if not ok or not 0 <= int(value) <= hi:
        raise ValueError(f"{name}: expected an integer in [0, {hi}]{' ' + note if note else ''}, got {value!r}")
    return int(value)

