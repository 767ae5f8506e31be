"""Movie posters: local folders, a robust image opener, the ML-100K -> ML-1M title matcher, TMDB.

Sources (see :func:`recsys.data.registry.attach_posters` for the lookup order):

* a local folder of ``{movieId}.jpg`` files. The extension is a naming convention only: the
  decoder looks at the bytes (``posters-ml1m/3575.jpg`` is a PNG). Other image extensions
  (.png, .jpeg, .webp) are found too; ``.jpg`` wins when several exist.
* ML-100K has its own item numbering, so its items reach ML-1M (= ML-20M/latest for IDs up to
  3952) poster files through :func:`match_ml100k_to_ml1m`, a title + year matcher.
* :func:`download_tmdb_posters` fetches posters from TMDB for datasets with ``links.csv``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from recsys.cache import atomic_write
from recsys.config import MAX_IMAGE_PIXELS_ENV
from recsys.data.dataset import Dataset
from recsys.errors import DownloadError, MediaError, StorageError
from recsys.progress import Progress

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
TMDB_API_KEY_ENV = "TMDB_API_KEY"
TMDB_BEARER_ENV = "TMDB_BEARER"
TMDB_API_URL = "https://api.themoviedb.org/3"
TMDB_IMAGE_URL = "https://image.tmdb.org/t/p/w185"
TMDB_API_URL_ENV = "RECSYS_TMDB_API_URL"
TMDB_IMAGE_URL_ENV = "RECSYS_TMDB_IMAGE_URL"


# ---- local folders and decoding ---------------------------------------------------------------
def media_paths(item_ids, folder: str | Path | None, extensions: tuple[str, ...]) -> pd.Series:
    """Path (str) of ``folder/{item_id}<ext>`` per item, None where absent; one directory listing."""
    index = pd.Index(item_ids, name="item_id")
    paths = pd.Series(None, index=index, dtype=object)
    if folder is None or not Path(folder).is_dir():
        return paths
    folder = Path(folder)
    rank = {ext: i for i, ext in enumerate(extensions)}
    best: dict[str, tuple[int, str]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            ext = ext.lower()
            if ext in rank and entry.is_file() and entry.stat().st_size > 0:
                if stem not in best or rank[ext] < best[stem][0]:
                    best[stem] = (rank[ext], entry.name)
    found = [best.get(str(item)) for item in index]
    paths[:] = [str(folder / hit[1]) if hit else None for hit in found]
    return paths


def poster_paths(item_ids, folder: str | Path | None) -> pd.Series:
    return media_paths(item_ids, folder, IMAGE_EXTENSIONS).rename("poster")


#: a JPEG with more pixels than this is decoded at a reduced scale (``Image.draft``)
DRAFT_ABOVE_PIXELS = 16_000_000
#: ... but at least this many pixels a side (far above any backbone's input size)
DRAFT_SIDE = 2048
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
_size_warning_quiet = False


def open_image(path: str | Path | None, max_pixels: int | None = None):
    """The image at `path` as an 8-bit RGB PIL image; MediaError naming the file otherwise.

    - The decoder looks at the bytes, not the name (a PNG named .jpg works).
    - It decodes fully, so a truncated file fails here instead of going grey in a model.
    - High bit depths and other modes are scaled, not clipped (:func:`to_rgb`): a 16-bit
      greyscale PNG keeps its tones instead of turning white.
    - Size: a JPEG above :data:`DRAFT_ABOVE_PIXELS` is decoded at a reduced scale (libjpeg's DCT
      scaling through ``Image.draft``: 1/2, 1/4 or 1/8, keeping at least :data:`DRAFT_SIDE` px a
      side), a fraction of the memory and time of a full decode; any other image above
      `max_pixels` (default :func:`recsys.config.max_image_pixels`: 50 MP, or
      ``$RECSYS_MAX_IMAGE_PIXELS``) is refused with its size before a pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    if path is None or (isinstance(path, float) and pd.isna(path)):
        raise MediaError("no poster for this item")
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: image file not found")
    if max_pixels is None:
        from recsys.config import max_image_pixels

        max_pixels = max_image_pixels()
    _quiet_pillow_size_warning()
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.format == "JPEG" and width * height > DRAFT_ABOVE_PIXELS:
                image.draft(image.mode if image.mode in ("L", "RGB") else "RGB", (DRAFT_SIDE, DRAFT_SIDE))
                log.debug("%s: %dx%d JPEG decoded at %dx%d", path, width, height, *image.size)
            if image.size[0] * image.size[1] > max_pixels:
                raise MediaError(
                    f"{path}: image of {width}x{height} px ({width * height / 1e6:.0f} MP) is above the "
                    f"{max_pixels / 1e6:g} MP limit for posters; scale it down or raise "
                    f"${MAX_IMAGE_PIXELS_ENV}"
                )
            image.load()  # decode now: truncated files fail here, not later in a model
            return to_rgb(image, path)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{path}: refused, too many pixels to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"{path}: corrupt, truncated or unsupported image ({exc})") from None


