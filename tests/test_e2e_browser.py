"""End to end: `streamlit run app.py` on a free localhost port, driven by headless Chromium.

What only a real browser can show: a deep link as a fresh server's first request goes through the
router; the URL contract (`/neighbours?dataset=ml-100k&item=50` shows Star Wars and a new movie
rewrites `item`); presentation mode's computed chart font sizes and the folded sidebar; hovering a
map point shows its poster and clicking it opens its neighbours; a stand-in banner; no request
leaves the machine; and a screenshot of every page (small PNGs, test-output/screens/; with
RECSYS_UPDATE_SCREENSHOTS=1 also assets/screen-<page>.png for the README).

The server gets a fresh cache folder (no CNN features: the stand-in paths are what a first visitor
sees) unless RECSYS_E2E_CACHE_DIR names one, and the workplace's MovieLens data when it is there.
Skipped (with the reason) where Chromium or Playwright is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from recsys.config import PROJECT_ROOT

CHROMIUM = os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = PROJECT_ROOT / "test-output"
SHARED_DATA = Path(os.environ.get("RECSYS_TEST_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
HAS_ML100K = (SHARED_DATA / "ml-100k" / "u.data").exists()
SCREENSHOT_LIMIT = 300_000  # bytes per README screenshot: the repository stays light
# what each page's screenshot shows first (None: the top of the page)
SHOT_ANCHORS = {
    "data": ".js-plotly-plot",
    "neighbours": "h3:has-text('Query:')",
    "embedding": ".st-key-emb_map_box",
    "rating": "[data-testid='stMetric']",
    "fusion": "[data-testid='stMetric']",
    "recommend": "h4",
    "audience": ".js-plotly-plot",
}

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s ({last})")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (install Debian's 'chromium' package or set RECSYS_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    port = free_port()
    data_dir = SHARED_DATA if HAS_ML100K else tmp_path_factory.mktemp("no-movielens")
    cache = os.environ.get("RECSYS_E2E_CACHE_DIR") or str(tmp_path_factory.mktemp("fresh-cache"))
    env = dict(
        os.environ,
        RECSYS_DATA_DIR=str(data_dir),
        RECSYS_DATA_ROOTS=os.pathsep.join([str(data_dir), cache]),
        RECSYS_CACHE_DIR=cache,
    )
    log = open(tmp_path_factory.mktemp("streamlit") / "server.log", "w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(PROJECT_ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", 90)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.seek(0)
        print(log.read()[-3000:])
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def outside_requests():
    return []


def new_page(browser, server, outside_requests, width: int, height: int, timeout_ms: int):
    """A browser page that records every request leaving the local server in `outside_requests`."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(timeout_ms)
    page.on(
        "request",
        lambda request: (
            outside_requests.append(request.url)
            if not request.url.startswith((server, "data:", "blob:", "about:"))
            else None
        ),
    )
    return page


@pytest.fixture
def browser_page(browser, server, outside_requests):
    # first renders build the demo dataset and baselines on a slow CPU
    page = new_page(browser, server, outside_requests, 1400, 1000, 240_000)
    yield page
    page.close()


def heading(page, text: str):
    page.get_by_role("heading", name=text).first.wait_for(state="visible")


def wait_idle(page) -> None:
    """Streamlit shows a 'Running…' status widget while the script runs; wait until it is gone."""
    page.wait_for_timeout(500)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def query(page) -> dict:
    from urllib.parse import parse_qs, urlparse

    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def tick_font_sizes(page) -> set[float]:
    return set(
        page.evaluate(
            "() => [...document.querySelectorAll('.js-plotly-plot .xtick text, .js-plotly-plot .ytick text')]"
            ".map(e => parseFloat(getComputedStyle(e).fontSize))"
        )
    )


def test_deep_link_as_first_request_gets_the_dashboard_sidebar(server, browser_page):
    """A bookmarked page URL on a freshly started server must still go through app.py's router
    (Streamlit would otherwise run the file alone, as a legacy pages/ app with its own file list).
    This is the real-server check of the private-attribute patch in recsys.ui.registry.ensure_router
    (tests/test_app_registry.py checks the same in-process, without a browser)."""
    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    page.goto(server + "/data?dataset=demo")  # the first script run of this server
    heading(page, "Data")
    wait_idle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("link", name="Poster neighbours").first.wait_for(state="visible")
    assert "synthetic data" in sidebar.inner_text()
    page.screenshot(path=str(OUTPUT / "e2e-deep-link.png"), full_page=True)


@pytest.mark.skipif(not HAS_ML100K, reason=f"ML-100K not found in {SHARED_DATA}")
def test_the_neighbours_link_opens_star_wars_and_a_new_movie_rewrites_the_url(server, browser_page):
    page = browser_page
    page.goto(server + "/neighbours?dataset=ml-100k&item=50")
    heading(page, "Query: Star Wars (1977)")
    wait_idle(page)
    assert query(page)["item"] == "50" and query(page)["dataset"] == "ml-100k"
    picker = page.locator("[data-testid='stSelectbox']").filter(has_text="Movie (type to search by title)")
    picker.locator("input").fill("Toy Story")
    page.get_by_role("option", name="Toy Story (1995)").click()
    heading(page, "Query: Toy Story (1995)")
    wait_idle(page)
    page.wait_for_function("() => new URLSearchParams(location.search).get('item') === '1'")
    # the copied link reproduces the view in a fresh browser (a new context: no shared session)
    copied = page.url
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    fresh = context.new_page()
    fresh.set_default_timeout(240_000)
    fresh.goto(copied)
    heading(fresh, "Query: Toy Story (1995)")
    context.close()


