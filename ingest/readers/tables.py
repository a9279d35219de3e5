"""Readers for tables: wide lab tables (CSV/XLSX, one row per sample) and matdb's tidy export.

Wide table columns (case-insensitive except composition parameters)
-------------------------------------------------------------------
- ``sample_id`` (optional). Without it, a row with a ``proposal_id`` (a filled-in plan from
  ``matdb propose``) is named after its proposal; otherwise the id is ``<file stem>-<hash>``, the hash being the
  first 10 hex digits of SHA-1 over the row's family, composition and process values (JSON,
  sorted keys), so the same row gets the same id every time; identical rows get ``-r2``,
  ``-r3``... in file order.
- ``family`` (required, or ``defaults: {family: ...}`` in the mapping file).
- composition: one column per parameter of the family (``x``, ``y``, ``z``, ``X``; the
  parameters of a user-defined family, e.g. ``a``, ``b``, when the family is in the database or
  in a record file of the same ingest; any other parameter via the mapping target
  ``params.<name>``) or a ``params`` JSON column.
- ``formula`` (optional; checked against the family's formula).
- process columns: the parameters of ``matdb.vocabulary.PROCESS_PARAMS`` by base name with a unit
  (``milling_time [min]``, ``aging_time [h]``, ``sintering_temperature [degC]``,
  ``milling_frequency [Hz]``, ``additive [mol%]``) or by stored name without one
  (``additive_mol_pct``, ``milling_time_min``); text ones (``atmosphere``, ``quenched``) as text.
  They go to the sample's ``process`` ("30.0 min", or a bare number in the stored unit).
- ``technique``, ``source_doi``/``doi``, ``source_locator``/``locator``, ``source`` (key),
  ``provenance`` (default measured), ``proposal_id``, ``operator``, ``date``, ``note``, ``label``.
- ``outcome``: what the synthesis gave (``matdb.vocabulary.OUTCOMES``: ok, no_perovskite,
  wrong_phase, mixed_phase, decomposed, amorphous, failed); a row with an outcome is a sample even
  when its result cells are empty (a failed synthesis has nothing to measure).
- results: ``<quantity> [unit]`` with a quantity of ``matdb.vocabulary.QUANTITIES`` or a
  user-declared one (``quantities:`` in a record file; the unit may be
  left out only for dimensionless and categorical quantities); ``<quantity>_uncertainty
  [unit]`` gives one standard uncertainty. A value written ``~45`` is marked approximate.
- ignored: columns starting with ``pred_``, ``predicted_``, ``acquisition``, ``mean_``,
  ``std_`` (model outputs of a proposal plan).

A row whose result and outcome cells are all empty creates nothing (an unfilled plan row is not a sample).
The results of a row become one measurement per technique; the technique of a result defaults
from its quantity (``DEFAULT_TECHNIQUE``, else "other") unless a ``technique`` column is given.

Mapping file (YAML) for other headers::

    "PLQY (%)": "plqy [%]"
    Sample: sample_id
    ignore: [Comments]
    defaults: {family: FAMAPbI3}

Tidy export format (``matdb export``): columns sample_id, family, formula, params (JSON of the
composition and the sample's stored process parameters such as ``milling_time_min``), quantity,
value, unit, uncertainty, technique, provenance, source_doi, source_locator; optional text, label,
approximate, range_low, range_high, reported_value, reported_unit (used instead of value/unit
when given), measurement_id, derived/method/method_version (kept as a result note), source_key,
note, process (JSON), conditions (JSON), instrument. Measurements are grouped by sample (or
composition), technique, source, locator, provenance and measurement_id; sources are keyed by
DOI (kind publication) or else by source_key / file stem (kind notebook).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ingest.errors import IngestError
from ingest.limits import DEFAULT, MB, LimitError, Limits, check_count
from ingest.readers import _csv
from ingest.readers._common import (
    check_composition,
    check_process,
    fail,
    load_yaml_text,
    make_source,
    read_text,
)
from ingest.records import (
    TECHNIQUES,
    Document,
    MeasurementRecord,
    QuantityRecord,
    ResultRecord,
    SampleRecord,
    SeriesRecord,
    SourceRecord,
)
from matdb.families import Family, builtin_families, canonical_params_key
from matdb.units import UnitError, convert, display_unit, parse_unit
from matdb.vocabulary import (
    OUTCOMES,
    PROVENANCES,
    QUANTITIES,
    IdentifierError,
    QuantityDef,
    check_identifier,
    safe_id_part,
)


def process_columns() -> dict[str, Any]:
    """Process column names (stored names such as ``milling_time_min`` and base names such as
    ``milling_time``) -> matdb.process.ProcessParam."""
    from matdb.vocabulary import PROCESS_PARAMS

    out: dict[str, Any] = {}
    for p in PROCESS_PARAMS.values():
        out[p.name.lower()] = p
        out[p.base.lower()] = p
    return out


#: Metadata columns and their aliases -> canonical name.
META_COLUMNS = {
    "sample_id": "sample_id",
    "sample": "sample_id",
    "id": "sample_id",
    "family": "family",
    "params": "params",
    "formula": "formula",
    "technique": "technique",
    "source_doi": "source_doi",
    "doi": "source_doi",
    "source_locator": "source_locator",
    "locator": "source_locator",
    "source": "source",
    "provenance": "provenance",
    "proposal_id": "proposal_id",
    "operator": "operator",
    "date": "date",
    "note": "note",
    "notes": "note",
    "label": "label",
    "outcome": "outcome",
}
#: Optional columns of the export format (matdb.export TRAILING plus a few more).
EXPORT_EXTRA = {
    "text",
    "approximate",
    "range_low",
    "range_high",
    "reported_value",
    "reported_unit",
    "measurement_id",
    "derived",
    "method",
    "method_version",
    "source_key",
    "quantity_definition",
    # a finding about a series (no sample), and the inferred flag with its reason
    "series_id",
    "inferred",
    "inferred_reason",
    # written by matdb.export; accepted, but the loader does not store them back yet
    "process",
    "conditions",
    "instrument",
}
IGNORED_PREFIXES = ("pred_", "predicted_", "acquisition", "mean_", "std_")
#: Columns of a proposal plan that describe the proposal, not the made sample.
PLAN_COLUMNS = ("campaign", "design", "run")

#: Technique a result column gets when the table has no ``technique`` column.
DEFAULT_TECHNIQUE: dict[str, str] = {
    "plqy": "plqy",
    **dict.fromkeys(
        (
            "pl_peak",
            "pl_fwhm",
            "pl_intensity",
            "pl_integrated_intensity",
            "relative_pl_intensity",
            "pl_enhancement",
            "emission_wavelength",
        ),
        "pl",
    ),
    **dict.fromkeys(("pl_lifetime", "carrier_lifetime"), "trpl"),
    **dict.fromkeys(
        (
            "absorption_edge",
            "absorption_onset",
            "absorption_peak",
            "bandgap",
            "urbach_energy",
            "reflectance",
        ),
        "uv_vis",
    ),
    **dict.fromkeys(
        (
            "crystallite_size",
            "xrd_peak",
            "lattice_parameter",
            "cell_volume",
            "phase_fraction",
            "d_spacing",
            "crystal_phase",
            "phases_present",
            "space_group",
        ),
        "pxrd",
    ),
    **dict.fromkeys(
        ("time_to_edge", "time_to_max", "steady_state_time", "decay_onset_time", "edge_blue_shift"),
        "tlis_reflectance",
    ),
    **dict.fromkeys(("pl_peak_time", "pl_retention"), "tlis_pl"),
    **dict.fromkeys(("nmr_shift", "nmr_linewidth", "t1"), "mas_nmr"),
    **dict.fromkeys(("binding_energy", "binding_energy_shift"), "xps"),
    "raman_shift": "raman",
    **dict.fromkeys(
        ("glass_transition_temperature", "melting_temperature", "phase_transition_temperature"),
        "dsc",
    ),
    **dict.fromkeys(("decomposition_temperature", "mass_loss"), "tga"),
    "particle_size": "sem",
    "color": "visual",
}

_HEADER = re.compile(r"^(.*?)\s*\[(.*)\]\s*$")


def param_names() -> set[str]:
    """Composition parameter names of the built-in families (x, y, z, X)."""
    return {p for f in builtin_families().values() for p in f.parameters}


@dataclass(frozen=True)
class Known:
    """The families and quantities a table may use: the built-ins plus user-defined ones (from
    the database or a record file of the same ingest batch)."""

    families: dict[str, Family]
    declared: dict[str, QuantityDef]

    @classmethod
    def of(cls, families: Mapping[str, Family] | None = None,
           quantities: Mapping[str, QuantityDef] | None = None) -> Known:
        return cls({**builtin_families(), **(families or {})},
                   {k: v for k, v in (quantities or {}).items() if k not in QUANTITIES})

    def param_names(self) -> set[str]:
        return {p for f in self.families.values() for p in f.parameters}

    def quantity_name(self, header_name: str) -> str | None:
        """The quantity a column name refers to (built-ins case-insensitively, declared ones as
        declared or lower-cased), or None."""
        if header_name.lower() in QUANTITIES:
            return header_name.lower()
        for name in (header_name, header_name.lower()):
            if name in self.declared:
                return name
        return None

    def quantity(self, name: str) -> QuantityDef:
        return self.declared.get(name) or QUANTITIES[name]


# --- mapping files ------------------------------------------------------------------------------


def read_mapping(path: Path, limits: Limits = DEFAULT) -> dict[str, Any]:
    """Load a header mapping file: {"PLQY (%)": "plqy [%]", ignore: [...], defaults: {...}}."""
    data = load_yaml_text(read_text(path, limits), path, limits)
    return check_mapping(data, path)


def check_mapping(data: Any, path: Path | str = "mapping") -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise fail(
            "a mapping file must be a YAML mapping of 'header in file': 'matdb column'", path
        )
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k == "ignore":
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise fail("'ignore' must be a list of column headers", path, field="ignore")
            out["ignore"] = list(v)
        elif k == "defaults":
            if not isinstance(v, dict):
                raise fail(
                    "'defaults' must map column names to values, e.g. {family: FAMAPbI3}",
                    path,
                    field="defaults",
                )
            out["defaults"] = {str(a).strip().lower(): b for a, b in v.items()}
        elif not isinstance(v, str):
            raise fail(
                f"the target of '{k}' must be a column name such as 'plqy [%]', got {v!r}",
                path,
                field=str(k),
            )
        else:
            out[str(k).strip()] = v.strip()
    return out


def _sidecar_mapping(path: Path, limits: Limits = DEFAULT) -> dict[str, Any] | None:
    for cand in (
        path.with_name(path.name + ".mapping.yaml"),
        path.with_name(path.stem + ".mapping.yaml"),
    ):
        if cand.is_file():
            return read_mapping(cand, limits)
    return None


# --- raw rows -----------------------------------------------------------------------------------


@dataclass
class _Raw:
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[Any]]]  # (line or spreadsheet row, cells)
    row_word: str  # "line" for CSV, "row" for XLSX


def csv_rows(text: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line of the row, cells) for each CSV row, with located csv errors."""
    return _csv.csv_rows(text, path)


