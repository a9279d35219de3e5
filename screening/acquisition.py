"""Acquisition functions and batch selection for choosing the next experiments (maximisation).

Acquisition functions take the predicted mean ``mu`` and std ``sigma`` in target units (what
``Surrogate.predict`` returns) and treat the prediction as Gaussian with those moments; for
logit-transformed targets that is a moment-matched approximation of the logit-normal predictive
distribution, good away from the bounds and conservative near them.

* expected improvement ``EI = (mu - best - xi) Phi(z) + sigma phi(z)``, ``z = (mu - best - xi) /
  sigma`` (Jones et al. 1998, doi:10.1023/A:1008306431147); ``EI = max(mu - best - xi, 0)`` where
  ``sigma = 0``;
* probability of improvement ``PI = Phi((mu - best - xi) / sigma)``;
* upper confidence bound ``UCB = mu + sqrt(beta) sigma`` (the GP-UCB convention of Srinivas et
  al. 2010, arXiv:0912.3995; ``beta = 4`` is mean + 2 std).

Batches (several samples milled in one session) are chosen by

* ``"believer"``: kriging believer (Ginsbourger et al. 2010, doi:10.1007/978-3-642-10701-6_6):
  pick the best candidate, pretend its measurement equals the predicted mean, refit (a GP keeps
  its hyperparameters; a forest is refitted on a copy), repeat. The fantasy shrinks the GP's
  uncertainty around picked points, so the next pick goes elsewhere.
* ``"penalization"``: local penalization (Gonzalez et al. 2016, arXiv:1505.08052): the
  acquisition is multiplied by ``Phi((L ||x - x_j|| - M + mu_j) / sigma_j)`` for every picked
  ``x_j``, with ``L`` the largest gradient norm of the mean (finite differences in the model's
  standardised feature space) and ``M`` the largest predicted mean. No refits.
* ``"greedy"``: the top-n acquisition values (no diversity; a baseline).

Candidates that match an already-made experiment (all features within ``tol``) are never proposed,
nor are duplicates of a candidate already in the batch.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from screening.surrogate import Surrogate

__all__ = [
    "AcquisitionError",
    "acquisition_values",
    "expected_improvement",
    "match_made",
    "probability_of_improvement",
    "select_batch",
    "upper_confidence_bound",
]

Acquisition = Literal["ei", "pi", "ucb", "mean"]
BatchMethod = Literal["believer", "penalization", "greedy"]

#: Std below which a prediction counts as certain (avoids 0/0 in EI and PI).
SIGMA_FLOOR = 1e-12
#: Candidates kept (by acquisition value) before a diversity method runs.
PRESELECT = 2000
#: Points used to estimate the Lipschitz constant for local penalization.
LIPSCHITZ_SAMPLE = 500


class AcquisitionError(ValueError):
    """Bad arguments to an acquisition function or batch selection."""


def expected_improvement(mu: Any, sigma: Any, best: float, xi: float = 0.01) -> np.ndarray:
    """Expected improvement over ``best`` (maximisation), arrays of shape (n,), target units."""
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    imp = mu - best - xi
    safe = np.maximum(sigma, SIGMA_FLOOR)
    z = imp / safe
    ei = imp * stats.norm.cdf(z) + safe * stats.norm.pdf(z)
    return np.where(sigma > SIGMA_FLOOR, np.maximum(ei, 0.0), np.maximum(imp, 0.0))


def probability_of_improvement(mu: Any, sigma: Any, best: float, xi: float = 0.0) -> np.ndarray:
    """Probability that a measurement exceeds ``best + xi`` (Gaussian predictive), shape (n,)."""
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    imp = mu - best - xi
    z = imp / np.maximum(sigma, SIGMA_FLOOR)
    return np.where(sigma > SIGMA_FLOOR, stats.norm.cdf(z), (imp > 0).astype(float))


def upper_confidence_bound(mu: Any, sigma: Any, beta: float = 4.0) -> np.ndarray:
    """``mu + sqrt(beta) * sigma``, shape (n,)."""
    if beta < 0:
        raise AcquisitionError(f"beta must be >= 0, got {beta}")
    return np.asarray(mu, dtype=float) + math.sqrt(beta) * np.asarray(sigma, dtype=float)


def _acq(kind: str, mu: np.ndarray, sd: np.ndarray, best: float, xi: float,
         beta: float) -> np.ndarray:
    if kind == "ei":
        return expected_improvement(mu, sd, best, xi)
    if kind == "pi":
        return probability_of_improvement(mu, sd, best, xi)
    if kind == "ucb":
        return upper_confidence_bound(mu, sd, beta)
    if kind == "mean":
        return np.asarray(mu, dtype=float)
    raise AcquisitionError(f"acquisition must be 'ei', 'pi', 'ucb' or 'mean', not {kind!r}")


def acquisition_values(surrogate: Surrogate, X: Any, kind: Acquisition = "ei",
                       best: float | None = None, xi: float = 0.01,
                       beta: float = 4.0) -> np.ndarray:
    """Acquisition of candidates ``X`` (n, d) under ``surrogate``; ``best`` defaults to the
    best training value."""
    mu, sd = surrogate.predict(X, return_std=True)
    b = surrogate.best_observed if best is None else float(best)
    return _acq(kind, mu, sd, b, xi, beta)


def match_made(X_candidates: Any, X_made: Any, tol: float | Any = 1e-6) -> np.ndarray:
    """Boolean mask (n_candidates,): True where a candidate matches a made experiment, i.e.
    every feature differs by at most ``tol`` (scalar or per-feature array, feature units)."""
    Xc = np.asarray(X_candidates, dtype=float)
    if X_made is None:
        return np.zeros(len(Xc), bool)
    Xm = np.asarray(X_made, dtype=float)
    if Xm.size == 0:
        return np.zeros(len(Xc), bool)
    Xm = Xm.reshape(-1, Xc.shape[1]) if Xm.ndim == 1 else Xm
    if Xm.shape[1] != Xc.shape[1]:
        raise AcquisitionError(
            f"made experiments have {Xm.shape[1]} features, candidates {Xc.shape[1]}"
        )
    tol_arr = np.broadcast_to(np.asarray(tol, dtype=float), (Xc.shape[1],))
    if np.any(tol_arr < 0):
        raise AcquisitionError("tol must be >= 0")
    # a Chebyshev ball of radius 1 after dividing each feature by its tolerance; a zero
    # tolerance means an exact match (up to round-off)
    scale = np.maximum(tol_arr, 1e-12 * np.maximum(1.0, np.max(np.abs(Xm), axis=0)))
    tree = cKDTree(Xm / scale)
    dist, _ = tree.query(Xc / scale, k=1, p=np.inf, distance_upper_bound=1.0 + 1e-9)
    hit = np.isfinite(dist)
    return hit


def _lipschitz(surrogate: Surrogate, X: np.ndarray, rng: np.random.Generator) -> float:
    """Largest gradient norm of the predicted mean w.r.t. the standardised features."""
    pick = X if len(X) <= LIPSCHITZ_SAMPLE else X[rng.choice(len(X), LIPSCHITZ_SAMPLE, False)]
    scale = np.asarray(surrogate._fitted.scaler.scale_, dtype=float)
    d = X.shape[1]
    h = 1e-4  # step in standardised units
    base = surrogate.predict(pick, return_std=False)
    steps = np.repeat(pick[None], d, axis=0)  # (d, m, d)
    steps[np.arange(d), :, np.arange(d)] += h * scale[:, None]
    shifted = surrogate.predict(steps.reshape(-1, d), return_std=False).reshape(d, -1)
    grad = (shifted - base[None, :]) / h
    return float(np.max(np.sqrt(np.sum(grad**2, axis=0))))


def select_batch(
    surrogate: Surrogate,
    X_candidates: Any,
    n: int,
    method: BatchMethod = "believer",
    best_so_far: float | None = None,
    exclude_mask: Any = None,
    *,
    acquisition: Acquisition = "ei",
    xi: float = 0.01,
    beta: float = 4.0,
    X_made: Any = None,
    tol: float | Any = 1e-6,
    preselect: int = PRESELECT,
    random_state: int = 0,
) -> np.ndarray:
    """Choose ``n`` candidates to make next.

    Args:
        surrogate: trained model of the objective (maximised).
        X_candidates: candidate features, shape (m, d).
        n: batch size.
        method: "believer", "penalization" or "greedy" (see module docstring).
        best_so_far: best measured value (target units) for EI/PI; default: best training y.
        exclude_mask: bool (m,), True for candidates that must not be proposed.
        acquisition: "ei", "pi", "ucb" or "mean".
        xi, beta: EI/PI margin and UCB weight.
        X_made: features of experiments already made; matching candidates (within ``tol``)
            are excluded. The surrogate's own training inputs are always excluded too.
        tol: match tolerance, scalar or per feature (feature units).
        preselect: diversity methods work on the best ``preselect`` candidates by acquisition.
        random_state: seed for the Lipschitz sample.

    Returns:
        Indices into ``X_candidates`` (int array, length <= n, in pick order). Fewer than ``n``
        only when fewer candidates are available (a warning says so).
    """
    Xc = np.asarray(X_candidates, dtype=float)
    if Xc.ndim != 2:
        raise AcquisitionError(f"X_candidates must be 2-D (m, d), got shape {Xc.shape}")
    if n < 1:
        raise AcquisitionError(f"batch size n must be >= 1, got {n}")
    if method not in ("believer", "penalization", "greedy"):
        raise AcquisitionError(
            f"method must be 'believer', 'penalization' or 'greedy', not {method!r}"
        )
    m = len(Xc)
    available = np.ones(m, bool)
    if exclude_mask is not None:
        ex = np.asarray(exclude_mask, dtype=bool).ravel()
        if ex.shape != (m,):
            raise AcquisitionError(f"exclude_mask has shape {ex.shape}, expected ({m},)")
        available &= ~ex
    available &= ~match_made(Xc, surrogate.X_train, tol)
    if X_made is not None:
        available &= ~match_made(Xc, X_made, tol)
    best = surrogate.best_observed if best_so_far is None else float(best_so_far)

    mu, sd = surrogate.predict(Xc, return_std=True)
    acq = _acq(acquisition, mu, sd, best, xi, beta)
    pool = np.flatnonzero(available)
    if len(pool) == 0:
        warnings.warn("no candidates left after excluding made experiments", UserWarning,
                      stacklevel=2)
        return np.zeros(0, dtype=int)
    if method != "greedy" and len(pool) > preselect:
        top = np.argpartition(-acq[pool], preselect - 1)[:preselect]
        pool = pool[np.sort(top)]
    Xp = Xc[pool]
    free = np.ones(len(pool), bool)
    picks: list[int] = []

    if method == "greedy":
        # stable: ties go to the lower index
        order = np.lexsort((pool, -acq[pool]))
        for i in order:
            if not free[i]:
                continue
            picks.append(i)
            free &= ~match_made(Xp, Xp[i : i + 1], tol)
            if len(picks) == n:
                break
    elif method == "believer":
        model = surrogate
        a = acq[pool].copy()
        b = best
        while len(picks) < n and free.any():
            i = int(np.flatnonzero(free)[np.argmax(a[free])])
            picks.append(i)
            free &= ~match_made(Xp, Xp[i : i + 1], tol)
            if len(picks) == n or not free.any():
                break
            mu_z, _ = model.predict_latent(Xp[i : i + 1])
            model = model.condition_on(Xp[i : i + 1], mu_z)
            b = max(b, float(model.predict(Xp[i : i + 1], return_std=False)[0]))
            mu_p, sd_p = model.predict(Xp, return_std=True)
            a = _acq(acquisition, mu_p, sd_p, b, xi, beta)
    else:  # local penalization
        rng = np.random.default_rng(random_state)
        L = max(_lipschitz(surrogate, Xp, rng), 1e-9)
        mu_p, sd_p = mu[pool], sd[pool]
        M = max(float(np.max(mu_p)), best)
        a = acq[pool] - float(np.min(acq[pool]))
        Xs = surrogate.scaled(Xp)
        pen = np.ones(len(pool))
        while len(picks) < n and free.any():
            i = int(np.flatnonzero(free)[np.argmax((a * pen)[free])])
            picks.append(i)
            free &= ~match_made(Xp, Xp[i : i + 1], tol)
            r = np.sqrt(np.sum((Xs - Xs[i]) ** 2, axis=1))
            s = max(float(sd_p[i]), SIGMA_FLOOR)
            pen *= stats.norm.cdf((L * r - M + float(mu_p[i])) / s)
    if len(picks) < n:
        warnings.warn(f"only {len(picks)} candidate(s) available for a batch of {n}",
                      UserWarning, stacklevel=2)
    return pool[np.asarray(picks, dtype=int)]
