"""Bad or unusual images and cameras through DepthAnything3.inference: each case either
works (finite depth of the right shape) or raises a clear ValueError / FileNotFoundError."""

from __future__ import annotations

import numpy as np
import pytest

from depth_anything_cpp import DepthAnything3
from depth_anything_cpp.errors import DA3Error

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

RES = 140  # small process_res keeps each inference well under a second


@pytest.fixture(scope="module")
def model(fixture_dir):
    path = fixture_dir / "da3-small-rand-f16.gguf"
    if not path.is_file():
        pytest.skip(f"fixture model not found: {path}")
    return DepthAnything3.from_file(path, n_threads=2)


def rand_rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def check_sane(pred, n, shape=None):
    assert pred.depth.ndim == 3 and pred.depth.shape[0] == n
    h, w = pred.depth.shape[1:]
    assert h % 14 == 0 and w % 14 == 0 and max(h, w) <= RES
    if shape is not None:
        assert (h, w) == shape
    assert pred.depth.dtype == np.float32 and np.isfinite(pred.depth).all()
    assert pred.conf.shape == pred.depth.shape and np.isfinite(pred.conf).all()
    assert pred.extrinsics.shape == (n, 3, 4) and np.isfinite(pred.extrinsics).all()
    assert pred.intrinsics.shape == (n, 3, 3) and np.isfinite(pred.intrinsics).all()
    assert pred.processed_images.shape == (n, h, w, 3)


# ---------------------------------------------------------------- files

def test_missing_path(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        model.inference([str(tmp_path / "nope.png")], process_res=RES)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(model, tmp_path, fmt):
    path = tmp_path / f"img.{fmt.lower()}"
    Image.fromarray(rand_rgb(200, 300)).save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=path.name):
        model.inference([str(path)], process_res=RES)


def test_not_an_image(model, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ValueError, match="notes.png"):
        model.inference(str(path), process_res=RES)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK", "1", "LA"])
def test_pil_modes_from_file(model, tmp_path, mode):
    rgb = Image.fromarray(rand_rgb(98, 140))
    img = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
    path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    img.save(path)
    check_sane(model.inference([str(path)], process_res=RES), 1, (98, 140))


def test_16bit_uses_full_range(model, tmp_path):
    gray = np.full((98, 140), 65535, np.uint16)
    path = tmp_path / "white16.png"
    Image.fromarray(gray).save(path)
    pred = model.inference([str(path)], process_res=RES)
    # 65535 -> 255 (upstream's de-normalization truncates, so 254 in one channel);
    # a wrong scaling (e.g. >> 16 or clipping the low byte) would give ~0
    assert pred.processed_images.min() >= 254


def test_exif_rotated(model, tmp_path):
    img = Image.fromarray(rand_rgb(98, 140))  # landscape pixels, EXIF says rotate 90
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes())
    pred = model.inference([str(path)], process_res=RES)
    check_sane(pred, 1, (140, 98))  # portrait after orientation


# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2), (14, 14, 3)])
def test_tiny_images(model, shape):
    arr = np.full(shape, 128, np.uint8)
    check_sane(model.inference(arr, process_res=RES), 1)


@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 0, 3), (0, 0)])
def test_empty_arrays(model, shape):
    with pytest.raises(ValueError, match="empty"):
        model.inference(np.zeros(shape, np.uint8), process_res=RES)


def test_extreme_aspect_ratio(model):
    """1x5000: works (a >= 1 patch strip) or a clear ValueError, never a crash."""
    try:
        pred = model.inference(np.full((1, 5000, 3), 100, np.uint8), process_res=RES)
    except ValueError as exc:
        assert "size" in str(exc) or "aspect" in str(exc), exc
    else:
        check_sane(pred, 1)


def test_huge_image_refused_without_oom(model):
    big = np.zeros((12000, 9000, 3), np.uint8)  # 108e6 px > the core's 100e6 default limit
    with pytest.raises((ValueError, MemoryError)) as info:
        model.inference(big, process_res=RES)
    assert "100000000" in str(info.value) and "pixels" in str(info.value)


# ---------------------------------------------------------------- numpy arrays

