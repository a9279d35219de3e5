"""Resource limits on input files: every reader checks them while reading, before memory is spent.

One :class:`Limits` object is passed down from the caller (``matdb ingest --limit KEY=VALUE``, the
Ingest page, :func:`ingest.pipeline.ingest_paths`) to every reader. A file over a limit is rejected
with a one-line :class:`LimitError` naming the file and the limit (and how to raise it); nothing
is written.

The defaults are generous for lab and literature files (the largest bundled record file is 56 KB,
a TLIS run of 1 000 spectra x 2 048 pixels is 2 million points) and small enough that a shared
server survives a hostile upload. Where a standard exists the default follows it:

* ``table_rows`` / ``table_columns``: the worksheet size of Microsoft Excel (1 048 576 rows x
  16 384 columns, "Excel specifications and limits").
* ``xlsx_ratio``: Apache POI's zip-bomb guard for OOXML files (``ZipSecureFile`` minimum inflate
  ratio 0.01, i.e. an entry may decompress to at most 100 times its compressed size).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields

from ingest.errors import IngestError

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource limits of one ingest (see the module docstring; README "Limits on input")."""

    records_mb: float = 20.0
    """size of a YAML/JSON record file (also sidecars and mapping files)"""
    csv_mb: float = 100.0
    """size of a CSV table or TLIS run"""
    xlsx_mb: float = 50.0
    """size of an XLSX workbook (compressed, as stored)"""
    spectrum_mb: float = 50.0
    """size of a pattern or spectrum file (.xy, .jdx, two-column CSV, .npy, watched-folder spectra)"""
    structure_mb: float = 20.0
    """size of a structure file (CIF, POSCAR, extxyz)"""
    yaml_nodes: int = 1_000_000
    """values in a record document, counting every expansion of a YAML alias"""
    depth: int = 64
    """nesting depth of a record document (mappings and lists inside each other)"""
    text_chars: int = 100_000
    """characters of one text value (note, text, conditions, any free-form field)"""
    xlsx_unzipped_mb: float = 500.0
    """decompressed size of all parts of an XLSX workbook"""
    xlsx_ratio: float = 100.0
    """decompressed / compressed size of one part of an XLSX workbook (Apache POI's guard)"""
    xlsx_cells: int = 5_000_000
    """cells of the first worksheet of an XLSX workbook"""
    table_rows: int = 1_048_576
    """data rows of a table (Excel's worksheet limit)"""
    table_columns: int = 16_384
    """columns of a table (Excel's worksheet limit)"""
    spectrum_points: int = 10_000_000
    """points of one spectrum or run: time points x wavelengths (8 bytes each as float)"""

    def bytes_of(self, key: str) -> int:
        """A ``*_mb`` limit in bytes."""
        return round(getattr(self, key) * MB)

    def replace(self, **changes: float) -> Limits:
        # mypy checks each change against its field's type, and float is not int (the counts);
        # parse_limits gives the int fields int values
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # float for int fields: see above


#: The limits of a call that does not give any.
DEFAULT = Limits()

#: Every key a user can set (besides ``file_mb``).
KEYS: tuple[str, ...] = tuple(f.name for f in fields(Limits))

#: ``file_mb`` sets every per-format file size limit at once.
FILE_SIZE_KEYS = ("records_mb", "csv_mb", "xlsx_mb", "spectrum_mb", "structure_mb")


class LimitError(IngestError):
    """A file over a resource limit; names the file and the limit (``key``)."""

    def __init__(self, key: str, message: str, *, file: str | None = None, line: int | None = None,
                 limits: Limits | None = None) -> None:
        value = getattr(limits or DEFAULT, key)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        super().__init__(f"{message}: over the limit {key}={shown} (raise it with "
                         f"--limit {key}=N if the file is genuine); nothing was written",
                         file=file, line=line)
        self.key = key


class LimitSpecError(IngestError):
    """A malformed ``--limit KEY=VALUE``."""


def parse_limits(specs: Iterable[str] | None, base: Limits = DEFAULT) -> Limits:
    """``["yaml_nodes=1e6", "file_mb=500"]`` -> Limits (unknown keys and bad values are errors)."""
    changes: dict[str, float] = {}
    for spec in specs or ():
        key, sep, raw = str(spec).partition("=")
        key = key.strip()
        if not sep:
            raise LimitSpecError(f"--limit '{spec}': write KEY=VALUE, e.g. yaml_nodes=2e6")
        keys = FILE_SIZE_KEYS if key == "file_mb" else (key,)
        if key != "file_mb" and key not in KEYS:
            raise LimitSpecError(f"--limit '{spec}': unknown limit '{key}'; known: file_mb, "
                                 f"{', '.join(KEYS)}")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise LimitSpecError(f"--limit '{spec}': the value must be a positive number")
        for k in keys:
            is_int = isinstance(getattr(base, k), int)
            if is_int and value != int(value):
                raise LimitSpecError(f"--limit '{spec}': {k} is a whole number")
            changes[k] = int(value) if is_int else value
    return base.replace(**changes)


def describe() -> list[tuple[str, str, str]]:
    """(key, default, description) of every limit, for the README and ``--help``."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    tree = ast.parse(inspect.getsource(Limits))
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)  # the source of one class
    body = cls.body
    for a, b in zip(body, body[1:], strict=False):
        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr) \
                and isinstance(b.value, ast.Constant):
            docs[a.target.id] = str(b.value.value)
    out = [("file_mb", "-", "sets every *_mb file size limit at once")]
    for f in fields(Limits):
        v = getattr(DEFAULT, f.name)
        out.append((f.name, f"{v:g}" if isinstance(v, float) else str(v), docs.get(f.name, "")))
    return out


def check_size(path: str | os.PathLike[str], key: str, limits: Limits) -> None:
    """Refuse a file larger than the ``key`` limit (from its size on disk, before reading it)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # the reader reports a missing or unreadable file itself
    if size > limits.bytes_of(key):
        raise LimitError(key, f"the file is {size / MB:.1f} MB", file=str(path), limits=limits)


def check_count(n: int, key: str, what: str, limits: Limits, *, file: object = None,
                line: int | None = None) -> None:
    """Refuse ``n`` things (rows, points, cells, nodes) over the ``key`` limit."""
    if n > getattr(limits, key):
        raise LimitError(key, what, file=None if file is None else str(file), line=line, limits=limits)
