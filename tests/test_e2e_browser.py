"""End to end: `streamlit run app.py` on a free localhost port, driven by headless Chromium.

Opens Home and two pages through the sidebar navigation, checks their headings and that a plotly
chart is drawn, flips the presentation toggle, and saves screenshots under test-output/.
Skipped (with the reason) where Chromium or Playwright is missing.
"""

from __future__ import annotations

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
    env = dict(os.environ, RECSYS_DATA_DIR=str(tmp_path_factory.mktemp("no-movielens")))
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
def browser_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)  # first renders build the demo dataset on a slow CPU
        yield page
        browser.close()


def heading(page, text: str):
    page.get_by_role("heading", name=text).first.wait_for(state="visible")


def wait_idle(page) -> None:
    """Streamlit shows a 'Running…' status widget while the script runs; wait until it is gone."""
    page.wait_for_timeout(500)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def test_deep_link_as_first_request_gets_the_dashboard_sidebar(server, browser_page):
    """A bookmarked page URL on a freshly started server must still go through app.py's router
    (Streamlit would otherwise run the file alone, as a legacy pages/ app with its own file list).
    This is the real-server check of the private-attribute patch in recsys.ui.registry.ensure_router
    (tests/test_app_registry.py checks the same in-process, without a browser)."""
    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    page.goto(server + "/data")  # the first script run of this server
    heading(page, "Data")
    wait_idle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("link", name="Poster neighbours").first.wait_for(state="visible")
    assert "synthetic data" in sidebar.inner_text()
    page.screenshot(path=str(OUTPUT / "e2e-deep-link.png"), full_page=True)


def test_home_and_two_pages_render_in_chromium(server, browser_page):
    page = browser_page
    OUTPUT.mkdir(exist_ok=True)
    page.goto(server)
    heading(page, "Do CNN features of posters and trailers improve recommendations?")
    wait_idle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert "synthetic data" in sidebar.inner_text()
    assert "device:" in sidebar.inner_text()
    page.screenshot(path=str(OUTPUT / "e2e-home.png"), full_page=True)

    page.get_by_role("link", name="Data").first.click()
    heading(page, "Data")
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    wait_idle(page)
    assert page.locator(".js-plotly-plot").count() >= 4
    assert "synthetic data" in page.locator("[data-testid='stSidebar']").inner_text()  # sidebar on every page
    page.screenshot(path=str(OUTPUT / "e2e-data.png"), full_page=True)

    page.get_by_role("link", name="Rating prediction").first.click()
    heading(page, "Rating prediction")
    page.locator(".js-plotly-plot .scatterlayer").first.wait_for(state="visible")
    wait_idle(page)
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2
    page.screenshot(path=str(OUTPUT / "e2e-rating.png"), full_page=True)

    # Presentation mode: the real sidebar toggle enlarges the text of the page.
    before = page.locator("[data-testid='stCaptionContainer']").first.evaluate("e => getComputedStyle(e).fontSize")
    page.locator("[data-testid='stSidebar'] label").filter(has_text="Presentation mode").click()
    page.wait_for_function(
        "before => getComputedStyle(document.querySelector(\"[data-testid='stCaptionContainer'] p\") || "
        "document.querySelector(\"[data-testid='stCaptionContainer']\")).fontSize !== before",
        arg=before,
    )
    wait_idle(page)
    page.screenshot(path=str(OUTPUT / "e2e-rating-presentation.png"), full_page=True)
