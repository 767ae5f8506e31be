"""Known datasets, where they live in the data directory, and `load_dataset`.

Data directory layout (``recsys.config.data_dir()``: --data-dir / sidebar, else $RECSYS_DATA_DIR)::

    <data_dir>/ml-100k/u.data ...            one folder per dataset, as extracted from GroupLens
    <data_dir>/ml-1m/ratings.dat ...
    <data_dir>/ml-latest-small/ratings.csv ...
    <data_dir>/posters/<dataset>/{item_id}.jpg   posters numbered like the dataset (e.g. TMDB)
    <data_dir>/posters-ml1m/{MovieID}.jpg        posters numbered by ML-1M MovieID
    <data_dir>/trailers/<dataset>/{item_id}.mp4  trailers numbered like the dataset

Poster lookup order, first hit per item wins:

1. ``<data_dir>/posters/<dataset>/{item_id}.*``;
2. for datasets numbered like ML-1M (ml-1m, ml-latest-small, ml-20m, ml-25m: the IDs up to
   3952 are the same films): ``<data_dir>/posters-ml1m/{item_id}.*``;
3. for ML-100K: its items are matched to ML-1M MovieIDs by title and year
   (:func:`recsys.data.posters.match_ml100k_to_ml1m`, needs ``<data_dir>/ml-1m/movies.dat``), then
   ``<data_dir>/posters-ml1m/{MovieID}.*``.

Trailers: ``<data_dir>/trailers/<dataset>/{item_id}.<mp4|webm|mkv|mov|avi|m4v>``.
The synthetic "demo" dataset is always available: it is generated (see recsys.data.demo).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.cache import atomic_save
from recsys.config import cache_dir
from recsys.config import data_dir as resolve_data_dir
from recsys.data.dataset import Dataset
from recsys.data.generate import GENERATED_MARKER
from recsys.data.movielens import load_ml1m, load_ml100k, load_movielens_csv
from recsys.data.posters import match_ml100k_to_ml1m, poster_paths
from recsys.data.trailers import trailer_paths
from recsys.errors import DatasetNotFound, InvalidParameter, StorageError

log = logging.getLogger(__name__)

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
ML1M_POSTER_FOLDER = "posters-ml1m"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    folder: str  # folder inside the data directory (the archive's top-level folder)
    required_files: tuple[str, ...]
    url: str | None = None  # GroupLens archive
    checksum: str | None = None  # "md5:<hex>" or "sha256:<hex>" of the archive (GroupLens publishes md5)
    size: str = ""
    synthetic: bool = False
    ml1m_numbering: bool = False  # item ids are ML-1M MovieIDs (posters-ml1m applies directly)
    loader: Callable[[Path, str], Dataset] | None = None

    def download_hint(self, root: str | os.PathLike = "DATA_DIR") -> str:
        if self.url is None:
            return ""
        return (
            f"Download {self.url} ({self.size}) and unzip it into {root} so that "
            f"{Path(root) / self.folder / self.required_files[0]} exists, or run "
            f"`python -m recsys download {self.name} --data-dir {root}`."
        )


def _csv_family(name: str, description: str, *, checksum: str | None, size: str) -> DatasetInfo:
    """A GroupLens CSV-family dataset: archive and folder named after it, ML-1M movie ids."""
    return DatasetInfo(
        name,
        description,
        folder=name,
        required_files=("ratings.csv", "movies.csv"),
        url=f"{GROUPLENS}/{name}.zip",
        checksum=checksum,
        size=size,
        ml1m_numbering=True,
        loader=load_movielens_csv,
    )


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "demo",
            "Synthetic offline demo: ~300 generated movies with drawn posters and "
            "trailers, ~400 users, ratings from a latent model with a visual taste component.",
            folder="",
            required_files=(),
            size="generated, ~10 MB",
            synthetic=True,
        ),
        DatasetInfo(
            "ml-100k",
            "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users "
            "with age, gender and occupation (1998).",
            folder="ml-100k",
            required_files=("u.data", "u.item", "u.user", "u.genre"),
            url=f"{GROUPLENS}/ml-100k.zip",
            checksum="md5:0e33842e24a9c977be4e0107933c0723",
            size="5 MB",
            loader=load_ml100k,
        ),
        DatasetInfo(
            "ml-1m",
            "MovieLens 1M: 1,000,209 ratings (1-5) of 3,706 movies by 6,040 users "
            "with age group, gender and occupation (2003).",
            folder="ml-1m",
            required_files=("ratings.dat", "movies.dat", "users.dat"),
            url=f"{GROUPLENS}/ml-1m.zip",
            checksum="md5:c4d9eecfca2ab87c1945afe126590906",
            size="6 MB",
            ml1m_numbering=True,
            loader=load_ml1m,
        ),
        # GroupLens refreshes ml-latest-small in place, so its checksum is the published .md5 file.
        _csv_family(
            "ml-latest-small",
            "MovieLens latest small: ~100,000 ratings (0.5-5) of ~9,700 "
            "movies by ~600 users, with TMDB links; no demographics.",
            checksum=None,
            size="1 MB",
        ),
        _csv_family(
            "ml-20m",
            "MovieLens 20M: 20,000,263 ratings (0.5-5) of 27,278 movies by 138,493 "
            "users (2015); the ML-20M YouTube trailer list uses its IDs.",
            checksum="md5:cd245b17a1ae2cc31bb14903e1204af3",
            size="190 MB",
        ),
        _csv_family(
            "ml-25m",
            "MovieLens 25M: 25,000,095 ratings (0.5-5) of 62,423 movies by 162,541 users (2019).",
            checksum="md5:6b51fb2759a8657d3bfcbfc42b592ada",
            size="250 MB",
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise InvalidParameter(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def find_dataset_folder(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder holding all required files of `name`: <data_dir>/<folder>, or data_dir itself."""
    info = dataset_info(name)
    if info.synthetic:
        return None
    root = resolve_data_dir(data_dir)
    for folder in (root / info.folder, root):
        if all((folder / f).is_file() for f in info.required_files):
            return folder
    return None


