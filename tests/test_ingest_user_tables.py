"""Tables (CSV/XLSX) for user-defined families and quantities, and the outcome column.

A lab defines its own family (the triple cation Cs_aFA_bMA_{1-a-b}PbI3 with parameters a, b) and
quantity (instability_index) in a record file; its tables then name the family's parameters and
the quantity as columns, and record failed syntheses with an ``outcome`` column. The family may be
in the database already or come from a record file of the same ingest.
"""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
import yaml
from sqlalchemy import select

import matdb
from ingest.pipeline import ingest_paths
from matdb import models as M

FAMILY = {
    "slug": "CsFAMAPbI3",
    "name": "Cs_aFA_bMA_{1-a-b}PbI3",
    "structure": "ABX3",
    "parameters": {
        "a": {"min": 0, "max": 1, "description": "Cs fraction"},
        "b": {"min": 0, "max": 1, "description": "FA fraction"},
    },
    "sites": {"A": {"Cs": "a", "FA": "b", "MA": "1-a-b"}, "B": {"Pb": 1}, "X": {"I": 1}},
    "precursors": [
        {"name": "CsI", "formula": "CsI", "amount": "a"},
        {"name": "FAI", "formula": "CH5N2I", "amount": "b"},
        {"name": "MAI", "formula": "CH6NI", "amount": "1-a-b"},
        {"name": "PbI2", "formula": "PbI2", "amount": 1},
    ],
}
QUANTITY = {
    "name": "instability_index",
    "unit": "",
    "min": 0,
    "direction": "min",
    "description": "lower is more stable (test values, not measured)",
}

HEADER = ["sample_id", "family", "a", "b", "instability_index", "outcome"]
ROWS = [
    ["tc-1", "CsFAMAPbI3", 0.1, 0.8, 1.5e6, "ok"],
    ["tc-2", "CsFAMAPbI3", 0.0, 1.0, 4.2e6, None],
    ["tc-3", "CsFAMAPbI3", 0.3, 0.0, None, "wrong_phase"],  # failed: nothing to measure
    ["tc-4", "CsFAMAPbI3", 0.2, 0.5, None, None],  # an unfilled plan row: no sample
]


