"""Streamlit glue shared by every page: sidebar, cached dataset, presentation mode, exports, progress.

Pages stay thin: they call `page_header`, read `current_dataset()`, put their widgets in
`controls()`, compute through cached wrappers around `recsys` functions and draw with
`show_figure` / `show_table`, which add the export buttons. Nothing here computes results.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from recsys import config

ASSETS_DIR = config.PROJECT_ROOT / "assets"
DEMO_DATASET = "demo"

# Session-state keys written by the sidebar widgets and read by every page.
KEY_DATA_DIR = "sidebar_data_dir"
KEY_DATASET = "sidebar_dataset"
KEY_PRESENTATION = "sidebar_presentation"
KEY_ROUTED = "app_router_ran"  # set by app.py, see ensure_router

PRESENTATION_FONT_SIZE = 20
NORMAL_FONT_SIZE = 13


# ---- data ----------------------------------------------------------------------------------
def data_dir_setting() -> str:
    """The data directory the sidebar shows (session value, else $RECSYS_DATA_DIR / default)."""
    value = st.session_state.get(KEY_DATA_DIR)
    return str(value) if value else str(config.data_dir())


@st.cache_data(ttl=30, show_spinner=False)
def cached_available_datasets(data_dir: str) -> list[str]:
    """Dataset names found in `data_dir` (demo first when nothing else is there)."""
    try:
        from recsys.data import available_datasets
    except ImportError:  # data layer not built yet: the demo is always possible
        return [DEMO_DATASET]
    try:
        listing = available_datasets(data_dir)
        names = listing.loc[listing["present"], "name"].tolist()
    except (OSError, ValueError):
        names = []
    if DEMO_DATASET not in names:
        names.append(DEMO_DATASET)
    return names


@st.cache_data(ttl=30, show_spinner=False)
def dataset_listing(data_dir: str) -> pd.DataFrame:
    """The registry's table of known datasets with whether each is present in `data_dir`."""
    try:
        from recsys.data import available_datasets

        return available_datasets(data_dir)
    except (ImportError, OSError, ValueError):
        return pd.DataFrame(columns=["name", "present", "synthetic", "description", "size", "url", "folder"])


def default_dataset(data_dir: str, names: list[str]) -> str:
    try:
        from recsys.data import default_dataset_name

        name = default_dataset_name(data_dir)
        if name in names:
            return name
    except (ImportError, OSError, ValueError):
        pass
    return names[0] if names else DEMO_DATASET


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def load_dataset_cached(name: str, data_dir: str):
    """One Dataset object per (name, data dir) for the whole server: pages share it read-only."""
    from recsys.data import load_dataset

    return load_dataset(name, data_dir=data_dir)


def current_dataset_name() -> str:
    data_dir = data_dir_setting()
    name = st.session_state.get(KEY_DATASET)
    names = cached_available_datasets(data_dir)
    if name not in names:
        name = default_dataset(data_dir, names)
    return name


def ensure_router() -> None:
    """Route a deep link on a freshly started server through app.py.

    Streamlit treats a `pages/` folder beside the entry point as a legacy (v1) multipage app until
    app.py has called st.navigation once; a first request for `/neighbours` would run that page alone,
    with Streamlit's file list instead of our sidebar. Switching the server to st.navigation mode and
    rerunning lets app.py route the same URL. (Renaming pages/ would avoid this, but the folder name
    is the project's convention.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Only before app.py has run in this session: AppTest reruns pages in the legacy mode on purpose,
    # and a rerun there would swallow the click that triggered it.
    if PagesManager.uses_pages_directory and not st.session_state.get(KEY_ROUTED):
        PagesManager.uses_pages_directory = False
        st.rerun()


def run_page(page) -> None:
    """Run the navigation's page; an expected failure (a dataset too large for a model, missing
    media, no weights) ends the page with its own message instead of a traceback in front of an
    audience. Streamlit's own control flow (st.stop, st.rerun) is not an Exception and passes."""
    try:
        page.run()
    except (ValueError, FileNotFoundError, RuntimeError, MemoryError) as exc:
        st.error(f"**This page could not finish:** {exc}", icon=":material/error:")
        st.caption("Try another dataset, representation or setting; the synthetic demo dataset always works.")


