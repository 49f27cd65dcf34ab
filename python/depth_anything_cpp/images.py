"""Image loading: anything a user may pass -> 8-bit RGB numpy arrays for the core.

The official package loads every image with ``PIL.Image.open(path).convert("RGB")`` or
``Image.fromarray(array).convert("RGB")`` (ref: depth_anything_3/utils/io/input_processor.py,
``InputProcessor._load_image``). We do the same, and in addition:

- honour the EXIF orientation tag of files and PIL images (``ImageOps.exif_transpose``),
  so a portrait photo taken sideways is processed upright;
- convert 16-bit and float modes by scaling instead of clipping (``I;16``: value / 257);
- drop the alpha channel of RGBA/LA/PA inputs exactly like ``convert("RGB")`` does
  (no compositing), and expand palette images through RGBA so their transparency is
  read correctly;
- validate numpy arrays and raise ``ValueError`` with a clear message instead of
  failing deep inside Pillow or the core.

Pillow is imported lazily so that ``import depth_anything_cpp`` stays fast.
"""

from __future__ import annotations

import math
import os
import stat
from typing import Any, Optional, Sequence, Union

import numpy as np

__all__ = ["ImageInput", "load_image", "load_images", "input_paths", "pil_to_rgb_array", "array_to_rgb",
           "count_images", "DEFAULT_MAX_IMAGE_PIXELS"]

#: Default of ``max_image_pixels`` (width x height of one input image, checked from the file
#: header or the array shape before anything is decoded or copied).
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
#: Largest ``max_image_pixels`` accepted (the core takes a C int).
MAX_IMAGE_PIXELS_LIMIT = 2**31 - 1

#: Types accepted as one image: a path (``str`` / ``os.PathLike``), a numpy array
#: (HxW, HxWx1, HxWx3 or HxWx4, uint8) or a ``PIL.Image.Image``.
ImageInput = Union[str, "os.PathLike[str]", np.ndarray, Any]

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_INT16_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def array_to_rgb(array: np.ndarray, *, name: str = "image", max_image_pixels: Optional[int] = None,
                 downscale_large_images: bool = False) -> np.ndarray:
    """Validate an in-memory image and return it as a C-contiguous (H, W, 3) uint8 RGB array.

    Accepted: dtype ``uint8`` with shape (H, W) or (H, W, 1) (gray, replicated to RGB),
    (H, W, 3) (RGB, channel order is NOT changed: pass RGB, not OpenCV's BGR) or
    (H, W, 4) (RGBA, alpha dropped as ``Image.fromarray(a).convert("RGB")`` does).

    With ``max_image_pixels``, an array with more pixels (H x W, checked before any copy)
    raises ValueError, or with ``downscale_large_images`` is reduced by the smallest integer
    factor that fits (box filter, ``PIL.Image.reduce``).

    Raises:
        ValueError: wrong dtype (e.g. float or uint16), wrong number of dimensions or
            channels, an empty image, or more pixels than ``max_image_pixels``.
    """
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(array).__name__}")
    if array.dtype != np.uint8:
        hint = ""
        if np.issubdtype(array.dtype, np.floating):
            hint = " (for floats in [0, 1] use (a * 255).round().astype(np.uint8))"
        raise ValueError(
            f"{name}: expected dtype uint8, got {array.dtype}{hint}"
        )
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{name}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {array.shape}")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"{name}: expected 1, 3 or 4 channels in the last axis, got shape {array.shape}"
        )
    if max_image_pixels is not None and array.shape[0] * array.shape[1] > max_image_pixels:
        if not downscale_large_images:
            raise _too_large(name, array.shape[1], array.shape[0], max_image_pixels)
        return _reduce_rgb(array_to_rgb(array, name=name), max_image_pixels)
    if array.ndim == 2:
        return _gray_to_rgb(array)
    channels = array.shape[2]
    if channels == 1:
        return _gray_to_rgb(array[:, :, 0])
    if channels == 3:
        return np.ascontiguousarray(array)
    if channels == 4:
        return np.ascontiguousarray(array[:, :, :3])
    raise ValueError(
        f"{name}: expected 1, 3 or 4 channels in the last axis, got shape {array.shape}"
    )


def check_max_image_pixels(max_image_pixels: Any) -> int:
    """Validate ``max_image_pixels`` (an int in [1, 2**31 - 1]); raises ValueError/TypeError."""
    if isinstance(max_image_pixels, bool) or not isinstance(max_image_pixels, (int, np.integer)):
        raise TypeError(f"max_image_pixels: expected int, got {type(max_image_pixels).__name__}")
    if not 1 <= max_image_pixels <= MAX_IMAGE_PIXELS_LIMIT:
        raise ValueError(f"max_image_pixels: expected an integer in [1, {MAX_IMAGE_PIXELS_LIMIT}], "
                         f"got {max_image_pixels}")
    return int(max_image_pixels)