def _not_found_message(info: DatasetInfo, root: Path) -> str:
    folder = root / info.folder
    missing = [f for f in info.required_files if not (folder / f).is_file()]
    state = f"{folder} lacks {', '.join(missing)}" if folder.is_dir() else f"{folder} does not exist"
    return f"dataset {info.name!r} not found: {state}. {info.download_hint(root)}"


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by registry name, with posters and trailers attached (see module docstring).

    Raises DatasetNotFound (a FileNotFoundError) saying what to download from where and where to
    put it; DataFormatError (a ValueError) if a file is malformed.
    """
    info = dataset_info(name)
    if info.synthetic:
        from recsys.data.demo import load_demo

        return load_demo(seed=seed)
    root = resolve_data_dir(data_dir)
    folder = find_dataset_folder(name, root)
    if folder is None:
        raise DatasetNotFound(_not_found_message(info, root))
    log.info("loading dataset %s from %s", name, folder)
    dataset = info.loader(folder, name)
    attach_posters(dataset, root)
    attach_trailers(dataset, root)
    return dataset


# ---- media ------------------------------------------------------------------------------------------
_MATCH_CACHE: dict[str, pd.DataFrame] = {}
MATCHER_VERSION = 1  # bump when the title matcher's rules change: invalidates the on-disk cache


def ml100k_to_ml1m(dataset: Dataset, root: Path) -> pd.DataFrame | None:
    """The title matcher's result for an ML-100K dataset, or None without ml-1m/movies.dat.

    Cached in memory and in cache_dir()/title-match/ under a digest of the titles on both sides:
    the app, the CLI and the tests load ML-100K often, and matching costs about half a second.
    The disk cache is best effort: an unreadable file is recomputed, an unwritable folder (a
    read-only cache, a full disk) only means the match is not kept.
    """
    movies_dat = root / "ml-1m" / "movies.dat"
    if not movies_dat.is_file():
        return None
    digest = hashlib.sha256(f"v{MATCHER_VERSION}".encode())
    digest.update(movies_dat.read_bytes())
    digest.update("\n".join(dataset.items["title"].astype(str)).encode())
    key = digest.hexdigest()[:20]
    if key not in _MATCH_CACHE:
        try:
            cached = cache_dir() / "title-match" / f"ml100k-to-ml1m-{key}.csv"
        except OSError as exc:  # no cache folder at all (read-only home): match without keeping it
            log.warning("title matches not cached: %s", exc)
            cached = None
        frame = None
        if cached is not None and cached.is_file():
            try:
                frame = pd.read_csv(cached, index_col="item_id", dtype={"ml1m_movie_id": "Int64", "match": object})
                if list(frame.columns) != ["ml1m_movie_id", "match"] or not frame.index.equals(dataset.items.index):
                    raise ValueError("not the matches of these items (cut short or foreign)")
                log.info("ML-100K -> ML-1M title matches read from %s", cached)
            except Exception as exc:  # noqa: BLE001 - a damaged cache file of any kind is recomputed, not trusted
                log.warning("title-match cache %s is unreadable (%s); matching again", cached, exc)
                frame = None
        if frame is None:
            frame = match_ml100k_to_ml1m(dataset.items, movies_dat)
            log.info(
                "ML-100K -> ML-1M titles matched (%d of %d)", int(frame["ml1m_movie_id"].notna().sum()), len(frame)
            )
            if cached is not None:
                try:
                    atomic_save(cached, frame.to_csv)
                except StorageError as exc:
                    log.warning("title matches not cached: %s", exc)
        if len(_MATCH_CACHE) >= 4:
            _MATCH_CACHE.pop(next(iter(_MATCH_CACHE)))
        _MATCH_CACHE[key] = frame
    return _MATCH_CACHE[key].reindex(dataset.items.index)


def attach_posters(dataset: Dataset, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Fill dataset.posters from the local folders, in the documented lookup order."""
    root = resolve_data_dir(data_dir)
    info = DATASETS.get(dataset.name)
    posters = poster_paths(dataset.items.index, root / "posters" / dataset.name)
    sources = {"posters/" + dataset.name: int(posters.notna().sum())}
    ml1m_folder = root / ML1M_POSTER_FOLDER
    if info is not None and info.ml1m_numbering and not dataset.synthetic:  # generated ids are not films
        extra = poster_paths(dataset.items.index, ml1m_folder)
        sources[ML1M_POSTER_FOLDER] = int((posters.isna() & extra.notna()).sum())
        posters = posters.fillna(extra)
    elif dataset.name == "ml-100k" or (info is None and "release_date" in dataset.items.columns):
        matches = ml100k_to_ml1m(dataset, root)
        if matches is None:
            dataset.notes["poster_warning"] = (
                f"ML-100K posters are found through ML-1M MovieIDs; the title matcher needs "
                f"{root / 'ml-1m' / 'movies.dat'} (run `python -m recsys download ml-1m`)."
            )
        else:
            dataset.items["ml1m_movie_id"] = matches["ml1m_movie_id"].reindex(dataset.items.index)
            dataset.notes["ml1m_match"] = matches["match"].fillna("unmatched").value_counts().to_dict()
            ml1m_ids = matches["ml1m_movie_id"].dropna().astype("int64")
            by_ml1m = poster_paths(pd.Index(ml1m_ids.unique()), ml1m_folder)
            extra = pd.Series(by_ml1m.reindex(ml1m_ids.to_numpy()).to_numpy(), index=ml1m_ids.index)
            extra = extra.reindex(dataset.items.index)
            sources[ML1M_POSTER_FOLDER + " via title match"] = int((posters.isna() & extra.notna()).sum())
            posters = posters.where(posters.notna(), extra)
    dataset.posters = posters.astype(object).where(posters.notna(), None).rename("poster")
    dataset.notes["poster_sources"] = sources
    return dataset


