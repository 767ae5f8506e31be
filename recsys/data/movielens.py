"""Loaders for the MovieLens formats: ML-100K, ML-1M and the CSV family (latest-small, 20M, 25M).

Each loader returns a validated :class:`~recsys.data.dataset.Dataset`. Validation is strict and
nothing is silently dropped: a malformed line (wrong field count, a non-number where a number
belongs, an empty line), a rating outside the scale, a duplicate (user, item) pair, a rating of an
unknown item or user, or bytes that are not in the file's encoding raise
:class:`~recsys.data.errors.DataFormatError` naming the file and the 1-based line number.

Speed: files are parsed with pandas' C parser and checked with vectorised operations; only when
the check fails is the file re-read as text to find the first offending line for the message.
Loading ML-100K takes well under a second.

Files are read through :mod:`recsys.data.text_tables` (layouts, encodings, field counts, typed
columns); this module holds what is MovieLens: the layouts of each file, the rating checks, the
item, genre and user frames, and the three loaders. The CSV family is UTF-8 only; ML-100K
``u.item`` and ML-1M ``movies.dat`` may be latin-1 (the GroupLens archives' encoding).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataFormatError
from recsys.data.text_tables import (
    Table,
    first_bad,
    float_column,
    int_column,
    non_empty,
    read_text_table,
    require_file,
)

# ML-1M's README lists these 18 genres; the CSV family adds "IMAX" and "(no genres listed)".
ML1M_GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
NO_GENRE = "(no genres listed)"

# ML-1M users.dat stores age and occupation as codes (see its README).
ML1M_AGE_GROUPS = {
    1: "Under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}
ML1M_OCCUPATIONS = {
    0: "other",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}

_YEAR_IN_TITLE = re.compile(r".*\((\d{4})\)")  # greedy: the last "(YYYY)" in the title

ML100K_RATINGS = Table("\t", ("user_id", "item_id", "rating", "timestamp"))
ML100K_ITEMS_FIXED = ("item_id", "title", "release_date", "video_release_date", "imdb_url")
ML100K_USERS = Table("|", ("user_id", "age", "gender", "occupation", "zip_code"))
ML100K_GENRES = Table("|", ("genre", "index"))
ML1M_RATINGS = Table("::", ("user_id", "item_id", "rating", "timestamp"))
ML1M_MOVIES = Table("::", ("item_id", "title", "genres"), encodings=("utf-8", "latin-1"))
ML1M_USERS = Table("::", ("user_id", "gender", "age", "occupation", "zip_code"))
CSV_RATINGS = Table(
    ",", ("user_id", "item_id", "rating", "timestamp"), header=("userId", "movieId", "rating", "timestamp")
)
CSV_MOVIES = Table(",", ("item_id", "title", "genres"), header=("movieId", "title", "genres"), quoted=True)
CSV_LINKS = Table(",", ("item_id", "imdb_id", "tmdb_id"), header=("movieId", "imdbId", "tmdbId"), quoted=True)


# ---- ratings -----------------------------------------------------------------------------------
def _read_ratings(path: Path, table: Table) -> pd.DataFrame:
    """user_id, item_id, rating, timestamp; the fast C path, else the text path that names the line."""
    dtypes = {"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "int64"}
    try:
        source: Path | io.BytesIO = path
        sep = table.sep
        if len(sep) > 1:
            raw = path.read_bytes()
            if b"\t" in raw:  # a tab would pass as a separator below: the text path names its line
                raise ValueError("tab in a '::'-separated file")
            source, sep = io.BytesIO(raw.replace(sep.encode(), b"\t")), "\t"
        frame = pd.read_csv(
            source,
            sep=sep,
            header=0 if table.header else None,
            names=list(table.columns),
            dtype=dtypes,
            engine="c",
            skip_blank_lines=False,
            encoding="utf-8-sig",
            na_filter=False,
            quoting=csv.QUOTE_NONE,
        )
        if table.header:
            with open(path, encoding="utf-8-sig", errors="replace") as handle:
                header = tuple(f.strip() for f in handle.readline().strip().split(","))
            if header != table.header:
                raise ValueError("unexpected header")
        if frame["rating"].isna().any() or not np.isfinite(frame["rating"].to_numpy()).all():
            raise ValueError("missing rating")
    except (ValueError, UnicodeDecodeError, OverflowError):
        # Slow path only for broken files: find the line to blame.
        text = read_text_table(path, table)
        frame = pd.DataFrame(
            {
                "user_id": int_column(text, "user_id", path, table),
                "item_id": int_column(text, "item_id", path, table),
                "rating": float_column(text, "rating", path, table),
                "timestamp": int_column(text, "timestamp", path, table),
            }
        )
    return frame


def _validate_ratings(
    ratings: pd.DataFrame,
    path: Path,
    table: Table,
    scale: tuple[float, float],
    step: float,
    items: pd.Index,
    users: pd.Index | None,
) -> pd.DataFrame:
    first = table.first_data_line
    if ratings.empty:
        # A truncated download or an emptied file would otherwise load as a valid dataset of 0
        # ratings and only fail (or show empty charts) far away from the cause.
        raise DataFormatError(path, None, "no ratings in the file (empty, or only a header)")
    for column in ("user_id", "item_id"):
        bad = ratings[column].to_numpy() <= 0
        if bad.any():
            row = first_bad(bad)
            raise DataFormatError(path, row + first, f"{column} {ratings[column].iloc[row]} is not positive")
    values = ratings["rating"].to_numpy()
    low, high = scale
    off_grid = np.abs(values / step - np.round(values / step)) > 1e-6
    bad = (values < low) | (values > high) | off_grid
    if bad.any():
        row = first_bad(bad)
        raise DataFormatError(
            path, row + first, f"rating {values[row]:g} outside the scale {low:g}..{high:g} in steps of {step:g}"
        )
    bad = ratings["timestamp"].to_numpy() < 0
    if bad.any():
        row = first_bad(bad)
        raise DataFormatError(path, row + first, f"timestamp {ratings['timestamp'].iloc[row]} is negative")
    duplicated = ratings.duplicated(["user_id", "item_id"], keep="first").to_numpy()
    if duplicated.any():
        row = first_bad(duplicated)
        user, item = ratings["user_id"].iloc[row], ratings["item_id"].iloc[row]
        same = (ratings["user_id"].to_numpy() == user) & (ratings["item_id"].to_numpy() == item)
        raise DataFormatError(
            path,
            row + first,
            f"duplicate rating of item {item} by user {user} (first given on line {first_bad(same) + first})",
        )
    unknown = ~ratings["item_id"].isin(items).to_numpy()
    if unknown.any():
        row = first_bad(unknown)
        raise DataFormatError(path, row + first, f"item {ratings['item_id'].iloc[row]} is not in the item list")
    if users is not None:
        unknown = ~ratings["user_id"].isin(users).to_numpy()
        if unknown.any():
            row = first_bad(unknown)
            raise DataFormatError(path, row + first, f"user {ratings['user_id'].iloc[row]} is not in the user list")
    return pd.DataFrame(
        {
            "user_id": ratings["user_id"].astype("int64").to_numpy(),
            "item_id": ratings["item_id"].astype("int64").to_numpy(),
            "rating": ratings["rating"].astype("float32").to_numpy(),
            "timestamp": ratings["timestamp"].astype("int64").to_numpy(),
        }
    )


# ---- items and users ---------------------------------------------------------------------------
def year_from_title(titles: pd.Series) -> pd.Series:
    """The last "(YYYY)" in each title as Int64 (NA where there is none)."""
    return pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE, expand=False), errors="coerce").astype("Int64")


def _read_keyed(path: Path, table: Table, what: str | None, id_column: str, id_name: str):
    """(frame, ids) of a table keyed by `id_column` (positive, unique; named `id_name` in errors).
    `what` names the rows when an empty file is an error of its own (None: an empty file is fine)."""
    frame = read_text_table(path, table)
    if what is not None:
        non_empty(frame, path, what)
    ids = int_column(frame, id_column, path, table)
    _unique_ids(ids, path, table, id_name)
    return frame, ids


def _unique_ids(ids: pd.Series, path: Path, table: Table, what: str) -> None:
    duplicated = ids.duplicated().to_numpy()
    if duplicated.any():
        row = first_bad(duplicated)
        raise DataFormatError(path, row + table.first_data_line, f"duplicate {what} {ids.iloc[row]}")
    bad = ids.to_numpy() <= 0
    if bad.any():
        row = first_bad(bad)
        raise DataFormatError(path, row + table.first_data_line, f"{what} {ids.iloc[row]} is not positive")


def _genre_frame(genres: pd.Series, index: pd.Index, path: Path, table: Table, known: list[str] | None) -> pd.DataFrame:
    """Multi-hot uint8 frame from "A|B|C" strings; "(no genres listed)" means no genre."""
    dummies = genres.str.get_dummies(sep="|")
    dummies = dummies.drop(columns=[NO_GENRE, ""], errors="ignore")
    if known is not None:
        unknown = [g for g in dummies.columns if g not in known]
        if unknown:
            row = first_bad(dummies[unknown[0]].to_numpy() > 0)
            raise DataFormatError(path, row + table.first_data_line, f"unknown genre {unknown[0]!r}")
    order = [g for g in ML1M_GENRES + ["IMAX"] if g in dummies.columns]
    order += sorted(g for g in dummies.columns if g not in order)
    frame = dummies[order].astype("uint8")
    frame.index = index
    return frame


def _items_frame(ids: pd.Series, titles: pd.Series, extra: dict | None = None) -> pd.DataFrame:
    items = pd.DataFrame(
        {"title": titles.to_numpy(dtype=object)}, index=pd.Index(ids.to_numpy(dtype="int64"), name="item_id")
    )
    items["year"] = year_from_title(items["title"])
    for column, values in (extra or {}).items():
        items[column] = values.to_numpy() if hasattr(values, "to_numpy") else values
    return items


def _check_gender(frame: pd.DataFrame, path: Path, table: Table) -> pd.Series:
    gender = frame["gender"].str.strip().str.upper()
    bad = ~gender.isin(["M", "F"])
    if bad.any():
        row = first_bad(bad)
        raise DataFormatError(path, row + table.first_data_line, f"gender {frame['gender'].iloc[row]!r} is not M or F")
    return gender


# ---- ML-100K -----------------------------------------------------------------------------------
def read_ml100k_genres(path: str | Path) -> list[str]:
    path = Path(path)
    frame = non_empty(read_text_table(path, ML100K_GENRES), path, "genres")
    index = int_column(frame, "index", path, ML100K_GENRES)
    if list(index) != list(range(len(index))):
        row = first_bad(index.to_numpy() != np.arange(len(index)))
        raise DataFormatError(path, row + 1, f"genre index {index.iloc[row]} out of order (expected {row})")
    return frame["genre"].tolist()


def read_ml100k_items(path: str | Path, genre_names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = Path(path)
    table = Table(
        "|", ML100K_ITEMS_FIXED + tuple(f"g{i}" for i in range(len(genre_names))), encodings=("utf-8", "latin-1")
    )
    frame, ids = _read_keyed(path, table, "items", "item_id", "item_id")
    flags = frame[[f"g{i}" for i in range(len(genre_names))]]
    bad = ~flags.isin(["0", "1"])
    if bad.any(axis=None):
        row = first_bad(bad.any(axis=1))
        column = int(np.flatnonzero(bad.iloc[row].to_numpy())[0])
        raise DataFormatError(
            path, row + 1, f"genre flag {genre_names[column]!r} is {flags.iloc[row, column]!r}, expected 0 or 1"
        )
    items = _items_frame(ids, frame["title"], {"release_date": frame["release_date"], "imdb_url": frame["imdb_url"]})
    # "unknown" titles have no year; the release date is the next best source.
    release_year = pd.to_numeric(frame["release_date"].str[-4:], errors="coerce").astype("Int64")
    items["year"] = items["year"].fillna(pd.Series(release_year.to_numpy(), index=items.index))
    genres = pd.DataFrame(flags.to_numpy(dtype="uint8"), index=items.index, columns=genre_names)
    return items, genres


def read_ml100k_users(path: str | Path) -> pd.DataFrame:
    path, table = Path(path), ML100K_USERS
    frame, ids = _read_keyed(path, table, "users", "user_id", "user_id")
    age = int_column(frame, "age", path, table)
    bad = (age < 1) | (age > 120)
    if bad.any():
        row = first_bad(bad)
        raise DataFormatError(path, row + 1, f"age {age.iloc[row]} is implausible")
    return pd.DataFrame(
        {
            "age": pd.array(age.to_numpy(), dtype="Int64"),
            "gender": _check_gender(frame, path, table).to_numpy(dtype=object),
            "occupation": frame["occupation"].str.strip().to_numpy(dtype=object),
            "zip_code": frame["zip_code"].to_numpy(dtype=object),
        },
        index=pd.Index(ids.to_numpy(), name="user_id"),
    )


def load_ml100k(folder: str | Path, name: str = "ml-100k") -> Dataset:
    """MovieLens 100K from its folder (u.data, u.item, u.user, u.genre)."""
    folder = Path(folder)
    paths = {f: require_file(folder / f, name) for f in ("u.data", "u.item", "u.user", "u.genre")}
    genre_names = read_ml100k_genres(paths["u.genre"])
    items, genres = read_ml100k_items(paths["u.item"], genre_names)
    users = read_ml100k_users(paths["u.user"])
    return _star_dataset(name, folder, paths["u.data"], ML100K_RATINGS, items, genres, users)


# ---- ML-1M -------------------------------------------------------------------------------------
def read_ml1m_movies(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """items (title, year) and the multi-hot genre frame of ML-1M movies.dat."""
    path = Path(path)
    frame, ids = _read_keyed(path, ML1M_MOVIES, "movies", "item_id", "MovieID")
    items = _items_frame(ids, frame["title"])
    genres = _genre_frame(frame["genres"], items.index, path, ML1M_MOVIES, ML1M_GENRES)
    return items, genres


def read_ml1m_users(path: str | Path) -> pd.DataFrame:
    path, table = Path(path), ML1M_USERS
    frame, ids = _read_keyed(path, table, "users", "user_id", "UserID")
    age = int_column(frame, "age", path, table)
    occupation = int_column(frame, "occupation", path, table)
    for values, codes, what in ((age, ML1M_AGE_GROUPS, "age code"), (occupation, ML1M_OCCUPATIONS, "occupation code")):
        bad = ~values.isin(list(codes))
        if bad.any():
            row = first_bad(bad)
            raise DataFormatError(path, row + 1, f"{what} {values.iloc[row]} is not one of {sorted(codes)}")
    return pd.DataFrame(
        {
            # ML-1M only has age groups; "age" is the group's lower bound, "age_group" its label.
            "age": pd.array(age.to_numpy(), dtype="Int64"),
            "age_group": age.map(ML1M_AGE_GROUPS).to_numpy(dtype=object),
            "gender": _check_gender(frame, path, table).to_numpy(dtype=object),
            "occupation": occupation.map(ML1M_OCCUPATIONS).to_numpy(dtype=object),
            "zip_code": frame["zip_code"].to_numpy(dtype=object),
        },
        index=pd.Index(ids.to_numpy(), name="user_id"),
    )


def load_ml1m(folder: str | Path, name: str = "ml-1m") -> Dataset:
    """MovieLens 1M from its folder (ratings.dat, movies.dat, users.dat; `::`-separated)."""
    folder = Path(folder)
    paths = {f: require_file(folder / f, name) for f in ("ratings.dat", "movies.dat", "users.dat")}
    items, genres = read_ml1m_movies(paths["movies.dat"])
    users = read_ml1m_users(paths["users.dat"])
    return _star_dataset(name, folder, paths["ratings.dat"], ML1M_RATINGS, items, genres, users)


def _star_dataset(
    name: str,
    folder: Path,
    ratings_path: Path,
    table: Table,
    items: pd.DataFrame,
    genres: pd.DataFrame,
    users: pd.DataFrame,
) -> Dataset:
    """ML-100K and ML-1M once their items and users are read: ratings in whole stars 1..5, each of
    a listed item and a listed user."""
    scale = (1.0, 5.0)
    ratings = _validate_ratings(
        _read_ratings(ratings_path, table), ratings_path, table, scale, 1.0, items.index, users.index
    )
    return Dataset(
        name=name, ratings=ratings, items=items, genres=genres, users=users, rating_scale=scale, source_dir=folder
    )


# ---- CSV family (ml-latest-small, ml-20m, ml-25m, ml-latest) ----------------------------------
def read_csv_movies(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    path, table = Path(path), CSV_MOVIES
    frame, ids = _read_keyed(path, table, "movies", "item_id", "movieId")
    items = _items_frame(ids, frame["title"])
    genres = _genre_frame(frame["genres"], items.index, path, table, known=None)
    return items, genres


def read_csv_links(path: str | Path, items: pd.Index) -> pd.DataFrame:
    """imdb_id (str, as written, e.g. "0114709") and tmdb_id (Int64, NA where empty) per movieId."""
    path, table = Path(path), CSV_LINKS
    frame, ids = _read_keyed(path, table, None, "item_id", "movieId")
    int_column(frame, "imdb_id", path, table, allow_empty=True)
    tmdb = int_column(frame, "tmdb_id", path, table, allow_empty=True)
    unknown = ~ids.isin(items)
    if unknown.any():
        row = first_bad(unknown)
        raise DataFormatError(path, row + 2, f"movieId {ids.iloc[row]} is not in movies.csv")
    imdb = frame["imdb_id"].str.strip().replace("", None)
    return pd.DataFrame(
        {"imdb_id": imdb.to_numpy(dtype=object), "tmdb_id": pd.array(tmdb, dtype="Int64")},
        index=pd.Index(ids.to_numpy(), name="item_id"),
    )


def _read_csv_items(movies_path: Path, links_path: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """items (title, year, imdb_id, tmdb_id) and genres of movies.csv (+ links.csv when present)."""
    items, genres = read_csv_movies(movies_path)
    items["imdb_id"] = pd.Series(None, index=items.index, dtype=object)
    items["tmdb_id"] = pd.Series(pd.NA, index=items.index, dtype="Int64")
    if links_path is not None:
        links = read_csv_links(links_path, items.index)
        items.loc[links.index, "imdb_id"] = links["imdb_id"]
        items.loc[links.index, "tmdb_id"] = links["tmdb_id"]
    return items, genres


def load_movielens_csv(folder: str | Path, name: str, *, cache: bool = True) -> Dataset:
    """A CSV-family dataset (ratings.csv, movies.csv, optional links.csv); no user demographics.

    ratings.csv goes through :func:`recsys.data.columnar.read_ratings_csv` (pyarrow, cached as
    Arrow IPC keyed by the file's fingerprint; `cache=False` parses every time). movies.csv and
    links.csv of ML-20M/25M size (over a MB) are parsed once and kept in the results cache under
    their fingerprints: the text parser takes about a second on ML-25M's 62,423 movies. A folder
    written by :mod:`recsys.data.generate` (a ``GENERATED`` marker) loads as ``synthetic``.
    """
    from recsys.cache import cached_result
    from recsys.data.columnar import CACHE_MIN_BYTES, check_known_items, file_fingerprint, read_ratings
    from recsys.data.generate import read_marker

    folder = Path(folder)
    ratings_path = require_file(folder / "ratings.csv", name)
    movies_path = require_file(folder / "movies.csv", name)
    links_path = folder / "links.csv" if (folder / "links.csv").is_file() else None
    if cache and movies_path.stat().st_size >= CACHE_MIN_BYTES:
        params = {
            "movies": file_fingerprint(movies_path),
            "links": file_fingerprint(links_path) if links_path else None,
        }
        items, genres = cached_result(_read_csv_items, params, lambda: _read_csv_items(movies_path, links_path))
    else:
        items, genres = _read_csv_items(movies_path, links_path)
    ratings, present = read_ratings(ratings_path, (0.5, 5.0), 0.5, cache=cache)
    check_known_items(ratings, items.index, ratings_path, present)
    marker = read_marker(folder)
    dataset = Dataset(
        name=name,
        ratings=ratings,
        items=items,
        genres=genres,
        users=None,
        rating_scale=(0.5, 5.0),
        source_dir=folder,
        synthetic=marker is not None,
    )
    if marker is not None:
        dataset.notes["generated"] = marker
    return dataset
