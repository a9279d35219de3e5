"""Simulated labs for the decision benchmark (``bench/bench_decisions.py``): hard on purpose.

Every problem here is SIMULATED (made-up response surfaces shaped like mechanochemistry results,
not literature data). Each has a sharp optimum off any coarse grid, a broad decoy optimum that
a model can settle on, 2-5 % measurement noise and the lab's resolution per variable; some add a
region where the synthesis fails (no value, only a failed outcome), a linear constraint with the
optimum on it, or batches made in runs of jars that share a milling time.

A problem knows its true optimum ``f_star`` (dense quasi-random search of the feasible lattice,
polished with scipy and snapped back to the lab's resolution), so a campaign is scored on the
*true* value of what it made: the number of experiments until a made candidate reaches
``HIT_FRACTION`` of ``f_star``, and the best fraction reached.

    >>> p = PROBLEMS["composite2d"]
    >>> y, ok = p.measure(p.start(seed=0), np.random.default_rng(0))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

__all__ = ["HIT_FRACTION", "PROBLEMS", "Param", "Problem"]

#: A made candidate counts as a hit when its true value is at least this fraction of the optimum.
HIT_FRACTION = 0.9


@dataclass(frozen=True)
class Param:
    """A variable of a simulated lab: range, unit and the lab's resolution (weighing, 5 degC, 1 min)."""

    name: str
    lo: float
    hi: float
    resolution: float
    unit: str = ""


