"""Writing validated documents into the database: atomic, idempotent, with history.

One document is one transaction. Every keyed record (synthesis, sample, measurement) carries the
hash of its canonical content: loading identical content again changes nothing; different content
under an existing key is refused unless ``update=True``, which keeps the old version in
``record_version``. Nothing is ever silently duplicated.

The write path works on whole documents, not record by record: the existing keys, content hashes,
materials and sources a document refers to are fetched in a few chunked ``IN (...)`` queries, new
rows get their primary keys up front (one ``nextval`` query per table on PostgreSQL; under SQLite's
single write lock, ``max(id) + 1``...) and are written in bulk through the driver of the session's
own connection (``executemany`` on SQLite, ``COPY`` on PostgreSQL), inside the caller's
transaction. Driver errors are re-raised as SQLAlchemy ``DBAPIError``s (``IntegrityError`` for a
unique-key collision with a concurrent writer), so callers retry as they would for ORM writes.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import JSON, Boolean, Float, Integer, LargeBinary, Table, delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from ingest.errors import IngestError
from ingest.validate import Prepared
from matdb import models as M
from matdb.arrays import ArrayData, encode
from matdb.store import current_user
from matdb.vocabulary import provenance_of_source

#: Keys per ``IN (...)`` query (far below SQLite's and PostgreSQL's bound-parameter limits).
CHUNK = 2000

SYNTHESIS_COLUMNS = (*M.SYNTHESIS_SETTINGS, "proposal_id", "note", "inferred", "inferred_reason")
STEP_COLUMNS = ("position", "kind", "duration_min", "temperature_c", "atmosphere", "frequency_hz", "frequency_rpm",
                "note", "inferred", "inferred_reason")
#: Fields added to the record format after records were first stored: left out of a record's content
#: hash while they have their default value, so re-loading an unchanged file stays "unchanged".
_OPTIONAL_FIELDS = frozenset({"inferred", "inferred_reason", "outcome", "sample", "series"})


def _without_defaults(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_defaults(v) for k, v in obj.items()
                if not (k in _OPTIONAL_FIELDS and (v is None or v is False))}
    if isinstance(obj, list):
        return [_without_defaults(v) for v in obj]
    return obj


@dataclass
class LoadSummary:
    """What loading one document did."""

    file: str
    status: str = "unchanged"  # added | unchanged | updated
    counts: Counter[str] = field(default_factory=Counter)

    def note(self, entity: str, what: str, n: int = 1) -> None:
        if n <= 0:
            return
        self.counts[f"{entity}.{what}"] += n
        if what == "added" and self.status == "unchanged":
            self.status = "added"
        if what == "updated":
            self.status = "updated"


# --- canonical JSON -----------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _dumps(obj: Any) -> str:
    """JSON text of a column value (numpy scalars/arrays and paths made plain)."""
    if not obj and isinstance(obj, dict):
        return "{}"
    return json.dumps(obj, default=_json_default)


def hashed_json(obj: Any) -> tuple[str, str]:
    """(content hash, JSON text to store) of a record's content, serialising it once when possible.

    The hash is :func:`ingest.validate.content_hash` (SHA-256 of the canonical JSON). When ``obj``
    holds only JSON types, that text is also the stored content; otherwise the stored content is
    the canonical JSON of :func:`_jsonable` ``(obj)``.
    """
    from ingest.validate import canonical_json

    text, plain = canonical_json(obj)
    h = hashlib.sha256(text.encode()).hexdigest()
    return h, (text if plain else canonical_json(_jsonable(obj))[0])


def _in(column: Any, values: Sequence[Any], dialect: str) -> Any:
    """``column IN (values)``; on PostgreSQL as ``= ANY(array)``: one bound parameter instead of
    thousands, which spares SQLAlchemy and psycopg compiling a huge statement per chunk."""
    if dialect == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, value=list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _table(model: Any) -> Table:
    """The Table of a mapped class (SQLAlchemy types ``__table__`` as a FromClause; a declarative
    class with columns has a Table)."""
    return cast(Table, model.__table__)


def _chunks(seq: Sequence[Any], n: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# --- bulk writing through the session's driver connection ---------------------------------------


class _TableSpec:
    """Column order, value converters and Python-side defaults of one table for bulk inserts.

    ``row(d)`` turns a dict of column values into the tuple the driver binds: missing columns
    get their scalar defaults, JSON columns are serialized, and numpy scalars become plain Python
    numbers. It is generated once per table as straight-line code (no per-column loop), since it
    runs once for each of up to ~10^5 rows of a document.
    """

    def __init__(self, table: Table, with_id: bool) -> None:
        self.table = table
        self.columns = [c for c in table.columns if with_id or c.name != "id"]
        self.names = [c.name for c in self.columns]
        env: dict[str, Any] = {
            "_json": _dumps_or_text,
            "_plain": _PLAIN,
            "_num": _plain_number,
            "_bytes": bytes,
        }
        parts = []
        for k, c in enumerate(self.columns):
            get = f"d.get({c.name!r})"
            if isinstance(c.default, ScalarElementColumnDefault):  # a constant, not a callable or SQL
                env[f"_d{k}"] = c.default.arg
                get = f"d.get({c.name!r}, _d{k})"
            t = c.type
            if isinstance(t, JSON):
                parts.append(f"(None if (v := {get}) is None else _json(v))")
            elif isinstance(t, (Boolean, Float, Integer)):
                parts.append(f"(v if (v := {get}).__class__ in _plain else _num(v))")
            elif isinstance(t, LargeBinary):
                parts.append(f"(None if (v := {get}) is None else _bytes(v))")
            else:
                parts.append(get)
        src = f"def row(d):\n    return ({', '.join(parts)},)\n"
        exec(compile(src, f"<bulk row of {table.name}>", "exec"), env)  # noqa: S102 - our own code
        self.row = env["row"]


#: Value types the drivers bind as they are.
_PLAIN = frozenset({int, float, bool, type(None)})


def _plain_number(v: Any) -> Any:
    """numpy scalars (and other number-likes) -> int/float/bool for the driver."""
    if isinstance(v, np.generic):
        return v.item()
    return v


class _JSONText(str):
    """JSON text that is already serialized (stored as is)."""


def _dumps_or_text(v: Any) -> str:
    return str(v) if isinstance(v, _JSONText) else _dumps(v)


class BulkWriter:
    """Bulk inserts and id allocation on the connection of ``session`` (SQLite or PostgreSQL)."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.conn = session.connection()
        self.dialect = self.conn.dialect.name
        self._specs: dict[tuple[str, bool], _TableSpec] = {}
        self._next_sqlite_id: dict[str, int] = {}

    def _driver(self) -> Any:
        return self.conn.connection.driver_connection

    def _wrap(self, exc: Exception, statement: str) -> Exception:
        dbapi = self.conn.dialect.dbapi
        assert dbapi is not None  # a connected dialect has its DBAPI module
        return DBAPIError.instance(statement, None, exc, dbapi.Error)

    def spec(self, table: Table, with_id: bool) -> _TableSpec:
        key = (table.name, with_id)
        if key not in self._specs:
            self._specs[key] = _TableSpec(table, with_id)
        return self._specs[key]

    def new_ids(self, table: Table, n: int) -> list[int]:
        """``n`` fresh primary keys of ``table`` (reserved from its sequence on PostgreSQL)."""
        if n <= 0:
            return []
        if self.dialect == "postgresql":
            sql = (
                f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                f"FROM generate_series(1, {int(n)})"
            )
            return [r[0] for r in self.conn.exec_driver_sql(sql)]
        start = self._next_sqlite_id.get(table.name)
        if start is None:
            # SQLite writes hold the database's single write lock (BEGIN IMMEDIATE), so no other
            # writer can take these ids before this transaction ends.
            start = self.conn.exec_driver_sql(
                f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table.name}"'
            ).scalar_one()
        self._next_sqlite_id[table.name] = start + n
        return list(range(start, start + n))

    def insert(self, table: Table, rows: Iterable[dict[str, Any]], *, with_id: bool = False) -> int:
        """Insert ``rows`` (dicts by column name; missing columns get their defaults)."""
        spec = self.spec(table, with_id)
        data = [spec.row(r) for r in rows]
        if not data:
            return 0
        self.s.flush()  # ORM objects added earlier go first (foreign keys)
        cols = ", ".join(f'"{c}"' for c in spec.names)
        if self.dialect == "postgresql":
            sql = f'COPY "{table.name}" ({cols}) FROM STDIN'
            try:
                with self._driver().cursor() as cur, cur.copy(sql) as cp:
                    for r in data:
                        cp.write_row(r)
            except Exception as exc:
                raise self._wrap(exc, sql) from exc
        else:
            sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({", ".join("?" * len(spec.names))})'
            try:
                self._driver().executemany(sql, data)
            except Exception as exc:
                raise self._wrap(exc, sql) from exc
        return len(data)