def csv_header(text: str, path: Path) -> list[str]:
    """The first non-comment, non-empty row of a CSV (for format detection)."""
    for _, row in csv_rows(text, path):
        if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        return [c.strip() for c in row]
    return []


def _raw_csv(text: str, path: Path, limits: Limits = DEFAULT) -> _Raw:
    header: list[str] | None = None
    hline = 0
    rows: list[tuple[int, list[Any]]] = []
    for line, row in _csv.table_rows(text, path):
        check_count(len(row), "table_columns", f"line {line} has {len(row)} columns", limits, file=path,
                    line=line)
        if header is None:
            if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if len(row) == 1 and row[0].strip().lower().startswith("sep="):
                continue
            header, hline = [c.strip() for c in row], line
            continue
        check_count(len(rows) + 1, "table_rows", "the table has too many rows", limits, file=path, line=line)
        rows.append((line, row))
    if header is None:
        raise fail("no column header row found", path)
    return _Raw(header, hline, rows, "line")


#: Parts smaller than this are exempt from the ratio check (small XML compresses well and is
#: harmless): Apache POI's ZipArchiveThresholdInputStream.GRACE_ENTRY_SIZE, 100 KiB.
XLSX_GRACE_BYTES = 100 * 1024


def check_xlsx_zip(path: Path, limits: Limits) -> None:
    """Zip-bomb guard, from the archive's directory before anything is decompressed: the total
    decompressed size and each part's compression ratio (Apache POI's ZipSecureFile check)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise fail(f"not a readable XLSX workbook (a damaged zip archive: {type(exc).__name__})", path) from None
    total = sum(i.file_size for i in infos)
    if total > limits.bytes_of("xlsx_unzipped_mb"):
        raise LimitError("xlsx_unzipped_mb", f"the workbook decompresses to {total / MB:.0f} MB",
                         file=str(path), limits=limits)
    for i in infos:
        ratio = i.file_size / max(i.compress_size, 1)
        if i.file_size > XLSX_GRACE_BYTES and ratio > limits.xlsx_ratio:
            raise LimitError("xlsx_ratio", f"part '{i.filename[:60]}' decompresses {ratio:.0f} times "
                             "its stored size (a zip bomb?)", file=str(path), limits=limits)


def _raw_xlsx(path: Path, limits: Limits = DEFAULT) -> _Raw:
    import openpyxl

    check_xlsx_zip(path, limits)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zip/xml/openpyxl errors of a damaged workbook
        raise fail(
            f"not a readable XLSX workbook ({type(exc).__name__}: {str(exc)[:120]})", path
        ) from None
    try:
        if not wb.worksheets:
            raise fail("the workbook has no worksheets", path)
        ws = wb.worksheets[0]
        header: list[str] | None = None
        hline = 0
        rows: list[tuple[int, list[Any]]] = []
        cells_seen = 0
        for i, row in enumerate(_sheet_rows(ws, path), start=1):
            cells = list(row)
            cells_seen += len(cells)
            check_count(cells_seen, "xlsx_cells", "the worksheet has too many cells", limits, file=path)
            check_count(len(cells), "table_columns", f"row {i} has {len(cells)} columns", limits, file=path)
            if header is not None:
                check_count(len(rows) + 1, "table_rows", "the table has too many rows", limits, file=path)
            if header is None:
                if not any(_cell(c) is not None for c in cells):
                    continue
                header, hline = ["" if c is None else str(c).strip() for c in cells], i
                continue
            rows.append((i, cells))
    finally:
        wb.close()
    if header is None:
        raise fail("the first worksheet is empty", path)
    return _Raw(header, hline, rows, "row")


def _sheet_rows(ws: Any, path: Path) -> Iterator[tuple[Any, ...]]:
    """The rows of a read-only worksheet, one at a time (damaged sheet XML is an IngestError)."""
    it = ws.iter_rows(min_row=1, values_only=True)
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - damaged sheet XML
            raise fail(f"cannot read the first worksheet ({type(exc).__name__})", path) from None
        yield row


def _cell(v: Any) -> Any:
    """Empty -> None; text stripped; numbers float; dates ISO text."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return float(v) if not (isinstance(v, float) and math.isnan(v)) else None
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    s = str(v).strip()
    return s or None