def test_presentation_mode_scales_chart_fonts_and_folds_the_sidebar(server, browser_page):
    page = browser_page
    page.goto(server + "/data?dataset=demo")
    heading(page, "Data")
    page.locator(".js-plotly-plot .xtick text").first.wait_for()
    wait_idle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert sidebar.get_attribute("data-collapsed") == "false"
    assert max(tick_font_sizes(page)) < 18
    sidebar.locator("label").filter(has_text="Presentation mode").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('present') === '1'")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .xtick text')]"
        ".every(e => parseFloat(getComputedStyle(e).fontSize) >= 18)"
    )
    wait_idle(page)
    sizes = tick_font_sizes(page)
    assert sizes and min(sizes) >= 18, sizes  # every tick label of every chart, log axes included
    titles = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(e => parseFloat(getComputedStyle(e).fontSize))"
    )
    assert titles and min(titles) > min(sizes)
    assert sidebar.get_attribute("data-collapsed") == "true"
    page.screenshot(path=str(OUTPUT / "e2e-data-presentation.png"))


def test_map_hover_shows_the_poster_and_a_click_opens_its_neighbours(server, browser_page):
    page = browser_page
    page.goto(server + "/embedding?dataset=demo")
    box = page.locator(".st-key-emb_map_box")
    box.locator(".js-plotly-plot").wait_for()
    wait_idle(page)
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    point = page.evaluate(
        """() => {
        const gd = document.querySelector('.st-key-emb_map_box .js-plotly-plot');
        const fl = gd._fullLayout, trace = gd._fullData[0], r = gd.getBoundingClientRect();
        return {x: r.left + fl.xaxis._offset + fl.xaxis.l2p(trace.x[0]),
                y: r.top + fl.yaxis._offset + fl.yaxis.l2p(trace.y[0]),
                id: String(trace.customdata[0][0]), title: String(trace.customdata[0][1])};
    }"""
    )
    page.mouse.move(point["x"], point["y"])
    panel = page.locator("[data-testid='recsys-hover-panel']")
    page.wait_for_function(
        "id => { const p = document.querySelector('[data-testid=recsys-hover-panel]') || "
        "[...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
        ".map(s => s.querySelector('[data-testid=recsys-hover-panel]')).find(Boolean); "
        "return p && p.getAttribute('data-item') === id; }",
        arg=point["id"],
    )
    image = panel.locator("img.recsys-hover-img")
    assert image.count() == 1 and image.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert point["title"] in panel.inner_text()
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function("id => new URLSearchParams(location.search).get('item') === id", arg=point["id"])
    heading(page, f"Nearest posters of {point['title']} (full feature space, Euclidean)")
    wait_idle(page)
    page.screenshot(path=str(OUTPUT / "e2e-embedding-click.png"))


def test_a_page_on_a_stand_in_says_so_and_offers_the_extraction(server, browser_page):
    page = browser_page
    page.goto(server + "/neighbours?dataset=demo")
    heading(page, "Poster neighbours")
    wait_idle(page)
    if "(64 items)" in page.content() or "tf_efficientnet_lite0" in query(page).get("left", ""):
        pytest.skip("this server's cache already holds CNN poster features (RECSYS_E2E_CACHE_DIR)")
    banner = page.get_by_text("Stand-in:", exact=False).first
    banner.wait_for(state="visible")
    alert = page.locator("[data-testid='stAlert']").filter(has_text="Stand-in:")
    assert "pixel baseline, not a CNN" in alert.first.inner_text()
    button = page.get_by_role("button", name="Extract lite0 posters").first
    button.wait_for(state="visible")
    assert "laptop CPU" in button.inner_text()


def test_screenshots_of_every_page_stay_small(server, browser, outside_requests):
    """One PNG per page (the first screen at 1280x800, 256 colours) for the README; < 300 KB each."""
    from PIL import Image
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from recsys import ui

    dataset = "ml-100k" if HAS_ML100K else "demo"
    target = OUTPUT / "screens"
    target.mkdir(parents=True, exist_ok=True)
    update = os.environ.get("RECSYS_UPDATE_SCREENSHOTS") == "1"
    page = new_page(browser, server, outside_requests, 1280, 800, 600_000)
    sizes = {}
    for spec in ui.page_specs():
        name = spec.url_path or "home"
        page.goto(f"{server}/{spec.url_path}?dataset={dataset}")
        heading(
            page, spec.title if spec.url_path else "Do CNN features of posters and trailers improve recommendations?"
        )
        wait_idle(page)
        anchor = SHOT_ANCHORS.get(name)  # what the page is for at the top of the shot, not its controls
        element = page.locator(anchor).first if anchor else None
        if element is not None:
            try:
                element.wait_for(state="attached", timeout=60_000)
            except PlaywrightTimeout:  # e.g. a dataset without posters: the top of the page then
                element = None
        if element is not None:
            element.evaluate(
                "e => { e.scrollIntoView({block: 'start'}); let p = e.parentElement;"
                " while (p && p.scrollHeight <= p.clientHeight) p = p.parentElement; if (p) p.scrollBy(0, -90); }"
            )
        page.wait_for_timeout(1500)  # charts finish their transitions
        raw = page.screenshot()
        image = Image.open(io.BytesIO(raw)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
        (target / f"screen-{name}.png").write_bytes(data)
        if update:
            (PROJECT_ROOT / "assets" / f"screen-{name}.png").write_bytes(data)
        sizes[name] = len(data)
    page.close()
    assert all(size < SCREENSHOT_LIMIT for size in sizes.values()), sizes
    # nothing left the machine on any page: no CDN fonts, icons or scripts
    assert outside_requests == [], outside_requests[:5]
