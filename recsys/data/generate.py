"""MovieLens-shaped synthetic datasets at any size up to ML-25M, in the CSV-family layout.

    python -m recsys generate --shape ml-25m --seed 0 --out /data/ml-25m
    python -m recsys generate --shape custom --users 2000 --movies 1500 --ratings 200000 --out DIR

The folder gets ``ratings.csv`` (userId,movieId,rating,timestamp), ``movies.csv`` (movieId,title,
genres: "Title (Year)", ``|``-separated genres, CSV quoting for titles with commas or quotes) and
``links.csv`` (movieId,imdbId,tmdbId): the layout of ML-20M/ML-25M, so the ``ml-20m``/``ml-25m``
loaders read it unchanged. A ``GENERATED`` file (JSON: generator version, seed, shape, model
parameters) marks the folder as synthetic: the loader sets ``Dataset.synthetic`` and the registry
lists it as synthetic. Benchmarks use it at full size, tests at small sizes; real ML-20M/25M stay
a download away (``python -m recsys download ml-25m``).

Model (deterministic for a seed and a shape):

* **Movies.** Ids are a sorted sample of 1..max_movie_id (MovieLens ids have gaps: ML-25M's reach
  209,171); 0-5 genres out of MovieLens' 19 drawn with ML-25M's genre frequencies (about 8 % have
  "(no genres listed)"); a release year skewed to recent decades; made-up titles, some of the form
  "Harbor, The (1995)" (a comma: quoted in the CSV), some with quotes or accents (UTF-8).
* **Popularity** is power law (Zipf-Mandelbrot): the movie of popularity rank r (ranks in random
  order) is proposed with weight ``w_r ∝ (r + q) ** -a``, ``a = 2``, ``q = 100 * n_movies / 62,423``
  (exactly: the integral of ``(x + q) ** -a`` over [r, r + 1), which makes inverse-CDF sampling
  exact and O(1)). At ML-25M shape this gives an item Gini of 0.946 (real ML-25M: 0.942), the most
  rated movie rated by 56 % of users (real: 50 %), 99 % of movies rated (real: 95 %).
* **Users.** Activity is log-normal: ``n_u = 20 + excess_u`` with ``excess_u ∝ exp(1.55 z)`` (the
  log-normal fit of ML-25M has s = 1.59), scaled so that the total is exactly the requested number
  of ratings, capped at half of the movies (ML-25M's most active user rated 52 %). Every user has
  at least 20 ratings, like MovieLens.
* **Ratings** follow a latent-factor + genre model like the demo's (recsys.data.demo): score
  ``s_ui = b_u + b_i + g_u . G_i / |G_i| + x_u . y_i`` with user bias ``b_u ~ N(0, 0.45)``, item
  bias ``b_i = N(0, 0.3)`` plus +0.2 for the most popular movie down to -0.2 for the least
  (popular movies are rated higher), genre taste ``g_u ~ N(0, 0.5)`` per genre, factors
  ``x_u, y_i ~ N(0, 0.35)`` in 8 dimensions, and ``rating = 3.42 + s_ui + e`` rounded to the
  half-star grid 0.5..5.0, where ``e ~ N(0, 0.6)`` minus, for 8 % of ratings, an Exp(1.5) dislike
  (MovieLens' ratings are skewed to the left). As in MovieLens, ratings before 18 February 2003
  are whole stars, 15 % of users only ever give whole stars, and the others round to a whole star
  10 % of the time. At ML-25M shape: mean 3.54, sd 1.0 (real: 3.53, 1.06).
* **Which movies a user rates** (ratings missing not at random, as in the demo): a Plackett-Luce
  draw without replacement with weights ``w_i * exp(0.4 min(s_ui - b_u, 1))``: popular and liked
  movies are rated more. It is computed without any per-rating Python loop: for most users, i.i.d.
  draws from the popularity law thinned by the taste factor (rejection), repeats removed with a
  hash of (user, movie), the first ``n_u`` distinct movies kept (which is exactly sampling without
  replacement; users left short get more draws appended to their stream); for users whose stream
  would be longer than half the catalogue, Gumbel-top-k over all movies in blocks of users. A test
  checks that both give one user the same inclusion probabilities.
* **Timestamps.** Each user has a start time and a session length (log-normal: most users rate
  everything within days, some over years) inside the real MovieLens period (1995-01-09 to
  2015-03-31 for ML-20M, to 2019-11-21 for ML-25M); their ratings are strictly increasing in
  time in the order drawn (popular movies first, as MovieLens' onboarding shows them first). The
  rows of ``ratings.csv`` are sorted by user, then time (real files sort by user, then movieId;
  the loaders do not care).

Generation runs in chunks of users (about 500,000 ratings each, each with its own random stream
seeded from (seed, chunk), so the output does not depend on timing) written straight to
``ratings.csv``: memory stays at a few hundred MB at ML-25M shape. The folder is built under a
temporary sibling name and renamed when complete, so an interrupted run never leaves a folder that
loads as a dataset. The plain distributions (popularity law, activity, titles) live in
:mod:`recsys.data.generate_laws`; this module combines them.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.generate_laws import Popularity, made_up_titles, user_activity
from recsys.errors import InvalidParameter, StorageError, describe_os_error
from recsys.progress import Progress, no_progress

GENERATOR_VERSION = 1
#: the file that marks a folder as generated (JSON); the registry and the loader read it
GENERATED_MARKER = "GENERATED"
CHUNK_RATINGS = 500_000  # part of the output's definition: changing it changes the random streams
HALF_STARS_SINCE = 1_045_526_400  # 2003-02-18: MovieLens introduced half stars

# ML-25M's genres and how many of its 62,423 movies carry each (movies.csv, 2019).
GENRE_COUNTS = {
    "Action": 7348,
    "Adventure": 4145,
    "Animation": 2929,
    "Children": 2935,
    "Comedy": 16870,
    "Crime": 5319,
    "Documentary": 5605,
    "Drama": 25606,
    "Fantasy": 2731,
    "Film-Noir": 353,
    "Horror": 5989,
    "IMAX": 195,
    "Musical": 1054,
    "Mystery": 2925,
    "Romance": 7719,
    "Sci-Fi": 3595,
    "Thriller": 8654,
    "War": 1874,
    "Western": 1399,
}
GENRES = list(GENRE_COUNTS)  # alphabetical, the order MovieLens writes them in
NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class Shape:
    """The size of a generated dataset and the period its timestamps fall in."""

    name: str
    n_users: int
    n_movies: int
    n_ratings: int
    first_timestamp: int = 789_652_009  # 1995-01-09, the first MovieLens rating
    last_timestamp: int = 1_574_327_703  # 2019-11-21, the last rating of ML-25M
    max_movie_id: int | None = None  # None: 3.35 x n_movies, ML-25M's ratio

    @property
    def movie_id_range(self) -> int:
        return self.max_movie_id or max(self.n_movies, int(round(3.35 * self.n_movies)))


SHAPES: dict[str, Shape] = {
    "ml-20m": Shape("ml-20m", 138_493, 27_278, 20_000_263, 789_652_009, 1_427_784_002, 131_262),
    "ml-25m": Shape("ml-25m", 162_541, 62_423, 25_000_095, 789_652_009, 1_574_327_703, 209_171),
}


@dataclass(frozen=True)
class Model:
    """Parameters of the generative model (defaults described in the module docstring)."""

    min_ratings: int = 20
    activity_sigma: float = 1.55
    max_user_share: float = 0.5
    popularity_exponent: float = 2.0
    popularity_offset: float = 100.0  # at 62,423 movies; scaled with the number of movies
    selection_strength: float = 0.4
    selection_cap: float = 1.0
    n_factors: int = 8
    factor_scale: float = 0.35
    user_bias: float = 0.45
    item_bias: float = 0.3
    item_bias_popularity: float = 0.4
    genre_taste: float = 0.5
    global_mean: float = 3.42
    noise: float = 0.6
    dislike_rate: float = 0.08
    dislike_scale: float = 1.5
    whole_star_users: float = 0.15
    whole_star_rounding: float = 0.1


def shape_from_args(name: str | None, users: int | None = None, movies: int | None = None, ratings: int | None = None):
    """A preset ("ml-20m", "ml-25m", also spelt "ml-25m-shape") with any of its sizes overridden,
    or "custom" (users, movies and ratings all required)."""
    key = (name or "custom").removesuffix("-shape")
    if key == "custom":
        missing = [n for n, v in (("--users", users), ("--movies", movies), ("--ratings", ratings)) if v is None]
        if missing:
            raise InvalidParameter(f"a custom shape needs {', '.join(missing)}")
        shape = Shape("custom", int(users), int(movies), int(ratings))
    elif key in SHAPES:
        shape = SHAPES[key]
        sizes = {"n_users": users, "n_movies": movies, "n_ratings": ratings}
        sizes = {k: int(v) for k, v in sizes.items() if v is not None}
        if sizes:
            shape = replace(shape, name=f"{key}-resized", max_movie_id=None, **sizes)
    else:
        raise InvalidParameter(f"unknown shape {name!r}; known: {', '.join(SHAPES)}, custom")
    check_shape(shape)
    return shape


def check_shape(shape: Shape, model: Model = Model()) -> None:
    """Refuse sizes no dataset can have (every user rates >= min_ratings distinct movies)."""
    for what, value in (("users", shape.n_users), ("movies", shape.n_movies), ("ratings", shape.n_ratings)):
        if value < 1:
            raise InvalidParameter(f"the number of {what} must be positive, got {value}")
    if shape.n_movies < model.min_ratings:
        raise InvalidParameter(f"{shape.n_movies} movies: every user rates at least {model.min_ratings}")
    if shape.n_ratings < model.min_ratings * shape.n_users:
        raise InvalidParameter(
            f"{shape.n_ratings:,} ratings are fewer than {model.min_ratings} per user for {shape.n_users:,} users"
        )
    if shape.n_ratings > shape.n_users * shape.n_movies:
        raise InvalidParameter(
            f"{shape.n_ratings:,} ratings exceed users x movies = {shape.n_users * shape.n_movies:,}"
        )
    if shape.movie_id_range < shape.n_movies or shape.movie_id_range >= 2**31:
        raise InvalidParameter(f"max_movie_id {shape.movie_id_range} must lie in [n_movies, 2**31)")
    if not shape.first_timestamp < shape.last_timestamp:
        raise InvalidParameter("first_timestamp must precede last_timestamp")


# ---- public entry point -------------------------------------------------------------------------------
def generate_movielens(
    out: str | os.PathLike,
    shape: Shape | str = "ml-25m",
    *,
    seed: int = 0,
    model: Model = Model(),
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Write a MovieLens-shaped dataset into `out` (a new folder, or an existing one with `overwrite`).

    Returns the folder. Raises InvalidParameter for impossible shapes, StorageError when `out`
    exists (without `overwrite`) or cannot be written.
    """
    shape = shape_from_args(shape) if isinstance(shape, str) else shape
    check_shape(shape, model)
    out = Path(out).expanduser().resolve()
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise StorageError(f"{out} already exists and is not empty; pass overwrite=True (--force) to replace it")
    progress = progress or no_progress
    started = time.perf_counter()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=out.parent))
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "create")) from exc
    try:
        generator = _Generator(shape, model, seed)
        generator.write_movies(building / "movies.csv", building / "links.csv")
        generator.write_ratings(building / "ratings.csv", progress)
        marker = {
            "generator": "recsys.data.generate",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "shape": asdict(shape),
            "model": asdict(model),
            "ratings": shape.n_ratings,
            "users": shape.n_users,
            "movies": shape.n_movies,
            "seconds": round(time.perf_counter() - started, 1),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "note": "synthetic data generated by recsys, not MovieLens ratings",
        }
        (building / GENERATED_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(building, out)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "write")) from exc
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return out


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The GENERATED marker of a folder as a dict (``{}`` if unreadable), None for real data."""
    path = Path(folder) / GENERATED_MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


# ---- the generator ------------------------------------------------------------------------------------
_ACCEPTANCE = 0.6  # a lower bound of the thinning's mean acceptance (sizes the first round of draws)


class _Generator:
    """Global draws (movies, users' parameters) up front; ratings chunk by chunk of users."""

    def __init__(self, shape: Shape, model: Model, seed: int):
        self.shape, self.model, self.seed = shape, model, seed
        rng = np.random.default_rng([seed, GENERATOR_VERSION, 0])
        n_users, n_movies = shape.n_users, shape.n_movies
        self.movie_ids = self._movie_ids(rng)
        self.genres = self._genres(rng)  # (M, G) bool
        self.years = self._years(rng)
        # popularity: Zipf-Mandelbrot over a random order of the movies (rank 0 = most popular)
        rank = rng.permutation(n_movies)
        offset = model.popularity_offset * n_movies / SHAPES["ml-25m"].n_movies  # same relative shape at any size
        self.popularity = Popularity(n_movies, model.popularity_exponent, offset)
        self.movie_of_rank = np.argsort(rank)
        self.log_weight = np.log(self.popularity.weights)[rank]
        self.log_weight -= self.log_weight.max()
        # popular movies are rated higher: +/- item_bias_popularity / 2 from the most to the least popular
        lift = model.item_bias_popularity * (0.5 - rank / max(n_movies - 1, 1))
        self.item_bias = (lift + rng.normal(0, model.item_bias, n_movies)).astype(np.float32)
        counts = self.genres.sum(axis=1, keepdims=True)
        genre_part = np.where(counts > 0, self.genres / np.maximum(counts, 1), 0.0)
        k = model.n_factors
        self.item_vectors = np.hstack([rng.normal(0, model.factor_scale, (n_movies, k)), genre_part]).astype(np.float32)
        self.user_vectors = np.hstack(
            [
                rng.normal(0, model.factor_scale, (n_users, k)),
                rng.normal(0, model.genre_taste, (n_users, len(GENRES))),
            ]
        ).astype(np.float32)
        self.user_bias = rng.normal(0, model.user_bias, n_users).astype(np.float32)
        self.activity = user_activity(rng, shape, model)
        self.whole_star_user = rng.random(n_users) < model.whole_star_users
        self.session_start, self.session_length = self._sessions(rng)
        # chunks of consecutive users holding about CHUNK_RATINGS ratings each
        ends = np.cumsum(self.activity)
        cuts = np.searchsorted(ends, np.arange(CHUNK_RATINGS, ends[-1], CHUNK_RATINGS), side="left") + 1
        self.chunks = list(zip(np.r_[0, cuts], np.r_[cuts, n_users], strict=True))
        self.chunks = [(int(a), int(b)) for a, b in self.chunks if b > a]
        # users whose i.i.d. draws would outnumber the movies get Gumbel-top-k over all movies instead
        light_cost = self.popularity.draws_for(self.activity) / _ACCEPTANCE
        self.heavy = light_cost > n_movies / 2

    # movies ----------------------------------------------------------------------------------------
    def _movie_ids(self, rng) -> np.ndarray:
        span, n = self.shape.movie_id_range, self.shape.n_movies
        if span == n:
            return np.arange(1, n + 1, dtype=np.int64)
        return np.sort(rng.choice(span, size=n, replace=False)).astype(np.int64) + 1

    def _genres(self, rng) -> np.ndarray:
        n = self.shape.n_movies
        # number of genres per movie (ML-25M: ~8 % none, most 1-3), genres by Gumbel-top-k on frequency
        count = rng.choice(6, size=n, p=[0.08, 0.38, 0.30, 0.16, 0.06, 0.02])
        log_p = np.log(np.array(list(GENRE_COUNTS.values()), dtype=float))
        keys = log_p[None, :] + rng.gumbel(size=(n, len(GENRES)))
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        return rank < count[:, None]

    def _years(self, rng) -> np.ndarray:
        last_year = _dt.datetime.fromtimestamp(self.shape.last_timestamp, _dt.UTC).year
        age = np.exp(rng.normal(np.log(18.0), 0.9, self.shape.n_movies))
        return np.clip(np.round(last_year - age), 1890, last_year).astype(int)

    def write_movies(self, movies_path: Path, links_path: Path) -> None:
        rng = np.random.default_rng([self.seed, GENERATOR_VERSION, 1])
        titles = made_up_titles(rng, self.shape.n_movies)
        names = np.array(GENRES, dtype=object)
        genre_strings = ["|".join(names[row]) or NO_GENRES for row in self.genres]
        with open(movies_path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["movieId", "title", "genres"])
            writer.writerows(
                zip(
                    self.movie_ids.tolist(),
                    (f"{t} ({y})" for t, y in zip(titles, self.years.tolist(), strict=True)),
                    genre_strings,
                    strict=True,
                )
            )
        n = self.shape.n_movies
        imdb = rng.choice(9_999_999, size=n, replace=False) + 1
        tmdb = rng.choice(max(1_000_000, 4 * n), size=n, replace=False) + 1
        tmdb_missing = rng.random(n) < 0.002
        with open(links_path, "w", encoding="utf-8", newline="") as handle:
            handle.write("movieId,imdbId,tmdbId\n")
            handle.writelines(
                f"{m},{i:07d},{'' if missing else t}\n"
                for m, i, t, missing in zip(
                    self.movie_ids.tolist(), imdb.tolist(), tmdb.tolist(), tmdb_missing.tolist(), strict=True
                )
            )

    # users -----------------------------------------------------------------------------------------
    def _sessions(self, rng) -> tuple[np.ndarray, np.ndarray]:
        """Start time and length (seconds) of each user's rating period inside the shape's period."""
        first, last = self.shape.first_timestamp, self.shape.last_timestamp
        period = last - first
        n = self.shape.n_users
        length = np.exp(rng.normal(np.log(2 * 86_400.0), 2.2, n))
        length = np.clip(length, 30.0 * self.activity, 0.8 * period).astype(np.int64)
        length = np.maximum(length, self.activity + 1)  # at least a second per rating
        start = first + ((period - length) * rng.beta(1.3, 1.0, n)).astype(np.int64)
        return start, length

    # ratings ---------------------------------------------------------------------------------------
    def write_ratings(self, path: Path, progress: Progress) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        labels = pa.array([f"{k / 2:.1f}" for k in range(11)])  # "0.0" .. "5.0": MovieLens writes "4.0"
        options = pcsv.WriteOptions(include_header=False, quoting_style="none")
        total = self.shape.n_ratings
        done = 0
        with pa.OSFile(str(path), "wb") as sink:
            sink.write(b"userId,movieId,rating,timestamp\n")
            for index, (first, stop) in enumerate(self.chunks):
                users, items, half_stars, stamps = self.ratings_chunk(index, first, stop)
                table = pa.table(
                    {
                        "userId": pa.array(users + 1),
                        "movieId": pa.array(self.movie_ids[items]),
                        "rating": labels.take(pa.array(half_stars)),
                        "timestamp": pa.array(stamps),
                    }
                )
                pcsv.write_csv(table, sink, options)
                done += len(users)
                progress(done, total, f"ratings {done:,}/{total:,}")

    def ratings_chunk(self, index: int, first: int, stop: int):
        """(user index, movie index, rating in half stars 1..10, timestamp) of users first..stop-1,
        sorted by user then time."""
        rng = np.random.default_rng([self.seed, GENERATOR_VERSION, 2, index])
        need = self.activity[first:stop]
        heavy = self.heavy[first:stop]
        starts = np.cumsum(need) - need
        total = int(need.sum())
        users = np.repeat(np.arange(first, stop), need)
        items = np.empty(total, dtype=np.int64)
        score = np.empty(total, dtype=np.float32)
        # each path returns (user within its group, rank in the user's list, movie, score): a rating
        # goes to row starts[user] + rank, so the chunk comes out sorted by user then time
        for group, draw in ((np.flatnonzero(~heavy), self._draw_light), (np.flatnonzero(heavy), self._draw_heavy)):
            if len(group):
                who, rank, movie, value = draw(rng, first + group, need[group])
                rows = starts[group[who]] + rank
                items[rows], score[rows] = movie, value
        position = np.arange(total) - np.repeat(starts, need)
        stamps = self._timestamps(rng, users, need, position)
        half_stars = self._ratings(rng, users, score, stamps)
        return users, items, half_stars, stamps

    def _scores(self, users: np.ndarray, items: np.ndarray, batch: int = 1 << 18) -> np.ndarray:
        """s_ui - b_u (item bias + genre taste + factors) for pairs, in batches to bound memory."""
        out = np.empty(len(users), dtype=np.float32)
        for a in range(0, len(users), batch):
            u, i = users[a : a + batch], items[a : a + batch]
            out[a : a + batch] = np.einsum("ij,ij->i", self.user_vectors[u], self.item_vectors[i])
            out[a : a + batch] += self.item_bias[i]
        return out

    def _draw_light(self, rng, users: np.ndarray, need: np.ndarray):
        """Plackett-Luce without replacement by thinning i.i.d. popularity draws and keeping the
        first `need` distinct movies of each user in draw order (a hash of (user, movie) finds the
        repeats). Users left short get more draws, appended to their stream, until all have enough."""
        model, n_movies = self.model, self.shape.n_movies
        local = np.arange(len(users))
        done = []  # (local user, rank, movie, score) of finished users
        # the stream of distinct (user, movie, score) so far for users still short, grouped by user
        work = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
        deficit, margin = need.astype(np.int64), 1.15
        while True:
            short = deficit > 0
            if not short.any():
                break
            draws = np.ceil(self.popularity.draws_for(deficit[short]) * margin / _ACCEPTANCE).astype(np.int64) + 4
            who = np.repeat(local[short], draws)
            items = self.movie_of_rank[self.popularity.sample(rng, len(who))]
            score = self._scores(users[who], items)
            # thinning: keep with probability exp(beta * (min(s_ui - b_u, cap) - cap)) <= 1
            accept = rng.random(len(who)) < np.exp(
                model.selection_strength * (np.minimum(score, model.selection_cap) - model.selection_cap)
            )
            user_ = np.concatenate([work[0], who[accept]])
            item_ = np.concatenate([work[1], items[accept]])
            score_ = np.concatenate([work[2], score[accept]])
            if len(work[0]):  # earlier draws first within each user (stable: keeps draw order)
                order = np.argsort(user_, kind="stable")
                user_, item_, score_ = user_[order], item_[order], score_[order]
            fresh = ~pd.Series(user_ * n_movies + item_).duplicated(keep="first").to_numpy()
            user_, item_, score_ = user_[fresh], item_[fresh], score_[fresh]
            have = np.bincount(user_, minlength=len(users))  # of the users still short
            rank = np.arange(len(user_)) - np.repeat(np.cumsum(have) - have, have)
            deficit = np.where(short, np.maximum(need - have, 0), 0)
            finished = deficit[user_] == 0
            take = finished & (rank < need[user_])
            done.append((user_[take], rank[take], item_[take], score_[take]))
            work = (user_[~finished], item_[~finished], score_[~finished])
            margin = 1.5  # top-ups: the users left are the unlucky ones
        return tuple(np.concatenate([d[k] for d in done]) for k in range(4))

    def _draw_heavy(self, rng, users: np.ndarray, need: np.ndarray):
        """Gumbel-top-k over all movies for users who rate a large share of them, blocks of users."""
        model, n_movies = self.model, self.shape.n_movies
        block = max(1, (1 << 22) // n_movies)
        out = []
        for a in range(0, len(users), block):
            u, n = users[a : a + block], need[a : a + block]
            score = self.user_vectors[u] @ self.item_vectors.T + self.item_bias[None, :]
            keys = (
                self.log_weight[None, :]
                + model.selection_strength * np.minimum(score, model.selection_cap)
                + rng.gumbel(size=score.shape)
            )
            order = np.argsort(-keys, axis=1)
            rank = np.broadcast_to(np.arange(n_movies), order.shape)
            keep = rank < n[:, None]
            rows = np.broadcast_to(np.arange(len(u))[:, None], order.shape)[keep]
            movies = order[keep]
            out.append((a + rows, rank[keep], movies, score[rows, movies].astype(np.float32)))
        return tuple(np.concatenate([o[k] for o in out]) for k in range(4))

    def _timestamps(self, rng, users: np.ndarray, counts: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Strictly increasing per user: start + (length - n) * (cumulative share of random gaps) + position."""
        gaps = rng.exponential(size=len(users))
        cumulative = np.cumsum(gaps)
        ends = np.cumsum(counts)
        before = np.r_[0.0, cumulative[ends[:-1] - 1]]
        total = cumulative[ends - 1] - before
        share = (cumulative - np.repeat(before, counts)) / np.repeat(total, counts)  # (0, 1], last = 1
        spare = self.session_length[users] - counts.repeat(counts)
        return self.session_start[users] + np.floor(share * spare).astype(np.int64) + position

    def _ratings(self, rng, users: np.ndarray, score: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        model = self.model
        noise = rng.normal(0, model.noise, len(users))
        # ratings are skewed to the left (MovieLens' mode is 4.0): now and then a strong dislike
        noise -= (rng.random(len(users)) < model.dislike_rate) * rng.exponential(model.dislike_scale, len(users))
        value = model.global_mean + self.user_bias[users] + score + noise
        whole = (stamps < HALF_STARS_SINCE) | self.whole_star_user[users]
        whole |= rng.random(len(users)) < model.whole_star_rounding
        half_stars = np.where(whole, 2 * np.clip(np.round(value), 1, 5), np.clip(np.round(2 * value), 1, 10))
        return half_stars.astype(np.int8)


# ---- CLI ----------------------------------------------------------------------------------------------
def _generate_command(args) -> int:
    from recsys.cli_common import progress_bar

    shape = shape_from_args(args.shape, args.users, args.movies, args.ratings)
    started = time.perf_counter()
    with progress_bar(f"generate {shape.name}", unit="rating", leave=True) as progress:
        folder = generate_movielens(args.out, shape, seed=args.seed, overwrite=args.force, progress=progress)
    seconds = time.perf_counter() - started
    print(
        f"generated={folder} shape={shape.name} users={shape.n_users} movies={shape.n_movies} "
        f"ratings={shape.n_ratings} seed={args.seed} generate_s={seconds:.1f}"
    )
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic MovieLens-shaped dataset (ratings.csv, movies.csv, links.csv)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--shape", default="ml-25m", help="ml-25m, ml-20m (presets) or custom (default: ml-25m)")
    parser.add_argument("--users", type=int, default=None, help="number of users (required with custom)")
    parser.add_argument("--movies", type=int, default=None, help="number of movies (required with custom)")
    parser.add_argument("--ratings", type=int, default=None, help="number of ratings (required with custom)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder to create, e.g. DATA_DIR/ml-25m")
    parser.add_argument("--force", action="store_true", help="replace the folder if it exists")
    parser.set_defaults(func=_generate_command)