# --- columns ------------------------------------------------------------------------------------


@dataclass
class _Col:
    index: int
    header: str  # as written in the file
    kind: str  # meta | param | process | result | uncertainty | ignore | export
    name: str
    unit: str | None = None


def _split_header(text: str) -> tuple[str, str | None]:
    m = _HEADER.match(text)
    return (m.group(1).strip(), m.group(2).strip()) if m else (text.strip(), None)


def _classify(raw: _Raw, path: Path, mapping: dict[str, Any], *, export: bool,
              known: Known | None = None) -> list[_Col]:
    known = known or Known.of()
    ignore = set(mapping.get("ignore", []))
    params = known.param_names()
    cols: list[_Col] = []
    seen: dict[tuple[str, str], str] = {}
    where = (
        {"line": raw.header_line}
        if raw.row_word == "line"
        else {"record": f"row {raw.header_line}"}
    )
    for i, header in enumerate(raw.header):
        target = mapping.get(header, header) if header not in ("ignore", "defaults") else header
        if header in ignore or target.strip().lower() == "ignore":
            cols.append(_Col(i, header, "ignore", header))
            continue
        if not header:
            if any(i < len(r) and _cell(r[i]) is not None for _, r in raw.rows):
                raise fail(
                    f"column {i + 1} has values but no header",
                    path,
                    field=f"column {i + 1}",
                    **where,
                )
            cols.append(_Col(i, header, "ignore", ""))
            continue
        name, unit = _split_header(target)
        low = name.lower()
        col: _Col
        if name.startswith("params."):
            col = _Col(i, header, "param", name[7:])
        elif name in params and unit is None and not export:
            col = _Col(i, header, "param", name)
        elif low in META_COLUMNS and unit is None:
            col = _Col(i, header, "meta", META_COLUMNS[low])
        elif export and low in ("quantity", "value", "unit", "uncertainty", *EXPORT_EXTRA):
            col = _Col(i, header, "export", low)
        elif not export and low in process_columns():
            col = _Col(i, header, "process", low, _process_unit(low, unit, header, path, where))
        elif low.startswith(IGNORED_PREFIXES) or low in PLAN_COLUMNS:
            col = _Col(i, header, "ignore", low)
        elif not export and name.lower().endswith("_uncertainty") and known.quantity_name(name[:-12]):
            col = _Col(i, header, "uncertainty", known.quantity_name(name[:-12]) or "", unit)
        elif not export and known.quantity_name(name):
            qn = known.quantity_name(name) or ""
            col = _Col(i, header, "result", qn, _result_unit(known.quantity(qn), unit, header, path, where))
        else:
            hint = (
                f'; map it in a mapping file (--mapping), e.g. \'"{header}": "plqy [%]"\', '
                f"or list it under 'ignore:'"
            )
            known_columns = (
                "quantity, value, unit, ..."
                if export
                else "sample_id, family, the family's parameters (x/y/z/X, or those of a family defined in the "
                "database or in a record file of the same ingest), outcome, plqy [%], declared quantities, ..."
            )
            raise fail(
                f"unknown column '{header}' (known columns: {known_columns}){hint}",
                path,
                field=header,
                **where,
            )
        key = (col.kind, col.name)
        if col.kind != "ignore" and key in seen:
            raise fail(
                f"columns '{seen[key]}' and '{header}' both give {col.kind} '{col.name}'",
                path,
                field=header,
                **where,
            )
        seen[key] = header
        cols.append(col)
    by_name = {c.name for c in cols if c.kind == "result"}
    for c in cols:
        if c.kind == "uncertainty":
            if c.name not in by_name:
                raise fail(
                    f"uncertainty column '{c.header}' has no result column '{c.name} [...]'",
                    path,
                    field=c.header,
                    **where,
                )
            res = next(r for r in cols if r.kind == "result" and r.name == c.name)
            if c.unit is None:
                c.unit = res.unit
            else:
                _check_unit(c.name, c.unit, c.header, path, where, target=known.quantity(c.name).unit)
    return cols


