"""Choice of the compiled core variant at import time.

The wheel carries one extension module per build variant, all built from the same sources:

=============  =====================  =========================================================
variant        module                 needs
=============  =====================  =========================================================
cuda           ``_da3_cuda``          an NVIDIA GPU (+ the GPU level's CPU: AVX2 on x86, dotprod
                                      on aarch64); optional build
vulkan         ``_da3_vulkan``        a Vulkan GPU (+ the same CPU level); CPU-type Vulkan
                                      devices (lavapipe) only when requested explicitly
native         ``_da3_native``        developer build for the build machine (preferred if present)
cpu_avx512     ``_da3_cpu_avx512``    AVX-512 F/CD/VL/DQ/BW + VNNI (skylake-x/cascadelake level)
cpu_avx2       ``_da3_cpu_avx2``      AVX AVX2 FMA F16C BMI2 (haswell level)
cpu_x64        ``_da3_cpu_x64``       any x86-64 CPU
cpu_i8mm       ``_da3_cpu_i8mm``      aarch64: dotprod + i8mm + bf16 (Graviton 3/4, Grace)
cpu_dotprod    ``_da3_cpu_dotprod``   aarch64: Armv8.2 + dotprod (Jetson Orin, Graviton 2, Pi 5)
cpu_neon       ``_da3_cpu_neon``      any aarch64 CPU (Armv8.0 NEON)
=============  =====================  =========================================================

The levels (features required, compile flags) are written once, in ``cpu_levels.json``.
Order of choice: ``DA3CPP_VARIANT`` (a name above, or a level such as ``avx2``, ``dotprod``, ``cpu`` for
the best CPU variant, ``auto``); else a GPU variant whose device probe finds a real GPU; else
the highest CPU level this processor and OS support. CPU support is decided by ``_cpuprobe``,
a module compiled for the baseline (x86-64: cpuid + xgetbv; aarch64 Linux: HWCAP/HWCAP2 from
getauxval), never by importing a module that could execute unsupported instructions.

On Linux the Vulkan module is linked without the Vulkan loader: :func:`load_core` loads the
system's ``libvulkan.so.1`` (process-wide, as a linked library would be) before importing it.
Where no loader is installed the Vulkan variant is skipped with a note and a CPU variant runs.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import VariantError

__all__ = [
    "available_variants",
    "choose_variant",
    "load_core",
    "backend_info",
    "cpu_features",
    "default_threads",
]

_PKG = __name__.rpartition(".")[0]


def _load_levels() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """CPU levels and GPU variants' level per architecture, from cpu_levels.json (also read by
    cmake/Da3Variants.cmake, which compiles each level)."""
    table = json.loads(Path(__file__).with_name("cpu_levels.json").read_text())
    return table["levels"], table["gpu_level"]


_LEVELS, _GPU_LEVEL = _load_levels()
_ARCH_OF_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
_PROBE_ARCH = {"x86": "x86_64", "aarch64": "aarch64"}  # _cpuprobe.arch -> cpu_levels.json arch


def _this_arch() -> str:
    return _ARCH_OF_MACHINE.get(platform.machine().lower(), platform.machine().lower())


# name -> (module, kind, CPU level its code needs; "gpu" = the GPU level of this architecture).
# Order = preference: GPU variants, native, then each architecture's levels highest first.
_VARIANTS: dict[str, tuple[str, str, str]] = {
    "cuda": ("_da3_cuda", "gpu", "gpu"),
    "vulkan": ("_da3_vulkan", "gpu", "gpu"),
    "native": ("_da3_native", "cpu", "native"),
    **{f"cpu_{lv}": (f"_da3_cpu_{lv}", "cpu", lv) for lv in reversed(list(_LEVELS))},
}
_ALIASES = {lv: f"cpu_{lv}" for lv in _LEVELS}

_ENV = "DA3CPP_VARIANT"

# system library a variant's module resolves its symbols from without linking it (Linux; see
# cmake/Da3Ggml.cmake): loaded with RTLD_GLOBAL before the module is imported
_RUNTIME_LIBS: dict[str, str] = {"vulkan": "libvulkan.so.1"}


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[str, dict[str, bool], str]:
    """(arch, features, cpu name) from the baseline-compiled probe; arch as in cpu_levels.json."""
    try:
        probe = importlib.import_module(f"{_PKG}._cpuprobe")
    except ImportError:  # no probe (broken install): no feature beyond each baseline
        return _this_arch(), {}, ""
    return _PROBE_ARCH.get(probe.arch, probe.arch), dict(probe.features()), probe.cpu_name()


def cpu_features() -> list[str]:
    """Sorted names of the ISA extensions this CPU and OS support (x86 cpuid, aarch64 Linux
    HWCAP; else [])."""
    return sorted(k for k, v in _probe()[1].items() if v and not k.startswith("os"))


def _missing_features(variant: str) -> list[str]:
    """CPU features `variant` needs that this processor/OS lacks ([] = it can run here)."""
    arch, feats, _ = _probe()
    level = _VARIANTS[variant][2]
    if level == "gpu":
        level = _GPU_LEVEL.get(arch, "native")
    if level == "native":  # built for the build machine
        return []
    if _LEVELS[level]["arch"] != arch:
        return [f"{_LEVELS[level]['arch']} {level}"]
    return [f for f in _LEVELS[level]["requires"] if not feats.get(f, False)]


def _present(variant: str) -> bool:
    try:
        return importlib.util.find_spec(f"{_PKG}.{_VARIANTS[variant][0]}") is not None
    except (ImportError, ValueError):
        return False


def available_variants() -> list[str]:
    """Variants whose module is in this installation, in order of preference.

    Includes variants this CPU cannot run; :func:`choose_variant` skips those.
    """
    return [v for v in _VARIANTS if _present(v)]


def _load_runtime_lib(variant: str) -> None:
    lib = _RUNTIME_LIBS.get(variant)
    if lib is None or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(lib, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    except OSError as exc:
        raise VariantError(f"variant {variant!r} needs the system's Vulkan loader {lib} (Debian/Ubuntu "
                           f"package libvulkan1, with a GPU driver), which cannot be loaded: {exc}") from exc


def _import(variant: str) -> ModuleType:
    _load_runtime_lib(variant)
    try:
        return importlib.import_module(f"{_PKG}.{_VARIANTS[variant][0]}")
    except ImportError as exc:
        raise VariantError(f"variant {variant!r} is installed but failed to load: {exc}") from exc


def _usable_text(avail: list[str]) -> str:
    usable = [v for v in avail if not _missing_features(v)]
    return f"available here: {', '.join(usable) or 'none'}"


def _requested(raw: str, reason: str = "") -> tuple[str, str]:
    name = _ALIASES.get(raw, raw)
    avail = available_variants()
    reason = reason or f"{_ENV}={raw}"
    if name == "cpu":
        for v in avail:
            if _VARIANTS[v][1] == "cpu" and not _missing_features(v):
                return v, reason
        raise VariantError(f"{reason}: no CPU variant can run here ({_usable_text(avail)})")
    if name not in _VARIANTS:
        raise VariantError(
            f"{reason}: unknown variant; known: {', '.join(list(_VARIANTS) + ['cpu', 'auto'])}; "
            f"{_usable_text(avail)}")
    if name not in avail:
        raise VariantError(f"{reason}: variant {name!r} is not in this installation; {_usable_text(avail)}")
    missing = _missing_features(name)
    if missing:
        raise VariantError(
            f"{reason}: variant {name!r} needs CPU features this processor/OS lacks "
            f"({', '.join(missing)}); {_usable_text(avail)}")
    return name, reason


def _gpu_probe(variant: str) -> tuple[bool, str]:
    """Does `variant` see a real (non CPU-type) GPU? Returns (found, note)."""
    try:
        devices = _import(variant).devices()
    except Exception as exc:  # a broken driver must not break import: fall back to CPU
        return False, f"{variant}: {exc}"
    gpus = [d for d in devices if d.get("is_gpu")]
    if gpus:
        return True, f"{variant}: GPU {gpus[0].get('description') or gpus[0].get('name')}"
    return False, f"{variant}: no GPU device"


def choose_variant() -> tuple[str, str]:
    """Pick the variant to load: ``(name, reason)``.

    Raises:
        VariantError: ``DA3CPP_VARIANT`` names an unknown variant, one not in this
            installation, or one this CPU cannot run; or no variant can run at all.
    """
    raw = os.environ.get(_ENV, "").strip().lower()
    if raw and raw != "auto":
        return _requested(raw)
    avail = available_variants()
    notes = []
    for v in avail:
        if _VARIANTS[v][1] != "gpu" or _missing_features(v):
            continue
        found, note = _gpu_probe(v)
        if found:
            return v, f"GPU found ({note})"
        notes.append(note)
    for v in avail:
        if _VARIANTS[v][1] == "cpu" and not _missing_features(v):
            why = "developer build for this machine" if v == "native" else "best CPU level this processor supports"
            if notes:
                why += "; " + "; ".join(notes)
            return v, why
    raise VariantError(f"no usable variant of the compiled core in this installation "
                       f"(installed: {', '.join(avail) or 'none'}; CPU features: {', '.join(cpu_features())})")


_loaded: dict[str, tuple[ModuleType, str]] = {}


def load_core(variant: str | None = None) -> tuple[ModuleType, str]:
    """Import a variant: ``(module, reason)`` (cached per variant).

    ``variant=None``: the one :func:`choose_variant` picks. A name (``"cpu_avx2"``, or an
    alias such as ``"avx2"``, ``"cpu"``): that one, checked as ``DA3CPP_VARIANT`` would be.

    Raises:
        VariantError: as :func:`choose_variant`, or the module fails to import.
    """
    if variant is None:
        name, reason = choose_variant()
    else:
        name, reason = _requested(variant.strip().lower(), f"variant={variant!r}")
    if name not in _loaded:
        _loaded[name] = (_import(name), reason)
    return _loaded[name][0], reason


def default_threads() -> int:
    """Physical cores available to this process (affinity mask and cgroup quota), >= 1."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for c in cpus:
        try:
            topo = f"/sys/devices/system/cpu/cpu{c}/topology/"
            with open(topo + "physical_package_id") as f1, open(topo + "core_id") as f2:
                cores.add((f1.read().strip(), f2.read().strip()))
        except OSError:
            cores.add(("cpu", str(c)))
    n = len(cores)
    try:  # cgroup v2 CPU quota, e.g. "200000 100000" = 2 CPUs
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


