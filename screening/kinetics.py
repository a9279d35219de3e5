"""Kinetic features of a TLIS feature time series (edge position, PL intensity, ... versus time).

All functions take ``t`` (minutes, strictly increasing, shape ``(n,)``) and ``y`` (same shape,
finite). Invalid time points (failed spectral fits) must be removed by the caller; a NaN here is a
:class:`KineticsError`, never silently skipped.

Criteria (documented once, used everywhere):

* **tolerance** ``tol = max(rel_tol * (max(y) - min(y)), noise_k * noise(y), abs_tol)`` where
  ``noise(y)`` is the robust point-to-point scatter (1.4826 MAD of first differences / sqrt 2).
* **time to steady state**: the first time after which ``y`` stays within ``tol`` of its final
  plateau (median of the last ``plateau_fraction`` of the points, at least 3 points).
* **time to maximum**: the first time ``y`` comes within ``tol`` of its maximum (the maximum of
  a 5-point running median, so single outliers do not count).
* **decay onset** after the maximum: a broken-stick fit ``y = a`` for ``t < t_on`` and
  ``y = a - b (t - t_on)`` afterwards, least squares over the segment from the maximum to the
  point where half of the total drop is reached; reported only if the drop exceeds ``tol``.
* **JMAK/Avrami**: ``alpha(t) = 1 - exp(-(k (t - t0))^n)`` fitted with
  :func:`scipy.optimize.curve_fit`; uncertainties are the square roots of the covariance diagonal.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import median_filter
from scipy.optimize import OptimizeWarning, curve_fit

#: method name and version of every kinetic feature; bump the version when the algorithm changes.
METHOD_VERSIONS: dict[str, tuple[str, str]] = {
    "steady_state_time": ("stays-within-tol-of-final-plateau", "1"),
    "time_to_max": ("first-within-tol-of-running-median-max", "1"),
    "decay_onset_time": ("broken-stick-lsq", "1"),
    "decay_extent": ("max-minus-final-plateau", "1"),
    "jmak": ("jmak-curve_fit", "1"),
    "pl_enhancement": ("ratio", "1"),
}

#: Default relative tolerance (fraction of the series' range) for plateau/maximum criteria.
DEFAULT_REL_TOL = 0.02
#: Multiple of the robust noise level that always counts as "within tolerance".
DEFAULT_NOISE_K = 3.0
MIN_POINTS = 5


class KineticsError(ValueError):
    """A time series that cannot be analysed; the message names the problem."""


@dataclass(frozen=True)
class Feature:
    """One scalar derived value, ready to be stored.

    Attributes:
        name: feature name ("steady_state_time", "absorption_edge_final", ...).
        value: the value in ``unit``.
        unit: pint-compatible unit text ("min", "nm", "eV", "" for dimensionless).
        uncertainty: one standard uncertainty in ``unit``, or None if not estimated.
        method: algorithm name; ``version``: algorithm version (recompute when it changes).
        quantity: matdb.vocabulary.QUANTITIES name this value is stored as, if any.
        note: free text (e.g. the criterion's tolerance).
    """

    name: str
    value: float
    unit: str
    uncertainty: float | None = None
    method: str = ""
    version: str = ""
    quantity: str | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mv(key: str) -> tuple[str, str]:
    return METHOD_VERSIONS[key]


def check_series(
    t: ArrayLike, y: ArrayLike, min_points: int = MIN_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(t, y)`` as float arrays.

    Raises:
        KineticsError: shapes differ, fewer than ``min_points`` points, non-finite values, or
            times that are not strictly increasing.
    """
    t = np.asarray(t, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if t.shape != y.shape:
        raise KineticsError(f"time ({t.size} points) and values ({y.size} points) differ in length")
    if t.size < min_points:
        raise KineticsError(f"too few time points ({t.size}); need at least {min_points}")
    if not np.all(np.isfinite(t)):
        raise KineticsError("time axis contains NaN or infinite values")
    bad = ~np.isfinite(y)
    if bad.any():
        raise KineticsError(
            f"values contain {int(bad.sum())} NaN/infinite point(s) "
            f"(first at t = {t[bad][0]:g} min); "
            "remove failed time points before kinetic analysis"
        )
    if np.any(np.diff(t) <= 0):
        raise KineticsError("time axis must be strictly increasing")
    return t, y


def noise_level(y: np.ndarray) -> float:
    """Robust point-to-point noise: 1.4826 * MAD(diff(y)) / sqrt(2) (trend-insensitive)."""
    d = np.diff(np.asarray(y, dtype=float))
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def tolerance(
    y: np.ndarray,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float | None = None,
    noise_k: float = DEFAULT_NOISE_K,
) -> float:
    """The tolerance band used by the plateau and maximum criteria (same unit as ``y``)."""
    rng = float(np.max(y) - np.min(y))
    return max(rel_tol * rng, noise_k * noise_level(y), abs_tol or 0.0)


def _running_median(y: np.ndarray, size: int = 5) -> np.ndarray:
    size = max(1, min(size, y.size if y.size % 2 else y.size - 1))
    return median_filter(y, size=size, mode="nearest")


@dataclass(frozen=True)
class SteadyState:
    """Result of :func:`steady_state_time`; ``time`` is None unless ``status == 'ok'``."""

    status: str  # "ok" | "not_reached"
    time: float | None
    level: float
    tol: float
    method: str = _mv("steady_state_time")[0]
    version: str = _mv("steady_state_time")[1]


def steady_state_time(
    t: ArrayLike,
    y: ArrayLike,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float | None = None,
    plateau_fraction: float = 0.1,
    noise_k: float = DEFAULT_NOISE_K,
) -> SteadyState:
    """First time after which ``y`` stays within ``tol`` of its final plateau.

    The final plateau is the median of the last ``plateau_fraction`` of the points (>= 3).
    ``status`` is "not_reached" when the last point before the plateau window already leaves
    the band (the series is still changing at the end of the run).
    """
    t, y = check_series(t, y)
    n_tail = max(3, int(round(plateau_fraction * y.size)))
    level = float(np.median(y[-n_tail:]))
    tol = tolerance(y, rel_tol, abs_tol, noise_k)
    outside = np.abs(y - level) > tol
    if not outside.any():
        return SteadyState("ok", float(t[0]), level, tol)
    last_out = int(np.flatnonzero(outside)[-1])
    if last_out >= y.size - n_tail:
        return SteadyState("not_reached", None, level, tol)
    return SteadyState("ok", float(t[last_out + 1]), level, tol)


@dataclass(frozen=True)
class Maximum:
    """Result of :func:`time_of_maximum`.

    Attributes:
        time: first time within ``tol`` of the maximum ("time to maximum", min).
        time_argmax: time of the running-median maximum itself (min).
        value: the running-median maximum (unit of y).
    """

    time: float
    time_argmax: float
    value: float
    index: int
    tol: float
    method: str = _mv("time_to_max")[0]
    version: str = _mv("time_to_max")[1]


def time_of_maximum(
    t: ArrayLike,
    y: ArrayLike,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float | None = None,
    noise_k: float = DEFAULT_NOISE_K,
) -> Maximum:
    """Time and value of the maximum of ``y`` (criterion in the module docstring)."""
    t, y = check_series(t, y)
    ys = _running_median(y)
    i = int(np.argmax(ys))
    tol = tolerance(y, rel_tol, abs_tol, noise_k)
    first = int(np.flatnonzero(ys >= ys[i] - tol)[0])
    return Maximum(float(t[first]), float(t[i]), float(ys[i]), i, tol)


@dataclass(frozen=True)
class Decay:
    """Result of :func:`decay_after_maximum`; onset is None unless ``status == 'ok'``.

    Attributes:
        onset_time: broken-stick onset of the decay (min).
        extent: drop from the maximum to the final plateau (unit of y, >= 0).
        relative_extent: extent / |maximum|.
        final_level: median of the last points.
    """

    status: str  # "ok" | "no_decay"
    onset_time: float | None
    max_value: float
    final_level: float
    extent: float
    relative_extent: float
    tol: float
    method: str = _mv("decay_onset_time")[0]
    version: str = _mv("decay_onset_time")[1]


def decay_after_maximum(
    t: ArrayLike,
    y: ArrayLike,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float | None = None,
    noise_k: float = DEFAULT_NOISE_K,
    final_fraction: float = 0.05,
    n_candidates: int = 400,
) -> Decay:
    """Onset and extent of a decay after the maximum (e.g. alpha -> delta FAPbI3 after ~53 min)."""
    t, y = check_series(t, y)
    mx = time_of_maximum(t, y, rel_tol, abs_tol, noise_k)
    n_tail = max(3, int(round(final_fraction * y.size)))
    final = float(np.median(y[-n_tail:]))
    extent = max(mx.value - final, 0.0)
    rel = extent / abs(mx.value) if mx.value != 0 else math.inf
    if extent <= mx.tol or mx.index >= y.size - 3:
        return Decay("no_decay", None, mx.value, final, extent, rel, mx.tol)
    ys = _running_median(y)
    i0 = mx.index
    after = np.flatnonzero(ys[i0:] <= mx.value - 0.5 * extent)
    i1 = i0 + int(after[0]) if after.size else y.size - 1
    i1 = max(i1, min(i0 + 4, y.size - 1))
    ts, yseg = t[i0 : i1 + 1], y[i0 : i1 + 1]
    cands = np.linspace(ts[0], ts[-2], n_candidates)
    # design y = a - b * h with h = max(0, t - t_c); closed-form least squares per candidate
    h = np.clip(ts[None, :] - cands[:, None], 0.0, None)
    m = ts.size
    sh, shh = h.sum(1), (h * h).sum(1)
    sy, shy = yseg.sum(), (h * yseg[None, :]).sum(1)
    det = m * shh - sh * sh
    ok = det > 1e-12
    det = np.where(ok, det, 1.0)
    a = (shh * sy - sh * shy) / det
    slope = (m * shy - sh * sy) / det  # coefficient of h (negative for a decay)
    resid = yseg[None, :] - a[:, None] - slope[:, None] * h
    sse = np.where(ok & (slope < 0), (resid * resid).sum(1), np.inf)
    if not np.isfinite(sse).any():
        return Decay("no_decay", None, mx.value, final, extent, rel, mx.tol)
    onset = float(cands[int(np.argmin(sse))])
    return Decay("ok", onset, mx.value, final, extent, rel, mx.tol)


@dataclass(frozen=True)
class JMAKFit:
    """JMAK/Avrami fit ``alpha = 1 - exp(-(k (t - t0))^n)``; k in 1/min, t0 in min.

    Values are None unless ``status == 'ok'``; errors are 1-sigma from the curve_fit covariance.
    """

    status: str  # "ok" | "not_converged" | "too_few_points"
    k: float | None = None
    k_err: float | None = None
    n: float | None = None
    n_err: float | None = None
    t0: float | None = None
    t0_err: float | None = None
    rmse: float | None = None
    message: str = ""
    method: str = _mv("jmak")[0]
    version: str = _mv("jmak")[1]


def jmak(t: ArrayLike, k: float, n: float, t0: float = 0.0) -> np.ndarray:
    """JMAK conversion ``1 - exp(-(k (t - t0))^n)`` (0 before ``t0``)."""
    dt = np.clip(np.asarray(t, dtype=float) - t0, 0.0, None)
    return 1.0 - np.exp(-np.power(k * dt, n))


def fit_jmak(
    t: ArrayLike,
    alpha: ArrayLike,
    t0: float | None = 0.0,
    n_bounds: tuple[float, float] = (0.3, 8.0),
) -> JMAKFit:
    """Fit the JMAK/Avrami model to a conversion series ``alpha`` (0..1).

    Args:
        t: times (min).
        alpha: conversion fraction, e.g. from :func:`conversion`.
        t0: fixed induction time (min), or None to fit it too.
        n_bounds: allowed range of the Avrami exponent.
    """
    t, a = check_series(t, alpha, min_points=4)
    mid = (a > 0.05) & (a < 0.95)
    if mid.sum() < 3:
        return JMAKFit("too_few_points", message="fewer than 3 points with 0.05 < alpha < 0.95")
    t0_guess = 0.0 if t0 is None else float(t0)
    if t0 is None:
        first = np.flatnonzero(a > 0.02)
        t0_guess = float(t[max(first[0] - 1, 0)]) if first.size else float(t[0])
        t0_guess = min(t0_guess, float(t[mid][0]) - 1e-6)
    dt = t[mid] - t0_guess
    keep = dt > 0
    if keep.sum() >= 2:
        n0, c0 = np.polyfit(np.log(dt[keep]), np.log(-np.log(1.0 - a[mid][keep])), 1)
        n0 = float(np.clip(n0, n_bounds[0] * 1.01, n_bounds[1] * 0.99))
        k0 = float(np.exp(c0 / n0))
    else:
        n0, k0 = 2.0, 1.0 / max(float(np.median(t[mid]) - t0_guess), 1e-3)
    span = float(t[-1] - t[0]) or 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            if t0 is None:
                lo_t0 = float(t[0]) - span
                p, cov = curve_fit(
                    jmak,
                    t,
                    a,
                    p0=[k0, n0, t0_guess],
                    bounds=([1e-9, n_bounds[0], lo_t0], [np.inf, n_bounds[1], float(t[mid][0])]),
                    maxfev=5000,
                )
            else:
                p, cov = curve_fit(
                    lambda tt, k, n: jmak(tt, k, n, float(t0)),
                    t,
                    a,
                    p0=[k0, n0],
                    bounds=([1e-9, n_bounds[0]], [np.inf, n_bounds[1]]),
                    maxfev=5000,
                )
    except (RuntimeError, OptimizeWarning, ValueError) as exc:
        return JMAKFit("not_converged", message=str(exc))
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(err))):
        return JMAKFit("not_converged", message="covariance could not be estimated")
    tt0 = float(p[2]) if t0 is None else float(t0)
    resid = a - jmak(t, p[0], p[1], tt0)
    return JMAKFit(
        "ok",
        float(p[0]),
        float(err[0]),
        float(p[1]),
        float(err[1]),
        tt0,
        float(err[2]) if t0 is None else 0.0,
        float(np.sqrt(np.mean(resid**2))),
    )