# --- arrays -------------------------------------------------------------------------------------


def array_columns(measurement_id: int, position: int, data: ArrayData) -> dict[str, Any]:
    """Column values of the ``array_result`` row of one array (the blob layout: matdb.arrays)."""
    enc = encode(data)
    return {
        "measurement_id": measurement_id,
        "position": position,
        "kind": data.kind,
        "shape": enc.shape,
        "axes": enc.axes,
        "value_unit": data.value_unit,
        "meta": _jsonable(data.meta),
        "sha256": enc.sha256,
        "nbytes": len(enc.blob),
        "blob": enc.blob,
    }


def array_row(measurement_id: int, position: int, data: ArrayData) -> M.ArrayResult:
    """The database row of one array (values, axis coordinates and reference in one blob)."""
    return M.ArrayResult(**array_columns(measurement_id, position, data))


def _array_fingerprint(a: dict[str, Any]) -> dict[str, Any]:
    data = a["data"]
    return {"kind": data.kind, "sha256": data.fingerprint(), "meta": _jsonable(data.meta)}


# --- the loader ---------------------------------------------------------------------------------


@dataclass
class _Src:
    id: int
    key: str
    kind: str


@dataclass
class _Keyed:
    """A keyed record of the document with its content hash and what to do with it."""

    d: dict[str, Any]
    content: dict[str, Any]
    hash: str
    text: str
    rec: str
    row: Any = None  # existing (id, key, content_hash) or None
    id: int | None = None

    @property
    def row_id(self) -> int:
        """The id (given by _Loader._assign_ids before any row is written)."""
        if self.id is None:
            raise AssertionError(f"{self.rec}: written before its id was assigned")
        return self.id


