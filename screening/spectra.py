"""Spectral features of TLIS runs, vectorised over all time points at once.

Input: ``values`` of shape ``(n_t, n_wl)`` (raw detector counts), ``wavelengths_nm`` ``(n_wl,)``
strictly increasing, ``times_min`` ``(n_t,)``, and for reflectance a PTFE ``reference``
``(n_wl,)`` or ``(n_t, n_wl)``.

Reflectance (diffuse, R = sample / reference):

* Kubelka-Munk ``F(R) = (1 - R)^2 / (2 R)`` (Eq. 1 of doi:10.1038/s41467-025-56571-w).
* **absorption edge** (nm): the wavelength of the steepest fall of F(R) with wavelength, i.e.
  the minimum of the Savitzky-Golay derivative dF/dlambda (window ``edge_window_nm``, quadratic),
  refined to sub-pixel by a parabola through the three points around the minimum. An edge is
  accepted only if the F step across it (maximum within ``edge_span_nm`` on the short side minus
  the baseline beyond ``edge+baseline_offset_nm``) exceeds ``min_edge_contrast`` and the
  derivative minimum is ``min_edge_snr`` times the row's robust derivative noise; otherwise the
  time point has status "no_edge".
* **absorption onset** (nm): tangent at the edge intersected with the baseline.
* **Tauc band gap** (eV): ``(F h nu)^(1/r)`` against ``h nu`` with r = 1/2 for direct allowed
  transitions (default; ``transition="indirect_allowed"`` uses r = 2); a straight line is fitted
  (least squares) to the points within ``tauc_half_width_ev`` of the steepest point of the Tauc
  curve near the edge and extrapolated to zero. The uncertainty is propagated from the fit.
* **Urbach energy** (meV): ``ln(F - F_baseline)`` is linear in photon energy with slope 1/E_U in
  the sub-gap tail; fitted over points below the edge energy whose ``F - F_base`` lies between
  ``urbach_fractions`` of the step height.

PL:

* one emission peak per spectrum, Gaussian in photon energy (or pseudo-Voigt), fitted to the
  counts per channel ``m(lambda) = A g(E) hc/lambda^2 dlambda + b`` (A in counts per eV, b a flat
  background) by a batched Levenberg-Marquardt (all spectra at once) started from moment
  estimates; the covariance is ``inv(J^T J) * SSE / (n - p)`` as in
  ``scipy.optimize.curve_fit(absolute_sigma=False)``. ``engine="curve_fit"`` fits one spectrum at
  a time with curve_fit instead (slow, for checking).
* peak position ``hc/E0`` (nm), FWHM = the energy FWHM mapped to wavelength
  ``hc/(E0 - G/2) - hc/(E0 + G/2)`` (nm), integrated intensity = fitted area (counts).
* PL low-energy tail: ``ln I_E`` against E is fitted on the low-energy side between
  ``tail_fractions`` of the peak; slope s gives the tail energy 1/s and, via the van
  Roosbroeck-Shockley relation ``PL ~ alpha(E) E^2 exp(-E/kT)`` with an Urbach absorption tail,
  ``E_U = 1 / (s + 1/kT)``.

A time point whose fit fails carries a status ("no_peak", "not_converged", "saturated",
"no_edge") and NaN in the value arrays; :meth:`Series.records` and :meth:`Series.valid` never
return those points, and summary features that cannot be computed are absent from
:attr:`FeatureSet.features` with a warning saying why.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import convolve1d, uniform_filter1d
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.signal import savgol_coeffs

from screening import kinetics as kin
from screening import stability as stab
from screening.kinetics import Feature, KineticsError

#: h*c in eV nm (CODATA 2018 exact constants).
HC_EV_NM = 1239.8419843320026
#: Boltzmann constant in eV/K (CODATA 2018, exact).
K_B_EV = 8.617333262e-5
#: Fewest wavelength points a spectrum may have.
MIN_POINTS = 15
#: Reflectance above 1 + this is reported (and clipped to 1); noise makes R slightly > 1 normal.
REFLECTANCE_OVERSHOOT_TOL = 0.05
#: Default full scale of a 16-bit detector (counts).
DEFAULT_DETECTOR_MAX = 65535.0

#: (method name, version) of every spectral feature; bump a version when its algorithm changes.
METHOD_VERSIONS: dict[str, tuple[str, str]] = {
    "kubelka_munk": ("kubelka-munk", "1"),
    "absorption_edge": ("max-slope-KM-savgol", "1"),
    "absorption_onset": ("tangent-baseline-KM", "1"),
    "bandgap": ("tauc-linear-extrapolation", "1"),
    "urbach_energy": ("urbach-lnKM-tail", "1"),
    "km_above_edge": ("max-KM-short-side-of-edge", "1"),
    "pl_peak": ("gaussian-energy-LM", "1"),
    "pl_fwhm": ("gaussian-energy-LM", "1"),
    "pl_integrated_intensity": ("gaussian-energy-LM-area", "1"),
    "pl_counts": ("channel-sum", "1"),
    "pl_tail_urbach_energy": ("pl-tail-van-Roosbroeck-Shockley", "1"),
    **{k: v for k, v in kin.METHOD_VERSIONS.items()},
    **{f"stability:{k}": v for k, v in stab.METHOD_VERSIONS.items()},
}

TRANSITIONS = {
    "direct_allowed": 0.5,
    "indirect_allowed": 2.0,
    "direct_forbidden": 1.5,
    "indirect_forbidden": 3.0,
}


class SpectrumError(ValueError):
    """Spectra that cannot be analysed; the message names the problem and where it is."""


class SpectrumWarning(UserWarning):
    """Data problems that exclude some time points but not the run."""


def _method(key: str, suffix: str = "") -> tuple[str, str]:
    m, v = METHOD_VERSIONS[key]
    return (f"{m}-{suffix}" if suffix else m), v


# --- result containers ----------------------------------------------------------------------------


@dataclass
class Series:
    """A per-time-point feature.

    Attributes:
        values: shape (n_t,), NaN where ``status != "ok"`` (never stored; see :meth:`records`).
        uncertainty: shape (n_t,) 1-sigma, or None if not estimated.
        status: shape (n_t,) "ok" or why the point has no value.
    """

    name: str
    unit: str
    values: np.ndarray
    status: np.ndarray
    uncertainty: np.ndarray | None = None
    quantity: str | None = None
    method: str = ""
    version: str = ""

    @property
    def ok(self) -> np.ndarray:
        return self.status == "ok"

    def valid(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t, y)`` of the points with status "ok" only."""
        m = self.ok
        return np.asarray(times)[m], self.values[m]

    def records(self, times: np.ndarray) -> list[dict[str, Any]]:
        """One dict per valid point (failed points are left out, not stored as numbers)."""
        out = []
        for i in np.flatnonzero(self.ok):
            out.append(
                {
                    "time_min": float(times[i]),
                    "name": self.name,
                    "value": float(self.values[i]),
                    "unit": self.unit,
                    "uncertainty": None
                    if self.uncertainty is None or not np.isfinite(self.uncertainty[i])
                    else float(self.uncertainty[i]),
                    "method": self.method,
                    "version": self.version,
                    "quantity": self.quantity,
                }
            )
        return out


@dataclass
class FeatureSet:
    """Everything :func:`extract_features` derives from one run."""

    kind: str
    times_min: np.ndarray
    wavelengths_nm: np.ndarray
    series: dict[str, Series] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def feature_records(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.features.values()]


@dataclass
class EdgeResult:
    """Vectorised absorption-edge results, each of shape (n_t,); NaN where status != "ok"."""

    edge_nm: np.ndarray
    onset_nm: np.ndarray
    km_above_edge: np.ndarray
    baseline: np.ndarray
    status: np.ndarray


