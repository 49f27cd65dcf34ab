"""DepthAnything3 / Prediction / from_pretrained.

Two kinds of tests:
- facade logic (argument checks, camera validation, result conversion, model resolution)
  against a fake core injected with monkeypatch: they do NOT exercise the network;
- end to end on the compiled core with the fixture GGUF and real images (skipped, with
  the reason, when the compiled core cannot be loaded).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import depth_anything_cpp as da3
from depth_anything_cpp import (DepthAnything3, ModelFormatError, ModelNotFoundError,
                                Prediction, UnsupportedError, VariantError)
from fakes import make_fake_core

SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURE = SHARED / "fixtures" / "da3-small-anchor-layout"
GGUF = FIXTURE / "da3-small-rand-f16.gguf"
REFERENCE = FIXTURE / "reference_SOH_000.npz"
EXAMPLES = SHARED / "data" / "da3_examples"
SOH_000 = EXAMPLES / "assets_examples_SOH_000.png"
SOH_010 = EXAMPLES / "assets_examples_SOH_010.png"

needs_core = pytest.mark.skipif(da3._core is None, reason=f"compiled core not loadable: {da3._core_reason}")
needs_data = pytest.mark.skipif(not (GGUF.is_file() and SOH_000.is_file()), reason="shared fixtures missing")


# ---------------------------------------------------------------- fake core
def _parameter_names(doc: str) -> list:
    """Parameter names of the first line of a pybind11 docstring, ``name(self: T, a: T = 1, ...)``."""
    import re

    return [n for n in re.findall(r"[(,] ?(\w+): ", doc.splitlines()[0]) if n != "self"]


@needs_core
def test_fake_core_matches_the_binding():
    # tests/fakes.py stands in for the compiled Model: same methods, same parameters in order
    import inspect

    from fakes import FakeModel

    real = da3._core.Model
    fake = make_fake_core().Model
    assert list(inspect.signature(fake).parameters) == _parameter_names(real.__init__.__doc__)
    for name in ("info", "infer", "close"):
        fake_params = [p for p in inspect.signature(getattr(FakeModel, name)).parameters if p != "self"]
        assert fake_params == _parameter_names(getattr(real, name).__doc__), name
    assert {"variant", "max_views"} <= set(dir(da3._core))


@pytest.fixture
def fake_core(monkeypatch):
    core = make_fake_core()
    monkeypatch.setattr(da3, "_core", core)
    return core


@pytest.fixture
def fake_gguf(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    return path


# ---------------------------------------------------------------- Prediction
def test_prediction_fields_mirror_official():
    # ref: depth_anything_3/specs.py (0.1.1), Prediction
    official = ["depth", "is_metric", "sky", "conf", "extrinsics", "intrinsics",
                "processed_images", "gaussians", "aux", "scale_factor"]
    assert [f.name for f in dataclasses.fields(Prediction)] == official
    a, b = Prediction(np.zeros((1, 2, 2)), 0), Prediction(np.zeros((1, 2, 2)), 0)
    a.aux["x"] = 1
    assert b.aux == {}  # no shared mutable default
    assert "depth=float64(1, 2, 2)" in repr(a)


# ---------------------------------------------------------------- loading
def test_from_file_argument_errors(fake_core, fake_gguf, tmp_path):
    with pytest.raises(ModelNotFoundError, match="model file not found") as missing:
        DepthAnything3.from_file(tmp_path / "nope.gguf")
    assert isinstance(missing.value, FileNotFoundError) and isinstance(missing.value, da3.DA3Error)
    with pytest.raises(IsADirectoryError):
        DepthAnything3.from_file(tmp_path)
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(ModelFormatError, match="not a GGUF") as info:
        DepthAnything3.from_file(bad)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="backend"):
        DepthAnything3.from_file(fake_gguf, backend="cuda")
    for bad in (-1, 513, 2**31):  # 512: ggml's thread limit; no pybind TypeError for huge values
        with pytest.raises(ValueError, match=r"n_threads: must be in \[0, 512\]"):
            DepthAnything3.from_file(fake_gguf, n_threads=bad)
    with pytest.raises(TypeError, match="n_threads"):
        DepthAnything3.from_file(fake_gguf, n_threads=2.5)
    assert fake_core.models == []


def test_from_file_passes_options(fake_core, fake_gguf):
    model = DepthAnything3.from_file(fake_gguf, n_threads=3, backend="auto")
    assert fake_core.models[0].args == dict(path=str(fake_gguf), n_threads=3, backend="auto", device=-1,
                                            precision="auto")
    assert model.info["preset"] == "da3-small" and model.variant == "fake" and model.path == fake_gguf
    DepthAnything3.from_file(fake_gguf, precision="bf16")
    assert fake_core.models[1].args["n_threads"] == 0  # None -> core default
    assert fake_core.models[1].args["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision"):
        DepthAnything3.from_file(fake_gguf, precision="f16")


def test_no_core_raises_variant_error(monkeypatch, fake_gguf):
    monkeypatch.setattr(da3, "_core", None)
    monkeypatch.setattr(da3, "_core_reason", "nothing built")
    with pytest.raises(VariantError, match="nothing built") as info:
        DepthAnything3.from_file(fake_gguf)
    assert isinstance(info.value, ImportError)


_VARIANT_SCRIPT = """
import json, sys
import numpy as np
from depth_anything_cpp import DepthAnything3, VariantError, _variants
gguf, variant = sys.argv[1], sys.argv[2]
model = DepthAnything3.from_file(gguf, variant=variant)
img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
pred = model.inference([img], process_res=56)
try:
    DepthAnything3.from_file(gguf, variant="cpu_nosuch")
    err = None
