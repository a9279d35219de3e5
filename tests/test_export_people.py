"""Exports for people are neutralised against spreadsheet formulas; the machine export is exact.

Formula-looking text (OWASP CSV injection: a leading ``=``, ``+``, ``-``, ``@``, tab or CR) in
stored text results goes verbatim through ``matdb export --format csv|parquet`` and comes back
escaped (``'`` prefix) from the app's CSV downloads, and typed as text (quote prefix, never a
formula) in ``matdb export --format xlsx``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import matdb
from ingest.pipeline import ingest_paths
from matdb.export import FORMULA_START, ExportError, export, formula_like, neutralise, people_csv, write_xlsx
from matdb_app.cli import app
from matdb_app.explore import csv_bytes
from matdb_app.screening_display import download_csv

#: Text a spreadsheet would evaluate (the issue's examples and one per OWASP trigger character).
HOSTILE = ["=1+1", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1",
           '=HYPERLINK("http://x.invalid","y")']


def _record(texts: list[str]) -> dict:
    return {
        "matdb": 1,
        "source": {"key": "inj-nb", "kind": "notebook", "note": "formula-injection test (synthetic)"},
        "samples": [{"id": "inj-s1", "family": "FAMAPbI3", "params": {"x": 0.5}, "provenance": "simulated"}],
        "measurements": [{
            "id": "inj-m1", "sample": "inj-s1", "technique": "pxrd", "provenance": "simulated",
            "results": [{"quantity": "phases_present", "text": t, "label": t} for t in texts]
            + [{"quantity": "pl_peak", "value": 805.5, "unit": "nm", "label": "=2*3"}],
        }],
    }


@pytest.fixture
def hostile_db(db: matdb.Database, tmp_path: Path) -> matdb.Database:
    f = tmp_path / "inj.yaml"
    f.write_text(yaml.safe_dump(_record(HOSTILE)), encoding="utf-8")
    report = ingest_paths(db, [f], progress=False)
    assert report.ok, [e for o in report.files for e in o.errors]
    return db


@pytest.mark.parametrize(("cell", "expected"), [
    ("=1+1", "'=1+1"),
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
    ("-0.5", "-0.5"),  # a plain number stays a number
    ("+3e2", "+3e2"),
    ("FA0.8MA0.2PbI3", "FA0.8MA0.2PbI3"),
    ("a=b", "a=b"),
    ("", ""),
    (1.5, 1.5),
    (None, None),
])
def test_neutralise_escapes_formula_starts_only(cell: object, expected: object) -> None:
    assert neutralise(cell) == expected


@given(st.text(max_size=30))
def test_people_csv_never_starts_a_cell_with_a_formula(text: str) -> None:
    out = people_csv(pd.DataFrame({"t": [text]})).decode("utf-8")
    (cell,) = [row[0] for row in csv.reader(io.StringIO(out, newline=""))][1:]
    assert not formula_like(cell)
    assert cell == (f"'{text}" if formula_like(text) else text)  # the escape is the only change


def test_machine_export_is_an_exact_round_trip(hostile_db: matdb.Database, tmp_path: Path) -> None:
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"out.{fmt}"
        export(hostile_db, path, fmt)
        df = (pd.read_csv(path, keep_default_na=False, na_values=[""]) if fmt == "csv"
              else pd.read_parquet(path))
        assert sorted(df["text"].dropna()) == sorted(HOSTILE), fmt
        assert sorted(df["label"].dropna()) == sorted([*HOSTILE, "=2*3"]), fmt
        assert df.loc[df["quantity"] == "pl_peak", "value"].tolist() == [pytest.approx(805.5)]


def test_app_csv_downloads_are_neutralised(hostile_db: matdb.Database) -> None:
    table = hostile_db.export()
    for download in (csv_bytes, download_csv):
        got = pd.read_csv(io.BytesIO(download(table)), keep_default_na=False, na_values=[""])
        assert sorted(got["text"].dropna()) == sorted(f"'{t}" for t in HOSTILE)
        assert not any(str(v).startswith(FORMULA_START) for col in got for v in got[col].dropna()
                       if formula_like(str(v)))
        assert got.loc[got["quantity"] == "pl_peak", "value"].tolist() == [pytest.approx(805.5)]


def test_xlsx_export_types_text_cells_as_text(hostile_db: matdb.Database, tmp_path: Path) -> None:
    out = tmp_path / "people.xlsx"
    result = CliRunner().invoke(app, ["export", "--db", hostile_db.url, "--out", str(out), "--format", "xlsx"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ws = openpyxl.load_workbook(out).active
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    header = [c.value for c in next(ws.iter_rows())]
    texts = [row[header.index("text")] for row in ws.iter_rows(min_row=2)]
    assert sorted(c.value for c in texts if c.value) == sorted(HOSTILE)  # text kept exactly ...
    assert all(c.quotePrefix and c.data_type == "s" for c in texts if c.value)  # ... and marked as text
    values = [row[header.index("value")] for row in ws.iter_rows(min_row=2)]
    assert [c.value for c in values if c.value is not None] == [pytest.approx(805.5)]  # numbers stay numbers
    assert [c.data_type for c in values if c.value is not None] == ["n"]


def test_xlsx_refuses_a_cell_it_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"row 2, column note: 40000 characters"):
        write_xlsx(pd.DataFrame({"note": ["x" * 40_000]}), tmp_path / "big.xlsx")
