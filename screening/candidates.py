"""Candidate spaces (what could be made next) and chunked ranking of millions of candidates.

A candidate is a family, values of its composition parameters and values of process variables:

====================== ====== ==========================================================
process variable       unit   meaning
====================== ====== ==========================================================
milling_time_min       min    ball-milling time
aging_time_h           h      aging time after milling
additive_mol_pct       mol %  additive amount
sintering_temperature_C °C    sintering / melt temperature (composite family only)
====================== ====== ==========================================================

For the composite family (CsPbI3-agZIF62) the *loading* is its composition parameter ``X``
(CsPbI3 mass fraction); ``loading`` is accepted as an alias of ``X`` in space files.

Space file format (YAML; ``--space`` on the CLI)
------------------------------------------------
One space, a list of spaces, or ``{spaces: [...]}``::

    family: FASnIBr          # a slug, a list of slugs, or "all" (built-in families)
    sampling: continuous     # continuous (default) | grid | sobol | lhs
    n_samples: 100000        # sobol / lhs (and ranking a continuous space): points drawn
    seed: 0                  # scrambling seed
    parameters:              # composition parameters; omitted ones use the family's default range
      z: {min: 2, max: 3, resolution: 0.01}   # continuous range, proposals rounded to 0.01
      # z: {min: 2, max: 3, step: 0.1}        # a grid (only these values are proposed)
    process:                 # omitted: the family's default process ranges; {} = none
      milling_time_min: {min: 2, max: 60}       # resolution from matdb.vocabulary (1 min)
      additive_mol_pct: {values: [0, 40, 80]}   # explicit values
    fixed:                   # variables pinned for this campaign
      milling_time_min: 15
    constraints:             # a list of linear constraints and/or the named filters
      - "a + b <= 0.9"       # between parameters
      - "Cs <= 0.3"          # on a site fraction (SITE:species when on several sites: "X:I >= 0.5")
      - "FA >= 2*MA"
      - tolerance_factor: [0.8, 1.0]   # Goldschmidt t window (inclusive)
      - exclude_elements: [Pb]         # e.g. Pb-free screening

The constraints may also be one mapping ``{tolerance_factor: ..., exclude_elements: ..., linear: [...]}``.
Continuous axes are searched continuously by the proposer (``screening.optimizer``) and rounded to
each variable's resolution: the axis' ``resolution``, else the vocabulary's default for a process
parameter (5 °C, 1 min, ...), else ``FRACTION_RESOLUTION`` (0.01) for a composition parameter.
Default spaces (:data:`DEFAULT_SPACES`) cover the ranges the seed papers studied.

Constraints are applied vectorised to every chunk: parameter ranges of the family, site
occupancies within 0..1, site sums = 1, composite mass fractions, and charge balance (the
semantics of ``Family.validate``, tolerance ``FRACTION_TOLERANCE``), then the user limits. An
excluded element removes every candidate in which a species containing it has a non-zero
occupancy; a family whose sites always contain it (Pb in FAMAPbI3) yields no candidates and
:meth:`CandidateSpace.empty_reason` / an ``EmptySpaceWarning`` say why.

The tolerance factor is Goldschmidt's ``t = (r_A + r_X) / (sqrt(2) (r_B + r_X))`` with
occupancy-weighted radii from ``matdb.species`` (A: XII-coordinate, B and X: VI); for double
perovskites ``r_B`` is the mean of the B' and B'' radii. This is the ``tolerance_factor``
descriptor of ``screening.descriptors`` (a test checks they agree); it is computed here directly
because the full descriptor set costs ~20 us per candidate and the filter needs only t.

Features for the surrogates come from a ``featurize`` callable; :class:`DescriptorFeaturizer`
builds descriptor columns with ``screening.descriptors.family_descriptors``, mapping candidate
process columns (named as in ``matdb.vocabulary.PROCESS_PARAMS``) to its process inputs.

Ranking
-------
:func:`rank_candidates` streams the space in chunks of raw candidates (``chunk_size``), scores each
chunk with the surrogates (mean/std per objective, an acquisition per objective, weighted sum of
the acquisitions divided by each objective's range) and keeps only the running top-k and the
running Pareto front of predicted means, so memory is bounded by the chunk, not by the space
(10^6 candidates with 100k-row chunks stay well below 1 GB). The ``"dask"`` backend scores the same
chunks as tasks on a ``dask.distributed`` client; results are identical because ties are broken
by the candidate's (space, id), not by arrival order.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd
import yaml
from scipy.stats import qmc

from matdb.families import FRACTION_TOLERANCE, SITE_COORDINATION, Family, get_family
from matdb.vocabulary import FRACTION_RESOLUTION, process_param
from screening.constraints import ConstraintError, LinearConstraint, occupancy_constraints, parse_constraint
from screening.constraints import satisfied as constraints_satisfied
from screening.objectives import Objective
from screening.optimizer import Domain, Variable

if TYPE_CHECKING:
    from screening.surrogate import Surrogate

__all__ = [
    "CandidateSpace",
    "CandidateSpaceError",
    "DEFAULT_SPACES",
    "DescriptorFeaturizer",
    "Dimension",
    "EmptySpaceWarning",
    "default_space",
    "default_spaces",
    "iter_candidates",
    "load_spaces",
    "rank_candidates",
    "space_from_dict",
    "tolerance_factor",
]

#: Grid intervals per composition parameter of a grid space without a step (21 values).
DEFAULT_STEPS = 20
#: Default sampling budget for sobol / lhs spaces.
DEFAULT_N_SAMPLES = 4096
#: Largest space (raw points) a Latin hypercube is drawn for at once (LHS is not sliceable).
LHS_MAX = 10_000_000
#: Decimals kept when a grid is built from min/max/step (avoids 0.30000000000000004).
GRID_DECIMALS = 10

#: How a space's points are drawn (``sampling:`` in a space file).
Sampling = Literal["continuous", "grid", "sobol", "lhs"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ELEMENT_RE = re.compile(r"[A-Z][a-z]?")


class CandidateSpaceError(ValueError):
    """A candidate space that cannot be built; ``field`` names the offending entry."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EmptySpaceWarning(UserWarning):
    """A candidate space whose constraints leave no candidates."""


