"""Our MostPop, BPR-MF and VBPR against Cornac 3.0.1's on Cornac's README protocol, and the control.

Protocol: ML-100K, ``RatioSplit(test_size=0.2, rating_threshold=4.0, exclude_unknowns=True,
seed=123)``. Ours is ``recsys.eval.ranking.make_task(ratings, "ratio")``; the script checks that
both sides hold the identical train and test pairs (``split_identical``). Features: lite0 poster
features of ML-100K (``poster:tf_efficientnet_lite0``, extracted once if not cached), one matrix
over every item (zeros for the few movies without a poster) given to both libraries.

Models: Cornac's MostPop, BPR (k=10, 200 iterations, lr 0.001, λ 0.01, seed 123: Cornac's README)
and VBPR (k=k2=10, 50 epochs, batches of 100, lr 0.005, λ_w=λ_b=0.01, seed 123), evaluated by
Cornac itself; ours with our defaults and with Cornac's hyperparameters, evaluated by
``recsys.eval.ranking``. Cornac's trained models are also scored by our evaluator
(``metric_max_abs_diff``: per-user Recall@20 of ours vs Cornac's on Cornac's own scores).

Cornac 3.0.1's VBPR adds the visual bias as a (B, 1) column to (B,) scores, so its loss sums a
B x B matrix that pairs every triple with every other triple's visual bias (B = 100): "the same
hyperparameters" are then not the same model. ``--broadcast-check`` (on by default) trains Cornac's
VBPR with that one line fixed (``.squeeze(1)``, patched here, never in Cornac) and ours with
Cornac's settings for the same ``--check-epochs`` (10), which is the like-for-like comparison.

Cornac's VBPR takes minutes: its result is recorded under the cache folder
(``bench/ranking_vs_cornac-*.json``) and reused on later runs, with its date, unless
``--rerun-cornac``; ``--cornac-vbpr-epochs`` runs it shorter (then the speedup is extrapolated
linearly per epoch and flagged). Both libraries train on one torch thread by default (small
problems run faster that way on this 2-core machine; ``--threads`` changes it for both).
Timings are wall-clock seconds of fit() after a warm-up that pays the one-off imports, and CPU
seconds next to them (on a shared machine the CPU time is the steadier of the two).

    .venv/bin/python bench/ranking_vs_cornac.py [--data-dir DIR] [--rerun-cornac] [--no-control]

Last line: ours_bpr_recall20=… cornac_bpr_recall20=… ours_vbpr_recall20=… cornac_vbpr_recall20=…
vbpr_speedup=… vbpr_real=… vbpr_shuffled=… vbpr_random=… bpr_same_capacity=… (and more)
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
from _data import SHARED_DATA_DIR

from recsys.cache import atomic_write_text
from recsys.config import cache_dir
from recsys.data import load_dataset
from recsys.eval import ranking as rk
from recsys.eval import ranking_study as study
from recsys.eval.ranking_metrics import mean_ci
from recsys.features.item_features import ItemFeatures
from recsys.models.bpr import BPR, VBPR
from recsys.models.popularity import MostPop

CORNAC_BPR = dict(k=10, max_iter=200, learning_rate=0.001, lambda_reg=0.01, seed=123)
CORNAC_VBPR = dict(k=10, k2=10, n_epochs=50, batch_size=100, learning_rate=0.005, lambda_w=0.01, lambda_b=0.01)
# Our models with Cornac's hyperparameters (the optimiser stays ours: minibatch Adam; Cornac's BPR
# is per-triple SGD with uniform negatives among unrated items).
OURS_BPR_AS_CORNAC = dict(k=10, n_epochs=200, learning_rate=0.001, lambda_w=0.01, lambda_b=0.01, negatives="unrated")
OURS_VBPR_AS_CORNAC = dict(
    k=10,
    k2=10,
    n_epochs=50,
    batch_size=100,
    learning_rate=0.005,
    lambda_w=0.01,
    lambda_b=0.01,
    lambda_e=0.0,
    n_components=None,
    feature_scaling="none",
)
BACKBONE = "tf_efficientnet_lite0"


def log(message: str) -> None:
    print(message, flush=True)


def timed_fit(fit):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit()
    return result, time.perf_counter() - wall, time.process_time() - cpu


# ---- Cornac -------------------------------------------------------------------------------------------
def cornac_split(ratings: pd.DataFrame, matrix: np.ndarray, item_ids: np.ndarray):
    import cornac

    data = list(zip(ratings["user_id"].tolist(), ratings["item_id"].tolist(), ratings["rating"].astype(float).tolist()))
    image = cornac.data.ImageModality(features=matrix, ids=item_ids.tolist(), normalized=False)
    return cornac.eval_methods.RatioSplit(
        data=data,
        test_size=0.2,
        rating_threshold=4.0,
        exclude_unknowns=True,
        seed=123,
        item_image=image,
        verbose=False,
    )


def split_pairs(dataset) -> tuple[set, set]:
    users = {index: raw for raw, index in dataset.uid_map.items()}
    items = {index: raw for raw, index in dataset.iid_map.items()}
    u, i, _ = dataset.uir_tuple
    return {(users[a], items[b]) for a, b in zip(u, i)}


def run_cornac(split, name: str, model, task: rk.RankingTask) -> dict:
    """Fit and evaluate with Cornac's own evaluation; per-user Recall@20; our evaluator on its scores."""
    import cornac

    metrics = [cornac.metrics.Recall(k=20), cornac.metrics.NDCG(k=20), cornac.metrics.AUC()]
    cpu = time.process_time()
    result, _ = split.evaluate(model, metrics, user_based=True)
    cpu = time.process_time() - cpu  # fit + Cornac's evaluation; the fit dominates for VBPR
    users = {index: raw for raw, index in split.train_set.uid_map.items()}
    per_user = {int(users[u]): float(v) for u, v in result.metric_user_results["Recall@20"].items()}
    out = {
        "model": name,
        "recall20": float(result.metric_avg_results["Recall@20"]),
        "ndcg20": float(result.metric_avg_results["NDCG@20"]),
        "auc": float(result.metric_avg_results["AUC"]),
        "train_s": float(result.metric_avg_results["Train (s)"]),
        "cpu_s": cpu,
        "per_user_recall20": per_user,
    }
    if name != "MostPop":  # continuous scores: our evaluator must give Cornac's numbers
        item_index = pd.Index([split.train_set.iid_map[i] for i in task.item_ids])
        user_codes = {raw: index for raw, index in split.train_set.uid_map.items()}

        def scorer(user_ids):
            return np.vstack([model.score(user_codes[u])[item_index] for u in user_ids])

        ours = rk.evaluate_scores(task, scorer, [20], auc=False).per_user.set_index("user_id")["recall"]
        theirs = pd.Series(per_user).reindex(ours.index)
        out["metric_max_abs_diff"] = float((ours - theirs).abs().max())
    return out