def current_dataset():
    """The dataset chosen in the sidebar; stops the page with a clear message if it cannot load."""
    ensure_router()
    name, data_dir = current_dataset_name(), data_dir_setting()
    try:
        return load_dataset_cached(name, data_dir)
    except (FileNotFoundError, ValueError, OSError, ImportError) as exc:
        st.error(f"Dataset **{name}** could not be loaded from `{data_dir}`:\n\n{exc}")
        st.info("Pick the synthetic **demo** dataset in the sidebar, or see the Home page for how to get data.")
        st.stop()


def dataset_token(dataset) -> str:
    """A short string that identifies a dataset in cache keys (name + size + source)."""
    return f"{dataset.name}|{dataset.n_ratings}|{dataset.n_items}|{dataset.source_dir}"


# ---- sidebar -------------------------------------------------------------------------------
def device_name() -> str:
    """cuda / mps / cpu for the status line, without importing torch just for that.

    Importing torch costs 3-9 s on a small CPU and the sidebar renders on every page, so until
    something has imported torch (an extraction, a model) the device is inferred from the driver
    files torch itself would use; once torch is loaded, `config.torch_device_name()` answers.
    """
    if os.environ.get(config.DEVICE_ENV) or "torch" in sys.modules:
        return config.torch_device_name()
    if os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0"):
        return "cuda"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def render_sidebar() -> None:
    """Data directory, dataset selector, status line and presentation toggle (called by app.py)."""
    st.session_state[KEY_ROUTED] = True
    with st.sidebar:
        logo = ASSETS_DIR / "logo.svg"
        if logo.exists():
            st.logo(str(logo))
        if KEY_DATA_DIR not in st.session_state:
            st.session_state[KEY_DATA_DIR] = str(config.data_dir())
        with st.expander("Data directory", expanded=False):
            st.text_input(
                "Folder with MovieLens data",
                key=KEY_DATA_DIR,
                help="Defaults to $RECSYS_DATA_DIR. Datasets found here appear in the selector below.",
            )
        data_dir = data_dir_setting()
        names = cached_available_datasets(data_dir)
        if st.session_state.get(KEY_DATASET) not in names:
            st.session_state[KEY_DATASET] = default_dataset(data_dir, names)
        st.selectbox(
            "Dataset",
            names,
            key=KEY_DATASET,
            format_func=lambda n: f"{n} (synthetic)" if n == DEMO_DATASET else n,
        )
        try:
            dataset = load_dataset_cached(st.session_state[KEY_DATASET], data_dir)
        except (FileNotFoundError, ValueError, OSError, ImportError) as exc:
            st.error(f"Cannot load: {exc}")
            dataset = None
        if dataset is not None:
            st.caption(status_line(dataset))
            if dataset.synthetic:
                synthetic_badge()
        st.toggle("Presentation mode", key=KEY_PRESENTATION, help="Larger fonts, controls folded away.")
    apply_presentation_style()


def status_line(dataset) -> str:
    return (
        f"{dataset.n_ratings:,} ratings · {dataset.n_users:,} users · {dataset.n_items:,} items · "
        f"device: **{device_name()}**"
    )


def synthetic_badge() -> None:
    st.badge("synthetic data", icon=":material/science:", color="orange")


# ---- layout --------------------------------------------------------------------------------
def presentation() -> bool:
    return bool(st.session_state.get(KEY_PRESENTATION, False))


def apply_presentation_style() -> None:
    css = ""
    style = ASSETS_DIR / "style.css"
    if style.exists():
        css += style.read_text()
    if presentation():
        css += (
            f"html, body, .stMarkdown, .stCaption, p, li, label {{ font-size: {PRESENTATION_FONT_SIZE}px !important; }}"
            "h1 { font-size: 2.8rem !important; } "
            "[data-testid='stToolbar'], [data-testid='stDecoration'] { display: none; }"
        )
    if css:
        st.html(f"<style>{css}</style>")


