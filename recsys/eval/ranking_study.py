"""Ranking study: MostPop, ItemKNN, BPR-MF and VBPR on one protocol, and the feature control.

The study fits each model on the task's training ratings, scores every candidate for every
evaluated user and hands the score matrices to :mod:`recsys.eval.ranking` (which knows nothing
of the models). The control asks whether VBPR's item representation did the work or its extra
capacity and optimiser did: the same VBPR (same k, k2, sampler, optimiser, epochs, seed) with

- ``real``      the representation itself,
- ``shuffled``  the same vectors permuted across items (content detached from the item),
- ``random``    Gaussian vectors of the same size, mean and spread per dimension,
- ``none``      no features: BPR-MF with k + k2 factors (the same user-side capacity),

paired over the same users. The headline sentence (:func:`control_sentence`) reports the paired
difference real − none with its 95 % interval and says "not distinguishable from zero" when the
interval holds 0; shuffled and random say how much of a gain capacity alone explains.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.errors import FeaturesNotFound, InvalidParameter
from recsys.eval import ranking as rk
from recsys.features.item_features import ItemFeatures
from recsys.models.base import check_choice, check_count, clone
from recsys.models.bpr import BPR, VBPR
from recsys.models.implicit import ImplicitRanker
from recsys.models.item_knn import ItemKNN
from recsys.models.popularity import MostPop
from recsys.progress import Progress, no_progress

MODEL_NAMES = ("MostPop", "ItemKNN", "BPR", "VBPR")
CONTROL_VARIANTS = ("real", "shuffled", "random", "none")
CONTROL_LABELS = {
    "real": "VBPR · real features",
    "shuffled": "VBPR · shuffled features",
    "random": "VBPR · random features",
    "none": "BPR · same capacity",
}
#: ranks kept per user and model in `lists` (the page shows the first 10 as poster cards)
LIST_LENGTH = 20
#: Defaults tuned on ML-100K (Cornac's ratio protocol) and checked on the per-user holdout; see
#: bench/ranking_vs_cornac.py. Shared by the page, the CLI and the bench.
DEFAULTS = {
    "MostPop": {},
    "ItemKNN": {"k": 100, "shrink": 10.0},
    "BPR": {},
    "VBPR": {},
}


# ---- representations -------------------------------------------------------------------------------
def load_representation(
    dataset, spec: str, *, extract: bool = True, progress: Progress | None = None, train_item_ids=None
) -> ItemFeatures:
    """Item features for a representation in the project's grammar (``poster:<backbone>``,
    ``trailer:<backbone>@<fps>``, ``genres``, ``baseline:histogram``, ``…/pca<n>``), through
    :func:`recsys.features.representations.resolve`; CNN features are extracted when not cached
    (unless ``extract=False``). ``ratings`` (no features) is refused: VBPR needs some."""
    from recsys.features.representations import resolve

    features = resolve(dataset, spec, extract=extract, progress=progress, train_item_ids=train_item_ids)
    if features is None:
        raise InvalidParameter(f"representation {spec!r} has no item features; VBPR needs some (e.g. genres)")
    return features


def shuffled_features(features: ItemFeatures, seed: int = 0) -> ItemFeatures:
    """The same vectors permuted across items (a seeded derangement-free permutation)."""
    order = np.random.default_rng(seed).permutation(len(features))
    return ItemFeatures(
        features.item_ids,
        features.matrix[order],
        f"{features.name} · shuffled",
        dict(features.meta, control="shuffled"),
    )


def random_features(features: ItemFeatures, seed: int = 0) -> ItemFeatures:
    """Gaussian vectors of the same shape with each dimension's mean and standard deviation."""
    rng = np.random.default_rng(seed)
    matrix = features.matrix.astype(np.float64)
    noise = rng.standard_normal(matrix.shape) * matrix.std(axis=0) + matrix.mean(axis=0)
    return ItemFeatures(
        features.item_ids, noise.astype(np.float32), f"random {features.dim}-d", dict(features.meta, control="random")
    )


