"""precision="bf16": the ViT's linears on the CPU's AMX-BF16 / AVX512-BF16 engine (issue #23).

End to end on the published-layout f16 fixture and a real image, against the same model in
f32: depth correlation >= 0.9999, max depth error <= 1e-2 of the depth range, camera <= 1e-2
relative (the issue's bounds for reduced-precision modes). The graph op on its own through
check_linear_f16 against float64 of the bf16-rounded operands. The kernels themselves, per
engine and on odd shapes, are tested in tests/cpp/test_cpu_gemm_bf16.cpp. On a CPU without an
engine the bf16 tests skip with a "platform: " reason, and "bf16" must fall back to f32.

``precision="auto"`` per mode (test_mode_against_f32): the harness da3-small (seed 0) as f16,
bf16, q8_0 and q4_k GGUFs, and its f32 file with ``precision="bf16"``, against its f32 file in
f32 on two real images; the engine each mode ran is written to the test log.
"""

from __future__ import annotations

import numpy as np
import pytest

from depth_anything_cpp import DepthAnything3, backend_info
from depth_anything_cpp.api import get_core
from helpers import skip_platform

DEPTH_CORR, DEPTH_REL, CAMERA_REL = 0.9999, 1e-2, 1e-2


def _engines() -> list:
    return list(get_core().cpu_matrix_engines())


def _need_engine() -> str:
    engines = _engines()
    if not engines:
        skip_platform("this CPU/OS offers no bf16 matrix engine (AMX-BF16 or AVX512-BF16) to "
                      f"{get_core().variant()}: precision='bf16' runs f32 here, its numerics are untested")
    return engines[0]


