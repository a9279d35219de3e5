"""The vocabulary of matdb: every name a record, a table, a query or a model uses, defined once.

One home for

* **quantities** (:data:`QUANTITIES`): canonical unit, label, physical bounds and, where a
  quantity is a natural screening objective, its default direction;
* **process parameters** (:data:`PROCESS_PARAMS`): the stored name, the name users may write, the
  unit, physical bounds, the lab's resolution for proposals, and how the parameter follows from a
  synthesis' ordered steps (:func:`derive_process`);
* **techniques**, **step kinds**, **provenance** values, **array kinds** (with their axes) and
  **sample outcomes** (feasible or failed syntheses).

Every other module imports these; nothing spells them again. Quantities a user declares in a
record file (``quantities:``) join the vocabulary at run time: :class:`Vocabulary` combines the
built-ins with a database's declared quantities (``Database.vocabulary()``), and every function
here that looks a quantity up takes such extra definitions.

Physical bounds are enforced at ingest for every quantity and process parameter, after
conversion to the canonical unit (an absolute temperature below 0 K is refused whether it was given
in °C, K or °F; durations, counts and amounts are non-negative; fractions lie in 0..1 and
percentages in 0..100).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from matdb import units
from matdb.units import UnitError, display_unit

__all__ = [
    "ABSOLUTE_ZERO_C",
    "ARRAY_KINDS",
    "ArrayKind",
    "DIRECTIONS",
    "FRACTION_RESOLUTION",
    "OUTCOMES",
    "PROCESS_PARAMS",
    "PROVENANCES",
    "ProcessError",
    "ProcessParam",
    "QUANTITIES",
    "QuantityDef",
    "STEP_KINDS",
    "SOURCE_PROVENANCE",
    "TECHNIQUES",
    "TRAINING_PROVENANCES",
    "Vocabulary",
    "check_range",
    "derive_process",
    "normalize_process",
    "parse_quantity",
    "process_param",
    "quantity_def",
    "to_canonical",
]

#: 0 K in the canonical temperature unit (°C).
ABSOLUTE_ZERO_C = -273.15

Direction = Literal["max", "min"]
#: Directions an objective can have ("target" takes a value: closest to it is best).
DIRECTIONS = ("max", "min", "target")


# --- quantities --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantityDef:
    """A quantity matdb stores: canonical unit, physical range, label and default direction.

    Attributes:
        name: identifier in files, queries and exports ("plqy").
        unit: canonical unit in pint syntax ("" = dimensionless).
        label: display label ("PLQY").
        min, max: physical bounds in the canonical unit (None = unbounded).
        categorical: a text-valued finding (phases present, colour, ...).
        description: free text.
        direction: the default direction as a screening objective ("max"/"min"), if it has one.
        precision: known measurement precision (one standard uncertainty, canonical unit) if the
            lab declares one; used as the surrogate's noise floor.
    """

    name: str
    unit: str
    label: str
    min: float | None = None
    max: float | None = None
    categorical: bool = False
    description: str = ""
    direction: Direction | None = None
    precision: float | None = None

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({display_unit(self.unit)})" if self.unit else self.label

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "label": self.label, "min": self.min, "max": self.max,
                "categorical": self.categorical, "description": self.description, "direction": self.direction,
                "precision": self.precision}


def _q(name: str, unit: str, label: str, lo: float | None = None, hi: float | None = None, desc: str = "",
       direction: Direction | None = None) -> QuantityDef:
    return QuantityDef(name, unit, label, lo, hi, False, desc, direction)


def _cat(name: str, label: str, desc: str = "") -> QuantityDef:
    return QuantityDef(name, "", label, categorical=True, description=desc)


_T0 = ABSOLUTE_ZERO_C

#: The built-in quantities, by name.
QUANTITIES: dict[str, QuantityDef] = {
    q.name: q
    for q in [
        # optical
        _q("plqy", "percent", "PLQY", 0, 100, "photoluminescence quantum yield", "max"),
        _q("absorption_edge", "nm", "Absorption edge", 0),
        _q("absorption_onset", "nm", "Absorption onset", 0),
        _q("pl_peak", "nm", "PL peak", 0),
        _q("pl_fwhm", "nm", "PL FWHM", 0),
        _q("pl_intensity", "counts", "PL intensity", 0, None, "", "max"),
        _q("pl_integrated_intensity", "counts", "Integrated PL intensity", 0, None, "", "max"),
        _q("relative_pl_intensity", "", "Relative PL intensity", 0, None, "", "max"),
        _q("pl_enhancement", "", "PL enhancement factor", 0, None, "", "max"),
        _q("pl_retention", "", "PL retention I_end/I_max", 0, None, "", "max"),
        _q("pl_lifetime", "ns", "PL lifetime", 0),
        _q("bandgap", "eV", "Band gap", 0),
        _q("bandgap_shift", "eV", "Band-gap shift"),
        _q("edge_blue_shift", "nm", "Edge blue-shift after maximum", None, None, "", "min"),
        _q("urbach_energy", "meV", "Urbach energy", 0, None, "", "min"),
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
        _q("stability_time", "h", "Stable for", 0, None, "", "max"),
        # structure
        _q("crystallite_size", "nm", "Crystallite size", 0),
        _q("particle_size", "nm", "Particle size", 0),
        _q("xrd_peak", "degree", "pXRD peak 2θ", 0, 180),
        _q("lattice_parameter", "angstrom", "Lattice parameter", 0),
        _q("cell_volume", "angstrom**3", "Cell volume", 0),
        _q("phase_fraction", "percent", "Phase fraction", 0, 100),
        _q("d_spacing", "angstrom", "d-spacing", 0),
        _q("interatomic_distance", "angstrom", "Interatomic distance", 0),
        _q("rspace_peak_position", "angstrom", "R-space peak position (phase-uncorrected)", 0, None,
           "position of a peak of the Fourier-transformed EXAFS signal; not an interatomic distance "
           "(no phase-shift correction)"),
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
        _q("energy_loss", "eV", "Energy loss", 0, None, "EELS edge or peak energy"),
        # thermal (absolute temperatures: >= 0 K)
        _q("glass_transition_temperature", "degC", "Glass transition T_g", _T0),
        _q("melting_temperature", "degC", "Melting temperature T_m", _T0),
        _q("phase_transition_temperature", "degC", "Phase-transition temperature", _T0),
        _q("decomposition_temperature", "degC", "Decomposition temperature", _T0),
        _q("temperature", "degC", "Temperature", _T0),
        _q("mass_loss", "percent", "Mass loss", 0, 100),
        # energies and transport
        _q("migration_barrier", "eV", "Migration barrier", 0),
        _q("activation_energy", "eV", "Activation energy", 0),
        _q("energy", "eV", "Energy"),
        _q("relative_energy", "eV", "Relative energy"),
        _q("formation_energy", "eV", "Formation energy"),
        _q("mobile_ion_concentration", "1/cm**3", "Mobile-ion concentration", 0),
        _q("trap_density", "1/cm**3", "Trap density", 0, None, "", "min"),
        _q("diffusion_coefficient", "cm**2/s", "Diffusion coefficient", 0),
        _q("conductivity", "S/cm", "Conductivity", 0),
        _q("capacitance", "F", "Capacitance"),
        _q("time_constant", "s", "Time constant", 0),
        _q("photoconductivity", "S/cm", "Photoconductivity"),
        _q("mobility", "cm**2/V/s", "Mobility", 0, None, "", "max"),
        _q("carrier_lifetime", "ns", "Carrier lifetime", 0, None, "", "max"),
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
        _q("fraction", "", "Fraction", 0, 1),
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


class UnknownQuantityError(UnitError):
    """A quantity name that is neither built in nor declared."""


def quantity_def(name: str, extra: Mapping[str, QuantityDef] | None = None) -> QuantityDef:
    """The definition of ``name`` among the built-ins and ``extra`` (user-declared) quantities."""
    if extra and name in extra:
        return extra[name]
    try:
        return QUANTITIES[name]
    except KeyError:
        raise UnknownQuantityError(
            f"unknown quantity '{name}'; use one of the registered quantities "
            f"(matdb info --quantities) or declare it under 'quantities:'",
            "quantity",
        ) from None


def check_range(q: QuantityDef, value: float, what: str | None = None) -> None:
    """Raise :class:`~matdb.units.UnitError` when ``value`` (canonical unit) is outside the
    quantity's physical bounds."""
    eps = 1e-9 * max(1.0, abs(value))
    name = what or q.name
    if q.min is not None and value < q.min - eps:
        bound = "0 K" if q.unit == "degC" and q.min == ABSOLUTE_ZERO_C else f"{q.min:g} {display_unit(q.unit)}"
        raise UnitError(
            f"{name} = {value:g} {display_unit(q.unit)} is below the physical minimum {bound}", "value"
        )
    if q.max is not None and value > q.max + eps:
        raise UnitError(
            f"{name} = {value:g} {display_unit(q.unit)} is above the physical maximum {q.max:g} "
            f"{display_unit(q.unit)}", "value"
        )


