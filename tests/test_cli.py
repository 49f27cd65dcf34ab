"""``da3cpp`` CLI and the exporters it uses (depth_anything_cpp.cli, .exports).

The batch/exit-code/output tests run on a fake core (monkeypatched, network not
exercised); the end-to-end test runs the compiled core on the fixture GGUF and is skipped
with the reason when the core cannot be loaded.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import depth_anything_cpp as da3
from depth_anything_cpp import cli, exports
from fakes import make_fake_core

SHARED = Path(os.environ.get("DA3CPP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURE = SHARED / "fixtures" / "da3-small-anchor-layout"
GGUF = FIXTURE / "da3-small-rand-f16.gguf"
SOH_000 = SHARED / "data" / "da3_examples" / "assets_examples_SOH_000.png"
SOH_010 = SHARED / "data" / "da3_examples" / "assets_examples_SOH_010.png"

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False
VIS = [] if HAVE_MPL else ["--no-vis"]


def _fake_core(metric=False):
    """Views subsampled 2x, depth = 1 + column index / 10; metric when asked."""
    return make_fake_core(stride=2, info={"is_metric": int(metric)})


@pytest.fixture
def setup(monkeypatch, tmp_path):
    monkeypatch.setattr(da3, "_core", _fake_core())
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(16))
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(imgs / name)
    (imgs / "readme.txt").write_text("ignored: not an image suffix")
    return types.SimpleNamespace(model=model, imgs=imgs, out=tmp_path / "out", tmp=tmp_path)


# ---------------------------------------------------------------- exporters
def test_metric_encoding_is_millimetres():
    depth = np.array([[0.0016, 1.2344, 70.0, np.nan, -1.0, 0.0002]], np.float32)
    values, meta = exports.encode_depth_u16(depth, is_metric=True)
    # mm, clipped to 65535; invalid -> 0; tiny valid depth stays distinguishable (1)
    np.testing.assert_array_equal(values, [[2, 1234, 65535, 0, 0, 1]])
    assert meta["encoding"] == "metric_mm" and meta["scale"] == 1e-3
    back = exports.decode_depth_u16(values, meta)
    assert abs(back[0, 1] - 1.2344) <= 5e-4 and np.isnan(back[0, 3])


def test_relative_encoding_roundtrip():
    depth = np.random.default_rng(0).uniform(0.3, 7.0, (30, 40)).astype(np.float32)
    values, meta = exports.encode_depth_u16(depth, is_metric=False)
    assert values.min() == 0 and values.max() == 65535
    assert meta["min"] == pytest.approx(depth.min()) and meta["max"] == pytest.approx(depth.max())
    back = exports.decode_depth_u16(values, meta)
    assert np.abs(back - depth).max() <= (depth.max() - depth.min()) / 65535
    flat, meta = exports.encode_depth_u16(np.full((2, 2), 3.0, np.float32), is_metric=False)
    assert (flat == 0).all() and meta["min"] == meta["max"] == 3.0
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        exports.encode_depth_u16(np.zeros((1, 2, 2), np.float32), False)


def test_png16_written_with_metadata(tmp_path):
    depth = np.linspace(1, 2, 12, dtype=np.float32).reshape(3, 4)
    meta = exports.write_depth_png16(tmp_path / "d.png", depth, is_metric=False)
    with Image.open(tmp_path / "d.png") as img:
        assert img.mode.startswith("I") and img.size == (4, 3)
        values = np.asarray(img)
        assert img.text["depth_encoding"] == "relative_minmax"
        assert float(img.text["depth_min"]) == meta["min"]
    np.testing.assert_allclose(exports.decode_depth_u16(values, meta), depth, atol=2e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["d.png"]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        exports.atomic_write_bytes(target, boom)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib not installed")
def test_colorize_depth_near_is_high_end():
    import matplotlib

    depth = np.tile(np.linspace(1, 10, 50, dtype=np.float32), (20, 1))
    depth[0, 0] = np.nan
    rgb = exports.colorize_depth(depth, "viridis")
    assert rgb.shape == (20, 50, 3) and rgb.dtype == np.uint8
    top = np.array(matplotlib.colormaps["viridis"](1.0, bytes=True)[:3])
    low = np.array(matplotlib.colormaps["viridis"](0.0, bytes=True)[:3])
    np.testing.assert_array_equal(rgb[5, 0], top)   # nearest
    np.testing.assert_array_equal(rgb[5, -1], low)  # farthest
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 0])  # invalid
    with pytest.raises(ValueError, match="unknown colormap"):
        exports.colorize_depth(depth, "no-such-map")


# ---------------------------------------------------------------- CLI
def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "depth" in out and "info" in out and "convert" in out and "examples:" in out
    with pytest.raises(SystemExit):
        cli.main(["depth", "--help"])
    assert "--process-res" in capsys.readouterr().out
    assert cli.main([]) == 2


def test_depth_batch_writes_outputs(setup, capsys):
    rc = cli.main(["depth", str(setup.imgs), "--model", str(setup.model), "--out", str(setup.out),
                   "--threads", "1", *VIS])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    names = sorted(p.name for p in setup.out.iterdir())
    expected = ["a.npz", "a_depth.png", "b.npz", "b_depth.png"]
    if HAVE_MPL:
        expected += ["a_depth_vis.png", "b_depth_vis.png"]
    assert names == sorted(expected)
    lines = [line for line in captured.out.splitlines() if line]
    assert len(lines) == 2 and lines[0].startswith("a.png: 60x40 -> 30x20, depth min/median/max 1/")
    data = np.load(setup.out / "a.npz")
    assert {"depth", "conf", "extrinsics", "intrinsics", "image", "depth_png_min",
            "depth_png_max"} <= set(data.files)
    assert data["depth"].shape == (20, 30) and data["image"].shape == (20, 30, 3)
    with Image.open(setup.out / "a_depth.png") as img:
        values = np.asarray(img)
    meta = {"encoding": str(data["depth_png_encoding"]), "min": float(data["depth_png_min"]),
            "scale": float(data["depth_png_scale"])}
    np.testing.assert_allclose(exports.decode_depth_u16(values, meta), data["depth"], atol=1e-4)
    if HAVE_MPL:
        with Image.open(setup.out / "a_depth_vis.png") as img:
            assert img.mode == "RGB" and img.size == (30, 20)


def test_depth_metric_png_in_mm(setup, monkeypatch):
    monkeypatch.setattr(da3, "_core", _fake_core(metric=True))
    img = setup.imgs / "a.png"
    assert cli.main(["depth", str(img), "-m", str(setup.model), "-o", str(setup.out), "--no-vis", "-q"]) == 0
    with Image.open(setup.out / "a_depth.png") as png:
        values = np.asarray(png)
    np.testing.assert_array_equal(values[0, :3], [1000, 1100, 1200])
    assert not (setup.out / "a_depth_vis.png").exists()


def test_output_names_stay_inside_out_and_unique(setup, capsys):
    """Issue 19: ``...png`` has the stem ``..`` (outputs landed in the parent of --out), and
    a.jpg, a.png, a_1.png gave a.png the stem a_1, then overwritten by a_1.png."""
    imgs = setup.tmp / "names"
    imgs.mkdir()
    rng = np.random.default_rng(2)
    for name in ("...png", "..jpg", "a.jpg", "a.png", "a_1.png"):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
            imgs / name, "JPEG" if name.endswith("jpg") else "PNG")
    out = setup.tmp / "deep" / "out"
    rc = cli.main(["export", str(imgs), "--format", "depth-mini_npz", "--model", str(setup.model),
                   "--out", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (setup.tmp / "deep").iterdir()) == ["out"]  # nothing beside --out
    # sorted inputs: ...png, ..jpg, a.jpg, a.png, a_1.png -> image, image_1, a, a_2, a_1
    assert sorted(p.name for p in out.iterdir()) == ["a", "a_1", "a_2", "image", "image_1"]
    for d in out.iterdir():
        assert (d / "depth" / "0000.png").is_file() and (d / "exports" / "mini_npz" / "results.npz").is_file()
    # the same inputs give the same names again (deterministic), and `depth` names files alike
    rc = cli.main(["depth", str(imgs), "--model", str(setup.model), "--out", str(out / "d"), "-q", "--no-vis"])
    assert rc == 0
    assert sorted(p.name for p in (out / "d").glob("*.npz")) == ["a.npz", "a_1.npz", "a_2.npz", "image.npz",
                                                                 "image_1.npz"]


def test_multiview_over_the_view_limit_is_a_usage_error(setup, capsys, monkeypatch):
    monkeypatch.setattr(da3._core, "max_views", 1)
    rc = cli.main(["depth", str(setup.imgs), "--multiview", "--model", str(setup.model), "--out", str(setup.out)])
    assert rc == 2 and "2 views (images and sampled video frames), at most 1" in capsys.readouterr().err
    assert not any(setup.out.iterdir())


def test_depth_batch_continues_after_bad_image(setup, capsys):
    (setup.imgs / "broken.png").write_bytes(b"\x89PNG garbage")
    other = setup.tmp / "other"
    other.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(other / "a.png")  # same stem as imgs/a.png
    rc = cli.main(["depth", str(setup.imgs), str(other / "a.png"), str(setup.tmp / "missing.png"),
                   "--model", str(setup.model), "--out", str(setup.out), "--no-vis"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "broken.png" in captured.err and "missing.png" in captured.err
    assert "2 of 5 inputs failed" in captured.err
    assert {"a.npz", "b.npz", "a_1.npz"} <= {p.name for p in setup.out.iterdir()}
    assert not any(p.name.endswith(".tmp") for p in setup.out.iterdir())


def test_depth_usage_errors(setup, capsys):
    base = ["--out", str(setup.out), "--no-vis"]
    assert cli.main(["depth", str(setup.imgs), "--model", str(setup.tmp / "nope.gguf"), *base]) == 2
    assert "cannot load model" in capsys.readouterr().err
    assert cli.main(["depth", str(setup.tmp / "none"), "--model", str(setup.model), *base]) == 2
    assert cli.main(["depth", str(setup.imgs), "--model", str(setup.model), "--process-res", "5", *base]) == 2
    assert cli.main(["depth", str(setup.imgs), "--model", str(setup.model), "--process-res", str(2**31), *base]) == 2
    assert "--process-res must be in [14, 8192]" in capsys.readouterr().err
    assert cli.main(["depth", str(setup.imgs), "--model", str(setup.model), "--threads", "100000", *base]) == 2
    if HAVE_MPL:
        assert cli.main(["depth", str(setup.imgs), "-m", str(setup.model), "-o", str(setup.out),
                         "--cmap", "nope"]) == 2
        assert "unknown colormap" in capsys.readouterr().err

def test_default_model_from_env_or_cache(setup, capsys, monkeypatch, tmp_path):
    base = ["depth", str(setup.imgs), "--out", str(setup.out), "--no-vis", "-q"]
    monkeypatch.delenv("DA3CPP_MODEL", raising=False)
    monkeypatch.setenv("DA3CPP_CACHE", str(tmp_path / "cache"))
    assert cli.main(base) == 2  # --model missing, nothing set, empty cache
    err = capsys.readouterr().err
    assert "no model" in err and "DA3CPP_MODEL" in err
    monkeypatch.setenv("DA3CPP_MODEL", str(setup.model))
    assert cli.main(base) == 0
    monkeypatch.delenv("DA3CPP_MODEL")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "m.gguf").write_bytes(Path(setup.model).read_bytes())
    assert cli.main(base) == 0  # the one GGUF of the cache
    (tmp_path / "cache" / "n.gguf").write_bytes(b"GGUF")
    assert cli.main(base) == 2 and "2 GGUF files" in capsys.readouterr().err


def test_info_prints_backend_info(monkeypatch, capsys):
    from depth_anything_cpp import _variants

    monkeypatch.setattr(da3, "backend_info", lambda: {"variant": "cpu_test", "devices": [{"name": "CPU"}]})
    monkeypatch.setattr(_variants, "backend_info", lambda: {"variant": "cpu_test", "devices": [{"name": "CPU"}]})
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "variant: cpu_test" in out and "name: CPU" in out and "version:" in out
    assert cli.main(["info", "--json"]) == 0
    assert '"variant": "cpu_test"' in capsys.readouterr().out


def test_convert_is_delegated(monkeypatch):
    received = []
    fake = types.SimpleNamespace(main=lambda argv: received.append(argv) or 3)
    monkeypatch.setitem(__import__("sys").modules, "depth_anything_cpp.convert", fake)
    monkeypatch.setattr(da3, "convert", fake, raising=False)
    assert cli.main(["convert", "snap/", "-o", "x.gguf"]) == 3
    assert received == [["snap/", "-o", "x.gguf"]]


@pytest.mark.skipif(da3._core is None, reason=f"compiled core not loadable: {da3._core_reason}")
@pytest.mark.skipif(not (GGUF.is_file() and SOH_000.is_file()), reason="shared fixtures missing")
def test_e2e_cli_on_fixture(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["depth", str(SOH_000), str(SOH_010), "--model", str(GGUF), "--out", str(out),
                   "--threads", "2", "--precision", "f32", *VIS])  # parity mode ("auto": bf16 for f16)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "assets_examples_SOH_000.png: 1208x680 -> 504x280" in captured.out
    ref = np.load(FIXTURE / "reference_SOH_000.npz")
    got = np.load(out / "assets_examples_SOH_000.npz")
    span = float(ref["depth"].max() - ref["depth"].min())
    assert np.abs(got["depth"] - ref["depth"][0]).max() <= 1e-3 * span
    assert got["extrinsics"].shape == (3, 4) and got["intrinsics"].shape == (3, 3)


# ---------------------------------------------------------------- points / export / multiview (compiled core)
needs_points = pytest.mark.skipif(da3._core is None or not hasattr(da3._core, "points"),
                                  reason=f"compiled core with points not loadable: {da3._core_reason}")
needs_fixture = pytest.mark.skipif(not (GGUF.is_file() and SOH_000.is_file() and SOH_010.is_file()),
                                   reason="shared fixtures missing")
FAST = ["--model", str(GGUF), "--process-res", "252", "--threads", "2", "-q"]


def test_help_of_every_subcommand_has_examples(capsys):
    for command in ("depth", "points", "export", "info"):
        with pytest.raises(SystemExit) as exc:
            cli.main([command, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and f"da3cpp {command}" in out, command
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("depth", "points", "export", "info", "convert", "bench", "--multiview", "130"):
        assert command in out


def test_usage_errors_before_loading(setup, capsys):
    base = [str(setup.imgs), "--model", str(setup.model), "--out", str(setup.out)]
    assert cli.main(["export", *base, "--format", "glb-nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "mini_npz" in err and "colmap" in err
    assert cli.main(["points", *base, "--format", "npz"]) == 2
    assert cli.main(["depth", *base, "--fps", "0"]) == 2
    assert cli.main(["points", *base, "--num-max-points", "-1"]) == 2
    assert not setup.out.exists()


@needs_points
@needs_fixture
def test_points_per_image_and_multiview(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    out = tmp_path / "out"
    assert cli.main(["points", str(SOH_000), "--out", str(out), "--format", "ply", *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["assets_examples_SOH_000.ply"]
    assert cli.main(["points", str(SOH_000), str(SOH_010), "--multiview", "--out", str(out),
                     "--num-max-points", "5000", *FAST]) == 0
    assert {"scene.ply", "scene.glb"} <= {p.name for p in out.iterdir()}
    cloud = trimesh.load(out / "scene.ply")
    assert len(cloud.vertices) == 5000
    scene = trimesh.load(out / "scene.glb")
    counts = sorted(len(g.vertices) for g in scene.geometry.values())
    assert counts[-1] == 5000 and len(counts) == 3  # points + 2 camera frustums


@needs_points
@needs_fixture
def test_export_multiview_soh_pair_glb_colmap(tmp_path, capsys):
    pycolmap = pytest.importorskip("pycolmap")
    out = tmp_path / "scene"
    rc = cli.main(["export", str(SOH_000), str(SOH_010), "--multiview", "--format", "mini_npz-glb-colmap",
                   "--out", str(out), *FAST])
    assert rc == 0, capsys.readouterr().err
    data = np.load(out / "exports" / "mini_npz" / "results.npz")
    assert data["depth"].shape == (2, 140, 252) and data["extrinsics"].shape == (2, 3, 4)
    assert (out / "scene.glb").stat().st_size > 0 and (out / "scene.jpg").is_file()
    rec = pycolmap.Reconstruction(str(out))
    assert sorted(i.name for i in rec.images.values()) == [SOH_000.name, SOH_010.name]
    assert {(c.width, c.height) for c in rec.cameras.values()} == {(1208, 680)}
    assert len(rec.points3D) > 0
    # per-image mode: one sub-directory per image
    assert cli.main(["export", str(SOH_000), "--format", "depth-disparity", "--out", str(tmp_path / "per"),
                     *FAST]) == 0
    assert sorted(str(p.relative_to(tmp_path / "per")) for p in (tmp_path / "per").rglob("*.png")) == [
        "assets_examples_SOH_000/depth/0000.png", "assets_examples_SOH_000/disparity/0000.png"]


@needs_points
@needs_fixture
def test_real_batch_with_broken_image(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    small = Image.open(SOH_000).convert("RGB").resize((302, 170))
    small.save(imgs / "a.png")
    small.save(imgs / "c.jpg")
    (imgs / "b.png").write_bytes(SOH_000.read_bytes()[:2000])  # truncated PNG
    out = tmp_path / "out"
    rc = cli.main(["points", str(imgs), "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert rc == 1 and "b.png" in err and "1 of 3 inputs failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.glb", "a.ply", "c.glb", "c.ply"]


INTERRUPT_SCRIPT = """
import sys
from depth_anything_cpp import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@needs_points
@needs_fixture
@pytest.mark.parametrize("sig, code, message", [("SIGINT", 130, "da3cpp: interrupted"),
                                                ("SIGTERM", 143, "da3cpp: terminated")])