def fixed_cornac_vbpr():
    """Cornac's VBPR with its (B, 1) + (B,) broadcast fixed: the loss sums B triples, not B x B pairs."""
    import inspect
    import textwrap

    from cornac.models.vbpr import recom_vbpr

    source = textwrap.dedent(inspect.getsource(recom_vbpr.VBPR._fit_torch))
    if "+ feat_diff.mm(Bp)\n" not in source:
        return None  # another Cornac version: nothing to patch
    fixed = source.replace("+ feat_diff.mm(Bp)\n", "+ feat_diff.mm(Bp).squeeze(1)\n")
    namespace: dict = {}
    exec(compile(fixed, "cornac-vbpr-fixed", "exec"), vars(recom_vbpr), namespace)  # noqa: S102 - Cornac's own code
    return type("FixedVBPR", (recom_vbpr.VBPR,), {"_fit_torch": namespace["_fit_torch"]})


def recorded_cornac_vbpr(path, fingerprint: str) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("fingerprint") == fingerprint else None


# ---- ours ---------------------------------------------------------------------------------------------
def run_ours(task: rk.RankingTask, name: str, model) -> dict:
    model, wall, cpu = timed_fit(lambda: model.fit(task.train))
    ranking = rk.evaluate_scores(task, model.score, [20], item_ids=model.item_ids_, name=name)
    per_user = ranking.per_user
    return {
        "model": name,
        "recall20": float(per_user["recall"].mean()),
        "ndcg20": float(per_user["ndcg"].mean()),
        "auc": float(per_user["auc"].mean()),
        "train_s": wall,
        "cpu_s": cpu,
        "per_user_recall20": per_user.set_index("user_id")["recall"].to_dict(),
        "ranking": ranking,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--rerun-cornac", action="store_true", help="train Cornac's VBPR again (minutes)")
    parser.add_argument("--cornac-vbpr-epochs", type=int, default=50, help="Cornac VBPR epochs (50 = README)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both libraries")
    parser.add_argument("--no-control", action="store_true", help="skip the real/shuffled/random/none control")
    parser.add_argument(
        "--broadcast-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Cornac's VBPR with its loss broadcast fixed vs ours, same settings (see the docstring)",
    )
    parser.add_argument("--check-epochs", type=int, default=10, help="epochs of the broadcast check")
    parser.add_argument("--repeats", type=int, default=3, help="control: fits per variant (seeds), averaged per user")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        import cornac
    except ImportError:
        sys.exit("Cornac is a bench requirement: .venv/bin/pip install cornac==3.0.1 (requirements-dev.txt)")
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    dataset = load_dataset("ml-100k", args.data_dir)
    features = study.load_representation(dataset, f"poster:{BACKBONE}", progress=None)
    item_ids = dataset.items.index.to_numpy(dtype=np.int64)
    matrix, present = features.aligned(item_ids)  # zeros for movies without a poster, for both
    shared = ItemFeatures(item_ids, matrix, features.name, dict(features.meta))
    log(
        f"cornac={cornac.__version__} torch_threads={args.threads} features={features.name} "
        f"dim={features.dim} items_with_poster={int(present.sum())}/{len(item_ids)}"
    )

    task = rk.make_task(dataset.ratings, "ratio")
    split = cornac_split(dataset.ratings, matrix, item_ids)
    ours_train = set(zip(task.train["user_id"], task.train["item_id"]))
    ours_test = set(zip(task.test["user_id"], task.test["item_id"]))
    split_identical = ours_train == split_pairs(split.train_set) and ours_test == split_pairs(split.test_set)
    log(f"{task.describe()}; identical to Cornac's RatioSplit: {split_identical}")

    # warm-up: one-off imports (torch.optim, Cornac's extensions) out of every timing
    BPR(k=2, n_epochs=1, device="cpu").fit(task.train.head(2000))
    VBPR(features=shared, k=2, k2=2, n_epochs=1, device="cpu").fit(task.train.head(2000))

    rows = []
    log("Cornac MostPop, BPR (README settings) ...")
    rows.append(run_cornac(split, "Cornac MostPop", cornac.models.MostPop(), task))
    rows.append(run_cornac(split, "Cornac BPR", cornac.models.BPR(**CORNAC_BPR, verbose=False), task))

    fingerprint = f"{split_identical}-{features.meta.get('representation', features.name)}-{args.cornac_vbpr_epochs}-{args.threads}"
    record_path = cache_dir() / "bench" / f"ranking_vs_cornac-vbpr{args.cornac_vbpr_epochs}.json"
    record = None if args.rerun_cornac else recorded_cornac_vbpr(record_path, fingerprint)
    if record is None:
        log(f"Cornac VBPR, {args.cornac_vbpr_epochs} epochs (minutes; recorded for later runs) ...")
        vbpr = cornac.models.VBPR(
            **dict(CORNAC_VBPR, n_epochs=args.cornac_vbpr_epochs), use_gpu=False, seed=123, verbose=False
        )
        record = run_cornac(split, "Cornac VBPR", vbpr, task)
        record.update(fingerprint=fingerprint, recorded=datetime.datetime.now().isoformat(timespec="seconds"))
        atomic_write_text(record_path, json.dumps(record))
        record["source"] = "fresh"
    else:
        record["source"] = f"recorded {record['recorded']}"
        record["per_user_recall20"] = {int(k): v for k, v in record["per_user_recall20"].items()}
    rows.append(record)

    log("ours: MostPop, BPR and VBPR (defaults), then with Cornac's hyperparameters ...")
    rows.append(run_ours(task, "ours MostPop", MostPop()))
    rows.append(run_ours(task, "ours BPR", BPR(device="cpu")))
    rows.append(run_ours(task, "ours VBPR", VBPR(features=shared, device="cpu")))
    rows.append(run_ours(task, "ours BPR (Cornac settings)", BPR(device="cpu", **OURS_BPR_AS_CORNAC)))
    rows.append(
        run_ours(task, "ours VBPR (Cornac settings)", VBPR(features=shared, device="cpu", **OURS_VBPR_AS_CORNAC))
    )

    if args.broadcast_check:
        fixed = fixed_cornac_vbpr()
        if fixed is None:
            log("broadcast check skipped: this Cornac's VBPR does not have the (B, 1) + (B,) line")
        else:
            log(
                f"broadcast check: Cornac VBPR with the loss fixed and ours, Cornac's settings, {args.check_epochs} epochs"
            )
            check = dict(CORNAC_VBPR, n_epochs=args.check_epochs)
            rows.append(
                run_cornac(
                    split, "Cornac VBPR fixed (check)", fixed(**check, use_gpu=False, seed=123, verbose=False), task
                )
            )
            ours_check = dict(OURS_VBPR_AS_CORNAC, n_epochs=args.check_epochs)
            rows.append(
                run_ours(task, "ours VBPR (Cornac settings, check)", VBPR(features=shared, device="cpu", **ours_check))
            )

    table = pd.DataFrame(
        [{k: v for k, v in row.items() if k not in ("per_user_recall20", "ranking", "fingerprint")} for row in rows]
    )
    log("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    by = {row["model"]: row for row in rows}
    cornac_vbpr = by["Cornac VBPR"]
    epochs_factor = 50 / args.cornac_vbpr_epochs
    speedup = cornac_vbpr["train_s"] * epochs_factor / by["ours VBPR"]["train_s"]
    cpu_speedup = cornac_vbpr["cpu_s"] * epochs_factor / by["ours VBPR"]["cpu_s"]
    same = pd.Series(by["ours VBPR"]["per_user_recall20"]) - pd.Series(cornac_vbpr["per_user_recall20"])
    diff = mean_ci(same.dropna().to_numpy())
    log(
        f"\nours VBPR − Cornac VBPR, Recall@20 on the same {int(same.notna().sum())} users: "
        f"{rk.format_estimate(*diff)}; Cornac VBPR {cornac_vbpr['source']}, "
        f"{args.cornac_vbpr_epochs} epochs{' (speedup extrapolated to 50)' if epochs_factor != 1 else ''}"
    )

    control = {}
    if not args.no_control:
        log(
            f"\ncontrol: our default VBPR with real, shuffled, random and no features (same task), "
            f"{args.repeats} seeds averaged per user ..."
        )
        result = study.run_control(
            dataset.ratings,
            shared,
            "ratio",
            ks=[10, 20, 50],
            cold_start=True,
            repeats=args.repeats,
            what="the posters",
            task=task,
            device="cpu",
        )
        recall20 = result.summary[(result.summary["metric"] == "recall") & (result.summary["k"] == 20)]
        log(rk.metrics_table(result.summary, ["recall", "ndcg", "auc"]).to_string())
        log("paired (real minus each):")
        shown = result.paired[result.paired["metric"].isin(["recall", "ndcg"]) & (result.paired["k"] == 20)]
        log(
            shown[
                ["model_b", "metric", "k", "n_users", "mean_diff", "diff_ci_low", "diff_ci_high", "t_p", "p_holm"]
            ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        )
        log("head (20 % most-rated items) vs tail, Recall@20:")
        log(result.breakdown[result.breakdown["k"] == 20].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        if result.cold is not None:
            cold = result.cold[(result.cold["metric"] == "recall") & (result.cold["k"] == 20)]
            log(f"new items ({result.meta['cold_task']}), Recall@20:")
            log(cold.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
            cold_paired = result.meta["cold_paired"]
            cold_paired = cold_paired[(cold_paired["metric"] == "recall") & (cold_paired["k"] == 20)]
            log("new items, paired (real minus each), Recall@20:")
            log(
                cold_paired[["model_b", "n_users", "mean_diff", "diff_ci_low", "diff_ci_high", "p_holm"]].to_string(
                    index=False, float_format=lambda v: f"{v:.4g}"
                )
            )
            control["cold"] = cold.set_index("model")["mean"]
        log(f"\n{result.sentence}")
        control["warm"] = recall20.set_index("model")["mean"]

    def value(name, key="recall20"):
        return f"{by[name][key]:.4f}"

    parts = [
        f"ours_bpr_recall20={value('ours BPR')}",
        f"cornac_bpr_recall20={value('Cornac BPR')}",
        f"ours_vbpr_recall20={value('ours VBPR')}",
        f"cornac_vbpr_recall20={value('Cornac VBPR')}",
        f"vbpr_speedup={speedup:.1f}",
        f"vbpr_cpu_speedup={cpu_speedup:.1f}",
        f"ours_vbpr_s={by['ours VBPR']['train_s']:.1f}",
        f"cornac_vbpr_s={cornac_vbpr['train_s']:.1f}",
        f"cornac_vbpr_epochs={args.cornac_vbpr_epochs}",
        f"ours_bpr_cornac_settings_recall20={value('ours BPR (Cornac settings)')}",
        f"ours_vbpr_cornac_settings_recall20={value('ours VBPR (Cornac settings)')}",
        f"ours_mostpop_recall20={value('ours MostPop')}",
        f"cornac_mostpop_recall20={value('Cornac MostPop')}",
        f"split_identical={split_identical}",
        f"metric_max_abs_diff={max(by['Cornac BPR']['metric_max_abs_diff'], cornac_vbpr['metric_max_abs_diff']):.2g}",
    ]
    if control:
        warm = control["warm"]
        parts += [
            f"vbpr_real={warm[study.CONTROL_LABELS['real']]:.4f}",
            f"vbpr_shuffled={warm[study.CONTROL_LABELS['shuffled']]:.4f}",
            f"vbpr_random={warm[study.CONTROL_LABELS['random']]:.4f}",
            f"bpr_same_capacity={warm[study.CONTROL_LABELS['none']]:.4f}",
        ]
        if "cold" in control:
            parts.append(f"cold_vbpr_real={control['cold'][study.CONTROL_LABELS['real']]:.4f}")
            parts.append(f"cold_vbpr_shuffled={control['cold'][study.CONTROL_LABELS['shuffled']]:.4f}")
            parts.append(f"cold_vbpr_random={control['cold'][study.CONTROL_LABELS['random']]:.4f}")
    if "Cornac VBPR fixed (check)" in by:
        parts.append(f"check_epochs={args.check_epochs}")
        parts.append(f"cornac_fixed_vbpr_check_recall20={value('Cornac VBPR fixed (check)')}")
        parts.append(f"ours_vbpr_cornac_settings_check_recall20={value('ours VBPR (Cornac settings, check)')}")
    parts.append(f"total_s={time.perf_counter() - started:.0f}")
    print(" ".join(parts))


if __name__ == "__main__":
    main()
