"""Process parameters of a sample, derived from its ordered synthesis steps.

A sample is the product at one point of a synthesis; its process parameters (the columns users
filter on and models learn from) follow from the steps completed so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matdb import units


@dataclass(frozen=True)
class ProcessParam:
    """A process parameter: stored name (with unit suffix), the base name users may write, unit."""

    name: str
    base: str
    unit: str
    label: str
    categorical: bool = False


PROCESS_PARAMS: dict[str, ProcessParam] = {
    p.name: p
    for p in [
        ProcessParam("milling_time_min", "milling_time", "min", "Milling time"),
        ProcessParam("milling_frequency_hz", "milling_frequency", "Hz", "Milling frequency"),
        ProcessParam("milling_speed_rpm", "milling_speed", "revolutions/minute", "Milling speed"),
        ProcessParam("aging_time_h", "aging_time", "h", "Aging/storage time"),
        ProcessParam("aging_atmosphere", "aging_atmosphere", "", "Aging atmosphere", True),
        ProcessParam("additive_mol_pct", "additive", "percent", "Additive"),
        ProcessParam("sintering_temperature_C", "sintering_temperature", "degC", "Sintering temperature"),
        ProcessParam("sintering_time_min", "sintering_time", "min", "Sintering time"),
        ProcessParam("quenched", "quenched", "", "Quenched", True),
        ProcessParam("illumination_time_min", "illumination_time", "min", "Illumination time"),
        ProcessParam("atmosphere", "atmosphere", "", "Milling atmosphere", True),
    ]
}
_BY_BASE = {p.base: p for p in PROCESS_PARAMS.values()}
#: Headers of spreadsheets often lose their case ("sintering_temperature_c").
_BY_LOWER = {k.lower(): p for k, p in {**PROCESS_PARAMS, **_BY_BASE}.items()}


class ProcessError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def normalize_process(process: dict[str, Any]) -> dict[str, Any]:
    """Convert user-given process entries ("aging_time": "63 h") to stored names and units."""
    out: dict[str, Any] = {}
    for key, val in process.items():
        p = PROCESS_PARAMS.get(key) or _BY_BASE.get(key) or _BY_LOWER.get(str(key).lower())
        if p is None:
            known = ", ".join(PROCESS_PARAMS)
            raise ProcessError(f"unknown process parameter '{key}' (known: {known})", f"process.{key}")
        if p.categorical:
            out[p.name] = val if isinstance(val, bool) else str(val)
            continue
        try:
            if isinstance(val, dict):
                v, u = float(val["value"]), str(val.get("unit", p.unit))
            elif isinstance(val, str):
                v, u = units.parse_quantity_text(val)
                u = u or p.unit
            else:
                v, u = float(val), p.unit
            v = units.convert(v, u, p.unit)
        except (units.UnitError, KeyError, TypeError, ValueError) as exc:
            raise ProcessError(f"process parameter '{key}': {exc}", f"process.{key}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise ProcessError(f"process parameter '{key}' is not a finite number", f"process.{key}")
        if v < 0 and p.name != "sintering_temperature_C":
            raise ProcessError(f"process parameter '{key}' is negative ({v:g})", f"process.{key}")
        out[p.name] = v
    return out


def derive_process(steps: list[dict[str, Any]], mill: dict[str, Any] | None,
                   atmosphere: str | None) -> dict[str, Any]:
    """Process parameters after the given (already canonical) steps.

    Steps are dicts with kind, duration_min, temperature_c, atmosphere, frequency_hz,
    frequency_rpm and reagents (each with mol_pct).
    """
    out: dict[str, Any] = {}
    milling = [s for s in steps if s["kind"] in ("mill", "grind")]
    if milling:
        # a sum with an unknown term is unknown: leave it out rather than count it as zero
        if all(s["duration_min"] is not None for s in milling):
            out["milling_time_min"] = float(sum(s["duration_min"] for s in milling))
        freqs = [s["frequency_hz"] for s in milling if s.get("frequency_hz")]
        rpms = [s["frequency_rpm"] for s in milling if s.get("frequency_rpm")]
        if freqs or (mill or {}).get("frequency_hz"):
            out["milling_frequency_hz"] = (freqs or [mill["frequency_hz"]])[-1]  # type: ignore[index]
        if rpms or (mill or {}).get("frequency_rpm"):
            out["milling_speed_rpm"] = (rpms or [mill["frequency_rpm"]])[-1]  # type: ignore[index]
    aging = [s for s in steps if s["kind"] in ("age", "store")]
    if aging:
        if all(s["duration_min"] is not None for s in aging):
            out["aging_time_h"] = float(sum(s["duration_min"] for s in aging)) / 60.0
        atm = [s["atmosphere"] for s in aging if s.get("atmosphere")]
        if atm:
            out["aging_atmosphere"] = atm[-1]
    # one addition of "1:1 FACl/SnCl2 at 80 mol%" is 80 mol% of additive, not 160: per step the
    # largest mol_pct of its reagents counts; successive additions add up
    per_step = [max(r["mol_pct"] for r in s["reagents"] if r.get("mol_pct") is not None)
                for s in steps if s["kind"] == "add_reagent"
                and any(r.get("mol_pct") is not None for r in s.get("reagents", []))]
    if per_step:
        out["additive_mol_pct"] = float(sum(per_step))
    heat = [s for s in steps if s["kind"] in ("sinter", "anneal", "heat") and s.get("temperature_c") is not None]
    if heat:
        hottest = max(heat, key=lambda s: s["temperature_c"])
        out["sintering_temperature_C"] = hottest["temperature_c"]
        if hottest.get("duration_min") is not None:
            out["sintering_time_min"] = hottest["duration_min"]
    if any(s["kind"] == "quench" for s in steps):
        out["quenched"] = True
    illum = [s for s in steps if s["kind"] == "illuminate"]
    if illum and all(s["duration_min"] is not None for s in illum):
        out["illumination_time_min"] = float(sum(s["duration_min"] for s in illum))
    if atmosphere:
        out["atmosphere"] = atmosphere
    return out
