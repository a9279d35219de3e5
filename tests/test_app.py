"""The Streamlit app, page by page, with streamlit.testing.v1.AppTest on a small database."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

import matdb
from ingest.pipeline import load_one
from ingest.readers import read_file
from ingest.records import Document
from ingest.validate import prepare

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 30
DOI = "10.1038/s41467-025-56571-w"

DOC = {
    "matdb": 1,
    "source": {"key": "xiao2025", "kind": "publication", "doi": DOI, "title": "TLIS", "year": 2025},
    "chemicals": [
        {"name": "PbI2", "formula": "PbI2"},
        {"name": "FAI", "formula": "CH5N2I"},
        {"name": "MAI", "formula": "CH6NI"},
    ],
    "syntheses": [
        {
            "id": "t-x0.8",
            "family": "FAMAPbI3",
            "params": {"x": 0.8},
            "mill": {"model": "Retsch MM400", "type": "mixer", "frequency": "20 Hz"},
            "precursors": [
                {"chemical": "FAI", "amount": "0.8 mmol"},
                {"chemical": "MAI", "amount": "0.2 mmol"},
                {"chemical": "PbI2", "amount": "461.0 mg"},
            ],
            "steps": [
                {"kind": "mill", "duration": "90 min", "frequency": "20 Hz"},
                {"kind": "store", "duration": "20 h", "atmosphere": "N2"},
            ],
        },
        {
            "id": "t-x0.4",
            "family": "FAMAPbI3",
            "params": {"x": 0.4},
            "steps": [{"kind": "mill", "duration": "120 min"}],
        },
    ],
    "samples": [
        {"id": "t-x0.8-20h", "synthesis": "t-x0.8", "label": "after 90 min milling + 20 h storage"},
        {"id": "t-x0.4-120min", "synthesis": "t-x0.4"},
        {"id": "t-z2", "family": "FASnIBr", "params": {"z": 2.0}},
        {"id": "t-z1", "family": "FASnIBr", "params": {"z": 1.0}},
    ],
    "measurements": [
        {
            "sample": "t-x0.8-20h",
            "technique": "pxrd",
            "locator": "Fig. 2e",
            "results": [
                {"quantity": "xrd_peak", "value": "13.9 deg", "label": "alpha"},
                {"quantity": "xrd_peak", "value": "28.1 deg", "label": "alpha"},
            ],
        },
        {
            "id": "t-x0.4-tlis",
            "sample": "t-x0.4-120min",
            "technique": "tlis_reflectance",
            "locator": "Fig. S2b",
            "results": [{"quantity": "steady_state_time", "value": 60, "unit": "min"}],
        },
        {
            "id": "t-x0.8-tlis",
            "sample": "t-x0.8-20h",
            "technique": "tlis_reflectance",
            "locator": "Fig. 2b",
            "results": [{"quantity": "steady_state_time", "value": 59, "unit": "min"}],
        },
        {
            "sample": "t-z2",
            "technique": "pl",
            "locator": "Fig. 4",
            "results": [{"quantity": "pl_peak", "value": "850 nm"}],
        },
        {
            "sample": "t-z1",
            "technique": "pl",
            "locator": "Fig. 4",
            "results": [{"quantity": "pl_peak", "value": "760 nm"}],
        },
    ],
}


def write_tlis_run(folder: Path, name: str = "run.csv") -> Path:
    """A small simulated TLIS reflectance run (edge 700 -> 825 nm) and its PTFE reference."""
    wl = np.arange(340.0, 1001.0, 5.0)
    t = np.arange(0.0, 60.1, 2.0)
    edge = 700 + 125 * (1 - np.exp(-t / 15))
    ref = np.full(wl.size, 4000.0)
    vals = (0.1 + 0.8 / (1 + np.exp(-(wl[:, None] - edge[None, :]) / 8))) * ref[:, None]
    head = [
        "# matdb-tlis: 1",
        "# mode: reflectance",
        "# sample: sim-FAMAPbI3-x0.6",
        "# family: FAMAPbI3",
        '# params: {"x": 0.6}',
        "# integration_time: 100 ms",
        f"# reference: {name}.ref.csv",
        "# time_unit: min",
        "# provenance: simulated",
        "# source: simulator",
        "wavelength_nm," + ",".join(f"{x:g}" for x in t),
    ]
    rows = [f"{w:g}," + ",".join(f"{v:.2f}" for v in vals[i]) for i, w in enumerate(wl)]
    path = folder / name
    path.write_text("\n".join(head + rows) + "\n")
    (folder / f"{name}.ref.csv").write_text(
        "wavelength_nm,counts\n"
        + "\n".join(f"{w:g},{r:g}" for w, r in zip(wl, ref, strict=True))
        + "\n"
    )
    return path


def populate(url: str, folder: Path) -> None:
    """Load DOC (literature) and one simulated TLIS run into the database at ``url``."""
    db = matdb.connect(url)
    try:
        prep = prepare(
            Document.model_validate(DOC),
            "doc.yaml",
            known_families=db.families(),
            known_quantities=db.quantities(),
        )
        assert load_one(db, prep).status == "added"
        run = write_tlis_run(folder)
        prep = prepare(
            read_file(run), str(run), known_families=db.families(), known_quantities=db.quantities()
        )
        assert load_one(db, prep).status == "added"
    finally:
        db.close()


@pytest.fixture
def app_url(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A populated database on each backend (SQLite and PostgreSQL), set as MATDB_URL."""
    populate(db_url, tmp_path)
    monkeypatch.setenv("MATDB_URL", db_url)
    monkeypatch.chdir(REPO)
    return db_url


