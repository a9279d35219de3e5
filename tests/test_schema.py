"""The Alembic migrations and the JSON Schemas stay in step with the code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import matdb
from ingest.records import RECORD_TYPES, Document
from ingest.schemas import render
from matdb.models import Base

REPO = Path(__file__).resolve().parents[1]


def test_migrated_schema_matches_the_models(db: matdb.Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations differ; generate a new Alembic revision: {diff}"


def test_connect_refuses_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    db = matdb.connect(url)
    with db.write_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ancient'")
    db.close()
    with pytest.raises(matdb.DatabaseError, match="matdb init"):
        matdb.connect(url)


def test_connect_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(matdb.DatabaseError, match="cannot open"):
        matdb.connect("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_schema_files_are_generated_from_the_models(name: str) -> None:
    path = REPO / "schemas" / f"{name}.schema.json"
    assert path.read_text(encoding="utf-8") == render(name), (
        f"{path} is out of date: run `matdb schemas`"
    )


def test_examples_validate_against_json_schema_and_models() -> None:
    import yaml

    schema = json.loads((REPO / "schemas" / "document.schema.json").read_text())
    examples = sorted((REPO / "schemas" / "examples").glob("*.yaml"))
    assert {p.stem for p in examples} >= set(matdb.builtin_families()), "one example per family"
    for p in examples:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
        jsonschema.validate(data, schema)
        Document.model_validate(data)


def test_upgrade_from_0001_keeps_campaigns_and_models(db_url: str) -> None:
    """Campaigns and models of a 0001 database get family rows (foreign keys) when migrated."""
    from sqlalchemy import text

    from ingest.pipeline import ingest_paths

    db = matdb.connect(db_url)
    assert ingest_paths(db, [REPO / "schemas" / "examples" / "FAMAPbI3.yaml"], progress=False).ok
    before = db.table_counts()
    db._migrate("downgrade", "0001")
    card = json.dumps({"training_data_sha256": "abc123", "families": ["FAMAPbI3", "FASnIBr"]})
    with db.write_engine.begin() as conn:
        conn.execute(text("INSERT INTO campaign (key, family_slug, objectives, settings, model_cards, created_at) "
                          "VALUES ('c1', 'FASnIBr', '[\"plqy\"]', '{}', '{}', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO saved_model (name, target, family_slug, card, blob, created_at) "
                          "VALUES ('m1', 'plqy', 'FAMAPbI3+FASnIBr', :card, :blob, CURRENT_TIMESTAMP)"),
                     {"card": card, "blob": b"x"})
    db.upgrade()
    with db.engine.connect() as conn:
        slug = conn.execute(text("SELECT f.slug FROM campaign c JOIN family f ON f.id = c.family_id")).scalar_one()
        fams = sorted(conn.execute(text(
            "SELECT f.slug FROM saved_model_family m JOIN family f ON f.id = m.family_id")).scalars())
        data_hash = conn.execute(text("SELECT data_hash FROM saved_model")).scalar_one()
    after = db.table_counts()
    db.close()
    for table in ("sample", "measurement", "result", "array_result", "process_step", "synthesis_precursor"):
        assert after[table] == before[table], f"{table} rows lost or duplicated by the migration"
    assert slug == "FASnIBr"
    assert fams == ["FAMAPbI3", "FASnIBr"]
    assert data_hash == "abc123"