def attach_trailers(dataset: Dataset, data_dir: str | os.PathLike | None = None) -> Dataset:
    root = resolve_data_dir(data_dir)
    dataset.trailers = trailer_paths(dataset.items.index, root / "trailers" / dataset.name)
    return dataset


# ---- listing ---------------------------------------------------------------------------------------
def available_datasets(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per known dataset: name, present, synthetic, description, size, url, folder."""
    root = resolve_data_dir(data_dir)
    rows = []
    for info in DATASETS.values():
        folder = find_dataset_folder(info.name, root) if not info.synthetic else None
        # a folder written by `recsys generate` (GENERATED marker) holds synthetic data
        generated = folder is not None and (folder / GENERATED_MARKER).is_file()
        rows.append(
            {
                "name": info.name,
                "present": True if info.synthetic else folder is not None,
                "synthetic": info.synthetic or generated,
                "description": info.description,
                "size": info.size,
                "url": info.url,
                "folder": str(folder) if folder is not None else None,
            }
        )
    return pd.DataFrame(rows)


def default_dataset_name(data_dir: str | os.PathLike | None = None) -> str:
    """ "ml-100k" when it is in the data directory, else the always-available synthetic "demo"."""
    return "ml-100k" if find_dataset_folder("ml-100k", data_dir) is not None else "demo"
