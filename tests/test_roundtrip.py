"""``matdb export`` then ingest of that export into an empty database gives the same results.

The bundled literature dataset (data/literature/*.yaml) is loaded, exported to CSV, the CSV is
ingested into a fresh database and exported again; the two exports must hold the same rows (as
multisets) on the leading columns and the text/label/approximate/range columns.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

import matdb
from ingest.pipeline import ingest_paths
from matdb.export import LEADING, export
from matdb.vocabulary import QUANTITIES

COMPARED = [*LEADING, "text", "label", "approximate", "range_low", "range_high"]


def _canon(v: object) -> object:
    """A comparable cell: NaN/None/'' -> None, numbers rounded to 12 significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(f"{float(v):.12g}")
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return str(v)


def _rows(df: pd.DataFrame) -> list[tuple]:
    rows = [tuple(_canon(v) for v in r) for r in df[COMPARED].itertuples(index=False)]
    return sorted(rows, key=repr)


def _export(db: matdb.Database, path: Path) -> pd.DataFrame:
    n = export(db, path)
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    assert len(df) == n
    return df


@pytest.fixture
def other_db(
    db_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[matdb.Database]:
    """A second fresh, empty database on the same backend as ``db`` (same templates as conftest)."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "other.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        d = matdb.connect(f"sqlite:///{path}")
        yield d
        d.close()
        return
    tpl = request.getfixturevalue("pg_template")
    admin_url = os.environ.get("MATDB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"matdb_rt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"'))
    d = matdb.connect(f"{db_url.rsplit('/', 1)[0]}/{name}")
    try:
        yield d
    finally:
        d.close()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _round_trip(
    db: matdb.Database,
    other_db: matdb.Database,
    literature_dir: Path,
    tmp_path: Path,
    avoid: set[str],
) -> tuple[list[tuple], list[tuple]]:
    """Load the literature, export, ingest the export elsewhere, export again; both as rows.

    ``avoid`` names known gaps to step around (see the xfail tests): "user_quantities" drops
    results of quantities a record file declares, "measurement_id" drops that column (the reader
    then groups results into measurements by target, technique, source and locator),
    "boolean_process" drops rows whose process parameters hold a boolean.
    """
    rep = ingest_paths(db, sorted(literature_dir.glob("*.yaml")), progress=False)
    assert rep.ok, [f.reason for f in rep.files if f.status == "rejected"]
    first = _export(db, tmp_path / "first.csv")
    assert len(first) > 100  # the three papers' results
    if "user_quantities" in avoid:
        first = first[first["quantity"].isin(list(QUANTITIES))]
    if "measurement_id" in avoid:
        first = first.drop(columns=["measurement_id"])
    if "boolean_process" in avoid:
        first = first[
            ~first["params"].map(lambda t: any(isinstance(v, bool) for v in json.loads(t).values()))
        ]
    first.to_csv(tmp_path / "first.csv", index=False)
    rep2 = ingest_paths(other_db, [tmp_path / "first.csv"], progress=False)
    assert rep2.ok, [f.reason for f in rep2.files]
    second = _export(other_db, tmp_path / "second.csv")
    return _rows(first), _rows(second)


def _assert_same(a: list[tuple], b: list[tuple]) -> None:
    missing = [r for r in a if r not in b]
    extra = [r for r in b if r not in a]
    assert not missing and not extra, (
        f"{len(missing)} rows lost, {len(extra)} rows new; lost: {missing[:3]}; new: {extra[:3]}"
    )
    assert len(a) == len(b)


GAPS: set[str] = set()  # every known gap is closed; _round_trip can still step around one


def test_export_ingests_back_to_the_same_results(
    db: matdb.Database, other_db: matdb.Database, literature_dir: Path, tmp_path: Path
) -> None:
    a, b = _round_trip(db, other_db, literature_dir, tmp_path, avoid=GAPS)
    assert len(a) > 150
    # categorical text, labels, approximate flags and sample-less (DFT) rows all come back
    assert any(r[COMPARED.index("text")] for r in a)
    assert any(r[COMPARED.index("label")] for r in a)
    assert any(r[COMPARED.index("approximate")] is True for r in a)
    assert any(r[0] is None for r in a)
    # user-declared quantities, per-result locators and boolean process parameters come back too
    assert any(r[COMPARED.index("quantity")] == "vibrational_band" for r in a)
    assert any('"quenched": true' in str(r[COMPARED.index("params")]) for r in a)
    _assert_same(a, b)
