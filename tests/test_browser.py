"""The served app in headless Chromium: every page renders real content (screenshots kept).

Starts ``streamlit run app.py`` on a free localhost port with a small SQLite database, opens each
page with Selenium and saves a screenshot per page under test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
START_TIMEOUT_S = 90
PAGE_TIMEOUT_S = 45

# (url path, file name, texts that must be visible, plots expected)
PAGES = [
    (
        "",
        "explore",
        ["Explore samples", "5 of 5 samples", "FAMAPbI3", "SIMULATED", "Measurements"],
        False,
    ),
    ("spectra", "spectra", ["Spectra", "sim-FAMAPbI3-x0.6", "Simulated run"], True),
    ("maps", "maps", ["Composition maps", "FAMAPbI3", "literature"], True),
    ("screening", "screening", ["Screening"], False),
    ("ingest", "ingest", ["Ingest data", "Choose files to check"], False),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:  # noqa: S310 (localhost)
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    from test_app import populate

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"headless browser tests need {CHROMIUM} and {CHROMEDRIVER}")
    tmp = tmp_path_factory.mktemp("browser")
    db_path = tmp / "app.sqlite"
    shutil.copy(sqlite_template, db_path)
    url = f"sqlite:///{db_path}"
    populate(url, tmp)
    port = _free_port()
    env = {**os.environ, "MATDB_URL": url}
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not start (exit {proc.poll()}):\n"
                    + (tmp / "streamlit.log").read_text()
                )
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1500,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.mark.parametrize(("path", "name", "expected", "plots"), PAGES, ids=[p[1] for p in PAGES])
def test_page_renders(
    server: str, driver: object, path: str, name: str, expected: list[str], plots: bool
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drv = driver
    drv.get(f"{server}/{path}")  # type: ignore[attr-defined]

    def body() -> str:
        return drv.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]

    def ready(_: object) -> bool:
        text = body()
        if not all(e in text for e in expected):
            return False
        if plots and not drv.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"):  # type: ignore[attr-defined]
            return False
        # the app has finished its run: no "Running..." status widget, no widget placeholders
        busy = '[data-testid="stStatusWidget"], [data-testid*="Skeleton"], .stale-element'
        if drv.find_elements(By.CSS_SELECTOR, busy):
            return False
        return bool(
            drv.find_elements(
                By.CSS_SELECTOR,
                '[data-testid="stSelectbox"], [data-testid="stFileUploader"], [data-testid="stAlert"]',
            )
        )  # type: ignore[attr-defined]

    try:
        WebDriverWait(drv, PAGE_TIMEOUT_S, poll_frequency=0.5).until(ready)
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(SHOTS / f"{name}.png"))  # type: ignore[attr-defined]
    text = body()
    for e in expected:
        assert e in text
    assert "Traceback" not in text
    exc = drv.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')  # type: ignore[attr-defined]
    assert not exc, exc[0].text
