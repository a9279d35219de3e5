"""Database users and what they may do, enforced by PostgreSQL itself (the multi-user backend).

Each matdb database gets three group roles, named after the database (database ``matdb`` gives
``matdb_reader``, ``matdb_writer`` and ``matdb_admin``), so two matdb databases on one server do
not share readers:

- **reader**: ``SELECT`` on matdb's tables, nothing else;
- **writer** (member of reader): ``INSERT``/``UPDATE``/``DELETE`` on the data tables and use of
  their sequences: ingest, propose, save models and pools (not the Alembic version table);
- **admin** (member of writer): owns matdb's tables, may ``CREATE`` in the schema (migrations,
  ``matdb init``); admin *users* also get ``CREATEROLE`` and the groups with ``ADMIN OPTION`` so
  they can add and remove users.

Users are login roles that are members of one group, so tables added by a later migration are
covered too: migrations run as the admin group (``SET LOCAL ROLE``, see :func:`use_admin_group`),
and ``ALTER DEFAULT PRIVILEGES FOR ROLE <admin group>`` grants the new tables to readers and
writers. Every statement is composed with ``psycopg.sql`` (identifiers quoted, passwords as
literals), never formatted into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.engine import make_url

from matdb.db import DatabaseError
from matdb.models import Base

if TYPE_CHECKING:
    from matdb.db import Database

ROLES = ("reader", "writer", "admin")
#: A user name: lower-case letters, digits and ``_``, starting with a letter or ``_``; at most 63
#: characters (PostgreSQL's NAMEDATALEN - 1). Upper case would need quoting in every psql session.
NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MAX_NAME = 63
_VERSION_TABLE = "alembic_version"
_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")


class RoleError(DatabaseError):
    """A user-management request that cannot be done (SQLite, bad name, unknown user, no right)."""


class PermissionDenied(DatabaseError):
    """PostgreSQL refused a write: the connected user's role does not allow it."""


@dataclass(frozen=True)
class Groups:
    reader: str
    writer: str
    admin: str

    def of(self, role: str) -> str:
        return str(getattr(self, role))

    def names(self) -> tuple[str, str, str]:
        return (self.reader, self.writer, self.admin)


def groups_for(database: str) -> Groups:
    """The group roles of the database named ``database``."""
    g = Groups(*(f"{database}_{r}" for r in ROLES))
    if len(g.writer) > MAX_NAME:
        raise RoleError(f"database name '{database}' is too long for its role names "
                        f"(at most {MAX_NAME - len('_writer')} characters)")
    return g


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise RoleError(f"user name {name!r}: use lower-case letters, digits and _ (starting with a letter or _), "
                        f"at most {MAX_NAME} characters")
    if name.startswith("pg_"):
        raise RoleError(f"user name {name!r}: names starting with pg_ are reserved by PostgreSQL")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise RoleError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def _require_pg(db: Database) -> None:
    if db.dialect != "postgresql":
        raise RoleError(f"roles need PostgreSQL: {db!r} is a SQLite file (one user: whoever can write the file)")


@contextmanager
def _cursor(db: Database) -> Iterator[Any]:
    """A psycopg cursor in one transaction (committed at the end, rolled back on an error)."""
    import psycopg

    _require_pg(db)
    try:
        with db.write_engine.begin() as conn:
            with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
                yield cur
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RoleError(f"not allowed: {str(exc).splitlines()[0]} (user management needs an admin)") from exc
    except psycopg.errors.DependentObjectsStillExist as exc:
        raise RoleError(f"{str(exc).splitlines()[0]}: the role still owns objects or holds privileges; "
                        "reassign or revoke them first (REASSIGN OWNED / DROP OWNED)") from exc


def _database(cur: Any) -> tuple[str, str]:
    cur.execute("SELECT current_database(), current_schema()")
    return cur.fetchone()


