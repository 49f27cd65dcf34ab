"""Compiled `export_glb`: a valid glTF 2.0 binary that real loaders (pygltflib, trimesh) read
back with the points of `points`, aligned like the official exporter, and written atomically.
ref: depth_anything_3/utils/export/glb.py.
"""

from __future__ import annotations

import colorsys
import json
import os
import struct

import numpy as np
import pytest

from depth_anything_cpp.api import get_core
from helpers import random_rotation  # noqa: E402

pygltflib = pytest.importorskip("pygltflib")
trimesh = pytest.importorskip("trimesh")

core = get_core()
H, W = 36, 48


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(11)
    n = 3
    depth = rng.uniform(1.0, 4.0, (n, H, W)).astype(np.float32)
    K = np.tile(np.array([[40, 0, W / 2], [0, 42, H / 2], [0, 0, 1]], np.float32), (n, 1, 1))
    ext = np.zeros((n, 3, 4), np.float32)
    for i in range(n):
        ext[i, :, :3] = random_rotation(rng) if i else np.eye(3)
        ext[i, :, 3] = rng.normal(size=3) * 0.3
    conf = rng.uniform(1, 3, (n, H, W)).astype(np.float32)
    images = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
    pts = core.points(depth, K, ext, images, conf, num_max_points=2000, seed=3)
    assert len(pts["xyz"]) == 2000
    return dict(K=K, ext=ext, pts=pts)


def expected_alignment(w2c0, xyz):
    """A = T(-median) @ diag(1, -1, -1, 1) @ w2c0 (official glb.py), in numpy."""
    w2c = np.eye(4)
    w2c[:3] = w2c0[:3].astype(np.float64)
    a0 = np.diag([1.0, -1.0, -1.0, 1.0]) @ w2c
    center = np.median(xyz.astype(np.float64) @ a0[:3, :3].T + a0[:3, 3], axis=0) if len(xyz) else np.zeros(3)
    t = np.eye(4)
    t[:3, 3] = -center
    return t @ a0


def apply(A, x):
    return np.asarray(x, np.float64) @ A[:3, :3].T + A[:3, 3]


def read_glb_chunks(path):
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and version == 2 and length == len(data)
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    js = data[20:20 + jlen]
    assert set(js[js.rindex(b"}") + 1:]) <= {0x20}  # JSON chunk padded with spaces
    gltf = json.loads(js)
    rest = data[20 + jlen:]
    binary = b""
    if rest:
        blen, btype = struct.unpack_from("<II", rest, 0)
        assert btype == 0x004E4942 and blen % 4 == 0 and len(rest) == 8 + blen
        binary = rest[8:]
        assert gltf["buffers"][0]["byteLength"] == blen
    return gltf, binary


def accessor_array(g, binary, idx):
    acc = g["accessors"][idx]
    view = g["bufferViews"][acc["bufferView"]]
    dtype = {5126: np.float32, 5121: np.uint8}[acc["componentType"]]
    ncomp = {"VEC3": 3, "VEC4": 4}[acc["type"]]
    off = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(binary, dtype, acc["count"] * ncomp, off).reshape(acc["count"], ncomp)


def index_color(i, n):
    """Independent of the exporter: colorsys' HSV with the official h, s, v."""
    return (np.array(colorsys.hsv_to_rgb((i + 0.5) / n, 0.85, 0.95)) * 255).astype(np.uint8)


