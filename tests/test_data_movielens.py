"""MovieLens loaders on the real files and on small generated ones, and every validation error."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.errors import DataFormatError, DatasetNotFound
from recsys.data.movielens import (
    ML1M_GENRES,
    load_ml1m,
    load_ml100k,
    load_movielens_csv,
    read_ml1m_movies,
    read_ml1m_users,
    year_from_title,
)

GENRES_100K = ["unknown", *ML1M_GENRES]  # u.genre: "unknown" first, then ML-1M's 18 genres


# ---- generated files -----------------------------------------------------------------------------
def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


def write_ml100k(
    folder: Path, ratings: list[str] | None = None, items: list[bytes] | None = None, users: list[str] | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    items = (
        items
        if items is not None
        else [
            f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags(3, 4, 5)}".encode(),
            f"2|Café Society (1995)|01-Jan-1995||http://x|{_flags(8)}".encode("latin-1"),
            f"3|unknown|01-Jan-1996||http://x|{_flags(0)}".encode(),
        ]
    )
    (folder / "u.item").write_bytes(b"\n".join(items) + b"\n")
    users = users if users is not None else ["1|24|M|technician|85711", "2|53|F|other|94043"]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    ratings = (
        ratings
        if ratings is not None
        else ["1\t1\t5\t881250949", "1\t2\t3\t881250950", "2\t1\t4\t881250951", "2\t3\t1\t881250952"]
    )
    (folder / "u.data").write_text("\n".join(ratings) + "\n")
    return folder


def write_ml1m(folder: Path, ratings: list[str] | None = None, with_ratings: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Amélie (2001)::Comedy|Romance\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    if with_ratings:
        ratings = ratings if ratings is not None else ["1::1::5::978300760", "2::2::3::978302109"]
        (folder / "ratings.dat").write_text("\n".join(ratings) + "\n")
    return folder


def write_csv_family(
    folder: Path, ratings: list[str] | None = None, movies: list[str] | None = None, links: list[str] | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    movies = (
        movies
        if movies is not None
        else [
            "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
            '2,"American President, The (1995)",Comedy|Drama|Romance',
            "3,Some Short (2015),(no genres listed)",
        ]
    )
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(movies) + "\n", encoding="utf-8")
    ratings = ratings if ratings is not None else ["1,1,4.0,964982703", "1,2,3.5,964981247", "2,3,0.5,964982224"]
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(ratings) + "\n")
    links = links if links is not None else ["1,0114709,862", "2,0112346,9087", "3,0113228,"]
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n" + "\n".join(links) + "\n")
    return folder


def _error(loader, folder, name=None) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        loader(folder) if name is None else loader(folder, name)
    return info.value


# ---- real files ----------------------------------------------------------------------------------
def test_ml100k_real_files_counts_dtypes_and_speed(shared_data_dir):
    start = time.perf_counter()
    dataset = load_ml100k(shared_data_dir / "ml-100k")
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"ML-100K took {elapsed:.2f}s"  # < 1 s unloaded; slack for a busy machine
    assert (dataset.n_ratings, dataset.n_users, dataset.n_items) == (100_000, 943, 1682)
    assert list(dataset.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in dataset.ratings.dtypes] == ["int64", "int64", "float32", "int64"]
    assert set(dataset.ratings["rating"].unique()) == {1, 2, 3, 4, 5}
    assert dataset.genres.shape == (1682, 19) and dataset.genres.columns[0] == "unknown"
    assert (dataset.genres.dtypes == np.uint8).all()
    assert dataset.items.index.name == "item_id" and str(dataset.items["year"].dtype) == "Int64"
    assert dataset.items.loc[1, "title"] == "Toy Story (1995)" and dataset.items.loc[1, "year"] == 1995
    assert pd.isna(dataset.items.loc[267, "year"])  # the "unknown" item has no date at all
    # latin-1 titles are decoded, not mangled
    assert any("é" in t for t in dataset.items["title"]) and not any("Ã" in t for t in dataset.items["title"])
    assert str(dataset.users["age"].dtype) == "Int64" and set(dataset.users["gender"]) == {"M", "F"}
    assert dataset.summary()["users_with_age_gender"] == 943


def test_ml1m_metadata_real_files_and_missing_ratings(shared_data_dir):
    items, genres = read_ml1m_movies(shared_data_dir / "ml-1m" / "movies.dat")
    assert len(items) == 3883 and items.index.max() == 3952 and genres.shape == (3883, 18)
    assert genres.loc[1].astype(bool).sum() == 3  # Toy Story: Animation|Children's|Comedy
    users = read_ml1m_users(shared_data_dir / "ml-1m" / "users.dat")
    assert len(users) == 6040 and set(users["age"].unique()) == {1, 18, 25, 35, 45, 50, 56}
    assert users.loc[1, "occupation"] == "K-12 student" and users.loc[1, "age_group"] == "Under 18"
    # our copy has no ratings.dat: the error names the missing file and how to get it
    with pytest.raises(DatasetNotFound, match=r"ratings\.dat.*python -m recsys download ml-1m"):
        load_ml1m(shared_data_dir / "ml-1m")


# ---- generated files: valid ------------------------------------------------------------------------
def test_ml100k_generated(tmp_path):
    dataset = load_ml100k(write_ml100k(tmp_path / "ml-100k"))
    assert dataset.n_ratings == 4 and dataset.items.loc[2, "title"] == "Café Society (1995)"
    assert dataset.genres.loc[1].tolist() == [0, 0, 0, 1, 1, 1] + [0] * 13
    assert dataset.items.loc[3, "year"] == 1996  # no year in the title: release date


def test_ml100k_accepts_utf8_reencoded_items(tmp_path):
    items = [
        f"1|Café (1995)|01-Jan-1995||u|{_flags(1)}".encode(),
        f"2|B (1995)|01-Jan-1995||u|{_flags(1)}".encode(),
        f"3|C (1995)|01-Jan-1995||u|{_flags(1)}".encode(),
    ]
    dataset = load_ml100k(write_ml100k(tmp_path, items=items))
    assert dataset.items.loc[1, "title"] == "Café (1995)"


def test_ml1m_generated(tmp_path):
    dataset = load_ml1m(write_ml1m(tmp_path / "ml-1m"))
    assert dataset.n_ratings == 2 and dataset.items.loc[2, "title"] == "Amélie (2001)"
    assert dataset.genres.loc[2, "Romance"] == 1 and dataset.users.loc[2, "age_group"] == "56+"
    assert dataset.ratings["rating"].dtype == np.float32


def test_csv_family_generated(tmp_path):
    dataset = load_movielens_csv(write_csv_family(tmp_path / "ml-latest-small"), "ml-latest-small")
    assert dataset.rating_scale == (0.5, 5.0) and dataset.users is None
    assert dataset.items.loc[2, "title"] == "American President, The (1995)"
    assert dataset.genres.loc[3].sum() == 0 and "(no genres listed)" not in dataset.genres.columns
    assert dataset.items.loc[1, "tmdb_id"] == 862 and pd.isna(dataset.items.loc[3, "tmdb_id"])
    assert dataset.items.loc[1, "imdb_id"] == "0114709"  # leading zero kept
    assert dataset.ratings["rating"].tolist() == [4.0, 3.5, 0.5]


def test_year_from_title_takes_last_year():
    years = year_from_title(pd.Series(["Land Before Time III (1995) (V)", "1984 (1984)", "unknown"]))
    assert years.tolist()[:2] == [1995, 1984] and pd.isna(years.iloc[2])


# ---- validation errors name file and line --------------------------------------------------------------
OK_RATINGS = ["1\t1\t5\t881250949", "1\t2\t3\t881250950", "2\t1\t4\t881250951", "2\t3\t1\t881250952"]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("2\t3\t1", r"u\.data:3: malformed line: expected 4 fields.*found 3"),
        ("2\t3\t1\t881250952\t9", r"u\.data:3: malformed line: expected 4 fields.*found 5"),
        ("2\tthree\t1\t881250952", r"u\.data:3: item_id 'three' is not an integer"),
        ("2\t3\t7\t881250952", r"u\.data:3: rating 7 outside the scale 1\.\.5"),
        ("2\t3\t0\t881250952", r"u\.data:3: rating 0 outside"),
        ("2\t3\t2.5\t881250952", r"u\.data:3: rating 2\.5 outside the scale 1\.\.5 in steps of 1"),
        ("1\t1\t2\t881250999", r"u\.data:3: duplicate rating of item 1 by user 1 \(first given on line 1\)"),
        ("2\t99\t2\t881250999", r"u\.data:3: item 99 is not in the item list"),
        ("7\t1\t2\t881250999", r"u\.data:3: user 7 is not in the user list"),
        ("", r"u\.data:3: empty line"),
    ],
)
def test_ml100k_rating_errors(tmp_path, bad_line, message):
    ratings = OK_RATINGS[:2] + [bad_line] + OK_RATINGS[2:]
    error = _error(load_ml100k, write_ml100k(tmp_path, ratings=ratings))
    assert error.line == 3 and error.path.endswith("u.data")
    assert re.search(message, str(error)), str(error)


def test_unknown_encoding_is_reported_with_line(tmp_path):
    folder = write_ml100k(tmp_path)
    (folder / "u.data").write_bytes(b"1\t1\t5\t881250949\n1\t2\t3\t88125\xff0950\n")
    with pytest.raises(DataFormatError, match=r"u\.data:2: unknown encoding: byte 0xff"):
        load_ml100k(folder)
    (folder / "u.data").write_text("\n".join(OK_RATINGS) + "\n")
    (folder / "u.item").write_bytes("1|Toy Story (1995)|x||u|0\n".encode("utf-16"))
    with pytest.raises(DataFormatError, match=r"u\.item:1: unknown encoding: UTF-16"):
        load_ml100k(folder)


def test_ml100k_item_and_user_errors(tmp_path):
    items = [
        f"1|A (1995)|01-Jan-1995||u|{_flags(1)}".encode(),
        f"2|B (1995)|01-Jan-1995||u|{_flags(1)}".replace("|0|0|0|0", "|0|2|0|0", 1).encode(),
        f"3|C (1995)|01-Jan-1995||u|{_flags(1)}".encode(),
    ]
    error = _error(load_ml100k, write_ml100k(tmp_path / "a", items=items))
    assert error.line == 2 and "expected 0 or 1" in str(error)
    items[1] = f"1|B (1995)|01-Jan-1995||u|{_flags(1)}".encode()
    error = _error(load_ml100k, write_ml100k(tmp_path / "b", items=items))
    assert error.line == 2 and "duplicate item_id 1" in str(error)
    error = _error(load_ml100k, write_ml100k(tmp_path / "c", users=["1|24|M|technician|85711", "2|53|X|other|1"]))
    assert error.line == 2 and "gender 'X'" in str(error) and error.path.endswith("u.user")
    error = _error(load_ml100k, write_ml100k(tmp_path / "d", users=["1|24|M|technician|85711", "2|old|F|other|1"]))
    assert error.line == 2 and "age 'old' is not an integer" in str(error)


def test_ml1m_errors(tmp_path):
    error = _error(load_ml1m, write_ml1m(tmp_path / "a", ratings=["1::1::5::978300760", "2::2::3"]))
    assert (error.line, error.path.endswith("ratings.dat")) == (2, True) and "found 3" in str(error)
    error = _error(load_ml1m, write_ml1m(tmp_path / "b", ratings=["1::1::5::978300760", "1::1::4::978300761"]))
    assert error.line == 2 and "duplicate" in str(error)
    folder = write_ml1m(tmp_path / "c")
    (folder / "movies.dat").write_text("1::Toy Story (1995)::Animation\n2::X (2001)::Cooking\n")
    error = _error(load_ml1m, folder)
    assert error.line == 2 and "unknown genre 'Cooking'" in str(error)
    folder = write_ml1m(tmp_path / "d")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::57::16::70072\n")
    error = _error(load_ml1m, folder)
    assert error.line == 2 and "age code 57" in str(error)


def test_csv_family_errors(tmp_path):
    def load(folder):
        return load_movielens_csv(folder, "ml-latest-small")

    error = _error(load, write_csv_family(tmp_path / "a", ratings=["1,1,4.0,964982703", "1,2,5.5,964981247"]))
    assert (error.line, error.path.endswith("ratings.csv")) == (3, True)  # line 1 is the header
    assert "rating 5.5 outside the scale 0.5..5" in str(error)
    error = _error(load, write_csv_family(tmp_path / "b", ratings=["1,1,4.0,964982703", "1,2,3.25,964981247"]))
    assert error.line == 3 and "steps of 0.5" in str(error)
    folder = write_csv_family(tmp_path / "c")
    (folder / "ratings.csv").write_text("user,movie,rating,timestamp\n1,1,4.0,964982703\n")
    error = _error(load, folder)
    assert error.line == 1 and "header" in str(error)
    error = _error(load, write_csv_family(tmp_path / "d", movies=["1,Toy Story (1995),Comedy", "1,Again (1995),Drama"]))
    assert error.line == 3 and "duplicate movieId 1" in str(error)
    error = _error(load, write_csv_family(tmp_path / "e", links=["1,0114709,862", "9,0112346,9087"]))
    assert error.line == 3 and "movieId 9 is not in movies.csv" in str(error)
    folder = write_csv_family(tmp_path / "f")
    (folder / "movies.csv").write_bytes(b"movieId,title,genres\n1,Caf\xe9 (1995),Comedy\n")
    error = _error(load, folder)
    assert error.line == 2 and "unknown encoding" in str(error)
    error = _error(load, write_csv_family(tmp_path / "g", ratings=["1,1,4.0,964982703", "1,2,,964981247"]))
    assert error.line == 3 and "rating '' is not a number" in str(error)
    movies = ["1,Toy Story (1995),Comedy", '2,"President, The (1995),Drama', "3,Short (2015),Drama"]
    error = _error(load, write_csv_family(tmp_path / "h", movies=movies))
    assert (error.line, error.path.endswith("movies.csv")) == (3, True) and "unclosed quote" in str(error)


def test_missing_file_names_it(tmp_path):
    folder = write_ml100k(tmp_path)
    (folder / "u.user").unlink()
    with pytest.raises(DatasetNotFound, match=r"u\.user is missing"):
        load_ml100k(folder)


@pytest.mark.parametrize(
    "loader, writer, ratings_file",
    [
        (load_ml100k, write_ml100k, "u.data"),
        (load_ml1m, write_ml1m, "ratings.dat"),
        (lambda folder: load_movielens_csv(folder, "ml-latest-small"), write_csv_family, "ratings.csv"),
    ],
)
def test_a_ratings_file_without_ratings_is_an_error_not_an_empty_dataset(tmp_path, loader, writer, ratings_file):
    folder = writer(tmp_path / "data")
    # empty file, or (CSV) a header with no data line
    header = "userId,movieId,rating,timestamp\n" if ratings_file.endswith(".csv") else ""
    (folder / ratings_file).write_text(header)
    with pytest.raises(DataFormatError, match=re.escape(ratings_file) + ": no ratings"):
        loader(folder)
