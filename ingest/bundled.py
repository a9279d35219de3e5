"""The bundled data: the records matdb ships and owns — the literature dataset (``data/literature``)
and the simulated demonstration set (``matdb demo``) — kept at the version of this matdb.

``matdb init --bundled`` calls :func:`refresh` for each dataset. In one transaction it loads the
current files (a record whose content changed is replaced, its old version kept in
``record_version``), deletes the records an older version had and the current one no longer has,
and stores which records the dataset now holds (``bundled_record``) and its version
(``bundled_dataset``: a hash of its files). Loading the same version again changes nothing.

Records a user loaded are never changed: if a current bundled record has the key of a record the
user loaded, or a user's record uses a bundled record that the current version drops (a
measurement of a bundled sample, a bundled sample as an ingredient or series member) or whose
composition it changes (a measurement of that sample), the refresh stops with a
:class:`BundledDataError` that names the record and what to do, and nothing is written.

Which records are bundled: those listed in ``bundled_record``. A database made before matdb
listed them (schema revision 0002 and older) has none listed; there the records citing a source
the bundled files declare (li2023, xiao2025, ...) are taken as bundled, after checking against
the file history (``ingested_file``) that the bundled files added at least that many records of
each kind. If they did not, some of those records came from the user's files, and the refresh
stops rather than guess which.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DBAPIError, IntegrityError

from ingest.errors import IngestError
from ingest.limits import DEFAULT, Limits
from ingest.load import LoadSummary, load_prepared
from ingest.pipeline import CONFLICT_RETRIES, FileOutcome, IngestReport, _sha256, check_paths, is_retryable
from ingest.validate import Prepared
from matdb import store
from matdb.db import Database

ENTITIES = tuple(store.KEYED)
#: What each dataset is called in messages.
LABELS = {"literature": "bundled literature data", "demo": "simulated demonstration set"}


class BundledDataError(IngestError):
    """The bundled data cannot be brought to the current version without touching a user's data."""


@dataclass
class Refresh:
    """What one refresh did (``report`` holds one outcome per file; ``note`` a one-line summary)."""

    dataset: str
    version: str
    previous: str | None
    report: IngestReport
    replaced: int = 0
    added: int = 0
    removed: int = 0
    had_data: bool = False

    @property
    def refreshed(self) -> bool:
        """An older version was in the database and is now replaced."""
        return self.had_data and bool(self.replaced or self.added or self.removed)

    @property
    def note(self) -> str:
        if not self.refreshed:
            return ""
        n = f"{self.replaced} record{'' if self.replaced == 1 else 's'}"
        return (f"updated the {LABELS.get(self.dataset, self.dataset)} to the current version {self.version[:12]}: "
                f"{n} replaced (old versions kept), {self.added} added, {self.removed} removed; "
                "data you loaded is untouched")


def _keys(docs: Iterable[Prepared]) -> store.Keys:
    out: store.Keys = {e: set() for e in ENTITIES}
    for p in docs:
        for entity, recs in (("synthesis", p.syntheses), ("sample", p.samples), ("series", p.series),
                             ("measurement", p.measurements)):
            out[entity] |= {d["key"] for d in recs}
    return out


def _sources(docs: Iterable[Prepared]) -> set[str]:
    """The sources the bundled files declare (theirs by definition)."""
    return {k for p in docs for k in p.sources}


def version_of(docs: Iterable[Prepared]) -> str:
    """The version of a dataset: a hash over its files' names and contents."""
    h = hashlib.sha256()
    for name, sha in sorted((Path(p.file).name, _sha256(p.file)) for p in docs):
        h.update(f"{name}\0{sha}\n".encode())
    return h.hexdigest()


def _n(keys: store.Keys) -> int:
    return sum(len(v) for v in keys.values())


