"""The store functions of matdb/store.py on both backends (what the use-case modules call instead of SQL)."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
from test_store import DOC, load

from matdb import store
from matdb.families import get_family

REPO = Path(__file__).resolve().parents[1]


def test_nothing_above_matdb_imports_sqlalchemy() -> None:
    """Persistence lives in matdb/: no module of matdb_app, app_pages or app.py imports SQLAlchemy."""
    # the screening service still holds its own SQL until it is replaced (it has the store functions below)
    exempt: set[Path] = set()
    files = [REPO / "app.py", *(REPO / "matdb_app").glob("*.py"), *(REPO / "app_pages").glob("*.py")]
    offenders = []
    for f in files:
        if f in exempt:
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{f.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "sqlalchemy"]
    assert len(files) > 10 and offenders == []


def test_data_version_changes_with_every_write(db) -> None:  # type: ignore[no-untyped-def]
    v0 = store.data_version(db)
    assert store.data_version(db) == v0
    load(db, DOC)
    v1 = store.data_version(db)
    assert v1 != v0
    store.remove_source(db, "xiao2025", ["doc.yaml"])
    assert store.data_version(db) != v1  # a removal is a write too


def test_what_the_database_holds(db) -> None:  # type: ignore[no-untyped-def]
    assert store.measured_techniques(db) == [] and store.quantity_ranges(db).empty
    load(db, DOC)
    assert store.measured_techniques(db) == ["dft", "pxrd", "tlis_reflectance"]
    r = store.quantity_ranges(db).set_index("quantity")
    assert r.loc["steady_state_time", ["n", "min", "max"]].tolist() == [2, 59.0, 60.0]
    assert r.loc["phases_present", "n"] == 0  # categorical: no numeric values
    assert store.families_with(db, "xrd_peak") == ["FAMAPbI3"]
    assert store.families_with(db, "migration_barrier") == ["CsNaAgBiCl6"]
    q = store.numeric_quantities(db, "FAMAPbI3").set_index("quantity")
    assert q.loc["xrd_peak", ["n", "n_samples"]].tolist() == [2, 1]
    assert q.loc["steady_state_time", ["n", "n_samples"]].tolist() == [2, 2]
    assert "phases_present" not in q.index


def test_remove_source_deletes_exactly_its_records(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = {"matdb": 1, "source": {"key": "nb-keep", "kind": "notebook"},
             "samples": [{"id": "keep-1", "family": "FAMAPbI3", "params": {"x": 0.8}}],
             "measurements": [{"sample": "keep-1", "technique": "plqy",
                               "results": [{"quantity": "plqy", "value": "12 %"}]}]}
    assert load(db, other, file="keep.yaml").status == "added"
    before = db.table_counts()
    assert load(db, DOC, file="/somewhere/doc.yaml").status == "added"
    removed = store.remove_source(db, "xiao2025", ["doc.yaml"])
    assert removed["sample"] == 3 and removed["measurement"] == 4 and removed["ingested_file"] == 1
    after = db.table_counts()
    # chemicals are a shared catalogue, families vocabulary: the rest is as before the load
    assert {k: v for k, v in after.items() if k not in ("chemical", "family")} == \
        {k: v for k, v in before.items() if k not in ("chemical", "family")}
    assert db.samples()["sample_id"].tolist() == ["keep-1"]
    assert db.results()["value"].tolist() == [12.0]  # the shared material x=0.8 stays for keep-1
    assert store.remove_source(db, "xiao2025") == {}  # nothing left: nothing to do


def test_screening_store_functions(db) -> None:  # type: ignore[no-untyped-def]
    fams = db.families()
    name = store.save_model(db, name="plqy:FASnIBr:1", target="plqy", data_hash="abc", card={"kind": "gp"},
                            blob=b"\x00skops", families=fams, family_slugs=["FASnIBr"])
    assert store.find_model(db, "abc") == {"name": name, "target": "plqy", "card": {"kind": "gp"}}
    assert store.find_model(db, "other") is None
    assert store.load_model_blob(db, name) == b"\x00skops" and store.load_model_blob(db, "nope") is None
    m = store.saved_models(db)
    assert m["families"].tolist() == [["FASnIBr"]] and m["created_by"].notna().all()

    props = [{"key": f"c1-{i}", "rank": i, "formula": "FASnI3", "params": {"z": 3.0},
              "predictions": {"plqy": {"mean": 1.0, "std": 0.5}}, "acquisition": 0.1 * i} for i in (1, 2)]
    store.save_campaign(db, key="c1", family=fams["FASnIBr"], objectives=[{"name": "plqy"}], settings={"n": 2},
                        model_cards={"plqy": {"kind": "gp"}}, proposals=props)
    rows = store.campaign_rows(db)
    assert rows["proposal_id"].tolist() == ["c1-1", "c1-2"]
    assert set(rows["status"]) == {"proposed"} and set(rows["family"]) == {"FASnIBr"}
    assert rows["acquisition"].tolist() == pytest.approx([0.1, 0.2])

    pool = pd.DataFrame({"z": [1.0, 2.0, 3.0], "milling_time_min": [30.0, 60.0, 90.0]})
    store.save_pool(db, key="lab-pool", family=get_family("FASnIBr"), rows=pool, source_file="pool.csv")
    listed = store.pools(db, family="FASnIBr")
    assert listed["key"].tolist() == ["lab-pool"] and listed["n_rows"].tolist() == [3]
    assert store.pools(db, family="FAMAPbI3").empty
    pd.testing.assert_frame_equal(store.load_pool(db, "lab-pool"), pool)
    assert store.load_pool(db, "nope") is None
