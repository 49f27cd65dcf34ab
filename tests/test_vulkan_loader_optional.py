"""The Vulkan loader is optional at run time (issue #22): the installed package (wheel or source
build) imports and runs on the CPU on a machine without ``libvulkan.so.1``.

The Vulkan module is linked without the loader (no DT_NEEDED; cmake/Da3Ggml.cmake) and
_variants.py loads the system's loader before importing it. The test hides the real loader from
a child process: in a private mount namespace (``unshare``, user namespaces) every file that
``libvulkan.so.1`` resolves to is covered by ``/dev/null``, so the dynamic linker cannot load it,
exactly as on a machine without it. The child then imports the package, picks a variant, runs
the model on the fixture, and asks for the Vulkan variant explicitly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from depth_anything_cpp import _variants
from helpers import skip_platform

SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURE = SHARED / "fixtures" / "da3-small-anchor-layout" / "da3-small-rand-f16.gguf"
LOADER = "libvulkan.so.1"

needs_vulkan = pytest.mark.skipif("vulkan" not in _variants.available_variants(),
                                  reason="vulkan variant not in this build")


def _module_path(variant: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(f"depth_anything_cpp.{_variants._VARIANTS[variant][0]}")
    assert spec is not None and spec.origin
    return Path(spec.origin)


def _elf_dynamic(path: Path) -> tuple[list[str], list[str]]:
    """(DT_NEEDED entries, defined global dynamic symbols) of an ELF shared object."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    needed, exported = [], []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                needed += [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
            elif sec.name == ".dynsym":
                exported += [s.name for s in sec.iter_symbols()
                             if s.name and s["st_shndx"] != "SHN_UNDEF"
                             and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")]
    return needed, exported


def _loader_files() -> list[str]:
    """Every real file the dynamic linker could open for libvulkan.so.1 here."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    paths = {line.split("=>")[-1].strip() for line in out.splitlines() if line.strip().startswith(LOADER)}
    for d in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if d and (Path(d) / LOADER).exists():
            paths.add(str(Path(d) / LOADER))
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


_CHILD = r"""
import ctypes, json, sys
import numpy as np
import depth_anything_cpp as d
from depth_anything_cpp.errors import VariantError
out = {}
try:
    ctypes.CDLL("libvulkan.so.1")
    out["loader_loadable"] = True
except OSError:
    out["loader_loadable"] = False
info = d.backend_info()
out.update(chosen=info["chosen"], reason=info["reason"], variants=info["variants"])
rng = np.random.default_rng(0)
img = (rng.random((70, 98, 3)) * 255).astype(np.uint8)
with d.DepthAnything3.from_file(sys.argv[1], n_threads=2) as m:
    depth = m.inference([img], process_res=98).depth
out.update(depth_shape=list(depth.shape), depth_finite=bool(np.isfinite(depth).all()))
try:
    d.DepthAnything3.from_file(sys.argv[1], variant="vulkan")
    out["explicit_vulkan"] = "loaded"
except VariantError as exc:
    out["explicit_vulkan"] = str(exc)
out["maps_vulkan"] = "libvulkan" in open("/proc/self/maps").read()
print(json.dumps(out))
"""


@needs_vulkan
def test_vulkan_module_links_no_loader_and_hides_ggml():
    if not sys.platform.startswith("linux"):
        skip_platform("the loader is resolved at run time on Linux only")
    needed, exported = _elf_dynamic(_module_path("vulkan"))
    assert not [n for n in needed if "vulkan" in n], needed
    assert "PyInit__da3_vulkan" in exported
    # ggml, gguf and our code stay inside (the wheel's modules export PyInit_* alone:
    # cmake/build_wheels.py checks that; GCC builds also export libstdc++ template instances)
    leaked = [s for s in exported if not s.startswith("PyInit_")
              and (s.startswith(("ggml", "gguf", "vk")) or "da3" in s.lower())]
    assert not leaked, leaked[:10]


@needs_vulkan
def test_package_runs_on_cpu_without_vulkan_loader(tmp_path):
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        skip_platform("needs Linux with unshare (util-linux) to hide the Vulkan loader")
    if not FIXTURE.is_file():
        pytest.skip(f"fixture missing: {FIXTURE}")
    files = _loader_files()
    if not files:
        skip_platform(f"no {LOADER} installed here: nothing to hide")
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        skip_platform(f"user + mount namespaces unavailable: {probe.stderr.strip()}")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    hide = " && ".join(f"mount --bind /dev/null '{p}'" for p in files)
    env = {k: v for k, v in os.environ.items() if k != "DA3CPP_VARIANT"}
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", f'{hide} && exec "$0" "$@"', sys.executable, str(script),
                        str(FIXTURE)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["loader_loadable"] is False, res  # the loader really is gone for the child
    assert "vulkan" in res["variants"], res
    assert res["chosen"] is not None and res["chosen"] != "vulkan", res
    assert _variants._VARIANTS[res["chosen"]][1] == "cpu", res
    assert LOADER in res["reason"], res  # the note says why the Vulkan variant was skipped
    assert res["depth_shape"][0] == 1 and res["depth_finite"], res
    assert "needs the system's Vulkan loader" in res["explicit_vulkan"], res
    assert res["maps_vulkan"] is False, res