@dataclass
class PeakFitBatch:
    """Vectorised PL peak fits, arrays of shape (n_t,); NaN where status != "ok".

    ``params`` (n_t, p) are (A [counts/eV], E0 [eV], FWHM [eV], background [counts]) for a
    Gaussian, plus eta (Lorentzian fraction) before the background for a pseudo-Voigt;
    ``cov`` (n_t, p, p) their covariance.
    """

    profile: str
    peak_nm: np.ndarray
    peak_nm_err: np.ndarray
    fwhm_nm: np.ndarray
    fwhm_nm_err: np.ndarray
    area: np.ndarray
    area_err: np.ndarray
    params: np.ndarray
    cov: np.ndarray
    status: np.ndarray
    n_iter: np.ndarray


@dataclass(frozen=True)
class PeakFit:
    """One PL peak fit; the numbers are None unless ``status == "ok"``."""

    status: str
    peak_nm: float | None = None
    peak_nm_err: float | None = None
    fwhm_nm: float | None = None
    fwhm_nm_err: float | None = None
    area: float | None = None
    area_err: float | None = None
    message: str = ""
    method: str = METHOD_VERSIONS["pl_peak"][0]
    version: str = METHOD_VERSIONS["pl_peak"][1]


# --- input checks ---------------------------------------------------------------------------------


