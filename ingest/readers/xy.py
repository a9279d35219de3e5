"""Reader for powder X-ray diffraction patterns (.xy, .xye, .dat).

Two or three numeric columns (2θ in degrees, intensity in counts, optional esd), separated by
whitespace, commas or semicolons; ``#`` (or ``!``/``;``) comment lines carry the metadata::

    # sample: xiao2025-x0.8
    # family: FAMAPbI3
    # params: {"x": 0.8}
    # wavelength: 1.5406 angstrom
    10.00 1523
    10.02 1530

The X-ray wavelength is required (header or sidecar ``wavelength:``); without it 2θ values
cannot be compared between instruments.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ingest.limits import DEFAULT, Limits, check_count
from ingest.readers._common import (
    fail,
    header_comments,
    merge_meta,
    read_text,
    standalone_document,
)
from ingest.records import ArrayRecord, Document
from matdb.arrays import ArrayData
from matdb.units import UnitError, convert, parse_quantity_text

_SEP = re.compile(r"[\s,;]+")
_COMMENT = ("#", "!", ";", "'")


def _wavelength(
    meta: dict[str, Any], where: dict[str, int], path: Path, given: Any = None
) -> float:
    """X-ray wavelength in Å from the record, the header or the sidecar."""
    raw = given if given is not None else meta.get("wavelength")
    if raw is None or not str(raw).strip():
        raise fail(
            "pXRD pattern needs the X-ray wavelength: add a header line "
            "'# wavelength: 1.5406 angstrom' (or 'wavelength:' in the sidecar "
            f"{path.name}.meta.yaml)",
            path,
            field="wavelength",
        )
    line = where.get("wavelength")
    value: Any  # anything from the record, header or sidecar: float() below checks it
    unit: Any
    try:
        if isinstance(raw, dict):
            value, unit = raw.get("value"), raw.get("unit")
        elif isinstance(raw, (int, float)):
            value, unit = raw, "angstrom"
        else:
            value, unit = parse_quantity_text(str(raw))
            unit = unit or "angstrom"
        wl = convert(float(value), unit, "angstrom")
    except (UnitError, TypeError, ValueError) as exc:
        raise fail(f"wavelength: {exc}", path, line=line, field="wavelength") from None
    if not 0.01 <= wl <= 10:  # nan fails too
        raise fail(
            f"X-ray wavelength {wl:g} Å is outside 0.01..10 Å; check the unit",
            path,
            line=line,
            field="wavelength",
        )
    return wl


def parse_xy(
    path: Path, text: str | None = None, *, pxrd: bool = True, limits: Limits = DEFAULT
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any], dict[str, int]]:
    """Read x (2θ in degree for pXRD), y and esd (or None) plus metadata.

    With ``pxrd=False`` the file is a generic two/three-column spectrum (x need not be 2θ).
    """
    text = read_text(path, limits, "spectrum_mb") if text is None else text
    lines = text.splitlines()
    meta, where = header_comments(lines, _COMMENT)
    meta, where = merge_meta(path, meta, where, limits)
    rows: list[tuple[int, list[str]]] = []
    for i, ln in enumerate(lines):
        s = ln.strip()
        if not s or s.startswith(_COMMENT):
            continue
        check_count(len(rows) + 1, "spectrum_points", "the pattern has too many points", limits,
                    file=path, line=i + 1)
        cells = [c for c in _SEP.split(s) if c]
        if not rows and not any(_num(c) for c in cells):
            continue  # a column-name line such as "2theta intensity"
        rows.append((i + 1, cells))
    if not rows:
        raise fail("no data rows (expected columns: 2θ intensity [esd])", path)
    ncol = len(rows[0][1])
    if ncol not in (2, 3):
        raise fail(
            f"line {rows[0][0]} has {ncol} columns, expected 2 (2θ, intensity) or 3 "
            "(2θ, intensity, esd)",
            path,
            line=rows[0][0],
        )
    names = ["two_theta", "intensity", "esd"] if pxrd else ["x", "y", "y_error"]
    for line, cells in rows:
        if len(cells) != ncol:
            raise fail(f"line {line} has {len(cells)} values, expected {ncol}", path, line=line)
    try:
        arr = np.array([c for _, c in rows], dtype=str).astype(float)
    except (ValueError, OverflowError):
        for line, cells in rows:
            for j, c in enumerate(cells):
                if not _num(c):
                    raise fail(f"'{c}' is not a number", path, line=line, field=names[j]) from None
        raise
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        r, c = bad[0]
        raise fail(
            f"value '{rows[r][1][c]}' is not a finite number", path, line=rows[r][0], field=names[c]
        )
    tt, y = arr[:, 0], arr[:, 1]
    out = np.flatnonzero((tt <= 0) | (tt >= 180))
    if pxrd and out.size:
        raise fail(
            f"2θ = {tt[out[0]]:g}° is outside 0..180°",
            path,
            line=rows[out[0]][0],
            field="two_theta",
        )
    d = np.diff(tt)
    if (d <= 0).any():
        k = int(np.flatnonzero(d <= 0)[0])
        raise fail(
            f"{names[0]} must increase: {tt[k]:g} is followed by {tt[k + 1]:g}",
            path,
            line=rows[k + 1][0],
            field=names[0],
        )
    esd = arr[:, 2] if ncol == 3 else None
    if esd is not None and (esd < 0).any():
        k = int(np.flatnonzero(esd < 0)[0])
        raise fail(f"{names[2]} {esd[k]:g} is negative", path, line=rows[k][0], field=names[2])
    return tt, y, esd, meta, where


def _num(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def load_xy(
    path: Path,
    *,
    wavelength: Any = None,
    kind: str = "pxrd",
    text: str | None = None,
    x_unit: str | None = None,
    y_unit: str | None = None,
    limits: Limits = DEFAULT,
) -> ArrayData:
    """A pXRD pattern as ArrayData: values (n,) counts on axis two_theta (degree).

    For other kinds (a PL spectrum saved as .xy) the axis is "x" in ``x_unit``.
    """
    if kind != "pxrd":
        x, y, err, meta, _ = parse_xy(path, text, pxrd=False, limits=limits)
        meta = dict(meta, file=path.name, format="xy")
        if err is not None:
            meta["y_error"] = err
        axis = "wavelength" if (x_unit or "nm") == "nm" and kind.endswith("spectrum") else "x"
        return ArrayData(
            kind=kind,
            values=y,
            axes={axis: (x, x_unit or ("nm" if axis == "wavelength" else ""))},
            value_unit=y_unit or "",
            meta=meta,
        )
    tt, y, esd, meta, where = parse_xy(path, text, limits=limits)
    wl = _wavelength(meta, where, path, wavelength)
    out_meta = dict(meta, wavelength_angstrom=wl, file=path.name, format="xy")
    if esd is not None:
        out_meta["esd"] = esd
    return ArrayData(
        kind=kind, values=y, axes={"two_theta": (tt, "degree")}, value_unit="counts", meta=out_meta
    )


def read_xy_document(path: Path, text: str, limits: Limits = DEFAULT) -> Document:
    data = load_xy(path, text=text, limits=limits)
    _, where = header_comments(text.splitlines(), _COMMENT)
    meta = {
        k: v
        for k, v in data.meta.items()
        if k not in ("file", "format", "esd", "wavelength_angstrom", "wavelength")
    }
    arr = ArrayRecord(
        kind="pxrd",
        file=path.name,
        format="xy",
        x_unit="degree",
        y_unit="counts",
        wavelength=f"{data.meta['wavelength_angstrom']!r} angstrom",
    )
    return standalone_document(path, meta, where, technique="pxrd", arrays=[arr])