def _check_unit(name: str, unit: str, header: str, path: Path, where: dict[str, Any],
                target: str | None = None) -> None:
    """The unit of column ``header`` parses and converts to ``target`` (default: the canonical
    unit of quantity ``name``)."""
    target = QUANTITIES[name].unit if target is None else target
    try:
        parse_unit(unit)
    except UnitError:
        raise fail(
            f"unknown unit '{unit}' in column '{header}'", path, field=header, **where
        ) from None
    try:
        convert(1.0, unit, target)
    except UnitError:
        raise fail(
            f"unit '{unit}' does not fit {name} (expected a unit like "
            f"{display_unit(target) or 'dimensionless'})",
            path,
            field=header,
            **where,
        ) from None


def _result_unit(
    q: QuantityDef, unit: str | None, header: str, path: Path, where: dict[str, Any]
) -> str:
    quantity = q.name
    if q.categorical:
        if unit:
            raise fail(
                f"{quantity} is categorical (text) and takes no unit", path, field=header, **where
            )
        return ""
    if unit is None:
        if q.unit in ("", "dimensionless"):
            return ""
        raise fail(
            f"column '{header}' needs its unit in brackets, e.g. '{quantity} "
            f"[{display_unit(q.unit)}]'",
            path,
            field=header,
            **where,
        )
    _check_unit(quantity, unit, header, path, where, target=q.unit)
    return unit


def _process_unit(
    name: str, unit: str | None, header: str, path: Path, where: dict[str, Any]
) -> str | None:
    p = process_columns()[name]
    if p.categorical:
        if unit:
            raise fail(f"'{name}' is text and takes no unit", path, field=header, **where)
        return None
    if unit is None:
        if name != p.base:  # a stored name with its unit in it: milling_time_min, additive_mol_pct
            return None
        raise fail(
            f"column '{header}' needs its unit in brackets, e.g. '{name} [{display_unit(p.unit)}]'",
            path,
            field=header,
            **where,
        )
    _check_unit(name, unit, header, path, where, target=p.unit)
    return unit


# --- values -------------------------------------------------------------------------------------


def _number(v: Any, path: Path, loc: dict[str, Any], header: str) -> tuple[float, bool]:
    """(value, approximate) from a cell; text that is not a number is an IngestError."""
    approx = False
    if isinstance(v, str):
        s = v.strip()
        if s[:1] in ("~", "≈"):
            approx, s = True, s[1:].strip()
        try:
            f = float(s)
        except ValueError:
            raise fail(f"'{v}' is not a number", path, field=header, **loc) from None
    else:
        f = float(v)
    if not math.isfinite(f):
        raise fail(f"value '{v}' is not a finite number", path, field=header, **loc)
    return f, approx


def _quantity_value(
    quantity: str,
    value: float,
    unit: str,
    path: Path,
    loc: dict[str, Any],
    header: str,
    unit_field: str | None = None,
    declared: dict[str, Any] | None = None,
) -> None:
    from matdb.vocabulary import to_canonical

    try:
        to_canonical(quantity, value, unit, declared)
    except UnitError as exc:
        field = unit_field if unit_field and exc.field == "unit" else header
        raise fail(str(exc), path, field=field, **loc) from None


def _json_obj(v: Any, path: Path, loc: dict[str, Any], header: str) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    try:
        obj = json.loads(str(v))
    except ValueError as exc:
        raise fail(
            f"'{v}' is not a JSON object such as {{\"x\": 0.8}} ({exc})", path, field=header, **loc
        ) from None
    if not isinstance(obj, dict):
        raise fail(f"'{v}' is not a JSON object such as {{\"x\": 0.8}}", path, field=header, **loc)
    return obj


def _params(obj: dict[str, Any], path: Path, loc: dict[str, Any], header: str) -> dict[str, float]:
    out = {}
    for k, v in obj.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail(
                f"composition parameter '{k}' must be a number, got {v!r}",
                path,
                field=f"{header}.{k}",
                **loc,
            )
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise fail(
                f"composition parameter '{k}' is not finite", path, field=f"{header}.{k}", **loc
            )
        out[str(k)] = f
    return out


def _formula_tokens(formula: str) -> dict[str, float] | None:
    s = re.sub(r"\s+", "", formula)
    out: dict[str, float] = {}
    pos = 0
    for m in re.finditer(r"(\([^()]*\)|[A-Z][a-z]*)(\d*\.?\d*)", s):
        if m.start() != pos:
            return None
        pos = m.end()
        n = float(m.group(2)) if m.group(2) not in ("", ".") else 1.0
        out[m.group(1)] = out.get(m.group(1), 0.0) + n
    return out if pos == len(s) and out else None


