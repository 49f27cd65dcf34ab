"""Image loading (depth_anything_cpp.images): modes, EXIF orientation, validation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depth_anything_cpp.images import array_to_rgb, load_image, load_images, pil_to_rgb_array

SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SOH_000 = SHARED / "data" / "da3_examples" / "assets_examples_SOH_000.png"


def _pattern(h: int = 6, w: int = 10) -> np.ndarray:
    """An RGB image with all pixels distinct, so any flip/rotation shows."""
    idx = np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3)
    return (idx * 7 % 251).astype(np.uint8)


def test_rgb_file_roundtrip(tmp_path):
    rgb = _pattern()
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    for arg in (str(path), path):
        out = load_image(arg)
        assert out.dtype == np.uint8 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, rgb)


def test_gray_and_bilevel_modes_replicate_to_rgb():
    gray = _pattern()[:, :, 0]
    out = pil_to_rgb_array(Image.fromarray(gray, mode="L"))
    assert out.shape == gray.shape + (3,)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)
    bw = Image.fromarray(gray > 100).convert("1")
    out = pil_to_rgb_array(bw)
    np.testing.assert_array_equal(out[:, :, 0], np.where(gray > 100, 255, 0))


def test_rgba_la_drop_alpha_like_official():
    rgb = _pattern()
    alpha = np.zeros(rgb.shape[:2], np.uint8)  # fully transparent: values must survive
    rgba = np.dstack([rgb, alpha])
    np.testing.assert_array_equal(pil_to_rgb_array(Image.fromarray(rgba, mode="RGBA")), rgb)
    np.testing.assert_array_equal(array_to_rgb(rgba), rgb)
    la = Image.fromarray(np.dstack([rgb[:, :, 0], alpha]), mode="LA")
    np.testing.assert_array_equal(pil_to_rgb_array(la)[:, :, 1], rgb[:, :, 0])


def test_palette_with_transparency(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, 2:] = [200, 10, 30]
    img = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    img.info["transparency"] = 0
    path = tmp_path / "p.png"
    img.save(path, transparency=0)
    out = load_image(path)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 3], [200, 10, 30])


def test_cmyk_matches_pillow_conversion(tmp_path):
    img = Image.fromarray(_pattern()).convert("CMYK")
    path = tmp_path / "c.jpg"
    img.save(path, quality=100)
    out = load_image(path)
    with Image.open(path) as ref:
        np.testing.assert_array_equal(out, np.asarray(ref.convert("RGB")))


def test_16bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 25700, 65535]], np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")
    out = load_image(path)
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 100, 255])
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])
    img32 = Image.fromarray(np.array([[0, 65535, 70000]], np.int32), mode="I")
    np.testing.assert_array_equal(pil_to_rgb_array(img32)[0, :, 0], [0, 255, 255])


def test_float_mode():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), mode="F")
    np.testing.assert_array_equal(pil_to_rgb_array(unit)[0, :, 0], [0, 128, 255])
    wide = Image.fromarray(np.array([[-5.0, 100.0, 300.0, np.nan]], np.float32), mode="F")
    np.testing.assert_array_equal(pil_to_rgb_array(wide)[0, :, 0], [0, 100, 255, 0])


@pytest.mark.parametrize("orientation, expected", [
    (1, lambda a: a),
    (3, lambda a: a[::-1, ::-1]),
    (6, lambda a: np.rot90(a, k=-1)),   # rotate 90 degrees clockwise to display
    (8, lambda a: np.rot90(a, k=1)),
])
def test_exif_orientation_honoured(tmp_path, orientation, expected):
    rgb = _pattern(6, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(rgb).save(path, exif=exif.tobytes())
    out = load_image(path)
    np.testing.assert_array_equal(out, expected(rgb))
    np.testing.assert_array_equal(load_image(path, exif_transpose=False), rgb)
    with Image.open(path) as img:  # PIL images get the same treatment
        img.load()
        np.testing.assert_array_equal(load_image(img), expected(rgb))


def test_array_variants():
    rgb = _pattern()
    np.testing.assert_array_equal(array_to_rgb(rgb[:, :, 0]), np.repeat(rgb[:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(array_to_rgb(rgb[:, :, :1]), np.repeat(rgb[:, :, :1], 3, axis=2))
    view = rgb[:, ::2]  # non-contiguous input comes back contiguous and equal
    out = array_to_rgb(view)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, view)


@pytest.mark.parametrize("array, match", [
    (np.zeros((4, 4, 3), np.float32), "dtype uint8.*float32.*255"),
    (np.zeros((4, 4, 3), np.uint16), "dtype uint8, got uint16"),
    (np.zeros((4,), np.uint8), r"shape \(H, W\)"),
    (np.zeros((1, 4, 4, 3, 1), np.uint8), r"shape \(H, W\)"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 0), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "1, 3 or 4 channels"),
])
def test_bad_arrays_raise_value_error(array, match):
    with pytest.raises(ValueError, match=match):
        load_image(array)


def test_load_images_forms(tmp_path):
    rgb = _pattern()
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    assert len(load_images(str(path))) == 1
    assert len(load_images(Image.fromarray(rgb))) == 1
    assert len(load_images(rgb)) == 1
    batch = load_images(np.stack([rgb, rgb[::-1]]))
    assert len(batch) == 2
    np.testing.assert_array_equal(batch[1], rgb[::-1])
    mixed = load_images([path, rgb, Image.fromarray(rgb)])
    for out in mixed:
        np.testing.assert_array_equal(out, rgb)


def test_load_images_errors(tmp_path):
    with pytest.raises(ValueError, match="empty list"):
        load_images([])
    with pytest.raises(ValueError, match="unsupported image type int"):
        load_images([_pattern(), 3])
    with pytest.raises(ValueError, match=r"images\[1\].*dtype"):
        load_images([_pattern(), np.zeros((2, 2, 3), np.float64)])
    with pytest.raises(ValueError, match="expected a list"):
        load_images({"a": 1})
    with pytest.raises(FileNotFoundError, match="not found"):
        load_images([tmp_path / "missing.png"])
    with pytest.raises(IsADirectoryError):
        load_image(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="not an image file"):
        load_image(text)
    good = tmp_path / "good.png"
    Image.fromarray(_pattern(64, 64)).save(good)
    truncated = tmp_path / "trunc.png"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="trunc.png"):
        load_image(truncated)


@pytest.mark.skipif(not SOH_000.is_file(), reason="shared test data not present")
def test_real_image():
    out = load_image(SOH_000)
    assert out.shape == (680, 1208, 3) and out.dtype == np.uint8
    with Image.open(SOH_000) as img:
        np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))