def _exists(cur: Any, role: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return cur.fetchone() is not None


def _member(cur: Any, member: str, group: str) -> bool:
    cur.execute("SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname = %s AND g.rolname = %s", (member, group))
    return cur.fetchone() is not None


def _matdb_tables(cur: Any, schema: str) -> list[str]:
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    present = {r[0] for r in cur.fetchall()}
    return sorted(present & ({*Base.metadata.tables, _VERSION_TABLE}))


def ensure_groups(db: Database) -> Groups:
    """Create this database's group roles and their grants if they are missing (idempotent)."""
    with _cursor(db) as cur:
        return _ensure_groups(cur)


def _ensure_groups(cur: Any) -> Groups:
    from psycopg import sql

    database, schema = _database(cur)
    g = groups_for(database)
    ident = sql.Identifier
    for name in g.names():
        if not _exists(cur, name):
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(name)))
    for member, group in ((g.writer, g.reader), (g.admin, g.writer)):
        if not _member(cur, member, group):
            cur.execute(sql.SQL("GRANT {} TO {}").format(ident(group), ident(member)))
    cur.execute("SELECT has_schema_privilege(%s, %s, 'USAGE'), has_schema_privilege(%s, %s, 'CREATE')",
                (g.reader, schema, g.admin, schema))
    usage, create = cur.fetchone()
    if not usage:
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident(schema), ident(g.reader)))
    if not create:
        cur.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(ident(schema), ident(g.admin)))
    tables = _matdb_tables(cur, schema)
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tableowner <> %s", (schema, g.admin))
    foreign_owned = {r[0] for r in cur.fetchall()}
    for t in tables:
        if t in foreign_owned:  # the sequences of its serial columns follow the table
            cur.execute(sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(ident(schema), ident(t), ident(g.admin)))
    if tables:
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
        data = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables if t != _VERSION_TABLE)
        cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(names, ident(g.reader)))
        cur.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(data, ident(g.writer)))
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = %s AND pg_get_userbyid(c.relowner) = %s", (schema, g.admin))
    sequences = [r[0] for r in cur.fetchall()]
    if sequences:
        cur.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(schema, s) for s in sequences), ident(g.writer)))
    # tables and sequences a later migration creates (run as the admin group)
    default = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT ").format(ident(g.admin), ident(schema))
    cur.execute(default + sql.SQL("SELECT ON TABLES TO {}").format(ident(g.reader)))
    cur.execute(default + sql.SQL("SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}").format(ident(g.writer)))
    cur.execute(default + sql.SQL("USAGE, SELECT ON SEQUENCES TO {}").format(ident(g.writer)))
    return g


def _require_manager(cur: Any) -> None:
    cur.execute("SELECT current_user, rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    user, ok = cur.fetchone()
    if not ok:
        raise RoleError(f"the database user '{user}' may not manage users: connect as a matdb admin "
                        "or the database owner")


def add_user(db: Database, name: str, role: str, password: str | None = None) -> Groups:
    """Create login role ``name`` as a member of this database's ``role`` group."""
    from psycopg import sql

    check_name(name)
    check_role(role)
    with _cursor(db) as cur:
        _require_manager(cur)
        g = _ensure_groups(cur)
        if name in g.names():
            raise RoleError(f"user name '{name}' is one of matdb's group roles; choose another")
        if _exists(cur, name):
            raise RoleError(f"a role named '{name}' already exists on this server; remove it first "
                            "(`matdb users remove`) or choose another name")
        opts: list[sql.Composable] = [sql.SQL("LOGIN")]
        if role == "admin":
            opts.append(sql.SQL("CREATEROLE"))
        if password is not None:
            opts.append(sql.SQL("PASSWORD {}").format(sql.Literal(password)))
        cur.execute(sql.SQL("CREATE ROLE {} WITH {}").format(sql.Identifier(name), sql.SQL(" ").join(opts)))
        if role == "admin":  # every group with ADMIN OPTION: the admin may add and remove users
            cur.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
                sql.SQL(", ").join(sql.Identifier(n) for n in g.names()), sql.Identifier(name)))
        else:
            cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(g.of(role)), sql.Identifier(name)))
    return g