def _check_formula(
    family: str, params: dict[str, float], formula: str, path: Path, loc: dict[str, Any],
    known: Known | None = None,
) -> None:
    fam = (known or Known.of()).families.get(family)
    if fam is None:
        return
    expected = fam.formula(params)
    a, b = _formula_tokens(formula), _formula_tokens(expected)
    same = (
        a is not None
        and b is not None
        and a.keys() == b.keys()
        and all(abs(a[k] - b[k]) <= 1e-3 for k in a)
    )
    if not same and formula.replace(" ", "") != expected:
        raise fail(
            f"formula '{formula}' does not match {family} with {params} (expected '{expected}')",
            path,
            field="formula",
            **loc,
        )


def _technique(v: Any, path: Path, loc: dict[str, Any]) -> str:
    t = str(v).strip().lower()
    if t not in TECHNIQUES:
        raise fail(
            f"unknown technique '{v}'; use one of {', '.join(TECHNIQUES)}",
            path,
            field="technique",
            **loc,
        )
    return t


def _outcome(v: Any, path: Path, loc: dict[str, Any]) -> str | None:
    """A sample's outcome (matdb.vocabulary.OUTCOMES); empty -> None."""
    if v is None:
        return None
    o = str(v).strip().lower()
    if o not in OUTCOMES:
        raise fail(f"outcome must be one of {', '.join(OUTCOMES)}, not '{v}'", path, field="outcome", **loc)
    return o


def _provenance(v: Any, path: Path, loc: dict[str, Any]) -> str:
    p = str(v).strip().lower()
    if p not in PROVENANCES:
        raise fail(
            f"provenance must be one of {', '.join(PROVENANCES)}, not '{v}'",
            path,
            field="provenance",
            **loc,
        )
    return p


class _Sources:
    """Sources keyed by DOI (publication) or by the ``source`` key / file stem (notebook)."""

    def __init__(self, stem: str, *, notebook: bool = False) -> None:
        self.stem = stem
        self.notebook = notebook  # export format: kind notebook whenever there is no DOI
        self.by_key: dict[str, SourceRecord] = {}

    def key(self, doi: Any, key: Any, provenance: str) -> str:
        doi_s = str(doi).strip() if doi is not None else None
        key_s = str(key).strip() if key is not None else None
        src = make_source(doi_s, key_s, "" if self.notebook else provenance, self.stem)
        old = self.by_key.get(src.key)
        if old is None:
            self.by_key[src.key] = src
        elif old.doi != src.doi:
            raise IngestError(
                f"source '{src.key}' is used with DOIs '{old.doi}' and '{src.doi}'",
                field="source_doi",
            )
        return src.key


def _loc(raw: _Raw, line: int) -> dict[str, Any]:
    return {"line": line} if raw.row_word == "line" else {"record": f"row {line}"}


# --- wide tables --------------------------------------------------------------------------------


