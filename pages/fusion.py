"""Fusion: w·CF + (1−w)·content across CV folds, with mean/median lines and percentile bands."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import experiments
from recsys.eval.splits import cached_splits
from recsys.models.content import ContentPredictor
from recsys.models.knn import UserKNN
from recsys.viz import curves

dataset = ui.current_dataset()
ui.page_header(
    "Fusion",
    "Blend a collaborative-filtering prediction with a content prediction from item features, r = w·CF + (1−w)·content, "
    "and see across cross-validation folds whether any weight w beats CF alone — for all items and for cold-start items.",
    paper="Lehmann, VT2 (Figs. 7–8: 10-fold fusion curves with mean, median, 10–90 and 0–100 percentile bands)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = {k: v for k, v in ui.representation_options(dataset).items()}
labels = list(options)
cnn = [label for label in labels if ui.is_cnn(options[label])]
default_features = (
    cnn[0] if cnn else ("poster · colour histogram" if "poster · colour histogram" in labels else labels[0])
)
CF_MODELS = ["user KNN", "biased MF"]
SPLITS = {"kfold": "random folds (all items)", "cold_items": "cold-start items (held-out items unseen in training)"}

with ui.controls():
    c1, c2, c3 = st.columns(3)
    cf_name = c1.selectbox("CF model", CF_MODELS, key="fu_cf")
    cf_k = c1.number_input("K neighbours (user KNN)", 5, 200, 40, step=5, key="fu_k")
    features_label = c2.selectbox(
        "Content model: item features", labels, index=labels.index(default_features), key="fu_features"
    )
    top_m = c2.number_input("Content: most similar rated items (0 = all)", 0, 200, 0, key="fu_topm")
    split_kind = c3.selectbox("Folds", list(SPLITS), format_func=SPLITS.get, key="fu_split")
    n_folds = c3.select_slider("Number of folds", [3, 5, 10], value=5, key="fu_folds")
    c4, c5 = st.columns(2)
    metric = c4.radio("Metric", ["rmse", "mae"], format_func=str.upper, horizontal=True, key="fu_metric")


@st.cache_data(show_spinner=False, max_entries=16)
def fusion(token: str, cf_name: str, cf_k: int, source: str, top_m: int, split_kind: str, n_folds: int) -> pd.DataFrame:
    def compute():
        splits = cached_splits(dataset.ratings, dataset.name, split_kind, seed=0, n_folds=n_folds)
        features = ui.load_representation(token, source, dataset)
        if cf_name == "biased MF":
            from recsys.models.mf import BiasedMF

            cf_model = BiasedMF(n_factors=20, n_epochs=10)
        else:
            cf_model = UserKNN(k=cf_k)
        progress = ui.StreamlitProgress("Fitting CF and content models per fold…")
        frame = experiments.fusion_curve(
            splits,
            features,
            cf_model=cf_model,
            content_model=ContentPredictor(features, top_m=top_m or None),
            progress=progress,
        )
        progress.empty()
        return frame

    params = {"dataset": token, "cf": cf_name, "cf_k": cf_k, "source": source, "top_m": top_m}
    return ui.disk_cached(experiments.fusion_curve, {**params, "split": split_kind, "folds": n_folds}, compute)


curve = fusion(token, cf_name, int(cf_k), options[features_label], int(top_m), split_kind, int(n_folds))
subsets = list(curve["subset"].unique())
subset = c5.radio(
    "Items",
    subsets,
    horizontal=True,
    key=f"fu_subset_{split_kind}",
    index=subsets.index("cold-start") if split_kind == "cold_items" and "cold-start" in subsets else 0,
)

summary = curves.fusion_summary_table(curve)
row = summary[(summary["subset"] == subset) & (summary["metric"] == metric.upper())]
if len(row):
    row = row.iloc[0]
    m = st.columns(4)
    m[0].metric("best w", f"{row['best w']:.2f}")
    m[1].metric(f"{metric.upper()} at best w", f"{row['fused']:.4f}")
    m[2].metric("CF alone (w = 1)", f"{row['CF only (w=1)']:.4f}")
    m[3].metric("gain over CF", f"{row['gain over CF']:.4f}", delta=f"{row['gain over CF %']:.2f} %")
ui.show_figure(curves.fusion_curve_figure(curve, metric, subset), f"fusion_{metric}_{subset}", key="fu_fig")
st.subheader("Best weight and gain, per item subset and metric")
ui.show_table(summary, "fusion_summary", key="fu_summary", hide_index=True)
with st.expander("Per-fold points (tidy frame)"):
    ui.show_table(curve, "fusion_curve_points", key="fu_points", hide_index=True)
