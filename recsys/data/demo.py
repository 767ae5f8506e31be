"""The synthetic offline demo dataset: generated here, no downloads, deterministic for a seed.

Labelled ``synthetic=True`` everywhere. Built in a few seconds and cached under
``cache_dir()/demo-<seed>-v<DEMO_VERSION>/`` (ratings.csv, items.csv, genres.csv, users.csv,
posters/{item_id}.png, trailers/{item_id}.mp4, manifest.json); a second call only reads the cache.

Latent model
------------
Movies. Each movie i has 1-3 of the 12 genres in :data:`GENRES` (multi-hot ``G_i``), a year, a
popularity ``pop_i ~ N(0, 1)`` and a *visual style* ``v_i = (brightness, warmth, clutter)`` drawn
uniformly in [-1, 1]^3 independently of the genres. The poster (96x144 px) is drawn from these:

* background: a vertical gradient between the colours of the movie's first two genres
  (:data:`GENRE_STYLE`), darkened or lightened by ``brightness``, shifted toward red
  (warmth > 0) or blue (warmth < 0), desaturated for older films;
* shapes: each genre has its own shape (triangles for Action/Horror, circles for Animation, ...);
  ``4 + 5 * (clutter + 1)`` shapes in the genre colours;
* a dark title band with fake text lines.

So pixels carry both the genre (colours, shapes) and the visual style (which the genre
metadata does not). The trailer (first ``n_trailers`` movies; 20 s, 3 fps, 64x96, H.264 or
MPEG-4) pans over the poster at a speed set by the genre's pace (Action fast, Drama slow), with
a moving genre-coloured disc and a flicker for Horror.

Users. Each user u has an age (15-70), a gender (M/F) and an occupation, and draws

* a bias ``b_u ~ N(0, 0.3)``,
* a genre taste ``g_u ~ N(0, 0.6)`` per genre, shifted by demographics (younger users like
  Animation/Action/Sci-Fi more, older users Drama/Documentary; F +0.3 Romance, M +0.3 Action),
* a *visual taste* ``w_u ~ N(0, 0.5)`` over the 3 style dimensions,
* collaborative factors ``x_u ~ N(0, 0.45)`` in 4 dimensions (movies: ``y_i``, same law).

Score ``s_ui = b_u + b_i + g_u.G_i/|G_i| + w_u.v_i + x_u.y_i`` with ``b_i = 0.35 pop_i + N(0, 0.3)``,
and the rating is ``clip(round(3.3 + s_ui + e), 1, 5)`` with noise ``e ~ N(0, 0.5)``.
Which movies a user rates: activity ``n_u = clip(lognormal(ln 55, 0.6), 20, 250)`` movies,
chosen without replacement with weights ``exp(pop_i + 0.4 s_ui)`` (popular and liked movies are
rated more: ratings are missing not at random, as in MovieLens). The variance share of each term
among the generated ratings is stored in ``dataset.notes["variance_share"]``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cache import file_lock, temporary_path
from recsys.config import cache_dir
from recsys.data.dataset import Dataset
from recsys.errors import OptionalDependencyMissing, StorageError, describe_os_error
from recsys.progress import Progress

log = logging.getLogger(__name__)

DEMO_VERSION = 2
# genre -> (RGB colour, shape, pace of the trailer in pixels per frame)
GENRE_STYLE = {
    "Action": ((214, 48, 32), "triangle", 3.0),
    "Adventure": ((222, 146, 30), "stripe", 2.0),
    "Animation": ((250, 214, 40), "circle", 2.0),
    "Children's": ((120, 200, 250), "circle", 1.5),
    "Comedy": ((255, 236, 90), "ring", 1.5),
    "Crime": ((60, 70, 96), "rect", 1.0),
    "Documentary": ((190, 176, 150), "rect", 0.5),
    "Drama": ((70, 50, 140), "hstripe", 0.5),
    "Horror": ((110, 10, 16), "triangle", 1.0),
    "Romance": ((240, 110, 170), "circle", 0.5),
    "Sci-Fi": ((30, 200, 190), "ring", 2.5),
    "Thriller": ((30, 90, 50), "stripe", 2.0),
}
GENRES = list(GENRE_STYLE)  # 12 of MovieLens' genres, in its order
OCCUPATIONS = [
    "administrator",
    "artist",
    "doctor",
    "educator",
    "engineer",
    "entertainment",
    "executive",
    "healthcare",
    "homemaker",
    "lawyer",
    "librarian",
    "marketing",
    "none",
    "other",
    "programmer",
    "retired",
    "salesman",
    "scientist",
    "student",
    "technician",
    "writer",
]
_WORDS_A = [
    "Crimson",
    "Silent",
    "Broken",
    "Golden",
    "Last",
    "Hidden",
    "Midnight",
    "Electric",
    "Lonely",
    "Wild",
    "Frozen",
    "Secret",
    "Burning",
    "Velvet",
    "Iron",
    "Paper",
    "Distant",
    "Restless",
    "Neon",
    "Quiet",
]
_WORDS_B = [
    "Harbor",
    "Kingdom",
    "Garden",
    "Signal",
    "Horizon",
    "Empire",
    "River",
    "Promise",
    "Shadow",
    "Machine",
    "Summer",
    "Witness",
    "Station",
    "Island",
    "Letter",
    "Storm",
    "Circus",
    "Frontier",
    "Mirror",
    "Orchard",
]
POSTER_SIZE = (96, 144)  # width, height: the 2:3 of a film poster
TRAILER_SIZE = (64, 96)
# Long enough for VT2's sliding windows (10 frames, stride 5) to trace a path even at 1 fps,
# at a low source frame rate so that building and decoding stay cheap.
TRAILER_FPS = 3
TRAILER_SECONDS = 20


# what a damaged demo folder raises when read (pandas' parser errors are ValueErrors)
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError)


def demo_folder(seed: int = 0, root: str | os.PathLike | None = None) -> Path:
    return cache_dir(root) / f"demo-{seed}-v{DEMO_VERSION}"


def load_demo(
    seed: int = 0,
    n_movies: int = 300,
    n_users: int = 400,
    n_trailers: int = 120,
    root: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """The demo dataset for `seed`, built on first use and then read from the cache."""
    default_size = (n_movies, n_users, n_trailers) == (300, 400, 120)
    folder = demo_folder(seed, root)
    if not default_size:
        folder = folder.with_name(f"{folder.name}-{n_movies}x{n_users}x{n_trailers}")
    if (folder / "manifest.json").is_file():
        try:
            dataset = _read_demo(folder)
            log.info("demo dataset read from %s", folder)
            return dataset
        except _UNREADABLE as exc:  # a cache file damaged by hand or by the disk: built again
            log.warning("demo dataset in %s is unreadable (%s): building it again", folder, exc)
    with file_lock(folder):  # two processes on a cold cache: one builds, the other waits and reads
        try:
            return _read_demo(folder)  # built (or repaired) by another process meanwhile
        except _UNREADABLE:
            if folder.exists():  # damaged: set aside (a reader may still hold files), then removed
                aside = temporary_path(folder).with_suffix(".unreadable")
                os.replace(folder, aside)
                shutil.rmtree(aside, ignore_errors=True)
        log.info("building the synthetic demo dataset in %s", folder)
        build_demo(folder, seed, n_movies, n_users, n_trailers, progress)
    log.info("demo dataset read from %s", folder)
    return _read_demo(folder)


# ---- generation ---------------------------------------------------------------------------------
def build_demo(
    folder: str | os.PathLike,
    seed: int = 0,
    n_movies: int = 300,
    n_users: int = 400,
    n_trailers: int = 120,
    progress: Progress | None = None,
) -> Path:
    """Generate the demo into `folder` atomically (a temporary sibling renamed at the end)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    movies, genres = _draw_movies(rng, n_movies)
    users = _draw_users(rng, n_users)
    ratings, shares = _draw_ratings(rng, movies, genres, users)
    # a sibling unique to this process, thread and call, renamed into place as a whole at the end
    building = temporary_path(folder).with_suffix(".building")
    try:
        building.mkdir()
        (building / "posters").mkdir()
        (building / "trailers").mkdir()
        total = n_movies + min(n_trailers, n_movies)
        posters = {}
        for done, item_id in enumerate(movies.index, start=1):
            image = draw_poster(movies.loc[item_id], genres.loc[item_id], np.random.default_rng([seed, int(item_id)]))
            image.save(building / "posters" / f"{item_id}.png", optimize=False)
            posters[item_id] = image
            if progress and done % 25 == 0:
                progress(done, total, f"demo posters {done}/{n_movies}")
        for done, item_id in enumerate(movies.index[:n_trailers], start=1):
            write_trailer(building / "trailers" / f"{item_id}.mp4", posters[item_id], genres.loc[item_id])
            if progress and done % 20 == 0:
                progress(n_movies + done, total, f"demo trailers {done}/{n_trailers}")
        ratings.to_csv(building / "ratings.csv", index=False)
        movies.to_csv(building / "items.csv")
        genres.to_csv(building / "genres.csv")
        users.to_csv(building / "users.csv")
        manifest = {
            "version": DEMO_VERSION,
            "seed": seed,
            "movies": n_movies,
            "users": n_users,
            "trailers": min(n_trailers, n_movies),
            "ratings": len(ratings),
            "variance_share": shares,
        }
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.replace(building, folder)
        except OSError:  # another process finished first: its copy is identical
            if not (folder / "manifest.json").is_file():
                raise
    except OSError as exc:  # a full disk, a read-only cache: one message naming the folder
        if isinstance(exc, StorageError):
            raise
        exc.filename = str(folder)
        raise StorageError(describe_os_error(exc, "build the demo dataset in")) from exc
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    if progress:
        progress(total, total, "demo dataset ready")
    return folder