def _as_matrix(values: ArrayLike, wavelengths_nm: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        v = np.asarray(values, dtype=float)
        wl = np.asarray(wavelengths_nm, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise SpectrumError(f"spectra must be numeric arrays: {exc}") from None
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2:
        raise SpectrumError(f"spectra must have shape (n_time, n_wavelength), got {v.shape}")
    if v.shape[1] != wl.size:
        raise SpectrumError(
            f"spectra have {v.shape[1]} wavelength points but the wavelength axis has {wl.size}"
        )
    if wl.size < MIN_POINTS:
        raise SpectrumError(f"too few wavelength points ({wl.size}); need at least {MIN_POINTS}")
    if v.shape[0] == 0:
        raise SpectrumError("no spectra (0 time points)")
    if not np.all(np.isfinite(wl)):
        raise SpectrumError("wavelength axis contains NaN or infinite values")
    if np.any(np.diff(wl) <= 0):
        raise SpectrumError("wavelength axis must be strictly increasing")
    if wl[0] <= 0:
        raise SpectrumError(f"wavelengths must be positive (first is {wl[0]:g} nm)")
    bad = ~np.isfinite(v)
    if bad.any():
        it, iw = np.argwhere(bad)[0]
        raise SpectrumError(
            f"spectra contain {int(bad.sum())} NaN/infinite value(s) "
            f"(first at time index {it}, {wl[iw]:g} nm)"
        )
    return v, wl


def saturated_rows(values: np.ndarray, detector_max: float | None) -> np.ndarray:
    """Boolean (n_t,): spectra with at least one channel at or above ``detector_max`` counts."""
    if detector_max is None:
        return np.zeros(values.shape[0], dtype=bool)
    return np.any(values >= detector_max, axis=1)


def _uniform(wl: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample onto a uniform grid (vectorised linear interpolation) if the axis is not uniform."""
    d = np.diff(wl)
    if np.allclose(d, d[0], rtol=1e-6, atol=1e-9):
        return wl, v
    grid = np.linspace(wl[0], wl[-1], wl.size)
    j = np.clip(np.searchsorted(wl, grid) - 1, 0, wl.size - 2)
    w = (grid - wl[j]) / (wl[j + 1] - wl[j])
    return grid, v[:, j] * (1 - w) + v[:, j + 1] * w


def reflectance(values: ArrayLike, reference: ArrayLike, wavelengths_nm: ArrayLike) -> np.ndarray:
    """R = sample / reference, shape (n_t, n_wl).

    Raises:
        SpectrumError: reference with non-positive or non-finite counts, wrong shape, negative
            or zero reflectance (KM undefined).
    Warns:
        SpectrumWarning: reflectance above 1 + REFLECTANCE_OVERSHOOT_TOL (clipped to 1).
    """
    v, wl = _as_matrix(values, wavelengths_nm)
    ref = np.asarray(reference, dtype=float)
    if ref.ndim == 1:
        ref = ref[None, :]
    if ref.shape[-1] != wl.size or ref.shape[0] not in (1, v.shape[0]):
        raise SpectrumError(f"reference shape {ref.shape} does not match the spectra {v.shape}")
    if not np.all(np.isfinite(ref)):
        raise SpectrumError("reference spectrum contains NaN or infinite values")
    nonpos = ref <= 0
    if nonpos.any():
        iw = np.argwhere(nonpos)[0][-1]
        raise SpectrumError(
            f"reference spectrum has {int(nonpos.sum())} non-positive count(s) "
            f"(first at {wl[iw]:g} nm); "
            "reflectance is undefined there"
        )
    r = v / ref
    neg = r < 0
    if neg.any():
        it, iw = np.argwhere(neg)[0]
        raise SpectrumError(
            f"negative reflectance at {int(neg.sum())} point(s) "
            f"(first at time index {it}, {wl[iw]:g} nm); "
            "sample counts below zero — check dark subtraction"
        )
    zero = r == 0
    if zero.any():
        it, iw = np.argwhere(zero)[0]
        raise SpectrumError(
            f"zero reflectance at {int(zero.sum())} point(s) "
            f"(first at time index {it}, {wl[iw]:g} nm); "
            "Kubelka-Munk F(R) is infinite there"
        )
    over = r > 1 + REFLECTANCE_OVERSHOOT_TOL
    if over.any():
        warnings.warn(
            f"reflectance above {1 + REFLECTANCE_OVERSHOOT_TOL:g} at {int(over.sum())} point(s) "
            f"(max {r.max():.3g}); clipped to 1",
            SpectrumWarning,
            stacklevel=2,
        )
    return np.minimum(r, 1.0)


def kubelka_munk(r: ArrayLike) -> np.ndarray:
    """Kubelka-Munk remission function ``F(R) = (1 - R)^2 / (2 R)`` (dimensionless).

    ``kubelka_munk(0.5) == 0.25``. Raises SpectrumError for R <= 0 or non-finite R.
    """
    r = np.asarray(r, dtype=float)
    if not np.all(np.isfinite(r)):
        raise SpectrumError("reflectance contains NaN or infinite values")
    if np.any(r <= 0):
        raise SpectrumError(f"reflectance must be positive for Kubelka-Munk (min {r.min():g})")
    return (1.0 - r) ** 2 / (2.0 * r)


def inverse_kubelka_munk(f: ArrayLike) -> np.ndarray:
    """Reflectance of an infinitely thick layer with ``F = K/S``: ``R = 1 + F - sqrt(F^2 + 2F)``."""
    f = np.asarray(f, dtype=float)
    return 1.0 + f - np.sqrt(f * f + 2.0 * f)


# --- reflectance features -------------------------------------------------------------------------


@cache
def _sg_kernel(window: int, order: int, deriv: int) -> np.ndarray:
    return savgol_coeffs(window, order, deriv=deriv, use="conv")


def _savgol(
    x: np.ndarray, window: int, order: int = 2, deriv: int = 0, delta: float = 1.0
) -> np.ndarray:
    """Savitzky-Golay smoothing/derivative along axis 1 (cached kernel; edges: nearest)."""
    out = convolve1d(x, _sg_kernel(window, order, deriv), axis=1, mode="nearest")
    return out / delta**deriv if deriv else out


def _odd(n: float, lo: int = 5) -> int:
    n = max(lo, int(round(n)))
    return n if n % 2 else n + 1


def absorption_edge(
    wavelengths_nm: ArrayLike,
    km: ArrayLike,
    *,
    edge_window_nm: float = 31.0,
    edge_span_nm: float = 80.0,
    baseline_offset_nm: float = 60.0,
    min_edge_contrast: float = 0.05,
    min_edge_snr: float = 5.0,
    search_nm: tuple[float, float] | None = None,
) -> EdgeResult:
    """Absorption edge per spectrum (method in the module docstring); vectorised over rows.

    Args:
        wavelengths_nm: (n_wl,), increasing.
        km: Kubelka-Munk F(R), (n_t, n_wl) or (n_wl,).
    """
    F, wl = _as_matrix(km, wavelengths_nm)
    wl, F = _uniform(wl, F)
    n, N = F.shape
    dl = float(wl[1] - wl[0])
    win = _odd(edge_window_nm / dl)
    if win >= N:
        raise SpectrumError(f"spectrum ({N} points) is shorter than the edge window ({win} points)")
    Fs = _savgol(F, win)
    d = _savgol(F, win, deriv=1, delta=dl)
    half = win // 2
    valid_col = np.zeros(N, dtype=bool)
    valid_col[half + 1 : N - half - 1] = True
    if search_nm is not None:
        valid_col &= (wl >= search_nm[0]) & (wl <= search_nm[1])
    dm = np.where(valid_col[None, :], d, np.inf)
    i = np.argmin(dm, axis=1)
    rows = np.arange(n)
    ic = np.clip(i, 1, N - 2)
    y0 = d[rows, ic]
    # sub-pixel refinement: least-squares parabola through the derivative over +-k points
    k = max(1, half // 2)
    kk = np.arange(-k, k + 1)
    idx = np.clip(ic[:, None] + kk[None, :], 0, N - 1)
    dd = np.take_along_axis(d, idx, axis=1)
    xk = kk.astype(float)
    V = np.vander(xk, 3)  # columns x^2, x, 1
    coef = np.linalg.pinv(V) @ dd.T  # (3, n) least-squares parabola coefficients
    c2, c1 = coef[0], coef[1]
    off = np.where(c2 > 0, -c1 / (2 * np.where(c2 > 0, c2, 1.0)), 0.0)
    off = np.clip(off, -k, k)
    edge = wl[ic] + off * dl
    # step height: max F on the short side minus baseline beyond the edge
    W = wl[None, :]
    e = edge[:, None]
    short = (W < e) & (W >= e - edge_span_nm)
    far = W >= e + baseline_offset_nm
    far = np.where(far.any(axis=1, keepdims=True), far, W >= e + 0.5 * (wl[-1] - e))
    high = np.where(short, Fs, -np.inf).max(axis=1)
    base = np.where(far, Fs, np.inf).min(axis=1)
    base = np.where(np.isfinite(base), base, Fs[:, -1])
    contrast = high - base
    dnoise = 1.4826 * np.median(np.abs(d - np.median(d, axis=1, keepdims=True)), axis=1)
    slope = -y0
    ok = (
        (contrast >= min_edge_contrast)
        & (slope > min_edge_snr * np.maximum(dnoise, 1e-12))
        & (slope > 0)
        & np.isfinite(high)
        & valid_col[i]
    )
    ok &= (i > half + 1) & (i < N - half - 2)
    fe = Fs[rows, ic]
    onset = edge + np.where(slope > 0, (fe - base) / np.where(slope > 0, slope, 1), np.nan)
    status = np.where(ok, "ok", "no_edge").astype("<U16")
    nan = np.nan
    return EdgeResult(
        np.where(ok, edge, nan),
        np.where(ok, onset, nan),
        np.where(ok, high, nan),
        np.where(ok, base, nan),
        status,
    )


def _wlinfit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row-wise weighted straight-line fit y = a x + b; returns a, b, var_a, var_b, cov_ab, n."""
    S = w.sum(1)
    Sx, Sy = (w * x).sum(1), (w * y).sum(1)
    Sxx, Sxy = (w * x * x).sum(1), (w * x * y).sum(1)
    D = S * Sxx - Sx * Sx
    Dz = np.where(np.abs(D) > 0, D, np.nan)
    a = (S * Sxy - Sx * Sy) / Dz
    b = (Sy - a * Sx) / np.where(S > 0, S, np.nan)
    res = y - a[:, None] * x - b[:, None]
    dof = S - 2
    s2 = (w * res * res).sum(1) / np.where(dof > 0, dof, np.nan)
    return a, b, s2 * S / Dz, s2 * Sxx / Dz, -s2 * Sx / Dz, S


def tauc_bandgap(
    wavelengths_nm: ArrayLike,
    km: ArrayLike,
    edge_nm: ArrayLike,
    *,
    transition: str = "direct_allowed",
    tauc_half_width_ev: float = 0.03,
    search_below_ev: float = 0.05,
    search_above_ev: float = 0.15,
    smooth_nm: float = 9.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tauc band gap (eV) per spectrum near the given edge; returns (Eg, Eg_err, status).

    ``(F h nu)^(1/r)`` with r from :data:`TRANSITIONS` (direct allowed: r = 1/2, i.e. squared).
    """
    if transition not in TRANSITIONS:
        raise SpectrumError(f"unknown transition '{transition}' (known: {', '.join(TRANSITIONS)})")
    F, wl = _as_matrix(km, wavelengths_nm)
    wl, F = _uniform(wl, F)
    edge = np.asarray(edge_nm, dtype=float).ravel()
    n, N = F.shape
    dl = float(wl[1] - wl[0])
    Fs = _savgol(F, _odd(smooth_nm / dl))
    E = HC_EV_NM / wl
    y = np.power(np.clip(Fs, 0, None) * E[None, :], 1.0 / TRANSITIONS[transition])
    dy = np.gradient(y, E, axis=1)
    Ee = np.where(np.isfinite(edge), HC_EV_NM / np.where(np.isfinite(edge), edge, 1.0), np.nan)[
        :, None
    ]
    near = (E[None, :] >= Ee - search_below_ev) & (E[None, :] <= Ee + search_above_ev)
    ic = np.argmax(np.where(near, dy, -np.inf), axis=1)
    Ec = E[ic][:, None]
    dmax = np.take_along_axis(dy, ic[:, None], axis=1)
    # the linear Tauc region: steep points (>= half the maximum slope) near the steepest point
    w = ((np.abs(E[None, :] - Ec) <= tauc_half_width_ev) & near & (dy >= 0.5 * dmax)).astype(float)
    a, b, va, vb, cab, npts = _wlinfit(np.broadcast_to(E, F.shape), y, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        eg = -b / a
        var = vb / a**2 + b**2 * va / a**4 - 2 * b * cab / a**3
    ok = (
        np.isfinite(Ee[:, 0])
        & (a > 0)
        & (npts >= 4)
        & np.isfinite(eg)
        & (np.abs(eg - Ee[:, 0]) < 0.3)
        & np.isfinite(var)
    )
    status = np.where(np.isfinite(Ee[:, 0]), np.where(ok, "ok", "bad_fit"), "no_edge").astype(
        "<U16"
    )
    return np.where(ok, eg, np.nan), np.where(ok, np.sqrt(np.abs(var)), np.nan), status


def urbach_energy(
    wavelengths_nm: ArrayLike,
    km: ArrayLike,
    edge_nm: ArrayLike,
    high: ArrayLike,
    base: ArrayLike,
    *,
    urbach_fractions: tuple[float, float] = (0.01, 0.15),
    smooth_nm: float = 5.0,
    min_points: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Urbach energy (meV) from the sub-gap exponential tail of F(R); returns (E_U, err, status)."""
    F, wl = _as_matrix(km, wavelengths_nm)
    wl, F = _uniform(wl, F)
    dl = float(wl[1] - wl[0])
    Fs = _savgol(F, _odd(smooth_nm / dl))
    E = HC_EV_NM / wl
    edge = np.asarray(edge_nm, float).ravel()
    high = np.asarray(high, float).ravel()
    base = np.asarray(base, float).ravel()
    fin = np.isfinite(edge) & np.isfinite(high) & np.isfinite(base)
    Ee = np.where(fin, HC_EV_NM / np.where(fin, edge, 1.0), np.nan)[:, None]
    step = (high - base)[:, None]
    frac = (Fs - base[:, None]) / np.where(step > 0, step, np.nan)
    lo, hi = urbach_fractions
    w = (E[None, :] < Ee) & (frac >= lo) & (frac <= hi) & (Fs - base[:, None] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lny = np.log(np.where(w, Fs - base[:, None], 1.0))
    a, b, va, vb, cab, npts = _wlinfit(np.broadcast_to(E, F.shape), lny, w.astype(float))
    ok = fin & (a > 0) & (npts >= min_points) & np.isfinite(va)
    with np.errstate(invalid="ignore", divide="ignore"):
        eu = 1000.0 / a
        err = 1000.0 * np.sqrt(np.abs(va)) / a**2
    status = np.where(fin, np.where(ok, "ok", "no_tail"), "no_edge").astype("<U16")
    return np.where(ok, eu, np.nan), np.where(ok, err, np.nan), status


# --- PL peak fitting ------------------------------------------------------------------------------

_G = 4.0 * math.log(2.0)
_GAUSS_AREA = math.sqrt(math.pi / _G)  # area of exp(-4 ln2 x^2 / G^2) is G * this


def _profile(
    E: np.ndarray, p: np.ndarray, jac: np.ndarray, profile: str, need_jac: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Model counts (n, L) and Jacobian (n, L, p) for parameters p (n, n_p).

    ``jac`` is the energy width of each channel, hc/lambda^2 dlambda (eV).
    """
    A, E0, G = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    x = E - E0
    q = x * x / (G * G)
    g = np.exp(-_G * q)
    if profile == "gaussian":
        b = p[:, 3:4]
        shape = g
        m = A * shape * jac + b
        if not need_jac:
            return m, None
        J = np.empty(m.shape + (4,))
        J[..., 0] = shape * jac
        J[..., 1] = A * g * jac * 2 * _G * x / (G * G)
        J[..., 2] = A * g * jac * 2 * _G * q / G
        J[..., 3] = 1.0
        return m, J
    eta, b = p[:, 3:4], p[:, 4:5]
    lor = 1.0 / (1.0 + 4.0 * q)
    shape = eta * lor + (1 - eta) * g
    m = A * shape * jac + b
    if not need_jac:
        return m, None
    J = np.empty(m.shape + (5,))
    J[..., 0] = shape * jac
    dl_de0 = lor * lor * 8.0 * x / (G * G)
    dg_de0 = g * 2 * _G * x / (G * G)
    dl_dg = lor * lor * 8.0 * q / G
    dg_dg = g * 2 * _G * q / G
    J[..., 1] = A * jac * (eta * dl_de0 + (1 - eta) * dg_de0)
    J[..., 2] = A * jac * (eta * dl_dg + (1 - eta) * dg_dg)
    J[..., 3] = A * jac * (lor - g)
    J[..., 4] = 1.0
    return m, J


def _area_factor(profile: str, eta: np.ndarray | None) -> np.ndarray | float:
    if profile == "gaussian":
        return _GAUSS_AREA
    assert eta is not None, "pseudo-Voigt needs its mixing parameter"
    return eta * (math.pi / 2.0) + (1 - eta) * _GAUSS_AREA


def _moments(wl: np.ndarray, v: np.ndarray, usable: np.ndarray, min_snr: float):
    """Vectorised initial estimates: background, peak index, height, energy FWHM, noise, has-peak.

    Background = 10th percentile of the usable channels; peak = maximum of a 5-channel moving
    average; FWHM = summed energy width of the channels above half height; noise = 1.4826 x
    median |first difference| / sqrt(2).
    """
    n, N = v.shape
    cols = np.flatnonzero(usable)
    vu = v[:, cols]
    sm = uniform_filter1d(vu, 5, axis=1, mode="nearest")
    b0 = np.percentile(vu, 10, axis=1)
    j = np.argmax(sm, axis=1)
    rows = np.arange(n)
    height = sm[rows, j] - b0
    noise = 1.4826 * np.median(np.abs(np.diff(vu, axis=1)), axis=1) / math.sqrt(2)
    E = HC_EV_NM / wl
    dE = np.abs(np.gradient(E))[cols]
    above = sm - b0[:, None] >= 0.5 * height[:, None]
    width = above.astype(float) @ dE
    has = height > min_snr * np.maximum(noise, 1e-12)
    return b0, cols[j], height, width, noise, has


def fit_pl_peaks(
    wavelengths_nm: ArrayLike,
    counts: ArrayLike,
    *,
    profile: str = "gaussian",
    window_nm: tuple[float, float] | None = None,
    min_snr: float = 5.0,
    fit_half_width: float = 1.5,
    max_iter: int = 60,
    ftol: float = 1e-9,
    xtol: float = 1e-7,
    detector_max: float | None = None,
) -> PeakFitBatch:
    """Fit one emission peak per spectrum, all spectra at once (batched Levenberg-Marquardt).

    Args:
        wavelengths_nm: (n_wl,) increasing.
        counts: (n_t, n_wl) raw counts per channel.
        profile: "gaussian" or "pseudo_voigt" (both in photon energy).
        window_nm: only fit inside this wavelength range (e.g. exclude the laser line).
        min_snr: peak height / noise below which a spectrum has status "no_peak".
        fit_half_width: fit points within this many FWHM (initial estimate) of the peak.
        detector_max: spectra with a channel at this count have status "saturated".
    """
    if profile not in ("gaussian", "pseudo_voigt"):
        raise SpectrumError(f"unknown peak profile '{profile}' (use 'gaussian' or 'pseudo_voigt')")
    v, wl = _as_matrix(counts, wavelengths_nm)
    n, N = v.shape
    usable = np.ones(N, dtype=bool)
    if window_nm is not None:
        usable = (wl >= window_nm[0]) & (wl <= window_nm[1])
        if usable.sum() < MIN_POINTS:
            raise SpectrumError(
                f"fit window {window_nm[0]:g}..{window_nm[1]:g} nm holds "
                f"{int(usable.sum())} points; "
                f"need at least {MIN_POINTS}"
            )
    E = HC_EV_NM / wl
    jac = HC_EV_NM / wl**2 * np.abs(np.gradient(wl))
    b0, i0, height, width, noise, has = _moments(wl, v, usable, min_snr)
    sat = saturated_rows(v, detector_max)
    status = np.full(n, "ok", dtype="<U16")
    status[~has] = "no_peak"
    status[sat] = "saturated"
    npar = 4 if profile == "gaussian" else 5
    nan_arr = np.full(n, np.nan)
    out = PeakFitBatch(
        profile,
        nan_arr.copy(),
        nan_arr.copy(),
        nan_arr.copy(),
        nan_arr.copy(),
        nan_arr.copy(),
        nan_arr.copy(),
        np.full((n, npar), np.nan),
        np.full((n, npar, npar), np.nan),
        status,
        np.zeros(n, dtype=int),
    )
    act = np.flatnonzero(status == "ok")
    if act.size == 0:
        return out
    # fit windows: points within fit_half_width * FWHM (energy) of the initial peak
    G0 = np.maximum(width[act], 3 * np.abs(np.gradient(E))[i0[act]])
    E0 = E[i0[act]]
    inwin = (np.abs(E[None, :] - E0[:, None]) <= fit_half_width * G0[:, None]) & usable[None, :]
    first = np.argmax(inwin, axis=1)
    last = N - 1 - np.argmax(inwin[:, ::-1], axis=1)
    L = int((last - first).max()) + 1
    idx = np.clip(first[:, None] + np.arange(L)[None, :], 0, N - 1)
    w = np.take_along_axis(inwin, idx, axis=1).astype(float)
    Ew, jw, yw = E[idx], jac[idx], np.take_along_axis(v[act], idx, axis=1)
    npts = w.sum(1)
    A0 = height[act] / jac[i0[act]]
    p = np.column_stack([A0, E0, G0] + ([np.full(act.size, 0.3)] if npar == 5 else []) + [b0[act]])
    mu = np.full(act.size, 1e-3)
    m, J0 = _profile(Ew, p, jw, profile, True)
    assert J0 is not None  # need_jac=True
    J = J0 * w[..., None]
    r = (yw - m) * w
    sse = (r * r).sum(1)
    done = np.zeros(act.size, dtype=bool)
    conv = np.zeros(act.size, dtype=bool)
    iters = np.zeros(act.size, dtype=int)
    eye = np.eye(npar)
    for _ in range(max_iter):
        li = np.flatnonzero(~done)  # work only on spectra still iterating
        if li.size == 0:
            break
        Jl, rl, pl, mul, ssel = J[li], r[li], p[li], mu[li], sse[li]
        JT = Jl.transpose(0, 2, 1)
        H = JT @ Jl  # batched BLAS
        g = (JT @ rl[..., None])[..., 0]
        if npar == 5:  # eta at a bound and pushed outward: hold it there for this step
            eta = pl[:, 3]
            frozen = ((eta <= 1e-12) & (g[:, 3] < 0)) | ((eta >= 1 - 1e-12) & (g[:, 3] > 0))
            if frozen.any():
                H[frozen, 3, :] = 0.0
                H[frozen, :, 3] = 0.0
                H[frozen, 3, 3] = 1.0
                g[frozen, 3] = 0.0
        dH = np.einsum("nii->ni", H)
        Hd = H + (mul[:, None] * np.maximum(dH, 1e-300))[:, :, None] * eye
        try:
            step = np.linalg.solve(Hd, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack(
                [np.linalg.lstsq(h, gg, rcond=None)[0] for h, gg in zip(Hd, g, strict=True)]
            )
        pt = pl + step
        if npar == 5:
            pt[:, 3] = np.clip(pt[:, 3], 0.0, 1.0)
        pt[:, 2] = np.abs(pt[:, 2])
        mt, Jt = _profile(Ew[li], pt, jw[li], profile, True)
        assert Jt is not None  # need_jac=True
        rt = (yw[li] - mt) * w[li]
        sset = (rt * rt).sum(1)
        better = (sset < ssel) & np.all(np.isfinite(pt), axis=1)
        small_f = better & ((ssel - sset) <= ftol * ssel)
        small_x = better & np.all(np.abs(step) <= xtol * (np.abs(pl) + xtol), axis=1)
        bi = li[better]
        p[bi] = pt[better]
        sse[bi] = sset[better]
        r[bi] = rt[better]
        J[bi] = Jt[better] * w[bi][..., None]
        mu[li] = np.where(better, mul * 0.3, mul * 10.0)
        iters[li] += 1
        stuck = ~better & (mu[li] > 1e12)  # no step lowers SSE any further: at the minimum
        conv[li] |= small_f | small_x | (stuck & (ssel > 0))
        done[li] |= small_f | small_x | stuck
    H = J.transpose(0, 2, 1) @ J
    dof = npts - npar
    with np.errstate(invalid="ignore", divide="ignore"):
        # scale to unit diagonal so the condition number reflects parameter degeneracy only
        dg = np.sqrt(np.maximum(np.einsum("nii->ni", H), 1e-300))
        Hn = H / (dg[:, :, None] * dg[:, None, :])
        cond_ok = np.linalg.cond(Hn) < 1e12
        Hs = np.where(cond_ok[:, None, None], Hn, eye)
        cov = np.linalg.inv(Hs) / (dg[:, :, None] * dg[:, None, :])
        cov = cov * (sse / np.where(dof > 0, dof, np.nan))[:, None, None]
    A, Ep, G = p[:, 0], p[:, 1], p[:, 2]
    lo_e, hi_e = np.where(w > 0, Ew, np.inf).min(1), np.where(w > 0, Ew, -np.inf).max(1)
    sane = (A > 0) & (G > 0) & (Ep > lo_e) & (Ep < hi_e) & (Ep - G / 2 > 0) & cond_ok & (dof > 0)
    good = conv & sane & np.all(np.isfinite(cov.reshape(act.size, -1)), axis=1)
    st = np.where(good, "ok", "not_converged")
    status[act] = st
    # derived values and first-order error propagation
    hc = HC_EV_NM
    lam = hc / Ep
    lo, hi = Ep - G / 2, Ep + G / 2
    fwhm = hc / lo - hc / hi
    mix = p[:, 3] if npar == 5 else None
    af = _area_factor(profile, mix)
    area = A * G * af
    gl = np.zeros((act.size, npar))
    gl[:, 1] = -hc / Ep**2
    gf = np.zeros((act.size, npar))
    gf[:, 1] = -hc / lo**2 + hc / hi**2
    gf[:, 2] = hc / (2 * lo**2) + hc / (2 * hi**2)
    ga = np.zeros((act.size, npar))
    ga[:, 0] = G * af
    ga[:, 2] = A * af
    if npar == 5:
        ga[:, 3] = A * G * (math.pi / 2.0 - _GAUSS_AREA)

    def _prop(gv: np.ndarray) -> np.ndarray:
        return np.sqrt(np.abs(np.einsum("ni,nij,nj->n", gv, cov, gv)))

    def _put(target: np.ndarray, val: np.ndarray) -> None:
        target[act] = np.where(good, val, np.nan)

    _put(out.peak_nm, lam)
    _put(out.peak_nm_err, _prop(gl))
    _put(out.fwhm_nm, fwhm)
    _put(out.fwhm_nm_err, _prop(gf))
    _put(out.area, area)
    _put(out.area_err, _prop(ga))
    out.params[act] = np.where(good[:, None], p, np.nan)
    out.cov[act] = np.where(good[:, None, None], cov, np.nan)
    out.n_iter[act] = iters
    return out


def fit_pl_peak(
    wavelengths_nm: ArrayLike, counts: ArrayLike, *, engine: str = "curve_fit", **kw: Any
) -> PeakFit:
    """Fit one PL spectrum (n_wl,). ``engine`` "curve_fit" (scipy) or "batched" (as the run fit)."""
    v, wl = _as_matrix(counts, wavelengths_nm)
    if v.shape[0] != 1:
        raise SpectrumError("fit_pl_peak takes one spectrum; use fit_pl_peaks for a run")
    if engine == "batched":
        b = fit_pl_peaks(wl, v, **kw)
        if b.status[0] != "ok":
            return PeakFit(str(b.status[0]))
        return PeakFit(
            "ok",
            b.peak_nm[0],
            b.peak_nm_err[0],
            b.fwhm_nm[0],
            b.fwhm_nm_err[0],
            b.area[0],
            b.area_err[0],
        )
    if engine != "curve_fit":
        raise SpectrumError(f"unknown fit engine '{engine}' (use 'curve_fit' or 'batched')")
    window = kw.get("window_nm")
    usable = np.ones(wl.size, bool) if window is None else (wl >= window[0]) & (wl <= window[1])
    b0, i0, height, width, noise, has = _moments(wl, v, usable, kw.get("min_snr", 5.0))
    if kw.get("detector_max") is not None and saturated_rows(v, kw["detector_max"])[0]:
        return PeakFit("saturated")
    if not has[0]:
        return PeakFit("no_peak", message="peak height below min_snr x noise")
    E = HC_EV_NM / wl
    jac = HC_EV_NM / wl**2 * np.abs(np.gradient(wl))
    E0, G0 = E[i0[0]], max(width[0], 3 * abs(np.gradient(E))[i0[0]])
    sel = usable & (np.abs(E - E0) <= kw.get("fit_half_width", 1.5) * G0)

    def model(e: np.ndarray, A: float, e0: float, G: float, b: float) -> np.ndarray:
        return A * np.exp(-_G * (e - e0) ** 2 / G**2) * jac[sel] + b

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            p, cov = curve_fit(
                model, E[sel], v[0, sel], p0=[height[0] / jac[i0[0]], E0, G0, b0[0]], maxfev=4000
            )
    except (RuntimeError, OptimizeWarning) as exc:
        return PeakFit("not_converged", message=str(exc))
    if not (p[0] > 0 and p[2] != 0 and np.all(np.isfinite(cov))):
        return PeakFit("not_converged", message="fit left the physical range")
    A, Ep, G = p[0], p[1], abs(p[2])
    lo, hi = Ep - G / 2, Ep + G / 2
    gl = np.array([0, -HC_EV_NM / Ep**2, 0, 0])
    gf = np.array(
        [
            0,
            -HC_EV_NM / lo**2 + HC_EV_NM / hi**2,
            HC_EV_NM / (2 * lo**2) + HC_EV_NM / (2 * hi**2),
            0,
        ]
    )
    ga = np.array([G * _GAUSS_AREA, 0, A * _GAUSS_AREA, 0])
    return PeakFit(
        "ok",
        HC_EV_NM / Ep,
        float(np.sqrt(gl @ cov @ gl)),
        HC_EV_NM / lo - HC_EV_NM / hi,
        float(np.sqrt(gf @ cov @ gf)),
        A * G * _GAUSS_AREA,
        float(np.sqrt(ga @ cov @ ga)),
    )


def pl_tail_urbach(
    wavelengths_nm: ArrayLike,
    counts: ArrayLike,
    fits: PeakFitBatch,
    *,
    temperature_K: float = 295.0,
    tail_fractions: tuple[float, float] = (0.01, 0.1),
    min_points: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Urbach energy (meV) from the PL low-energy tail (vRS relation); returns (E_U, err, status).

    Computed only where ``fits`` has status "ok" (a peak exists); the tail itself is taken from
    the data between ``tail_fractions`` of the (moving-average) peak on its low-energy side.
    """
    v, wl = _as_matrix(counts, wavelengths_nm)
    E = HC_EV_NM / wl
    jac = HC_EV_NM / wl**2 * np.abs(np.gradient(wl))
    ok_fit = fits.status == "ok"
    # background and peak from the data (not the Gaussian fit, whose flat background absorbs
    # part of an asymmetric line): 10th-percentile background, 5-channel moving-average peak
    b = np.percentile(v, 10, axis=1)[:, None]
    sig = (v - b) / jac[None, :]  # counts per eV
    sm = uniform_filter1d(sig, 5, axis=1, mode="nearest")
    ip = np.argmax(sm, axis=1)
    E0 = E[ip][:, None]
    frac = sig / sm[np.arange(v.shape[0]), ip][:, None]
    lo, hi = tail_fractions
    w = (E[None, :] < E0) & (frac >= lo) & (frac <= hi) & (sig > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lny = np.log(np.where(w, sig, 1.0))
    a, _, va, _, _, npts = _wlinfit(np.broadcast_to(E, v.shape), lny, w.astype(float))
    kT = K_B_EV * temperature_K
    with np.errstate(invalid="ignore", divide="ignore"):
        eu = 1.0 / (a + 1.0 / kT)
        err = np.sqrt(np.abs(va)) * eu**2
    good = ok_fit & (a > 0) & (npts >= min_points) & np.isfinite(va)
    status = np.where(ok_fit, np.where(good, "ok", "no_tail"), fits.status).astype("<U16")
    return np.where(good, 1000 * eu, np.nan), np.where(good, 1000 * err, np.nan), status


# --- the top-level entry point --------------------------------------------------------------------

_KIND_ALIASES = {
    "reflectance": "reflectance",
    "tlis_reflectance": "reflectance",
    "pl": "pl",
    "tlis_pl": "pl",
}


def extract_features(
    kind: str,
    values: ArrayLike,
    wavelengths_nm: ArrayLike,
    times_min: ArrayLike,
    reference: ArrayLike | None = None,
    **opts: Any,
) -> FeatureSet:
    """Per-time-point series and scalar summary features of one TLIS run.

    Args:
        kind: "reflectance"/"tlis_reflectance" or "pl"/"tlis_pl".
        values: (n_t, n_wl) counts (reflectance: sample counts; R = values / reference).
        wavelengths_nm: (n_wl,). times_min: (n_t,), strictly increasing.
        reference: PTFE reference counts (n_wl,) or (n_t, n_wl); required for reflectance unless
            ``values_are_reflectance=True``.
        **opts: detector_max (default 65535; None disables), transition ("direct_allowed"),
            rel_tol (kinetic tolerance, 0.02), profile ("gaussian"), window_nm,
            excitation_wavelength_nm (PL: fit only above it + ``laser_margin_nm`` = 25),
            min_snr, temperature_K (295), stability_window (min), plus the keyword options of
            :func:`absorption_edge`.

    Series (reflectance): absorption_edge, absorption_onset, bandgap, urbach_energy,
    km_above_edge. Series (PL): pl_peak, pl_fwhm, pl_integrated_intensity, pl_counts,
    pl_tail_urbach_energy.
    """
    try:
        k = _KIND_ALIASES[kind]
    except KeyError:
        raise SpectrumError(f"unknown TLIS kind '{kind}' (use reflectance or pl)") from None
    v, wl = _as_matrix(values, wavelengths_nm)
    t = np.asarray(times_min, dtype=float).ravel()
    if t.size != v.shape[0]:
        raise SpectrumError(f"{t.size} times for {v.shape[0]} spectra")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise SpectrumError("times must be finite and strictly increasing")
    fs = FeatureSet(k, t, wl)
    detector_max = opts.get("detector_max", DEFAULT_DETECTOR_MAX)
    sat = saturated_rows(v, detector_max)
    if sat.any():
        msg = (
            f"{int(sat.sum())} of {sat.size} spectra have channels at the detector maximum "
            f"({detector_max:g} counts); those time points are excluded"
        )
        fs.warn(msg)
        warnings.warn(msg, SpectrumWarning, stacklevel=2)
    if k == "reflectance":
        _reflectance_features(fs, v, wl, reference, sat, opts)
    else:
        _pl_features(fs, v, wl, sat, opts)
    return fs


def point_series(
    kind: str,
    values: ArrayLike,
    wavelengths_nm: ArrayLike,
    reference: ArrayLike | None = None,
    **opts: Any,
) -> dict[str, Series]:
    """The per-time-point series of a block of spectra (n, n_wl), as :func:`extract_features`
    computes them (the same code; every spectrum is analysed on its own, so a live run that adds one
    spectrum at a time gets exactly the values of the whole run). Options as for extract_features."""
    try:
        k = _KIND_ALIASES[kind]
    except KeyError:
        raise SpectrumError(f"unknown TLIS kind '{kind}' (use reflectance or pl)") from None
    v, wl = _as_matrix(values, wavelengths_nm)
    fs = FeatureSet(k, np.arange(v.shape[0], dtype=float), wl)
    sat = saturated_rows(v, opts.get("detector_max", DEFAULT_DETECTOR_MAX))
    if k == "reflectance":
        _reflectance_series(fs, v, wl, reference, sat, opts)
    else:
        _pl_series(fs, v, wl, sat, opts)
    return fs.series


def _series(
    name: str,
    unit: str,
    vals: np.ndarray,
    status: np.ndarray,
    err: np.ndarray | None,
    quantity: str | None,
    key: str,
    suffix: str = "",
) -> Series:
    m, ver = _method(key, suffix)
    return Series(name, unit, np.where(status == "ok", vals, np.nan), status, err, quantity, m, ver)


def _feature(
    fs: FeatureSet,
    name: str,
    value: float | None,
    unit: str,
    method: tuple[str, str],
    quantity: str | None,
    uncertainty: float | None = None,
    note: str = "",
) -> None:
    if value is None or not np.isfinite(value):
        fs.warn(f"{name}: not computed ({note or 'no valid value'})")
        return
    unc = None if uncertainty is None or not np.isfinite(uncertainty) else float(uncertainty)
    fs.features[name] = Feature(name, float(value), unit, unc, method[0], method[1], quantity, note)


def _kinetic_summary(fs: FeatureSet, s: Series, label: str, rel_tol: float, rise_name: str) -> None:
    """time_to_max, steady_state_time, decay onset/extent and JMAK for one series."""
    tt, yy = s.valid(fs.times_min)
    if tt.size < kin.MIN_POINTS:
        fs.warn(f"{label}: only {tt.size} valid time points; kinetic features not computed")
        return
    try:
        mx = kin.time_of_maximum(tt, yy, rel_tol)
        ss = kin.steady_state_time(tt, yy, rel_tol)
        dec = kin.decay_after_maximum(tt, yy, rel_tol)
    except KineticsError as exc:
        fs.warn(f"{label}: {exc}")
        return
    note = f"of {s.name}; tol {mx.tol:.3g} {s.unit}"
    _feature(
        fs,
        "time_to_max",
        mx.time,
        "min",
        kin.METHOD_VERSIONS["time_to_max"],
        "time_to_max",
        note=note,
    )
    if ss.status == "ok":
        _feature(
            fs,
            "steady_state_time",
            ss.time,
            "min",
            kin.METHOD_VERSIONS["steady_state_time"],
            "steady_state_time",
            note=note,
        )
    else:
        fs.warn(f"steady_state_time: {s.name} still changing at the end of the run")
    if dec.status == "ok":
        _feature(
            fs,
            "decay_onset_time",
            dec.onset_time,
            "min",
            kin.METHOD_VERSIONS["decay_onset_time"],
            "decay_onset_time",
            note=f"of {s.name}",
        )
    else:
        fs.warn(f"decay_onset_time: no decay of {s.name} beyond the tolerance after its maximum")
    try:
        tc, alpha = kin.conversion(tt, yy)
        fit = kin.fit_jmak(tc, alpha, t0=None) if tc.size >= 4 else None
    except KineticsError as exc:
        fs.warn(f"JMAK: {exc}")
        return
    if fit is None or fit.status != "ok":
        fs.warn(
            f"JMAK fit of {s.name}: {fit.status if fit else 'too few points'} "
            f"{fit.message if fit else ''}".strip()
        )
        return
    mv = (f"{fit.method}-{rise_name}", fit.version)
    _feature(
        fs,
        "rate_constant",
        fit.k,
        "1/min",
        mv,
        "rate_constant",
        fit.k_err,
        note=f"t0 = {fit.t0:.3g} min",
    )
    _feature(fs, "avrami_exponent", fit.n, "", mv, "avrami_exponent", fit.n_err)


def _reflectance_series(
    fs: FeatureSet,
    v: np.ndarray,
    wl: np.ndarray,
    reference: Any,
    sat: np.ndarray,
    opts: dict[str, Any],
) -> None:
    """The per-time-point reflectance series of ``fs`` (each spectrum on its own)."""
    if opts.get("values_are_reflectance"):
        r = v
        if np.any(r <= 0):
            raise SpectrumError("reflectance must be positive")
        r = np.minimum(r, 1.0)
    else:
        if reference is None:
            raise SpectrumError("a reflectance run needs the PTFE reference spectrum ('reference')")
        ref = np.asarray(reference, dtype=float)
        if opts.get("detector_max", DEFAULT_DETECTOR_MAX) is not None and np.any(
            ref >= opts.get("detector_max", DEFAULT_DETECTOR_MAX)
        ):
            raise SpectrumError("reference spectrum is saturated (counts at the detector maximum)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SpectrumWarning)
            r = reflectance(v, ref, wl)
        for w in caught:
            fs.warn(str(w.message))
            warnings.warn(str(w.message), SpectrumWarning, stacklevel=3)
    F = kubelka_munk(r)
    edge_kw = {
        k: opts[k]
        for k in (
            "edge_window_nm",
            "edge_span_nm",
            "baseline_offset_nm",
            "min_edge_contrast",
            "min_edge_snr",
            "search_nm",
        )
        if k in opts
    }
    er = absorption_edge(wl, F, **edge_kw)
    er.status[sat] = "saturated"
    ok = er.status == "ok"
    edge = np.where(ok, er.edge_nm, np.nan)
    transition = opts.get("transition", "direct_allowed")
    eg, eg_err, eg_st = tauc_bandgap(wl, F, edge, transition=transition)
    eg_st[sat] = "saturated"
    eu, eu_err, eu_st = urbach_energy(wl, F, edge, er.km_above_edge, er.baseline)
    eu_st[sat] = "saturated"
    tsuf = transition.replace("_", "-")
    fs.series["absorption_edge"] = _series(
        "absorption_edge", "nm", er.edge_nm, er.status, None, "absorption_edge", "absorption_edge"
    )
    fs.series["absorption_onset"] = _series(
        "absorption_onset",
        "nm",
        er.onset_nm,
        er.status.copy(),
        None,
        "absorption_onset",
        "absorption_onset",
    )
    fs.series["km_above_edge"] = _series(
        "km_above_edge", "", er.km_above_edge, er.status.copy(), None, None, "km_above_edge"
    )
    fs.series["bandgap"] = _series("bandgap", "eV", eg, eg_st, eg_err, "bandgap", "bandgap", tsuf)
    fs.series["urbach_energy"] = _series(
        "urbach_energy", "meV", eu, eu_st, eu_err, "urbach_energy", "urbach_energy"
    )


def _reflectance_features(
    fs: FeatureSet,
    v: np.ndarray,
    wl: np.ndarray,
    reference: Any,
    sat: np.ndarray,
    opts: dict[str, Any],
) -> None:
    _reflectance_series(fs, v, wl, reference, sat, opts)
    ok = fs.series["absorption_edge"].ok
    n_ok = int(ok.sum())
    if n_ok == 0:
        fs.warn("no absorption edge found in any spectrum; no reflectance summary features")
        return
    if n_ok < ok.size:
        fs.warn(f"absorption edge found in {n_ok} of {ok.size} spectra")
    s = fs.series["absorption_edge"]
    tt, yy = s.valid(fs.times_min)
    rel_tol = float(opts.get("rel_tol", kin.DEFAULT_REL_TOL))
    if tt.size >= kin.MIN_POINTS:
        mx = kin.time_of_maximum(tt, yy, rel_tol)
        near = np.abs(yy - mx.value) <= mx.tol
        _feature(
            fs,
            "absorption_edge",
            mx.value,
            "nm",
            _method("absorption_edge"),
            "absorption_edge",
            float(np.std(yy[near], ddof=1)) if near.sum() > 1 else None,
            note="maximum (running median) of the edge series",
        )
        n_tail = max(3, tt.size // 20)
        _feature(
            fs,
            "absorption_edge_final",
            float(np.median(yy[-n_tail:])),
            "nm",
            _method("absorption_edge"),
            "absorption_edge",
            float(np.std(yy[-n_tail:], ddof=1) / math.sqrt(n_tail)),
            note="median of the last points",
        )
        imax = np.flatnonzero(np.isin(fs.times_min, tt[near]))
        for name, ser, unit in (
            ("bandgap", fs.series["bandgap"], "eV"),
            ("urbach_energy", fs.series["urbach_energy"], "meV"),
        ):
            sel = imax[ser.ok[imax]]
            if sel.size:
                val = float(np.median(ser.values[sel]))
                unc = (
                    float(np.std(ser.values[sel], ddof=1) / math.sqrt(sel.size))
                    if sel.size > 1
                    else None
                )
                _feature(
                    fs,
                    name,
                    val,
                    unit,
                    (ser.method, ser.version),
                    ser.quantity,
                    unc,
                    note="median over time points at the maximum edge",
                )
            else:
                fs.warn(f"{name}: no valid value at the time of the maximum edge")
        _kinetic_summary(fs, s, "absorption edge", rel_tol, "edge-conversion")
        try:
            f = stab.edge_blue_shift(tt, yy)
            _feature(
                fs,
                "edge_blue_shift",
                f.value,
                "nm",
                (f.method, f.version),
                f.quantity,
                f.uncertainty,
            )
            ka_t, ka = fs.series["km_above_edge"].valid(fs.times_min)
            f = stab.retained_active_phase_fraction(ka_t, ka)
            _feature(
                fs,
                "retained_active_phase_fraction",
                f.value,
                "",
                (f.method, f.version),
                f.quantity,
                note=f.note,
            )
        except (KineticsError, stab.StabilityError) as exc:
            fs.warn(f"stability metrics: {exc}")
    else:
        fs.warn(f"only {tt.size} time points with an edge; kinetic features not computed")


def _pl_series(
    fs: FeatureSet, v: np.ndarray, wl: np.ndarray, sat: np.ndarray, opts: dict[str, Any]
) -> tuple[PeakFitBatch, Any]:
    """The per-time-point PL series of ``fs`` (each spectrum fitted on its own); returns the fits."""
    window = opts.get("window_nm")
    exc = opts.get("excitation_wavelength_nm")
    if window is None and exc is not None:
        window = (float(exc) + float(opts.get("laser_margin_nm", 25.0)), float(wl[-1]))
    fits = fit_pl_peaks(
        wl,
        v,
        profile=opts.get("profile", "gaussian"),
        window_nm=window,
        min_snr=float(opts.get("min_snr", 5.0)),
        detector_max=opts.get("detector_max", DEFAULT_DETECTOR_MAX),
    )
    st = fits.status
    suffix = "" if fits.profile == "gaussian" else "pv"
    fs.series["pl_peak"] = _series(
        "pl_peak", "nm", fits.peak_nm, st, fits.peak_nm_err, "pl_peak", "pl_peak", suffix
    )
    fs.series["pl_fwhm"] = _series(
        "pl_fwhm", "nm", fits.fwhm_nm, st.copy(), fits.fwhm_nm_err, "pl_fwhm", "pl_fwhm", suffix
    )
    fs.series["pl_integrated_intensity"] = _series(
        "pl_integrated_intensity",
        "counts",
        fits.area,
        st.copy(),
        fits.area_err,
        "pl_integrated_intensity",
        "pl_integrated_intensity",
        suffix,
    )
    usable = np.ones(wl.size, bool) if window is None else (wl >= window[0]) & (wl <= window[1])
    csum = np.where(usable[None, :], v, 0.0).sum(1)
    cst = np.where(sat, "saturated", "ok").astype("<U16")
    fs.series["pl_counts"] = _series(
        "pl_counts", "counts", csum, cst, None, "pl_intensity", "pl_counts"
    )
    eu, eu_err, eu_st = pl_tail_urbach(
        wl, v, fits, temperature_K=float(opts.get("temperature_K", 295.0))
    )
    fs.series["pl_tail_urbach_energy"] = _series(
        "pl_tail_urbach_energy", "meV", eu, eu_st, eu_err, "urbach_energy", "pl_tail_urbach_energy"
    )
    return fits, window


def _pl_features(
    fs: FeatureSet, v: np.ndarray, wl: np.ndarray, sat: np.ndarray, opts: dict[str, Any]
) -> None:
    fits, window = _pl_series(fs, v, wl, sat, opts)
    st = fits.status
    ok = st == "ok"
    counts = {s: int((st == s).sum()) for s in np.unique(st) if s != "ok"}
    if counts:
        fs.warn("PL fit status: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if not ok.any():
        fs.warn("no PL peak could be fitted in any spectrum; no PL summary features")
        return
    s_int = fs.series["pl_integrated_intensity"]
    tt, yy = s_int.valid(fs.times_min)
    rel_tol = float(opts.get("rel_tol", kin.DEFAULT_REL_TOL))
    i_best = int(np.nanargmax(np.where(ok, fits.area, -np.inf)))
    for name, arr, err, unit, _key in (
        ("pl_peak", fits.peak_nm, fits.peak_nm_err, "nm", "pl_peak"),
        ("pl_fwhm", fits.fwhm_nm, fits.fwhm_nm_err, "nm", "pl_fwhm"),
    ):
        ser = fs.series[name]
        _feature(
            fs,
            name,
            float(arr[i_best]),
            unit,
            (ser.method, ser.version),
            ser.quantity,
            float(err[i_best]),
            note=f"at the PL maximum (t = {fs.times_min[i_best]:g} min)",
        )
    ser = fs.series["pl_integrated_intensity"]
    _feature(
        fs,
        "pl_integrated_intensity",
        float(fits.area[i_best]),
        "counts",
        (ser.method, ser.version),
        ser.quantity,
        float(fits.area_err[i_best]),
        note="maximum over the run",
    )
    if tt.size < kin.MIN_POINTS:
        fs.warn(f"only {tt.size} time points with a fitted PL peak; kinetic features not computed")
        return
    mx = kin.time_of_maximum(tt, yy, rel_tol)
    _feature(
        fs,
        "pl_peak_time",
        mx.time_argmax,
        "min",
        kin.METHOD_VERSIONS["time_to_max"],
        "pl_peak_time",
    )
    _kinetic_summary(fs, s_int, "PL intensity", rel_tol, "intensity-conversion")
    try:
        f = stab.pl_retention(tt, yy, window=opts.get("stability_window"))
        _feature(fs, "pl_retention", f.value, "", (f.method, f.version), f.quantity, note=f.note)
    except (KineticsError, stab.StabilityError) as exc:
        fs.warn(f"pl_retention: {exc}")
    first_ok = int(np.flatnonzero(ok)[0])
    if first_ok == 0 and fits.area[0] > 0:
        f = kin.pl_enhancement(
            float(fits.area[0]),
            float(fits.area[i_best]),
            float(fits.area_err[0]),
            float(fits.area_err[i_best]),
        )
        _feature(
            fs,
            "pl_enhancement",
            f.value,
            "",
            (f.method, f.version),
            f.quantity,
            f.uncertainty,
            note="maximum / first spectrum",
        )
    else:
        fs.warn(
            "pl_enhancement: no fitted PL peak in the first spectrum (enhancement over t = 0 "
            "undefined)"
        )
    eu_t, eu_v = fs.series["pl_tail_urbach_energy"].valid(fs.times_min)
    if eu_v.size and fs.series["pl_tail_urbach_energy"].ok[i_best]:
        ser = fs.series["pl_tail_urbach_energy"]
        _feature(
            fs,
            "pl_tail_urbach_energy",
            float(ser.values[i_best]),
            "meV",
            (ser.method, ser.version),
            "urbach_energy",
            float(ser.uncertainty[i_best]) if ser.uncertainty is not None else None,
            note="at the PL maximum",
        )
