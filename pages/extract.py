"""Extract features: run a CNN backbone over posters or trailer frames, cached and resumable."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.errors import RecsysError
from recsys.features import backbones
from recsys.features.config import DEFAULT_BACKBONE, PRECISIONS, RunOptions, make_config
from recsys.features.engines import available_engines
from recsys.features.extract import extract
from recsys.features.representations import RepresentationSpec

dataset = ui.current_dataset()
ui.page_header(
    "Extract features",
    "Turn posters or trailer frames into CNN feature vectors with a chosen backbone, weights, layer and pooling. "
    "Results are cached per configuration and resume after an interruption.",
    paper="Ben Hassen et al. (VGG frames at 1/2/3 fps, mean per video) and Guo (VGG16 poster features)",
    dataset=dataset,
)


@st.cache_data(show_spinner=False)
def curated() -> pd.DataFrame:
    return backbones.curated_backbones_frame()


@st.cache_data(show_spinner=False, max_entries=32)
def layers_of(name: str) -> list[str]:
    return backbones.list_layers(name)


catalogue = curated()
names = catalogue["name"].tolist()
OTHER = "other timm model…"
with ui.controls():
    c1, c2, c3 = st.columns([2, 1, 1])
    media = c1.radio("Media", ["posters", "trailers"], horizontal=True, key="ex_media")
    backbone = c1.selectbox(
        "Backbone",
        names + [OTHER],
        index=names.index(DEFAULT_BACKBONE),
        key="ex_backbone",
        format_func=lambda n: (
            n + ("  (offline weights)" if n in names and catalogue.set_index("name").loc[n, "offline"] else "")
        ),
    )
    if backbone == OTHER:
        backbone = c1.text_input(
            "timm model name",
            value="mobilenetv3_small_050",
            key="ex_other_backbone",
            help="Any name from timm.list_models(); weights 'random' needs no download.",
        ).strip()
    weights = c2.selectbox(
        "Weights",
        backbones.WEIGHT_CHOICES,
        key="ex_weights",
        help="auto: local file → offline package → timm hub; random = untrained baseline",
    )
    weights_file = c2.text_input("Weights file (optional)", key="ex_weights_file") or None
    pooling = c3.selectbox("Pooling", backbones.POOLINGS, key="ex_pooling")
    custom_layer = c3.checkbox(
        "Intermediate layer", key="ex_custom_layer", help="Default: pooled pre-logits (the classifier's input)."
    )
    layer = None
    if custom_layer:
        try:
            layer = st.selectbox("Layer", layers_of(backbone), key="ex_layer")
        except Exception as exc:  # noqa: BLE001 - unknown model names etc. are shown, not raised
            st.error(f"Cannot list layers of {backbone}: {exc}")
    fps = max_duration = None
    if media == "trailers":
        t1, t2 = st.columns(2)
        fps = t1.select_slider("Frames per second", [0.5, 1.0, 2.0, 3.0], value=1.0, key="ex_fps")
        seconds = t2.number_input(
            "Only the first seconds (0 = whole trailer)", min_value=0, value=0, step=30, key="ex_max_duration"
        )
        max_duration = float(seconds) or None
    r1, r2 = st.columns(2)
    precision = r1.selectbox(
        "Precision",
        ["auto", *PRECISIONS],
        key="ex_precision",
        help="auto: amp (float16) on a CUDA GPU, fp32 elsewhere. Part of the cache key: the two are stored apart.",
    )
    engines = available_engines()
    engine = r2.selectbox("Engine", engines, key="ex_engine") if len(engines) > 1 else engines[0]
    note = catalogue.set_index("name")["note"].get(backbone, "")
    if note:
        st.caption(f"{backbone}: {note}")

available = dataset.items_with_poster() if media == "posters" else dataset.items_with_trailer()
st.caption(f"{len(available):,} of {dataset.n_items:,} items have {media[:-1]} files; device: **{ui.device_name()}**.")

st.subheader("Cached configurations")
entries = ui.cached_feature_entries(ui.dataset_token(dataset), dataset.name)
if entries.empty:
    st.caption("Nothing cached for this dataset yet.")
else:
    shown = entries.drop(columns=["path", "dataset"])
    ui.show_table(shown, "feature_cache", key="ex_cache", hide_index=True)

run = st.button("Extract", type="primary", icon=":material/play_arrow:", key="ex_run", disabled=len(available) == 0)
if run:
    progress = ui.StreamlitProgress(f"Extracting {media} with {backbone}…")
    try:
        config = make_config(
            dataset,
            media,
            backbone,
            weights=weights,
            weights_file=weights_file,
            layer=layer,
            pooling=pooling,
            fps=fps,
            max_duration=max_duration,
            precision=None if precision == "auto" else precision,
        )
        result = extract(dataset, config, RunOptions(engine=engine), progress)
    except RecsysError as exc:
        progress.empty()
        ui.show_error(exc, "Extraction stopped")
    else:
        ui.cached_feature_entries.clear()
        st.session_state["ex_last_result"] = result
        st.rerun()  # redraw the cache table above with the new entry

result = st.session_state.get("ex_last_result")
if result is not None:
    st.subheader("Last run")
    m = st.columns(4)
    m[0].metric("Items", f"{len(result.features):,}")
    m[1].metric("Dimensions", f"{result.features.dim:,}")
    m[2].metric("Device", result.device or "(cache)")
    m[3].metric(
        "Images/s" if media == "posters" else "Frames/s",
        "cache hit" if result.cache_hit else f"{result.images_per_s:.1f}",
    )
    st.caption(result.summary())
    if result.config is not None:
        spec = RepresentationSpec.from_config(result.config, precision=False)
        st.caption(
            f"Precision **{result.config.precision}**, preprocessing **{result.config.preprocessing}**. "
            f"Other pages and the CLI name these features `{spec}` "
            f"(e.g. `recsys evaluate rmse-k --dataset {dataset.name} --representations ratings,{spec}`)."
        )
    if len(result.failures):
        st.warning(f"{len(result.failures)} items failed (listed below); they are left out of the features.")
        ui.show_table(result.failures, "extraction_failures", key="ex_failures", hide_index=True)
    if result.status is not None:
        with st.expander("Per-trailer status"):
            ui.show_table(result.status, "trailer_status", key="ex_status", hide_index=True)