@pytest.fixture
def sqlite_app_url(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The same on SQLite only, for pages whose data access the two-backend tests already cover."""
    path = tmp_path / "app.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    populate(url, tmp_path)
    monkeypatch.setenv("MATDB_URL", url)
    monkeypatch.chdir(REPO)
    return url


def page(name: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if name:
        at.switch_page(f"app_pages/{name}.py").run()
        assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = (
        [m.value for m in at.markdown] + [t.value for t in at.title] + [e.value for e in at.warning]
    )
    parts += (
        [e.value for e in at.info] + [e.value for e in at.error] + [e.value for e in at.success]
    )
    parts += [h.value for h in at.subheader] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_explore_family_filter_narrows_the_table(app_url: str) -> None:
    at = page()
    assert at.title[0].value == "Explore samples"
    table = at.dataframe[0].value
    assert set(table["sample_id"]) == {
        "t-x0.8-20h",
        "t-x0.4-120min",
        "t-z2",
        "t-z1",
        "sim-FAMAPbI3-x0.6",
    }
    assert "simulated" in texts(at)  # banner for the simulated sample
    at.selectbox(key="ex_family").set_value("FASnIBr").run()
    assert not at.exception
    assert set(at.dataframe[0].value["sample_id"]) == {"t-z2", "t-z1"}
    assert "simulated**" not in texts(at)  # no simulated row shown -> no banner
    # a composition slider narrows further: z in [1.5, 3]
    at.slider(key="ex_param_FASnIBr_z").set_value((1.5, 3.0)).run()
    assert at.dataframe[0].value["sample_id"].tolist() == ["t-z2"]


def test_explore_quantity_filter_adds_value_column_and_sorts(sqlite_app_url: str) -> None:
    at = page()
    at.selectbox(key="ex_qty").set_value("steady_state_time").run()
    df = at.dataframe[0].value
    assert set(df["sample_id"]) == {"t-x0.8-20h", "t-x0.4-120min"}
    assert sorted(df["steady_state_time"]) == [59.0, 60.0]
    at.selectbox(key="ex_sort").set_value("steady_state_time").run()
    at.toggle(key="ex_asc").set_value(False).run()
    assert at.dataframe[0].value["steady_state_time"].tolist() == [60.0, 59.0]


def test_explore_provenance_filter(sqlite_app_url: str) -> None:
    at = page()
    at.multiselect(key="ex_prov").set_value(["simulated"]).run()
    df = at.dataframe[0].value
    assert df["sample_id"].tolist() == ["sim-FAMAPbI3-x0.6"]
    assert df["provenance"].tolist() == ["◇ SIMULATED"]
    assert "simulated" in texts(at)


def test_sample_view_shows_precursors_steps_and_doi(sqlite_app_url: str) -> None:
    at = page()
    at.selectbox(key="ex_sample").set_value("t-x0.8-20h").run()
    assert not at.exception
    body = texts(at)
    assert "FA0.8MA0.2PbI3" in body
    assert f"https://doi.org/{DOI}" in body
    frames = [d.value for d in at.dataframe]
    pre = next(f for f in frames if "chemical" in f.columns)
    assert set(pre["chemical"]) == {"FAI", "MAI", "PbI2"}
    assert pre.set_index("chemical").loc["PbI2", "mass_mg"] == pytest.approx(461.0)
    steps = next(f for f in frames if "kind" in f.columns and "position" in f.columns)
    assert steps["kind"].tolist() == ["mill", "store"]
    res = next(f for f in frames if "quantity" in f.columns and "measurement" in f.columns)
    assert set(res["quantity"]) == {"xrd_peak", "steady_state_time"}


def test_spectra_page_shows_run_and_features(app_url: str) -> None:
    at = page("spectra")
    assert at.title[0].value == "Spectra"
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # heatmap, spectra, edge vs time (+ band gap, pXRD peaks)
    assert "SIMULATED run" in texts(at)
    feats = next(
        d.value for d in at.dataframe if "method" in d.value.columns and "name" in d.value.columns
    )
    edge = feats.set_index("name").loc["absorption_edge", "value"]
    # the steepest fall of F(R) lies a little on the short side of the final R midpoint (825 nm)
    assert 790 < edge < 826
    # moving the time slider reruns without error
    at.select_slider[0].set_value(0).run()
    assert not at.exception


def test_spectra_page_survives_failing_feature_extraction(
    sqlite_app_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import screening.spectra

    def boom(*_a, **_k):
        raise screening.spectra.SpectrumError("synthetic failure")

    monkeypatch.setattr(screening.spectra, "extract_features", boom)
    import streamlit as st

    st.cache_data.clear()
    at = page("spectra")
    assert "Feature extraction failed" in texts(at)
    assert len(at.get("plotly_chart")) >= 2  # raw heatmap and spectra still shown
    st.cache_data.clear()


def test_maps_page_plots_property_over_composition(sqlite_app_url: str) -> None:
    at = page("maps")
    assert at.title[0].value == "Composition maps"
    at.selectbox(key="map_family").set_value("FASnIBr").run()
    assert not at.exception
    assert at.selectbox(key="map_q_FASnIBr").value == "pl_peak"
    assert len(at.get("plotly_chart")) == 1
    data = at.dataframe[0].value
    assert sorted(data["value"]) == [760.0, 850.0]
    assert sorted(data["z"]) == [1.0, 2.0]


def test_screening_page_renders(sqlite_app_url: str) -> None:
    """Few results are an expected situation: the page says what it will do, never a red error."""
    at = page("screening")
    assert at.title[0].value == "Screening"
    assert not at.exception and not at.error
    assert "Initial design" in texts(at) or "Model-based proposals" in texts(at)
    assert "--" not in texts(at)  # no CLI flags in UI messages


def _upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.file_uploader(key="in_files").set_value(
        [(n, c, "application/octet-stream") for n, c in files]
    ).run()
    assert not at.exception, at.exception
    return at


def test_ingest_shows_field_errors_and_writes_nothing(sqlite_app_url: str) -> None:
    app_url = sqlite_app_url
    bad = copy.deepcopy(DOC)
    bad["source"]["key"] = "other"
    bad["syntheses"][0]["id"] = "u-x0.8"
    bad["syntheses"][0]["params"] = {"x": 1.3}
    bad["samples"] = [{"id": "u-1", "synthesis": "u-x0.8"}]
    bad["measurements"] = [
        {"sample": "u-1", "technique": "plqy", "results": [{"quantity": "plqy", "value": "120 %"}]}
    ]
    db = matdb.connect(app_url)
    before = db.table_counts()
    at = _upload(page("ingest"), [("bad.yaml", yaml.safe_dump(bad).encode())])
    errors = next(d.value for d in at.dataframe if "problem" in d.value.columns)
    assert len(errors) == 2
    assert set(errors["file"]) == {"bad.yaml"}
    assert any("outside the range" in p for p in errors["problem"])
    assert any("above the physical maximum 100" in p for p in errors["problem"])
    # the table's columns come from the error objects: the field and record are filled in
    assert dict(zip(errors["record"], errors["field"], strict=True)) == {
        "syntheses[0] (u-x0.8)": "params.x", "measurements[0] (u-1/plqy/1) results[0]": "value"}
    assert at.button(key="in_confirm").disabled
    assert at.error, "a visible error message"
    assert db.table_counts() == before
    db.close()


def test_ingest_loads_a_good_file(app_url: str) -> None:
    good = {
        "matdb": 1,
        "source": {"key": "nb7", "kind": "notebook"},
        "samples": [{"id": "nb7-s1", "family": "FAPbIBr", "params": {"x": 0.25}}],
        "measurements": [
            {
                "sample": "nb7-s1",
                "technique": "impedance",
                "results": [{"quantity": "activation_energy", "value": "0.31 eV"}],
            }
        ],
    }
    at = _upload(page("ingest"), [("good.yaml", yaml.safe_dump(good).encode())])
    summary = at.dataframe[0].value
    assert summary["status"].tolist() == ["valid"]
    confirm = at.button(key="in_confirm")
    assert not confirm.disabled
    confirm.click().run()
    assert not at.exception
    assert "1 added" in at.success[0].value
    db = matdb.connect(app_url)
    assert db.samples(sample="nb7-s1")["family"].tolist() == ["FAPbIBr"]
    db.close()
    # the Explore page sees the new sample (caches keyed by the data version)
    at.switch_page("app_pages/explore.py").run()
    assert "nb7-s1" in set(at.dataframe[0].value["sample_id"])


def test_database_error_is_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATDB_URL", "oracle://nowhere/db")
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "Cannot open the database" in at.error[0].value


def test_sort_and_page() -> None:
    from matdb_app.display import sort_and_page

    df = pd.DataFrame({"a": [3.0, None, 1.0, 2.0]})
    rows, n = sort_and_page(df, "a", True, 1, 2)
    assert (rows["a"].tolist(), n) == ([1.0, 2.0], 2)
    rows, _ = sort_and_page(df, "a", True, 9, 2)  # clamped to the last page
    assert rows["a"].tolist()[0] == 3.0 and pd.isna(rows["a"].tolist()[1])


# --- the sample page: inferred flags, series, samples as ingredients ------------------------------


@pytest.fixture
def story_url(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from test_query import load_story

    path = tmp_path / "story.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = matdb.connect(url)
    try:
        load_story(db)
    finally:
        db.close()
    monkeypatch.setenv("MATDB_URL", url)
    monkeypatch.chdir(REPO)
    return url


def test_sample_page_shows_inferred_flags_outcome_creator_and_series(story_url: str) -> None:
    at = page()
    at.selectbox(key="ex_sample").set_value("t-x0.8-20h").run()
    assert not at.exception
    body = texts(at)
    assert "**Outcome:** ok" in body and "**Made by (database user):** alice" in body
    flags = next(d.value for d in at.dataframe if list(d.value.columns) == ["what", "reason"])
    assert set(flags["reason"]) == {"storage time read off the figure", "peak position from the digitised pattern"}
    assert "step 2 (store)" in set(flags["what"])
    assert any("are **inferred**" in w.value for w in at.warning)
    assert "#### Series: storage of FA0.8MA0.2PbI3 (`x08-storage`)" in body
    assert "Other samples of this series: [t-x0.8-90min](?sample=t-x0.8-90min)" in body
    frames = [d.value for d in at.dataframe]
    findings = next(f for f in frames if "measurement" in f.columns and "x08-series-finding" in set(f["measurement"]))
    assert findings["value"].tolist() == ["α phase stays"]
    results = next(f for f in frames if "measurement" in f.columns and "xrd_peak" in set(f["quantity"]))
    assert "phases_present" in set(results["quantity"])  # the sample's own pXRD finding, not the series'
    assert "α phase stays" not in set(results["value"])
    steps = next(f for f in frames if "kind" in f.columns and "position" in f.columns)
    assert steps["inferred"].tolist() == [False, True]


def test_a_sample_link_opens_its_story_and_shows_its_ingredients(story_url: str) -> None:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.query_params["sample"] = "t-two-stage-s"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ex_sample").value == "t-two-stage-s"
    assert "Made from the stored sample [t-x0.8-90min](?sample=t-x0.8-90min)" in texts(at)
    pre = next(d.value for d in at.dataframe if "chemical" in d.value.columns)
    assert pre["sample"].tolist() == ["t-x0.8-90min"] and pre["formula"].tolist() == ["FA0.8MA0.2PbI3"]


def test_hide_inferred_samples(story_url: str) -> None:
    at = page()
    assert "t-x0.4-120min" in set(at.dataframe[0].value["sample_id"])
    at.toggle(key="ex_no_inferred").set_value(True).run()
    assert not at.exception
    shown = set(at.dataframe[0].value["sample_id"])
    assert "t-x0.4-120min" not in shown and "t-x0.8-20h" in shown


# --- a fresh `matdb init --bundled`: no page empty or in error ----------------------------------


@pytest.fixture(scope="module")
def bundled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from matdb_app.ingest import init_db

    path = tmp_path_factory.mktemp("bundled") / "bundled.sqlite"
    done = init_db(f"sqlite:///{path}", bundled=True, progress=False)
    assert done.ok
    done.db.close()
    return path


@pytest.fixture
def bundled_url(bundled_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "fresh.sqlite"
    shutil.copy(bundled_template, path)
    monkeypatch.setenv("MATDB_URL", f"sqlite:///{path}")
    monkeypatch.chdir(REPO)
    return f"sqlite:///{path}"


def test_first_run_explore_lists_literature_and_the_simulated_demo(bundled_url: str) -> None:
    at = page()
    table = at.dataframe[0].value
    assert {"● literature", "◇ SIMULATED"} <= set(table["provenance"])
    assert (table["provenance"] == "◇ SIMULATED").sum() == 6
    assert "simulated" in texts(at)  # the banner
    assert any("◇ SIMULATED: 6" in c.value for c in at.sidebar.caption)


def test_first_run_spectra_shows_a_heatmap_of_a_simulated_run(bundled_url: str) -> None:
    from test_app_screening import figures

    at = page("spectra")
    assert "SIMULATED run" in texts(at)
    kinds = [t.get("type") for f in figures(at) for t in f["data"]]
    assert "heatmap" in kinds
    runs = next(d.value for d in at.dataframe if "kind" in d.value.columns)
    assert set(runs["provenance"]) == {"◇ SIMULATED"} and len(runs) == 6
    assert "`matdb demo remove` deletes them" in texts(at)


@pytest.mark.parametrize(("name", "title"), [("maps", "Composition maps"), ("screening", "Screening"),
                                             ("ingest", "Ingest data")])
def test_first_run_other_pages_render(bundled_url: str, name: str, title: str) -> None:
    at = page(name)
    assert at.title[0].value == title
    assert not at.error


def test_pages_show_matdb_errors_as_messages_and_other_errors_as_internal() -> None:
    def script() -> None:
        from matdb.query import parse_query
        from matdb_app import cache

        def bug() -> None:
            raise ValueError("a bug deep inside")

        cache.call(parse_query, "family>3", what="query")
        cache.call(bug, what="loading")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception
    user, internal = (e.value for e in at.error)
    assert user == "query: 'family' can only be compared with '='"
    assert internal.startswith("loading failed: internal error ValueError: a bug deep inside")
    assert "MATDB_DEBUG=1" in internal