# ---- models -----------------------------------------------------------------------------------------
def make_model(
    name: str,
    features: ItemFeatures | None = None,
    *,
    epochs: int | None = None,
    seed: int = 0,
    device: str | None = None,
    **overrides,
) -> ImplicitRanker:
    """A fresh model by name with the study's defaults (`overrides` win)."""
    check_choice(name, "model", MODEL_NAMES)
    params = dict(DEFAULTS[name], **overrides)
    if name == "MostPop":
        return MostPop(**params)
    if name == "ItemKNN":
        return ItemKNN(**params)
    if epochs is not None:
        params["n_epochs"] = epochs
    params.update(seed=seed, device=device)
    if name == "BPR":
        return BPR(**params)
    if features is None:
        raise InvalidParameter("VBPR needs item features (a representation such as poster:<backbone> or genres)")
    return VBPR(features=features, **params)


def control_models(base: VBPR, seed: int = 0) -> dict[str, VBPR]:
    """The four control variants of one VBPR (see the module docstring)."""
    if base.features is None:
        raise InvalidParameter("the control needs a VBPR with features")
    return {
        "real": clone(base),
        "shuffled": clone(base, features=shuffled_features(base.features, seed)),
        "random": clone(base, features=random_features(base.features, seed)),
        "none": clone(base, features=None, k=base.k + base.k2),
    }


def _fit_and_rank(task, name, model, ks, progress, step, total) -> tuple[rk.ModelRanking, dict]:
    def fit_progress(done, steps, message=""):
        progress(step, total, f"{name}: {message}" if message else name)

    started = time.perf_counter()
    model.fit(task.train, progress=fit_progress)
    fit_s = time.perf_counter() - started
    ranking = rk.evaluate_scores(task, model.score, ks, item_ids=model.item_ids_, name=name)
    info = {"model": name, "fit_s": round(fit_s, 3), "eval_s": round(ranking.seconds, 3)}
    info["device"] = getattr(model, "device_", "cpu")
    info["params"] = {key: value for key, value in model.get_params().items() if key != "features"}
    return ranking, info


# ---- the study ---------------------------------------------------------------------------------------
@dataclass
class RankingStudyResult:
    """summary: model, metric, k, mean, ci_low, ci_high, n_users (AUC at k = 0).
    per_user: model, user_id, k and every per-user metric. paired: model pairs (Holm-adjusted).
    lists: top-N frames (model, user_id, rank, item_id, score, relevant), first LIST_LENGTH ranks.
    breakdown: Recall@K on head and tail items. meta: task, timings, devices, parameters."""

    summary: pd.DataFrame
    per_user: pd.DataFrame
    paired: pd.DataFrame
    lists: pd.DataFrame
    breakdown: pd.DataFrame
    meta: dict = field(default_factory=dict)


def _collect(task, rankings, infos, ks, method, seed, started, extra=None) -> RankingStudyResult:
    summary = rk.summarise(task, rankings, method=method, seed=seed)
    paired = rk.paired_comparisons(rankings) if len(rankings) > 1 else pd.DataFrame()
    per_user = pd.concat([r.per_user.assign(model=r.name) for r in rankings], ignore_index=True)
    lists = pd.concat(
        [rk.lists_frame(task, r, n=LIST_LENGTH).assign(model=r.name) for r in rankings], ignore_index=True
    )
    breakdown = rk.head_tail_breakdown(task, rankings, ks=ks, method=method)
    meta = {
        "protocol": task.protocol,
        "task": task.describe(),
        **task.meta,
        "params": task.params,
        "models": infos,
        "ks": list(ks),
        "interval": method,
        "seconds": round(time.perf_counter() - started, 2),
        **(extra or {}),
    }
    return RankingStudyResult(summary, per_user, paired, lists, breakdown, meta)