@dataclass(frozen=True)
class Problem:
    """A simulated lab: variables, known linear constraints ``A x <= b``, the hidden truth.

    ``truth(X)`` is the noise-free objective (to maximise, >= 0) for rows of ``X`` (n, d);
    ``synthesis_ok(X)`` is False where the synthesis fails (the lab reports a failed outcome
    and no value). ``noise`` is the measurement noise std as a fraction of ``f_star``.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    truth: Callable[[np.ndarray], np.ndarray]
    noise: float
    constraints: tuple[tuple[dict[str, float], float], ...] = ()
    synthesis_ok: Callable[[np.ndarray], np.ndarray] | None = None
    slots: int | None = None
    shared: tuple[str, ...] = ()
    n_start: int = 4
    batch: int = 4
    quantity: str = "PLQY (%)"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    # -- geometry ---------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def dim(self) -> int:
        return len(self.params)

    @property
    def lo(self) -> np.ndarray:
        return np.array([p.lo for p in self.params])

    @property
    def hi(self) -> np.ndarray:
        return np.array([p.hi for p in self.params])

    @property
    def resolution(self) -> np.ndarray:
        return np.array([p.resolution for p in self.params])

    @property
    def constraint_text(self) -> list[str]:
        """The linear constraints as text ("a + b <= 0.9"), as matdb and Ax take them."""
        out = []
        for coefs, ub in self.constraints:
            terms = [f"{c:g}*{k}" if c != 1 else k for k, c in coefs.items()]
            out.append(" + ".join(terms).replace("+ -", "- ") + f" <= {ub:g}")
        return out

    def linear(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` of the known constraints, ``A x <= b`` over all variables."""
        A = np.zeros((len(self.constraints), self.dim))
        b = np.zeros(len(self.constraints))
        for r, (coefs, ub) in enumerate(self.constraints):
            for k, c in coefs.items():
                A[r, self.names.index(k)] = c
            b[r] = ub
        return A, b

    def in_domain(self, X: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Bool (n,): within bounds and satisfying the known linear constraints."""
        X = np.atleast_2d(np.asarray(X, float))
        span = self.hi - self.lo
        ok = np.all((X >= self.lo - tol * span) & (X <= self.hi + tol * span), axis=1)
        A, b = self.linear()
        if len(A):
            ok &= np.all(X @ A.T <= b + tol, axis=1)
        return ok

    def round(self, X: np.ndarray) -> np.ndarray:
        """Rows moved to the lab's resolution (the lattice starts at ``lo``), clipped to bounds."""
        X = np.clip(np.atleast_2d(np.asarray(X, float)), self.lo, self.hi)
        k = np.round((X - self.lo) / self.resolution)
        return np.round(np.clip(self.lo + k * self.resolution, self.lo, self.hi), 10)

    def repair(self, X: np.ndarray) -> tuple[np.ndarray, int]:
        """What the lab can make of proposals: rounded, pulled inside the linear constraints (shrunk
        toward the lower bounds, then floored to the lattice) and, with slots, runs that share the
        ``shared`` variables. Returns the made rows and how many proposals had to be changed beyond
        rounding (a constraint violated or a shared value unequal within a run)."""
        X = self.round(X)
        changed = np.zeros(len(X), bool)
        A, b = self.linear()
        for i in range(len(X)):
            if len(A) and not self.in_domain(X[i])[0]:
                changed[i] = True
                x = X[i].copy()
                for _ in range(200):
                    x = self.lo + (x - self.lo) * 0.98
                    xf = self.lo + np.floor((x - self.lo) / self.resolution + 1e-9) * self.resolution
                    if self.in_domain(xf)[0]:
                        X[i] = np.round(xf, 10)
                        break
        if self.slots and self.shared:
            X, moved = self.shape_runs(X)
            changed |= moved
        return X, int(changed.sum())

    def shape_runs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Group a batch into runs of ``slots`` jars sharing the ``shared`` variables. Rows already
        in runs (consecutive groups with equal shared values) are kept; otherwise the rows are sorted
        by the shared values, grouped, and each run takes its first jar's shared values (the
        lab's way to make a batch from a proposer that knows no runs)."""
        X = X.copy()
        idx = [self.names.index(s) for s in self.shared]
        n = len(X) - len(X) % self.slots
        groups = [X[i : i + self.slots, idx] for i in range(0, n, self.slots)]
        if all(np.allclose(g, g[0]) for g in groups):
            return X, np.zeros(len(X), bool)
        order = np.lexsort(X[:, idx].T[::-1])
        X = X[order]
        before = X[:, idx].copy()
        for i in range(0, n, self.slots):
            X[i : i + self.slots, idx] = X[i, idx]
        return X, np.any(np.abs(X[:, idx] - before) > 1e-9, axis=1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniformly random made-able points (rejection sampling, rounded, in runs with slots)."""
        out = np.zeros((0, self.dim))
        while len(out) < n:
            X = self.round(self.lo + rng.random((max(64, 4 * n), self.dim)) * (self.hi - self.lo))
            out = np.vstack([out, X[self.in_domain(X)]])
        out = out[:n]
        if self.slots and self.shared:
            out, _ = self.shape_runs(out)
        return out

    def start(self, seed: int) -> np.ndarray:
        """The shared random starting experiments of campaign ``seed`` (the same for every optimiser)."""
        return self.sample(self.n_start, np.random.default_rng([seed, 7, self.dim]))

    # -- the lab ----------------------------------------------------------------------------------------

    def ok(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        return np.ones(len(X), bool) if self.synthesis_ok is None else np.asarray(self.synthesis_ok(X), bool)

    def value(self, X: np.ndarray) -> np.ndarray:
        """The true value of made rows: the objective where the synthesis works, 0 where it fails."""
        X = np.atleast_2d(np.asarray(X, float))
        return np.where(self.ok(X), self.truth(X), 0.0)

    def measure(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A lab run: ``(y, ok)`` with ``y`` the noisy value (NaN where the synthesis failed)."""
        X = np.atleast_2d(np.asarray(X, float))
        ok = self.ok(X)
        y = self.truth(X) + rng.normal(0.0, self.noise * self.f_star, len(X))
        return np.where(ok, np.maximum(y, 0.0), np.nan), ok

    # -- the answer -------------------------------------------------------------------------------------

    def _dense(self) -> tuple[np.ndarray, np.ndarray]:
        if "dense" not in self._cache:
            m = 16 if self.dim <= 3 else 18
            U = qmc.Sobol(self.dim, scramble=True, seed=12345).random_base2(m)
            X = self.round(self.lo + U * (self.hi - self.lo))
            X = X[self.in_domain(X)]
            self._cache["dense"] = (X, self.value(X))
        return self._cache["dense"]

    @cached_property
    def optimum(self) -> tuple[np.ndarray, float]:
        """``(x*, f*)``: the best made-able point (on the lab's lattice, feasible) and its value."""
        X, v = self._dense()
        best_x, best_v = X[int(np.argmax(v))], float(v.max())
        A, b = self.linear()
        span = self.hi - self.lo
        cons = [{"type": "ineq", "fun": lambda u: b - A @ (self.lo + u * span)}] if len(A) else []
        for i in np.argsort(-v)[:8]:
            res = minimize(
                lambda u: -float(self.value(self.lo + u * span)[0]),
                (X[i] - self.lo) / span,
                method="SLSQP",
                bounds=[(0, 1)] * self.dim,
                constraints=cons,
                options={"maxiter": 200},
            )
            x0 = self.lo + np.clip(res.x, 0, 1) * span
            # the best lattice point around the continuous optimum
            grid = (
                np.array(
                    np.meshgrid(
                        *[[math.floor(t), math.ceil(t)] for t in (x0 - self.lo) / self.resolution], indexing="ij"
                    )
                )
                .reshape(self.dim, -1)
                .T
            )
            cand = np.round(np.clip(self.lo + grid * self.resolution, self.lo, self.hi), 10)
            cand = cand[self.in_domain(cand)]
            if len(cand):
                cv = self.value(cand)
                if cv.max() > best_v:
                    best_x, best_v = cand[int(np.argmax(cv))], float(cv.max())
        return best_x, best_v

    @property
    def f_star(self) -> float:
        return self.optimum[1]

    @cached_property
    def hit_area(self) -> float:
        """Fraction of the made-able domain whose true value is a hit (what random search faces)."""
        _, v = self._dense()
        return float(np.mean(v >= HIT_FRACTION * self.f_star))

    def random_median(self) -> float:
        """Median experiments of random search to a hit in batches of ``batch`` (geometric law)."""
        p = self.hit_area
        if p <= 0:
            return math.inf
        draws = math.ceil(math.log(0.5) / math.log1p(-p))
        return float(math.ceil(draws / self.batch) * self.batch)


# --- the problems -------------------------------------------------------------------------------------


def _g(x: np.ndarray, x0: float, s: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - x0) / s) ** 2)


