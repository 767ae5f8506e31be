"""Published ML-100K splits (u1..u5, ua, ub) and the user's own train/test files, on generated data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.cli import main
from recsys.data import load_dataset
from recsys.errors import DataFormatError, DatasetNotFound, InvalidParameter
from recsys.eval.splits import published_splits, split_from_files

N_USERS, N_ITEMS = 25, 40


def _flags(on: int) -> str:
    return "|".join("1" if i == on else "0" for i in range(19))


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory) -> Path:
    """A small ML-100K folder with u.data and mku.sh-style u1..u5 and ua/ub .base/.test files."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "ml-100k"
    folder.mkdir()
    rng = np.random.default_rng(0)
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary"]
    genres += ["Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller"]
    genres += ["War", "Western"]
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
    items = [f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|{_flags(1 + i % 18)}" for i in range(1, N_ITEMS + 1)]
    (folder / "u.item").write_text("\n".join(items) + "\n")
    users = [f"{u}|{20 + u}|{'MF'[u % 2]}|other|85711" for u in range(1, N_USERS + 1)]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    rated = rng.random((N_USERS, N_ITEMS)) < 0.6
    user, item = np.nonzero(rated)
    ratings = pd.DataFrame(
        {"user_id": user + 1, "item_id": item + 1, "rating": rng.integers(1, 6, len(user)), "timestamp": 880000000}
    )
    ratings["timestamp"] += np.arange(len(ratings))
    write = lambda frame, name: frame.to_csv(folder / name, sep="\t", header=False, index=False)  # noqa: E731
    write(ratings, "u.data")
    for fold, test in enumerate(np.array_split(rng.permutation(len(ratings)), 5), start=1):
        in_test = np.zeros(len(ratings), dtype=bool)
        in_test[test] = True
        write(ratings[~in_test], f"u{fold}.base")
        write(ratings[in_test], f"u{fold}.test")
    for seed, name in enumerate(("ua", "ub")):  # exactly 10 ratings of every user in test
        test = ratings.groupby("user_id").sample(10, random_state=seed).sort_index()
        write(ratings.drop(test.index), f"{name}.base")
        write(test, f"{name}.test")
    return root


@pytest.fixture(scope="module")
def dataset(ml100k):
    return load_dataset("ml-100k", ml100k)


def _pairs(frame) -> set:
    return set(zip(frame.user_id, frame.item_id))


def test_published_split_is_the_files(dataset, ml100k):
    splits = published_splits(dataset, "u1")
    assert len(splits) == 1 and splits.kind == "published" and splits.params == {"name": "u1"}
    train, test = splits[0]
    names = ["user_id", "item_id", "rating", "timestamp"]
    base = pd.read_csv(ml100k / "ml-100k" / "u1.base", sep="\t", names=names)
    held = pd.read_csv(ml100k / "ml-100k" / "u1.test", sep="\t", names=names)
    np.testing.assert_array_equal(train[names].to_numpy(), base.to_numpy())
    np.testing.assert_array_equal(test[names].to_numpy(), held.to_numpy())
    assert train.dtypes.equals(dataset.ratings.dtypes)  # the loader's frame: ids int64, rating float32
    assert not _pairs(train) & _pairs(test) and len(train) + len(test) == dataset.n_ratings


def test_five_published_folds_partition_the_ratings_and_ua_holds_ten_per_user(dataset):
    folds = published_splits(dataset, "u1-u5")
    assert len(folds) == 5
    tests = [_pairs(fold.test) for fold in folds]
    assert set().union(*tests) == _pairs(dataset.ratings) and sum(map(len, tests)) == dataset.n_ratings
    ua = published_splits(dataset, "ua")[0]
    assert (ua.test.groupby("user_id").size() == 10).all()


def test_missing_or_unknown_published_split_is_a_clear_error(dataset, ml100k, tmp_path):
    with pytest.raises(InvalidParameter, match="unknown published split 'u9'"):
        published_splits(dataset, "u9")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.data", "u.item", "u.user", "u.genre", "u3.base"):
        (folder / name).write_bytes((ml100k / "ml-100k" / name).read_bytes())
    partial = load_dataset("ml-100k", tmp_path)
    with pytest.raises(DatasetNotFound, match="published split u3 needs u3.test") as info:
        published_splits(partial, "u3")
    assert "recsys download ml-100k" in info.value.user_message()


def test_split_files_accept_the_usual_layouts(dataset, tmp_path):
    ratings = dataset.ratings
    train, test = ratings.iloc[:300], ratings.iloc[300:]
    (tmp_path / "train.csv").write_text(train[["user_id", "item_id", "rating"]].to_csv(index=False))
    movielens = test.rename(columns={"user_id": "userId", "item_id": "movieId"})
    (tmp_path / "test.csv").write_text(movielens[["userId", "movieId", "rating", "timestamp"]].to_csv(index=False))
    (tmp_path / "test.tsv").write_text(test.to_csv(sep="\t", header=False, index=False))
    for test_file in ("test.csv", "test.tsv"):
        splits = split_from_files(tmp_path / "train.csv", tmp_path / test_file, dataset)
        fold = splits[0]
        assert splits.kind == "files" and len(fold.train) == 300 and len(fold.test) == len(test)
        np.testing.assert_array_equal(fold.test.to_numpy(), test.reset_index(drop=True).to_numpy())
        # the train file had no timestamps: they come from the dataset's own ratings
        np.testing.assert_array_equal(fold.train.timestamp.to_numpy(), train.timestamp.to_numpy())


@pytest.mark.parametrize(
    "train_rows, test_rows, bad_file, line, message",
    [
        (["1,1,4", "1,2,3"], ["1,999,4"], "test", 2, "item 999 is not in ml-100k's item list"),
        (["1,1,4", "77,2,3"], ["1,3,4"], "train", 3, "user 77 is not in ml-100k's user list"),
        (
            ["1,1,4", "1,2,3", "1,1,5"],
            ["1,3,4"],
            "train",
            4,
            r"duplicate rating of item 1 by user 1 \(first given on line 2\)",
        ),
        (
            ["1,1,4", "1,2,3"],
            ["2,5,4", "1,2,5"],
            "test",
            3,
            r"user 1 / item 2 is in the train file too \(train.csv line 3\)",
        ),
        (["1,1,4", "1,2,x"], ["1,3,4"], "train", 3, r"rating 'x' is not a number in 1..5"),
        (["1,1,4", "1,2,7"], ["1,3,4"], "train", 3, r"rating '7' is not a number in 1..5"),
        (["1,1.5,4"], ["1,3,4"], "train", 2, r"item_id '1.5' is not an integer"),
    ],
)
def test_split_files_are_validated_like_the_loaders(dataset, tmp_path, train_rows, test_rows, bad_file, line, message):
    header = "user_id,item_id,rating\n"
    (tmp_path / "train.csv").write_text(header + "\n".join(train_rows) + "\n")
    (tmp_path / "test.csv").write_text(header + "\n".join(test_rows) + "\n")
    with pytest.raises(DataFormatError, match=message) as info:
        split_from_files(tmp_path / "train.csv", tmp_path / "test.csv", dataset)
    assert Path(info.value.path).name == f"{bad_file}.csv" and info.value.line == line


def test_split_files_refuse_unreadable_files(dataset, tmp_path):
    (tmp_path / "ok.csv").write_text("user_id,item_id,rating\n1,1,4\n")
    for text, message in [
        ("", "no ratings in the file"),
        ("user_id,item_id,rating\n", "only a header"),
        ("user,film,stars\n1,1,4\n", "names no item_id column"),
        ("1 1 4\n", "cannot tell the separator"),
    ]:
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(DataFormatError, match=message):
            split_from_files(tmp_path / "ok.csv", tmp_path / "bad.csv", dataset)
    with pytest.raises(DatasetNotFound, match="does not exist"):
        split_from_files(tmp_path / "ok.csv", tmp_path / "absent.csv", dataset)


def test_evaluate_cli_takes_published_splits_and_split_files(ml100k, tmp_path, capsys):
    common = ["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(ml100k), "--representations", "ratings"]
    assert main([*common, "--k", "5", "--split", "u2"]) == 0
    out = capsys.readouterr().out
    assert "split published {'name': 'u2'} (1 fold)" in out and out.strip().splitlines()[-1].startswith(
        "best_ratings=K5"
    )
    folder = ml100k / "ml-100k"
    assert main([*common, "--k", "5", "--split-files", str(folder / "u3.base"), str(folder / "u3.test")]) == 0
    assert "split files" in capsys.readouterr().out
    (tmp_path / "test.csv").write_text("user_id,item_id,rating\n1,4000,3\n")
    assert main([*common, "--k", "5", "--split-files", str(folder / "u3.base"), str(tmp_path / "test.csv")]) == 1
    assert "test.csv:2: item 4000 is not in ml-100k's item list" in capsys.readouterr().err


def test_topn_cli_takes_published_splits_and_split_files(ml100k, capsys):
    common = ["topn", "--dataset", "ml-100k", "--data-dir", str(ml100k), "--features", "genre"]
    common += ["--alphas", "1,0.5", "--ks", "5", "--n", "3", "--guo-k", "5", "--metrics", "precision"]
    assert main([*common, "--split", "u1"]) == 0
    out = capsys.readouterr().out
    train_size = len(pd.read_csv(ml100k / "ml-100k" / "u1.base", sep="\t", header=None))
    assert f"u1 80%/20%: {train_size} train" in out
    folder = ml100k / "ml-100k"
    assert main([*common, "--split-files", str(folder / "ub.base"), str(folder / "ub.test")]) == 0
    out = capsys.readouterr().out
    base = len(pd.read_csv(folder / "ub.base", sep="\t", header=None))
    assert (
        f"split files {base / (base + 10 * N_USERS):.0%}/" in out and f": {base} train, {10 * N_USERS} held-out" in out
    )
