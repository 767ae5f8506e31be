"""Streamlit glue shared by every page: sidebar, cached dataset, presentation mode, exports, progress.

Pages stay thin: they call `page_header`, read `current_dataset()`, put their widgets in
`controls()`, compute through cached wrappers around `recsys` functions and draw with
`show_figure` / `show_table`, which add the export buttons. Nothing here computes results.

Pages use ``from recsys import ui`` and the names re-exported here; the modules are:

- ``state``: session-state keys and constants;
- ``data``: data directory, dataset selection, the cached Dataset, ``dataset_token``;
- ``sidebar``: the shared sidebar (status line, presentation toggle);
- ``layout``: presentation mode, page header, controls, ``run_page`` and ``show_error`` (expected
  failures, i.e. :class:`recsys.errors.RecsysError`, shown as one message without a traceback);
- ``exports``: ``show_figure`` / ``show_table`` / ``csv_download`` with their export buttons;
- ``progress``: ``StreamlitProgress``;
- ``images``: thumbnails and poster cards;
- ``registry``: the pages and the deep-link router;
- ``representations``: item representations a page can choose from;
- ``cache``: experiment results kept on disk;
- ``url_state``: ``bind`` a widget key to a URL parameter (settings survive page changes and
  travel in links);
- ``standin``: the banner (and one-click lite0 extraction) of a page that uses a pixel baseline in
  place of CNN features;
- ``hover``: the poster panel that follows the mouse over a plotly map (a components-v2 element).
"""

from recsys.ui.cache import disk_cache_path, disk_cached
from recsys.ui.data import (
    cached_available_datasets,
    current_dataset,
    current_dataset_name,
    data_dir_setting,
    dataset_listing,
    dataset_token,
    default_dataset,
    load_dataset_cached,
)
from recsys.ui.exports import SYNTHETIC_MARK, csv_download, export_name, figure_html, show_figure, show_table, styled
from recsys.ui.images import poster_cards, thumbnail_data_uri
from recsys.ui.layout import (
    apply_presentation_style,
    controls,
    error_message,
    page_header,
    presentation,
    run_page,
    show_error,
    takeaway,
)
from recsys.ui.progress import StreamlitProgress, format_seconds
from recsys.ui.registry import PAGES, PageSpec, ensure_router, page_specs, pages_table, register_pages
from recsys.ui.representations import (
    BASELINE_REPRESENTATIONS,
    GENRE_REPRESENTATION,
    cached_feature_entries,
    is_cnn,
    load_entry,
    load_extraction,
    load_representation,
    representation_options,
)
from recsys.ui.sidebar import device_name, render_sidebar, status_line, synthetic_badge
from recsys.ui.standin import extract_quick_posters, quick_extraction_estimate, standin_banner
from recsys.ui.state import (
    ASSETS_DIR,
    DEMO_DATASET,
    FAVICON,
    KEY_DATA_DIR,
    KEY_DATASET,
    KEY_PRESENTATION,
    KEY_ROUTED,
    NORMAL_FONT_SIZE,
    PRESENTATION_FONT_SIZE,
)
from recsys.ui.url_state import bind, forget, kept

__all__ = [
    "ASSETS_DIR",
    "FAVICON",
    "bind",
    "extract_quick_posters",
    "forget",
    "format_seconds",
    "kept",
    "quick_extraction_estimate",
    "standin_banner",
    "takeaway",
    "BASELINE_REPRESENTATIONS",
    "DEMO_DATASET",
    "GENRE_REPRESENTATION",
    "KEY_DATASET",
    "KEY_DATA_DIR",
    "KEY_PRESENTATION",
    "KEY_ROUTED",
    "NORMAL_FONT_SIZE",
    "PAGES",
    "PageSpec",
    "PRESENTATION_FONT_SIZE",
    "SYNTHETIC_MARK",
    "StreamlitProgress",
    "apply_presentation_style",
    "cached_available_datasets",
    "cached_feature_entries",
    "controls",
    "csv_download",
    "current_dataset",
    "current_dataset_name",
    "data_dir_setting",
    "dataset_listing",
    "dataset_token",
    "default_dataset",
    "device_name",
    "disk_cache_path",
    "disk_cached",
    "ensure_router",
    "error_message",
    "export_name",
    "figure_html",
    "load_dataset_cached",
    "is_cnn",
    "load_entry",
    "load_extraction",
    "load_representation",
    "page_header",
    "page_specs",
    "pages_table",
    "poster_cards",
    "presentation",
    "register_pages",
    "render_sidebar",
    "representation_options",
    "run_page",
    "show_error",
    "show_figure",
    "show_table",
    "status_line",
    "styled",
    "synthetic_badge",
    "thumbnail_data_uri",
]
