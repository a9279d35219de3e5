"""`matdb watch`: a test spectrometer writes SIMULATED spectra into a folder (half-written files included);
the live run detects steady state / decay onset at the simulator's known times; the run loaded at the end is
the one `matdb ingest` of the folder gives; bad input never stops the watcher."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_browser import driver  # noqa: F401  (the headless Chromium fixture of the browser tests)
from watch_spectrometer import Spectrometer, oceanview_text, reference_file, simulated

from ingest.readers import spectrometer as sp
from matdb_app import ingest as ingest_
from matdb_app import watch

REPO = Path(__file__).resolve().parents[1]
#: Detected times must match the simulator's within this (min); spectra are 0.5 min apart.
TIME_TOL_MIN = 2.0


def _start(tmp: Path, x: float, name: str = "run") -> tuple[watch.Manifest, object]:
    r = simulated(x)
    ref = reference_file(r, tmp / "ptfe.csv")
    m = watch.start(
        tmp / name, mode="reflectance", family="FAMAPbI3", params={"x": x}, reference=ref, provenance="simulated"
    )
    return m, r


@pytest.mark.slow
@pytest.mark.parametrize(("x", "fmt"), [(0.8, "oceanview"), (1.0, "csv")])
def test_live_detection_matches_simulator(tmp_path: Path, x: float, fmt: str) -> None:
    m, r = _start(tmp_path, x)
    spec = Spectrometer(r, m.folder, fmt=fmt, every=7)
    live = watch.LiveRun(m, settle_s=0.0)
    first_banner = None
    for i in range(r.times_min.size):
        spec.write(i)
        live.poll()
        b = live.state().banner
        if b and first_banner is None:
            first_banner = (float(r.times_min[i]), b)
    st = live.state()
    assert st.signal.shape == (r.times_min.size, r.wavelengths_nm.size)
    np.testing.assert_allclose(st.times_min, r.times_min, atol=1e-3)
    kin = r.meta["kinetics"]
    if kin["decay_onset_min"] is None:
        assert st.detection.status == "steady"
        assert st.detection.steady_since == pytest.approx(kin["t_steady_min"], abs=TIME_TOL_MIN)
        assert st.banner == ("success", f"steady state since {st.detection.steady_since:.0f} min — stop milling")
    else:
        assert st.detection.status == "decaying"
        assert st.detection.decay_since == pytest.approx(kin["decay_onset_min"], abs=TIME_TOL_MIN)
        assert st.banner[1].startswith("edge falling since") and st.banner[1].endswith("(possible α→δ)")
    assert first_banner is not None and first_banner[1][0] == "success"


def test_watch_loop_half_written_files_and_ingest_equals_ingest(tmp_path: Path, db) -> None:  # noqa: ANN001
    m, r = _start(tmp_path, 0.8)
    spec = Spectrometer(r, m.folder, fmt="oceanview", dt_s=0.005, every=5, stop_after=40)
    spec.start()
    done = threading.Event()
    spec_done = threading.Thread(target=lambda: (spec.join(), done.set()), daemon=True)
    spec_done.start()
    live = watch.LiveRun(m, settle_s=0.05)
    res = watch.watch(db, live, idle_min=None, poll_s=0.01, should_stop=done.is_set)
    assert res.report.ok and res.report.totals["added"] == 1
    assert res.state.times_min.size == 40  # every spectrum, none half read
    np.testing.assert_allclose(res.state.times_min, r.times_min[:40], atol=1e-3)
    a = db.array(m.measurement, "tlis_reflectance")
    np.testing.assert_allclose(a["values"], r.values[:40], atol=0.01)
    np.testing.assert_allclose(a["axes"]["time"][0], r.times_min[:40], atol=1e-3)
    # a plain `matdb ingest` of the folder, and a resumed watch: the same run, nothing written twice
    again = ingest_.ingest(db, [m.folder], progress=False)
    assert again.totals["unchanged"] == 1 and not again.totals["added"]
    resumed = watch.watch(db, watch.LiveRun(watch.start(m.folder, mode="reflectance", resume=True)), duration_min=0.0)
    assert resumed.report.totals["unchanged"] == 1
    b = db.array(m.measurement, "tlis_reflectance")
    np.testing.assert_array_equal(a["values"], b["values"])


def test_ingest_of_folder_in_fresh_db_equals_watch(tmp_path: Path, db, db_url: str) -> None:  # noqa: ANN001
    m, r = _start(tmp_path, 0.8)
    spec = Spectrometer(r, m.folder, fmt="csv", every=0, stop_after=20)
    spec.write_all()
    rep = ingest_.ingest(db, [tmp_path / "run"], progress=False)  # the watcher died: plain ingest
    assert rep.ok and rep.totals["added"] == 1
    run, _ = sp.read_folder(m.folder, m.reference)
    np.testing.assert_allclose(db.array(m.measurement, "tlis_reflectance")["values"], np.vstack(run.rows))


def test_bad_input_never_stops_the_watcher(tmp_path: Path) -> None:
    m, r = _start(tmp_path, 0.8)
    spec = Spectrometer(r, m.folder, fmt="oceanview", every=0)
    live = watch.LiveRun(m, settle_s=0.0)
    spec.write(0)
    assert live.poll() == 1
    # non-numeric lines: skipped with a warning naming the file
    name, text = spec.text(1)
    lines = text.splitlines()
    lines.insert(20, "saturated!\tn/a")
    (m.folder / name).write_text("\n".join(lines) + "\n")
    # a spectrum on a coarser grid: interpolated, with a note
    when_name, _ = spec.text(2)
    wl2 = r.wavelengths_nm[::2]
    from datetime import timedelta

    from watch_spectrometer import T0

    (m.folder / when_name).write_text(oceanview_text(wl2, r.values[2][::2], T0 + timedelta(minutes=1.0)))
    # a half-written file (no End line yet) and a binary file
    n3, t3 = spec.text(3)
    (m.folder / n3).write_text(t3[: len(t3) // 2])
    (m.folder / "junk.txt").write_bytes(b"\x00\xff\x00garbage\n")
    assert live.poll() == 2
    st = live.state()
    assert any(name in w and "line 21" in w and "skipped" in w for w in st.warnings)
    assert any(when_name in n and "interpolated" in n for n in st.notes)
    assert any("junk.txt" in w for w in st.warnings)
    assert any(n3 in p for p in st.pending)
    (m.folder / n3).write_text(t3)
    assert live.poll() == 1
    assert live.state().times_min.size == 4
    np.testing.assert_allclose(live.state().times_min, r.times_min[:4], atol=1e-3)
    # the reference disappears: spectra wait, nothing raises
    (m.folder / str(m.reference)).unlink()
    fresh = watch.LiveRun(m, settle_s=0.0)
    assert fresh.poll() == 0
    assert fresh.state().pending and all("waiting" in p or "not the run" in p for p in fresh.state().pending)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"mode": "xrd", "sample": "s1"}, "mode must be"),
        ({"mode": "pl"}, "either --sample"),
        ({"mode": "pl", "family": "FAMAPbI3"}, "composition"),
        ({"mode": "reflectance", "sample": "s1"}, "reference"),
        ({"mode": "reflectance", "sample": "s1", "reference": "nope.csv"}, "not found"),
    ],
)
def test_start_errors(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(watch.WatchError, match=match):
        watch.start(tmp_path / "w", **kw)


def test_resume_without_manifest_and_second_start(tmp_path: Path) -> None:
    with pytest.raises(watch.WatchError, match="matdb-watch.yaml"):
        watch.start(tmp_path / "none", mode="pl", resume=True)
    watch.start(tmp_path / "w", mode="pl", sample="s1")
    with pytest.raises(watch.WatchError, match="--resume"):
        watch.start(tmp_path / "w", mode="pl", sample="s1")


@pytest.mark.slow
def test_cli_watch_duration(tmp_path: Path, db_url: str) -> None:
    r = simulated(0.8, n_times=20)
    ref = reference_file(r, tmp_path / "ptfe.csv")
    (tmp_path / "cli").mkdir()
    Spectrometer(r, tmp_path / "cli", fmt="oceanview", every=0).write_all()
    cmd = [
        sys.executable,
        "-m",
        "matdb_app.cli",
        "watch",
        str(tmp_path / "cli"),
        "--family",
        "FAMAPbI3",
        "--param",
        "x=0.8",
        "--reference",
        str(ref),
        "--provenance",
        "simulated",
        "--duration",
        "0.01",
        "--db",
        db_url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "20 spectra" in out.stdout and "added: 1" in out.stdout
    bad = subprocess.run(cmd[:9] + ["--mode", "pl", "--db", db_url], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--resume" in bad.stderr


def test_live_page_apptest(tmp_path: Path) -> None:
    from streamlit.testing.v1 import AppTest

    m, r = _start(tmp_path, 0.8)
    spec = Spectrometer(r, m.folder, fmt="oceanview", every=0, stop_after=150)
    spec.write_all()
    at = AppTest.from_file(str(REPO / "app_pages" / "live.py"), default_timeout=60)
    at.query_params["dir"] = str(m.folder)
    at.run()
    assert not at.exception
    assert any("150 spectra" in c.value for c in at.caption)
    [banner] = [s.value for s in at.success]
    assert banner.startswith("steady state since ") and banner.endswith(" min — stop milling")


@pytest.mark.browser
def test_live_page_in_browser_heatmap_grows_and_banner_appears(tmp_path: Path, driver: object) -> None:  # noqa: F811
    """The served Live page while spectra arrive: the heatmap grows, then the banner appears."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_browser import _serve

    m, r = _start(tmp_path, 0.8)
    spec = Spectrometer(r, m.folder, fmt="oceanview", every=5)
    for i in range(20):
        spec.write(i)
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    ingest_.init_db(url, progress=False).db.close()
    with _serve(url, tmp_path) as base:
        driver.get(f"{base}/live?dir={m.folder}&every=1")  # type: ignore[attr-defined]

        def text() -> str:
            return driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]

        WebDriverWait(driver, 60, poll_frequency=0.5).until(lambda _: "20 spectra" in text())
        WebDriverWait(driver, 30, poll_frequency=0.5).until(  # plotly draws after the text arrives
            lambda _: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .heatmaplayer"))  # type: ignore[attr-defined]
        assert "stop milling" not in text()
        for i in range(20, r.times_min.size):  # the mill runs on
            spec.write(i)
        WebDriverWait(driver, 90, poll_frequency=0.5).until(lambda _: f"{r.times_min.size} spectra" in text())
        WebDriverWait(driver, 30, poll_frequency=0.5).until(lambda _: "— stop milling" in text())
        assert "steady state since" in text()
        driver.save_screenshot(str(REPO / "test-artifacts" / "screenshots" / "live.png"))  # type: ignore[attr-defined]


def test_growing_matrix_csv(tmp_path: Path, db) -> None:  # noqa: ANN001
    """One matrix CSV as `matdb simulate` writes it, rewritten with more time columns as the run goes on."""
    import copy

    from screening.simulate import write_tlis_csv

    m, r = _start(tmp_path, 0.8)
    live = watch.LiveRun(m, settle_s=0.0)
    target = m.folder / "run-matrix.csv"
    for k in (5, 12, 30):
        part = copy.copy(r)
        part.values, part.times_min = r.values[:k], r.times_min[:k]
        (tmp_path / "out").mkdir(exist_ok=True)
        written = write_tlis_csv(part, tmp_path / "out" / "run-matrix.csv")[0]
        text = written.read_text()
        target.write_text(text[: len(text) // 2])  # half written: not read
        live.poll()
        target.write_text(text)
        live.poll()
        assert live.state().times_min.size == k
    np.testing.assert_allclose(live.state().times_min, r.times_min[:30], atol=1e-6)
    res = watch.finish(db, m.folder)
    assert res.ok and res.totals["added"] == 1
    np.testing.assert_allclose(db.array(m.measurement, "tlis_reflectance")["values"], live.run.rows, atol=1e-9)
