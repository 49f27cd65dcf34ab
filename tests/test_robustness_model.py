"""Bad model files: every broken GGUF raises a specific exception naming the file and the
problem, and no corrupt file crashes the process (fuzz, each load in a subprocess)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

import depth_anything_cpp  # noqa: E402
from depth_anything_cpp import DepthAnything3  # noqa: E402
from depth_anything_cpp.errors import (  # noqa: E402
    DA3Error,
    ModelFormatError,
    ModelNotFoundError,
    UnsupportedError,
)

# corrupt-file fuzz cases: a few hundred in CI, 5x more with DA3CPP_LONG_TESTS=1
N_FUZZ = 200 * (5 if os.environ.get("DA3CPP_LONG_TESTS") else 1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def layout(fixture_gguf):
    """(data_offset, {field name: offset}, {tensor name: (info offset, data offset, end)})."""
    r = gguf.GGUFReader(fixture_gguf)
    fields = {name: f.offset for name, f in r.fields.items()}
    tensors = {t.name: (t.field.offset, t.data_offset, t.data_offset + t.n_bytes) for t in r.tensors}
    return r.data_offset, fields, tensors


def data_end(layout) -> int:
    """End of the last tensor's data (the file may have alignment padding after it)."""
    return max(end for _, _, end in layout[2].values())


def rewrite(src: Path, dst: Path, *, arch: str | None = None, drop: tuple = (),
            tensors: dict | None = None, kv: dict | None = None) -> Path:
    """Copy the GGUF `src` to `dst` with changes: `arch` for general.architecture, tensors
    in `drop` left out, `tensors` {name: new array} replacing data (and so shape/type),
    `kv` {key: (value, GGUFValueType, sub_type)} replacing metadata."""
    r = gguf.GGUFReader(src)
    arch = arch or r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(str(dst), arch=arch)
    kv = dict(kv or {})
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
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


def check_raises(path: Path, exc_type, *needles: str):
    with pytest.raises(exc_type) as info:
        DepthAnything3.from_file(path, n_threads=1)
    msg = str(info.value)
    assert str(path.name) in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


# ---------------------------------------------------------------- not a model file at all

def test_missing_file(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        DepthAnything3.from_file(tmp_path / "nope.gguf")
    assert isinstance(info.value, FileNotFoundError)
    assert "nope.gguf" in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        DepthAnything3.from_file(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    check_raises(path, ModelFormatError)


def test_not_a_gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(1000))
    check_raises(path, ModelFormatError, "not a GGUF")


def test_core_rejects_bad_files(tmp_path):
    """The core itself (without the facade's pre-checks) maps the same cases."""
    from depth_anything_cpp.api import get_core

    core = get_core()
    with pytest.raises(FileNotFoundError):
        core.Model(str(tmp_path / "nope.gguf"))
    with pytest.raises(OSError, match="regular file"):
        core.Model(str(tmp_path))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + bytes(100))
    with pytest.raises(ModelFormatError, match="bad.gguf.*magic"):
        core.Model(str(bad))


# ---------------------------------------------------------------- truncations

@pytest.mark.parametrize("where", ["header", "metadata", "tensor_table", "tensor_data", "last_tensor"])
def test_truncated(tmp_path, fixture_gguf, layout, where):
    data_offset, fields, tensors = layout
    size = fixture_gguf.stat().st_size
    cut = {
        "header": 13,
        "metadata": fields["depthanything3.vit.depth"] + 5,
        "tensor_table": tensors["vit.pos_embed"][0] + 10,
        "tensor_data": data_offset + (size - data_offset) // 2,
        "last_tensor": data_end(layout) - 1,
    }[where]
    path = tmp_path / f"trunc_{where}.gguf"
    with open(fixture_gguf, "rb") as f:
        path.write_bytes(f.read(cut))
    msg = check_raises(path, ModelFormatError)
    assert "truncated" in msg or "corrupt" in msg, msg


# ---------------------------------------------------------------- well-formed GGUF, wrong content

def test_wrong_architecture(tmp_path, fixture_gguf):
    path = rewrite(fixture_gguf, tmp_path / "llama.gguf", arch="llama")
    check_raises(path, ModelFormatError, "architecture", "llama")


def test_missing_tensor(tmp_path, fixture_gguf):
    path = rewrite(fixture_gguf, tmp_path / "missing.gguf", drop=("vit.norm.weight",))
    check_raises(path, ModelFormatError, "vit.norm.weight")


def test_misshaped_tensor(tmp_path, fixture_gguf):
    path = rewrite(fixture_gguf, tmp_path / "shape.gguf",
                   tensors={"vit.cls_token": np.zeros(383, np.float32)})
    check_raises(path, ModelFormatError, "vit.cls_token", "shape")


def test_unsupported_tensor_type(tmp_path, fixture_gguf):
    path = rewrite(fixture_gguf, tmp_path / "i32.gguf",
                   tensors={"vit.cls_token": np.zeros(384, np.int32)})
    check_raises(path, UnsupportedError, "vit.cls_token", "type")


def test_out_layers_past_depth(tmp_path, fixture_gguf):
    VT = gguf.GGUFValueType
    path = rewrite(fixture_gguf, tmp_path / "layers.gguf",
                   kv={"depthanything3.vit.out_layers": ([5, 7, 9, 12], VT.ARRAY, VT.INT32)})
    check_raises(path, ModelFormatError, "out_layers")


def test_missing_metadata_key(tmp_path, fixture_gguf):
    VT = gguf.GGUFValueType
    # a string where an integer is required
    path = rewrite(fixture_gguf, tmp_path / "kv.gguf",
                   kv={"depthanything3.vit.embed_dim": ("384", VT.STRING, None)})
    check_raises(path, ModelFormatError, "embed_dim")


