"""Rating prediction: RMSE/MAE vs K neighbours for several item representations, best-K table, R²."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.errors import RecsysError
from recsys.eval import experiments
from recsys.eval.splits import cached_splits
from recsys.features.reduce import make_reducer
from recsys.viz import curves

dataset = ui.current_dataset()
ui.page_header(
    "Rating prediction",
    "How well does user KNN predict held-out ratings when users are compared by their ratings (classic CF) or by "
    "profiles built from item features (Σ r·item vector)? Error vs number of neighbours K per representation.",
    paper="Ben Hassen et al. (RMSE vs K, Table 1); Lehmann, VT2 (embedding → mean rating R²)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
RATINGS_ONLY = "ratings only (user KNN)"
options = ui.representation_options(dataset)
labels = [RATINGS_ONLY] + list(options)
cnn = [label for label in options if ui.is_cnn(options[label])]
default = [RATINGS_ONLY, ui.GENRE_REPRESENTATION] + (
    cnn[:2] if cnn else [lab for lab in labels if "histogram" in lab][:1]
)

with ui.controls():
    chosen = st.multiselect("Item representations", labels, default=default, key="rp_representations")
    c1, c2, c3, c4 = st.columns(4)
    k_max = c1.number_input("Largest K", 10, 500, 100, step=10, key="rp_kmax")
    k_step = c2.number_input("K step", 1, 100, 10, key="rp_kstep")
    folds = c3.selectbox(
        "Evaluation", [1, 5, 10], format_func=lambda f: "80/20 holdout" if f == 1 else f"{f}-fold CV", key="rp_folds"
    )
    reduce_to = c4.selectbox(
        "Also PCA-reduced CNN features to",
        [None, 16, 64, 256],
        key="rp_reduce",
        format_func=lambda d: "—" if d is None else f"{d} dims",
    )
    metric = st.radio("Metric", ["rmse", "mae"], format_func=str.upper, horizontal=True, key="rp_metric")
    ks = tuple(range(int(k_step) if k_step < k_max else 1, int(k_max) + 1, int(k_step)))
    k_low, k_high = st.slider(
        "Show K range",
        min(ks),
        max(ks),
        (min(ks), max(ks)),
        key=f"rp_krange_{min(ks)}_{max(ks)}",
        help="Only crops the drawing: the curves are computed once for all K.",
    )


def folds_of(n_folds: int):
    if n_folds == 1:
        return cached_splits(dataset.ratings, dataset.name, "holdout", seed=0)
    return cached_splits(dataset.ratings, dataset.name, "kfold", seed=0, n_folds=n_folds)


def representations(names: tuple, reduce_dims, splits) -> dict:
    reps = {}
    train_items = splits[0].train["item_id"].unique()
    for name in names:
        if name == RATINGS_ONLY:
            reps[name] = None
            continue
        features = ui.load_representation(token, options[name], dataset)
        reps[name] = features
        if reduce_dims and ui.is_cnn(options[name]) and features.dim > reduce_dims:
            reduced = make_reducer("pca", int(reduce_dims)).fit_transform(features, train_items)
            reps[f"{name} · PCA{reduce_dims}"] = reduced
    return reps


@st.cache_data(show_spinner=False, max_entries=32)
def curve(token: str, names: tuple, ks: tuple, n_folds: int, reduce_dims) -> pd.DataFrame:
    def compute():
        splits = folds_of(n_folds)
        reps = representations(names, reduce_dims, splits)
        progress = ui.StreamlitProgress("Fitting user KNN per representation and fold…")
        frame = experiments.rmse_vs_k(splits, reps, ks=ks, progress=progress)
        progress.empty()
        return frame

    sources = tuple(options.get(n, n) for n in names)
    params = {"dataset": token, "sources": sources, "ks": ks, "folds": n_folds, "reduce_dims": reduce_dims}
    return ui.disk_cached(experiments.rmse_vs_k, params, compute)


@st.cache_data(show_spinner="Regressing mean ratings on item features…", max_entries=32)
def r2_table(token: str, names: tuple) -> tuple[pd.DataFrame, dict]:
    """R² rows per representation, and {representation: reason} for those that cannot be scored
    (e.g. features of only a handful of items): one odd representation must not hide the others."""
    rows, skipped = [], {}
    for name in names:
        if name == RATINGS_ONLY:
            continue
        feats = {name: ui.load_representation(token, options[name], dataset)}
        try:
            rows.append(
                ui.disk_cached(
                    experiments.embedding_r2,
                    {"dataset": token, "source": options[name], "cv": 5, "alpha": 1.0},
                    lambda feats=feats: experiments.embedding_r2(dataset.ratings, feats, cv=5, alpha=1.0),
                )
            )
        except RecsysError as exc:
            skipped[name] = str(exc)
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), skipped


if not chosen:
    st.info("Choose at least one item representation.")
    st.stop()
frame = curve(token, tuple(chosen), ks, int(folds), reduce_to)
ui.show_figure(curves.error_vs_k(frame, metric, (k_low, k_high)), f"{metric}_vs_k", key="rp_curve")

st.subheader("Best K per representation (Ben Hassen, Table 1 style)")
best = curves.best_k_table(frame, metric)
ui.show_table(best, f"best_k_{metric}", key="rp_best", hide_index=True)
with st.expander("All points (tidy frame)"):
    ui.show_table(frame, "rmse_vs_k_points", key="rp_points", hide_index=True)

st.subheader("How much of an item's mean rating do its features explain?")
st.caption(
    "Ridge regression from item features to the item's mean rating: in-sample R² (what VT2 reports) and "
    "5-fold cross-validated R² (the honest number)."
)
r2, r2_skipped = r2_table(token, tuple(chosen))
for name, reason in r2_skipped.items():
    st.warning(f"No R² for **{name}**: {reason}")
if r2.empty:
    st.caption("Pick an item-feature representation to see R².")
else:
    ui.show_figure(curves.r2_bars(r2, value="r2_cv"), "embedding_r2", key="rp_r2_fig")
    ui.show_table(r2, "embedding_r2", key="rp_r2", hide_index=True)
