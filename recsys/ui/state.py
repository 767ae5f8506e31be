"""Session-state keys and constants shared by the dashboard's modules and its tests."""

from __future__ import annotations

from recsys import config

ASSETS_DIR = config.PROJECT_ROOT / "assets"
DEMO_DATASET = "demo"

# Session-state keys written by the sidebar widgets and read by every page.
KEY_DATA_DIR = "sidebar_data_dir"
KEY_DATASET = "sidebar_dataset"
KEY_PRESENTATION = "sidebar_presentation"
KEY_ROUTED = "app_router_ran"  # set by app.py, see registry.ensure_router

# Chart tick labels and page text: 13 px on a screen, 20 px in presentation mode (the bar for a
# projector is 18 px); recsys.viz.theme uses the same numbers for its two templates.
PRESENTATION_FONT_SIZE = 20
NORMAL_FONT_SIZE = 13
FAVICON = ASSETS_DIR / "favicon.png"  # a local file: a ':material/…:' page icon is fetched from Google's CDN