def to_canonical(quantity: str, value: Any, unit: str | None,
                 extra: Mapping[str, QuantityDef] | None = None) -> tuple[float, str]:
    """Convert a value of ``quantity`` given in ``unit`` to the quantity's canonical unit.

    Raises:
        UnitError: unknown quantity or unit, a unit of the wrong dimension, a value that is not
            finite, or a value outside the physical bounds (e.g. PLQY > 100 %, T < 0 K).
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
        out = units.convert(v, unit, q.unit)
    except UnitError as exc:
        raise UnitError(f"{quantity}: {exc} (expected a unit of {display_unit(q.unit) or 'dimensionless'})",
                        "unit") from None
    check_range(q, out)
    return out, q.unit


def parse_quantity(quantity: str, spec: Any, extra: Mapping[str, QuantityDef] | None = None) -> tuple[float, str]:
    """Read "275 degC", {"value": 275, "unit": "degC"} or a bare number as ``quantity``."""
    if isinstance(spec, Mapping):
        return to_canonical(quantity, spec.get("value"), spec.get("unit"), extra)
    if isinstance(spec, str):
        v, u = units.parse_quantity_text(spec)
        return to_canonical(quantity, v, u, extra)
    return to_canonical(quantity, spec, None, extra)


# --- process parameters ------------------------------------------------------------------------

Aggregate = Literal["sum", "last", "last_or_synthesis", "hottest", "hottest_duration", "any", "sum_of_step_max",
                    "synthesis"]

#: Default lab resolution of a composition fraction in proposals (what a balance weighs reliably
#: for a few-hundred-mg batch is finer; 0.01 is the resolution labs report compositions at).
FRACTION_RESOLUTION = 0.01


@dataclass(frozen=True)
class ProcessParam:
    """A process parameter of a sample, derived from its synthesis steps or given directly.

    Attributes:
        name: stored name, with its unit ("milling_time_min").
        base: the name users may also write, with any unit ("milling_time": "2 h").
        unit: canonical unit (pint syntax).
        label: display label.
        min, max: physical bounds in ``unit``.
        resolution: the lab's resolution for proposals (a proposal is rounded to it).
        categorical: a text value (atmospheres) or a flag (quenched).
        steps: step kinds the parameter derives from.
        field: the step field that is aggregated (duration_min, temperature_c, frequency_hz, ...).
        aggregate: how the steps' values combine ("sum": total; "last": the latest value;
            "last_or_synthesis": the latest value, else the synthesis' own setting (a mill's
            frequency applies to milling steps that state none); "hottest": the highest
            temperature; "hottest_duration": the duration of the hottest step; "any": True if
            such a step exists; "sum_of_step_max": per step the largest reagent mol %, summed
            over steps; "synthesis": a setting of the synthesis itself).
        scale: factor from the step field's unit to ``unit`` (minutes -> hours: 1/60).
    """

    name: str
    base: str
    unit: str
    label: str
    min: float | None = 0.0
    max: float | None = None
    resolution: float | None = None
    categorical: bool = False
    steps: tuple[str, ...] = ()
    field: str = ""
    aggregate: Aggregate = "sum"
    scale: float = 1.0

    @property
    def quantity(self) -> QuantityDef:
        """This parameter as a quantity (bounds and unit) for range checks and labels."""
        return QuantityDef(self.name, self.unit, self.label, self.min, self.max, self.categorical)

    @property
    def axis_label(self) -> str:
        u = "rpm" if self.unit == "revolutions/minute" else display_unit(self.unit)
        return f"{self.label} ({u})" if u else self.label


_MILL = ("mill", "grind")
_HEAT = ("sinter", "anneal", "heat")

PROCESS_PARAMS: dict[str, ProcessParam] = {
    p.name: p
    for p in [
        ProcessParam("milling_time_min", "milling_time", "min", "Milling time", 0, None, 1.0,
                     steps=_MILL, field="duration_min", aggregate="sum"),
        ProcessParam("milling_frequency_hz", "milling_frequency", "Hz", "Milling frequency", 0, None, 1.0,
                     steps=_MILL, field="frequency_hz", aggregate="last_or_synthesis"),
        ProcessParam("milling_speed_rpm", "milling_speed", "revolutions/minute", "Milling speed", 0, None, 10.0,
                     steps=_MILL, field="frequency_rpm", aggregate="last_or_synthesis"),
        ProcessParam("aging_time_h", "aging_time", "h", "Aging/storage time", 0, None, 1.0,
                     steps=("age", "store"), field="duration_min", aggregate="sum", scale=1 / 60),
        ProcessParam("aging_atmosphere", "aging_atmosphere", "", "Aging atmosphere", None, None, None, True,
                     steps=("age", "store"), field="atmosphere", aggregate="last"),
        ProcessParam("additive_mol_pct", "additive", "percent", "Additive", 0, None, 1.0,
                     steps=("add_reagent",), field="mol_pct", aggregate="sum_of_step_max"),
        ProcessParam("sintering_temperature_C", "sintering_temperature", "degC", "Sintering temperature",
                     ABSOLUTE_ZERO_C, None, 5.0, steps=_HEAT, field="temperature_c", aggregate="hottest"),
        ProcessParam("sintering_time_min", "sintering_time", "min", "Sintering time", 0, None, 1.0,
                     steps=_HEAT, field="duration_min", aggregate="hottest_duration"),
        ProcessParam("quenched", "quenched", "", "Quenched", None, None, None, True,
                     steps=("quench",), aggregate="any"),
        ProcessParam("illumination_time_min", "illumination_time", "min", "Illumination time", 0, None, 1.0,
                     steps=("illuminate",), field="duration_min", aggregate="sum"),
        ProcessParam("atmosphere", "atmosphere", "", "Milling atmosphere", None, None, None, True,
                     aggregate="synthesis", field="atmosphere"),
    ]
}
_BY_BASE = {p.base: p for p in PROCESS_PARAMS.values()}
#: Headers of spreadsheets often lose their case ("sintering_temperature_c").
_BY_LOWER = {k.lower(): p for k, p in {**PROCESS_PARAMS, **_BY_BASE}.items()}


class ProcessError(ValueError):
    """An unknown or impossible process parameter; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def process_param(key: str) -> ProcessParam | None:
    """A process parameter by stored name, base name or either in any letter case."""
    return PROCESS_PARAMS.get(key) or _BY_BASE.get(key) or _BY_LOWER.get(str(key).lower())


