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
from helpers import rewrite_gguf as rewrite  # noqa: E402
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


def _resumable_results(run, n: int, on_crash) -> dict:
    """Runs worker processes over cases 0..n-1: run(start) runs cases from `start` and prints
    "START i" before and "RESULT i <json>" after each. A worker that dies in case i gets
    on_crash(i, proc) and a new worker from i + 1. Returns {i: result} of the cases that ended."""
    results, start = {}, 0
    while start < n:
        proc = run(start)
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
        on_crash(pending, proc)
        start = pending + 1
    return results


def test_fuzz_corrupt_files_never_crash(tmp_path, fixture_gguf, layout):
    """N_FUZZ random corruptions of the fixture: each load ends in success or a DA3Error
    naming the file, never a signal (abort, segfault, SIGFPE) or another exception."""
    data_offset, _, _ = layout
    work = tmp_path / "fuzz.gguf"
    shutil.copyfile(fixture_gguf, work)
    os.chmod(work, 0o644)
    cases = _fuzz_cases(random.Random(1234), data_end(layout), data_offset, N_FUZZ)
    crashes = []

    def on_crash(i: int, proc: subprocess.CompletedProcess) -> None:
        crashes.append((cases[i], proc.returncode))
        with open(fixture_gguf, "rb") as src, open(work, "r+b") as dst:  # undo the byte changes
            dst.write(src.read(65536))

    results = _resumable_results(lambda start: _run_worker(work, cases, start), len(cases), on_crash)
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


# ---------------------------------------------------------------- typed metadata, ranges, roles x types, non-finite
# Each file is built by a small raw GGUF writer (any value type, an empty key, a sparse tensor:
# what gguf.GGUFWriter refuses to write) and loaded in a subprocess, so that a crash fails the
# test instead of killing pytest. Every case: a clean DA3Error naming the key or tensor, or a
# model that infers correctly.

VT = gguf.GGUFValueType
QT = gguf.GGMLQuantizationType
_PACK = {VT.UINT8: "<B", VT.INT8: "<b", VT.UINT16: "<H", VT.INT16: "<h", VT.UINT32: "<I", VT.INT32: "<i",
         VT.FLOAT32: "<f", VT.BOOL: "<?", VT.UINT64: "<Q", VT.INT64: "<q", VT.FLOAT64: "<d"}
P = "depthanything3."


def _pack_value(vtype, value, sub=None) -> bytes:
    import struct

    if vtype == VT.STRING:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return struct.pack("<Q", len(raw)) + raw
    if vtype == VT.ARRAY:
        return struct.pack("<IQ", int(sub), len(value)) + b"".join(_pack_value(sub, v) for v in value)
    return struct.pack(_PACK[vtype], value)


