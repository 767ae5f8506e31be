"""Strict reading of MovieLens text tables: one file to a frame of strings, then typed columns.

What lives here is the layer under the loaders of :mod:`recsys.data.movielens`: how a file is laid
out (:class:`Table`), decoding its bytes, splitting it into fields, and turning a column of strings
into integers or floats. Every problem is a :class:`~recsys.data.errors.DataFormatError` naming the
file and the 1-based line: a malformed line (wrong field count, an empty line, an unclosed quote),
a wrong header, a non-number where a number belongs, a number beyond int64, or bytes that are not
in the file's encoding.

Encodings: a file that is valid UTF-8 is read as UTF-8. ML-100K ``u.item`` and ML-1M
``movies.dat`` are latin-1 in the GroupLens archives, so for tables that allow it (only those two)
a file that is not UTF-8 is read as latin-1, with a logged note; one that mixes both (valid UTF-8
sequences *and* bytes that are not UTF-8: a UTF-8 file with a stray latin-1 byte) is an error at
the first invalid byte rather than garbled titles. Control characters (C0 other than tab and line
breaks, DEL, the C1 range that latin-1 maps 0x80-0x9F to) and U+FFFD (a replacement character left
by an earlier lossy conversion) are errors with their line: no MovieLens file contains them. Files
with NUL bytes or a UTF-16/32 byte-order mark are rejected as an unknown encoding.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.errors import DataFormatError, DatasetNotFound

INTEGER = r"\s*[+-]?\d+\s*"
#: byte-order marks of the encodings no MovieLens file uses
BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16", b"\x00\x00\xfe\xff": "UTF-32"}
# a well-formed multi-byte UTF-8 sequence: latin-1 text virtually never contains one
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
# characters no MovieLens text contains: C0 controls but tab/line breaks, DEL, C1 controls, U+FFFD
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_INT64_MAX = "9223372036854775807"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    """How one MovieLens file is laid out."""

    sep: str
    columns: tuple[str, ...]
    header: tuple[str, ...] | None = None  # the expected first line of a CSV file
    encodings: tuple[str, ...] = ("utf-8",)
    quoted: bool = False  # CSV quoting (movies.csv titles contain commas)

    @property
    def first_data_line(self) -> int:
        return 2 if self.header else 1


def require_file(path: Path, dataset: str) -> Path:
    if not path.is_file():
        present = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else []
        raise DatasetNotFound(
            f"{dataset}: required file {path.name} is missing in {path.parent}"
            + (f" (the folder has: {', '.join(present)})" if present else " (the folder does not exist)")
            + f". Get the complete archive with `python -m recsys download {dataset}`."
        )
    return path


def _line_of_offset(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def decode_text(path: Path, raw: bytes, encodings: tuple[str, ...]) -> str:
    for bom, name in BOMS.items():
        if raw.startswith(bom):
            raise DataFormatError(
                path, 1, f"unknown encoding: {name} byte-order mark; expected {' or '.join(encodings)}"
            )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataFormatError(
            path,
            _line_of_offset(raw, nul),
            f"unknown encoding: NUL byte (UTF-16/32 or binary?); expected {' or '.join(encodings)}",
        )
    try:
        text, encoding = raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as exc:
        where = _line_of_offset(raw, exc.start)
        if "latin-1" not in encodings:
            raise DataFormatError(
                path, where, f"unknown encoding: byte 0x{raw[exc.start]:02x} is not valid {' or '.join(encodings)}"
            ) from None
        utf8 = _UTF8_SEQUENCE.search(raw)
        if utf8 is not None:  # UTF-8 text with a stray byte of another encoding: titles would be garbled
            raise DataFormatError(
                path,
                where,
                f"mixed encodings: byte 0x{raw[exc.start]:02x} is not valid UTF-8, but line "
                f"{_line_of_offset(raw, utf8.start())} is UTF-8 ({utf8.group().decode()!r}); save the file in one encoding",
            ) from None
        text, encoding = raw.decode("latin-1"), "latin-1"
        log.info("%s is not UTF-8: read as latin-1, the encoding GroupLens uses for this file", path)
    odd = _NOT_TEXT.search(text)
    if odd is not None:
        char = odd.group()
        what = "a replacement character (U+FFFD)" if char == "\ufffd" else f"control character U+{ord(char):04X}"
        raise DataFormatError(
            path,
            text.count("\n", 0, odd.start()) + 1,
            f"{what} read as {encoding}: the file is damaged or in another encoding",
        )
    return text


def read_text_table(path: Path, table: Table) -> pd.DataFrame:
    """The file as a frame of strings, one column per field; row r is line r + first_data_line.

    Raises DataFormatError for bad encoding, a wrong header, an empty line or a wrong field count.
    Trailing blank lines at the end of the file are ignored (u.genre has one).
    """
    text = decode_text(path, path.read_bytes(), table.encodings).rstrip("\r\n\t ")
    sep = table.sep
    if len(sep) > 1:  # pandas' C parser takes one character; "::" never occurs inside a field
        text, sep = text.replace(sep, "\x1f"), "\x1f"
    lines_head = text.split("\n", 1)
    if table.header:
        found = next(csv.reader([lines_head[0].rstrip("\r")], delimiter=sep))
        if tuple(f.strip() for f in found) != table.header:
            raise DataFormatError(path, 1, f"header is {','.join(found)!r}, expected {','.join(table.header)!r}")
        text = lines_head[1] if len(lines_head) > 1 else ""
    n_expected = len(table.columns)
    if not text:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in table.columns})
    # pandas pads short lines with "", so field counts are checked on the text itself
    lines = text.split("\n")
    if table.quoted:
        # values never span lines here: an unclosed quote is an error of its own line (a reader
        # over all lines would swallow the next lines into that value)
        unclosed = np.fromiter((line.count('"') % 2 == 1 for line in lines), dtype=bool, count=len(lines))
        if unclosed.any():
            raise DataFormatError(path, first_bad(unclosed) + table.first_data_line, "malformed line: unclosed quote")
        widths = np.fromiter(
            (len(f) if any(x.strip() for x in f) else 0 for f in csv.reader(lines, delimiter=sep)),
            dtype=int,
            count=len(lines),
        )
    else:
        widths = np.fromiter(
            (line.count(sep) + 1 if line.strip() else 0 for line in lines), dtype=int, count=len(lines)
        )
    wrong = widths != n_expected
    if wrong.any():
        row = first_bad(wrong)
        problem = (
            "empty line"
            if widths[row] == 0
            else (f"malformed line: expected {n_expected} fields separated by {table.sep!r}, found {widths[row]}")
        )
        raise DataFormatError(path, row + table.first_data_line, problem)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            quoting=csv.QUOTE_MINIMAL if table.quoted else csv.QUOTE_NONE,
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if not match:
            raise DataFormatError(path, None, f"cannot parse: {exc}") from None
        line = int(match.group(2)) + table.first_data_line - 1
        raise DataFormatError(
            path,
            line,
            f"malformed line: expected {n_expected} fields separated by {table.sep!r}, found {match.group(3)}",
        ) from None
    first = table.first_data_line
    if frame.shape[1] != n_expected:
        # pandas sizes the frame by the widest early line, so find the first line of another width
        widths = frame.notna().sum(axis=1).to_numpy()
        bad = int(np.flatnonzero(widths != n_expected)[0]) if (widths != n_expected).any() else 0
        raise DataFormatError(
            path,
            bad + first,
            f"malformed line: expected {n_expected} fields separated by {table.sep!r}, found {widths[bad]}",
        )
    frame.columns = list(table.columns)
    missing = frame.isna()
    if missing.any(axis=None):
        row = int(np.flatnonzero(missing.any(axis=1).to_numpy())[0])
        found = int((~missing.iloc[row]).sum())
        problem = (
            "empty line"
            if found <= 1 and not str(frame.iloc[row, 0]).strip()
            else (f"malformed line: expected {n_expected} fields separated by {table.sep!r}, found {found}")
        )
        raise DataFormatError(path, row + first, problem)
    if frame.shape[0] and n_expected > 1:
        empty = (frame.iloc[:, 0] == "") & (frame.iloc[:, 1:] == "").all(axis=1)
        if empty.any():
            raise DataFormatError(path, int(np.flatnonzero(empty.to_numpy())[0]) + first, "empty line")
    return frame


def non_empty(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    """An empty file is an error of its own (it would otherwise surface in another file's check)."""
    if frame.empty:
        raise DataFormatError(path, None, f"no {what} in the file (empty)")
    return frame


def first_bad(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def int_column(frame: pd.DataFrame, column: str, path: Path, table: Table, allow_empty: bool = False) -> pd.Series:
    values = frame[column]
    ok = values.str.fullmatch(INTEGER)
    if allow_empty:
        ok |= values.str.strip() == ""
    if not ok.all():
        row = first_bad(~ok)
        raise DataFormatError(path, row + table.first_data_line, f"{column} {values.iloc[row]!r} is not an integer")
    digits = values.str.strip().str.lstrip("+-").str.lstrip("0")  # beyond int64: an error, not an OverflowError
    huge = (digits.str.len() > 19) | ((digits.str.len() == 19) & (digits > _INT64_MAX))
    if huge.any():
        row = first_bad(huge)
        number = values.iloc[row].strip()
        shown = number if len(number) <= 24 else f"{number[:12]}... ({len(number)} digits)"
        raise DataFormatError(path, row + table.first_data_line, f"{column} {shown} is too large (over 2^63)")
    if allow_empty:
        return pd.to_numeric(values.str.strip().replace("", None), errors="raise").astype("Int64")
    return values.astype("int64")


def float_column(frame: pd.DataFrame, column: str, path: Path, table: Table) -> pd.Series:
    numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = first_bad(bad)
        raise DataFormatError(
            path, row + table.first_data_line, f"{column} {frame[column].iloc[row]!r} is not a number"
        )
    return numbers.astype("float64")