def page_header(title: str, explanation: str, paper: str | None = None, dataset=None) -> None:
    """Title, one line on what the page shows and which paper it reproduces, synthetic label."""
    ensure_router()
    st.title(title)
    line = explanation + (f" *Reproduces: {paper}.*" if paper else "")
    st.caption(line)
    if dataset is not None and dataset.synthetic:
        st.warning(
            "Showing the **synthetic demo dataset** (generated offline): numbers illustrate the method, "
            "they are not research results.",
            icon=":material/science:",
        )


def controls(label: str = "Controls"):
    """Container for a page's widgets; folded away in presentation mode (values are kept)."""
    return st.expander(label, expanded=not presentation())


# ---- exports -------------------------------------------------------------------------------
def _figure_config(name: str) -> dict:
    # PNG export is plotly's own modebar button (camera icon): kaleido would need a Chrome
    # download at runtime, which an offline research machine does not have.
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2},
    }


SYNTHETIC_MARK = "synthetic demo data"


def styled(fig):
    """Font size for the current mode; figures of the demo carry a "synthetic" mark into every export."""
    size = PRESENTATION_FONT_SIZE if presentation() else NORMAL_FONT_SIZE
    fig.update_layout(font=dict(size=size))
    if current_dataset_name() == DEMO_DATASET and not any(a.text == SYNTHETIC_MARK for a in fig.layout.annotations):
        fig.add_annotation(
            text=SYNTHETIC_MARK,
            xref="paper",
            yref="paper",
            x=1,
            y=1.06,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font=dict(color="#c0641a", size=size - 2),
        )
    return fig


def export_name(name: str) -> str:
    """File name stem for downloads: the dataset goes first so exports say where they came from."""
    return f"{current_dataset_name()}-{name}"


def figure_html(fig) -> str:
    # Self-contained (plotly.js inlined) so the export opens offline.
    return fig.to_html(include_plotlyjs=True, full_html=True)


def show_figure(fig, name: str, key: str | None = None, on_select=None, selection_mode=None, export=True):
    """Draw a plotly figure with PNG (modebar) and HTML (button) export; returns the selection event."""
    kwargs = {}
    if on_select is not None:
        kwargs["on_select"] = on_select
        if selection_mode is not None:
            kwargs["selection_mode"] = selection_mode
    event = st.plotly_chart(styled(fig), config=_figure_config(export_name(name)), key=key, width="stretch", **kwargs)
    if export and not presentation():
        st.download_button(
            "Download figure (HTML)",
            data=lambda: figure_html(fig),
            file_name=f"{export_name(name)}.html",
            mime="text/html",
            key=f"html_{key or name}",
            on_click="ignore",
            icon=":material/download:",
            help="Interactive, self-contained HTML. For PNG use the camera icon in the chart's toolbar.",
        )
    return event


def show_table(frame: pd.DataFrame, name: str, key: str | None = None, **kwargs) -> None:
    """A dataframe with a CSV download button."""
    st.dataframe(frame, **kwargs)
    csv_download(frame, name, key=key)


def csv_download(frame: pd.DataFrame, name: str, key: str | None = None, label: str = "Download table (CSV)") -> None:
    if presentation():
        return
    st.download_button(
        label,
        data=lambda: frame.to_csv(index=not isinstance(frame.index, pd.RangeIndex)).encode(),
        file_name=f"{export_name(name)}.csv",
        mime="text/csv",
        key=f"csv_{key or name}",
        on_click="ignore",
        icon=":material/table:",
    )


# ---- progress ------------------------------------------------------------------------------
class StreamlitProgress:
    """Adapter from recsys's `progress(done, total, message)` callback to an st.progress bar.

    Redraws at most every `min_interval` seconds (and always at the end) so that a callback fired
    per image does not flood the browser with messages.
    """

    def __init__(self, label: str = "Working…", min_interval: float = 0.2):
        self.label = label
        self.bar = st.progress(0.0, text=label)
        self.min_interval = min_interval
        self._last = 0.0
        self.calls = 0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.calls += 1
        now = time.monotonic()
        finished = total and done >= total
        if not finished and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = min(max(done / total, 0.0), 1.0) if total else 0.0
        text = f"{self.label} {done:,}/{total:,}" + (f" — {message}" if message else "")
        self.bar.progress(fraction, text=text)

    def empty(self) -> None:
        self.bar.empty()


