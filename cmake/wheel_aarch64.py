"""aarch64 wheel (manylinux_2_28_aarch64), cross-compiled with zig; an arm64 Python to run it.

    python cmake/wheel_aarch64.py wheel --out DIST [--build-dir build/aarch64] [--variants neon;dotprod;i8mm]
    python cmake/wheel_aarch64.py sysroot DIR [--site-packages numpy pillow ...]

``wheel`` cross-compiles every aarch64 CPU level of python/depth_anything_cpp/cpu_levels.json
(cmake/toolchains/zig-aarch64.cmake: zig's clang for glibc 2.28, libc++ static), strips the
modules and writes one wheel. ``sysroot`` makes an arm64 root without a root file system:
Debian's arm64 libc6, libstdc++ and python3.11 packages unpacked with ``dpkg -x`` (apt needs the
arm64 architecture: added here when missing), plus aarch64 wheels from pip unpacked into
DIR/site. Run programs with ``qemu-aarch64-static -L DIR``. ref: ../shared/docs/cross-build.md.
The functions are meant for cmake/build_wheels.py (``--arch aarch64``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_TAG = "manylinux_2_28_aarch64"
PY_TAG = "cp311"
SOABI = "cpython-311-aarch64-linux-gnu"
#: Debian bookworm arm64 packages: glibc, the C++ runtime numpy/Pillow need, python3.11 + headers
SYSROOT_DEBS = (
    "libc6 libgcc-s1 libstdc++6 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib zlib1g "
    "libexpat1 libffi8 libbz2-1.0 liblzma5 libssl3 libcrypt1 libuuid1 libsqlite3-0 libtinfo6 libncursesw6 "
    "libreadline8 libnsl2 libtirpc3 libdb5.3 libpython3.11-dev").split()


def _run(cmd: list, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def _ensure_arm64_apt() -> None:
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True,
                             check=True).stdout.split()
    if "arm64" not in foreign:
        _run(["dpkg", "--add-architecture", "arm64"])
        _run(["apt-get", "update", "-q"])


def make_sysroot(root: Path, site_packages: tuple[str, ...] | None = ("numpy", "pillow")) -> Path:
    """Unpack the arm64 runtime into ``root`` and aarch64 wheels (with their dependencies) into
    ``root/site``; returns root. ``site_packages=None`` leaves ``root/site`` as it is.

    Idempotent: stamp files record what is there. Needs dpkg/apt (Debian) and pip.
    """
    root = root.resolve()
    stamp = root / ".da3cpp-debs"
    if not stamp.exists() or stamp.read_text() != " ".join(SYSROOT_DEBS):
        _ensure_arm64_apt()
        debs = root / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", "download", *[f"{p}:arm64" for p in SYSROOT_DEBS]], cwd=debs)
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg", "-x", deb, root])
        shutil.rmtree(debs)
        stamp.write_text(" ".join(SYSROOT_DEBS))
    site, site_stamp = root / "site", root / ".da3cpp-site"
    if site_packages is None or (site_stamp.exists() and site_stamp.read_text() == " ".join(site_packages)):
        return root
    shutil.rmtree(site, ignore_errors=True)
    if site_packages:
        wheels = root / "wheels"
        _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
              "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
              "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
              "--platform", "manylinux_2_17_aarch64", "--platform", "any", "-d", wheels, *site_packages])
        for whl in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(whl) as z:
                z.extractall(site)
        shutil.rmtree(wheels)
    site_stamp.write_text(" ".join(site_packages))
    return root


def _strip_tool() -> str:
    for tool in ("llvm-strip", "aarch64-linux-gnu-strip"):
        if shutil.which(tool):
            return tool
    raise SystemExit("no strip for aarch64 ELF: apt-get install llvm or binutils-aarch64-linux-gnu "
                     "(zig objcopy cannot strip aarch64)")


def python_include(sysroot: Path, dest: Path) -> Path:
    """The arm64 Python headers alone in ``dest`` (Debian's pyconfig.h points into the multiarch
    folder, whose glibc headers must not mix with zig's glibc 2.28 ones)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(sysroot / "usr/include/python3.11", dest)
    shutil.copy2(sysroot / "usr/include/aarch64-linux-gnu/python3.11/pyconfig.h", dest / "pyconfig.h")
    return dest


def cross_build(build_dir: Path, sysroot: Path, variants: str, jobs: int) -> Path:
    """Configure, build and install (component python) into build_dir/stage; returns the package dir."""
    build_dir = build_dir.resolve()
    env = dict(os.environ, DA3CPP_AARCH64_SYSROOT=str(sysroot), CMAKE_BUILD_PARALLEL_LEVEL=str(jobs))
    inc = python_include(sysroot, build_dir / "python3.11-include")
    _run(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja",
          f"-DCMAKE_TOOLCHAIN_FILE={ROOT / 'cmake/toolchains/zig-aarch64.cmake'}",
          f"-DDA3CPP_VARIANTS={variants}", "-DDA3CPP_COPY_TO_SOURCE=OFF", "-DDA3CPP_GGML_OPENMP=OFF",
          f"-DPython_EXECUTABLE={sys.executable}", f"-DPython_INCLUDE_DIR={inc}",
          f"-DDA3_PYTHON_SOABI={SOABI}", "-DCMAKE_BUILD_TYPE=Release"], env=env)
    _run(["cmake", "--build", build_dir, "--parallel", str(jobs)], env=env)
    stage = build_dir / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    _run(["cmake", "--install", build_dir, "--component", "python", "--prefix", stage])
    pkg = stage / "depth_anything_cpp"
    strip = _strip_tool()
    for so in sorted(pkg.glob("*.so")):
        _run([strip, "--strip-unneeded", so])
    return pkg


