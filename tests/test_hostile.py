"""Hostile input: alias bombs, zip bombs, deep nesting, huge fields, binary and mis-encoded text,
formula-looking ids and references outside the ingest folder (issue 15).

Every case must end in a clear user-error rejection naming the file, leave the database exactly as
it was (byte-identical SQLite file, md5 over every PostgreSQL table), and stay within a memory bound
measured here with tracemalloc. Each resource limit is tested at its edge: a file at the limit is
read, one unit over it is refused with a LimitError naming the limit.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ingest_fuzz import RECORD, snapshot

from ingest.errors import IngestError
from ingest.limits import DEFAULT, MB, LimitError, Limits, LimitSpecError, parse_limits
from ingest.pipeline import check_paths, ingest_paths
from ingest.readers import read_file
from ingest.readers._common import _BudgetLoader
from ingest.readers.tables import XLSX_GRACE_BYTES, check_xlsx_zip
from matdb.vocabulary import check_identifier

REPO = Path(__file__).resolve().parents[1]

#: Peak Python allocations allowed while matdb reads and rejects one hostile file. The valid
#: documents of this test need a few MB; the alias bomb, expanded, would need gigabytes.
MEMORY_BOUND = 64 * MB


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The issue's 1 KB record file: nested anchors and aliases in a measurement's conditions."""
    lines = ["matdb: 1", "source: {key: bomb-nb, kind: notebook}",
             "samples: [{id: bomb-s1, family: FAMAPbI3, params: {x: 0.5}}]",
             "measurements:", "- sample: bomb-s1", "  technique: pl", "  conditions:",
             "    l0: &l0 [" + ", ".join(["1"] * width) + "]"]
    lines += [f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def zip_bomb(path: Path, mb: int = 20) -> Path:
    """An .xlsx that is a zip archive whose sheet part inflates ~1000-fold (zeros)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("xl/worksheets/sheet1.xml", "w") as f:
            chunk = b"\0" * MB
            for _ in range(mb):
                f.write(chunk)
    return path


def _doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(RECORD)
    doc.update(changes)
    return doc


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _note_doc(note: str) -> str:
    doc = _doc()
    doc["measurements"][0]["note"] = note
    return _yaml(doc)


def _formula_id() -> str:
    doc = _doc()
    doc["samples"][0]["id"] = "=1+1"
    doc["measurements"][0]["sample"] = "=1+1"
    return _yaml(doc)


#: name -> (file name, content as bytes or text, text expected in the rejection)
CORPUS: dict[str, tuple[str, bytes | str, str]] = {
    "alias bomb": ("bomb.yaml", alias_bomb(), "yaml_nodes"),
    "self-referencing anchor": ("loop.yaml", "matdb: 1\nnote: &a [1, *a]\n", "refers to itself"),
    "deep nesting YAML": ("deep.yaml", "matdb: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", "depth"),
    "deep nesting JSON": ("deep.json", '{"matdb": 1, "x": ' + "[" * 500 + "]" * 500 + "}", "depth"),
    "huge note": ("huge.yaml", _note_doc("x" * (DEFAULT.text_chars + 1)), "text_chars"),
    "huge JSON text": ("huge.json", json.dumps(_doc(note="y" * (DEFAULT.text_chars + 1))), "text_chars"),
    "NUL bytes": ("nul.yaml", b"matdb: 1\n\x00\x00\x00\n", "NUL bytes"),
    "control character in YAML": ("ctl.yaml", b"\x01", "malformed YAML: unacceptable character"),
    "invalid UTF-8": ("bad.yaml", b"matdb: 1\nnote: caf\xe9\n", "not UTF-8"),
    "UTF-16": ("utf16.yaml", "matdb: 1\nsamples: []\n".encode("utf-16"), "not UTF-8"),
    "UTF-16 CSV": ("utf16.csv", "sample_id,family,x,plqy [%]\na,FAMAPbI3,0.5,3\n".encode("utf-16"), "not UTF-8"),
    "formula id": ("formula.yaml", _formula_id(), "must start with a letter"),
    "formula id in a table": ("formula.csv", "sample_id,family,x,plqy [%]\n=cmd|' /C calc'!A0,FAMAPbI3,0.5,3\n",
                              "must start with a letter"),
    "control character id": ("ctl.csv", "sample_id,family,x,plqy [%]\nab\x07c,FAMAPbI3,0.5,3\n", "contains"),
    "huge table": ("wide.csv", "sample_id," + ",".join(f"c{i}" for i in range(DEFAULT.table_columns + 1)) + "\n",
                   "table_columns"),
    "jcamp claims a billion points": (
        "many.jdx", "##TITLE=x\n##JCAMP-DX=4.24\n##DATATYPE=UV/VIS SPECTRUM\n##XUNITS=NANOMETERS\n"
        "##YUNITS=ABSORBANCE\n##FIRSTX=1\n##LASTX=2\n##NPOINTS=1000000000\n##XYDATA=(X++(Y..Y))\n1 1\n##END=\n",
        "spectrum_points"),
}


def _write(folder: Path, name: str, content: bytes | str) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


def _ingest_measured(db, paths: list[Path], limits: Limits = DEFAULT):  # type: ignore[no-untyped-def]
    """ingest_paths with the peak of Python allocations during the call."""
    tracemalloc.start()
    try:
        report = ingest_paths(db, paths, progress=False, limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, peak


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import what the readers import lazily, so the memory bound measures reading, not imports."""
    import ase.io  # noqa: F401
    import tqdm  # noqa: F401

    buf = io.BytesIO()
    openpyxl.Workbook().save(buf)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_hostile_file_is_rejected_cleanly(db, tmp_path: Path, case: str) -> None:  # noqa: ANN001
    name, content, expected = CORPUS[case]
    path = _write(tmp_path, name, content)
    before = snapshot(db)
    report, peak = _ingest_measured(db, [path])
    (out,) = report.files
    assert out.status == "rejected"
    assert out.reason.startswith(str(path)) and expected in out.reason, out.reason
    assert "\n" not in out.reason and "Traceback" not in out.reason
    assert "could not be written" not in out.reason  # a user error, not an unexpected exception
    assert peak < MEMORY_BOUND, f"{case}: {peak / MB:.0f} MB"
    assert snapshot(db) == before


def test_alias_bomb_is_refused_while_composing() -> None:
    """The budget is spent on the node tree, before any expanded Python object exists."""
    text = alias_bomb()
    assert len(text.encode()) < 1024
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match="yaml_nodes") as exc:
            loader = _BudgetLoader(text, DEFAULT, Path("bomb.yaml"))
            loader.get_single_data()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.key == "yaml_nodes" and exc.value.line is not None
    assert peak < 4 * MB