def test_glb_structure_and_contents(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    path = tmp_path / "scene.glb"
    A = core.export_glb(path, pts["xyz"], pts["rgb"], ext, K, (H, W))
    assert A.shape == (4, 4) and A.dtype == np.float64
    np.testing.assert_allclose(A, expected_alignment(ext[0], pts["xyz"]), atol=1e-6)

    g, binary = read_glb_chunks(path)
    assert g["asset"]["version"] == "2.0"
    for v in g["bufferViews"]:
        assert v["byteOffset"] % 4 == 0 and v["byteLength"] % 4 == 0
    prims = g["meshes"][0]["primitives"]
    assert [p["mode"] for p in prims] == [0, 1, 1, 1]
    for p in prims:
        pos_acc = g["accessors"][p["attributes"]["POSITION"]]
        col_acc = g["accessors"][p["attributes"]["COLOR_0"]]
        assert pos_acc["componentType"] == 5126 and pos_acc["type"] == "VEC3"
        assert col_acc["componentType"] == 5121 and col_acc["normalized"] is True
        pos = accessor_array(g, binary, p["attributes"]["POSITION"])
        np.testing.assert_array_equal(np.float32(pos_acc["min"]), pos.min(0))  # exact float32
        np.testing.assert_array_equal(np.float32(pos_acc["max"]), pos.max(0))

    expect = apply(A, pts["xyz"])
    pos = accessor_array(g, binary, prims[0]["attributes"]["POSITION"])
    np.testing.assert_allclose(pos, expect, atol=1e-5 * np.abs(expect).max())
    col = accessor_array(g, binary, prims[0]["attributes"]["COLOR_0"])
    np.testing.assert_array_equal(col[:, :3], pts["rgb"])
    # median-centred
    np.testing.assert_allclose(np.median(pos, 0), 0, atol=1e-5)

    # frustums: apex at each camera centre, corners camera_size * scene diagonal in front of it
    lo, hi = np.percentile(expect, 5, axis=0), np.percentile(expect, 95, axis=0)
    size = 0.03 * np.linalg.norm(hi - lo)
    for i, p in enumerate(prims[1:]):
        seg = accessor_array(g, binary, p["attributes"]["POSITION"]).astype(np.float64)
        assert seg.shape == (16, 3)
        w2c = np.eye(4)
        w2c[:3] = ext[i]
        centre = apply(A, np.linalg.inv(w2c)[:3, 3][None])[0]
        np.testing.assert_allclose(seg[0:8:2], np.tile(centre, (4, 1)), atol=1e-5)
        corners_world = apply(np.linalg.inv(A), seg[1:8:2])
        cam = apply(w2c, corners_world)  # corners in camera frame: z == size, on the image corners
        np.testing.assert_allclose(cam[:, 2], size, rtol=1e-4)
        uv = (K[i] @ cam.T).T
        uv = uv[:, :2] / uv[:, 2:]
        np.testing.assert_allclose(uv, [[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]], atol=1e-3)
        corners = seg[1:8:2]
        rect = np.stack([corners, np.roll(corners, -1, axis=0)], 1)  # c0-c1, c1-c2, c2-c3, c3-c0
        np.testing.assert_allclose(seg[8:].reshape(4, 2, 3), rect, atol=1e-6)
        colors = accessor_array(g, binary, p["attributes"]["COLOR_0"])
        assert (colors[:, :3] == index_color(i, 3)).all()


def test_glb_loads_in_pygltflib_and_trimesh(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    path = tmp_path / "scene.glb"
    A = core.export_glb(str(path), pts["xyz"], pts["rgb"], ext, K, (H, W), show_cameras=True)
    gl = pygltflib.GLTF2().load(str(path))
    assert gl.asset.version == "2.0"
    assert [p.mode for p in gl.meshes[0].primitives] == [0, 1, 1, 1]

    loaded = trimesh.load(str(path))
    assert isinstance(loaded, trimesh.Scene)
    clouds = [gm for gm in loaded.geometry.values() if isinstance(gm, trimesh.PointCloud)]
    paths = [gm for gm in loaded.geometry.values() if isinstance(gm, trimesh.path.Path3D)]
    assert len(clouds) == 1 and len(paths) == 3
    pc = clouds[0]
    expect = apply(A, pts["xyz"])
    assert len(pc.vertices) == len(pts["xyz"])
    np.testing.assert_allclose(pc.bounds, [expect.min(0), expect.max(0)], atol=1e-5 * np.abs(expect).max())
    np.testing.assert_array_equal(np.asarray(pc.colors)[:, :3], pts["rgb"])

    # without cameras: no LINES at all
    path2 = tmp_path / "nocam.glb"
    A2 = core.export_glb(path2, pts["xyz"], pts["rgb"], ext, K, (H, W), show_cameras=False)
    np.testing.assert_array_equal(A, A2)
    gl2 = pygltflib.GLTF2().load(str(path2))
    assert [p.mode for p in gl2.meshes[0].primitives] == [0]
    loaded2 = trimesh.load(str(path2))
    assert [type(gm).__name__ for gm in loaded2.geometry.values()] == ["PointCloud"]


def test_empty_point_set(scene, tmp_path):
    K, ext = scene["K"], scene["ext"]
    none = np.zeros((0, 3), np.float32)
    A = core.export_glb(tmp_path / "cams.glb", none, np.zeros((0, 3), np.uint8), ext, K, (H, W))
    np.testing.assert_allclose(A, expected_alignment(ext[0], none), atol=1e-7)
    g, binary = read_glb_chunks(tmp_path / "cams.glb")
    assert [p["mode"] for p in g["meshes"][0]["primitives"]] == [1, 1, 1]
    # fallback scale 1: corners at depth 0.03 in front of each camera
    seg = accessor_array(g, binary, g["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    assert abs(np.linalg.norm(seg[1] - seg[0]) - 0.03 * np.linalg.norm(np.linalg.inv(K[0]) @ [0, 0, 1])) < 1e-6

    core.export_glb(tmp_path / "empty.glb", none, None, ext, K, (H, W), show_cameras=False)
    g, binary = read_glb_chunks(tmp_path / "empty.glb")
    assert binary == b"" and "meshes" not in g
    gl = pygltflib.GLTF2().load(str(tmp_path / "empty.glb"))
    assert gl.asset.version == "2.0" and not gl.meshes
    assert len(trimesh.load(str(tmp_path / "empty.glb")).geometry) == 0


def test_rgb_none_is_grey(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    core.export_glb(tmp_path / "g.glb", pts["xyz"], None, ext, K, (H, W), show_cameras=False)
    g, binary = read_glb_chunks(tmp_path / "g.glb")
    col = accessor_array(g, binary, g["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"])
    assert (col[:, :3] == 128).all() and (col[:, 3] == 255).all()


def test_atomic_write(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    path = tmp_path / "scene.glb"
    path.write_bytes(b"old contents")
    core.export_glb(path, pts["xyz"], pts["rgb"], ext, K, (H, W))
    assert path.read_bytes()[:4] == b"glTF"
    assert sorted(os.listdir(tmp_path)) == ["scene.glb"]  # no temp file left

    missing = tmp_path / "no" / "such" / "dir" / "scene.glb"
    with pytest.raises(FileNotFoundError, match="scene.glb"):
        core.export_glb(missing, pts["xyz"], pts["rgb"], ext, K, (H, W))
    with pytest.raises(IsADirectoryError):
        core.export_glb(tmp_path, pts["xyz"], pts["rgb"], ext, K, (H, W))
    # a bad input fails before anything is written
    bad = pts["xyz"].copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        core.export_glb(path, bad, pts["rgb"], ext, K, (H, W))
    assert sorted(os.listdir(tmp_path)) == ["scene.glb"]
    assert path.read_bytes()[:4] == b"glTF"


def test_bad_arguments(scene, tmp_path):
    pts, K, ext = scene["pts"], scene["K"], scene["ext"]
    p = tmp_path / "x.glb"
    with pytest.raises(ValueError, match="xyz must have shape"):
        core.export_glb(p, pts["xyz"][:, :2], pts["rgb"], ext, K, (H, W))
    with pytest.raises(ValueError, match="rgb must have shape"):
        core.export_glb(p, pts["xyz"], pts["rgb"][:10], ext, K, (H, W))
    with pytest.raises(ValueError, match="rgb must be uint8"):
        core.export_glb(p, pts["xyz"], pts["rgb"].astype(np.float32), ext, K, (H, W))
    with pytest.raises(ValueError, match="image_size"):
        core.export_glb(p, pts["xyz"], pts["rgb"], ext, K, (H, 0))
    with pytest.raises(ValueError, match="intrinsics must have shape"):
        core.export_glb(p, pts["xyz"], pts["rgb"], ext, K[:2], (H, W))
    k = K.copy()
    k[2, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"intrinsics\[2\]"):
        core.export_glb(p, pts["xyz"], pts["rgb"], ext, k, (H, W))
    with pytest.raises(ValueError, match="camera_size"):
        core.export_glb(p, pts["xyz"], pts["rgb"], ext, K, (H, W), camera_size=-1.0)
    assert not p.exists()