def _bf16(a: np.ndarray) -> np.ndarray:
    """float32 -> bf16 values (round to nearest even) as float64."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def test_engine_reported(fixture_gguf):
    engines = _engines()
    assert backend_info()["cpu_matrix_engines"] == engines
    assert set(engines) <= {"amx_bf16", "avx512_bf16"}
    assert DepthAnything3.from_file(fixture_gguf, precision="f32").info["linear_engine"] == "f32"
    for precision in ("auto", "bf16"):  # auto: the bf16 engine for this f16 file
        got = DepthAnything3.from_file(fixture_gguf, precision=precision).info["linear_engine"]
        assert got == (engines[0] if engines else "f32")


def test_bad_precision(fixture_gguf):
    with pytest.raises(ValueError, match="precision"):
        DepthAnything3.from_file(fixture_gguf, precision="fp8")
    with pytest.raises(ValueError, match="precision"):
        get_core().Model(str(fixture_gguf), precision="half")


def test_linear_op_against_float64():
    _need_engine()
    rng = np.random.default_rng(23)
    m, k, n = 45, 96, 64  # 45 rows: two tiles of 32, the second partial
    w = rng.normal(0, 0.05, (n, k)).astype(np.float16)
    x = rng.normal(0, 1, (m, k)).astype(np.float32)
    core = get_core()
    y = core.check_linear_f16(w.view(np.uint16), x, n_threads=2, precision="bf16")
    y32 = core.check_linear_f16(w.view(np.uint16), x, n_threads=2, precision="f32")
    ref = _bf16(x) @ _bf16(w.astype(np.float32)).T
    ref32 = x.astype(np.float64) @ w.astype(np.float64).T
    scale = np.abs(ref).max()
    assert np.abs(y - ref).max() / scale < 1e-5
    assert np.abs(y32 - ref32).max() / scale < 1e-6
    assert np.abs(y - ref32).max() / scale > 1e-5  # the bf16 op did run: it is not the f32 result


def test_bf16_model_against_f32(fixture_gguf, data_dir):
    engine = _need_engine()
    image = data_dir / "da3_examples" / "assets_examples_SOH_000.png"
    out = {}
    for precision in ("f32", "bf16"):
        model = DepthAnything3.from_file(fixture_gguf, precision=precision, n_threads=2)
        assert model.info["linear_engine"] == (engine if precision == "bf16" else "f32")
        out[precision] = model.inference([image])
    ref, got = out["f32"], out["bf16"]
    d_ref, d = ref.depth.astype(np.float64).ravel(), got.depth.astype(np.float64).ravel()
    corr = float(np.corrcoef(d_ref, d)[0, 1])
    depth_rel = float(np.abs(d - d_ref).max() / (d_ref.max() - d_ref.min()))
    cam = {k: float(np.abs(getattr(got, k) - getattr(ref, k)).max() / np.abs(getattr(ref, k)).max())
           for k in ("extrinsics", "intrinsics")}
    print(f"bf16 ({engine}) vs f32: depth corr {corr:.7f}, max err {depth_rel:.2e} of range, camera {cam}")
    assert corr >= DEPTH_CORR
    assert depth_rel <= DEPTH_REL
    assert max(cam.values()) <= CAMERA_REL
    assert not np.array_equal(ref.depth, got.depth)  # bf16 did run


# (weights, precision): the modes "auto" picks per file type, and bf16 asked for on an f32 file
MODES = (("f16", "auto"), ("bf16", "auto"), ("f32", "bf16"), ("q8_0", "auto"), ("q4_k", "auto"))
CORR_INT8 = {"q8_0": 0.9999, "q4_k": 0.995}  # as tests/test_parity.py bounds them against PyTorch
IMAGES = ("SOH_000", "SOH_010")
_F32: dict = {}


def _metrics(ref, got) -> tuple:
    """(depth corr, depth max err / depth range, camera max err / max |value|) over all views."""
    d_ref, d = ref.depth.astype(np.float64).ravel(), got.depth.astype(np.float64).ravel()
    corr = float(np.corrcoef(d_ref, d)[0, 1])
    depth_rel = float(np.abs(d - d_ref).max() / (d_ref.max() - d_ref.min()))
    cam = max(float(np.abs(getattr(got, k) - getattr(ref, k)).max() / np.abs(getattr(ref, k)).max())
              for k in ("extrinsics", "intrinsics"))
    return corr, depth_rel, cam


@pytest.mark.parametrize("weights,precision", MODES, ids=[f"{w}-{p}" for w, p in MODES])
def test_mode_against_f32(reference, data_dir, capsys, weights, precision):
    from reference import make_cases as mc

    int8 = weights in CORR_INT8
    engine = "int8" if int8 else _need_engine()
    if "f32" not in _F32:
        _F32["f32"] = DepthAnything3.from_file(mc.model_gguf(mc.SMALL, "f32"), precision="f32", n_threads=2)
    model = DepthAnything3.from_file(mc.model_gguf(mc.SMALL, weights), precision=precision, n_threads=2)
    assert model.info["linear_engine"] == engine
    for name in IMAGES:
        image = data_dir / "da3_examples" / f"assets_examples_{name}.png"
        if name not in _F32:
            _F32[name] = _F32["f32"].inference([image])
        corr, depth_rel, cam = _metrics(_F32[name], model.inference([image]))
        line = (f"da3-small {weights} file, precision={precision}, engine {engine}, {name} vs f32: "
                f"depth corr {corr:.7f}, max err {depth_rel:.2e} of range, camera {cam:.2e}")
        with capsys.disabled():  # in the test log whatever the capture mode: which engine ran
            print(f"\n[bf16 engines] {line}")
        if int8:
            assert corr >= CORR_INT8[weights], line
        else:
            assert corr >= DEPTH_CORR and depth_rel <= DEPTH_REL and cam <= CAMERA_REL, line


def test_bf16_file_layout(reference):
    """``convert(type="bf16")``: the ViT blocks' matmul weights bf16, the camera ones f16,
    everything else f32; the core reads it as a bf16 file."""
    import gguf
    from reference import make_cases as mc

    path = mc.model_gguf(mc.SMALL, "bf16")
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
    blk = {n for n in types if n.startswith("vit.blk.") and n.endswith(("qkv.weight", "proj.weight", "fc1.weight",
                                                                      "fc2.weight"))}
    assert len(blk) == 48 and {types[n] for n in blk} == {"BF16"}
    cam = {n for n in types if n.startswith(("cam.", "cam_enc.")) and types[n] != "F32"}
    assert cam and {types[n] for n in cam} == {"F16"}
    assert {t for n, t in types.items() if n not in blk | cam} == {"F32"}
    assert DepthAnything3.from_file(path, precision="f32").info["weight_type"] == "bf16"
