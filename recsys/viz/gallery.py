"""Poster thumbnails for galleries, hover cards and sprite layers (Pillow only, no Streamlit)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

PLACEHOLDER_COLOUR = (200, 200, 200)


def load_thumbnail(path: str | Path | None, height: int = 96) -> Image.Image | None:
    """RGB thumbnail of a poster at the given height, or None when the file is missing or corrupt.

    Files named .jpg are opened by content, not by suffix (some "jpg" posters are PNGs).
    """
    if not path:
        return None
    from recsys.data.posters import open_image  # one opener: 16-bit greyscale scaled, huge posters capped
    from recsys.errors import MediaError

    try:
        image = open_image(path)
    except MediaError:
        return None
    width = max(1, round(image.width * height / max(image.height, 1)))
    return image.resize((width, height), Image.Resampling.BILINEAR)


def placeholder(height: int = 96, aspect: float = 0.675) -> Image.Image:
    return Image.new("RGB", (max(1, round(height * aspect)), height), PLACEHOLDER_COLOUR)


def thumbnail_png(path: str | Path | None, height: int = 96) -> bytes:
    """PNG bytes of the thumbnail (a grey placeholder when the poster cannot be read)."""
    image = load_thumbnail(path, height) or placeholder(height)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_data_uri(path: str | Path | None, height: int = 64, quality: int = 70) -> str | None:
    """`data:image/jpeg;base64,...` of a small thumbnail, for plotly layout.images and HTML cards."""
    image = load_thumbnail(path, height)
    if image is None:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail_pack(paths: dict, height: int = 96, progress=None) -> dict[int, str]:
    """item id -> JPEG data URI for every readable poster in `paths` (item id -> file), for the
    map's hover panel; items whose poster cannot be read are left out."""
    pack, total = {}, len(paths)
    for done, (item_id, path) in enumerate(paths.items(), start=1):
        uri = thumbnail_data_uri(path, height=height)
        if uri:
            pack[int(item_id)] = uri
        if progress is not None and (done % 100 == 0 or done == total):
            progress(done, total, "poster thumbnails")
    return pack
