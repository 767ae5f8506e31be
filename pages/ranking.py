"""Ranking: full-ranking Recall/NDCG of MostPop, ItemKNN, BPR-MF and VBPR, and the feature control."""

import streamlit as st

from recsys import ui
from recsys.eval import ranking as rk
from recsys.eval import ranking_study as study
from recsys.viz import ranking as ranking_viz

dataset = ui.current_dataset()
ui.page_header(
    "Ranking",
    "Top-N ranking the way the multimodal-recommendation field measures it: every candidate item ranked for every "
    "user, Recall/NDCG@K with 95 % intervals; and the control that says whether the images or the model did the "
    "work (the same VBPR with real, shuffled, random and no features).",
    paper="He & McAuley (VBPR, AAAI 2016); full-ranking protocol as in Cornac",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = ui.representation_options(dataset)
labels = list(options)
cnn = [label for label in labels if ui.is_cnn(options[label])]
default_label = cnn[0] if cnn else next((lab for lab in labels if options[lab] == "genres"), labels[0])
KS = (10, 20, 50)

with ui.controls():
    c1, c2, c3 = st.columns([2, 3, 1])
    ui.bind("rank_protocol", "protocol", rk.PROTOCOLS[0], options=rk.PROTOCOLS)  # kept across pages, in the URL
    protocol = c1.selectbox(
        "Protocol", rk.PROTOCOLS, format_func=rk.PROTOCOL_LABELS.get, key="rank_protocol", help=rk.PROTOCOL
    )
    ui.bind("rank_features", "rep", default_label, options=labels, tokens=options)
    features_label = c2.selectbox("VBPR item features", labels, key="rank_features")
    ui.bind("rank_epochs", "epochs", 15, cast=int)
    epochs = c3.number_input("Epochs (BPR/VBPR)", 1, 200, key="rank_epochs")
    c4, c5, c6 = st.columns([3, 2, 1])
    models = c4.multiselect("Models", study.MODEL_NAMES, default=list(study.MODEL_NAMES), key="rank_models")
    with_control = c5.toggle(
        "Run the control (real / shuffled / random / no features)", value=True, key="rank_with_control"
    )
    repeats = c6.number_input(
        "Control seeds",
        1,
        5,
        1,
        key="rank_repeats",
        help="Fits per control variant; each user's metric is averaged over them (steadier new-item numbers).",
        disabled=not with_control,
    )
source = options[features_label]
if not models:
    st.info("Pick at least one model.")
    st.stop()

params = {
    "dataset": token,
    "protocol": protocol,
    "models": list(models),
    "representation": source,
    "epochs": int(epochs),
    "ks": list(KS),
    "control": bool(with_control),
    "repeats": int(repeats),
}


def compute() -> dict:
    features = ui.load_representation(token, source, dataset)
    progress = ui.StreamlitProgress(f"Training on {ui.device_name()}…")
    try:
        task = rk.make_task(dataset.ratings, protocol)
        result = study.run_ranking_study(
            dataset.ratings, protocol, models, features, KS, epochs=int(epochs), progress=progress, task=task
        )
        control = None
        if with_control:
            control = study.run_control(
                dataset.ratings,
                features,
                protocol,
                KS,
                epochs=int(epochs),
                progress=progress,
                task=task,
                repeats=int(repeats),
                what=f"the {features.name} features",
            )
    finally:
        progress.empty()
    return {"result": result, "control": control}


run_key = f"rank_run_{token}_{hash(tuple(sorted((k, str(v)) for k, v in params.items())))}"
computed_before = ui.disk_cache_path(study.run_ranking_study, params).exists()
clicked = st.button("Train and evaluate", key="rank_run", icon=":material/play_arrow:")
if not (clicked or computed_before or st.session_state.get(run_key)):
    st.info(
        f"Trains {', '.join(models)}{' and the four control variants' if with_control else ''} on the "
        f"{rk.PROTOCOL_LABELS[protocol]} of **{dataset.name}** (device: **{ui.device_name()}**); results are kept "
        "on disk, so the next visit shows them at once."
    )
    with st.expander("Protocol and metrics"):
        st.markdown(rk.PROTOCOL)
    st.stop()
st.session_state[run_key] = True
stored = ui.disk_cached(study.run_ranking_study, params, compute)  # a RecsysError ends the page as a message
result, control = stored["result"], stored["control"]
subtitle = f"{rk.PROTOCOL_LABELS[protocol]}, {result.meta['users_evaluated']:,} users"
meta = result.meta
devices = sorted({m["device"] for m in meta["models"]})
timings = ", ".join(f"{m['model']} {m['fit_s']:.1f} s" for m in meta["models"])
st.caption(f"{meta['task']}. Trained on **{'/'.join(devices)}**: {timings}. Features: {meta.get('features')}.")

if control is not None:
    st.markdown("#### The control")
    st.success(control.sentence, icon=":material/science:")

st.subheader("Models × metrics")
metric_choices = [m for m in rk.METRICS if m in set(result.summary["metric"])]
c1, c2 = st.columns([2, 1])
ui.bind("rank_metric", "metric", metric_choices[0], options=metric_choices)
metric = c1.selectbox("Metric", metric_choices, format_func=rk.METRIC_LABELS.get, key="rank_metric")
ui.bind("rank_k", "K", KS[1], options=KS, cast=int)
k = c2.selectbox("K", KS, key="rank_k", disabled=metric == "auc")
left, right = st.columns(2)
with left:
    ui.show_figure(
        ranking_viz.metric_bars(result.summary, metric, int(k)),
        f"ranking_{metric}_bars",
        key="rank_bars",
        protocol=subtitle,
    )
with right:
    if metric != "auc":
        ui.show_figure(
            ranking_viz.metric_vs_k(result.summary, metric),
            f"ranking_{metric}_vs_k",
            key="rank_vs_k",
            protocol=subtitle,
        )
ui.show_table(rk.metrics_table(result.summary), "ranking_table", key="rank_table")
with st.expander("Paired tests between models (Holm-adjusted) and the tidy summary"):
    if not result.paired.empty:
        ui.show_table(result.paired, "ranking_paired", key="rank_paired", hide_index=True)
    ui.show_table(result.summary, "ranking_summary", key="rank_summary", hide_index=True)
ui.show_figure(
    ranking_viz.head_tail_bars(result.breakdown, int(k) if metric != "auc" else 20),
    "ranking_head_tail",
    key="rank_head_tail",
    protocol=subtitle,
)

if control is not None:
    st.subheader("Control: real, shuffled, random and no features")
    left, right = st.columns(2)
    with left:
        ui.show_figure(
            ranking_viz.control_differences(control.paired, "recall", 20),
            "control_differences",
            key="rank_ctl_diff",
            protocol=subtitle,
        )
    with right:
        ui.show_figure(
            ranking_viz.metric_bars(control.summary, "recall", 20),
            "control_recall",
            key="rank_ctl_bars",
            protocol=subtitle,
        )
    ui.show_table(rk.metrics_table(control.summary, ["recall", "ndcg", "auc"]), "control_table", key="rank_ctl_table")
    if control.cold is not None:
        st.markdown(f"**New items** — {control.meta['cold_task']}")
        st.caption("BPR has nothing to score a new item with: its lists of new items stay empty.")
        ui.show_table(rk.metrics_table(control.cold, ["recall", "ndcg"]), "control_cold", key="rank_ctl_cold")
    ui.csv_download(control.frame(), "control_tidy", key="rank_ctl_tidy", label="Download the control (tidy CSV)")

st.subheader("Lists for one user")
lists = result.lists
users = sorted(lists["user_id"].unique())
hits = lists.groupby("user_id")["relevant"].sum()
ui.bind("rank_user", "user", users[len(users) // 2], options=users, cast=int)
user = st.selectbox(
    "User",
    users,
    key="rank_user",
    format_func=lambda u: f"user {u} ({int(hits.get(u, 0))} hits over all models' lists)",
)
n_show = 10
for model in dict.fromkeys(lists["model"]):
    rows = lists[(lists["model"] == model) & (lists["user_id"] == user)].sort_values("rank").head(n_show)
    st.markdown(f"**{model}** — {int(rows['relevant'].sum())} of {len(rows)} liked (held out, rating ≥ 4)")
    titles = dataset.items["title"].reindex(rows["item_id"]).fillna("?").tolist()
    captions = [("✓ " if r else "") + str(t) for r, t in zip(rows["relevant"], titles)]
    ui.poster_cards(dataset, rows["item_id"].tolist(), captions=captions, columns=n_show)
st.caption("✓ = the user liked this item in the held-out ratings (rating ≥ 4).")
ui.csv_download(lists[lists["user_id"] == user], f"ranking_lists_user{user}", key="rank_lists_csv")
with st.expander("Protocol and metrics"):
    st.markdown(rk.PROTOCOL)
    st.markdown(rk.__doc__.split("Per user and K", 1)[1].split("Summaries give", 1)[0])
