"""Tidy long-format export: one row per scalar result.

Leading columns, in this order: ``sample_id, family, formula, params, quantity, value, unit,
uncertainty, technique, provenance, source_doi, source_locator``. ``params`` is a JSON object of
the family's composition parameters (``{"x": 0.8}``) and the sample's process parameters
(``milling_time_min``, ``aging_time_h``, ``sintering_temperature_C``, ``additive_mol_pct``, ...).
Further columns (text, label, approximate, range, reported value/unit, measurement id, derived,
method, series_id, inferred, inferred_reason) follow. ``provenance`` is ``literature``, ``measured``
or ``simulated``. ``inferred`` is True when the value (or its measurement, sample or synthesis) was
inferred rather than stated by the source, ``inferred_reason`` says why (the reason of the
innermost inferred record); ``series_id`` names the series a finding about a whole series
belongs to (such rows have no sample_id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

LEADING = ["sample_id", "family", "formula", "params", "quantity", "value", "unit", "uncertainty",
           "technique", "provenance", "source_doi", "source_locator"]
TRAILING = ["text", "label", "approximate", "range_low", "range_high", "reported_value",
            "reported_unit", "measurement_id", "derived", "method", "method_version", "source_key",
            "quantity_definition", "series_id", "inferred", "inferred_reason"]


class ExportError(ValueError):
    pass


def tidy_results(db: Any, **filters: Any) -> pd.DataFrame:
    """The export table as a DataFrame (``params`` as JSON text)."""
    from matdb.query import results

    df = results(db, **filters)
    if df.empty:
        return pd.DataFrame(columns=LEADING + TRAILING)
    out = df[[c for c in LEADING + TRAILING if c in df.columns]].copy()
    out["params"] = out["params"].map(lambda d: json.dumps(d, sort_keys=True))
    # quantities a user declared travel with their rows, so the export ingests into an empty database
    declared = {name: {"name": q.name, "unit": q.unit, "label": q.label, "min": q.min, "max": q.max,
                       "categorical": q.categorical, "description": q.description}
                for name, q in db.quantities().items()}
    out["quantity_definition"] = out["quantity"].map(
        lambda q: json.dumps(declared[q], sort_keys=True) if q in declared else None)
    out["sample_id"] = out["sample_id"].fillna("")
    return out[LEADING + TRAILING]


def export(db: Any, out: str | Path, fmt: str | None = None, **filters: Any) -> int:
    """Write the tidy export to ``out`` (csv or parquet); return the number of rows."""
    path = Path(out)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format '{fmt}': use csv or parquet")
    df = tidy_results(db, **filters)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return len(df)
