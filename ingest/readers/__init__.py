"""Readers: turn lab and literature files into validated :class:`ingest.records.Document` s.

Public API:

- :func:`read_file` — any supported file -> Document (ArrayRecords/StructureRecords refer to files
  relative to the file's directory).
- :func:`load_array` — the data an ArrayRecord refers to -> :class:`ingest.errors.ArrayData`.
- :data:`SUPPORTED` — format name -> description (extensions, layout), for README and CLI help.

Every problem with an input file is an :class:`ingest.errors.IngestError` naming the file and,
where known, the line/row/record and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from ingest.errors import IngestError
from ingest.limits import DEFAULT, Limits, check_size
from ingest.readers import jcamp, records, structures, tables, tlis, xy
from ingest.readers._common import contained, fail, read_bytes, read_text
from ingest.records import ArrayRecord, Document, ValueUnit
from matdb.arrays import ArrayData
from matdb.families import Family
from matdb.vocabulary import TLIS_MODES, QuantityDef, spectrum_axis

__all__ = ["SUPPORTED", "read_file", "load_array", "read_mapping"]

#: Supported formats: name -> description.
SUPPORTED: dict[str, str] = {
    "records": ".yaml, .yml, .json — matdb record documents (see ingest/records.py and schemas/)",
    "tlis_csv": ".csv starting with '# matdb-tlis: 1' or a 'wavelength_nm' column — TLIS run, one "
    "row per wavelength, one column per time; reflectance runs need '# reference:'",
    "tlis_long_csv": ".csv with columns time_min,wavelength_nm,value and the TLIS '#' header",
    "export_csv": ".csv with columns sample_id, family, formula, params, quantity, value, unit, "
    "uncertainty, technique, provenance, source_doi, source_locator (matdb export)",
    "table": ".csv or .xlsx — one row per sample: sample_id, family, x/y/z/X or params, process "
    "columns ('milling_time [min]'), results 'quantity [unit]' ('plqy [%]'); other "
    "headers via a mapping file",
    "xy": ".xy, .xye, .dat — pXRD pattern (2θ/degree, intensity[, esd]); needs "
    "'# wavelength: 1.5406 angstrom'",
    "jcamp": ".jdx, .dx, .jcamp — JCAMP-DX 4.24/5.x single-block spectrum, ##XYDATA=(X++(Y..Y)) "
    "in AFFN or compressed ASDF (SQZ/DIF/DUP), or ##XYPOINTS=(XY..XY) in AFFN",
    "structure": ".cif, POSCAR/CONTCAR (by name), .vasp, .extxyz, .xyz — crystal structure",
    "tlis_folder": "a folder with matdb-watch.yaml (written by `matdb watch`): one spectrum per file — OceanView "
    "tab-separated text export or two-column CSV/TXT — or one growing TLIS matrix CSV; see readers/spectrometer.py",
    "metadata": "spectra, patterns, runs and structures name their sample with '# sample:', "
    "'# family:', '# params: {...}' header lines or a sidecar <file>.meta.yaml",
}

RECORD_EXT = {".yaml", ".yml", ".json"}
XY_EXT = {".xy", ".xye", ".dat"}
JCAMP_EXT = {".jdx", ".dx", ".jcamp"}
TABLE_EXT = {".csv", ".xlsx"}


def read_mapping(path: Path) -> dict[str, Any]:
    """Load a header mapping file for tables (see :mod:`ingest.readers.tables`)."""
    return tables.read_mapping(Path(path))


def _unsupported(path: Path) -> IngestError:
    exts = sorted(
        RECORD_EXT | XY_EXT | JCAMP_EXT | TABLE_EXT | set(structures.STRUCTURE_EXTENSIONS)
    )
    return fail(
        f"unsupported file type '{path.suffix or path.name}'; supported: {', '.join(exts)} "
        "and POSCAR/CONTCAR",
        path,
    )


def read_file(path: Path, *, mapping: dict[str, Any] | None = None,
              families: Mapping[str, Family] | None = None,
              quantities: Mapping[str, QuantityDef] | None = None,
              limits: Limits = DEFAULT, root: Path | None = None) -> Document:
    """Read any supported file into a validated Document.

    Args:
        path: the input file; its format is chosen from the extension (and, for .csv, the header).
        mapping: header mapping for tables ({"PLQY (%)": "plqy [%]", "ignore": [...]}); without
            it a sidecar ``<table>.mapping.yaml`` is used if present.
        families, quantities: user-defined families and declared quantities a table may use
            (from the database, or from record files read earlier in the same ingest).
        limits: resource limits (file sizes, YAML nodes, rows, points; see ingest.limits).
        root: the folder the ingest started from; files a record refers to must lie inside it.

    Raises:
        IngestError: anything wrong with the file, located by file, line/record and field.
    """
    path = Path(path)
    if isinstance(mapping, (str, Path)):
        mapping = read_mapping(Path(mapping))
    try:
        return _dispatch(path, mapping, families, quantities, limits, root)
    except ValidationError as exc:  # a value a reader passed on that the record model rejects
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise fail(f"invalid value: {err.get('msg')}", path, field=loc or None) from None


def _dispatch(path: Path, mapping: dict[str, Any] | None, families: Mapping[str, Family] | None = None,
              quantities: Mapping[str, QuantityDef] | None = None, limits: Limits = DEFAULT,
              root: Path | None = None) -> Document:
    ext = path.suffix.lower()
    if structures.structure_format(path) is not None:
        text = read_text(path, limits, "structure_mb")
        return structures.read_structure_document(path, text, limits)
    if ext == ".xlsx":
        decode_check = read_bytes(path, limits, "xlsx_mb")
        if not decode_check.strip():
            raise fail("file is empty", path)
        return tables.read_table(path, None, mapping, families=families, quantities=quantities, limits=limits)
    if ext in RECORD_EXT:
        return records.read_records(path, read_text(path, limits, "records_mb"), limits, root)
    if ext in XY_EXT:
        return xy.read_xy_document(path, read_text(path, limits, "spectrum_mb"), limits)
    if ext in JCAMP_EXT:
        return jcamp.read_jcamp_document(path, read_text(path, limits, "spectrum_mb"), limits)
    if ext == ".csv":
        text = read_text(path, limits, "csv_mb")
        return _read_csv(path, text, mapping, families, quantities, limits, root)
    if path.is_dir():
        raise fail("is a directory, not a file", path)
    raise _unsupported(path)


def _read_csv(path: Path, text: str, mapping: dict[str, Any] | None, families: Mapping[str, Family] | None = None,
              quantities: Mapping[str, QuantityDef] | None = None, limits: Limits = DEFAULT,
              root: Path | None = None) -> Document:
    if text.lstrip().lower().startswith("# matdb-tlis"):
        return tlis.read_tlis_document(path, text, limits, root)
    header = tables.csv_header(text, path)
    if not header:
        raise fail("no column header row found", path)
    if tlis.is_matrix(header[0]) or tlis.is_long(header):
        return tlis.read_tlis_document(path, text, limits, root)
    return tables.read_table(path, text, mapping, families=families, quantities=quantities, limits=limits)


# --- arrays -------------------------------------------------------------------------------------



def load_array(rec: ArrayRecord, base_dir: Path, limits: Limits = DEFAULT, root: Path | None = None) -> ArrayData:
    """Read the data an ArrayRecord refers to (a file relative to ``base_dir``, or inline x/y),
    within ``limits``; a file (or reference) outside ``root``, where the ingest started, is refused
    before it is opened.

    Returns ArrayData with values of shape (n_time, n_wavelength) for TLIS runs (counts; the PTFE
    reference (n_wavelength,) for reflectance runs) or (n,) for spectra and patterns.

    Raises:
        IngestError: missing file, unreadable data, mismatched lengths, non-finite values, or a
            reflectance run without its reference spectrum.
    """
    base_dir = Path(base_dir)
    if rec.file is None:
        return _inline(rec)
    path = contained(base_dir / rec.file, root, "the array file", file=None, field="file")
    if rec.format == "tlis_folder":
        from ingest.readers.spectrometer import load_folder_run

        if rec.kind not in TLIS_MODES.values():
            raise fail(f"kind '{rec.kind}' does not fit a TLIS run (use tlis_reflectance or tlis_pl)", path,
                       field="kind")
        return load_folder_run(path, reference=rec.reference, kind=rec.kind, limits=limits, root=root)
    if not path.is_file():
        raise fail(f"array file '{rec.file}' not found (looked in {base_dir})", path, field="file")
    fmt = rec.format or _array_format(path, rec.kind, limits)
    if rec.kind in TLIS_MODES.values() and fmt not in ("tlis_csv", "tlis_long_csv"):
        raise fail(f"a {rec.kind} run must be a TLIS CSV file, not '{fmt}'", path, field="format")
    if fmt in ("tlis_csv", "tlis_long_csv"):
        if rec.kind not in TLIS_MODES.values():
            raise fail(
                f"kind '{rec.kind}' does not fit a TLIS run (use tlis_reflectance or tlis_pl)",
                path,
                field="kind",
            )
        data = tlis.load_run(path, reference=rec.reference, kind=rec.kind, limits=limits, root=root)
        if data.meta["format"] != fmt:
            raise fail(
                f"the record says format '{fmt}' but the file is '{data.meta['format']}'",
                path,
                field="format",
            )
        return data
    if fmt == "csv":
        names = ("x", "y")
        x, y = tlis.read_two_column(path, names, limits)
        axis, unit = spectrum_axis(rec.kind)
        return ArrayData(
            kind=rec.kind,
            values=y,
            axes={axis: (x, rec.x_unit or unit)},
            value_unit=rec.y_unit or "",
            meta={"file": path.name, "format": "csv"},
        )
    if fmt == "xy":
        return xy.load_xy(
            path, wavelength=_wl(rec), kind=rec.kind, x_unit=rec.x_unit, y_unit=rec.y_unit, limits=limits
        )
    if fmt == "jcamp":
        return jcamp.load_jcamp(path, kind=rec.kind, limits=limits)
    if fmt == "npy":
        check_size(path, "spectrum_mb", limits)
        return _npy(path, rec)
    raise fail(f"unsupported array format '{fmt}'", path, field="format")  # pragma: no cover


def _wl(rec: ArrayRecord) -> Any:
    w = rec.wavelength
    return w.model_dump() if isinstance(w, ValueUnit) else w


def _array_format(path: Path, kind: str, limits: Limits = DEFAULT) -> str:
    ext = path.suffix.lower()
    if ext == ".csv":
        text = read_text(path, limits, "csv_mb")
        if text.lstrip().lower().startswith("# matdb-tlis"):
            return (
                "tlis_csv" if not tlis.is_long(tables.csv_header(text, path)) else "tlis_long_csv"
            )
        header = tables.csv_header(text, path)
        if header and tlis.is_matrix(header[0]) and len(header) > 2:
            return "tlis_csv"
        if header and tlis.is_long(header):
            return "tlis_long_csv"
        return "csv"
    if ext in XY_EXT:
        return "xy"
    if ext in JCAMP_EXT:
        return "jcamp"
    if ext == ".npy":
        return "npy"
    raise fail(
        f"cannot tell the array format of '{path.name}'; give 'format:' in the record",
        path,
        field="format",
    )


def _npy(path: Path, rec: ArrayRecord) -> ArrayData:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError variants
        raise fail(f"not a readable .npy array ({type(exc).__name__})", path) from None
    if (
        not isinstance(arr, np.ndarray)
        or arr.ndim != 2
        or 2 not in arr.shape
        or arr.dtype.kind not in "iuf"
    ):
        raise fail("a .npy array must be numeric with shape (n, 2) or (2, n): x and y", path)
    xy_ = arr if arr.shape[0] == 2 and arr.shape[1] != 2 else arr.T
    x, y = xy_[0].astype(float), xy_[1].astype(float)
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if bad.size:
        raise fail(f"point {bad[0]} is not a finite number", path, field="y")
    axis, unit = spectrum_axis(rec.kind)
    return ArrayData(
        kind=rec.kind,
        values=y,
        axes={axis: (x, rec.x_unit or unit)},
        value_unit=rec.y_unit or "",
        meta={"file": path.name, "format": "npy"},
    )


def _inline(rec: ArrayRecord) -> ArrayData:
    if rec.kind in TLIS_MODES.values():
        raise IngestError("a TLIS run must be given as a file, not inline x/y", field="file")
    x = np.asarray(rec.x, dtype=float)
    y = np.asarray(rec.y, dtype=float)
    if x.size != y.size:
        raise IngestError(
            f"x has {x.size} values but y has {y.size}; they must have the same length", field="y"
        )
    if x.size == 0:
        raise IngestError("inline x and y are empty", field="x")
    for name, a in (("x", x), ("y", y)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise IngestError(f"{name}[{bad[0]}] is not a finite number", field=f"{name}[{bad[0]}]")
    axis, unit = spectrum_axis(rec.kind)
    meta: dict[str, Any] = {"format": "inline"}
    if rec.wavelength is not None:
        meta["wavelength"] = _wl(rec)
    return ArrayData(
        kind=rec.kind,
        values=y,
        axes={axis: (x, rec.x_unit or unit)},
        value_unit=rec.y_unit or "",
        meta=meta,
    )
