"""The query API on both backends: composition/process filters and limit in SQL, series findings,
inferred flags, the export columns they add, and the sample story."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select, update
from test_store import DOC, load

from matdb import models as M
from matdb.export import LEADING, TRAILING, tidy_results
from matdb.query import QueryError, parse_query

#: More compositions and process settings than DOC: x on a 0.05 grid, two milling times, a text
#: process value and one sample without milling time.
GRID = {
    "matdb": 1,
    "source": {"key": "grid-nb", "kind": "notebook"},
    "samples": [
        {"id": f"g-x{x:.2f}-{t}", "family": "FAMAPbI3", "params": {"x": x},
         "process": {"milling_time": f"{t} min", "aging_atmosphere": "N2" if t == 30 else "air"}}
        for x in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35) for t in (30, 60)
    ] + [{"id": "g-untimed", "family": "FAMAPbI3", "params": {"x": 0.3}}],
    "measurements": [
        {"sample": f"g-x{x:.2f}-{t}", "technique": "plqy",
         "results": [{"quantity": "plqy", "value": f"{10 * x + t / 10:g} %"}]}
        for x in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35) for t in (30, 60)
    ],
}


@pytest.fixture
def grid_db(db):  # type: ignore[no-untyped-def]
    assert load(db, GRID, file="grid.yaml").status == "added"
    return db


def _ids(df: pd.DataFrame) -> list[str]:
    return sorted(df["sample_id"].tolist())


def test_composition_range_is_inclusive_with_tolerance(grid_db) -> None:  # type: ignore[no-untyped-def]
    # 0.1 and 0.3 are not exact in binary: stored and typed values may differ in the last digit
    s = grid_db.samples(params={"x": (0.1, 0.3)})
    assert sorted({round(v, 2) for v in s["x"]}) == [0.1, 0.15, 0.2, 0.25, 0.3]
    assert "g-untimed" in set(s["sample_id"])
    r = grid_db.results(params={"x": (0.1 + 1e-10, 0.3 - 1e-10)})
    assert sorted({round(v, 2) for v in r["params"].map(lambda d: d["x"])}) == [0.1, 0.15, 0.2, 0.25, 0.3]
    assert grid_db.samples(params={"x": (0.3 + 1e-6, None)})["x"].round(2).tolist() == [0.35, 0.35]


def test_equality_open_bounds_and_text_values(grid_db) -> None:  # type: ignore[no-untyped-def]
    assert _ids(grid_db.samples(params={"x": 0.15})) == ["g-x0.15-30", "g-x0.15-60"]
    assert grid_db.samples(params={"x": 0.151}).empty
    assert len(grid_db.samples(process={"milling_time_min": (None, 45)})) == 8
    assert len(grid_db.samples(process={"milling_time_min": (45, None)})) == 8
    # a sample without the parameter never matches a filter on it
    assert "g-untimed" not in set(grid_db.samples(process={"milling_time_min": (0, None)})["sample_id"])
    # text values compare as text; a numeric filter on a text parameter matches nothing (no error)
    assert len(grid_db.samples(process={"aging_atmosphere": "N2"})) == 8
    assert grid_db.samples(process={"aging_atmosphere": (0, 10)}).empty
    assert grid_db.results(process={"aging_atmosphere": (0, 10)}).empty


def test_filters_combine_and_parse_from_text(grid_db) -> None:  # type: ignore[no-untyped-def]
    df = grid_db.select("family=FAMAPbI3,x>=0.2,milling_time_min<=30,quantity=plqy,value>4")
    expected = sorted(f"g-x{x:.2f}-30" for x in (0.2, 0.25, 0.3, 0.35) if 10 * x + 3 > 4)
    assert _ids(df) == expected


def test_limit_runs_in_sql_in_stored_order(grid_db) -> None:  # type: ignore[no-untyped-def]
    full = grid_db.results(quantity="plqy")
    part = grid_db.results(quantity="plqy", limit=3)
    assert part["result_id"].tolist() == full["result_id"].tolist()[:3]
    # the limit applies after the composition filter (not to the first rows of the table)
    lim = grid_db.samples(params={"x": (0.3, None)}, limit=2)
    assert lim["sample_id"].tolist() == ["g-x0.30-30", "g-x0.30-60"]
    assert len(grid_db.samples(limit=5)) == 5


@hsettings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lo=st.floats(-0.1, 0.45), width=st.floats(0, 0.5))
def test_sql_range_matches_the_python_rule(grid_db, lo: float, width: float) -> None:  # type: ignore[no-untyped-def]
    hi = lo + width
    every = grid_db.samples()
    want = sorted(every.loc[(every["x"] >= lo - 1e-9) & (every["x"] <= hi + 1e-9), "sample_id"])
    assert _ids(grid_db.samples(params={"x": (lo, hi)})) == want


# --- series, inferred, outcome, ingredients -------------------------------------------------------


def load_story(db) -> None:  # type: ignore[no-untyped-def]
    """DOC plus: a series of the two x=0.8 samples with a finding of its own, inferred flags on a
    synthesis, a step, a sample, a measurement and a result, an outcome, a creator, and a sample
    that is made from another sample."""
    doc = copy.deepcopy(DOC)
    doc["syntheses"].append({"id": "t-two-stage", "family": "FAMAPbI3", "params": {"x": 0.8},
                             "steps": [{"kind": "mill", "duration": "10 min"}]})
    doc["samples"].append({"id": "t-two-stage-s", "synthesis": "t-two-stage"})
    assert load(db, doc).status == "added"
    with db.transaction() as s:
        sid = dict(s.execute(select(M.Sample.key, M.Sample.id)).all())
        src = s.scalar(select(M.Source.id).where(M.Source.key == "xiao2025"))
        fam = s.scalar(select(M.Family.id).where(M.Family.slug == "FAMAPbI3"))
        se = M.Series(key="x08-storage", title="storage of FA0.8MA0.2PbI3", family_id=fam, source_id=src,
                      locator="Fig. 2", provenance="literature", content_hash="h")
        s.add(se)
        s.flush()
        s.add_all([M.SeriesMember(series_id=se.id, sample_id=sid["t-x0.8-90min"], position=0),
                   M.SeriesMember(series_id=se.id, sample_id=sid["t-x0.8-20h"], position=1)])
        m = M.Measurement(key="x08-series-finding", series_id=se.id, material_id=None, technique="pxrd",
                          conditions={}, source_id=src, locator="Fig. 2e", provenance="literature", content_hash="h")
        s.add(m)
        s.flush()
        s.add(M.Result(measurement_id=m.id, quantity="phases_present", text="α phase stays"))
        s.execute(update(M.Synthesis).where(M.Synthesis.key == "t-x0.4")
                  .values(inferred=True, inferred_reason="mill settings as in the Methods"))
        s.execute(update(M.ProcessStep).where(M.ProcessStep.position == 2)
                  .values(inferred=True, inferred_reason="storage time read off the figure"))
        s.execute(update(M.Sample).where(M.Sample.key == "t-x0.8-20h")
                  .values(outcome="ok", created_by="alice"))
        s.execute(update(M.Measurement).where(M.Measurement.key == "t-dft")
                  .values(inferred=True, inferred_reason="path assigned by us"))
        r = s.scalars(select(M.Result).where(M.Result.quantity == "xrd_peak").order_by(M.Result.id)).first()
        r.inferred, r.inferred_reason = True, "peak position from the digitised pattern"
        two = s.scalar(select(M.Synthesis.id).where(M.Synthesis.key == "t-two-stage"))
        s.add(M.SynthesisPrecursor(synthesis_id=two, sample_id=sid["t-x0.8-90min"], role="precursor", mass_mg=100.0))


@pytest.fixture
def story_db(db):  # type: ignore[no-untyped-def]
    load_story(db)
    return db


def test_series_findings_are_not_results_of_a_sample(story_db) -> None:  # type: ignore[no-untyped-def]
    r = story_db.results(quantity="phases_present")
    row = r[r["series_id"] == "x08-storage"].iloc[0]
    assert pd.isna(row["sample_id"]) and row["family"] == "FAMAPbI3" and row["text"] == "α phase stays"
    for sample in ("t-x0.8-20h", "t-x0.8-90min"):
        assert "x08-storage" not in set(story_db.results(sample=sample)["series_id"].dropna())
    # the series filter: the series' own findings and the results of its samples
    by_series = story_db.results(series="x08-storage")
    assert set(by_series["sample_id"].dropna()) == {"t-x0.8-20h", "t-x0.8-90min"}
    assert (by_series["series_id"] == "x08-storage").sum() == 1
    assert _ids(story_db.samples(series="x08-storage")) == ["t-x0.8-20h", "t-x0.8-90min"]
    assert parse_query("series=x08-storage") == {"series": ["x08-storage"]}


def test_inferred_flags_travel_to_queries_and_export(story_db) -> None:  # type: ignore[no-untyped-def]
    r = story_db.results()
    flagged = r[r["inferred"]].set_index("quantity")
    # a result, a measurement, and a synthesis two levels up are each enough
    assert flagged.loc["migration_barrier", "inferred_reason"] == "path assigned by us"
    assert flagged.loc["steady_state_time", "inferred_reason"] == "mill settings as in the Methods"
    assert "peak position from the digitised pattern" in set(flagged["inferred_reason"])
    clean = story_db.results(inferred=False)
    assert not clean["inferred"].any() and len(clean) == len(r) - len(flagged)
    assert len(story_db.select("inferred=true")) == len(flagged)
    s = story_db.samples()
    assert set(s.loc[s["inferred"], "sample_id"]) == {"t-x0.4-120min"}
    assert "t-x0.4-120min" not in set(story_db.samples(inferred=False)["sample_id"])
    ex = tidy_results(story_db)
    assert list(ex.columns) == LEADING + TRAILING
    assert {"series_id", "inferred", "inferred_reason"} <= set(TRAILING)
    assert ex["inferred"].sum() == len(flagged)
    assert set(ex.loc[ex["series_id"].notna(), "series_id"]) == {"x08-storage"}


def test_sample_story_tells_what_is_inferred_and_the_series(story_db) -> None:  # type: ignore[no-untyped-def]
    st_ = story_db.sample("t-x0.8-20h")
    assert (st_["outcome"], st_["created_by"], st_["inferred"]) == ("ok", "alice", False)
    steps = {s["position"]: s for s in st_["synthesis"]["steps"]}
    assert steps[2]["inferred"] and steps[2]["inferred_reason"] == "storage time read off the figure"
    assert not steps[1]["inferred"]
    res = [r for m in st_["measurements"] for r in m["results"] if r["inferred"]]
    assert [r["inferred_reason"] for r in res] == ["peak position from the digitised pattern"]
    (series,) = st_["series"]
    assert series["title"] == "storage of FA0.8MA0.2PbI3" and series["samples"] == ["t-x0.8-90min", "t-x0.8-20h"]
    assert series["others"] == ["t-x0.8-90min"]
    assert [r["text"] for m in series["measurements"] for r in m["results"]] == ["α phase stays"]
    # the series finding is not one of the sample's measurements
    assert "x08-series-finding" not in {m["id"] for m in st_["measurements"]}
    two = story_db.sample("t-two-stage-s")
    (ing,) = two["synthesis"]["precursors"]
    assert (ing["sample_id"], ing["chemical"], ing["formula"]) == ("t-x0.8-90min", None, "FA0.8MA0.2PbI3")
    inferred_syn = story_db.sample("t-x0.4-120min")["synthesis"]
    assert inferred_syn["inferred"] and inferred_syn["inferred_reason"] == "mill settings as in the Methods"


def test_unknown_filters_are_named(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match="unknown filter.*colour"):
        db.samples(colour="red")
    with pytest.raises(QueryError, match="search"):
        db.results(search="FA")


def test_a_loaded_record_with_flags_series_and_ingredients_reads_back(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same through the loader: a record file with inferred values, a series and a sample ingredient."""
    import yaml
    from test_ingest_provenance import DOC as FLAGGED

    from ingest.pipeline import ingest_paths

    path = tmp_path / "rec.yaml"
    path.write_text(yaml.safe_dump(FLAGGED, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert ingest_paths(db, [path], progress=False).ok
    trend = db.results(quantity="trend").iloc[0]
    assert trend["series_id"] == "sinter-series" and pd.isna(trend["sample_id"])
    plqy = db.results(quantity="plqy").iloc[0]
    assert plqy["inferred"] and plqy["inferred_reason"] == "value given for the series; assigned to X = 0.25"
    assert db.results(quantity="plqy", inferred=False).empty
    s = db.samples().set_index("sample_id")
    assert s.loc["comp-0.05-s", "outcome"] == "amorphous" and s.loc["comp-0.05-s", "inferred"]
    assert s["created_by"].notna().all()
    story = db.sample("comp-0.25-s")
    assert [p["sample_id"] for p in story["synthesis"]["precursors"]] == ["cspbi3-milled"]
    assert story["series"][0]["others"] == ["comp-0.05-s"]
    assert [st["inferred"] for st in story["synthesis"]["steps"]] == [False, True]
