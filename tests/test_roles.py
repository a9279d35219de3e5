"""Database users and roles, enforced by the PostgreSQL server itself; the UI's read-only mode.

Roles are cluster-wide: every test names its users with a unique prefix, and its database's group
roles carry the (unique) database name; all of them are dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import matdb
from ingest.pipeline import ingest_paths
from matdb import roles
from matdb_app import access
from matdb_app.cli import app

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "schemas" / "examples" / "FAMAPbI3.yaml"
TIMEOUT = 30
runner = CliRunner(env={"COLUMNS": "200"})


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def as_user(url: str, user: str) -> str:
    """The same database, connecting as ``user`` (trust authentication: no password needed)."""
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


def psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_url(db_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database; its group roles and the test's users are dropped afterwards."""
    if not db_url.startswith("postgresql"):
        pytest.skip("roles are PostgreSQL's")
    yield db_url
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    dbname = make_url(db_url).database
    with admin.connect() as c:
        users = [r[0] for r in c.execute(text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"),
                                         {"p": f"{PREFIX_BASE}%"})]
        groups = [g for g in roles.groups_for(dbname).names()
                  if c.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": g}).first()]
        from psycopg import sql

        raw = c.connection.driver_connection
        for name in users:
            c.exec_driver_sql(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)).as_string(raw))
            c.exec_driver_sql(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)).as_string(raw))
        for name in reversed(groups):  # their grants and tables live in this (about to be dropped) database
            c.exec_driver_sql(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)).as_string(raw))
            c.exec_driver_sql(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)).as_string(raw))
    admin.dispose()


PREFIX_BASE = "mdbt_"


@pytest.fixture
def prefix() -> str:
    return f"{PREFIX_BASE}{uuid.uuid4().hex[:8]}_"


@pytest.fixture
def users(pg_url: str, prefix: str) -> dict[str, str]:
    """A reader, a writer and an admin of the test database: role -> user name."""
    db = matdb.connect(pg_url)
    try:
        names = {role: f"{prefix}{role}" for role in roles.ROLES}
        for role, name in names.items():
            access.add_user(db, name, role)
    finally:
        db.close()
    return names


# --- without a server --------------------------------------------------------------------------------


def test_users_commands_on_sqlite_say_roles_need_postgresql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    for args in (["users", "list"], ["users", "add", "alice", "--role", "reader"], ["users", "remove", "alice"]):
        res = invoke(*args, "--db", url)
        assert res.exit_code == 2
        assert "roles need PostgreSQL" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["Alice", "1abc", "a-b", "bob; DROP ROLE postgres", 'x"y', "", "a" * 64, "pg_mine",
                                  "émile"])
def test_user_names_are_safe_identifiers(name: str) -> None:
    with pytest.raises(roles.RoleError, match="user name"):
        roles.check_name(name)


@pytest.mark.parametrize("name", ["alice", "_svc", "lab2_reader_01", "a" * 63])
def test_good_user_names(name: str) -> None:
    assert roles.check_name(name) == name


def test_unknown_role_is_refused() -> None:
    with pytest.raises(roles.RoleError, match="choose one of reader, writer, admin"):
        roles.check_role("owner")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("", False), ("0", False)])
