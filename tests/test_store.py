"""The relational store: loading, idempotency, updates with history, atomicity, queries, export."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.errors import IngestError, IngestErrors
from ingest.load import array_row, load_prepared
from ingest.pipeline import load_one
from ingest.records import Document
from ingest.validate import prepare
from matdb import models as M
from matdb.arrays import ArrayData
from matdb.export import LEADING
from matdb.query import QueryError, parse_query

DOI = "10.1038/s41467-025-56571-w"

DOC = {
    "matdb": 1,
    "source": {"key": "xiao2025", "kind": "publication", "doi": DOI, "title": "TLIS", "year": 2025},
    "chemicals": [{"name": "PbI2", "formula": "PbI2", "purity": "99.99%"},
                  {"name": "FAI", "formula": "CH5N2I"}, {"name": "MAI", "formula": "CH6NI"}],
    "syntheses": [
        {
            "id": "t-x0.8", "family": "FAMAPbI3", "params": {"x": 0.8},
            "mill": {"model": "Retsch MM400", "type": "mixer", "frequency": "20 Hz",
                     "jar_material": "quartz", "jar_volume": "12 mL"},
            "atmosphere": "N2",
            "precursors": [{"chemical": "FAI", "amount": "0.8 mmol"}, {"chemical": "MAI", "amount": "0.2 mmol"},
                           {"chemical": "PbI2", "amount": "461.0 mg"}],
            "steps": [{"kind": "mill", "duration": "90 min", "frequency": "20 Hz"},
                      {"kind": "store", "duration": "20 h", "atmosphere": "N2"}],
            "locator": "Methods",
        },
        {
            "id": "t-x0.4", "family": "FAMAPbI3", "params": {"x": 0.4},
            "steps": [{"kind": "mill", "duration": "120 min"}],
        },
    ],
    "samples": [
        {"id": "t-x0.8-90min", "synthesis": "t-x0.8", "after_step": 1, "label": "after 90 min milling"},
        {"id": "t-x0.8-20h", "synthesis": "t-x0.8", "label": "after 90 min milling + 20 h storage"},
        {"id": "t-x0.4-120min", "synthesis": "t-x0.4"},
    ],
    "measurements": [
        {"id": "t-x0.8-tlis", "sample": "t-x0.8-90min", "technique": "tlis_reflectance", "locator": "Fig. 2b",
         "conditions": {"integration_time": "100 ms"},
         "results": [{"quantity": "steady_state_time", "value": "59 min", "approximate": True}]},
        {"sample": "t-x0.8-20h", "technique": "pxrd", "locator": "Fig. 2e",
         "results": [{"quantity": "xrd_peak", "value": "13.9 deg", "label": "alpha"},
                     {"quantity": "xrd_peak", "value": "28.1 deg", "label": "alpha"},
                     {"quantity": "phases_present", "text": "α-FA0.8MA0.2PbI3"}]},
        {"id": "t-x0.4-tlis", "sample": "t-x0.4-120min", "technique": "tlis_reflectance", "locator": "Fig. S2b",
         "results": [{"quantity": "steady_state_time", "value": 60, "unit": "min"}]},
        {"id": "t-dft", "family": "CsNaAgBiCl6", "params": {"y": 0.9}, "technique": "dft", "locator": "Fig. 5d",
         "results": [{"quantity": "migration_barrier", "value": "29.7 kcal/mol", "label": "path 1 (Na)"}]},
    ],
}


def load(db, doc: dict, *, update: bool = False, file: str = "doc.yaml"):
    prep = prepare(Document.model_validate(doc), file, known_families=db.families(),
                   known_quantities=db.quantities())
    return load_one(db, prep, update=update)


def test_load_counts_and_query(db) -> None:
    out = load(db, DOC)
    assert out.status == "added", out.reason
    counts = db.table_counts()
    assert counts["synthesis"] == 2
    assert counts["sample"] == 3
    assert counts["measurement"] == 4
    assert counts["result"] == 6
    assert counts["process_step"] == 3
    assert counts["synthesis_precursor"] == 3

    df = db.results(quantity="steady_state_time")
    assert sorted(df["value"]) == [59.0, 60.0]
    df = db.select("family=FAMAPbI3,x>=0.5,quantity=steady_state_time")
    assert df["sample_id"].tolist() == ["t-x0.8-90min"]
    assert bool(df["approximate"].iloc[0]) is True
    assert df["source_locator"].iloc[0] == "Fig. 2b"
    assert df["source_doi"].iloc[0] == DOI
    assert df["provenance"].iloc[0] == "literature"


def test_process_parameters_follow_the_steps(db) -> None:
    load(db, DOC)
    s = db.samples(family="FAMAPbI3").set_index("sample_id")
    assert s.loc["t-x0.8-90min", "milling_time_min"] == pytest.approx(90)
    assert pd.isna(s.loc["t-x0.8-90min", "aging_time_h"])
    assert s.loc["t-x0.8-20h", "aging_time_h"] == pytest.approx(20)
    assert s.loc["t-x0.8-20h", "milling_frequency_hz"] == pytest.approx(20)
    assert s.loc["t-x0.4-120min", "milling_time_min"] == pytest.approx(120)
    # filters on process parameters
    q = db.samples(process={"aging_time_h": (10, None)})
    assert q["sample_id"].tolist() == ["t-x0.8-20h"]


def test_unit_conversion_keeps_reported_value(db) -> None:
    load(db, DOC)
    r = db.results(quantity="migration_barrier").iloc[0]
    assert r["unit"] == "eV"
    assert r["value"] == pytest.approx(29.7 * 0.0433641, rel=1e-5)
    assert (r["reported_value"], r["reported_unit"]) == ("29.7", "kcal/mol")
    assert r["sample_id"] is None or pd.isna(r["sample_id"])
    assert r["family"] == "CsNaAgBiCl6"


def test_export_columns_and_params(db, tmp_path: Path) -> None:
    load(db, DOC)
    from matdb.export import export

    n = export(db, tmp_path / "out.csv")
    df = pd.read_csv(tmp_path / "out.csv")
    assert n == len(df) == 6
    assert list(df.columns[: len(LEADING)]) == LEADING
    row = df[df["sample_id"] == "t-x0.8-90min"].iloc[0]
    assert json.loads(row["params"]) == {"x": 0.8, "milling_time_min": 90.0, "milling_frequency_hz": 20.0,
                                         "atmosphere": "N2"}
    assert set(df["provenance"]) == {"literature"}
    n = export(db, tmp_path / "out.parquet")
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == n


def test_loading_twice_changes_nothing(db) -> None:
    assert load(db, DOC).status == "added"
    before = db.table_counts()
    again = load(db, DOC)
    assert again.status == "unchanged"
    after = db.table_counts()
    assert {k: v for k, v in after.items() if k != "ingested_file"} == \
        {k: v for k, v in before.items() if k != "ingested_file"}


def test_changed_content_needs_update_and_keeps_history(db) -> None:
    load(db, DOC)
    changed = copy.deepcopy(DOC)
    changed["measurements"][0]["results"][0]["value"] = "61 min"
    refused = load(db, changed)
    assert refused.status == "rejected"
    assert "t-x0.8-tlis" in refused.reason and "--update" in refused.reason
    assert db.results(quantity="steady_state_time", sample="t-x0.8-90min")["value"].tolist() == [59.0]
    ok = load(db, changed, update=True)
    assert ok.status == "updated"
    assert db.results(quantity="steady_state_time", sample="t-x0.8-90min")["value"].tolist() == [61.0]
    with db.session() as s:
        versions = s.query(M.RecordVersion).filter_by(entity="measurement", key="t-x0.8-tlis").all()
        assert len(versions) == 1
        assert versions[0].content["results"][0]["value"] == 59.0


def test_failing_file_writes_nothing(db) -> None:
    bad = copy.deepcopy(DOC)
    bad["measurements"].append({"sample": "no-such-sample", "technique": "plqy",
                                "results": [{"quantity": "plqy", "value": "5 %"}]})
    before = db.table_counts()
    out = load(db, bad)
    assert out.status == "rejected"
    assert "unknown sample 'no-such-sample'" in out.reason
    assert db.table_counts() == before


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("syntheses", 0, "params"), {"x": 1.3}, r"syntheses\[0\] \(t-x0.8\).*params.x.*outside the range"),
        (("syntheses", 0, "family"), "FAPbI4", r"unknown family 'FAPbI4'"),
        (("syntheses", 0, "steps", 0, "duration"), "-5 min", r"steps\[0\].*duration.*below the physical minimum"),
        (("measurements", 0, "results", 0, "value"), "59 nm", r"cannot convert nm to min"),
        (("measurements", 0, "results", 0, "quantity"), "plqy_typo", r"unknown quantity 'plqy_typo'"),
        (("measurements", 2, "results", 0), {"quantity": "plqy", "value": "120 %"}, r"above the physical maximum 100"),
        (("samples", 1, "id"), "t-x0.8-90min", r"duplicate sample id 't-x0.8-90min'"),
        (("syntheses", 0, "precursors", 0, "amount"), "3 parsecs", r"neither a mass nor an amount"),
    ],
)
def test_bad_input_names_record_and_field(db, path: tuple, value: object, match: str) -> None:
    bad = copy.deepcopy(DOC)
    node = bad
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    before = db.table_counts()
    with pytest.raises(IngestError, match=match) as info:
        prepare(Document.model_validate(bad), "bad.yaml", known_families=db.families())
    assert "bad.yaml" in str(info.value)
    assert db.table_counts() == before


def test_all_errors_are_collected(db) -> None:
    bad = copy.deepcopy(DOC)
    bad["syntheses"][0]["params"] = {"x": 2}
    bad["measurements"][2]["results"][0] = {"quantity": "plqy", "value": "-3 %"}
    with pytest.raises(IngestErrors) as info:
        prepare(Document.model_validate(bad), "bad.yaml")
    assert len(info.value.errors) == 2


def test_arrays_round_trip(db) -> None:
    load(db, DOC)
    rng = np.random.default_rng(0)
    wl, t = np.arange(340.0, 1001.0), np.linspace(0, 90, 50)
    vals = rng.poisson(1000, size=(t.size, wl.size)).astype(float)
    ref = np.full(wl.size, 4000.0)
    data = ArrayData("tlis_reflectance", vals, {"time": (t, "min"), "wavelength": (wl, "nm")}, "counts", ref,
                     {"mode": "reflectance"})
    with db.transaction() as s:
        mid = s.query(M.Measurement.id).filter_by(key="t-x0.8-tlis").scalar()
        s.add(array_row(mid, 0, data))
    back = db.array("t-x0.8-tlis")
    np.testing.assert_array_equal(back["values"], vals)
    np.testing.assert_array_equal(back["axes"]["wavelength"][0], wl)
    np.testing.assert_array_equal(back["reference"], ref)
    assert back["axes"]["time"][1] == "min"


def test_sample_story(db) -> None:
    load(db, DOC)
    story = db.sample("t-x0.8-20h")
    assert story["formula"] == "FA0.8MA0.2PbI3"
    assert [s["kind"] for s in story["synthesis"]["steps"]] == ["mill", "store"]
    assert story["synthesis"]["mill_model"] == "Retsch MM400"
    assert story["synthesis"]["jar_volume_ml"] == pytest.approx(12)
    pbi2 = next(p for p in story["synthesis"]["precursors"] if p["chemical"] == "PbI2")
    assert pbi2["mass_mg"] == pytest.approx(461.0)
    assert story["source"]["url"] == f"https://doi.org/{DOI}"
    assert {r["quantity"] for m in story["measurements"] for r in m["results"]} == {"xrd_peak", "phases_present"}
    with pytest.raises(QueryError, match="no sample 'nope'"):
        db.sample("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("family=FAMAPbI3,x>=0.4", {"family": ["FAMAPbI3"], "params": {"x": (0.4, None)}}),
        ("quantity=plqy,value>10,value<50", {"quantity": ["plqy"], "value": (10.0, 50.0)}),
        ("milling_time_min<=60", {"process": {"milling_time_min": (None, 60.0)}}),
        ("z=2.5", {"params": {"z": 2.5}}),
        ("", {}),
    ],
)
def test_parse_query(text: str, expected: dict) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize("text", ["family>3", "x>abc", "just words"])
def test_parse_query_errors(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text)


def test_query_unknown_filter(db) -> None:
    with pytest.raises(QueryError, match="unknown filter"):
        db.results(colour="red")


def test_user_family_and_quantity_in_a_file(db) -> None:
    doc = {
        "matdb": 1,
        "source": {"key": "nb1", "kind": "notebook"},
        "quantities": [{"name": "hardness", "unit": "GPa", "min": 0}],
        "families": [{"slug": "CsRbPbBr3", "structure": "ABX3", "parameters": {"a": {"min": 0, "max": 1}},
                      "sites": {"A": {"Cs": "a", "Rb": "1-a"}, "B": {"Pb": 1}, "X": {"Br": 1}}}],
        "samples": [{"id": "nb1-s1", "family": "CsRbPbBr3", "params": {"a": 0.3}}],
        "measurements": [{"sample": "nb1-s1", "technique": "other",
                          "results": [{"quantity": "hardness", "value": "1.2 GPa"}]}],
    }
    assert load(db, doc).status == "added"
    assert "CsRbPbBr3" in db.families()
    r = db.results(family="CsRbPbBr3").iloc[0]
    assert (r["formula"], r["value"], r["provenance"]) == ("Cs0.3Rb0.7PbBr3", 1.2, "measured")


def test_load_prepared_in_callers_transaction_rolls_back(db) -> None:
    prep = prepare(Document.model_validate(DOC), "doc.yaml")
    before = db.table_counts()
    with pytest.raises(RuntimeError), db.transaction() as s:
        load_prepared(s, prep)
        raise RuntimeError("boom after writing")
    assert db.table_counts() == before


def test_unknown_step_duration_leaves_process_time_unknown(db) -> None:
    doc = copy.deepcopy(DOC)
    doc["syntheses"][1]["steps"] = [{"kind": "mill", "duration": "30 min"}, {"kind": "mill"},
                                    {"kind": "add_reagent", "reagents": [
                                        {"chemical": "FAI", "mol_pct": 80, "role": "additive"},
                                        {"chemical": "MAI", "mol_pct": 80, "role": "additive"}]},
                                    {"kind": "add_reagent", "reagents": [{"chemical": "FAI", "mol_pct": 20}]}]
    load(db, doc)
    proc = db.samples(sample="t-x0.4-120min")["process"].iloc[0]
    assert "milling_time_min" not in proc  # 30 min + unknown is unknown, not 30
    assert proc["additive_mol_pct"] == pytest.approx(100)  # 1:1 pair at 80 mol% counts once, + 20
