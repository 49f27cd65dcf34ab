"""Build variants: CPU probe, variant choice, DA3CPP_VARIANT override, backend_info, Vulkan."""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from depth_anything_cpp import _variants
from depth_anything_cpp.errors import VariantError

X86 = platform.machine().lower() in ("x86_64", "amd64")
CPU_VARIANTS = ["cpu_x64", "cpu_avx2", "cpu_avx512"]
SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURE = SHARED / "fixtures" / "da3-small-anchor-layout" / "da3-small-rand-f16.gguf"


def _proc_cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("platform: no /proc/cpuinfo")
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    if not m:
        pytest.skip("platform: no flags line in /proc/cpuinfo")
    return set(m.group(1).split())


def _runnable(variant: str) -> bool:
    return variant in _variants.available_variants() and not _variants._missing_features(variant)


def _run_python(code: str, **env_over: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DA3CPP_VARIANT"}
    env.update(env_over)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


_INFO = "import json, depth_anything_cpp as d; print(json.dumps(d.backend_info()))"


def _info_in_subprocess(**env_over: str) -> dict:
    r = _run_python(_INFO, **env_over)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- CPU probe -----------------------------------------------------------------------------


@pytest.mark.skipif(not (X86 and sys.platform.startswith("linux")), reason="platform: x86 Linux only")
def test_cpuprobe_agrees_with_proc_cpuinfo():
    # the kernel clears AVX flags when it does not save the state, like our xgetbv check
    flags = _proc_cpuinfo_flags()
    feats = dict(importlib.import_module("depth_anything_cpp._cpuprobe").features())
    names = {"sse4_2": "sse4_2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c", "bmi2": "bmi2",
             "avx512f": "avx512f", "avx512cd": "avx512cd", "avx512vl": "avx512vl", "avx512dq": "avx512dq",
             "avx512bw": "avx512bw", "avx512vnni": "avx512_vnni", "avx512vbmi": "avx512vbmi"}
    for ours, kernel in names.items():
        assert feats[ours] == (kernel in flags), ours


def test_cpu_features_listed_in_backend_info():
    info = _variants.backend_info()
    assert info["cpu_features"] == _variants.cpu_features()
    assert all(not f.startswith("os") for f in info["cpu_features"])


# ---- variants in this build ------------------------------------------------------------------


def test_x86_build_has_all_cpu_levels():
    avail = _variants.available_variants()
    if not X86 or "native" in avail:
        pytest.skip("platform: developer (native) build or non-x86")
    assert set(CPU_VARIANTS) <= set(avail), avail


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_cpu_variant_imports_and_reports_itself(variant):
    if variant not in _variants.available_variants():
        pytest.skip(f"{variant} not in this build")
    if _variants._missing_features(variant):
        pytest.skip(f"this CPU lacks {_variants._missing_features(variant)}")
    mod = importlib.import_module(f"depth_anything_cpp._da3_{variant}")
    assert mod.variant() == variant
    assert re.fullmatch(r"\d+\.\d+\.\d+", mod.ggml_version())
    devs = mod.devices()
    assert any(not d["is_gpu"] for d in devs), devs  # the CPU device


def test_default_choice_is_best_runnable_cpu_level():
    info = _info_in_subprocess()
    avail = info["variants"]
    assert info["chosen"] in avail
    if info["chosen"] in ("vulkan", "cuda"):
        assert info["reason"].startswith("GPU found"), info
        assert any(d["is_gpu"] for d in info["devices"])
        return
    expected = next(v for v in ["native", "cpu_avx512", "cpu_avx2", "cpu_x64"] if _runnable(v))
    assert info["chosen"] == expected, info
    if expected == "cpu_avx512":  # AVX-512 hardware: chosen by default
        assert "avx512f" in info["cpu_features"]


@pytest.mark.parametrize("request_name,variant", [("cpu_x64", "cpu_x64"), ("avx2", "cpu_avx2"),
                                                  ("CPU_AVX512", "cpu_avx512")])
def test_env_override_selects_variant(request_name, variant):
    if not _runnable(variant):
        pytest.skip(f"{variant} not runnable here")
    info = _info_in_subprocess(DA3CPP_VARIANT=request_name)
    assert info["chosen"] == variant
    assert info["module"] == f"depth_anything_cpp._da3_{variant}"
    assert f"DA3CPP_VARIANT={request_name.lower()}" in info["reason"]


def test_env_override_cpu_means_best_cpu_level():
    info = _info_in_subprocess(DA3CPP_VARIANT="cpu")
    expected = next(v for v in ["native", "cpu_avx512", "cpu_avx2", "cpu_x64"] if _runnable(v))
    assert info["chosen"] == expected


def test_unknown_variant_raises_variant_error_naming_available(monkeypatch):
    monkeypatch.setenv("DA3CPP_VARIANT", "avx1024")
    with pytest.raises(VariantError, match="unknown variant") as ei:
        _variants.choose_variant()
    assert isinstance(ei.value, ImportError)
    for v in _variants.available_variants():
        if _runnable(v):
            assert v in str(ei.value)


def test_variant_missing_from_build_raises(monkeypatch):
    absent = [v for v in _variants._VARIANTS if v not in _variants.available_variants()]
    if not absent:
        pytest.skip("every variant is in this build")
    monkeypatch.setenv("DA3CPP_VARIANT", absent[0])
    with pytest.raises(VariantError, match=f"{absent[0]}.*not in this installation"):
        _variants.load_core()


def test_variant_needing_missing_cpu_features_raises(monkeypatch):
    if "cpu_avx2" not in _variants.available_variants():
        pytest.skip("cpu_avx2 not in this build")
    # simulate an SSE2-only x86 CPU: the chooser must refuse AVX2 without importing it
    monkeypatch.setattr(_variants, "_probe", lambda: ("x86_64", {"sse2": True}, "old cpu"))
    monkeypatch.setenv("DA3CPP_VARIANT", "cpu_avx2")
    with pytest.raises(VariantError, match="avx2"):
        _variants.choose_variant()
    monkeypatch.delenv("DA3CPP_VARIANT")
    if "cpu_x64" in _variants.available_variants():
        assert _variants.choose_variant()[0] == "cpu_x64"


def test_broken_environment_does_not_break_package_import():
    r = _run_python("import depth_anything_cpp as d; print(d._core_reason)", DA3CPP_VARIANT="nope")
    assert r.returncode == 0, r.stderr
    assert "unknown variant" in r.stdout


def test_backend_info_content():
    info = _variants.backend_info()
    assert set(info) >= {"variants", "chosen", "reason", "module", "ggml_version", "devices", "threads",
                         "cpu", "cpu_features"}
    assert info["chosen"] in info["variants"]
    assert info["reason"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["ggml_version"])
    assert isinstance(info["threads"], int) and 1 <= info["threads"] <= (os.cpu_count() or 1)
    for d in info["devices"]:
        assert set(d) >= {"name", "description", "is_gpu", "memory_total", "memory_free"}
    json.dumps(info)  # printable by `da3cpp info --json`


# ---- Vulkan ----------------------------------------------------------------------------------

needs_vulkan = pytest.mark.skipif("vulkan" not in _variants.available_variants(),
                                  reason="vulkan variant not in this build")


@needs_vulkan
def test_vulkan_cpu_type_device_not_chosen_implicitly():
    mod = _variants.load_core("vulkan")[0]
    if any(d["is_gpu"] for d in mod.devices()):
        pytest.skip("a real GPU is present")
    info = _info_in_subprocess()
    assert info["chosen"] != "vulkan"
    assert "vulkan: no GPU device" in info["reason"]


@needs_vulkan
def test_vulkan_variant_explicit_sees_a_vulkan_device():
    info = _info_in_subprocess(DA3CPP_VARIANT="vulkan", GGML_VK_VISIBLE_DEVICES="0")
    assert info["chosen"] == "vulkan"
    names = [d["name"] for d in info["devices"]]
    assert any(n.lower().startswith("vulkan") for n in names), names


_COMPARE = r"""
import json, sys, numpy as np
from depth_anything_cpp import _variants
path = sys.argv[1]
rng = np.random.default_rng(0)
img = (rng.random((96, 168, 3)) * 255).astype(np.uint8)
out = {}
for variant, backend in (("vulkan", "gpu"), (sys.argv[2], "cpu")):
    m = _variants.load_core(variant)[0]
    model = m.Model(path, n_threads=2, backend=backend)
    out[backend] = model.infer([img], process_res=168)["depth"]
    out[backend + "_device"] = model.info()["backend"]
a, b = out["gpu"], out["cpu"]
rel = np.abs(a - b) / (np.abs(b) + 1e-6)
print(json.dumps({"gpu_device": out["gpu_device"], "cpu_device": out["cpu_device"],
                  "shape": list(a.shape), "finite": bool(np.isfinite(a).all()),
                  "rel_median": float(np.median(rel)), "rel_p99": float(np.quantile(rel, 0.99))}))
"""


@needs_vulkan
def test_vulkan_depth_matches_cpu_on_fixture():
    if not FIXTURE.is_file():
        pytest.skip(f"fixture missing: {FIXTURE}")
    cpu = next(v for v in ["cpu_avx2", "cpu_avx512", "cpu_x64", "native"] if _runnable(v))
    r = subprocess.run([sys.executable, "-c", _COMPARE, str(FIXTURE), cpu],
                       env={**os.environ, "GGML_VK_VISIBLE_DEVICES": "0"},
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["gpu_device"].lower().startswith("vulkan"), res
    assert res["cpu_device"].upper().startswith("CPU"), res
    assert res["shape"] == [1, 98, 168]  # 96 rows round to the nearest multiple of 14 (ties up)
    assert res["finite"]
    # measured on lavapipe: median 4e-4, p99 2e-3 (f16 weights, f32 activations)
    assert res["rel_median"] < 5e-3, res
    assert res["rel_p99"] < 2e-2, res


# ---- aarch64 levels (cpu_levels.json), decided on any machine from HWCAP feature sets ---------------

# HWCAP features as Linux reports them (qemu-aarch64 models; .ci/aarch64.sh runs the real probe there)
_A53 = {"fp", "asimd", "aes", "pmull", "sha1", "sha2", "crc32"}
_A76 = _A53 | {"atomics", "fphp", "asimdhp", "asimdrdm", "lrcpc", "asimddp"}
_NEOVERSE_V1 = _A76 | {"asimdfhm", "sve", "i8mm", "bf16", "svei8mm", "svebf16"}


@pytest.mark.parametrize("feats,best", [(_A53, "cpu_neon"), (_A76, "cpu_dotprod"), (_NEOVERSE_V1, "cpu_i8mm")])
def test_arm_level_choice_from_hwcap(monkeypatch, feats, best):
    monkeypatch.setattr(_variants, "_probe", lambda: ("aarch64", {f: True for f in feats}, ""))
    runnable = [v for v in ("cpu_i8mm", "cpu_dotprod", "cpu_neon") if not _variants._missing_features(v)]
    assert runnable[0] == best
    assert _variants._missing_features("cpu_avx2") == ["x86_64 avx2"]
    if best == "cpu_neon":
        assert "asimddp" in _variants._missing_features("cpu_dotprod")
    assert _variants._missing_features("vulkan") == _variants._missing_features("cpu_dotprod")  # GPU level


def test_level_features_are_probe_names():
    # every feature a level requires is one _cpuprobe reports (a typo would refuse the level forever)
    src = (Path(__file__).resolve().parents[1] / "src" / "cpuprobe.c").read_text()
    arm_names = set(re.findall(r'\{"(\w+)", [12], \d+\}', src))
    x86_names = set(re.findall(r'set_flag\(d, "(\w+)"', src))
    for level, spec in _variants._LEVELS.items():
        names = arm_names if spec["arch"] == "aarch64" else x86_names
        assert set(spec["requires"]) <= names, (level, set(spec["requires"]) - names)
