"""Store functions: every SQLAlchemy statement above the ORM lives in ``matdb/`` (here and in
``matdb.query``), so nothing above ``matdb/`` needs SQL."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from matdb import models as M
from matdb.families import Family, builtin_families


def ensure_family(s: Session, family: Family) -> int:
    """The id of ``family``'s row, inserting it (with its definition) if it is not stored yet."""
    row_id = s.scalar(select(M.Family.id).where(M.Family.slug == family.slug))
    if row_id is not None:
        return int(row_id)
    row = M.Family(slug=family.slug, name=family.name, structure=family.structure,
                   builtin=family.slug in builtin_families(), definition=family.to_dict())
    s.add(row)
    s.flush()
    return int(row.id)


def current_user(s: Session) -> str:
    """The database user writing in this session: PostgreSQL's ``current_user``; on SQLite (one
    file, no users) the operating-system user."""
    if s.get_bind().dialect.name == "postgresql":
        return str(s.scalar(text("SELECT current_user")))
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
