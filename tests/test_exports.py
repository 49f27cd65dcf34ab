"""``depth_anything_cpp.exports.export`` and ``DepthAnything3.inference(export_dir=...)``:
format parsing and validation, every format written and read back with an independent
reader (numpy, Pillow, trimesh, pygltflib, pycolmap), directory errors, atomicity.

The real-data cases run the compiled core on the fixture GGUF (da3-small, random weights)
with the SOH pair at process_res 252; they are skipped with the reason when the core or
the shared data is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import depth_anything_cpp as da3
from depth_anything_cpp import DepthAnything3, Prediction, exports

from conftest import DATA_DIR, FIXTURE_DIR

GGUF = FIXTURE_DIR / "da3-small-rand-f16.gguf"
SOH = [DATA_DIR / "da3_examples" / f"assets_examples_SOH_0{i}.png" for i in ("00", "10")]
RES = 252

needs_core = pytest.mark.skipif(da3._core is None or not hasattr(da3._core, "points"),
                                reason=f"compiled core with points/exports not loadable: {da3._core_reason}")
needs_data = pytest.mark.skipif(not (GGUF.is_file() and all(p.is_file() for p in SOH)),
                                reason="shared fixture/data missing")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------ parsing, no core
def test_parse_export_format():
    assert exports.parse_export_format("mini_npz") == ["mini_npz"]
    assert exports.parse_export_format("mini_npz-glb-colmap") == ["mini_npz", "glb", "colmap"]
    assert exports.parse_export_format("glb-glb-npz") == ["glb", "npz"]
    assert exports.parse_export_format(["ply", "depth"]) == ["ply", "depth"]
    with pytest.raises(ValueError) as exc:
        exports.parse_export_format("mini_npz-glbx")
    msg = str(exc.value)
    assert "'glbx'" in msg
    with pytest.raises(da3.UnsupportedError, match="'gs_ply'"):  # official but not ported
        exports.parse_export_format("mini_npz-gs_ply")
    assert all(name in msg for name in exports.FORMATS)  # lists the valid ones
    for bad in ("", "glb-", "-"):
        with pytest.raises(ValueError, match="valid formats"):
            exports.parse_export_format(bad)
    with pytest.raises(TypeError):
        exports.parse_export_format(3)


def test_registry_is_the_formats_package(capsys):
    # one module per format in exports/formats/ (those starting with _ are helpers), each
    # reaching export(), check_options() and the CLI's help
    import pkgutil

    from depth_anything_cpp import cli
    from depth_anything_cpp.exports import formats

    modules = {m.name for m in pkgutil.iter_modules(formats.__path__) if not m.name.startswith("_")}
    assert set(exports.FORMATS) == modules == set(exports.REGISTRY)
    assert exports.FORMATS[:2] == ("mini_npz", "npz")  # official first, in upstream order
    resolved = exports.check_options("-".join(exports.FORMATS), {})
    assert resolved == {name: dict(fmt.options) for name, fmt in exports.REGISTRY.items()}
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    help_text = capsys.readouterr().out
    for name, fmt in exports.REGISTRY.items():
        assert f"  {name:<10} {fmt.summary}" in help_text
        for option, value in fmt.options.items():  # every option accepted by its name
            assert exports.check_options(name, {name: {option: value}})[name][option] == value


def _synthetic(n=2, h=20, w=30, *, cameras=True, metric=0) -> Prediction:
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 5.0, (n, h, w)).astype(np.float32)
    k = np.array([[25.0, 0, w / 2], [0, 25.0, h / 2], [0, 0, 1]], np.float32)
    return Prediction(
        depth=depth, is_metric=metric, conf=rng.uniform(1.0, 3.0, (n, h, w)).astype(np.float32),
        extrinsics=np.repeat(np.eye(3, 4, dtype=np.float32)[None], n, 0) if cameras else None,
        intrinsics=np.repeat(k[None], n, 0) if cameras else None,
        processed_images=rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8))


def test_everything_validated_before_writing(tmp_path):
    pred = _synthetic()
    out = tmp_path / "out"
    cases = [
        (ValueError, "valid formats", dict(export_format="npz-nope")),
        (TypeError, "unknown option", dict(export_format="npz-glb", glb={"no_such": 1})),
        (TypeError, "per-format options", dict(export_format="npz", show_cameras=False)),
        (ValueError, "unknown colormap", dict(export_format="npz-depth_vis", depth_vis={"cmap": "nope"})),
        (ValueError, "num_max_points", dict(export_format="npz-ply", ply={"num_max_points": -1})),
        (ValueError, "original image sizes", dict(export_format="npz-colmap")),  # no paths, no sizes
        # issue 19: non-finite or huge numbers used to fail after scene.ply / exports/ existed
        (ValueError, "camera_size: expected a finite", dict(export_format="ply-glb", glb={"camera_size": float("inf")})),
        (ValueError, "num_max_points", dict(export_format="mini_npz-glb", glb={"num_max_points": 1e300})),
        (ValueError, "num_max_points", dict(export_format="npz-ply", ply={"num_max_points": float("nan")})),
        (ValueError, "num_max_points", dict(export_format="ply", ply={"num_max_points": 2**63})),
        (ValueError, "conf_thresh: expected a finite", dict(export_format="ply", ply={"conf_thresh": float("nan")})),
        (ValueError, "seed", dict(export_format="ply", ply={"seed": -1})),
    ]
    for exc_type, match, kwargs in cases:
        fmt = kwargs.pop("export_format")
        with pytest.raises(exc_type, match=match):
            exports.export(pred, fmt, out, **kwargs)
        assert not out.exists(), fmt
    no_cams = _synthetic(cameras=False)
    for fmt in ("mini_npz-glb", "depth-colmap", "ply"):
        with pytest.raises(ValueError, match="extrinsics"):
            exports.export(no_cams, fmt, out)
    assert not out.exists()
    # formats that need no camera work without one
    written = exports.export(no_cams, "mini_npz-depth-disparity-depth_vis", out)
    assert set(written) == {"mini_npz", "depth", "disparity", "depth_vis"}


def test_export_dir_errors_leave_nothing(tmp_path):
    pred = _synthetic()
    a_file = tmp_path / "file"
    a_file.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        exports.export(pred, "npz", a_file)
    with pytest.raises(OSError):
        exports.export(pred, "npz", a_file / "sub")  # parent is a file
    assert a_file.read_bytes() == b"x" and _files(tmp_path) == ["file"]
    nested = tmp_path / "a" / "b" / "c"  # missing parents are created
    assert exports.export(pred, "npz", nested)["npz"] == [nested / "exports" / "npz" / "results.npz"]


def test_unwritable_export_dir_is_refused_before_writing(tmp_path, monkeypatch):
    # as root the kernel ignores permissions, so the access check itself is exercised here
    monkeypatch.setattr(exports.files.os, "access", lambda path, mode: Path(path) != tmp_path / "ro")
    (tmp_path / "ro").mkdir()
    with pytest.raises(PermissionError, match="not writable"):
        exports.export(_synthetic(), "npz-depth", tmp_path / "ro")
    assert _files(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="platform: root ignores directory permissions")
def test_read_only_export_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            exports.export(_synthetic(), "npz-depth", ro)
        assert _files(ro) == []
    finally:
        ro.chmod(0o755)


def test_failed_format_leaves_complete_files_only(tmp_path, monkeypatch):
    pred = _synthetic()

    def boom(path, xyz, rgb):
        exports.atomic_write_bytes(path, lambda f: (f.write(b"ply\n"), 1 / 0))
    monkeypatch.setattr(exports.scene, "write_ply", boom)
    monkeypatch.setattr(Prediction, "points", lambda self, **k: {"xyz": np.zeros((1, 3), np.float32),
                                                                 "rgb": np.zeros((1, 3), np.uint8)})
    with pytest.raises(ZeroDivisionError):
        exports.export(pred, "depth-ply-npz", tmp_path)
    # depth done, ply absent (no temp file), npz never started
    assert _files(tmp_path) == ["depth/0000.png", "depth/0001.png"]


def test_disparity_and_depth_png_round_trip(tmp_path):
    pred = _synthetic(metric=1)
    pred.depth[0, 0, :3] = [np.nan, 0.0, -1.0]
    exports.export(pred, "depth-disparity", tmp_path)
    for i in range(2):
        depth, meta = exports.read_depth_png16(tmp_path / "depth" / f"{i:04d}.png")
        assert meta["encoding"] == "metric_mm"
        valid = np.isfinite(pred.depth[i]) & (pred.depth[i] > 0)
        assert np.abs(depth[valid] - pred.depth[i][valid]).max() <= 5e-4 + 1e-6
        assert np.isnan(depth[~valid]).all()
        disp, meta = exports.read_depth_png16(tmp_path / "disparity" / f"{i:04d}.png")
        assert meta["encoding"] == "disparity_linear"
        with Image.open(tmp_path / "disparity" / f"{i:04d}.png") as img:
            assert img.mode.startswith("I") and np.asarray(img).max() == 65535
        assert np.abs(disp[valid] - 1 / pred.depth[i][valid]).max() <= meta["scale"] / 2 + 1e-7
        assert (disp[~valid] == 0).all()


def test_colorize_invert_and_official_look():
    import matplotlib

    depth = np.tile(np.linspace(1, 10, 64, dtype=np.float32), (8, 1))
    cmap = matplotlib.colormaps["magma"]
    top, low = (np.array(cmap(x, bytes=True)[:3]) for x in (1.0, 0.0))
    near_high = exports.colorize_depth(depth, "magma")
    near_low = exports.colorize_depth(depth, "magma", invert=True)
    np.testing.assert_array_equal(near_high[3, 0], top)
    np.testing.assert_array_equal(near_high[3, -1], low)
    np.testing.assert_array_equal(near_low[3, 0], low)
    np.testing.assert_array_equal(near_low[3, -1], top)
    for name in ("viridis", "inferno", "plasma", "turbo", "gray"):
        assert exports.colorize_depth(depth, name).shape == (8, 64, 3)
    try:  # bit-exact with the official visualize_depth (imports torch: slow, optional)
        from depth_anything_3.utils.visualize import visualize_depth
    except Exception:  # noqa: BLE001 - any import problem: skip this half
        return
    depth = np.random.default_rng(3).uniform(0.5, 20.0, (40, 50)).astype(np.float32)
    np.testing.assert_array_equal(exports.colorize_depth(depth, "Spectral", invert=True),
                                  visualize_depth(depth))


# ------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def soh(tmp_path_factory):
    if da3._core is None or not hasattr(da3._core, "points"):
        pytest.skip(f"compiled core with points not loadable: {da3._core_reason}")
    if not (GGUF.is_file() and all(p.is_file() for p in SOH)):
        pytest.skip("shared fixture/data missing")
    model = DepthAnything3.from_file(GGUF)
    out = tmp_path_factory.mktemp("soh")
    kwargs = {"glb": {"camera_size": 0.05}}
    pred = model.inference([str(p) for p in SOH], process_res=RES, export_dir=out,
                           export_format="-".join(exports.FORMATS), export_kwargs=kwargs,
                           export_feat_layers=[11])
    assert kwargs == {"glb": {"camera_size": 0.05}}  # not modified
    return model, pred, out


def test_inference_export_writes_every_format(soh):
    _, pred, out = soh
    n, h, w = pred.depth.shape
    assert (n, w) == (2, RES)
    assert pred.original_sizes == [(1208, 680)] * 2 and pred.image_paths == [str(p) for p in SOH]
    expected = ["cameras.bin", "exports/mini_npz/results.npz", "exports/npz/results.npz", "images.bin",
                "points3D.bin", "scene.glb", "scene.jpg", "scene.ply"]
    for sub, ext in (("depth", "png"), ("disparity", "png"), ("depth_vis", "jpg")):
        expected += [f"{sub}/{i:04d}.{ext}" for i in range(n)]
    expected += [f"feat_vis/feat_layer_11/{i:06d}.jpg" for i in range(n)]
    try:
        import av  # noqa: F401
        expected.append("feat_vis/feat_layer_11.mp4")
    except ImportError:
        pass
    assert _files(out) == sorted(expected)
    assert not [p for p in out.rglob("*.tmp")]


def test_npz_keys_shapes_rounding(soh):
    _, pred, out = soh
    n, h, w = pred.depth.shape
    mini = np.load(out / "exports" / "mini_npz" / "results.npz")
    assert sorted(mini.files) == ["conf", "depth", "extrinsics", "intrinsics"]
    np.testing.assert_array_equal(mini["depth"], np.round(pred.depth, 8))
    np.testing.assert_array_equal(mini["conf"], np.round(pred.conf, 2))
    assert mini["extrinsics"].shape == (n, 3, 4) and mini["intrinsics"].shape == (n, 3, 3)
    full = np.load(out / "exports" / "npz" / "results.npz")
    assert sorted(full.files) == ["conf", "depth", "extrinsics", "image", "intrinsics"]  # no sky head
    np.testing.assert_array_equal(full["image"], pred.processed_images)
    np.testing.assert_array_equal(full["depth"], np.round(pred.depth, 6))
    assert full["image"].dtype == np.uint8 and full["image"].shape == (n, h, w, 3)


def test_depth_pngs_and_vis(soh):
    _, pred, out = soh
    n, h, w = pred.depth.shape
    for i in range(n):
        depth, meta = exports.read_depth_png16(out / "depth" / f"{i:04d}.png")
        span = float(pred.depth[i].max() - pred.depth[i].min())
        assert meta["encoding"] == "relative_minmax"
        assert np.abs(depth - pred.depth[i]).max() <= span / 65535 * 0.51 + 1e-6
        with Image.open(out / "depth_vis" / f"{i:04d}.jpg") as img:
            assert img.format == "JPEG" and img.size == (2 * w, h)
            vis = np.asarray(img.convert("RGB")).astype(int)
        # left: the processed image; right: the colorized depth (JPEG tolerance)
        assert np.abs(vis[:, :w] - pred.processed_images[i]).mean() < 6
        ref = exports.colorize_depth(pred.depth[i], "Spectral_r").astype(int)
        assert np.abs(vis[:, w:] - ref).mean() < 6
    assert (out / "scene.jpg").read_bytes() == (out / "depth_vis" / "0000.jpg").read_bytes()


def test_ply_and_glb_match_points(soh):
    trimesh = pytest.importorskip("trimesh")
    pygltflib = pytest.importorskip("pygltflib")
    _, pred, out = soh
    pts = pred.points()  # the glb/ply defaults
    m = len(pts["xyz"])
    assert 0 < m <= pred.depth.size
    cloud = trimesh.load(out / "scene.ply")
    assert len(cloud.vertices) == m
    np.testing.assert_allclose(cloud.vertices, pts["xyz"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(cloud.colors)[:, :3], pts["rgb"])
    with open(out / "scene.ply", "rb") as f:
        header = f.read(300).split(b"end_header\n")[0].decode()
    assert "binary_little_endian" in header and f"element vertex {m}" in header

    gltf = pygltflib.GLTF2().load(str(out / "scene.glb"))
    prims = [p for mesh in gltf.meshes for p in mesh.primitives]
    points = [p for p in prims if p.mode == pygltflib.POINTS]
    lines = [p for p in prims if p.mode == pygltflib.LINES]
    assert len(points) == 1 and len(lines) == 2  # one frustum per view (show_cameras)
    assert gltf.accessors[points[0].attributes.POSITION].count == m
    assert gltf.accessors[points[0].attributes.COLOR_0].count == m


def test_colmap_model(soh):
    pycolmap = pytest.importorskip("pycolmap")
    _, pred, out = soh
    rec = pycolmap.Reconstruction(str(out))
    h, w = pred.depth.shape[1:]
    names = sorted(img.name for img in rec.images.values())
    assert names == [p.name for p in SOH]
    for cam in rec.cameras.values():
        assert (cam.width, cam.height) == (1208, 680)
        assert cam.model == pycolmap.CameraModelId.PINHOLE
    # official threshold: percentile 40 of conf, no cap, sky kept
    pts = pred.points(conf_thresh=0.0, ensure_thresh_percentile=100.0, num_max_points=0, remove_sky=False)
    assert len(rec.points3D) == len(pts["xyz"])
    # reprojection of a sample of points lands on their observation
    for img in rec.images.values():
        cam = rec.cameras[img.camera_id]
        obs = [p for p in img.points2D if p.has_point3D()][::997]
        assert obs
        for p2d in obs:
            xyz = rec.points3D[p2d.point3D_id].xyz
            uv = cam.img_from_cam(img.cam_from_world() * xyz)
            np.testing.assert_allclose(uv, p2d.xy, atol=2e-2)


def test_inference_arrays_colmap_text_and_bad_format(soh, tmp_path):
    model, _, _ = soh
    rgb = [np.asarray(Image.open(p).convert("RGB"))[:, :600] for p in SOH]
    with pytest.raises(ValueError, match="valid formats"):
        model.inference(rgb, process_res=RES, export_dir=tmp_path / "x", export_format="glb-bogus")
    assert not (tmp_path / "x").exists()
    pred = model.inference(rgb, process_res=RES, export_dir=tmp_path, export_format="colmap",
                           export_kwargs={"colmap": {"binary": False}})
    assert pred.original_sizes == [(600, 680)] * 2 and pred.image_paths == [None, None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cameras.txt", "images.txt", "points3D.txt"]
    text = (tmp_path / "images.txt").read_text()
    assert "0000.png" in text and "0001.png" in text
    assert "PINHOLE 600 680" in (tmp_path / "cameras.txt").read_text()


def test_points_arguments_are_bounded():
    pred = _synthetic()
    for kwargs, match in [({"num_max_points": 1e300}, "num_max_points"), ({"num_max_points": 2.5}, "num_max_points"),
                          ({"seed": 2**64}, "seed"), ({"sky_thresh": float("inf")}, "sky_thresh"),
                          ({"conf_thresh": "x"}, "conf_thresh")]:
        with pytest.raises(ValueError, match=match):
            pred.points(**kwargs)
    assert len(pred.points(num_max_points=10.0)["xyz"]) == 10  # an integral float is a count


def test_temp_files_never_follow_planted_links(tmp_path, monkeypatch):
    """Issue 19: the old temp name (.<name>.<pid>.tmp, <path>.tmp.<pid> in C++) was
    predictable and opened without O_EXCL, so a planted symlink made an export overwrite its
    target. Now temp files are new files under random names."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    pid = os.getpid()
    for name in ("scene.ply", "scene.glb", "cameras.bin", "images.bin", "points3D.bin"):
        (out / f".{name}.{pid}.tmp").symlink_to(victim)  # the old Python temp name
        (out / f"{name}.tmp.{pid}").symlink_to(victim)   # the old C++ temp name
    pred = _synthetic()
    pred.original_sizes = [(pred.depth.shape[2], pred.depth.shape[1])] * pred.depth.shape[0]
    exports.export(pred, "ply-glb-colmap", out)
    assert victim.read_text() == "keep"
    assert (out / "scene.ply").is_file() and not (out / "scene.ply").is_symlink()
    assert (out / "points3D.bin").is_file() and not (out / "points3D.bin").is_symlink()
    left = sorted(p.name for p in out.iterdir() if "tmp" in p.name and not p.is_symlink())
    assert left == []  # no temp file remains
    mode = (out / "scene.ply").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600


def test_write_errors_name_the_path(tmp_path):
    def fail(f):
        raise OSError(28, "No space left on device")  # what a full disk gives, without a file name

    with pytest.raises(OSError, match="No space left on device") as info:
        exports.atomic_write_bytes(tmp_path / "full.bin", fail)
    assert info.value.filename == str(tmp_path / "full.bin") and "full.bin" in str(info.value)
    assert list(tmp_path.iterdir()) == []
