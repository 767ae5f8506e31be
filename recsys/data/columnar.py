"""Fast, cached loading of CSV-family ``ratings.csv`` files (ML-20M, ML-25M, ml-latest).

Parsing: pyarrow's multi-threaded CSV reader straight into int64/float64 columns (no Python
objects), then vectorised checks. Nothing is silently dropped; every problem raises
:class:`~recsys.errors.DataFormatError` naming the file and the 1-based line:

* malformed lines (wrong field count, a non-number, an empty line in the middle), bytes that are
  not UTF-8: pyarrow's errors carry no row number when it reads with several threads (checked
  with pyarrow 26: neither ``ArrowInvalid`` nor ``ParseOptions(invalid_row_handler=...)``'s
  ``InvalidRow.number`` has it unless ``use_threads=False``, which halves the speed, and
  conversion errors never have it), so on failure :func:`locate_bad_line` scans the file once in
  16 MB blocks: numpy finds lines with the wrong number of commas, empty lines followed by data
  and non-ASCII bytes; pyarrow's regex kernels find the first field that is not a number;
* ratings outside the scale or off its step, ids that are not positive or do not fit 32 bits,
  negative timestamps, duplicate (user, movie) pairs: the vectorised check gives the first
  offending row, and line = row + 2 (the header is line 1; empty lines are not skipped, so rows
  and lines stay aligned; blank lines at the very end of the file are allowed).

Caching: the validated columns are stored as an uncompressed Arrow IPC (Feather v2) file under
``cache_dir()/ratings/``, written atomically (:func:`recsys.cache.atomic_save`) under a file lock,
and read back with zero parsing. Measured on a 25M-row file (2-core machine, loaded; see
bench/scale.py): Arrow IPC uncompressed reads in 0.3 s, LZ4 5.4 s, zstd 7.9 s, Parquet (snappy)
8.3 s, so the 476 MB uncompressed file wins; ids are stored as int32 (they are checked to fit).

The cache key is a *fast fingerprint* of the source: size, modification time (ns) and a BLAKE2b
hash of its first and last MB plus 14 evenly spaced 64 KB blocks (about 3 MB read; the whole
file when it is under 3 MB). A full hash would read all 690 MB of ML-25M on every cached load:
1-2 s with a warm page cache and several seconds from a cold disk, most of the 5 s budget of a
cached load. What the fingerprint can miss is an edit that keeps the size, falls outside the
sampled blocks and keeps the modification time; editors and downloads change the time. Entries
for other versions of the same source path are removed when a new one is written; an unreadable
entry is recomputed with a logged warning.

The Dataset keeps its documented dtypes (int64 ids, float32 ratings, int64 timestamps): about
700 MB for 25M ratings. The cache holds int32 ids; widening them on load costs ~0.1 s.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cache import atomic_save, file_lock
from recsys.data.text_tables import BOMS
from recsys.errors import DataFormatError, StorageError

log = logging.getLogger(__name__)

HEADER = ("userId", "movieId", "rating", "timestamp")
COLUMNS = ("user_id", "item_id", "rating", "timestamp")
INTEGER_COLUMNS = ("user_id", "item_id", "timestamp")
CACHE_VERSION = 1
#: files smaller than this are parsed every time (a few ms) instead of cached
CACHE_MIN_BYTES = 1 << 20
SAMPLE_EDGE = 1 << 20  # bytes hashed at each end of the file
SAMPLE_BLOCK = 1 << 16  # bytes hashed at each of the evenly spaced inner positions
SAMPLE_INNER = 14
SCAN_BLOCK = 16 << 20  # bytes per block when locating a bad line
INT32_MAX = 2**31 - 1

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_INTEGER_ARROW = r"^\s*[+-]?\d{1,18}\s*$"  # at most 18 digits: fits int64
_FLOAT_ARROW = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


# ---- public API ---------------------------------------------------------------------------------
def read_ratings_csv(
    path: str | os.PathLike,
    scale: tuple[float, float] = (0.5, 5.0),
    step: float = 0.5,
    *,
    cache: bool = True,
    cache_root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The validated ratings of a CSV-family ``ratings.csv``: columns user_id (int64), item_id
    (int64), rating (float32), timestamp (int64), one row per line in file order.

    Read from the columnar cache when the source's fingerprint matches, else parsed with pyarrow,
    validated and cached (files under CACHE_MIN_BYTES are never cached). Raises DataFormatError
    (file + line) for malformed content, FileNotFoundError if the file is missing.
    """
    return read_ratings(path, scale, step, cache=cache, cache_root=cache_root)[0]


