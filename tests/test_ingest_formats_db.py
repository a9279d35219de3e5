"""Every input format goes through ``ingest_paths`` into the database, and what comes back is
what the file holds: arrays read back with ``db.array`` equal the numbers parsed independently
from the file (plain text parsing here, not the matdb readers), tables give their results, a CIF
attached to a measurement is stored verbatim.

Fixtures: tests/data/readers/ (synthetic, labelled simulated; read, never modified); new files
(XLSX, a record with a CIF) are written to tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy import select

from ingest.pipeline import ingest_paths
from matdb import models as M
from matdb.query import arrays_index

DATA = Path(__file__).parent / "data" / "readers"


def _ingest_ok(db, *paths: Path) -> None:
    rep = ingest_paths(db, list(paths), progress=False)
    assert rep.ok, [f.reason for f in rep.files]
    assert {f.status for f in rep.files} == {"added"}, rep.as_rows()


def _only_array(db, kind: str) -> dict:
    idx = arrays_index(db)
    rows = idx[idx["kind"] == kind]
    assert len(rows) == 1, idx[["measurement_id", "kind"]].to_dict("records")
    return db.array(rows["measurement_id"].iloc[0])


def _numeric_lines(path: Path) -> list[list[str]]:
    return [
        ln.split(",")
        for ln in path.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]


def _tlis_matrix(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times (n_t,), wavelengths (n_wl,), counts (n_t, n_wl)) of a tlis_csv file."""
    head, *body = _numeric_lines(path)
    times = np.array([float(t) for t in head[1:]])
    data = np.array([[float(c) for c in row] for row in body])
    return times, data[:, 0], data[:, 1:].T