def _composite2d(X: np.ndarray) -> np.ndarray:
    """PLQY (%) of an emitter-in-glass composite over loading X and sintering temperature T (degC):
    a sharp optimum at X = 0.375, T = 262.5 degC (half-way between the 0.05 x 25 degC grid points)
    and a broad decoy at X = 0.72, T = 190 degC reaching 57 % of the optimum's height."""
    x, t = X[:, 0], X[:, 1]
    return 80.0 * _g(x, 0.375, 0.05) * _g(t, 262.5, 17.0) + 46.0 * _g(x, 0.72, 0.2) * _g(t, 190.0, 60.0) + 4.0 * x


def _infeasible3d(X: np.ndarray) -> np.ndarray:
    """Mixed-cation perovskite PLQY (%) over Cs fraction, Br fraction and annealing T (degC): the
    smooth response peaks inside the region where the synthesis fails, so the best made-able point
    sits on the failure boundary; a broad decoy at low Cs, high Br."""
    cs, br, t = X[:, 0], X[:, 1], X[:, 2]
    peak = 75.0 * _g(cs, 0.40, 0.12) * _g(br, 0.3, 0.2) * _g(t, 200.0, 60.0)
    decoy = 42.0 * _g(cs, 0.05, 0.15) * _g(br, 0.85, 0.25) * _g(t, 140.0, 70.0)
    return peak + decoy + 3.0 * br


def _infeasible3d_ok(X: np.ndarray) -> np.ndarray:
    """The synthesis fails (delta phase / no perovskite) where Cs is high for the Br content or the
    annealing is too hot for Cs: Cs > 0.3 + 0.25 Br, or T > 260 - 150 Cs."""
    cs, br, t = X[:, 0], X[:, 1], X[:, 2]
    return (cs <= 0.3 + 0.25 * br) & (t <= 260.0 - 150.0 * cs)


def _constrained4d(X: np.ndarray) -> np.ndarray:
    """PLQY (%) over two dopant fractions a, b (a + b <= 0.9), milling time (min) and annealing T
    (degC): the unconstrained peak (a = 0.52, b = 0.45) lies outside a + b <= 0.9, so the optimum is
    on the constraint; a decoy at low dopant."""
    a, b, tm, t = X[:, 0], X[:, 1], X[:, 2], X[:, 3]
    peak = 85.0 * _g(a, 0.52, 0.2) * _g(b, 0.45, 0.2) * _g(np.log(tm), math.log(25.0), 1.0) * _g(t, 180.0, 90.0)
    decoy = 45.0 * _g(a, 0.1, 0.15) * _g(b, 0.15, 0.15) * _g(np.log(tm), math.log(60.0), 0.8) * _g(t, 120.0, 60.0)
    return peak + decoy + 2.0 * a


