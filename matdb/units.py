"""Quantities, their canonical units and conversions (pint; no hand-written factors).

Every scalar result in matdb is stored in the canonical unit of its quantity. The registry below
is the single list of known quantities; an ingest file may declare more under ``quantities:``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pint

ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.define("percent = 0.01 = %")
ureg.define("ppm_shift = [] = ppm_chem")  # chemical shift; kept separate from dimensionless ppm
ureg.define("counts = [] = cts")
Q_ = ureg.Quantity


class UnitError(ValueError):
    """A unit that is unknown or does not fit the quantity."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class QuantityDef:
    """A quantity matdb stores: canonical unit, allowed range and a label for plots."""

    name: str
    unit: str  # canonical unit, pint syntax ("" = dimensionless)
    label: str
    min: float | None = None
    max: float | None = None
    categorical: bool = False
    description: str = ""

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({display_unit(self.unit)})" if self.unit else self.label


def _q(name: str, unit: str, label: str, lo: float | None = None, hi: float | None = None,
       desc: str = "") -> QuantityDef:
    return QuantityDef(name, unit, label, lo, hi, False, desc)


def _cat(name: str, label: str, desc: str = "") -> QuantityDef:
    return QuantityDef(name, "", label, categorical=True, description=desc)


NONNEG = 0.0

#: The registry of known quantities, by name.
QUANTITIES: dict[str, QuantityDef] = {
    q.name: q
    for q in [
        # optical
        _q("plqy", "percent", "PLQY", 0, 100, "photoluminescence quantum yield"),
        _q("absorption_edge", "nm", "Absorption edge", 0),
        _q("absorption_onset", "nm", "Absorption onset", 0),
        _q("pl_peak", "nm", "PL peak", 0),
        _q("pl_fwhm", "nm", "PL FWHM", 0),
        _q("pl_intensity", "counts", "PL intensity", 0),
        _q("pl_integrated_intensity", "counts", "Integrated PL intensity", 0),
        _q("relative_pl_intensity", "", "Relative PL intensity", 0),
        _q("pl_enhancement", "", "PL enhancement factor", 0),
        _q("pl_retention", "", "PL retention I_end/I_max", 0),
        _q("pl_lifetime", "ns", "PL lifetime", 0),
        _q("bandgap", "eV", "Band gap", 0),
        _q("bandgap_shift", "eV", "Band-gap shift"),
        _q("edge_blue_shift", "nm", "Edge blue-shift after maximum"),
        _q("urbach_energy", "meV", "Urbach energy", 0),
        _q("emission_wavelength", "nm", "Emission wavelength", 0),
        _q("reflectance", "", "Reflectance", 0),
        # kinetics and process times
        _q("time_to_edge", "min", "Time to absorption edge", 0),
        _q("time_to_max", "min", "Time to maximum", 0),
        _q("steady_state_time", "min", "Time to steady state", 0),
        _q("decay_onset_time", "min", "Onset of decay", 0),
        _q("pl_peak_time", "min", "Time of PL maximum", 0),
        _q("rate_constant", "1/min", "Rate constant", 0),
        _q("avrami_exponent", "", "Avrami exponent", 0),
        _q("duration", "min", "Duration", 0),
        _q("milling_time", "min", "Milling time", 0),
        _q("aging_time", "h", "Aging time", 0),
        _q("stability_time", "h", "Stable for", 0),
        # structure
        _q("crystallite_size", "nm", "Crystallite size", 0),
        _q("particle_size", "nm", "Particle size", 0),
        _q("xrd_peak", "degree", "pXRD peak 2θ", 0, 180),
        _q("lattice_parameter", "angstrom", "Lattice parameter", 0),
        _q("cell_volume", "angstrom**3", "Cell volume", 0),
        _q("phase_fraction", "percent", "Phase fraction", 0, 100),
        _q("d_spacing", "angstrom", "d-spacing", 0),
        _q("interatomic_distance", "angstrom", "Interatomic distance", 0),
        _q("coordination_number", "", "Coordination number", 0),
        _q("porosity", "percent", "Porosity", 0, 100),
        _q("pore_size", "nm", "Pore size", 0),
        # spectroscopy
        _q("nmr_shift", "ppm_shift", "Chemical shift"),
        _q("nmr_linewidth", "Hz", "NMR linewidth", 0),
        _q("t1", "s", "T1 relaxation time", 0),
        _q("binding_energy", "eV", "Binding energy", 0),
        _q("binding_energy_shift", "eV", "Binding-energy shift"),
        _q("raman_shift", "1/cm", "Raman shift"),
        _q("absorption_peak", "nm", "Absorption peak", 0),
        # thermal
        _q("glass_transition_temperature", "degC", "Glass transition T_g", -273.15),
        _q("melting_temperature", "degC", "Melting temperature T_m", -273.15),
        _q("phase_transition_temperature", "degC", "Phase-transition temperature", -273.15),
        _q("decomposition_temperature", "degC", "Decomposition temperature", -273.15),
        _q("temperature", "degC", "Temperature", -273.15),
        _q("mass_loss", "percent", "Mass loss", 0, 100),
        # energies and transport
        _q("migration_barrier", "eV", "Migration barrier", 0),
        _q("activation_energy", "eV", "Activation energy", 0),
        _q("energy", "eV", "Energy"),
        _q("relative_energy", "eV", "Relative energy"),
        _q("formation_energy", "eV", "Formation energy"),
        _q("mobile_ion_concentration", "1/cm**3", "Mobile-ion concentration", 0),
        _q("trap_density", "1/cm**3", "Trap density", 0),
        _q("diffusion_coefficient", "cm**2/s", "Diffusion coefficient", 0),
        _q("conductivity", "S/cm", "Conductivity", 0),
        _q("capacitance", "F", "Capacitance"),
        _q("time_constant", "s", "Time constant", 0),
        _q("photoconductivity", "S/cm", "Photoconductivity"),
        _q("mobility", "cm**2/V/s", "Mobility", 0),
        _q("carrier_lifetime", "ns", "Carrier lifetime", 0),
        # settings (also used as measurement conditions)
        _q("excitation_wavelength", "nm", "Excitation wavelength", 0),
        _q("integration_time", "ms", "Integration time", 0),
        _q("field_strength", "T", "Magnetic field", 0),
        _q("spinning_rate", "kHz", "MAS rate", 0),
        _q("bias", "V", "Bias"),
        _q("frequency", "Hz", "Frequency", 0),
        _q("illumination_intensity", "mW/cm**2", "Illumination intensity", 0),
        _q("mass", "mg", "Mass", 0),
        _q("ratio", "", "Ratio", 0),
        _q("mol_fraction", "percent", "Mole fraction", 0, 100),
        _q("count", "", "Count", 0),
        # categorical findings
        _cat("phases_present", "Phases present"),
        _cat("crystal_phase", "Crystal phase"),
        _cat("space_group", "Space group"),
        _cat("pl_stability_under_illumination", "PL under illumination"),
        _cat("observation", "Observation"),
        _cat("trend", "Trend"),
        _cat("color", "Colour"),
    ]
}

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


