"""Service functions: the one layer the CLI and the Streamlit pages both call.

No page script or CLI command talks SQL or fits a model itself; each is a thin shell around one
of these functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

import matdb
from ingest.pipeline import IngestReport, check_paths, ingest_paths
from matdb import families as fam
from matdb import units, vocabulary
from matdb.db import Database
from matdb.vocabulary import PROCESS_PARAMS

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO_ROOT / "data" / "literature"

#: Errors that are user mistakes: shown as a message, never as a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # IngestError, CompositionError, UnitError, QueryError, ExportError are ValueErrors
    matdb.DatabaseError,
    FileNotFoundError,
    PermissionError,
)


def open_db(url: str | os.PathLike[str] | None = None) -> Database:
    return matdb.connect(url)


def init_db(
    url: str | None = None, *, bundled: bool = False, progress: bool = True
) -> tuple[Database, IngestReport | None]:
    """Create or migrate the schema; optionally load the bundled literature dataset."""
    from matdb.db import normalize_url

    db = Database(normalize_url(url))
    try:
        db.upgrade()
        db.check_schema()
    except matdb.DatabaseError:
        db.close()
        raise
    except Exception as exc:  # unreachable server, bad credentials
        db.close()
        raise matdb.DatabaseError(f"cannot open {db!r}: {exc}".splitlines()[0]) from exc
    report = load_bundled(db, progress=progress) if bundled else None
    return db, report


def load_bundled(db: Database, *, progress: bool = True) -> IngestReport:
    """Load the literature dataset shipped with matdb (idempotent)."""
    return ingest_paths(db, [BUNDLED_DATA], progress=progress)


def ingest(
    db: Database,
    paths: list[str | os.PathLike[str]],
    *,
    update: bool = False,
    mapping: dict[str, str] | str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> IngestReport:
    return ingest_paths(db, paths, update=update, mapping=load_mapping(mapping), progress=progress)


def check(
    db: Database, paths: list[str | os.PathLike[str]], mapping: dict[str, str] | str | os.PathLike[str] | None = None
) -> IngestReport:
    """Validate files without writing: the per-file report of what would be loaded or rejected."""
    good, report = check_paths(db, paths, mapping=load_mapping(mapping))
    from ingest.pipeline import FileOutcome

    for p in good:
        n = sum(len(m["results"]) for m in p.measurements)
        report.files.append(
            FileOutcome(
                p.file,
                "valid",
                counts={
                    "syntheses": len(p.syntheses),
                    "samples": len(p.samples),
                    "measurements": len(p.measurements),
                    "results": n,
                },
            )
        )
    return report


def load_mapping(mapping: dict[str, str] | str | os.PathLike[str] | None) -> dict[str, str] | None:
    if mapping is None or isinstance(mapping, dict):
        return mapping
    import yaml

    from ingest.errors import IngestError

    path = Path(mapping)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise IngestError(f"cannot read mapping file: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise IngestError("a mapping file is a YAML mapping {'Header in file': 'matdb column'}", file=str(path))
    return data


def query(db: Database, text: str = "", **filters: Any) -> pd.DataFrame:
    return db.select(text, **filters)


def samples(db: Database, text: str = "", **filters: Any) -> pd.DataFrame:
    from matdb.query import parse_query

    return db.samples(**{**parse_query(text), **filters})


def export(db: Database, out: str | os.PathLike[str], fmt: str | None = None, **filters: Any) -> int:
    from matdb.export import export as _export

    return _export(db, out, fmt, **filters)


def info(db: Database) -> dict[str, Any]:
    counts = db.table_counts()
    prov = db.samples()["provenance"].value_counts().to_dict() if counts.get("sample") else {}
    return {
        "url": repr(db),
        "schema_revision": db.current_revision(),
        "families": sorted(db.families()),
        "counts": counts,
        "samples_by_provenance": prov,
    }


def families_table(db: Database | None = None) -> pd.DataFrame:
    fams = db.families() if db is not None else fam.builtin_families()
    return pd.DataFrame(
        [
            {
                "slug": f.slug,
                "name": f.name,
                "structure": f.structure,
                "parameters": ", ".join(f"{p.name} ∈ [{p.min:g}, {p.max:g}]" for p in f.parameters.values()),
                "sites": "; ".join(
                    f"{s}: " + ", ".join(f"{sp}={e.text}" for sp, e in occ.items()) for s, occ in f.sites.items()
                ),
            }
            for f in fams.values()
        ]
    )


def quantities_table(db: Database | None = None) -> pd.DataFrame:
    q = dict(vocabulary.QUANTITIES)
    if db is not None:
        q.update(db.quantities())
    return pd.DataFrame(
        [
            {
                "quantity": d.name,
                "unit": units.display_unit(d.unit),
                "label": d.label,
                "min": d.min,
                "max": d.max,
                "categorical": d.categorical,
            }
            for d in q.values()
        ]
    )


def process_table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"name": p.name, "write as": p.base, "unit": units.display_unit(p.unit), "label": p.label}
            for p in PROCESS_PARAMS.values()
        ]
    )


# --- screening (see matdb_app.screening_service) ---------------------------------------------------


def train(
    db: Database,
    target: str,
    family: str | None = None,
    kind: str = "auto",
    include_simulated: bool = False,
    *,
    save: bool = False,
    stability_metric: str | None = None,
) -> dict[str, Any]:
    """Train a surrogate for ``target`` ("plqy", "stability" or a quantity); return its model card."""
    from matdb_app import screening_service as ss

    model = ss.train(db, target, family, kind, include_simulated, save=save, stability_metric=stability_metric)
    return model.card


def rank(
    db: Database,
    family: str,
    objectives: list[str] | tuple[str, ...] = ("plqy",),
    n: int = 50,
    space: Any = None,
    **kw: Any,
) -> pd.DataFrame:
    from matdb_app import screening_service as ss

    return ss.rank(db, family, objectives, n, space, **kw)


def propose(
    db: Database,
    family: str,
    objectives: list[str] | tuple[str, ...] = ("plqy",),
    n: int = 8,
    acquisition: str = "ei",
    batch: str = "kriging_believer",
    **kw: Any,
) -> tuple[str, pd.DataFrame]:
    from matdb_app import screening_service as ss

    return ss.propose(db, family, objectives, n, acquisition=acquisition, batch=batch, **kw)


def milling_plan(db: Database, plan: pd.DataFrame, batch_mass_mg: float) -> pd.DataFrame:
    from matdb_app import screening_service as ss

    return ss.milling_plan(db, plan, batch_mass_mg)


def predict_grid(
    db: Database,
    family: str,
    target: str,
    axes: list[str],
    n: int = 41,
    include_simulated: bool = False,
    kind: str = "auto",
) -> pd.DataFrame:
    from matdb_app import screening_service as ss

    return ss.predict_grid(db, family, target, axes, n, include_simulated, kind)
