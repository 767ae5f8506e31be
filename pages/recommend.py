"""Recommend: top-N lists of several models side by side as poster cards, with history and list metrics."""

import dataclasses

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import ranking_metrics as rm
from recsys.eval import topn_study
from recsys.models.hybrid import HybridUserKNN
from recsys.ui.scale import rating_sample, sample_banner
from recsys.viz import takeaways
from recsys.viz import topn as topn_viz

dataset = ui.current_dataset()
ui.page_header(
    "Recommend",
    "Top-N lists for one user from user-based CF on ratings, on poster taste, and a mix of both, side by side; "
    "each list is scored against the user's held-out ratings (✓ = a movie they rated ≥ 4 in the held-out part).",
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
MAX_N = 20
MIN_LIKED = 10  # the default user has at least this many liked held-out movies: precision@N can be read
sample, split_name = rating_sample(dataset)
sample_dataset = dataclasses.replace(dataset, ratings=sample.ratings, name=split_name) if sample.sampled else dataset


def stars(rating: float) -> str:
    full = int(rating)
    half = rating - full >= 0.5
    return "★" * full + ("½" if half else "") + "☆" * (5 - full - int(half))


@st.cache_resource(show_spinner=False, max_entries=4)
def split(token: str, split_name: str):  # a resource, not data: 100k-row frames are shared read-only, never copied
    return topn_study.per_user_split(sample.ratings, seed=0, dataset_name=split_name)


@st.cache_resource(show_spinner="Fitting user similarities…", max_entries=6)
def fitted(token: str, source: str, profile: tuple = ()):
    """HybridUserKNN fitted once per (features, extra profile); α, K and N vary without refitting."""
    train, _ = split(token, split_name)
    if profile:
        extra = pd.DataFrame(list(profile), columns=["user_id", "item_id", "rating"])
        train = pd.concat([train[["user_id", "item_id", "rating"]], extra], ignore_index=True)
    features = ui.load_representation(token, source, dataset)
    return HybridUserKNN(features=features).fit(train), train


@st.cache_data(show_spinner=False)
def user_choices(token: str, split_name: str) -> pd.DataFrame:
    """Users with liked held-out movies: training ratings and liked held-out count, most active first."""
    train, test = split(token, split_name)
    liked = test[test["rating"] >= topn_study.LIKED_THRESHOLD].groupby("user_id").size()
    counts = train.groupby("user_id").size()
    frame = pd.DataFrame({"ratings": counts, "liked": liked}).dropna().astype(int)
    return frame.sort_values(["ratings", "liked"], ascending=False)


def default_user(users: pd.DataFrame) -> int:
    """A typical user whose list can be scored: median activity among those with >= MIN_LIKED likes."""
    enough = users[users["liked"] >= MIN_LIKED]
    pool = enough if len(enough) else users.sort_values("liked", ascending=False).head(max(1, len(users) // 10))
    return int(pool.index[len(pool) // 2])


@st.cache_data(show_spinner=False, max_entries=16)
def all_lists(token: str, source: str, profile: tuple, alphas: tuple, k: int) -> dict:
    """alpha -> user id -> best MAX_N items, for every user and model at once (a progress bar per
    model: seconds on a large sample); a shorter N is a prefix, so changing N or the user redraws
    without recomputing."""
    model, _ = fitted(token, source, profile)
    progress = ui.StreamlitProgress("Ranking every user's top-20 per model…", min_interval=0)
    result = {}
    for done, alpha in enumerate(alphas):
        progress(done, len(alphas), f"α = {alpha:g}")
        lists = model.recommend(n=MAX_N, alpha=alpha, k=k)
        result[alpha] = {int(user): items.tolist() for user, items in lists.groupby("user_id")["item_id"]}
    progress.empty()
    return result


def top_lists(token: str, source: str, profile: tuple, alpha: float, k: int) -> dict:
    return all_lists(token, source, profile, tuple(MODELS.values()), k)[alpha]


@st.cache_data(show_spinner=False)
def searchable_titles(token: str) -> pd.Series:
    return dataset.items["title"].astype(str).sort_values()


users = user_choices(token, split_name)
choices = [NEW_USER] + users.index.tolist()
# In the sidebar, beside the dataset: the lists and the study below are for this dataset × backbone.
with st.sidebar:
    ui.bind("rec_features", "rep", default_features, options=labels, tokens=options)
    features_label = st.selectbox("Backbone (poster features for the visual taste)", labels, key="rec_features")
with ui.controls():
    c1, c3, c4 = st.columns([3, 1, 1])
    ui.bind(
        "rec_user",
        "user",
        default_user(users) if len(users) else NEW_USER,
        options=choices,
        cast=int,
        tokens={NEW_USER: "new"},
    )
    user = c1.selectbox(
        "User",
        choices,
        key="rec_user",
        format_func=lambda u: (
            u
            if u == NEW_USER
            else f"user {u} ({users.loc[u, 'ratings']} ratings, {users.loc[u, 'liked']} liked held-out)"
        ),
    )
    ui.bind("rec_k", "K", 10, cast=int)
    k = c3.number_input("K neighbours", 1, 200, key="rec_k")
    ui.bind("rec_n", "n", 5, cast=int)
    n = c4.number_input("N items", 1, MAX_N, key="rec_n")
    ui.bind("rec_models", "models", list(MODELS), options=list(MODELS), multi=True, url=False)
    chosen_models = st.multiselect("Models", list(MODELS), key="rec_models")

ui.standin_banner(
    dataset,
    features_label,
    is_cnn=ui.is_cnn(options[features_label]) or not features_label.startswith("poster"),
    key="rec",
    reset=(("rec_features", "rep"),),
)
sample_banner(sample, f"recsys topn --dataset {dataset.name} --backbone …")
source = options[features_label]
profile: tuple = ()
if user == NEW_USER:
    st.subheader("Rate a few movies")
    titles = searchable_titles(token)
    picked = st.multiselect(
        "Search titles to add to your profile",
        titles.index.tolist(),
        format_func=lambda i: titles[i],
        key="rec_profile_search",
    )
    train, _ = split(token, split_name)
    popular = train.groupby("item_id").size().sort_values(ascending=False)
    suggestions = [i for i in popular.index if dataset.posters.get(i) and i not in picked][: max(0, 10 - len(picked))]
    candidates = list(dict.fromkeys([*picked, *suggestions]))
    st.caption("Click the stars under a poster (1–5); unrated posters are left out.")
    ratings = {}
    columns = st.columns(5)
    for position, item_id in enumerate(candidates):
        with columns[position % 5]:
            ui.poster_cards(dataset, [item_id], columns=1, width=120)
            value = st.feedback("stars", key=f"rec_rate_{item_id}")
            if value is not None:
                ratings[item_id] = float(value + 1)
    if not ratings:
        st.info("Rate at least one poster to get recommendations.")
        st.stop()
    new_id = int(dataset.ratings["user_id"].max()) + 1
    profile = tuple((new_id, int(i), r) for i, r in sorted(ratings.items()))
    user = new_id

model, train = fitted(token, source, profile)
_, test = split(token, split_name)
liked = set(test.loc[(test["user_id"] == user) & (test["rating"] >= topn_study.LIKED_THRESHOLD), "item_id"])

history = train[train["user_id"] == user].sort_values(["rating", "item_id"], ascending=[False, True])
with st.expander(
    f"History of user {user}: {len(history)} training ratings, {len(liked)} liked held-out movies", expanded=False
):
    ui.poster_cards(
        dataset,
        history["item_id"].head(10).tolist(),
        captions=[
            f"{stars(float(r))} {dataset.items.loc[i, 'title']}"
            for i, r in zip(history["item_id"].head(10), history["rating"].head(10))
        ],
        columns=10,
    )

rows = []
for name in chosen_models:
    items = top_lists(token, source, profile, MODELS[name], int(k)).get(int(user), [])[: int(n)]
    hits = sum(1 for i in items if i in liked)
    st.markdown(f"#### {name}" + (f" · {hits} of {len(items)} liked" if liked else ""))
    captions = [("✓ " if i in liked else "") + str(dataset.items.loc[i, "title"]) for i in items]
    ui.poster_cards(dataset, items, captions=captions, columns=max(5, min(int(n), 10)))
    row = {
        "model": name,
        "list length": len(items),
        "genre diversity": rm.genre_count(items, dataset.genres, int(n)) if items else 0,
    }
    if liked:
        row["hits (✓)"] = hits
        row["precision@N"] = rm.precision_at_n(items, liked, int(n))
        row["recall@N"] = rm.recall_at_n(items, liked, int(n))
        row["liked held-out (n)"] = len(liked)
    rows.append(row)
if rows:
    st.caption(
        "✓ = the user rated this movie ≥ 4 in the held-out ratings. One user's list is an anecdote: "
        "the study below measures every user, with 95 % intervals."
    )
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
    return {"dataset": token, "sample": split_name, "source": source, "n": n, "n_boot": 200}


@st.cache_data(show_spinner=False, max_entries=8)
def study(token: str, source: str, n: int):
    def compute():
        features = ui.load_representation(token, source, dataset)
        progress = ui.StreamlitProgress("Running the top-N study…")
        result = topn_study.run_topn_study(sample_dataset, features, n=n, progress=progress, n_boot=200)
        progress.empty()
        return result

    # On disk, so a study run once (here or by a restarted server) is shown straight away.
    return ui.disk_cached(topn_study.run_topn_study, study_params(token, source, n), compute)


run_key = f"rec_study_{token}_{source}_{int(n)}"
computed_before = ui.disk_cache_path(topn_study.run_topn_study, study_params(token, source, int(n))).exists()
sentence = ""
if (
    st.button("Run study", key="rec_run_study", icon=":material/play_arrow:")
    or computed_before
    or st.session_state.get(run_key)
):
    st.session_state[run_key] = True
    result = study(token, source, int(n))
    metrics = sorted(result.summary["metric"].unique())
    ui.bind("rec_study_metric", "study_metric", "precision", options=metrics)
    metric = st.selectbox("Metric", metrics, key="rec_study_metric")
    st.caption(
        f"n = {result.meta.get('users_evaluated', '?')} users evaluated, {result.meta.get('seconds', '?')} s; "
        f"features: {result.meta.get('features')}; error bars and brackets are 95 % intervals."
    )
    protocol = f"per-user 80/20 holdout, seed 0, N = {int(n)}"
    left, right = st.columns(2)
    with left:
        ui.show_figure(
            topn_viz.metric_vs_alpha(result.summary, metric),
            f"topn_{metric}_vs_alpha",
            key="rec_study_alpha",
            protocol=protocol,
        )
    with right:
        ui.show_figure(
            topn_viz.alpha_k_heatmap(result.summary, metric),
            f"topn_{metric}_heatmap",
            key="rec_study_heat",
            protocol=protocol,
        )
    if 10 in set(result.summary["k"]):
        st.markdown("**Guo's claims next to our measurements (K = 10)**")
        ui.show_figure(topn_viz.guo_comparison(result.summary), "topn_guo", key="rec_study_guo", protocol=protocol)
        ui.show_table(topn_study.guo_table(result.summary, result.paired), "guo_table", key="rec_guo", hide_index=True)
    with st.expander("All settings (tidy summary)"):
        ui.show_table(result.summary, "topn_summary", key="rec_summary", hide_index=True)
    sentence = takeaways.topn_takeaway(result.paired, metric, 10)
elif rows and liked:
    parts = ", ".join(f"{r['model']} {r['hits (✓)']}" for r in rows)
    sentence = (
        f"For user {user}, the top-{int(n)} lists hold {parts} of their {len(liked)} liked held-out movies; "
        "one user is an anecdote: run the study for every user's numbers with 95 % intervals."
    )
ui.takeaway(sentence)
