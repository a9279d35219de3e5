"""Reader for JCAMP-DX spectra (.jdx, .dx, .jcamp), versions 4.24 and 5.x, single block.

Supported data tables: ``##XYDATA=(X++(Y..Y))`` in AFFN (free-format decimal numbers, also
"packed" numbers where a sign separates values) or ASDF (the compressed forms instruments write:
SQZ, DIF and DUP characters, with the DIF Y-check value), and ``##XYPOINTS=(XY..XY)`` in AFFN.
Multi-block files (``##BLOCKS``), ``##NTUPLES`` and ASDF in ``##XYPOINTS`` are rejected with a
clear message.

The SQZ/DIF arithmetic of an ASDF line is done by the PyPI package ``jcamp`` (``jcamp.parse``);
matdb keeps its own parts around it, because the package's reader is not strict enough for an
ingest (see :func:`_asdf_line`): ``jcamp.read`` only *prints* failed X/Y checks and length
mismatches, has no line numbers, and ``jcamp.parse`` mis-expands DUP counts of two or more
digits (``T2`` = 22) and DUP after an SQZ value (IndexError), reads a DIF value before an
absolute one as absolute, and fails on packed AFFN with exponents (``1.0E-2-3.0E+1``). So
matdb locates the labels itself (with line numbers), tokenizes each ASDF line strictly, expands
DUP itself (bounded by ##NPOINTS before any memory is spent), checks X and Y, applies
XFACTOR/YFACTOR, reads AFFN with its own tokenizer, and turns every problem into a one-line
reader error naming file, line and field.

Which sample a spectrum belongs to comes from private labels (``##$SAMPLE=``, ``##$FAMILY=``,
``##$PARAMS={"x": 0.8}``), ``$$ sample: ...`` comments or a sidecar ``<file>.meta.yaml``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jcamp as _jcamp  # PyPI "jcamp" (no type stubs): decodes SQZ/DIF values of one line
import numpy as np

from ingest.limits import DEFAULT, Limits, check_count
from ingest.readers._common import META_KEYS, fail, merge_meta, read_text, standalone_document
from ingest.records import ArrayRecord, Document
from matdb.arrays import ArrayData
from matdb.units import UnitError, parse_unit

_NUM = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SEPS = re.compile(r"[\s,;]+")
_ASDF = re.compile(r"[@A-DF-Za-df-s%]")  # SQZ @A-I a-i, DIF % J-R j-r, DUP S-Z s (not e/E)
#: One token of an ASDF line: separators, a DUP count (S-Z s for 1-9, more digits may follow), or a
#: value: AFFN/PAC number, SQZ (@A-I a-i) or DIF (% J-R j-r) leading character with its digits.
_ASDF_TOKEN = re.compile(
    r"(?P<sep>[\s,;]+)|(?P<dup>[S-Zs]\d*)"
    r"|(?P<val>[@A-Ia-i%J-Rj-r+-]?(?:\d+\.?\d*|\.\d+)|[@A-Ia-i%J-Rj-r])"
)
_DIF_CHARS = frozenset("%JKLMNOPQRjklmnopqr")
_DUP_COUNT = {c: i for i, c in enumerate("STUVWXYZs", start=1)}

#: JCAMP-DX unit names -> pint units.
X_UNITS = {
    "NANOMETERS": "nm",
    "NM": "nm",
    "MICROMETERS": "micrometer",
    "1/CM": "1/cm",
    "2THETA": "degree",
    "DEGREES": "degree",
    "DEGREE": "degree",
    "PPM": "ppm_shift",
    "HZ": "Hz",
    "SECONDS": "s",
    "MINUTES": "min",
    "EV": "eV",
    "ELECTRON VOLTS": "eV",
    "DEGREES C": "degC",
    "CELSIUS": "degC",
    "KELVIN": "kelvin",
    "K": "kelvin",
}
Y_UNITS = {
    "ABSORBANCE": "",
    "TRANSMITTANCE": "",
    "REFLECTANCE": "",
    "KUBELKA-MUNK": "",
    "ARBITRARY UNITS": "",
    "ARB. UNITS": "",
    "A.U.": "",
    "COUNTS": "counts",
    "INTENSITY": "counts",
    "CPS": "counts",
    "EMISSION": "counts",
    "MW": "mW",
    "W/G": "W/g",
}

#: DATA TYPE keyword -> (technique, array kind); first match wins.
DATA_TYPES = (
    ("PHOTOELECTRON", "xps", "xps_spectrum"),
    ("XPS", "xps", "xps_spectrum"),
    ("X-RAY", "pxrd", "pxrd"),
    ("DIFFRACTION", "pxrd", "pxrd"),
    ("NMR", "mas_nmr", "nmr_spectrum"),
    ("FLUORESCENCE", "pl", "pl_spectrum"),
    ("PHOTOLUMINESCENCE", "pl", "pl_spectrum"),
    ("EMISSION", "pl", "pl_spectrum"),
    ("UV", "uv_vis", "absorption_spectrum"),
    ("VIS", "uv_vis", "absorption_spectrum"),
    ("ABSORPTION", "uv_vis", "absorption_spectrum"),
    ("INFRARED", "ftir", "generic"),
    ("RAMAN", "raman", "generic"),
    ("CALORIMETRY", "dsc", "dsc_curve"),
    ("DSC", "dsc", "dsc_curve"),
)


def _norm_label(label: str) -> str:
    return re.sub(r"[\s\-/_]", "", label).upper()


def parse_labels(
    text: str, path: Path
) -> tuple[dict[str, tuple[str, int, list[tuple[int, str]]]], dict[str, Any], dict[str, int]]:
    """Labelled data records: label -> (value, line, continuation lines), plus matdb metadata."""
    ldrs: dict[str, tuple[str, int, list[tuple[int, str]]]] = {}
    meta: dict[str, Any] = {}
    where: dict[str, int] = {}
    current: list[tuple[int, str]] | None = None
    ended = False
    for i, raw in enumerate(text.splitlines(), start=1):
        line, _, comment = raw.partition("$$")
        m = re.match(r"^\s*([A-Za-z][\w\- ]*?)\s*:\s*(.*?)\s*$", comment)
        if m and re.sub(r"[\s\-]+", "_", m.group(1).lower()) in META_KEYS:
            key = re.sub(r"[\s\-]+", "_", m.group(1).lower())
            meta[key], where[key] = m.group(2), i
        s = line.strip()
        if not s:
            continue
        if s.startswith("##"):
            name, eq, value = s[2:].partition("=")
            if not eq:
                raise fail(f"labelled data record '{s[:40]}' has no '='", path, line=i)
            label = _norm_label(name)
            if label == "END":
                ended = True
                break
            if label.startswith("$"):
                key = re.sub(r"[\s\-]+", "_", name[1:].strip().lower())
                if key in META_KEYS:
                    meta[key], where[key] = value.strip(), i
            if label in ldrs and label not in ("TITLE",):
                raise fail(
                    f"##{name.strip()} appears twice (multi-block files are not supported)",
                    path,
                    line=i,
                    field=name.strip(),
                )
            current = []
            ldrs[label] = (value.strip(), i, current)
        elif current is not None:
            current.append((i, s))
        else:
            raise fail("text before the first ##TITLE= label", path, line=i)
    if "TITLE" not in ldrs:
        raise fail("not a JCAMP-DX file: it must start with ##TITLE=", path, line=1, field="TITLE")
    if not ended:
        raise fail("no ##END= label; the file seems truncated", path, field="END")
    version = ldrs.get("JCAMPDX", ("", 0, []))[0]
    if not re.match(r"^\s*[45](\.\d+)?", version):
        raise fail(
            f"unsupported or missing ##JCAMP-DX= version '{version}' (4.24 or 5.x expected)",
            path,
            line=ldrs.get("JCAMPDX", ("", None, []))[1],
            field="JCAMP-DX",
        )
    for label in ("BLOCKS", "NTUPLES"):
        if label in ldrs:
            raise fail(
                f"##{label}= files are not supported; export a single XY spectrum",
                path,
                line=ldrs[label][1],
                field=label,
            )
    return ldrs, meta, where


def _number(ldrs: dict[str, Any], label: str, path: Path, default: float | None = None) -> float:
    if label not in ldrs:
        if default is not None:
            return default
        raise fail(f"##{label}= is required for ##XYDATA", path, field=label)
    value, line, _ = ldrs[label]
    try:
        v = float(value)
    except ValueError:
        raise fail(f"##{label}= '{value}' is not a number", path, line=line, field=label) from None
    if not np.isfinite(v):
        raise fail(f"##{label}= is not a finite number", path, line=line, field=label)
    return v


def _tokens(line_no: int, s: str, path: Path, table: str) -> list[float]:
    rest = _SEPS.sub("", _NUM.sub("", s))
    if rest:
        if "?" in rest:
            raise fail(f"missing value '?' in {table}", path, line=line_no, field=table)
        if _ASDF.search(rest):
            raise fail(
                f"{table} uses ASDF compression (SQZ/DIF/DUP), which is only supported in "
                "##XYDATA=(X++(Y..Y)); export the table as AFFN (plain numbers)",
                path,
                line=line_no,
                field=table,
            )
        raise fail(
            f"unexpected characters '{rest[:20]}' in {table}", path, line=line_no, field=table
        )
    vals = [float(t) for t in _NUM.findall(s)]
    if not all(np.isfinite(vals)):
        raise fail(f"value out of range in {table}", path, line=line_no, field=table)
    return vals


def _segments(tokens: list[str], difs: list[bool]) -> list[list[str]]:
    """Split a line's tokens after each DIF value that an absolute value follows.

    ``jcamp.parse`` (1.3.2) adds a pending DIF value correctly only when another DIF character or the
    end of the text follows it: before an SQZ/AFFN value or a space it resets its DIF flag first and
    reads the difference as an absolute value (``A1JB`` gave 11, 1, 2 instead of 11, 12, 2; ``A J J``
    1, 1, 2 instead of 1, 2, 3). Each segment therefore ends with its DIF run and starts with an
    absolute value, so segments decode independently.
    """
    segs: list[list[str]] = [[]]
    for i, tok in enumerate(tokens):
        if i and difs[i - 1] and not difs[i]:
            segs.append([])
        segs[-1].append(tok)
    return segs


def _decode(seg: list[str]) -> list[float]:
    """The values of tokens (first one absolute) by ``jcamp.parse``."""
    # Unsigned AFFN numbers need a separator: ',' is one for jcamp.parse (a space would end a DIF run).
    text = "".join("," + tok if tok[0] in "0123456789." else tok for tok in seg)
    if _jcamp.is_scientific_notation(text):
        # jcamp would read SQZ E/e (5/-5) of e.g. "-12E5" (PAC -12, SQZ 55) as an exponent; a text
        # it takes for one float has no DIF value, so its tokens decode one by one.
        return [float(v) for tok in seg for v in _jcamp.parse(tok)]
    return [float(v) for v in _jcamp.parse(text)]


def _asdf_line(line_no: int, s: str, path: Path, max_values: int) -> tuple[list[float], list[bool]]:
    """The values of one ASDF ``(X++(Y..Y))`` line (X first, DUP expanded) and, per value, whether
    it was written as a DIF (difference) token.

    matdb tokenizes the line and expands DUP counts itself: ``jcamp.parse`` (1.3.2) repeats the
    text back to the last DIF character, so ``AJT2`` (1, then +1 repeated 22 times) came out as
    1, 2, 14 and ``A1T2`` (11 repeated 22 times) raised IndexError. With DUP expanded, each token
    is one value and ``jcamp.parse`` decodes SQZ (absolute) and DIF (relative to the value before
    it) exactly (split by :func:`_segments`). More than ``max_values`` values is refused before the
    expansion, so a tiny file cannot claim millions of repeats.
    """
    tokens: list[str] = []
    pos, last_dup = 0, False
    while pos < len(s):
        m = _ASDF_TOKEN.match(s, pos)
        if m is None:
            bad = s[pos]
            if bad == "?":
                raise fail("missing value '?' in XYDATA", path, line=line_no, field="XYDATA")
            raise fail(
                f"unexpected character '{bad}' in ASDF XYDATA (at column {pos + 1}); the compressed "
                "data are corrupt",
                path,
                line=line_no,
                field="XYDATA",
            )
        pos = m.end()
        if m.group("sep"):
            continue
        dup = m.group("dup")
        if dup:
            if len(tokens) < 2 or last_dup:  # a DUP repeats a Y value, never the X
                raise fail(
                    f"DUP count '{dup}' does not follow a Y value (at column {m.start() + 1}); the "
                    "compressed data are corrupt",
                    path,
                    line=line_no,
                    field="XYDATA",
                )
            count = int(str(_DUP_COUNT[dup[0]]) + dup[1:])
            if len(tokens) + count - 1 > max_values:
                raise fail(
                    f"DUP count {count} gives more points than ##NPOINTS= allows",
                    path,
                    line=line_no,
                    field="XYDATA",
                )
            tokens.extend([tokens[-1]] * (count - 1))
            last_dup = True
            continue
        tokens.append(m.group("val"))
        last_dup = False
        if len(tokens) > max_values:
            raise fail(
                "XYDATA has more points than ##NPOINTS= says", path, line=line_no, field="NPOINTS"
            )
    difs = [tok[0] in _DIF_CHARS for tok in tokens]
    if difs and difs[0]:
        raise fail("the X value of an XYDATA line is a DIF value", path, line=line_no, field="XYDATA")
    if len(difs) > 1 and difs[1]:
        raise fail(
            "the first Y value of an XYDATA line must be absolute (SQZ or AFFN), not a DIF "
            "difference; the compressed data are corrupt",
            path,
            line=line_no,
            field="XYDATA",
        )
    try:
        vals = [v for seg in _segments(tokens, difs) for v in _decode(seg)]
    except Exception as e:  # jcamp.parse raises bare Exception, ValueError and IndexError
        raise fail(
            f"cannot decode the ASDF XYDATA line ({e}); the compressed data are corrupt",
            path,
            line=line_no,
            field="XYDATA",
        ) from None
    if len(vals) != len(tokens):
        raise fail(
            f"cannot decode the ASDF XYDATA line ({len(tokens)} values written, "
            f"{len(vals)} decoded); the compressed data are corrupt",
            path,
            line=line_no,
            field="XYDATA",
        )
    if not all(np.isfinite(vals)):
        raise fail("value out of range in XYDATA", path, line=line_no, field="XYDATA")
    return vals, difs


def _unit(ldrs: dict[str, Any], label: str, table: dict[str, str], path: Path, default: str) -> str:
    if label not in ldrs:
        return default
    value, line, _ = ldrs[label]
    key = value.strip().upper()
    if key in table:
        return table[key]
    try:
        parse_unit(value.strip())
    except UnitError:
        known = ", ".join(sorted(table))
        raise fail(
            f"unknown unit '{value}' (known: {known})", path, line=line, field=label
        ) from None
    return value.strip()


def parse_jcamp(
    path: Path, text: str | None = None, limits: Limits = DEFAULT
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, int]]:
    """x (n,), y (n,) and metadata (header labels, matdb keys, units) of a JCAMP-DX file."""
    text = read_text(path, limits, "spectrum_mb") if text is None else text
    ldrs, meta, where = parse_labels(text, path)
    xf = _number(ldrs, "XFACTOR", path, 1.0)
    yf = _number(ldrs, "YFACTOR", path, 1.0)
    if "XYDATA" in ldrs:
        form, line0, rows = ldrs["XYDATA"]
        if _norm_label(form) != "(X++(Y..Y))":
            raise fail(
                f"##XYDATA={form} is not supported (only (X++(Y..Y)))",
                path,
                line=line0,
                field="XYDATA",
            )
        first, last = _number(ldrs, "FIRSTX", path), _number(ldrs, "LASTX", path)
        npts = _number(ldrs, "NPOINTS", path)
        n = int(npts)
        if n != npts or n < 1:
            raise fail(
                f"##NPOINTS={ldrs['NPOINTS'][0]} must be a positive integer",
                path,
                line=ldrs["NPOINTS"][1],
                field="NPOINTS",
            )
        check_count(n, "spectrum_points", f"##NPOINTS={n}", limits, file=path, line=ldrs["NPOINTS"][1])
        delta = (last - first) / (n - 1) if n > 1 else 0.0
        ys: list[float] = []
        asdf = any(_ASDF.search(s) for _, s in rows)
        prev_dif = False  # the previous ASDF line ended with a DIF value: this line starts with its Y-check
        for ln, s in rows:
            if asdf:
                vals, difs = _asdf_line(ln, s, path, n - len(ys) + 2)
            else:
                vals, difs = _tokens(ln, s, path, "XYDATA"), []
                check_count(len(ys) + len(vals) - 1, "spectrum_points", "the spectrum has too many points",
                            limits, file=path, line=ln)
            if len(vals) < 2:
                raise fail(
                    "an XYDATA line needs an X value followed by Y values",
                    path,
                    line=ln,
                    field="XYDATA",
                )
            new = vals[1:]
            index = len(ys)  # the point the line's X belongs to
            if prev_dif and ys:
                # DIF form (JCAMP-DX 4.24): the last Y of a line is repeated as the first Y of the next
                if abs(new[0] - ys[-1]) > 1e-9 * max(1.0, abs(ys[-1])):
                    raise fail(
                        f"Y-check failed: the line starts with Y = {new[0]:g} but the previous line "
                        f"ended with {ys[-1]:g}; the compressed data are corrupt",
                        path,
                        line=ln,
                        field="XYDATA",
                    )
                new, index = new[1:], index - 1
            expect = first + index * delta
            if n > 1 and abs(vals[0] * xf - expect) > 0.5 * abs(delta) + 1e-9 * abs(expect):
                raise fail(
                    f"X = {vals[0] * xf:g} at the start of the line does not match point "
                    f"{index + 1} (expected {expect:g}); points may be missing",
                    path,
                    line=ln,
                    field="XYDATA",
                )
            ys.extend(new)
            prev_dif = bool(difs) and difs[-1]
        if len(ys) != n:
            raise fail(
                f"XYDATA has {len(ys)} points but ##NPOINTS= says {n}; the file may be truncated",
                path,
                line=rows[-1][0] if rows else line0,
                field="NPOINTS",
            )
        x = np.linspace(first, last, n)
        y = np.asarray(ys) * yf
    elif "XYPOINTS" in ldrs or "PEAKTABLE" in ldrs:
        label = "XYPOINTS" if "XYPOINTS" in ldrs else "PEAKTABLE"
        form, line0, rows = ldrs[label]
        if _norm_label(form) not in ("(XY..XY)", "(XY)"):
            raise fail(
                f"##{label}={form} is not supported (only (XY..XY))", path, line=line0, field=label
            )
        vals = []  # list[float], as in the XYDATA branch
        for ln, s in rows:
            v = _tokens(ln, s, path, label)
            vals.extend(v)
            check_count(len(vals) // 2, "spectrum_points", "the spectrum has too many points", limits,
                        file=path, line=ln)
        if len(vals) % 2:
            raise fail(
                f"{label} has an odd number of values; every X needs a Y",
                path,
                line=rows[-1][0] if rows else line0,
                field=label,
            )
        pairs = np.asarray(vals).reshape(-1, 2)
        x, y = pairs[:, 0] * xf, pairs[:, 1] * yf
        if "NPOINTS" in ldrs and int(_number(ldrs, "NPOINTS", path)) != x.size:
            raise fail(
                f"{label} has {x.size} points but ##NPOINTS= says {ldrs['NPOINTS'][0]}; "
                "the file may be truncated",
                path,
                line=ldrs["NPOINTS"][1],
                field="NPOINTS",
            )
    else:
        raise fail("no ##XYDATA= or ##XYPOINTS= data table", path, field="XYDATA")
    if x.size == 0:
        raise fail("the data table is empty", path, field="XYDATA")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise fail(
            "the data contain values that are not finite (check XFACTOR/YFACTOR)",
            path,
            field="XYDATA",
        )
    x_unit = _unit(ldrs, "XUNITS", X_UNITS, path, "")
    y_unit = _unit(ldrs, "YUNITS", Y_UNITS, path, "")
    dtype = ldrs.get("DATATYPE", ("", 0, []))[0].upper()
    technique, kind = "other", "generic"
    for word, tech, knd in DATA_TYPES:
        if word in dtype:
            technique, kind = tech, knd
            break
    header = {
        lab: v for lab, (v, _, _) in ldrs.items() if lab not in ("XYDATA", "XYPOINTS", "PEAKTABLE")
    }
    meta = {
        **meta,
        "jcamp": header,
        "x_unit": x_unit,
        "y_unit": y_unit,
        "default_technique": technique,
        "default_kind": kind,
    }
    if "instrument" not in meta and "SPECTROMETERDATASYSTEM" in ldrs:
        meta["instrument"] = ldrs["SPECTROMETERDATASYSTEM"][0]
    return x, y, meta, where


def load_jcamp(path: Path, *, kind: str | None = None, text: str | None = None,
               limits: Limits = DEFAULT) -> ArrayData:
    """A JCAMP-DX spectrum as ArrayData: values (n,) on axis "x" in the file's X unit."""
    x, y, meta, where = parse_jcamp(path, text, limits)
    meta, _ = merge_meta(path, meta, where, limits)
    k = kind or meta.get("kind") or meta["default_kind"]
    axis = {
        "nm": "wavelength",
        "degree": "two_theta",
        "1/cm": "wavenumber",
        "ppm_shift": "shift",
        "eV": "energy",
    }.get(meta["x_unit"], "x")
    return ArrayData(
        kind=str(k),
        values=y,
        axes={axis: (x, meta["x_unit"])},
        value_unit=meta["y_unit"],
        meta=dict(meta, file=path.name, format="jcamp"),
    )


def read_jcamp_document(path: Path, text: str, limits: Limits = DEFAULT) -> Document:
    data = load_jcamp(path, text=text, limits=limits)
    _, _, _, where = parse_jcamp(path, text, limits)
    meta = {
        k: v
        for k, v in data.meta.items()
        if k in META_KEYS and k not in ("kind", "description", "wavelength")
    }
    from matdb.vocabulary import ARRAY_KINDS

    if data.kind not in ARRAY_KINDS:
        raise fail(
            f"unknown array kind '{data.kind}' (known: {', '.join(ARRAY_KINDS)})",
            path,
            field="kind",
        )
    arr = ArrayRecord(
        kind=data.kind,
        file=path.name,
        format="jcamp",
        x_unit=data.meta["x_unit"],
        y_unit=data.meta["y_unit"],
        wavelength=data.meta.get("wavelength"),
        note=data.meta["jcamp"].get("TITLE") or None,
    )
    return standalone_document(
        path, meta, where, technique=data.meta["default_technique"], arrays=[arr]
    )