def _mill5d(X: np.ndarray) -> np.ndarray:
    """PLQY (%) of a mechanochemical synthesis over Br fraction z, additive (mol %), milling time
    (min), milling frequency (Hz) and annealing T (degC). Milling acts through the dose
    time x frequency^2 (a ridge: long slow or short fast milling are equivalent), with decay past
    the optimum dose (alpha -> delta); a sharp composition optimum and a broad decoy at high z."""
    z, add, tm, fq, t = (X[:, i] for i in range(5))
    dose = np.log(tm * (fq / 25.0) ** 2)
    peak = 90.0 * _g(z, 0.42, 0.12) * _g(add, 11.0, 10.0) * _g(dose, math.log(30.0), 0.7) * _g(t, 150.0, 80.0)
    decoy = 50.0 * _g(z, 0.85, 0.18) * _g(add, 2.0, 8.0) * _g(dose, math.log(80.0), 0.9)
    return peak + decoy + 2.0 * z


def _slots3d(X: np.ndarray) -> np.ndarray:
    """PLQY (%) over Br fraction z, Cs fraction and milling time (min, shared by the two jars of a
    mixer-mill run): a sharp optimum at moderate milling, a broad decoy at long milling."""
    z, cs, tm = X[:, 0], X[:, 1], X[:, 2]
    peak = 80.0 * _g(z, 0.63, 0.15) * _g(cs, 0.17, 0.12) * _g(np.log(tm), math.log(20.0), 0.6)
    decoy = 45.0 * _g(z, 0.25, 0.2) * _g(cs, 0.4, 0.2) * _g(np.log(tm), math.log(75.0), 0.5)
    return peak + decoy + 3.0 * cs


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem(
            "composite2d",
            "emitter-in-glass composite: loading X x sintering T; sharp optimum between grid points, "
            "broad decoy at 57 %; 2 % noise",
            (Param("X", 0.01, 0.85, 0.01), Param("T", 150.0, 350.0, 5.0, "degC")),
            _composite2d,
            noise=0.02,
        ),
        Problem(
            "infeasible3d",
            "Cs/Br fractions x annealing T; synthesis fails in a region (no value), optimum on its boundary; 3 % noise",
            (Param("Cs", 0.0, 0.6, 0.01), Param("Br", 0.0, 1.0, 0.01), Param("T", 100.0, 300.0, 5.0, "degC")),
            _infeasible3d,
            noise=0.03,
            synthesis_ok=_infeasible3d_ok,
        ),
        Problem(
            "constrained4d",
            "two dopants with a + b <= 0.9, milling time, annealing T; optimum on the constraint; 2 % noise",
            (
                Param("a", 0.0, 0.9, 0.01),
                Param("b", 0.0, 0.9, 0.01),
                Param("milling_time_min", 2.0, 120.0, 1.0, "min"),
                Param("T", 80.0, 280.0, 5.0, "degC"),
            ),
            _constrained4d,
            noise=0.02,
            constraints=(({"a": 1.0, "b": 1.0}, 0.9),),
        ),
        Problem(
            "mill5d",
            "Br fraction, additive, milling time x frequency (a dose ridge), annealing T; 5 % noise",
            (
                Param("z", 0.0, 1.0, 0.01),
                Param("additive_mol_pct", 0.0, 30.0, 0.5, "mol %"),
                Param("milling_time_min", 2.0, 120.0, 1.0, "min"),
                Param("frequency_hz", 10.0, 30.0, 1.0, "Hz"),
                Param("T", 80.0, 250.0, 5.0, "degC"),
            ),
            _mill5d,
            noise=0.05,
        ),
        Problem(
            "slots3d",
            "Br/Cs fractions x milling time; batches of 4 made as 2 runs of a 2-jar mixer mill sharing "
            "the milling time; 3 % noise",
            (
                Param("z", 0.0, 1.0, 0.01),
                Param("Cs", 0.0, 0.5, 0.01),
                Param("milling_time_min", 2.0, 120.0, 1.0, "min"),
            ),
            _slots3d,
            noise=0.03,
            slots=2,
            shared=("milling_time_min",),
        ),
    ]
}
