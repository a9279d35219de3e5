"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL tests use their own databases (created from a template with the schema, dropped
afterwards) on the server at ``MATDB_TEST_PG`` (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Set ``MATDB_TEST_BACKENDS=sqlite`` to run SQLite only (CI always runs both).
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

import matdb

# CI must be reproducible: there the fuzz tests replay a fixed, derandomised set of examples
# (locally they explore new ones every run, and a failure prints how to reproduce it).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

PG_ADMIN_URL = os.environ.get("MATDB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [b.strip() for b in os.environ.get("MATDB_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]
REPO = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite"
    db = matdb.connect(f"sqlite:///{path}")
    db.close()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"matdb_tpl_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite must not silently skip PostgreSQL
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    db = matdb.connect(_pg_url(name))
    db.close()
    yield name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _make_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        tpl = request.getfixturevalue("sqlite_template")
        path = tmp_path / f"test-{next(_counter)}.sqlite"
        shutil.copy(tpl, path)
        yield f"sqlite:///{path}"
        return
    tpl = request.getfixturevalue("pg_template")
    name = f"matdb_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _backend_params() -> list:
    return [pytest.param(b, marks=[pytest.mark.postgres] if b == "postgres" else [], id=b) for b in BACKENDS]


@pytest.fixture(params=_backend_params())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty matdb database (schema applied) on each backend."""
    yield from _make_url(request.param, request, tmp_path)


@pytest.fixture
def db(db_url: str) -> Iterator[matdb.Database]:
    d = matdb.connect(db_url)
    yield d
    d.close()


@pytest.fixture(scope="session")
def literature_dir() -> Path:
    return REPO / "data" / "literature"
