"""What the database and matdb know: contents, families, quantities, process parameters, and how
their names are written on axes and in tables (``matdb info`` and the labels of every page)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from matdb import families as fam
from matdb import store, units, vocabulary
from matdb.db import Database
from matdb.vocabulary import PROCESS_PARAMS


def info(db: Database) -> dict[str, Any]:
    """URL, schema revision, families, rows per table, samples by provenance."""
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
    """Families (built in, and those defined in the database): slug, name, structure, parameters, sites."""
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
    """Known quantities (built in, plus those declared in the database) with units and bounds."""
    q = dict(vocabulary.QUANTITIES)
    if db is not None:
        q.update(db.quantities())
    return pd.DataFrame(
        [
            {"quantity": d.name, "unit": units.display_unit(d.unit), "label": d.label, "min": d.min, "max": d.max,
             "categorical": d.categorical}
            for d in q.values()
        ]
    )


def process_table() -> pd.DataFrame:
    """Process parameters: name, how to write it in a record, unit, label."""
    return pd.DataFrame(
        [
            {"name": p.name, "write as": p.base, "unit": units.display_unit(p.unit), "label": p.label}
            for p in PROCESS_PARAMS.values()
        ]
    )


def techniques_and_quantities(db: Database) -> tuple[list[str], pd.DataFrame]:
    """Techniques with at least one measurement, and per-quantity numeric ranges
    (columns quantity, n, min, max)."""
    return store.measured_techniques(db), store.quantity_ranges(db)


# --- labels -----------------------------------------------------------------------------------


def axis_label(name: str, db_quantities: dict[str, vocabulary.QuantityDef] | None = None) -> str:
    """Axis label with unit for a quantity, a process parameter or a composition parameter."""
    if db_quantities is not None and name in db_quantities:
        return db_quantities[name].axis_label
    if name in vocabulary.QUANTITIES:
        return vocabulary.QUANTITIES[name].axis_label
    if name in PROCESS_PARAMS:
        p = PROCESS_PARAMS[name]
        u = units.display_unit(p.unit) if p.unit != "revolutions/minute" else "rpm"
        return f"{p.label} ({u})" if p.unit else p.label
    return name


def param_label(families: dict[str, Any], family: str | None, name: str) -> str:
    """Axis label of a composition parameter ("x (FA fraction)") or of any other column."""
    f = families.get(family) if family else None
    if f is not None and name in f.parameters:
        desc = f.parameters[name].description
        return f"{name} ({desc})" if desc else name
    return axis_label(name)
