"""Movie trailers: a local folder of videos named by movieId, and the ML-20M YouTube mapping.

* Local files: ``<folder>/{movieId}.<mp4|webm|mkv|mov|avi|m4v>`` (:func:`trailer_paths`);
  the registry looks in ``<data_dir>/trailers/<dataset>/``.
* ``ml-youtube.csv`` (ML-20M-YouTube: youtubeId, movieId, title) is read by
  :func:`read_youtube_mapping` and cleaned with the rules of the VT2 project
  (:func:`clean_youtube_mapping`): drop malformed video ids, videos that are no longer available (when a status
  column or an availability list is given), titles that look like a full movie or one part of
  a split upload ("full movie", "part N of M"), and videos longer than 10 minutes (when
  duration metadata is given; ml-youtube.csv itself has none). The report says how many rows
  each rule dropped and whether it could be applied at all.
* Fetching from YouTube is optional and needs yt-dlp (:func:`youtube_download_commands`).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.posters import media_paths
from recsys.errors import DataFormatError, DatasetNotFound, DownloadError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
YOUTUBE_ID = r"[A-Za-z0-9_-]{11}"
MAX_TRAILER_SECONDS = 600  # VT2: "a duration above [10 minutes] is unlikely to be a trailer"
FULL_MOVIE = re.compile(r"\bfull[\s._-]*(?:length[\s._-]*)?(?:movie|film)\b", re.I)
PART_N_OF_M = re.compile(r"\b(?:part|pt\.?)\s*\d+\s*(?:of|/)\s*\d+\b", re.I)
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def trailer_paths(item_ids, folder: str | Path | None) -> pd.Series:
    return media_paths(item_ids, folder, VIDEO_EXTENSIONS).rename("trailer")


def _check_field_counts(path: Path, text: str) -> None:
    """Every line has as many fields as the header. pandas would pad a short line with empty
    strings (a silently blank title) and shift a long one into the index (blaming the wrong column)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataFormatError(path, 1, "empty file: expected a header youtubeId,movieId,title")
    for row in reader:
        if row and len(row) != len(header):
            raise DataFormatError(
                path,
                reader.line_num,
                f"malformed line: expected {len(header)} fields ({','.join(header)}), found {len(row)}",
            )


def read_youtube_mapping(path: str | Path) -> pd.DataFrame:
    """ml-youtube.csv (youtubeId,movieId,title) or VT2's youtube_availability.csv
    (youtube_id,movielens_id,title,status_code) -> columns youtube_id, item_id, title[, status_code]."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFound(
            f"{path} not found (ml-youtube.csv comes with ML-20M-YouTube: "
            f"https://grouplens.org/datasets/movielens/ml-20m-youtube/)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, raw.count(b"\n", 0, exc.start) + 1, "unknown encoding: not UTF-8") from None
    _check_field_counts(path, text)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise DataFormatError(path, int(match.group(1)) if match else None, f"malformed line ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    renames = {"youtubeId": "youtube_id", "movieId": "item_id", "movielens_id": "item_id"}
    frame = frame.rename(columns=renames)
    needed = {"youtube_id", "item_id", "title"}
    if not needed <= set(frame.columns):
        raise DataFormatError(path, 1, f"header has {list(frame.columns)}, expected youtubeId,movieId,title")
    ids = frame["item_id"].str.strip()
    bad = ~ids.str.fullmatch(r"\d+")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(path, row + 2, f"movieId {frame['item_id'].iloc[row]!r} is not an integer")
    bad = frame["youtube_id"].str.strip() == ""
    if bad.any():  # malformed but non-empty ids are reported by clean_youtube_mapping
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(path, row + 2, "empty youtubeId")
    frame["item_id"] = ids.astype("int64")
    if "status_code" in frame.columns:
        frame["status_code"] = pd.to_numeric(frame["status_code"], errors="coerce").astype("Int64")
    return frame.reset_index(drop=True)


def duration_seconds(values: pd.Series) -> pd.Series:
    """Seconds from numbers or ISO 8601 durations ("PT4M13S", as the YouTube API gives them)."""
    numeric = pd.to_numeric(values, errors="coerce")

    def parse(text) -> float:
        match = _ISO_DURATION.match(str(text).strip())
        if not match or not any(match.groups()):
            return np.nan
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds

    iso = values.where(numeric.isna()).map(parse, na_action="ignore")
    return numeric.fillna(iso).astype("float64")


def clean_youtube_mapping(
    mapping: pd.DataFrame,
    metadata: pd.DataFrame | None = None,
    available_ids=None,
    max_seconds: float = MAX_TRAILER_SECONDS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the VT2 cleaning rules; returns (kept rows, report: rule, applied, dropped, remaining).

    metadata: optional frame indexed or keyed by ``youtube_id`` with a video ``title`` and/or a
    ``duration`` (seconds or ISO 8601), e.g. VT2's youtube_extracted.csv. Without it, the title
    rules run on the mapping's own title column and the duration rule is reported as not applied.
    available_ids: optional movieIds known to have a downloadable trailer (ml20myt_available.txt).
    """
    rows = mapping.copy()
    if metadata is not None and "youtube_id" in metadata.columns:
        metadata = metadata.set_index("youtube_id")
    report = []

    def apply(rule: str, drop: pd.Series | None) -> None:
        nonlocal rows
        if drop is None:
            report.append({"rule": rule, "applied": False, "dropped": 0, "remaining": len(rows)})
            return
        drop = drop.fillna(False).astype(bool)
        rows = rows[~drop.to_numpy()]
        report.append({"rule": rule, "applied": True, "dropped": int(drop.sum()), "remaining": len(rows)})

    report.append({"rule": "input", "applied": True, "dropped": 0, "remaining": len(rows)})
    apply("unavailable (status code != 200)", rows["status_code"] != 200 if "status_code" in rows.columns else None)
    apply("malformed YouTube id", ~rows["youtube_id"].str.fullmatch(YOUTUBE_ID))
    apply(
        "not in availability list",
        ~rows["item_id"].isin(set(int(i) for i in available_ids)) if available_ids is not None else None,
    )
    if metadata is not None and "title" in metadata.columns:
        video_titles = rows["youtube_id"].map(metadata["title"]).fillna("")
        source = "video title"
    else:
        video_titles, source = rows["title"].fillna(""), "mapping title"
    apply(f"'full movie' in {source}", video_titles.loc[rows.index].str.contains(FULL_MOVIE))
    apply(f"'part N of M' in {source}", video_titles.loc[rows.index].str.contains(PART_N_OF_M))
    if metadata is not None and "duration" in metadata.columns:
        seconds = rows["youtube_id"].map(duration_seconds(metadata["duration"]))
        apply(f"duration > {max_seconds / 60:g} min", seconds > max_seconds)
    else:
        apply(f"duration > {max_seconds / 60:g} min (no duration metadata)", None)
    return rows.reset_index(drop=True), pd.DataFrame(report)


