"""TLIS simulator and the hidden "true" property function of the simulated lab.

Everything produced here is SIMULATED (provenance "simulated"), not literature data. The
physics and the numbers follow the seed papers where they give them; material constants (band
gaps, the FAPbI3 TLIS edge, the CsPbI3 emission peak) come from the cited table
:mod:`matdb.constants` that the descriptors read too; every other number is a labelled simulator
assumption in :data:`CONSTANTS`.

Reflectance model (per time point t): the absorber's Kubelka-Munk function
``F(E, t) = F_base + amp(t) / (1 + exp(-(E - E_edge(t)) / E_U))`` — a sigmoid in photon energy E
whose low-energy side is an exponential Urbach tail with energy E_U — is turned into a diffuse
reflectance ``R = 1 + F - sqrt(F^2 + 2F)`` (inverse Kubelka-Munk, infinitely thick layer). The
edge moves from the precursors' ~540 nm to the composition's steady-state edge with JMAK
conversion ``alpha(t) = 1 - exp(-(k (t - t0))^n)``; k is chosen so that alpha = 0.98 (the 2 %
steady-state tolerance of :mod:`screening.kinetics`) at the paper's steady-state time.
Near-pure FAPbI3 then converts alpha -> delta after the maximum (edge blue-shift + absorption
loss). Sample counts = R x PTFE reference (lamp shape x detector response), with Poisson shot
noise and Gaussian read noise, clipped at the detector maximum.

PL model: one Gaussian peak in photon energy (counts per 1-nm channel include the
``hc/lambda^2`` Jacobian) whose height follows JMAK growth, then decays so that the retention
over the family's stability window equals the hidden ``stability``; its amplitude scales with
the hidden ``plqy`` and the integration time. A weak residual laser line (370 nm) and a flat
dark level are added.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from matdb.constants import constant
from matdb.families import get_family
from screening.kinetics import jmak
from screening.spectra import DEFAULT_DETECTOR_MAX, HC_EV_NM, inverse_kubelka_munk

PAPER_TLIS = "doi:10.1038/s41467-025-56571-w"  # Xiao et al., Nat. Commun. 2025
PAPER_ZIF = "doi:10.1038/s41467-023-43247-6"  # Li et al., Nat. Commun. 2023
PAPER_FAPBIBR = "doi:10.1039/d5ta10296k"  # Xiang et al., J. Mater. Chem. A 2026
ASSUMPTION = "simulator assumption"


ArrayLikeF = Any  # a float or a numpy array


class SimulationError(ValueError):
    """A simulation request that cannot be honoured; the message names the field."""


def _ref(name: str) -> tuple[float, str, str]:
    """(value, unit, citation) of a reference constant of :mod:`matdb.constants`."""
    c = constant(name)
    return c.value, c.unit, c.source


#: The apparent TLIS (Kubelka-Munk) edge of FAPbI3 during milling sits above its band gap; the simulated
#: edge is the band gap plus this offset (derived from two cited values, assumed composition-independent).
_TLIS_EDGE_OFFSET_EV = HC_EV_NM / constant("FAPbI3_tlis_edge").value - constant("FAPbI3_bandgap").value

#: Every number the simulator uses: name -> (value, unit, source with locator, or assumption).
CONSTANTS: dict[str, tuple[Any, str, str]] = {
    "precursor_edge_nm": (
        540.0,
        "nm",
        f"{PAPER_TLIS}, Results §1 ('absorption edge of ~540 nm at the beginning')",
    ),
    "FAPbI3_edge_nm": _ref("FAPbI3_tlis_edge"),
    "FAPbI3_bandgap_eV": _ref("FAPbI3_bandgap"),
    "tlis_edge_offset_eV": (
        _TLIS_EDGE_OFFSET_EV,
        "eV",
        "derived: hc / FAPbI3 TLIS edge (825 nm, doi:10.1038/s41467-025-56571-w, Fig. 2a) minus the FAPbI3 band "
        "gap (doi:10.1039/c3ee43822h); simulator assumption that the offset is the same for every composition",
    ),
    "FAPbI3_time_to_max_min": (48.0, "min", f"{PAPER_TLIS}, Results §1 / Fig. 2a"),
    "FAPbI3_decay_onset_min": (53.0, "min", f"{PAPER_TLIS}, Results §1 ('at around 53 min')"),
    "FAMA_steady_state_min": (
        {0.8: 59.0, 0.6: 73.0, 0.4: 60.0, 0.2: 78.0, 0.0: 80.0},
        "min",
        f"{PAPER_TLIS}, Results §2 (Fig. 2b, Supplementary Fig. 2a-c, Fig. 2c)",
    ),
    "MAPbI3_bandgap_eV": _ref("MAPbI3_bandgap"),
    "FAPbBr3_bandgap_eV": _ref("FAPbBr3_bandgap"),
    "FASnI3_bandgap_eV": _ref("FASnI3_bandgap"),
    "FASnI3_pl_nm": (870.0, "nm", f"{PAPER_TLIS}, Results §4 / Fig. 6a"),
    "FASnI3_pl_max_min": (12.0, "min", f"{PAPER_TLIS}, Results §4 / Fig. 6a"),
    "FASnI2.5Br0.5_pl_nm": (827.0, "nm", f"{PAPER_TLIS}, Results §4 / Fig. 6b"),
    "FASnI2.5Br0.5_pl_max_min": (7.0, "min", f"{PAPER_TLIS}, Results §4 / Fig. 6b"),
    "FASnI2.5Br0.5_pl_ratio": (
        5.0,
        "",
        f"{PAPER_TLIS}, Results §4 ('five times as high as FASnI3')",
    ),
    "FACl_SnCl2_enhancement": (
        {40: 1.05, 60: 1.19, 80: 1.77, 100: 1.32},
        "",
        f"{PAPER_TLIS}, Results §4 / Fig. 7a, Supplementary Fig. 20",
    ),
    "CsNaAgBiCl6_pl_nm": (680.0, "nm", f"{PAPER_TLIS}, Results §3 / Fig. 4a"),
    "CsNa0.9_pl_fold": (106.0, "", f"{PAPER_TLIS}, Results §3 ('106-fold increment', 72 h total)"),
    "CsNa0.95_pl_fold": (
        75.0,
        "",
        f"{PAPER_TLIS}, Results §3 (75 times, 195 h, Supplementary Fig. 16)",
    ),
    "CsNa0.9_plqy_pct": (
        {"#1 (6 h milling)": 0.74, "#2 (9 h milling + 63 h aging)": 17.3},
        "%",
        f"{PAPER_TLIS}, Results §3",
    ),
    "Cs2AgBiCl6_bandgap_eV": (
        constant("Cs2AgBiCl6_bandgap").value,
        "eV",
        constant("Cs2AgBiCl6_bandgap").source
        + "; simulator assumption: used for every y of Cs2Na_yAg_{1-y}BiCl6 (no checked Cs2NaBiCl6 value)",
    ),
    "CsPbI3_pl_nm": (
        constant("CsPbI3_agZIF62_cl_peak").value,
        "nm",
        ASSUMPTION + ": no room-temperature PL peak is printed, so the simulated PL peak is placed at the "
        "cathodoluminescence peak measured at ~150 K, " + constant("CsPbI3_agZIF62_cl_peak").source,
    ),
    "CsPbI3_bandgap_eV": (1.73, "eV", ASSUMPTION + " (gamma-CsPbI3)"),
    "ZIF_best_plqy_pct": (81.3, "%", f"{PAPER_ZIF}, Fig. 2a (X = 0.05, 275 °C)"),
    "ZIF_T_opt_anchors": (
        {0.01: 300.0, 0.05: 275.0, 0.25: 275.0, 0.85: 225.0},
        "degC",
        f"{PAPER_ZIF}, Results 'Stable optical performance' (PL maxima vs sintering T)",
    ),
    "FAPbIBr_segregation_threshold": (0.2, "", f"{PAPER_FAPBIBR}, Fig. 4b (~20 % Br)"),
    "pl_excitation_nm": (370.0, "nm", f"{PAPER_TLIS}, Methods (PL mode laser 370 nm)"),
    "pl_integration_ms_Pb": (50.0, "ms", f"{PAPER_TLIS}, Methods"),
    "pl_integration_ms_Sn_double": (500.0, "ms", f"{PAPER_TLIS}, Methods"),
    "reflectance_integration_ms": (100.0, "ms", ASSUMPTION),
    "wavelength_range_nm": ((340.0, 1000.0, 1.0), "nm", f"{PAPER_TLIS}, Methods (340-1000 nm)"),
    "F_base": (0.013, "", ASSUMPTION + " (R_inf = 0.85 in the transparent region)"),
    "F_plateau": (8.0, "", ASSUMPTION + " (R ~ 0.06 above the gap)"),
    "F_precursor": (3.0, "", ASSUMPTION),
    "avrami_n": (2.5, "", ASSUMPTION),
    "jmak_t0_min": (2.0, "min", ASSUMPTION + " (induction time)"),
    "alpha_delta_tau_min": (40.0, "min", ASSUMPTION),
    "alpha_delta_blue_shift_nm": (60.0, "nm", ASSUMPTION),
    "alpha_delta_residual_absorption": (0.4, "", ASSUMPTION),
    "urbach_energy_eV": (
        {
            "FAMAPbI3": 0.025,
            "FAPbIBr": 0.025,
            "FASnIBr": 0.03,
            "CsNaAgBiCl6": 0.05,
            "CsPbI3-agZIF62": 0.03,
        },
        "eV",
        ASSUMPTION + " (logistic edge width)",
    ),
    "pl_fwhm_eV": (
        {
            "FAMAPbI3": 0.10,
            "FAPbIBr": 0.10,
            "FASnIBr": 0.12,
            "CsNaAgBiCl6": 0.55,
            "CsPbI3-agZIF62": 0.09,
        },
        "eV",
        ASSUMPTION,
    ),
    "stokes_shift_eV": (0.015, "eV", ASSUMPTION),
    "reference_peak_counts_per_100ms": (0.6 * DEFAULT_DETECTOR_MAX, "counts", ASSUMPTION),
    "pl_peak_counts_at_optimum": (0.5 * DEFAULT_DETECTOR_MAX, "counts", ASSUMPTION),
    "read_noise_counts": (5.0, "counts", ASSUMPTION),
    "dark_counts": (30.0, "counts", ASSUMPTION),
    "laser_leak_counts": (2000.0, "counts", ASSUMPTION + " (after a long-pass filter)"),
    "stability_window_min": (
        {
            "FAMAPbI3": 60.0,
            "FAPbIBr": 60.0,
            "FASnIBr": 60.0,
            "CsNaAgBiCl6": 1440.0,
            "CsPbI3-agZIF62": 60.0,
        },
        "min",
        ASSUMPTION,
    ),
}


def _c(name: str) -> Any:
    return CONSTANTS[name][0]


#: Process variables of the simulated lab: family -> name -> (min, max, default, unit).
PROCESS_VARIABLES: dict[str, dict[str, tuple[float, float, float, str]]] = {
    "FAMAPbI3": {"milling_time_min": (10.0, 180.0, 90.0, "min")},
    "CsNaAgBiCl6": {
        "aging_time_h": (0.0, 200.0, 63.0, "h"),
        "milling_time_min": (60.0, 720.0, 540.0, "min"),
    },
    "FASnIBr": {
        "additive_mol_pct": (0.0, 150.0, 0.0, "%"),
        "milling_time_min": (2.0, 120.0, 15.0, "min"),
    },
    "CsPbI3-agZIF62": {"sintering_temperature_C": (150.0, 400.0, 275.0, "degC")},
    # FAPb(I_{1-x}Br_x)3: the seed paper's films are solution-processed (doi:10.1039/d5ta10296k) and the
    # curated text varies no process variable (fabrication details only in its SI), so none is simulated
    "FAPbIBr": {},
}
SUPPORTED_FAMILIES = tuple(PROCESS_VARIABLES)

#: Where the hidden plqy has its single maximum (documented so tests and benchmarks can check it).
TRUE_OPTIMUM: dict[str, dict[str, float]] = {
    "FAMAPbI3": {"x": 0.8, "milling_time_min": 65.0},
    "CsNaAgBiCl6": {"y": 0.9, "milling_time_min": 540.0},  # aging optimum: see _h_aging
    "FASnIBr": {"z": 2.5, "additive_mol_pct": 80.0, "milling_time_min": 7.0},
    "CsPbI3-agZIF62": {"X": 0.05},  # sintering optimum T_opt(0.05) ~ 275 degC
    "FAPbIBr": {"x": 0.15},  # composition only (no process variable, see PROCESS_VARIABLES)
}


def _lognorm(t: np.ndarray, t_opt: np.ndarray | float, width: float) -> np.ndarray:
    return np.exp(-(np.log(np.maximum(t, 1e-9) / t_opt) ** 2) / (2 * width**2))


def _gauss(x: np.ndarray, x0: float, s: float) -> np.ndarray:
    return np.exp(-((x - x0) ** 2) / (2 * s * s))


def _h_aging(a: np.ndarray) -> np.ndarray:
    """Aging activation of Cs2NaAgBiCl6 PL (SIMULATED): slow rise, mild over-aging loss."""
    return (0.058 + 0.942 * (1 - np.exp(-((np.maximum(a, 0) / 40.0) ** 2.5)))) * np.exp(-a / 900.0)


_ZIF_U = np.log10(np.array(list(_c("ZIF_T_opt_anchors").keys())))
_ZIF_T = np.array(list(_c("ZIF_T_opt_anchors").values()))
# the PLQY maximum (X = 0.05, 275 degC) is weighted so the curve passes through it
_ZIF_POLY = np.polyfit(_ZIF_U, _ZIF_T, 2, w=np.where(np.isclose(_ZIF_U, np.log10(0.05)), 100.0, 1.0))


def zif_t_opt(X: np.ndarray) -> np.ndarray:
    """Optimal sintering temperature (degC) vs CsPbI3 loading: quadratic in log10 X fitted to the
    anchors of CONSTANTS['ZIF_T_opt_anchors'] (weighted least squares, exact at X = 0.05)."""
    return np.polyval(_ZIF_POLY, np.log10(np.maximum(X, 1e-6)))


def _fasn_t_opt(z: np.ndarray) -> np.ndarray:
    """Milling time of maximum PL (min): 7 min at z = 2.5, 12 min at z = 3 (paper), log-linear."""
    return 7.0 * np.exp(math.log(12.0 / 7.0) / 0.5 * (z - 2.5))


def _fasn_additive(a: np.ndarray) -> np.ndarray:
    """PL enhancement by FACl/SnCl2 (x FASnI2.5Br0.5): 1.77 at 80 mol %, ~1.19 at 60/100 (paper)."""
    return 1.0 + 0.77 * _gauss(a, 80.0, 11.95)


def _bandgap_ev(family: str, p: Mapping[str, np.ndarray]) -> np.ndarray:
    """Steady-state band gap (eV), Vegard-type linear interpolation between end members."""
    if family == "FAMAPbI3":
        e_fa = _c("FAPbI3_bandgap_eV")
        return _c("MAPbI3_bandgap_eV") + p["x"] * (e_fa - _c("MAPbI3_bandgap_eV"))
    if family == "FAPbIBr":
        e_fa = _c("FAPbI3_bandgap_eV")
        return e_fa + p["x"] * (_c("FAPbBr3_bandgap_eV") - e_fa)
    if family == "FASnIBr":
        return _pl_energy_ev(family, p) - _c("stokes_shift_eV")
    if family == "CsNaAgBiCl6":
        # no checked Cs2NaBiCl6 band gap: not varied with y (see CONSTANTS)
        return np.full_like(np.asarray(p["y"], float), _c("Cs2AgBiCl6_bandgap_eV"))
    if family == "CsPbI3-agZIF62":
        return np.full_like(np.asarray(p["X"], float), _c("CsPbI3_bandgap_eV"))
    raise SimulationError(f"no simulator model for family '{family}'")


def _pl_energy_ev(family: str, p: Mapping[str, Any]) -> np.ndarray:
    if family == "FASnIBr":
        # linear in z through the paper's PL peaks at z = 3 (870 nm) and z = 2.5 (827 nm);
        # extrapolated (simulator assumption) below z = 2.5
        e3, e25 = HC_EV_NM / _c("FASnI3_pl_nm"), HC_EV_NM / _c("FASnI2.5Br0.5_pl_nm")
        return e3 + (3.0 - p["z"]) * (e25 - e3) / 0.5
    if family == "CsNaAgBiCl6":
        return np.full_like(np.asarray(p["y"], float), HC_EV_NM / _c("CsNaAgBiCl6_pl_nm"))
    if family == "CsPbI3-agZIF62":
        return np.full_like(np.asarray(p["X"], float), HC_EV_NM / _c("CsPbI3_pl_nm"))
    return _bandgap_ev(family, p) - _c("stokes_shift_eV")


def _process_arrays(family: str, process: Mapping[str, Any] | None, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    spec = PROCESS_VARIABLES[family]
    process = dict(process or {})
    unknown = set(process) - set(spec)
    if unknown:
        raise SimulationError(
            f"process variable(s) {', '.join(sorted(unknown))} not used for {family} "
            f"(known: {', '.join(spec) or 'none, composition only'})"
        )
    out = {}
    for name, (lo, hi, default, unit) in spec.items():
        v = np.asarray(process.get(name, default), dtype=float)
        if not np.all(np.isfinite(v)):
            raise SimulationError(f"process variable '{name}' must be finite")
        if np.any(v < lo - 1e-9) or np.any(v > hi + 1e-9):
            raise SimulationError(f"process variable '{name}' outside {lo:g}..{hi:g} {unit}")
        out[name] = np.broadcast_to(v, shape) if v.ndim == 0 else v
    return out


def ground_truth(
    family: str, params: Mapping[str, ArrayLikeF], process: Mapping[str, ArrayLikeF] | None = None
) -> dict[str, np.ndarray]:
    """The hidden "true" properties of the SIMULATED lab (not literature), vectorised.

    Args:
        family: a family in :data:`SUPPORTED_FAMILIES`.
        params: composition parameter -> array (all broadcastable to one shape).
        process: process variable -> array; missing ones take the defaults of
            :data:`PROCESS_VARIABLES`.

    Returns:
        dict with "plqy" (%, 0..100), "stability" (PL retention over the family's stability
        window, 0..1), "bandgap" (eV), "pl_peak" (nm) and "absorption_edge" (nm), arrays of the
        broadcast shape. plqy is a product/banana of unimodal factors with a single interior
        maximum per family (:data:`TRUE_OPTIMUM`), anchored to the seed papers' numbers where
        they exist.
    """
    if family not in PROCESS_VARIABLES:
        raise SimulationError(f"no simulator model for family '{family}' (supported: {', '.join(SUPPORTED_FAMILIES)})")
    fam = get_family(family)
    missing = set(fam.parameters) - set(params)
    if missing:
        raise SimulationError(f"missing composition parameter(s) {', '.join(sorted(missing))} for {family}")
    arrs = {k: np.asarray(params[k], dtype=float) for k in fam.parameters}
    shape = np.broadcast_shapes(*(a.shape for a in arrs.values()))
    p = {k: np.broadcast_to(a, shape) for k, a in arrs.items()}
    for k, a in p.items():
        par = fam.parameters[k]
        if not np.all(np.isfinite(a)) or np.any(a < par.min - 1e-9) or np.any(a > par.max + 1e-9):
            raise SimulationError(f"composition parameter '{k}' outside {par.min:g}..{par.max:g}")
    pr = _process_arrays(family, process, shape)
    if pr:
        shape = np.broadcast_shapes(shape, *(v.shape for v in pr.values()))
        p = {k: np.broadcast_to(a, shape) for k, a in p.items()}
        pr = {k: np.broadcast_to(a, shape) for k, a in pr.items()}
    if family == "FAMAPbI3":
        x, tm = p["x"], pr["milling_time_min"]
        plqy = 12.0 * _gauss(x, 0.8, 0.18) * _lognorm(tm, 65.0, 0.5)
        # ~20 % MA suppresses alpha -> delta (paper); pure FAPbI3 decays
        stability = 0.2 + 0.7 * expit((0.93 - x) / 0.025) * (0.75 + 0.25 * _gauss(x, 0.7, 0.3)) * (
            1 - 0.1 * expit((tm - 120.0) / 15.0)
        )
    elif family == "CsNaAgBiCl6":
        y, a, tm = p["y"], pr["aging_time_h"], pr["milling_time_min"]
        plqy = 19.4 * _gauss(y, 0.9, 0.12) * _h_aging(a) * _lognorm(tm, 540.0, 0.45)
        stability = 0.8 + 0.15 * expit((y - 0.5) / 0.15) * (0.5 + 0.5 * expit((a - 24.0) / 10.0))
    elif family == "FASnIBr":
        z, ad, tm = p["z"], pr["additive_mol_pct"], pr["milling_time_min"]
        s_z = math.sqrt(0.25 / (2 * math.log(_c("FASnI2.5Br0.5_pl_ratio"))))  # I(3)/I(2.5) = 1/5
        plqy = 9.0 * _gauss(z, 2.5, s_z) * _fasn_additive(ad) / 1.77 * _lognorm(tm, _fasn_t_opt(z), 0.7)
        s = 0.2 + 2.5 * (z - 2.5) + 1.6 * _gauss(ad, 90.0, 35.0) - 0.004 * (tm - 15.0)
        stability = expit(s)
    elif family == "CsPbI3-agZIF62":
        X, T = p["X"], pr["sintering_temperature_C"]
        u = np.log10(np.maximum(X, 1e-6) / 0.05)
        plqy = (
            _c("ZIF_best_plqy_pct")
            * np.exp(-(u**2) / (2 * 0.5**2))
            * np.exp(-((T - zif_t_opt(X)) ** 2) / (2 * 35.0**2))
        )
        stability = 0.97 - 0.25 * expit((T - 330.0) / 15.0) - 0.3 * expit((X - 0.45) / 0.08)
    else:  # FAPbIBr: composition only (solution-processed films, no process variable)
        x = p["x"]
        plqy = 20.0 * _gauss(x, 0.15, 0.1)
        stability = 0.25 + 0.7 * expit((x - 0.03) / 0.015) * expit((0.21 - x) / 0.03)
    eg = np.broadcast_to(_bandgap_ev(family, p), shape)
    return {
        "plqy": np.clip(plqy, 0.0, 100.0),
        "stability": np.clip(stability, 0.0, 1.0),
        "bandgap": np.array(eg, dtype=float),
        "pl_peak": np.broadcast_to(HC_EV_NM / _pl_energy_ev(family, p), shape).astype(float),
        "absorption_edge": HC_EV_NM / (np.array(eg, dtype=float) + _c("tlis_edge_offset_eV")),
    }


# --- run simulation -------------------------------------------------------------------------------


@dataclass
class SimulatedRun:
    """A simulated TLIS run (provenance "simulated").

    Attributes:
        values: (n_t, n_wl) counts. wavelengths_nm: (n_wl,). times_min: (n_t,).
        reference: (n_wl,) PTFE reference counts for reflectance runs, else None.
        truth: the noiseless model series (edge_nm, pl_peak_counts, conversion, ...) per time.
        meta: header metadata (mode, sample, family, params, process, integration_time_ms,
            excitation_wavelength_nm, provenance, source, seed, detector_max, ground_truth).
    """

    mode: str
    family: str
    params: dict[str, float]
    process: dict[str, float]
    values: np.ndarray
    wavelengths_nm: np.ndarray
    times_min: np.ndarray
    reference: np.ndarray | None
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def lamp_spectrum(wavelengths_nm: np.ndarray) -> np.ndarray:
    """Relative PTFE reference shape (max 1): 3100 K halogen blackbody x a silicon-detector
    response, plus a weak UV (deuterium-like) component. Simulator assumption."""
    wl = np.asarray(wavelengths_nm, float)
    hc_k = 1.438777e7  # hc/k_B in nm K
    planck = wl**-5 / np.expm1(hc_k / (wl * 3100.0))
    planck /= planck.max()
    response = np.exp(-0.5 * ((wl - 620.0) / 230.0) ** 2)
    uv = 0.25 * np.exp(-(wl - 340.0) / 60.0)
    s = planck * response + uv
    return s / s.max()


def _rise_kinetics(family: str, p: Mapping[str, float], mode: str) -> tuple[float, float, float]:
    """(t0, t_ss, n): JMAK induction time, time to alpha = 0.98, Avrami exponent (min)."""
    t0, n = float(_c("jmak_t0_min")), float(_c("avrami_n"))
    if family == "FAMAPbI3":
        table = dict(_c("FAMA_steady_state_min"))
        table[1.0] = _c("FAPbI3_time_to_max_min")
        xs = np.array(sorted(table))
        return t0, float(np.interp(p["x"], xs, [table[k] for k in xs])), n
    if family == "FAPbIBr":
        return t0, 48.0 + 30.0 * p["x"], n  # assumption
    if family == "FASnIBr":
        return 0.5, float(np.clip(_fasn_t_opt(np.asarray(p["z"])), 3.0, 30.0)), 2.0
    if family == "CsNaAgBiCl6":
        if mode == "pl":  # negligible PL at 27 h, intense at 72 h (y = 0.9) / 195 h (y = 0.95)
            frac = float(np.clip((p["y"] - 0.9) / 0.05, 0.0, 1.0))
            return 27 * 60.0, 60.0 * (72.0 + frac * (195.0 - 72.0)), 2.0
        return t0, 60.0, n  # assumption
    return 0.0, 5.0, 1.5  # CsPbI3-agZIF62: already sintered; assumption


def _alpha_delta(family: str, p: Mapping[str, float]) -> float:
    """Weight (0..1) of the alpha -> delta conversion after the maximum (only near-pure FAPbI3)."""
    if family == "FAMAPbI3":
        return float(expit((p["x"] - 0.95) / 0.015))
    if family == "FAPbIBr":
        return float(expit((0.03 - p["x"]) / 0.01))
    return 0.0


def _sample_id(family: str, params: Mapping[str, float]) -> str:
    parts = "-".join(f"{k}{float(v):g}" for k, v in sorted(params.items()))
    return f"sim-{family}-{parts}"


def simulate_run(
    family: str,
    params: Mapping[str, float],
    mode: str = "reflectance",
    n_times: int = 180,
    duration_min: float = 90.0,
    seed: int | None = None,
    *,
    process: Mapping[str, float] | None = None,
    integration_time_ms: float | None = None,
    detector_max: float = DEFAULT_DETECTOR_MAX,
    excitation_wavelength_nm: float | None = None,
) -> SimulatedRun:
    """Simulate one TLIS run (reflectance or PL) of ``family`` at composition ``params``.

    Args:
        family: one of :data:`SUPPORTED_FAMILIES`.
        params: composition, e.g. ``{"x": 1.0}`` (validated by the family).
        mode: "reflectance" or "pl".
        n_times: number of spectra, evenly spaced from 0 to ``duration_min`` (min).
        seed: random seed for the noise (None: fresh entropy).
        process: process variables (see :data:`PROCESS_VARIABLES`).
        integration_time_ms: detector integration time; defaults to the paper's values (PL: 50 ms
            Pb, 500 ms Sn and double perovskites) or 100 ms (reflectance, assumption). Counts
            scale linearly with it; channels above ``detector_max`` are clipped (saturated).
    """
    if mode not in ("reflectance", "pl"):
        raise SimulationError(f"mode must be 'reflectance' or 'pl', not '{mode}'")
    if family not in PROCESS_VARIABLES:
        raise SimulationError(f"no simulator model for family '{family}' (supported: {', '.join(SUPPORTED_FAMILIES)})")
    if int(n_times) < 2:
        raise SimulationError("n_times must be at least 2")
    if not (math.isfinite(duration_min) and duration_min > 0):
        raise SimulationError("duration_min must be a positive number of minutes")
    fam = get_family(family)
    clean = fam.validate(dict(params))  # CompositionError names the bad parameter
    proc = {k: float(v) for k, v in _process_arrays(family, process, ()).items()}
    truth = {k: float(v) for k, v in ground_truth(family, clean, proc).items()}
    rng = np.random.default_rng(seed)
    lo, hi, step = _c("wavelength_range_nm")
    wl = np.arange(lo, hi + step / 2, step)
    t = np.linspace(0.0, float(duration_min), int(n_times))
    E = HC_EV_NM / wl
    pb = family in ("FAMAPbI3", "FAPbIBr", "CsPbI3-agZIF62")
    if integration_time_ms is None:
        integration_time_ms = (
            _c("reflectance_integration_ms")
            if mode == "reflectance"
            else _c("pl_integration_ms_Pb")
            if pb
            else _c("pl_integration_ms_Sn_double")
        )
    if not (math.isfinite(integration_time_ms) and integration_time_ms > 0):
        raise SimulationError("integration_time_ms must be positive")
    t0, t_ss, n_av = _rise_kinetics(family, clean, mode)
    k = (-math.log(0.02)) ** (1.0 / n_av) / max(t_ss - t0, 1e-6)
    alpha = jmak(t, k, n_av, t0)
    w_ad = _alpha_delta(family, clean)
    t_on = t_ss + (_c("FAPbI3_decay_onset_min") - _c("FAPbI3_time_to_max_min"))
    f_active = np.where(t > t_on, np.exp(-(t - t_on) / _c("alpha_delta_tau_min")), 1.0)
    loss = w_ad * (1.0 - f_active)
    meta_truth: dict[str, np.ndarray] = {"conversion": alpha}
    read = _c("read_noise_counts")
    scale = integration_time_ms / 100.0
    reference = None
    if mode == "reflectance":
        eg = truth["bandgap"]
        edge_ss = HC_EV_NM / (eg + _c("tlis_edge_offset_eV"))
        lam0 = (
            _c("precursor_edge_nm")
            if family in ("FAMAPbI3", "FAPbIBr", "FASnIBr")
            else (380.0 if family == "CsNaAgBiCl6" else edge_ss)
        )
        edge_t = lam0 + (edge_ss - lam0) * alpha - _c("alpha_delta_blue_shift_nm") * loss
        amp_ss = _c("F_plateau") * (clean["X"] / (clean["X"] + 0.1) if family == "CsPbI3-agZIF62" else 1.0)
        amp0 = _c("F_precursor") if lam0 != edge_ss else amp_ss
        amp_t = (amp0 + (amp_ss - amp0) * alpha) * (1.0 - (1.0 - _c("alpha_delta_residual_absorption")) * loss)
        eu = _c("urbach_energy_eV")[family]
        F = _c("F_base") + amp_t[:, None] * expit((E[None, :] - HC_EV_NM / edge_t[:, None]) / eu)
        R = inverse_kubelka_munk(F)
        ref_mean = lamp_spectrum(wl) * _c("reference_peak_counts_per_100ms") * scale
        reference = ref_mean + rng.normal(0.0, np.sqrt(ref_mean / 20.0))  # 20-scan average
        reference = np.clip(reference, 1.0, detector_max)
        mean = R * ref_mean[None, :]
        meta_truth.update(edge_nm=edge_t, km_amplitude=amp_t)
    else:
        e_pl = float(_pl_energy_ev(family, clean))
        fwhm = _c("pl_fwhm_eV")[family]
        lam_pl = HC_EV_NM / e_pl
        jac = HC_EV_NM / wl**2
        if family == "CsNaAgBiCl6":
            frac = float(np.clip((clean["y"] - 0.9) / 0.05, 0.0, 1.0))
            fold = _c("CsNa0.9_pl_fold") + frac * (_c("CsNa0.95_pl_fold") - _c("CsNa0.9_pl_fold"))
        else:
            fold = 50.0  # assumption: PL at t = 0 is 1/50 of the final
        best = ground_truth(family, _opt_params(family), _opt_process(family))
        plqy_rel = truth["plqy"] / float(np.max(best["plqy"]))
        int_ref = _c("pl_integration_ms_Pb") if pb else _c("pl_integration_ms_Sn_double")
        peak = _c("pl_peak_counts_at_optimum") * plqy_rel * integration_time_ms / int_ref
        window = _c("stability_window_min")[family]
        t_dec = t_on if w_ad > 0.5 else t_ss
        decay = np.where(t > t_dec, truth["stability"] ** ((t - t_dec) / window), 1.0)
        height = peak * (1.0 / fold + (1 - 1.0 / fold) * alpha) * decay
        shape = np.exp(-4 * math.log(2) * (E - e_pl) ** 2 / fwhm**2) * jac / (HC_EV_NM / lam_pl**2)
        laser = _c("laser_leak_counts") * np.exp(-0.5 * ((wl - _c("pl_excitation_nm")) / 3.0) ** 2)
        mean = (_c("dark_counts") + laser[None, :]) * integration_time_ms / int_ref + height[:, None] * shape[None, :]
        meta_truth.update(
            pl_peak_counts=height,
            pl_peak_nm=np.full(t.size, lam_pl),
            pl_fwhm_eV=np.full(t.size, fwhm),
        )
    counts = rng.poisson(mean).astype(float) + rng.normal(0.0, read, mean.shape)
    counts = np.clip(counts, 0.0, detector_max)
    meta = {
        "mode": mode,
        "sample": _sample_id(family, clean),
        "family": family,
        "params": clean,
        "process": proc,
        "integration_time_ms": float(integration_time_ms),
        "excitation_wavelength_nm": (
            float(excitation_wavelength_nm or _c("pl_excitation_nm")) if mode == "pl" else None
        ),
        "time_unit": "min",
        "provenance": "simulated",
        "source": "simulator",
        "seed": seed,
        "detector_max": float(detector_max),
        "ground_truth": truth,
        "kinetics": {
            "t0_min": t0,
            "t_steady_min": t_ss,
            "k_per_min": k,
            "avrami_n": n_av,
            "alpha_delta_weight": w_ad,
            "decay_onset_min": t_on if w_ad > 0.5 else None,
        },
    }
    return SimulatedRun(mode, family, clean, proc, counts, wl, t, reference, meta_truth, meta)


def _opt_params(family: str) -> dict[str, np.ndarray]:
    fam = get_family(family)
    return {k: np.asarray(v) for k, v in TRUE_OPTIMUM[family].items() if k in fam.parameters}


def _opt_process(family: str) -> dict[str, np.ndarray]:
    """Process values at (near) the optimum, used only to normalise PL counts."""
    opt = {k: v for k, v in TRUE_OPTIMUM[family].items() if k in PROCESS_VARIABLES[family]}
    if family == "CsNaAgBiCl6":
        opt["aging_time_h"] = 80.0
    if family == "CsPbI3-agZIF62":
        opt["sintering_temperature_C"] = float(zif_t_opt(np.asarray(0.05)))
    return {k: np.asarray(v) for k, v in opt.items()}


def _fmt(v: float) -> str:
    return np.format_float_positional(float(v), precision=6, trim="-")


def write_tlis_csv(run: SimulatedRun, path: str | Path) -> list[Path]:
    """Write ``run`` in the tlis_csv format; returns [matrix file] (+ [reference file]).

    The reference (reflectance runs) goes next to the matrix as ``<stem>_ref.csv``, a two-column
    CSV ``wavelength_nm,counts``; the matrix header names it and says ``provenance: simulated``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = run.meta
    lines = [
        "# matdb-tlis: 1",
        f"# mode: {run.mode}",
        f"# sample: {m['sample']}",
        f"# family: {run.family}",
        f"# params: {json.dumps(run.params)}",
    ]
    if run.process:
        lines.append(f"# process: {json.dumps(run.process)}")
    lines.append(f"# integration_time: {_fmt(m['integration_time_ms'])} ms")
    out = [path]
    if run.mode == "pl":
        lines.append(f"# excitation_wavelength: {_fmt(m['excitation_wavelength_nm'])} nm")
    else:
        ref_path = path.with_name(f"{path.stem}_ref.csv")
        lines.append(f"# reference: {ref_path.name}")
        if run.reference is None:
            raise SimulationError("a reflectance run needs its reference spectrum")
        ref_rows = "\n".join(f"{_fmt(w)},{r:.1f}" for w, r in zip(run.wavelengths_nm, run.reference, strict=True))
        ref_path.write_text("wavelength_nm,counts\n" + ref_rows + "\n", encoding="utf-8")
        out.append(ref_path)
    lines += [
        "# time_unit: min",
        "# provenance: simulated",
        f"# source: {m.get('source', 'simulator')}",
    ]
    header = "wavelength_nm," + ",".join(_fmt(t) for t in run.times_min)
    body = np.column_stack([run.wavelengths_nm, run.values.T])
    fmt = ["%.6g"] + ["%.1f"] * run.values.shape[0]
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n" + header + "\n")
        np.savetxt(fh, body, fmt=fmt, delimiter=",")
    return out
