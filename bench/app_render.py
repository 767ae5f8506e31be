"""How fast does each dashboard page draw? AppTest timings on ML-100K with cached lite0 poster features.

For every page:
- cold_s:   the page's very first run in this process with empty Streamlit caches and, for the
            experiments, possibly empty disk caches (what a first visitor ever waits, once);
- first_s:  a fresh session (new AppTest, Streamlit caches cleared) with the disk caches warm:
            what opening the page costs after a server restart;
- redraw_s: the same session re-run after changing a widget that needs no recomputation
            (colour, N, K range, metric ...), the slowest of a plain rerun and that change;
- naive_redraw_s: the same redraw with the Streamlit caches cleared first, i.e. what every
            redraw would cost without st.cache_data/st.cache_resource (the peer to compare with).
Targets: first render < 5 s, redraw < 1 s on this CPU.

Usage: python bench/app_render.py [--data-dir ../shared/data] [--dataset ml-100k]
Needs lite0 poster features cached (extracted here first if missing; minutes on a CPU).
Last line: max_first_render_s=... max_redraw_s=...
"""

from __future__ import annotations

import argparse
import os
import time

import streamlit as st
from _data import SHARED_DATA_DIR
from streamlit.testing.v1 import AppTest

from recsys import config, ui

APP = str(config.PROJECT_ROOT / "app.py")

# page file -> (widget kind, key, new value) changed for the redraw; None = plain rerun only
REDRAWS = {
    "home": None,
    "data": ("toggle", "data_log_x", False),
    "extract": ("radio", "ex_media", "trailers"),
    "neighbours": ("number_input", "nb_n", 3),
    "embedding": ("selectbox", "emb_colour", "year"),
    "rating": ("radio", "rp_metric", "mae"),
    "fusion": ("radio", "fu_metric", "mae"),
    "recommend": ("number_input", "rec_n", 3),
    "ranking": None,
    "audience": ("radio", "audience_facet", "gender"),
}


def clear_streamlit_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def open_session(data_dir: str, dataset: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=1200)
    app.session_state[ui.KEY_DATA_DIR] = data_dir
    app.session_state[ui.KEY_DATASET] = dataset
    app.run()
    if app.exception:
        raise RuntimeError(f"app.py failed: {app.exception}")
    return app


def timed_run(app: AppTest) -> float:
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    if app.exception:
        raise RuntimeError(str(app.exception[0].value if hasattr(app.exception[0], "value") else app.exception))
    return elapsed


def change_widget(app: AppTest, spec) -> None:
    kind, key, value = spec
    getattr(app, kind)(key=key).set_value(value)


def open_page(path: str, data_dir: str, dataset: str) -> tuple[AppTest, float]:
    """A fresh session showing `path`; the time includes app.py's run (sidebar, dataset load).

    AppTest runs app.py (navigation + sidebar) on a session's first run only and the page
    script itself afterwards, so a first render is timed as both runs together.
    """
    start = time.perf_counter()
    app = open_session(data_dir, dataset)
    app.switch_page(path)
    timed_run(app)
    return app, time.perf_counter() - start


def measure(page: str, data_dir: str, dataset: str) -> dict:
    path = f"pages/{page}.py"
    clear_streamlit_caches()
    _, cold = open_page(path, data_dir, dataset)

    clear_streamlit_caches()
    app, first = open_page(path, data_dir, dataset)
    rerun = timed_run(app)
    changed = 0.0
    spec = REDRAWS.get(page)
    if spec is not None:
        change_widget(app, spec)
        changed = timed_run(app)
    redraw = max(rerun, changed)

    clear_streamlit_caches()
    naive = timed_run(app)
    return {
        "page": page,
        "cold_s": cold,
        "first_s": first,
        "redraw_s": redraw,
        "rerun_s": rerun,
        "widget_change_s": changed,
        "naive_redraw_s": naive,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--pages", nargs="*", default=None)
    args = parser.parse_args()
    os.environ[config.DATA_DIR_ENV] = args.data_dir

    from recsys.data import load_dataset
    from recsys.features.config import make_config
    from recsys.features.extract import load_cached
    from recsys.ui.standin import extract_quick_posters

    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    if load_cached(dataset, make_config(dataset, "posters", "tf_efficientnet_lite0")) is None:
        print("extracting lite0 poster features once (cached afterwards)…", flush=True)
        extract_quick_posters(dataset)  # what the pages' one-click button runs
    pages = args.pages or [p for p in REDRAWS if (config.PROJECT_ROOT / "pages" / f"{p}.py").exists()]
    rows = []
    print(f"{'page':<12}{'cold_s':>9}{'first_s':>9}{'redraw_s':>10}{'naive_redraw_s':>16}", flush=True)
    for page in pages:
        try:
            row = measure(page, args.data_dir, args.dataset)
        except Exception as exc:  # noqa: BLE001 - one broken page must not hide the others' numbers
            print(f"{page:<12} failed: {exc}", flush=True)
            continue
        rows.append(row)
        print(
            f"{page:<12}{row['cold_s']:>9.2f}{row['first_s']:>9.2f}{row['redraw_s']:>10.2f}{row['naive_redraw_s']:>16.2f}",
            flush=True,
        )
    if not rows:
        print("max_first_render_s=nan max_redraw_s=nan")
        return 1
    worst_first = max(rows, key=lambda r: r["first_s"])
    worst_redraw = max(rows, key=lambda r: r["redraw_s"])
    print(
        f"pages={len(rows)} dataset={args.dataset} device={ui.device_name()} "
        f"slowest_first={worst_first['page']} slowest_redraw={worst_redraw['page']} "
        f"max_naive_redraw_s={max(r['naive_redraw_s'] for r in rows):.2f}"
    )
    print(f"max_first_render_s={worst_first['first_s']:.2f} max_redraw_s={worst_redraw['redraw_s']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