def read_table(path: Path, text: str | None, mapping: dict[str, Any] | None = None, *,
               families: Mapping[str, Family] | None = None,
               quantities: Mapping[str, QuantityDef] | None = None,
               limits: Limits = DEFAULT) -> Document:
    """A wide table (one row per sample) from CSV text or an XLSX file (text None), within ``limits``.

    ``families`` and ``quantities`` are the user-defined ones the table may use (from the
    database or an earlier record file of the same batch), besides the built-ins."""
    known = Known.of(families, quantities)
    if mapping is None:
        mapping = _sidecar_mapping(path, limits) or {}
    mapping = check_mapping(mapping, path)
    raw = _raw_xlsx(path, limits) if text is None else _raw_csv(text, path, limits)
    if _is_export(raw.header, mapping):
        return _read_export(path, raw, mapping, known)
    cols = _classify(raw, path, mapping, export=False, known=known)
    defaults = mapping.get("defaults", {})
    where = (
        {"line": raw.header_line}
        if raw.row_word == "line"
        else {"record": f"row {raw.header_line}"}
    )
    meta = {c.name: c for c in cols if c.kind == "meta"}
    results = [c for c in cols if c.kind == "result"]
    uncs = {c.name: c for c in cols if c.kind == "uncertainty"}
    pcols = [c for c in cols if c.kind == "param"]
    if not results and "outcome" not in meta:
        raise fail(
            "no result columns: add columns such as 'plqy [%]' or 'pl_peak [nm]' (quantity "
            "[unit]) or an 'outcome' column, or map your headers with a mapping file",
            path,
            **where,
        )
    if "family" not in meta and "family" not in defaults:
        raise fail(
            "missing required column 'family' (or give 'defaults: {family: ...}' in a mapping "
            "file)",
            path,
            field="family",
            **where,
        )
    if not pcols and "params" not in meta:
        raise fail(
            "missing composition columns: add the family's parameters (x, y, z, X or those of a "
            "user-defined family, e.g. a, b) or a 'params' JSON column",
            path,
            field="params",
            **where,
        )
    sources = _Sources(path.stem)
    samples: list[SampleRecord] = []
    measurements: list[MeasurementRecord] = []
    ids: dict[str, int] = {}
    # compositions already checked in this table (rows repeat them): family, params -> checked
    checked_comps: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]] = {}
    proc_params = process_columns()
    for line, cells_raw in raw.rows:
        cells = [_cell(c) for c in cells_raw]
        if not any(c is not None for c in cells):
            continue
        loc = _loc(raw, line)
        if len(cells) > len(raw.header) and any(c is not None for c in cells[len(raw.header) :]):
            raise fail(
                f"{raw.row_word} {line} has {len(cells)} cells but the header has "
                f"{len(raw.header)} columns",
                path,
                **loc,
            )

        def get(col: _Col | None, _cells: list[Any] = cells) -> Any:
            return _cells[col.index] if col is not None and col.index < len(_cells) else None

        def meta_value(name: str) -> Any:
            v = get(meta.get(name))
            return v if v is not None else defaults.get(name)

        row_results: list[tuple[str, ResultRecord]] = []
        tech_cell = meta_value("technique")
        tech_row = _technique(tech_cell, path, loc) if tech_cell is not None else None
        for col in results:
            v = get(col)
            if v is None:
                continue
            q = known.quantity(col.name)
            if q.categorical:
                rec = ResultRecord(quantity=col.name, text=str(v))
            else:
                value, approx = _number(v, path, loc, col.header)
                _quantity_value(col.name, value, col.unit or "", path, loc, col.header,
                                declared=known.declared)
                unc = None
                ucol = uncs.get(col.name)
                if ucol is not None and get(ucol) is not None:
                    u, _ = _number(get(ucol), path, loc, ucol.header)
                    if u < 0:
                        raise fail(f"uncertainty {u:g} is negative", path, field=ucol.header, **loc)
                    unc = _delta(u, ucol.unit or "", col.unit or "")
                rec = ResultRecord(
                    quantity=col.name,
                    value=value,
                    unit=col.unit or q.unit,
                    uncertainty=unc,
                    approximate=approx,
                )
            row_results.append((tech_row or DEFAULT_TECHNIQUE.get(col.name, "other"), rec))
        outcome = _outcome(meta_value("outcome"), path, loc)
        if not row_results and outcome is None:
            continue  # an unfilled plan row: no sample
        family = meta_value("family")
        if family is None:
            raise fail("family is empty", path, field="family", **loc)
        family = str(family).strip()
        params: dict[str, float] = {}
        json_process: dict[str, Any] = {}
        if get(meta.get("params")) is not None:
            comp, json_process = split_params(
                family, _json_obj(get(meta["params"]), path, loc, "params"), known
            )
            params = _params(comp, path, loc, "params")
            check_process(json_process, path, field="params", **_loc_kw(loc))
        for col in pcols:
            v = get(col)
            if v is None:
                continue
            value, _ = _number(v, path, loc, col.header)
            if col.name in params and abs(params[col.name] - value) > 1e-12:
                raise fail(
                    f"'{col.name}' is {value:g} but params says {params[col.name]:g}",
                    path,
                    field=col.header,
                    **loc,
                )
            params[col.name] = value
        # families unknown here (neither built in nor given) are checked by the loader
        ckey = (family, tuple((k, repr(v)) for k, v in params.items()))
        checked = checked_comps.get(ckey)
        if checked is None:
            checked = checked_comps[ckey] = check_composition(
                family, params, path, families=known.families, **_loc_kw(loc)
            )
        params = dict(checked)
        formula = meta_value("formula")
        if formula is not None:
            _check_formula(family, params, str(formula), path, loc, known)
        process: dict[str, Any] = dict(json_process)
        for col in (c for c in cols if c.kind == "process"):
            v = get(col)
            if v is None:
                continue
            p = proc_params[col.name]
            if p.categorical:
                process[col.name] = str(v)
                continue
            value, _ = _number(v, path, loc, col.header)
            process[col.name] = f"{value!r} {col.unit}" if col.unit else value
            check_process({col.name: process[col.name]}, path, field=col.header, **_loc_kw(loc))
        prov_cell = meta_value("provenance")
        prov = _provenance(prov_cell, path, loc) if prov_cell is not None else "measured"
        try:
            src = sources.key(meta_value("source_doi"), meta_value("source"), prov)
        except IngestError as exc:
            raise exc.located(file=str(path), **_loc_kw(loc)) from None
        sid = meta_value("sample_id") if meta.get("sample_id") is not None else None
        if sid is not None:
            sid = _safe_id(_id_text(sid), path, loc, "sample_id")
            if sid in ids:
                raise fail(
                    f"duplicate sample id '{sid}' (also on {raw.row_word} {ids[sid]})",
                    path,
                    field="sample_id",
                    **loc,
                )
        elif _opt(meta_value("proposal_id")) and str(_opt(meta_value("proposal_id"))) not in ids:
            # a filled-in proposal plan: the made sample is named after its proposal
            sid = _safe_id(str(_opt(meta_value("proposal_id"))), path, loc, "proposal_id")
        else:
            base = f"{safe_id_part(path.stem)}-{_row_hash(family, params, process)}"
            sid, k = base, 2
            while sid in ids:
                sid, k = f"{base}-r{k}", k + 1
        ids[sid] = line
        locator = meta_value("source_locator")
        locator = str(locator) if locator is not None else f"{path.name} {raw.row_word} {line}"
        samples.append(
            SampleRecord(
                id=sid,
                family=family,
                params=params,
                process=process,
                label=_opt(meta_value("label")),
                source=src,
                locator=locator,
                provenance=prov,
                proposal_id=_opt(meta_value("proposal_id")),
                outcome=outcome,
                note=_opt(meta_value("note")),
            )
        )
        notes = "; ".join(
            f"{k}: {meta_value(k)}" for k in ("operator", "date") if meta_value(k) is not None
        )
        by_tech: dict[str, list[ResultRecord]] = {}
        for tech, rec in row_results:
            by_tech.setdefault(tech, []).append(rec)
        for tech, recs in by_tech.items():
            measurements.append(
                MeasurementRecord(
                    sample=sid,
                    technique=tech,
                    source=src,
                    locator=locator,
                    provenance=prov,
                    results=recs,
                    note=notes or None,
                )
            )
    return Document(
        sources=list(sources.by_key.values()), samples=samples, measurements=measurements
    )


def _loc_kw(loc: dict[str, Any]) -> dict[str, Any]:
    return {"line": loc.get("line"), "record": loc.get("record")}


def _opt(v: Any) -> str | None:
    return None if v is None else (_id_text(v) if isinstance(v, float) else str(v))


def _safe_id(v: str, path: Path, loc: dict[str, Any], field: str) -> str:
    """``v`` if it is a safe id (matdb.vocabulary.check_identifier), else a located IngestError."""
    try:
        return check_identifier(v, field)
    except IdentifierError as exc:
        raise fail(str(exc), path, field=field, **loc) from None