def _draw_movies(rng: np.random.Generator, n_movies: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    index = pd.Index(np.arange(1, n_movies + 1, dtype="int64"), name="item_id")
    genre_popularity = np.array([1.6, 1.0, 0.6, 0.6, 1.6, 0.8, 0.4, 2.0, 0.7, 1.0, 0.8, 1.0])
    multi_hot = np.zeros((n_movies, len(GENRES)), dtype="uint8")
    first_genre = np.empty(n_movies, dtype=int)
    for i in range(n_movies):
        k = rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15])
        chosen = rng.choice(len(GENRES), size=k, replace=False, p=genre_popularity / genre_popularity.sum())
        multi_hot[i, chosen] = 1
        first_genre[i] = chosen[0]
    years = rng.integers(1960, 2006, size=n_movies)
    titles, seen = [], {}
    for i in range(n_movies):
        base = f"{_WORDS_A[rng.integers(len(_WORDS_A))]} {_WORDS_B[rng.integers(len(_WORDS_B))]}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base} {_roman(seen[base])}"
        titles.append(f"{name} ({years[i]})")
    style = rng.uniform(-1, 1, size=(n_movies, 3))
    movies = pd.DataFrame(
        {
            "title": titles,
            "year": pd.array(years, dtype="Int64"),
            "main_genre": [GENRES[g] for g in first_genre],
            "popularity": rng.normal(0, 1, n_movies),
            "brightness": style[:, 0],
            "warmth": style[:, 1],
            "clutter": style[:, 2],
        },
        index=index,
    )
    genres = pd.DataFrame(multi_hot, index=index, columns=GENRES)
    return movies, genres


