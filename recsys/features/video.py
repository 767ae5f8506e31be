"""Trailer frames with PyAV: sampling by timestamp (N fps) or every n-th frame, and aggregation.

Aggregations follow the papers: the mean over all sampled frames is Ben Hassen's "DFV" (one
vector per video); sliding windows of S frames with a stride, averaged per window, are VT2's
sequence points (kept for trajectory plots).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from recsys.errors import InvalidInput, InvalidParameter, MediaError


@dataclass
class SampledFrames:
    """Frames picked from one video: `frames` are PIL images (RGB) or their transforms, `times` in s."""

    frames: list
    times: list[float]
    duration_s: float
    video_fps: float
    note: str = ""  # e.g. decoding stopped early on a damaged packet
    indices: list[int] = field(default_factory=list)


def _validate_sampling(fps: float | None, every_nth: int | None) -> None:
    if (fps is None) == (every_nth is None):
        raise InvalidParameter("give exactly one of fps (frames per second) or every_nth (keep every n-th frame)")
    if fps is not None and not fps > 0:
        raise InvalidParameter(f"fps must be positive, got {fps}")
    if every_nth is not None and int(every_nth) < 1:
        raise InvalidParameter(f"every_nth must be >= 1, got {every_nth}")


def sample_frames(
    path,
    fps: float | None = 1.0,
    every_nth: int | None = None,
    max_frames: int | None = None,
    transform=None,
    max_duration: float | None = None,
) -> SampledFrames:
    """Decode a video and keep frames at `fps` samples per second (by timestamp) or every n-th frame.

    Targets are the times k / fps for k = 0, 1, ... below the video's duration; each target takes
    the frame nearest to it (within half a frame period), so a 10 s clip gives 10, 20, 30 frames
    at 1, 2, 3 fps whatever its own frame rate. `transform` (e.g. a backbone's preprocessing) is
    applied to each kept frame right away, so full-resolution frames of a long HD trailer are
    never all held in memory. `max_frames` / `max_duration` (seconds) stop decoding early; a video
    cut by `max_duration` says so in `note`. Raises MediaError when the file cannot be
    opened or yields no frame at all; a stream that breaks mid-way keeps the frames before the
    damage and says so in `note`.
    """
    import av

    _validate_sampling(fps, every_nth)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot open video ({type(exc).__name__}: {exc})") from exc
    frames, times, indices = [], [], []
    note = ""
    last_time = -1.0
    video_fps = 0.0
    try:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        video_fps = float(rate) if rate else 0.0
        half_period = 0.5 / video_fps if video_fps > 0 else 1e-3
        next_target = 0.0
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                time = frame.time if frame.time is not None else (index / video_fps if video_fps else float(index))
                if max_duration is not None and time >= max_duration:
                    full = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
                    note = f"cut at {max_duration:g} s" + (f" of {full:.0f} s" if full else "")
                    break
                last_time = max(last_time, time)
                if every_nth is not None:
                    take = index % int(every_nth) == 0
                else:
                    take = time >= next_target - half_period
                    if take:
                        # A frame can cover several targets when fps exceeds the video's rate;
                        # it is used once and the skipped targets are dropped.
                        while next_target - half_period <= time:
                            next_target += 1.0 / fps
                if take:
                    image = frame.to_image()
                    frames.append(transform(image) if transform is not None else image)
                    times.append(float(time))
                    indices.append(index)
                    if max_frames is not None and len(frames) >= max_frames:
                        break
        except (av.error.FFmpegError, OSError) as exc:
            note = f"decoding stopped after {index + 1} frames ({type(exc).__name__})"
    finally:
        container.close()
    if not frames:
        raise MediaError(f"{path}: no decodable frames" + (f"; {note}" if note else ""))
    frame_period = 1.0 / video_fps if video_fps > 0 else 0.0
    duration = last_time + frame_period
    return SampledFrames(frames, times, duration, video_fps, note, indices)


def expected_frame_count(duration_s: float, fps: float) -> int:
    """Number of sampling targets k / fps inside [0, duration)."""
    return max(int(math.ceil(duration_s * fps - 1e-9)), 0)


def mean_embedding(frame_features: np.ndarray) -> np.ndarray:
    """One vector per video: the mean over frames (Ben Hassen's DFV)."""
    frame_features = np.asarray(frame_features, dtype=np.float32)
    if frame_features.ndim != 2 or len(frame_features) == 0:
        raise InvalidInput(f"need a (n_frames >= 1, d) array, got shape {frame_features.shape}")
    return frame_features.mean(axis=0)


def window_embeddings(frame_features: np.ndarray, window_size: int, stride: int = 5) -> np.ndarray:
    """Means of sliding windows of `window_size` frames every `stride` frames: (n_windows, d).

    A video shorter than one window yields zero windows (shape (0, d)); callers report it.
    """
    frame_features = np.asarray(frame_features, dtype=np.float32)
    if window_size < 1 or stride < 1:
        raise InvalidParameter(f"window_size and stride must be >= 1, got {window_size}, {stride}")
    n, dim = frame_features.shape
    if n < window_size:
        return np.zeros((0, dim), np.float32)
    # Cumulative sums make every window mean O(1) regardless of window size.
    cumulative = np.concatenate([np.zeros((1, dim), np.float64), np.cumsum(frame_features, axis=0, dtype=np.float64)])
    starts = np.arange(0, n - window_size + 1, stride)
    return ((cumulative[starts + window_size] - cumulative[starts]) / window_size).astype(np.float32)
