"""Video input (depth_anything_cpp.video and the CLI on videos): PyAV decoding, sampling at
--fps like the official CLI, frame naming, the error without PyAV.

Real data: the official robot_unitree.mp4 demo (3.5 s, 175 frames at 49.4 frames/s).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import depth_anything_cpp as da3
from depth_anything_cpp import cli, video

from conftest import DATA_DIR, FIXTURE_DIR
from fakes import make_fake_core

VIDEO = DATA_DIR / "da3_examples" / "assets_examples_robot_unitree.mp4"
GGUF = FIXTURE_DIR / "da3-small-rand-f16.gguf"
STEM = "assets_examples_robot_unitree"

pytest.importorskip("av", reason="PyAV not installed")
needs_video = pytest.mark.skipif(not VIDEO.is_file(), reason="shared video missing")
needs_core = pytest.mark.skipif(da3._core is None or not hasattr(da3._core, "points") or not GGUF.is_file(),
                                reason=f"compiled core / fixture not available: {da3._core_reason}")


@pytest.fixture(scope="module")
def decodable_frames():
    import av

    with av.open(str(VIDEO)) as container:  # independent count: the header says 175, 174 decode
        return sum(1 for _ in container.decode(container.streams.video[0]))


@needs_video
@pytest.mark.parametrize("fps", [1.0, 2.0, 100.0])
def test_sampling_matches_duration_times_fps(fps, decodable_frames):
    info = video.probe_video(VIDEO, fps)
    assert info.frames == 175 and (info.width, info.height) == (1024, 576)
    assert info.duration == pytest.approx(3.495, abs=0.01)
    got = [(i, f.shape, f.dtype) for i, f in video.iter_video_frames(VIDEO, fps)]
    interval = max(1, int(info.rate / fps))  # ref: official VideoHandler.process
    assert interval == info.interval
    assert [i for i, _, _ in got] == list(range(0, decodable_frames, interval))
    # N = duration * effective rate, rounded up (the first frame of each interval is kept)
    effective = info.rate / interval
    expected = info.duration * effective
    assert math.floor(expected) <= len(got) <= math.ceil(expected) + 1
    assert abs(len(got) - info.expected) <= 1  # the header's estimate
    if fps == 1.0:
        assert len(got) == math.ceil(info.duration * fps) == 4
    assert all(shape == (576, 1024, 3) and dtype == np.uint8 for _, shape, dtype in got)


@needs_video
def test_frames_are_real_pictures_and_max_frames():
    frames = list(video.iter_video_frames(VIDEO, 1.0, max_frames=2))
    assert [i for i, _ in frames] == [0, 49]
    a, b = frames[0][1].astype(int), frames[1][1].astype(int)
    assert a.std() > 10 and np.abs(a - b).mean() > 1  # not blank, the scene moves


def test_errors(tmp_path, monkeypatch):
    not_video = tmp_path / "x.mp4"
    not_video.write_bytes(b"definitely not a video")
    with pytest.raises(ValueError, match="cannot open video"):
        video.probe_video(not_video)
    with pytest.raises(ValueError, match="cannot open video"):
        list(video.iter_video_frames(not_video))
    with pytest.raises(FileNotFoundError):
        video.probe_video(tmp_path / "missing.mp4")
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            video.probe_video(VIDEO, bad)
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV missing
    with pytest.raises(ImportError, match=r"pip install depth-anything-cpp\[video\]"):
        video.probe_video(VIDEO)
    assert video.is_video("a/B.MP4") and video.is_video("c.mkv") and not video.is_video("d.png")


@needs_video
def test_cli_without_pyav_fails_the_video_only(tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setattr(da3, "_core", make_fake_core(stride=8))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(16))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "av", None)
    rc = cli.main(["depth", str(VIDEO), str(tmp_path / "a.png"), "-m", str(model), "-o", str(tmp_path / "o"),
                   "--no-vis", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "pip install depth-anything-cpp[video]" in err and "1 of 2 inputs failed" in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.npz", "a_depth.png"]


@needs_video
@needs_core
def test_cli_depth_on_video_frames(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["depth", str(VIDEO), "--model", str(GGUF), "--out", str(out), "--fps", "1",
                   "--process-res", "140", "--threads", "2", "--no-vis"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    n = video.probe_video(VIDEO, 1.0).expected
    assert n == math.ceil(3.495 * 1.0) == 4
    stems = [f"{STEM}_{i:06d}" for i in (0, 49, 98, 147)]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s}.npz" for s in stems] +
                                                         [f"{s}_depth.png" for s in stems])
    assert len([line for line in captured.out.splitlines() if line.startswith(STEM)]) == n
    assert "1024x576 -> 140x84" in captured.out


@needs_video
@needs_core
def test_cli_export_video_as_one_scene_with_colmap(tmp_path, capsys):
    pycolmap = pytest.importorskip("pycolmap")
    out = tmp_path / "scene"
    rc = cli.main(["export", str(VIDEO), "--multiview", "--fps", "1", "--format", "mini_npz-colmap",
                   "--model", str(GGUF), "--out", str(out), "--process-res", "140", "--threads", "2", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert np.load(out / "exports" / "mini_npz" / "results.npz")["depth"].shape == (4, 84, 140)
    frames = sorted(p.name for p in (out / "images").iterdir())
    assert frames == [f"{STEM}_{i:06d}.jpg" for i in (0, 49, 98, 147)]
    rec = pycolmap.Reconstruction(str(out))
    assert sorted(i.name for i in rec.images.values()) == frames
    assert {(c.width, c.height) for c in rec.cameras.values()} == {(1024, 576)}
