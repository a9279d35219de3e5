"""Reader for time-lapsed in situ (TLIS) runs: matrix ("tlis_csv") and long ("tlis_long_csv") CSV.

Matrix layout (one row per wavelength, one column per spectrum)::

    # matdb-tlis: 1
    # mode: reflectance
    # sample: sim-FAMAPbI3-x0.8
    # family: FAMAPbI3
    # params: {"x": 0.8}
    # integration_time: 100 ms
    # reference: run_ref.csv
    # time_unit: min
    wavelength_nm,0,0.5,1,...
    340,1234.5,1240.1,...

Long layout: the same ``#`` header, then columns ``time_min,wavelength_nm,value``.
Values are raw detector counts; a reflectance run needs its PTFE reference spectrum (a two-column
CSV ``wavelength_nm,counts`` on the same wavelengths), R = sample / reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.limits import DEFAULT, Limits, check_count
from ingest.readers._common import (
    check_condition,
    contained,
    fail,
    header_comments,
    json_mapping,
    merge_meta,
    read_text,
    standalone_document,
)
from ingest.readers._csv import cell_floats, data_rows, float_rows
from ingest.records import ArrayRecord, Document
from matdb.arrays import ArrayData
from matdb.units import UnitError, convert
from matdb.vocabulary import TLIS_MODES

MODES = TLIS_MODES
WAVELENGTH_HEADERS = ("wavelength_nm", "wavelength")
LONG_COLUMNS = ("time_min", "wavelength_nm", "value")


@dataclass
class _Lines:
    meta: dict[str, str]
    meta_lines: dict[str, int]
    header: list[str]
    header_line: int
    rows: list[tuple[int, str]]  # (1-based line, text)


def _split(text: str, path: Path) -> _Lines:
    lines = text.splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        i += 1
    meta, where = header_comments(lines[:i])
    if i == len(lines):
        raise fail("no column header and no data after the '#' header lines", path, line=len(lines))
    header = [c.strip() for c in lines[i].split(",")]
    rows = data_rows(lines, i + 1)
    if not rows:
        raise fail("the run has a header but no data rows", path, line=i + 1)
    return _Lines(meta, where, header, i + 1, rows)


def is_matrix(first_cell: str) -> bool:
    return first_cell.strip().lower() in WAVELENGTH_HEADERS


def is_long(header: list[str]) -> bool:
    cols = {c.strip().lower() for c in header}
    return {"wavelength_nm", "value"} <= cols and ("time_min" in cols or "time" in cols)


def _floats(
    cells: list[list[str]], rows: list[tuple[int, str]], names: list[str], path: Path
) -> np.ndarray:
    """Text cells to floats (the plain path, for the few cells of a header); locates a bad cell."""
    return cell_floats(cells, rows, names, path)


#: The last run parsed: (file, its text) -> its data rows as floats. An ingest reads a run twice -
#: once for the document, once more when the document's array is loaded - and the second read of the
#: same text needs no second parse. Only successful parses are kept (an error is found again).
_LAST: tuple[str, str, np.ndarray] | None = None


def _matrix_cached(parts: _Lines, expected: int, names: list[str], path: Path, text: str) -> np.ndarray:
    global _LAST
    last = _LAST
    if last is not None and last[0] == str(path) and last[2].shape[1] == expected and last[1] == text:
        return last[2].copy()
    arr = _matrix(parts, expected, names, path)
    _LAST = (str(path), text, arr.copy())
    return arr


def _matrix(parts: _Lines, expected: int, names: list[str], path: Path) -> np.ndarray:
    """The data rows as an (n_rows, expected) float array (see :func:`ingest.readers._csv.float_rows`)."""

    def ragged(line: int, got: int) -> str:
        return (
            f"line {line} has {got} values, expected {expected} (as in the column header on "
            f"line {parts.header_line}); the file may be truncated"
        )

    return float_rows(parts.rows, expected, names, path, ragged)


def _time_factor(meta: dict[str, Any], where: dict[str, int], path: Path) -> float:
    unit = str(meta.get("time_unit") or "min").strip()
    try:
        return convert(1.0, unit, "min")
    except UnitError as exc:
        raise fail(
            f"time_unit: {exc} (expected a unit of time)",
            path,
            line=where.get("time_unit"),
            field="time_unit",
        ) from None


def _check_axes(
    times: np.ndarray,
    wl: np.ndarray,
    path: Path,
    *,
    time_line: int | None,
    wl_lines: list[int] | None,
) -> None:
    neg = np.flatnonzero(times < 0)
    if neg.size:
        raise fail(f"negative time {times[neg[0]]:g} min", path, line=time_line, field="time")
    steps = np.diff(times)
    if (steps <= 0).any():
        k = int(np.flatnonzero(steps <= 0)[0])
        raise fail(
            f"times must increase: {times[k]:g} is followed by {times[k + 1]:g}",
            path,
            line=time_line,
            field="time",
        )
    if (wl <= 0).any():
        k = int(np.flatnonzero(wl <= 0)[0])
        raise fail(
            f"wavelength {wl[k]:g} nm is not positive",
            path,
            line=wl_lines[k] if wl_lines else None,
            field="wavelength_nm",
        )
    d = np.diff(wl)
    if not ((d > 0).all() or (d < 0).all()):
        k = (
            int(np.flatnonzero(d <= 0)[0])
            if (d > 0).sum() >= (d < 0).sum()
            else int(np.flatnonzero(d >= 0)[0])
        )
        raise fail(
            f"wavelengths must be strictly increasing: {wl[k]:g} is followed by {wl[k + 1]:g}",
            path,
            line=wl_lines[k + 1] if wl_lines else None,
            field="wavelength_nm",
        )


def parse_run(
    path: Path, text: str | None = None, limits: Limits = DEFAULT
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], dict[str, int], str]:
    """Read a TLIS CSV (matrix or long).

    Returns:
        times (n_time,) in min, wavelengths (n_wl,) in nm ascending, counts (n_time, n_wl),
        metadata (header comments merged with the sidecar), metadata line numbers, and the
        format ("tlis_csv" or "tlis_long_csv").
    """
    text = read_text(path, limits, "csv_mb") if text is None else text
    parts = _split(text, path)
    meta, where = merge_meta(path, parts.meta, parts.meta_lines, limits)
    factor = _time_factor(meta, where, path)
    if is_matrix(parts.header[0]):
        fmt = "tlis_csv"
        n = len(parts.header)
        if n < 2:
            raise fail(
                "the column header lists no times (expected 'wavelength_nm,t0,t1,...')",
                path,
                line=parts.header_line,
            )
        check_count(n, "table_columns", f"the run has {n} columns", limits, file=path,
                    line=parts.header_line)
        check_count((n - 1) * len(parts.rows), "spectrum_points",
                    f"the run has {n - 1} time points x {len(parts.rows)} wavelengths", limits, file=path)
        names = ["wavelength_nm"] + [f"time {h}" for h in parts.header[1:]]
        times = _floats([parts.header[1:]], [(parts.header_line, "")], names[1:], path)[0] * factor
        arr = _matrix_cached(parts, n, names, path, text)
        wl, values = arr[:, 0], arr[:, 1:].T.copy()
        _check_axes(
            times, wl, path, time_line=parts.header_line, wl_lines=[ln for ln, _ in parts.rows]
        )
        if wl.size > 1 and wl[1] < wl[0]:
            wl, values = wl[::-1].copy(), values[:, ::-1].copy()
    elif is_long(parts.header):
        fmt = "tlis_long_csv"
        cols = [c.lower() for c in parts.header]
        if "time_min" in cols:
            tcol = cols.index("time_min")
            if "time_unit" in meta and factor != 1.0:
                raise fail(
                    "column 'time_min' is in minutes but the header says time_unit: "
                    f"{meta['time_unit']}",
                    path,
                    line=where.get("time_unit"),
                    field="time_unit",
                )
        else:
            tcol = cols.index("time")
        wcol, vcol = cols.index("wavelength_nm"), cols.index("value")
        check_count(len(parts.rows), "spectrum_points", f"the run has {len(parts.rows)} points", limits,
                    file=path)
        arr = _matrix_cached(parts, len(cols), parts.header, path, text)
        t_all, w_all, v_all = arr[:, tcol] * factor, arr[:, wcol], arr[:, vcol]
        times, ti = np.unique(t_all, return_inverse=True)
        wl, wi = np.unique(w_all, return_inverse=True)
        flat = ti * wl.size + wi
        order = np.argsort(flat, kind="stable")
        dup = np.flatnonzero(np.diff(flat[order]) == 0)
        if dup.size:
            r = order[dup[0] + 1]
            raise fail(
                f"time {t_all[r]:g} min, wavelength {w_all[r]:g} nm appears twice",
                path,
                line=parts.rows[r][0],
            )
        if flat.size != times.size * wl.size:
            counts = np.bincount(ti, minlength=times.size)
            k = int(np.flatnonzero(counts < wl.size)[0])
            raise fail(
                f"time {times[k]:g} min has {counts[k]} of {wl.size} wavelengths; every "
                "spectrum needs every wavelength",
                path,
                field="wavelength_nm",
            )
        values = np.empty(times.size * wl.size)
        values[flat] = v_all
        values = values.reshape(times.size, wl.size)
        _check_axes(times, wl, path, time_line=None, wl_lines=None)
    else:
        raise fail(
            f"not a TLIS run: the column header starts with '{parts.header[0]}', expected "
            "'wavelength_nm' (matrix) or columns time_min,wavelength_nm,value (long format)",
            path,
            line=parts.header_line,
        )
    return times, wl, values, meta, where, fmt


def read_reference(path: Path, wavelengths: np.ndarray, run: Path, limits: Limits = DEFAULT,
                   root: Path | None = None) -> np.ndarray:
    """A PTFE reference spectrum (two columns wavelength_nm,counts) on the run's wavelengths."""
    contained(path, root, "the reference spectrum", file=run, field="reference")
    if not path.is_file():
        raise fail(
            f"reference spectrum '{path.name}' not found (looked in {path.parent})",
            run,
            field="reference",
        )
    arr, line_nos = _two_columns(path, ("wavelength_nm", "counts"), "the reference spectrum has no data rows",
                                 limits)
    wl, counts = arr[:, 0], arr[:, 1]
    order = np.argsort(wl, kind="stable")
    wl, counts, lines_sorted = wl[order], counts[order], [line_nos[i] for i in order]
    if wl.size != wavelengths.size:
        raise fail(
            f"reference has {wl.size} wavelengths but the run has {wavelengths.size}; they "
            "must be measured on the same wavelengths",
            path,
            field="wavelength_nm",
        )
    off = np.flatnonzero(~np.isclose(wl, wavelengths, rtol=0, atol=1e-6))
    if off.size:
        k = int(off[0])
        raise fail(
            f"reference wavelength {wl[k]:g} nm differs from the run's {wavelengths[k]:g} nm",
            path,
            line=lines_sorted[k],
            field="wavelength_nm",
        )
    low = np.flatnonzero(counts <= 0)
    if low.size:
        k = int(low[0])
        raise fail(
            f"reference counts must be positive (R = sample/reference), got {counts[k]:g}",
            path,
            line=lines_sorted[k],
            field="counts",
        )
    return counts


