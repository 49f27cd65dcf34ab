"""Preprocessing of the compiled core (``_core.preprocess``) against cv2 and the official
``InputProcessor``.

The C++ resizers reproduce OpenCV's own uint8 INTER_AREA / INTER_CUBIC code bit for bit.
x86 opencv-python wheels route uint8 INTER_CUBIC to Intel IPP (``cv2.ipp.useIPP()``), which
rounds differently on a few percent of pixels, so exact comparisons run with IPP disabled;
``test_with_ipp_enabled`` bounds the difference under the default cv2 settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import depth_anything_cpp as da3

SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
REFERENCE_NPZ = SHARED / "fixtures" / "da3-small-anchor-layout" / "reference_SOH_000.npz"
SOH_000 = SHARED / "data" / "da3_examples" / "assets_examples_SOH_000.png"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
METHODS = ("upper_bound_resize", "lower_bound_resize")

core = da3._core
pytestmark = pytest.mark.skipif(core is None, reason=f"compiled core not loadable: {getattr(da3, '_core_reason', '')}")


def _real_images() -> dict[str, np.ndarray]:
    from PIL import Image

    paths = sorted(p for p in (SHARED / "data").rglob("*") if p.suffix.lower() in (".png", ".jpg")
                   and "depth" not in p.parts)
    return {p.name: np.asarray(Image.open(p).convert("RGB")) for p in paths}


@pytest.fixture(scope="module")
def real_images():
    imgs = _real_images()
    if not imgs:
        pytest.skip(f"no images under {SHARED / 'data'}")
    return imgs


@pytest.fixture
def cv2_no_ipp():
    """cv2 with Intel IPP disabled (OpenCV's own resize code), restored afterwards."""
    cv2 = pytest.importorskip("cv2")
    prev = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(False)
    yield cv2
    cv2.ipp.setUseIPP(prev)


@pytest.fixture
def official(reference, cv2_no_ipp):
    """The official InputProcessor -> (input [N,3,H,W] f32, processed_images [N,H,W,3] u8)."""

    def run(images, process_res, method):
        x, rgb, _ = reference.preprocess_reference(images, process_res, method)
        return x, rgb

    return run


def _assert_same(images, process_res, method, official):
    x_ref, rgb_ref = official(images, process_res, method)
    rgb, x = core.preprocess(images, process_res, method)
    assert x.shape == x_ref.shape and rgb.shape == rgb_ref.shape
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(rgb, rgb_ref)


def _official_steps(w: int, h: int, res: int, method: str):
    """[(size, enlarge)] of the cv2.resize calls input_processor.py makes (0, 1 or 2)."""
    side = max(w, h) if method == "upper_bound_resize" else min(w, h)
    steps = []
    if side != res:
        s = res / float(side)
        w2, h2 = max(1, int(round(w * s))), max(1, int(round(h * s)))
        steps.append(((w2, h2), s > 1.0))
        w, h = w2, h2

    def nearest(x):
        down = (x // 14) * 14
        up = down + 14
        return up if abs(up - x) <= abs(x - down) else down

    pw, ph = max(1, nearest(w)), max(1, nearest(h))
    if (pw, ph) != (w, h):
        steps.append(((pw, ph), pw > w or ph > h))
    return steps


# ---- fixture and contract -------------------------------------------------------------

@pytest.mark.skipif(not (REFERENCE_NPZ.is_file() and SOH_000.is_file()), reason="shared fixture missing")
def test_fixture_soh_000_exact():
    from PIL import Image

    ref = np.load(REFERENCE_NPZ)
    img = np.asarray(Image.open(SOH_000).convert("RGB"))
    rgb, x = core.preprocess([img])
    assert x.shape == (1, 3, 280, 504) and x.dtype == np.float32
    assert rgb.shape == (1, 280, 504, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(x, ref["input"][0])
    np.testing.assert_array_equal(rgb, ref["processed_image"])


def test_output_contract():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (333, 517, 3), dtype=np.uint8)
    rgb, x = core.preprocess([img, img], process_res=518, method="upper_bound_resize")
    assert rgb.shape == (2, 336, 518, 3) and x.shape == (2, 3, 336, 518)  # 333 -> 334 -> 336
    assert rgb.flags.c_contiguous and x.flags.c_contiguous
    # the input decodes to 8-bit values; rgb is that value or one below (upstream truncation)
    u = (x.transpose(0, 2, 3, 1) * np.array(STD) + np.array(MEAN)) * 255
    assert np.abs(u - np.rint(u)).max() < 1e-3
    d = np.rint(u).astype(int) - rgb
    assert d.min() >= 0 and d.max() <= 1


def test_resizes_match_cv2(cv2_no_ipp):
    """mean 0 / std 1 exposes the resized pixels; compare with cv2 called like upstream."""
    cv2 = cv2_no_ipp
    rng = np.random.default_rng(1)
    cases = [(1, 1), (1, 7), (5, 1), (2, 3), (13, 14), (15, 15), (640, 480), (1242, 375), (97, 301)]
    cases += [tuple(int(v) for v in rng.integers(1, 700, 2)) for _ in range(20)]
    for i, (w, h) in enumerate(cases):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        res = int(rng.choice([14, 28, 100, 504, 518, 700]))
        method = METHODS[i % 2]
        exp = img
        for size, enlarge in _official_steps(w, h, res, method):
            exp = cv2.resize(exp, size, interpolation=cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA)
        _, x = core.preprocess([img], res, method, mean=(0, 0, 0), std=(1, 1, 1))
        got = np.rint(x[0].transpose(1, 2, 0) * 255).astype(np.uint8)
        np.testing.assert_array_equal(got, exp, err_msg=f"{w}x{h} res={res} {method}")


# ---- against the official InputProcessor ----------------------------------------------

@pytest.mark.parametrize("process_res", [504, 518, 280, 14, 700])
@pytest.mark.parametrize("method", METHODS)
def test_real_images_match_official(real_images, official, process_res, method):
    for name, img in real_images.items():
        _assert_same([img], process_res, method, official)


def test_random_sizes_match_official(official):
    rng = np.random.default_rng(2)
    for t in range(40):
        w, h = (int(v) for v in rng.integers(1, 400, 2))
        if t < 6:  # tiny and elongated: sides collapse to max(1, ...)
            w, h = [(1, 1), (2, 1), (1, 3), (6, 2), (900, 3), (4, 700)][t]
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        _assert_same([img], int(rng.choice([14, 42, 111, 504, 518])), METHODS[t % 2], official)


def test_mixed_batch_center_crop_matches_official(real_images, official):
    imgs = list(real_images.values())  # 1208x680, 1242x375, 640x480
    _assert_same(imgs, 504, "upper_bound_resize", official)
    _assert_same(imgs, 336, "lower_bound_resize", official)
    rng = np.random.default_rng(3)
    batch = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for w, h in [(300, 200), (90, 333), (1000, 3)]]
    _assert_same(batch, 504, "upper_bound_resize", official)


def test_with_ipp_enabled(reference, real_images):
    """Default cv2 settings: AREA-only paths stay exact, IPP cubic differs by a few levels."""
    cv2 = pytest.importorskip("cv2")
    if not cv2.ipp.useIPP():
        pytest.skip("platform: cv2 runs without Intel IPP here (exactness covered above)")
    img = real_images.get("assets_examples_SOH_000.png", next(iter(real_images.values())))
    x_ref, rgb_ref = reference.preprocess_reference([img], 504, "upper_bound_resize")[:2]
    rgb, x = core.preprocess([img], 504, "upper_bound_resize")
    if x.shape[-2:] == (280, 504):  # SOH 1208x680: two INTER_AREA shrinks
        np.testing.assert_array_equal(x, x_ref)
    x_ref, rgb_ref = reference.preprocess_reference([img], 504, "lower_bound_resize")[:2]
    rgb, x = core.preprocess([img], 504, "lower_bound_resize")
    d = np.abs(rgb.astype(int) - rgb_ref)
    assert d.max() <= 3 and (d > 0).mean() < 0.05


# ---- argument checks ------------------------------------------------------------------

def test_non_contiguous_input_is_accepted():
    rng = np.random.default_rng(4)
    big = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    view = big[::2, 1::3]
    a = core.preprocess([view])
    b = core.preprocess([np.ascontiguousarray(view)])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("images, kwargs, match", [
    ([], {}, "empty"),
    ([np.zeros((10, 10, 3), np.float32)], {}, "uint8"),
    ([np.zeros((10, 10), np.uint8)], {}, "shape"),
    ([np.zeros((10, 10, 4), np.uint8)], {}, "shape"),
    ([np.zeros((0, 10, 3), np.uint8)], {}, "empty"),
    ([np.zeros((10, 10, 3), np.uint8)], {"process_res": 13}, "process_res"),
    ([np.zeros((10, 10, 3), np.uint8)], {"process_res": 8193}, "process_res"),
    ([np.zeros((10, 10, 3), np.uint8)], {"method": "upper_bound_crop"}, "method"),
    ([np.zeros((10, 10, 3), np.uint8)], {"mean": (0.5, 0.5)}, "mean"),
    ([np.zeros((10, 10, 3), np.uint8)], {"std": (0.2, 0.0, 0.2)}, "std"),
    ([np.zeros((1, 20000, 3), np.uint8)], {"process_res": 8192, "method": "lower_bound_resize"}, "limit"),
])
def test_bad_arguments_raise_value_error(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        core.preprocess(images, **kwargs)


def test_images_must_be_a_list():
    with pytest.raises(TypeError):
        core.preprocess(np.zeros((10, 10, 3), np.uint8))


# ---- images at, just above and just below the processed size (issue 20, item 10) -------

def _near_processed_sizes():
    """(w, h, process_res, method): exactly the processed size (cv2.resize is then a copy
    and the official pipeline skips both resizes), one pixel above and below it on either
    or both sides, for both methods and landscape, portrait and square images."""
    cases = []
    exact = {"upper_bound_resize": [(504, 378), (504, 280), (280, 504), (378, 504), (504, 504), (518, 336)],
             "lower_bound_resize": [(672, 504), (504, 672), (504, 504), (756, 504), (336, 518)]}
    for method, sizes in exact.items():
        for w, h in sizes:
            res = max(w, h) if method == "upper_bound_resize" else min(w, h)
            for dw, dh in ((0, 0), (1, 0), (0, 1), (1, 1), (-1, 0), (0, -1), (-1, -1), (2, -3)):
                cases.append((w + dw, h + dh, res, method))
    # boundary side equal to process_res, the other side off a multiple of 14 (patch resize only)
    cases += [(504, 300, 504, "upper_bound_resize"), (300, 504, 504, "upper_bound_resize"),
              (504, 290, 504, "upper_bound_resize"), (700, 504, 504, "lower_bound_resize")]
    return cases


@pytest.mark.parametrize("w, h, res, method", _near_processed_sizes())
def test_near_processed_size_matches_official(official, w, h, res, method):
    rng = np.random.default_rng(w * 1000 + h)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    _assert_same([img], res, method, official)
    if not _official_steps(w, h, res, method):  # no resize at all: the pixels go through unchanged
        _, x = core.preprocess([img], res, method, mean=(0, 0, 0), std=(1, 1, 1))
        np.testing.assert_array_equal(np.rint(x[0].transpose(1, 2, 0) * 255).astype(np.uint8), img)


def test_near_processed_size_real_image(real_images, official):
    """A real photo pre-resized to the processed size (what video pipelines feed)."""
    from PIL import Image

    img = real_images.get("assets_examples_SOH_000.png", next(iter(real_images.values())))
    for w, h in ((504, 280), (505, 281), (503, 279), (504, 378)):
        small = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
        _assert_same([small], 504, "upper_bound_resize", official)
