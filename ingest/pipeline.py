"""``matdb ingest``: files and folders in, one transaction per file, a summary out."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.errors import IngestError, IngestErrors, each_error
from ingest.limits import DEFAULT, LimitError, Limits
from ingest.load import LoadSummary, gc_paused, load_prepared
from ingest.validate import Prepared, prepare
from matdb.db import Database

log = logging.getLogger(__name__)

#: File name endings matdb reads (anything else in a folder is skipped, and listed).
EXTENSIONS = (".yaml", ".yml", ".json", ".csv", ".xlsx", ".xy", ".xye", ".dat", ".jdx", ".dx",
              ".jcamp", ".cif", ".vasp", ".extxyz", ".xyz")
STRUCTURE_NAMES = ("POSCAR", "CONTCAR")


@dataclass
class FileOutcome:
    path: str
    status: str  # added | unchanged | updated | rejected | skipped
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    #: the errors as objects (file, line, record, field: the Ingest page's error table and the CLI
    #: read them); a text only for a failure that is not an IngestError (e.g. a database error)
    errors: list[IngestError | str] = field(default_factory=list)
    limit: str = ""  # the resource limit the file exceeded (ingest.limits), if that is why it was rejected


@dataclass
class IngestReport:
    """Summary of one ``matdb ingest`` call."""

    files: list[FileOutcome] = field(default_factory=list)
    #: one-line messages about the whole call (e.g. that the bundled data was updated)
    notes: list[str] = field(default_factory=list)

    @property
    def totals(self) -> Counter[str]:
        return Counter(f.status for f in self.files)

    @property
    def ok(self) -> bool:
        return not any(f.status == "rejected" for f in self.files)

    @property
    def over_limits(self) -> list[FileOutcome]:
        """Files rejected because they exceed a resource limit."""
        return [f for f in self.files if f.limit]

    def as_rows(self) -> list[dict[str, Any]]:
        return [{"file": f.path, "status": f.status, "reason": f.reason,
                 **{k: v for k, v in sorted(f.counts.items())}} for f in self.files]


def _is_candidate(p: Path) -> bool:
    if p.name.endswith(".meta.yaml") or p.name.endswith(".meta.yml"):
        return False
    return p.suffix.lower() in EXTENSIONS or p.name in STRUCTURE_NAMES


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[FileOutcome]]:
    """Expand folders (recursively, sorted) into the files matdb can read."""
    files, missing = _collect(paths)
    return [f for f, _root in files], missing


def _collect(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[tuple[Path, Path]], list[FileOutcome]]:
    """(file, root) pairs: root is the folder given (or the folder of a file given), the one place
    the files a record refers to may come from."""
    files: list[tuple[Path, Path]] = []
    missing: list[FileOutcome] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += [(q, p) for q in sorted(q for q in p.rglob("*") if q.is_file() and _is_candidate(q)
                                             and not any(part.startswith(".") for part in q.relative_to(p).parts))]
        elif p.is_file():
            files.append((p, p.parent))
        else:
            missing.append(FileOutcome(str(p), "rejected", f"{p}: no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f, root in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append((f, root))
    return unique, missing


def _referenced_files(prepared: Prepared) -> set[Path]:
    out = set()
    for m in prepared.measurements:
        for a in m["arrays"]:
            rec = a["record"]
            for key in ("file", "reference"):
                if rec.get(key):
                    out.add((prepared.base_dir / rec[key]).resolve())
            ref = a["data"].meta.get("reference_file") if a["data"].meta else None
            if ref:
                out.add((prepared.base_dir / ref).resolve())
            folder = prepared.base_dir / rec["file"] if rec.get("format") == "tlis_folder" else None
            for name in (a["data"].meta or {}).get("member_files", []) if folder else []:
                out.add((folder / name).resolve())  # the spectra of a watched folder (matdb watch)
        for st in m["structures"]:
            if st.get("file"):
                out.add((prepared.base_dir / st["file"]).resolve())
    return out


def check_paths(db: Database | None, paths: Iterable[str | os.PathLike[str]], *,
                mapping: dict[str, str] | None = None, limits: Limits = DEFAULT,
                known: tuple[dict[str, Any], dict[str, Any]] | None = None,
                on_read: Callable[[Path], None] | None = None) -> tuple[list[Prepared], IngestReport]:
    """Read and validate every file without writing anything, within ``limits``.

    Record files come first (and are loaded first), so a table may use the families and
    quantities that a record file of the same call defines. A file that a record refers to must
    lie inside the folder given (or, for a file given, its own folder). ``known``: the families and
    quantities of the database, given instead of ``db`` (a worker process without a connection);
    ``on_read(path)`` is called before each file is read."""
    from ingest.readers import RECORD_EXT, read_file

    pairs, missing = _collect(paths)
    pairs.sort(key=lambda fr: fr[0].suffix.lower() not in RECORD_EXT)  # stable: otherwise as given
    report = IngestReport(files=list(missing))
    if known is not None:
        families, quantities = dict(known[0]), dict(known[1])
    elif db is not None:
        families, quantities = db.families(), db.quantities()
    else:
        raise TypeError("check_paths needs the database or the families and quantities it knows ('known')")
    prepared: list[tuple[Path, Prepared | FileOutcome]] = []  # the document, or why it was rejected
    for f, root in pairs:
        if on_read is not None:
            on_read(f)
        try:
            with gc_paused():
                doc = read_file(f, mapping=mapping, families=families, quantities=quantities, limits=limits,
                                root=root)
                prep = prepare(doc, str(f), known_families=families, known_quantities=quantities,
                               limits=limits, root=root)
            families.update(prep.families)
            quantities.update(prep.quantity_defs)
            prepared.append((f, prep))
        except IngestError as exc:
            errs = exc.errors if isinstance(exc, IngestErrors) else [exc]
            over = next((e.key for e in errs if isinstance(e, LimitError)), "")
            prepared.append((f, FileOutcome(str(f), "rejected", str(errs[0]), errors=list(each_error(exc)),
                                            limit=over)))
    referenced: set[Path] = set()
    for f, got in prepared:
        if isinstance(got, Prepared):
            referenced |= _referenced_files(got) - {f.resolve()}  # a TLIS file refers to itself
    good = []
    for f, got in prepared:
        if f.resolve() in referenced:
            continue  # a spectrum or reference that another file brings in
        if isinstance(got, FileOutcome):
            report.files.append(got)
        else:
            good.append(got)
    return good, report


def ingest_paths(db: Database, paths: Iterable[str | os.PathLike[str]], *, update: bool = False,
                 mapping: dict[str, str] | None = None, progress: bool = True,
                 on_file: Callable[[FileOutcome], None] | None = None,
                 limits: Limits = DEFAULT) -> IngestReport:
    """Ingest files and folders; one transaction per file; bad files (and files over ``limits``)
    are rejected, others go on."""
    good, report = check_paths(db, paths, mapping=mapping, limits=limits)
    bar = None
    if progress and good:
        from tqdm import tqdm

        bar = tqdm(total=len(good), desc="ingest", unit="file", leave=False)
    for prep in good:
        outcome = load_one(db, prep, update=update)
        report.files.append(outcome)
        if on_file:
            on_file(outcome)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return report


#: A concurrent writer may insert the same new source/material/record between our check and our
#: insert (PostgreSQL, READ COMMITTED); the transaction is then retried and sees the other's rows.
CONFLICT_RETRIES = 5


def is_retryable(exc: Exception) -> bool:
    """Whether a failed write collided with a concurrent writer (retry it) rather than failed."""
    from sqlalchemy.exc import IntegrityError

    text = str(exc).lower()
    return isinstance(exc, IntegrityError) or "deadlock" in text or "could not serialize" in text


def load_one(db: Database, prep: Prepared, *, update: bool = False) -> FileOutcome:
    """Load one prepared document in its own transaction."""
    from sqlalchemy.exc import DBAPIError, IntegrityError

    sha = _sha256(prep.file)
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            with gc_paused(), db.transaction() as s:
                summary: LoadSummary = load_prepared(s, prep, update=update, sha256=sha)
            return FileOutcome(prep.file, summary.status, counts=dict(summary.counts))
        except IngestError as exc:
            return FileOutcome(prep.file, "rejected", str(exc), errors=list(each_error(exc)))
        except UnicodeEncodeError:
            msg = (f"{prep.file}: contains text that is not valid Unicode (e.g. an unpaired surrogate); "
                   "nothing was written")
            return FileOutcome(prep.file, "rejected", msg, errors=[msg])
        except (IntegrityError, DBAPIError) as exc:
            if is_retryable(exc) and attempt < CONFLICT_RETRIES:
                time.sleep(0.05 * (attempt + 1))
                continue
            return _failed(prep, exc)
        except Exception as exc:  # a bug: nothing was written (rolled back); say so plainly
            return _failed(prep, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _failed(prep: Prepared, exc: Exception) -> FileOutcome:
    log.debug("ingest of %s failed", prep.file, exc_info=exc)
    msg = f"{prep.file}: could not be written ({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
    return FileOutcome(prep.file, "rejected", msg, errors=[msg])


def _sha256(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""