def normalize_process(process: Mapping[str, Any]) -> dict[str, Any]:
    """Convert user-given process entries ("aging_time": "63 h") to stored names and units,
    checking the physical bounds."""
    out: dict[str, Any] = {}
    for key, val in process.items():
        p = process_param(key)
        if p is None:
            known = ", ".join(PROCESS_PARAMS)
            raise ProcessError(f"unknown process parameter '{key}' (known: {known})", f"process.{key}")
        if p.categorical:
            out[p.name] = val if isinstance(val, bool) else str(val)
            continue
        try:
            if isinstance(val, Mapping):
                v, u = float(val["value"]), str(val.get("unit", p.unit))
            elif isinstance(val, str):
                v, u = units.parse_quantity_text(val)
                u = u or p.unit
            else:
                v, u = float(val), p.unit
            if not math.isfinite(v):
                raise UnitError("is not a finite number")
            v = units.convert(v, u, p.unit)
            check_range(p.quantity, v, f"process parameter '{key}'")
        except (UnitError, KeyError, TypeError, ValueError) as exc:
            msg = str(exc)
            if not msg.startswith("process parameter"):
                msg = f"process parameter '{key}': {msg}"
            raise ProcessError(msg, f"process.{key}") from None
        out[p.name] = v
    return out


def _rule_value(p: ProcessParam, steps: list[Mapping[str, Any]], synthesis: Mapping[str, Any]) -> Any:
    if p.aggregate == "synthesis":
        return synthesis.get(p.field) or None
    mine = [s for s in steps if s["kind"] in p.steps]
    if not mine:
        return None
    if p.aggregate == "any":
        return True
    if p.aggregate == "sum_of_step_max":
        per_step = [max(r["mol_pct"] for r in s.get("reagents", []) if r.get("mol_pct") is not None)
                    for s in mine if any(r.get("mol_pct") is not None for r in s.get("reagents", []))]
        return float(sum(per_step)) if per_step else None
    if p.aggregate in ("hottest", "hottest_duration"):
        heated = [s for s in mine if s.get("temperature_c") is not None]
        if not heated:
            return None
        hottest = max(heated, key=lambda s: s["temperature_c"])
        v = hottest.get(p.field)
        return None if v is None else (float(v) * p.scale if not p.categorical else v)
    values = [s.get(p.field) for s in mine]
    if p.aggregate in ("last", "last_or_synthesis"):
        known = [v for v in values if v]
        if known:
            return known[-1]
        return (synthesis.get(p.field) or None) if p.aggregate == "last_or_synthesis" else None
    # "sum": a sum with an unknown term is unknown - left out rather than counted as zero
    if any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None)) * p.scale


