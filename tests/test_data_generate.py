"""The MovieLens-shaped generator: determinism, structure, both sampling paths, loaders and CLI."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pandas as pd
import pytest

from recsys.cli import main
from recsys.data.generate import (
    GENERATED_MARKER,
    GENRES,
    NO_GENRES,
    SHAPES,
    Model,
    Shape,
    _Generator,
    generate_movielens,
    read_marker,
    shape_from_args,
)
from recsys.data.movielens import load_movielens_csv
from recsys.data.registry import available_datasets, load_dataset
from recsys.errors import InvalidParameter, StorageError

SMALL = Shape("custom", 2000, 1500, 200_000)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = generate_movielens(tmp_path_factory.mktemp("gen") / "ml-25m", SMALL, seed=3)
    ratings = pd.read_csv(folder / "ratings.csv")
    return folder, ratings


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    shape = Shape("custom", 300, 400, 15_000)
    a = generate_movielens(tmp_path / "a", shape, seed=7)
    b = generate_movielens(tmp_path / "b", shape, seed=7)
    c = generate_movielens(tmp_path / "c", shape, seed=8)
    for name in ("ratings.csv", "movies.csv", "links.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "ratings.csv").read_bytes() != (c / "ratings.csv").read_bytes()
    assert not list(tmp_path.glob(".*building*"))  # the temporary folders are gone


def test_sizes_ids_and_csv_layout(generated):
    folder, ratings = generated
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(ratings) == SMALL.n_ratings
    assert ratings["userId"].nunique() == SMALL.n_users and ratings["userId"].min() == 1
    assert ratings["userId"].is_monotonic_increasing  # sorted by user
    assert not ratings.duplicated(["userId", "movieId"]).any()
    with open(folder / "movies.csv", encoding="utf-8", newline="") as handle:
        movies = list(csv.reader(handle))
    assert movies[0] == ["movieId", "title", "genres"] and len(movies) == SMALL.n_movies + 1
    ids = np.array([int(row[0]) for row in movies[1:]])
    assert (np.diff(ids) > 0).all() and ids.max() > SMALL.n_movies  # sorted, with gaps like MovieLens
    assert set(ratings["movieId"]) <= set(ids)
    assert all(re.fullmatch(r".+ \(\d{4}\)", row[1]) for row in movies[1:])
    assert any("," in row[1] for row in movies[1:])  # "Harbor, The (1995)": needs CSV quoting
    text = (folder / "movies.csv").read_text(encoding="utf-8")
    assert re.search(r'\n\d+,"[^"\n]*, The \(\d{4}\)",', text)
    genres = {g for row in movies[1:] for g in row[2].split("|")}
    assert genres <= set(GENRES) | {NO_GENRES} and NO_GENRES in genres and len(genres) > 15
    links = pd.read_csv(folder / "links.csv", dtype=str, keep_default_na=False)
    assert list(links.columns) == ["movieId", "imdbId", "tmdbId"] and len(links) == SMALL.n_movies
    assert links["imdbId"].str.fullmatch(r"\d{7}").all()


def test_power_law_popularity(generated):
    _, ratings = generated
    counts = np.sort(ratings["movieId"].value_counts().to_numpy())[::-1]
    top_share = counts[: SMALL.n_movies // 100].sum() / len(ratings)
    assert top_share > 0.08  # the top 1 % of movies get over 8x their uniform share (measured 14 %)
    x = np.sort(counts).astype(float)
    gini = (2 * np.arange(1, len(x) + 1) - len(x) - 1) @ x / (len(x) * x.sum())
    assert gini > 0.6  # measured 0.71 here; 0.946 at ML-25M shape (real ML-25M: 0.942)


def test_user_activity_is_log_normal_with_minimum_20(generated):
    _, ratings = generated
    activity = ratings["userId"].value_counts()
    assert activity.min() == 20 and activity.max() <= SMALL.n_movies // 2
    assert activity.max() > 8 * activity.median()  # a long right tail
    spread = np.log(activity - 19).std()
    assert 1.0 < spread < 1.8  # log-normal excess over 20 with sigma 1.55, truncated at the cap


def test_ratings_on_the_half_star_grid_and_realistic(generated):
    _, ratings = generated
    values = ratings["rating"].to_numpy()
    assert set(np.unique(values * 2)) <= set(range(1, 11))
    assert (values.min(), values.max()) == (0.5, 5.0)
    half = (values * 2) % 2 == 1
    assert 0.1 < half.mean() < 0.45  # whole stars before 2003 and from some users
    assert 3.3 < values.mean() < 3.8 and 0.85 < values.std() < 1.2  # ML-25M: 3.53 and 1.06
    early = ratings["timestamp"].to_numpy() < 1_045_526_400
    assert early.any() and not half[early].any()  # no half stars before MovieLens had them


def test_timestamps_increase_per_user_inside_the_movielens_period(generated):
    _, ratings = generated
    stamps = ratings["timestamp"].to_numpy()
    same_user = np.diff(ratings["userId"].to_numpy()) == 0
    assert (np.diff(stamps)[same_user] > 0).all()
    shape = SHAPES["ml-25m"]
    assert stamps.min() >= shape.first_timestamp and stamps.max() <= shape.last_timestamp
    years = pd.to_datetime(stamps, unit="s").year
    assert years.min() <= 1998 and years.max() >= 2017


def test_taste_shapes_ratings_and_choices(generated):
    """The latent model is learnable: a user's mean rating on one half of their movies predicts the
    other half (user bias), and popular movies are rated higher (item bias tied to popularity)."""
    _, ratings = generated
    odd = ratings.groupby("userId").cumcount() % 2 == 1
    means = ratings.groupby([ratings["userId"], odd])["rating"].mean().unstack()
    assert means[True].corr(means[False]) > 0.5
    by_movie = ratings.groupby("movieId")["rating"].agg(["mean", "size"])
    assert by_movie["mean"].rank().corr(by_movie["size"].rank()) > 0.1  # Spearman


def test_light_and_heavy_sampling_draw_the_same_law():
    """The two samplers without replacement (thinned i.i.d. draws + dedup, and Gumbel-top-k) must
    give one user the same inclusion probabilities."""
    generator = _Generator(Shape("custom", 50, 300, 3000), Model(popularity_offset=2000), seed=1)
    rng = np.random.default_rng(0)
    repeats, need = 1500, 40
    user = np.full(repeats, 5)
    counts = []
    for draw in (generator._draw_light, generator._draw_heavy):
        who, rank, movies, _ = draw(rng, user, np.full(repeats, need))
        assert len(movies) == repeats * need
        pairs = who * 1000 + movies
        assert len(np.unique(pairs)) == len(pairs)  # without replacement
        assert (np.bincount(who) == need).all() and rank.max() == need - 1
        counts.append(np.bincount(movies, minlength=300) / repeats)
    light, heavy = counts
    assert np.abs(light - heavy).max() < 0.06  # binomial sd at p=0.5 over 1,500 users: 0.013
    assert np.corrcoef(light, heavy)[0, 1] > 0.99


def test_loads_with_the_csv_family_loader_as_synthetic(generated):
    folder, ratings = generated
    dataset = load_movielens_csv(folder, "ml-25m")
    assert dataset.synthetic and dataset.notes["generated"]["seed"] == 3
    assert dataset.n_ratings == SMALL.n_ratings and dataset.n_users == SMALL.n_users
    assert dataset.n_items == SMALL.n_movies and dataset.rating_scale == (0.5, 5.0)
    np.testing.assert_array_equal(dataset.ratings["rating"].to_numpy(), ratings["rating"].to_numpy("float32"))
    assert read_marker(folder)["shape"]["n_ratings"] == SMALL.n_ratings


def test_registry_lists_and_loads_a_generated_folder_as_synthetic(tmp_path):
    generate_movielens(tmp_path / "ml-20m", Shape("custom", 100, 200, 4000), seed=0)
    listing = available_datasets(tmp_path).set_index("name")
    assert listing.loc["ml-20m", "present"] and listing.loc["ml-20m", "synthetic"]
    assert not listing.loc["ml-25m", "present"] and not listing.loc["ml-25m", "synthetic"]
    dataset = load_dataset("ml-20m", tmp_path)
    assert dataset.synthetic and dataset.n_ratings == 4000


def test_presets_and_refused_shapes():
    assert shape_from_args("ml-25m") == SHAPES["ml-25m"] == shape_from_args("ml-25m-shape")
    assert (SHAPES["ml-25m"].n_users, SHAPES["ml-25m"].n_movies, SHAPES["ml-25m"].n_ratings) == (
        162_541,
        62_423,
        25_000_095,
    )
    assert (SHAPES["ml-20m"].n_users, SHAPES["ml-20m"].n_movies, SHAPES["ml-20m"].n_ratings) == (
        138_493,
        27_278,
        20_000_263,
    )
    assert shape_from_args("ml-20m", users=1000).n_users == 1000
    for args, message in [
        (("custom", 10, 100, None), "--ratings"),
        (("custom", 100, 100, 1999), "fewer than 20 per user"),
        (("custom", 10, 10, 200), "every user rates at least 20"),
        (("custom", 10, 30, 400), "exceed users x movies"),
        (("ml-30m",), "unknown shape"),
    ]:
        with pytest.raises(InvalidParameter, match=message):
            shape_from_args(*args)


def test_refuses_to_overwrite_a_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("mine")
    with pytest.raises(StorageError, match="not empty"):
        generate_movielens(tmp_path / "data", Shape("custom", 30, 100, 900))
    assert (tmp_path / "data" / "keep.txt").read_text() == "mine"
    generate_movielens(tmp_path / "data", Shape("custom", 30, 100, 900), overwrite=True)
    assert not (tmp_path / "data" / "keep.txt").exists() and (tmp_path / "data" / GENERATED_MARKER).is_file()


def test_cli_generate(tmp_path, capsys):
    out = tmp_path / "gen"
    argv = ["generate", "--shape", "custom", "--users", "50", "--movies", "120", "--ratings", "2500"]
    assert main([*argv, "--seed", "2", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"generated={out}" in line and "ratings=2500" in line and "generate_s=" in line
    assert json.loads((out / GENERATED_MARKER).read_text())["seed"] == 2
    assert len(pd.read_csv(out / "ratings.csv")) == 2500
    assert main([*argv, "--out", str(out)]) == 1  # exists: refused without --force
    assert "already exists" in capsys.readouterr().err
    assert main(["generate", "--shape", "custom", "--users", "5", "--out", str(tmp_path / "x")]) == 1
    assert "needs --movies, --ratings" in capsys.readouterr().err
