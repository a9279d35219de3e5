"""Getting data in: create the database (with the bundled literature and the demonstration set),
load files, check them without writing, column-mapping files, and the uploads of the Ingest page
(staged in a folder, checked in a worker process with memory and time limits, reported per file
and per error, then loaded from what the worker prepared)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from ingest import bundled
from ingest.errors import IngestError
from ingest.limits import DEFAULT, Limits
from ingest.pipeline import FileOutcome, IngestReport, check_paths, ingest_paths, load_one
from ingest.validate import Prepared
from matdb.db import Database, DatabaseError, normalize_url
from matdb_app import isolation, simulate

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO_ROOT / "data" / "literature"

Mapping_ = dict[str, str] | str | os.PathLike[str] | None


@dataclass
class InitReport:
    """What ``matdb init`` did: the database, the literature load and the demonstration set."""

    db: Database
    literature: IngestReport | None = None
    demo: simulate.DemoReport | None = None

    @property
    def ok(self) -> bool:
        return all(r is None or r.ok for r in (self.literature, self.demo))


def init_db(url: str | None = None, *, bundled: bool = False, demo: bool | None = None,
            progress: bool = True) -> InitReport:
    """Create or migrate the schema; with ``bundled`` load the literature dataset and (unless
    ``demo=False``) the simulated demonstration set (:func:`matdb_app.simulate.add_demo`)."""
    db = Database(normalize_url(url))
    try:
        db.upgrade()
        db.check_schema()
    except DatabaseError:
        db.close()
        raise
    except Exception as exc:  # unreachable server, bad credentials
        db.close()
        raise DatabaseError(f"cannot open {db!r}: {exc}".splitlines()[0]) from exc
    out = InitReport(db)
    if bundled:
        out.literature = load_bundled(db, progress=progress)
    if demo if demo is not None else bundled:
        out.demo = simulate.add_demo(db, progress=progress)
    return out


def load_bundled(db: Database, *, progress: bool = True) -> IngestReport:
    """Load the literature dataset shipped with matdb, or bring an older version of it in ``db`` to
    this one (:func:`ingest.bundled.refresh`: one transaction; loading the same version again changes
    nothing; what a user loaded is never touched). Raises BundledDataError when a user's record is
    in the way."""
    done = bundled.refresh(db, "literature", [BUNDLED_DATA], is_bundled_file=is_literature_file, progress=progress)
    if done.note:
        done.report.notes.append(done.note)
    return done.report


def is_literature_file(path: str) -> bool:
    """A file of the bundled literature dataset, of this or an older version (``data/literature/``
    of any checkout; ``ingested_file`` stores the path it was loaded from)."""
    p = PurePath(path)
    return p.suffix in (".yaml", ".yml") and p.parent.name == "literature" and p.parent.parent.name == "data"


def ingest(db: Database, paths: list[str | os.PathLike[str]], *, update: bool = False, mapping: Mapping_ = None,
           progress: bool = True, limits: Limits = DEFAULT) -> IngestReport:
    """Load files and folders, one transaction per file, within ``limits`` (see :mod:`ingest.pipeline`)."""
    return ingest_paths(db, paths, update=update, mapping=load_mapping(mapping, limits), progress=progress,
                        limits=limits)


def check(db: Database, paths: list[str | os.PathLike[str]], mapping: Mapping_ = None,
          limits: Limits = DEFAULT) -> IngestReport:
    """Validate files without writing: the per-file report of what would be loaded or rejected."""
    good, report = check_paths(db, paths, mapping=load_mapping(mapping, limits), limits=limits)
    return _with_valid(good, report)


def _with_valid(good: list[Prepared], report: IngestReport) -> IngestReport:
    """The check report plus one "valid" row per prepared document."""
    out = IngestReport(files=list(report.files))
    for p in good:
        n = sum(len(m["results"]) for m in p.measurements)
        out.files.append(FileOutcome(p.file, "valid", counts={
            "syntheses": len(p.syntheses), "samples": len(p.samples), "measurements": len(p.measurements),
            "results": n}))
    return out


def load_mapping(mapping: Mapping_, limits: Limits = DEFAULT) -> dict[str, str] | None:
    """A column mapping {header in file: matdb column}, given as a dict or a YAML file (read within
    ``limits``, as record files are)."""
    if mapping is None or isinstance(mapping, dict):
        return mapping
    from ingest.readers._common import load_yaml_text, read_text

    path = Path(mapping)
    data = load_yaml_text(read_text(path, limits), path, limits)
    if not isinstance(data, dict):
        raise IngestError("a mapping file is a YAML mapping {'Header in file': 'matdb column'}", file=str(path))
    return data


# --- uploads (the Ingest page) ------------------------------------------------------------------


@dataclass
class Staged:
    """Uploaded files written to ``folder``: the file ``names`` and a column ``mapping`` (given
    as a dict, or as an uploaded ``mapping_file`` that the worker reads)."""

    folder: str
    names: list[str]
    mapping: dict[str, str] | None = None
    mapping_file: str | None = None


def stage_uploads(files: list[tuple[str, bytes]], mapping: bytes | None = None, root: str | None = None) -> Staged:
    """Write uploaded ``(name, content)`` pairs into a folder named by their content hash.

    The same upload always lands in the same folder (a page rerun does not copy again). Only the
    base name of each upload is used, so a name cannot point outside the folder.
    """
    h = hashlib.sha256()
    clean: list[tuple[str, bytes]] = []
    for name, content in files:
        base = Path(name.replace("\\", "/")).name
        if not base or base in (".", ".."):
            raise IngestError("not a usable file name", file=repr(name))
        clean.append((base, content))
        h.update(base.encode() + b"\0" + hashlib.sha256(content).digest())
    dupes = sorted({n for n, _ in clean if sum(1 for m, _ in clean if m == n) > 1})
    if dupes:
        raise IngestError("two uploaded files have this name; rename one", file=", ".join(dupes))
    folder = Path(root or tempfile.gettempdir()) / "matdb-uploads" / h.hexdigest()[:24]
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in clean:
        p = folder / name
        if not p.exists() or p.read_bytes() != content:
            p.write_bytes(content)
    mfile = None
    if mapping is not None:  # read in the worker too (check_staged), like the files
        mfile = folder.parent / f"{h.hexdigest()[:24]}.mapping.yaml"
        mfile.write_bytes(mapping)
    return Staged(str(folder), [n for n, _ in clean], None, None if mfile is None else str(mfile))


@dataclass
class Checked:
    """An upload checked without writing: the staged files, one row per file, one row per error,
    and what loading it needs: the ``prepared`` documents and the ``rejected`` files."""

    staged: Staged
    summary: pd.DataFrame
    errors: pd.DataFrame
    prepared: list[Prepared] = field(default_factory=list)
    rejected: list[FileOutcome] = field(default_factory=list)

    @property
    def n_valid(self) -> int:
        return int((self.summary["status"] == "valid").sum())

    @property
    def n_rejected(self) -> int:
        return int((self.summary["status"] == "rejected").sum())


#: Environment variables with the limits of the worker that checks an upload (see matdb_app.isolation:
#: defaults 1024 MB of address space and 60 s; 0 means no limit).
ENV_UPLOAD_MEMORY = "MATDB_UPLOAD_MEMORY_MB"
ENV_UPLOAD_TIMEOUT = "MATDB_UPLOAD_TIMEOUT_S"
#: Reader limits of uploads (ingest.limits), as ``matdb ingest --limit`` takes them, comma-separated:
#: ``MATDB_UPLOAD_LIMITS="yaml_nodes=2e6,file_mb=200"``; unset: the defaults.
ENV_UPLOAD_READER_LIMITS = "MATDB_UPLOAD_LIMITS"
#: Modules the upload worker needs, imported once by the fork server rather than for every upload.
WORKER_PRELOAD = ("ingest.pipeline", "ingest.readers", "matdb_app.ingest")


def upload_limits() -> isolation.WorkerLimits:
    """Memory and time limits of the worker that reads and validates an upload (from the environment)."""
    return isolation.WorkerLimits.from_env(ENV_UPLOAD_MEMORY, ENV_UPLOAD_TIMEOUT)


def upload_reader_limits() -> Limits:
    """The reader limits of uploads (:data:`ENV_UPLOAD_READER_LIMITS`; unset: the defaults)."""
    from ingest.limits import parse_limits

    raw = os.environ.get(ENV_UPLOAD_READER_LIMITS, "")
    return parse_limits([s for s in raw.split(",") if s.strip()])


def _check_staged(folder: str, names: list[str], mapping: dict[str, str] | None, mapping_file: str | None,
                  known: tuple[dict[str, Any], dict[str, Any]],
                  reader_limits: Limits = DEFAULT) -> tuple[list[Prepared], IngestReport]:
    """In the worker process: read and validate the staged files (no database connection)."""
    if mapping is None and mapping_file is not None:
        isolation.note("validation of the column mapping")
        mapping = load_mapping(mapping_file, reader_limits)
    isolation.note(f"validation of {', '.join(names)}")
    return check_paths(None, [folder], mapping=mapping, known=known, limits=reader_limits,
                       on_read=lambda p: isolation.note(f"validation of {_rel(str(p), folder)}"))


def check_staged(db: Database, staged: Staged, limits: isolation.WorkerLimits | None = None,
                 reader_limits: Limits | None = None) -> tuple[list[Prepared], IngestReport]:
    """Read and validate staged uploads in a worker process with memory and time limits
    (:func:`upload_limits`), so a hostile file cannot take the server down. Raises
    :class:`~matdb_app.isolation.WorkerStopped` ("validation of bomb.yaml stopped: it needed more
    than 1 GB of memory") when the worker runs out of memory or time."""
    known = (db.families(), db.quantities())
    return isolation.run_limited(_check_staged, staged.folder, staged.names, staged.mapping,
                                 staged.mapping_file, known, reader_limits or upload_reader_limits(),
                                 limits=limits or upload_limits(), preload=WORKER_PRELOAD)


def check_upload(db: Database, files: list[tuple[str, bytes]], mapping: bytes | None = None,
                 root: str | None = None, *, limits: isolation.WorkerLimits | None = None,
                 reader_limits: Limits | None = None) -> Checked:
    """Stage an upload and check it in a limited worker process (:func:`check_staged`): what would
    be loaded, and every problem, before any write."""
    staged = stage_uploads(files, mapping, root)
    good, report = check_staged(db, staged, limits, reader_limits)
    full = _with_valid(good, report)
    return Checked(staged, check_summary(full, staged), check_errors(full, staged), good, list(report.files))


@dataclass
class Loaded:
    """An upload loaded: one row per file, the totals, and hints about unexpected statuses."""

    summary: pd.DataFrame
    totals: dict[str, int]
    hints: list[str]


def load_upload(db: Database, checked: Checked | Staged, *, update: bool = False,
                limits: isolation.WorkerLimits | None = None) -> Loaded:
    """Load a checked upload (the Ingest page's confirm button): the documents the worker
    prepared, one transaction per file; nothing is read or parsed again in this process. Staged
    files that were not checked yet are checked first (:func:`check_staged`)."""
    if isinstance(checked, Staged):
        good, rep = check_staged(db, checked, limits)
        checked = Checked(checked, pd.DataFrame(), pd.DataFrame(), good, list(rep.files))
    report = IngestReport(files=list(checked.rejected))
    for prep in checked.prepared:
        report.files.append(load_one(db, prep, update=update))
    summary = check_summary(report, checked.staged)
    return Loaded(summary, dict(report.totals), unchanged_hints(summary))


def _rel(path: str, folder: str) -> str:
    return path.replace(folder.rstrip("/") + "/", "")


def check_summary(report: IngestReport, staged: Staged) -> pd.DataFrame:
    """One row per uploaded file: status (valid/rejected/added/...), reason and counts.

    Files that a record brings in (its spectra and references) are listed as "part of a record".
    """
    rows = []
    seen = set()
    for f in report.files:
        name = _rel(f.path, staged.folder)
        seen.add(name)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(f.counts.items()) if v)
        rows.append({"file": name, "status": f.status,
                     "reason": _rel(f.reason, staged.folder).removeprefix(f"{name}: "), "contents": counts})
    for name in staged.names:
        if name not in seen:
            rows.append({"file": name, "status": "part of a record",
                         "reason": "read as a spectrum/reference of another uploaded file", "contents": ""})
    return pd.DataFrame(rows, columns=["file", "status", "reason", "contents"])