class _Loader:
    def __init__(self, s: Session, p: Prepared, update: bool, summary: LoadSummary) -> None:
        self.s, self.p, self.update, self.summary = s, p, update, summary
        self.w = BulkWriter(s)
        self.family_ids: dict[str, int] = {}
        self.sources: dict[str, _Src] = {}
        self.source_keys: dict[int, str | None] = {}
        self.chem_ids: dict[str, int] = {}
        self.material_ids: dict[tuple[str, str], int] = {}
        self.versions: list[dict[str, Any]] = []
        self.contents: list[tuple[str, _Keyed]] = []
        self.sample_ingredients: list[tuple[dict[str, Any], str, str]] = []
        self.user = current_user(s)

    def err(self, msg: str, record: str | None = None, fld: str | None = None) -> IngestError:
        return IngestError(msg, file=self.p.file, record=record, field=fld)

    # -- reference data -----------------------------------------------------------------------

    def prefetch_sources(self) -> None:
        keys = set(self.p.sources)
        for d in [*self.p.syntheses, *self.p.samples, *self.p.measurements]:
            if d.get("source"):
                keys.add(d["source"])
        for chunk in _chunks(sorted(keys)):
            for sid, key, kind in self.s.execute(
                select(M.Source.id, M.Source.key, M.Source.kind).where(_in(M.Source.key, chunk, self.w.dialect))
            ):
                self.sources[key] = _Src(sid, key, kind)
                self.source_keys[sid] = key

    def source(self, key: str | None, rec: str) -> _Src:
        if key is None:
            raise self.err("no source given", rec, "source")
        if key in self.sources:
            return self.sources[key]
        d = self.p.sources.get(key)
        found = None
        if d is not None and d.get("doi"):
            found = self.s.execute(
                select(M.Source.id, M.Source.key, M.Source.kind).where(M.Source.doi == d["doi"])
            ).first()
        if found is not None:
            src = _Src(*found)
        else:
            if d is None:
                raise self.err(
                    f"unknown source '{key}' (declare it under 'source' or 'sources')",
                    rec,
                    "source",
                )
            row = M.Source(
                **{
                    k: d.get(k)
                    for k in (
                        "key",
                        "kind",
                        "doi",
                        "title",
                        "year",
                        "journal",
                        "authors",
                        "url",
                        "note",
                    )
                }
            )
            self.s.add(row)
            self.s.flush()
            self.summary.note("source", "added")
            src = _Src(row.id, row.key, row.kind)
        self.sources[key] = src
        self.source_keys[src.id] = src.key
        return src

    def source_key_of(self, source_id: int) -> str | None:
        if source_id not in self.source_keys:
            self.source_keys[source_id] = self.s.scalar(
                select(M.Source.key).where(M.Source.id == source_id)
            )
        return self.source_keys[source_id]

    def family(self, slug: str) -> int:
        if slug in self.family_ids:
            return self.family_ids[slug]
        from matdb.families import builtin_families

        row = self.s.scalar(select(M.Family).where(M.Family.slug == slug))
        fam = self.p.families.get(slug) or builtin_families().get(slug)
        if row is None:
            if fam is None:
                raise self.err(f"unknown family '{slug}'", None, "family")
            row = M.Family(
                slug=slug,
                name=fam.name,
                structure=fam.structure,
                builtin=slug in builtin_families(),
                definition=fam.to_dict(),
            )
            self.s.add(row)
            self.s.flush()
            self.summary.note("family", "added")
        elif slug in self.p.families and fam is not None and row.definition != fam.to_dict():  # fam from p.families
            if not self.update:
                raise self.err(
                    f"family '{slug}' exists with a different definition; use --update",
                    f"family {slug}",
                    "definition",
                )
            row.definition = fam.to_dict()
            self.s.flush()
            self.summary.note("family", "updated")
        self.family_ids[slug] = row.id
        return row.id

    def materials(self) -> None:
        """Find or create every composition the document mentions (a few queries in all)."""
        comps: dict[tuple[str, str], dict[str, Any]] = {}
        for d in [*self.p.syntheses, *self.p.samples, *self.p.measurements]:
            c = d.get("material")
            if c is not None:
                comps.setdefault((c["family"], c["params_key"]), c)
        if not comps:
            return
        by_family: dict[int, list[str]] = {}
        for slug, pk in comps:
            by_family.setdefault(self.family(slug), []).append(pk)
        slug_of = {v: k for k, v in self.family_ids.items()}
        for fid, pks in by_family.items():
            for chunk in _chunks(sorted(set(pks))):
                q = select(M.Material.id, M.Material.params_key).where(
                    M.Material.family_id == fid, _in(M.Material.params_key, chunk, self.w.dialect)
                )
                for mid, pk in self.s.execute(q):
                    self.material_ids[(slug_of[fid], pk)] = mid
        missing = [k for k in comps if k not in self.material_ids]
        ids = self.w.new_ids(_table(M.Material), len(missing))
        rows = []
        for k, mid in zip(missing, ids, strict=True):
            c = comps[k]
            rows.append(
                {
                    "id": mid,
                    "family_id": self.family_ids[k[0]],
                    "params": c["params"],
                    "params_key": c["params_key"],
                    "formula": c["formula"],
                    "composition": c["composition"],
                }
            )
            self.material_ids[k] = mid
        self.w.insert(_table(M.Material), rows, with_id=True)
        self.summary.note("material", "added", len(rows))

    def material(self, comp: dict[str, Any]) -> int:
        return self.material_ids[(comp["family"], comp["params_key"])]

    def chemical(self, name: str) -> int:
        if name in self.chem_ids:
            return self.chem_ids[name]
        d = self.p.chemicals.get(name, {"name": name})
        q = select(M.Chemical.id).where(M.Chemical.name == name)
        for col in ("supplier", "purity"):
            v = d.get(col)
            q = q.where(
                getattr(M.Chemical, col).is_(None) if v is None else getattr(M.Chemical, col) == v
            )
        cid = self.s.scalar(q)
        if cid is None:
            row = M.Chemical(
                name=name,
                formula=d.get("formula"),
                supplier=d.get("supplier"),
                purity=d.get("purity"),
                cas=d.get("cas"),
                molar_mass=d.get("molar_mass"),
                note=d.get("note"),
            )
            self.s.add(row)
            self.s.flush()
            self.summary.note("chemical", "added")
            cid = row.id
        self.chem_ids[name] = cid
        return cid

    def quantities(self) -> None:
        if not self.p.quantities:
            return
        names = [q["name"] for q in self.p.quantities]
        rows = {
            r.name: r
            for r in self.s.scalars(
                select(M.QuantityDefinition).where(_in(M.QuantityDefinition.name, names, self.w.dialect))
            )
        }
        for q in self.p.quantities:
            row = rows.get(q["name"])
            vals = {
                k: q.get(k)
                for k in ("name", "unit", "label", "min", "max", "categorical", "description", "direction",
                          "precision")
            }
            if row is None:
                self.s.add(M.QuantityDefinition(**vals))
                self.summary.note("quantity", "added")
            elif any(getattr(row, k) != v for k, v in vals.items()):
                if not self.update:
                    raise self.err(
                        f"quantity '{q['name']}' exists with a different definition; use --update",
                        f"quantity {q['name']}",
                        "definition",
                    )
                for k, v in vals.items():
                    setattr(row, k, v)
                self.summary.note("quantity", "updated")
        self.s.flush()

    # -- keyed records ------------------------------------------------------------------------

    def _lookup(self, model: Any, keys: Iterable[str], *cols: Any) -> dict[str, Any]:
        """Rows of ``model`` by natural key: key -> (id, key, content_hash, *cols)."""
        out: dict[str, Any] = {}
        for chunk in _chunks(sorted(set(keys))):
            q = select(model.id, model.key, model.content_hash, *cols).where(_in(model.key, chunk, self.w.dialect))
            for r in self.s.execute(q):
                out[r[1]] = r
        return out

    def _classify(self, entity: str, model: Any, items: list[_Keyed], *cols: Any) -> list[_Keyed]:
        """Attach existing rows; return the records to write (new or changed); raise on a change
        without ``update``. Must be called in document order (errors name the first record)."""
        existing = self._lookup(model, (it.d["key"] for it in items), *cols)
        out = []
        for it in items:
            it.row = existing.get(it.d["key"])
            if it.row is None:
                out.append(it)
            elif it.row[2] == it.hash:
                self.summary.note(entity, "unchanged")
            elif not self.update:
                raise self.err(
                    f"{entity} '{it.d['key']}' already exists with different content; "
                    f"re-run with --update to replace it (the old version is kept)",
                    it.rec,
                    "id",
                )
            else:
                out.append(it)
        return out

    def _keyed(self, d: dict[str, Any], content: dict[str, Any], rec: str) -> _Keyed:
        h, text = hashed_json(_without_defaults(content))
        return _Keyed(d=d, content=content, hash=h, text=text, rec=rec)

    def _assign_ids(self, model: Any, todo: list[_Keyed]) -> None:
        new = [it for it in todo if it.row is None]
        for it, i in zip(new, self.w.new_ids(_table(model), len(new)), strict=True):
            it.id = i
        for it in todo:
            if it.row is not None:
                it.id = it.row[0]

    def _write_keyed(
        self, entity: str, model: Any, todo: list[_Keyed], vals: list[dict[str, Any]]
    ) -> None:
        """Insert the new rows, update the changed ones (keeping their old version)."""
        new_rows = []
        for it, v in zip(todo, vals, strict=True):
            if it.row is None:
                new_rows.append({"id": it.id, "key": it.d["key"], "content_hash": it.hash, **v})
            else:
                self.versions.append(
                    {"entity": entity, "key": it.d["key"], "content_hash": it.row[2]}
                )
                self.s.execute(
                    update(model).where(model.id == it.id).values(content_hash=it.hash, **v)
                )
            self.contents.append((entity, it))
        self.w.insert(_table(model), new_rows, with_id=True)
        self.summary.note(entity, "added", len(new_rows))
        self.summary.note(entity, "updated", len(todo) - len(new_rows))

    def syntheses(self) -> None:
        items = [self._keyed(d, d, f"synthesis {d['key']}") for d in self.p.syntheses]
        todo = self._classify("synthesis", M.Synthesis, items)
        srcs = [self.source(it.d["source"], it.rec) for it in todo]
        self._assign_ids(M.Synthesis, todo)
        changed = [it.id for it in todo if it.row is not None]
        for chunk in _chunks(changed):
            self.s.execute(
                delete(M.SynthesisPrecursor).where(_in(M.SynthesisPrecursor.synthesis_id, chunk, self.w.dialect))
            )
            self.s.execute(delete(M.ProcessStep).where(_in(M.ProcessStep.synthesis_id, chunk, self.w.dialect)))
        vals, precursors, steps = [], [], []
        for it, src in zip(todo, srcs, strict=True):
            d = it.d
            vals.append(
                {
                    "material_id": self.material(d["material"]),
                    "source_id": src.id,
                    "provenance": d["provenance"] or provenance_of_source(src.kind),
                    **{k: d[k] for k in SYNTHESIS_COLUMNS},
                }
            )
            ingredients = [(a, None) for a in d["precursors"]]
            for st in d["steps"]:
                steps.append({"synthesis_id": it.id, **{k: st[k] for k in STEP_COLUMNS}})
                ingredients += [(a, st["position"]) for a in st["reagents"]]
            for a, position in ingredients:
                row = {
                    "synthesis_id": it.id,
                    "step_position": position,
                    "role": a["role"],
                    "mass_mg": a["mass_mg"],
                    "amount_mmol": a["amount_mmol"],
                    "mol_pct": a["mol_pct"],
                    "note": a["note"],
                }
                if a.get("sample"):
                    # a stored sample as ingredient: it may be made by this very document, so its
                    # row is resolved after the samples are written
                    self.sample_ingredients.append((row, a["sample"], it.rec))
                else:
                    precursors.append({**row, "chemical_id": self.chemical(a["chemical"])})
        self._write_keyed("synthesis", M.Synthesis, todo, vals)
        self.w.insert(_table(M.SynthesisPrecursor), precursors)
        self.w.insert(_table(M.ProcessStep), steps)

    def ingredient_samples(self) -> None:
        """Write the ingredients that are stored samples (two-stage routes)."""
        if not self.sample_ingredients:
            return
        found = self._lookup(M.Sample, (key for _r, key, _rec in self.sample_ingredients))
        rows = []
        for row, key, rec in self.sample_ingredients:
            if key not in found:
                raise self.err(f"unknown sample '{key}' used as an ingredient", rec, "precursors.sample")
            rows.append({**row, "sample_id": found[key][0]})
        self.w.insert(_table(M.SynthesisPrecursor), rows)

    def samples(self) -> None:
        synths = self._lookup(
            M.Synthesis,
            (d["synthesis"] for d in self.p.samples if d["synthesis"]),
            M.Synthesis.material_id,
            M.Synthesis.source_id,
            M.Synthesis.provenance,
        )
        items: list[_Keyed] = []
        resolved: dict[int, tuple[int, Any]] = {}
        for d in self.p.samples:
            rec = f"sample {d['key']}"
            synth = None
            if d["synthesis"]:
                synth = synths.get(d["synthesis"])
                if synth is None:
                    raise self.err(f"unknown synthesis '{d['synthesis']}'", rec, "synthesis")
                if d["material"] is None:
                    mat_id = synth.material_id
                else:
                    mat_id = self.material(d["material"])
                    if mat_id != synth.material_id:
                        raise self.err(
                            "sample composition differs from its synthesis", rec, "params"
                        )
            else:
                mat_id = self.material(d["material"])
            it = self._keyed(d, d, rec)
            items.append(it)
            resolved[id(it)] = (mat_id, synth)
        todo = self._classify("sample", M.Sample, items)
        vals = []
        for it in todo:
            d = it.d
            mat_id, synth = resolved[id(it)]
            src = self.source(
                d["source"] or (None if synth is None else self.source_key_of(synth.source_id)),
                it.rec,
            )
            prov = d["provenance"] or (synth.provenance if synth is not None else provenance_of_source(src.kind))
            vals.append(
                dict(
                    material_id=mat_id,
                    synthesis_id=synth.id if synth else None,
                    after_step=d["after_step"],
                    label=d["label"],
                    process=d["process"],
                    source_id=src.id,
                    locator=d["locator"],
                    provenance=prov,
                    proposal_id=d["proposal_id"],
                    note=d["note"],
                    outcome=d["outcome"],
                    inferred=d["inferred"],
                    inferred_reason=d["inferred_reason"],
                    created_by=self.user,
                )
            )
            if d["proposal_id"]:
                pid = self.s.scalar(select(M.Proposal.id).where(M.Proposal.key == d["proposal_id"]))
                if pid is None:
                    raise self.err(
                        f"unknown proposal_id '{d['proposal_id']}'", it.rec, "proposal_id"
                    )
                self.s.execute(update(M.Proposal).where(M.Proposal.id == pid).values(status="made"))
        self._assign_ids(M.Sample, todo)
        self._write_keyed("sample", M.Sample, todo, vals)

    def series(self) -> None:
        """Series of samples: keyed records like samples; their members must be stored samples."""
        if not self.p.series:
            return
        items = [self._keyed(d, d, f"series {d['key']}") for d in self.p.series]
        todo = self._classify("series", M.Series, items)
        members_of = self._lookup(M.Sample, (k for it in todo for k in it.d["samples"]))
        vals = []
        for it in todo:
            d = it.d
            src = self.source(d["source"], it.rec)
            missing = [k for k in d["samples"] if k not in members_of]
            if missing:
                raise self.err(f"unknown sample '{missing[0]}' in the series", it.rec, "samples")
            vals.append(dict(title=d["title"], family_id=self.family(d["family"]) if d["family"] else None,
                             source_id=src.id, locator=d["locator"],
                             provenance=d["provenance"] or provenance_of_source(src.kind), note=d["note"]))
        self._assign_ids(M.Series, todo)
        changed = [it.id for it in todo if it.row is not None]
        for chunk in _chunks(changed):
            self.s.execute(delete(M.SeriesMember).where(_in(M.SeriesMember.series_id, chunk, self.w.dialect)))
        self._write_keyed("series", M.Series, todo, vals)
        self.w.insert(_table(M.SeriesMember), [
            {"series_id": it.id, "sample_id": members_of[k][0], "position": i}
            for it in todo for i, k in enumerate(it.d["samples"])
        ])

    def measurements(self) -> None:
        samples = self._lookup(
            M.Sample,
            (d["sample"] for d in self.p.measurements if d["sample"]),
            M.Sample.material_id,
            M.Sample.source_id,
            M.Sample.provenance,
        )
        series = self._lookup(M.Series, (d["series"] for d in self.p.measurements if d["series"]),
                              M.Series.source_id, M.Series.provenance)
        items: list[_Keyed] = []
        resolved: dict[int, tuple[int | None, Any, Any]] = {}
        for d in self.p.measurements:
            rec = f"measurement {d['key']}"
            content = {
                **d,
                "arrays": [_array_fingerprint(a) for a in d["arrays"]],
                "structures": [s["sha256"] for s in d["structures"]],
            }
            sample = ser = None
            mat_id: int | None
            if d["sample"]:
                sample = samples.get(d["sample"])
                if sample is None:
                    raise self.err(f"unknown sample '{d['sample']}'", rec, "sample")
                mat_id = sample.material_id
            elif d["series"]:
                ser = series.get(d["series"])
                if ser is None:
                    raise self.err(f"unknown series '{d['series']}'", rec, "series")
                mat_id = self.material(d["material"]) if d["material"] else None
            else:
                mat_id = self.material(d["material"])
            it = self._keyed(d, content, rec)
            items.append(it)
            resolved[id(it)] = (mat_id, sample, ser)
        todo = self._classify("measurement", M.Measurement, items)
        vals = []
        for it in todo:
            d = it.d
            mat_id, sample, ser = resolved[id(it)]
            parent = sample if sample is not None else ser
            src_key = d["source"] or (None if parent is None else self.source_key_of(parent.source_id))
            src = self.source(src_key, it.rec)
            prov = d["provenance"] or (parent.provenance if parent is not None else provenance_of_source(src.kind))
            vals.append(
                dict(
                    sample_id=sample.id if sample else None,
                    series_id=ser.id if ser else None,
                    material_id=mat_id,
                    technique=d["technique"],
                    instrument=d["instrument"],
                    conditions=d["conditions"],
                    source_id=src.id,
                    locator=d["locator"],
                    provenance=prov,
                    note=d["note"],
                    inferred=d["inferred"],
                    inferred_reason=d["inferred_reason"],
                )
            )
        self._assign_ids(M.Measurement, todo)
        changed = [it.id for it in todo if it.row is not None]
        for chunk in _chunks(changed):
            for model in (M.Result, M.ArrayResult, M.Structure):
                self.s.execute(delete(model).where(_in(model.measurement_id, chunk, self.w.dialect)))
        self._write_keyed("measurement", M.Measurement, todo, vals)
        results = [{"measurement_id": it.id, **r} for it in todo for r in it.d["results"]]
        n = self.w.insert(_table(M.Result), results)
        if todo:
            self.summary.counts["result.added"] += n
        arrays = [
            array_columns(it.row_id, a["position"], a["data"]) for it in todo for a in it.d["arrays"]
        ]
        if arrays:
            self.summary.counts["array.added"] += self.w.insert(_table(M.ArrayResult), arrays)
        structures = [
            {"material_id": resolved[id(it)][0], "measurement_id": it.id, **st}
            for it in todo
            for st in it.d["structures"]
        ]
        self.w.insert(_table(M.Structure), structures)

    def history(self) -> None:
        """Keep old versions of updated records; store the current content of written ones."""
        by_entity: dict[str, list[_Keyed]] = {}
        for entity, it in self.contents:
            by_entity.setdefault(entity, []).append(it)
        new_rows = []
        for entity, its in by_entity.items():
            existing: dict[str, tuple[int, Any]] = {}
            keys = sorted({it.d["key"] for it in its})
            need_old = {v["key"] for v in self.versions if v["entity"] == entity}
            for chunk in _chunks(keys):
                q = select(M.RecordContent.id, M.RecordContent.key).where(
                    M.RecordContent.entity == entity, _in(M.RecordContent.key, chunk, self.w.dialect)
                )
                for rid, key in self.s.execute(q):
                    existing[key] = (rid, None)
            for chunk in _chunks(sorted(need_old)):
                q_old = select(M.RecordContent.key, M.RecordContent.content).where(
                    M.RecordContent.entity == entity, _in(M.RecordContent.key, chunk, self.w.dialect)
                )
                for key, content in self.s.execute(q_old):
                    existing[key] = (existing[key][0], content)
            for v in self.versions:
                if v["entity"] == entity:
                    old = existing.get(v["key"])
                    self.s.add(
                        M.RecordVersion(
                            entity=entity,
                            key=v["key"],
                            content_hash=v["content_hash"],
                            content=old[1] if old and old[1] is not None else {},
                        )
                    )
            for it in its:
                old = existing.get(it.d["key"])
                if old is None:
                    new_rows.append(
                        {
                            "entity": entity,
                            "key": it.d["key"],
                            "content_hash": it.hash,
                            "content": _JSONText(it.text),
                        }
                    )
                else:
                    self.s.execute(
                        update(M.RecordContent)
                        .where(M.RecordContent.id == old[0])
                        .values(content_hash=it.hash, content=json.loads(it.text))
                    )
        self.s.flush()
        self.w.insert(_table(M.RecordContent), new_rows)


