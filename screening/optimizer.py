"""Choosing the next experiments: continuous, constrained, honest about uncertainty, lab-shaped.

This is matdb's proposer. :func:`suggest` is the engine the ``propose`` service uses for material
families; :class:`Optimizer` wraps it in the ask/tell shape of scikit-optimize and BayBE for any
problem written as variables and constraints (the benchmark's simulated labs use it):

    >>> opt = Optimizer([Variable("X", 0.01, 0.85, resolution=0.01), Variable("T", 150, 350, resolution=5)],
    ...                 constraints=["X + 0.001*T <= 1.2"], direction="max", seed=0)
    >>> opt.tell(df, y, feasible)          # y is NaN where the synthesis failed
    >>> batch = opt.ask(4)                 # DataFrame: the variables + predictions

How a batch is chosen
---------------------
1. **Too few results** (fewer than ``MIN_MODEL_POINTS`` for the objective): a space-filling design
   (greedy maximin over a scrambled Sobol sample of the feasible domain, keeping away from what was
   made), labelled ``design = "initial_design"``.
2. Otherwise a Gaussian-process surrogate per objective (:class:`screening.surrogate.Surrogate`)
   on inputs scaled to the domain's unit cube, with length scales bounded relative to the domain and
   a noise floor from the measurement's known precision or from replicates; failed syntheses train a
   feasibility classifier (:mod:`screening.feasibility`) whose p(feasible) multiplies the
   acquisition.
3. The acquisition (expected improvement of the objective's *utility* — higher, lower or closest to
   a target, :mod:`screening.objectives` — over the best predicted value among the made points) is
   maximised over the **continuous** constrained domain: a dense scrambled Sobol sample, then
   multi-start SLSQP from the best points respecting the linear constraints (``A x <= b``) and
   bounds; hard non-linear filters (tolerance-factor window, element exclusions) are checked on the
   result. The optimum is rounded to the lab's resolution per variable (the best feasible of the
   2^d neighbouring lattice points).
4. **Batches** are built greedily with the kriging believer: after each pick the model is
   conditioned on its predicted value (hyperparameters kept), which removes the picked point's
   uncertainty and pushes the next pick elsewhere. In batches of ``EXPLORE_FROM`` or more, the last
   ``EXPLORE_SHARE`` of each batch is chosen by Thompson sampling instead: one joint posterior draw
   of a short-range model (length scales up to ``EXPLORE_LENGTH_SCALE``) over the candidates, so
   every batch also revisits unexplored regions and a model that has settled on a decoy optimum
   keeps being challenged (an upper confidence bound of the same model, tried before, stayed next
   to the decoy: its optimism there outweighed that of the empty regions). A pick whose expected
   improvement is not worth a measurement (``EXPLOIT_MIN``) is chosen the same way, and its
   ``pick`` column says "explore".
   Decisions use the model's std without the few-points widening shown to people
   (``DECISION_WIDEN``): widened, expected improvement chased the largest raw std, the corners.
5. **Slots**: with ``slots=N`` a batch is made of runs of N jars (a mixer mill holds two jars, a
   planetary mill four, a furnace run one temperature); the ``shared`` variables of a run's later
   jars are pinned to its first jar's values, and the others are chosen as above.
6. Each proposal carries its predicted mean and std per objective, p(feasible), the acquisition and
   an **extrapolation** distance: the distance from the nearest made point in the unit-scaled
   feature space, as a fraction of the cube's diagonal; above ``EXTRAPOLATION_FLAG`` it is flagged.
   ``trust_region=r`` keeps proposals within that distance of the data.

Candidate pools (``pool=``) replace the continuous domain: only those rows are scored and chosen,
never one already made.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.spatial import cKDTree
from scipy.stats import qmc

from screening.constraints import LinearConstraint, parse_constraint
from screening.design import maximin_select
from screening.feasibility import FeasibilityModel
from screening.objectives import Objective
from screening.surrogate import LENGTH_SCALE_BOUNDS, Surrogate

__all__ = [
    "Domain",
    "EXTRAPOLATION_FLAG",
    "MIN_MODEL_POINTS",
    "Optimizer",
    "OptimizerError",
    "Variable",
    "replicate_noise",
    "suggest",
]

#: Results of an objective needed before a model proposes (below: an initial design).
MIN_MODEL_POINTS = 3
#: Raw quasi-random points per free variable scored before local optimisation (at least 1024).
SAMPLES_PER_DIM = 512
#: Local optimisation starts (the best raw points).
N_STARTS = 4
#: From this batch size on, each batch ends with one wide-margin exploration pick.
EXPLORE_FROM = 3
#: Share of such a batch (at least one pick, the last ones) chosen by exploration.
EXPLORE_SHARE = 0.25
#: The exploration pick's margin (standard deviations of the utility).
EXPLORE_KAPPA = 2.0
#: Largest length scale (fraction of the domain) of the exploration model: a model that allows only
#: short-range correlation cannot call a gap between experiments known, so its optimism points at
#: the gaps and at isolated promising measurements that the smooth main model averages away.
EXPLORE_LENGTH_SCALE = 0.1
#: A pick exploits only while its expected improvement is worth a measurement: at least this
#: fraction of the observed utility range; otherwise it explores. (It also had to exceed half the
#: measurement noise; expected improvement is of the noise-free function, though, and with the
#: few-points noise floor that rule sent most "exploit" picks to exploration: the refinement steps
#: near an optimum were never taken. Without it constrained4d hit in 3 of 3 seeds at 28-40
#: experiments instead of 2 of 3 at 48-52; 2026-12-04 development runs.)
EXPLOIT_MIN = 0.01
#: The acquisition is weighted by p(feasible) to this power: 1 is constrained expected improvement
#: (Gardner et al., ICML 2014). A power of 2 was needed while p(feasible) was the classifier's
#: under-confident posterior average (see screening.feasibility); it pushed proposals off the
#: failure boundary where infeasible3d's optimum lies (p ~ 0.2 there, squared 0.04: 0 of 2 seeds).
FEASIBILITY_POWER = 1.0
#: Whether decisions use the surrogate's few-points widening of the std (``std_inflation_``, meant
#: for the intervals shown to people). Widening every std by the same factor makes expected
#: improvement favour the largest raw std, i.e. the domain's corners, far from all data.
DECISION_WIDEN = False
#: Candidates scored by one joint posterior draw for an exploration pick (Thompson sampling; the
#: draw's cost grows as the cube of this).
THOMPSON_POINTS = 1024
#: Finite-difference step (unit cube) of the acquisition's gradient in the local optimisation:
#: scipy's default for SLSQP's numerical gradient (sqrt of machine epsilon) is below what a
#: GP's mean resolves, so 1e-4 of the domain, far below any lab's resolution.
FD_STEP = 1e-4
#: Extrapolation distance (fraction of the unit cube's diagonal) above which a proposal is flagged.
EXTRAPOLATION_FLAG = 0.15
#: Two points closer than this (unit cube) count as the same experiment.
SAME_POINT = 1e-6


class OptimizerError(ValueError):
    """A request the proposer cannot serve; ``field`` names what to change."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- the domain ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """A variable of the search: its range, the lab's resolution, or a finite list of values."""

    name: str
    lo: float
    hi: float
    resolution: float | None = None
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.hi < self.lo:
            raise OptimizerError(f"variable '{self.name}': need finite lo <= hi, got {self.lo}..{self.hi}", self.name)
        if self.resolution is not None and not self.resolution > 0:
            raise OptimizerError(f"variable '{self.name}': resolution must be > 0", self.name)

    def snap(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The neighbouring allowed values below and above ``v`` (equal when ``v`` is allowed)."""
        v = np.clip(np.asarray(v, dtype=float), self.lo, self.hi)
        if self.values is not None:
            g = np.unique(np.asarray(self.values, dtype=float))
            i = np.searchsorted(g, v)
            above = g[np.minimum(i, len(g) - 1)]
            below = g[np.maximum(np.where(np.isin(v, g), i, i - 1), 0)]
            return below, above
        if self.resolution is None:
            return v, v
        r = self.resolution
        # the lattice starts at lo; the upper end stays reachable even off the lattice
        k = (v - self.lo) / r
        down = np.clip(self.lo + np.floor(k + 1e-9) * r, self.lo, self.hi)
        up = np.clip(self.lo + np.ceil(k - 1e-9) * r, self.lo, self.hi)
        return np.round(down, 12), np.round(up, 12)


class Domain:
    """Variables, linear constraints (``A x <= b``), fixed values and hard non-linear filters.

    Args:
        variables: the search variables.
        constraints: LinearConstraint objects or text ("a + b <= 0.9").
        fixed: variable -> value pinned for this proposal.
        accept: optional vectorised filter DataFrame -> bool mask for what cannot be written as
            linear constraints (tolerance-factor window, element exclusions, a family's full
            composition checks).
        family: a material family, so that text constraints may name site fractions ("Cs <= 0.3").
    """

    def __init__(self, variables: Sequence[Variable], constraints: Sequence[LinearConstraint | str] = (),
                 fixed: Mapping[str, float] | None = None,
                 accept: Callable[[pd.DataFrame], np.ndarray] | None = None, family: Any = None) -> None:
        self.variables = list(variables)
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise OptimizerError("variable names must be distinct")
        self.names = names
        self.family = family
        cons: list[LinearConstraint] = []
        for c in constraints:
            cons += parse_constraint(c, names, family) if isinstance(c, str) else [c]
        for c in cons:
            unknown = [k for k in c.names if k not in names]
            if unknown:
                raise OptimizerError(f"constraint '{c.text}' names unknown variable(s) {', '.join(unknown)}",
                                     "constraints")
        self.constraints = cons
        self.fixed = {k: float(v) for k, v in (fixed or {}).items()}
        for k, v in self.fixed.items():
            if k not in names:
                raise OptimizerError(f"--fixed {k}: '{k}' is not a variable of the space "
                                     f"(variables: {', '.join(names)})", "fixed")
            var = self.variables[names.index(k)]
            if not var.lo - 1e-9 <= v <= var.hi + 1e-9:
                raise OptimizerError(f"--fixed {k}={v:g} is outside its range {var.lo:g}..{var.hi:g}", "fixed")
        self.accept = accept
        self.free = [v for v in self.variables if v.name not in self.fixed]
        self.lo = np.array([v.lo for v in self.variables], dtype=float)
        self.hi = np.array([v.hi for v in self.variables], dtype=float)
        self.span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)

    def with_fixed(self, extra: Mapping[str, float]) -> Domain:
        return Domain(self.variables, self.constraints, {**self.fixed, **extra}, self.accept, self.family)

    # -- coordinates ---------------------------------------------------------------------------------

    def unit(self, df: pd.DataFrame) -> np.ndarray:
        """All variables of ``df`` scaled to the unit cube, shape (n, len(variables))."""
        X = df[self.names].to_numpy(dtype=float)
        return (X - self.lo) / self.span

    def frame(self, U_free: np.ndarray) -> pd.DataFrame:
        """Rows of free-variable unit coordinates -> a frame of every variable (fixed ones filled)."""
        U_free = np.atleast_2d(U_free)
        cols: dict[str, np.ndarray] = {}
        j = 0
        for i, v in enumerate(self.variables):
            if v.name in self.fixed:
                cols[v.name] = np.full(len(U_free), self.fixed[v.name])
            else:
                cols[v.name] = self.lo[i] + U_free[:, j] * self.span[i]
                j += 1
        return pd.DataFrame(cols)

    def full_array(self, U_free: np.ndarray) -> np.ndarray:
        """Like :meth:`frame`, as an array of every variable in order (the fast inner loop)."""
        U_free = np.atleast_2d(U_free)
        X = np.empty((len(U_free), len(self.variables)))
        j = 0
        for i, v in enumerate(self.variables):
            if v.name in self.fixed:
                X[:, i] = self.fixed[v.name]
            else:
                X[:, i] = self.lo[i] + U_free[:, j] * self.span[i]
                j += 1
        return X

    def _free_index(self) -> list[int]:
        return [i for i, v in enumerate(self.variables) if v.name not in self.fixed]

    def linear_unit(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with ``A u <= b`` over the free variables' unit coordinates."""
        idx = {v: i for i, v in enumerate(self.names)}
        free = self._free_index()
        A = np.zeros((len(self.constraints), len(free)))
        b = np.zeros(len(self.constraints))
        for r, c in enumerate(self.constraints):
            ub = c.upper
            for name, coef in c.coefficients:
                i = idx[name]
                ub -= coef * self.lo[i]
                if name in self.fixed:
                    ub -= coef * (self.fixed[name] - self.lo[i])
                else:
                    A[r, free.index(i)] = coef * self.span[i]
            b[r] = ub
        return A, b

    # -- feasibility -----------------------------------------------------------------------------------

    def feasible(self, df: pd.DataFrame, tol: float = 1e-9) -> np.ndarray:
        """Bool (n,): within bounds, satisfying every linear constraint and the hard filters."""
        if len(df) == 0:
            return np.zeros(0, bool)
        X = df[self.names].to_numpy(dtype=float)
        ok = np.all((X >= self.lo - tol * self.span) & (X <= self.hi + tol * self.span), axis=1)
        for c in self.constraints:
            ok &= c.satisfied(df, tol=tol * max(1.0, abs(c.upper)))
        for k, v in self.fixed.items():
            ok &= np.abs(df[k].to_numpy(dtype=float) - v) <= 1e-9 * max(1.0, abs(v))
        if self.accept is not None and ok.any():
            ok &= np.asarray(self.accept(df), dtype=bool)
        return ok

    def round(self, df: pd.DataFrame, score: Callable[[pd.DataFrame], np.ndarray] | None = None) -> pd.DataFrame:
        """Each row moved to the lab's resolution: the feasible neighbouring lattice point with the
        best ``score`` (nearest when no score); rows with no feasible neighbour are dropped."""
        free = [v for v in self.free if v.resolution is not None or v.values is not None]
        if not free or len(df) == 0:
            return df[self.feasible(df)].reset_index(drop=True)
        out = []
        for _, row in df.iterrows():
            opts = [v.snap(np.array([row[v.name]])) for v in free]
            combos = np.array(np.meshgrid(*[[o[0][0], o[1][0]] for o in opts], indexing="ij")).reshape(len(free), -1).T
            cand = pd.DataFrame([row.to_dict()] * len(combos)).reset_index(drop=True)
            for j, v in enumerate(free):
                cand[v.name] = combos[:, j]
            cand = cand.drop_duplicates(subset=self.names).reset_index(drop=True)
            ok = self.feasible(cand)
            if not ok.any():
                continue
            cand = cand[ok].reset_index(drop=True)
            if score is not None:
                best = int(np.argmax(score(cand)))
            else:
                diff = cand[self.names].to_numpy(float) - row[self.names].to_numpy(float)
                d = np.linalg.norm(diff / self.span, axis=1)
                best = int(np.argmin(d))
            out.append(cand.iloc[best])
        return pd.DataFrame(out, columns=df.columns).reset_index(drop=True) if out else df.iloc[:0]

    def snap(self, df: pd.DataFrame) -> pd.DataFrame:
        """Every free variable rounded to its nearest allowed value (vectorised); rows that leave the
        feasible domain by rounding are dropped (use :meth:`round` to search the neighbours)."""
        out = df.copy()
        for v in self.free:
            if v.resolution is None and v.values is None:
                continue
            x = out[v.name].to_numpy(dtype=float)
            down, up = v.snap(x)
            out[v.name] = np.where(np.abs(x - down) <= np.abs(up - x), down, up)
        return out[self.feasible(out)].reset_index(drop=True)

    def sample(self, n: int, seed: int = 0, max_draws: int = 2_000_000) -> pd.DataFrame:
        """Up to ``n`` feasible points (scrambled Sobol, rejection sampling, rounded to the lattice)."""
        d = len(self.free)
        if d == 0:
            one = self.frame(np.zeros((1, 0)))
            return one[self.feasible(one)]
        eng = qmc.Sobol(d=d, scramble=True, seed=seed)
        got: list[pd.DataFrame] = []
        have, drawn = 0, 0
        batch = max(1024, 2 ** math.ceil(math.log2(max(n, 2))))
        while have < n and drawn < max_draws:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                U = eng.random(batch)
            drawn += batch
            df = self.snap(self.frame(U))
            if len(df):
                got.append(df)
                have += len(df)
            batch = min(batch * 2, 1 << 17)
        out = pd.concat(got, ignore_index=True) if got else self.frame(np.zeros((0, d)))
        return out.head(n).reset_index(drop=True)

    def empty_reason(self) -> str | None:
        """Why no point satisfies the constraints (naming the constraint that emptied it), else None."""
        if len(self.sample(1)):
            return None
        base = Domain(self.variables, (), self.fixed, None, self.family)
        if not len(base.sample(1)):
            return "the fixed values leave no point inside the variables' ranges"
        kept: list[LinearConstraint] = []
        for c in self.constraints:
            trial = Domain(self.variables, [*kept, c], self.fixed, None, self.family)
            if not len(trial.sample(1, max_draws=200_000)):
                return (f"the constraint '{c.text}' leaves no candidates"
                        + (f" together with {', '.join(repr(k.text) for k in kept)}" if kept else ""))
            kept.append(c)
        return "the composition filters (site occupancies, tolerance-factor window or element exclusions) " \
               "leave no candidates"


# --- observations ------------------------------------------------------------------------------------


def replicate_noise(X_unit: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Average replicate rows; return (unique X, mean y, noise std of a mean or None).

    The noise is the pooled within-replicate standard deviation divided by the square root of the
    mean number of replicates (the precision of the averaged values the model is fitted on)."""
    if len(X_unit) == 0:
        return X_unit, y, None
    keys = np.round(X_unit, 9)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    k = len(counts)
    sums = np.bincount(inv, weights=y, minlength=k)
    means = sums / counts
    Xu = np.zeros((k, X_unit.shape[1]))
    Xu[inv] = X_unit
    resid = y - means[inv]
    dof = int(np.sum(counts - 1))
    noise = None
    if dof > 0:
        pooled = math.sqrt(float(np.sum(resid**2)) / dof)
        noise = pooled / math.sqrt(float(np.mean(counts)))
    return Xu, means, noise


@dataclass
class _Model:
    """One objective's decision models. Decisions are made on the model's *latent* scale (where the
    Gaussian process is Gaussian: logit PLQY, log instability index) for higher/lower-is-better
    objectives — the transforms are monotone, so the order of candidates is that of the quantity,
    while the moments of a log-normal in quantity units are dominated by its tail — and in the
    quantity's own units for target objectives (closeness to a value is not monotone)."""

    objective: Objective
    surrogate: Surrogate
    explorer: Surrogate
    best_utility: float
    span: float

    @property
    def latent(self) -> bool:
        return self.objective.direction != "target"

    def decision(self, s: Surrogate, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (noise-free) std of the function on the decision scale."""
        if self.latent:
            return s.predict_latent(F, noise=False, widen=DECISION_WIDEN)
        mu, sd = s.predict_latent(F, noise=False, widen=DECISION_WIDEN)
        return s.transform_.moments(mu, sd)


def _fit_models(F: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray, Y: Mapping[str, np.ndarray],
                objectives: Sequence[Objective], bounds: Mapping[str, tuple[float, float | None] | None],
                noise: Mapping[str, float | None], seed: int) -> list[_Model]:
    models = []
    for o in objectives:
        y = np.asarray(Y[o.name], dtype=float)
        ok = np.isfinite(y)
        Fu, ym, rep_noise = replicate_noise(F[ok], y[ok])
        known = noise.get(o.name)
        kw = dict(kind="gp", target=o.quantity, bounds=bounds.get(o.name), input_bounds=(f_lo, f_hi),
                  noise=known if known is not None else rep_noise, cv=False, n_restarts=1, random_state=seed)
        sur = Surrogate(**kw)  # type: ignore[arg-type]
        # the exploration model's short length scales leave little to restart from
        explorer = Surrogate(**{**kw, "n_restarts": 0},  # type: ignore[arg-type]
                             length_scale_bounds=(LENGTH_SCALE_BOUNDS[0], EXPLORE_LENGTH_SCALE))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sur.fit(Fu, ym)
            explorer.fit(Fu, ym)
        latent = o.direction != "target"
        if latent:
            mu = sur.predict_latent(Fu, noise=False)[0]
            observed = sur.transform_.forward(ym)
        else:
            mu = sur.predict(Fu)
            observed = ym
        u = o.utility(mu)
        span = float(np.ptp(o.utility(observed))) or 1.0
        models.append(_Model(o, sur, explorer, float(np.max(u)), span))
    return models


# --- the engine --------------------------------------------------------------------------------------


@dataclass
class _Picker:
    """Acquisition over feature rows for the current (possibly fantasy-conditioned) models."""

    models: list[_Model]
    feas: FeasibilityModel | None
    f_lo: np.ndarray
    f_span: np.ndarray

    def predict(self, F: np.ndarray, explore: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        # the function's uncertainty (noise excluded): a well-measured point offers no improvement
        return [m.decision(m.explorer if explore else m.surrogate, F) for m in self.models]

    def p_feasible(self, F: np.ndarray) -> np.ndarray:
        if self.feas is None or not self.feas.active:
            return np.ones(len(F))
        return self.feas.predict((F - self.f_lo) / self.f_span)

    def value(self, F: np.ndarray, explore: bool) -> np.ndarray:
        total = np.zeros(len(F))
        w = np.array([m.objective.weight for m in self.models], dtype=float)
        w = w / w.sum()
        for wk, m, (mu, sd) in zip(w, self.models, self.predict(F, explore), strict=True):
            if explore:
                a = m.objective.optimistic(mu, sd, EXPLORE_KAPPA) - m.best_utility
            else:
                a = m.objective.expected_improvement(mu, sd, m.best_utility)
            total += wk * a / m.span
        return total * self.p_feasible(F) ** FEASIBILITY_POWER

    def thompson(self, F: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One joint posterior draw of the exploration models at ``F``, as a score per row: the
        drawn utility's gain over the best (weighted, range-scaled), weighted by p(feasible)."""
        total = np.zeros(len(F))
        w = np.array([m.objective.weight for m in self.models], dtype=float)
        w = w / w.sum()
        for wk, m in zip(w, self.models, strict=True):
            z = m.explorer.sample_latent(F, rng, noise=False, widen=DECISION_WIDEN)
            draw = z if m.latent else m.explorer.transform_.inverse(z)
            total += wk * (m.objective.utility(draw) - m.best_utility) / m.span
        p = self.p_feasible(F) ** FEASIBILITY_POWER
        return np.where(total > 0, total * p, total / np.maximum(p, 1e-3))

    def worth_exploiting(self, best_value: float) -> bool:
        """Whether the best expected improvement is worth a measurement (see EXPLOIT_MIN)."""
        return best_value >= EXPLOIT_MIN

    def believe(self, F_new: np.ndarray) -> _Picker:
        """Models conditioned on their own predictions at ``F_new`` (kriging believer)."""
        out = []
        for m in self.models:
            mu_z, _ = m.surrogate.predict_latent(F_new)
            s = m.surrogate.condition_on(F_new, mu_z)
            e = m.explorer.condition_on(F_new, m.explorer.predict_latent(F_new)[0])
            best = max(m.best_utility, float(np.max(m.objective.utility(m.decision(s, F_new)[0]))))
            out.append(replace(m, surrogate=s, explorer=e, best_utility=best))
        return replace(self, models=out)


@dataclass
class Suggestion:
    """The outcome of :func:`suggest`: the proposals and how they were chosen."""

    table: pd.DataFrame
    design: str  # "model" or "initial_design"
    messages: list[str] = field(default_factory=list)


def _features(domain: Domain, featurize: Callable[[pd.DataFrame], np.ndarray] | None
              ) -> tuple[Callable[[pd.DataFrame], np.ndarray], np.ndarray, np.ndarray]:
    if featurize is None:
        names = domain.names

        def identity(df: pd.DataFrame) -> np.ndarray:
            return df[names].to_numpy(dtype=float)

        identity.arrays = lambda X: X  # type: ignore[attr-defined]  # the variables are the features
        return identity, domain.lo, domain.hi
    corners = domain.sample(4096, seed=1)
    F = featurize(corners) if len(corners) else np.zeros((0, 1))
    lo, hi = (F.min(axis=0), F.max(axis=0)) if len(F) else (np.zeros(1), np.ones(1))
    return featurize, lo, hi


def suggest(
    domain: Domain,
    X: pd.DataFrame,
    Y: Mapping[str, Any],
    objectives: Sequence[Objective],
    n: int,
    *,
    feasible: Any = None,
    featurize: Callable[[pd.DataFrame], np.ndarray] | None = None,
    feature_bounds: tuple[np.ndarray, np.ndarray] | None = None,
    pool: pd.DataFrame | None = None,
    made: pd.DataFrame | None = None,
    slots: int | None = None,
    shared: Sequence[str] = (),
    trust_region: float | None = None,
    bounds: Mapping[str, tuple[float, float | None] | None] | None = None,
    noise: Mapping[str, float | None] | None = None,
    anchors: pd.DataFrame | None = None,
    seed: int = 0,
) -> Suggestion:
    """Choose ``n`` experiments in ``domain`` (or among ``pool``) given what was measured.

    Args:
        domain: the search domain.
        X: made experiments, one column per domain variable (failed syntheses included).
        Y: objective name -> measured values aligned with ``X`` (NaN where not measured/failed).
        objectives: the objectives (one or more; several are scalarised with their weights).
        n: batch size (a multiple of ``slots`` when slots are given).
        feasible: bool per row of ``X`` (False = failed synthesis); default all feasible.
        featurize: DataFrame of variables -> feature matrix for the models (default: the variables).
        feature_bounds: (lo, hi) of the features over the domain (default: estimated by sampling).
        pool: candidate rows (domain variables); only these are proposed.
        made: experiments that must not be proposed again (default: ``X``).
        slots, shared: lab-shaped batches: runs of ``slots`` jars sharing the ``shared`` variables.
        trust_region: maximum extrapolation distance (fraction of the unit diagonal) of a proposal.
        bounds: objective name -> physical bounds of its quantity (for bounded transforms).
        noise: objective name -> known measurement noise (std, quantity unit).
        anchors: points to keep away from in an initial design (e.g. literature compositions).
        seed: seed of the quasi-random samples and model restarts.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise OptimizerError(f"the batch size must be a positive integer, got {n!r}", "n")
    if slots is not None:
        if not isinstance(slots, (int, np.integer)) or slots < 1:
            raise OptimizerError(f"--slots must be a positive integer, got {slots!r}", "slots")
        if n % slots:
            raise OptimizerError(f"--slots {slots} does not divide the batch of {n} "
                                 f"(use a batch of {slots * max(1, round(n / slots))})", "slots")
    bad_shared = [s for s in shared if s not in domain.names]
    if bad_shared:
        raise OptimizerError(f"--shared {bad_shared[0]}: not a variable of the space "
                             f"(variables: {', '.join(domain.names)})", "shared")
    if trust_region is not None and not trust_region > 0:
        raise OptimizerError("--trust-region must be a positive distance (fraction of the domain's diagonal)",
                             "trust_region")
    X = X.reset_index(drop=True) if X is not None else pd.DataFrame(columns=domain.names)
    fz, f_lo, f_hi = _features(domain, featurize)
    if feature_bounds is not None:
        f_lo, f_hi = np.asarray(feature_bounds[0], float), np.asarray(feature_bounds[1], float)
    f_span = np.where(f_hi > f_lo, f_hi - f_lo, 1.0)
    Yd = {o.name: np.asarray(Y.get(o.name, np.full(len(X), np.nan)), dtype=float) for o in objectives}
    feas = np.ones(len(X), bool) if feasible is None else np.asarray(feasible, dtype=bool)
    made_df = X if made is None else pd.concat([X, made], ignore_index=True)
    made_u = domain.unit(made_df) if len(made_df) else np.zeros((0, len(domain.names)))
    n_results = min(int(np.isfinite(Yd[o.name]).sum()) for o in objectives)
    rng = np.random.default_rng(seed)
    messages: list[str] = []

    # -- candidates: the pool or the continuous domain -----------------------------------------------
    if pool is not None:
        cand = pool.reset_index(drop=True)
        cand = cand[domain.feasible(cand)].reset_index(drop=True)
        if len(made_u) and len(cand):
            dist, _ = cKDTree(made_u).query(domain.unit(cand), k=1)
            cand = cand[dist > SAME_POINT].reset_index(drop=True)
        if not len(cand):
            raise OptimizerError("every candidate of the pool has been made already (or violates the constraints)",
                                 "candidates")
    else:
        reason = domain.empty_reason()
        if reason:
            raise OptimizerError(f"the space has no candidates: {reason}", "space")
        cand = None

    # -- too few results: an initial design ---------------------------------------------------------
    if n_results < MIN_MODEL_POINTS:
        base = cand if cand is not None else domain.round(domain.sample(max(4096, 256 * n), seed=seed))
        keep = made_u if anchors is None or not len(anchors) else np.vstack([made_u, domain.unit(anchors)])
        idx = maximin_select(domain.unit(base), n, keep if len(keep) else None, min_distance=SAME_POINT)
        table = base.iloc[idx].reset_index(drop=True)
        table = _lab_shape(table, domain, slots, shared, base)
        table["design"] = "initial_design"
        messages.append(f"{n_results} result(s) for {', '.join(o.name for o in objectives)}: fewer than "
                        f"{MIN_MODEL_POINTS}, so this batch is a space-filling initial design (maximin over the "
                        "feasible domain, away from what was made); the model takes over from "
                        f"{MIN_MODEL_POINTS} results on")
        return Suggestion(_annotate(table, None, fz, f_lo, f_span, made_df, domain), "initial_design", messages)

    # -- models ------------------------------------------------------------------------------------------
    F = fz(X)
    models = _fit_models(F, f_lo, f_hi, Yd, objectives, dict(bounds or {}), dict(noise or {}), seed)
    fmodel = None
    if (~feas).any():
        fmodel = FeasibilityModel(seed).fit((F - f_lo) / f_span, feas)
    picker = _Picker(models, fmodel, f_lo, f_span)
    F_made = fz(made_df) if len(made_df) else np.zeros((0, F.shape[1]))

    def in_trust(df: pd.DataFrame) -> np.ndarray:
        if trust_region is None or not len(F_made):
            return np.ones(len(df), bool)
        d, _ = cKDTree((F_made - f_lo) / f_span).query((fz(df) - f_lo) / f_span, k=1)
        return d / math.sqrt(F.shape[1]) <= trust_region

    raw = None
    if cand is None:
        n_raw = max(1024, SAMPLES_PER_DIM * max(1, len(domain.free)))
        raw = domain.sample(n_raw, seed=seed)
    picks: list[pd.DataFrame] = []
    chosen_u = made_u.copy()
    per_run = slots or 1
    n_runs = n // per_run
    stop = False
    for r in range(n_runs):
        run_domain = domain
        for j in range(per_run):
            explore = n >= EXPLORE_FROM and r * per_run + j >= n - max(1, round(EXPLORE_SHARE * n))
            if j == 1 and shared:
                first = picks[-1].iloc[0]
                run_domain = domain.with_fixed({s: float(first[s]) for s in shared})
            picked = _pick(picker, run_domain, cand, raw, fz, explore, chosen_u, in_trust, rng)
            if picked is None:
                if j > 0:
                    messages.append(f"run {r + 1}: no further candidate shares the run's {', '.join(shared)}")
                else:
                    messages.append(f"only {len(picks)} candidate(s) available for a batch of {n}")
                    stop = True
                break
            row, how = picked[0].copy(), picked[1]
            row["run"] = r + 1 if slots else pd.NA
            row["pick"] = how
            picks.append(row)
            chosen_u = np.vstack([chosen_u, domain.unit(row)])
            picker = picker.believe(fz(row))
        if stop:
            break
    if not picks:
        raise OptimizerError("no candidate left to propose (all made, or excluded by the constraints or the "
                             "trust region)", "space")
    table = pd.concat(picks, ignore_index=True)
    table["design"] = "model"
    real = _Picker(models, fmodel, f_lo, f_span)
    return Suggestion(_annotate(table, real, fz, f_lo, f_span, made_df, domain), "model", messages)


def _pick(picker: _Picker, domain: Domain, cand: pd.DataFrame | None, raw: pd.DataFrame | None,
          fz: Callable[[pd.DataFrame], np.ndarray], explore: bool, chosen_u: np.ndarray,
          in_trust: Callable[[pd.DataFrame], np.ndarray], rng: np.random.Generator
          ) -> tuple[pd.DataFrame, str] | None:
    """The best single candidate for the current models, over the pool or by continuous search, and
    how it was chosen: "exploit" (expected improvement) or "explore" (Thompson sampling; also when
    no expected improvement is worth a measurement)."""

    def fresh(df: pd.DataFrame) -> np.ndarray:
        ok = domain.feasible(df) & in_trust(df)
        if len(chosen_u) and ok.any():
            d, _ = cKDTree(chosen_u).query(domain.unit(df), k=1)
            ok &= d > SAME_POINT
        return ok

    def thompson(df: pd.DataFrame) -> pd.DataFrame:
        if len(df) > THOMPSON_POINTS:
            df = df.iloc[np.sort(rng.choice(len(df), THOMPSON_POINTS, replace=False))].reset_index(drop=True)
        return df.iloc[[int(np.argmax(picker.thompson(fz(df), rng)))]].reset_index(drop=True), "explore"

    if cand is not None:
        ok = fresh(cand)
        if not ok.any():
            return None
        sub = cand[ok].reset_index(drop=True)
        if explore:
            return thompson(sub)
        a = picker.value(fz(sub), False)
        if not picker.worth_exploiting(float(np.max(a))):
            return thompson(sub)
        return sub.iloc[[int(np.argmax(a))]].reset_index(drop=True), "exploit"

    assert raw is not None
    base = raw
    if domain.fixed:
        base = raw.copy()
        for k, v in domain.fixed.items():
            base[k] = v
        base = base[domain.feasible(base)].reset_index(drop=True)
        if not len(base):
            base = domain.sample(max(1024, SAMPLES_PER_DIM * max(1, len(domain.free))), seed=int(rng.integers(1 << 31)))
    ok = fresh(base)
    if not ok.any():
        return None
    base = base[ok].reset_index(drop=True)
    if explore:
        return thompson(base)
    Fb = fz(base)
    a = picker.value(Fb, False)
    if not picker.worth_exploiting(float(np.max(a))):
        return thompson(base)  # nothing left to gain here: look where the models know least
    order = np.argsort(-a)
    best_df, best_a = base.iloc[[int(order[0])]].reset_index(drop=True), float(a[order[0]])
    free_idx = domain._free_index()
    if free_idx:
        A, b = domain.linear_unit()
        cons = [{"type": "ineq", "fun": (lambda u, A=A, b=b: b - A @ u), "jac": (lambda u, A=A: -A)}] if len(A) else []
        Ub = domain.unit(base)[:, free_idx]

        raw_fz = getattr(fz, "arrays", None)
        full = domain.full_array

        def values(U: np.ndarray) -> np.ndarray:
            X = full(np.clip(U, 0.0, 1.0))
            F = raw_fz(X) if raw_fz is not None else fz(pd.DataFrame(X, columns=domain.names))
            return picker.value(F, False)

        h = FD_STEP

        def neg(u: np.ndarray) -> tuple[float, np.ndarray]:
            # value and forward-difference gradient in one model call (d + 1 rows), stepping inward
            step = np.where(u + h <= 1.0, h, -h)
            U = np.vstack([u, u + np.diag(step)])
            v = values(U)
            return -float(v[0]), -(v[1:] - v[0]) / step

        for i in order[:N_STARTS]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = minimize(neg, Ub[i], jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * len(free_idx),
                               constraints=cons, options={"maxiter": 40, "ftol": 1e-9})
            df = domain.frame(np.clip(res.x, 0.0, 1.0)[None, :])
            df = domain.round(df, score=lambda d: picker.value(fz(d), False))
            if not len(df) or not fresh(df).all():
                continue
            v = float(picker.value(fz(df), False)[0])
            if v > best_a:
                best_df, best_a = df.reset_index(drop=True), v
    return best_df, "exploit"


def _lab_shape(table: pd.DataFrame, domain: Domain, slots: int | None, shared: Sequence[str],
               base: pd.DataFrame) -> pd.DataFrame:
    """Initial designs in runs: later jars of a run take the run's first jar's shared values."""
    table = table.copy()
    if not slots:
        table["run"] = pd.NA
        return table
    table["run"] = [i // slots + 1 for i in range(len(table))]
    if shared:
        for r in table["run"].unique():
            rows = table.index[table["run"] == r]
            for s in shared:
                table.loc[rows, s] = table.loc[rows[0], s]
        table = table[domain.feasible(table)].reset_index(drop=True)
    return table


def _annotate(table: pd.DataFrame, picker: _Picker | None, fz: Callable[[pd.DataFrame], np.ndarray],
              f_lo: np.ndarray, f_span: np.ndarray, made: pd.DataFrame, domain: Domain) -> pd.DataFrame:
    """Predictions, p(feasible), acquisition and extrapolation distance of each proposal."""
    out = table.reset_index(drop=True).copy()
    Fp = fz(out[domain.names])
    if len(made):
        d, _ = cKDTree((fz(made) - f_lo) / f_span).query((Fp - f_lo) / f_span, k=1)
        out["extrapolation"] = d / math.sqrt(Fp.shape[1])
    else:
        out["extrapolation"] = np.nan
    out["extrapolating"] = out["extrapolation"] > EXTRAPOLATION_FLAG
    if picker is not None:
        for m in picker.models:
            mu, sd = m.surrogate.predict(Fp, return_std=True)  # a new measurement: noise included
            out[f"{m.objective.name}_mean"] = mu
            out[f"{m.objective.name}_std"] = sd
        out["p_feasible"] = picker.p_feasible(Fp)
        out["acquisition"] = picker.value(Fp, explore=False)
    else:
        out["p_feasible"] = np.nan
        out["acquisition"] = np.nan
    return out


# --- ask / tell ---------------------------------------------------------------------------------------


class Optimizer:
    """Ask/tell over variables and linear constraints (the shape of scikit-optimize and BayBE).

    Args:
        variables: the variables (with the lab's resolution).
        constraints: linear constraints as text or LinearConstraint.
        direction: "max", "min" or "target"; ``target`` gives the value or (lo, hi) window.
        seed: seed of the designs and model restarts.
        slots, shared: lab-shaped batches (runs of ``slots`` sharing ``shared`` variables).
        fixed: variables pinned for every proposal.
        noise: known measurement noise (std); default: estimated from replicates.
        bounds: physical bounds of the objective (e.g. (0, 100) for a PLQY).
        trust_region: keep proposals within this distance of the data (fraction of the diagonal).
    """

    def __init__(self, variables: Sequence[Variable], constraints: Sequence[str | LinearConstraint] = (), *,
                 direction: str = "max", target: float | tuple[float, float] | None = None, seed: int = 0,
                 slots: int | None = None, shared: Sequence[str] = (), fixed: Mapping[str, float] | None = None,
                 noise: float | None = None, bounds: tuple[float, float | None] | None = None,
                 trust_region: float | None = None) -> None:
        self.domain = Domain(variables, constraints, fixed)
        tgt = None
        if target is not None:
            tgt = (float(target), float(target)) if np.isscalar(target) else tuple(map(float, target))  # type: ignore[arg-type]
        self.objective = Objective("y", "y", direction, tgt)  # type: ignore[arg-type]
        self.seed, self.slots, self.shared = seed, slots, tuple(shared)
        self.noise, self.bounds, self.trust_region = noise, bounds, trust_region
        self.X = pd.DataFrame(columns=self.domain.names, dtype=float)
        self.y = np.zeros(0)
        self.ok = np.zeros(0, bool)
        self._asks = 0

    def tell(self, X: pd.DataFrame | np.ndarray, y: Any, feasible: Any = None) -> None:
        """Record made experiments: ``y`` NaN where there is no value; ``feasible`` False for failures."""
        df = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, float), columns=self.domain.names)
        y = np.asarray(y, dtype=float).ravel()
        f = np.isfinite(y) if feasible is None else np.asarray(feasible, dtype=bool).ravel()
        if len(df) != len(y) or len(f) != len(y):
            raise OptimizerError(f"tell: {len(df)} rows, {len(y)} values, {len(f)} feasibility flags")
        self.X = pd.concat([self.X, df[self.domain.names].astype(float)], ignore_index=True)
        self.y = np.concatenate([self.y, np.where(f, y, np.nan)])
        self.ok = np.concatenate([self.ok, f])

    def ask(self, n: int = 1) -> pd.DataFrame:
        """The next ``n`` experiments (variables plus predictions, p_feasible, extrapolation)."""
        self._asks += 1
        s = suggest(self.domain, self.X, {"y": self.y}, [self.objective], n, feasible=self.ok,
                    slots=self.slots, shared=self.shared, trust_region=self.trust_region,
                    bounds={"y": self.bounds}, noise={"y": self.noise}, seed=self.seed + 7919 * self._asks)
        self.last = s
        return s.table
