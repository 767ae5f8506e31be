"""Videos written with PyAV for the extraction tests (nothing from ../shared is copied)."""

from __future__ import annotations

import av
import numpy as np


def write_clip(
    path,
    seconds: float,
    rate: int = 24,
    size: tuple[int, int] = (64, 48),
    codec: str = "mpeg4",
    gop: int | None = None,
    faststart: bool = False,
) -> str:
    """A clip whose colour changes every frame (frames are distinguishable). gop: keyframe interval
    in frames; faststart: the MP4 index at the front, so a file cut short still opens."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
            if codec == "libx264":
                stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for index in range(int(round(seconds * rate))):
            image = np.zeros((size[1], size[0], 3), np.uint8)
            image[..., 0] = (index * 9) % 256
            image[: size[1] // 2, :, 2] = 255 - (index * 5) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)