def family_file(path: Path, *, quantity: bool = True) -> Path:
    doc = {
        "matdb": 1,
        "source": {"key": "lab-nb", "kind": "notebook", "note": "test family definition"},
        "families": [FAMILY],
        "quantities": [QUANTITY] if quantity else [],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def table(path: Path, header: list[str] = HEADER, rows: list[list[object]] = ROWS) -> Path:
    if path.suffix == ".xlsx":
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(header)
        for r in rows:
            ws.append(r)
        wb.save(path)
    else:
        lines = [",".join(header)] + [",".join("" if c is None else str(c) for c in r) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    return path


def _stored(db: matdb.Database) -> dict[str, tuple[dict[str, float], str | None, list[float]]]:
    out = {}
    with db.session() as s:
        for sa in s.scalars(select(M.Sample).where(M.Sample.key.like("tc-%"))):
            mat = s.get(M.Material, sa.material_id)
            vals = list(
                s.scalars(
                    select(M.Result.value)
                    .join(M.Measurement, M.Result.measurement_id == M.Measurement.id)
                    .where(M.Measurement.sample_id == sa.id, M.Result.quantity == "instability_index")
                )
            )
            out[sa.key] = (mat.params, sa.outcome, vals)
    return out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_table_of_a_family_already_in_the_database(db: matdb.Database, tmp_path: Path, suffix: str) -> None:
    assert ingest_paths(db, [family_file(tmp_path / "family.yaml")], progress=False).ok
    report = ingest_paths(db, [table(tmp_path / f"runs{suffix}")], progress=False)
    assert report.ok, report.as_rows()
    got = _stored(db)
    assert set(got) == {"tc-1", "tc-2", "tc-3"}
    assert got["tc-1"] == ({"a": pytest.approx(0.1), "b": pytest.approx(0.8)}, "ok", [pytest.approx(1.5e6)])
    assert got["tc-2"][1] is None and got["tc-2"][2] == [pytest.approx(4.2e6)]
    assert got["tc-3"] == ({"a": pytest.approx(0.3), "b": pytest.approx(0.0)}, "wrong_phase", [])


def test_family_and_table_in_the_same_ingest(db: matdb.Database, tmp_path: Path) -> None:
    # the table sorts before the record file; the record file is still read and loaded first
    table(tmp_path / "a-runs.xlsx")
    family_file(tmp_path / "z-family.yaml")
    report = ingest_paths(db, [tmp_path], progress=False)
    assert report.ok, report.as_rows()
    assert [Path(f.path).name for f in report.files] == ["z-family.yaml", "a-runs.xlsx"]
    assert set(_stored(db)) == {"tc-1", "tc-2", "tc-3"}


def test_outcome_only_table_of_a_builtin_family(db: matdb.Database, tmp_path: Path) -> None:
    path = table(
        tmp_path / "failed.csv",
        ["sample_id", "family", "x", "outcome", "note"],
        [["fm-1", "FAMAPbI3", 0.9, "decomposed", "turned yellow"], ["fm-2", "FAMAPbI3", 1.0, "", ""]],
    )
    assert ingest_paths(db, [path], progress=False).ok
    with db.session() as s:
        assert {k: o for k, o in s.execute(select(M.Sample.key, M.Sample.outcome))} == {"fm-1": "decomposed"}


def _rejected(db: matdb.Database, paths: list[Path]) -> str:
    before = db.table_counts()
    report = ingest_paths(db, paths, progress=False)
    assert not report.ok
    bad = [f for f in report.files if f.status == "rejected"]
    assert len(bad) == 1 and "\n" not in bad[0].reason
    assert db.table_counts() == before or len(paths) > 1
    return bad[0].reason


@pytest.mark.parametrize(
    ("header", "row", "pattern"),
    [
        (
            HEADER,
            ["tc-9", "CsFAMAPbI3", 0.1, 0.8, 1.0, "exploded"],
            r"line 2.*field 'outcome'.*one of ok, no_perovskite",
        ),
        (HEADER, ["tc-9", "CsFAMAPbI3", 0.6, 0.6, 1.0, "ok"], r"line 2.*occupancy of MA on site A is -0.2"),
        (HEADER, ["tc-9", "CsFAMAPbI3", 1.2, 0.0, 1.0, "ok"], r"line 2.*field 'params.a'"),
        (HEADER, ["tc-9", "CsFAMAPbI3", 0.1, 0.8, -3.0, "ok"], r"line 2.*field 'instability_index'.*minimum 0"),
        (HEADER, ["tc-9", "CsFAMAPbI3", 0.1, 0.8, "high", "ok"], r"line 2.*field 'instability_index'.*not a number"),
        (
            ["sample_id", "family", "a", "c", "instability_index"],
            ["tc-9", "CsFAMAPbI3", 0.1, 0.8, 1.0],
            r"field 'c'.*unknown column 'c'",
        ),
    ],
)
def test_bad_user_family_rows_are_located(
    db: matdb.Database, tmp_path: Path, header: list[str], row: list[object], pattern: str
) -> None:
    assert ingest_paths(db, [family_file(tmp_path / "family.yaml")], progress=False).ok
    reason = _rejected(db, [table(tmp_path / "bad.csv", header, [row])])
    assert re.search(pattern, reason), reason


def test_parameter_columns_of_an_unknown_family_are_unknown_columns(db: matdb.Database, tmp_path: Path) -> None:
    reason = _rejected(db, [table(tmp_path / "orphan.csv")])
    assert re.search(r"orphan.csv, line 1, field 'a': unknown column 'a'", reason), reason


def test_a_rejected_family_file_leaves_its_table_unknown(db: matdb.Database, tmp_path: Path) -> None:
    bad = dict(FAMILY, sites={"A": {"Cs": "c", "FA": "b", "MA": "1-c-b"}, "B": {"Pb": 1}, "X": {"I": 1}})  # c?
    (tmp_path / "family.yaml").write_text(yaml.safe_dump({"matdb": 1, "families": [bad], "quantities": [QUANTITY]}))
    table(tmp_path / "runs.csv")
    before = db.table_counts()
    report = ingest_paths(db, [tmp_path], progress=False)
    assert [f.status for f in report.files] == ["rejected", "rejected"]
    assert "unknown column 'a'" in report.files[1].reason
    assert db.table_counts() == before