def test_ctrl_c_stops_batch_cleanly(tmp_path, sig, code, message):
    """Ctrl-C, and SIGTERM alike (issue 19: one run in six left a .tmp), stop after cleaning
    up the current image."""
    import signal
    import subprocess
    import sys
    import time

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    small = Image.open(SOH_000).convert("RGB").resize((302, 170))
    for i in range(40):
        small.save(imgs / f"img{i:02d}.png")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH", ""),
                                                                  str(Path(da3.__file__).parents[1])) if p))
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT, "depth", str(imgs), "--out", str(out),
                             "--model", str(GGUF), "--process-res", "280", "--threads", "1", "-q",
                             "--precision", "f32"],  # the timing below assumes f32 (bf16 engines are ~3x faster)
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.npz"))):
        time.sleep(0.05)
    # land somewhere inside a later image: one takes about 0.3 s and the batch about 14 s, so a
    # test process held up for seconds on a busy machine still signals mid-batch (at process_res
    # 140 the batch takes about 4 s, and one CI run finished it before the signal)
    time.sleep(0.15)
    proc.send_signal(getattr(signal, sig))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines() == [message]
    names = [p.name for p in out.iterdir()]
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    stems = {n.split("_depth")[0].removesuffix(".npz") for n in names}
    for stem in stems:  # every image has all of its files or none
        assert {f"{stem}.npz", f"{stem}_depth.png", f"{stem}_depth_vis.png"} <= set(names), stem
    assert 0 < len(stems) < 40


@pytest.mark.skipif(not (GGUF.is_file() and SOH_000.is_file()), reason="shared fixtures missing")
def test_bench_ours_with_multiview(tmp_path, capsys):
    """``da3cpp bench --model``: our side only, the table row and the multi-view line (one call
    with 2 views against 2 single calls, timed in the worker)."""
    if da3._core is None:
        pytest.skip(f"compiled core not loadable: {da3._core_reason}")
    from depth_anything_cpp import bench

    rc = bench.main(["--model", str(GGUF), "--reps", "1", "--leak-calls", "2", "--views", "2",
                     "--cache", str(tmp_path), "--shared", str(SHARED)])
    out = capsys.readouterr().out
    assert rc == 0
    row = next(line for line in out.splitlines() if line.startswith("| da3-small | f16 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[2]) > 0 and cells[3] == "—"          # ours timed, no PyTorch side
    line = next(line for line in out.splitlines() if line.startswith("Multi-view, da3-small f16"))
    ratio = float(line.split("2 views ")[1].split()[0])
    assert 0.3 < ratio < 5.0
    assert bench.main(["--model", str(GGUF), "--views", "1", "--cache", str(tmp_path)]) == 2
