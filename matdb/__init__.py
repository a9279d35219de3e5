"""matdb: materials database and screening for mechanochemically made metal halide perovskites."""

from __future__ import annotations

__version__ = "0.1.0"

from matdb.db import Database, DatabaseError, connect, default_url  # noqa: E402
from matdb.families import CompositionError, Family, builtin_families, get_family  # noqa: E402

__all__ = [
    "CompositionError",
    "Database",
    "DatabaseError",
    "Family",
    "builtin_families",
    "connect",
    "default_url",
    "get_family",
]