def derive_process(steps: Iterable[Mapping[str, Any]], synthesis: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Process parameters after the given (canonical) steps, by the rules of :data:`PROCESS_PARAMS`.

    Args:
        steps: dicts with kind, duration_min, temperature_c, atmosphere, frequency_hz,
            frequency_rpm and reagents (each with mol_pct), in order.
        synthesis: the synthesis' own settings (frequency_hz, frequency_rpm of its mill,
            atmosphere), used where a step does not state its own.
    """
    steps = list(steps)
    syn = dict(synthesis or {})
    out: dict[str, Any] = {}
    for p in PROCESS_PARAMS.values():
        v = _rule_value(p, steps, syn)
        if v is not None:
            out[p.name] = v
    return out


# --- techniques, steps, provenance, arrays, outcomes -----------------------------------------------

#: Measurement techniques (and calculations): id -> label.
TECHNIQUES: dict[str, str] = {
    "tlis_reflectance": "TLIS reflectance",
    "tlis_pl": "TLIS PL",
    "plqy": "PLQY",
    "pl": "PL spectroscopy",
    "trpl": "Time-resolved PL",
    "cl": "Cathodoluminescence",
    "pxrd": "pXRD",
    "mas_nmr": "MAS NMR",
    "xps": "XPS",
    "tem": "TEM",
    "hrtem": "HRTEM",
    "stem_eds": "STEM-EDS",
    "eels": "EELS",
    "sem": "SEM",
    "eds": "EDS",
    "dsc": "DSC",
    "tga": "TGA",
    "saxs": "SAXS",
    "waxs": "WAXS",
    "exafs": "EXAFS",
    "xanes": "XANES",
    "pdf": "Pair distribution function",
    "thz": "THz spectroscopy",
    "tid": "Transient ion drift",
    "tas": "Transient absorption",
    "thermal_admittance": "Thermal admittance spectroscopy",
    "uv_vis": "UV-vis",
    "ftir": "FTIR",
    "raman": "Raman",
    "impedance": "Impedance spectroscopy",
    "jv": "J-V",
    "dft": "DFT calculation",
    "xtb": "xTB calculation",
    "md": "Molecular dynamics",
    "visual": "Visual observation",
    "other": "Other",
}

#: Ordered synthesis step kinds. "melt" is a melt (e.g. a glass's melt-quench), not a sintering step.
STEP_KINDS: tuple[str, ...] = ("mill", "add_reagent", "mix", "age", "store", "sinter", "anneal", "heat", "melt",
                               "quench", "cool", "grind", "illuminate", "other")

#: Where a value comes from.
PROVENANCES: tuple[str, ...] = ("literature", "measured", "simulated")
#: What models learn from unless simulated data are asked for explicitly.
TRAINING_PROVENANCES: tuple[str, ...] = ("literature", "measured")
#: A record's provenance when it does not give one, from the kind of its source.
SOURCE_PROVENANCE: dict[str, str] = {"publication": "literature", "database": "literature",
                                     "simulation": "simulated", "notebook": "measured", "user": "measured"}
SOURCE_KINDS: tuple[str, ...] = tuple(SOURCE_PROVENANCE)


def provenance_of_source(kind: str) -> str:
    return SOURCE_PROVENANCE.get(kind, "measured")


@dataclass(frozen=True)
class ArrayKind:
    """A kind of stored array: its axes (name, default unit) in the order of the values' dimensions."""

    name: str
    label: str
    axes: tuple[tuple[str, str], ...]
    value_unit: str = ""
    technique: str | None = None

    @property
    def is_run(self) -> bool:
        """A time-lapsed run (time x wavelength)."""
        return len(self.axes) == 2


