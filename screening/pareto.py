"""Multi-objective helpers for PLQY vs stability (all objectives are maximised).

``F`` is an array of shape (n, k): one row per candidate, one column per objective.

* :func:`pareto_front` - indices of the non-dominated rows. For k = 2 an O(n log n) sweep (sort by
  the first objective, keep rows whose second objective beats everything before them); for k > 2 a
  blockwise vectorised dominance test.
* :func:`non_dominated_sort` - front rank of every row (0 = Pareto front), by peeling fronts.
* :func:`scalarize` - weighted sum of objectives normalised to 0..1 (by given bounds or the
  observed range); weights are normalised to sum to 1.
* :func:`hypervolume_2d` - area dominated by a 2-D set and bounded below by a reference point.

A row dominates another if it is >= in every objective and > in at least one. Duplicate rows do
not dominate each other, so both are on the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ParetoError",
    "hypervolume_2d",
    "is_dominated",
    "non_dominated_sort",
    "pareto_front",
    "pareto_mask",
    "scalarize",
]

#: Rows compared at once in the k > 2 dominance test (bounds memory at BLOCK x n x k).
BLOCK = 512


class ParetoError(ValueError):
    """Objectives or weights with the wrong shape or non-finite values."""


def _check(F: Any) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim != 2:
        raise ParetoError(f"objectives must be a 2-D array (n, k), got shape {F.shape}")
    if not np.all(np.isfinite(F)):
        raise ParetoError("objectives contain NaN or infinite values")
    return F


def _mask_2d(F: np.ndarray) -> np.ndarray:
    n = len(F)
    # sort by f0 descending, then f1 descending; stable on the original index
    order = np.lexsort((np.arange(n), -F[:, 1], -F[:, 0]))
    f0 = F[order, 0]
    f1 = F[order, 1]
    prev_max = np.concatenate([[-np.inf], np.maximum.accumulate(f1)[:-1]])
    keep = f1 > prev_max
    # a row whose f1 merely ties the running max is still non-dominated if every earlier row
    # with that f1 has the same f0 (an exact duplicate)
    tie = (f1 == prev_max) & ~keep
    if tie.any():
        # first position at which the running max reached its current value
        run = np.maximum.accumulate(f1)
        first = np.searchsorted(run, run, side="left")  # run is non-decreasing
        idx = np.flatnonzero(tie)
        src = first[idx - 1]
        keep[idx] = (f0[src] == f0[idx]) & (f1[src] == f1[idx]) & keep[src]
    mask = np.zeros(n, bool)
    mask[order] = keep
    return mask


def is_dominated(F: Any, by: Any) -> np.ndarray:
    """Bool (n,): True where row i of ``F`` is dominated by some row of ``by`` (m, k)."""
    F = _check(F)
    B = _check(by)
    out = np.zeros(len(F), bool)
    for s in range(0, len(F), BLOCK):
        a = F[s : s + BLOCK, None, :]
        ge = np.all(B[None, :, :] >= a, axis=2)
        gt = np.any(B[None, :, :] > a, axis=2)
        out[s : s + BLOCK] = np.any(ge & gt, axis=1)
    return out


def pareto_mask(F: Any) -> np.ndarray:
    """Bool (n,): True for rows on the Pareto front (maximisation)."""
    F = _check(F)
    if len(F) == 0:
        return np.zeros(0, bool)
    if F.shape[1] == 1:
        return F[:, 0] == F[:, 0].max()
    if F.shape[1] == 2:
        return _mask_2d(F)
    return ~is_dominated(F, F)


def pareto_front(F: Any) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of ``F`` (maximisation)."""
    return np.flatnonzero(pareto_mask(F))


def non_dominated_sort(F: Any) -> np.ndarray:
    """Front rank of every row (0 = Pareto front, 1 = front after removing it, ...)."""
    F = _check(F)
    rank = np.full(len(F), -1, dtype=int)
    remaining = np.arange(len(F))
    r = 0
    while len(remaining):
        m = pareto_mask(F[remaining])
        rank[remaining[m]] = r
        remaining = remaining[~m]
        r += 1
    return rank


def scalarize(F: Any, weights: Sequence[float] | None = None,
              bounds: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """Weighted sum of objectives normalised to 0..1, shape (n,).

    Args:
        F: objectives (n, k), maximised.
        weights: k non-negative weights (normalised to sum 1); default equal weights.
        bounds: per objective (lo, hi) used for normalisation ``(f - lo) / (hi - lo)``; default
            the observed min and max of each column (a constant column contributes 0).
    """
    F = _check(F)
    k = F.shape[1]
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != (k,):
        raise ParetoError(f"weights must have {k} values (one per objective), got {w.shape[0]}")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ParetoError(f"weights must be finite, non-negative and not all zero, got {w}")
    w = w / w.sum()
    if bounds is None:
        lo = F.min(axis=0) if len(F) else np.zeros(k)
        hi = F.max(axis=0) if len(F) else np.ones(k)
    else:
        b = np.asarray(bounds, dtype=float)
        if b.shape != (k, 2):
            raise ParetoError(f"bounds must be {k} (lo, hi) pairs, got shape {b.shape}")
        lo, hi = b[:, 0], b[:, 1]
    span = hi - lo
    norm = np.where(span > 0, (F - lo) / np.where(span > 0, span, 1.0), 0.0)
    return norm @ w


def hypervolume_2d(F: Any, ref: Sequence[float]) -> float:
    """Area dominated by the rows of ``F`` (n, 2) and dominating the reference point ``ref``.

    Rows that do not strictly dominate ``ref`` in both objectives contribute nothing.
    """
    F = _check(F)
    if F.shape[1] != 2:
        raise ParetoError(f"hypervolume_2d needs 2 objectives, got {F.shape[1]}")
    r = np.asarray(ref, dtype=float)
    if r.shape != (2,):
        raise ParetoError(f"ref must be a point (r0, r1), got {ref!r}")
    P = F[np.all(F > r, axis=1)]
    if len(P) == 0:
        return 0.0
    P = P[_mask_2d(P)]
    P = P[np.argsort(-P[:, 0], kind="stable")]  # f0 descending -> f1 ascending on the front
    widths = P[:, 0] - r[0]
    heights = np.diff(np.concatenate([[r[1]], P[:, 1]]))
    return float(np.sum(widths * np.clip(heights, 0.0, None)))