def _roman(n: int) -> str:
    return {2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}.get(n, str(n))


def _draw_users(rng: np.random.Generator, n_users: int) -> pd.DataFrame:
    index = pd.Index(np.arange(1, n_users + 1, dtype="int64"), name="user_id")
    young = rng.random(n_users) < 0.55
    age = np.where(young, rng.integers(15, 30, n_users), rng.integers(30, 71, n_users))
    gender = np.where(rng.random(n_users) < 0.6, "M", "F")
    occupation = np.array(OCCUPATIONS)[rng.integers(len(OCCUPATIONS), size=n_users)]
    occupation = np.where(age < 23, "student", occupation)
    return pd.DataFrame({"age": pd.array(age, dtype="Int64"), "gender": gender, "occupation": occupation}, index=index)


def _draw_ratings(rng, movies: pd.DataFrame, genres: pd.DataFrame, users: pd.DataFrame):
    n_users, n_movies = len(users), len(movies)
    youth = np.array([0.3, 0.2, 0.4, 0.2, 0.1, 0.0, -0.4, -0.4, 0.2, -0.1, 0.3, 0.0])
    age = users["age"].to_numpy(dtype=float)
    ages = (40.0 - age) / 20.0  # > 0 for the young
    taste = rng.normal(0, 0.6, (n_users, len(GENRES))) + ages[:, None] * youth[None, :]
    female = users["gender"].to_numpy() == "F"
    taste[:, GENRES.index("Romance")] += np.where(female, 0.3, 0.0)
    taste[:, GENRES.index("Action")] += np.where(female, 0.0, 0.3)
    visual_taste = rng.normal(0, 0.5, (n_users, 3))
    user_bias = rng.normal(0, 0.3, n_users)
    user_factors = rng.normal(0, 0.45, (n_users, 4))
    item_factors = rng.normal(0, 0.45, (n_movies, 4))
    popularity = movies["popularity"].to_numpy()
    item_bias = 0.35 * popularity + rng.normal(0, 0.3, n_movies)
    multi_hot = genres.to_numpy(dtype=float)
    genre_term = taste @ (multi_hot / multi_hot.sum(axis=1, keepdims=True)).T
    visual_term = visual_taste @ movies[["brightness", "warmth", "clutter"]].to_numpy().T
    collaborative_term = user_factors @ item_factors.T
    bias_term = user_bias[:, None] + item_bias[None, :]
    score = bias_term + genre_term + visual_term + collaborative_term

    activity = np.clip(np.round(rng.lognormal(np.log(55), 0.6, n_users)), 20, min(250, n_movies)).astype(int)
    keys = popularity[None, :] + 0.4 * score + rng.gumbel(size=score.shape)  # Gumbel top-k sampling
    user_rows, item_cols = [], []
    for u in range(n_users):
        chosen = np.argpartition(-keys[u], activity[u] - 1)[: activity[u]]
        user_rows.append(np.full(activity[u], u))
        item_cols.append(np.sort(chosen))
    rows, cols = np.concatenate(user_rows), np.concatenate(item_cols)
    noise = rng.normal(0, 0.5, len(rows))
    rating = np.clip(np.round(3.3 + score[rows, cols] + noise), 1, 5)
    start = rng.integers(883_612_800, 1_041_379_200, n_users)  # 1998-01-01 .. 2003-01-01
    gaps = rng.integers(30, 86_400, len(rows))
    timestamp = np.empty(len(rows), dtype="int64")
    offset = 0
    for u in range(n_users):
        n = activity[u]
        timestamp[offset : offset + n] = start[u] + np.cumsum(gaps[offset : offset + n])
        offset += n
    ratings = pd.DataFrame(
        {
            "user_id": users.index.to_numpy()[rows],
            "item_id": movies.index.to_numpy()[cols],
            "rating": rating.astype("float32"),
            "timestamp": timestamp,
        }
    )
    parts = {
        "bias": bias_term[rows, cols],
        "genre": genre_term[rows, cols],
        "visual": visual_term[rows, cols],
        "collaborative": collaborative_term[rows, cols],
        "noise": noise,
    }
    total = sum(float(np.var(p)) for p in parts.values())
    shares = {name: round(float(np.var(p)) / total, 3) for name, p in parts.items()}
    return ratings, shares