ARRAY_KINDS: dict[str, ArrayKind] = {
    a.name: a
    for a in [
        ArrayKind("tlis_reflectance", "TLIS reflectance run", (("time", "min"), ("wavelength", "nm")), "counts",
                  "tlis_reflectance"),
        ArrayKind("tlis_pl", "TLIS PL run", (("time", "min"), ("wavelength", "nm")), "counts", "tlis_pl"),
        ArrayKind("reflectance_reference", "Reflectance reference", (("wavelength", "nm"),), "counts"),
        ArrayKind("pl_spectrum", "PL spectrum", (("wavelength", "nm"),), "counts", "pl"),
        ArrayKind("absorption_spectrum", "Absorption spectrum", (("wavelength", "nm"),), "", "uv_vis"),
        ArrayKind("pxrd", "pXRD pattern", (("two_theta", "degree"),), "counts", "pxrd"),
        ArrayKind("xps_spectrum", "XPS spectrum", (("binding_energy", "eV"),), "counts", "xps"),
        ArrayKind("nmr_spectrum", "NMR spectrum", (("shift", "ppm_shift"),), "", "mas_nmr"),
        ArrayKind("dsc_curve", "DSC curve", (("temperature", "degC"),), "", "dsc"),
        ArrayKind("generic", "Array", (("x", ""),), ""),
    ]
}
def spectrum_axis(kind: str) -> tuple[str, str]:
    """(axis name, default unit) of a 1-D array kind; ("x", "") for unknown kinds."""
    a = ARRAY_KINDS.get(kind)
    return a.axes[-1] if a is not None else ("x", "")


