"""Our factorization machine against myFM 0.4.0 (the reference Bayesian FM, libFM's MCMC) on ML-100K.

Both get the same seed-s 80/20 holdouts of ``recsys.eval.splits`` (s = 0..4 by default), the same
rank, sweeps and kept samples (myFM: ``n_iter`` = sweeps, ``n_kept_samples`` = sweeps - burn-in;
its sampler seed = s, as ours), and the same inputs, with myFM's relation blocks and one parameter
group per block (libFM's ``-meta`` grouping):

    ids       one-hot user | one-hot item
    genres    ids + the item's genres, each row summing to 1
    implicit  genres + the items the user rated and the users who rated the item, rows 1/sqrt(n)
              ("SVD++ flipped", Rendle et al. 2019), from the training ratings only

Predictions of both are clipped to 1..5; ours uses its default rule for the few test items unseen
in training (``unseen="user_average"``; the per-seed lines also show ``"prior"``, the prior mean,
which is what myFM's never-updated columns average to). Ours also runs with lite0 poster features (PCA on the
training items) as a further block when they are cached (``recsys extract``). Timings are fit
seconds on this machine (ours after a warm-up fit that compiles its numba kernels once).

    .venv/bin/python bench/fm_vs_myfm.py [--seeds 0,1,2,3,4] [--sweeps 200] [--burn-in 10] [--rank 10]

Last line: ours_ids=… myfm_ids=… ours_genres=… myfm_genres=… ours_implicit=… myfm_implicit=… (seed 0),
the 5-seed means (``*_mean``), fit seconds (``*_s``, seed 0), ours_posters, ours_defaults (the FM's
default settings on ids + genres) and the issue's bars.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
from _data import SHARED_DATA_DIR

from recsys.data import load_dataset
from recsys.eval.metrics import rmse
from recsys.eval.splits import make_splits
from recsys.features.baselines import genre_features
from recsys.models.fm import FactorizationMachine

CONFIGS = ("ids", "genres", "implicit")


def implicit_rows(train: pd.DataFrame, user_index: pd.Index, item_index: pd.Index):
    """(users x items, items x users) 1/sqrt(count)-normalised rating patterns of the training data."""
    users = user_index.get_indexer(train["user_id"])
    items = item_index.get_indexer(train["item_id"])
    pattern = sp.csr_matrix((np.ones(len(users)), (users, items)), shape=(len(user_index), len(item_index)))
    by_user = sp.diags(1 / np.sqrt(np.maximum(np.asarray(pattern.sum(1)).ravel(), 1))) @ pattern
    by_item = sp.diags(1 / np.sqrt(np.maximum(np.asarray(pattern.sum(0)).ravel(), 1))) @ pattern.T.tocsr()
    return by_user.tocsr(), by_item.tocsr()


def run_myfm(dataset, train, test, config: str, seed: int, args) -> tuple[np.ndarray, float, None]:
    import myfm
    from myfm import RelationBlock

    user_index = pd.Index(np.sort(dataset.ratings["user_id"].unique()))
    item_index = pd.Index(np.sort(dataset.items.index.to_numpy()))
    user_blocks, item_blocks = (
        [sp.identity(len(user_index), format="csr")],
        [sp.identity(len(item_index), format="csr")],
    )
    if config == "implicit":
        by_user, by_item = implicit_rows(train, user_index, item_index)
        user_blocks.append(by_user)
        item_blocks.append(by_item)
    if config in ("genres", "implicit"):
        genres = dataset.genres.reindex(item_index).to_numpy(dtype=np.float64)
        item_blocks.append(sp.csr_matrix(genres / np.maximum(genres.sum(1, keepdims=True), 1)))
    group_shapes = [block.shape[1] for block in user_blocks + item_blocks]
    user_rows, item_rows = sp.hstack(user_blocks, format="csr"), sp.hstack(item_blocks, format="csr")

    def relations(frame):
        return [
            RelationBlock(user_index.get_indexer(frame["user_id"]), user_rows),
            RelationBlock(item_index.get_indexer(frame["item_id"]), item_rows),
        ]

    model = myfm.MyFMRegressor(rank=args.rank, random_seed=seed)
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # myFM's tqdm bar
        model.fit(
            None,
            train["rating"].to_numpy(dtype=np.float64),
            X_rel=relations(train),
            n_iter=args.sweeps,
            n_kept_samples=args.sweeps - args.burn_in,
            group_shapes=group_shapes,
            callback=lambda *_: (False, None),
        )
    seconds = time.perf_counter() - started
    return np.clip(model.predict(None, relations(test)), 1.0, 5.0), seconds, None


def run_ours(dataset, train, test, config: str, seed: int, args, extra=None):
    side = {"genres": genre_features(dataset)} if config != "ids" else {}
    side.update(extra or {})
    model = FactorizationMachine(
        n_factors=args.rank,
        side_features=side or None,
        implicit="both" if config != "ids" and config != "genres" else "none",
        n_epochs=args.sweeps,
        burn_in=args.burn_in,
        seed=seed,
    ).fit(train)
    users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
    predictions = model.predict(users, items)  # the default rule for unseen items (user_average)
    prior = model.set_params(unseen="prior").predict(users, items)  # the prior mean, as myFM's unseen columns
    return predictions, model.fit_seconds_, prior


def poster_block(dataset):
    try:
        from recsys.features.representations import resolve

        return resolve(dataset, "poster:tf_efficientnet_lite0")
    except Exception as exc:  # noqa: BLE001 - the comparison with myFM does not need posters
        print(f"note: no lite0 poster features ({type(exc).__name__}: {exc}); ours_posters=nan")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--burn-in", type=int, default=10)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--no-posters", action="store_true")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    try:
        import myfm  # noqa: F401
    except ImportError:
        print("note: myfm is not installed (pip install -r requirements-dev.txt); myfm_* = nan")
        have_myfm = False
    else:
        have_myfm = True

    dataset = load_dataset("ml-100k", args.data_dir)
    warm = make_splits(dataset.ratings, "holdout", seed=0, test_size=0.2)[0].train.head(2000)
    FactorizationMachine(
        n_factors=2, implicit="both", side_features=genre_features(dataset), n_epochs=2, burn_in=1
    ).fit(warm)  # compiles the numba kernels (cached on disk after the first run)
    posters = None if args.no_posters else poster_block(dataset)
    print(
        f"ml-100k, holdout 80/20, seeds {seeds}; rank {args.rank}, {args.sweeps} sweeps, "
        f"{args.sweeps - args.burn_in} kept samples; RMSE clipped to 1..5"
    )
    rows = []
    for seed in seeds:
        train, test = make_splits(dataset.ratings, "holdout", seed=seed, test_size=0.2)[0]
        truth = test["rating"].to_numpy(dtype=np.float64)
        for config in CONFIGS:
            runners = [("ours", run_ours)] + ([("myfm", run_myfm)] if have_myfm else [])
            for who, runner in runners:
                predictions, seconds, prior = runner(dataset, train, test, config, seed, args)
                rows.append(
                    {"seed": seed, "model": who, "config": config, "rmse": rmse(truth, predictions), "s": seconds}
                )
                note = "" if prior is None else f" (unseen='prior': {rmse(truth, prior):.4f})"
                print(
                    f"seed {seed} {who:5s} {config:9s} rmse={rows[-1]['rmse']:.4f}{note} fit={seconds:6.1f}s",
                    flush=True,
                )
        if posters is not None and seed == seeds[0]:
            predictions, seconds, _ = run_ours(dataset, train, test, "implicit", seed, args, {"posters": posters})
            rows.append(
                {"seed": seed, "model": "ours", "config": "posters", "rmse": rmse(truth, predictions), "s": seconds}
            )
            print(f"seed {seed} ours  implicit + lite0 posters rmse={rows[-1]['rmse']:.4f} fit={seconds:6.1f}s")
        if seed == seeds[0]:  # the product's defaults (k=20, 100 sweeps, implicit blocks) on ids + genres
            model = FactorizationMachine(side_features={"genres": genre_features(dataset)}, seed=seed).fit(train)
            predictions = model.predict(test["user_id"].to_numpy(), test["item_id"].to_numpy())
            rows.append(
                {
                    "seed": seed,
                    "model": "ours",
                    "config": "defaults",
                    "rmse": rmse(truth, predictions),
                    "s": model.fit_seconds_,
                }
            )
            print(
                f"seed {seed} ours  defaults (k={model.n_factors}, {model.n_epochs} sweeps, implicit={model.implicit}) "
                f"+ genres rmse={rows[-1]['rmse']:.4f} fit={model.fit_seconds_:6.1f}s",
                flush=True,
            )

    table = pd.DataFrame(rows)
    means = table.groupby(["model", "config"])[["rmse", "s"]].mean()
    print("\nmean over seeds", seeds)
    print(means.round(4).to_string())
    first = table[table.seed == seeds[0]].set_index(["model", "config"])

    def value(who, config, column="rmse", frame=first):
        return float(frame.loc[(who, config), column]) if (who, config) in frame.index else float("nan")

    parts = []
    for config in CONFIGS:
        parts += [f"ours_{config}={value('ours', config):.4f}", f"myfm_{config}={value('myfm', config):.4f}"]
    for config in CONFIGS:
        parts += [f"ours_{config}_mean={value('ours', config, frame=means):.4f}"]
        parts += [f"myfm_{config}_mean={value('myfm', config, frame=means):.4f}"]
    for config in CONFIGS:
        parts += [
            f"ours_{config}_s={value('ours', config, 's'):.1f}",
            f"myfm_{config}_s={value('myfm', config, 's'):.1f}",
        ]
    parts += [f"ours_posters={value('ours', 'posters'):.4f}", f"ours_posters_s={value('ours', 'posters', 's'):.1f}"]
    parts += [f"ours_defaults={value('ours', 'defaults'):.4f}", f"ours_defaults_s={value('ours', 'defaults', 's'):.1f}"]
    parity = all(
        value("ours", config, frame=frame) <= value("myfm", config, frame=frame) + 0.001
        for config in ("ids", "genres")
        for frame in (first, means)
    )
    implicit_bar = value("ours", "implicit") <= 0.8861 and value("ours", "implicit", "s") < 60
    parts += [f"bar_parity={'pass' if parity else 'FAIL'}", f"bar_implicit={'pass' if implicit_bar else 'FAIL'}"]
    print(" ".join(parts))


if __name__ == "__main__":
    main()