@pytest.mark.parametrize("arr,needle", [
    (np.zeros((28, 28, 3), np.float32), "uint8"),
    (np.zeros((28, 28, 3), np.uint16), "uint8"),
    (np.zeros((28, 28, 3), bool), "uint8"),
    (np.zeros((28, 28, 2), np.uint8), "channels"),
    (np.zeros((28, 28, 5), np.uint8), "channels"),
    (np.zeros((28,), np.uint8), "shape"),
    (np.zeros((1, 2, 28, 28, 3), np.uint8), "shape"),
])
def test_bad_arrays(model, arr, needle):
    with pytest.raises(ValueError, match=needle):
        model.inference([arr], process_res=RES)


def test_bad_types(model):
    with pytest.raises(ValueError):
        model.inference([42], process_res=RES)
    with pytest.raises(ValueError, match="empty"):
        model.inference([], process_res=RES)


def test_strided_and_noncontiguous_arrays_match_contiguous(model):
    base = rand_rgb(98, 140, seed=3)
    ref = model.inference([base], process_res=RES).depth
    big = np.zeros((196, 280, 3), np.uint8)
    big[::2, ::2] = base
    fortran = np.asfortranarray(base)
    transposed = np.ascontiguousarray(base.transpose(1, 0, 2)).transpose(1, 0, 2)
    flipped = np.ascontiguousarray(base[::-1])[::-1]  # negative strides, same pixels
    for arr in (big[::2, ::2], fortran, transposed, flipped):
        assert not arr.flags.c_contiguous
        np.testing.assert_array_equal(model.inference([arr], process_res=RES).depth, ref)


def test_gray_and_rgba_arrays(model):
    check_sane(model.inference([np.full((98, 140), 50, np.uint8)], process_res=RES), 1, (98, 140))
    check_sane(model.inference([np.full((98, 140, 4), 50, np.uint8)], process_res=RES), 1, (98, 140))


def test_multiview_different_sizes_center_cropped(model):
    views = [rand_rgb(98, 140, 1), rand_rgb(140, 140, 2), rand_rgb(70, 140, 3)]
    pred = model.inference(views, process_res=RES)
    check_sane(pred, 3)
    assert pred.depth.shape[1:] == (70, 140)  # smallest processed size, as upstream


# ---------------------------------------------------------------- cameras

def _cams(n, ext_fill=None, k_fill=None):
    ext = np.tile(np.eye(4, dtype=np.float32)[:3], (n, 1, 1))
    k = np.tile(np.array([[100, 0, 70], [0, 100, 49], [0, 0, 1]], np.float32), (n, 1, 1))
    if ext_fill is not None:
        ext[0, 0, 3] = ext_fill
    if k_fill is not None:
        k[0, 0, 2] = k_fill
    return ext, k


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["extrinsics", "intrinsics"])
def test_non_finite_cameras(model, bad, which):
    ext, k = _cams(2, ext_fill=bad if which == "extrinsics" else None,
                   k_fill=bad if which == "intrinsics" else None)
    with pytest.raises(ValueError, match=f"{which}.*(NaN|infinite)"):
        model.inference([rand_rgb(98, 140)] * 2, extrinsics=ext, intrinsics=k, process_res=RES)


def test_non_invertible_extrinsics(model):
    ext, k = _cams(2)
    ext[1, :, :3] = 0.0  # rotation part all zeros: no camera-to-world
    with pytest.raises(ValueError, match="extrinsics"):
        model.inference([rand_rgb(98, 140)] * 2, extrinsics=ext, intrinsics=k, process_res=RES)


@pytest.mark.parametrize("ext_shape,k_shape", [((2, 3, 3), (2, 3, 3)), ((2, 3, 4), (2, 4, 4)),
                                               ((1, 3, 4), (1, 3, 3)), ((2, 12), (2, 3, 3))])
def test_camera_shapes(model, ext_shape, k_shape):
    with pytest.raises(ValueError):
        model.inference([rand_rgb(98, 140)] * 2, extrinsics=np.zeros(ext_shape, np.float32),
                        intrinsics=np.ones(k_shape, np.float32), process_res=RES)


def test_errors_are_not_crashes_after_bad_input(model):
    """After a series of rejected inputs the model still works."""
    for bad in ([np.zeros((0, 3, 3), np.uint8)], [np.zeros((5, 5, 3), np.float64)]):
        with pytest.raises((ValueError, DA3Error)):
            model.inference(bad, process_res=RES)
    check_sane(model.inference([rand_rgb(98, 140)], process_res=RES), 1, (98, 140))