def _colour(genre_row: pd.Series, movie: pd.Series, which: int) -> np.ndarray:
    names = [g for g in GENRES if genre_row[g]]
    base = np.array(GENRE_STYLE[names[min(which, len(names) - 1)]][0], dtype=float)
    if which and len(names) == 1:
        base = base * 0.45
    base = base * (1.0 + 0.45 * movie["brightness"])  # brightness
    base = base + 40.0 * movie["warmth"] * np.array([1.0, 0.1, -1.0])  # warm = redder, cool = bluer
    grey = base.mean()
    age = np.clip((2005 - int(movie["year"])) / 45.0, 0, 1)
    base = grey + (base - grey) * (1.0 - 0.5 * age)  # older films: faded colours
    return np.clip(base, 0, 255)


def draw_poster(movie: pd.Series, genre_row: pd.Series, rng: np.random.Generator):
    """A procedurally drawn poster (PIL RGB image) whose colours and shapes encode the genres."""
    from PIL import Image, ImageDraw

    width, height = POSTER_SIZE
    top, bottom = _colour(genre_row, movie, 0), _colour(genre_row, movie, 1)
    t = np.linspace(0, 1, height)[:, None, None]
    gradient = (top[None, None, :] * (1 - t) + bottom[None, None, :] * t).repeat(width, axis=1)
    image = Image.fromarray(gradient.astype("uint8"), "RGB")
    draw = ImageDraw.Draw(image)
    names = [g for g in GENRES if genre_row[g]]
    n_shapes = int(round(4 + 5 * (movie["clutter"] + 1)))
    for k in range(n_shapes):
        genre = names[k % len(names)]
        colour, shape, _ = GENRE_STYLE[genre]
        light = tuple(int(min(255, c * 0.6 + 110)) for c in colour)
        x, y = rng.uniform(0, width), rng.uniform(0, height * 0.8)
        r = rng.uniform(6, 20)
        if shape == "triangle":
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=light)
        elif shape == "circle":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=light)
        elif shape == "ring":
            draw.ellipse([x - r, y - r, x + r, y + r], outline=light, width=3)
        elif shape == "rect":
            draw.rectangle([x - r, y - r * 0.6, x + r, y + r * 0.6], fill=light)
        elif shape == "stripe":
            draw.line([(x - r * 2, y + r * 2), (x + r * 2, y - r * 2)], fill=light, width=4)
        else:  # "hstripe"
            draw.line([(0, y), (width, y)], fill=light, width=3)
    band_top = int(height * 0.82)
    draw.rectangle([0, band_top, width, height], fill=(16, 16, 20))
    for line in range(2):
        y = band_top + 6 + line * 9
        length = rng.uniform(0.4, 0.85) * width
        draw.line([(width / 2 - length / 2, y), (width / 2 + length / 2, y)], fill=(230, 230, 230), width=3)
    return image


