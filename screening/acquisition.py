"""Acquisition functions (maximisation of a utility, see :mod:`screening.objectives`).

They take the predicted mean ``mu`` and std ``sigma`` and treat the prediction as Gaussian with
those moments; for logit-transformed targets that is a moment-matched approximation of the
logit-normal predictive distribution, good away from the bounds and conservative near them.

* expected improvement ``EI = (mu - best - xi) Phi(z) + sigma phi(z)``, ``z = (mu - best - xi) /
  sigma`` (Jones et al. 1998, doi:10.1023/A:1008306431147); ``EI = max(mu - best - xi, 0)`` where
  ``sigma = 0``;
* probability of improvement ``PI = Phi((mu - best - xi) / sigma)``;
* upper confidence bound ``UCB = mu + sqrt(beta) sigma`` (the GP-UCB convention of Srinivas et
  al. 2010, arXiv:0912.3995; ``beta = 4`` is mean + 2 std).

Batches, continuous search and exploration are the proposer's (:mod:`screening.optimizer`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree

__all__ = [
    "AcquisitionError",
    "expected_improvement",
    "match_made",
    "probability_of_improvement",
    "upper_confidence_bound",
]

#: Std below which a prediction counts as certain (avoids 0/0 in EI and PI).
SIGMA_FLOOR = 1e-12


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
