"""Fuzzing the whole ingest path: random and mutated files in, only validation errors out.

Valid documents of three formats (a YAML record file, a wide CSV table, a TLIS CSV run) are
mutated by hypothesis - fields dropped, types changed, NaN/inf/negative/huge numbers, random
unicode, truncated bytes, invalid UTF-8, duplicated ids - and fed to
``ingest.pipeline.ingest_paths``. Every file must come out loaded or rejected with a message that
names it; no exception may escape and no rejection may be an unexpected one ("could not be
written" marks an exception the loader did not anticipate). A rejected file must leave the
database exactly as it was: on SQLite the database file's bytes after a WAL checkpoint, on
PostgreSQL an md5 over every table's rows.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ingest.pipeline import ingest_paths
from matdb.models import Base

_n = itertools.count()

RECORD: dict[str, Any] = {
    "matdb": 1,
    "source": {"key": "fuzz-nb", "kind": "notebook", "note": "fuzz test (synthetic)"},
    "syntheses": [
        {
            "id": "fz-syn",
            "family": "FAMAPbI3",
            "params": {"x": 0.6},
            "mill": {"frequency": "20 Hz", "jar_volume": "12 mL"},
            "precursors": [{"chemical": "PbI2", "amount": "461 mg"}],
            "steps": [{"kind": "mill", "duration": "30 min"}, {"kind": "age", "duration": "2 h"}],
        }
    ],
    "samples": [
        {"id": "fz-s1", "synthesis": "fz-syn", "provenance": "simulated"},
        {
            "id": "fz-s2",
            "family": "FASnIBr",
            "params": {"z": 2.5},
            "process": {"milling_time": "40 min"},
            "provenance": "simulated",
        },
    ],
    "measurements": [
        {
            "id": "fz-m1",
            "sample": "fz-s1",
            "technique": "plqy",
            "provenance": "simulated",
            "results": [
                {"quantity": "plqy", "value": "4.5 %", "uncertainty": 0.2},
                {"quantity": "pl_peak", "value": 805, "unit": "nm", "approximate": True},
            ],
            "arrays": [
                {"kind": "pl_spectrum", "x": [780, 800, 820], "y": [10, 100, 12], "x_unit": "nm"}
            ],
        },
        {
            "sample": "fz-s2",
            "technique": "pxrd",
            "provenance": "simulated",
            "results": [
                {"quantity": "phases_present", "text": "cubic"},
                {"quantity": "xrd_peak", "range": ["13.9 deg", "14.1 deg"]},
            ],
        },
        {
            "family": "CsNaAgBiCl6",
            "params": {"y": 0.9},
            "technique": "dft",
            "provenance": "simulated",
            "results": [{"quantity": "migration_barrier", "value": "29.7 kcal/mol"}],
        },
    ],
}

TABLE = (
    "sample_id,family,x,milling_time [min],provenance,plqy [%],pl_peak [nm],plqy_uncertainty [%]\n"
    "fzt-1,FAMAPbI3,0.8,90,simulated,3.5,805,0.2\n"
    "fzt-2,FAMAPbI3,0.4,60,simulated,~1.2,,\n"
    "fzt-3,FAMAPbI3,0.2,30,simulated,0.8,790,0.1\n"
)

TLIS = (
    '# matdb-tlis: 1\n# mode: pl\n# sample: fz-run-1\n# family: FAPbIBr\n# params: {"x": 0.1}\n'
    "# integration_time: 250 ms\n# excitation_wavelength: 405 nm\n# time_unit: min\n"
    "# provenance: simulated\n# source: fuzz\n"
    "wavelength_nm,0,0.5,1\n700,50,51,52\n750,60,61,62\n800,70,71,72\n850,50,50,50\n"
)

SPECIAL_NUMBERS = [
    float("nan"),
    float("inf"),
    float("-inf"),
    -1.0,
    -1e300,
    1e308,
    10**30,
    0,
    1e-320,
]
SPECIAL_TEXT = [
    "nan",
    "inf",
    "-inf",
    "-1",
    "1e999",
    "99999999999999999999999",
    "",
    "null",
    "~",
    "\x00",
    "é ü 中文 🙂",
    "1,5",
    "[1, 2]",
    "{a: 1}",
    "'",
    '"',
    "\\",
    "--- !!python/object:os.system",
]


# --- database snapshots -------------------------------------------------------------------------


def snapshot(db) -> str:
    """Bytes of the SQLite file after a checkpoint, or an md5 over all PostgreSQL rows."""
    if db.dialect == "sqlite":
        path = db.engine.url.database
        db.engine.dispose()
        db.write_engine.dispose()
        con = sqlite3.connect(path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    parts = []
    with db.engine.connect() as c:
        for t in sorted(Base.metadata.tables):
            order = "t.id" if "id" in Base.metadata.tables[t].c else "t::text"
            parts.append(
                c.execute(
                    text(
                        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) FROM \"{t}\" t"
                    )
                ).scalar_one()
            )
    return ",".join(parts)


# --- mutations ----------------------------------------------------------------------------------


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _get_parent(doc: Any, path: tuple) -> tuple[Any, Any]:
    node = doc
    for p in path[:-1]:
        node = node[p]
    return node, path[-1]


@st.composite
def mutated_record(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(RECORD)
    for _ in range(draw(st.integers(0, 2))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get_parent(doc, path)
        action = draw(st.sampled_from(["drop", "number", "text", "type", "duplicate", "unicode"]))
        if action == "drop":
            del parent[key]
        elif action == "number":
            parent[key] = draw(st.sampled_from(SPECIAL_NUMBERS))
        elif action == "text":
            parent[key] = draw(st.sampled_from(SPECIAL_TEXT))
        elif action == "unicode":
            parent[key] = draw(st.text(max_size=30))
        elif action == "type":
            parent[key] = draw(st.sampled_from([[], {}, [1, 2], {"value": "x"}, True, None]))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            doc["samples"].append(copy.deepcopy(doc["samples"][0]))
    fmt = draw(st.sampled_from(["yaml", "json"]))
    if fmt == "json":
        import json

        return json.dumps(doc, default=str).encode()  # NaN/Infinity stay as JSON extensions
    return yaml.safe_dump(doc, allow_unicode=True).encode()


@st.composite
def mutated_csv(draw: st.DrawFn, base: str) -> bytes:
    rows = [line.split(",") for line in base.splitlines()]
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(rows) - 1))
        if not rows[i]:
            continue
        j = draw(st.integers(0, len(rows[i]) - 1))
        action = draw(
            st.sampled_from(["cell", "number", "unicode", "drop_col", "dup_row", "drop_cell"])
        )
        if action == "cell":
            rows[i][j] = draw(st.sampled_from(SPECIAL_TEXT)).replace(",", ";")
        elif action == "number":
            rows[i][j] = repr(draw(st.sampled_from(SPECIAL_NUMBERS)))
        elif action == "unicode":
            rows[i][j] = draw(st.text(max_size=12)).replace(",", "").replace("\n", "")
        elif action == "drop_col":
            for r in rows:
                if j < len(r) and not r[0].startswith("#"):
                    del r[j]
        elif action == "dup_row":
            rows.append(list(rows[i]))
        else:
            del rows[i][j]
    return ("\n".join(",".join(r) for r in rows) + "\n").encode()


def byte_damage(data: st.DataObject, raw: bytes) -> bytes:
    action = data.draw(st.sampled_from(["none"] * 5 + ["truncate", "invalid_utf8", "random"]))
    if action == "truncate":
        return raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    if action == "invalid_utf8":
        k = data.draw(st.integers(0, len(raw)))
        return (
            raw[:k]
            + data.draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"]))
            + raw[k:]
        )
    if action == "random":
        return data.draw(st.binary(max_size=200))
    return raw


# --- the test -----------------------------------------------------------------------------------


def _base_files(folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    out = []
    for name, content in (
        ("base.yaml", yaml.safe_dump(RECORD)),
        ("base_table.csv", TABLE),
        ("base_run.csv", TLIS),
    ):
        p = folder / name
        p.write_text(content, encoding="utf-8")
        out.append(p)
    return out


@pytest.fixture
def loaded_db(db, tmp_path: Path):
    """``db`` holding the valid base documents (so mutants also meet existing keys)."""
    rep = ingest_paths(db, _base_files(tmp_path / "base"), progress=False)
    assert rep.ok and [f.status for f in rep.files] == ["added"] * 3, rep.as_rows()
    return db


@settings(
    max_examples=45,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_files_give_only_validation_errors(
    loaded_db, tmp_path: Path, data: st.DataObject
) -> None:
    db = loaded_db
    kind = data.draw(st.sampled_from(["record", "table", "tlis"]))
    if kind == "record":
        raw, suffix = data.draw(mutated_record()), data.draw(st.sampled_from([".yaml", ".json"]))
    elif kind == "table":
        raw, suffix = data.draw(mutated_csv(TABLE)), ".csv"
    else:
        raw, suffix = data.draw(mutated_csv(TLIS)), ".csv"
    if data.draw(st.booleans()):  # fresh ids: the mutant is written, not compared with the base
        k = f"{next(_n):06d}"  # fixed width: the bytes drawn from later do not change length
        raw = raw.replace(b"fz-", f"fz{k}-".encode()).replace(b"fzt-", f"fzt{k}-".encode())
    raw = byte_damage(data, raw)
    path = tmp_path / f"fuzz-{next(_n)}{suffix}"
    path.write_bytes(raw)

    before = snapshot(db)
    report = ingest_paths(db, [path], progress=False)  # must not raise
    assert len(report.files) == 1
    (out,) = report.files
    assert out.status in ("added", "unchanged", "updated", "rejected"), out
    event(f"{kind}: {out.status}")
    if out.status == "rejected":
        assert out.reason and str(path.name) in out.reason, out.reason
        assert "could not be written" not in out.reason, out.reason
        assert snapshot(db) == before, f"rejected file changed the database: {out.reason}"