def backend_info() -> dict[str, Any]:
    """What runs here: a dict for ``da3cpp info`` and bug reports.

    Keys: ``variants`` (list[str], installed), ``chosen`` (str | None), ``reason`` (str),
    ``module`` (str | None), ``ggml_version`` (str | None), ``devices`` (list[dict] from the
    chosen module), ``build`` (dict of str: how the chosen module was compiled: ``isa_level``,
    ``isa_flags``, ``isa_features``, ``reduced_precision`` -- empty when every matrix product
    accumulates in f32 -- ``ggml_features`` and ``bf16_engines``, the bf16 engines compiled in
    for ``precision="bf16"``), ``threads`` (int, default thread count =
    physical cores), ``cpu`` (str), ``cpu_features`` (list[str]), ``cpu_matrix_engines``
    (list[str], the chosen module's reduced-precision engines usable here, best first:
    ``"amx_bf16"``, ``"avx512_bf16"``; empty: ``precision="bf16"`` runs f32). Never raises for a
    missing/broken core: ``chosen`` is None and ``reason`` says why.
    """
    info: dict[str, Any] = {
        "variants": available_variants(),
        "chosen": None,
        "reason": "",
        "module": None,
        "ggml_version": None,
        "devices": [],
        "build": {},
        "threads": default_threads(),
        "cpu": _probe()[2],
        "cpu_features": cpu_features(),
        "cpu_matrix_engines": [],
    }
    try:
        core, reason = load_core()
    except VariantError as exc:
        info["reason"] = str(exc)
        return info
    info.update(chosen=core.variant(), reason=reason, module=core.__name__,
                ggml_version=core.ggml_version(), devices=list(core.devices()), build=dict(core.build_info()),
                cpu_matrix_engines=list(core.cpu_matrix_engines()))
    return info
