"""CLI subcommand ``evaluate``: the rating-prediction experiments, headless.

    python -m recsys evaluate rmse-k --dataset ml-100k --representations ratings,genre,poster:tf_efficientnet_lite0 --k 10:100:10
    python -m recsys evaluate fusion --dataset ml-100k --features genre --weights 0:1:0.1 --split kfold --folds 5
    python -m recsys evaluate cold-start --dataset ml-100k --features genre --item-share 0.2
    python -m recsys evaluate r2 --dataset ml-100k --features genre,poster:tf_efficientnet_lite0

Splits are cached (recsys.eval.splits), so repeated runs and the app compare on identical data.
rmse-k and fusion score a stated sample of the test ratings on large datasets (at most 10,000
test users and 1,000,000 test ratings, as the pages do; recsys.eval.sampling) and say so;
``--full`` scores them all, ``--max-users N`` / ``--max-test N`` set the sample.
Every command prints a table, writes it with --out (CSV), and ends with one key=value line.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from recsys.config import data_dir as resolve_data_dir
from recsys.errors import InvalidParameter


def parse_grid(text: str, kind=int) -> list:
    """ "10:100:10" (inclusive range) or "10,20,50" -> list of numbers."""
    text = text.strip()
    try:
        if ":" in text:
            start, stop, step = (kind(part) for part in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            values = [kind(round(start + step * i, 10)) for i in range(count)]
        else:
            values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidParameter(f"cannot read grid {text!r}: use start:stop:step or a comma list") from None
    if not values:
        raise InvalidParameter(f"grid {text!r} is empty")
    return values


def _progress(description: str):
    from recsys.data.commands import tqdm_progress

    return tqdm_progress(description, unit="step")


PUBLISHED_CHOICES = ("u1", "u2", "u3", "u4", "u5", "ua", "ub", "u1-u5")  # recsys.eval.splits.PUBLISHED_SPLITS


def _dataset_and_splits(args):
    from recsys.data import load_dataset
    from recsys.eval.splits import cached_splits

    dataset = load_dataset(args.dataset, resolve_data_dir(args.data_dir))
    if getattr(args, "split_files", None):  # a train/test pair of the user's own
        from recsys.eval.splits import split_from_files

        splits = split_from_files(*args.split_files, dataset=dataset)
    elif args.split in PUBLISHED_CHOICES:  # ML-100K's u1..u5, ua, ub from the dataset folder
        from recsys.eval.splits import published_splits

        splits = published_splits(dataset, args.split)
    else:
        splits = cached_splits(
            dataset.ratings,
            dataset.name,
            args.split,
            seed=args.seed,
            test_size=args.test_size,
            n_folds=args.folds,
            item_share=args.item_share,
        )
    print(
        f"{dataset.name}: {dataset.n_ratings} ratings; split {splits.kind} {splits.params} "
        f"({len(splits)} fold{'s' if len(splits) > 1 else ''})"
    )
    return dataset, splits


def _representations(dataset, text: str, extract: bool) -> dict:
    """spec text -> ItemFeatures (None for ratings), in the grammar of recsys.features.representations."""
    from recsys.features.representations import parse, resolve

    specs = [spec.strip() for spec in text.split(",") if spec.strip()]
    if not specs:
        raise InvalidParameter("no representation given")
    parsed = [parse(spec) for spec in specs]  # every spec checked before anything slow
    progress = _progress("features") if extract else None
    try:
        return {spec: resolve(dataset, p, extract=extract, progress=progress) for spec, p in zip(specs, parsed)}
    finally:
        if progress is not None:
            progress.close()


def _finish(frame: pd.DataFrame, args, summary: str) -> int:
    with pd.option_context("display.width", 160, "display.max_rows", 400):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    print(summary)
    return 0


def _sample(args, splits):
    """The stated test sample of a costly experiment (recsys.eval.sampling); --full: none."""
    from recsys.eval.sampling import sample_for_experiment

    if args.full:
        sample = sample_for_experiment(splits, max_test=None, max_users=None)
    else:
        sample = sample_for_experiment(splits, max_test=args.max_test, max_users=args.max_users, seed=args.seed)
    print(f"sample: {sample.description}" if sample.sampled else sample.description)
    return sample


def _sample_flags(parser: argparse.ArgumentParser) -> None:
    from recsys.eval.sampling import DEFAULT_MAX_TEST, DEFAULT_MAX_USERS

    parser.add_argument(
        "--full", action="store_true", help="score every test rating (default: the stated sample on large datasets)"
    )
    parser.add_argument(
        "--max-users",
        type=int,
        default=DEFAULT_MAX_USERS,
        help=f"score the test ratings of at most N random test users (default {DEFAULT_MAX_USERS:,}); "
        "training always uses every rating",
    )
    parser.add_argument(
        "--max-test", type=int, default=DEFAULT_MAX_TEST, help=f"at most N test ratings (default {DEFAULT_MAX_TEST:,})"
    )


def _rmse_k(args) -> int:
    from recsys.eval.experiments import rmse_vs_k
    from recsys.eval.metrics import summarise_folds

    if args.split == "cold_items":
        # Every test item is unseen in training: user KNN can only answer the global mean, so the
        # "curve" would be a flat table of global means. Refuse and name what measures cold start.
        raise InvalidParameter(
            "rmse-k on a cold-items split would only print the global mean (no held-out item has a neighbour "
            "who rated it)",
            hint=f"recsys evaluate cold-start --dataset {args.dataset} --features genre",
        )
    dataset, splits = _dataset_and_splits(args)
    representations = _representations(dataset, args.representations, args.extract)
    sample = _sample(args, splits)
    progress = _progress("rmse-k")
    try:
        frame = rmse_vs_k(
            sample.folds,
            representations,
            parse_grid(args.k),
            similarity=args.similarity,
            min_support=args.min_support,
            progress=progress,
        )
    finally:
        progress.close()
    table = summarise_folds(frame, ["representation", "k"]) if len(splits) > 1 else frame
    best = frame.groupby(["representation", "k"])["rmse"].mean().groupby(level=0)
    summary = " ".join(
        f"best_{name.replace(' ', '_')}=K{k}:{value:.4f}"
        for name, (k, value) in ((n, (s.idxmin()[1], s.min())) for n, s in best)
    )
    return _finish(table, args, summary)


def _fusion(args) -> int:
    from recsys.eval.experiments import best_fusion_weight, fusion_curve, fusion_summary

    dataset, splits = _dataset_and_splits(args)
    features = _representations(dataset, args.features, args.extract)
    name, item_features = next(iter(features.items()))
    if item_features is None:
        raise InvalidParameter("fusion needs item features (e.g. --features genre), not 'ratings'")
    sample = _sample(args, splits)
    progress = _progress("fusion")
    try:
        curve = fusion_curve(
            sample.folds,
            item_features,
            parse_grid(args.weights, float),
            k=args.knn_k,
            top_m=args.top_m,
            progress=progress,
        )
    finally:
        progress.close()
    best = best_fusion_weight(curve)
    summary = (
        f"features={name} best_weight={best['weight']:.2f} rmse={best['rmse']:.4f} "
        f"cf_rmse={best['cf_rmse']:.4f} gain={best['gain']:.4f}"
    )
    return _finish(fusion_summary(curve), args, summary)


def _cold_start(args) -> int:
    from recsys.eval.experiments import cold_start_rmse
    from recsys.models.content import ContentPredictor

    if args.split not in PUBLISHED_CHOICES:  # a published split or --split-files is used as given
        args.split = "cold_items"
    dataset, splits = _dataset_and_splits(args)
    features = _representations(dataset, args.features, args.extract)
    models = {
        f"content · {name}": ContentPredictor(f, top_m=args.top_m) for name, f in features.items() if f is not None
    }
    if not models:
        raise InvalidParameter("cold start needs item features (e.g. --features genre)")
    if args.fm:
        from recsys.models.fm import FactorizationMachine

        side = {name: f for name, f in features.items() if f is not None}
        models[f"FM · {'+'.join(side)}"] = FactorizationMachine(side_features=side, seed=args.seed)
    progress = _progress("cold-start")
    try:
        frame = cold_start_rmse(splits, models, progress=progress)
    finally:
        progress.close()
    means = frame.groupby("model")["rmse"].mean()
    summary = " ".join(f"{label.replace(' · ', ':').replace(' ', '_')}={value:.4f}" for label, value in means.items())
    return _finish(frame, args, summary)


def _r2(args) -> int:
    from recsys.data import load_dataset
    from recsys.eval.experiments import embedding_r2

    dataset = load_dataset(args.dataset, resolve_data_dir(args.data_dir))
    features = {name: f for name, f in _representations(dataset, args.features, args.extract).items() if f is not None}
    if not features:
        raise InvalidParameter("r2 needs item features (e.g. --features genre)")
    frame = embedding_r2(
        dataset.ratings, features, cv=args.cv, seed=args.seed, min_ratings=args.min_ratings, alpha=args.alpha
    )
    summary = " ".join(
        f"{row.representation.replace(' ', '_')}:r2_in={row.r2_in_sample:.3f},r2_cv={row.r2_cv:.3f}"
        f"[{row.r2_cv_low:.3f},{row.r2_cv_high:.3f}],alpha={row.alpha:.3g}"
        for row in frame.itertuples()
    )
    return _finish(frame, args, summary)


def _ridge_alpha(text: str):
    """--alpha: 'cv' (RidgeCV chooses the strength by inner cross-validation) or a number >= 0."""
    if text.strip().lower() == "cv":
        return "cv"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'cv' or a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 'cv' or a number >= 0, got {text!r}")
    return value


def _genre_precision(args) -> int:
    from recsys.data import load_dataset
    from recsys.eval.headline import genre_precision_interval

    dataset = load_dataset(args.dataset, resolve_data_dir(args.data_dir))
    features = {name: f for name, f in _representations(dataset, args.features, args.extract).items() if f is not None}
    if not features:
        raise InvalidParameter("genre-precision needs item features (e.g. --features poster:tf_efficientnet_lite0)")
    rows = []
    for name, item_features in features.items():
        curve = genre_precision_interval(
            item_features, dataset.genres, args.n, args.metric, max_queries=args.max_queries, seed=args.seed
        )
        rows.append(curve[curve["n"] == min(args.n, int(curve["n"].max()))].assign(representation=name))
    frame = pd.concat(rows, ignore_index=True)
    summary = " ".join(
        f"{row.representation.replace(' ', '_')}:precision@{row.n}={row.genre_precision:.3f}"
        f"[{row.low:.3f},{row.high:.3f}],chance={row.chance:.3f},queries={row.queries}"
        for row in frame.itertuples()
    )
    return _finish(frame, args, summary)


def _common(parser: argparse.ArgumentParser, split: bool = True) -> None:
    parser.add_argument("--dataset", default="ml-100k", help="registry name (default ml-100k)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $RECSYS_DATA_DIR)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extract", action="store_true", help="extract missing CNN features instead of failing")
    parser.add_argument("--out", default=None, help="write the table as CSV here")
    if split:
        parser.add_argument(
            "--split",
            default="holdout",
            choices=["holdout", "kfold", "per_user", "cold_items", *PUBLISHED_CHOICES],
            help="u1..u5, ua, ub (u1-u5: all five): ML-100K's published .base/.test files in the dataset folder",
        )
        parser.add_argument(
            "--split-files",
            nargs=2,
            metavar=("TRAIN", "TEST"),
            default=None,
            help="your own train/test rating files (CSV user_id,item_id,rating or the dataset's columns)",
        )
        parser.add_argument("--folds", type=int, default=None, help="folds for kfold / cold_items")
        parser.add_argument("--test-size", type=float, default=0.2)
        parser.add_argument("--item-share", type=float, default=0.2, help="held-out items (cold_items split)")


def add_parser(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="rating-prediction experiments (RMSE vs K, fusion, cold start, R²)"
    )
    experiments = evaluate.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)

    rmse_k = experiments.add_parser("rmse-k", help="RMSE vs neighbourhood size K per representation")
    _common(rmse_k)
    rmse_k.add_argument(
        "--representations",
        default="ratings,genre",
        help="comma list: ratings, genres, baseline:pixels, baseline:histogram, poster:<backbone>[@<layer>][/pca<n>], "
        "trailer:<backbone>@<fps>[/pca<n>]",
    )
    rmse_k.add_argument("--k", default="10:100:10", help="start:stop:step or comma list")
    rmse_k.add_argument("--similarity", default="cosine", choices=["cosine", "pearson"])
    rmse_k.add_argument("--min-support", type=int, default=1)
    _sample_flags(rmse_k)
    rmse_k.set_defaults(func=_rmse_k)

    fusion = experiments.add_parser("fusion", help="w·CF + (1−w)·content over a grid of fusion weights w, per fold")
    _common(fusion)
    fusion.add_argument("--features", default="genre", help="the content representation")
    fusion.add_argument("--weights", default="0:1:0.1", help="fusion weights w: start:stop:step or comma list")
    fusion.add_argument("--knn-k", type=int, default=40, help="neighbours of the CF user KNN")
    fusion.add_argument("--top-m", type=int, default=None, help="content: only the m most similar rated items vote")
    _sample_flags(fusion)
    fusion.set_defaults(func=_fusion)

    cold = experiments.add_parser("cold-start", help="RMSE on items held out of training vs the user mean")
    _common(cold)
    cold.add_argument("--features", default="genre", help="comma list of content representations")
    cold.add_argument("--top-m", type=int, default=None)
    cold.add_argument("--fm", action="store_true", help="also a factorization machine with these side features")
    cold.set_defaults(func=_cold_start)

    r2 = experiments.add_parser("r2", help="R² of a linear regression from item embeddings to mean rating")
    _common(r2, split=False)
    r2.add_argument("--features", default="genre", help="comma list of representations")
    r2.add_argument("--cv", type=int, default=5)
    r2.add_argument("--min-ratings", type=int, default=1)
    r2.add_argument(
        "--alpha",
        type=_ridge_alpha,
        default="cv",
        help="ridge penalty: cv (default: chosen by inner cross-validation, RidgeCV), a number, 0 = least squares",
    )
    r2.set_defaults(func=_r2)

    genre = experiments.add_parser(
        "genre-precision", help="share of each movie's N nearest items (by features) that share a genre, with 95 %% CI"
    )
    _common(genre, split=False)
    genre.add_argument("--features", default="poster:tf_efficientnet_lite0,baseline:pixels", help="comma list")
    genre.add_argument("--n", type=int, default=5, help="neighbours per query movie")
    genre.add_argument("--metric", default="euclidean", choices=["euclidean", "cosine"])
    genre.add_argument(
        "--max-queries", type=int, default=None, help="a random sample of query movies (default: all movies)"
    )
    genre.set_defaults(func=_genre_precision)
