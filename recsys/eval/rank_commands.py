"""`recsys rank`: top-N ranking study (MostPop, ItemKNN, BPR-MF, VBPR) and the feature control, headless.

    recsys rank --dataset ml-100k --protocol ratio --models MostPop,BPR,VBPR \\
        --representation poster:tf_efficientnet_lite0 --ks 10,20,50 --control

The Ranking page runs the same functions (recsys.eval.ranking_study); the last stdout line is a
``key=value`` summary (Recall@20 per model, and with --control the four control variants).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from recsys.cli_common import add_dataset_options, positive_int, positive_int_list, progress_bar
from recsys.errors import InvalidParameter
from recsys.eval import ranking as rk
from recsys.eval import ranking_study as study

TABLE_METRICS = ("recall", "ndcg", "precision", "hit_rate", "map", "popularity", "coverage", "auc")


def _models(text: str) -> list[str]:
    lookup = {name.lower(): name for name in study.MODEL_NAMES}
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name.lower() not in lookup]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown models {unknown}; choose from {', '.join(study.MODEL_NAMES)}")
    return [lookup[name.lower()] for name in names]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rank",
        help="full-ranking Recall/NDCG of MostPop, ItemKNN, BPR-MF and VBPR, with the feature control",
        description="Top-N ranking on implicit feedback with 95 % intervals.\n\n" + rk.PROTOCOL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_options(parser)
    parser.add_argument("--protocol", choices=rk.PROTOCOLS, default="per_user", help="split protocol")
    parser.add_argument(
        "--models", type=_models, default=list(study.MODEL_NAMES), help="comma-separated: MostPop,ItemKNN,BPR,VBPR"
    )
    parser.add_argument(
        "--representation",
        default="poster:tf_efficientnet_lite0",
        help="item features for VBPR: poster:<backbone>, trailer:<backbone>@<fps>, genres, baseline:histogram, "
        "…/pca<n> (the grammar of recsys.features.representations)",
    )
    parser.add_argument("--no-extract", action="store_true", help="fail instead of extracting missing CNN features")
    parser.add_argument(
        "--ks", type=positive_int_list, default=list(rk.DEFAULT_KS), help="list lengths K (default 10,20,50)"
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="BPR/VBPR epochs (default: tuned)")
    parser.add_argument("--seed", type=int, default=0, help="model seed")
    parser.add_argument("--split-seed", type=int, default=None, help="split seed (default 123 for ratio, else 0)")
    parser.add_argument("--threshold", type=float, default=rk.POSITIVE_THRESHOLD, help="positive rating (default 4)")
    parser.add_argument("--interval", choices=("t", "bootstrap"), default="t", help="95 %% interval over users")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: autodetect)")
    parser.add_argument("--control", action="store_true", help="VBPR with real/shuffled/random/no features")
    parser.add_argument("--no-cold-start", action="store_true", help="control without the new-item part")
    parser.add_argument(
        "--repeats", type=positive_int, default=1, help="control: fits per variant (seeds), per-user values averaged"
    )
    parser.add_argument("--csv", default=None, help="write the tidy summary frame to this CSV file")
    parser.set_defaults(func=run)


def _key(name: str) -> str:
    return name.lower().replace(" · ", "_").replace(" ", "_")


def run(args) -> int:
    from recsys.config import data_dir
    from recsys.data import load_dataset

    if args.threshold <= 0:
        raise InvalidParameter(f"--threshold must be positive, got {args.threshold:g}")
    started = time.perf_counter()
    dataset = load_dataset(args.dataset, data_dir(args.data_dir))
    needs_features = "VBPR" in args.models or args.control
    features = None
    if needs_features:
        with progress_bar("item features") as bar:
            features = study.load_representation(
                dataset, args.representation, extract=not args.no_extract, progress=bar
            )
    task = rk.make_task(dataset.ratings, args.protocol, threshold=args.threshold, seed=args.split_seed)
    print(f"Ranking on {dataset.name} · {task.describe()}")
    if features is not None:
        print(f"VBPR features: {features.name} ({len(features)} items, {features.dim} dims)")
    with progress_bar("ranking") as bar:
        result = study.run_ranking_study(
            dataset.ratings,
            args.protocol,
            args.models,
            features,
            args.ks,
            epochs=args.epochs,
            seed=args.seed,
            method=args.interval,
            device=args.device,
            progress=bar,
            task=task,
        )
    devices = sorted({m["device"] for m in result.meta["models"]})
    timings = ", ".join(f"{m['model']} {m['fit_s']:.1f} s" for m in result.meta["models"])
    print(f"fit on {'/'.join(devices)}: {timings}; mean [95 % CI] over {task.n_users} users\n")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(rk.metrics_table(result.summary, TABLE_METRICS).T.to_string())
        print()
        k = 20 if 20 in args.ks else args.ks[0]
        if not result.paired.empty:
            shown = result.paired[(result.paired["k"] == k) & (result.paired["metric"].isin(["recall", "ndcg"]))]
            print(f"paired tests at K={k} (a − b, same users; p_holm: Holm over the model pairs)")
            print(
                shown[
                    ["model_a", "model_b", "metric", "n_users", "mean_diff", "diff_ci_low", "diff_ci_high", "p_holm"]
                ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
            )
            print()
        print(f"Recall@K on head items (the {result.breakdown.attrs.get('head_items', '?')} most-rated) and the tail")
        print(result.breakdown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print()
    control = None
    if args.control:
        with progress_bar("control") as bar:
            control = study.run_control(
                dataset.ratings,
                features,
                args.protocol,
                args.ks,
                epochs=args.epochs,
                seed=args.seed,
                split_seed=args.split_seed,
                threshold=args.threshold,
                method=args.interval,
                device=args.device,
                cold_start=not args.no_cold_start,
                repeats=args.repeats,
                what=f"the {features.name} features",
                progress=bar,
                task=task,
            )
        print("Control: the same VBPR with real, shuffled, random and no features")
        print(rk.metrics_table(control.summary, ["recall", "ndcg", "auc"]).to_string())
        if control.cold is not None:
            print(f"\nnew items ({control.meta['cold_task']})")
            print(rk.metrics_table(control.cold, ["recall", "ndcg"]).to_string())
        print(f"\n{control.sentence}\n")
    if args.csv:
        frames = [result.summary.assign(part="models")]
        if control is not None:
            frames.append(control.frame().drop(columns="variant").assign(part="control"))
        pd.concat(frames, ignore_index=True).to_csv(args.csv, index=False)
        print(f"summary written to {args.csv}")
    k = 20 if 20 in args.ks else args.ks[0]
    recall = result.summary[(result.summary["metric"] == "recall") & (result.summary["k"] == k)]
    parts = [
        f"dataset={dataset.name}",
        f"protocol={args.protocol}",
        f"users={task.n_users}",
        f"device={'/'.join(devices)}",
    ]
    parts += [f"{_key(m)}_recall{k}={v:.4f}" for m, v in zip(recall["model"], recall["mean"])]
    if control is not None:
        values = control.summary[(control.summary["metric"] == "recall") & (control.summary["k"] == k)]
        means = values.set_index("model")["mean"]
        names = {"real": "vbpr_real", "shuffled": "vbpr_shuffled", "random": "vbpr_random", "none": "bpr_same_capacity"}
        parts += [f"{names[v]}={means[study.CONTROL_LABELS[v]]:.4f}" for v in study.CONTROL_VARIANTS]
    parts.append(f"total_s={time.perf_counter() - started:.1f}")
    print(" ".join(parts))
    return 0