def test_zip_bomb_is_refused_before_openpyxl(db, tmp_path: Path) -> None:  # noqa: ANN001
    path = zip_bomb(tmp_path / "bomb.xlsx")
    assert path.stat().st_size < MB
    before = snapshot(db)
    report, peak = _ingest_measured(db, [path])
    (out,) = report.files
    assert out.status == "rejected" and out.limit == "xlsx_ratio", out.reason
    assert peak < MEMORY_BOUND
    assert snapshot(db) == before
    # a bomb of many parts, each under the ratio, is stopped by the total
    with zipfile.ZipFile(tmp_path / "parts.xlsx", "w", zipfile.ZIP_STORED) as zf:
        for i in range(3):
            zf.writestr(f"xl/p{i}.xml", b"<a/>" * 1000)
    with pytest.raises(LimitError, match="xlsx_unzipped_mb"):
        check_xlsx_zip(tmp_path / "parts.xlsx", DEFAULT.replace(xlsx_unzipped_mb=10_000 / MB))


def _secret_layout(tmp_path: Path) -> tuple[Path, Path]:
    """top/secret.xy (values nobody may see) and top/sub/rec.yaml referring to ../secret.xy."""
    top = tmp_path / "top"
    _write(top, "secret.xy", "# wavelength: 1.5406 angstrom\n# note: TOPSECRET\n10 31337\n20 424242\nnot-a-number x\n")
    doc = {"matdb": 1, "source": {"key": "sec-nb", "kind": "notebook"},
           "samples": [{"id": "sec-s1", "family": "FAMAPbI3", "params": {"x": 0.5}}],
           "measurements": [{"sample": "sec-s1", "technique": "pxrd",
                             "arrays": [{"kind": "pxrd", "file": "../secret.xy", "wavelength": "1.5406 angstrom"}]}]}
    rec = _write(top / "sub", "rec.yaml", _yaml(doc))
    return top, rec


