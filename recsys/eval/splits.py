"""Train/test splits that the app, the CLI and the benchmarks share.

Kinds (all deterministic for a seed):
- "holdout":    one random split, `test_size` of the ratings in test;
- "kfold":      `n_folds` disjoint test folds covering every rating once;
- "per_user":   every user keeps (1 − test_size) of their ratings in train and the rest in test
                (at least one rating each side for users with two or more ratings; users with a
                single rating stay in train);
- "cold_items": a share `item_share` of the items is held out entirely: all their ratings are in
                test and none in train (`n_folds` > 1 partitions the items instead).

A split is stored as the test row positions of each fold (train = the other rows, so folds are
disjoint by construction) plus a fingerprint of the ratings, as an .npz under
``cache_dir()/splits``. Loading checks the fingerprint, so a split is never silently applied to
different ratings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cache import atomic_save
from recsys.config import cache_dir
from recsys.errors import InvalidInput, InvalidParameter, StorageError
from recsys.models.base import check_count, check_ratings_frame

logger = logging.getLogger(__name__)

SPLIT_KINDS = ("holdout", "kfold", "per_user", "cold_items")


@dataclass
class Fold:
    """One train/test pair. `cold_items` lists the held-out items of a cold-start split."""

    fold: int
    train: pd.DataFrame
    test: pd.DataFrame
    test_positions: np.ndarray
    cold_items: np.ndarray | None = None

    def __iter__(self):  # `train, test = fold`
        return iter((self.train, self.test))


@dataclass
class Splits:
    kind: str
    params: dict
    fingerprint: str
    folds: list[Fold] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.folds)

    def __iter__(self):
        return iter(self.folds)

    def __getitem__(self, index: int) -> Fold:
        return self.folds[index]


def ratings_fingerprint(ratings: pd.DataFrame) -> str:
    """Hash of the (user, item, rating) rows in order: identifies the data a split belongs to."""
    check_ratings_frame(ratings)
    digest = hashlib.sha1()
    for column, dtype in (("user_id", np.int64), ("item_id", np.int64), ("rating", np.float64)):
        digest.update(np.ascontiguousarray(ratings[column].to_numpy(dtype=dtype)).tobytes())
    return digest.hexdigest()[:16]


def _check_share(value: float, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{what} must be between 0 and 1 (exclusive), got {value!r}") from None
    if not 0.0 < value < 1.0:
        raise InvalidParameter(f"{what} must be between 0 and 1 (exclusive), got {value}")
    return value


def _check_folds(n_folds: int) -> int:
    return check_count(n_folds, "n_folds", minimum=2)


def _holdout(ratings, rng, test_size):
    n_test = int(round(len(ratings) * _check_share(test_size, "test_size")))
    if not 0 < n_test < len(ratings):
        raise InvalidParameter(f"test_size {test_size} leaves an empty train or test set for {len(ratings)} ratings")
    return [np.sort(rng.permutation(len(ratings))[:n_test])], [None]


def _kfold(ratings, rng, n_folds):
    n_folds = _check_folds(n_folds)
    if len(ratings) < n_folds:
        raise InvalidParameter(f"{len(ratings)} ratings cannot fill {n_folds} folds")
    permutation = rng.permutation(len(ratings))
    return [np.sort(part) for part in np.array_split(permutation, n_folds)], [None] * n_folds


def _per_user(ratings, rng, test_size):
    test_size = _check_share(test_size, "test_size")
    users = ratings["user_id"].to_numpy()
    # Random order within each user: shuffle once, then group stably by user.
    shuffled = rng.permutation(len(ratings))
    shuffled = shuffled[np.argsort(users[shuffled], kind="stable")]
    grouped_users = users[shuffled]
    starts = np.flatnonzero(np.r_[True, grouped_users[1:] != grouped_users[:-1]])
    counts = np.diff(np.r_[starts, len(shuffled)])
    n_test = np.where(counts >= 2, np.clip(np.round(counts * test_size), 1, counts - 1), 0).astype(np.int64)
    rank_in_user = np.arange(len(shuffled)) - np.repeat(starts, counts)
    in_test = rank_in_user < np.repeat(n_test, counts)
    return [np.sort(shuffled[in_test])], [None]


def _cold_items(ratings, rng, item_share, n_folds):
    items = np.sort(ratings["item_id"].unique())
    permuted = items[rng.permutation(len(items))]
    if n_folds is None or n_folds == 1:
        n_cold = int(round(len(items) * _check_share(item_share, "item_share")))
        if not 0 < n_cold < len(items):
            raise InvalidParameter(f"item_share {item_share} holds out no item or every item of {len(items)}")
        groups = [permuted[:n_cold]]
    else:
        groups = np.array_split(permuted, _check_folds(n_folds))
    item_ids = ratings["item_id"].to_numpy()
    positions = [np.flatnonzero(np.isin(item_ids, group)) for group in groups]
    return positions, [np.sort(group) for group in groups]


def make_splits(
    ratings: pd.DataFrame,
    kind: str = "holdout",
    seed: int = 0,
    test_size: float = 0.2,
    n_folds: int | None = None,
    item_share: float = 0.2,
) -> Splits:
    """Split `ratings` (see the module docstring for the kinds); deterministic for `seed`."""
    check_ratings_frame(ratings)
    params = _split_params(kind, seed, test_size, n_folds, item_share)
    rng = np.random.default_rng(seed)
    if kind == "holdout":
        positions, cold = _holdout(ratings, rng, test_size)
    elif kind == "kfold":
        positions, cold = _kfold(ratings, rng, n_folds or 5)
    elif kind == "per_user":
        positions, cold = _per_user(ratings, rng, test_size)
    else:
        positions, cold = _cold_items(ratings, rng, item_share, n_folds)
    logger.debug("made a %s split %s (%d folds) of %d ratings", kind, params, len(positions), len(ratings))
    return _assemble(ratings, kind, params, ratings_fingerprint(ratings), positions, cold)


def _split_params(kind: str, seed: int, test_size: float, n_folds: int | None, item_share: float) -> dict:
    """The parameters that define a split of `kind` (Splits.params and the saved file's name)."""
    params = {
        "holdout": {"seed": seed, "test_size": test_size},
        "kfold": {"seed": seed, "n_folds": n_folds or 5},
        "per_user": {"seed": seed, "test_size": test_size},
        "cold_items": {"seed": seed, "item_share": item_share, "n_folds": n_folds or 1},
    }.get(kind)
    if params is None:
        raise InvalidParameter(f"unknown split kind {kind!r}; choose from {', '.join(SPLIT_KINDS)}")
    return params


def _assemble(ratings, kind, params, fingerprint, positions, cold) -> Splits:
    folds = []
    for number, (test_positions, cold_items) in enumerate(zip(positions, cold)):
        in_test = np.zeros(len(ratings), dtype=bool)
        in_test[test_positions] = True
        folds.append(
            Fold(
                fold=number,
                train=ratings.iloc[np.flatnonzero(~in_test)].reset_index(drop=True),
                test=ratings.iloc[test_positions].reset_index(drop=True),
                test_positions=np.asarray(test_positions, dtype=np.int64),
                cold_items=cold_items,
            )
        )
    return Splits(kind=kind, params=params, fingerprint=fingerprint, folds=folds)


# ---- persistence ------------------------------------------------------------------------------
def save_splits(splits: Splits, path: str | Path) -> Path:
    """Write `splits` as an .npz atomically (an interrupted save never leaves a half-written split)."""
    path = Path(path)
    arrays = {f"test_{fold.fold}": fold.test_positions for fold in splits}
    arrays.update({f"cold_{fold.fold}": fold.cold_items for fold in splits if fold.cold_items is not None})
    header = json.dumps(
        {"kind": splits.kind, "params": splits.params, "fingerprint": splits.fingerprint, "n_folds": len(splits)}
    )
    atomic_save(path, lambda tmp: np.savez_compressed(tmp, header=np.array(header), **arrays))
    return path


def load_splits(path: str | Path, ratings: pd.DataFrame) -> Splits:
    """Re-create the folds of a saved split on `ratings`; refuses ratings with another fingerprint."""
    path = Path(path)
    if not path.exists():
        raise StorageError(f"no saved split at {path}")
    with np.load(path, allow_pickle=False) as stored:
        header = json.loads(str(stored["header"]))
        positions = [stored[f"test_{number}"] for number in range(header["n_folds"])]
        cold = [stored[f"cold_{n}"] if f"cold_{n}" in stored.files else None for n in range(header["n_folds"])]
    fingerprint = ratings_fingerprint(ratings)
    if fingerprint != header["fingerprint"]:
        raise InvalidInput(
            f"split {path.name} was made for other ratings (fingerprint {header['fingerprint']}, "
            f"these ratings {fingerprint}); make a new split"
        )
    return _assemble(ratings, header["kind"], header["params"], fingerprint, positions, cold)


def split_path(dataset_name: str, kind: str, **params) -> Path:
    label = "-".join(f"{key}{params[key]}" for key in sorted(params) if params[key] is not None)
    return cache_dir() / "splits" / f"{dataset_name}-{kind}-{label}.npz"


def cached_splits(
    ratings: pd.DataFrame,
    dataset_name: str,
    kind: str = "holdout",
    seed: int = 0,
    test_size: float = 0.2,
    n_folds: int | None = None,
    item_share: float = 0.2,
) -> Splits:
    """The saved split for these settings if it exists for these ratings, else a new one (saved).

    A saved split of the same name made for other ratings (the dataset changed) or unreadable is
    replaced, with a logged note; a cache folder that cannot be written only costs the saving.
    """
    params = _split_params(kind, seed, test_size, n_folds, item_share)
    path = split_path(dataset_name, kind, **params)
    if path.exists():
        try:
            splits = load_splits(path, ratings)
        except InvalidInput as exc:
            logger.info("split %s: %s", path.name, exc)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
            logger.warning("split %s is unreadable (%s): making it again", path, exc)
        else:
            logger.info("split loaded: %s (%s %s)", path.name, kind, params)
            return splits
    splits = make_splits(ratings, kind, seed=seed, test_size=test_size, n_folds=n_folds, item_share=item_share)
    try:
        save_splits(splits, path)
    except StorageError as exc:
        logger.warning("split made but not saved (%s): it is remade on the next run", exc.user_message())
    else:
        logger.info("split made and saved: %s (%s %s)", path.name, kind, params)
    return splits


def per_user_split(
    ratings: pd.DataFrame, test_size: float = 0.2, seed: int = 0, dataset_name: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the project's per-user holdout: the one split of the top-N study, the
    Recommend page and the group evaluation (Audience page, `audience-eval`).

    With a dataset name the split is the saved one (checked against the ratings' fingerprint),
    else it is made fresh; both are the same for the same seed.
    """
    if dataset_name:
        splits = cached_splits(ratings, dataset_name, "per_user", seed=seed, test_size=test_size)
    else:
        splits = make_splits(ratings, "per_user", seed=seed, test_size=test_size)
    fold = splits[0]
    return fold.train, fold.test


# ---- published splits and split files ----------------------------------------------------------
# Results compare with papers only on the papers' splits: ML-100K ships u1..u5 (five disjoint 80/20
# folds, `mku.sh`) and ua/ub (exactly 10 ratings per user in test) as `<name>.base` / `<name>.test`.
PUBLISHED_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
PUBLISHED_CV = "u1-u5"  # all five u folds: the usual 5-fold cross-validation of ML-100K papers

_USER_COLUMNS = ("user_id", "userid", "user")
_ITEM_COLUMNS = ("item_id", "itemid", "movie_id", "movieid", "item", "movie")
_SEPARATORS = ("\t", "::", ",", ";", "|")


def published_split_names(name: str) -> list[str]:
    """`u1` -> ["u1"]; `u1-u5` -> the five u folds; anything else is refused."""
    if name == PUBLISHED_CV:
        return list(PUBLISHED_SPLITS[:5])
    if name not in PUBLISHED_SPLITS:
        choices = ", ".join((*PUBLISHED_SPLITS, PUBLISHED_CV))
        raise InvalidParameter(f"unknown published split {name!r}; choose from {choices}")
    return [name]


def published_splits(dataset, name: str) -> Splits:
    """ML-100K's published split(s) `name` (see PUBLISHED_SPLITS; ``"u1-u5"`` gives five folds)
    from ``<name>.base`` / ``<name>.test`` in the dataset's folder, each file validated like u.data.

    The GroupLens archive (``python -m recsys download ml-100k``) has these files; a folder without
    them raises DatasetNotFound naming the missing file.
    """
    from recsys.errors import DatasetNotFound

    names = published_split_names(name)
    folder = getattr(dataset, "source_dir", None)
    if folder is None or getattr(dataset, "synthetic", False):
        raise InvalidParameter(
            f"published splits ({name}) exist only for ML-100K loaded from its folder, not for '{dataset.name}'"
        )
    folder = Path(folder)
    folds = []
    for split in names:
        paths = [folder / f"{split}.base", folder / f"{split}.test"]
        for path in paths:
            if not path.is_file():
                raise DatasetNotFound(
                    f"{dataset.name}: the published split {split} needs {path.name} in {folder}, which is missing",
                    hint=f"GroupLens' ml-100k.zip has u1..u5/ua/ub .base/.test: `python -m recsys download {dataset.name}`",
                )
        train, test = (read_split_file(path, dataset) for path in paths)
        _check_no_overlap(train, test, paths[0], paths[1])
        folds.append((train, test))
    return _file_splits("published", {"name": name}, folds)


def split_from_files(train_path, test_path, dataset=None) -> Splits:
    """A train/test pair of rating files given by the user, validated like the loaders.

    Each file: CSV (or tab/``::``/``;``/``|`` separated) with a header naming the user, item and
    rating columns (``user_id,item_id,rating``, MovieLens' ``userId,movieId,rating[,timestamp]``)
    or no header and the columns in that order (u.data's layout). Refused with DataFormatError
    naming the file and line: unparsable values, ratings off the dataset's scale, a pair given
    twice, ids absent from `dataset`, a test pair that is also in the train file.
    """
    train_path, test_path = Path(train_path), Path(test_path)
    train, test = read_split_file(train_path, dataset), read_split_file(test_path, dataset)
    _check_no_overlap(train, test, train_path, test_path)
    return _file_splits("files", {"train": str(train_path), "test": str(test_path)}, [(train, test)])


def _file_splits(kind: str, params: dict, folds: list[tuple[pd.DataFrame, pd.DataFrame]]) -> Splits:
    """Splits of given (train, test) frames; test positions index the rows of train + test."""
    fingerprint = ratings_fingerprint(pd.concat([frame for pair in folds for frame in pair], ignore_index=True))
    made = [
        Fold(
            fold=number,
            train=train.reset_index(drop=True),
            test=test.reset_index(drop=True),
            test_positions=np.arange(len(train), len(train) + len(test), dtype=np.int64),
        )
        for number, (train, test) in enumerate(folds)
    ]
    logger.info("split from files: %s %s (%d folds)", kind, params, len(made))
    return Splits(kind=kind, params=params, fingerprint=fingerprint, folds=made)


def read_split_file(path, dataset=None) -> pd.DataFrame:
    """One rating file as the loaders' frame (user_id, item_id, rating float32, timestamp)."""
    import csv
    import io
    import re

    from recsys.errors import DataFormatError, DatasetNotFound

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFound(f"split file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataFormatError(path, None, "no ratings in the file (empty)")
    first = lines[0]
    sep = next((candidate for candidate in _SEPARATORS if candidate in first), None)
    if sep is None:
        raise DataFormatError(path, 1, "cannot tell the separator: expected commas, tabs, '::', ';' or '|'")
    fields = [field.strip() for field in first.split(sep)]
    header = any(_not_a_number(field) for field in fields)
    if header:
        lowered = [field.lower() for field in fields]
        columns = {}
        for role, names in (("user_id", _USER_COLUMNS), ("item_id", _ITEM_COLUMNS), ("rating", ("rating",))):
            found = next((lowered.index(name) for name in names if name in lowered), None)
            if found is None:
                raise DataFormatError(
                    path, 1, f"the header {first!r} names no {role} column (expected one of {', '.join(names)})"
                )
            columns[role] = found
        if "timestamp" in lowered:
            columns["timestamp"] = lowered.index("timestamp")
    else:
        if len(fields) < 3:
            raise DataFormatError(path, 1, f"expected user, item, rating[, timestamp], got {len(fields)} fields")
        columns = {"user_id": 0, "item_id": 1, "rating": 2}
        if len(fields) >= 4:
            columns["timestamp"] = 3
    first_line = 2 if header else 1
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep=re.escape(sep) if len(sep) > 1 else sep,
            header=None,
            skiprows=1 if header else 0,
            dtype=str,
            engine="python",
            keep_default_na=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
        )
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, None, "no ratings in the file (only a header)") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise DataFormatError(path, int(found.group(1)) if found else None, f"unreadable row ({exc})") from None
    if raw.empty:
        raise DataFormatError(path, None, "no ratings in the file (only a header)")

    def integers(role: str) -> np.ndarray:
        values = raw[columns[role]].str.strip()
        ok = values.str.fullmatch(r"[+-]?\d+")
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy())[0])
            raise DataFormatError(path, row + first_line, f"{role} {values.iloc[row]!r} is not an integer")
        digits = values.str.lstrip("+-").str.lstrip("0")  # beyond int64: refused, not an OverflowError
        huge = (digits.str.len() > 19) | ((digits.str.len() == 19) & (digits > "9223372036854775807"))
        if huge.any():
            row = int(np.flatnonzero(huge.to_numpy())[0])
            raise DataFormatError(path, row + first_line, f"{role} {values.iloc[row][:30]} is too large (over 2^63)")
        numbers = values.astype(np.int64).to_numpy()
        if role != "timestamp" and (numbers <= 0).any():
            row = int(np.flatnonzero(numbers <= 0)[0])
            raise DataFormatError(path, row + first_line, f"{role} {numbers[row]} is not positive")
        return numbers

    users, items = integers("user_id"), integers("item_id")
    ratings = pd.to_numeric(raw[columns["rating"]].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    low, high = getattr(dataset, "rating_scale", (-np.inf, np.inf))
    bad = ~np.isfinite(ratings) | (ratings < low) | (ratings > high)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = raw[columns["rating"]].iloc[row]
        raise DataFormatError(path, row + first_line, f"rating {value!r} is not a number in {low:g}..{high:g}")
    frame = pd.DataFrame({"user_id": users, "item_id": items, "rating": ratings.astype(np.float32)})
    duplicated = frame.duplicated(["user_id", "item_id"], keep="first").to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        user, item = int(users[row]), int(items[row])
        earlier = int(np.flatnonzero((users == user) & (items == item))[0])
        raise DataFormatError(
            path,
            row + first_line,
            f"duplicate rating of item {item} by user {user} (first given on line {earlier + first_line})",
        )
    if dataset is not None:
        known_items = dataset.items.index
        known_users = dataset.users.index if dataset.users is not None else dataset.ratings["user_id"].unique()
        for role, ids, known in (("item", items, known_items), ("user", users, known_users)):
            unknown = ~np.isin(ids, np.asarray(known))
            if unknown.any():
                row = int(np.flatnonzero(unknown)[0])
                raise DataFormatError(
                    path, row + first_line, f"{role} {ids[row]} is not in {dataset.name}'s {role} list"
                )
    if "timestamp" in columns:
        frame["timestamp"] = integers("timestamp")
    elif dataset is not None and "timestamp" in dataset.ratings:
        stamps = dataset.ratings.set_index(["user_id", "item_id"])["timestamp"]
        index = pd.MultiIndex.from_arrays([frame["user_id"], frame["item_id"]])
        frame["timestamp"] = stamps.reindex(index).fillna(0).astype(np.int64).to_numpy()
    else:
        frame["timestamp"] = np.zeros(len(frame), dtype=np.int64)
    frame.attrs["first_line"] = first_line
    return frame


def _not_a_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return True
    return False


def _check_no_overlap(train: pd.DataFrame, test: pd.DataFrame, train_path, test_path) -> None:
    """A test rating that is also a training rating would be predicted from itself."""
    from recsys.errors import DataFormatError

    train_keys = pd.MultiIndex.from_frame(train[["user_id", "item_id"]])
    test_keys = pd.MultiIndex.from_frame(test[["user_id", "item_id"]])
    shared = test_keys.isin(train_keys)
    if shared.any():
        row = int(np.flatnonzero(shared)[0])
        user, item = int(test["user_id"].iloc[row]), int(test["item_id"].iloc[row])
        train_row = int(train_keys.get_loc((user, item)))
        raise DataFormatError(
            test_path,
            row + test.attrs.get("first_line", 1),
            f"user {user} / item {item} is in the train file too ({Path(train_path).name} line "
            f"{train_row + train.attrs.get('first_line', 1)}): {int(shared.sum())} test pairs overlap the train file",
        )
