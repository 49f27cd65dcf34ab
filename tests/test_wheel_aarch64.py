"""cmake/wheel_aarch64.py: the wheel it writes (tags, contents, RECORD) and its level list.

The cross build itself and the emulated runs are .ci/aarch64.sh (minutes under qemu).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("wheel_aarch64", REPO / "cmake" / "wheel_aarch64.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_default_variants_are_the_aarch64_levels():
    levels = json.loads((REPO / "python/depth_anything_cpp/cpu_levels.json").read_text())["levels"]
    got = _module().default_variants().split(";")
    assert got == [k for k, v in levels.items() if v["arch"] == "aarch64"]
    assert got and all(levels[k]["zig_cpu"] and levels[k]["gcc_march"] for k in got)


def test_wheel_has_tag_modules_sources_and_a_valid_record(tmp_path):
    w = _module()
    built = tmp_path / "stage"
    built.mkdir()
    so = b"\x7fELF fake module"
    (built / f"_da3_cpu_neon.{w.SOABI}.so").write_bytes(so)
    whl = w.make_wheel(built, tmp_path / "dist")
    assert whl.name.endswith("-cp311-cp311-manylinux_2_28_aarch64.whl")
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        di = next(n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL"))
        assert f"depth_anything_cpp/_da3_cpu_neon.{w.SOABI}.so" in names
        assert {"depth_anything_cpp/__init__.py", "depth_anything_cpp/_variants.py",
                "depth_anything_cpp/cpu_levels.json"} <= names
        assert not any(n.endswith((".pyc", ".x86_64-linux-gnu.so")) for n in names)
        wheel_txt = z.read(f"{di}/WHEEL").decode()
        assert "Tag: cp311-cp311-manylinux_2_28_aarch64" in wheel_txt and "Root-Is-Purelib: false" in wheel_txt
        meta = z.read(f"{di}/METADATA").decode()
        assert "Requires-Dist: numpy>=1.22" in meta and "Name: depth-anything-cpp" in meta
        assert "da3cpp = depth_anything_cpp.cli:main" in z.read(f"{di}/entry_points.txt").decode()
        rows = list(csv.reader(io.StringIO(z.read(f"{di}/RECORD").decode())))
        listed = {r[0] for r in rows}
        assert listed == names
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                continue
            data = z.read(path)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={want}" and int(size) == len(data), path
