"""Columnar ratings loading: pyarrow parse, the checksum-keyed Arrow cache, line-precise errors."""

from __future__ import annotations

import logging
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import recsys.data.columnar as columnar
from recsys.data.columnar import cache_path, file_fingerprint, locate_bad_line, read_line, read_ratings_csv
from recsys.data.errors import DataFormatError
from recsys.data.generate import Shape, generate_movielens
from recsys.data.movielens import load_movielens_csv
from recsys.errors import StorageError

SHAPE = Shape("custom", 2000, 1500, 200_000)  # ratings.csv of about 5 MB: above CACHE_MIN_BYTES


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = generate_movielens(tmp_path_factory.mktemp("columnar") / "ml-25m", SHAPE, seed=11)
    lines = (folder / "ratings.csv").read_bytes().split(b"\n")
    return folder, lines


@pytest.fixture
def copy(source, tmp_path):
    """A fresh copy of the generated folder, and a helper that rewrites its ratings.csv lines."""
    folder = shutil.copytree(source[0], tmp_path / "ml-25m")

    def write(lines: list[bytes]) -> os.PathLike:
        (folder / "ratings.csv").write_bytes(b"\n".join(lines))
        return folder / "ratings.csv"

    return folder, write


def _parses(monkeypatch) -> list:
    calls = []
    original = columnar._parse

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(columnar, "_parse", counting)
    return calls


def test_matches_pandas_and_is_cached(copy, isolated_cache, monkeypatch):
    folder, _ = copy
    path = folder / "ratings.csv"
    calls = _parses(monkeypatch)
    first = read_ratings_csv(path)
    second = read_ratings_csv(path)
    assert len(calls) == 1  # the second read came from the cache
    reference = pd.read_csv(path)
    assert [str(t) for t in first.dtypes] == ["int64", "int64", "float32", "int64"]
    for ours, theirs in zip(["user_id", "item_id", "rating", "timestamp"], reference.columns, strict=True):
        np.testing.assert_array_equal(first[ours].to_numpy(), reference[theirs].to_numpy(first[ours].dtype))
    pd.testing.assert_frame_equal(first, second)
    second.loc[0, "rating"] = 1.0  # a writable frame, not a view of the cache file
    entries = list((isolated_cache / "ratings").glob("*.arrow"))
    assert entries == [cache_path(path)]


def test_a_changed_source_is_parsed_again_and_the_stale_entry_removed(copy, isolated_cache, monkeypatch):
    folder, write = copy
    path = folder / "ratings.csv"
    calls = _parses(monkeypatch)
    read_ratings_csv(path)
    lines = path.read_bytes().split(b"\n")
    middle = len(lines) // 2
    user, item, rating, stamp = lines[middle].split(b",")
    new_rating = b"1.0" if rating != b"1.0" else b"2.0"
    lines[middle] = b",".join([user, item, new_rating, stamp])  # same size, content changed mid-file
    stat = path.stat()
    write(lines)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    ratings = read_ratings_csv(path)
    assert len(calls) == 2 and ratings["rating"].iloc[middle - 1] == float(new_rating)
    assert len(list((isolated_cache / "ratings").glob("*.arrow"))) == 1  # the old version is gone
    assert len(list((isolated_cache / "ratings").glob("*.lock"))) == 1  # and its lock file
    # same size and modification time, but a change inside the hashed first MB: still a new key
    before = file_fingerprint(path)
    lines[1] = lines[1][:-3] + (b"9" if lines[1][-3:-2] != b"9" else b"8") + lines[1][-2:]
    stat = path.stat()
    write(lines)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_fingerprint(path) != before


def test_an_unreadable_cache_entry_is_recomputed_with_a_warning(copy, isolated_cache, monkeypatch, caplog):
    folder, _ = copy
    path = folder / "ratings.csv"
    expected = read_ratings_csv(path)
    entry = cache_path(path)
    for damage in (lambda data: data[: len(data) // 2], lambda data: b"garbage" * 100):
        entry.write_bytes(damage(entry.read_bytes()))
        calls = _parses(monkeypatch)
        with caplog.at_level(logging.WARNING, logger="recsys.data.columnar"):
            again = read_ratings_csv(path)
        assert len(calls) == 1 and "unreadable" in caplog.text
        pd.testing.assert_frame_equal(again, expected)
        caplog.clear()
    columnar._read_cache(entry, path)  # rewritten: readable again
    assert columnar._read_cache(entry, path) is not None


def test_an_unwritable_cache_still_loads(copy, isolated_cache, monkeypatch, caplog):
    folder, _ = copy

    def refuse(path, writer):
        raise StorageError(f"cannot write {path}: the file system is read-only")

    monkeypatch.setattr(columnar, "atomic_save", refuse)
    with caplog.at_level(logging.WARNING, logger="recsys.data.columnar"):
        ratings = read_ratings_csv(folder / "ratings.csv")
    assert len(ratings) == SHAPE.n_ratings and "not cached" in caplog.text


def test_small_files_are_not_cached(tmp_path, isolated_cache):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,1,4.0,5\n1,2,3.5,6\n")
    assert read_ratings_csv(path)["rating"].tolist() == [4.0, 3.5]
    assert not (isolated_cache / "ratings").exists()


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda user, item: b"%d,%d,4.0" % (user, item), r"malformed line: expected 4 fields.*found 3"),
        (lambda user, item: b"%d,%d,4.0,1,7" % (user, item), r"found 5"),
        (lambda user, item: b"%d,x%d,4.0,5" % (user, item), r"item_id 'x\d+' is not an integer"),
        (lambda user, item: b"%d,%d,four,5" % (user, item), r"rating 'four' is not a number"),
        (lambda user, item: b"%d,%d,,5" % (user, item), r"rating '' is not a number"),
        (lambda user, item: b"", r"empty line"),
        (lambda user, item: b"%d,%d,4.0,12\xe95" % (user, item), r"unknown encoding: byte 0xe9 is not valid utf-8"),
        (lambda user, item: b"%d,%d,5.5,5" % (user, item), r"rating 5.5 outside the scale 0.5..5 in steps of 0.5"),
        (lambda user, item: b"%d,%d,0,5" % (user, item), r"rating 0 outside the scale"),
        (lambda user, item: b"%d,%d,3.7,5" % (user, item), r"steps of 0.5"),
        (lambda user, item: b"%d,%d,3.0,-5" % (user, item), r"timestamp -5 is negative"),
        (lambda user, item: b"0,%d,3.0,5" % item, r"user_id 0 is not positive"),
        (lambda user, item: b"%d,2147483648,3.0,5" % user, r"item_id '2147483648' is too large"),
    ],
)
def test_errors_name_the_line_in_the_middle_of_a_large_file(copy, isolated_cache, make_bad, message):
    folder, write = copy
    lines = (folder / "ratings.csv").read_bytes().split(b"\n")
    row = 123_457  # list index = line number - 1
    user, item = (int(v) for v in lines[row].split(b",")[:2])
    lines[row] = make_bad(user, item)
    write(lines)
    with pytest.raises(DataFormatError) as info:
        load_movielens_csv(folder, "ml-25m")
    assert (info.value.line, info.value.path) == (row + 1, str(folder / "ratings.csv"))
    assert re.search(message, str(info.value)), str(info.value)