def run_ranking_study(
    ratings: pd.DataFrame,
    protocol: str = "per_user",
    models: Sequence[str] = MODEL_NAMES,
    features: ItemFeatures | None = None,
    ks: Sequence[int] = rk.DEFAULT_KS,
    *,
    epochs: int | None = None,
    seed: int = 0,
    split_seed: int | None = None,
    threshold: float = rk.POSITIVE_THRESHOLD,
    method: str = "t",
    device: str | None = None,
    progress: Progress | None = None,
    task: rk.RankingTask | None = None,
) -> RankingStudyResult:
    """Fit and evaluate `models` (names of :data:`MODEL_NAMES`) on one protocol."""
    started = time.perf_counter()
    progress = progress or no_progress
    ks = sorted({int(k) for k in ks})
    models = list(dict.fromkeys(models))
    for name in models:
        check_choice(name, "model", MODEL_NAMES)
    if "VBPR" in models and features is None:
        raise FeaturesNotFound("VBPR needs item features: pick a representation (poster:<backbone>, genres)")
    task = task or rk.make_task(ratings, protocol, threshold=threshold, seed=split_seed)
    total = len(models) + 1
    rankings, infos = [], []
    for step, name in enumerate(models):
        progress(step, total, f"fitting {name}")
        model = make_model(name, features, epochs=epochs, seed=seed, device=device)
        ranking, info = _fit_and_rank(task, name, model, ks, progress, step, total)
        rankings.append(ranking)
        infos.append(info)
    progress(total - 1, total, "intervals and tests")
    result = _collect(
        task, rankings, infos, ks, method, seed, started, {"features": None if features is None else features.name}
    )
    progress(total, total, "done")
    return result


# ---- the control ---------------------------------------------------------------------------------------
@dataclass
class ControlResult:
    """The control on one protocol, plus its cold-start twin.

    summary / paired / breakdown / per_user: as in RankingStudyResult, models named by
    :data:`CONTROL_LABELS`. cold: summary of the same variants on held-out new items (None when
    not asked). sentence: the headline.
    """

    summary: pd.DataFrame
    paired: pd.DataFrame
    breakdown: pd.DataFrame
    per_user: pd.DataFrame
    lists: pd.DataFrame
    cold: pd.DataFrame | None
    sentence: str
    meta: dict = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """One tidy frame: variant, metric, k, mean, ci_low, ci_high, n_users, setting."""
        frames = [self.summary.assign(setting="warm")]
        if self.cold is not None:
            frames.append(self.cold.assign(setting="new items"))
        labels = {label: variant for variant, label in CONTROL_LABELS.items()}
        out = pd.concat(frames, ignore_index=True)
        return out.assign(variant=out["model"].map(labels))


def _averaged(rankings: list[rk.ModelRanking]) -> rk.ModelRanking:
    """One ModelRanking whose per-user values are the means over repeated fits (seeds); the lists
    (and so coverage and the poster cards) are the first fit's."""
    if len(rankings) == 1:
        return rankings[0]
    stacked = pd.concat([r.per_user for r in rankings], ignore_index=True)
    per_user = stacked.groupby(["user_id", "k"], sort=False).mean().reset_index()
    per_user = rankings[0].per_user[["user_id", "k"]].merge(per_user, on=["user_id", "k"], how="left")
    first = rankings[0]
    seconds = sum(r.seconds for r in rankings)
    return rk.ModelRanking(first.name, per_user, first.codes, first.scores, seconds, {"repeats": len(rankings)})


