"""Media made in memory for tests (nothing from ../shared is copied)."""

from __future__ import annotations

import io

import numpy as np


def mp4_bytes(frames: list[np.ndarray], fps: int = 4) -> bytes:
    """An MPEG-4 clip of RGB frames, written with PyAV into memory."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