def load_prepared(
    s: Session, p: Prepared, *, update: bool = False, sha256: str | None = None
) -> LoadSummary:
    """Write a prepared document inside the caller's transaction.

    Raises:
        IngestError: a reference that does not resolve (unknown sample/synthesis/source/proposal),
            or different content under an existing key without ``update``.
        sqlalchemy.exc.DBAPIError: the database refused a write (e.g. IntegrityError when a
            concurrent writer inserted the same key first; the caller may retry).
    """
    with gc_paused():
        return _load(s, p, update, sha256)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while one file is read, validated or written: a table of
    20,000 rows makes a few hundred thousand records and rows (~10^6 containers) that all stay alive
    until the file is done; the collector would traverse them again and again as they pile up (a
    third of the read and of the load time) and could free none of them. It runs again afterwards
    (if it was on before). Nesting is harmless: the inner one leaves it off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _load(s: Session, p: Prepared, update: bool, sha256: str | None) -> LoadSummary:
    summary = LoadSummary(file=p.file)
    ld = _Loader(s, p, update, summary)
    ld.quantities()
    for slug in p.families:
        ld.family(slug)
    ld.prefetch_sources()
    for key in p.sources:
        ld.source(key, f"source {key}")
    ld.materials()
    ld.syntheses()
    ld.samples()
    ld.ingredient_samples()
    ld.series()
    ld.measurements()
    ld.history()
    s.add(
        M.IngestedFile(
            path=p.file, sha256=sha256 or "", status=summary.status, summary=dict(summary.counts),
            created_by=ld.user,
        )
    )
    s.flush()
    return summary


__all__ = [
    "LoadSummary",
    "array_row",
    "array_columns",
    "load_prepared",
    "hashed_json",
    "BulkWriter",
]