def read_ratings(path, scale=(0.5, 5.0), step: float = 0.5, *, cache: bool = True, cache_root=None):
    """(:func:`read_ratings_csv`'s frame, the sorted distinct item ids it rates): the second is
    kept in the cache entry, so that checking them against movies.csv needs no pass over 25M rows."""
    path = Path(path)
    size = path.stat().st_size
    if not cache or size < CACHE_MIN_BYTES:
        frame = _parse(path, scale, step)[1]
        return frame, _distinct_items(frame)
    target = cache_path(path, scale, step, cache_root)
    cached = _read_cache(target, path)
    if cached is None:
        with file_lock(target):
            cached = _read_cache(target, path)  # another process may have written it meanwhile
            if cached is None:
                table, frame = _parse(path, scale, step)
                present = _distinct_items(frame)
                _write_cache(target, path, table, present)
                return frame, present
    table, present = cached
    return _frame(table), present


def parse_ratings_csv(path: str | os.PathLike, scale=(0.5, 5.0), step: float = 0.5) -> pd.DataFrame:
    """Parse and validate without the cache (the frame of :func:`read_ratings_csv`)."""
    return _parse(Path(path), scale, step)[1]


def _parse(path: Path, scale, step):
    """(Arrow table with int32 ids, float32 ratings, int64 times; the validated frame)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    _check_header(path)
    try:
        # ids straight to int32 (a larger id is a conversion error, located below), ratings to
        # float32: the grid check tolerates 1e-6 like the text loaders, which float32 resolves
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=list(COLUMNS), use_threads=True),
            parse_options=pcsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={
                    "user_id": pa.int32(),
                    "item_id": pa.int32(),
                    "rating": pa.float32(),
                    "timestamp": pa.int64(),
                },
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        found = locate_bad_line(path)
        if found is None:
            raise DataFormatError(path, None, f"cannot parse: {exc}") from None
        raise DataFormatError(path, found[0], found[1]) from None
    table = _drop_trailing_blank_rows(path, table)
    if table.num_rows == 0:
        raise DataFormatError(path, None, "no ratings in the file (empty, or only a header)")
    frame = _frame(table)
    _validate(path, table, frame, scale, step)
    return table, frame


def check_known_items(
    ratings: pd.DataFrame, items: pd.Index, path: str | os.PathLike, present: np.ndarray | None = None
) -> None:
    """Every rated item must be in the item list (movies.csv); the line of the first that is not.
    `present` (the distinct rated ids, from :func:`read_ratings`) makes the usual case instant."""
    known = np.asarray(items, dtype=np.int64)
    if present is not None and np.isin(present, known).all():
        return
    ids = ratings["item_id"].to_numpy()
    if len(known) and 0 <= known.min() and known.max() < 50_000_000:  # a lookup table: O(n), no hashing
        table = np.zeros(int(known.max()) + 2, dtype=bool)
        table[known] = True
        unknown = ~np.take(table, ids, mode="clip")  # ids past the largest land on the last, False
    else:
        unknown = ~np.isin(ids, known)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataFormatError(path, row + 2, f"item {ids[row]} is not in the item list")


def file_fingerprint(path: str | os.PathLike) -> str:
    """Size + mtime (ns) + BLAKE2b of the first/last MB and 14 inner 64 KB blocks (module docstring)."""
    path = Path(path)
    stat = path.stat()
    size = stat.st_size
    digest = hashlib.blake2b(f"{size}:{stat.st_mtime_ns}".encode(), digest_size=16)
    with open(path, "rb") as handle:
        if size <= 2 * SAMPLE_EDGE + SAMPLE_INNER * SAMPLE_BLOCK:
            digest.update(handle.read())
        else:
            digest.update(handle.read(SAMPLE_EDGE))
            for k in range(1, SAMPLE_INNER + 1):
                handle.seek(k * size // (SAMPLE_INNER + 1))
                digest.update(handle.read(SAMPLE_BLOCK))
            handle.seek(size - SAMPLE_EDGE)
            digest.update(handle.read(SAMPLE_EDGE))
    return digest.hexdigest()


def cache_path(path: str | os.PathLike, scale=(0.5, 5.0), step: float = 0.5, root=None) -> Path:
    """Where the cached columns of `path` live: <cache>/ratings/<folder>-<path hash>-<content key>.arrow."""
    from recsys.config import cache_dir

    path = Path(path).resolve()
    where = hashlib.blake2b(str(path).encode(), digest_size=6).hexdigest()
    key = hashlib.blake2b(
        f"v{CACHE_VERSION}:{file_fingerprint(path)}:{scale[0]}:{scale[1]}:{step}".encode(), digest_size=10
    ).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.parent.name)[:40] or "ratings"
    return Path(cache_dir(root)) / "ratings" / f"{stem}-{where}-{key}.arrow"


# ---- cache file ---------------------------------------------------------------------------------
def _frame(table) -> pd.DataFrame:
    """The Dataset's ratings frame from the Arrow columns: one copy per column (ids widened to
    int64 on the way), writable, independent of the Arrow buffers (which may be a memory map)."""

    def column(name: str, dtype) -> np.ndarray:
        chunks = [chunk.to_numpy(zero_copy_only=False) for chunk in table.column(name).chunks]
        return np.concatenate(chunks, dtype=dtype) if chunks else np.empty(0, dtype)

    return pd.DataFrame(
        {
            "user_id": column("user_id", np.int64),
            "item_id": column("item_id", np.int64),
            "rating": column("rating", np.float32),
            "timestamp": column("timestamp", np.int64),
        },
        copy=False,
    )


def _distinct_items(frame: pd.DataFrame) -> np.ndarray:
    ids = frame["item_id"].to_numpy()
    if len(ids) and ids.max() < 50_000_000:
        return np.flatnonzero(np.bincount(ids)).astype(np.int32)  # no sort of 25M values
    return np.unique(ids).astype(np.int32)


def _write_cache(target: Path, source: Path, table, present: np.ndarray) -> None:
    import pyarrow.feather as feather

    meta = {"source": str(source.resolve()), "rows": table.num_rows, "version": CACHE_VERSION}
    table = table.replace_schema_metadata(
        {"recsys": json.dumps(meta), "recsys_items": np.asarray(present, dtype="<i4").tobytes()}
    )
    try:
        # one record batch (chunksize = all rows): reading it back needs no concatenation
        atomic_save(
            target,
            lambda tmp: feather.write_feather(table, tmp, compression="uncompressed", chunksize=max(table.num_rows, 1)),
        )
    except StorageError as exc:
        log.warning("ratings cache: not cached (%s)", exc)
        return
    stale = target.name.rsplit("-", 1)[0] + "-*.arrow"
    for old in target.parent.glob(stale):  # earlier versions of the same source file, and their locks
        if old != target:
            for leftover in (old, old.with_name(old.name + ".lock")):
                with contextlib.suppress(OSError):
                    leftover.unlink()


def _read_cache(target: Path, source: Path):
    """(Arrow table, distinct item ids) from the cache, or None when missing or unreadable
    (logged, then recomputed)."""
    import pyarrow as pa
    import pyarrow.feather as feather

    if not target.is_file():
        return None
    try:
        # memory-mapped: _frame copies the columns once, straight from the page cache
        table = feather.read_table(target, memory_map=True)
        meta = json.loads((table.schema.metadata or {}).get(b"recsys", b"{}"))
        expected = {"user_id": pa.int32(), "item_id": pa.int32(), "rating": pa.float32(), "timestamp": pa.int64()}
        if table.column_names != list(COLUMNS) or any(table.schema.field(n).type != t for n, t in expected.items()):
            raise ValueError(f"unexpected columns {table.schema}")
        if meta.get("rows") != table.num_rows or meta.get("version") != CACHE_VERSION:
            raise ValueError(f"metadata {meta} does not match {table.num_rows} rows")
        if any(table.column(n).null_count for n in COLUMNS):
            raise ValueError("null values")
        present = np.frombuffer(table.schema.metadata[b"recsys_items"], dtype="<i4")
        return table, present
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        log.warning("ratings cache: %s is unreadable (%s); parsing %s again", target, exc, source)
        return None


# ---- validation ---------------------------------------------------------------------------------
def _check_header(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise DataFormatError(path, None, "no ratings in the file (empty, or only a header)")
    for bom, name in BOMS.items():
        if head.startswith(bom):
            raise DataFormatError(path, 1, f"unknown encoding: {name} byte-order mark; expected utf-8")
    first = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, 1, f"unknown encoding: byte 0x{first[exc.start]:02x} is not valid utf-8") from None
    found = next(csv.reader([text]), [])
    if tuple(f.strip() for f in found) != HEADER:
        raise DataFormatError(path, 1, f"header is {','.join(found)!r}, expected {','.join(HEADER)!r}")


def _drop_trailing_blank_rows(path: Path, table):
    """Blank lines parse as all-null rows: fine at the end of the file, an error anywhere else
    (as is an empty field)."""
    import pyarrow.compute as pc

    if not any(table.column(n).null_count for n in COLUMNS):
        return table
    any_null = pc.is_null(table.column(COLUMNS[0]))
    all_null = any_null
    for name in COLUMNS[1:]:
        null = pc.is_null(table.column(name))
        any_null, all_null = pc.or_(any_null, null), pc.and_(all_null, null)
    any_null, all_null = any_null.to_numpy(zero_copy_only=False), all_null.to_numpy(zero_copy_only=False)
    first = int(np.flatnonzero(any_null)[0])
    if all_null[first:].all():
        return table.slice(0, first)
    line = first + 2
    raise DataFormatError(path, line, _line_problem(read_line(path, line)) or "empty field")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _validate(path: Path, table, frame: pd.DataFrame, scale, step) -> None:
    """The value checks of recsys.data.movielens._validate_ratings; line = row + 2.

    The clean case is decided by pyarrow aggregates over the table's ~1 MB chunks (no 25M-element
    temporaries: on this machine a fresh 100 MB array costs up to 0.5 s of page faults); only when
    a check fails does numpy find the first offending row."""
    import pyarrow.compute as pc

    low, high = scale
    rating = table.column("rating")
    scaled = pc.multiply(rating, 1.0 / step)  # float32, exact for halves
    clean = (
        pc.min(table.column("user_id")).as_py() > 0
        and pc.min(table.column("item_id")).as_py() > 0
        and pc.min(table.column("timestamp")).as_py() >= 0
        and not pc.any(pc.invert(pc.is_finite(rating))).as_py()
        and low <= pc.min(rating).as_py() <= pc.max(rating).as_py() <= high
        and not pc.any(pc.greater(pc.abs(pc.subtract(scaled, pc.round(scaled))), 1e-6)).as_py()
    )
    bad_rows = []
    if not clean:  # find the first offending row with numpy (error path only)
        values = frame["rating"].to_numpy()
        with np.errstate(invalid="ignore"):
            off_grid = np.abs(values / step - np.round(values / step)) > 1e-6
            masks = [
                frame["user_id"].to_numpy() <= 0,
                frame["item_id"].to_numpy() <= 0,
                ~np.isfinite(values) | (values < low) | (values > high) | off_grid,
                frame["timestamp"].to_numpy() < 0,
            ]
        bad_rows = [_first(mask) for mask in masks if mask.any()]
    if bad_rows:
        row = min(bad_rows)
        user, item, value, stamp = (frame[name].iat[row] for name in COLUMNS)
        if user <= 0 or item <= 0:
            name = "user_id" if user <= 0 else "item_id"
            raise DataFormatError(path, row + 2, f"{name} {user if user <= 0 else item} is not positive")
        if not math.isfinite(value):
            raise DataFormatError(path, row + 2, _line_problem(read_line(path, row + 2)) or "rating is not a number")
        if value < low or value > high or abs(value / step - round(value / step)) > 1e-6:
            raise DataFormatError(
                path, row + 2, f"rating {value:g} outside the scale {low:g}..{high:g} in steps of {step:g}"
            )
        raise DataFormatError(path, row + 2, f"timestamp {stamp} is negative")
    _check_duplicates(path, frame["user_id"].to_numpy(), frame["item_id"].to_numpy())


def _check_duplicates(path: Path, users: np.ndarray, items: np.ndarray) -> None:
    """Sorting the (user, item) keys is fast when the file is sorted by user (MovieLens files are):
    0.4 s for 25M rows, against 10 s for a hash-based pandas.duplicated."""
    key = users.astype(np.int64) << 31  # one new array, then in place (ids fit 31 bits)
    key |= items
    if (key[1:] > key[:-1]).all():  # strictly increasing (sorted by user then movie, like MovieLens)
        return
    key.sort()
    if not (key[1:] == key[:-1]).any():
        return
    key = (users.astype(np.int64) << 31) | items
    order = np.argsort(key, kind="stable")  # only when there is a duplicate: find its first line
    ordered = key[order]
    repeat = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
    rows = order[repeat]
    row = int(rows.min())
    first_row = int(np.flatnonzero(key == key[row])[0])
    raise DataFormatError(
        path,
        row + 2,
        f"duplicate rating of item {items[row]} by user {users[row]} (first given on line {first_row + 2})",
    )


# ---- locating a bad line ------------------------------------------------------------------------
def _line_problem(text: str) -> str | None:
    """What is wrong with one data line of ratings.csv (the wording of the text-path loaders)."""
    if not text.strip():
        return "empty line"
    fields = next(csv.reader([text]), [])
    if len(fields) != len(COLUMNS):
        return f"malformed line: expected {len(COLUMNS)} fields separated by ',', found {len(fields)}"
    for name, value in zip(COLUMNS, fields, strict=True):
        if name in INTEGER_COLUMNS:
            if not _INTEGER.fullmatch(value):
                return f"{name} {value!r} is not an integer"
            if name != "timestamp" and abs(int(value)) > INT32_MAX:
                return f"{name} {value!r} is too large (more than {INT32_MAX})"
            if abs(int(value)) >= 2**63:
                return f"{name} {value!r} does not fit a 64-bit integer"
        else:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                return f"{name} {value!r} is not a number"
    return None


def read_line(path: str | os.PathLike, line: int) -> str:
    """Line `line` (1-based) of a file, without its line break (decoded leniently)."""
    seen = 0
    with open(path, "rb") as handle:
        carry = b""
        while True:
            block = handle.read(SCAN_BLOCK)
            if not block:
                return carry.decode("utf-8", "replace").rstrip("\r") if seen == line - 1 else ""
            block = carry + block
            breaks = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
            if seen + len(breaks) >= line:
                end = breaks[line - seen - 1]
                start = breaks[line - seen - 2] + 1 if line - seen >= 2 else 0
                return block[start:end].decode("utf-8", "replace").rstrip("\r")
            seen += len(breaks)
            carry = block[breaks[-1] + 1 :] if len(breaks) else block


def locate_bad_line(path: str | os.PathLike, first_line: int = 2) -> tuple[int, str] | None:
    """(line, problem) of the first line of ratings.csv that pyarrow cannot parse as numbers, or
    None. Lines from `first_line` on are data lines. One pass over the file, 16 MB at a time."""
    path = Path(path)
    with open(path, "rb") as handle:
        handle.readline()  # the header was checked separately
        number = first_line  # line number of the first line in `block`
        pending_blank: int | None = None  # a blank line: an error only if data follows it
        carry = b""
        while True:
            chunk = handle.read(SCAN_BLOCK)
            block = carry + chunk
            if not chunk:
                if not block:
                    return None
                block += b"\n"  # the last line has no line break
            cut = block.rfind(b"\n") + 1
            block, carry = block[:cut], block[cut:]
            if block:
                found, number, pending_blank = _scan_block(path, block, number, pending_blank)
                if found is not None:
                    return found
            if not chunk:
                return None


def _scan_block(path: Path, block: bytes, number: int, pending_blank: int | None):
    """Check whole lines of `block` (the first is line `number`). Returns (found, next number,
    pending blank line)."""
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)  # each line ends at a "\n"
    starts = np.r_[0, ends[:-1] + 1]
    n_lines = len(ends)
    commas = np.r_[0, np.cumsum(data == 44, dtype=np.int32)]
    spaces = (data == 32) | (data == 9) | (data == 13) | (data == 10)
    solid = np.r_[0, np.cumsum(~spaces, dtype=np.int32)]
    blank = (solid[ends] - solid[starts]) == 0
    n_commas = commas[ends] - commas[starts]
    quoted = np.zeros(n_lines, dtype=bool)
    quote_at = np.flatnonzero(data == 34)
    if len(quote_at):  # commas inside quotes do not count: let the csv module count those lines
        quoted[np.unique(np.searchsorted(ends, quote_at))] = True
        for k in np.flatnonzero(quoted):
            fields = next(csv.reader([block[starts[k] : ends[k]].decode("utf-8", "replace")]), [])
            n_commas[k] = len(fields) - 1
    suspects = []
    solid_lines = np.flatnonzero(~blank)
    if pending_blank is not None and len(solid_lines):
        return (pending_blank, "empty line"), number, None
    blank_lines = np.flatnonzero(blank)
    first_blank = int(blank_lines[0]) if len(blank_lines) else n_lines
    if first_blank < n_lines:
        if len(solid_lines) and solid_lines[-1] > first_blank:
            suspects.append(first_blank)
        elif pending_blank is None:
            pending_blank = number + first_blank  # only blank lines follow, so far
    # a blank line holding spaces or tabs breaks pyarrow even at the end of the file
    length = ends - starts - (data[np.maximum(ends - 1, 0)] == 13)
    spacey = np.flatnonzero(blank & (length > 0))
    if len(spacey):
        suspects.append(int(spacey[0]))
    wrong = np.flatnonzero(~blank & (n_commas != len(COLUMNS) - 1))
    if len(wrong):
        suspects.append(int(wrong[0]))
    odd_bytes = np.flatnonzero((data >= 0x80) | (data == 0))
    if len(odd_bytes):
        suspects.append(int(np.searchsorted(ends, odd_bytes[0])))
    clean = min([*suspects, first_blank])  # lines before it are well-formed and not blank
    if clean > 0:
        bad_field = _first_bad_field(block[: starts[clean] if clean < n_lines else len(block)])
        if bad_field is not None:
            suspects.append(bad_field)
    if not suspects:
        return None, number + n_lines, pending_blank
    k = min(suspects)
    raw = block[starts[k] : ends[k]]
    line = number + k
    if b"\x00" in raw:
        return (line, "unknown encoding: NUL byte (UTF-16/32 or binary?); expected utf-8"), 0, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (line, f"unknown encoding: byte 0x{raw[exc.start]:02x} is not valid utf-8"), 0, None
    return (line, _line_problem(text.rstrip("\r")) or f"cannot parse {text!r}"), 0, None


def _first_bad_field(block: bytes) -> int | None:
    """Row index (in `block`, whole well-formed lines) of the first field that is not a number."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    try:
        table = pcsv.read_csv(
            io.BytesIO(block),
            read_options=pcsv.ReadOptions(column_names=list(COLUMNS)),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in COLUMNS}),
        )
    except pa.ArrowException:  # e.g. odd quoting: check the lines one by one (slow, but rare)
        lines = block.decode("utf-8", "replace").split("\n")
        return next((k for k, text in enumerate(lines) if text and _line_problem(text.rstrip("\r"))), None)
    first = None
    for name in COLUMNS:
        pattern = _INTEGER_ARROW if name in INTEGER_COLUMNS else _FLOAT_ARROW
        ok = pc.match_substring_regex(table.column(name), pattern).to_numpy(zero_copy_only=False)
        if name in ("user_id", "item_id"):  # parsed as int32: more than 2**31 - 1 fails
            digits = pc.utf8_ltrim(pc.utf8_trim_whitespace(table.column(name)), characters="+-0")
            length = pc.utf8_length(digits)
            too_large = pc.or_(
                pc.greater(length, 10), pc.and_(pc.equal(length, 10), pc.greater(digits, str(INT32_MAX)))
            )
            ok &= ~too_large.to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~ok)
        if len(bad) and (first is None or bad[0] < first):
            first = int(bad[0])
    return first
