"""The synthetic demo dataset: deterministic for a seed, cached, labelled, with decodable media."""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pandas as pd
import pytest

from recsys.data import demo as demo_module
from recsys.data import load_dataset
from recsys.data.demo import GENRES, build_demo, load_demo
from recsys.data.posters import open_image

SMALL = {"n_movies": 40, "n_users": 60, "n_trailers": 2}


def _poster_digests(dataset) -> list[str]:
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in dataset.posters]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    # Module fixtures run before conftest's function-scoped isolated cache: point at the same dir.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECSYS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "recsys-cache"))
        dataset = load_dataset("demo", seed=0)  # the default size, built once per session
    assert str(dataset.source_dir).startswith(str(tmp_path_factory.getbasetemp()))
    return dataset


def test_demo_default_shape_and_labels(demo):
    assert demo.synthetic and demo.name == "demo"
    assert demo.n_items == 300 and demo.n_users == 400
    assert 20_000 <= demo.n_ratings <= 32_000
    assert set(np.unique(demo.ratings["rating"])) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert [str(t) for t in demo.ratings.dtypes] == ["int64", "int64", "float32", "int64"]
    assert not demo.ratings.duplicated(["user_id", "item_id"]).any()
    assert list(demo.genres.columns) == GENRES and (demo.genres.sum(axis=1) >= 1).all()
    assert str(demo.items["year"].dtype) == "Int64" and str(demo.users["age"].dtype) == "Int64"
    assert demo.summary()["users_with_age_gender"] == 400
    assert demo.posters.notna().all() and demo.trailers.notna().sum() == 120
    shares = demo.notes["variance_share"]
    assert 0.1 <= shares["visual"] <= 0.4  # part of the taste is visual, as documented


def test_demo_media_decode(demo):
    image = open_image(demo.posters.iloc[0])
    assert image.size == (96, 144)
    with av.open(demo.trailers.dropna().iloc[0]) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == demo_module.TRAILER_FPS * demo_module.TRAILER_SECONDS and frames[0].shape == (96, 64, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # it moves


def test_demo_poster_pixels_carry_genre(demo):
    mean_rgb = np.array([np.asarray(open_image(p)).reshape(-1, 3).mean(axis=0) for p in demo.posters])
    main = demo.items["main_genre"]
    red = pd.Series(mean_rgb[:, 0] - mean_rgb[:, 2], index=demo.items.index)
    # Action posters (red) are redder than Sci-Fi posters (teal) on average
    assert red[main == "Action"].mean() > red[main == "Sci-Fi"].mean() + 20


def test_demo_deterministic_for_a_seed(tmp_path):
    first = build_demo(tmp_path / "a", seed=7, **SMALL)
    second = build_demo(tmp_path / "b", seed=7, **SMALL)
    other = build_demo(tmp_path / "c", seed=8, **SMALL)
    from recsys.data.demo import _read_demo

    a, b, c = (_read_demo(f) for f in (first, second, other))
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert _poster_digests(a) == _poster_digests(b)
    assert not a.ratings.equals(c.ratings)
    assert _poster_digests(a) != _poster_digests(c)


def test_demo_is_cached(tmp_path):
    first = load_demo(seed=3, root=tmp_path, **SMALL)
    stamp = (first.source_dir / "ratings.csv").stat().st_mtime_ns
    again = load_demo(seed=3, root=tmp_path, **SMALL)
    assert (again.source_dir / "ratings.csv").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first.ratings, again.ratings)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".building")]


def test_concurrent_first_use_builds_the_demo_once(tmp_path, monkeypatch):
    """Two sessions asking for the demo on a cold cache: one builds it, the other waits and reads it."""
    from concurrent.futures import ThreadPoolExecutor

    builds = []
    real_build = demo_module.build_demo

    def counted_build(*args, **kwargs):
        builds.append(args[0])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(demo_module, "build_demo", counted_build)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: load_demo(seed=5, root=tmp_path, **SMALL), range(2)))
    assert len(builds) == 1
    pd.testing.assert_frame_equal(results[0].ratings, results[1].ratings)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".building", ".tmp"))]
