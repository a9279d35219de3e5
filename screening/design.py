"""Space-filling initial designs under constraints (the first batch of a new family).

With too few results to learn from, the best first batch covers the feasible domain evenly and
keeps away from what was already made: points are drawn from a scrambled Sobol sequence in the
domain (rejecting those that violate its constraints), then chosen greedily by *maximin* distance
(each next point is the candidate farthest from everything chosen or made so far, in the domain's
unit cube). Literature points can be kept as *anchors*: they count as made, so the design fills
the gaps around them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["maximin_select"]


def maximin_select(candidates_unit: np.ndarray, n: int, existing_unit: np.ndarray | None = None,
                   *, min_distance: float = 0.0, rng: np.random.Generator | None = None,
                   score: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Indices of ``n`` rows of ``candidates_unit`` (shape (m, d), unit cube) chosen by greedy maximin.

    Args:
        candidates_unit: feasible candidates scaled to the unit cube.
        n: how many to choose.
        existing_unit: points already made or kept as anchors (shape (k, d)); the design keeps away
            from them.
        min_distance: candidates closer than this to an existing or chosen point are never picked.
        rng: breaks the tie of the very first pick when nothing exists yet (the most central
            candidate is used when None).
        score: optional weight per candidate multiplied onto the distance (e.g. p(feasible)).

    Returns:
        Indices in pick order; fewer than ``n`` only when the candidates run out.
    """
    C = np.asarray(candidates_unit, dtype=float)
    m = len(C)
    if m == 0 or n < 1:
        return np.zeros(0, dtype=int)
    w = np.ones(m) if score is None else np.clip(np.asarray(score(C), dtype=float), 0.0, None)
    dist = np.full(m, np.inf)
    if existing_unit is not None and len(existing_unit):
        E = np.asarray(existing_unit, dtype=float).reshape(-1, C.shape[1])
        dist, _ = cKDTree(E).query(C, k=1)
    picks: list[int] = []
    alive = np.ones(m, bool)
    alive &= dist >= min_distance
    for _ in range(min(n, m)):
        if not alive.any():
            break
        if np.isinf(dist[alive]).all():
            # nothing made yet: start from the candidate nearest the centre (or a random one)
            centre = np.full(C.shape[1], 0.5)
            d0 = np.linalg.norm(C - centre, axis=1)
            d0[~alive] = np.inf
            i = int(rng.choice(np.flatnonzero(alive))) if rng is not None else int(np.argmin(d0))
        else:
            val = np.where(alive, dist * w, -np.inf)
            i = int(np.argmax(val))
        picks.append(i)
        d_new = np.linalg.norm(C - C[i], axis=1)
        dist = np.minimum(dist, d_new)
        alive &= dist > max(min_distance, 1e-12)
    return np.asarray(picks, dtype=int)