def refresh(db: Database, dataset: str, paths: Iterable[str | os.PathLike[str]], *,
            is_bundled_file: Callable[[str], bool], progress: bool = True, limits: Limits = DEFAULT) -> Refresh:
    """Bring the bundled ``dataset`` (the files ``paths``) in ``db`` to the current version, in one
    transaction (see the module docstring). ``is_bundled_file(path)`` tells the stored loads
    (``ingested_file``) of this dataset's files, of any version, from others.

    Raises:
        BundledDataError: a user's record is in the way (the message names it and what to do), or a
            bundled file does not load (nothing is written).
    """
    good, report = check_paths(db, paths, limits=limits)
    out = Refresh(dataset, version_of(good), None, report)
    if not report.ok:  # a broken bundled file: load nothing of the dataset (it is one version)
        return out
    new = _keys(good)
    sources = _sources(good)
    bar = None
    if progress and good:
        from tqdm import tqdm

        bar = tqdm(total=len(good), desc=f"bundled {dataset}", unit="file", leave=False)
    try:
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                summaries = _refresh(db, dataset, good, new, sources, is_bundled_file, out)
                break
            except (IntegrityError, DBAPIError) as exc:  # a concurrent writer: retry, as load_one does
                if attempt == CONFLICT_RETRIES or not is_retryable(exc):
                    raise BundledDataError(f"the {LABELS.get(dataset, dataset)} could not be written "
                                           f"({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from exc
                time.sleep(0.05 * (attempt + 1))
    finally:
        if bar is not None:
            bar.update(len(good))
            bar.close()
    for p, summary in zip(good, summaries, strict=True):
        report.files.append(FileOutcome(p.file, summary.status, counts=dict(summary.counts)))
        for entity in ENTITIES:
            out.replaced += summary.counts.get(f"{entity}.updated", 0)
            out.added += summary.counts.get(f"{entity}.added", 0)
    return out


def _refresh(db: Database, dataset: str, good: list[Prepared], new: store.Keys, sources: set[str],
             is_bundled_file: Callable[[str], bool], out: Refresh) -> list[LoadSummary]:
    where = f"in {db!r}"
    what = LABELS.get(dataset, dataset)
    with db.transaction() as s:
        out.previous, owned = store.bundled_state(s, dataset)
        if not _n(owned):  # a database from before bundled_record (or without the dataset)
            owned = store.records_of_sources(s, sources)
            if _n(owned):
                added = store.records_added_by_files(s, is_bundled_file)
                extra = {e: len(owned[e]) - added[e] for e in ENTITIES if len(owned[e]) > added[e]}
                if extra:
                    e, n = next(iter(extra.items()))
                    raise BundledDataError(
                        f"cannot update the {what} {where}: the database was made by an older matdb "
                        f"that did not record which records are bundled, and {n} {e} record(s) citing "
                        f"{', '.join(sorted(sources))} came from other files; load your own files into a new "
                        "database (another MATDB_URL) or keep this one with `matdb init` (without --bundled)")
        out.had_data = bool(_n(owned))
        for entity, found in store.record_source_keys(s, new).items():
            for key, src in sorted(found.items()):
                if key in owned[entity]:
                    continue
                if src in sources:  # a bundled file loaded by hand (matdb ingest data/literature)
                    owned[entity].add(key)
                    continue
                raise BundledDataError(
                    f"cannot update the {what} {where}: the current version has {entity} '{key}', "
                    f"and a record with that key was loaded from your own data (source '{src}'); give yours "
                    "another id and load it again (`matdb ingest --update`), then re-run `matdb init --bundled`")
        summaries = [load_prepared(s, p, update=True, sha256=_sha256(p.file)) for p in good]
        off = store.measurements_off_their_sample(s, new["sample"])  # a bundled sample's composition changed
        for m, smp in off:
            if m not in owned["measurement"] and m not in new["measurement"]:
                raise BundledDataError(
                    f"cannot update the {what} {where}: the current version changes the composition of sample "
                    f"'{smp}', which your measurement '{m}' is of; attach yours to a sample of your own "
                    "(`matdb ingest --update`), then re-run `matdb init --bundled` (or keep the old version: "
                    "`matdb init` without --bundled)")
        store.align_measurement_materials(s, [m for m, _ in off])
        obsolete = {e: owned[e] - new[e] for e in ENTITIES}
        if _n(obsolete):
            try:
                removed = store.remove_records(s, obsolete)
            except store.StoreError as exc:
                raise BundledDataError(
                    f"cannot update the {what} {where}: the current version drops a record that "
                    f"your data uses ({exc}); remove or re-attach yours, "
                    "then re-run `matdb init --bundled` (or keep the old version: `matdb init` without "
                    "--bundled)") from None
            out.removed = sum(removed.get(store.KEYED[e].__tablename__, 0) for e in ENTITIES)
        store.set_bundled(s, dataset, out.version, new)
    return summaries


__all__ = ["BundledDataError", "Refresh", "refresh", "version_of"]
