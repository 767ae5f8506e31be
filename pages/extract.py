"""Extract features: run a CNN backbone over posters or trailer frames, cached and resumable."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.errors import RecsysError
from recsys.features import backbones
from recsys.features.config import DEFAULT_BACKBONE, PRECISIONS, PREPROCESSING, SAMPLING, RunOptions, make_config
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
        "Network (backbone)",
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
        "Trained weights",
        backbones.WEIGHT_CHOICES,
        key="ex_weights",
        help="auto: what the network learned on ImageNet, from a local file, an installed package or the internet "
        "(in that order); random: an untrained network, a baseline that shows what training adds.",
    )
    weights_file = c2.text_input("Weights file (optional)", key="ex_weights_file") or None
    pooling = c3.selectbox(
        "Pooling",
        backbones.POOLINGS,
        key="ex_pooling",
        help="How the network's grid of features becomes one vector per image: avg = average over the image "
        "(the usual choice), max = strongest response, flatten = keep every position (long vectors).",
    )
    custom_layer = c3.checkbox(
        "Use an earlier layer",
        key="ex_custom_layer",
        help="Default: the last layer before the classifier (the most abstract features). Earlier layers see "
        "colours and textures more than objects.",
    )
    layer = None
    if custom_layer:
        try:
            layer = st.selectbox("Layer", layers_of(backbone), key="ex_layer")
        except Exception as exc:  # noqa: BLE001 - unknown model names etc. are shown, not raised
            st.error(f"Cannot list layers of {backbone}: {exc}")
    fps = max_duration = max_frames = None
    sampling = "exact"
    if media == "trailers":
        t1, t2, t3, t4 = st.columns(4)
        fps = t1.select_slider(
            "Frames per second of trailer",
            [0.5, 1.0, 2.0, 3.0],
            value=1.0,
            key="ex_fps",
            help="How many frames per second of video go through the network (Ben Hassen et al.: 1, 2, 3).",
        )
        seconds = t2.number_input(
            "Only the first seconds (0 = whole trailer)", min_value=0, value=0, step=30, key="ex_max_duration"
        )
        max_duration = float(seconds) or None
        frames_cap = t3.number_input(
            "At most frames per trailer (0 = no cap)", min_value=0, value=0, step=50, key="ex_max_frames"
        )
        max_frames = int(frames_cap) or None
        sampling = t4.selectbox(
            "Sampling",
            SAMPLING,
            key="ex_sampling",
            help="exact: the frame nearest each target time. keyframes: the nearest keyframe where keyframes "
            "are dense enough (less decoding); each trailer's status says how far timestamps moved.",
        )
    r1, r2, r3 = st.columns(3)
    precision = r1.selectbox(
        "Precision",
        ["auto", *PRECISIONS],
        key="ex_precision",
        help="Number precision: auto = half precision (amp, faster) on an NVIDIA GPU, full precision (fp32) "
        "elsewhere. The two give slightly different numbers, so they are cached apart.",
    )
    preprocessing = r2.selectbox(
        "Preprocessing",
        ["auto", *PREPROCESSING] if media == "posters" else ["cpu-pil"],
        key=f"ex_preprocessing_{media}",
        help="auto: posters decoded by nvJPEG and resized on a CUDA GPU (gpu-nvjpeg), PIL on the CPU elsewhere "
        "(cpu-pil). Part of the cache key: the two are stored apart.",
    )
    engines = available_engines()
    engine = (
        r3.selectbox(
            "Engine",
            engines,
            key="ex_engine",
            help="local: this process. ray: Ray Data (pip install -r requirements-ray.txt; $RAY_ADDRESS for a cluster).",
        )
        if len(engines) > 1
        else engines[0]
    )
    note = catalogue.set_index("name")["note"].get(backbone, "")
    if note:
        st.caption(f"{backbone}: {note}")

available = dataset.items_with_poster() if media == "posters" else dataset.items_with_trailer()
st.caption(
    f"Coverage: {len(available):,} of {dataset.n_items:,} items have a {media[:-1]} file (the others simply have "
    f"none: not a failure); runs on **{ui.device_name()}**."
)

st.subheader("Cached configurations")
entries = ui.cached_feature_entries(ui.dataset_token(dataset), dataset.name)
if entries.empty:
    st.caption("Nothing cached for this dataset yet.")
else:
    # What a person recognises first (network, media, fps, size), the store key last.
    lead = ["backbone", "media", "fps", "weights", "layer", "pooling", "precision", "items", "dim", "failures"]
    lead = [c for c in lead if c in entries.columns]
    rest = [c for c in entries.columns if c not in lead and c not in ("path", "dataset", "key")]
    shown = entries[lead + rest + (["key"] if "key" in entries.columns else [])]
    ui.show_table(
        shown,
        "feature_cache",
        key="ex_cache",
        hide_index=True,
        column_config={
            "backbone": st.column_config.TextColumn("network", width="medium"),
            "weights": st.column_config.TextColumn("weights", width="small"),
            "key": st.column_config.TextColumn("store key", width="small"),
        },
    )

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
            max_frames=max_frames,
            precision=None if precision == "auto" else precision,
            preprocessing=None if preprocessing == "auto" else preprocessing,
            sampling=sampling,
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
    failures = result.failures
    no_media = failures["reason"].astype(str).str.startswith("no poster") if len(failures) else []
    without = failures[no_media] if len(failures) else failures
    broken = failures[~no_media] if len(failures) else failures
    missing = list(getattr(result, "missing", None) or [])
    if len(without) or missing:
        ids = list(without["item_id"]) + missing
        with st.expander(f"Coverage: {len(ids):,} items have no {media[:-1]} file (not failures)"):
            listing = pd.DataFrame({"item_id": ids, "title": dataset.items["title"].reindex(ids).to_numpy()})
            ui.show_table(listing, "items_without_media", key="ex_without", hide_index=True)
    if len(broken):
        st.warning(f"{len(broken)} items failed (listed below); they are left out of the features.")
        listing = broken.assign(title=dataset.items["title"].reindex(broken["item_id"]).to_numpy())
        ui.show_table(listing, "extraction_failures", key="ex_failures", hide_index=True)
    if result.status is not None:
        with st.expander("Per-trailer status"):
            ui.show_table(result.status, "trailer_status", key="ex_status", hide_index=True)
