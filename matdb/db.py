"""The connection facade: ``matdb.connect(url)`` for SQLite (default) and PostgreSQL.

    >>> import matdb
    >>> db = matdb.connect()                      # SQLite in the user data directory
    >>> db = matdb.connect("sqlite:///lab.db")     # or a file you choose
    >>> db = matdb.connect("postgresql+psycopg://user@host/matdb")
    >>> db.results(family="FAMAPbI3", quantity="steady_state_time", params={"x": (0.2, 0.8)})
    >>> db.select("family=FASnIBr,quantity=pl_peak,value<850")

SQLite runs in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` for writes, so two ingest
processes on one file queue instead of failing with "database is locked".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from matdb import families as fam
from matdb import vocabulary
from matdb.models import Base, Family, QuantityDefinition

ENV_URL = "MATDB_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000


class DatabaseError(RuntimeError):
    """The database cannot be used (unreachable, wrong schema version, bad URL)."""


def default_url() -> str:
    """``$MATDB_URL``, else a SQLite file in the user data directory."""
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    from platformdirs import user_data_dir

    path = Path(user_data_dir("matdb", appauthor=False)) / "matdb.sqlite"
    return f"sqlite:///{path}"


def normalize_url(url: str | os.PathLike[str] | None) -> str:
    """Accept a URL, a plain file path (SQLite) or None (the default)."""
    if url is None:
        return default_url()
    s = os.fspath(url)
    if "://" not in s:
        return f"sqlite:///{Path(s).expanduser().resolve()}"
    if s.startswith("postgresql://") or s.startswith("postgres://"):
        s = "postgresql+psycopg://" + s.split("://", 1)[1]
    return s


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    u = make_url(url)
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    eng = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(eng, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return eng


class Database:
    """A matdb database. Use :func:`connect` to get one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        elif self.dialect == "postgresql":
            self.engine = create_engine(url, pool_pre_ping=True)
            self.write_engine = self.engine
        else:
            raise DatabaseError(f"unsupported database '{self.dialect}': use sqlite:/// or postgresql+psycopg://")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"<matdb.Database {make_url(self.url).render_as_string(hide_password=True)}>"

    # -- schema ------------------------------------------------------------------------------

    def alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("matdb") / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Create or migrate the schema to ``revision`` (default: the newest Alembic revision)."""
        self._migrate("upgrade", revision)

    def _migrate(self, direction: str, revision: str) -> None:
        from alembic import command

        cfg = self.alembic_config()
        with self.write_engine.connect() as conn:
            if self.dialect == "sqlite":
                # SQLite alters a table by copying it and dropping the old one; with foreign keys on,
                # that DROP would cascade-delete child rows (results of a measurement). The pragma
                # only takes effect outside a transaction, so it is set before the migration begins.
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]  # open here
            from matdb.roles import use_admin_group

            use_admin_group(conn)  # PostgreSQL with matdb users: new tables belong to the admin group
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, revision)
            conn.commit()
            if self.dialect == "sqlite":
                bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                conn.rollback()
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]  # open here
                if bad:
                    raise DatabaseError(f"migration left {len(bad)} rows with broken references: {bad[:3]}")

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()  # type: ignore[return-value]

    def is_initialized(self) -> bool:
        return self.current_revision() is not None

    def check_schema(self) -> None:
        cur, head = self.current_revision(), self.head_revision()
        if cur is None:
            raise DatabaseError(f"{self!r} has no matdb schema; run `matdb init`")
        if cur != head:
            raise DatabaseError(f"{self!r} is at schema revision {cur}, matdb needs {head}; run `matdb init`")

    # -- sessions ----------------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session (no writes expected)."""
        with self._read() as s:
            yield s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on any exception. PostgreSQL refusing
        the write (a reader's role) becomes a :class:`matdb.roles.PermissionDenied`."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self._write() as s, s.begin():
                yield s
        except DBAPIError as exc:
            from matdb.roles import permission_denied

            denied = permission_denied(self.url, exc)
            if denied is None:
                raise
            raise denied from exc

    def close(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- registry from the database ----------------------------------------------------------

    def families(self) -> dict[str, fam.Family]:
        """Built-in and user-defined families, by slug."""
        out = dict(fam.builtin_families())
        with self.session() as s:
            for row in s.scalars(select(Family).where(Family.builtin.is_(False))):
                out[row.slug] = fam.Family.from_dict(row.definition)
        return out

    def quantities(self) -> dict[str, vocabulary.QuantityDef]:
        """User-declared quantities (in addition to matdb.vocabulary.QUANTITIES)."""
        with self.session() as s:
            return {
                q.name: vocabulary.QuantityDef(q.name, q.unit, q.label, q.min, q.max, q.categorical, q.description,
                                               q.direction, q.precision)  # type: ignore[arg-type]
                for q in s.scalars(select(QuantityDefinition))
            }

    def table_counts(self) -> dict[str, int]:
        names = inspect(self.engine).get_table_names()
        out = {}
        with self.engine.connect() as conn:
            for t in sorted(Base.metadata.tables):
                if t in names:
                    out[t] = conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()  # noqa: S608 (table names are ours)
        return out

    # -- query API (see matdb.query) -----------------------------------------------------------

    def results(self, **filters: Any) -> pd.DataFrame:
        from matdb.query import results

        return results(self, **filters)

    def samples(self, **filters: Any) -> pd.DataFrame:
        from matdb.query import samples

        return samples(self, **filters)

    def select(self, query: str = "", **filters: Any) -> pd.DataFrame:
        from matdb.query import parse_query, results

        return results(self, **{**parse_query(query), **filters})

    def sample(self, key: str) -> dict[str, Any]:
        from matdb.query import sample_story

        return sample_story(self, key)

    def array(self, measurement_key: str, kind: str | None = None) -> dict[str, Any]:
        from matdb.query import load_array

        return load_array(self, measurement_key, kind)

    def export(self, **filters: Any) -> pd.DataFrame:
        from matdb.export import tidy_results

        return tidy_results(self, **filters)


def connect(url: str | os.PathLike[str] | None = None, *, create: bool = True) -> Database:
    """Open a matdb database by URL (``sqlite:///path``, ``postgresql+psycopg://...``) or path.

    With ``create=True`` (the default) a new, empty database gets the schema; an existing one
    must be at the current schema revision (``matdb init`` migrates it).
    """
    db = Database(normalize_url(url))
    try:
        if create and not db.is_initialized():
            db.upgrade()
        db.check_schema()
    except DatabaseError:
        db.close()
        raise
    except Exception as exc:  # driver errors: unreachable server, bad credentials
        db.close()
        raise DatabaseError(f"cannot open {db!r}: {exc.__class__.__name__}: {exc}".splitlines()[0]) from exc
    return db