def _id_text(v: Any) -> str:
    """Cell -> id text; spreadsheet numbers 12.0 -> '12'."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _delta(u: float, from_unit: str, to_unit: str) -> float:
    """Convert an uncertainty (a difference, so offsets such as degC -> K cancel)."""
    if from_unit == to_unit:
        return u
    return convert(u, from_unit, to_unit) - convert(0.0, from_unit, to_unit)


def _row_hash(family: str, params: dict[str, float], process: dict[str, Any]) -> str:
    key = json.dumps(
        {"family": family, "params": canonical_params_key(params), "process": process},
        sort_keys=True,
    )
    return hashlib.sha1(key.encode()).hexdigest()[:10]


# --- tidy export (long) format --------------------------------------------------------------------


EXPORT_REQUIRED = ("quantity", "value", "unit")


def _is_export(header: Iterable[str], mapping: dict[str, Any] | None = None) -> bool:
    names = {_split_header((mapping or {}).get(h, h))[0].lower() for h in header}
    return set(EXPORT_REQUIRED) <= names


def is_export_header(header: list[str]) -> bool:
    return _is_export(header)


def split_params(family: str, obj: dict[str, Any],
                 known: Known | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an export ``params`` object into composition parameters and process parameters.

    matdb's export puts the sample's process parameters (``milling_time_min``, ...) into the
    same JSON object as the composition; keys that are stored process names go to ``process``.
    """
    from matdb.vocabulary import PROCESS_PARAMS

    fam = (known or Known.of()).families.get(family)
    comp: dict[str, Any] = {}
    process: dict[str, Any] = {}
    for k, v in obj.items():
        is_param = k in fam.parameters if fam is not None else k not in PROCESS_PARAMS
        (comp if is_param else process)[k] = v
    return comp, process


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0", "yes")


def _read_export(path: Path, raw: _Raw, mapping: dict[str, Any], known: Known | None = None) -> Document:
    known = known or Known.of()
    cols = _classify(raw, path, mapping, export=True, known=known)
    by = {c.name: c for c in cols if c.kind in ("meta", "export")}
    where = (
        {"line": raw.header_line}
        if raw.row_word == "line"
        else {"record": f"row {raw.header_line}"}
    )
    if "sample_id" not in by and ("family" not in by or "params" not in by):
        raise fail(
            "missing columns: the export format needs 'sample_id' or 'family' and 'params'",
            path,
            field="sample_id",
            **where,
        )
    sources = _Sources(path.stem, notebook=True)
    samples: dict[str, SampleRecord] = {}
    sample_line: dict[str, int] = {}
    series: dict[str, SeriesRecord] = {}
    meas: dict[tuple[Any, ...], MeasurementRecord] = {}
    m: MeasurementRecord | None  # None only when meas.get finds no measurement yet
    declared: dict[str, Any] = dict(known.declared)
    declared_records: dict[str, QuantityRecord] = {}
    for line, cells_raw in raw.rows:
        cells = [_cell(c) for c in cells_raw]
        if not any(c is not None for c in cells):
            continue
        loc = _loc(raw, line)

        def get(name: str, _cells: list[Any] = cells) -> Any:
            c = by.get(name)
            return _cells[c.index] if c is not None and c.index < len(_cells) else None

        qdef = get("quantity_definition")
        if qdef is not None and str(get("quantity") or "").strip() not in QUANTITIES:
            d = _json_obj(qdef, path, loc, "quantity_definition")
            try:
                qrec = QuantityRecord(**{k: v for k, v in d.items() if k in QuantityRecord.model_fields})
            except ValidationError as exc:
                raise fail(f"invalid quantity definition: {exc.errors()[0]['msg']}", path,
                           field="quantity_definition", **loc) from None
            declared_records[qrec.name] = qrec
            declared[qrec.name] = QuantityDef(qrec.name, qrec.unit, qrec.label or qrec.name, qrec.min,
                                              qrec.max, qrec.categorical, qrec.description)
        rec = _export_result(get, path, loc, declared)
        if get("inferred") is not None and _truthy(get("inferred")):
            rec.inferred = True
            rec.inferred_reason = _opt(get("inferred_reason")) or "inferred (flagged in the exported table)"
        quantity = rec.quantity
        series_id = _opt(get("series_id")) if _opt(get("sample_id")) is None else None
        if series_id is not None:
            _safe_id(series_id, path, loc, "series_id")
        tech = get("technique")
        tech = (
            _technique(tech, path, loc)
            if tech is not None
            else DEFAULT_TECHNIQUE.get(quantity, "other")
        )
        prov = get("provenance")
        prov = _provenance(prov, path, loc) if prov is not None else None
        try:
            src = sources.key(get("source_doi"), get("source_key") or get("source"), prov or "")
        except IngestError as exc:
            raise exc.located(file=str(path), **_loc_kw(loc)) from None
        locator = _opt(get("source_locator"))
        family = _opt(get("family"))
        params = process = None
        if get("params") is not None:
            obj = _json_obj(get("params"), path, loc, "params")
            comp, process = split_params(family or "", obj, known)
            params = _params(comp, path, loc, "params")
            if get("process") is not None:
                process.update(_json_obj(get("process"), path, loc, "process"))
            check_process(process, path, field="params", **_loc_kw(loc))
        if series_id is not None and not params:
            params = None  # a finding about a series has no composition of its own
        elif family is not None and params is not None:
            params = check_composition(family, params, path, families=known.families, **_loc_kw(loc))
            if get("formula") is not None:
                _check_formula(family, params, str(get("formula")), path, loc, known)
        elif series_id is None and (family is None) != (params is None):
            missing = "params" if family else "family"
            raise fail(
                f"'{missing}' is empty but '{'family' if family else 'params'}' is given",
                path,
                field=missing,
                **loc,
            )
        sid = _opt(get("sample_id"))
        if sid is not None:
            _safe_id(sid, path, loc, "sample_id")
        if sid is not None:
            old = samples.get(sid)
            if old is None:
                if family is None:
                    raise fail(
                        f"sample '{sid}' needs 'family' and 'params' on its first row",
                        path,
                        field="family",
                        **loc,
                    )
                try:
                    samples[sid] = SampleRecord(
                        id=sid,
                        family=family,
                        params=params,
                        process=process or {},
                        source=src,
                        provenance=prov,
                    )
                except ValidationError as exc:
                    raise fail(
                        f"invalid process: {exc.errors()[0]['msg']}",
                        path,
                        field="params",
                        **loc,
                    ) from None
                sample_line[sid] = line
            elif family is not None and (
                old.family != family
                or canonical_params_key(old.params or {}) != canonical_params_key(params or {})
            ):
                raise fail(
                    f"sample '{sid}' has family/params {old.family} {old.params} on "
                    f"{raw.row_word} {sample_line[sid]} but {family} {params} here",
                    path,
                    field="params",
                    **loc,
                )
            target: dict[str, Any] = {"sample": sid}
            tkey: tuple[Any, ...] = ("s", sid)
        elif series_id is not None:
            # the export does not carry the series' title or members: the finding keeps its series id
            series.setdefault(series_id, SeriesRecord(id=series_id, title=series_id, family=family, source=src,
                                                      provenance=prov))
            target = {"series": series_id}
            tkey = ("r", series_id)
        else:
            if family is None:
                raise fail(
                    "a row needs 'sample_id' or 'family' and 'params'",
                    path,
                    field="sample_id",
                    **loc,
                )
            target = {"family": family, "params": params}
            tkey = ("c", family, canonical_params_key(params or {}))
        conditions = (
            _json_obj(get("conditions"), path, loc, "conditions")
            if get("conditions") is not None
            else {}
        )
        mid = _opt(get("measurement_id"))
        if mid is not None:
            _safe_id(mid, path, loc, "measurement_id")
        if mid is not None and ("m", mid) in meas:
            # one measurement's results may carry their own locators: keep them on the results
            m = meas[("m", mid)]
            if locator != m.locator:
                rec.locator = locator
            m.results.append(rec)
            continue
        key = ("m", mid) if mid is not None else (
            *tkey,
            tech,
            src,
            locator,
            prov,
            mid,
            json.dumps(conditions, sort_keys=True),
            _opt(get("instrument")),
        )
        m = meas.get(key)
        if m is None:
            try:
                m = MeasurementRecord(
                    id=mid,
                    technique=tech,
                    source=src,
                    locator=locator,
                    provenance=prov,
                    conditions=conditions,
                    instrument=_opt(get("instrument")),
                    **target,
                )
            except ValidationError as exc:  # e.g. a condition value that is a list
                raise fail(
                    f"invalid conditions: {exc.errors()[0]['msg']}",
                    path,
                    field="conditions",
                    **loc,
                ) from None
            meas[key] = m
        m.results.append(rec)
    if not meas:
        raise fail("the table has a header but no data rows", path, **where)
    return Document(
        sources=list(sources.by_key.values()),
        quantities=list(declared_records.values()),
        samples=list(samples.values()),
        series=list(series.values()),
        measurements=list(meas.values()),
    )


