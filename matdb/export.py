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

Two kinds of export. The machine export (``csv``, ``parquet``) is an exact round trip: every cell
is written as stored, so it ingests back unchanged. The export for people (``xlsx``, and the CSV
downloads of the app via :func:`people_csv`) is neutralised against spreadsheet formula injection
(OWASP "CSV Injection"): a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return is never evaluated by a spreadsheet program.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

LEADING = ["sample_id", "family", "formula", "params", "quantity", "value", "unit", "uncertainty",
           "technique", "provenance", "source_doi", "source_locator"]
TRAILING = ["text", "label", "approximate", "range_low", "range_high", "reported_value",
            "reported_unit", "measurement_id", "derived", "method", "method_version", "source_key",
            "quantity_definition", "series_id", "inferred", "inferred_reason"]


#: Export formats: the machine formats (exact round trip) and the one for people (neutralised).
MACHINE_FORMATS = ("csv", "parquet")
PEOPLE_FORMATS = ("xlsx",)

#: First characters that make a spreadsheet program evaluate a cell (OWASP CSV-injection guidance).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: Rows an XLSX sheet holds (Excel's limit), the header included.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL_CHARS = 32_767


class ExportError(ValueError):
    pass


def formula_like(value: object) -> bool:
    """Whether a spreadsheet would evaluate this cell: text starting with ``= + - @``, tab or CR.
    A plain number written as text (``-0.5``, ``+3e2``) is evaluated as that number only, so it
    is left alone."""
    return isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value)


def neutralise(value: object) -> object:
    """A cell made safe for a spreadsheet (OWASP): formula-looking text gets a leading ``'``,
    which spreadsheet programs show as text and do not evaluate. Anything else is returned as is."""
    return f"'{value}" if formula_like(value) else value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every formula-looking text cell (and column name) neutralised."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def people_csv(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV bytes for people (a download button): neutralised (:func:`neutralise`),
    and every text cell in double quotes, as OWASP advises (a CR inside a cell stays inside it)."""
    import csv

    return neutralise_frame(df).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def write_xlsx(df: pd.DataFrame, path: str | Path, sheet: str = "results") -> None:
    """Write ``df`` as an XLSX sheet for people: numbers as numbers, every other cell typed as
    text (never a formula); formula-looking text is also marked with Excel's quote prefix, so it
    stays text when someone edits the cell. Control characters XLSX cannot hold become U+FFFD."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if len(df) + 1 > XLSX_MAX_ROWS:
        raise ExportError(f"{path}: {len(df)} rows do not fit in an XLSX sheet ({XLSX_MAX_ROWS - 1} at most); "
                          "filter with --where or use --format csv|parquet")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)

    for col in df.columns:  # checked before writing starts (a write-only sheet cannot be abandoned)
        if df[col].dtype == object:
            lengths = df[col].map(lambda v: len(v) if isinstance(v, str) else 0)
            if len(lengths) and lengths.max() > XLSX_MAX_CELL_CHARS:
                row = int(lengths.to_numpy().argmax()) + 2
                raise ExportError(f"{path}: row {row}, column {col}: {lengths.max()} characters do not fit in an "
                                  f"XLSX cell ({XLSX_MAX_CELL_CHARS} at most); use --format csv|parquet")

    def cell(v: object) -> WriteOnlyCell:
        if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
            return WriteOnlyCell(ws, value=None)
        if isinstance(v, (bool, int, float)) and not isinstance(v, str):
            return WriteOnlyCell(ws, value=v)
        if hasattr(v, "item") and not isinstance(v, str):  # numpy scalars
            return cell(v.item())
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(v))
        c = WriteOnlyCell(ws, value=None)
        c.value = text
        c.data_type = "s"  # typed as text: openpyxl would otherwise store "=..." as a formula
        if formula_like(text):
            c.quotePrefix = True
        return c

    ws.append([cell(str(c)) for c in df.columns])
    for rec in df.itertuples(index=False, name=None):
        ws.append([cell(v) for v in rec])
    wb.save(str(path))


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
    """Write the tidy export to ``out``; return the number of rows. ``csv`` and ``parquet`` are
    the machine export (exact round trip), ``xlsx`` the export for people (neutralised, see
    :func:`write_xlsx`)."""
    path = Path(out)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    if fmt not in MACHINE_FORMATS + PEOPLE_FORMATS:
        raise ExportError(f"unknown export format '{fmt}': use csv or parquet (exact, for machines) "
                          "or xlsx (for people, formulas neutralised)")
    df = tidy_results(db, **filters)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        # RFC 4180 line ends: the csv writer then quotes every cell holding a CR or LF, so such
        # text comes back exactly (with "\n" line ends a lone CR would split the row on reading)
        df.to_csv(path, index=False, lineterminator="\r\n")
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        write_xlsx(df, path)
    return len(df)