def _quiet_pillow_size_warning() -> None:
    """Pillow warns above 89 MP; open_image enforces its own, lower limit (or decodes JPEGs at a
    reduced scale), so the warning would only be noise."""
    global _size_warning_quiet
    if not _size_warning_quiet:
        import warnings

        from PIL import Image

        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _size_warning_quiet = True


def to_rgb(image, path: str | Path = "image"):
    """8-bit RGB of a decoded PIL image in any mode, scaling instead of clipping.

    - 16-bit greyscale (``I;16*``, and ``I`` with values above 255, e.g. 16-bit PNG or TIFF):
      0..65535 is mapped onto 0..255 (``v / 257``, rounded), so mid-grey stays mid-grey;
    - float (``F``): 0..1 or 0..255 by its range; other ranges have no standard meaning and are
      refused, like 32-bit integers beyond 0..65535;
    - transparency (RGBA, LA, PA, P with a transparent colour) is composited on white;
    - CIELAB goes through a colour-managed conversion (Pillow's plain convert only copies bands);
    - greyscale, bilevel, palette, CMYK, YCbCr, HSV: Pillow's conversions.
    """
    import numpy as np
    from PIL import Image

    mode = image.mode
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        values = np.asarray(image)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if mode == "F" and 0.0 <= low and high <= 1.0:
            scaled = values * 255.0
        elif 0.0 <= low and high <= 255.0 and mode in ("I", "F"):
            scaled = values.astype(np.float64)
        elif 0.0 <= low and high <= 65535.0:
            scaled = values / 257.0
        else:
            raise MediaError(f"{path}: {mode} image with values {low:g}..{high:g} has no standard display range")
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in _ALPHA or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode == "LAB":
        from PIL import ImageCms

        return ImageCms.profileToProfile(
            image, ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    return image.convert("RGB")


# ---- title matcher ML-100K -> ML-1M -----------------------------------------------------------
_ARTICLES = (
    "the",
    "a",
    "an",
    "la",
    "le",
    "les",
    "l'",
    "il",
    "el",
    "los",
    "las",
    "das",
    "der",
    "die",
    "den",
    "det",
    "lo",
    "gli",
    "i",
    "un",
    "une",
    "o",
)
_TRAILING_ARTICLE = re.compile(r",\s*(" + "|".join(re.escape(a) for a in _ARTICLES) + r")\s*$", re.I)
_LEADING_ARTICLE = re.compile(r"^(" + "|".join(re.escape(a) for a in _ARTICLES if a != "l'") + r")\s+|^l'", re.I)
_YEAR = re.compile(r"\s*\((\d{4})\)\s*")
_FORMAT_MARK = re.compile(r"\s*\((?:V|TV|TV Series|TV Movie|Video)\)\s*$", re.I)
_BRACKETS = re.compile(r"\(([^()]*)\)")
_AKA = re.compile(r"\ba\.?k\.?a\.?\s*", re.I)


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise_title(title: str) -> str:
    """Lower-case, no accents, no article, "&" = "and", no punctuation or spaces."""
    text = _strip_accents(title).strip()
    text = _TRAILING_ARTICLE.sub("", text)
    text = _LEADING_ARTICLE.sub("", text)
    text = text.lower().replace("&", " and ")
    return re.sub(r"[^0-9a-z]+", "", text)


def split_title(title: str) -> tuple[str, list[str], int | None]:
    """(main title, bracketed alternative titles, year) of a MovieLens title string."""
    text = _FORMAT_MARK.sub("", str(title).strip())
    years = _YEAR.findall(text)
    year = int(years[-1]) if years else None
    text = _YEAR.sub(" ", text).strip()
    alternatives = []
    for inner in _BRACKETS.findall(text):
        alternatives += [part for part in _AKA.split(inner.strip()) if part.strip(" ,")]
    main = _BRACKETS.sub(" ", text).strip()
    return main, [a.strip(" ,") for a in alternatives], year


def title_keys(title: str) -> tuple[set[str], set[str], int | None]:
    """(full keys: main + alternative titles; segment keys: parts around ":" / " - "; year)."""
    main, alternatives, year = split_title(title)
    full = {normalise_title(t) for t in [main, *alternatives]} - {""}
    segments = set()
    for name in [main, *alternatives]:
        for part in re.split(r":|\s-\s", name):
            key = normalise_title(part)
            if len(key) >= 4:  # short fragments ("II", "Part 2") are not titles
                segments.add(key)
    return full, segments - full, year


def match_titles(source: pd.DataFrame, target: pd.DataFrame, max_year_gap: int = 2) -> pd.DataFrame:
    """Match items of `source` to items of `target` by title and year.

    Both frames are indexed by item id and have a ``title`` column in MovieLens style
    ("Name, The (Alternative) (1995)"). Tiers, first hit wins, each needs one unambiguous target:

    1. ``exact``: identical title string (ignoring surrounding spaces).
    2. ``normalised``: same year and a shared normalised key (main title or any bracketed
       alternative / "a.k.a." title; see :func:`normalise_title`).
    3. ``segment``: same year and a shared part of a title split at ":" or " - "
       ("Empire Strikes Back, The" ~ "Star Wars: Episode V - The Empire Strikes Back").
    4. ``year±N``: a shared normalised key with a year at most `max_year_gap` apart (closest year).

    Returns a frame indexed like `source` with ``target_id`` (Int64, NA if unmatched) and ``match``.
    """
    target_titles = target["title"].astype(str).str.strip()
    exact: dict[str, int] = {}
    for item, title in zip(target.index, target_titles):
        exact.setdefault(title, int(item))
    by_key: dict[tuple[str, int | None], set[int]] = {}
    by_segment: dict[tuple[str, int | None], set[int]] = {}
    by_name: dict[str, set[tuple[int, int | None]]] = {}
    for item, title in zip(target.index, target_titles):
        full, segments, year = title_keys(title)
        for key in full:
            by_key.setdefault((key, year), set()).add(int(item))
            by_name.setdefault(key, set()).add((int(item), year))
        for key in segments | full:
            by_segment.setdefault((key, year), set()).add(int(item))

    matched, kinds = [], []
    for title in source["title"].astype(str).str.strip():
        hit, kind = exact.get(title), "exact"
        if hit is None:
            full, segments, year = title_keys(title)
            hit, kind = (
                _unique(set().union(*[by_key.get((k, year), set()) for k in full]) if full else set()),
                "normalised",
            )
            if hit is None and year is not None:
                candidates = (
                    set().union(*[by_segment.get((k, year), set()) for k in full | segments])
                    if full | segments
                    else set()
                )
                hit, kind = _unique(candidates), "segment"
            if hit is None and year is not None:
                for gap in range(1, max_year_gap + 1):
                    near = {i for k in full for i, y in by_name.get(k, ()) if y is not None and abs(y - year) == gap}
                    hit, kind = _unique(near), f"year±{gap}"
                    if hit is not None:
                        break
        matched.append(hit)
        kinds.append(kind if hit is not None else None)
    return pd.DataFrame({"target_id": pd.array(matched, dtype="Int64"), "match": kinds}, index=source.index)


def _unique(candidates: set[int]) -> int | None:
    return next(iter(candidates)) if len(candidates) == 1 else None


def match_ml100k_to_ml1m(ml100k_items: pd.DataFrame, ml1m_movies: str | Path | pd.DataFrame) -> pd.DataFrame:
    """ML-100K item_id -> ML-1M MovieID (``ml1m_movie_id``, Int64) and how it matched.

    `ml1m_movies` is ML-1M's movies.dat (path) or its items frame; the ML-1M archive is what the
    product downloads to get it.
    """
    if not isinstance(ml1m_movies, pd.DataFrame):
        from recsys.data.movielens import read_ml1m_movies

        ml1m_movies, _ = read_ml1m_movies(ml1m_movies)
    result = match_titles(ml100k_items, ml1m_movies)
    return result.rename(columns={"target_id": "ml1m_movie_id"})


def poster_coverage(dataset: Dataset) -> dict:
    """Items and ratings that have a poster (see Dataset.media_coverage)."""
    return dataset.media_coverage("poster")


# ---- TMDB downloader ------------------------------------------------------------------------------
TMDB_STATUSES = ("saved", "exists", "no_tmdb_id", "no_poster", "error")
MAX_JSON_BYTES = 1 << 20  # a movie's details are a few KB
MAX_IMAGE_BYTES = 40 << 20  # an "original" poster is a few MB
_POSTER_PATH = re.compile(r"/?[A-Za-z0-9_-][A-Za-z0-9._-]*")  # "/kyeqWdyUXW608qlYkRqosgbbJyK.jpg"
_STOP_AFTER_UNREACHABLE = 3  # consecutive connection failures before the rest of a batch is skipped


def _redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _without_query_keys(url: str, keys: tuple[str, ...]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k not in keys]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class SameOriginCredentials(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib's handler, but credentials never leave the original origin.

    urllib copies every header of a request onto the redirected one, Authorization included. When
    a redirect goes to another scheme, host or port, this handler drops the Authorization header
    and any ``api_key`` query parameter from the new request (requests' ``rebuild_auth`` does the
    same; the product does not depend on requests).
    """

    CREDENTIAL_QUERY_KEYS = ("api_key",)

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            had = new.has_header("Authorization") or "api_key=" in new.full_url
            new.remove_header("Authorization")
            new.full_url = _without_query_keys(new.full_url, self.CREDENTIAL_QUERY_KEYS)
            if had:
                log.info("redirect to %s: credentials not forwarded to another host", _origin(newurl)[1])
        return new


def tmdb_credentials(api_key: str | None = None) -> tuple[dict[str, str], dict[str, str], str]:
    """(headers, query parameters, secret) for TMDB: a v4 read-access token (``$TMDB_BEARER``, or
    any key that is a JWT, "eyJ...") goes in a Bearer header, a v3 key (``$TMDB_API_KEY``) in
    ``api_key=``. DownloadError (naming both variables) without either."""
    key = (api_key or "").strip()
    bearer = os.environ.get(TMDB_BEARER_ENV, "").strip() if not key else ""
    key = key or bearer or os.environ.get(TMDB_API_KEY_ENV, "").strip()
    if not key:
        raise DownloadError(
            f"TMDB posters need credentials: set ${TMDB_API_KEY_ENV} (a v3 API key) or ${TMDB_BEARER_ENV} "
            "(a v4 read-access token); create them at https://www.themoviedb.org/settings/api"
        )
    if bearer or key.startswith("eyJ"):
        return {"Authorization": f"Bearer {key}"}, {}, key
    return {}, {"api_key": key}, key


def _fetch(opener, url: str, headers: dict, timeout: float, limit: int) -> bytes:
    """The body of a GET, refusing one larger than `limit` or shorter than its Content-Length."""
    request = urllib.request.Request(url, headers=headers)
    for attempt in range(3):
        try:
            with opener.open(request, timeout=timeout) as response:
                data = response.read(limit + 1)
                expected = response.headers.get("Content-Length")
        except urllib.error.HTTPError as exc:
            if exc.code == 429 and attempt < 2:  # rate limited: wait as asked (at most 10 s), then again
                import time

                wait = exc.headers.get("Retry-After", "1") if exc.headers else "1"
                time.sleep(min(10.0, float(wait) if wait.replace(".", "", 1).isdigit() else 1.0))
                continue
            raise
        except http.client.IncompleteRead as exc:
            raise ValueError(f"response cut off after {len(exc.partial)} bytes") from None
        break
    if len(data) > limit:
        raise ValueError(f"response larger than {limit >> 20} MB")
    if expected and expected.isdigit() and int(expected) != len(data):
        raise ValueError(f"response cut off: {len(data)} of {expected} bytes")
    return data


def download_tmdb_posters(
    items: pd.DataFrame,
    folder: str | Path,
    api_key: str | None = None,
    api_url: str | None = None,
    image_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 20.0,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Fetch posters for items with a ``tmdb_id`` (from links.csv) into ``folder/{item_id}.jpg``.

    Credentials: `api_key`, else ``$TMDB_BEARER`` or ``$TMDB_API_KEY`` (:func:`tmdb_credentials`);
    `api_url` / `image_url` default to $RECSYS_TMDB_API_URL / $RECSYS_TMDB_IMAGE_URL (a mirror),
    else TMDB's. They never appear in messages or logs and never follow a redirect to another host
    (:class:`SameOriginCredentials`); the image host gets no credentials at all.

    Failures are per item: a 404, a body cut short, an answer that is not JSON, a ``poster_path``
    that is not a file name, an image that does not decode: that item gets ``status`` "error" with
    the reason in ``detail`` and the batch goes on. Only when TMDB refuses the credentials
    (HTTP 401) or cannot be reached three times in a row are the remaining items skipped, each
    with that reason. Existing posters are kept (resumable); each file is checked to decode and
    written atomically. Returns one row per item: ``item_id``, ``status`` (one of
    :data:`TMDB_STATUSES`) and ``detail``.
    """
    headers, query, secret = tmdb_credentials(api_key)
    api_url = api_url or os.environ.get(TMDB_API_URL_ENV) or TMDB_API_URL
    image_url = image_url or os.environ.get(TMDB_IMAGE_URL_ENV) or TMDB_IMAGE_URL
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    opener = urllib.request.build_opener(SameOriginCredentials)
    api_headers = {"Accept": "application/json", "User-Agent": "recsys-dashboard", **headers}
    image_headers = {"User-Agent": "recsys-dashboard"}
    tmdb_ids = items["tmdb_id"] if "tmdb_id" in items.columns else pd.Series(pd.NA, index=items.index)
    rows = []
    total = len(items)
    stop_reason, unreachable = "", 0
    for done, (item_id, tmdb_id) in enumerate(tmdb_ids.items(), start=1):
        target = folder / f"{item_id}.jpg"
        status, detail = "saved", ""
        try:
            if target.exists() and target.stat().st_size > 0 and not overwrite:
                status = "exists"
            elif pd.isna(tmdb_id):
                status = "no_tmdb_id"
            elif stop_reason:
                status, detail = "error", f"not tried: {stop_reason}"
            else:
                url = f"{api_url.rstrip('/')}/movie/{int(tmdb_id)}"
                if query:
                    url += "?" + urllib.parse.urlencode(query)
                raw = _fetch(opener, url, api_headers, timeout, MAX_JSON_BYTES)
                unreachable = 0
                try:
                    meta = json.loads(raw)
                except ValueError as exc:
                    raise ValueError(f"TMDB's answer is not JSON ({exc})") from None
                if not isinstance(meta, dict):
                    raise ValueError(f"TMDB answered with a JSON {type(meta).__name__}, not an object")
                poster = meta.get("poster_path")
                if poster is None or poster == "":
                    status = "no_poster"
                elif not isinstance(poster, str) or not _POSTER_PATH.fullmatch(poster):
                    raise ValueError(f"unexpected poster_path {repr(poster)[:60]}")
                else:
                    data = _fetch(
                        opener, f"{image_url.rstrip('/')}/{poster.lstrip('/')}", image_headers, timeout, MAX_IMAGE_BYTES
                    )
                    _write_checked_image(data, target)
        except urllib.error.HTTPError as exc:
            status, detail = "error", f"HTTP {exc.code} {exc.reason}"
            if exc.code == 401:
                stop_reason = "TMDB refused the credentials (HTTP 401); check the API key or token"
            unreachable = 0
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            status, detail = "error", f"cannot reach TMDB ({reason})"
            unreachable += 1
            if unreachable >= _STOP_AFTER_UNREACHABLE:
                stop_reason = f"TMDB unreachable {unreachable} times in a row ({reason})"
        except StorageError:
            raise  # the posters folder cannot be written (full disk, read-only): not this item's fault
        except http.client.HTTPException as exc:  # a malformed status line or headers
            status, detail = "error", f"bad HTTP response ({type(exc).__name__})"
        except (OSError, ValueError, MediaError) as exc:  # a cut-off body, bad JSON, a file that is no image
            status, detail = "error", str(exc)
        detail = _redact(detail, secret, urllib.parse.quote(secret))
        if status == "error":
            log.info("TMDB poster of item %s: %s", item_id, detail)
        rows.append({"item_id": item_id, "status": status, "detail": detail})
        if progress:
            progress(done, total, f"TMDB poster {item_id}: {status}")
    return pd.DataFrame(rows, columns=["item_id", "status", "detail"])


def _write_checked_image(data: bytes, target: Path) -> None:
    """Write `data` to `target` atomically, only if it decodes as an image."""
    with atomic_write(target, "wb") as stream:
        stream.write(data)
        stream.flush()
        open_image(stream.name)  # raises MediaError for HTML error pages and truncated files (nothing kept)