def test_readonly_env(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv(access.READONLY_ENV, value)
    assert access.readonly_env() is expected


# --- the server enforces the roles -------------------------------------------------------------------


@pytest.mark.postgres
def test_users_list_shows_each_role(pg_url: str, users: dict[str, str]) -> None:
    res = invoke("users", "list", "--db", pg_url)
    assert res.exit_code == 0, res.output
    db = matdb.connect(pg_url)
    listed = access.list_users(db)
    db.close()
    assert dict(zip(listed["user"], listed["role"], strict=True)) == {n: r for r, n in users.items()}
    assert listed.set_index("user")["createrole"].to_dict() == {users["reader"]: False, users["writer"]: False,
                                                                 users["admin"]: True}
    for name in users.values():
        assert name in res.output


def save_campaign(db: matdb.Database, key: str) -> str:
    """What `matdb propose` writes (the optimiser itself is tested in test_screening_service)."""
    from matdb import store

    fam = matdb.builtin_families()["FAMAPbI3"]
    return store.save_campaign(db, key=key, family=fam, objectives=[{"name": "plqy", "direction": "max"}],
                               settings={}, model_cards={},
                               proposals=[{"key": f"{key}-1", "rank": 1, "formula": "FA0.5MA0.5PbI3",
                                           "params": {"x": 0.5}, "predictions": {}, "acquisition": None}])


REFUSED = [
    "INSERT INTO source (key, kind) VALUES ('intruder', 'user')",
    "UPDATE sample SET note = 'changed'",
    "DELETE FROM result",
    "TRUNCATE result CASCADE",
    "CREATE TABLE intruder (i integer)",
    "ALTER TABLE sample ADD COLUMN intruder integer",
    "DROP TABLE result",
    "UPDATE alembic_version SET version_num = 'x'",
    "SELECT setval('sample_id_seq', 1000)",
]


@pytest.mark.postgres
@pytest.mark.parametrize("statement", REFUSED, ids=[s.split(" (")[0][:32] for s in REFUSED])
def test_a_reader_cannot_change_anything(pg_url: str, users: dict[str, str], statement: str) -> None:
    """Connected with its own credentials, a reader is refused by PostgreSQL, not by matdb."""
    db = matdb.connect(pg_url)
    assert ingest_paths(db, [EXAMPLE], progress=False).ok
    db.close()
    with psycopg.connect(psycopg_dsn(as_user(pg_url, users["reader"]))) as conn:
        assert conn.execute("SELECT count(*) FROM sample").fetchone()[0] > 0  # reading is allowed
        assert conn.execute("SELECT current_user").fetchone()[0] == users["reader"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


@pytest.mark.postgres
def test_a_readers_ingest_fails_with_one_line_and_writes_nothing(pg_url: str, users: dict[str, str]) -> None:
    owner = matdb.connect(pg_url)
    before = owner.table_counts()
    reader = matdb.connect(as_user(pg_url, users["reader"]))
    try:
        assert access.read_only(reader) and roles.current_role(reader) == "reader"
        (outcome,) = ingest_paths(reader, [EXAMPLE], progress=False).files
        assert outcome.status == "rejected"
        assert "permission denied" in outcome.reason and users["reader"] in outcome.reason
        assert "\n" not in outcome.reason
        res = invoke("ingest", str(EXAMPLE), "--db", as_user(pg_url, users["reader"]))
        assert res.exit_code != 0 and "permission denied" in res.output
        with pytest.raises(roles.PermissionDenied, match="permission denied"):
            save_campaign(reader, "c-reader")
    finally:
        reader.close()
    assert owner.table_counts() == before
    owner.close()


@pytest.mark.postgres
def test_a_writer_ingests_and_proposes_and_is_recorded(pg_url: str, users: dict[str, str]) -> None:
    from sqlalchemy import select

    import matdb.models as M

    writer = matdb.connect(as_user(pg_url, users["writer"]))
    try:
        assert not access.read_only(writer) and roles.current_role(writer) == "writer"
        assert ingest_paths(writer, [EXAMPLE], progress=False).ok
        key = save_campaign(writer, "c-writer")
        with writer.session() as s:
            assert set(s.scalars(select(M.Sample.created_by))) == {users["writer"]}
            assert set(s.scalars(select(M.IngestedFile.created_by))) == {users["writer"]}
            assert s.scalar(select(M.Campaign.created_by).where(M.Campaign.key == key)) == users["writer"]
        story = writer.sample(next(iter(writer.samples()["sample_id"])))
        assert story["created_by"] == users["writer"]
        with pytest.raises(roles.RoleError, match="may not manage users"):
            access.add_user(writer, f"{users['writer']}_friend", "admin")
    finally:
        writer.close()


@pytest.mark.postgres
def test_an_admin_adds_and_removes_users_and_migrates(pg_url: str, users: dict[str, str], prefix: str) -> None:
    admin_url = as_user(pg_url, users["admin"])
    newcomer = f"{prefix}newcomer"
    res = invoke("users", "add", newcomer, "--role", "reader", "--password", "it's secret", "--db", admin_url)
    assert res.exit_code == 0, res.output
    assert "added user" in res.output
    res = invoke("users", "add", newcomer, "--role", "writer", "--db", admin_url)
    assert res.exit_code == 2 and "already exists" in res.output
    with psycopg.connect(psycopg_dsn(as_user(pg_url, newcomer))) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM sample")
    res = invoke("users", "remove", newcomer, "--db", admin_url)
    assert res.exit_code == 0 and "removed user" in res.output
    res = invoke("users", "remove", "postgres", "--db", admin_url)
    assert res.exit_code == 2 and "is not a user of database" in res.output
    res = invoke("users", "remove", users["admin"], "--db", admin_url)
    assert res.exit_code == 2 and "connected as" in res.output

    # migrating: the admin rebuilds the newer tables; they are the admin group's and, through the
    # default privileges, open to writers and readers as before
    db = matdb.connect(admin_url)
    try:
        db._migrate("downgrade", "0001")
        db.upgrade()
        assert db.current_revision() == db.head_revision()
    finally:
        db.close()
    g = roles.groups_for(make_url(pg_url).database)
    with psycopg.connect(psycopg_dsn(pg_url)) as conn:
        owners = {r[0] for r in conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename IN ('series', 'candidate_pool', 'saved_model_family')")}
        assert owners == {g.admin}
        can = conn.execute("SELECT has_table_privilege(%s, 'series', 'INSERT'), "
                           "has_sequence_privilege(%s, 'series_id_seq', 'USAGE'), "
                           "has_table_privilege(%s, 'series', 'SELECT'), has_table_privilege(%s, 'series', 'INSERT')",
                           (users["writer"], users["writer"], users["reader"], users["reader"])).fetchone()
        assert can == (True, True, True, False)
    writer = matdb.connect(as_user(pg_url, users["writer"]))
    assert ingest_paths(writer, [EXAMPLE], progress=False).ok
    writer.close()


@pytest.mark.postgres
def test_adding_users_twice_sets_the_groups_up_once(pg_url: str, prefix: str) -> None:
    db = matdb.connect(pg_url)
    try:
        for i in range(2):
            access.add_user(db, f"{prefix}r{i}", "reader")
        assert len(access.list_users(db)) == 2
    finally:
        db.close()


# --- the read-only UI ----------------------------------------------------------------------------


def _populate(url: str, folder: Path) -> None:
    db = matdb.connect(url)
    try:
        assert ingest_paths(db, [EXAMPLE], progress=False).ok
    finally:
        db.close()


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def _assert_read_only(at_ingest: AppTest, at_screening: AppTest) -> None:
    assert [i.value for i in at_ingest.info] == [access.READ_ONLY_INFO]
    assert not at_ingest.get("file_uploader")
    assert access.READ_ONLY_INFO in [i.value for i in at_screening.info]
    assert [h.value for h in at_screening.header][-1] == "Propose the next batch"
    assert "sc_propose" not in [b.key for b in at_screening.button]
    assert not at_screening.error


def test_readonly_env_hides_ingest_and_propose(sqlite_template: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'ro.sqlite'}"
    Path(tmp_path / "ro.sqlite").write_bytes(sqlite_template.read_bytes())
    _populate(url, tmp_path)
    monkeypatch.setenv("MATDB_URL", url)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv(access.READONLY_ENV, "1")
    _assert_read_only(_page("ingest"), _page("screening"))
    monkeypatch.delenv(access.READONLY_ENV)
    at = _page("ingest")
    assert at.get("file_uploader") and access.READ_ONLY_INFO not in [i.value for i in at.info]


@pytest.mark.postgres
def test_a_reader_role_gets_the_read_only_ui(pg_url: str, users: dict[str, str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _populate(as_user(pg_url, users["writer"]), tmp_path)
    monkeypatch.delenv(access.READONLY_ENV, raising=False)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("MATDB_URL", as_user(pg_url, users["reader"]))
    ingest_page, screening_page = _page("ingest"), _page("screening")
    _assert_read_only(ingest_page, screening_page)
    explore = _page("explore")
    assert len(explore.dataframe[0].value) > 0  # a reader still browses
    monkeypatch.setenv("MATDB_URL", as_user(pg_url, users["writer"]))
    at = _page("screening")
    assert "sc_propose" in [b.key for b in at.button]


def test_train_on_a_read_only_server_says_the_model_was_not_stored(sqlite_template: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """MATDB_READONLY=1: `matdb train` still shows the card, says it stored nothing, and stores nothing."""
    from matdb import store

    url = f"sqlite:///{tmp_path / 'ro.sqlite'}"
    Path(tmp_path / "ro.sqlite").write_bytes(sqlite_template.read_bytes())
    assert invoke("init", "--bundled", "--db", url).exit_code == 0
    monkeypatch.setenv(access.READONLY_ENV, "1")
    r = invoke("train", "--family", "CsPbI3-agZIF62", "--db", url)
    assert r.exit_code == 0, r.output
    assert "n_train=3" in r.output and "not stored" in r.output
    db = matdb.connect(url)
    try:
        assert store.saved_models(db).empty
    finally:
        db.close()
    monkeypatch.delenv(access.READONLY_ENV)
    r = invoke("train", "--family", "CsPbI3-agZIF62", "--kind", "gp", "--db", url)
    assert r.exit_code == 0 and "not stored" not in r.output
    db = matdb.connect(url)
    try:
        assert len(store.saved_models(db)) == 1
    finally:
        db.close()