def _export_result(get: Any, path: Path, loc: dict[str, Any],
                   declared: dict[str, Any] | None = None) -> ResultRecord:
    """One export row's result. The reported value/unit (as in the source) are used when
    present, so that re-ingesting converts them exactly as the first ingest did."""
    quantity = get("quantity")
    if quantity is None:
        raise fail("quantity is empty", path, field="quantity", **loc)
    quantity = str(quantity).strip()
    q = QUANTITIES.get(quantity) or (declared or {}).get(quantity)
    if q is None:
        raise fail(f"unknown quantity '{quantity}'", path, field="quantity", **loc)
    approx = _truthy(get("approximate")) if get("approximate") is not None else False
    label, note = _opt(get("label")), _opt(get("note"))
    if _truthy(get("derived") or ""):
        method = " ".join(str(get(k)) for k in ("method", "method_version") if get(k) is not None)
        note = "; ".join(p for p in (note, f"derived by {method or 'matdb'}") if p)
    if q.categorical:
        text = get("text") if get("text") is not None else get("value")
        if text is None:
            raise fail(f"{quantity} has no value", path, field="value", **loc)
        return ResultRecord(
            quantity=quantity, text=str(text), approximate=approx, label=label, note=note
        )
    unit_raw = get("unit")
    unit = "" if unit_raw is None else _opt(unit_raw) or ""
    rng = None
    if get("range_low") is not None or get("range_high") is not None:
        if get("range_low") is None or get("range_high") is None:
            raise fail("give both range_low and range_high", path, field="range_low", **loc)
        lo, _ = _number(get("range_low"), path, loc, "range_low")
        hi, _ = _number(get("range_high"), path, loc, "range_high")
        rng = (f"{lo!r} {unit}".strip(), f"{hi!r} {unit}".strip())
    value_cell, vfield, ufield = get("value"), "value", "unit"
    if get("reported_value") is not None and get("reported_unit") is not None:
        value_cell, vfield, ufield = get("reported_value"), "reported_value", "reported_unit"
        unit = _opt(get("reported_unit")) or ""
    elif get("reported_value") is not None and value_cell is None:
        value_cell, vfield = get("reported_value"), "reported_value"
    if value_cell is None:
        if rng is None:
            raise fail(f"{quantity} has no value", path, field="value", **loc)
        v = None
    else:
        v, approx2 = _number(value_cell, path, loc, vfield)
        approx = approx or approx2
    try:
        parse_unit(unit)
    except UnitError:
        raise fail(f"unknown unit '{unit}'", path, field=ufield, **loc) from None
    if v is not None:
        _quantity_value(quantity, v, unit, path, loc, vfield, unit_field=ufield, declared=declared)
    unc = None
    if get("uncertainty") is not None:
        unc, _ = _number(get("uncertainty"), path, loc, "uncertainty")
        if unc < 0:
            raise fail(f"uncertainty {unc:g} is negative", path, field="uncertainty", **loc)
        if vfield == "reported_value":  # the uncertainty column is in the canonical unit
            unc = _delta(unc, _opt(get("unit")) or "", unit)
    return ResultRecord(
        quantity=quantity,
        value=v,
        unit=unit,
        uncertainty=unc,
        approximate=approx,
        range=rng,
        label=label,
        note=note,
    )
