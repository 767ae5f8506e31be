"""Posters: the title matcher against the reference mapping, robust decoding, the TMDB downloader."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from PIL import Image

from recsys.data.errors import MediaError
from recsys.data.movielens import read_ml100k_genres, read_ml100k_items
from recsys.data.posters import (
    download_tmdb_posters,
    match_ml100k_to_ml1m,
    match_titles,
    normalise_title,
    open_image,
    poster_paths,
)


@pytest.fixture(scope="module")
def matched(shared_data_dir):
    folder = shared_data_dir / "ml-100k"
    items, _ = read_ml100k_items(folder / "u.item", read_ml100k_genres(folder / "u.genre"))
    return match_ml100k_to_ml1m(items, shared_data_dir / "ml-1m" / "movies.dat")


def test_matcher_reproduces_reference_mapping(matched, shared_data_dir):
    reference = pd.read_csv(shared_data_dir / "ml-100k" / "item_to_ml1m.csv").set_index("item_id")
    assert len(matched) == 1682
    assert matched["ml1m_movie_id"].notna().sum() >= 1660
    both = matched.join(reference[["ml1m_movie_id"]].rename(columns={"ml1m_movie_id": "reference"}))
    agree = (both["ml1m_movie_id"].astype("float") == both["reference"]) | (
        both["ml1m_movie_id"].isna() & both["reference"].isna()
    )
    # Measured: all 1,682 rows agree (1,671 matched + 11 unmatched); allow a little slack.
    assert agree.sum() >= 1675, both[~agree]
    assert (matched["match"] == "exact").sum() >= 1600


def test_normalisation_rules():
    assert normalise_title("Postino, Il") == normalise_title("Il Postino") == "postino"
    assert normalise_title("Alien³") == normalise_title("Alien 3")
    assert normalise_title("Oscar & Lucinda") == normalise_title("Oscar and Lucinda")
    assert normalise_title("Double vie de Véronique, La") == "doubleviedeveronique"
    source = pd.DataFrame(
        {"title": ["Boot, Das (1981)", "Howling, The (1981)", "Nothing Alike (1990)"]}, index=[1, 2, 3]
    )
    target = pd.DataFrame(
        {"title": ["Boat, The (Das Boot) (1981)", "Howling, The (1980)", "Something Else (1990)"]}, index=[10, 20, 30]
    )
    result = match_titles(source, target)
    assert result["target_id"].tolist()[:2] == [10, 20]
    assert result["match"].tolist()[:2] == ["normalised", "year±1"]
    assert pd.isna(result.loc[3, "target_id"]) and pd.isna(result.loc[3, "match"])


def test_open_image_png_behind_jpg_name_and_greyscale(shared_data_dir):
    image = open_image(shared_data_dir / "posters-ml1m" / "3575.jpg")  # a PNG in disguise
    assert image.mode == "RGB" and image.width > 100
    paths = poster_paths([1, 770, 3575], shared_data_dir / "posters-ml1m")
    assert paths.loc[770] is None and paths.loc[3575].endswith("3575.jpg")


def test_open_image_errors(tmp_path):
    good = io.BytesIO()
    Image.new("RGB", (40, 60), (200, 10, 10)).save(good, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (tmp_path / "html.jpg").write_bytes(b"<html>404 Not Found</html>")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("truncated.jpg", "html.jpg", "empty.jpg"):
        with pytest.raises(MediaError, match=name):
            open_image(tmp_path / name)
    with pytest.raises(MediaError, match="not found"):
        open_image(tmp_path / "absent.jpg")
    with pytest.raises(MediaError, match="no poster"):
        open_image(None)
    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(rgba)
    assert open_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white, not black


# ---- TMDB against a local fake ---------------------------------------------------------------------------
class _FakeTmdb(BaseHTTPRequestHandler):
    key = "secret-key-123"
    seen: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        type(self).seen.append(self.path)
        if self.path.startswith("/3/movie/"):
            if f"api_key={self.key}" not in self.path:
                return self._send(401, b'{"status_message": "Invalid API key"}', "application/json")
            tmdb_id = self.path.split("/")[3].split("?")[0]
            body = {
                "862": {"poster_path": "/toy.jpg"},
                "9087": {"poster_path": None},
                "500": {"poster_path": "/broken.jpg"},
            }.get(tmdb_id)
            if body is None:
                return self._send(404, b"{}", "application/json")
            return self._send(200, json.dumps(body).encode(), "application/json")
        if self.path == "/img/toy.jpg":
            buffer = io.BytesIO()
            Image.new("RGB", (30, 45), (10, 200, 10)).save(buffer, "JPEG")
            return self._send(200, buffer.getvalue(), "image/jpeg")
        if self.path == "/img/broken.jpg":
            return self._send(200, b"<html>oops</html>", "text/html")
        self._send(404, b"", "text/plain")

    def _send(self, code, body, kind):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def fake_tmdb():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeTmdb)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _FakeTmdb.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tmdb_downloader_against_fake(tmp_path, fake_tmdb, monkeypatch):
    items = pd.DataFrame(
        {"tmdb_id": pd.array([862, 9087, 500, None, 404], dtype="Int64")},
        index=pd.Index([1, 2, 3, 4, 5], name="item_id"),
    )
    monkeypatch.setenv("TMDB_API_KEY", _FakeTmdb.key)
    calls = []
    report = download_tmdb_posters(
        items,
        tmp_path / "posters",
        api_url=f"{fake_tmdb}/3",
        image_url=f"{fake_tmdb}/img",
        progress=lambda *a: calls.append(a),
    )
    status = report.set_index("item_id")["status"].to_dict()
    assert status == {1: "saved", 2: "no_poster", 3: "error", 4: "no_tmdb_id", 5: "error"}
    assert open_image(tmp_path / "posters" / "1.jpg").size == (30, 45)
    assert not (tmp_path / "posters" / "3.jpg").exists()  # an HTML page is not saved as a poster
    assert calls[-1][:2] == (5, 5)
    assert not any(_FakeTmdb.key in str(d) for d in report["detail"])
    # second run keeps what it has (resumable) and asks nothing for item 1
    _FakeTmdb.seen = []
    again = download_tmdb_posters(
        items.loc[[1]], tmp_path / "posters", api_url=f"{fake_tmdb}/3", image_url=f"{fake_tmdb}/img"
    )
    assert again["status"].tolist() == ["exists"] and _FakeTmdb.seen == []


def test_tmdb_wrong_key_and_missing_key_never_leak(tmp_path, fake_tmdb, monkeypatch):
    items = pd.DataFrame({"tmdb_id": pd.array([862], dtype="Int64")}, index=pd.Index([1], name="item_id"))
    report = download_tmdb_posters(
        items, tmp_path, api_key="wrong-key-456", api_url=f"{fake_tmdb}/3", image_url=f"{fake_tmdb}/img"
    )
    assert report["status"].tolist() == ["error"] and "401" in report["detail"].iloc[0]
    assert "wrong-key-456" not in report.to_string()
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="TMDB_API_KEY"):
        download_tmdb_posters(items, tmp_path, api_url=f"{fake_tmdb}/3")
