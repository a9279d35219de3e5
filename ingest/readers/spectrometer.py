"""Spectrometer export folders: one spectrum per file, read as one TLIS run (``matdb watch``).

Formats of a single spectrum file:

* **OceanView** tab-separated text export (Ocean Insight): header lines (``Date: Mon Dec 02 14:03:12 CET
  2026``, ``Number of Pixels in Spectrum: 2048``, ...), then ``>>>>>Begin Spectral Data<<<<<``, then
  wavelength<TAB>value lines, then ``>>>>>End Spectral Data<<<<<``. Its time is the ``Date:`` line (the
  time zone abbreviation is ignored: all files of a run come from one clock), refined by the milliseconds of
  an OceanView file name ``..._14-03-12-345.txt`` when they agree; a decimal comma is accepted.
* **two-column** CSV/TXT (comma, semicolon, tab or spaces): wavelength (nm), value; ``#`` comments and one
  header row allowed. Its time is the file's modification time.

A **complete** file is one whose writer has finished: an OceanView export with its End line (or, without
it, as many data lines as its pixel count), and any other file ending with a line end, not modified for
``settle_s`` seconds, and covering the run's wavelength range. Other files are not read yet.

A folder is one run when it holds a ``matdb-watch.yaml`` record document whose array has
``format: tlis_folder`` and ``file: .`` (``matdb watch`` writes it). Time zero is the first spectrum; the
wavelength grid is the first spectrum's; spectra on another grid are interpolated onto it (with a note);
non-numeric lines are skipped with a warning naming the file and line. A folder may instead hold one matrix
CSV as ``matdb simulate`` writes it (``wavelength_nm,t0,t1,...``, possibly still growing), read with
:func:`ingest.readers.tlis.parse_run`.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import IngestError
from ingest.limits import DEFAULT, LimitError, Limits, check_count, check_size
from ingest.readers._common import contained, fail
from matdb.arrays import ArrayData

MANIFEST = "matdb-watch.yaml"
BEGIN = ">>>>>Begin Spectral Data<<<<<"
END = ">>>>>End Spectral Data<<<<<"
#: File name endings read as spectra in a watched folder.
SPECTRUM_EXT = (".txt", ".csv", ".tsv", ".dat")
#: Seconds a file must stay unchanged (without an end marker) before it counts as complete.
DEFAULT_SETTLE_S = 0.5
_SPLIT = re.compile(r"[,;\t ]+")
_OV_NAME_TIME = re.compile(r"(\d{2})-(\d{2})-(\d{2})-(\d{3})")
_DATE_FORMATS = ("%a %b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S")


class Incomplete(Exception):
    """A file that is still being written (not read yet); the message says why."""


@dataclass
class Spectrum:
    """One spectrum file: wavelengths (nm, ascending), values, time (s since the epoch) and warnings."""

    file: str
    wavelengths: np.ndarray
    values: np.ndarray
    time_s: float
    fmt: str
    warnings: list[str] = field(default_factory=list)


def _numbers(line: str) -> list[float] | None:
    cells = [c for c in _SPLIT.split(line.strip()) if c]
    if len(cells) != 2:
        return None
    try:
        vals = [float(c) for c in cells]
    except ValueError:
        return None
    return vals if all(np.isfinite(vals)) else None


def _pairs(lines: list[tuple[int, str]], path: Path, decimal_comma: bool) -> tuple[np.ndarray, list[str]]:
    rows, warns = [], []
    for line_no, text in lines:
        t = text.strip()
        if not t or t.startswith("#"):
            continue
        if decimal_comma:
            t = t.replace(",", ".")
        v = _numbers(t)
        if v is None:
            warns.append(f"{path.name}: line {line_no} is not a wavelength and a value ('{t[:40]}'); skipped")
            continue
        rows.append(v)
    if not rows:
        raise fail("no wavelength/value lines", path)
    arr = np.asarray(rows, dtype=float)
    order = np.argsort(arr[:, 0], kind="stable")
    arr = arr[order]
    dup = np.flatnonzero(np.diff(arr[:, 0]) <= 0)
    if dup.size:
        raise fail(f"wavelength {arr[dup[0], 0]:g} nm appears twice", path, field="wavelength")
    return arr, warns


def _ov_time(path: Path, header: dict[str, str], mtime: float) -> float:
    raw = header.get("date")
    if not raw:
        return mtime
    parts = raw.split()
    if len(parts) == 6:  # Java Date.toString: drop the zone abbreviation
        parts = parts[:4] + parts[5:]
    text = " ".join(parts)
    for f in _DATE_FORMATS:
        try:
            dt = datetime.strptime(text, f)
            break
        except ValueError:
            continue
    else:
        raise fail(f"cannot read the date '{raw}'", path, field="Date")
    ts = dt.timestamp()
    m = _OV_NAME_TIME.search(path.name)
    if m and (int(m[1]), int(m[2]), int(m[3])) == (dt.hour, dt.minute, dt.second):
        ts += int(m[4]) / 1000.0
    return ts


def read_spectrum(path: Path, *, settle_s: float = 0.0, now: float | None = None,
                  limits: Limits = DEFAULT) -> Spectrum:
    """Read one spectrum file.

    Raises:
        Incomplete: the file is still being written (see the module docstring).
        IngestError: the file is complete but cannot be read as a spectrum.
    """
    check_size(path, "spectrum_mb", limits)
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise Incomplete(f"{path.name}: cannot be read yet ({exc.strerror or exc})") from None
    now = time.time() if now is None else now
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = text.splitlines()
    begin = next((i for i, ln in enumerate(lines) if ln.strip() == BEGIN), None)
    if begin is not None:
        header: dict[str, str] = {}
        for ln in lines[:begin]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                header[k.strip().lower()] = v.strip()
        end = next((i for i, ln in enumerate(lines) if ln.strip() == END), None)
        body = lines[begin + 1 : end]
        if end is None:
            n_pix = header.get("number of pixels in spectrum")
            n_data = sum(1 for ln in body if ln.strip())
            if n_pix is None:
                _settled(path, data, st.st_mtime, settle_s, now)
            elif not n_pix.isdigit() or n_data < int(n_pix) or not data.endswith(b"\n"):
                raise Incomplete(f"{path.name}: no '{END}' line yet")
        sample = next((ln for ln in body if ln.strip()), "")
        comma = "\t" in sample and "," in sample and "." not in sample
        arr, warns = _pairs([(begin + 2 + i, ln) for i, ln in enumerate(body)], path, comma)
        return Spectrum(path.name, arr[:, 0], arr[:, 1], _ov_time(path, header, st.st_mtime), "oceanview", warns)
    _settled(path, data, st.st_mtime, settle_s, now)
    numbered = [(i + 1, ln) for i, ln in enumerate(lines)]
    first = next(((n, ln) for n, ln in numbered if ln.strip() and not ln.lstrip().startswith("#")), None)
    if first is not None and _numbers(first[1]) is None:
        numbered = [(n, ln) for n, ln in numbered if n != first[0]]  # the column header row
    arr, warns = _pairs(numbered, path, False)
    return Spectrum(path.name, arr[:, 0], arr[:, 1], st.st_mtime, "two_column", warns)


def _settled(path: Path, data: bytes, mtime: float, settle_s: float, now: float) -> None:
    if not data.strip():
        raise Incomplete(f"{path.name}: empty so far")
    if not data.endswith(b"\n"):
        raise Incomplete(f"{path.name}: the last line is not finished")
    if now - mtime < settle_s:
        raise Incomplete(f"{path.name}: modified {now - mtime:.2f} s ago")


def read_matrix(path: Path, *, settle_s: float = 0.0, now: float | None = None,
                limits: Limits = DEFAULT) -> list[Spectrum]:
    """The spectra of a (possibly growing) TLIS matrix CSV as ``matdb simulate`` writes it, one per time
    column, named ``<file>#<column>``; times are the header's (min) as seconds from zero.

    Raises:
        Incomplete: the file is still being written (unfinished last line, ragged rows, recently modified).
    """
    from ingest.readers.tlis import parse_run

    check_size(path, "csv_mb", limits)
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise Incomplete(f"{path.name}: cannot be read yet ({exc.strerror or exc})") from None
    _settled(path, data, st.st_mtime, settle_s, time.time() if now is None else now)
    try:
        times, wl, values, *_ = parse_run(path, data.decode("utf-8-sig"), limits)
    except IngestError as exc:
        raise Incomplete(f"{path.name}: not complete yet ({exc.message})") from None
    return [Spectrum(f"{path.name}#{i}", wl, values[i], float(t) * 60.0, "tlis_csv") for i, t in enumerate(times)]


def is_matrix_csv(path: Path) -> bool:
    """A TLIS matrix CSV (``# matdb-tlis`` header or a ``wavelength_nm,t0,t1,..`` header row)."""
    try:
        head = path.open("r", encoding="utf-8", errors="replace").read(4096)
    except OSError:
        return False
    for ln in head.splitlines():
        s = ln.strip().lower()
        if not s:
            continue
        if s.startswith("# matdb-tlis"):
            return True
        if s.startswith("#"):
            continue
        cells = s.split(",")
        return cells[0] in ("wavelength_nm", "wavelength") and len(cells) > 2
    return False


def spectrum_files(folder: Path, reference: str | None) -> list[Path]:
    """The candidate spectrum files of a watched folder, by name (hidden and temporary files left out)."""
    skip = {MANIFEST, reference or ""}
    out = []
    with os.scandir(folder) as it:
        for e in it:
            n = e.name
            if n in skip or n.startswith((".", "~")) or not e.is_file() or n.endswith(".meta.yaml"):
                continue
            if n.lower().endswith(SPECTRUM_EXT):
                out.append(folder / n)
    return sorted(out)


def on_grid(s: Spectrum, grid: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``s``'s values on ``grid`` and a note when they had to be interpolated.

    Raises:
        Incomplete: the spectrum does not span the grid (a file cut short, or a narrower range).
    """
    if s.wavelengths.size == grid.size and np.allclose(s.wavelengths, grid, rtol=0, atol=1e-6):
        return s.values, None
    step = float(np.median(np.diff(grid))) if grid.size > 1 else 0.0
    if s.wavelengths[0] > grid[0] + 0.5 * step or s.wavelengths[-1] < grid[-1] - 0.5 * step:
        raise Incomplete(
            f"{s.file}: covers {s.wavelengths[0]:g}..{s.wavelengths[-1]:g} nm, not the run's "
            f"{grid[0]:g}..{grid[-1]:g} nm"
        )
    return np.interp(grid, s.wavelengths, s.values), f"{s.file}: interpolated onto the run's wavelength grid"


@dataclass
class FolderRun:
    """The spectra of a folder read so far (times in s since the epoch until :meth:`array`)."""

    folder: Path
    grid: np.ndarray | None = None
    times_s: list[float] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, s: Spectrum) -> int | None:
        """Place a spectrum in time order; returns its index, or None if skipped (with a warning)."""
        if self.grid is None:
            self.grid = s.wavelengths
        vals, note = on_grid(s, self.grid)
        if any(abs(t - s.time_s) < 1e-6 for t in self.times_s):
            self.warnings.append(f"{s.file}: same time as an earlier spectrum; skipped")
            return None
        self.warnings += s.warnings
        if note:
            self.notes.append(note)
        i = int(np.searchsorted(np.asarray(self.times_s), s.time_s))
        self.times_s.insert(i, s.time_s)
        self.rows.insert(i, vals)
        self.files.insert(i, s.file)
        return i


def read_folder(folder: Path, reference: str | None, limits: Limits = DEFAULT) -> tuple[FolderRun, list[str]]:
    """Every complete spectrum of a folder (ingest: no settle time); returns the run and every file name
    considered (read or not)."""
    run = FolderRun(folder)
    names = []
    files = spectrum_files(folder, reference)
    spectra: list[Spectrum] = []
    points = counted = 0
    for p in files:
        names.append(p.name)
        try:
            spectra += read_matrix(p, limits=limits) if is_matrix_csv(p) else [read_spectrum(p, limits=limits)]
        except Incomplete as exc:
            run.warnings.append(f"{exc}; not read")
        except LimitError:
            raise
        except IngestError as exc:
            run.warnings.append(f"{exc}; not read")
        points = sum(len(s.values) for s in spectra[counted:]) + points
        counted = len(spectra)
        check_count(points, "spectrum_points", f"the folder holds {len(spectra)} spectra", limits, file=folder)
    for s in sorted(spectra, key=lambda s: (s.time_s, s.file)):
        try:
            run.add(s)
        except Incomplete as exc:
            run.warnings.append(f"{exc}; not read")
    return run, names


def read_reference(path: Path, grid: np.ndarray, limits: Limits = DEFAULT) -> tuple[np.ndarray, str | None]:
    """A PTFE reference spectrum (any spectrum format) on the run's grid, and a note if interpolated."""
    if not path.is_file():
        raise fail(f"reference spectrum '{path.name}' not found", path, field="reference")
    try:
        s = read_spectrum(path, limits=limits)
        vals, note = on_grid(s, grid)
    except Incomplete as exc:
        raise fail(str(exc), path, field="reference") from None
    if np.any(vals <= 0):
        raise fail("reference counts must be positive (R = sample/reference)", path, field="reference")
    return vals, note and f"reference {note}"


def load_folder_run(folder: Path, *, reference: str | None, kind: str, meta: dict[str, Any] | None = None,
                    limits: Limits = DEFAULT, root: Path | None = None) -> ArrayData:
    """A watched folder as one TLIS run (ArrayData like :func:`ingest.readers.tlis.load_run`); the
    folder and its reference must lie inside ``root`` (where the ingest started), if given."""
    contained(folder, root, "the referenced folder", file=folder, field="file")
    if reference:
        contained(folder / reference, root, "the reference spectrum", file=folder, field="reference")
    if not folder.is_dir():
        raise fail("not a folder", folder, field="file")
    run, names = read_folder(folder, reference, limits)
    if not run.rows:
        raise fail("no complete spectrum in the folder", folder, field="file")
    grid = run.grid
    assert grid is not None
    ref = None
    notes = list(run.notes)
    if kind == "tlis_reflectance":
        if not reference:
            raise fail("a reflectance run needs its reference spectrum ('reference')", folder, field="reference")
        ref, note = read_reference(folder / reference, grid, limits)
        if note:
            notes.append(note)
    t = np.asarray(run.times_s)
    out_meta = {
        "format": "tlis_folder",
        "file": folder.name,
        "mode": "reflectance" if kind == "tlis_reflectance" else "pl",
        "member_files": names + ([reference] if reference else []),
        "spectrum_files": run.files,
        "time_zero": datetime.fromtimestamp(float(t[0])).isoformat(timespec="milliseconds"),
        "notes": notes,
        "warnings": run.warnings,
        **(meta or {}),
    }
    if reference:
        out_meta["reference"] = reference
    return ArrayData(
        kind=kind,
        values=np.vstack(run.rows),
        axes={"time": ((t - t[0]) / 60.0, "min"), "wavelength": (grid, "nm")},
        value_unit="counts",
        reference=ref,
        meta=out_meta,
    )
