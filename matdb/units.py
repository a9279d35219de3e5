"""Units: parsing as chemists write them, and conversions (pint; no hand-written factors).

The quantities themselves (canonical units, bounds) are defined in :mod:`matdb.vocabulary`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pint

ureg: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.define("percent = 0.01 = %")
ureg.define("ppm_shift = [] = ppm_chem")  # chemical shift; kept separate from dimensionless ppm
ureg.define("counts = [] = cts")
Q_ = ureg.Quantity


class UnitError(ValueError):
    """A unit that is unknown or does not fit the quantity."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_DISPLAY = {"percent": "%", "degree": "°", "degC": "°C", "angstrom": "Å", "ppm_shift": "ppm",
            "counts": "counts", "angstrom**3": "Å³", "1/cm**3": "cm⁻³", "1/min": "min⁻¹",
            "1/cm": "cm⁻¹", "cm**2/s": "cm² s⁻¹"}

#: Plain-text aliases chemists type, mapped to pint units.
_ALIASES = {
    "%": "percent", "°": "degree", "deg": "degree", "°C": "degC", "ºC": "degC", "C": "degC",
    "K": "kelvin", "Å": "angstrom", "A": "angstrom", "ppm": "ppm_shift", "a.u.": "counts",
    "au": "counts", "counts": "counts", "cts": "counts", "kcal/mol": "kcal/mol/N_A",
    "kcal mol-1": "kcal/mol/N_A", "kcal mol^-1": "kcal/mol/N_A", "kJ/mol": "kJ/mol/N_A",
    "kJ mol-1": "kJ/mol/N_A", "rpm": "revolutions/minute", "cm-3": "1/cm**3", "cm^-3": "1/cm**3",
    "min-1": "1/min", "s-1": "1/s", "cm-1": "1/cm", "": "dimensionless", "-": "dimensionless",
    "1": "dimensionless", "x": "dimensionless", "times": "dimensionless", "fold": "dimensionless",
    "2θ": "degree", "2theta": "degree", "μm": "micrometer", "um": "micrometer",
    "µm": "micrometer", "μs": "microsecond", "µs": "microsecond", "wt%": "percent",
    "wt %": "percent", "mol%": "percent", "mol %": "percent", "at%": "percent",
}


def display_unit(unit: str) -> str:
    return _DISPLAY.get(unit, unit)


@cache
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit as chemists write it ("degC", "°C", "kcal/mol", "%", "nm")."""
    raw = (text or "").strip()
    name = _ALIASES.get(raw, raw)
    try:
        return ureg.parse_units(name) if name != "dimensionless" else ureg.dimensionless
    except Exception:
        raise UnitError(f"unknown unit '{text}'") from None


_QTY_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def parse_quantity_text(text: str) -> tuple[float, str]:
    """Split "275 degC" into (275.0, "degC"); "48 min" -> (48.0, "min")."""
    m = _QTY_RE.match(str(text))
    if not m:
        raise UnitError(f"cannot read a number and unit from '{text}'")
    return float(m.group(1)), m.group(2)


@cache
def linear_map(from_unit: str, to_unit: str) -> tuple[float, float]:
    """(scale, offset) with ``to = scale * from + offset``, computed once per unit pair by pint.

    All unit conversions matdb needs are affine (offsets only for temperatures), so bulk
    conversion is one multiply-add per value instead of one pint call per value.
    """
    src, dst = parse_unit(from_unit), parse_unit(to_unit)
    try:
        zero = float(Q_(0.0, src).to(dst).magnitude)
        one = float(Q_(1.0, src).to(dst).magnitude)
    except pint.DimensionalityError:
        raise UnitError(f"cannot convert {from_unit or 'dimensionless'} to {to_unit or 'dimensionless'}") from None
    return one - zero, zero


def convert(value: Any, from_unit: str, to_unit: str) -> Any:
    """Convert a value (or numpy array) between units; factors come from pint (see linear_map)."""
    scale, offset = linear_map(from_unit or "", to_unit or "")
    if isinstance(value, (int, float)):
        return float(value) * scale + offset
    return value * scale + offset
