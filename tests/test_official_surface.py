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
    assert extras == ["compute_aux", "taps", "images"]


@needs_model
@pytest.mark.parametrize("kwargs, feature", [
    (dict(infer_gs=True), "infer_gs"),
    (dict(render_exts=np.eye(4)[None]), "render_exts"),
    (dict(render_ixts=np.eye(3)[None]), "render_ixts"),
    (dict(render_hw=(64, 64)), "render_hw"),
    (dict(export_feat_layers=[0, 3]), "export_feat_layers"),
    (dict(export_dir="X", export_format="mini_npz-gs_ply"), "gs_ply"),
    (dict(export_dir="X", export_format="gs_video"), "gs_video"),
    (dict(export_dir="X", export_format="feat_vis"), "feat_vis"),
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
                    export_kwargs={"ply": {"num_max_points": 5}, "glb": {"num_max_points": 5,
                                                                          "show_cameras": True}})
    header = (tmp_path / "scene.ply").read_bytes().split(b"end_header")[0].decode()
    assert "element vertex 50" in header
    glb = pygltflib.GLTF2().load(str(tmp_path / "scene.glb"))
    prims = [p for m in glb.meshes for p in m.primitives]
    points = [p for p in prims if p.mode == pygltflib.POINTS]
    assert len(points) == 1 and glb.accessors[points[0].attributes.POSITION].count == 50
    assert not [p for p in prims if p.mode == pygltflib.LINES]  # show_cameras=False won