except VariantError as exc:
    err = str(exc)
print(json.dumps({"variant": model.variant, "depth_shape": list(pred.depth.shape),
                  "error": err, "loaded": sorted(_variants._loaded)}))
"""


def _runnable_variants() -> list:
    from depth_anything_cpp import _variants
    return [v for v in _variants.available_variants()
            if v.startswith("cpu_") and not _variants._missing_features(v)]


@needs_core
@needs_data
@pytest.mark.parametrize("variant", ["cpu_avx2", "cpu_avx512", "cpu_x64"])
def test_variant_selection_real_loader(variant):
    """from_file(variant=...) through the real _variants.load_core, in a fresh process (the
    default variant chosen at import must not be the one used)."""
    if variant not in _runnable_variants():
        pytest.skip(f"{variant} not built or not runnable here")
    env = dict(os.environ, PYTHONPATH=str(Path(da3.__file__).parents[1]))
    env.pop("DA3CPP_VARIANT", None)
    r = subprocess.run([sys.executable, "-c", _VARIANT_SCRIPT, str(GGUF), variant],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["variant"] == variant and variant in out["loaded"]
    assert out["depth_shape"] == [1, 42, 56]
    assert "cpu_nosuch" in out["error"] and "unknown variant" in out["error"]


@needs_core
def test_variant_selection_errors_in_process():
    with pytest.raises(VariantError, match="unknown variant"):
        da3.api.get_core("cpu_nosuch")
    with pytest.raises(TypeError, match="variant"):
        da3.api.get_core(3)
    # an alias resolves like DA3CPP_VARIANT's
    runnable = _runnable_variants()
    if runnable:
        assert da3.api.get_core(runnable[0].removeprefix("cpu_")).variant() == runnable[0]


# ---------------------------------------------------------------- inference (fake core)
def test_inference_forwards_arguments_and_converts(fake_core, fake_gguf):
    model = DepthAnything3.from_file(fake_gguf)
    img = np.random.default_rng(0).integers(0, 255, (100, 200, 3), dtype=np.uint8)
    pred = model.inference([img, img[:, :, 0]], process_res=280, process_res_method="lower_bound_resize",
                           ref_view_strategy="first", taps=["vit.blk.0"])
    images, kwargs = fake_core.models[0].calls[0]
    assert len(images) == 2 and all(i.shape == (100, 200, 3) and i.dtype == np.uint8 for i in images)
    assert kwargs == dict(extrinsics=None, intrinsics=None, process_res=280,
                          process_res_method="lower_bound_resize", ref_view_strategy="first",
                          use_ray_pose=False, compute_aux=False, align_to_input_ext_scale=True,
                          taps=("vit.blk.0",), max_image_pixels=100_000_000)  # profile: the core's default
    assert pred.depth.shape == (2, 280, 560) and pred.conf.shape == (2, 280, 560)
    assert pred.extrinsics.shape == (2, 3, 4) and pred.intrinsics.shape == (2, 3, 3)
    assert pred.processed_images.shape == (2, 280, 560, 3) and pred.is_metric == 0
    assert set(pred.aux) == {"vit.blk.0"} and pred.sky is None


def test_inference_sky_becomes_mask(monkeypatch, fake_gguf):
    monkeypatch.setattr(da3, "_core", make_fake_core(sky=True, info={"is_metric": 1}))
    pred = DepthAnything3.from_file(fake_gguf).inference(np.zeros((28, 28, 3), np.uint8), process_res=28)
    assert pred.sky.dtype == np.bool_ and pred.conf is None and pred.is_metric == 1
    np.testing.assert_array_equal(pred.sky, pred.aux["sky_prob"] >= 0.5)
    assert pred.sky.any() and not pred.sky.all()


def test_inference_with_cameras(fake_core, fake_gguf):
    model = DepthAnything3.from_file(fake_gguf)
    imgs = [np.zeros((50, 60, 3), np.uint8)] * 2
    ext = np.tile(np.eye(4), (2, 1, 1))
    intr = np.tile(np.array([[50.0, 0, 30], [0, 50, 25], [0, 0, 1]]), (2, 1, 1))
    model.inference(imgs, extrinsics=ext, intrinsics=intr.tolist(), align_to_input_ext_scale=False)
    kwargs = fake_core.models[0].calls[0][1]  # passed as given: the core converts and checks them
    assert kwargs["extrinsics"] is ext and kwargs["intrinsics"] == intr.tolist()
    assert kwargs["align_to_input_ext_scale"] is False


@pytest.mark.parametrize("ext, intr, match", [
    (np.tile(np.eye(4), (2, 1, 1)), None, "extrinsics need intrinsics"),
    (None, np.tile(np.eye(3), (2, 1, 1)), "intrinsics alone are for models without a camera decoder"),
    (np.tile(np.eye(3), (2, 1, 1)), np.tile(np.eye(3), (2, 1, 1)), r"extrinsics: expected shape \(N, 3, 4\)"),
    (np.tile(np.eye(4), (2, 1, 1)), np.tile(np.eye(4), (2, 1, 1)), r"intrinsics: expected shape \(N, 3, 3\)"),
    (np.tile(np.eye(4), (2, 1, 1)), np.tile(np.eye(3), (3, 1, 1)),
     r"intrinsics: expected shape \(N, 3, 3\) with N = 2 views, got \(3, 3, 3\)"),
    (np.tile(np.full((4, 4), np.nan), (2, 1, 1)), np.tile(np.eye(3), (2, 1, 1)), "extrinsics: contains NaN"),
    (np.tile(np.ones((4, 4)), (2, 1, 1)), np.tile(np.eye(3), (2, 1, 1)), r"last row .* \[0, 0, 0, 1\]"),
    (np.tile(np.eye(4), (2, 1, 1)), np.zeros((2, 3, 3)), "focal lengths"),
    (np.tile(np.diag([1.0, 1.0, 0.0, 1.0]), (2, 1, 1)), np.tile(np.eye(3), (2, 1, 1)),
     "rotation part of view 0 is singular"),
    (np.array([["a"] * 4] * 3 * 2).reshape(2, 3, 4), np.tile(np.eye(3), (2, 1, 1)), "numeric"),
])
def test_camera_validation(fixture_gguf, ext, intr, match):
    # checked once, by the compiled core (shapes by the binding, values and heads by the C API)
    model = DepthAnything3.from_file(fixture_gguf, n_threads=1)
    with pytest.raises(ValueError, match=match):
        model.inference([np.zeros((28, 28, 3), np.uint8)] * 2, extrinsics=ext, intrinsics=intr, process_res=28)


def test_model_heads_checked_by_the_core(fixture_gguf):
    # the published-layout fixture has neither a camera encoder nor the aux ray head
    model = DepthAnything3.from_file(fixture_gguf, n_threads=1)
    img = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(UnsupportedError, match="camera encoder"):
        model.inference([img], extrinsics=np.eye(4)[None], intrinsics=np.eye(3)[None], process_res=28)
    with pytest.raises(UnsupportedError, match="aux ray head"):
        model.inference([img], use_ray_pose=True, process_res=28)


def test_inference_argument_errors(fake_core, fake_gguf, monkeypatch):
    model = DepthAnything3.from_file(fake_gguf)
    img = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(UnsupportedError, match="upper_bound_resize"):
        model.inference([img], process_res_method="upper_bound_crop")
    with pytest.raises(ValueError, match="process_res_method"):
        model.inference([img], process_res_method="bilinear")
    with pytest.raises(ValueError, match="ref_view_strategy"):
        model.inference([img], ref_view_strategy="last")
    for bad in (10, 8193, 2**31, -1):  # in range before the core sees it: no pybind TypeError
        with pytest.raises(ValueError, match=r"process_res: expected 14 \(the patch size\) to 8192"):
            model.inference([img], process_res=bad)
    with pytest.raises(TypeError, match="process_res"):
        model.inference([img], process_res=504.0)
    for bad in (0, 2**31, -5):
        with pytest.raises(ValueError, match="max_image_pixels"):
            model.inference([img], max_image_pixels=bad)
    with pytest.raises(TypeError, match="max_image_pixels"):
        model.inference([img], max_image_pixels=1e8)
    with pytest.raises(ValueError, match="empty list"):
        model.inference([])


# ---------------------------------------------------------------- from_pretrained
def test_from_pretrained_local_gguf_and_dirs(fake_core, fake_gguf, tmp_path):
    assert DepthAnything3.from_pretrained(fake_gguf).path == fake_gguf
    assert DepthAnything3.from_pretrained(str(fake_gguf.parent)).path == fake_gguf  # dir with one gguf
    (tmp_path / "second.gguf").write_bytes(b"GGUF" + bytes(8))
    with pytest.raises(ModelFormatError, match="several GGUF"):
        DepthAnything3.from_pretrained(tmp_path)
    assert DepthAnything3.from_pretrained(tmp_path, filename="second.gguf").path.name == "second.gguf"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFormatError, match="neither a Hugging Face snapshot"):
        DepthAnything3.from_pretrained(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        DepthAnything3.from_pretrained(tmp_path / "missing.gguf")
    with pytest.raises(FileNotFoundError, match="repo id"):
        DepthAnything3.from_pretrained("not a repo id")


def test_from_pretrained_converts_snapshot_once(fake_core, tmp_path, monkeypatch):
    import depth_anything_cpp as pkg

    calls = []

    def convert(src, dst):
        calls.append((Path(src), Path(dst)))
        Path(dst).write_bytes(b"GGUF" + bytes(16))
    fake_convert = types.SimpleNamespace(convert=convert)
    monkeypatch.setitem(sys.modules, "depth_anything_cpp.convert", fake_convert)
    monkeypatch.setattr(pkg, "convert", fake_convert, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("DA3CPP_CACHE", str(cache))
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "config.json").write_text(json.dumps({"model_name": "da3-small"}))
    (snap / "model.safetensors").write_bytes(b"weights")

    first = DepthAnything3.from_pretrained(snap)
    assert first.path.parent == cache and first.path.name.startswith("da3-small-")
    assert len(calls) == 1 and calls[0][0] == snap and calls[0][1].parent == cache
    assert sorted(p.name for p in cache.iterdir()) == [first.path.name]  # temp file renamed
    assert DepthAnything3.from_pretrained(snap).path == first.path
    assert len(calls) == 1  # cached
    (snap / "config.json").write_text(json.dumps({"model_name": "da3-small", "x": 1}))
    assert DepthAnything3.from_pretrained(snap).path != first.path and len(calls) == 2

    (snap / "config.json").write_text("{}")
    with pytest.raises(ModelFormatError, match="model_name"):
        DepthAnything3.from_pretrained(snap)


def test_from_pretrained_offline_fails_fast_and_clearly(tmp_path):
    pytest.importorskip("huggingface_hub")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               DA3CPP_CACHE=str(tmp_path / "cache"))
    code = ("import depth_anything_cpp as d\n"
            "try:\n d.DepthAnything3.from_pretrained('depth-anything/DA3-SMALL')\n"
            "except d.ModelLoadError as e:\n print('MODEL_LOAD_ERROR', e)\n")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 30
    assert "MODEL_LOAD_ERROR" in proc.stdout, proc.stdout + proc.stderr
    assert "offline" in proc.stdout and "depth-anything/DA3-SMALL" in proc.stdout
    assert "local .gguf" in proc.stdout


# ---------------------------------------------------------------- end to end (compiled core)
@needs_core
@needs_data
def test_e2e_reference_depth_soh_000():
    model = DepthAnything3.from_file(GGUF, precision="f32")  # parity mode ("auto": bf16 for this f16 file)
    info = model.info
    assert info["preset"] == "da3-small" and info["embed_dim"] == 384 and info["depth"] == 12
    pred = model.inference([str(SOH_000)])
    ref = np.load(REFERENCE)
    assert pred.depth.dtype == np.float32 and pred.depth.shape == (1, 280, 504) == ref["depth"].shape
    assert pred.conf.shape == (1, 280, 504) and pred.conf.dtype == np.float32
    assert pred.processed_images.shape == (1, 280, 504, 3) and pred.processed_images.dtype == np.uint8
    span = float(ref["depth"].max() - ref["depth"].min())
    assert np.abs(pred.depth - ref["depth"]).max() <= 1e-3 * span
    assert np.abs(pred.processed_images.astype(int) - ref["processed_image"].astype(int)).max() <= 1
    np.testing.assert_allclose(pred.extrinsics, ref["extrinsics"], atol=5e-3)
    np.testing.assert_allclose(pred.intrinsics, ref["intrinsics"], rtol=5e-3)
    assert pred.is_metric == 0 and pred.sky is None


@needs_core
@needs_data
def test_e2e_input_forms_agree_and_two_views():
    model = DepthAnything3.from_file(GGUF, n_threads=2)
    with Image.open(SOH_000) as img:
        img.load()
        from_pil = model.inference([img]).depth
    from_path = model.inference(SOH_000).depth
    np.testing.assert_array_equal(from_pil, from_path)
    pred = model.inference([SOH_000, SOH_010])
    assert pred.depth.shape == (2, 280, 504) and pred.extrinsics.shape == (2, 3, 4)
    assert np.isfinite(pred.depth).all() and (pred.depth > 0).all()
    with pytest.raises(ValueError):
        model.inference([SOH_000, SOH_010], extrinsics=np.zeros((2, 3, 3)), intrinsics=np.zeros((2, 3, 3)))


@needs_core
@needs_data
def test_e2e_core_errors_map_to_exceptions(tmp_path):
    truncated = tmp_path / "t.gguf"
    truncated.write_bytes(GGUF.read_bytes()[:4096])
    with pytest.raises(ModelFormatError):
        DepthAnything3.from_file(truncated)


@needs_core
@needs_data
def test_core_depth_dense_is_the_dense_depth_entry_point():
    from depth_anything_cpp.images import load_image

    model = da3._core.Model(str(GGUF), n_threads=2)
    img = load_image(str(SOH_000))
    a = model.depth_dense([img], process_res=140)
    b = model.infer([img], process_res=140)
    assert a["depth"].shape == (1, 84, 140)
    np.testing.assert_array_equal(a["depth"], b["depth"])
    np.testing.assert_array_equal(a["extrinsics"], b["extrinsics"])


# ---------------------------------------------------------------- exports from inference, points
def test_inference_records_sizes_paths_and_checks_export_first(fake_core, fake_gguf, tmp_path):
    model = DepthAnything3.from_file(fake_gguf)
    img = np.zeros((30, 50, 3), np.uint8)
    path = tmp_path / "p.png"
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(path)
    pred = model.inference([img, str(path)], process_res=28)
    assert pred.original_sizes == [(50, 30), (50, 30)] and pred.image_paths == [None, str(path)]
    assert model.inference(path, process_res=28).image_paths == [str(path)]
    calls = fake_core.models[0].calls
    for fmt, kw, exc, top in (("npz-nope", None, ValueError, {}), ("glb", {"glb": {"bogus": 1}}, TypeError, {}),
                              ("glb", {"glb": 3}, TypeError, {}), ("ply", None, ValueError, {"num_max_points": -5})):
        n = len(calls)
        with pytest.raises(exc):
            model.inference(img, process_res=28, export_dir=tmp_path / "o", export_format=fmt, export_kwargs=kw,
                            **top)
        assert len(calls) == n  # rejected before the network runs
    assert not (tmp_path / "o").exists()


def test_inference_merges_top_level_export_options(fake_core, fake_gguf, tmp_path, monkeypatch):
    from depth_anything_cpp import exports

    seen = []
    monkeypatch.setattr(exports.ExportPlan, "write", lambda plan, pred, out: seen.append((plan, out)))
    defaults = {name: fmt.options for name, fmt in exports.REGISTRY.items()}
    model = DepthAnything3.from_file(fake_gguf)
    user = {"glb": {"camera_size": 0.1}, "depth_vis": {"cmap": "gray"}, "colmap": {"conf_thresh_percentile": 5}}
    model.inference(np.zeros((28, 28, 3), np.uint8), process_res=28, export_dir=tmp_path,
                    export_format="glb-colmap-depth_vis", num_max_points=10, show_cameras=False,
                    conf_thresh_percentile=30.0, export_kwargs=user)
    plan, out = seen[0]
    assert plan.formats == ["glb", "colmap", "depth_vis"] and out == tmp_path
    assert plan.options["glb"] == {**defaults["glb"], "camera_size": 0.1, "conf_thresh_percentile": 30.0,
                                   "num_max_points": 10, "show_cameras": False}
    # as upstream (api.py: export_kwargs["glb"].update(...)), the top-level arguments win
    assert plan.options["colmap"] == {**defaults["colmap"], "conf_thresh_percentile": 30.0,
                                      "process_res_method": "upper_bound_resize"}
    model.inference(np.zeros((28, 28, 3), np.uint8), process_res=28, export_dir=tmp_path, export_format="glb",
                    export_kwargs={"glb": {"num_max_points": 3, "show_cameras": False, "conf_thresh_percentile": 1}})
    assert seen[1][0].options["glb"] == {**defaults["glb"], "num_max_points": 1_000_000, "show_cameras": True,
                                         "conf_thresh_percentile": 40.0}
    assert plan.options["depth_vis"] == {**defaults["depth_vis"], "cmap": "gray"}
    assert user == {"glb": {"camera_size": 0.1}, "depth_vis": {"cmap": "gray"},
                    "colmap": {"conf_thresh_percentile": 5}}  # untouched


needs_points = pytest.mark.skipif(da3._core is None or not hasattr(da3._core, "points"),
                                  reason=f"compiled core with points not loadable: {da3._core_reason}")


def _pinhole_prediction(n=2, h=24, w=32, **fields):
    rng = np.random.default_rng(5)
    k = np.array([[30.0, 0, 15.5], [0, 28.0, 11.0], [0, 0, 1]], np.float32)
    ext = np.repeat(np.eye(3, 4, dtype=np.float32)[None], n, 0)
    ext[1, :, 3] = [0.3, -0.1, 0.2]  # second camera translated
    base = dict(depth=rng.uniform(1.0, 4.0, (n, h, w)).astype(np.float32), is_metric=1,
                extrinsics=ext, intrinsics=np.repeat(k[None], n, 0),
                processed_images=rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8))
    base.update(fields)
    return Prediction(**base)


def _reproject(pts, pred):
    """(u, v, z) of each point in its own view."""
    ext = pred.extrinsics[pts["view"]].astype(np.float64)
    cam = np.einsum("nij,nj->ni", ext[:, :, :3], pts["xyz"].astype(np.float64)) + ext[:, :, 3]
    k = pred.intrinsics[pts["view"]].astype(np.float64)
    uvw = np.einsum("nij,nj->ni", k, cam)
    return uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2], cam[:, 2]


@needs_points
def test_points_reproject_and_filter_without_conf():
    pred = _pinhole_prediction()
    pts = pred.points(num_max_points=0)
    assert pts["xyz"].dtype == np.float32 and pts["rgb"].dtype == np.uint8
    assert len(pts["xyz"]) == pred.depth.size and np.isnan(pts["conf_thresh"])  # no conf: all kept
    u, v, z = _reproject(pts, pred)
    px = pts["pixel"]
    np.testing.assert_allclose(u, px[:, 0], atol=1e-3)
    np.testing.assert_allclose(v, px[:, 1], atol=1e-3)
    np.testing.assert_allclose(z, pred.depth[pts["view"], px[:, 1], px[:, 0]], rtol=1e-5)
    np.testing.assert_array_equal(pts["rgb"], pred.processed_images[pts["view"], px[:, 1], px[:, 0]])
    sub = pred.points(num_max_points=100, seed=3)
    assert len(sub["xyz"]) == 100
    np.testing.assert_array_equal(sub["xyz"], pred.points(num_max_points=100, seed=3)["xyz"])
    with pytest.raises(ValueError, match="num_max_points"):
        pred.points(num_max_points=-1)
    with pytest.raises(ValueError, match="no extrinsics"):
        Prediction(depth=pred.depth, is_metric=0).points()


@needs_points
def test_points_sky_removal_and_conf_percentile():
    pred = _pinhole_prediction(conf=None)
    sky = np.zeros(pred.depth.shape, bool)
    sky[:, :8] = True  # top rows are sky
    pred.sky = sky
    kept = pred.points(num_max_points=0)
    assert len(kept["xyz"]) == (~sky).sum() and (kept["pixel"][:, 1] >= 8).all()
    assert len(pred.points(num_max_points=0, remove_sky=False)["xyz"]) == sky.size
    pred.aux["sky_prob"] = np.where(sky, 0.9, 0.1).astype(np.float32)  # probability wins over mask
    pred.aux["sky_prob"][:, 8:10] = 0.7
    assert len(pred.points(num_max_points=0)["xyz"]) == (~sky).sum() - 2 * 2 * 32
    assert len(pred.points(num_max_points=0, sky_thresh=0.8)["xyz"]) == (~sky).sum()
    conf = np.random.default_rng(1).uniform(1.0, 2.0, pred.depth.shape).astype(np.float32)
    pred = _pinhole_prediction(conf=conf)
    pts = pred.points(num_max_points=0)  # thr = clip(1.05, p40, p90) = p40 here
    assert pts["conf_thresh"] == pytest.approx(np.percentile(conf, 40), rel=1e-5)
    assert len(pts["xyz"]) == (conf >= pts["conf_thresh"]).sum()


NYU = SHARED / "data" / "metric3d" / "data" / "nyu_demo"


@needs_points
@pytest.mark.skipif(not (GGUF.is_file() and NYU.is_dir()), reason="shared fixtures missing")
def test_nyu_points_with_ground_truth_intrinsics_reproject_onto_depth():
    meta = json.loads((NYU / "test_annotations.json").read_text())["files"][0]
    fx, fy, cx, cy = meta["cam_in"]
    pred = DepthAnything3.from_file(GGUF, n_threads=2).inference(NYU / "rgb" / Path(meta["rgb"]).name,
                                                                 process_res=252)
    (w0, h0), (h, w) = pred.original_sizes[0], pred.depth.shape[1:]
    assert (w0, h0) == (640, 480)
    sx, sy = w / w0, h / h0  # GT intrinsics at the processed size
    pred.intrinsics = np.array([[[fx * sx, 0, cx * sx], [0, fy * sy, cy * sy], [0, 0, 1]]], np.float32)
    pts = pred.points(conf_thresh_percentile=0, num_max_points=5000)
    assert 0 < len(pts["xyz"]) <= 5000
    u, v, z = _reproject(pts, pred)
    np.testing.assert_allclose(u, pts["pixel"][:, 0], atol=2e-3)
    np.testing.assert_allclose(v, pts["pixel"][:, 1], atol=2e-3)
    np.testing.assert_allclose(z, pred.depth[0, pts["pixel"][:, 1], pts["pixel"][:, 0]], rtol=1e-4)


@needs_core
def test_metric_model_with_intrinsics_alone(reference, data_dir):
    """A model without camera decoder takes intrinsics alone: metric-large depth in metres
    (depth * focal / 300), the cameras carried on the prediction, points back-projected."""
    from reference import make_cases

    path = make_cases.model_gguf(make_cases.CASES_BY_NAME["metric_d4"].model, "f32")
    model = DepthAnything3.from_file(path)
    image = data_dir / "da3_examples" / "assets_examples_SOH_000.png"
    K = np.array([[[900.0, 0, 600], [0, 900.0, 340], [0, 0, 1]]], np.float32)
    raw = model.inference([image], process_res=252)
    pred = model.inference([image], intrinsics=K, process_res=252)
    assert raw.intrinsics is None and raw.is_metric == 0 and pred.is_metric == 1
    w0, h0 = Image.open(image).size
    H, W = pred.depth.shape[1:]
    np.testing.assert_allclose(pred.intrinsics[0, 0, 0], 900.0 * W / w0, rtol=1e-5)
    np.testing.assert_allclose(pred.extrinsics[0], np.eye(4)[:3], atol=0)
    focal = (pred.intrinsics[0, 0, 0] + pred.intrinsics[0, 1, 1]) / 2
    np.testing.assert_allclose(pred.depth, raw.depth * focal / 300.0, rtol=1e-4)
    pts = pred.points(remove_sky=False)
    xyz, pix = pts["xyz"], pts["pixel"]
    assert len(xyz) == H * W  # no conf for metric models: every finite pixel
    uv = xyz @ pred.intrinsics[0].T.astype(np.float64)
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], pix, atol=2e-3)
    np.testing.assert_allclose(xyz[:, 2], pred.depth[0][pix[:, 1], pix[:, 0]], rtol=1e-5)