def read_two_column(
    path: Path, names: tuple[str, str] = ("wavelength_nm", "counts"), limits: Limits = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """A two-column CSV (optional '#' comments and a header row) as two float arrays."""
    arr, _ = _two_columns(path, names, "no data rows", limits)
    return arr[:, 0], arr[:, 1]


def _two_columns(path: Path, names: tuple[str, str], empty: str,
                 limits: Limits = DEFAULT) -> tuple[np.ndarray, list[int]]:
    """Rows of a two-column CSV (optional '#' comments and a header row) as an (n, 2) float array,
    with the 1-based line number of each row."""
    lines = read_text(path, limits, "spectrum_mb").splitlines()
    check_count(len(lines), "spectrum_points", f"the spectrum has {len(lines)} lines", limits, file=path)
    rows = data_rows(lines, 0)
    if rows and not _is_number(rows[0][1].split(",")[0]):
        rows = rows[1:]  # column header
    if not rows:
        raise fail(empty, path)

    def ragged(line: int, got: int) -> str:
        return f"line {line} has {got} values, expected 2 ({','.join(names)})"

    return float_rows(rows, 2, list(names), path, ragged), [line for line, _ in rows]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _mode(meta: dict[str, Any], where: dict[str, int], path: Path, kind: str | None) -> str:
    mode = str(meta.get("mode") or "").strip().lower()
    if not mode:
        if kind is not None and kind in MODES.values():
            return kind
        raise fail(
            "add a header line '# mode: reflectance' or '# mode: pl' (or 'mode:' in the "
            f"sidecar {path.name}.meta.yaml)",
            path,
            field="mode",
        )
    if mode not in MODES:
        raise fail(
            f"mode must be 'reflectance' or 'pl', not '{mode}'",
            path,
            line=where.get("mode"),
            field="mode",
        )
    if kind in MODES.values() and kind != MODES[mode]:
        raise fail(
            f"the record says kind '{kind}' but the file says mode '{mode}'",
            path,
            line=where.get("mode"),
            field="mode",
        )
    return MODES[mode]


def load_run(
    path: Path, *, reference: str | None = None, kind: str | None = None, text: str | None = None,
    limits: Limits = DEFAULT, root: Path | None = None,
) -> ArrayData:
    """A TLIS run as ArrayData (values (n_time, n_wavelength) counts; reference for reflectance);
    the reference must lie inside ``root`` (the folder the ingest started from), if given."""
    times, wl, values, meta, where, fmt = parse_run(path, text, limits)
    kind = _mode(meta, where, path, kind)
    ref_name = reference or (str(meta["reference"]).strip() if meta.get("reference") else None)
    ref = None
    if kind == "tlis_reflectance":
        if not ref_name:
            raise fail(
                "reflectance run needs a reference spectrum (PTFE): add '# reference: <file>' to "
                "the header, 'reference:' to the sidecar, or 'reference' to the array record",
                path,
                field="reference",
            )
        ref = read_reference(path.parent / ref_name, wl, path, limits, root)
    out_meta: dict[str, Any] = {k: v for k, v in meta.items()}
    out_meta.update(
        format=fmt, file=path.name, mode="reflectance" if kind == "tlis_reflectance" else "pl"
    )
    if ref_name:
        out_meta["reference"] = ref_name
    for key in ("params", "process"):
        if key in meta:
            out_meta[key] = json_mapping(
                meta[key], path, key, where.get(key), numeric=key == "params"
            )
    return ArrayData(
        kind=kind,
        values=values,
        axes={"time": (times, "min"), "wavelength": (wl, "nm")},
        value_unit="counts",
        reference=ref,
        meta=out_meta,
    )


def read_tlis_document(path: Path, text: str, limits: Limits = DEFAULT,
                       root: Path | None = None) -> Document:
    """The Document for one TLIS run file (a sample, a measurement and the run as an array)."""
    data = load_run(path, text=text, limits=limits, root=root)
    _, where = header_comments(text.splitlines())
    meta = {k: v for k, v in data.meta.items() if k not in ("format", "file", "mode")}
    conditions: dict[str, Any] = {}
    for key in ("integration_time", "excitation_wavelength"):
        if meta.get(key):
            conditions[key] = check_condition(key, str(meta[key]), path, where.get(key))
    arr = ArrayRecord(
        kind=data.kind,
        file=path.name,
        format=data.meta["format"],
        reference=data.meta.get("reference"),
        note=f"{data.values.shape[0]} spectra x {data.values.shape[1]} wavelengths",
    )
    meta.pop("reference", None)
    return standalone_document(
        path, meta, where, technique=data.kind, arrays=[arr], conditions=conditions
    )
