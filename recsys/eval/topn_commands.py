"""`python -m recsys topn`: the top-N study (hybrid user-based CF with poster features) headless."""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from recsys.cli_common import add_dataset_options, float_list, int_list, progress_bar
from recsys.eval import ranking_metrics as rm
from recsys.eval import topn_study as study

TABLE_METRICS = ("precision", "recall", "ndcg", "hit_rate", "genre_diversity", "popularity", "coverage")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "topn",
        help="top-N study: user-based CF with and without poster features (Guo), with CIs",
        description="Top-N study (Guo's claim, measured).\n\nProtocol:\n" + study.PROTOCOL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_options(parser)
    parser.add_argument(
        "--features",
        choices=("poster", "genre"),
        default="poster",
        help="item features for the visual side: CNN poster features, or genre one-hot (no CNN)",
    )
    parser.add_argument("--backbone", default="tf_efficientnet_lite0", help="poster backbone (timm name)")
    parser.add_argument(
        "--centre-features",
        action="store_true",
        help="subtract the mean feature vector before building user profiles "
        "(raw CNN profiles are all nearly parallel)",
    )
    parser.add_argument(
        "--alphas", type=float_list, default=list(study.DEFAULT_ALPHAS), help="comma-separated α values"
    )
    parser.add_argument(
        "--ks", type=int_list, default=list(study.DEFAULT_KS), help="comma-separated neighbour counts K"
    )
    parser.add_argument("--n", type=int, default=5, help="recommendations per user N (default 5, as Guo)")
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument(
        "--split",
        default=None,
        choices=["u1", "u2", "u3", "u4", "u5", "ua", "ub"],
        help="ML-100K's published .base/.test split instead of the per-user holdout",
    )
    parser.add_argument(
        "--split-files",
        nargs=2,
        metavar=("TRAIN", "TEST"),
        default=None,
        help="your own train/test rating files instead of the per-user holdout",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(TABLE_METRICS),
        help=f"metrics to print as α × K tables (any of {', '.join(rm.ALL_METRICS)})",
    )
    parser.add_argument("--guo-k", type=int, default=10, help="K for the Guo table (default 10, the paper's)")
    parser.add_argument(
        "--cold-start",
        action="store_true",
        help="also run the new-item cold-start comparison (CF vs hybrid vs content)",
    )
    parser.add_argument("--csv", default=None, help="write the tidy summary frame to this CSV file")
    parser.set_defaults(func=run)


def load_features(dataset, kind: str, backbone: str, progress=None):
    """Item features for the visual similarity: cached/extracted poster features or genre one-hot."""
    from recsys.features.representations import RepresentationSpec, resolve, resolve_extraction

    if kind == "genre":
        return resolve(dataset, "genres")  # the same genre vectors `evaluate --features genres` uses
    result = resolve_extraction(dataset, RepresentationSpec("poster", backbone), extract=True, progress=progress)
    if len(result.failures):
        print(
            f"note: {len(result.failures)} items have no usable poster and no visual features "
            f"({result.failures['reason'].value_counts().to_dict()})",
            file=sys.stderr,
        )
    return result.features


def run(args) -> int:
    from recsys.data import load_dataset

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(metrics) - set(rm.ALL_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(rm.ALL_METRICS)}")
    started = time.perf_counter()
    dataset = load_dataset(args.dataset, args.data_dir)
    split = None
    if args.split_files:
        from recsys.eval.splits import split_from_files

        split = split_from_files(*args.split_files, dataset=dataset)[0]
    elif args.split:
        from recsys.eval.splits import published_splits

        split = published_splits(dataset, args.split)[0]
    with progress_bar("poster features") as bar:
        features = load_features(dataset, args.features, args.backbone, progress=bar)
    features_s = time.perf_counter() - started
    with progress_bar("top-N sweep") as bar:
        result = study.run_topn_study(
            dataset,
            features,
            args.alphas,
            args.ks,
            args.n,
            args.seed,
            progress=bar,
            centre_features=args.centre_features,
            split=split,
        )
    meta = result.meta
    print(
        f"Top-N study on {meta['dataset']} · visual features: {meta['features']} "
        f"({meta['items_with_features']} of {meta['catalogue_items']} items) · N={meta['n']} · seed={meta['seed']}"
    )
    print(
        f"{args.split or ('split files' if args.split_files else 'per-user holdout')} "
        f"{1 - meta['test_size']:.0%}/{meta['test_size']:.0%}: {meta['train_ratings']} train, "
        f"{meta['test_ratings']} held-out ratings ({meta['liked_test_ratings']} liked, rating >= 4); "
        f"{meta['users_evaluated']} users evaluated; mean [95% CI] over users\n"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for metric in metrics:
            print(f"{rm.METRIC_LABELS[metric]} — {rm.METRIC_DEFINITIONS[metric]}")
            print(study.study_table(result.summary, metric).to_string())
            print()
        if not result.paired.empty:
            print(
                f"paired tests vs plain CF (α=1) at K={args.guo_k}, same users: mean difference [95% CI], "
                "p-values (t_p_holm: Holm over all α × K of that metric)"
            )
            shown = result.paired[
                result.paired["metric"].isin(["precision", "ndcg", "hit_rate", "genre_diversity"])
                & (result.paired["k"] == args.guo_k)
            ].copy()
            shown["difference"] = [
                rm.format_estimate(m, lo, hi, 4)
                for m, lo, hi in shown[["mean_diff", "diff_ci_low", "diff_ci_high"]].itertuples(index=False)
            ]
            print(
                shown[["metric", "alpha", "k", "n_users", "difference", "t_p", "wilcoxon_p", "t_p_holm"]].to_string(
                    index=False, float_format=lambda v: f"{v:.3g}"
                )
            )
            print()
        if args.guo_k in set(result.summary["k"]):
            print(f"Guo's Table 1 next to our measurements (K={args.guo_k}, N={args.n})")
            print(study.guo_table(result.summary, result.paired, k=args.guo_k).to_string(index=False))
            print()
    if args.cold_start:
        cold = study.cold_start_topn(
            dataset, features, n=args.n, k=args.guo_k, seed=args.seed, centre_features=args.centre_features
        )
        print("New-item cold start (held-out items have no training ratings)")
        print(cold.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
    if args.csv:
        result.summary.to_csv(args.csv, index=False)
        print(f"summary written to {args.csv}")

    def value(alpha, metric, k=args.guo_k):
        rows = result.summary[
            (result.summary["alpha"] == alpha) & (result.summary["k"] == k) & (result.summary["metric"] == metric)
        ]
        return f"{rows['mean'].iloc[0]:.4f}" if len(rows) else "nan"

    total_s = time.perf_counter() - started
    print(
        f"dataset={meta['dataset']} features={meta['features'].replace(' ', '_')} features_s={features_s:.1f} "
        f"study_s={meta['seconds']:.1f} total_s={total_s:.1f} "
        f"precision_a1={value(1.0, 'precision')} precision_a0.5={value(0.5, 'precision')} "
        f"genres_a1={value(1.0, 'genre_diversity')} genres_a0.5={value(0.5, 'genre_diversity')}"
    )
    return 0
