"""Who may do what: database users (``matdb users``) and the read-only mode of the served UI.

Users and their roles are PostgreSQL login roles (see :mod:`matdb.roles`); PostgreSQL itself
refuses a reader's writes. The served UI is read-only (no Ingest page, no proposing) when
``MATDB_READONLY`` is set to 1/true/yes, or when the database user it connects as may not write
(PostgreSQL's ``has_table_privilege``): the pages ask :func:`read_only` and show
:data:`READ_ONLY_INFO` instead.
"""

from __future__ import annotations

import os

import pandas as pd

from matdb import roles
from matdb.db import Database

READONLY_ENV = "MATDB_READONLY"
ROLES = roles.ROLES
RoleError = roles.RoleError

READ_ONLY_INFO = ("This server is read-only: loading data and proposing experiments are switched off here "
                  "(the database user may only read, or the server was started with MATDB_READONLY=1). "
                  "Browse, plot, rank and download as usual.")


def readonly_env() -> bool:
    return os.environ.get(READONLY_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def read_only(db: Database) -> bool:
    """True when the UI must not offer writing: ``MATDB_READONLY`` set, or a user that may not write."""
    return readonly_env() or not roles.can_write(db)


def add_user(db: Database, name: str, role: str, password: str | None = None) -> str:
    """Create a database user with ``role`` (reader|writer|admin); returns a one-line summary."""
    g = roles.add_user(db, name, role, password)
    return f"added user '{name}' as {role} (member of {g.of(role)})"


def list_users(db: Database) -> pd.DataFrame:
    return roles.list_users(db)


def remove_user(db: Database, name: str) -> str:
    role = roles.remove_user(db, name)
    return f"removed user '{name}' ({role})"
