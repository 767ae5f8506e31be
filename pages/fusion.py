"""Fusion: w·CF + (1−w)·content across CV folds, with mean/median lines and percentile bands."""

import time

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import experiments, headline
from recsys.eval.splits import cached_splits
from recsys.models.content import ContentPredictor
from recsys.models.knn import UserKNN
from recsys.ui.scale import LIMITS, experiment_banner, experiment_sample
from recsys.viz import curves, takeaways

dataset = ui.current_dataset()
ui.page_header(
    "Fusion",
    "Blend a collaborative-filtering prediction with a content prediction from item features, r = w·CF + (1−w)·content, "
    "and see across cross-validation folds whether any weight w beats CF alone — for all items and for cold-start "
    "items — next to the global-mean and user-mean baselines.",
    paper="Lehmann, VT2 (Figs. 7–8: 10-fold fusion curves with mean, median, 10–90 and 0–100 percentile bands)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = dict(ui.representation_options(dataset))
labels = list(options)
cnn = [label for label in labels if ui.is_cnn(options[label])]
default_features = (
    cnn[0] if cnn else ("poster · colour histogram" if "poster · colour histogram" in labels else labels[0])
)
CF_MODELS = ["user KNN", "biased MF"]
SPLITS = {"kfold": "random folds (all items)", "cold_items": "cold-start items (held-out items unseen in training)"}

with ui.controls():
    c1, c2, c3 = st.columns(3)
    ui.bind("fu_cf", "cf", "user KNN", options=CF_MODELS)
    cf_name = c1.selectbox("CF model", CF_MODELS, key="fu_cf")
    ui.bind("fu_k", "K", 40, cast=int)
    cf_k = c1.number_input(
        "K neighbours (user KNN)", 5, 200, step=5, key="fu_k", help="K is always a number of neighbours."
    )
    ui.bind("fu_features", "rep", default_features, options=labels, tokens=options)
    features_label = c2.selectbox("Content model: item features", labels, key="fu_features")
    ui.bind("fu_topm", "topm", 0, cast=int)
    top_m = c2.number_input("Content: most similar rated items (0 = all)", 0, 200, key="fu_topm")
    ui.bind("fu_split", "split", "kfold", options=list(SPLITS))
    split_kind = c3.selectbox("Folds", list(SPLITS), format_func=SPLITS.get, key="fu_split")
    # 3 folds by default beyond the sample threshold (ML-20M/25M size: each fold is minutes); 10 as VT2 from the CLI
    default_folds = 3 if len(dataset.ratings) > LIMITS["max_ratings"] else 5
    ui.bind("fu_folds", "folds", default_folds, options=[3, 5, 10], cast=int)
    n_folds = c3.select_slider("Number of folds", [3, 5, 10], key="fu_folds")
    c4, c5 = st.columns(2)
    ui.bind("fu_metric", "metric", "rmse", options=["rmse", "mae"])
    metric = c4.radio("Metric", ["rmse", "mae"], format_func=str.upper, horizontal=True, key="fu_metric")

ui.standin_banner(
    dataset,
    features_label,
    is_cnn=ui.is_cnn(options[features_label]) or not features_label.startswith("poster"),
    key="fu",
    reset=(("fu_features", "rep"),),
)


def splits_of(split_name: str, split_kind: str, n_folds: int):
    """The folds, their test side reduced to the stated sample on large data (the CLI's default)."""
    return experiment_sample(
        (token, split_kind, n_folds),
        lambda: cached_splits(dataset.ratings, dataset.name, split_kind, seed=0, n_folds=n_folds),
    ).folds


sample = experiment_sample(
    (token, split_kind, int(n_folds)),
    lambda: cached_splits(dataset.ratings, dataset.name, split_kind, seed=0, n_folds=int(n_folds)),
)
split_name = sample.description
experiment_banner(
    sample,
    f"recsys evaluate fusion --dataset {dataset.name} --features {options[features_label]} --split {split_kind} "
    f"--folds {n_folds}",
)


def cf_model_for(cf_name: str, cf_k: int):
    if cf_name == "biased MF":
        from recsys.models.mf import BiasedMF

        return BiasedMF()  # the package defaults: the measured best settings (README, bench/mf_vs_surprise.py)
    return UserKNN(k=cf_k)


@st.cache_data(show_spinner=False, max_entries=16)
def fusion(token: str, cf_name: str, cf_k: int, source: str, top_m: int, split_kind: str, n_folds: int) -> pd.DataFrame:
    def compute():
        splits = splits_of(split_name, split_kind, n_folds)
        features = ui.load_representation(token, source, dataset)
        cf_model = cf_model_for(cf_name, cf_k)
        started = time.perf_counter()
        progress = ui.StreamlitProgress("Fitting CF and content models per fold…")
        frame = experiments.fusion_curve(
            splits,
            features,
            cf_model=cf_model,
            content_model=ContentPredictor(features, top_m=top_m or None),
            progress=progress,
        )
        progress.empty()
        frame.attrs["compute_s"] = time.perf_counter() - started  # CF + content fits and predictions, all folds
        return frame

    params = {"dataset": token, "sample": split_name, "cf": cf_name, "cf_k": cf_k, "source": source, "top_m": top_m}
    params["cf_model"] = repr(cf_model_for(cf_name, cf_k))  # a new default refits
    return ui.disk_cached(experiments.fusion_curve, {**params, "split": split_kind, "folds": n_folds}, compute)


@st.cache_data(show_spinner=False, max_entries=16)
def baselines(token: str, split_kind: str, n_folds: int) -> pd.DataFrame:
    params = {"dataset": token, "sample": split_name, "split": split_kind, "folds": n_folds}
    return ui.disk_cached(
        headline.baseline_fold_rmse,
        params,
        lambda: headline.baseline_fold_rmse(splits_of(split_name, split_kind, n_folds)),
    )


curve = fusion(token, cf_name, int(cf_k), options[features_label], int(top_m), split_kind, int(n_folds))
base = baselines(token, split_kind, int(n_folds))
subsets = list(curve["subset"].unique())
ui.bind(
    f"fu_subset_{split_kind}",
    "cold_subset" if split_kind == "cold_items" else "subset",  # each split keeps its own choice
    "cold-start" if split_kind == "cold_items" and "cold-start" in subsets else "all",
    options=subsets,
)
subset = c5.radio("Items", subsets, horizontal=True, key=f"fu_subset_{split_kind}")
weights = ["best"] + [round(float(w), 2) for w in sorted(curve["weight"].unique())]
ui.bind("fu_w", "w", "best", options=weights, cast=lambda t: t if t == "best" else float(t))
inspect_w = st.select_slider(
    "Inspect the fusion weight w (w·CF + (1−w)·content)",
    weights,
    key="fu_w",
    format_func=lambda w: "best w" if w == "best" else f"{w:.2f}",
    help="'best w' is the weight with the lowest mean error over folds; any other w shows its own gain over CF.",
)

best_gain = headline.fusion_gain(curve, subset, metric)
gain = best_gain if inspect_w == "best" else headline.fusion_gain(curve, subset, metric, w=inspect_w)
chosen_w = "best w" if inspect_w == "best" else f"w = {gain['best_w']:.2f}"
base_means = base[base["subset"] == subset].groupby("model")[metric].mean().to_dict()
estimate = gain["gain"]
protocol = f"{n_folds} folds, {SPLITS[split_kind]}, seed 0" + (
    f", {sample.n_test:,} sampled test ratings" if sample.sampled else ""
)

m = st.columns(5)
m[0].metric("best w", f"{best_gain['best_w']:.2f}", help="w = the weight of CF: w·CF + (1−w)·content")
m[1].metric(f"{metric.upper()} at {chosen_w}", f"{gain['fused']:.4f}")
m[2].metric("CF alone (w = 1)", f"{gain['cf']:.4f}")
m[3].metric(
    f"gain over CF at {chosen_w}",
    f"{estimate.value:+.4f}",
    delta=f"{gain['gain_pct']:+.2f} %" if estimate.excludes_zero else "inside its 95 % interval",
    delta_color="normal" if estimate.excludes_zero else "off",
    help="CF alone minus the fusion at the best w, per fold; 95 % t-interval over folds.",
)
m[4].metric("user-mean baseline", f"{base_means.get('user mean', float('nan')):.4f}")
st.caption(
    f"Gain 95 % interval over {gain['folds']} folds: [{estimate.low:+.4f}, {estimate.high:+.4f}]"
    + ("" if estimate.excludes_zero else " — it includes zero: the fusion is not told apart from CF alone")
    + f". n = {gain['n']:,} held-out ratings ({', '.join(f'{v:,}' for v in gain['n_per_fold'])} per fold)"
    + ("; the best w is picked on these same folds, which flatters it a little." if inspect_w == "best" else ".")
)
if cf_name == "biased MF":
    mf = cf_model_for(cf_name, 0)
    seconds = curve.attrs.get("compute_s")
    st.caption(
        f"CF: biased MF with the package defaults ({mf.solver.upper()}, k = {mf.n_factors}, {mf.n_epochs} sweeps)"
        + (f"; the {n_folds}-fold curve took {seconds:.0f} s to fit and score on this machine" if seconds else "")
        + "."
    )
if subset == "cold-start" and gain["cf"] > base_means.get("user mean", float("inf")):
    st.info(
        f"Why is CF alone ({gain['cf']:.4f}) worse than each user's mean ({base_means['user mean']:.4f}) here? "
        "A cold-start item has no training ratings, so CF has no neighbour who rated it and answers its fallback "
        "(user KNN: the global mean) for every such pair. The user mean is the fair yardstick for cold start.",
        icon=":material/help:",
    )
if gain["n"] / max(gain["folds"], 1) < 200:
    st.warning(
        f"Only about {gain['n'] // max(gain['folds'], 1):,} ratings per fold in this subset: a few ratings move "
        "the percentage gain a lot. Read the interval, not the percentage.",
        icon=":material/warning:",
    )
ui.show_figure(
    curves.fusion_curve_figure(curve, metric, subset, baselines=base_means),
    f"fusion_{metric}_{subset}",
    key="fu_fig",
    protocol=protocol,
)

st.subheader("Best weight and gain, per item subset and metric")
summary = curves.fusion_summary_table(curve)
rows = []
for sub in subsets:
    for met in ("rmse", "mae"):
        g = headline.fusion_gain(curve, sub, met)
        means = base[base["subset"] == sub].groupby("model")[met].mean()
        rows.append(
            {
                "subset": sub,
                "metric": met.upper(),
                "gain CI low": g["gain"].low,
                "gain CI high": g["gain"].high,
                "gain told apart from 0": g["gain"].excludes_zero,
                "global mean": means.get("global mean"),
                "user mean": means.get("user mean"),
                "n (all folds)": g["n"],
                "n per fold": ", ".join(str(v) for v in g["n_per_fold"]),
            }
        )
summary = summary.merge(pd.DataFrame(rows), on=["subset", "metric"], how="left")
ui.show_table(summary, "fusion_summary", key="fu_summary", hide_index=True)
with st.expander("Per-fold points (tidy frame) and baselines per fold"):
    ui.show_table(curve, "fusion_curve_points", key="fu_points", hide_index=True)
    ui.show_table(base, "fusion_baselines", key="fu_base", hide_index=True)

ui.takeaway(takeaways.fusion_takeaway(best_gain, base_means, subset))