# ---- images --------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=20000)
def thumbnail_data_uri(path: str, height: int = 96) -> str | None:
    from recsys.viz.gallery import thumbnail_data_uri as make

    return make(path, height=height)


def poster_cards(dataset, item_ids, captions=None, columns: int = 5, width: int | str = "stretch") -> None:
    """A row (or rows) of posters with captions; a grey placeholder where a poster is missing.

    width: pixels, or "stretch" to fill the column (galleries in narrow columns must not overlap).
    """
    item_ids = list(item_ids)
    if not item_ids:
        st.caption("(nothing to show)")
        return
    cols = st.columns(columns)
    for position, item_id in enumerate(item_ids):
        caption = captions[position] if captions is not None else dataset.items.loc[item_id, "title"]
        path = dataset.posters.get(item_id)
        with cols[position % columns]:
            if path and os.path.exists(path):
                try:
                    st.image(_poster_bytes(path), caption=caption, width=width)
                    continue
                except Exception:  # noqa: BLE001 - a corrupt file must not take the page down
                    pass
            st.markdown("<div class='poster-missing'>no poster</div>", unsafe_allow_html=True)
            st.caption(caption)


@st.cache_data(show_spinner=False, max_entries=5000)
def _poster_bytes(path: str) -> bytes:
    from recsys.viz.gallery import thumbnail_png

    return thumbnail_png(path, height=240)


def register_pages(pages_dir: Path | None = None) -> list:
    """st.Page objects in the dashboard's order; the Audience page joins when its file exists."""
    pages_dir = pages_dir or config.PROJECT_ROOT / "pages"
    spec = [
        ("home.py", "Home", ":material/home:"),
        ("data.py", "Data", ":material/database:"),
        ("extract.py", "Extract features", ":material/memory:"),
        ("neighbours.py", "Poster neighbours", ":material/image_search:"),
        ("embedding.py", "Embedding map", ":material/scatter_plot:"),
        ("rating.py", "Rating prediction", ":material/show_chart:"),
        ("fusion.py", "Fusion", ":material/merge:"),
        ("recommend.py", "Recommend", ":material/recommend:"),
    ]
    pages = []
    for filename, title, icon in spec:
        path = pages_dir / filename
        if path.exists():
            pages.append(st.Page(str(path), title=title, icon=icon, default=filename == "home.py"))
    for path in sorted(pages_dir.glob("*[Aa]udience*.py")):
        pages.append(st.Page(str(path), title="Audience", icon=":material/groups:"))
    return pages


# ---- item representations (feature sets a page can choose from) ------------------------------
GENRE_REPRESENTATION = "genre one-hot"
BASELINE_REPRESENTATIONS = {
    "poster · raw pixels": "raw_pixels",
    "poster · colour histogram": "colour_histogram",
}


@st.cache_data(show_spinner=False, ttl=10)
def cached_feature_entries(token: str, dataset_name: str) -> pd.DataFrame:
    """Complete FeatureStore entries extracted for this dataset (re-listed at most every 10 s)."""
    from recsys.features.store import FeatureStore

    entries = FeatureStore().list_entries()
    if entries.empty:
        return entries
    return entries[(entries["dataset"] == dataset_name) & entries["complete"]].reset_index(drop=True)


def entry_label(row, n_items: int | None = None) -> str:
    medium = "poster" if row["media"] == "posters" else "trailer"
    label = f"{medium} · {row['backbone']}"
    if row.get("layer") and row["layer"] != "pre-logits":
        label += f" · {row['layer']}"
    if row.get("pooling") and row["pooling"] != "avg":
        label += f" · {row['pooling']}"
    if medium == "trailer" and row.get("fps") == row.get("fps"):  # NaN-safe
        label += f" · {row['fps']:g} fps"
    if str(row.get("weights", "")).startswith("random"):
        label += " · untrained"
    if n_items is not None and row.get("items") is not None and int(row["items"]) < n_items:
        label += f" ({int(row['items'])} items)"  # extracted for part of the catalogue only
    return label


