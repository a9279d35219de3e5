"""What a record says about its own standing: inferred values with reasons, failed syntheses
(outcomes), series of samples with their own findings, samples used as ingredients (two-stage
routes), the user who loaded them, and physical bounds on every value."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

import matdb
from ingest.pipeline import ingest_paths
from matdb import models as M

DOI = "10.1038/s41467-023-43247-6"

DOC: dict[str, Any] = {
    "matdb": 1,
    "source": {"key": "li2023", "kind": "publication", "doi": DOI},
    "syntheses": [
        {"id": "cspbi3", "family": "CsPbI3-agZIF62", "params": {"X": 1.0},
         "mill": {"type": "planetary", "frequency": "800 rpm"},
         "steps": [{"kind": "mill", "duration": "1 h"}], "locator": "Methods"},
        {"id": "comp-0.25", "family": "CsPbI3-agZIF62", "params": {"X": 0.25},
         "precursors": [{"sample": "cspbi3-milled", "amount": "25 mg"}],
         "steps": [{"kind": "mill", "duration": "5 min"},
                   {"kind": "sinter", "temperature": "300 degC", "duration": "10 min", "inferred": True,
                    "inferred_reason": "the text states 300 degC only for the X = 0.40 panels"}]},
    ],
    "samples": [
        {"id": "cspbi3-milled", "synthesis": "cspbi3"},
        {"id": "comp-0.25-s", "synthesis": "comp-0.25", "outcome": "ok"},
        {"id": "comp-0.05-s", "family": "CsPbI3-agZIF62", "params": {"X": 0.05}, "outcome": "amorphous",
         "inferred": True, "inferred_reason": "composition assumed from the figure legend"},
    ],
    "series": [
        {"id": "sinter-series", "title": "Sintering temperature series", "family": "CsPbI3-agZIF62",
         "samples": ["comp-0.25-s", "comp-0.05-s"], "locator": "Fig. 4"},
    ],
    "measurements": [
        {"id": "series-trend", "series": "sinter-series", "technique": "pl", "locator": "Fig. 4c",
         "results": [{"quantity": "trend", "text": "sintering above 300 °C reduces PL"}]},
        {"id": "comp-plqy", "sample": "comp-0.25-s", "technique": "plqy", "locator": "main text",
         "results": [{"quantity": "plqy", "value": "2.17 %", "inferred": True,
                      "inferred_reason": "value given for the series; assigned to X = 0.25"}]},
    ],
}


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "rec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p


def _counts(db: matdb.Database) -> dict[str, int]:
    return db.table_counts()


def test_inferred_outcomes_series_and_ingredients_are_stored(db: matdb.Database, tmp_path: Path) -> None:
    report = ingest_paths(db, [_write(tmp_path, DOC)], progress=False)
    assert report.ok, report.as_rows()
    with db.session() as s:
        step = s.scalar(select(M.ProcessStep).where(M.ProcessStep.kind == "sinter"))
        assert step.inferred and "X = 0.40" in step.inferred_reason
        failed = s.scalar(select(M.Sample).where(M.Sample.key == "comp-0.05-s"))
        assert failed.outcome == "amorphous" and failed.inferred
        assert failed.created_by  # the user who loaded it
        ok = s.scalar(select(M.Sample).where(M.Sample.key == "comp-0.25-s"))
        assert ok.outcome == "ok" and not ok.inferred and ok.inferred_reason is None
        # the composite's history includes the perovskite's own milling: its ingredient is that sample
        ingredient = s.execute(
            select(M.Sample.key).join(M.SynthesisPrecursor, M.SynthesisPrecursor.sample_id == M.Sample.id)
            .join(M.Synthesis, M.SynthesisPrecursor.synthesis_id == M.Synthesis.id)
            .where(M.Synthesis.key == "comp-0.25")).scalar_one()
        assert ingredient == "cspbi3-milled"
        members = s.execute(
            select(M.Sample.key).join(M.SeriesMember, M.SeriesMember.sample_id == M.Sample.id)
            .order_by(M.SeriesMember.position)).scalars().all()
        assert members == ["comp-0.25-s", "comp-0.05-s"]
        finding = s.scalar(select(M.Measurement).where(M.Measurement.key == "series-trend"))
        assert finding.sample_id is None and finding.series_id is not None and finding.material_id is None
        plqy = s.scalar(select(M.Result).where(M.Result.quantity == "plqy"))
        assert plqy.inferred and plqy.value == pytest.approx(2.17)
        assert s.scalar(select(M.IngestedFile.created_by)) == failed.created_by


def test_loading_the_same_file_twice_changes_nothing(db: matdb.Database, tmp_path: Path) -> None:
    path = _write(tmp_path, DOC)
    assert ingest_paths(db, [path], progress=False).ok
    before = _counts(db)
    again = ingest_paths(db, [path], progress=False)
    assert [f.status for f in again.files] == ["unchanged"]
    after = _counts(db)
    assert {k: v for k, v in after.items() if k != "ingested_file"} == {
        k: v for k, v in before.items() if k != "ingested_file"}


def test_an_unflagged_record_hashes_as_before_the_flags_existed(db: matdb.Database, tmp_path: Path) -> None:
    """Records without the new fields keep the content hash they had when first stored (re-loading an
    unchanged file after an upgrade is 'unchanged', not a conflict)."""
    from ingest.load import _without_defaults, hashed_json

    d = {"key": "s", "note": None, "inferred": False, "inferred_reason": None, "outcome": None,
         "steps": [{"kind": "mill", "inferred": False, "inferred_reason": None}],
         "precursors": [{"chemical": "PbI2", "sample": None}]}
    old = {"key": "s", "note": None, "steps": [{"kind": "mill"}], "precursors": [{"chemical": "PbI2"}]}
    assert hashed_json(_without_defaults(d))[0] == hashed_json(old)[0]
    flagged = copy.deepcopy(d)
    flagged["inferred"], flagged["inferred_reason"] = True, "assumed"
    assert hashed_json(_without_defaults(flagged))[0] != hashed_json(old)[0]


def _bad(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "pattern"),
    [
        (("samples", 2, "inferred_reason"), _DELETE, r"samples\[2\].*needs 'inferred_reason'"),
        (("samples", 1, "outcome"), "exploded", r"samples\[1\].*outcome"),
        (("series", 0, "samples"), ["comp-0.25-s", "nobody"],
         r"series sinter-series.*field 'samples'.*unknown sample 'nobody'"),
        (("syntheses", 1, "precursors"), [{"sample": "ghost", "amount": "1 mg"}],
         r"synthesis comp-0.25.*unknown sample 'ghost' used as an ingredient"),
        (("syntheses", 1, "precursors"), [{"sample": "cspbi3-milled", "chemical": "CsI"}],
         r"exactly one of 'chemical' or 'sample'"),
        (("measurements", 0, "sample"), "comp-0.25-s", r"'sample' or of a 'series', not both"),
        (("measurements", 0, "series"), "no-such-series", r"unknown series 'no-such-series'"),
        (("syntheses", 1, "steps", 1, "temperature"), "-300 degC", r"below the physical minimum 0 K"),
        (("syntheses", 1, "steps", 1, "temperature"), "-5 K", r"below the physical minimum 0 K"),
        (("syntheses", 1, "steps", 0, "duration"), "-5 min", r"duration.*below the physical minimum 0 min"),
        (("measurements", 1, "results", 0, "value"), "120 %",
         r"plqy = 120 % is above the physical maximum 100"),
    ],
)
def test_bad_records_are_rejected_with_the_field_and_nothing_is_written(
    db: matdb.Database, tmp_path: Path, path: tuple[Any, ...], value: Any, pattern: str
) -> None:
    before = _counts(db)
    report = ingest_paths(db, [_write(tmp_path, _bad(DOC, path, value))], progress=False)
    assert not report.ok
    (outcome,) = report.files
    assert outcome.status == "rejected"
    assert "\n" not in outcome.reason and "Traceback" not in outcome.reason
    assert any(re.search(pattern, str(e)) for e in outcome.errors), outcome.errors
    after = _counts(db)
    assert after == before


def test_queries_by_sample_do_not_return_series_findings(db: matdb.Database, tmp_path: Path) -> None:
    assert ingest_paths(db, [_write(tmp_path, DOC)], progress=False).ok
    for key in ("comp-0.25-s", "comp-0.05-s"):
        rows = db.results(sample=key)
        assert "trend" not in set(rows["quantity"]), f"a series finding was returned as a result of {key}"
    with db.session() as s:
        n = s.scalar(select(func.count()).select_from(M.Result).where(M.Result.quantity == "trend"))
    assert n == 1
