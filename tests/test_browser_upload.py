"""A hostile upload in the served app (issue 15): the alias bomb uploaded on the Ingest page in one
browser tab is stopped by the worker's memory limit and reported in one line, while a second tab
(another Streamlit session of the same server) keeps loading the Explore page; nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hostile import alias_bomb, served_worker_baseline_mb
from test_browser import BUSY, _body, _serve, _shot, driver  # noqa: F401  (the headless Chromium fixture)

import matdb
from matdb import store
from matdb_app import ingest as ingest_
from matdb_app.isolation import WorkerLimits, run_limited

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Room above a served worker's measured address space (see tests/test_isolation.py).
HEADROOM_MB = 64
#: Seconds the bomb may take to reach the memory limit on a busy machine (the timeout is larger).
BOMB_WAIT_S = 300


def _wait(drv: object, ready: object, timeout: float) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(drv, timeout, poll_frequency=0.5).until(ready)


def _explore_works(drv: object, base: str, n_samples: int) -> None:
    from selenium.webdriver.common.by import By

    drv.get(base)  # type: ignore[attr-defined]
    want = ["Explore samples", f"{n_samples} of {n_samples} samples"]
    _wait(drv, lambda d: all(w in _body(d) for w in want) and not d.find_elements(By.CSS_SELECTOR, BUSY), 60)


def test_a_bomb_upload_is_stopped_while_another_session_keeps_working(
        driver: object, tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from test_app import populate

    base_mb = run_limited(served_worker_baseline_mb, limits=WorkerLimits(None, None))
    memory_mb = round(base_mb + HEADROOM_MB)
    monkeypatch.setenv(ingest_.ENV_UPLOAD_MEMORY, str(memory_mb))
    monkeypatch.setenv(ingest_.ENV_UPLOAD_TIMEOUT, str(2 * BOMB_WAIT_S))  # the memory limit stops it first
    monkeypatch.setenv(ingest_.ENV_UPLOAD_READER_LIMITS, "yaml_nodes=1e12")  # past the reader limits, to the worker
    db_path = tmp_path / "app.sqlite"
    shutil.copy(sqlite_template, db_path)
    url = f"sqlite:///{db_path}"
    populate(url, tmp_path)
    db = matdb.connect(url)
    before = (db.table_counts(), store.data_version(db))
    n = before[0]["sample"]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_bytes(alias_bomb())
    expected = f"checking the files: validation of bomb.yaml stopped: it needed more than {memory_mb} MB of memory"
    with _serve(url, tmp_path) as base:
        drv = driver
        drv.get(f"{base}/ingest")  # type: ignore[attr-defined]
        _wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type="file"]'), 60)
        upload_tab = drv.current_window_handle  # type: ignore[attr-defined]
        drv.find_elements(By.CSS_SELECTOR, '[data-testid="stFileUploader"] input[type="file"]')[0].send_keys(  # type: ignore[attr-defined]
            str(bomb))
        # a second session of the same server, while the first one's worker chews on the bomb
        drv.switch_to.new_window("tab")  # type: ignore[attr-defined]
        _explore_works(drv, base, n)
        still_checking = expected not in _body_of(drv, upload_tab)
        _shot(drv, "upload_bomb_other_session")
        drv.switch_to.window(upload_tab)  # type: ignore[attr-defined]

        def alerts(d: object) -> list[str]:
            return [e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')]  # type: ignore[attr-defined]

        _wait(drv, lambda d: expected in alerts(d), BOMB_WAIT_S)
        _shot(drv, "upload_bomb_stopped")
        assert [a for a in alerts(drv) if "bomb.yaml" in a] == [expected]
        assert "\n" not in expected
        assert "Traceback" not in _body(drv)
        assert not drv.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')  # type: ignore[attr-defined]
        # and the server is still up for everyone after the worker was stopped
        drv.switch_to.new_window("tab")  # type: ignore[attr-defined]
        _explore_works(drv, base, n)
        print(f"the other session loaded Explore while the upload was being checked: {still_checking}")
    assert (db.table_counts(), store.data_version(db)) == before
    db.close()


def _body_of(drv: object, handle: str) -> str:
    """The text of another tab (switching back to the current one afterwards)."""
    here = drv.current_window_handle  # type: ignore[attr-defined]
    drv.switch_to.window(handle)  # type: ignore[attr-defined]
    try:
        return _body(drv)
    finally:
        drv.switch_to.window(here)  # type: ignore[attr-defined]