def _user_roles(cur: Any, g: Groups) -> dict[str, str]:
    """Login roles that are members of this database's groups -> their highest role."""
    cur.execute("SELECT r.rolname, gr.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "JOIN pg_roles gr ON gr.oid = m.roleid WHERE gr.rolname = ANY(%s) AND r.rolcanlogin",
                (list(g.names()),))
    rank = {g.of(r): i for i, r in enumerate(ROLES)}
    best: dict[str, int] = {}
    for user, group in cur.fetchall():
        best[user] = max(best.get(user, -1), rank[group])
    return {u: ROLES[i] for u, i in sorted(best.items())}


def list_users(db: Database) -> pd.DataFrame:
    """The users of this database: user, role, createrole, superuser."""
    cols = ["user", "role", "createrole", "superuser"]
    with _cursor(db) as cur:
        database, _schema = _database(cur)
        g = groups_for(database)
        users = _user_roles(cur, g)
        rows = []
        for user, role in users.items():
            cur.execute("SELECT rolcreaterole, rolsuper FROM pg_roles WHERE rolname = %s", (user,))
            createrole, superuser = cur.fetchone()
            rows.append((user, role, bool(createrole), bool(superuser)))
    return pd.DataFrame(rows, columns=cols)


def remove_user(db: Database, name: str) -> str:
    """Drop login role ``name`` (a user of this database); returns the role it had."""
    from psycopg import sql

    check_name(name)
    with _cursor(db) as cur:
        _require_manager(cur)
        database, _schema = _database(cur)
        g = groups_for(database)
        role = _user_roles(cur, g).get(name)
        if role is None:
            raise RoleError(f"'{name}' is not a user of database '{database}' (see `matdb users list`)")
        cur.execute("SELECT current_user")
        if cur.fetchone()[0] == name:
            raise RoleError(f"'{name}' is the user you are connected as; remove it while connected as another admin")
        cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    return role


def current_role(db: Database) -> str | None:
    """The connected user's matdb role on PostgreSQL (``None``: not a matdb user, e.g. the owner)."""
    _require_pg(db)
    with _cursor(db) as cur:
        database, _schema = _database(cur)
        g = groups_for(database)
        cur.execute("SELECT current_user")
        user = cur.fetchone()[0]
        return _user_roles(cur, g).get(user)


def can_write(db: Database) -> bool:
    """Whether the connected user may write matdb's data (``INSERT`` on ``sample``, PostgreSQL's own
    answer); always True on SQLite, where the file's permissions decide."""
    if db.dialect != "postgresql":
        return True
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT has_table_privilege(current_user, 'sample', 'INSERT')")).scalar_one())


def use_admin_group(conn: Any) -> None:
    """Run the rest of this transaction (a migration) as the admin group when it exists and the
    connected user belongs to it, so new tables are the group's and the default privileges cover
    them. A no-op on SQLite and for databases without matdb users."""
    if conn.dialect.name != "postgresql":
        return
    from psycopg import sql
    from sqlalchemy import text

    database = conn.execute(text("SELECT current_database()")).scalar_one()
    admin = groups_for(database).admin
    ok = conn.execute(text("SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r WHERE r.rolname = :n"),
                      {"n": admin}).scalar()
    if ok:
        raw = conn.connection.driver_connection
        conn.exec_driver_sql(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(admin)).as_string(raw))


def permission_denied(db_url: str, exc: BaseException) -> PermissionDenied | None:
    """A :class:`PermissionDenied` for a driver error that is PostgreSQL refusing a write, else None."""
    orig = getattr(exc, "orig", None)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return None
    if not isinstance(orig, psycopg.errors.InsufficientPrivilege):
        return None
    user = make_url(db_url).username or "this user"
    return PermissionDenied(f"{str(orig).splitlines()[0]}: the database user '{user}' may not change matdb's data "
                            "(a reader); nothing was written. A writer or admin role is needed (`matdb users add`)")