def _video_codec() -> str:
    import av

    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # PyAV builds differ in which encoders they ship
            continue
    raise OptionalDependencyMissing(
        "PyAV has neither an H.264 (libx264) nor an MPEG-4 encoder",
        hint="install the PyAV wheel from PyPI (`pip install av`), which ships both",
    )


def write_trailer(path: str | os.PathLike, poster, genre_row: pd.Series) -> Path:
    """A short clip panning over the poster at the genre's pace, written with PyAV."""
    import av
    from PIL import Image

    width, height = TRAILER_SIZE
    names = [g for g in GENRES if genre_row[g]]
    pace = max(GENRE_STYLE[g][2] for g in names)
    colour = np.array(GENRE_STYLE[names[0]][0], dtype=np.uint8)
    big = np.asarray(poster.resize((width + 32, height + 48), Image.BILINEAR))
    yy, xx = np.mgrid[0:height, 0:width]
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_video_codec(), rate=TRAILER_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1  # deterministic output
        if stream.codec_context.name == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "30"}
        for f in range(TRAILER_FPS * TRAILER_SECONDS):
            shift, rise = int(f * pace) % 32, int(f * pace * 0.5) % 48
            frame = big[rise : rise + height, shift : shift + width].copy()
            cx = width / 2 + np.sin(f * 0.2 * pace) * width / 3
            cy = height / 2 + np.cos(f * 0.15 * pace) * height / 4
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 64
            frame[disc] = colour
            if "Horror" in names and f % 6 < 2:
                frame = (frame * 0.35).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# ---- reading the cache --------------------------------------------------------------------------
def _read_demo(folder: Path) -> Dataset:
    from recsys.data.posters import media_paths, poster_paths

    manifest = json.loads((folder / "manifest.json").read_text())
    if not isinstance(manifest, dict):
        raise ValueError("manifest.json is not an object")
    ratings = pd.read_csv(
        folder / "ratings.csv",
        dtype={"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"},
    )
    items = pd.read_csv(folder / "items.csv", index_col="item_id", dtype={"year": "Int64"})
    items.index = items.index.astype("int64")
    genres = pd.read_csv(folder / "genres.csv", index_col="item_id").astype("uint8")
    genres.index = items.index
    users = pd.read_csv(folder / "users.csv", index_col="user_id", dtype={"age": "Int64"})
    if len(ratings) != manifest["ratings"] or len(items) != manifest["movies"] or len(users) != manifest["users"]:
        raise ValueError("its tables are shorter or longer than its manifest says (cut short?)")
    posters = poster_paths(items.index, folder / "posters")
    trailers = media_paths(items.index, folder / "trailers", (".mp4",)).rename("trailer")
    return Dataset(
        name="demo",
        ratings=ratings,
        items=items,
        genres=genres,
        users=users,
        posters=posters,
        trailers=trailers,
        synthetic=True,
        rating_scale=(1.0, 5.0),
        source_dir=folder,
        notes={
            "seed": manifest["seed"],
            "variance_share": manifest["variance_share"],
            "description": "synthetic: generated by recsys.data.demo (see its docstring)",
        },
    )