def _metadata() -> tuple[str, str, str]:
    """(name, version, METADATA text) from pyproject.toml."""
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = ["Metadata-Version: 2.1", f"Name: {proj['name']}", f"Version: {proj['version']}",
             f"Summary: {proj['description']}", f"Requires-Python: {proj['requires-python']}",
             f"License: {proj['license']['text']}"]
    lines += [f"Requires-Dist: {d}" for d in proj.get("dependencies", [])]
    for extra, deps in proj.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    lines += ["Description-Content-Type: text/markdown", "", (ROOT / proj["readme"]).read_text()]
    return proj["name"], proj["version"], "\n".join(lines)


def make_wheel(built_pkg: Path, out: Path, platform_tag: str = PLATFORM_TAG, py_tag: str = PY_TAG) -> Path:
    """Write a wheel of python/depth_anything_cpp (sources, cpu_levels.json) plus the built modules."""
    name, version, metadata = _metadata()
    dist = name.replace("-", "_")
    tag = f"{py_tag}-{py_tag}-{platform_tag}"
    out.mkdir(parents=True, exist_ok=True)
    whl = out / f"{dist}-{version}-{tag}.whl"
    files: dict[str, bytes] = {}
    src = ROOT / "python/depth_anything_cpp"
    for f in sorted(src.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".so", ".pyc"):
            files[f"depth_anything_cpp/{f.relative_to(src).as_posix()}"] = f.read_bytes()
    for so in sorted(built_pkg.glob("*.so")):
        files[f"depth_anything_cpp/{so.name}"] = so.read_bytes()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    di = f"{dist}-{version}.dist-info"
    files[f"{di}/METADATA"] = metadata.encode()
    files[f"{di}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: depth-anything-cpp cmake/wheel_aarch64.py\n"
                            f"Root-Is-Purelib: false\nTag: {tag}\n").encode()
    files[f"{di}/entry_points.txt"] = ("[console_scripts]\n" + "".join(
        f"{k} = {v}\n" for k, v in scripts.items())).encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{di}/RECORD,,")
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return whl


def default_variants() -> str:
    """Every aarch64 level of cpu_levels.json, ';'-joined (the wheel's CPU variants)."""
    import json
    levels = json.loads((ROOT / "python/depth_anything_cpp/cpu_levels.json").read_text())["levels"]
    return ";".join(k for k, v in levels.items() if v["arch"] == "aarch64")


def build_wheel(out: Path, build_dir: Path, sysroot: Path, variants: str | None = None, jobs: int = 2) -> Path:
    """The whole aarch64 wheel: arm64 headers, cross build, strip, wheel. Returns the wheel path."""
    make_sysroot(sysroot, site_packages=None)  # the headers; site packages are for running only
    pkg = cross_build(build_dir, sysroot.resolve(), variants or default_variants(), jobs)
    return make_wheel(pkg, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wheel", help="cross-build the aarch64 wheel")
    w.add_argument("--out", type=Path, required=True, help="folder for the wheel")
    w.add_argument("--build-dir", type=Path, default=ROOT / "build/aarch64")
    w.add_argument("--sysroot", type=Path, default=Path.home() / ".cache/depth-anything-cpp/arm64-root")
    w.add_argument("--variants", default=None, help="';'-separated (default: every aarch64 CPU level)")
    w.add_argument("--jobs", type=int, default=int(os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", os.cpu_count() or 2)))
    s = sub.add_parser("sysroot", help="arm64 runtime + Python + aarch64 wheels for qemu-user")
    s.add_argument("dir", type=Path)
    s.add_argument("--site-packages", nargs="*", default=["numpy", "pillow"])
    a = ap.parse_args(argv)
    if a.cmd == "wheel":
        print(build_wheel(a.out, a.build_dir, a.sysroot, a.variants, a.jobs))
    else:
        print(make_sysroot(a.dir, tuple(a.site_packages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