def representation_options(
    dataset, media: tuple[str, ...] = ("posters", "trailers"), baselines: bool = True, genres: bool = True
) -> dict[str, str]:
    """label -> source ("entry:<key>", "baseline:<name>", "genres"), CNN entries first."""
    options: dict[str, str] = {}
    entries = cached_feature_entries(dataset_token(dataset), dataset.name)
    if not entries.empty:
        # Defaults take the first entry: trained weights before untrained, posters before trailers
        # (every movie has a poster, few have a trailer), then the entry covering the most items.
        entries = entries.assign(
            _untrained=entries["weights"].astype(str).str.startswith("random"),
            _trailers=entries["media"] != "posters",
            _items=-entries["items"].fillna(0).astype(int),
        ).sort_values(["_untrained", "_trailers", "_items", "backbone", "key"])
    for _, row in entries.iterrows():
        if row["media"] in media:
            options.setdefault(entry_label(row, dataset.n_items), f"entry:{row['key']}")
    if baselines and "posters" in media and len(dataset.items_with_poster()):
        for label, name in BASELINE_REPRESENTATIONS.items():
            options[label] = f"baseline:{name}"
    if genres:
        options[GENRE_REPRESENTATION] = "genres"
    return options


@st.cache_resource(show_spinner="Loading item features…", max_entries=16)
def load_representation(token: str, source: str, _dataset):
    """ItemFeatures for a source from `representation_options` (read once per server)."""
    dataset = _dataset
    from recsys.features import baselines

    if source == "genres":
        features = baselines.genre_features(dataset)
        features.name = GENRE_REPRESENTATION
        return features
    if source == "baseline:raw_pixels":
        return _disk_cached(dataset, "raw_pixels", baselines.raw_pixel_features)
    if source == "baseline:colour_histogram":
        return _disk_cached(dataset, "colour_histogram", baselines.color_histogram_features)
    if source.startswith("entry:"):
        return load_entry(source.split(":", 1)[1]).features
    raise ValueError(f"unknown representation source {source!r}")


def load_entry(key: str):
    """ExtractionResult of a complete FeatureStore entry, by key (posters or trailers)."""
    from recsys.features.extract import load_entry as load_stored_entry

    return load_stored_entry(key)


def _disk_cached(dataset, name: str, compute):
    """A poster baseline computed once per poster set and kept on disk (reading 1,700 posters takes seconds)."""
    import json

    import numpy as np

    from recsys.features.item_features import ItemFeatures
    from recsys.features.store import media_fingerprint

    fingerprint = media_fingerprint(zip(dataset.posters.index, dataset.posters.tolist()))
    path = config.cache_dir() / "baselines" / f"{dataset.name}-{name}-{fingerprint[:20]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                return ItemFeatures(data["item_ids"], data["matrix"], str(data["name"]), json.loads(str(data["meta"])))
        except (OSError, ValueError, KeyError):
            pass  # damaged cache: recompute
    progress = StreamlitProgress(f"Computing {name.replace('_', ' ')} of every poster (once)…")
    features = compute(dataset, progress=progress)
    progress.empty()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(
            handle,
            item_ids=features.item_ids,
            matrix=features.matrix,
            name=features.name,
            meta=json.dumps(features.meta, default=str),
        )
    os.replace(tmp, path)
    return features


def disk_cache_path(kind: str, key: str) -> Path:
    """Where `disk_cached(kind, key, ...)` keeps its result (exists once it has been computed)."""
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return config.cache_dir() / "results" / f"{kind}-{digest}.pkl"


def disk_cached(kind: str, key: str, compute):
    """Result of `compute()` pickled under cache_dir()/results, keyed by `kind` + a hash of `key`.

    Experiments on real data take seconds to minutes; keeping their tidy frames on disk means a
    restarted server (or a second visitor) redraws them without recomputing.
    """
    import pickle

    path = disk_cache_path(kind, key)
    if path.exists():
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            pass  # unreadable or stale: recompute
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(value, handle)
    os.replace(tmp, path)
    return value
