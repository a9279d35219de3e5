"""Objectives: what a campaign optimises, and the one place that decides what "better" means.

An objective is a stored quantity (built in, declared by a lab in a record file, or a derived feature
written by ``matdb analyze``) with a direction:

* ``plqy:max`` — higher is better (``plqy`` alone takes the quantity's default direction);
* ``instability_index:min`` — lower is better;
* ``pl_peak:target=850`` — closest to 850 (in the quantity's canonical unit) is best;
* ``pl_peak:target=840..860`` — anything inside the window is as good as it gets; outside, the
  distance to the window counts.

:meth:`Objective.utility` maps values to a *utility* that is always maximised; ranking, expected
improvement, Pareto fronts and model predictions all go through it, so no other module flips signs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matdb.vocabulary import QuantityDef

__all__ = ["Objective", "ObjectiveError", "parse_objective", "parse_objectives"]

#: The aliases a family's stability metric is reached by ("stability" -> e.g. pl_retention).
STABILITY = "stability"

_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.]*)\s*(?::\s*(?P<dir>[^:]+?)\s*)?$")
_TARGET = re.compile(
    r"^target\s*=\s*(?P<a>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?:\s*(?:\.\.|–)\s*(?P<b>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?$"
)


class ObjectiveError(ValueError):
    """An objective that cannot be understood (unknown quantity or direction); ``field`` names it."""

    def __init__(self, message: str, field: str | None = "objective") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Objective:
    """One objective of a campaign.

    Attributes:
        name: what the user wrote before the colon ("plqy", "stability", "instability_index").
        quantity: the stored quantity it reads ("stability" resolves to the family's metric).
        direction: "max", "min" or "target".
        target: (lo, hi) for "target" (lo == hi for a single value), canonical unit.
        label: result label filter for the quantity (stability metrics stored with a label).
        unit: canonical unit of the quantity.
        weight: weight in the scalarised multi-objective acquisition.
    """

    name: str
    quantity: str
    direction: str = "max"
    target: tuple[float, float] | None = None
    label: str | None = None
    unit: str = ""
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min", "target"):
            raise ObjectiveError(f"objective '{self.name}': direction must be max, min or target=VALUE")
        if (self.direction == "target") != (self.target is not None):
            raise ObjectiveError(f"objective '{self.name}': a target direction needs target=VALUE")

    def _window(self) -> tuple[float, float]:
        """``target`` of a "target" objective (``__post_init__`` guarantees it is set for that direction)."""
        if self.target is None:  # unreachable after __post_init__; the TypeError unpacking None raised before
            raise TypeError(f"objective '{self.name}' has no target window")
        return self.target

    # -- the one orientation ---------------------------------------------------------------------

    def utility(self, y: Any) -> np.ndarray:
        """Higher-is-better utility of values ``y`` (canonical unit), same shape."""
        y = np.asarray(y, dtype=float)
        if self.direction == "max":
            return y
        if self.direction == "min":
            return -y
        lo, hi = self._window()
        return -(np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))

    def expected_improvement(self, mu: Any, sigma: Any, best_utility: float, xi: float = 0.0) -> np.ndarray:
        """E[max(u(Y) - best, 0)] for Y ~ N(mu, sigma²), in closed form for every direction.

        For a target window [lo, hi] the gain is a trapezoid in y: it rises from ``lo - c`` to ``lo``,
        stays ``c = -(best + xi)`` inside the window and falls to zero at ``hi + c``; its expectation
        is a sum of three truncated-normal moments.
        """
        from scipy import stats

        from screening.acquisition import expected_improvement

        mu = np.asarray(mu, dtype=float)
        sigma = np.asarray(sigma, dtype=float)
        if self.direction == "max":
            return expected_improvement(mu, sigma, best_utility, xi)
        if self.direction == "min":
            return expected_improvement(-mu, sigma, best_utility, xi)
        lo, hi = self._window()
        c = -(best_utility + xi)
        if c <= 0:
            return np.zeros_like(mu)
        s = np.maximum(sigma, 1e-300)

        def cdf_pdf(edge: float) -> tuple[np.ndarray, np.ndarray]:
            z = (edge - mu) / s
            return stats.norm.cdf(z), stats.norm.pdf(z)

        (Fa, fa), (Fl, fl), (Fh, fh), (Fd, fd) = (cdf_pdf(e) for e in (lo - c, lo, hi, hi + c))
        rise = (mu - (lo - c)) * (Fl - Fa) + s * (fa - fl)
        fall = ((hi + c) - mu) * (Fd - Fh) - s * (fh - fd)
        ei = rise + c * (Fh - Fl) + fall
        exact = np.maximum(self.utility(mu) + c, 0.0)  # sigma = 0: the gain at mu
        return np.where(sigma > 0, np.maximum(ei, 0.0), exact)

    def optimistic(self, mu: Any, sigma: Any, kappa: float) -> np.ndarray:
        """An upper confidence bound of the utility (``kappa`` standard deviations)."""
        mu = np.asarray(mu, dtype=float)
        sigma = np.asarray(sigma, dtype=float)
        if self.direction == "max":
            return mu + kappa * sigma
        if self.direction == "min":
            return -mu + kappa * sigma
        lo, hi = self._window()
        # the most favourable value within mu +- kappa sigma
        return -np.maximum(np.maximum(lo - (mu + kappa * sigma), 0.0), np.maximum((mu - kappa * sigma) - hi, 0.0))

    @property
    def spec(self) -> str:
        """The text form (``instability_index:min``, ``pl_peak:target=840..860``)."""
        if self.direction != "target":
            return f"{self.name}:{self.direction}"
        lo, hi = self._window()
        return f"{self.name}:target={lo:g}" if lo == hi else f"{self.name}:target={lo:g}..{hi:g}"

    @property
    def describe(self) -> str:
        """Plain words for headers and pages: "lower is better", "closest to 850 nm"."""
        from matdb.units import display_unit

        if self.direction == "max":
            return "higher is better"
        if self.direction == "min":
            return "lower is better"
        lo, hi = self._window()
        u = f" {display_unit(self.unit)}" if self.unit else ""
        return f"closest to {lo:g}{u}" if lo == hi else f"within {lo:g}–{hi:g}{u}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "quantity": self.quantity, "direction": self.direction,
                "target": list(self.target) if self.target else None, "label": self.label, "unit": self.unit,
                "weight": self.weight, "spec": self.spec}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Objective:
        t = d.get("target")
        return cls(str(d["name"]), str(d["quantity"]), str(d["direction"]), tuple(t) if t else None,
                   d.get("label"), str(d.get("unit") or ""), float(d.get("weight", 1.0)))




def parse_objective(spec: str | Objective, quantities: Mapping[str, QuantityDef], *,
                    family: str | None = None, stability_metric: str | None = None,
                    weight: float = 1.0) -> Objective:
    """Read ``"plqy"``, ``"instability_index:min"``, ``"pl_peak:target=850"`` or ``"target=840..860"``.

    Args:
        spec: the text (or an Objective, returned as is).
        quantities: every known quantity (built-ins, declared ones and derived features).
        family: needed for "stability" (the family's stability metric).

    Raises:
        ObjectiveError: unknown quantity, a categorical quantity, or an unknown direction.
    """
    if isinstance(spec, Objective):
        return spec
    m = _SPEC.match(str(spec))
    if not m:
        raise ObjectiveError(f"cannot read objective '{spec}': write NAME, NAME:max, NAME:min or NAME:target=VALUE")
    name, raw_dir = m.group("name"), (m.group("dir") or "").strip()
    label = None
    default_dir: str | None
    if name == STABILITY:
        from screening.stability import stability_metric_for

        if family is None:
            raise ObjectiveError("the 'stability' objective depends on the family (its stability metric); "
                                 "choose a family")
        metric = stability_metric_for(family, stability_metric)
        quantity = metric.quantity
        label = metric.name if metric.quantity in ("ratio", "energy", "relative_energy") else None
        default_dir, unit = ("max" if metric.direction == "higher" else "min"), metric.unit
    else:
        q = quantities.get(name)
        if q is None:
            known = ", ".join(sorted(n for n, d in quantities.items() if not d.categorical)[:40])
            raise ObjectiveError(f"unknown objective '{name}': not a stored quantity (e.g. {known}, ...)")
        if q.categorical:
            raise ObjectiveError(f"objective '{name}' is categorical; an objective needs a numeric quantity")
        quantity, default_dir, unit = name, q.direction, q.unit
    if not raw_dir:
        if default_dir is None:
            raise ObjectiveError(f"objective '{name}' has no default direction: write {name}:max, {name}:min "
                                 f"or {name}:target=VALUE")
        return Objective(name, quantity, default_dir, None, label, unit, weight)
    if raw_dir in ("max", "min"):
        return Objective(name, quantity, raw_dir, None, label, unit, weight)
    t = _TARGET.match(raw_dir)
    if not t:
        raise ObjectiveError(f"objective '{spec}': unknown direction '{raw_dir}' (use max, min, target=VALUE "
                             "or target=LOW..HIGH)")
    lo = float(t.group("a"))
    hi = float(t.group("b")) if t.group("b") is not None else lo
    if hi < lo:
        raise ObjectiveError(f"objective '{spec}': the target window {lo:g}..{hi:g} is empty")
    return Objective(name, quantity, "target", (lo, hi), label, unit, weight)


def parse_objectives(specs: Sequence[str | Objective], quantities: Mapping[str, QuantityDef], *,
                     family: str | None = None, stability_metric: str | None = None,
                     weights: Sequence[float] | None = None) -> list[Objective]:
    """Several objectives (weights default to equal); names must be distinct."""
    if not specs:
        raise ObjectiveError("give at least one objective (e.g. plqy:max)")
    if weights is not None and len(weights) != len(specs):
        raise ObjectiveError(f"{len(weights)} weight(s) for {len(specs)} objective(s)", "weight")
    if weights is not None and (any(not math.isfinite(w) or w < 0 for w in weights) or not sum(weights) > 0):
        raise ObjectiveError("weights must be non-negative numbers, not all zero", "weight")
    out = [parse_objective(s, quantities, family=family, stability_metric=stability_metric,
                           weight=1.0 if weights is None else float(weights[i])) for i, s in enumerate(specs)]
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise ObjectiveError(f"objective given twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return out
