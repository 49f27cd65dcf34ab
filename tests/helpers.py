"""Small helpers shared by test modules (tests/ is on sys.path, see conftest.py)."""

from __future__ import annotations

from pathlib import Path

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


def rewrite_gguf(src: Path, dst: Path, *, arch: str | None = None, drop: tuple = (),
                 tensors: dict | None = None, kv: dict | None = None, drop_kv: tuple = ()) -> Path:
    """Copy the GGUF `src` to `dst` with changes: `arch` for general.architecture, tensors
    in `drop` left out, `tensors` {name: new array} replacing data (and so shape/type),
    `kv` {key: (value, GGUFValueType, sub_type)} replacing metadata, keys in `drop_kv` left out."""
    import gguf  # noqa: PLC0415 (tests that use this importorskip it)

    r = gguf.GGUFReader(src)
    arch = arch or r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(str(dst), arch=arch)
    kv = dict(kv or {})
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in drop_kv:
            continue
        if name in kv:
            w.add_key_value(name, *kv.pop(name))
            continue
        sub = field.types[1] if len(field.types) > 1 else None
        w.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    for name, args in kv.items():
        w.add_key_value(name, *args)
    for t in r.tensors:
        if t.name in drop:
            continue
        if tensors and t.name in tensors:
            w.add_tensor(t.name, tensors[t.name])
        else:
            w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst
