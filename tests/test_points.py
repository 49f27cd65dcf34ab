"""Compiled `points`: back-projection, confidence/sky filtering, subsampling, bad input.

Compared against an independent numpy implementation of the official exporter's maths
(depth_anything_3/utils/export/glb.py: get_conf_thresh, _depths_to_world_points_with_colors)
and against the NYU frames' ground-truth depth and intrinsics.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from depth_anything_cpp.api import get_core
from helpers import random_rotation  # noqa: E402

core = get_core()


# ---- independent reference ------------------------------------------------------------

def ref_conf_thresh(conf, valid, sky_mask, conf_thresh, p_lo, p_hi):
    """get_conf_thresh on the valid pixels (the contract's pool), numpy percentiles."""
    if sky_mask is not None and (valid & ~sky_mask).sum() > 10:
        pool = conf[valid & ~sky_mask]
    else:
        pool = conf[valid]
    thr = conf_thresh
    if pool.size:
        if p_lo > 0:
            thr = max(thr, np.percentile(pool, p_lo))
        if p_hi < 100:
            thr = min(thr, np.percentile(pool, p_hi))
    return thr


def ref_points(depth, K, ext, images=None, conf=None, sky=None, conf_thresh=1.05, p_lo=40.0, p_hi=90.0,
               remove_sky=True, sky_thresh=0.5):
    n, h, w = depth.shape
    valid = np.isfinite(depth) & (depth > 0)
    if conf is not None:
        valid &= np.isfinite(conf)
    sky_mask = None if sky is None else (sky >= sky_thresh)
    thr = float("nan")
    keep = valid.copy()
    if conf is not None:
        thr = ref_conf_thresh(conf, valid, sky_mask, conf_thresh, p_lo, p_hi)
        keep &= conf >= thr
    if remove_sky and sky_mask is not None:
        keep &= ~sky_mask
    vs, ys, xs = np.nonzero(keep)
    xyz = np.zeros((len(vs), 3))
    for i in range(n):
        sel = vs == i
        pix = np.stack([xs[sel], ys[sel], np.ones(sel.sum())]).astype(np.float64)
        cam = np.linalg.inv(K[i].astype(np.float64)) @ pix * depth[i][ys[sel], xs[sel]].astype(np.float64)
        w2c = np.eye(4)
        w2c[:3, :4] = ext[i][:3, :4]
        c2w = np.linalg.inv(w2c)
        xyz[sel] = (c2w[:3, :3] @ cam + c2w[:3, 3:4]).T
    rgb = np.full((len(vs), 3), 128, np.uint8) if images is None else images[vs, ys, xs]
    return dict(xyz=xyz, rgb=rgb, view=vs, pixel=np.stack([xs, ys], 1), conf_thresh=thr)


def synthetic_scene(seed=0, n=3, h=30, w=40):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 8.0, (n, h, w)).astype(np.float32)
    depth[0, 3, 4] = np.nan
    depth[1, 5, :7] = 0.0
    depth[2, 0, 0] = -1.0
    depth[2, 1, 1] = np.inf
    K = np.zeros((n, 3, 3), np.float32)
    for i in range(n):
        f = rng.uniform(30, 60)
        K[i] = [[f, 0, w / 2 + rng.uniform(-2, 2)], [0, f * rng.uniform(0.9, 1.1), h / 2], [0, 0, 1]]
    ext = np.zeros((n, 3, 4), np.float32)
    for i in range(n):
        ext[i, :, :3] = random_rotation(rng)
        ext[i, :, 3] = rng.normal(size=3)
    conf = rng.uniform(1.0, 3.0, (n, h, w)).astype(np.float32)
    sky = rng.uniform(0, 1, (n, h, w)).astype(np.float32) ** 3  # mostly below 0.5
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return depth, K, ext, conf, sky, images


def assert_same_cloud(out, ref):
    assert out["xyz"].shape == ref["xyz"].shape
    np.testing.assert_array_equal(out["view"], ref["view"])
    np.testing.assert_array_equal(out["pixel"], ref["pixel"])
    np.testing.assert_array_equal(out["rgb"], ref["rgb"])
    scale = np.abs(ref["xyz"]).max() if ref["xyz"].size else 1.0
    np.testing.assert_allclose(out["xyz"], ref["xyz"], rtol=0, atol=2e-6 * scale)


# ---- matches the reference -------------------------------------------------------------

@pytest.mark.parametrize("conf_thresh,p_lo,p_hi,remove_sky", [
    (1.05, 40.0, 90.0, True),    # official defaults: the 40th percentile wins
    (0.0, 10.0, 90.0, True),     # the lower percentile wins
    (10.0, 40.0, 90.0, True),    # clamped down to the 90th percentile
    (1.5, 0.0, 100.0, False),    # both clamps disabled: the absolute threshold
    (1.05, 40.0, 90.0, False),   # sky kept, pool still without sky
])
def test_points_match_numpy_reference(conf_thresh, p_lo, p_hi, remove_sky):
    depth, K, ext, conf, sky, images = synthetic_scene()
    out = core.points(depth, K, ext, images, conf, sky, conf_thresh=conf_thresh, conf_thresh_percentile=p_lo,
                      ensure_thresh_percentile=p_hi, remove_sky=remove_sky, num_max_points=0)
    ref = ref_points(depth, K, ext, images, conf, sky, conf_thresh, p_lo, p_hi, remove_sky)
    assert np.float32(out["conf_thresh"]) == np.float32(ref["conf_thresh"])
    assert 0 < len(out["xyz"]) < depth.size
    assert_same_cloud(out, ref)


def test_percentile_threshold_is_numpy_linear_percentile():
    # many pool sizes and percentiles: the threshold equals numpy's float32 percentile exactly
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 10, 11, 97, 1000):
        conf = rng.uniform(1, 50, (1, 1, size)).astype(np.float32)
        depth = np.ones_like(conf)
        K = np.array([[[10, 0, 0], [0, 10, 0], [0, 0, 1]]], np.float32)
        ext = np.eye(4, dtype=np.float32)[None, :3]
        for p in (1.0, 12.5, 33.3, 40.0, 50.0, 77.7, 99.0):
            out = core.points(depth, K, ext, conf=conf, conf_thresh=0.0, conf_thresh_percentile=p,
                              ensure_thresh_percentile=100.0)
            assert np.float32(out["conf_thresh"]) == np.percentile(conf.ravel(), p), (size, p)
            assert len(out["xyz"]) == int((conf >= np.percentile(conf.ravel(), p)).sum())


def test_sky_pool_falls_back_to_all_valid_pixels():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=1)
    sky_mask = np.ones(depth.shape, bool)
    sky_mask[0, 0, :10] = False  # 10 non-sky pixels: not more than 10 -> pool = every valid pixel
    out = core.points(depth, K, ext, images, conf, sky_mask, remove_sky=False, num_max_points=0)
    ref = ref_points(depth, K, ext, images, conf, sky_mask.astype(np.float32), remove_sky=False)
    assert np.float32(out["conf_thresh"]) == np.float32(ref["conf_thresh"])
    valid = np.isfinite(depth) & (depth > 0)
    all_valid_thr = max(1.05, np.percentile(conf[valid], 40.0))
    assert np.float32(out["conf_thresh"]) == np.float32(all_valid_thr)
    assert_same_cloud(out, ref)


def test_bool_sky_mask_equals_probability_and_4x4_extrinsics_equal_3x4():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=2)
    a = core.points(depth, K, ext, images, conf, sky, num_max_points=0)
    b = core.points(depth, K, ext, images, conf, sky >= 0.5, num_max_points=0)
    ext44 = np.concatenate([ext, np.tile(np.array([[[0, 0, 0, 1]]], np.float32), (len(ext), 1, 1))], 1)
    c = core.points(depth.astype(np.float64), K, ext44, images, conf, sky, num_max_points=0)
    for other in (b, c):
        for key in ("xyz", "rgb", "view", "pixel"):
            np.testing.assert_array_equal(a[key], other[key])


def test_no_conf_no_images_keeps_every_valid_pixel_grey():
    depth, K, ext, _, _, _ = synthetic_scene(seed=3)
    out = core.points(depth, K, ext, num_max_points=0)
    assert np.isnan(out["conf_thresh"])
    valid = np.isfinite(depth) & (depth > 0)
    assert len(out["xyz"]) == valid.sum()
    assert (out["rgb"] == 128).all()
    assert_same_cloud(out, ref_points(depth, K, ext))


def test_subsampling_is_deterministic_exact_and_in_pixel_order():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=4)
    full = core.points(depth, K, ext, images, conf, sky, num_max_points=0)
    n_full = len(full["xyz"])
    key_full = (full["view"].astype(np.int64) * 10**6 + full["pixel"][:, 1] * 1000 + full["pixel"][:, 0])
    subsets = {}
    for seed in (0, 0, 1, 2**63 + 5):
        sub = core.points(depth, K, ext, images, conf, sky, num_max_points=500, seed=seed)
        assert len(sub["xyz"]) == 500
        key = sub["view"].astype(np.int64) * 10**6 + sub["pixel"][:, 1] * 1000 + sub["pixel"][:, 0]
        assert (np.diff(key) > 0).all()  # (view, row, column) order, no duplicates
        idx = np.searchsorted(key_full, key)
        np.testing.assert_array_equal(key_full[idx], key)  # a subset of the full cloud
        np.testing.assert_array_equal(sub["xyz"], full["xyz"][idx])
        np.testing.assert_array_equal(sub["rgb"], full["rgb"][idx])
        if seed in subsets:
            np.testing.assert_array_equal(subsets[seed], key)
        subsets[seed] = key
    assert not np.array_equal(subsets[0], subsets[1])
    # the sample spreads over the views roughly in proportion
    counts = np.bincount(subsets[1] // 10**6, minlength=3) / 500
    np.testing.assert_allclose(counts, np.bincount(full["view"], minlength=3) / n_full, atol=0.08)
    # at or above the count: everything
    for limit in (n_full, n_full + 1):
        same = core.points(depth, K, ext, images, conf, sky, num_max_points=limit)
        np.testing.assert_array_equal(same["pixel"], full["pixel"])


def test_returned_arrays_own_the_c_buffers():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=5)
    out = core.points(depth, K, ext, images, conf, sky)
    bases = [out[k].base for k in ("xyz", "rgb", "view", "pixel")]
    assert all(type(b).__name__ == "PyCapsule" for b in bases)
    assert all(b is bases[0] for b in bases)  # one owner for the four buffers
    assert all(out[k].flags.c_contiguous and out[k].flags.writeable for k in ("xyz", "rgb", "view", "pixel"))
    assert out["xyz"].dtype == np.float32 and out["rgb"].dtype == np.uint8
    assert out["view"].dtype == np.int32 and out["pixel"].dtype == np.int32
    xyz = out["xyz"]
    expect = xyz.copy()
    del out, bases
    np.testing.assert_array_equal(xyz, expect)  # still valid after the dict is gone


def test_empty_result():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=6)
    out = core.points(np.zeros_like(depth), K, ext, images, conf, sky)
    assert out["xyz"].shape == (0, 3) and out["rgb"].shape == (0, 3)
    assert out["view"].shape == (0,) and out["pixel"].shape == (0, 2)


# ---- real data: NYU frames with ground-truth depth and intrinsics ----------------------

def test_nyu_ground_truth_points_reproject_to_their_pixels(data_dir):
    cv2 = pytest.importorskip("cv2")
    root = data_dir / "metric3d"
    ann = json.loads((root / "data" / "nyu_demo" / "test_annotations.json").read_text())["files"]
    depths, images, Ks = [], [], []
    for f in ann:
        d = cv2.imread(str(root / f["depth"]), cv2.IMREAD_UNCHANGED)
        assert d is not None and d.dtype == np.uint16
        depths.append(d.astype(np.float32) / f["depth_scale"])
        images.append(cv2.cvtColor(cv2.imread(str(root / f["rgb"])), cv2.COLOR_BGR2RGB))
        fx, fy, cx, cy = f["cam_in"]
        Ks.append([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    depth, images, K = np.stack(depths), np.stack(images), np.array(Ks, np.float32)
    ext = np.tile(np.eye(4, dtype=np.float32)[:3], (len(depth), 1, 1))
    out = core.points(depth, K, ext, images, num_max_points=0)
    assert len(out["xyz"]) == int((depth > 0).sum()) > 0.5 * depth.size
    xyz = out["xyz"].astype(np.float64)
    proj = np.einsum("nij,nj->ni", K[out["view"]].astype(np.float64), xyz)
    z = proj[:, 2]
    uv = proj[:, :2] / z[:, None]
    v, px = out["view"], out["pixel"]
    gt = depth[v, px[:, 1], px[:, 0]]
    np.testing.assert_allclose(z, gt, rtol=1e-4)
    np.testing.assert_allclose(uv, px, rtol=1e-4, atol=1e-4 * 640)
    assert np.abs(uv - px).max() < 1e-2
    np.testing.assert_array_equal(out["rgb"], images[v, px[:, 1], px[:, 0]])
    # metres: NYU rooms are a few metres deep
    assert 0.5 < np.median(xyz[:, 2]) < 10


# ---- bad input -------------------------------------------------------------------------

def _bad(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


def test_bad_cameras_raise_value_error():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=8)
    k = K.copy(); k[1, 0, 0] = np.nan
    _bad(lambda: core.points(depth, k, ext), r"intrinsics\[1\] contains NaN")
    k = K.copy(); k[0] = [[1, 2, 3], [2, 4, 6], [0, 0, 1]]
    _bad(lambda: core.points(depth, k, ext), r"intrinsics\[0\] is not invertible")
    e = ext.copy(); e[2, 0, 3] = np.inf
    _bad(lambda: core.points(depth, K, e), r"extrinsics\[2\] contains NaN or inf")
    e = ext.copy(); e[1, :, :3] = 0
    _bad(lambda: core.points(depth, K, e), r"extrinsics\[1\] is not invertible")
    e44 = np.tile(np.eye(4, dtype=np.float32), (3, 1, 1)); e44[0, 3, 0] = 1
    _bad(lambda: core.points(depth, K, e44), r"extrinsics\[0\] is 4x4 but its last row")


def test_bad_shapes_and_params_raise_value_error():
    depth, K, ext, conf, sky, images = synthetic_scene(seed=9)
    _bad(lambda: core.points(depth[0], K, ext), "depth must have shape")
    _bad(lambda: core.points(depth, K[:2], ext), "intrinsics must have shape")
    _bad(lambda: core.points(depth, K, ext[:, :2]), "extrinsics must have shape")
    _bad(lambda: core.points(depth, K, ext[:2]), "extrinsics must have shape")
    _bad(lambda: core.points(depth, K, ext, conf=conf[:, 1:]), "conf must have shape")
    _bad(lambda: core.points(depth, K, ext, sky=sky[None]), "sky must have shape")
    _bad(lambda: core.points(depth, K, ext, images.astype(np.float32)), "images must be uint8")
    _bad(lambda: core.points(depth, K, ext, images[..., :2]), "images must have shape")
    _bad(lambda: core.points(depth.astype(str), K, ext), "depth")
    _bad(lambda: core.points(depth[:0], K[:0], ext[:0]), "must not be empty")
    _bad(lambda: core.points(depth, K, ext, conf=conf, conf_thresh_percentile=101), "conf_thresh_percentile")
    _bad(lambda: core.points(depth, K, ext, conf=conf, ensure_thresh_percentile=float("nan")), "ensure_thresh")
    _bad(lambda: core.points(depth, K, ext, conf=conf, conf_thresh=float("nan")), "conf_thresh is NaN")
    # strided / non-contiguous inputs are accepted (converted)
    wide = np.repeat(depth, 2, axis=2)[:, :, ::2]
    assert not wide.flags.c_contiguous
    a = core.points(wide, K, ext, num_max_points=0)
    b = core.points(depth, K, ext, num_max_points=0)
    np.testing.assert_array_equal(a["xyz"], b["xyz"])
