"""How close a plain model of OpenCV's IPP cubic resize gets to it (issue #20, item 11).

x86 opencv-python runs uint8 INTER_CUBIC enlargements through Intel IPP (closed source), which
rounds differently from OpenCV's own fixed-point code (the one our preprocessing reproduces bit
for bit). The model tried here: separable Keys cubic (A = -0.75), half-pixel centres, clamped
borders, horizontal pass then vertical, float32 products summed in tap order, round half to even.
It prints, for the KITTI frame of ../shared/data at the official 504 upper-bound path's cubic step
and for random images and sizes: the fraction of values that differ from IPP, for the model and
for OpenCV's own path. Run: python benchmarks/ipp_cubic_model.py [--trials N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def keys_weight(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def resize_axis(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    n_in = x.shape[axis]
    if n_in == n_out:
        return x.astype(np.float32)
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(src).astype(int)
    shape = [1] * x.ndim
    shape[axis] = n_out
    acc = np.zeros([n_out if d == axis else s for d, s in enumerate(x.shape)], np.float32)
    for k in range(-1, 3):
        w = keys_weight(src - i0 - k).astype(np.float32).reshape(shape)
        acc += np.take(x, np.clip(i0 + k, 0, n_in - 1), axis=axis).astype(np.float32) * w
    return acc


def model(img: np.ndarray, w: int, h: int) -> np.ndarray:
    y = resize_axis(resize_axis(img.astype(np.float32), w, 1), h, 0)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def compare(cv2, img: np.ndarray, w: int, h: int) -> tuple:
    cv2.ipp.setUseIPP(True)
    ipp = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    cv2.ipp.setUseIPP(False)
    ocv = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    cv2.ipp.setUseIPP(True)
    return float((model(img, w, h) != ipp).mean()), float((ocv != ipp).mean())


def main() -> int:
    import cv2
    from PIL import Image

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=120)
    args = p.parse_args()
    if not cv2.ipp.useIPP():
        print("this OpenCV runs without IPP: nothing to compare")
        return 0
    kitti = sorted((DATA / "metric3d/data/kitti_demo/rgb").glob("*"))
    if kitti:
        img = np.asarray(Image.open(kitti[0]).convert("RGB"))
        small = cv2.resize(img, (504, 152), interpolation=cv2.INTER_AREA)  # the 504 upper bound, 1242x375
        m, o = compare(cv2, small, 504, 154)  # then rounded to multiples of 14: one cubic step
        print(f"KITTI {kitti[0].name} 504x152 -> 504x154: model differs from IPP in {m:.2e}, OpenCV's own in {o:.2e}")
    rng = np.random.default_rng(0)
    exact, fm, fo = 0, [], []
    for i in range(args.trials):
        h, w = (int(v) for v in rng.integers(3, 400, 2))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if i % 2:
            img = cv2.GaussianBlur(img, (5, 5), 2)
        m, o = compare(cv2, img, int(w + rng.integers(-min(w - 1, 20), 300)), int(h + rng.integers(0, 300)))
        exact += m == 0.0
        fm.append(m)
        fo.append(o)
    print(f"random: model exact in {exact}/{args.trials}; values differing from IPP: model mean {np.mean(fm):.2e} "
          f"max {np.max(fm):.2e}, OpenCV's own mean {np.mean(fo):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