# --- dimensions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One axis of a candidate space: explicit ``values``, a ``min..max`` grid with ``step``,
    or a continuous ``min..max`` range (searched continuously, rounded to ``resolution``)."""

    name: str
    values: tuple[float, ...] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    resolution: float | None = None

    @classmethod
    def from_spec(cls, name: str, spec: Any, where: str) -> Dimension:
        field_name = f"{where}.{name}"
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            return cls(name, values=(float(spec),))
        if isinstance(spec, (list, tuple)):
            spec = {"values": list(spec)}
        if not isinstance(spec, Mapping):
            raise CandidateSpaceError(
                f"{field_name}: expected {{values: [...]}} or {{min:, max:, step:}}, got {spec!r}",
                field_name,
            )
        unknown = set(spec) - {"values", "min", "max", "step", "resolution"}
        if unknown:
            raise CandidateSpaceError(
                f"{field_name}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                "(use values, or min/max with step or resolution)", field_name,
            )
        try:
            if "values" in spec:
                if any(k in spec for k in ("min", "max", "step")):
                    raise CandidateSpaceError(
                        f"{field_name}: give either values or min/max(/step), not both", field_name
                    )
                vals = tuple(float(v) for v in spec["values"])
                if not vals:
                    raise CandidateSpaceError(f"{field_name}: values is empty", field_name)
                if not all(math.isfinite(v) for v in vals):
                    raise CandidateSpaceError(f"{field_name}: values must be finite", field_name)
                return cls(name, values=vals)
            if "min" not in spec or "max" not in spec:
                raise CandidateSpaceError(f"{field_name}: needs min and max", field_name)
            lo, hi = float(spec["min"]), float(spec["max"])
            step = None if spec.get("step") is None else float(spec["step"])
            res = None if spec.get("resolution") is None else float(spec["resolution"])
        except (TypeError, ValueError) as exc:
            if isinstance(exc, CandidateSpaceError):
                raise
            raise CandidateSpaceError(f"{field_name}: values must be numbers ({exc})",
                                      field_name) from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
            raise CandidateSpaceError(f"{field_name}: need finite min <= max, got {lo}..{hi}",
                                      field_name)
        if step is not None and not step > 0:
            raise CandidateSpaceError(f"{field_name}: step must be > 0, got {step}", field_name)
        if res is not None and not res > 0:
            raise CandidateSpaceError(f"{field_name}: resolution must be > 0, got {res}", field_name)
        if res is not None and step is not None:
            raise CandidateSpaceError(f"{field_name}: give a step (a grid) or a resolution, not both", field_name)
        return cls(name, min=lo, max=hi, step=step, resolution=res)

    @property
    def continuous(self) -> bool:
        return self.values is None and self.step is None

    @cached_property
    def grid(self) -> np.ndarray:
        """The discrete values of this axis (ascending unless given explicitly)."""
        if self.values is not None:
            return np.asarray(self.values, dtype=float)
        if self.step is None:
            raise CandidateSpaceError(f"{self.name} is continuous and has no grid", self.name)
        lo, hi = self._bounds()
        n = int(math.floor((hi - lo) / self.step + 1e-9)) + 1
        return np.round(lo + self.step * np.arange(n), GRID_DECIMALS)

    def _bounds(self) -> tuple[float, float]:
        """``(min, max)`` of a range axis; ``from_spec`` sets both whenever ``values`` is None."""
        if self.min is None or self.max is None:  # a hand-built Dimension without a range: the TypeError
            raise TypeError(f"dimension '{self.name}' has neither values nor min/max")  # arithmetic on None raised
        return self.min, self.max

    @property
    def lo(self) -> float:
        return float(np.min(self.grid)) if not self.continuous else float(self._bounds()[0])

    @property
    def hi(self) -> float:
        return float(np.max(self.grid)) if not self.continuous else float(self._bounds()[1])

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map uniform samples in [0, 1) to this axis (grid axes: the value at floor(u * n))."""
        if self.continuous:
            lo, hi = self._bounds()
            return lo + u * (hi - lo)
        g = self.grid
        return g[np.minimum((u * len(g)).astype(np.int64), len(g) - 1)]

    def to_dict(self) -> dict[str, Any]:
        if self.values is not None:
            return {"values": list(self.values)}
        out: dict[str, Any] = {"min": self.min, "max": self.max}
        if self.step is not None:
            out["step"] = self.step
        if self.resolution is not None:
            out["resolution"] = self.resolution
        return out


def _elements(formula: str) -> set[str]:
    return set(_ELEMENT_RE.findall(formula))


def tolerance_factor(family: Family, params: Mapping[str, Any]) -> np.ndarray:
    """Goldschmidt tolerance factor for arrays of compositions, shape (n,).

    ``t = (r_A + r_X) / (sqrt(2) (r_B + r_X))`` with occupancy-weighted Shannon / Kieslich radii
    (Å) from ``matdb.species``; A sites XII-, B and X sites VI-coordinate; double perovskites use
    the mean of the B' and B'' radii.
    """
    fr = family.site_fractions({k: np.asarray(v, dtype=float) for k, v in params.items()})

    def radius(site: str) -> Any:
        coord = SITE_COORDINATION[site]
        return sum(np.asarray(f, dtype=float) * family.species(sp).radius(coord)
                   for sp, f in fr[site].items())

    if not {"A", "X"} <= set(fr):
        raise CandidateSpaceError(f"family {family.slug} has no A/X sites for a tolerance factor")
    b_sites = [s for s in ("B", "B1", "B2") if s in fr]
    r_b = sum(radius(s) for s in b_sites) / len(b_sites)
    r_x = radius("X")
    n = max((np.asarray(v).size for v in params.values()), default=1)
    return np.broadcast_to((radius("A") + r_x) / (math.sqrt(2) * (r_b + r_x)), (n,)).astype(float)


