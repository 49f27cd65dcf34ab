"""Video input: decode frames with PyAV and sample them at a given rate.

PyAV is an optional dependency (``pip install depth-anything-cpp[video]``); it is imported
only when a video is opened.

Sampling follows the official CLI (ref: depth_anything_3/services/input_handlers.py,
``VideoHandler.process``): with the stream's average frame rate ``r`` and the requested
``fps`` (default 1.0), every ``k``-th decoded frame is kept, ``k = max(1, int(r / fps))``,
starting with frame 0. A 3.5 s clip at 49.4 frames/s sampled at 1 fps gives frames
0, 49, 98 and 147. An ``fps`` at or above the video's rate keeps every frame.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

__all__ = ["VIDEO_SUFFIXES", "DEFAULT_FPS", "VideoInfo", "is_video", "probe_video", "iter_video_frames"]

#: File suffixes treated as videos by the CLI (lower case).
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
#: Default sampling rate in frames per second (as the official CLI).
DEFAULT_FPS = 1.0

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reports about the first video stream.

    Attributes:
        rate: average frame rate in frames/s.
        frames: number of frames declared by the container (0 when unknown).
        duration: duration in seconds (NaN when unknown).
        width, height: frame size in pixels.
        interval: sampling interval ``k`` for the requested fps.
        expected: expected number of sampled frames (``ceil(frames / k)``; 0 when unknown).
    """

    rate: float
    frames: int
    duration: float
    width: int
    height: int
    interval: int
    expected: int


def _import_av():
    try:
        import av
    except ImportError as exc:
        raise ImportError(
            "reading videos needs PyAV: pip install depth-anything-cpp[video] (or pip install av)"
        ) from exc
    return av


def is_video(path: PathLike) -> bool:
    """True when ``path`` has a video suffix (see :data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps: expected a number, got {type(fps).__name__}")
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: must be a finite number > 0, got {fps}")
    return fps


def _open(path: PathLike):
    av = _import_av()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        container = av.open(path)
    except av.FFmpegError as exc:  # not a media file, unsupported codec, ...
        raise ValueError(f"{path}: cannot open video: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream")
    return container


def _info(container, fps: float) -> VideoInfo:
    stream = container.streams.video[0]
    rate = float(stream.average_rate) if stream.average_rate else 0.0
    if rate <= 0 and stream.guessed_rate:
        rate = float(stream.guessed_rate)
    frames = int(stream.frames or 0)
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1e6
    else:
        duration = float("nan")
    if frames <= 0 and rate > 0 and math.isfinite(duration):
        frames = int(round(duration * rate))
    interval = max(1, int(rate / fps)) if rate > 0 else 1
    expected = -(-frames // interval) if frames > 0 else 0
    ctx = stream.codec_context
    return VideoInfo(rate, frames, duration, int(ctx.width), int(ctx.height), interval, expected)


def probe_video(path: PathLike, fps: float = DEFAULT_FPS) -> VideoInfo:
    """Read the header of ``path`` (no decoding) and return a :class:`VideoInfo`.

    Raises:
        ImportError: PyAV is not installed (message names the ``[video]`` extra).
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a readable video, no video stream, or ``fps`` <= 0.
    """
    fps = _check_fps(fps)
    container = _open(path)
    try:
        return _info(container, fps)
    finally:
        container.close()


def iter_video_frames(path: PathLike, fps: float = DEFAULT_FPS,
                      max_frames: Optional[int] = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``path`` and yield ``(frame_index, rgb)`` for the sampled frames.

    ``frame_index`` counts decoded frames from 0; ``rgb`` is a C-contiguous (H, W, 3) uint8
    array. The file is closed when the iterator is exhausted or closed (``close()``, or
    garbage collection after an exception in the caller).

    Args:
        path: a video file PyAV/FFmpeg can read.
        fps: sampling rate in frames/s (> 0; default 1.0); see the module docstring.
        max_frames: stop after this many sampled frames (None: all).

    Raises:
        ImportError: PyAV is not installed (message names the ``[video]`` extra).
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a readable video, no video stream, bad ``fps``, or a decoding
            error (message names the file and the frame).
    """
    fps = _check_fps(fps)
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames: must be >= 0, got {max_frames}")
    av = _import_av()
    container = _open(path)
    try:
        interval = _info(container, fps).interval
        stream = container.streams.video[0]
        index = 0
        kept = 0
        try:
            for frame in container.decode(stream):
                if index % interval == 0:
                    if max_frames is not None and kept >= max_frames:
                        return
                    yield index, np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                    kept += 1
                index += 1
        except av.FFmpegError as exc:
            raise ValueError(f"{os.fspath(path)}: decoding failed at frame {index}: {exc}") from exc
    finally:
        container.close()