def run_control(
    ratings: pd.DataFrame,
    features: ItemFeatures,
    protocol: str = "per_user",
    ks: Sequence[int] = rk.DEFAULT_KS,
    *,
    epochs: int | None = None,
    seed: int = 0,
    split_seed: int | None = None,
    threshold: float = rk.POSITIVE_THRESHOLD,
    method: str = "t",
    device: str | None = None,
    cold_start: bool = True,
    repeats: int = 1,
    what: str = "the features",
    progress: Progress | None = None,
    base: VBPR | None = None,
    task: rk.RankingTask | None = None,
) -> ControlResult:
    """Real vs shuffled vs random vs no features for one VBPR (module docstring), warm and cold.

    repeats: fits per variant with seeds seed, seed + 1, ... (model initialisation, sampling, and
    the shuffle / random draw); each user's metric is averaged over them before the intervals
    and paired tests. One draw of shuffled or random features can by chance rank a few popular
    new items high, which moves new-item recall far more than the per-user interval shows:
    repeats > 1 averages that luck out.
    """
    started = time.perf_counter()
    progress = progress or no_progress
    ks = sorted({int(k) for k in ks})
    repeats = check_count(repeats, "repeats")
    base = base if base is not None else make_model("VBPR", features, epochs=epochs, seed=seed, device=device)
    draws = [control_models(clone(base, seed=base.seed + r), seed + r) for r in range(repeats)]
    task = task or rk.make_task(ratings, protocol, threshold=threshold, seed=split_seed)
    cold_task = rk.make_task(ratings, "cold_items", threshold=threshold, seed=split_seed) if cold_start else None
    settings = [(task, "")] + ([(cold_task, "new items: ")] if cold_start else [])
    total = len(CONTROL_VARIANTS) * repeats * len(settings) + 1
    results: dict[str, list] = {"": [], "new items: ": []}
    infos = []
    step = 0
    for which, prefix in settings:
        for variant in CONTROL_VARIANTS:
            label = CONTROL_LABELS[variant]
            fits = []
            for r in range(repeats):
                progress(
                    step, total, f"{prefix}fitting {label}" + (f" (seed {r + 1}/{repeats})" if repeats > 1 else "")
                )
                ranking, info = _fit_and_rank(which, label, clone(draws[r][variant]), ks, progress, step, total)
                fits.append(ranking)
                if not prefix and r == 0:
                    infos.append(info)
                step += 1
            results[prefix].append(_averaged(fits))
    rankings, cold_rankings = results[""], results["new items: "]
    progress(total - 1, total, "intervals and tests")
    study = _collect(task, rankings, infos, ks, method, seed, started)
    pairs = [(CONTROL_LABELS["real"], CONTROL_LABELS[v]) for v in ("none", "shuffled", "random")]
    paired = rk.paired_comparisons(rankings, pairs=pairs)
    cold = rk.summarise(cold_task, cold_rankings, method=method, seed=seed) if cold_start else None
    meta = dict(study.meta, what=what, features=features.name, base_params=infos[0]["params"], repeats=repeats)
    if cold_start:
        meta["cold_task"] = cold_task.describe()
        meta["cold_paired"] = rk.paired_comparisons(cold_rankings, pairs=pairs)
    k_headline = 20 if 20 in ks else ks[0]
    sentence = control_sentence(study.summary, paired, k=k_headline, what=what)
    if repeats > 1:
        sentence += f" Per-user values averaged over {repeats} seeds."
    progress(total, total, "done")
    return ControlResult(study.summary, paired, study.breakdown, study.per_user, study.lists, cold, sentence, meta)


def _pm(mean: float, low: float, high: float, digits: int = 3) -> str:
    half = (high - low) / 2
    return f"{mean:+.{digits}f} ± {half:.{digits}f}"


def control_sentence(
    summary: pd.DataFrame, paired: pd.DataFrame, metric: str = "recall", k: int = 20, what: str = "the features"
) -> str:
    """'The posters add X ± Y Recall@20 over the same model without them (...)', with the
    shuffled and random controls; "not distinguishable from zero" when an interval holds 0."""
    label = rk.metric_label(metric, k)
    rows = paired[(paired["metric"] == metric) & (paired["k"] == k)].set_index("model_b")
    real, none = CONTROL_LABELS["real"], CONTROL_LABELS["none"]
    if none not in rows.index:
        raise InvalidParameter(f"no paired test of {label} between {real!r} and {none!r}")

    def value(model):
        row = summary[(summary["model"] == model) & (summary["metric"] == metric) & (summary["k"] == k)]
        return float(row["mean"].iloc[0]) if len(row) else float("nan")

    def zero(row) -> bool:
        return bool(row["diff_ci_low"] <= 0 <= row["diff_ci_high"])

    what_cap = what[:1].upper() + what[1:]
    main = rows.loc[none]
    verdict = "; not distinguishable from zero" if zero(main) else ""
    sentence = (
        f"{what_cap} add {_pm(main['mean_diff'], main['diff_ci_low'], main['diff_ci_high'])} {label} over the same "
        f"model without them{verdict} (VBPR {value(real):.3f} vs {value(none):.3f} for BPR at equal capacity and "
        f"optimiser; paired difference ± half its 95 % interval over {int(main['n_users'])} users)."
    )
    others = []
    for variant in ("shuffled", "random"):
        model = CONTROL_LABELS[variant]
        if model in rows.index:
            row = rows.loc[model]
            flag = " (not distinguishable from zero)" if zero(row) else ""
            others.append(
                f"real minus {variant}: {_pm(row['mean_diff'], row['diff_ci_low'], row['diff_ci_high'])}{flag}"
            )
    if others:
        sentence += f" What the content adds beyond the extra capacity, {'; '.join(others)}."
    return sentence