def test_duplicate_pair_names_both_lines(copy, isolated_cache):
    folder, write = copy
    lines = (folder / "ratings.csv").read_bytes().split(b"\n")
    row = 150_000  # list index = line number - 1
    user = lines[row].split(b",")[0]
    first = next(k for k in range(row, 0, -1) if lines[k].split(b",")[0] != user) + 1  # the user's first line
    row += first == row  # every user has >= 20 ratings: the next line is the same user's
    fields, earlier = lines[row].split(b","), lines[first].split(b",")
    lines[row] = b",".join([fields[0], earlier[1], b"3.0", fields[3]])
    write(lines)
    with pytest.raises(DataFormatError) as info:
        read_ratings_csv(folder / "ratings.csv")
    assert info.value.line == row + 1
    assert f"(first given on line {first + 1})" in str(info.value) and "duplicate rating" in str(info.value)


def test_unknown_item_is_checked_even_when_ratings_come_from_the_cache(copy, isolated_cache):
    folder, _ = copy
    load_movielens_csv(folder, "ml-25m")  # fills the cache
    rated = pd.read_csv(folder / "ratings.csv", usecols=["movieId"])["movieId"]
    victim = int(rated.iloc[len(rated) // 2])
    movies = (folder / "movies.csv").read_text(encoding="utf-8").split("\n")
    (folder / "movies.csv").write_text(
        "\n".join(line for line in movies if not line.startswith(f"{victim},")), encoding="utf-8"
    )
    (folder / "links.csv").unlink()
    with pytest.raises(DataFormatError, match=f"item {victim} is not in the item list") as info:
        load_movielens_csv(folder, "ml-25m")
    assert info.value.line == int(np.flatnonzero(rated.to_numpy() == victim)[0]) + 2


def test_locator_across_small_blocks_and_blank_lines(tmp_path, monkeypatch):
    """The block scan keeps line numbers across block edges; blank lines only at the end are fine."""
    monkeypatch.setattr(columnar, "SCAN_BLOCK", 64)
    path = tmp_path / "ratings.csv"
    rows = [b"%d,%d,4.0,%d" % (1 + k // 30, k % 30 + 1, 1000 + k) for k in range(300)]
    path.write_bytes(b"userId,movieId,rating,timestamp\n" + b"\n".join(rows) + b"\n\n\n")
    assert locate_bad_line(path) is None
    assert len(read_ratings_csv(path, cache=False)) == 300
    assert read_line(path, 2) == "1,1,4.0,1000" and read_line(path, 301) == "10,30,4.0,1299"
    for bad, line, message in [
        (rows[:200] + [b"1,1"] + rows[200:], 202, "found 2"),
        (rows[:150] + [b"", b""] + rows[150:], 152, "empty line"),
        (rows[:99] + [b"1,2,3.0,4\x00"] + rows[99:], 101, "NUL byte"),
        (rows + [b"   "], 302, "empty line"),
    ]:
        path.write_bytes(b"userId,movieId,rating,timestamp\n" + b"\n".join(bad) + b"\n")
        found = locate_bad_line(path)
        assert found[0] == line and message in found[1], found
        with pytest.raises(DataFormatError) as info:
            read_ratings_csv(path, cache=False)
        assert info.value.line == line and message in str(info.value)


def test_header_and_encoding_of_the_first_line(tmp_path):
    path = tmp_path / "ratings.csv"
    for content, message in [
        (b"", "no ratings"),
        (b"userId,movieId,rating,timestamp\n", "no ratings"),
        (b"user,movie,rating,timestamp\n1,1,4.0,5\n", "1: header is"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,5\n".encode("utf-16"), "1: unknown encoding: UTF-16"),
    ]:
        path.write_bytes(content)
        with pytest.raises(DataFormatError, match=message):
            read_ratings_csv(path)
    path.write_bytes(b"\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n1,1,4.0,5\r\n")  # BOM and CRLF are fine
    assert read_ratings_csv(path)["timestamp"].tolist() == [5]
