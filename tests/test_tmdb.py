"""TMDB posters against two local HTTP servers faking TMDB's API and another host.

Per-item failures (a 404, a numeric or path-like ``poster_path``, a body cut off, an answer that
is not JSON, an HTML page instead of an image) leave the batch going; a redirect to another host
never carries the credentials; ``recsys posters`` and the Data page reach the downloader.
"""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from PIL import Image

from recsys.cli import main
from recsys.data.posters import download_tmdb_posters, open_image

KEY = "v3-secret-key-123"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.fake-v4-token"


def _jpeg(size=(30, 45), colour=(10, 200, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


class _Recorder(BaseHTTPRequestHandler):
    """Base handler: remembers every request's path and headers."""

    requests: list

    def log_message(self, *args):
        pass

    def _send(self, code, body: bytes, kind="application/json", length: int | None = None, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def record(self):
        type(self).requests.append((self.path, dict(self.headers)))


class _OtherHost(_Recorder):
    requests: list = []

    def do_GET(self):
        self.record()
        if self.path.startswith("/img/"):
            return self._send(200, _jpeg(colour=(200, 10, 10)), "image/jpeg")
        self._send(200, json.dumps({"poster_path": "/moved.jpg"}).encode())


class _FakeTmdb(_Recorder):
    requests: list = []
    other = ""  # base URL of the other host, set by the fixture

    def authorised(self) -> bool:
        return f"api_key={KEY}" in self.path or self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def do_GET(self):
        self.record()
        if self.path.startswith("/3/movie/"):
            if not self.authorised():
                return self._send(401, b'{"status_message": "Invalid API key"}')
            tmdb_id = self.path.split("/")[3].split("?")[0]
            query = self.path.split("?", 1)[1] if "?" in self.path else ""
            if tmdb_id == "301":  # moved to another host: urllib would copy Authorization along
                return self._send(302, b"", headers={"Location": f"{self.other}/3/movie/301?{query}"})
            if tmdb_id == "302":  # moved on the same host: credentials may follow
                return self._send(302, b"", headers={"Location": f"/3/movie/862?{query}"})
            if tmdb_id == "206":  # the connection drops after 10 of 120 promised bytes
                return self._send(200, b'{"poster_p', length=120)
            bodies = {
                "862": {"poster_path": "/toy.jpg"},
                "9087": {"poster_path": None},
                "123": {"poster_path": 123},
                "666": {"poster_path": "/../../etc/passwd"},
                "777": {"poster_path": "/broken.jpg"},
                "888": ["not", "an", "object"],
            }
            if tmdb_id == "999":
                return self._send(200, b"<html>maintenance</html>", "text/html")
            if tmdb_id not in bodies:
                return self._send(404, b'{"status_message": "not found"}')
            return self._send(200, json.dumps(bodies[tmdb_id]).encode())
        if self.path == "/img/toy.jpg":
            return self._send(200, _jpeg(), "image/jpeg")
        if self.path == "/img/broken.jpg":
            return self._send(200, b"<html>oops</html>", "text/html")
        self._send(404, b"", "text/plain")


def _serve(handler, host):
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


@pytest.fixture()
def servers():
    """(TMDB base URL on 127.0.0.1, other host's base URL on localhost: another host and port)."""
    tmdb, other = _serve(_FakeTmdb, "127.0.0.1"), _serve(_OtherHost, "127.0.0.1")
    _FakeTmdb.requests, _OtherHost.requests = [], []
    _FakeTmdb.other = f"http://localhost:{other.server_address[1]}"
    yield f"http://127.0.0.1:{tmdb.server_address[1]}", _FakeTmdb.other
    for server in (tmdb, other):
        server.shutdown()
        server.server_close()


def _items(*tmdb_ids) -> pd.DataFrame:
    return pd.DataFrame(
        {"tmdb_id": pd.array(list(tmdb_ids), dtype="Int64")},
        index=pd.Index(range(1, len(tmdb_ids) + 1), name="item_id"),
    )


@pytest.mark.parametrize("credential", ["key", "token"])
def test_per_item_failures_keep_the_batch_going(tmp_path, servers, monkeypatch, credential):
    tmdb, _ = servers
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_BEARER", raising=False)
    monkeypatch.setenv("TMDB_API_KEY" if credential == "key" else "TMDB_BEARER", KEY if credential == "key" else TOKEN)
    items = _items(123, 206, 404, 666, 777, 888, 999, 9087, None, 862)
    report = download_tmdb_posters(items, tmp_path, api_url=f"{tmdb}/3", image_url=f"{tmdb}/img").set_index("item_id")
    assert report["status"].tolist() == ["error"] * 7 + ["no_poster", "no_tmdb_id", "saved"]
    detail = report["detail"]
    assert "unexpected poster_path 123" in detail[1]
    assert "cut off" in detail[2]
    assert "HTTP 404" in detail[3]
    assert "unexpected poster_path '/../../etc/passwd'" in detail[4]  # a path, not a file name: never fetched
    assert "corrupt, truncated or unsupported image" in detail[5]
    assert "list" in detail[6] and "JSON" in detail[7]
    assert open_image(tmp_path / "10.jpg").size == (30, 45)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10.jpg"]  # nothing else written, no temp files
    assert not any("etc/passwd" in path for path, _ in _FakeTmdb.requests)
    assert KEY not in report.to_string() and TOKEN not in report.to_string()


@pytest.mark.parametrize("credential", ["key", "token"])
def test_credentials_never_follow_a_redirect_to_another_host(tmp_path, servers, credential):
    tmdb, _ = servers
    secret = KEY if credential == "key" else TOKEN
    items = _items(301, 302)
    report = download_tmdb_posters(items, tmp_path, api_key=secret, api_url=f"{tmdb}/3", image_url=f"{tmdb}/img")
    # the other host got the request, without the key or the token
    assert [path.split("?")[0] for path, _ in _OtherHost.requests] == ["/3/movie/301"]
    path, headers = _OtherHost.requests[0]
    assert secret not in path and "api_key" not in path
    assert not any(name.lower() == "authorization" for name in headers)
    # the other host's answer was used (its /moved.jpg is not on the image server: HTTP 404); the
    # same-host redirect kept the credentials (the fake answers 401 without them) and succeeded
    assert report["status"].tolist() == ["error", "saved"]
    assert "HTTP 404" in report["detail"].iloc[0]


def test_refused_credentials_stop_the_batch_with_one_reason(tmp_path, servers):
    tmdb, _ = servers
    report = download_tmdb_posters(
        _items(862, 9087, 123), tmp_path, api_key="wrong-key", api_url=f"{tmdb}/3", image_url=f"{tmdb}/img"
    )
    assert report["status"].tolist() == ["error"] * 3
    assert "HTTP 401" in report["detail"].iloc[0]
    assert all(d.startswith("not tried: TMDB refused the credentials") for d in report["detail"].iloc[1:])
    assert len([p for p, _ in _FakeTmdb.requests if p.startswith("/3/movie")]) == 1
    assert "wrong-key" not in report.to_string()


def test_unreachable_tmdb_stops_after_three_tries(tmp_path):
    report = download_tmdb_posters(
        _items(1, 2, 3, 4, 5), tmp_path, api_key=KEY, api_url="http://127.0.0.1:9/3", timeout=2
    )
    assert report["detail"].str.startswith("cannot reach TMDB").sum() == 3
    assert report["detail"].iloc[3:].str.startswith("not tried: TMDB unreachable").all()


def _csv_dataset(root, tmdb_ids):
    folder = root / "ml-latest-small"
    folder.mkdir(parents=True)
    movies = ["movieId,title,genres"] + [f"{i},Movie {i} (1995),Comedy" for i in range(1, len(tmdb_ids) + 1)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    links = ["movieId,imdbId,tmdbId"] + [f"{i},{i:07d},{t if t else ''}" for i, t in enumerate(tmdb_ids, start=1)]
    (folder / "links.csv").write_text("\n".join(links) + "\n")
    ratings = ["userId,movieId,rating,timestamp"] + [f"1,{i},4.0,1" for i in range(1, len(tmdb_ids) + 1)]
    (folder / "ratings.csv").write_text("\n".join(ratings) + "\n")


def test_cli_posters_command(tmp_path, servers, monkeypatch, capsys):
    tmdb, _ = servers
    _csv_dataset(tmp_path, [862, 404, None, 123])
    monkeypatch.setenv("TMDB_BEARER", TOKEN)
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    args = ["posters", "--dataset", "ml-latest-small", "--source", "tmdb", "--data-dir", str(tmp_path)]
    args += ["--api-url", f"{tmdb}/3", "--image-url", f"{tmdb}/img"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1].startswith("saved=1 exists=0 no_tmdb_id=1 no_poster=0 error=2 folder=")
    assert "warning: item 2: HTTP 404" in err and "warning: item 4: unexpected poster_path 123" in err
    assert TOKEN not in out + err
    from recsys.data import load_dataset

    dataset = load_dataset("ml-latest-small", tmp_path)
    assert dataset.posters.notna().tolist() == [True, False, False, False]  # found by the registry
    assert main(args) == 0  # a second run keeps the poster it has
    assert capsys.readouterr().out.strip().startswith("saved=0 exists=1")
    # refused credentials: the batch stops and the command says why, in one line
    monkeypatch.setenv("TMDB_BEARER", "eyJwrong")
    assert main([*args, "--overwrite"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: TMDB refused the credentials")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "ml-100k"], "ml-100k has no TMDB ids"),
        (["--dataset", "ml-latest-small"], "not found"),
        (["--dataset", "ml-latest-small", "--limit", "0"], None),
    ],
)
def test_cli_posters_refusals_are_one_line(tmp_path, monkeypatch, capsys, shared_data_dir, argv, message):
    monkeypatch.setenv("TMDB_API_KEY", KEY)
    data_dir = shared_data_dir if "ml-100k" in argv else tmp_path
    if message is None:  # argparse refuses the number before anything runs
        with pytest.raises(SystemExit) as stop:
            main(["posters", *argv, "--data-dir", str(data_dir)])
        assert stop.value.code == 2 and "not a positive integer" in capsys.readouterr().err
        return
    assert main(["posters", *argv, "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_cli_posters_without_credentials(tmp_path, monkeypatch, capsys):
    _csv_dataset(tmp_path, [862])
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_BEARER", raising=False)
    assert main(["posters", "--dataset", "ml-latest-small", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "TMDB_API_KEY" in err and "TMDB_BEARER" in err and "Traceback" not in err


def test_data_page_fetches_tmdb_posters_with_progress(tmp_path, servers, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys import ui
    from recsys.config import PROJECT_ROOT

    tmdb, _ = servers
    _csv_dataset(tmp_path, [862, 404, None])
    monkeypatch.setenv("RECSYS_TMDB_API_URL", f"{tmdb}/3")
    monkeypatch.setenv("RECSYS_TMDB_IMAGE_URL", f"{tmdb}/img")
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_BEARER", raising=False)
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    app.session_state[ui.KEY_DATA_DIR] = str(tmp_path)
    app.session_state[ui.KEY_DATASET] = "ml-latest-small"
    app.run()
    app.switch_page("pages/data.py").run()
    assert not app.exception, app.exception
    assert any("Posters from TMDB (2 movies" in e.label for e in app.expander)
    app.button(key="data_tmdb_fetch").click().run()  # no credentials anywhere: one message
    assert not app.exception
    assert any("TMDB_API_KEY" in e.value and "TMDB_BEARER" in e.value for e in app.error)
    app.text_input(key="data_tmdb_key").set_value(KEY).run()
    app.button(key="data_tmdb_fetch").click().run()
    assert not app.exception, app.exception
    assert [s.value for s in app.success] == ["1 saved, 1 error"]
    assert (tmp_path / "posters" / "ml-latest-small" / "1.jpg").is_file()
    failures = app.dataframe[-1].value
    assert failures["item_id"].tolist() == [2] and "HTTP 404" in failures["detail"].iloc[0]
    assert KEY not in str([e.value for e in [*app.error, *app.success, *app.markdown]])
