"""Rating prediction: RMSE/MAE vs K neighbours for several item representations, best-K table, R²."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.errors import RecsysError
from recsys.eval import experiments, headline
from recsys.eval.splits import cached_splits
from recsys.features.reduce import make_reducer
from recsys.ui.scale import experiment_banner, experiment_sample
from recsys.viz import curves, takeaways

dataset = ui.current_dataset()
ui.page_header(
    "Rating prediction",
    "How well does user KNN predict held-out ratings when users are compared by their ratings (classic CF) or by "
    "profiles built from item features (Σ r·item vector)? Error vs number of neighbours K per representation, "
    "next to the global-mean and user-mean baselines.",
    paper="Ben Hassen et al. (RMSE vs K, Table 1); Lehmann, VT2 (embedding → mean rating R²)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
RATINGS_ONLY = "ratings only (user KNN)"
options = ui.representation_options(dataset)
labels = [RATINGS_ONLY] + list(options)
tokens = {RATINGS_ONLY: "ratings", **options}
spec_of = tokens.get
cnn = [label for label in options if ui.is_cnn(options[label])]
default = [RATINGS_ONLY, ui.GENRE_REPRESENTATION] + (
    cnn[:2] if cnn else [lab for lab in labels if "histogram" in lab][:1]
)
FOLDS = {1: "80/20 holdout", 5: "5-fold CV", 10: "10-fold CV"}

with ui.controls():
    ui.bind("rp_representations", "reps", default, options=labels, tokens=tokens, multi=True)
    chosen = st.multiselect("Item representations", labels, key="rp_representations")
    c1, c2, c3, c4 = st.columns(4)
    ui.bind("rp_kmax", "kmax", 100, cast=int)
    k_max = c1.number_input("Largest K", 10, 500, step=10, key="rp_kmax")
    ui.bind("rp_kstep", "kstep", 10, cast=int)
    k_step = c2.number_input("K step", 1, 100, key="rp_kstep")
    ui.bind("rp_folds", "folds", 1, options=list(FOLDS), cast=int)
    folds = c3.selectbox("Evaluation", list(FOLDS), format_func=FOLDS.get, key="rp_folds")
    reduce_choices = [0, 16, 64, 256]  # 0 = none (a None option would show as an empty selector)
    ui.bind("rp_reduce", "pca", 0, options=reduce_choices, cast=int, url_default=False)
    reduce_to = c4.selectbox(
        "Also PCA-reduced CNN features to",
        reduce_choices,
        key="rp_reduce",
        format_func=lambda d: "—" if not d else f"{d} dims",
    )
    reduce_to = reduce_to or None
    ui.bind("rp_metric", "metric", "rmse", options=["rmse", "mae"])
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

if chosen:
    feature_labels = [name for name in chosen if name != RATINGS_ONLY]
    if feature_labels and not any(ui.is_cnn(options[name]) for name in feature_labels):
        stand_in = next((n for n in feature_labels if n.startswith("poster")), None)
        if stand_in:
            ui.standin_banner(dataset, stand_in, is_cnn=False, key="rp", reset=(("rp_representations", "reps"),))


def folds_of(n_folds: int):
    """The stated test sample of the split (all of it below 10,000 test users / 1 M test ratings)."""
    if n_folds == 1:
        return experiment_sample(
            (token, "holdout"), lambda: cached_splits(dataset.ratings, dataset.name, "holdout", seed=0)
        )
    return experiment_sample(
        (token, "kfold", n_folds),
        lambda: cached_splits(dataset.ratings, dataset.name, "kfold", seed=0, n_folds=n_folds),
    )


sample = folds_of(int(folds))
split_name = sample.description
experiment_banner(
    sample,
    f"recsys evaluate rmse-k --dataset {dataset.name} --representations "
    + ",".join(spec_of(n, n) for n in chosen or [RATINGS_ONLY]),
)
protocol = FOLDS[int(folds)] + ", seed 0" + (f", {sample.n_test:,} sampled test ratings" if sample.sampled else "")


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
def curve(token: str, names: tuple, ks: tuple, n_folds: int, reduce_dims) -> tuple[pd.DataFrame, dict]:
    """The RMSE/MAE-vs-K frame and the per-rating errors at each representation's best K (for the
    intervals), from one fit per representation and fold; kept on disk."""

    def compute():
        splits = folds_of(n_folds).folds
        reps = representations(names, reduce_dims, splits)
        progress = ui.StreamlitProgress("Fitting user KNN per representation and fold…")
        result = headline.k_curve_with_errors(splits, reps, ks=ks, progress=progress)
        progress.empty()
        return result

    sources = tuple(options.get(n, n) for n in names)
    params = {
        "dataset": token,
        "sample": split_name,
        "sources": sources,
        "ks": ks,
        "folds": n_folds,
        "reduce_dims": reduce_dims,
    }
    return ui.disk_cached(headline.k_curve_with_errors, params, compute)


@st.cache_data(show_spinner="Regressing mean ratings on item features (ridge, strength by inner CV)…", max_entries=32)
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
                    {"dataset": token, "source": options[name], "cv": 5, "alpha": "cv"},
                    lambda feats=feats: experiments.embedding_r2(dataset.ratings, feats, cv=5, alpha="cv"),
                )
            )
        except RecsysError as exc:
            skipped[name] = str(exc)
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), skipped


if not chosen:
    st.info("Choose at least one item representation.")
    st.stop()
frame, errors_by_metric = curve(token, tuple(chosen), ks, int(folds), reduce_to)
best = curves.best_k_table(frame, metric)
errors = errors_by_metric[metric]
best_ks = tuple(sorted(errors.attrs["ks"].items()))
head = headline.headline_table(errors, metric, ks=dict(best_ks))
best_model = head[~head["model"].isin(headline.BASELINES)].sort_values(metric.upper())["model"].iloc[0]
head = headline.headline_table(errors, metric, reference=best_model, ks=dict(best_ks))
baseline_values = head[head["model"].isin(headline.BASELINES)].set_index("model")[metric.upper()].to_dict()

top = head.set_index("model").loc[best_model]
m = st.columns(4)
m[0].metric(f"best {metric.upper()}", f"{top[metric.upper()]:.4f}", help=f"{best_model} at K = {int(top['K'])}")
m[1].metric(
    "95 % interval", f"{top['CI low']:.3f}–{top['CI high']:.3f}", help=f"[{top['CI low']:.4f}, {top['CI high']:.4f}]"
)
m[2].metric("held-out ratings (n)", f"{int(top['n']):,}")
m[3].metric(
    "user-mean baseline",
    f"{baseline_values.get('user mean', float('nan')):.4f}",
    delta=f"{top[metric.upper()] - baseline_values.get('user mean', float('nan')):+.4f} best vs it",
    delta_color="inverse",
)
ui.show_figure(
    curves.error_vs_k(frame, metric, (k_low, k_high), baselines=baseline_values),
    f"{metric}_vs_k",
    key="rp_curve",
    protocol=protocol,
)

st.subheader("Best K per representation (Ben Hassen, Table 1 style), with 95 % intervals")
shown = best.merge(
    head.rename(columns={"model": "representation"})[
        ["representation", "n", "CI low", "CI high", "vs reference", "diff low", "diff high", "separated"]
    ],
    on="representation",
    how="left",
)
shown = shown.rename(
    columns={
        "n": "n held-out",
        "vs reference": f"vs best ({best_model})",
        "separated": "told apart from best",
    }
)
ui.show_table(shown, f"best_k_{metric}", key="rp_best", hide_index=True)
st.caption(
    f"Interval of the {metric.upper()} over every held-out rating (n), pooled over folds; the difference to the best "
    "model is paired (same ratings), and 'told apart' means its 95 % interval excludes zero. Baselines: "
    + ", ".join(f"{k} {v:.4f}" for k, v in baseline_values.items())
    + "."
)
with st.expander("All points (tidy frame)"):
    ui.show_table(frame, "rmse_vs_k_points", key="rp_points", hide_index=True)

st.subheader("How much of an item's mean rating do its features explain?")
st.caption(
    "Ridge regression from item features to the item's mean rating, its strength chosen by inner cross-validation "
    "(RidgeCV) inside each of 5 outer folds: the cross-validated R² with its 95 % interval is the honest number; "
    "the in-sample R² (what VT2 reports) only grows with the dimension."
)
r2, r2_skipped = r2_table(token, tuple(chosen))
for name, reason in r2_skipped.items():
    st.warning(f"No R² for **{name}**: {reason}")
if r2.empty:
    st.caption("Pick an item-feature representation to see R².")
else:
    ui.show_figure(curves.r2_bars(r2, value="r2_cv"), "embedding_r2", key="rp_r2_fig", protocol="5-fold CV, seed 0")
    ui.show_table(r2, "embedding_r2", key="rp_r2", hide_index=True)
    st.caption(takeaways.r2_takeaway(r2))

ui.takeaway(takeaways.rating_takeaway(head, metric, dataset.name))