def _reduce_factor(width: int, height: int, max_pixels: int) -> int:
    """Smallest integer k with ceil(w / k) * ceil(h / k) <= max_pixels (1 if it fits)."""
    k = max(1, math.isqrt(max(0, width * height - 1) // max_pixels))
    while math.ceil(width / k) * math.ceil(height / k) > max_pixels:
        k += 1
    return k


def _reduce_rgb(rgb: np.ndarray, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 reduced by the smallest integer factor that fits max_pixels (box filter)."""
    from PIL import Image

    k = _reduce_factor(rgb.shape[1], rgb.shape[0], max_pixels)
    if k == 1:
        return rgb
    return np.ascontiguousarray(np.asarray(Image.fromarray(rgb).reduce(k), dtype=np.uint8))


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ValueError:
    return ValueError(
        f"{name}: {width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
        "(max_image_pixels); raise max_image_pixels or pass downscale_large_images=True"
    )


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 65535).astype(np.float64) / 257.0).astype(np.uint8)


def pil_to_rgb_array(img: Any, *, exif_transpose: bool = True, name: str = "image",
                     max_image_pixels: Optional[int] = None, downscale_large_images: bool = False) -> np.ndarray:
    """Convert a ``PIL.Image.Image`` of any common mode to a (H, W, 3) uint8 RGB array.

    Modes: RGB as is; L, 1, CMYK, YCbCr via Pillow's ``convert("RGB")``; RGBA/LA/PA with
    the alpha dropped; P via RGBA (honours palette transparency, then drops alpha);
    I;16* and I as 16-bit gray scaled by 1/257; F (float) scaled by 255 when its values
    lie in [0, 1], clipped to [0, 255] otherwise.

    ``max_image_pixels`` / ``downscale_large_images``: as :func:`array_to_rgb`.

    Raises:
        ValueError: empty image, a mode that cannot be converted to RGB, or more pixels than
            ``max_image_pixels``.
    """
    from PIL import Image, ImageOps

    if not isinstance(img, Image.Image):
        raise ValueError(f"{name}: expected a PIL image, got {type(img).__name__}")
    if max_image_pixels is not None and img.width * img.height > max_image_pixels:
        if not downscale_large_images:
            raise _too_large(name, img.width, img.height, max_image_pixels)
        return _reduce_rgb(pil_to_rgb_array(img, exif_transpose=exif_transpose, name=name), max_image_pixels)
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    if img.width == 0 or img.height == 0:
        raise ValueError(f"{name}: empty image of size {img.width}x{img.height}")
    mode = img.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if mode in _INT16_MODES:
        return _gray_to_rgb(_scale_16bit(np.asarray(img)))
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        gray = np.round(np.clip(values, 0.0, 255.0)).astype(np.uint8)
        return _gray_to_rgb(gray)
    if mode == "P":
        img = img.convert("RGBA")
    try:
        rgb = img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValueError(f"{name}: cannot convert PIL mode {mode!r} to RGB: {exc}") from exc
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def load_image(image: ImageInput, *, exif_transpose: bool = True, name: str | None = None,
               max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, downscale_large_images: bool = False) -> np.ndarray:
    """Load one image as a C-contiguous (H, W, 3) uint8 RGB array.

    Args:
        image: a file path (``str`` or ``os.PathLike``; any format Pillow reads, first
            frame of multi-frame files), a numpy array (see :func:`array_to_rgb`) or a
            ``PIL.Image.Image`` (see :func:`pil_to_rgb_array`).
        exif_transpose: apply the EXIF orientation of files and PIL images (default True;
            numpy arrays carry no EXIF and are used as given).
        name: label used in error messages (default: the path or "image").
        max_image_pixels: largest width x height accepted (default 100,000,000), checked
            from the file header or the array shape before anything is decoded or copied.
            Files are also subject to Pillow's decompression-bomb guard
            (``PIL.Image.MAX_IMAGE_PIXELS``, an error at twice its value, about 179 MP).
        downscale_large_images: instead of raising, reduce a larger image by the smallest
            integer factor that fits (box filter; JPEG files are decoded at a reduced scale).

    Raises:
        FileNotFoundError: the path does not exist.
        IsADirectoryError: the path is a directory.
        PermissionError: the file cannot be read (the message names it).
        ValueError: not a regular file (FIFO, device, socket), unreadable/unrecognized
            file, unsupported type, bad array, more pixels than ``max_image_pixels``.
    """
    max_image_pixels = check_max_image_pixels(max_image_pixels)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        label = name or path
        from PIL import Image, UnidentifiedImageError

        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"image file not found: {path}") from None
        except OSError as exc:
            raise type(exc)(exc.errno, f"{label}: cannot read image: {exc.strerror}") from exc
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"expected an image file, got a directory: {path}")
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block open() forever
            raise ValueError(f"{label}: not a regular file (a FIFO, device or socket), not an image")
        try:
            with Image.open(path) as img:
                # header only so far: refuse (or reduce) before decoding
                if img.width * img.height > max_image_pixels:
                    if not downscale_large_images:
                        raise _too_large(label, img.width, img.height, max_image_pixels)
                    k = _reduce_factor(img.width, img.height, max_image_pixels)
                    img.draft("RGB", (math.ceil(img.width / k), math.ceil(img.height / k)))  # JPEG: DCT scaling
                img.load()
                return pil_to_rgb_array(img, exif_transpose=exif_transpose, name=label,
                                        max_image_pixels=max_image_pixels,
                                        downscale_large_images=downscale_large_images)
        except UnidentifiedImageError as exc:
            raise ValueError(f"{label}: not an image file Pillow can read") from exc
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{label}: {exc}") from exc
        except (OSError, SyntaxError) as exc:
            if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
                if label in str(exc):
                    raise
                raise type(exc)(exc.errno, f"{label}: cannot read image: {exc.strerror}") from exc
            raise ValueError(f"{label}: cannot decode image: {exc}") from exc
    label = name or "image"
    limits = dict(max_image_pixels=max_image_pixels, downscale_large_images=downscale_large_images)
    if isinstance(image, np.ndarray):
        return array_to_rgb(image, name=label, **limits)
    if _is_pil_image(image):
        return pil_to_rgb_array(image, exif_transpose=exif_transpose, name=label, **limits)
    raise ValueError(
        f"{label}: unsupported image type {type(image).__name__}; "
        "pass a path, a numpy uint8 array or a PIL image"
    )


def _is_pil_image(obj: Any) -> bool:
    # Avoid importing Pillow just to reject an int.
    if type(obj).__module__.split(".")[0] != "PIL":
        return False
    from PIL import Image

    return isinstance(obj, Image.Image)


def _items(images: Union[ImageInput, Sequence[ImageInput]]) -> Sequence[ImageInput]:
    """The views of ``images`` as load_images takes them (nothing decoded or copied)."""
    if isinstance(images, (str, os.PathLike)) or _is_pil_image(images):
        items: Sequence[ImageInput] = [images]
    elif isinstance(images, np.ndarray):
        if images.ndim == 4:
            items = list(images)
        else:
            items = [images]
    elif isinstance(images, (list, tuple)):
        items = images
    else:
        raise ValueError(
            f"images: expected a list of images, got {type(images).__name__}"
        )
    if len(items) == 0:
        raise ValueError("images: empty list, at least one image is required")
    return items


def count_images(images: Union[ImageInput, Sequence[ImageInput]]) -> int:
    """Number of views :func:`load_images` would return, without decoding anything.

    Raises:
        ValueError: no image given, or an unsupported container type.
    """
    return len(_items(images))


def load_images(images: Union[ImageInput, Sequence[ImageInput]], *, exif_transpose: bool = True,
                max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, downscale_large_images: bool = False,
                max_views: Optional[int] = None) -> list[np.ndarray]:
    """Load the views of one scene as a list of (H, W, 3) uint8 RGB arrays.

    ``images`` is a list/tuple of images (any type accepted by :func:`load_image`), a single
    image (path, PIL image, 2-D/3-D array) or a 4-D uint8 array (N, H, W, C) of N views.
    ``max_image_pixels`` and ``downscale_large_images`` apply to each view (see
    :func:`load_image`); more than ``max_views`` views raise before any is decoded.

    Raises:
        ValueError: no image given, more than ``max_views``, or any image is invalid
            (message names its path or index).
        FileNotFoundError, IsADirectoryError, PermissionError: as :func:`load_image`.
    """
    items = _items(images)
    if max_views is not None and len(items) > max_views:
        raise ValueError(f"images: {len(items)} views given, at most {max_views} per call")
    out = []
    for i, item in enumerate(items):
        label = os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"images[{i}]"
        out.append(load_image(item, exif_transpose=exif_transpose, name=label, max_image_pixels=max_image_pixels,
                              downscale_large_images=downscale_large_images))
    return out


def input_paths(images: Union[ImageInput, Sequence[ImageInput]]) -> list:
    """The path (``str``) of each view of ``images`` as :func:`load_images` expands them,
    or None for views given as arrays or PIL images (a PIL image opened from a file gives
    its ``filename`` when it has one)."""
    if isinstance(images, (str, os.PathLike)) or _is_pil_image(images):
        items: Sequence[Any] = [images]
    elif isinstance(images, np.ndarray):
        return [None] * (images.shape[0] if images.ndim == 4 else 1)
    elif isinstance(images, (list, tuple)):
        items = images
    else:
        return []
    out = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            out.append(os.fspath(item))
        elif _is_pil_image(item) and getattr(item, "filename", ""):
            out.append(str(item.filename))
        else:
            out.append(None)
    return out