# --- spaces ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateSpace:
    """The candidates of one family: composition and process axes plus constraints.

    Attributes:
        family: the material family.
        parameters: composition parameter axes by name (every family parameter has one).
        process: process-variable axes by name (may be empty).
        tolerance_factor: inclusive (lo, hi) window of the Goldschmidt factor, or None.
        exclude_elements: element symbols no candidate may contain.
        sampling: "continuous" (searched continuously by the proposer; ranked on ``n_samples``
            scrambled Sobol points), "grid" (full factorial), "sobol" or "lhs" (``n_samples`` points).
        n_samples: points drawn for sobol / lhs / ranking a continuous space.
        seed: scrambling seed.
        linear: linear constraints between the space's variables (``screening.constraints``).
        fixed: variables pinned to a value (``--fixed VAR=VALUE``).
    """

    family: Family
    parameters: dict[str, Dimension]
    process: dict[str, Dimension] = field(default_factory=dict)
    tolerance_factor: tuple[float, float] | None = None
    exclude_elements: tuple[str, ...] = ()
    sampling: Sampling = "continuous"
    n_samples: int | None = None
    seed: int = 0
    linear: tuple[LinearConstraint, ...] = ()
    fixed: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        fam = self.family
        where = f"space for {fam.slug}"
        missing = set(fam.parameters) - set(self.parameters)
        if missing:
            raise CandidateSpaceError(
                f"{where}: no axis for composition parameter(s) {', '.join(sorted(missing))}",
                "parameters",
            )
        for name, dim in self.parameters.items():
            if name not in fam.parameters:
                raise CandidateSpaceError(
                    f"{where}: '{name}' is not a composition parameter of {fam.slug} "
                    f"(parameters: {', '.join(fam.parameters)})", f"parameters.{name}",
                )
            p = fam.parameters[name]
            lo, hi = dim.lo, dim.hi
            if lo < p.min - FRACTION_TOLERANCE or hi > p.max + FRACTION_TOLERANCE:
                raise CandidateSpaceError(
                    f"{where}: parameters.{name} spans {lo:g}..{hi:g}, outside the range "
                    f"{p.min:g}..{p.max:g} of {fam.slug}", f"parameters.{name}",
                )
        for name, dim in self.process.items():
            if not _NAME_RE.match(name):
                raise CandidateSpaceError(f"{where}: bad process variable name '{name}'",
                                          f"process.{name}")
            if name in fam.parameters:
                raise CandidateSpaceError(
                    f"{where}: '{name}' is both a composition parameter and a process variable",
                    f"process.{name}",
                )
            if dim.lo < 0:
                raise CandidateSpaceError(
                    f"{where}: process.{name} has negative values ({dim.lo:g})", f"process.{name}"
                )
        if self.sampling not in ("continuous", "grid", "sobol", "lhs"):
            raise CandidateSpaceError(
                f"{where}: sampling must be continuous, grid, sobol or lhs, not '{self.sampling}'", "sampling"
            )
        if self.sampling == "grid":
            cont = [d.name for d in self.dims if d.continuous]
            if cont:
                raise CandidateSpaceError(
                    f"{where}: {', '.join(cont)} {'has' if len(cont) == 1 else 'have'} no step or "
                    "values; give a step or use sampling: sobol / lhs", "sampling",
                )
        elif self.n_samples is not None and self.n_samples < 1:
            raise CandidateSpaceError(f"{where}: n_samples must be >= 1", "n_samples")
        names = set(self.columns)
        for k, v in self.fixed:
            if k not in names:
                raise CandidateSpaceError(f"{where}: fixed '{k}' is not a variable of the space "
                                          f"(variables: {', '.join(self.columns)})", "fixed")
            d = next(x for x in self.dims if x.name == k)
            if not d.lo - 1e-9 <= v <= d.hi + 1e-9:
                raise CandidateSpaceError(f"{where}: fixed {k} = {v:g} is outside its range {d.lo:g}..{d.hi:g}",
                                          "fixed")
        for c in self.linear:
            bad = [n for n in c.names if n not in names]
            if bad:
                raise CandidateSpaceError(f"{where}: constraint '{c.text}' names {', '.join(bad)}, not a variable "
                                          "of the space", "constraints")
        if self.tolerance_factor is not None:
            lo, hi = self.tolerance_factor
            if not lo <= hi:
                raise CandidateSpaceError(f"{where}: tolerance_factor window {lo}..{hi} is empty",
                                          "constraints.tolerance_factor")
            if not {"A", "X"} <= set(fam.sites):
                raise CandidateSpaceError(
                    f"{where}: {fam.slug} has no A/X sites, so no tolerance factor",
                    "constraints.tolerance_factor",
                )

    # -- shape ----------------------------------------------------------------------------------

    @property
    def dims(self) -> list[Dimension]:
        return [*self.parameters.values(), *self.process.values()]

    @property
    def columns(self) -> list[str]:
        """Numeric columns of a candidate frame: parameters then process variables."""
        return [d.name for d in self.dims]

    @property
    def size(self) -> int:
        """Number of raw candidates (before constraints)."""
        if self.sampling == "grid":
            return int(np.prod([len(d.grid) for d in self.dims], dtype=np.int64))
        return int(self.n_samples or DEFAULT_N_SAMPLES)

    def empty_reason(self) -> str | None:
        """Why this space has no candidates at all (element exclusions), else None."""
        fam = self.family
        for el in self.exclude_elements:
            for site, occ in fam.sites.items():
                for sp, expr in occ.items():
                    if el in _elements(fam.species(sp).formula) and not expr.names:
                        if float(expr({})) > FRACTION_TOLERANCE:
                            return (
                                f"family {fam.slug} has {sp} on site {site} in every composition; "
                                f"the constraint exclude_elements: [{el}] leaves no candidates"
                            )
        return None

    # -- generation -----------------------------------------------------------------------------

    @cached_property
    def _lhs(self) -> np.ndarray:
        if self.size > LHS_MAX:
            raise CandidateSpaceError(
                f"lhs sampling of {self.size} points is too large (max {LHS_MAX}); use sobol",
                "n_samples",
            )
        return qmc.LatinHypercube(d=len(self.dims), seed=self.seed).random(self.size)

    def raw_chunk(self, start: int, stop: int) -> pd.DataFrame:
        """Raw candidates ``start..stop-1`` (before constraints) with a ``candidate_id`` column."""
        stop = min(stop, self.size)
        ids = np.arange(start, max(start, stop), dtype=np.int64)
        dims = self.dims
        cols: dict[str, Any] = {}
        if self.sampling == "grid":
            sizes = [len(d.grid) for d in dims]
            idx = np.unravel_index(ids, sizes) if dims else ()
            for d, i in zip(dims, idx, strict=True):
                cols[d.name] = d.grid[i]
        else:
            if self.sampling in ("sobol", "continuous"):
                eng = qmc.Sobol(d=len(dims), scramble=True, seed=self.seed)
                if start:
                    eng.fast_forward(start)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # balance needs powers of 2
                    u = eng.random(len(ids))
            else:
                u = self._lhs[start:stop]
            for k, d in enumerate(dims):
                cols[d.name] = d.from_unit(u[:, k])
        for name, v in self.fixed:
            cols[name] = np.full(len(ids), v)
        df = pd.DataFrame({"family": self.family.slug, "candidate_id": ids, **cols})
        return df

    def valid_mask(self, df: pd.DataFrame) -> np.ndarray:
        """Bool (n,): rows of a candidate frame that satisfy every constraint."""
        fam = self.family
        n = len(df)
        ok = np.ones(n, bool)
        if n == 0:
            return ok
        params = {p: df[p].to_numpy(dtype=float) for p in fam.parameters}
        for name, p in fam.parameters.items():
            v = params[name]
            ok &= (v >= p.min - FRACTION_TOLERANCE) & (v <= p.max + FRACTION_TOLERANCE)
        fr = fam.site_fractions(params)
        mult = fam.site_multiplicity
        charge = np.zeros(n)
        for site, occ in fr.items():
            total = np.zeros(n)
            for sp, f in occ.items():
                f = np.broadcast_to(np.asarray(f, dtype=float), (n,))
                ok &= (f >= -FRACTION_TOLERANCE) & (f <= 1 + FRACTION_TOLERANCE)
                total = total + f
                if mult:
                    charge = charge + mult[site] * f * fam.species(sp).charge
            ok &= np.abs(total - 1.0) <= FRACTION_TOLERANCE
        if fam.components:
            cf = [np.broadcast_to(np.asarray(v, dtype=float), (n,))
                  for v in fam.component_fractions(params).values()]
            ok &= np.abs(sum(cf) - 1.0) <= FRACTION_TOLERANCE
            for v in cf:
                ok &= v >= -FRACTION_TOLERANCE
        if fr and mult:
            ok &= np.abs(charge) <= 1e-4  # Family.validate's charge tolerance
        for el in self.exclude_elements:
            for occ in fr.values():
                for sp, f in occ.items():
                    if el in _elements(fam.species(sp).formula):
                        f = np.broadcast_to(np.asarray(f, dtype=float), (n,))
                        ok &= f <= FRACTION_TOLERANCE
        if self.linear:
            ok &= constraints_satisfied(self.linear, df)
        if self.tolerance_factor is not None and ok.any():
            t = tolerance_factor(fam, params)
            lo, hi = self.tolerance_factor
            ok &= (t >= lo) & (t <= hi)
        return ok

    def chunk(self, start: int, stop: int) -> pd.DataFrame:
        """Valid candidates among raw candidates ``start..stop-1``."""
        df = self.raw_chunk(start, stop)
        mask = self.valid_mask(df)
        return df if mask.all() else df.loc[mask].reset_index(drop=True)

    def iter_chunks(self, chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
        """Valid candidates in chunks of at most ``chunk_size`` rows (lazily generated)."""
        if chunk_size < 1:
            raise CandidateSpaceError(f"chunk_size must be >= 1, got {chunk_size}", "chunk_size")
        reason = self.empty_reason()
        if reason:
            warnings.warn(reason, EmptySpaceWarning, stacklevel=2)
            return
        for start in range(0, self.size, chunk_size):
            df = self.chunk(start, start + chunk_size)
            if len(df):
                yield df

    def to_dict(self) -> dict[str, Any]:
        """The file form of this space (inverse of :func:`space_from_dict`)."""
        out: dict[str, Any] = {
            "family": self.family.slug,
            "sampling": self.sampling,
            "parameters": {k: d.to_dict() for k, d in self.parameters.items()},
            "process": {k: d.to_dict() for k, d in self.process.items()},
        }
        if self.sampling != "grid":
            out["n_samples"] = self.n_samples
            out["seed"] = self.seed
        cons: dict[str, Any] = {}
        if self.tolerance_factor is not None:
            cons["tolerance_factor"] = list(self.tolerance_factor)
        if self.exclude_elements:
            cons["exclude_elements"] = list(self.exclude_elements)
        if self.linear:
            cons["linear"] = list(dict.fromkeys(c.text for c in self.linear))
        if cons:
            out["constraints"] = cons
        if self.fixed:
            out["fixed"] = dict(self.fixed)
        return out

    # -- continuous search ----------------------------------------------------------------------

    def resolution(self, d: Dimension) -> float | None:
        """The lab's resolution of an axis: its own, else the vocabulary's, else a fraction's."""
        if d.resolution is not None:
            return d.resolution
        if d.name in self.family.parameters:
            return FRACTION_RESOLUTION * (self.family.parameters[d.name].max - self.family.parameters[d.name].min
                                          or 1.0)
        p = process_param(d.name)
        return p.resolution if p is not None else None

    def domain(self) -> Domain:
        """The space as a domain for the proposer: variables with their resolution (grid axes keep
        their values), every linear constraint (the user's, plus site occupancies within 0..1 when
        the family's occupancies are linear in its parameters), fixed values, and the remaining
        composition checks, tolerance-factor window and element exclusions as a hard filter."""
        variables = [Variable(d.name, d.lo, d.hi, resolution=None if not d.continuous else self.resolution(d),
                              values=None if d.continuous else tuple(float(v) for v in d.grid))
                     for d in self.dims]
        occupancy = occupancy_constraints(self.family, list(self.parameters))
        return Domain(variables, [*self.linear, *occupancy], dict(self.fixed),
                      accept=lambda df: self.valid_mask(df), family=self.family)


def iter_candidates(spaces: CandidateSpace | Sequence[CandidateSpace],
                    chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """Valid candidates of one or more spaces, chunk by chunk (a generator of DataFrames)."""
    for sp in [spaces] if isinstance(spaces, CandidateSpace) else spaces:
        yield from sp.iter_chunks(chunk_size)


# --- defaults and files ------------------------------------------------------------------------

#: Default candidate spaces: the ranges the seed papers studied, searched continuously. Sources:
#: Xiao et al., Nat. Commun. 16, 1264 (2025), doi:10.1038/s41467-025-56571-w (FA/MA milled 10-180 min;
#: Cs2NaAgBiCl6 milled for hours and aged up to ~200 h; FASnI(z)Br(3-z) z = 0..3, milled minutes with
#: 0-150 mol % additive); Li et al., Nat. Commun. 14, 7612 (2023), doi:10.1038/s41467-023-43247-6
#: (CsPbI3 loadings X = 0.01-0.85 in agZIF-62, sintered 150-400 degC; X = 0, the pure glass, holds no
#: emitter and X = 1 is no composite); Xiang et al., J. Mater. Chem. A (2026), doi:10.1039/d5ta10296k
#: (FAPb(I1-xBrx)3 x = 0-0.25, solution-processed films: no milling axes). A family without an entry
#: (a lab's own) gets its composition parameters' full ranges and no process axes (add them in a
#: space file).
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "FAMAPbI3": {"parameters": {}, "process": {"milling_time_min": {"min": 10, "max": 180}}},
    "CsNaAgBiCl6": {"parameters": {}, "process": {"milling_time_min": {"min": 60, "max": 720},
                                                  "aging_time_h": {"min": 0, "max": 200}}},
    "FASnIBr": {"parameters": {}, "process": {"milling_time_min": {"min": 2, "max": 120},
                                              "additive_mol_pct": {"min": 0, "max": 150}}},
    "CsPbI3-agZIF62": {"parameters": {"X": {"min": 0.01, "max": 0.85}},
                       "process": {"sintering_temperature_C": {"min": 150, "max": 400}}},
    "FAPbIBr": {"parameters": {"x": {"min": 0.0, "max": 0.25}}, "process": {}},
}


def _default_param(fam: Family, name: str, grid: bool = False) -> Dimension:
    spec = DEFAULT_SPACES.get(fam.slug, {}).get("parameters", {}).get(name)
    p = fam.parameters[name]
    lo, hi = (float(spec["min"]), float(spec["max"])) if spec else (p.min, p.max)
    if grid:
        return Dimension(name, min=lo, max=hi, step=(hi - lo) / DEFAULT_STEPS)
    return Dimension(name, min=lo, max=hi)


def _default_process(fam: Family) -> dict[str, Dimension]:
    procs = DEFAULT_SPACES.get(fam.slug, {}).get("process", {})
    return {k: Dimension.from_spec(k, v, "process") for k, v in procs.items()}


def _default_grid(name: str, d: Dimension) -> Dimension:
    """A continuous default process range as a grid of ``DEFAULT_STEPS`` intervals (one point if min == max)."""
    lo, hi = d._bounds()
    return Dimension(name, min=lo, max=hi, step=(hi - lo) / DEFAULT_STEPS or 1.0)


def default_space(family: str | Family, **constraints: Any) -> CandidateSpace:
    """The default space of a family (:data:`DEFAULT_SPACES`), searched continuously.
    ``constraints`` as in a space file (tolerance_factor, exclude_elements, linear)."""
    fam = get_family(family) if isinstance(family, str) else family
    return CandidateSpace(
        fam, {p: _default_param(fam, p) for p in fam.parameters}, _default_process(fam),
        **_constraints(constraints, f"space for {fam.slug}", fam,
                       [*fam.parameters, *_default_process(fam)]),
    )


def default_spaces(families: Sequence[str] | None = None, **constraints: Any
                   ) -> list[CandidateSpace]:
    """Default spaces of several families (default: all built-in ones)."""
    from matdb.families import builtin_families

    slugs = list(families) if families is not None else list(builtin_families())
    return [default_space(s, **constraints) for s in slugs]


def _constraints(spec: Any, where: str, family: Family | None = None,
                 variables: Sequence[str] = ()) -> dict[str, Any]:
    """Constraints of a space file: a list of text constraints and/or named filters, or one mapping
    ``{tolerance_factor, exclude_elements, linear}``."""
    named: dict[str, Any] = {}
    linear_text: list[Any] = []
    items = spec if isinstance(spec, list) else [spec] if spec else []
    for item in items:
        if isinstance(item, str):
            linear_text.append(item)
        elif isinstance(item, Mapping):
            for k, v in item.items():
                if k == "linear":
                    linear_text += list(v) if isinstance(v, (list, tuple)) else [v]
                else:
                    named[k] = v
        else:
            raise CandidateSpaceError(f"{where}: a constraint is text ('a + b <= 0.9') or a mapping, got {item!r}",
                                      "constraints")
    unknown = set(named) - {"tolerance_factor", "exclude_elements"}
    if unknown:
        raise CandidateSpaceError(
            f"{where}: unknown constraint(s) {', '.join(sorted(unknown))} "
            "(known: linear constraints as text, tolerance_factor, exclude_elements)", "constraints",
        )
    out: dict[str, Any] = {}
    tf = named.get("tolerance_factor")
    if tf is not None:
        try:
            lo, hi = (float(v) for v in tf)
        except (TypeError, ValueError):
            raise CandidateSpaceError(
                f"{where}: constraints.tolerance_factor must be [lo, hi], got {tf!r}",
                "constraints.tolerance_factor",
            ) from None
        out["tolerance_factor"] = (lo, hi)
    ex = named.get("exclude_elements")
    if ex is not None:
        ex = [ex] if isinstance(ex, str) else list(ex)
        for el in ex:
            if not isinstance(el, str) or not re.fullmatch(r"[A-Z][a-z]?", el):
                raise CandidateSpaceError(
                    f"{where}: constraints.exclude_elements: '{el}' is not an element symbol",
                    "constraints.exclude_elements",
                )
        out["exclude_elements"] = tuple(ex)
    linear: list[LinearConstraint] = []
    for text in linear_text:
        try:
            linear += parse_constraint(text, list(variables), family)
        except ConstraintError as exc:
            raise CandidateSpaceError(f"{where}: {exc}", "constraints") from None
    if linear:
        out["linear"] = tuple(linear)
    return out


def space_from_dict(data: Mapping[str, Any], families: Mapping[str, Family] | None = None
                    ) -> list[CandidateSpace]:
    """Spaces described by one file entry (see the module docstring); a list because
    ``family`` may name several families."""
    if not isinstance(data, Mapping):
        raise CandidateSpaceError(f"a space must be a mapping, got {type(data).__name__}")
    known = {"family", "sampling", "n_samples", "seed", "parameters", "process", "constraints", "fixed"}
    unknown = set(data) - known
    if unknown:
        raise CandidateSpaceError(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in space "
            f"(known: {', '.join(sorted(known))})", "space",
        )
    if "family" not in data:
        raise CandidateSpaceError("a space needs 'family'", "family")
    fam_spec = data["family"]
    if fam_spec == "all":
        from matdb.families import builtin_families

        slugs = [*builtin_families(), *(families or {})]
    else:
        slugs = [fam_spec] if isinstance(fam_spec, str) else list(fam_spec)
    sampling = str(data.get("sampling", "auto"))
    n_samples = data.get("n_samples")
    out = []
    for slug in slugs:
        fam = get_family(str(slug), families)
        where = f"space for {fam.slug}"
        pspec = dict(data.get("parameters") or {})
        if "loading" in pspec and fam.structure == "composite" and "X" in fam.parameters:
            pspec["X"] = pspec.pop("loading")
        given: dict[str, Dimension] = {}
        for name, spec in pspec.items():
            if name not in fam.parameters:
                raise CandidateSpaceError(
                    f"{where}: '{name}' is not a composition parameter of {fam.slug} "
                    f"(parameters: {', '.join(fam.parameters)})", f"parameters.{name}",
                )
            given[name] = Dimension.from_spec(name, spec, "parameters")
        if "process" in data:
            process = {k: Dimension.from_spec(k, v, "process")
                       for k, v in (data.get("process") or {}).items()}
        else:
            process = _default_process(fam)
        mode = sampling
        if mode == "auto":  # every axis written as a grid: the user asks for a grid
            written = [*given.values(), *(process.values() if "process" in data else [])]
            mode = "grid" if written and all(not d.continuous for d in written) else "continuous"
        params = {p: given.get(p) or _default_param(fam, p, grid=mode == "grid") for p in fam.parameters}
        try:
            n = None if n_samples is None else int(n_samples)
            if n is None and mode != "grid":
                n = DEFAULT_N_SAMPLES
            seed = int(data.get("seed", 0))
        except (TypeError, ValueError):
            raise CandidateSpaceError(f"{where}: n_samples and seed must be integers",
                                      "n_samples") from None
        if mode == "grid" and "process" not in data:  # the default process ranges get a grid
            process = {k: (_default_grid(k, d) if d.continuous and d.min is not None else d)
                       for k, d in process.items()}
        fixed_spec = data.get("fixed") or {}
        if not isinstance(fixed_spec, Mapping):
            raise CandidateSpaceError(f"{where}: fixed must be a mapping {{variable: value}}", "fixed")
        try:
            fixed = tuple((str(k), float(v)) for k, v in fixed_spec.items())
        except (TypeError, ValueError):
            raise CandidateSpaceError(f"{where}: fixed values must be numbers", "fixed") from None
        out.append(CandidateSpace(
            # mode is any text from the file; CandidateSpace.__post_init__ rejects one that is not a Sampling
            fam, params, process, sampling=cast(Sampling, mode), n_samples=n, seed=seed,
            fixed=fixed, **_constraints(data.get("constraints"), where, fam, [*params, *process]),
        ))
    return out


def load_spaces(path: str | Path, families: Mapping[str, Family] | None = None
                ) -> list[CandidateSpace]:
    """Read candidate spaces from a YAML file (format in the module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CandidateSpaceError(f"cannot read space file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CandidateSpaceError(f"{path} is not valid YAML: {exc}") from None
    if isinstance(data, Mapping) and "spaces" in data:
        data = data["spaces"]
    entries = data if isinstance(data, list) else [data]
    return [sp for entry in entries for sp in space_from_dict(entry, families)]


@dataclass(frozen=True)
class DescriptorFeaturizer:
    """``featurize`` for :func:`rank_candidates`: candidate frame -> descriptor matrix.

    Calls ``screening.descriptors.family_descriptors`` on the family of each chunk (chunks hold
    one family) and returns the columns ``descriptors`` in that order, shape (n, len(descriptors)).
    Process columns (``screening.descriptors.PROCESS_INPUTS``) are passed on by name;
    other candidate columns are ignored.

    Attributes:
        descriptors: descriptor names (see ``screening.descriptors.DESCRIPTORS``).
        fill_value: replaces NaN descriptors (e.g. undefined for a family); None raises instead.
        families: user-defined families by slug, besides the built-in ones.
    """

    descriptors: tuple[str, ...]
    fill_value: float | None = None
    families: Mapping[str, Family] | None = None

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        from screening.descriptors import PROCESS_INPUTS, family_descriptors

        if len(df) == 0:
            return np.zeros((0, len(self.descriptors)))
        out = np.empty((len(df), len(self.descriptors)))
        for slug in pd.unique(df["family"]):
            rows = np.flatnonzero(df["family"].to_numpy() == slug)
            sub = df.iloc[rows]
            fam = get_family(str(slug), self.families)
            params = {p: sub[p].to_numpy(float) for p in fam.parameters}
            process = {c: sub[c].to_numpy(float) for c in sub.columns if c in PROCESS_INPUTS}
            d = family_descriptors(fam, params, process or None)
            missing = [n for n in self.descriptors if n not in d.columns]
            if missing:
                raise CandidateSpaceError(
                    f"descriptor(s) {', '.join(missing)} not available for {fam.slug} "
                    f"(with process columns {sorted(process)})", "descriptors",
                )
            block = d[list(self.descriptors)].to_numpy(float)
            bad = ~np.isfinite(block)
            if bad.any():
                if self.fill_value is None:
                    names = sorted({self.descriptors[j] for j in np.flatnonzero(bad.any(axis=0))})
                    raise CandidateSpaceError(
                        f"descriptor(s) {', '.join(names)} undefined for some {fam.slug} "
                        "candidates; pass fill_value or choose other descriptors", "descriptors",
                    )
                block[bad] = self.fill_value
            out[rows] = block
        return out


# --- ranking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RankOptions:
    objectives: tuple[str, ...]
    directions: tuple[Objective, ...]
    weights: tuple[float, ...]
    spans: tuple[float, ...]
    bests: tuple[float, ...]
    acquisition: str
    beta: float
    xi: float
    top_k: int
    tol: float


def _decision_values(s: Surrogate, o: Objective) -> np.ndarray:
    """The training values on the decision scale (latent for max/min, quantity units for targets)."""
    return s.transform_.forward(s.y_train_) if o.direction != "target" else s.y_train_


def _objective_span(s: Surrogate, o: Objective) -> float:
    span = float(np.ptp(o.utility(_decision_values(s, o))))
    return span if span > 0 else 1.0


def _acquisition(kind: str, o: Objective, mu: np.ndarray, sd: np.ndarray, best: float, xi: float,
                 beta: float) -> np.ndarray:
    """A per-objective acquisition on the objective's utility (higher is better)."""
    if kind == "ei":
        return o.expected_improvement(mu, sd, best, xi)
    if kind == "ucb":
        return o.optimistic(mu, sd, math.sqrt(beta))
    if kind == "mean":
        return o.utility(mu)
    if kind == "pi":
        from scipy import stats

        z = (o.optimistic(mu, sd, 0.0) - best - xi) / np.maximum(sd, 1e-12)
        return stats.norm.cdf(z)
    raise CandidateSpaceError(f"acquisition must be 'ei', 'pi', 'ucb' or 'mean', not {kind!r}", "acquisition")


def _score_frame(df: pd.DataFrame, space_index: int, surrogates: Mapping[str, Surrogate],
                 featurize: Callable[[pd.DataFrame], np.ndarray], opts: _RankOptions,
                 made: pd.DataFrame | None, columns: Sequence[str]
                 ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Score one chunk; return (its top-k, its Pareto front, rows scored)."""
    from screening.acquisition import match_made
    from screening.pareto import pareto_mask

    if made is not None and len(made) and len(df):
        m = made[made["family"] == df["family"].iloc[0]]
        if len(m):
            hit = match_made(df[list(columns)].to_numpy(float), m[list(columns)].to_numpy(float),
                             opts.tol)
            df = df.loc[~hit].reset_index(drop=True)
    if len(df) == 0:
        return df.iloc[:0], df.iloc[:0], 0
    X = np.asarray(featurize(df), dtype=float)
    if X.ndim != 2 or len(X) != len(df):
        raise CandidateSpaceError(
            f"featurize returned shape {X.shape} for {len(df)} candidates; expected (n, d)"
        )
    out = df.copy()
    out.insert(0, "space", space_index)
    score = np.zeros(len(df))
    utilities = []
    for k, name in enumerate(opts.objectives):
        o = opts.directions[k]
        sur = surrogates[name]
        mu, sd = sur.predict(X, return_std=True)
        out[f"{name}_mean"] = mu
        out[f"{name}_std"] = sd
        # higher/lower is better: decide on the model's latent scale (see screening.optimizer._Model)
        dmu, dsd = sur.predict_latent(X, noise=False) if o.direction != "target" else (mu, sd)
        a = _acquisition(opts.acquisition, o, dmu, dsd, opts.bests[k], opts.xi, opts.beta)
        out[f"{name}_acq"] = a
        score += opts.weights[k] * a / opts.spans[k]
        utilities.append(o.utility(mu))
        out[f"{name}_utility"] = utilities[-1]
    out["acquisition"] = score
    top = _top(out, opts.top_k)
    front = out.loc[pareto_mask(np.column_stack(utilities))]
    return top, front, len(df)


def _top(df: pd.DataFrame, k: int) -> pd.DataFrame:
    if len(df) == 0:
        return df
    order = np.lexsort((df["candidate_id"].to_numpy(), df["space"].to_numpy(),
                        -df["acquisition"].to_numpy()))
    return df.iloc[order[:k]].reset_index(drop=True)


def _merge_front(a: pd.DataFrame | None, b: pd.DataFrame, objectives: Sequence[str]
                 ) -> pd.DataFrame:
    from screening.pareto import pareto_mask

    both = b if a is None else pd.concat([a, b], ignore_index=True)
    if len(both) == 0:
        return both
    F = both[[f"{o}_utility" for o in objectives]].to_numpy(float)
    front = both.loc[pareto_mask(F)]
    order = np.lexsort((front["candidate_id"].to_numpy(), front["space"].to_numpy()))
    return front.iloc[order].reset_index(drop=True)


def _score_range(space: CandidateSpace, space_index: int, start: int, stop: int,
                 surrogates: Mapping[str, Surrogate],
                 featurize: Callable[[pd.DataFrame], np.ndarray], opts: _RankOptions,
                 made: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Generate and score raw candidates ``start..stop-1`` of one space (a dask task)."""
    df = space.chunk(start, stop)
    return _score_frame(df, space_index, surrogates, featurize, opts, made, space.columns)


def rank_candidates(
    surrogates: Mapping[str, Surrogate],
    featurize: Callable[[pd.DataFrame], np.ndarray],
    space: CandidateSpace | Sequence[CandidateSpace],
    chunk_size: int = 100_000,
    top_k: int = 100,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    backend: Literal["numpy", "dask"] = "numpy",
    *,
    acquisition: Literal["ucb", "ei", "pi", "mean"] = "ucb",
    beta: float = 4.0,
    xi: float = 0.01,
    made: pd.DataFrame | None = None,
    tol: float = 1e-6,
    client: Any = None,
    max_in_flight: int | None = None,
    objectives: Mapping[str, Objective] | None = None,
) -> pd.DataFrame:
    """Rank every candidate of ``space`` and return the top ``top_k``.

    Args:
        surrogates: objective name -> surrogate (e.g. {"plqy": s1, "stability": s2}).
        objectives: objective name -> Objective (direction: max, min or target); default: max.
        featurize: candidate DataFrame (columns family, candidate_id, parameters, process
            variables) -> feature matrix (n, d) in the surrogates' feature order.
        space: one space or several (e.g. one per family).
        chunk_size: raw candidates generated and scored at once (memory ~ chunk_size rows).
        top_k: rows returned.
        weights: per-objective weights of the scalarised acquisition (normalised to sum 1);
            default equal.
        backend: "numpy" (in process) or "dask" (tasks on ``client``, a dask.distributed
            Client; default: the current client, else a temporary in-process LocalCluster).
        acquisition: per-objective acquisition ("ucb": mean + sqrt(beta) std; "ei"/"pi"
            against each surrogate's best training value; "mean").
        made: experiments already made (columns family + the space's columns); matching
            candidates (within ``tol``) are skipped.
        max_in_flight: dask only: chunks scheduled at once (default 2 per worker thread).

    Returns:
        DataFrame of the top ``top_k`` candidates, best first: space, family, candidate_id,
        parameter and process columns, ``<objective>_mean``, ``_std``, ``_acq``,
        ``acquisition`` (the weighted score) and ``pareto`` (True if on the Pareto front of
        predicted means over all scored candidates). ``df.attrs`` holds ``pareto_front`` (the
        whole front, same columns, as a dict of lists: ``pd.DataFrame(df.attrs["pareto_front"])``),
        ``n_scored`` and ``n_spaces_empty``.

    Raises:
        CandidateSpaceError: no candidate survives the constraints (the message says why),
            bad weights or backend.
    """
    spaces = [space] if isinstance(space, CandidateSpace) else list(space)
    if not surrogates:
        raise CandidateSpaceError("rank_candidates needs at least one surrogate", "surrogates")
    if top_k < 1 or chunk_size < 1:
        raise CandidateSpaceError("top_k and chunk_size must be >= 1", "top_k")
    directions = tuple((objectives or {}).get(o) or Objective(o, o) for o in surrogates)
    names = tuple(surrogates)
    if weights is None:
        w = np.ones(len(names))
    elif isinstance(weights, Mapping):
        extra = set(weights) - set(names)
        if extra:
            raise CandidateSpaceError(
                f"weights for unknown objective(s) {', '.join(sorted(extra))}", "weights"
            )
        w = np.array([float(weights.get(o, 0.0)) for o in names])
    else:
        w = np.asarray(weights, dtype=float)
    if w.shape != (len(names),) or np.any(w < 0) or not w.sum() > 0:
        raise CandidateSpaceError(
            f"weights must be {len(names)} non-negative numbers, not all zero", "weights"
        )
    w = w / w.sum()
    opts = _RankOptions(
        names, directions, tuple(w),
        tuple(_objective_span(surrogates[o], d) for o, d in zip(names, directions, strict=True)),
        tuple(float(np.max(d.utility(_decision_values(surrogates[o], d))))
              for o, d in zip(names, directions, strict=True)),
        acquisition, beta, xi, top_k, tol,
    )

    reasons = []
    tasks: list[tuple[int, int, int]] = []
    for i, sp in enumerate(spaces):
        r = sp.empty_reason()
        if r:
            warnings.warn(r, EmptySpaceWarning, stacklevel=2)
            reasons.append(r)
            continue
        tasks += [(i, s, min(s + chunk_size, sp.size)) for s in range(0, sp.size, chunk_size)]

    top: pd.DataFrame | None = None
    front: pd.DataFrame | None = None
    n_scored = 0

    def merge(result: tuple[pd.DataFrame, pd.DataFrame, int]) -> None:
        nonlocal top, front, n_scored
        t, f, n = result
        n_scored += n
        if n:
            top = _top(t if top is None else pd.concat([top, t], ignore_index=True), top_k)
            front = _merge_front(front, f, names)

    if backend == "numpy":
        for i, s, e in tasks:
            merge(_score_range(spaces[i], i, s, e, surrogates, featurize, opts, made))
    elif backend == "dask":
        _run_dask(tasks, spaces, surrogates, featurize, opts, made, client, max_in_flight, merge)
    else:
        raise CandidateSpaceError(f"backend must be 'numpy' or 'dask', not {backend!r}", "backend")

    if top is None or n_scored == 0:
        why = "; ".join(reasons) if reasons else "no candidate satisfies the constraints"
        raise CandidateSpaceError(f"no candidates to rank: {why}", "space")
    assert front is not None
    key = set(zip(front["space"], front["candidate_id"], strict=True))
    top["pareto"] = [(s, c) in key for s, c in zip(top["space"], top["candidate_id"], strict=True)]
    top.attrs["pareto_front"] = front.to_dict(orient="list")
    top.attrs["n_scored"] = n_scored
    top.attrs["n_spaces_empty"] = len(reasons)
    return top


def _run_dask(tasks: list[tuple[int, int, int]], spaces: list[CandidateSpace],
              surrogates: Mapping[str, Surrogate], featurize: Callable[[pd.DataFrame], np.ndarray],
              opts: _RankOptions, made: pd.DataFrame | None, client: Any,
              max_in_flight: int | None, merge: Callable[[Any], None]) -> None:
    from distributed import Client, LocalCluster, as_completed, get_client

    own = None
    if client is None:
        try:
            client = get_client()
        except ValueError:
            own = Client(LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                      dashboard_address=None))
            client = own
    try:
        nthreads = sum(client.nthreads().values()) or 1
        window = max_in_flight or 2 * nthreads
        sur_f = client.scatter(dict(surrogates), broadcast=True)
        made_f = client.scatter(made, broadcast=True) if made is not None else None
        pending = iter(tasks)

        def submit(task: tuple[int, int, int]) -> Any:
            i, s, e = task
            return client.submit(_score_range, spaces[i], i, s, e, sur_f, featurize, opts,
                                 made_f, pure=False)

        first = [submit(t) for _, t in zip(range(window), pending, strict=False)]
        ac = as_completed(first)
        for fut in ac:
            merge(fut.result())
            fut.release()
            nxt = next(pending, None)
            if nxt is not None:
                ac.add(submit(nxt))
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            cluster.close()
