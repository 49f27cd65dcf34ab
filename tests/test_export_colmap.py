"""Compiled `export_colmap`: binary and text COLMAP models read back with pycolmap (cameras,
poses, observations, reprojection), atomic writes, bad input; and the official SOH pair run
through the fixture model giving a two-view GLB and COLMAP model.
ref: depth_anything_3/utils/export/colmap.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from depth_anything_cpp.api import get_core
from helpers import random_rotation  # noqa: E402

pycolmap = pytest.importorskip("pycolmap")

core = get_core()
H, W = 30, 40
ORIG = [(400, 300), (640, 360), (41, 31)]  # (width, height); non-uniform scales on purpose
NAMES = ["a.png", "b.jpg", "c_0001.png"]


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(21)
    n = 3
    depth = rng.uniform(1.0, 6.0, (n, H, W)).astype(np.float32)
    K = np.zeros((n, 3, 3), np.float32)
    ext = np.zeros((n, 3, 4), np.float32)
    for i in range(n):
        K[i] = [[rng.uniform(30, 50), 0, W / 2 + i], [0, rng.uniform(30, 50), H / 2 - i], [0, 0, 1]]
        ext[i, :, :3] = random_rotation(rng)
        ext[i, :, 3] = rng.normal(size=3)
    conf = rng.uniform(1, 3, (n, H, W)).astype(np.float32)
    images = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
    pts = core.points(depth, K, ext, images, conf, num_max_points=1500, seed=1)
    return dict(K=K, ext=ext, pts=pts, depth=depth)


def check_model(rec, pts, K, ext, orig, names, hw):
    """Counts, cameras, poses, observations and reprojection of every point."""
    h, w = hw
    n = len(ext)
    K = np.asarray(K, np.float64)
    assert len(rec.cameras) == n and len(rec.images) == n and len(rec.points3D) == len(pts["xyz"])
    for i in range(n):
        cam = rec.cameras[i + 1]
        assert cam.model == pycolmap.CameraModelId.PINHOLE
        w0, h0 = orig[i]
        assert (cam.width, cam.height) == (w0, h0)
        sx, sy = w0 / w, h0 / h
        np.testing.assert_allclose(cam.params, [K[i, 0, 0] * sx, K[i, 1, 1] * sy, K[i, 0, 2] * sx, K[i, 1, 2] * sy],
                                   rtol=1e-12)
        img = rec.images[i + 1]
        assert img.camera_id == i + 1 and img.name == names[i]
        np.testing.assert_allclose(img.cam_from_world().matrix(), ext[i], atol=1e-6)
        assert img.num_points2D() == int((pts["view"] == i).sum())
    # every 3D point: colour, one-element track, its observation = scaled pixel, reprojection
    m = len(pts["xyz"])
    obs = np.zeros((m, 2))
    img_of = np.zeros(m, int)
    for pid, p3 in rec.points3D.items():
        k = pid - 1
        np.testing.assert_array_equal(p3.xyz, pts["xyz"][k].astype(np.float64))
        np.testing.assert_array_equal(p3.color, pts["rgb"][k])
        (el,) = p3.track.elements
        p2 = rec.images[el.image_id].points2D[el.point2D_idx]
        assert p2.point3D_id == pid
        obs[k] = p2.xy
        img_of[k] = el.image_id
    np.testing.assert_array_equal(img_of, pts["view"] + 1)
    scale = np.array([[orig[v][0] / w, orig[v][1] / h] for v in pts["view"]]).reshape(-1, 2)
    np.testing.assert_allclose(obs, pts["pixel"] * scale, rtol=1e-12)
    err = np.zeros(m)
    for i in range(n):
        sel = pts["view"] == i
        cam, img = rec.cameras[i + 1], rec.images[i + 1]
        x = pts["xyz"][sel].astype(np.float64) @ img.cam_from_world().matrix()[:, :3].T + img.cam_from_world().matrix()[:, 3]
        uv = x @ cam.calibration_matrix().T
        err[sel] = np.linalg.norm(uv[:, :2] / uv[:, 2:] - obs[sel], axis=1)
    assert m == 0 or err.max() < 1e-3, err.max()


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_through_pycolmap(scene, tmp_path, binary):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    out = tmp_path / "sparse"
    core.export_colmap(out, pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], ext, K, (H, W), ORIG, NAMES,
                       binary=binary)
    ext_name = ".bin" if binary else ".txt"
    assert sorted(os.listdir(out)) == sorted(f + ext_name for f in ("cameras", "images", "points3D"))
    if not binary:
        assert (out / "cameras.txt").read_text().startswith("# Camera list with one line of data per camera:\n")
        assert (out / "images.txt").read_text().startswith("# Image list with two lines of data per image:\n")
        assert (out / "points3D.txt").read_text().startswith("# 3D point list with one line of data per point:\n")
    rec = pycolmap.Reconstruction(str(out))
    check_model(rec, pts, K, ext, ORIG, NAMES, (H, W))


def test_binary_and_text_agree_and_4x4_extrinsics(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    ext44 = np.concatenate([ext, np.tile([[[0, 0, 0, 1]]], (3, 1, 1)).astype(np.float32)], 1)
    core.export_colmap(tmp_path / "b", pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], ext44, K, (H, W), ORIG, NAMES)
    core.export_colmap(tmp_path / "t", pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], ext, K, (H, W), ORIG, NAMES,
                       binary=False)
    b, t = pycolmap.Reconstruction(str(tmp_path / "b")), pycolmap.Reconstruction(str(tmp_path / "t"))
    for i in (1, 2, 3):
        np.testing.assert_array_equal(b.cameras[i].params, t.cameras[i].params)
        np.testing.assert_array_equal(b.images[i].cam_from_world().matrix(), t.images[i].cam_from_world().matrix())
    for pid in (1, 700, len(pts["xyz"])):
        np.testing.assert_array_equal(b.points3D[pid].xyz, t.points3D[pid].xyz)


def test_points_in_any_order_and_empty_model(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    perm = np.random.default_rng(0).permutation(len(pts["xyz"]))
    shuffled = {k: pts[k][perm] for k in ("xyz", "rgb", "view", "pixel")}
    core.export_colmap(tmp_path / "s", shuffled["xyz"], shuffled["rgb"], shuffled["view"].astype(np.int64),
                       shuffled["pixel"], ext, K, (H, W), ORIG, NAMES)
    check_model(pycolmap.Reconstruction(str(tmp_path / "s")), shuffled, K, ext, ORIG, NAMES, (H, W))
    empty = {"xyz": np.zeros((0, 3), np.float32), "rgb": np.zeros((0, 3), np.uint8),
             "view": np.zeros(0, np.int32), "pixel": np.zeros((0, 2), np.int32)}
    for binary in (True, False):
        d = tmp_path / f"e{binary}"
        core.export_colmap(d, empty["xyz"], None, empty["view"], empty["pixel"], ext, K, (H, W), ORIG, NAMES,
                           binary=binary)
        check_model(pycolmap.Reconstruction(str(d)), empty, K, ext, ORIG, NAMES, (H, W))


def test_atomic_files_and_directory_errors(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    args = (pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], ext, K, (H, W), ORIG, NAMES)
    out = tmp_path / "model"
    out.mkdir()
    (out / "cameras.bin").write_bytes(b"stale")
    core.export_colmap(out, *args)
    assert sorted(os.listdir(out)) == ["cameras.bin", "images.bin", "points3D.bin"]  # replaced, no temp left
    assert len(pycolmap.Reconstruction(str(out)).cameras) == 3
    with pytest.raises(FileNotFoundError, match="missing"):
        core.export_colmap(tmp_path / "missing" / "sparse", *args)  # parent must exist
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="not a directory"):
        core.export_colmap(tmp_path / "file", *args)


def test_bad_arguments(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    xyz, rgb, view, pixel = pts["xyz"], pts["rgb"], pts["view"], pts["pixel"]
    d = tmp_path / "bad"

    def bad(match, **kw):
        a = dict(xyz=xyz, rgb=rgb, view=view, pixel=pixel, extrinsics=ext, intrinsics=K, image_size=(H, W),
                 original_sizes=ORIG, image_names=NAMES)
        binary = kw.pop("binary", True)
        a.update(kw)
        with pytest.raises(ValueError, match=match):
            core.export_colmap(d, binary=binary, **a)

    bad(r"image_names\[1\] 'a.png' is not unique", image_names=["a.png", "a.png", "c.png"])
    bad("whitespace", image_names=["a b.png", "b.png", "c.png"], binary=False)
    bad(r"image_names\[2\] is empty", image_names=["a", "b", ""])
    bad("one name per view", image_names=["a", "b"])
    bad("image_names must be a sequence of str", image_names="abc")
    bad("original_sizes", original_sizes=[(1, 1), (2, 2)])
    bad("original_sizes", original_sizes=[(0, 1), (2, 2), (3, 3)])
    v = view.copy(); v[3] = 3
    bad(r"view\[3\] = 3 is out of range", view=v)
    p = pixel.copy(); p[4] = (W, 0)
    bad(r"pixel\[4\] is outside", pixel=p)
    bad("view must be an integer array", view=view.astype(np.float32))
    bad("pixel must have shape", pixel=pixel[:, :1])
    bad("int32 range", view=view.astype(np.int64) + 2**40)
    e = ext.copy(); e[1, :, :3] *= 2.0
    bad(r"extrinsics\[1\] rotation is not a proper rotation", extrinsics=e)
    e = ext.copy(); e[2, :, :3] *= -1.0
    bad(r"extrinsics\[2\] rotation is not a proper rotation", extrinsics=e)
    k = K.copy(); k[0, 0, 1] = 3.0
    bad(r"intrinsics\[0\] is not a pinhole matrix", intrinsics=k)
    x = xyz.copy(); x[9, 2] = np.inf
    bad(r"xyz\[9\] is not finite", xyz=x)
    assert not d.exists()  # nothing created on bad input


def test_soh_pair_through_fixture_model_gives_two_view_glb_and_colmap(fixture_dir, data_dir, tmp_path):
    from PIL import Image

    from depth_anything_cpp import DepthAnything3

    paths = [data_dir / "da3_examples" / f"assets_examples_SOH_{i}.png" for i in ("000", "010")]
    if not all(p.is_file() for p in paths):
        pytest.skip("SOH example images not found")
    ggufs = sorted(fixture_dir.glob("*.gguf"))
    model = DepthAnything3.from_file(ggufs[0])
    pred = model.inference([str(p) for p in paths], process_res=252)
    n, h, w = pred.depth.shape
    assert n == 2 and pred.extrinsics.shape == (2, 3, 4) and pred.processed_images.shape == (2, h, w, 3)
    pts = core.points(pred.depth, pred.intrinsics, pred.extrinsics, pred.processed_images, pred.conf)
    assert len(pts["xyz"]) > 0 and set(np.unique(pts["view"])) == {0, 1}

    A = core.export_glb(tmp_path / "scene.glb", pts["xyz"], pts["rgb"], pred.extrinsics, pred.intrinsics, (h, w))
    trimesh = pytest.importorskip("trimesh")
    loaded = trimesh.load(str(tmp_path / "scene.glb"))
    kinds = sorted(type(g).__name__ for g in loaded.geometry.values())
    assert kinds == ["Path3D", "Path3D", "PointCloud"]
    pc = next(g for g in loaded.geometry.values() if isinstance(g, trimesh.PointCloud))
    expect = pts["xyz"].astype(np.float64) @ A[:3, :3].T + A[:3, 3]
    assert len(pc.vertices) == len(pts["xyz"])
    np.testing.assert_allclose(pc.bounds, [expect.min(0), expect.max(0)], atol=1e-5 * np.abs(expect).max())

    orig = [Image.open(p).size for p in paths]
    names = [p.name for p in paths]
    out = tmp_path / "sparse" / "0"
    (tmp_path / "sparse").mkdir()
    core.export_colmap(out, pts["xyz"], pts["rgb"], pts["view"], pts["pixel"], pred.extrinsics, pred.intrinsics,
                       (h, w), orig, names)
    check_model(pycolmap.Reconstruction(str(out)), pts, pred.intrinsics, pred.extrinsics, orig, names, (h, w))