def read_id_list(path: str | Path) -> list[int]:
    """One integer per line, optional header (ml20myt_available.txt, available_keyframe_...csv)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if lines and not lines[0].isdigit():
        lines = lines[1:]
    for number, line in enumerate(lines, start=1):
        if not line.isdigit():
            raise DataFormatError(path, number, f"{line!r} is not a movieId")
    return [int(line) for line in lines]


def youtube_ids_for(items: pd.DataFrame, mapping: pd.DataFrame, ml1m_numbering: bool = True) -> pd.Series:
    """YouTube id per item (None where absent). ML-100K items use their ``ml1m_movie_id`` column
    (ML-1M MovieIDs are ML-20M movieIds); ML-1M-numbered datasets use their own ids."""
    by_movie = mapping.drop_duplicates("item_id").set_index("item_id")["youtube_id"]
    keys = (
        items["ml1m_movie_id"]
        if "ml1m_movie_id" in items.columns
        else (pd.Series(items.index, index=items.index) if ml1m_numbering else None)
    )
    if keys is None:
        return pd.Series(None, index=items.index, dtype=object, name="youtube_id")
    found = [by_movie.get(int(k)) if pd.notna(k) else None for k in keys]
    return pd.Series(found, index=items.index, dtype=object, name="youtube_id")


def youtube_download_commands(youtube_ids: pd.Series, folder: str | Path, max_height: int = 360) -> list[str]:
    """yt-dlp command lines that would save each trailer as ``folder/{item_id}.mp4``.

    Downloading from YouTube is optional and not done by this project: it needs yt-dlp
    (``pip install yt-dlp``), network access and respect for YouTube's terms of service.
    """
    folder = Path(folder)
    commands = []
    for item_id, youtube_id in youtube_ids.dropna().items():
        commands.append(
            f"yt-dlp -f 'bv*[height<={max_height}][ext=mp4]/b[height<={max_height}]' "
            f"--match-filter 'duration <= {MAX_TRAILER_SECONDS}' -o '{folder / f'{item_id}.%(ext)s'}' "
            f"https://www.youtube.com/watch?v={youtube_id}"
        )
    return commands


def download_youtube_trailers(*_args, **_kwargs):
    """Not bundled: explains how to fetch trailers (see youtube_download_commands)."""
    raise DownloadError(
        "Downloading trailers from YouTube needs yt-dlp (`pip install yt-dlp`) and network access; "
        "it is not part of this project. Generate the commands with "
        "recsys.data.trailers.youtube_download_commands(...) and save the videos as "
        "<data_dir>/trailers/<dataset>/{movieId}.mp4; the dashboard picks them up from there."
    )