@pytest.mark.parametrize("start", ["sub folder", "record file"])
def test_reference_outside_the_ingest_folder_is_refused(db, tmp_path: Path, start: str) -> None:  # noqa: ANN001
    top, rec = _secret_layout(tmp_path)
    before = snapshot(db)
    report = ingest_paths(db, [rec.parent if start == "sub folder" else rec], progress=False)
    (out,) = report.files
    assert out.status == "rejected" and "outside the folder the ingest started from" in out.reason, out.reason
    assert "field 'arrays[0].file'" in out.reason
    for leaked in ("TOPSECRET", "31337", "424242", "not-a-number"):
        assert leaked not in out.reason
    assert snapshot(db) == before


def test_reference_inside_the_ingest_folder_is_read(db, tmp_path: Path) -> None:  # noqa: ANN001
    """Started from the folder that holds both, ../secret.xy is inside: it is opened (and its bad
    line reported), as before."""
    top, rec = _secret_layout(tmp_path)
    good, report = check_paths(db, [top])
    (out,) = [f for f in report.files if f.path == str(rec)]
    assert not good and out.status == "rejected" and "outside" not in out.reason
    assert "not-a-number" in out.reason  # the file was read: its own error


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    top, rec = _secret_layout(tmp_path)
    (rec.parent / "link.xy").symlink_to(top / "secret.xy")
    text = rec.read_text().replace("../secret.xy", "link.xy")
    rec.write_text(text)
    with pytest.raises(IngestError, match="outside the folder"):
        read_file(rec, root=rec.parent)


# --- each limit at its edge ---------------------------------------------------------------------


def _yaml_size(text: str) -> tuple[int, int]:
    """(values with alias expansions, depth) of a YAML document as the budget loader counts them."""
    loader = _BudgetLoader(text, Limits(yaml_nodes=10**12, depth=10**6), Path("x.yaml"))
    try:
        node = loader.get_single_node()
        return loader.sizes[id(node)]
    finally:
        loader.dispose()


RECORD_TEXT = _yaml(RECORD)
ALIASED = ("matdb: 1\nsource: {key: edge-nb, kind: notebook}\nsamples:\n"
           "- {id: edge-a1, family: FAMAPbI3, params: &p {x: 0.5}}\n- {id: edge-a2, family: FAMAPbI3, params: *p}\n")
TABLE = "sample_id,family,x,plqy [%]\nedge-1,FAMAPbI3,0.5,3\nedge-2,FAMAPbI3,0.6,4\nedge-3,FAMAPbI3,0.7,5\n"
XY = "# sample: edge-s\n# family: FAMAPbI3\n# params: {\"x\": 0.5}\n# wavelength: 1.5406 angstrom\n" + "".join(
    f"{10 + i / 10:.2f} {100 + i}\n" for i in range(50))
TLIS = ("# matdb-tlis: 1\n# mode: pl\n# sample: edge-run\n# family: FAPbIBr\n# params: {\"x\": 0.1}\n"
        "wavelength_nm,0,0.5,1\n700,50,51,52\n750,60,61,62\n800,70,71,72\n850,50,50,50\n")
CIF = (REPO / "tests" / "data" / "readers" / "CsPbI3_cubic.cif").read_text()


def _workbook(path: Path, rows: int = 3) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["sample_id", "family", "x", "plqy [%]"])
    for i in range(rows):
        ws.append([f"edge-x{i}", "FAMAPbI3", 0.5, 3.0 + i])
    wb.save(path)
    return path


