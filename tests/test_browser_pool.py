"""The Screening page with a lab's own family, a lower-is-better objective and a stored pool (issue 11).

The triple-cation family Cs_aFA_bMA_{1-a-b}PbI3 and its quantity instability_index come from a record
file (tests/labs.py, real data of Sun et al. 2021); 88 of its 94 compositions are stored as the pool
``sun-pool``, the other 6 are the lab's results. In headless Chromium: choose the family, the
objective with "lower is better", "a stored pool" and Propose; the campaign shown on the page is the
one stored in the database, and every proposal is a row of the pool.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labs import sun_rows, triple_cation_record
from test_browser import (
    TRAIN_TIMEOUT_S,
    _body,
    _choose,
    _click,
    _no_errors,
    _scroll_to,
    _serve,
    _settle,
    _shot,
    _widget,
    driver,  # noqa: F401 (the fixture)
)

import matdb
from matdb_app import ingest as ingest_
from matdb_app import screening as sc

pytestmark = pytest.mark.browser

FAMILY = "CsFAMAPbI3"
POOL = "sun-pool"


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[str, str, set]]:
    tmp = tmp_path_factory.mktemp("browser-pool")
    db_path = tmp / "app.sqlite"
    shutil.copy(sqlite_template, db_path)
    url = f"sqlite:///{db_path}"
    rows = sun_rows()
    made, pool_rows = rows.head(6), rows.iloc[6:]
    pool_rows[["a", "b"]].to_csv(tmp / "sun-pool.csv", index=False)
    db = matdb.connect(url)
    try:
        assert ingest_.ingest(db, [triple_cation_record(tmp / "sun.yaml", made)], progress=False).ok
        assert sc.save_pool(db, tmp / "sun-pool.csv", FAMILY, POOL) == POOL
    finally:
        db.close()
    keys = {(round(a, 6), round(b, 6)) for a, b in pool_rows[["a", "b"]].itertuples(index=False)}
    with _serve(url, tmp) as base:
        yield base, url, keys


def _radio(drv: object, label: str, option: str) -> None:
    from selenium.webdriver.common.by import By

    box = _widget(drv, "stRadio", label)
    hit = [o for o in box.find_elements(By.CSS_SELECTOR, "label") if o.text.strip() == option]  # type: ignore[attr-defined]
    assert hit, f"no option {option!r} in the radio {label!r}"
    hit[0].click()


def _only_objective(drv: object, label: str, option: str) -> None:
    """Make ``option`` the only selection of the multiselect labelled ``label``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = _widget(drv, "stMultiSelect", label)
    chosen = [t.text.strip() for t in box.find_elements(By.CSS_SELECTOR, '[data-baseweb="tag"]')]  # type: ignore[attr-defined]
    if chosen == [option]:
        return
    for clear in box.find_elements(By.CSS_SELECTOR, '[role="button"][aria-label*="Clear all"], '  # type: ignore[attr-defined]
                                   'svg[title="Clear all"]'):
        clear.click()
        _settle(drv, ["Choose at least one objective"])
        break
    box = _widget(drv, "stMultiSelect", label)
    field = box.find_element(By.TAG_NAME, "input")  # type: ignore[attr-defined]
    field.click()
    field.send_keys(option)
    field.send_keys(Keys.ENTER)


def test_screening_proposes_from_a_stored_pool_for_a_labs_family(pool_server, driver) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, url, keys = pool_server
    drv = driver
    drv.get(f"{base}/screening")
    try:
        _settle(drv, ["Screening", "Propose the next batch"], TRAIN_TIMEOUT_S)  # the first load imports the app
        _choose(drv, "Family", FAMILY)
        _settle(drv, ["Instability index"])
        _only_objective(drv, "Objective(s)", "Instability index")
        _settle(drv, ["Model-based proposals"])
        _choose(drv, "Instability index", "lower is better")
        _settle(drv, ["Model-based proposals"])
        _radio(drv, "Choose among", "a stored pool")
        _settle(drv, ["Pool"])
        _choose(drv, "Pool", POOL)
        time.sleep(0.5)
        _click(drv, "Propose")
        _settle(drv, ["Campaign", "model-based", "Download plan (CSV)"], TRAIN_TIMEOUT_S)
        _scroll_to(drv, "Propose the next batch")
        _shot(drv, "screening_pool")
        _no_errors(drv)
        m = re.search(r"Campaign (c\S+-" + FAMILY + r"): (\d+) experiments", _body(drv))
        assert m, _body(drv)
        campaign, n = m.group(1), int(m.group(2))
    except Exception:
        _shot(drv, "screening_pool_failure")
        raise
    db = matdb.connect(url)
    try:
        rows = sc.campaigns(db)
    finally:
        db.close()
    rows = rows[rows["campaign"] == campaign]
    assert len(rows) == n == 4  # the page's default batch
    assert (rows["design"] == "model").all()
    assert rows["objectives"].iloc[0][0]["name"] == "instability_index"
    assert rows["objectives"].iloc[0][0]["direction"] == "min"
    chosen = {(round(p["a"], 6), round(p["b"], 6)) for p in rows["params"]}
    assert len(chosen) == n and chosen <= keys  # drawn from the pool, none of the made compositions
