"""Recommend: top-N lists of several models side by side as poster cards, with history and list metrics."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import ranking_metrics as rm
from recsys.eval import topn_study
from recsys.models.hybrid import HybridUserKNN
from recsys.viz import topn as topn_viz

dataset = ui.current_dataset()
ui.page_header(
    "Recommend",
    "Top-N lists for one user from user-based CF on ratings, on poster taste, and a mix of both, side by side; "
    "each list is scored against the user's held-out ratings (precision, recall) and for genre diversity.",
    paper="Guo (CNN poster features + user-based CF, 10 neighbours, top-5)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = ui.representation_options(dataset, media=("posters", "trailers"), genres=True)
labels = list(options)
cnn = [label for label in labels if ui.is_cnn(options[label])]
default_features = (
    cnn[0] if cnn else ("poster · colour histogram" if "poster · colour histogram" in labels else labels[0])
)
MODELS = {"CF on ratings (α = 1)": 1.0, "hybrid (α = 0.5)": 0.5, "poster taste only (α = 0)": 0.0}
NEW_USER = "build my own profile"


@st.cache_resource(show_spinner=False, max_entries=4)
def split(token: str):  # a resource, not data: 100k-row frames are shared read-only, never copied
    return topn_study.per_user_split(dataset.ratings, seed=0, dataset_name=dataset.name)


@st.cache_resource(show_spinner="Fitting user similarities…", max_entries=6)
def fitted(token: str, source: str, profile: tuple = ()):
    """HybridUserKNN fitted once per (features, extra profile); α, K and N vary without refitting."""
    train, _ = split(token)
    if profile:
        extra = pd.DataFrame(list(profile), columns=["user_id", "item_id", "rating"])
        train = pd.concat([train[["user_id", "item_id", "rating"]], extra], ignore_index=True)
    features = ui.load_representation(token, source, dataset)
    return HybridUserKNN(features=features).fit(train), train


@st.cache_data(show_spinner=False)
def user_choices(token: str) -> pd.Series:
    train, test = split(token)
    liked = test[test["rating"] >= topn_study.LIKED_THRESHOLD].groupby("user_id").size()
    counts = train.groupby("user_id").size()
    return counts[counts.index.isin(liked.index)].sort_values(ascending=False)


MAX_N = 20


@st.cache_data(show_spinner=False, max_entries=32)
def top_lists(token: str, source: str, profile: tuple, alpha: float, k: int) -> dict:
    """user id -> best MAX_N items for every user at once; a shorter N is a prefix, so changing N or
    the user redraws without recomputing."""
    model, _ = fitted(token, source, profile)
    lists = model.recommend(n=MAX_N, alpha=alpha, k=k)
    return {int(user): items.tolist() for user, items in lists.groupby("user_id")["item_id"]}


def recommend_for(user_id: int, alpha: float, k: int, n: int) -> list[int]:
    return top_lists(token, source, profile, alpha, k).get(int(user_id), [])[:n]


users = user_choices(token)
# In the sidebar, beside the dataset: the lists and the study below are for this dataset × backbone.
with st.sidebar:
    features_label = st.selectbox(
        "Backbone (poster features for the visual taste)",
        labels,
        index=labels.index(default_features),
        key="rec_features",
    )
with ui.controls():
    c1, c3, c4 = st.columns([3, 1, 1])
    choices = [NEW_USER] + users.index.tolist()
    # default: the user of median activity (among users with liked held-out items), a typical case
    user = c1.selectbox(
        "User",
        choices,
        index=1 + len(users) // 2 if len(users) else 0,
        key="rec_user",
        format_func=lambda u: u if u == NEW_USER else f"user {u} ({users[u]} ratings)",
    )
    k = c3.number_input("K neighbours", 1, 200, 10, key="rec_k")
    n = c4.number_input("N items", 1, MAX_N, 5, key="rec_n")
    chosen_models = st.multiselect("Models", list(MODELS), default=list(MODELS), key="rec_models")

source = options[features_label]
profile: tuple = ()
if user == NEW_USER:
    st.subheader("Rate a few posters")
    train, _ = split(token)
    popular = train.groupby("item_id").size().sort_values(ascending=False)
    candidates = [i for i in popular.index if dataset.posters.get(i)][:10]
    ratings = {}
    columns = st.columns(5)
    for position, item_id in enumerate(candidates):
        with columns[position % 5]:
            ui.poster_cards(dataset, [item_id], columns=1, width=110)
            value = st.select_slider(
                "rating", ["–", 1, 2, 3, 4, 5], value="–", key=f"rec_rate_{item_id}", label_visibility="collapsed"
            )
            if value != "–":
                ratings[item_id] = float(value)
    if not ratings:
        st.info("Rate at least one poster to get recommendations.")
        st.stop()
    new_id = int(dataset.ratings["user_id"].max()) + 1
    profile = tuple((new_id, int(i), r) for i, r in sorted(ratings.items()))
    user = new_id

model, train = fitted(token, source, profile)
_, test = split(token)
liked = set(test.loc[(test["user_id"] == user) & (test["rating"] >= topn_study.LIKED_THRESHOLD), "item_id"])

history = train[train["user_id"] == user].sort_values(["rating", "item_id"], ascending=[False, True])
with st.expander(
    f"History of user {user}: {len(history)} training ratings, {len(liked)} liked held-out items", expanded=False
):
    ui.poster_cards(
        dataset,
        history["item_id"].head(10).tolist(),
        captions=[
            f"★{r:g} {dataset.items.loc[i, 'title']}"
            for i, r in zip(history["item_id"].head(10), history["rating"].head(10))
        ],
        columns=10,
    )

rows = []
for column, name in zip(st.columns(max(len(chosen_models), 1)), chosen_models):
    items = recommend_for(user, MODELS[name], int(k), int(n))
    with column:
        st.markdown(f"#### {name}")
        captions = [("✓ " if i in liked else "") + str(dataset.items.loc[i, "title"]) for i in items]
        ui.poster_cards(dataset, items, captions=captions, columns=1, width=min(120, 600 // max(len(chosen_models), 1)))
        row = {
            "model": name,
            "list length": len(items),
            "genre diversity": rm.genre_count(items, dataset.genres, int(n)) if items else 0,
        }
        if liked:
            row["precision@N"] = rm.precision_at_n(items, liked, int(n))
            row["recall@N"] = rm.recall_at_n(items, liked, int(n))
        rows.append(row)
if rows:
    st.caption("✓ = the user liked this item in the held-out ratings (rating ≥ 4).")
    ui.show_table(pd.DataFrame(rows), "list_metrics", key="rec_metrics", hide_index=True)

st.divider()
st.subheader("Top-N study over all users")
st.caption(
    "Does mixing poster taste into CF change precision, recall and diversity for everyone? "
    "α sweep × K, 95 % confidence intervals, paired tests against α = 1."
)
with st.expander("Protocol"):
    st.markdown(topn_study.PROTOCOL)


def study_params(token: str, source: str, n: int) -> dict:
    return {"dataset": token, "source": source, "n": n, "n_boot": 200}


@st.cache_data(show_spinner=False, max_entries=8)
def study(token: str, source: str, n: int):
    def compute():
        features = ui.load_representation(token, source, dataset)
        progress = ui.StreamlitProgress("Running the top-N study…")
        result = topn_study.run_topn_study(dataset, features, n=n, progress=progress, n_boot=200)
        progress.empty()
        return result

    # On disk, so a study run once (here or by a restarted server) is shown straight away.
    return ui.disk_cached(topn_study.run_topn_study, study_params(token, source, n), compute)


run_key = f"rec_study_{token}_{source}_{int(n)}"
computed_before = ui.disk_cache_path(topn_study.run_topn_study, study_params(token, source, int(n))).exists()
if (
    st.button("Run study", key="rec_run_study", icon=":material/play_arrow:")
    or computed_before
    or st.session_state.get(run_key)
):
    st.session_state[run_key] = True
    result = study(token, source, int(n))
    metrics = sorted(result.summary["metric"].unique())
    metric = st.selectbox(
        "Metric", metrics, key="rec_study_metric", index=metrics.index("precision") if "precision" in metrics else 0
    )
    st.caption(
        f"{result.meta.get('users_evaluated', '?')} users evaluated, {result.meta.get('seconds', '?')} s; "
        f"features: {result.meta.get('features')}."
    )
    left, right = st.columns(2)
    with left:
        ui.show_figure(
            topn_viz.metric_vs_alpha(result.summary, metric), f"topn_{metric}_vs_alpha", key="rec_study_alpha"
        )
    with right:
        ui.show_figure(topn_viz.alpha_k_heatmap(result.summary, metric), f"topn_{metric}_heatmap", key="rec_study_heat")
    if 10 in set(result.summary["k"]):
        st.markdown("**Guo's claims next to our measurements (K = 10)**")
        ui.show_figure(topn_viz.guo_comparison(result.summary), "topn_guo", key="rec_study_guo")
        ui.show_table(topn_study.guo_table(result.summary, result.paired), "guo_table", key="rec_guo", hide_index=True)
    with st.expander("All settings (tidy summary)"):
        ui.show_table(result.summary, "topn_summary", key="rec_summary", hide_index=True)