def _zip_total(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def _edge_cases(tmp: Path) -> dict[str, tuple[Path, float]]:
    """limit key -> (a valid file, the value of that limit the file reaches exactly)."""
    rec = _write(tmp, "edge.yaml", RECORD_TEXT)
    aliased = _write(tmp, "aliased.yaml", ALIASED)
    note = "n" * 500
    noted = _write(tmp, "noted.yaml", _note_doc(note))
    table = _write(tmp, "edge.csv", TABLE)
    xy = _write(tmp, "edge.xy", XY)
    tlis = _write(tmp, "run.csv", TLIS)
    cif = _write(tmp, "CsPbI3.cif", CIF)
    book = _workbook(tmp / "edge.xlsx")
    return {
        "records_mb": (rec, rec.stat().st_size / MB),
        "yaml_nodes": (aliased, _yaml_size(ALIASED)[0]),
        "depth": (rec, _yaml_size(RECORD_TEXT)[1]),
        "text_chars": (noted, len(note)),
        "csv_mb": (table, table.stat().st_size / MB),
        "table_rows": (table, 3),
        "table_columns": (table, 4),
        "spectrum_mb": (xy, xy.stat().st_size / MB),
        "spectrum_points": (tlis, 12),
        "structure_mb": (cif, cif.stat().st_size / MB),
        "xlsx_mb": (book, book.stat().st_size / MB),
        "xlsx_unzipped_mb": (book, _zip_total(book) / MB),
        "xlsx_cells": (book, 16),
    }


def _one_under(key: str, value: float) -> float:
    """The limit one unit below ``value``: one byte for sizes, one for counts."""
    return value - 1 / MB if key.endswith("_mb") else value - 1


EDGE_KEYS = ["records_mb", "yaml_nodes", "depth", "text_chars", "csv_mb", "table_rows", "table_columns",
             "spectrum_mb", "spectrum_points", "structure_mb", "xlsx_mb", "xlsx_unzipped_mb", "xlsx_cells"]


@pytest.mark.parametrize("key", EDGE_KEYS)
def test_limit_edge(tmp_path: Path, key: str) -> None:
    path, value = _edge_cases(tmp_path)[key]
    at = DEFAULT.replace(**{key: value})
    read_file(path, limits=at, root=path.parent)  # exactly at the limit: read
    with pytest.raises(LimitError, match=f"over the limit {key}=") as exc:
        read_file(path, limits=DEFAULT.replace(**{key: _one_under(key, value)}), root=path.parent)
    assert exc.value.key == key and exc.value.file == str(path)
    assert "\n" not in str(exc.value) and f"--limit {key}=" in str(exc.value)


def test_xlsx_ratio_edge(tmp_path: Path) -> None:
    path = tmp_path / "ratio.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/big.xml", b"<c/>" * (XLSX_GRACE_BYTES // 4 + 1))
    (info,) = zipfile.ZipFile(path).infolist()
    ratio = info.file_size / info.compress_size
    check_xlsx_zip(path, DEFAULT.replace(xlsx_ratio=ratio))
    with pytest.raises(LimitError, match="xlsx_ratio"):
        check_xlsx_zip(path, DEFAULT.replace(xlsx_ratio=ratio * (1 - 1e-9)))


def test_records_mb_checked_before_reading(tmp_path: Path) -> None:
    """A sparse 2 GB file is refused from its size, without reading it."""
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(2 * 1024 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match="records_mb"):
            read_file(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MB


@pytest.mark.parametrize(("specs", "expected"), [
    (["yaml_nodes=2e6"], {"yaml_nodes": 2_000_000}),
    (["file_mb=500"], {"records_mb": 500.0, "csv_mb": 500.0, "xlsx_mb": 500.0, "spectrum_mb": 500.0,
                       "structure_mb": 500.0}),
    (["depth=10", "xlsx_ratio=50.5"], {"depth": 10, "xlsx_ratio": 50.5}),
])
def test_parse_limits(specs: list[str], expected: dict[str, float]) -> None:
    limits = parse_limits(specs)
    assert {k: getattr(limits, k) for k in expected} == expected
    assert isinstance(limits.yaml_nodes, int)


@pytest.mark.parametrize(("spec", "message"), [
    ("yaml_nodes", "KEY=VALUE"), ("bogus=1", "unknown limit 'bogus'"), ("depth=-1", "positive"),
    ("depth=1.5", "whole number"), ("csv_mb=inf", "positive"), ("csv_mb=abc", "positive"),
])
def test_parse_limits_errors(spec: str, message: str) -> None:
    with pytest.raises(LimitSpecError, match=message):
        parse_limits([spec])


# --- identifiers --------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["li2023-X0.1-T350", "xiang2026-syn-x0.025-LG", "lab:run 1.csv", "FA+Cs/2",
                                   "é-1", "_x", "a" * 255, "s(1)[2]#3%,=@~"])
def test_safe_ids_accepted(ident: str) -> None:
    assert check_identifier(ident) == ident


@pytest.mark.parametrize(("ident", "message"), [
    ("=1+1", "must start"), ("+1", "must start"), ("-x", "must start"), ("@SUM(A1)", "must start"),
    (" x", "must start"), ("x ", "ends with a space"), ("a\tb", "contains"), ("a\x00b", "contains"),
    ("a|b", "contains"), ("a'b", "contains"), ("", "non-empty"), ("a" * 256, "at most 255"),
    ("x\n=1", "contains"),
])
def test_unsafe_ids_rejected(ident: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_identifier(ident)


@pytest.mark.parametrize("group", ["samples", "syntheses", "measurements"])
def test_unsafe_id_names_the_field(tmp_path: Path, group: str) -> None:
    doc = _doc()
    doc[group][0]["id"] = "@evil"
    with pytest.raises(IngestError, match=rf"{group}\[0\].*field 'id'.*must start"):
        read_file(_write(tmp_path, "ids.yaml", _yaml(doc)))


def test_bundled_ids_are_safe(db) -> None:  # noqa: ANN001
    """The bundled literature loads (every id in data/ is a safe id)."""
    report = ingest_paths(db, [REPO / "data" / "literature"], progress=False)
    assert report.ok, report.as_rows()


# --- hypothesis: hostile pieces planted in a valid document --------------------------------------


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, str]:
    """A valid record document with one hostile piece at a random place; (text, expected)."""
    doc = _doc()
    where = draw(st.sampled_from(["measurements.0.conditions", "samples.0.note", "syntheses.0.note",
                                  "measurements.1.results.0.text", "source.note"]))
    kind = draw(st.sampled_from(["bomb", "deep", "long", "id"]))
    parent: Any = doc
    *head, last = where.split(".")
    for part in head:
        parent = parent[int(part)] if part.isdigit() else parent[part]
    if kind == "long":
        parent[last] = "z" * (DEFAULT.text_chars + draw(st.integers(1, 1000)))
        return _yaml(doc), "text_chars"
    if kind == "id":
        doc["samples"][0]["id"] = draw(st.sampled_from("=+-@")) + draw(st.text(max_size=8))
        return _yaml(doc), "must start"
    parent[last] = "__PLANT__"
    text = _yaml(doc)
    if kind == "deep":
        d = draw(st.integers(DEFAULT.depth, 3 * DEFAULT.depth))
        return text.replace("__PLANT__", "[" * d + "]" * d), "depth"
    levels, width = draw(st.integers(6, 12)), draw(st.integers(10, 30))  # >= 10**6 values
    prefix = "bombs: [&a0 [" + ", ".join(["1"] * width) + "], " + ", ".join(
        f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)) + "]\n"
    return prefix + text.replace("__PLANT__", f"*a{levels - 1}"), "yaml_nodes"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=planted())