def conversion(
    t: ArrayLike, y: ArrayLike, until: float | None = None, n_start: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a rising series to a conversion fraction 0..1.

    ``alpha = (y - y_start) / (y_max - y_start)`` with ``y_start`` the median of the first
    ``n_start`` points and ``y_max`` the running-median maximum (the rise must exceed the
    tolerance band); only points with
    ``t <= until`` (default: the time of the maximum) are returned. Treating an edge position as
    proportional to conversion is an approximation (stated in the feature's method name).
    """
    t, y = check_series(t, y)
    mx = time_of_maximum(t, y)
    y0 = float(np.median(y[:n_start]))
    span = mx.value - y0
    if span <= tolerance(y):
        raise KineticsError("series does not rise above its starting value; no conversion to fit")
    end = mx.time_argmax if until is None else until
    sel = t <= end
    return t[sel], (y[sel] - y0) / span


def pl_enhancement(
    before: float, after: float, before_err: float | None = None, after_err: float | None = None
) -> Feature:
    """PL enhancement factor ``after / before`` with first-order propagated uncertainty."""
    if not (math.isfinite(before) and math.isfinite(after)):
        raise KineticsError("PL intensities must be finite numbers")
    if before <= 0:
        raise KineticsError(f"reference PL intensity must be positive, got {before:g}")
    ratio = after / before
    unc = None
    if before_err is not None or after_err is not None:
        rb = (before_err or 0.0) / before
        ra = (after_err or 0.0) / after if after else 0.0
        unc = abs(ratio) * math.hypot(rb, ra)
    m, v = _mv("pl_enhancement")
    return Feature("pl_enhancement", ratio, "", unc, m, v, "pl_enhancement")


def enhancement_between(t: ArrayLike, y: ArrayLike, t_a: float, t_b: float) -> Feature:
    """PL enhancement between two time points (linear interpolation of the series)."""
    t, y = check_series(t, y, min_points=2)
    for tt in (t_a, t_b):
        if not t[0] <= tt <= t[-1]:
            raise KineticsError(f"time {tt:g} min is outside the series ({t[0]:g}..{t[-1]:g} min)")
    feat = pl_enhancement(float(np.interp(t_a, t, y)), float(np.interp(t_b, t, y)))
    return Feature(
        feat.name,
        feat.value,
        "",
        None,
        feat.method,
        feat.version,
        feat.quantity,
        f"I({t_b:g} min) / I({t_a:g} min)",
    )


# --- online detection (a series that grows one point at a time) --------------------------------------------


@dataclass(frozen=True)
class Detection:
    """What :class:`OnlineKinetics` concludes after the latest point.

    Attributes:
        status: "changing" (no decision yet), "steady" (steady state reached) or "decaying" (a decay after
            the maximum has started).
        steady_since: steady-state time (min) by :func:`steady_state_time` on the series so far, or None.
        decay_since: decay onset (min) by :func:`decay_after_maximum` on the series so far, or None.
    """

    status: str
    steady_since: float | None
    decay_since: float | None
    t_last: float | None
    n_points: int
    tol: float | None = None


class OnlineKinetics:
    """Steady state and decay onset of a growing series, decided as each point arrives.

    The criteria are those of :func:`steady_state_time` and :func:`decay_after_maximum` (the same functions,
    applied to the series so far, held in growing buffers). Two guards make them fit for a live decision:
    steady state counts only once the plateau differs from the start of the run by more than the tolerance
    (a flat induction period is not a steady state), and both decisions must hold for ``confirm`` consecutive
    points before they are reported (one noisy point does not raise or drop a banner). A decay, once
    reported, stays reported. NaN values (failed spectral fits) are skipped, as offline.
    """

    def __init__(
        self,
        rel_tol: float = DEFAULT_REL_TOL,
        abs_tol: float | None = None,
        noise_k: float = DEFAULT_NOISE_K,
        confirm: int = 3,
        capacity: int = 1024,
    ) -> None:
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.noise_k = noise_k
        self.confirm = confirm
        self.capacity = capacity
        self._t = np.empty(capacity)
        self._y = np.empty(capacity)
        self._n = 0
        self._ss_run = 0
        self._dec_run = 0
        self._decay: float | None = None
        self._steady: float | None = None
        self.detection = Detection("changing", None, None, None, 0)

    @property
    def t(self) -> np.ndarray:
        return self._t[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    def add(self, t: float, y: float) -> Detection:
        """Add one point (min, value) and return the detection after it."""
        if not (math.isfinite(t) and math.isfinite(y)) or (self._n and t <= self._t[self._n - 1]):
            return self.detection
        if self._n == self._t.size:
            self._t = np.concatenate([self._t, np.empty(self._t.size)])
            self._y = np.concatenate([self._y, np.empty(self._y.size)])
        self._t[self._n], self._y[self._n] = t, y
        self._n += 1
        self.detection = self._decide()
        return self.detection

    def _decide(self) -> Detection:
        n = self._n
        t, y = self.t, self.y
        if n < MIN_POINTS:
            return Detection("changing", None, None, float(t[-1]), n)
        ss = steady_state_time(t, y, self.rel_tol, self.abs_tol, noise_k=self.noise_k)
        start = float(np.median(y[:3]))
        moved = abs(ss.level - start) > ss.tol
        self._ss_run = self._ss_run + 1 if ss.status == "ok" and moved else 0
        if self._ss_run >= self.confirm and self._decay is None:
            self._steady = ss.time
        if self._decay is None:
            dec = decay_after_maximum(t, y, self.rel_tol, self.abs_tol, self.noise_k)
            self._dec_run = self._dec_run + 1 if dec.status == "ok" else 0
            if self._dec_run >= self.confirm:
                self._decay = dec.onset_time
        if self._decay is not None:
            status = "decaying"
        elif self._ss_run >= self.confirm:
            status = "steady"
        else:
            status = "changing"
        return Detection(status, self._steady if status != "changing" else None, self._decay, float(t[-1]), n,
                         ss.tol)
