"""Trailer frames with PyAV, streamed: sampling by timestamp (N fps) or every n-th frame, and aggregation.

``FrameSampler`` decodes one video and yields the sampled frames one at a time (transformed right
away), so memory does not depend on the video's length; ``sample_frames`` collects them for
callers that want a list (short clips, tests). Aggregations follow the papers: the mean over all
sampled frames is Ben Hassen's "DFV" (one vector per video); sliding windows of S frames with a
stride, averaged per window, are VT2's sequence points (kept for trajectory plots).

Sampling modes (``ExtractionConfig.sampling``):

- ``"exact"``: every frame is decoded and the one nearest each target time k / fps is kept (within
  half a frame period), as before.
- ``"keyframes"``: a first pass reads the packet index (demuxing only, no decoding) and, when a
  keyframe lies within a quarter of the target spacing of every target, only keyframes are
  decoded (``skip_frame="NONKEY"``): a fraction of the decoding. The per-trailer note says how far
  the timestamps moved from the exact targets (mean and max); a video whose keyframes are too
  sparse is decoded exactly and says so. Seeking per target was considered and left out: with
  keyframes further apart than the target spacing (the usual case at 1-3 fps) it decodes as many
  frames as reading straight through.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from recsys.errors import InvalidInput, InvalidParameter, MediaError

SAMPLING_MODES = ("exact", "keyframes")
#: keyframe sampling is used when every target has a keyframe this close (fraction of 1 / fps)
KEYFRAME_TOLERANCE = 0.25
#: a video whose frames end this much before the length its container declares is "truncated"
TRUNCATION_MARGIN_S = 1.0


@dataclass
class SampledFrames:
    """Frames picked from one video: `frames` are PIL images (RGB) or their transforms, `times` in s."""

    frames: list
    times: list[float]
    duration_s: float
    video_fps: float
    note: str = ""  # e.g. decoding stopped early on a damaged packet, cut at N s, truncated
    indices: list[int] = field(default_factory=list)


def _validate_sampling(fps: float | None, every_nth: int | None) -> None:
    if (fps is None) == (every_nth is None):
        raise InvalidParameter("give exactly one of fps (frames per second) or every_nth (keep every n-th frame)")
    if fps is not None and not fps > 0:
        raise InvalidParameter(f"fps must be positive, got {fps}")
    if every_nth is not None and int(every_nth) < 1:
        raise InvalidParameter(f"every_nth must be >= 1, got {every_nth}")


def _open(path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot open video ({type(exc).__name__}: {exc})") from exc


def _declared_duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration) / 1_000_000
    return None


class FrameSampler:
    """Iterate over the sampled frames of one video: ``for time, index, frame in sampler``.

    `transform` (e.g. a backbone's preprocessing) is applied to each kept PIL frame in the
    decoding thread. `max_frames` / `max_duration` (seconds) stop decoding early. After the loop:
    ``duration_s`` (last kept-or-seen frame time + one frame period), ``video_fps``, ``note``
    ("cut at 60 s of 150 s", "cut at 100 frames", "truncated: frames end at 6.0 s of 10.0 s",
    "decoding stopped after N frames (...)", keyframe shifts) and ``n_frames``. Raises MediaError
    when the file cannot be opened or yields no frame at all. `threads`: decoder threads for this
    video (None: FFmpeg's choice).
    """

    def __init__(
        self,
        path,
        fps: float | None = 1.0,
        every_nth: int | None = None,
        max_frames: int | None = None,
        transform: Callable | None = None,
        max_duration: float | None = None,
        sampling: str = "exact",
        threads: int | None = None,
    ):
        _validate_sampling(fps, every_nth)
        if sampling not in SAMPLING_MODES:
            raise InvalidParameter(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {sampling!r}")
        self.path, self.fps, self.every_nth, self.max_frames = path, fps, every_nth, max_frames
        self.transform, self.max_duration, self.sampling, self.threads = transform, max_duration, sampling, threads
        self.duration_s = 0.0
        self.video_fps = 0.0
        self.note = ""
        self.n_frames = 0
        self.mode = "exact"
        self._last_packet = 0.0

    @classmethod
    def for_config(cls, path, config, transform: Callable | None = None, threads: int | None = None) -> FrameSampler:
        """The sampler an extraction config asks for (fps or every n-th frame, caps, sampling mode):
        the one place the extraction engines read a config's trailer fields."""
        return cls(
            path,
            fps=config.fps,
            every_nth=config.every_nth,
            max_frames=config.max_frames,
            transform=transform,
            max_duration=config.max_duration,
            sampling=config.sampling,
            threads=threads,
        )

    # ---- keyframe plan -----------------------------------------------------------------------
    def _keyframe_plan(self) -> tuple[dict[float, float] | None, str]:
        """{keyframe time: target time} when keyframes are dense enough, else (None, why not)."""
        container = _open(self.path)
        try:
            if not container.streams.video:
                raise MediaError(f"{self.path}: no video stream")
            stream = container.streams.video[0]
            keys, last = [], 0.0
            for packet in container.demux(stream):
                if packet.pts is None or packet.time_base is None:
                    continue
                time = float(packet.pts * packet.time_base)
                last = max(last, time)
                if packet.is_keyframe:
                    keys.append(time)
        finally:
            container.close()
        self._last_packet = last
        if not keys or self.fps is None:
            return None, "no keyframe index"
        keys = np.unique(np.asarray(keys))
        end = last if self.max_duration is None else min(last, self.max_duration - 1e-9)
        targets = np.arange(0.0, end + 1e-9, 1.0 / self.fps)
        if self.max_frames is not None:
            targets = targets[: self.max_frames]
        nearest = keys[np.abs(keys[None, :] - targets[:, None]).argmin(axis=1)]
        shift = np.abs(nearest - targets)
        if shift.max(initial=0.0) > KEYFRAME_TOLERANCE / self.fps:
            gap = float(np.diff(keys).max()) if len(keys) > 1 else float(last)
            return None, f"keyframes up to {gap:.2g} s apart: every frame decoded"
        plan: dict[float, float] = {}
        for key, target in zip(nearest.tolist(), targets.tolist()):
            plan.setdefault(key, target)
        return plan, ""

    # ---- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[float, int, object]]:
        import av

        plan, why_exact = (None, "")
        if self.sampling == "keyframes" and self.fps is not None:
            plan, why_exact = self._keyframe_plan()
        self.mode = "keyframes" if plan is not None else "exact"
        container = _open(self.path)
        notes, shifts = [], []
        last_time, index, kept = -1.0, -1, 0
        stopped = ""
        try:
            if not container.streams.video:
                raise MediaError(f"{self.path}: no video stream")
            stream = container.streams.video[0]
            if self.threads is not None and self.threads >= 1:
                stream.codec_context.thread_count = int(self.threads)
            stream.thread_type = "AUTO" if (self.threads is None or self.threads > 1) else "SLICE"
            if plan is not None:
                stream.codec_context.skip_frame = "NONKEY"
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            self.video_fps = float(rate) if rate else 0.0
            half_period = 0.5 / self.video_fps if self.video_fps > 0 else 1e-3
            declared = _declared_duration(container, stream)
            next_target = 0.0
            try:
                for frame in container.decode(stream):
                    index += 1
                    if frame.time is not None:
                        time = float(frame.time)
                    else:
                        time = index / self.video_fps if self.video_fps else float(index)
                    if self.max_duration is not None and time >= self.max_duration:
                        stopped = f"cut at {self.max_duration:g} s" + (f" of {declared:.0f} s" if declared else "")
                        break
                    last_time = max(last_time, time)
                    if plan is not None:
                        target = plan.get(time)
                        take = target is not None
                        if take:
                            shifts.append(abs(time - target))
                    elif self.every_nth is not None:
                        take = index % int(self.every_nth) == 0
                    else:
                        take = time >= next_target - half_period
                        if take:
                            # A frame can cover several targets when fps exceeds the video's rate;
                            # it is used once and the skipped targets are dropped.
                            while next_target - half_period <= time:
                                next_target += 1.0 / self.fps
                    if not take:
                        continue
                    image = frame.to_image()
                    kept += 1
                    yield time, index, (self.transform(image) if self.transform is not None else image)
                    del image
                    if self.max_frames is not None and kept >= self.max_frames:
                        stopped = f"cut at {self.max_frames} frames" + (
                            f" ({time:.0f} s of {declared:.0f} s)" if declared else ""
                        )
                        break
            except (av.error.FFmpegError, OSError) as exc:
                notes.append(f"decoding stopped after {index + 1} frames ({type(exc).__name__})")
            frame_period = 1.0 / self.video_fps if self.video_fps > 0 else 0.0
            self.duration_s = max(last_time, 0.0) + frame_period
            if plan is not None and not stopped:  # frames between keyframes were skipped, not missing
                self.duration_s = max(self.duration_s, self._last_packet + frame_period)
            if stopped:
                notes.insert(0, stopped)
            elif declared and not notes and self.duration_s < declared - TRUNCATION_MARGIN_S:
                notes.append(f"truncated: frames end at {self.duration_s:.1f} s of {declared:.1f} s")
            if plan is not None and shifts:
                notes.append(f"keyframes: timestamps moved by mean {np.mean(shifts):.2f} s, max {np.max(shifts):.2f} s")
            elif why_exact:
                notes.append(why_exact)
        finally:
            container.close()
        self.n_frames = kept
        self.note = "; ".join(notes)
        if kept == 0:
            raise MediaError(f"{self.path}: no decodable frames" + (f"; {self.note}" if self.note else ""))


def sample_frames(
    path,
    fps: float | None = 1.0,
    every_nth: int | None = None,
    max_frames: int | None = None,
    transform=None,
    max_duration: float | None = None,
    sampling: str = "exact",
) -> SampledFrames:
    """All sampled frames of a video as a list (see :class:`FrameSampler`, which streams them).

    Targets are the times k / fps for k = 0, 1, ... below the video's duration; each target takes
    the frame nearest to it (within half a frame period), so a 10 s clip gives 10, 20, 30 frames
    at 1, 2, 3 fps whatever its own frame rate. Keeps every frame in memory: extraction uses the
    sampler directly.
    """
    sampler = FrameSampler(path, fps, every_nth, max_frames, transform, max_duration, sampling)
    frames, times, indices = [], [], []
    for time, index, frame in sampler:
        frames.append(frame)
        times.append(time)
        indices.append(index)
    return SampledFrames(frames, times, sampler.duration_s, sampler.video_fps, sampler.note, indices)


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