def test_zero_dimension_tensor_is_format_error(tmp_path, fixture_gguf, layout):
    """ggml 0.15's reader divides by a zero dimension (SIGFPE); the core must pre-check.
    Run in a subprocess so that a crash fails this test instead of killing pytest."""
    _, _, tensors = layout
    info_off = tensors["vit.patch_embed.weight"][0]
    path = tmp_path / "zero_dim.gguf"
    shutil.copyfile(fixture_gguf, path)
    with open(path, "r+b") as f:
        f.seek(info_off)
        name_len = int.from_bytes(f.read(8), "little")
        f.seek(info_off + 8 + name_len + 4 + 8)  # second dimension (ggml divides by it)
        f.write((0).to_bytes(8, "little"))
    proc = _run_worker(path, [{"kind": "none"}], 0)
    assert proc.returncode == 0, f"core crashed (rc {proc.returncode}): {proc.stderr[-500:]}"
    assert "ModelFormatError" in proc.stdout and "patch_embed" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- fuzz

_WORKER = r"""
import json, sys
from depth_anything_cpp.api import get_core
from depth_anything_cpp.errors import DA3Error
core = get_core()
work, cases, start = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
with open(work, "rb") as f:
    orig = f.read(65536)
for i in range(start, len(cases)):
    c = cases[i]
    with open(work, "r+b") as f:
        if c["kind"] == "flip":
            for off, val in c["bytes"]:
                f.seek(off); f.write(bytes([val]))
        elif c["kind"] == "trunc":
            f.truncate(c["size"])
    print("START", i, flush=True)
    try:
        core.Model(work, n_threads=1)
        res = "OK"
    except DA3Error as e:
        res = type(e).__name__ + ": " + str(e)
    except BaseException as e:
        res = "UNEXPECTED " + type(e).__name__ + ": " + str(e)
    print("RESULT", i, json.dumps(res), flush=True)
    if c["kind"] == "flip":
        with open(work, "r+b") as f:
            f.write(orig)
"""


def _run_worker(work: Path, cases: list, start: int) -> subprocess.CompletedProcess:
    cases_file = work.with_suffix(".cases.json")
    cases_file.write_text(json.dumps(cases))
    env = dict(os.environ)
    # the worker imports the very package this test imported (installed or a test build)
    pkg_root = str(Path(depth_anything_cpp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.run([sys.executable, "-c", _WORKER, str(work), str(cases_file), str(start)],
                          capture_output=True, text=True, errors="replace", env=env, timeout=600)


def _fuzz_cases(rng: random.Random, size: int, header_end: int, n: int) -> list:
    cases = []
    for _ in range(n * 3 // 4):  # byte changes in the header, metadata and tensor table
        changes = []
        for _ in range(rng.choice([1, 1, 2, 4])):
            off = rng.randrange(header_end if rng.random() < 0.9 else 65536)
            changes.append((off, rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])))
        cases.append({"kind": "flip", "bytes": changes})
    # truncations (`size` = end of the tensor data), longest first: the worker truncates one file further each time
    n_trunc = n - len(cases)
    sizes = {rng.randrange(8, header_end) for _ in range(n_trunc // 3)}
    while len(sizes) < n_trunc:
        sizes.add(rng.randrange(header_end, size))
    cases += [{"kind": "trunc", "size": s} for s in sorted(sizes, reverse=True)]
    return cases


def test_fuzz_corrupt_files_never_crash(tmp_path, fixture_gguf, layout):
    """N_FUZZ random corruptions of the fixture: each load ends in success or a DA3Error
    naming the file, never a signal (abort, segfault, SIGFPE) or another exception."""
    data_offset, _, _ = layout
    work = tmp_path / "fuzz.gguf"
    shutil.copyfile(fixture_gguf, work)
    os.chmod(work, 0o644)
    cases = _fuzz_cases(random.Random(1234), data_end(layout), data_offset, N_FUZZ)
    results, crashes, start = {}, [], 0
    while start < len(cases):
        proc = _run_worker(work, cases, start)
        pending = None
        for line in proc.stdout.splitlines():
            parts = line.split(" ", 2)
            if parts[0] == "START":
                pending = int(parts[1])
            elif parts[0] == "RESULT":
                results[int(parts[1])] = json.loads(parts[2])
                pending = None
        if proc.returncode == 0:
            break
        assert pending is not None, f"worker failed outside a load: {proc.stderr[-2000:]}"
        crashes.append((cases[pending], proc.returncode))
        with open(fixture_gguf, "rb") as src, open(work, "r+b") as dst:  # undo the byte changes
            dst.write(src.read(65536))
        start = pending + 1
    assert not crashes, f"{len(crashes)} corrupt files crashed the process, e.g. {crashes[:5]}"
    assert len(results) == len(cases)
    unexpected = {i: r for i, r in results.items() if r.startswith("UNEXPECTED")}
    assert not unexpected, list(unexpected.items())[:5]
    errors = [r for r in results.values() if r != "OK"]
    assert len(errors) > len(cases) // 2  # most corruptions must be detected
    assert all(work.name in r for r in errors), [r for r in errors if work.name not in r][:5]
    truncated = [results[i] for i, c in enumerate(cases) if c["kind"] == "trunc"]
    assert all(r.startswith("ModelFormatError") for r in truncated), truncated[:5]


def test_error_classes_are_da3_errors():
    assert issubclass(ModelFormatError, (DA3Error, ValueError))
    assert issubclass(UnsupportedError, DA3Error)
