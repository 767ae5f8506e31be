"""The GroupLens downloader against a local HTTP server (127.0.0.1 only): checksum, resume, extraction."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_data_movielens import write_ml100k

from recsys.data import load_dataset
from recsys.data.download import (
    ChecksumMismatch,
    DownloadError,
    download_dataset,
    download_file,
    extract_archive,
    parse_checksum,
)


@pytest.fixture(scope="module")
def ml100k_zip(tmp_path_factory) -> bytes:
    """A small but valid ml-100k.zip (generated files, top-level folder ml-100k/)."""
    folder = write_ml100k(tmp_path_factory.mktemp("zip") / "ml-100k")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:  # stored: big enough to cut
        for path in sorted(folder.iterdir()):
            bundle.write(path, f"ml-100k/{path.name}")
        bundle.writestr("ml-100k/padding.bin", bytes(range(256)) * 64)
    return buffer.getvalue()


class _Archive(BaseHTTPRequestHandler):
    """Serves `payload` with Range support; the first `drop_first` responses stop after `cut` bytes."""

    payload = b""
    cut = 0
    drop_first = 0
    honour_range = True
    requests: list[str | None] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = type(self)
        cls.requests.append(self.headers.get("Range"))
        if not self.path.endswith(".zip"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and cls.honour_range:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(cls.payload) - 1}/{len(cls.payload)}")
        else:
            self.send_response(200)
        body = cls.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cls.drop_first > 0:
            cls.drop_first -= 1
            self.wfile.write(body[: cls.cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # the network drops mid-transfer
            return
        self.wfile.write(body)


@pytest.fixture()
def server(ml100k_zip):
    _Archive.payload, _Archive.cut, _Archive.drop_first = ml100k_zip, 5000, 0
    _Archive.honour_range, _Archive.requests = True, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Archive)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def test_download_verify_extract_and_load(tmp_path, server, ml100k_zip):
    calls = []
    folder = download_dataset(
        "ml-100k", tmp_path, url=f"{server}/ml-100k.zip", checksum=_md5(ml100k_zip), progress=lambda *a: calls.append(a)
    )
    assert folder == tmp_path / "ml-100k" and (folder / "u.data").is_file()
    assert load_dataset("ml-100k", tmp_path).n_ratings == 4
    assert not list(tmp_path.glob(".downloads/*"))  # archive removed, no .part left
    assert not [p for p in tmp_path.iterdir() if ".extracting" in p.name]
    done, total, _ = [c for c in calls if c[2].startswith("downloading")][-1]
    assert done == total == len(ml100k_zip)
    # present -> used as is, no request
    _Archive.requests = []
    assert download_dataset("ml-100k", tmp_path, url=f"{server}/ml-100k.zip") == folder
    assert _Archive.requests == []


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path, server):
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumMismatch, match="sha256 is .* expected 0000"):
        download_dataset("ml-100k", tmp_path, url=f"{server}/ml-100k.zip", checksum=wrong)
    assert not (tmp_path / "ml-100k").exists()
    assert not list((tmp_path / ".downloads").iterdir())


def test_interrupted_download_resumes_within_one_call(tmp_path, server, ml100k_zip):
    _Archive.drop_first = 2
    path = download_file(f"{server}/ml-100k.zip", tmp_path / "a.zip", checksum=_md5(ml100k_zip), retries=3)
    assert path.read_bytes() == ml100k_zip
    assert _Archive.requests == [None, "bytes=5000-", "bytes=10000-"]


def test_interrupted_download_resumes_on_next_call(tmp_path, server, ml100k_zip):
    _Archive.drop_first = 1
    with pytest.raises(DownloadError, match=r"interrupted.*5000 bytes kept.*run again to resume"):
        download_file(f"{server}/ml-100k.zip", tmp_path / "a.zip", checksum=_md5(ml100k_zip), retries=0)
    assert (tmp_path / "a.zip.part").stat().st_size == 5000 and not (tmp_path / "a.zip").exists()
    download_file(f"{server}/ml-100k.zip", tmp_path / "a.zip", checksum=_md5(ml100k_zip), retries=0)
    assert (tmp_path / "a.zip").read_bytes() == ml100k_zip
    assert _Archive.requests[-1] == "bytes=5000-"


def test_server_without_range_support_restarts_cleanly(tmp_path, server, ml100k_zip):
    (tmp_path / "a.zip.part").write_bytes(b"garbage from an older attempt")
    _Archive.honour_range = False
    download_file(f"{server}/ml-100k.zip", tmp_path / "a.zip", checksum=_md5(ml100k_zip))
    assert (tmp_path / "a.zip").read_bytes() == ml100k_zip


def test_offline_and_http_errors_are_clear(tmp_path, server):
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match=r"cannot download .*offline.*unzip it yourself into"):
        download_dataset("ml-100k", tmp_path, url=f"http://127.0.0.1:{port}/ml-100k.zip", retries=0)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(f"{server}/missing.txt", tmp_path / "x")


def test_extraction_is_atomic_and_keeps_an_old_folder(tmp_path, ml100k_zip):
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(ml100k_zip)
    data = tmp_path / "data"
    (data / "ml-100k").mkdir(parents=True)
    (data / "ml-100k" / "notes.txt").write_text("mine")
    target = extract_archive(archive, data, "ml-100k")
    assert (target / "u.data").is_file()
    aside = [p for p in data.iterdir() if p.name.startswith("ml-100k.replaced-")]
    assert len(aside) == 1 and (aside[0] / "notes.txt").read_text() == "mine"
    (tmp_path / "bad.zip").write_bytes(ml100k_zip[:100])
    with pytest.raises(DownloadError, match="not a valid zip"):
        extract_archive(tmp_path / "bad.zip", data, "ml-1m")
    assert not (data / "ml-1m").exists()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../escape.txt", "x")
    with pytest.raises(DownloadError, match="unsafe path"):
        extract_archive(evil, data, "ml-1m")
    assert not (tmp_path / "escape.txt").exists()


def test_parse_checksum():
    assert parse_checksum("MD5:ABCDEF") == ("md5", "abcdef")
    assert parse_checksum("a" * 64) == ("sha256", "a" * 64)
    with pytest.raises(ValueError, match="unsupported checksum"):
        parse_checksum("crc32:1234")


def test_two_downloads_of_one_dataset_at_once_fetch_it_once(tmp_path, server, ml100k_zip):
    """Two processes (here threads) on a cold data directory: one downloads, the other waits for it
    instead of appending to the same .part file, and both get the dataset."""
    from concurrent.futures import ThreadPoolExecutor

    def fetch(_):
        return download_dataset("ml-100k", tmp_path, url=f"{server}/ml-100k.zip", checksum=_md5(ml100k_zip))

    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(fetch, range(2)))
    assert folders[0] == folders[1] == tmp_path / "ml-100k"
    assert _Archive.requests == [None]  # one request, from the start
    assert load_dataset("ml-100k", tmp_path).n_ratings > 0