def test_planted_hostile_pieces_are_rejected(db, tmp_path: Path, case: tuple[str, str]) -> None:  # noqa: ANN001
    text, expected = case
    path = _write(tmp_path, "planted.yaml", text)
    before = snapshot(db)
    report, peak = _ingest_measured(db, [path])
    (out,) = report.files
    assert out.status == "rejected" and expected in out.reason, out.reason
    assert peak < MEMORY_BOUND
    assert snapshot(db) == before


# --- the command line ---------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "matdb_app.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_alias_bomb_exits_2_with_one_line(db_url: str, tmp_path: Path) -> None:
    bomb = _write(tmp_path, "bomb.yaml", alias_bomb())
    r = _cli("ingest", "--db", db_url, str(bomb), cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and "yaml_nodes" in lines[0] and str(bomb) in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    small = _write(tmp_path, "small.yaml", alias_bomb(levels=3))  # ~7 000 values once expanded
    r = _cli("ingest", "--db", db_url, "--limit", "yaml_nodes=1000", str(small), cwd=tmp_path)
    assert r.returncode == 2 and "yaml_nodes=1000" in r.stderr, r.stderr
    r = _cli("ingest", "--db", db_url, "--limit", "yaml_nodes=1e5", str(small), cwd=tmp_path)
    assert r.returncode == 1 and "yaml_nodes" not in r.stderr, r.stderr  # past the limit: the content is wrong
    assert "conditions" in r.stderr
    r = _cli("ingest", "--db", db_url, "--limit", "nodes=5", str(small), cwd=tmp_path)
    assert r.returncode == 2 and "unknown limit 'nodes'" in r.stderr and "Traceback" not in r.stderr


def test_readme_documents_every_limit() -> None:
    from ingest.limits import describe

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for key, default, _ in describe():
        assert f"| `{key}` | {default} |" in readme, key
