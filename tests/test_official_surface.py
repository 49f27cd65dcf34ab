"""Drop-in compatibility with the official ``depth_anything_3`` API (issue 20): the
``inference`` signature, unported features raising UnsupportedError, export option
precedence. Runs the compiled core on the shared fixture model where a model is needed."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
from pathlib import Path

import numpy as np
import pytest

import depth_anything_cpp as da3
from depth_anything_cpp import DepthAnything3, UnsupportedError

SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
GGUF = SHARED / "fixtures" / "da3-small-anchor-layout" / "da3-small-rand-f16.gguf"
SOH_000 = SHARED / "data" / "da3_examples" / "assets_examples_SOH_000.png"

needs_model = pytest.mark.skipif(da3._core is None or not GGUF.is_file(),
                                 reason=f"compiled core or fixture missing: {da3._core_reason}")


def _official_signature(qualname: str) -> list:
    """[(name, default or inspect.Parameter.empty)] of a function of the official api.py,
    read from its source (importing it needs torch and torchvision)."""
    spec = importlib.util.find_spec("depth_anything_3")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("official depth_anything_3 package not installed")
    src = Path(list(spec.submodule_search_locations)[0]) / "api.py"
    tree = ast.parse(src.read_text())
    cls_name, fn_name = qualname.split(".")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == fn_name)
    args = fn.args.args[1:]  # no self
    defaults = [inspect.Parameter.empty] * (len(args) - len(fn.args.defaults)) + [
        ast.literal_eval(d) for d in fn.args.defaults]
    return [(a.arg, d) for a, d in zip(args, defaults)]


def test_inference_signature_is_the_official_one():
    official = _official_signature("DepthAnything3.inference")
    params = list(inspect.signature(DepthAnything3.inference).parameters.values())[1:]
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == [n for n, _ in official]
    for p, (name, default) in zip(positional, official):
        if name == "image":  # required upstream; ours defaults to None for the `images` alias
            assert default is inspect.Parameter.empty and p.default is None
        elif name == "export_kwargs":  # official `{}` (mutable default), ours None: same meaning
            assert default == {} and p.default is None
        else:
            assert p.default == default and type(p.default) is type(default), name
    extras = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    assert extras == ["compute_aux", "taps", "max_image_pixels", "downscale_large_images", "images"]


@needs_model
@pytest.mark.parametrize("kwargs, feature", [
    (dict(infer_gs=True), "infer_gs"),
    (dict(render_exts=np.eye(4)[None]), "render_exts"),
    (dict(render_ixts=np.eye(3)[None]), "render_ixts"),
    (dict(render_hw=(64, 64)), "render_hw"),
    (dict(export_dir="X", export_format="mini_npz-gs_ply"), "gs_ply"),
    (dict(export_dir="X", export_format="gs_video"), "gs_video"),
    (dict(process_res_method="upper_bound_crop"), "upper_bound_crop"),
])
def test_unported_features_raise_unsupported(tmp_path, kwargs, feature):
    model = DepthAnything3.from_file(GGUF)
    if "export_dir" in kwargs:
        kwargs = dict(kwargs, export_dir=tmp_path / "out")
    img = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(UnsupportedError, match=feature) as info:
        model.inference([img], process_res=56, **kwargs)
    assert isinstance(info.value, NotImplementedError)
    assert not (tmp_path / "out").exists()  # raised before anything ran or was written
    # the neutral values of those arguments are accepted
    model.inference([img], process_res=28, infer_gs=False, render_exts=None, export_feat_layers=[],
                    feat_vis_fps=30)


@needs_model
def test_image_keyword_and_deprecated_images_alias():
    model = DepthAnything3.from_file(GGUF)
    img = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    a = model.inference(image=[img], process_res=56)
    with pytest.warns(DeprecationWarning, match="image"):
        b = model.inference(images=[img], process_res=56)
    np.testing.assert_array_equal(a.depth, b.depth)
    with pytest.raises(TypeError, match="not both"):
        model.inference([img], images=[img])
    with pytest.raises(TypeError, match="missing"):
        model.inference()


@needs_model
def test_unknown_tap_names_raise():
    model = DepthAnything3.from_file(GGUF)
    img = np.zeros((40, 60, 3), np.uint8)
    pred = model.inference([img], process_res=28, taps=["vit.blk.0"])
    assert "vit.blk.0" in pred.aux
    with pytest.raises(ValueError, match="'vit.blk.nope'"):
        model.inference([img], process_res=28, taps=["vit.blk.0", "vit.blk.nope"])
    with pytest.raises(TypeError, match="taps"):
        model.inference([img], process_res=28, taps="vit.blk.0")


@needs_model
def test_top_level_export_options_override_export_kwargs(tmp_path):
    """As upstream: the top-level num_max_points / conf_thresh_percentile / show_cameras win
    over export_kwargs["glb"] (checked on the written PLY and GLB)."""
    pygltflib = pytest.importorskip("pygltflib")
    model = DepthAnything3.from_file(GGUF)
    img = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    model.inference([img], process_res=56, export_dir=tmp_path, export_format="ply-glb",
                    num_max_points=50, conf_thresh_percentile=0.0, show_cameras=False,
                    export_kwargs={"ply": {"num_max_points": 5}, "glb": {"num_max_points": 5, "export_depth_vis": False,
                                                                          "show_cameras": True}})
    header = (tmp_path / "scene.ply").read_bytes().split(b"end_header")[0].decode()
    assert "element vertex 50" in header
    glb = pygltflib.GLTF2().load(str(tmp_path / "scene.glb"))
    prims = [p for m in glb.meshes for p in m.primitives]
    points = [p for p in prims if p.mode == pygltflib.POINTS]
    assert len(points) == 1 and glb.accessors[points[0].attributes.POSITION].count == 50
    assert not [p for p in prims if p.mode == pygltflib.LINES]  # show_cameras=False won


# ---------------------------------------------------------------- outputs for serving users
@needs_model
def test_at_original_size_and_normals():
    model = DepthAnything3.from_file(GGUF)
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (90, 130, 3), dtype=np.uint8)
    pred = model.inference([img], process_res=56)
    assert pred.depth.shape == (1, 42, 56)
    full = pred.at_original_size(0)
    assert full["size"] == (130, 90) and full["depth"].shape == (90, 130) and full["depth"].dtype == np.float32
    assert full["conf"].shape == (90, 130)
    d = pred.depth[0].astype(np.float64)
    # bilinear with aligned pixel centres: values stay within the source range, means agree
    assert d.min() - 1e-5 <= full["depth"].min() and full["depth"].max() <= d.max() + 1e-5
    assert abs(full["depth"].mean() - d.mean()) < 0.02 * (d.max() - d.min())
    # intrinsics back at the original size: the official _resize_ixt scales inverted
    k = full["intrinsics"]
    np.testing.assert_allclose(k[0], pred.intrinsics[0][0] * 130 / 56, rtol=1e-6)
    np.testing.assert_allclose(k[1], pred.intrinsics[0][1] * 90 / 42, rtol=1e-6)
    with pytest.raises(ValueError, match="view"):
        pred.at_original_size(1)
    n = pred.normals(0)
    assert n.shape == (42, 56, 3) and n.dtype == np.float32
    ok = np.any(n != 0, axis=-1)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(np.linalg.norm(n[ok], axis=-1), 1.0, atol=1e-5)
    k = pred.intrinsics[0].astype(np.float64)
    u, v = np.meshgrid(np.arange(56), np.arange(42))
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u, dtype=np.float64)], -1)
    assert ((n * rays).sum(-1)[ok] <= 1e-6).all()  # oriented towards the camera


def test_resize_helpers_match_cv2():
    cv2 = pytest.importorskip("cv2")
    from depth_anything_cpp.api import _resize_bilinear, _resize_nearest

    rng = np.random.default_rng(3)
    a = rng.random((42, 56)).astype(np.float32)
    for h, w in ((90, 130), (42, 56), (100, 57)):
        np.testing.assert_allclose(_resize_bilinear(a, h, w), cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR),
                                   atol=1e-5)
    m = (rng.random((42, 56)) > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(_resize_nearest(m, 126, 168),
                                  cv2.resize(m, (168, 126), interpolation=cv2.INTER_NEAREST))


def test_normals_of_a_plane():
    from depth_anything_cpp import exports

    h, w = 30, 40
    k = np.array([[50.0, 0, 20], [0, 50.0, 15], [0, 0, 1]])
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    # plane z = 2 + 0.5 * x (tilted about the y axis): normal ~ (0.5, 0, -1) normalised
    depth = 2.0 / (1 - 0.5 * (u - 20) / 50.0)
    n = exports.depth_to_normals(depth.astype(np.float32), k)
    expect = np.array([0.5, 0.0, -1.0]) / np.linalg.norm([0.5, 0.0, -1.0])
    np.testing.assert_allclose(n[5:-5, 5:-5].reshape(-1, 3), np.tile(expect, ((h - 10) * (w - 10), 1)), atol=1e-4)
    rgb = exports.normals_to_rgb(np.tile(np.array([0, 0, -1.0]), (2, 2, 1)))
    assert (rgb == [128, 128, 255]).all()
    gray = exports.depth_to_gray8(np.array([[1.0, 2.0], [3.0, np.nan]]))
    np.testing.assert_array_equal(gray, [[0, 128], [255, 0]])
    np.testing.assert_array_equal(exports.depth_to_gray8(np.array([[1.0, 3.0]]), invert=True), [[255, 0]])


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8"), (".webp", b"RIFF")])
def test_write_image_follows_suffix(tmp_path, suffix, magic):
    from depth_anything_cpp import exports

    img = np.random.default_rng(4).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    exports.write_image(tmp_path / f"x{suffix}", img, quality=80)
    data = (tmp_path / f"x{suffix}").read_bytes()
    assert data.startswith(magic) and (suffix != ".webp" or data[8:12] == b"WEBP")
    with pytest.raises(ValueError, match="suffix"):
        exports.write_image(tmp_path / "x.gif", img)
    with pytest.raises(ValueError, match="quality"):
        exports.write_image(tmp_path / "y.jpg", img, quality=0)


@needs_model
def test_cli_depth_outputs(tmp_path):
    import json

    from PIL import Image

    from depth_anything_cpp import cli

    src = tmp_path / "in"
    src.mkdir()
    img = np.random.default_rng(5).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    Image.fromarray(img).save(src / "a.png")
    Image.fromarray(img).save(src / "b.bmp")
    out = tmp_path / "out"
    rc = cli.main(["depth", str(src), "-m", str(GGUF), "-o", str(out), "-q", "--no-vis", "--process-res", "56",
                   "--json", "--gray", "--normals", "--vis-format", "webp", "--original-size",
                   "--image-extensions", "png", "--ref-view-strategy", "first"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a.json", "a.npz", "a_depth.png", "a_depth_gray.png", "a_normals.webp"]  # b.bmp not taken
    info = json.loads((out / "a.json").read_text())
    assert (info["width"], info["height"]) == (100, 70)
    assert (info["processed_width"], info["processed_height"]) == (56, 42)
    assert (info["output_width"], info["output_height"]) == (100, 70)
    assert info["is_metric"] is False and len(info["extrinsics"]) == 3 and len(info["intrinsics"]) == 3
    assert info["depth_min"] <= info["depth_mean"] <= info["depth_max"] and info["seconds"] > 0
    z = np.load(out / "a.npz")
    assert z["depth"].shape == (70, 100) and z["image"].shape == (70, 100, 3) and z["normals"].shape == (70, 100, 3)
    with Image.open(out / "a_depth_gray.png") as g:
        assert g.mode == "L" and g.size == (100, 70)
    assert (out / "a_normals.webp").read_bytes()[8:12] == b"WEBP"


@needs_model
def test_cli_unported_and_variant(tmp_path, capsys):
    from depth_anything_cpp import _variants, cli

    src = SOH_000
    base = ["depth", str(src), "-m", str(GGUF), "-o", str(tmp_path / "o"), "-q", "--no-vis", "--process-res", "28"]
    assert cli.main(base + ["--export-feat", "0,1"]) == 2
    assert "feat_vis format only" in capsys.readouterr().err
    exp = ["export", str(src), "-m", str(GGUF), "-o", str(tmp_path / "e"), "-q", "--process-res", "28"]
    assert cli.main(exp + ["--format", "feat_vis"]) == 2
    assert "needs --export-feat" in capsys.readouterr().err
    assert cli.main(exp + ["--format", "mini_npz-feat_vis", "--export-feat", "0,3", "--feat-vis-fps", "2"]) == 0
    assert (tmp_path / "e" / SOH_000.stem / "feat_vis" / "feat_layer_3" / "000000.jpg").is_file()
    runnable = [v for v in _variants.available_variants() if v.startswith("cpu_") and not _variants._missing_features(v)]
    for v in runnable:
        assert cli.main(base + ["--variant", v]) == 0, capsys.readouterr().err
    assert cli.main(base + ["--variant", "cpu_nosuch"]) == 2
    assert "unknown variant" in capsys.readouterr().err


REFERENCE_NPZ = SHARED / "fixtures" / "da3-small-anchor-layout" / "reference_SOH_000.npz"


@needs_model
@pytest.mark.skipif(not REFERENCE_NPZ.is_file(), reason="fixture reference missing")
def test_image_at_processed_size_end_to_end():
    """An image already at the processed size (504x280) goes through unchanged: inference
    on it equals the network on the official input tensor for it, bit for bit, and the
    official PyTorch outputs of the fixture (issue 20, item 10)."""
    z = np.load(REFERENCE_NPZ)
    x = z["input"][0]  # (1, 3, 280, 504): the official tensor for SOH_000
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    u = (x[0].transpose(1, 2, 0).astype(np.float64) * std + mean) * 255
    img = np.rint(u).astype(np.uint8)
    assert np.abs(u - img).max() < 1e-3  # the tensor is exactly an 8-bit image
    model = DepthAnything3.from_file(GGUF, precision="f32")  # parity mode ("auto": bf16 for f16 files)
    pred = model.inference([img])
    assert pred.depth.shape == (1, 280, 504)
    rgb, x_ours = da3._core.preprocess([img])
    np.testing.assert_array_equal(x_ours, x)
    out = model._model.infer_tensor(np.ascontiguousarray(x))
    np.testing.assert_array_equal(pred.depth, out["depth"])
    np.testing.assert_array_equal(pred.extrinsics, out["extrinsics"])
    rng = float(z["depth"].max() - z["depth"].min())
    assert np.abs(pred.depth - z["depth"]).max() / rng <= 2e-3
    np.testing.assert_allclose(pred.extrinsics, z["extrinsics"], atol=2e-3)


# ---------------------------------------------------------------- construction (item 3)
def test_presets_cover_the_official_names():
    from depth_anything_cpp import hub

    official = ["da3-giant", "da3-large", "da3-base", "da3-small", "da3mono-large", "da3metric-large",
                "da3nested-giant-large"]
    assert set(official) <= set(hub.PRESETS)
    assert hub.DEFAULT_MODEL in hub.PRESETS.values()
    assert hub.preset_repo("DA3-SMALL") == "depth-anything/DA3-SMALL"
    assert hub.preset_repo("da3nested-giant-large-1.1") == "depth-anything/DA3NESTED-GIANT-LARGE-1.1"


def test_preset_offline_error_says_what_to_download(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("huggingface_hub")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), DA3CPP_CACHE=str(tmp_path / "c"),
               PYTHONPATH=str(Path(da3.__file__).parents[1]))
    code = ("import depth_anything_cpp as d\n"
            "try:\n d.DepthAnything3(model_name='da3-small')\n"
            "except d.ModelLoadError as e:\n print('ERR', e)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ERR" in r.stdout, r.stdout + r.stderr
    for text in ("depth-anything/DA3-SMALL", "https://huggingface.co/depth-anything/DA3-SMALL",
                 "huggingface-cli download", "config.json model.safetensors", str(tmp_path / "hf"),
                 str(tmp_path / "c")):
        assert text in r.stdout, (text, r.stdout)


@pytest.fixture(scope="module")
def small_snapshot(reference):
    from reference import make_cases

    return make_cases.model_snapshot(make_cases.SMALL)


@needs_model
def test_preset_name_resolves_converts_once_and_caches(small_snapshot, tmp_path):
    """DepthAnything3(model_name="da3-small") and from_pretrained("depth-anything/DA3-SMALL")
    find the official snapshot in the Hugging Face cache (offline here), convert it once
    and reuse the GGUF."""
    import subprocess
    import sys

    rev = "0" * 40
    repo = tmp_path / "hub" / "models--depth-anything--DA3-SMALL"
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    for name in ("config.json", "model.safetensors"):
        (snap / name).symlink_to(Path(small_snapshot) / name)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"),
               DA3CPP_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(Path(da3.__file__).parents[1]))
    code = ("import json, numpy as np\nfrom depth_anything_cpp import DepthAnything3\n"
            "a = DepthAnything3(model_name='da3-small')\n"
            "b = DepthAnything3.from_pretrained('depth-anything/DA3-SMALL')\n"
            "c = DepthAnything3.from_pretrained('DA3-SMALL').to('cpu')\n"
            "p = c.inference([np.zeros((28, 42, 3), np.uint8)], process_res=42)\n"
            "print(json.dumps([str(a.path), str(b.path), str(c.path), a.info['preset'], list(p.depth.shape)]))\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import json

    a, b, c, preset, shape = json.loads(r.stdout.strip().splitlines()[-1])
    assert a == b == c and Path(a).parent == tmp_path / "cache" and preset == "da3-small"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [Path(a).name]  # converted once
    assert shape == [1, 28, 42]


@needs_model
def test_to_device():
    from depth_anything_cpp import VariantError, _variants

    model = DepthAnything3.from_file(GGUF)
    assert model.to("cpu") is model
    img = np.zeros((28, 42, 3), np.uint8)
    ref = model.inference([img], process_res=42).depth
    for dev in ("cuda", "vulkan"):
        if dev not in _variants.available_variants():
            with pytest.raises(VariantError, match=dev) as info:
                model.to(dev)
            assert "available" in str(info.value)
    for bad in ("tpu", "cuda:x", "cpu:-3"):
        with pytest.raises(ValueError, match="device"):
            model.to(bad)
    np.testing.assert_array_equal(model.to("cpu").inference([img], process_res=42).depth, ref)
    with pytest.raises(TypeError, match="only apply"):
        DepthAnything3(GGUF, revision="main")


# ---------------------------------------------------------------- da3cpp colmap (item 6)
SOH_010 = SHARED / "data" / "da3_examples" / "assets_examples_SOH_010.png"


@pytest.fixture(scope="module")
def small_gguf_with_encoder(reference):
    from reference import make_cases

    return make_cases.model_gguf(make_cases.SMALL, "f16")


@needs_model
def test_cli_colmap_input_poses(small_gguf_with_encoder, tmp_path, capsys):
    """A COLMAP model written by our exporter is read back as input poses: with
    align_to_input_ext_scale the prediction returns those poses (checked through the
    mini_npz), and the scene is written."""
    pytest.importorskip("pycolmap")
    import shutil

    from depth_anything_cpp import cli

    scene = tmp_path / "scene"
    (scene / "images").mkdir(parents=True)
    for p in (SOH_000, SOH_010):
        shutil.copy(p, scene / "images" / p.name)
    model = DepthAnything3.from_file(small_gguf_with_encoder)
    pred = model.inference([str(scene / "images" / p.name) for p in (SOH_000, SOH_010)], process_res=140,
                           export_dir=scene / "sparse" / "0", export_format="colmap")
    paths, ext, intr = cli.read_colmap_inputs(scene, "0")
    assert [p.name for p in paths] == [SOH_000.name, SOH_010.name]
    np.testing.assert_allclose(ext[:, :3], pred.extrinsics, atol=1e-5)
    assert intr.shape == (2, 3, 3) and intr[0, 0, 0] > 0
    out = tmp_path / "out"
    rc = cli.main(["colmap", str(scene), "--sparse-subdir", "0", "-m", str(small_gguf_with_encoder),
                   "-o", str(out), "--format", "mini_npz", "--process-res", "140", "-q"])
    assert rc == 0, capsys.readouterr().err
    z = np.load(out / "exports" / "mini_npz" / "results.npz")
    np.testing.assert_allclose(z["extrinsics"], ext[:, :3], atol=1e-4)  # the input poses come back
    assert cli.main(["colmap", str(scene), "--sparse-subdir", "9", "-m", str(small_gguf_with_encoder),
                     "-o", str(out), "-q"]) == 2
    assert "sparse model directory not found" in capsys.readouterr().err
    # the published-layout fixture has no camera encoder: a clear error, exit 1
    assert cli.main(["colmap", str(scene), "--sparse-subdir", "0", "-m", str(GGUF), "-o", str(out), "-q",
                     "--format", "mini_npz"]) == 1
    assert "camera encoder" in capsys.readouterr().err


# ---------------------------------------------------------------- export_feat_layers (item 2)
@needs_model
def test_export_feat_layers_match_official(reference, fixture_dir, data_dir):
    """aux["feat_layer_<i>"] against the official network's on the fixture's weights and
    the official input tensor (shapes, dtype, values)."""
    import torch

    z = np.load(fixture_dir / "reference_SOH_000.npz")
    x = z["input"][0]
    net = reference.build_model("da3-small")
    reference.load_gguf_weights(net, fixture_dir / "da3-small-rand-f16.gguf")
    layers = [0, 5, 11]
    with torch.no_grad():
        out = net(torch.from_numpy(x)[None], None, None, export_feat_layers=layers)
    model = DepthAnything3.from_file(GGUF, precision="f32")  # parity mode ("auto": bf16 for f16 files)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    img = np.rint((x[0].transpose(1, 2, 0).astype(np.float64) * std + mean) * 255).astype(np.uint8)
    pred = model.inference([img], export_feat_layers=layers)
    for i in layers:
        ref = out["aux"][f"feat_layer_{i}"].squeeze(0).numpy()  # as output_processor._extract_aux
        ours = pred.aux[f"feat_layer_{i}"]
        assert ours.shape == ref.shape == (1, 20, 36, 384) and ours.dtype == np.float32
        err = np.abs(ours - ref).max() / (ref.max() - ref.min())
        assert err < 1e-4, (i, err)
    assert not [k for k in pred.aux if k.startswith("vit.")]
    with pytest.raises(ValueError, match="out of range"):
        model.inference([img], export_feat_layers=[12])
    with pytest.raises(TypeError, match="export_feat_layers"):
        model.inference([img], export_feat_layers="0,1")


@needs_model
def test_feat_vis_export(tmp_path):
    model = DepthAnything3.from_file(GGUF)
    rng = np.random.default_rng(6)
    imgs = [rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(3)]
    with pytest.raises(ValueError, match="export_feat_layers"):
        model.inference(imgs, process_res=56, export_dir=tmp_path / "x", export_format="feat_vis")
    assert not (tmp_path / "x").exists()
    pred = model.inference(imgs, process_res=56, export_dir=tmp_path, export_format="feat_vis",
                           export_feat_layers=[2, 11], feat_vis_fps=5)
    for key in ("feat_layer_2", "feat_layer_11"):
        names = sorted(p.name for p in (tmp_path / "feat_vis" / key).iterdir())
        assert names == ["000000.jpg", "000001.jpg", "000002.jpg"]
        from PIL import Image

        with Image.open(tmp_path / "feat_vis" / key / "000000.jpg") as im:
            assert im.size == (112, 42)  # image | features, side by side
    av = pytest.importorskip("av")
    with av.open(str(tmp_path / "feat_vis" / "feat_layer_2.mp4")) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        assert len(frames) == 3 and float(stream.average_rate) == 5.0
        assert (frames[0].width, frames[0].height) == (112, 42)
    assert pred.aux["feat_layer_2"].shape == (3, 3, 4, 384)


def test_features_to_rgb_matches_official_pca():
    pytest.importorskip("torch")
    pca_utils = pytest.importorskip("depth_anything_3.utils.pca_utils")
    from depth_anything_cpp import exports

    rng = np.random.default_rng(7)
    # features with a clear 3-D principal subspace plus noise
    basis = rng.normal(size=(3, 64))
    coef = rng.normal(size=(2, 10, 12, 3)) * np.array([5.0, 3.0, 2.0])
    feats = (coef @ basis + 0.1 * rng.normal(size=(2, 10, 12, 64))).astype(np.float32)
    viz = pca_utils.PCARGBVisualizer(device="cpu", basis_mode="fixed", percentile_mode="global", clip_percent=10.0)
    viz.fit_reference(feats)
    ref = (viz.transform_video(feats) * 255).astype(np.uint8).astype(int)
    ours = exports.features_to_rgb(feats).astype(int)
    for c in range(3):  # principal axes are defined up to their sign
        d = min(np.abs(ours[..., c] - ref[..., c]).mean(), np.abs(ours[..., c] - (255 - ref[..., c])).mean())
        assert d < 2.0, (c, d)


@pytest.mark.skipif(da3._core is None or not hasattr(da3._core, "points"), reason="compiled core missing")
def test_sky_depth_def_fills_kept_sky_like_the_official_glb():
    from depth_anything_cpp import Prediction, exports

    h, w = 6, 8
    depth = np.arange(1, h * w + 1, dtype=np.float32).reshape(1, h, w)
    sky = np.zeros((1, h, w), bool)
    sky[0, :2] = True
    k = np.array([[[10.0, 0, 4], [0, 10.0, 3], [0, 0, 1]]], np.float32)
    pred = Prediction(depth=depth.copy(), is_metric=0, sky=sky, extrinsics=np.eye(3, 4, dtype=np.float32)[None],
                      intrinsics=k, processed_images=np.zeros((1, h, w, 3), np.uint8))
    pts = pred.points(remove_sky=False, sky_depth_def=98.0, num_max_points=0)
    fill = np.percentile(depth[~sky], 98.0)  # ref: glb.py set_sky_depth
    z = pts["xyz"][:, 2]
    rows = pts["pixel"][:, 1]
    np.testing.assert_allclose(z[rows < 2], fill, rtol=1e-6)
    np.testing.assert_allclose(z[rows >= 2], depth[0, 2:].ravel(), rtol=1e-6)
    np.testing.assert_array_equal(pred.depth, depth)  # the prediction is not modified
    assert len(pred.points(num_max_points=0)["xyz"]) == h * w - 2 * w  # sky removed by default
    assert len(pred.points(remove_sky=False, num_max_points=0)["xyz"]) == h * w
    assert exports.check_options("glb-ply", {"glb": {"sky_depth_def": 90.0}, "ply": {"sky_depth_def": None}})
    with pytest.raises(ValueError, match="sky_depth_def"):
        pred.points(remove_sky=False, sky_depth_def=120.0)