class RawModel:
    """The fixture's metadata and tensors as editable lists, written as a raw GGUF v3 file.
    kv: [key, vtype, value, subtype]; tensors: [name, ne (ggml order), QT, bytes or int size]
    (an int writes a sparse hole of that many bytes)."""

    def __init__(self, src: Path):
        r = gguf.GGUFReader(src)
        self.kv = []
        for name, f in r.fields.items():
            if name.startswith("GGUF."):
                continue
            sub = f.types[1] if len(f.types) > 1 else None
            self.kv.append([name, f.types[0], f.contents(), sub])
        self.tensors = [[t.name, [int(d) for d in t.shape], t.tensor_type, bytes(np.asarray(t.data).tobytes())]
                        for t in r.tensors]

    def set(self, key, vtype, value, sub=None):
        for e in self.kv:
            if e[0] == key:
                e[1:] = [vtype, value, sub]
                return self
        self.kv.append([key, vtype, value, sub])
        return self

    def tensor(self, name):
        return next(t for t in self.tensors if t[0] == name)

    def values(self, name) -> np.ndarray:
        """A tensor's values as float32 (numpy order)."""
        _, ne, qt, data = self.tensor(name)
        shape = tuple(reversed(ne))
        if qt == QT.F32:
            return np.frombuffer(data, np.float32).reshape(shape).copy()
        if qt == QT.F16:
            return np.frombuffer(data, np.float16).astype(np.float32).reshape(shape)
        raise AssertionError(qt)

    def put(self, name, qt, values: np.ndarray):
        """Stores float32 `values` (numpy order) as type `qt`; returns the values as stored (float32)."""
        values = np.ascontiguousarray(values, np.float32)
        data = values if qt == QT.F32 else gguf.quants.quantize(values, qt)
        t = self.tensor(name)
        t[2], t[3] = qt, np.ascontiguousarray(data).tobytes()
        return values if qt == QT.F32 else gguf.quants.dequantize(data, qt).reshape(values.shape)

    def write(self, path: Path, alignment: int = 32) -> Path:
        import struct

        with open(path, "wb") as f:
            f.write(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
            for key, vtype, value, sub in self.kv:
                f.write(_pack_value(VT.STRING, key) + struct.pack("<I", int(vtype)) + _pack_value(vtype, value, sub))
            off = 0
            for name, ne, qt, data in self.tensors:
                f.write(_pack_value(VT.STRING, name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
                        + struct.pack("<IQ", int(qt), off))
                size = data if isinstance(data, int) else len(data)
                off += -(-size // alignment) * alignment
            f.seek(-(-f.tell() // alignment) * alignment)
            base = f.tell()
            off = 0
            for name, ne, qt, data in self.tensors:
                f.seek(base + off)
                if isinstance(data, int):
                    size = data
                else:
                    f.write(data)
                    size = len(data)
                off += -(-size // alignment) * alignment
            f.truncate(base + off)
        return path


@pytest.fixture(scope="module")
def raw_fixture(fixture_gguf):
    return RawModel(fixture_gguf)


@pytest.fixture
def raw(raw_fixture):
    import copy

    return copy.deepcopy(raw_fixture)


_CASE_WORKER = r"""
import json, re, sys
import numpy as np
from depth_anything_cpp.api import get_core
from depth_anything_cpp.errors import DA3Error
core = get_core()
cases, start = json.load(open(sys.argv[1])), int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 3, 56, 70)).astype(np.float32)
for i in range(start, len(cases)):
    c = cases[i]
    print("START", i, flush=True)
    try:
        m = core.Model(c["path"], n_threads=1)
        info = m.info()
        res = "OK"
        if c.get("infer"):
            out = m.infer_tensor(x)
            np.savez(c["infer"], **{k: np.asarray(v) for k, v in out.items() if isinstance(v, np.ndarray)})
        res = "OK " + json.dumps({"weights_bytes": info["weights_bytes"], "weights_read_bytes": info["weights_read_bytes"]})
    except DA3Error as e:
        res = type(e).__name__ + ": " + str(e)
    except BaseException as e:
        res = "UNEXPECTED " + type(e).__name__ + ": " + str(e)
    # VmHWM: this process's peak RSS (ru_maxrss would carry the forking pytest process's peak over exec)
    with open("/proc/self/status") as f:
        res += " MAXRSS_KB " + re.search(r"^VmHWM:\s*(\d+) kB", f.read(), re.M).group(1)
    print("RESULT", i, json.dumps(res), flush=True)
"""


def run_cases(tmp_path: Path, cases: list) -> list:
    """Loads each case {"path", "infer": npz path or None} in subprocesses (a new one after a
    crash); returns one result string per case ("OK {...}", "<ErrorClass>: message" or
    "CRASH rc=N"), each ending in " MAXRSS_KB n" but crashes."""
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases))
    env = dict(os.environ)
    pkg_root = str(Path(depth_anything_cpp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    results: dict = {}

    def on_crash(i: int, proc: subprocess.CompletedProcess) -> None:
        results[i] = f"CRASH rc={proc.returncode} stdout={proc.stdout[-300:]!r} stderr={proc.stderr[-500:]!r}"

    def run(start: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _CASE_WORKER, str(cases_file), str(start)],
                              capture_output=True, text=True, errors="replace", env=env, timeout=900)

    results.update(_resumable_results(run, len(cases), on_crash))
    return [results[i] for i in range(len(cases))]


def assert_errors(tmp_path, raw_fixture, variants: list, batch: int = 12):
    """variants: (label, edit(RawModel), error class name, needle or tuple of alternatives). Each
    edited fixture must fail to load with that class and a message naming the file and the
    needle. Files are written and removed in batches (each is a 60 MB copy)."""
    import copy

    bad = []
    for b0 in range(0, len(variants), batch):
        cases = []
        for i, (label, edit, _, _) in enumerate(variants[b0:b0 + batch], b0):
            m = copy.deepcopy(raw_fixture)
            edit(m)
            cases.append({"path": str(m.write(tmp_path / f"case{i}.gguf")), "infer": None})
        results = run_cases(tmp_path, cases)
        for (label, _, cls, needle), c, r in zip(variants[b0:b0 + batch], cases, results):
            needles = needle if isinstance(needle, tuple) else (needle,)
            if not (r.startswith(cls + ": ") and any(n in r for n in needles) and Path(c["path"]).name in r):
                bad.append((label, r[:400]))
            Path(c["path"]).unlink()
    assert not bad, f"{len(bad)} of {len(variants)} cases wrong:\n" + "\n".join(map(str, bad))


def test_raw_writer_round_trip(tmp_path, fixture_gguf, raw):
    """The raw writer reproduces the fixture byte for byte (so the cases below differ from it only
    by their edit)."""
    out = raw.write(tmp_path / "same.gguf")
    assert out.read_bytes() == fixture_gguf.read_bytes()


# integer keys: (key, a valid-typed but out-of-range value's needle) -- every integer key the loader reads
_INT_KEYS = ["vit.embed_dim", "vit.depth", "vit.num_heads", "vit.head_dim", "vit.mlp_hidden", "patch_size",
             "vit.alt_start", "vit.rope_start", "vit.qknorm_start", "vit.pos_embed_grid", "vit.num_register_tokens",
             "head.down_ratio"]
_FLOAT_KEYS = ["vit.rope_freq", "vit.ln_eps", "vit.interpolate_offset"]
_STR_KEYS = ["vit.ffn_type", "head.activation", "head.conf_activation"]


def test_metadata_of_wrong_gguf_types(tmp_path, raw_fixture):
    """Every key the loader reads, stored as a GGUF type it does not take: ModelFormatError naming
    the key (never a wrong value read through another type)."""
    v = []
    for key in _INT_KEYS:
        v += [(f"{key} string", lambda m, k=key: m.set(P + k, VT.STRING, "12"), "ModelFormatError", key),
              (f"{key} float", lambda m, k=key: m.set(P + k, VT.FLOAT32, 12.0), "ModelFormatError", key),
              (f"{key} bool", lambda m, k=key: m.set(P + k, VT.BOOL, True), "ModelFormatError", key),
              (f"{key} array", lambda m, k=key: m.set(P + k, VT.ARRAY, [12], VT.INT32), "ModelFormatError", key)]
    for key in _FLOAT_KEYS:
        v += [(f"{key} string", lambda m, k=key: m.set(P + k, VT.STRING, "0.1"), "ModelFormatError", key),
              (f"{key} bool", lambda m, k=key: m.set(P + k, VT.BOOL, True), "ModelFormatError", key),
              (f"{key} array", lambda m, k=key: m.set(P + k, VT.ARRAY, [0.1], VT.FLOAT32), "ModelFormatError", key)]
    for key in _STR_KEYS:
        v += [(f"{key} int", lambda m, k=key: m.set(P + k, VT.INT32, 1), "ModelFormatError", key)]
    v += [("out_layers scalar", lambda m: m.set(P + "vit.out_layers", VT.INT32, 5), "ModelFormatError", "out_layers"),
          ("out_layers floats", lambda m: m.set(P + "vit.out_layers", VT.ARRAY, [5.0, 7.0, 9.0, 11.0], VT.FLOAT32),
           "ModelFormatError", "out_layers"),
          ("img.std ints", lambda m: m.set(P + "img.std", VT.ARRAY, [1, 1, 1], VT.INT32), "ModelFormatError", "img.std"),
          ("img.mean string", lambda m: m.set(P + "img.mean", VT.STRING, "0.5"), "ModelFormatError", "img.mean"),
          ("cat_token string", lambda m: m.set(P + "vit.cat_token", VT.STRING, "yes"), "ModelFormatError", "cat_token"),
          ("cat_token 2", lambda m: m.set(P + "vit.cat_token", VT.INT32, 2), "ModelFormatError", "cat_token"),
          ("head.pos_embed float", lambda m: m.set(P + "head.pos_embed", VT.FLOAT32, 1.0), "ModelFormatError",
           "head.pos_embed")]
    assert_errors(tmp_path, raw_fixture, v)


def test_integer_metadata_ranges(tmp_path, raw_fixture):
    """Negative, zero, huge and 2^32 + x values (each GGUF integer width) are range-checked as
    int64 before any narrowing, and checked against the tensors: ModelFormatError naming the key."""
    big = [("u64 2^32+12", VT.UINT64, 2**32 + 12), ("i64 2^32+12", VT.INT64, 2**32 + 12),
           ("u64 max", VT.UINT64, 2**64 - 1), ("i64 min", VT.INT64, -2**63), ("i32 max", VT.INT32, 2**31 - 1),
           ("i32 min", VT.INT32, -2**31)]
    v = []
    for key in _INT_KEYS:
        for label, vt, val in big:
            cls, needle = "ModelFormatError", key
            if key == "vit.num_register_tokens" and 0 < val < 2**31:
                cls, needle = "UnsupportedError", "register tokens"  # in range, but not supported
            v.append((f"{key} {label}", lambda m, k=key, t=vt, x=val: m.set(P + k, t, x), cls, needle))
    # in range but inconsistent with the tensors: the error names the key or the tensor it contradicts
    for key, vals in {"vit.embed_dim": [0, -384, 383], "vit.depth": [0, -1, 6, 13], "vit.num_heads": [0, -6, 5],
                      "vit.pos_embed_grid": [0, -37, 36, 2147483611], "vit.head_dim": [0, 32],
                      "vit.mlp_hidden": [0, 1535], "vit.alt_start": [-2, 12], "vit.rope_start": [-2, 12],
                      "vit.qknorm_start": [12], "head.down_ratio": [0, -1, 2, 3, 15, 2**30], "patch_size": [0, 16]}.items():
        for val in vals:
            needle = {("vit.depth", 13): "vit.blk.12", ("vit.num_heads", 5): "num_heads",
                      ("vit.pos_embed_grid", 36): "vit.pos_embed", ("vit.mlp_hidden", 1535): "mlp_fc1"}.get((key, val), key)
            v.append((f"{key} {val}", lambda m, k=key, x=val: m.set(P + k, VT.INT32, x), "ModelFormatError", needle))
    v += [("out_layers u64 2^63", lambda m: m.set(P + "vit.out_layers", VT.ARRAY, [5, 7, 9, 2**63], VT.UINT64),
           "ModelFormatError", "out_layers"),
          ("out_layers 2^32+11", lambda m: m.set(P + "vit.out_layers", VT.ARRAY, [5, 7, 9, 2**32 + 11], VT.INT64),
           "ModelFormatError", "out_layers"),
          ("register tokens", lambda m: m.set(P + "vit.num_register_tokens", VT.UINT32, 4), "UnsupportedError",
           "register tokens"),
          ("unknown activation", lambda m: m.set(P + "head.activation", VT.STRING, "gelu"), "UnsupportedError",
           "head.activation"),
          ("unknown conf activation", lambda m: m.set(P + "head.conf_activation", VT.STRING, "\xff\x00"),
           "UnsupportedError", "head.conf_activation"),
          ("unknown ffn", lambda m: m.set(P + "vit.ffn_type", VT.STRING, "moe"), "ModelFormatError", "ffn_type")]
    assert_errors(tmp_path, raw_fixture, v)


def test_float_metadata_must_be_finite_and_in_range(tmp_path, raw_fixture):
    nan, inf = float("nan"), float("inf")
    v = []
    for key, vals in {"vit.ln_eps": [nan, -1.0, 0.0, inf], "vit.rope_freq": [0.0, nan, -100.0, inf],
                      "vit.interpolate_offset": [nan, inf, -0.5, 2.0]}.items():
        for val in vals:
            v.append((f"{key} {val}", lambda m, k=key, x=val: m.set(P + k, VT.FLOAT32, x), "ModelFormatError", key))
    v.append(("ln_eps f64 1e300", lambda m: m.set(P + "vit.ln_eps", VT.FLOAT64, 1e300), "ModelFormatError", "ln_eps"))
    for key, vals in {"img.std": [1e-38, 0.0, nan, inf, -0.2], "img.mean": [nan, inf, -inf, 1e30]}.items():
        for val in vals:
            v.append((f"{key} {val}", lambda m, k=key, x=val: m.set(P + k, VT.ARRAY, [0.4, x, 0.4], VT.FLOAT32),
                      "ModelFormatError", key))
    assert_errors(tmp_path, raw_fixture, v)


def test_inputs_that_reach_ggml_reader_asserts(tmp_path, raw_fixture):
    """ggml's GGUF reader aborts on general.alignment of a type other than UINT32 and on an empty
    key; the pre-scan rejects those and the other inputs it would mishandle."""
    A = "general.alignment"
    v = [(f"alignment {t.name}", lambda m, t=t, x=x: m.set(A, t, x), "ModelFormatError", A)
         for t, x in [(VT.INT32, 32), (VT.STRING, "32"), (VT.UINT64, 32), (VT.UINT16, 32), (VT.FLOAT32, 32.0),
                      (VT.BOOL, True)]]
    v += [("alignment array", lambda m: m.set(A, VT.ARRAY, [32, 32], VT.UINT32), "ModelFormatError", A),
          ("alignment 0", lambda m: m.set(A, VT.UINT32, 0), "ModelFormatError", A),
          ("alignment 48", lambda m: m.set(A, VT.UINT32, 48), "ModelFormatError", A),
          ("empty key", lambda m: m.set("", VT.UINT32, 1), "ModelFormatError", "empty key"),
          ("duplicate key", lambda m: m.kv.append(list(m.kv[3])), "ModelFormatError", "duplicate"),
          ("duplicate tensor", lambda m: m.tensors.append(list(m.tensors[-1])), "ModelFormatError", "duplicate")]
    assert_errors(tmp_path, raw_fixture, v)


# tensor roles: norm weight, bias, layer scale, cls token, camera token (2-D), position embedding,
# a head convolution (4-D) -- each in F16, BF16 and Q8_0 (rows of 32: not the 3-wide conv rows)
_ROLES = ["vit.norm.weight", "vit.blk.0.attn_qkv.bias", "vit.blk.5.norm1.bias", "vit.blk.2.ls1", "vit.cls_token",
          "vit.camera_token", "vit.pos_embed", "head.scratch.out1.weight", "cam.fc_t.bias", "head.norm.weight"]


def test_tensor_roles_in_every_type_load_and_infer_exactly(tmp_path, raw):
    """Norms, biases, layer scales, tokens, position embedding and convolutions stored as F16,
    BF16 or Q8_0 (values valid) load and infer exactly like an f32 file holding the same values;
    the matmul weights (the types the GEMMs take) keep their type and infer finite values."""
    import copy

    ref, var = copy.deepcopy(raw), raw
    for i, name in enumerate(_ROLES):
        qt = [QT.F16, QT.BF16, QT.Q8_0][i % 3]
        if qt == QT.Q8_0 and raw.tensor(name)[1][0] % 32:
            qt = QT.BF16
        vals = var.put(name, qt, raw.values(name))
        ref.put(name, QT.F32, vals)
    mixed = copy.deepcopy(raw)
    mixed.put("vit.blk.0.mlp_fc1.weight", QT.BF16, raw.values("vit.blk.0.mlp_fc1.weight"))
    mixed.put("vit.blk.1.attn_qkv.weight", QT.Q8_0, raw.values("vit.blk.1.attn_qkv.weight"))
    mixed.put("cam.fc_q.weight", QT.Q8_0, raw.values("cam.fc_q.weight"))
    cases = [{"path": str(m.write(tmp_path / f"{n}.gguf")), "infer": str(tmp_path / f"{n}.npz")}
             for n, m in [("ref", ref), ("var", var), ("mixed", mixed)]]
    results = run_cases(tmp_path, cases)
    assert all(r.startswith("OK") for r in results), results
    a, b, c = (np.load(case["infer"]) for case in cases)
    assert set(a.files) == set(b.files) and "depth" in a.files
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert np.isfinite(c[k]).all(), k


def test_non_finite_weights_rejected_at_load(tmp_path, raw_fixture):
    """NaN or inf in f32, f16, bf16 data or a Q8_0 block scale: ModelFormatError naming the tensor."""

    def poke(name, qt, value, index=7):
        def edit(m):
            vals = m.values(name).reshape(-1).copy()
            if qt == QT.Q8_0:
                m.put(name, qt, vals.reshape(m.values(name).shape))
                data = bytearray(m.tensor(name)[3])
                data[34 * 3: 34 * 3 + 2] = np.array([value], np.float16).tobytes()  # scale of block 3
                m.tensor(name)[3] = bytes(data)
                return
            vals[index] = value
            m.put(name, qt, vals.reshape(m.values(name).shape))
        return edit

    nan, inf = float("nan"), float("inf")
    v = [("f32 norm nan", poke("vit.blk.3.norm1.weight", QT.F32, nan), "vit.blk.3.norm1.weight"),
         ("f32 pos_embed inf", poke("vit.pos_embed", QT.F32, -inf), "vit.pos_embed"),
         ("f32 conv nan", poke("head.scratch.out2b.weight", QT.F32, nan), "head.scratch.out2b.weight"),
         ("f16 matmul inf", poke("vit.blk.2.attn_qkv.weight", QT.F16, inf), "vit.blk.2.attn_qkv.weight"),
         ("f16 matmul nan", poke("cam.bb0.weight", QT.F16, nan), "cam.bb0.weight"),
         ("bf16 matmul nan", poke("vit.blk.4.mlp_fc2.weight", QT.BF16, nan), "vit.blk.4.mlp_fc2.weight"),
         ("f16 bias inf", poke("vit.blk.1.mlp_fc1.bias", QT.F16, inf), "vit.blk.1.mlp_fc1.bias"),
         ("q8_0 scale nan", poke("vit.blk.6.attn_proj.weight", QT.Q8_0, nan), "vit.blk.6.attn_proj.weight"),
         ("q8_0 scale inf", poke("vit.norm.bias", QT.Q8_0, inf), "vit.norm.bias")]
    assert_errors(tmp_path, raw_fixture, [(label, e, "ModelFormatError", needle) for label, e, needle in v])


def test_shapes_checked_before_data_is_read_and_unused_tensors_skipped(tmp_path, raw):
    """A wrong-shaped 842 MB tensor is rejected before its data is read; an unused 1 GiB tensor
    is neither allocated nor read (both sparse files: the process stays far below their size)."""
    import copy

    misshaped = copy.deepcopy(raw)
    t = misshaped.tensor("vit.pos_embed")
    t[1], t[3] = [384, 548_000], 384 * 548_000 * 4  # 842 MB, sparse
    unused = copy.deepcopy(raw)
    unused.tensors.append(["extra.unused_blob", [1 << 28], QT.F32, 1 << 30])  # 1 GiB, sparse
    results = run_cases(tmp_path, [{"path": str(misshaped.write(tmp_path / "misshaped.gguf")), "infer": None},
                                   {"path": str(unused.write(tmp_path / "unused.gguf")), "infer": None}])
    rss = [int(r.rsplit(" MAXRSS_KB ", 1)[1]) * 1024 for r in results]
    assert results[0].startswith("ModelFormatError: ") and "vit.pos_embed" in results[0], results[0]
    assert results[1].startswith("OK "), results[1]
    sizes = json.loads(results[1].split(" ", 1)[1].rsplit(" MAXRSS_KB ", 1)[0])
    fixture_bytes = sum(len(t[3]) for t in raw.tensors)
    assert sizes["weights_read_bytes"] == fixture_bytes
    assert sizes["weights_bytes"] < fixture_bytes + (1 << 20)
    assert max(rss) < 600 << 20, rss
