"""Stability metrics and which one defines "stability" for a family.

Each metric is documented in :data:`STABILITY_METRICS` with its name, definition, unit, the
matdb quantity it is stored as and its direction ("higher" or "lower" is more stable).
:func:`stability_metric_for` picks the metric for a family (built-in default per family, a
user override, or user-defined defaults for new families).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from matdb.vocabulary import to_canonical
from screening.kinetics import (
    Feature,
    KineticsError,
    _running_median,
    check_series,
    time_of_maximum,
)

#: method name and version of each stability metric.
METHOD_VERSIONS: dict[str, tuple[str, str]] = {
    "pl_retention": ("I_end/I_max-running-median", "1"),
    "edge_blue_shift": ("edge_max-minus-final-median", "1"),
    "retained_active_phase_fraction": ("KM-above-edge-end/max", "1"),
    "halide_migration_activation_energy": ("stored-value-passthrough", "1"),
    "bandgap_shift_illumination": ("abs(Eg_end-Eg_start)", "1"),
}


class StabilityError(ValueError):
    """A stability metric that cannot be computed from the given data."""


@dataclass(frozen=True)
class StabilityMetric:
    """A documented stability metric.

    Attributes:
        name: registry key.
        label: display label.
        definition: how the value is computed, in words.
        unit: canonical unit ("" dimensionless).
        quantity: matdb.units quantity the value is stored as.
        direction: "higher" or "lower" — which values mean more stable.
        source: what the metric is computed from ("pl", "reflectance", "stored", "illumination").
        compute: the function computing it (see its docstring for arguments).
    """

    name: str
    label: str
    definition: str
    unit: str
    quantity: str
    direction: str
    source: str
    compute: Callable[..., Feature]

    def oriented(self, value: float | np.ndarray) -> float | np.ndarray:
        """The value turned so that higher always means more stable (for ranking)."""
        return value if self.direction == "higher" else -value


def _window(
    t: np.ndarray, y: np.ndarray, window: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    if window is None:
        return t, y
    lo, hi = window
    sel = (t >= lo) & (t <= hi)
    if sel.sum() < 5:
        raise StabilityError(
            f"window {lo:g}..{hi:g} min holds {int(sel.sum())} points; need at least 5"
        )
    return t[sel], y[sel]


def pl_retention(
    t: ArrayLike, intensity: ArrayLike, window: tuple[float, float] | None = None
) -> Feature:
    """PL retention ``I_end / I_max`` over ``window`` (min; default the whole run).

    ``I_max`` is the running-median (5-point) maximum, ``I_end`` the running median at the
    last point of the window. Dimensionless, 0..~1; higher is more stable.
    """
    t, y = check_series(t, intensity)
    t, y = _window(t, y, window)
    ys = _running_median(y)
    imax = float(ys.max())
    if imax <= 0:
        raise StabilityError("PL intensity never rises above zero; retention is undefined")
    m, v = METHOD_VERSIONS["pl_retention"]
    note = f"window {t[0]:g}..{t[-1]:g} min"
    return Feature(
        "pl_retention", max(float(ys[-1]), 0.0) / imax, "", None, m, v, "pl_retention", note
    )


def edge_blue_shift(t: ArrayLike, edge_nm: ArrayLike, final_fraction: float = 0.05) -> Feature:
    """Blue shift of the absorption edge after its maximum: ``edge_max - edge_final`` (nm).

    ``edge_max`` is the running-median maximum, ``edge_final`` the median of the last
    ``final_fraction`` of the points (>= 3). 0 for a stable phase; lower is more stable.
    """
    t, y = check_series(t, edge_nm)
    mx = time_of_maximum(t, y)
    n_tail = max(3, int(round(final_fraction * y.size)))
    final = float(np.median(y[-n_tail:]))
    m, v = METHOD_VERSIONS["edge_blue_shift"]
    unc = float(np.std(y[-n_tail:], ddof=1) / np.sqrt(n_tail))
    return Feature(
        "edge_blue_shift", max(mx.value - final, 0.0), "nm", unc, m, v, "edge_blue_shift"
    )


def retained_active_phase_fraction(
    t: ArrayLike, absorption: ArrayLike, final_fraction: float = 0.05
) -> Feature:
    """Retained fraction of the photoactive phase: final / maximum absorption strength.

    ``absorption`` is the Kubelka-Munk F(R) just above the edge (series ``km_above_edge`` from
    :func:`screening.spectra.extract_features`), proportional to the amount of absorbing
    (black) phase. Dimensionless 0..1; higher is more stable.
    """
    t, y = check_series(t, absorption)
    ys = _running_median(y)
    ymax = float(ys.max())
    if ymax <= 0:
        raise StabilityError("absorption strength never rises above zero")
    n_tail = max(3, int(round(final_fraction * y.size)))
    m, v = METHOD_VERSIONS["retained_active_phase_fraction"]
    return Feature(
        "retained_active_phase_fraction",
        float(np.median(y[-n_tail:])) / ymax,
        "",
        None,
        m,
        v,
        "ratio",
        "KM F(R) above the edge, final median / running-median maximum",
    )


def halide_migration_activation_energy(
    value: float, unit: str = "eV", uncertainty: float | None = None
) -> Feature:
    """Pass a stored halide-migration activation energy through as a stability metric (eV).

    E.g. 0.131 eV for FAPbI3 and 0.074 eV for FAPb(I0.975Br0.025)3 from transient ion drift
    (doi:10.1039/d5ta10296k, Fig. 2b). Higher is more stable.
    """
    v_ev, u = to_canonical("activation_energy", value, unit)
    unc = None
    if uncertainty is not None:
        unc = abs(to_canonical("activation_energy", uncertainty, unit)[0])
    m, v = METHOD_VERSIONS["halide_migration_activation_energy"]
    return Feature("halide_migration_activation_energy", v_ev, u, unc, m, v, "activation_energy")


def bandgap_shift_illumination(t: ArrayLike, bandgap_ev: ArrayLike, n_avg: int = 3) -> Feature:
    """Magnitude of the band-gap shift under illumination ``|Eg(end) - Eg(start)|`` (eV).

    Start and end are medians of the first/last ``n_avg`` points. Halide segregation lowers
    Eg (25 % Br FAPb(I,Br)3 over 12 h, doi:10.1039/d5ta10296k, Fig. 4b); lower is more stable.
    The signed shift is given in the note.
    """
    t, y = check_series(t, bandgap_ev, min_points=2 * n_avg)
    shift = float(np.median(y[-n_avg:]) - np.median(y[:n_avg]))
    m, v = METHOD_VERSIONS["bandgap_shift_illumination"]
    return Feature(
        "bandgap_shift_illumination",
        abs(shift),
        "eV",
        None,
        m,
        v,
        "bandgap_shift",
        f"signed shift {shift:+.4f} eV over {t[-1] - t[0]:g} min",
    )


STABILITY_METRICS: dict[str, StabilityMetric] = {
    m.name: m
    for m in [
        StabilityMetric(
            "pl_retention",
            "PL retention I_end/I_max",
            "PL intensity at the end of the window divided by its maximum",
            "",
            "pl_retention",
            "higher",
            "pl",
            pl_retention,
        ),
        StabilityMetric(
            "edge_blue_shift",
            "Edge blue-shift after maximum",
            "maximum absorption edge minus final edge (nm)",
            "nm",
            "edge_blue_shift",
            "lower",
            "reflectance",
            edge_blue_shift,
        ),
        StabilityMetric(
            "retained_active_phase_fraction",
            "Retained active-phase fraction",
            "final / maximum Kubelka-Munk absorption just above the edge",
            "",
            "ratio",
            "higher",
            "reflectance",
            retained_active_phase_fraction,
        ),
        StabilityMetric(
            "halide_migration_activation_energy",
            "Halide-migration activation energy",
            "stored activation energy of halide migration (eV)",
            "eV",
            "activation_energy",
            "higher",
            "stored",
            halide_migration_activation_energy,
        ),
        StabilityMetric(
            "bandgap_shift_illumination",
            "Band-gap shift under illumination",
            "|Eg(end) - Eg(start)| under continuous illumination (eV)",
            "eV",
            "bandgap_shift",
            "lower",
            "illumination",
            bandgap_shift_illumination,
        ),
    ]
}

#: Which metric defines "stability" for each built-in family (why, in the comment).
DEFAULT_STABILITY_METRIC: dict[str, str] = {
    # alpha -> delta FAPbI3 conversion shows as loss of the black-phase absorption (000, Fig. 2a)
    "FAMAPbI3": "retained_active_phase_fraction",
    # Sn(II) instability shows as PL decay during milling (000, Fig. 6b)
    "FASnIBr": "pl_retention",
    # PL over aging; ion migration is the mechanism (000, Fig. 4a)
    "CsNaAgBiCl6": "pl_retention",
    # photostability under continuous excitation (002, Fig. 2b)
    "CsPbI3-agZIF62": "pl_retention",
    # light-induced halide segregation lowers Eg (003, Fig. 4b)
    "FAPbIBr": "bandgap_shift_illumination",
}
#: Metric used for families without a default (user-defined families).
FALLBACK_STABILITY_METRIC = "pl_retention"


def stability_metric_for(
    family: str, override: str | None = None, user_defaults: Mapping[str, str] | None = None
) -> StabilityMetric:
    """The metric that defines "stability" for ``family``.

    Precedence: ``override`` > ``user_defaults[family]`` > built-in default > pl_retention.

    Raises:
        StabilityError: the chosen metric name is not in :data:`STABILITY_METRICS`.
    """
    name = (
        override
        or (user_defaults or {}).get(family)
        or DEFAULT_STABILITY_METRIC.get(family, FALLBACK_STABILITY_METRIC)
    )
    try:
        return STABILITY_METRICS[name]
    except KeyError:
        known = ", ".join(sorted(STABILITY_METRICS))
        raise StabilityError(f"unknown stability metric '{name}' (known: {known})") from None


__all__ = [
    "STABILITY_METRICS",
    "DEFAULT_STABILITY_METRIC",
    "FALLBACK_STABILITY_METRIC",
    "METHOD_VERSIONS",
    "StabilityMetric",
    "StabilityError",
    "KineticsError",
    "stability_metric_for",
    "pl_retention",
    "edge_blue_shift",
    "retained_active_phase_fraction",
    "halide_migration_activation_energy",
    "bandgap_shift_illumination",
]