def quantity_def(name: str, extra: dict[str, QuantityDef] | None = None) -> QuantityDef:
    if extra and name in extra:
        return extra[name]
    try:
        return QUANTITIES[name]
    except KeyError:
        raise UnitError(
            f"unknown quantity '{name}'; use one of the registered quantities "
            f"(matdb info --quantities) or declare it under 'quantities:'",
            "quantity",
        ) from None


def to_canonical(quantity: str, value: float, unit: str | None,
                 extra: dict[str, QuantityDef] | None = None) -> tuple[float, str]:
    """Convert a value of ``quantity`` given in ``unit`` to the quantity's canonical unit.

    Raises:
        UnitError: unknown quantity or unit, a unit of the wrong dimension, a value that is not
            finite, or a value outside the physically allowed range (e.g. PLQY > 100 %).
    """
    q = quantity_def(quantity, extra)
    if q.categorical:
        raise UnitError(f"quantity '{quantity}' is categorical; give a text value", "value")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UnitError(f"{quantity}: value {value!r} is not a number", "value") from None
    if not math.isfinite(v):
        raise UnitError(f"{quantity}: value {value!r} is not a finite number", "value")
    if unit is None:
        unit = q.unit
    try:
        out = convert(v, unit, q.unit)
    except UnitError as exc:
        raise UnitError(f"{quantity}: {exc} (expected a unit of {display_unit(q.unit) or 'dimensionless'})",
                        "unit") from None
    check_range(q, out)
    return out, q.unit


def check_range(q: QuantityDef, value: float) -> None:
    eps = 1e-9 * max(1.0, abs(value))
    if q.min is not None and value < q.min - eps:
        raise UnitError(
            f"{q.name} = {value:g} {display_unit(q.unit)} is below the allowed minimum {q.min:g}", "value"
        )
    if q.max is not None and value > q.max + eps:
        raise UnitError(
            f"{q.name} = {value:g} {display_unit(q.unit)} is above the allowed maximum {q.max:g}", "value"
        )


def parse_quantity(quantity: str, spec: Any, extra: dict[str, QuantityDef] | None = None) -> tuple[float, str]:
    """Read "275 degC", {"value": 275, "unit": "degC"} or a bare number as ``quantity``."""
    if isinstance(spec, dict):
        return to_canonical(quantity, spec.get("value"), spec.get("unit"), extra)
    if isinstance(spec, str):
        v, u = parse_quantity_text(spec)
        return to_canonical(quantity, v, u, extra)
    return to_canonical(quantity, spec, None, extra)
