"""Issue 19, runtime side: view counts up to the API's limit run, NaN is not turned into a
constant result, core Models made without __init__ or closed raise, inputs are copied
before the GIL is released, and image loading refuses FIFOs and oversized headers before
decoding anything."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import depth_anything_cpp as da3
from depth_anything_cpp import DepthAnything3, NonFiniteOutputError
from depth_anything_cpp.images import load_image, load_images

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

needs_core = pytest.mark.skipif(da3._core is None, reason=f"compiled core not loadable: {getattr(da3, '_core_reason', '')}")


@pytest.fixture(scope="module")
def model_path(fixture_gguf):
    return fixture_gguf


@pytest.fixture(scope="module")
def core_model(model_path):
    if da3._core is None:
        pytest.skip("compiled core not loadable")
    return da3._core.Model(str(model_path), n_threads=2)


def tensor(n, hw=14, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, hw, hw)).astype(np.float32)


# ---------------------------------------------------------------- item 1: many views
@needs_core
def test_every_view_count_the_api_accepts_runs(core_model):
    # 118 views used to abort in ggml (graph hash set), 123+ in the context pool
    n = int(da3._core.max_views)
    assert n == 256
    out = core_model.infer_tensor(tensor(n), ref_view_strategy="first")
    assert out["depth"].shape == (n, 14, 14) and np.isfinite(out["depth"]).all()
    # the graph of a one-view call is unchanged by the larger one before it
    one = core_model.infer_tensor(tensor(1))["depth"]
    np.testing.assert_array_equal(one, core_model.infer_tensor(tensor(1))["depth"])
    with pytest.raises(ValueError, match=r"257 views: n_views must be in \[1, 256\]"):
        core_model.infer_tensor(tensor(n + 1))


@needs_core
def test_reference_view_selection_with_many_views(core_model):
    out = core_model.infer_tensor(tensor(130, seed=1))  # saddle_balanced: the reference stage too
    assert out["depth"].shape == (130, 14, 14) and np.isfinite(out["depth"]).all()


def test_facade_counts_views_before_decoding(model_path, tmp_path, monkeypatch):
    if da3._core is None:
        pytest.skip("compiled core not loadable")
    model = DepthAnything3.from_file(model_path, n_threads=1)
    decoded = []
    monkeypatch.setattr(da3.model, "load_images", lambda *a, **k: decoded.append(1))
    with pytest.raises(ValueError, match="300 views given, at most 256"):
        model.inference([str(tmp_path / f"{i}.png") for i in range(300)])  # none exists: never opened
    assert not decoded


# ---------------------------------------------------------------- item 7: non-finite values
@needs_core
def test_nan_input_is_an_error_not_a_constant_depth(core_model):
    # PyTorch's ReLU keeps NaN; ours turned it into 0, so one NaN gave a constant, finite map
    x = tensor(1, 28)
    x[0, 0, 5, 5] = np.nan
    with pytest.raises(NonFiniteOutputError, match="output 'depth' has 784 non-finite values"):
        core_model.infer_tensor(x)
    assert issubclass(NonFiniteOutputError, FloatingPointError) and issubclass(NonFiniteOutputError, da3.DA3Error)
    x[0, 0, 5, 5] = np.inf
    with pytest.raises(NonFiniteOutputError):
        core_model.infer_tensor(x)
    # and the model still works afterwards
    assert np.isfinite(core_model.infer_tensor(tensor(1, 28))["depth"]).all()


# ---------------------------------------------------------------- item 16: binding
@needs_core
def test_model_without_init_and_closed_model_raise(model_path):
    Model = da3._core.Model
    bare = Model.__new__(Model)  # used to segfault on use
    for call in (bare.info, bare.close, lambda: bare.infer_tensor(tensor(1)), lambda: bare.infer([])):
        with pytest.raises(ValueError, match="not initialized"):
            call()
    m = Model(str(model_path), n_threads=1)
    m.close()
    m.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        m.info()
    with pytest.raises(ValueError, match="closed"):
        m.infer_tensor(tensor(1))
    with Model(str(model_path), n_threads=1) as m2:
        assert m2.info()["preset"] == "da3-small"
    with pytest.raises(ValueError, match="closed"):
        m2.info()


@needs_core
def test_thread_count_over_ggml_limit_is_refused(model_path):
    with pytest.raises(ValueError, match="n_threads 600 is over ggml's limit of 512"):
        da3._core.Model(str(model_path), n_threads=600)


def test_facade_close_and_context_manager(model_path):
    if da3._core is None:
        pytest.skip("compiled core not loadable")
    img = np.zeros((28, 28, 3), np.uint8)
    with DepthAnything3.from_file(model_path, n_threads=1) as model:
        assert model.inference([img], process_res=28).depth.shape == (1, 28, 28)
    with pytest.raises(ValueError, match="closed"):
        model.inference([img], process_res=28)


@needs_core
def test_input_is_copied_before_the_gil_is_released(core_model):
    # The call waits (GIL released) for the model's lock held by a long inference in another
    # thread; meanwhile a third thread rewrites the caller's array. The result must be that
    # of the array as passed: the binding copies it before releasing the GIL.
    a, b = tensor(1, 28, seed=2), tensor(1, 28, seed=3)
    want = core_model.infer_tensor(a.copy())["depth"]
    x = a.copy()  # float32 C-contiguous: no conversion copy would hide the problem
    busy = threading.Thread(target=lambda: core_model.infer_tensor(tensor(3, 280, seed=4)))
    busy.start()
    time.sleep(0.1)  # busy holds the lock now (its inference takes seconds)
    writer = threading.Thread(target=lambda: (time.sleep(0.2), np.copyto(x, b)))
    writer.start()
    try:
        got = core_model.infer_tensor(x)["depth"]
    finally:
        busy.join()
        writer.join()
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- item 5: fork
def _child_report(pid: int, r: int, w: int, timeout: float = 60.0):
    """The one byte a forked child wrote to the pipe (r, w), or None when it wrote nothing within
    `timeout` s (then it is killed). Reaps the child and closes the pipe."""
    import select

    os.close(w)
    ready, _, _ = select.select([r], [], [], timeout)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    code = os.read(r, 1) if ready else None
    os.close(r)
    return code


@needs_core
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_child_can_infer(model_path):
    m = da3._core.Model(str(model_path), n_threads=2)
    x = tensor(1, 28)
    parent = m.infer_tensor(x)["depth"]  # the thread pool has run in the parent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: infer, report, exit without running pytest's teardown
        try:
            ok = np.array_equal(m.infer_tensor(x)["depth"], parent)
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    code = _child_report(pid, r, w)
    assert code is not None, "the forked child hung in inference (thread pool state copied by fork)"
    assert code == b"1"


@needs_core
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_while_another_thread_infers_never_hangs(model_path):
    # the child inherits the model's lock held by a thread it does not have: it must raise
    # (or, if the fork came before that call took the lock, infer), never wait forever
    m = da3._core.Model(str(model_path), n_threads=2)
    x = tensor(1, 28)
    parent = m.infer_tensor(x)["depth"]
    started = threading.Event()

    def busy():
        started.set()
        for _ in range(3):
            m.infer_tensor(tensor(2, 140))

    t = threading.Thread(target=busy)
    t.start()
    started.wait()
    time.sleep(0.1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = b"?"
        try:
            code = b"1" if np.array_equal(m.infer_tensor(x)["depth"], parent) else b"0"
        except ValueError as exc:
            code = b"E" if "forked" in str(exc) else b"?"
        finally:
            os.write(w, code)
            os._exit(0)
    code = _child_report(pid, r, w)
    t.join()
    assert code is not None, "the forked child hung on the model's lock"
    assert code in (b"E", b"1")


def _pool_infer(seed):
    return float(_POOL_MODEL.inference([np.full((28, 28, 3), seed, np.uint8)], process_res=28).depth.sum())


_POOL_MODEL = None


@needs_core
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_multiprocessing_fork_pool(model_path):
    import multiprocessing as mp

    global _POOL_MODEL
    _POOL_MODEL = DepthAnything3.from_file(model_path, n_threads=2)
    try:
        expected = [_pool_infer(s) for s in (10, 200)]  # the parent has inferred before the fork
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map_async(_pool_infer, [10, 200]).get(timeout=120)
        assert got == expected
    finally:
        _POOL_MODEL = None


# ---------------------------------------------------------------- images: items 6, 11, 12, 17
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe\.png: not a regular file"):
        load_image(fifo)  # opening it would block forever (no writer)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_oversized_header_is_refused_before_decoding(tmp_path, monkeypatch):
    # a small PNG declaring 13000 x 13000: the limit applies from the header
    path = tmp_path / "bomb.png"
    Image.new("1", (13000, 13000)).save(path)  # 1-bit: 21 MB to make, a small file
    assert path.stat().st_size < 2_000_000
    from PIL import ImageFile

    loaded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(1) or real_load(self))
    with pytest.raises(ValueError, match=r"bomb\.png: 13000x13000 = 169000000 pixels, over the limit of 100000000"):
        load_image(path)
    assert not loaded
    with pytest.raises(ValueError, match="over the limit of 1000 "):
        load_image(path, max_image_pixels=1000)


def test_max_image_pixels_is_settable_and_downscale_is_an_option(tmp_path):
    path = tmp_path / "wide.jpg"
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    with pytest.raises(ValueError, match=r"wide\.jpg: 400x300 = 120000 pixels, over the limit of 50000"):
        load_image(path, max_image_pixels=50_000)
    assert load_image(path, max_image_pixels=120_000).shape == (300, 400, 3)
    small = load_image(path, max_image_pixels=50_000, downscale_large_images=True)
    assert small.shape == (150, 200, 3)  # the smallest integer factor that fits: 2
    arr = load_image(rgb, max_image_pixels=50_000, downscale_large_images=True)
    assert arr.shape == (150, 200, 3)
    np.testing.assert_array_equal(arr, np.asarray(Image.fromarray(rgb).reduce(2)))
    with pytest.raises(ValueError, match="max_image_pixels"):
        load_image(path, max_image_pixels=0)


def test_broadcast_array_is_checked_before_it_is_copied():
    huge = np.broadcast_to(np.zeros(3, np.uint8), (20000, 20000, 3))  # zero strides, no memory
    with pytest.raises(ValueError, match=r"images\[0\]: 20000x20000 = 400000000 pixels"):
        load_images([huge])


def test_view_limit_is_checked_before_decoding(tmp_path):
    with pytest.raises(ValueError, match="300 views given, at most 256"):
        load_images([str(tmp_path / f"{i}.png") for i in range(300)], max_views=256)  # none exists


@pytest.mark.skipif(os.geteuid() == 0, reason="platform: root reads unreadable files")
def test_unreadable_image_error_names_the_file(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    with pytest.raises(PermissionError, match="secret.png"):
        load_image(path)


def test_truncated_image_error_names_the_file(tmp_path):
    path = tmp_path / "cut.png"
    Image.new("RGB", (64, 64)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cut\.png"):
        load_image(path)