ERROR_COLUMNS = ["file", "line", "record", "field", "problem"]


def error_row(err: IngestError | str, outcome: FileOutcome, folder: str) -> dict[str, Any]:
    """One row of the error table from an error object's attributes (file, line, record, field,
    message). An error given only as text (a failure that is not an IngestError) is the problem
    of its file as a whole."""
    if isinstance(err, IngestError):
        return {"file": _rel(err.file or outcome.path, folder), "line": err.line, "record": err.record,
                "field": err.field, "problem": _rel(err.message, folder)}
    return {"file": _rel(outcome.path, folder), "line": None, "record": None, "field": None,
            "problem": _rel(str(err), folder)}


def check_errors(report: IngestReport, staged: Staged) -> pd.DataFrame:
    """Every validation error of every rejected file: file, line, record, field, problem."""
    rows = [error_row(err, f, staged.folder)
            for f in report.files if f.status == "rejected" for err in (f.errors or [f.reason])]
    out = pd.DataFrame(rows, columns=ERROR_COLUMNS)
    out["line"] = out["line"].astype("Int64")  # line 7, not 7.0, when some errors have no line
    return out


def unchanged_hints(summary: pd.DataFrame) -> list[str]:
    """Explanations for statuses a user may not expect."""
    out = []
    if (summary["status"] == "unchanged").any():
        out.append("'unchanged': the database already holds exactly this content (loading is idempotent).")
    if summary["reason"].astype(str).str.contains("--update", regex=False).any():
        out.append("A changed record is refused unless 'Update records that changed' is ticked.")
    return out