#: Derived per-time feature series of an analysed run (written by ``matdb analyze``).
FEATURE_SERIES_KIND = "feature_series"
#: TLIS acquisition modes -> array kind.
TLIS_MODES: dict[str, str] = {"reflectance": "tlis_reflectance", "pl": "tlis_pl"}

#: Outcome of a synthesis: "ok" is a feasible sample; every other value is a failed synthesis.
OUTCOMES: dict[str, str] = {
    "ok": "the intended perovskite phase formed",
    "no_perovskite": "no perovskite formed (precursors remain)",
    "wrong_phase": "a different phase formed (e.g. δ-FAPbI3 instead of α)",
    "mixed_phase": "a mixture of the intended and other phases",
    "decomposed": "the product decomposed",
    "amorphous": "the product is amorphous",
    "failed": "the synthesis failed for another reason (see the note)",
}
FEASIBLE_OUTCOME = "ok"


def is_feasible(outcome: str | None) -> bool:
    """A sample without a recorded outcome counts as feasible (the literature reports what formed)."""
    return outcome is None or outcome == FEASIBLE_OUTCOME


# --- run-time vocabulary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """The built-in vocabulary plus the quantities a database's users declared."""

    declared: Mapping[str, QuantityDef] = field(default_factory=dict)

    @property
    def quantities(self) -> dict[str, QuantityDef]:
        return {**QUANTITIES, **self.declared}

    def quantity(self, name: str) -> QuantityDef:
        return quantity_def(name, self.declared)

    def is_quantity(self, name: str) -> bool:
        return name in QUANTITIES or name in self.declared

    def numeric_quantities(self) -> list[str]:
        return [q.name for q in self.quantities.values() if not q.categorical]

    def with_quantities(self, extra: Mapping[str, QuantityDef]) -> Vocabulary:
        return replace(self, declared={**self.declared, **extra})

    def label(self, name: str) -> str:
        """Axis label of a quantity or process parameter (the name itself when unknown)."""
        if self.is_quantity(name):
            return self.quantity(name).axis_label
        p = process_param(name)
        return p.axis_label if p is not None else name


