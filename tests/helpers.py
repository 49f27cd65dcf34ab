"""Small helpers shared by test modules (tests/ is on sys.path, see conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import PLATFORM_SKIP


def skip_platform(reason: str) -> None:
    """Skip a test that cannot apply to this processor or OS (kept a skip under
    DA3CPP_TEST_STRICT=1, where every other skip fails)."""
    pytest.skip(f"{PLATFORM_SKIP} {reason}")


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation (3, 3) float64 (QR of a Gaussian matrix, det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q