def _tlis_long(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _head, *body = _numeric_lines(path)
    rows = np.array([[float(c) for c in r] for r in body])
    times, wl = np.unique(rows[:, 0]), np.unique(rows[:, 1])
    vals = np.full((times.size, wl.size), np.nan)
    vals[np.searchsorted(times, rows[:, 0]), np.searchsorted(wl, rows[:, 1])] = rows[:, 2]
    return times, wl, vals


def _two_columns(path: Path) -> tuple[np.ndarray, np.ndarray]:
    _head, *body = _numeric_lines(path)
    a = np.array([[float(c) for c in r] for r in body])
    return a[:, 0], a[:, 1]


def test_record_file_with_tlis_run_reference_and_inline_spectrum(db) -> None:
    _ingest_ok(db, DATA / "document.yaml")
    back = _only_array(db, "tlis_reflectance")
    times, wl, counts = _tlis_matrix(DATA / "run_reflectance.csv")
    np.testing.assert_array_equal(back["values"], counts)
    np.testing.assert_array_equal(back["axes"]["time"][0], times)
    np.testing.assert_array_equal(back["axes"]["wavelength"][0], wl)
    assert (back["axes"]["time"][1], back["axes"]["wavelength"][1]) == ("min", "nm")
    ref_wl, ref = _two_columns(DATA / "run_ref.csv")
    np.testing.assert_array_equal(ref_wl, wl)
    np.testing.assert_array_equal(back["reference"], ref)
    assert back["provenance"] == "simulated"
    inline = _only_array(db, "pl_spectrum")
    np.testing.assert_array_equal(inline["values"], [10.0, 100.0, 12.0])
    np.testing.assert_array_equal(inline["axes"]["wavelength"][0], [780.0, 800.0, 820.0])
    r = db.results(quantity="plqy").iloc[0]
    assert (r["value"], r["uncertainty"], r["sample_id"]) == (
        pytest.approx(4.1),
        pytest.approx(0.3),
        "lab-FAMAPbI3-x0.8-r1",
    )


@pytest.mark.parametrize(
    ("name", "kind", "parse"),
    [
        ("run_pl.csv", "tlis_pl", _tlis_matrix),
        ("run_pl_long.csv", "tlis_pl", _tlis_long),
        ("run_reflectance.csv", "tlis_reflectance", _tlis_matrix),
    ],
)
def test_standalone_tlis_runs(db, name: str, kind: str, parse) -> None:
    _ingest_ok(db, DATA / name)
    back = _only_array(db, kind)
    times, wl, counts = parse(DATA / name)
    np.testing.assert_array_equal(back["values"], counts)
    np.testing.assert_array_equal(back["axes"]["time"][0], times)
    np.testing.assert_array_equal(back["axes"]["wavelength"][0], wl)
    if kind == "tlis_reflectance":
        np.testing.assert_array_equal(back["reference"], _two_columns(DATA / "run_ref.csv")[1])
    s = db.samples()
    assert s["sample_id"].tolist() == [back["meta"].get("sample") or s["sample_id"].iloc[0]]


def test_long_and_matrix_runs_store_the_same_numbers(db) -> None:
    a = _tlis_matrix(DATA / "run_pl.csv")
    b = _tlis_long(DATA / "run_pl_long.csv")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_xy_pattern_with_header_metadata(db) -> None:
    _ingest_ok(db, DATA / "pattern_FAPbI3.xy")
    back = _only_array(db, "pxrd")
    rows = np.array(
        [
            [float(c) for c in ln.split()]
            for ln in (DATA / "pattern_FAPbI3.xy").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")
        ]
    )
    np.testing.assert_array_equal(back["values"], rows[:, 1])
    np.testing.assert_array_equal(back["axes"]["two_theta"][0], rows[:, 0])
    assert db.samples()["sample_id"].tolist() == ["lab-FAMAPbI3-x1.0-r1"]


def _jcamp_xydata(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of an AFFN ##XYDATA=(X++(Y..Y)) block, with XFACTOR/YFACTOR and DELTAX."""
    lines = path.read_text().splitlines()
    hdr = {ln[2:].split("=", 1)[0]: ln.split("=", 1)[1] for ln in lines if ln.startswith("##")}
    yf, dx = float(hdr["YFACTOR"]), float(hdr["DELTAX"])
    start = next(i for i, ln in enumerate(lines) if ln.startswith("##XYDATA")) + 1
    xs, ys = [], []
    for ln in lines[start:]:
        if ln.startswith("##"):
            break
        x0, *yy = (float(v) for v in ln.split())
        xs += [x0 + k * dx for k in range(len(yy))]
        ys += [v * yf for v in yy]
    return np.array(xs), np.array(ys)


def test_jcamp_xydata(db) -> None:
    _ingest_ok(db, DATA / "uvvis_FAMAPbI3.jdx")
    idx = arrays_index(db)
    assert len(idx) == 1
    back = db.array(idx["measurement_id"].iloc[0])
    x, y = _jcamp_xydata(DATA / "uvvis_FAMAPbI3.jdx")
    assert x.size == 101
    np.testing.assert_allclose(back["values"], y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(next(iter(back["axes"].values()))[0], x, rtol=0, atol=1e-9)


def test_jcamp_xypoints_on_an_existing_sample(db) -> None:
    # the .dx names only its sample; the TLIS run (same sample) brings family and params
    _ingest_ok(db, DATA / "run_pl.csv", DATA / "pl_FAPbIBr.dx")
    idx = arrays_index(db)
    assert sorted(idx["kind"]) == ["pl_spectrum", "tlis_pl"]
    assert set(idx["sample_id"]) == {"lab-FAPbIBr-x0.1-r1"}
    back = db.array(idx[idx["kind"] == "pl_spectrum"]["measurement_id"].iloc[0])
    lines = (DATA / "pl_FAPbIBr.dx").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("##XYPOINTS")) + 1
    pts = np.array(
        [
            [float(v) for v in ln.split(",")]
            for ln in lines[start:]
            if ln.strip() and not ln.startswith("##")
        ]
    )
    assert len(pts) == 41
    np.testing.assert_array_equal(back["values"], pts[:, 1])
    np.testing.assert_array_equal(next(iter(back["axes"].values()))[0], pts[:, 0])


def test_wide_csv_table(db) -> None:
    _ingest_ok(db, DATA / "plqy_table.csv")
    df = db.results(quantity="plqy").set_index("sample_id")
    assert df.loc["lab-FAPbIBr-x0.05", "value"] == pytest.approx(5.4)
    assert df.loc["lab-FAPbIBr-x0.05", "uncertainty"] == pytest.approx(0.4)
    peaks = db.results(quantity="pl_peak").set_index("sample_id")["value"]
    assert peaks["lab-FAPbIBr-x0.10"] == pytest.approx(781)
    s = db.samples().set_index("sample_id")
    assert s.loc["lab-FAPbIBr-x0.05", "milling_time_min"] == pytest.approx(30)
    assert set(db.results()["provenance"]) == {"simulated"}


def test_xlsx_table(db, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(
        ["sample_id", "family", "x", "milling_time [min]", "plqy [%]", "pl_peak [nm]", "provenance"]
    )
    ws.append(["xl-1", "FAMAPbI3", 0.8, 90, 3.5, 805, "simulated"])
    ws.append(["xl-2", "FAMAPbI3", 0.4, 60, 1.25, None, "simulated"])
    path = tmp_path / "table.xlsx"
    wb.save(path)
    _ingest_ok(db, path)
    plqy = db.results(quantity="plqy").set_index("sample_id")["value"]
    assert plqy.to_dict() == {"xl-1": pytest.approx(3.5), "xl-2": pytest.approx(1.25)}
    assert db.results(quantity="pl_peak")["sample_id"].tolist() == ["xl-1"]
    s = db.samples().set_index("sample_id")
    assert s.loc["xl-2", "milling_time_min"] == pytest.approx(60)


def test_cif_attached_to_a_calculation(db, tmp_path: Path) -> None:
    shutil.copy(DATA / "CsPbI3_cubic.cif", tmp_path / "CsPbI3_cubic.cif")
    doc = {
        "matdb": 1,
        "source": {"key": "cif-test", "kind": "notebook", "note": "synthetic test"},
        "measurements": [
            {
                "id": "dft-cspbi3",
                "family": "CsPbI3-agZIF62",
                "params": {"X": 1.0},
                "technique": "dft",
                "provenance": "simulated",
                "structures": [{"file": "CsPbI3_cubic.cif", "description": "cubic CsPbI3"}],
                "results": [{"quantity": "bandgap", "value": "1.73 eV"}],
            }
        ],
    }
    (tmp_path / "calc.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    _ingest_ok(db, tmp_path / "calc.yaml")
    with db.session() as s:
        (st,) = s.execute(
            select(
                M.Structure.format,
                M.Structure.content,
                M.Structure.n_atoms,
                M.Structure.formula,
                M.Measurement.key,
            ).join(M.Measurement, M.Structure.measurement_id == M.Measurement.id)
        ).all()
    assert st.format == "cif" and st.key == "dft-cspbi3"
    assert st.content == (DATA / "CsPbI3_cubic.cif").read_text(encoding="utf-8")
    assert (st.n_atoms, st.formula) == (5, "CsPbI3")
    assert db.results(quantity="bandgap")["value"].tolist() == [pytest.approx(1.73)]


def test_loading_every_format_again_changes_nothing(db) -> None:
    files = [DATA / "run_pl.csv", DATA / "pattern_FAPbI3.xy", DATA / "plqy_table.csv"]
    _ingest_ok(db, *files)
    before = {k: v for k, v in db.table_counts().items() if k != "ingested_file"}
    rep = ingest_paths(db, files, progress=False)
    assert [f.status for f in rep.files] == ["unchanged"] * 3
    assert {k: v for k, v in db.table_counts().items() if k != "ingested_file"} == before