# --- identifiers --------------------------------------------------------------------------------

#: Longest sample, synthesis, measurement, series or campaign id: the longest file name ext4, NTFS
#: and APFS allow, so an id can always name a file (plots, exports).
ID_MAX_LENGTH = 255

#: Characters an id may contain besides letters and digits (any script) and ``_``.
ID_PUNCTUATION = "-.:+/()[]#%,=@~ "

#: Characters an id may not start with: spreadsheets evaluate a cell starting with ``= + - @``
#: (OWASP, CSV injection), and ``.``/``/``/space start hidden files, absolute paths, invisible text.
ID_BAD_START = "=+-@.:/ ~"

_ID_RE = re.compile(r"\w[\w" + re.escape(ID_PUNCTUATION) + r"]*")


class IdentifierError(ValueError):
    """An id outside the safe character set; ``field`` names the id field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def check_identifier(value: str, what: str = "id") -> str:
    """``value`` if it is a safe identifier, else IdentifierError saying what is wrong.

    Safe: 1 to :data:`ID_MAX_LENGTH` characters; letters and digits of any script, ``_`` and
    ``- . : + / ( ) [ ] # % , = @ ~`` and inner spaces; the first character a letter, digit or ``_``
    (never ``= + - @``, which spreadsheets execute as formulas); no control characters, quotes,
    ``| ; ! $ & * ? < > \\``, tabs or line breaks; no trailing space.
    """
    if not isinstance(value, str) or not value:
        raise IdentifierError(f"{what} must be non-empty text")
    if len(value) > ID_MAX_LENGTH:
        raise IdentifierError(f"{what} has {len(value)} characters; at most {ID_MAX_LENGTH} are allowed")
    if value[0] in ID_BAD_START or not (value[0].isalnum() or value[0] == "_"):
        raise IdentifierError(f"{what} {_show(value)} must start with a letter, digit or '_' (a leading "
                              f"{_show(value[0])} is not allowed: spreadsheets treat '=', '+', '-', '@' as formulas)")
    if value != value.rstrip():
        raise IdentifierError(f"{what} {_show(value)} ends with a space")
    if not _ID_RE.fullmatch(value):
        bad = next(c for c in value if not (c.isalnum() or c == "_" or c in ID_PUNCTUATION))
        raise IdentifierError(f"{what} {_show(value)} contains {_show(bad)}; ids may contain letters, digits, "
                              f"'_' and {' '.join(ID_PUNCTUATION.strip())} and spaces")
    return value


def safe_id_part(text: str) -> str:
    """``text`` (a file name) with every character an id may not contain replaced by ``_``."""
    out = "".join(c if (c.isalnum() or c == "_" or c in ID_PUNCTUATION) and c.isprintable() else "_" for c in text)
    return out.strip() or "_"


def _show(s: str) -> str:
    """A value for an error message: quoted, control characters escaped, shortened."""
    r = repr(s[:60] + ("..." if len(s) > 60 else ""))
    return r
