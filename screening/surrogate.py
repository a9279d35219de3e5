"""Surrogate models with honest uncertainty for screening (PLQY, stability, ...).

:class:`Surrogate` is a scikit-learn regressor (``fit`` returns self, fitted attributes end in
``_``, parameters are stored unchanged by ``__init__``). Inputs are scaled to the unit cube of the
*domain* (``input_bounds``: the candidate space's bounds; the data's own range when not given), so
kernel hyperparameter bounds mean the same thing on every problem. Two model kinds:

* ``"gp"``: Gaussian process, ``ConstantKernel * Matern(nu=2.5, ARD) + WhiteKernel``. Length
  scales are bounded relative to the domain (``LENGTH_SCALE_BOUNDS``: from 3 % of a variable's range,
  so a sharp optimum can be resolved, to twice the range, so the model cannot declare the whole
  unexplored domain known by stretching one smooth bump over it). The targets are standardised by
  the model (mean/std stored as ``y_mean_``/``y_std_``); the white noise has a floor: the known
  measurement precision when given (``noise``: one standard uncertainty in target units, e.g. from
  replicates), else ``NOISE_FLOOR`` of the target variance. The predictive std includes the fitted
  noise, i.e. intervals are for a *new measurement*.
* ``"forest"``: random forest (bootstrap, 100 trees). Its predictive variance is the spread of the
  per-tree predictions plus the out-of-bag mean squared residual (an estimate of noise plus model
  error; adding both errs on the wide side, which is the honest direction for screening).

``kind="auto"`` fits both and keeps the one with the lower cross-validated RMSE (grouped CV when
groups are given, see below).

Bounded targets
---------------
Models are fitted on a *latent* scale ``z`` and predictions are transformed back:

* ``"logit"``: ``p = (y - lo) / (hi - lo)`` clipped to ``(LOGIT_EPS, 1 - LOGIT_EPS)``,
  ``z = log(p / (1 - p))``. PLQY (0..100 %) uses ``lo, hi = 0, 100``; stability (0..1) ``0, 1``.
  The latent prediction is Gaussian ``z ~ N(mu, s^2)``; the mean and std in target units are the
  moments of the back-transformed (logit-normal) distribution, computed by Gauss-Hermite
  quadrature with ``GH_NODES`` nodes (deterministic; exact to ~1e-10 for the smooth logistic).
  Intervals are quantiles of the back-transformed distribution: because the transform is
  monotone, the q-quantile is ``lo + (hi - lo) * sigmoid(mu + s * Phi^-1(q))``; they are therefore
  always inside ``[lo, hi]`` and asymmetric near the bounds.
* ``"log"``: ``z = log(y)`` (``y > 0``); mean and std are the closed-form log-normal moments
  ``exp(mu + s^2/2)`` and ``sqrt(exp(s^2) - 1) * exp(mu + s^2/2)``; intervals ``exp(mu +- q s)``.
* ``None``: the model works in target units directly.

With ``bounded="auto"`` (default) the logit transform is used whenever the target has known
bounds (``bounds=``, ``TARGET_BOUNDS`` or the ``matdb.vocabulary.QUANTITIES`` registry); a target
that is physically non-negative and unbounded above whose values are all positive and span more
than ``LOG_RATIO`` (e.g. an instability index from 10^4 to 10^6) is modelled on the log scale;
otherwise none.

Few data points
---------------
The literature set has tens of points. When ``n_train < FEW_POINTS_THRESHOLD`` (30):

* the card's ``warnings`` list says so;
* the GP white-noise level may not go below ``SMALL_N_NOISE_FLOOR`` (10 % of the target std on
  the normalised scale, vs ``NOISE_FLOOR`` otherwise), so the GP cannot interpolate the few points
  and claim zero noise;
* every latent std is multiplied by ``sqrt(FEW_POINTS_THRESHOLD / n_train)`` (``std_inflation`` in
  the card), a deliberate widening: with 5 points the intervals are ~2.4x wider;
* calibration fractions carry a 95 % Wilson confidence interval and ``reliable: false`` when fewer
  than ``FEW_POINTS_THRESHOLD`` held-out points back them.

Model card
----------
``Surrogate.card`` is a JSON-serialisable dict: target, unit, bounds, transform, chosen kind and the
CV scores of every kind tried, CV error (RMSE, MAE in target units), calibration (fraction of
held-out points inside the central 68 % and 95 % intervals), grouped CV (``LeaveOneGroupOut``) when
more than one group, feature names, sha256 of the training data (``X`` float64 C-order bytes then
``y`` float64 bytes), ``n_train``, library versions, the random state, warnings and the creation
time (UTC, ISO 8601).

Persistence
-----------
``Surrogate.save(path)`` writes a skops file (no pickle) and the card as ``<path>.card.json``.
``load_surrogate(path)`` only loads files whose object types are all in ``TRUSTED_TYPES``
plus ``BASE_TYPES`` (containers, numpy arrays); every object node in the file's schema is
checked against that explicit list (skops' own default trust list is broader, e.g. any
scikit-learn estimator), and anything else raises ``ModelLoadError`` naming the offending types.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import linalg, special, stats
from sklearn.base import BaseEstimator, RegressorMixin

__all__ = [
    "FEW_POINTS_THRESHOLD",
    "ModelLoadError",
    "Surrogate",
    "SurrogateError",
    "TARGET_BOUNDS",
    "TRUSTED_TYPES",
    "load_surrogate",
    "target_bounds",
    "train_surrogate",
    "training_hash",
]

#: Below this many training points the model warns and widens its intervals.
FEW_POINTS_THRESHOLD = 30
#: Clip for the logit transform: fractions of the range closer than this to a bound are clipped.
LOGIT_EPS = 1e-3
#: Gauss-Hermite nodes for the logit-normal moments.
GH_NODES = 40
#: Lower bound of the GP white-noise level (normalised target scale: fraction of y variance).
NOISE_FLOOR = 1e-4
SMALL_N_NOISE_FLOOR = 1e-2
#: Below this many points CV uses leave-one-out, otherwise KFold(CV_FOLDS).
LOO_BELOW = 20
CV_FOLDS = 5
#: Minimum training points.
MIN_TRAIN = 3
#: GP length-scale bounds, in units of each input's domain range (inputs are scaled to 0..1).
LENGTH_SCALE_BOUNDS = (0.03, 2.0)
#: Rows per internal prediction block (bounds the n_test x n_train kernel matrix).
PREDICT_BLOCK = 4096
#: Trees in the forest.
N_TREES = 100

#: Known bounds of screening targets (target units). Others come from ``matdb.vocabulary.QUANTITIES``.
TARGET_BOUNDS: dict[str, tuple[float, float]] = {"plqy": (0.0, 100.0), "stability": (0.0, 1.0)}

#: Types (beyond skops' built-in safe defaults) that ``load_surrogate`` accepts.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.gaussian_process._gpr.GaussianProcessRegressor",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.Matern",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.Sum",
        "sklearn.gaussian_process.kernels.WhiteKernel",
        "sklearn.gaussian_process.kernels.Hyperparameter",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.tree._tree.Tree",
    }
)

#: Plain containers and arrays every surrogate file holds.
BASE_TYPES: frozenset[str] = frozenset(
    {f"builtins.{t}" for t in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")}
    | {f"numpy.{t}" for t in ("ndarray", "float64", "float32", "int64", "int32", "intp", "bool_",
                              "bool", "uint8", "dtype")}
    | {"numpy.random.mtrand.RandomState"}
)

_FORMAT = "matdb-surrogate"
_FORMAT_VERSION = 2

Kind = Literal["auto", "gp", "forest"]
Bounded = Literal["auto", "logit", "log"] | None
#: Below this ratio max/min a positive, unbounded target is modelled as it is (no log transform).
LOG_RATIO = 10.0


class SurrogateError(ValueError):
    """Training data or arguments a surrogate cannot be built from."""


class ModelLoadError(RuntimeError):
    """A saved model that is missing, not a matdb surrogate, or contains untrusted types."""


# --- helpers -----------------------------------------------------------------------------------


def training_hash(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 hex digest of ``X`` (float64, C order) followed by ``y`` (float64)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def target_bounds(target: str) -> tuple[float, float] | None:
    """Physical bounds of a target (target units), or None when unbounded/unknown."""
    if target in TARGET_BOUNDS:
        return TARGET_BOUNDS[target]
    try:
        from matdb.vocabulary import QUANTITIES
    except ImportError:  # pragma: no cover - matdb is always installed with screening
        return None
    q = QUANTITIES.get(target)
    if q is not None and q.min is not None and q.max is not None:
        return (float(q.min), float(q.max))
    return None


def _target_unit(target: str) -> str:
    try:
        from matdb.vocabulary import QUANTITIES
    except ImportError:  # pragma: no cover
        return ""
    q = QUANTITIES.get(target)
    if q is not None:
        return q.unit
    return "" if target == "stability" else "unknown"


@functools.cache
def _versions_cached() -> tuple[tuple[str, str], ...]:
    out = {}
    for dist in ("scikit-learn", "numpy", "scipy", "skops", "matdb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return tuple(out.items())


def _versions() -> dict[str, str]:
    """Installed versions of what a saved model depends on (read once per process: parsing the
    distributions' metadata costs ~20 ms each)."""
    return dict(_versions_cached())


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> list[float]:
    """95 % Wilson score interval of a binomial fraction k/n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


_GH_T, _GH_W = np.polynomial.hermite_e.hermegauss(GH_NODES)
_GH_W = _GH_W / math.sqrt(2 * math.pi)


@dataclass
class _Transform:
    """Map between target units and the latent (modelled) scale."""

    kind: str | None  # "logit", "log" or None
    lo: float = 0.0
    hi: float = 1.0

    def forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.kind == "logit":
            p = np.clip((y - self.lo) / (self.hi - self.lo), LOGIT_EPS, 1 - LOGIT_EPS)
            return special.logit(p)
        if self.kind == "log":
            return np.log(y)
        return y

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if self.kind == "logit":
            return self.lo + (self.hi - self.lo) * special.expit(z)
        if self.kind == "log":
            return np.exp(z)
        return z

    def moments(self, mu: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (target units) of inverse(z) for z ~ N(mu, sd^2), arrays of shape (n,)."""
        if self.kind == "logit":
            s = special.expit(mu[:, None] + sd[:, None] * _GH_T[None, :])
            m1 = s @ _GH_W
            m2 = (s * s) @ _GH_W
            var = np.clip(m2 - m1 * m1, 0.0, None)
            r = self.hi - self.lo
            return self.lo + r * m1, r * np.sqrt(var)
        if self.kind == "log":
            s2 = sd * sd
            mean = np.exp(mu + s2 / 2)
            return mean, np.sqrt(np.expm1(s2)) * mean
        return mu, sd


# --- latent models -----------------------------------------------------------------------------


def _make_gp(d: int, noise_floor: float, random_state: int, n_restarts: int,
             length_scale_bounds: tuple[float, float]) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    lo, hi = length_scale_bounds
    start = float(np.clip(0.3, lo, hi))
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=np.full(d, start), length_scale_bounds=(lo, hi), nu=2.5
    ) + WhiteKernel(noise_level=max(0.05, noise_floor), noise_level_bounds=(noise_floor, 1.0))
    return GaussianProcessRegressor(kernel=kernel, normalize_y=False, n_restarts_optimizer=n_restarts,
                                    random_state=random_state)


def _make_forest(random_state: int, n: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=N_TREES, min_samples_leaf=1, max_features=1.0, bootstrap=True,
        oob_score=n >= 5, random_state=random_state, n_jobs=1,
    )


def _forest_noise_var(forest: Any, z: np.ndarray) -> float:
    oob = getattr(forest, "oob_prediction_", None)
    if oob is not None:
        ok = np.isfinite(np.ravel(oob))
        if ok.sum() >= 2:
            return float(np.mean((z[ok] - np.ravel(oob)[ok]) ** 2))
    return float(np.var(z)) if len(z) > 1 else 1.0


def _inflation(n: int) -> float:
    return max(1.0, math.sqrt(FEW_POINTS_THRESHOLD / n))


@dataclass
class _Latent:
    """A fitted latent model on unit-scaled inputs: GP (targets standardised here) or forest."""

    kind: str
    model: Any
    z_mean: float = 0.0
    z_std: float = 1.0
    noise_var: float = 0.0
    linv: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def fit(cls, kind: str, Xu: np.ndarray, z: np.ndarray, *, random_state: int, n_restarts: int,
            noise_floor: float, length_scale_bounds: tuple[float, float], caught: list[str] | None = None
            ) -> _Latent:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            if kind == "gp":
                m, s = float(np.mean(z)), float(np.std(z))
                s = s if s > 1e-12 else 1.0
                model = _make_gp(Xu.shape[1], noise_floor, random_state, n_restarts, length_scale_bounds)
                model.fit(Xu, (z - m) / s)
                out = cls("gp", model, m, s)
            else:
                model = _make_forest(random_state, len(z)).fit(Xu, z)
                out = cls("forest", model, noise_var=_forest_noise_var(model, z))
        if caught is not None:
            caught.extend(sorted({str(w.message) for w in rec}))
        return out

    def predict(self, Xu: np.ndarray, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "gp":
            return self._gp(Xu, noise)
        return self._forest(Xu, noise)

    def _gp(self, Xu: np.ndarray, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (latent units), equal to ``GaussianProcessRegressor.predict(return_std=True)``
        but with the inverse Cholesky factor precomputed, so the variance is a matrix product."""
        gp = self.model
        if self.linv is None:
            L = gp.L_
            self.linv = linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True)
        mu = np.empty(len(Xu))
        sd = np.empty(len(Xu))
        alpha = np.ravel(gp.alpha_)
        for start in range(0, len(Xu), PREDICT_BLOCK):
            xb = Xu[start : start + PREDICT_BLOCK]
            k = gp.kernel_(xb, gp.X_train_)
            mu[start : start + len(xb)] = (k @ alpha) * self.z_std + self.z_mean
            v = k @ self.linv.T
            var = gp.kernel_.diag(xb) - np.einsum("ij,ij->i", v, v)
            if not noise:  # the kernel is signal + WhiteKernel: leave the white noise out
                var = var - float(gp.kernel_.k2.noise_level)
            sd[start : start + len(xb)] = np.sqrt(np.clip(var, 0.0, None)) * self.z_std
        return mu, sd

    def sample_gp(self, Xu: np.ndarray, rng: np.random.Generator, noise: bool = False) -> np.ndarray:
        """One draw of the GP's joint posterior at the rows of ``Xu`` (latent units, shape (n,))."""
        if self.kind != "gp":
            raise SurrogateError("joint posterior samples need a Gaussian-process model")
        gp = self.model
        if self.linv is None:
            self._gp(Xu[:1])
        mu, _ = self._gp(Xu, noise=True)
        k = gp.kernel_(Xu, gp.X_train_)
        v = k @ self.linv.T  # type: ignore[union-attr]
        cov = gp.kernel_(Xu) - v @ v.T
        if not noise:
            cov -= float(gp.kernel_.k2.noise_level) * np.eye(len(Xu))
        e = rng.standard_normal(len(Xu))
        # a jitter of round-off size keeps the factor of a rank-deficient covariance real
        jitter = 1e-8 * max(1.0, float(np.max(np.diag(cov))))
        try:
            draw = np.linalg.cholesky(cov + jitter * np.eye(len(Xu))) @ e
        except np.linalg.LinAlgError:
            w, U = np.linalg.eigh(cov)
            draw = U @ (np.sqrt(np.clip(w, 0.0, None)) * e)
        return mu + draw * self.z_std

    def _forest(self, Xu: np.ndarray, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Average of the trees and their spread plus the out-of-bag noise, streaming over trees."""
        s1 = np.zeros(len(Xu))
        s2 = np.zeros(len(Xu))
        X32 = np.ascontiguousarray(Xu, dtype=np.float32)  # the public Tree.predict takes float32
        for tree in self.model.estimators_:
            p = tree.tree_.predict(X32).reshape(len(X32), -1)[:, 0]
            s1 += p
            s2 += p * p
        t = len(self.model.estimators_)
        mu = s1 / t
        return mu, np.sqrt(np.clip(s2 / t - mu * mu, 0.0, None) + (self.noise_var if noise else 0.0))

    def conditioned(self, Xu_all: np.ndarray, z_all: np.ndarray, random_state: int) -> _Latent:
        """The same model refitted on more data with its hyperparameters kept (GP), or refitted (forest)."""
        from sklearn.base import clone
        from sklearn.gaussian_process import GaussianProcessRegressor

        if self.kind == "gp":
            model = GaussianProcessRegressor(kernel=self.model.kernel_, optimizer=None, normalize_y=False)
            model.fit(Xu_all, (z_all - self.z_mean) / self.z_std)
            return _Latent("gp", model, self.z_mean, self.z_std)
        model = clone(self.model).fit(Xu_all, z_all)
        return _Latent("forest", model, noise_var=self.noise_var)


# --- the surrogate -----------------------------------------------------------------------------


class Surrogate(RegressorMixin, BaseEstimator):
    """A surrogate model: predictions with honest uncertainty in target units plus a model card.

    Parameters:
        kind: "gp", "forest" or "auto" (both are cross-validated; the lower RMSE wins).
        target: target name, for the card and default bounds ("plqy": 0..100 %).
        bounded: "logit", "log", None, or "auto" (see the module docstring).
        bounds: (lo, hi) physical bounds of the target; ``hi`` may be None (unbounded above).
        input_bounds: (lo, hi) arrays of shape (d,): the domain the inputs are scaled by.
        noise: known measurement noise (one standard uncertainty, target units), the GP's noise floor.
        length_scale_bounds: GP length-scale bounds in units of the domain (default LENGTH_SCALE_BOUNDS).
        feature_names: names of the d input columns (checked at prediction, kept in the card).
        cv: cross-validate (needed for kind="auto" and for the card's error and calibration).
        n_restarts: GP optimiser restarts.
        random_state: seed for CV splits, forests and GP restarts.

    Fitted attributes: ``kind_``, ``transform_``, ``X_train_``, ``y_train_``, ``card_``,
    ``std_inflation_``, ``lo_``, ``span_`` (input scaling), ``latent_``.
    """

    def __init__(self, kind: Kind = "auto", target: str = "", bounded: Bounded = "auto",
                 bounds: tuple[float, float | None] | None = None, input_bounds: Any = None,
                 noise: float | None = None, feature_names: Sequence[str] | None = None, cv: bool = True,
                 n_restarts: int = 2, random_state: int = 0,
                 length_scale_bounds: tuple[float, float] = LENGTH_SCALE_BOUNDS) -> None:
        self.kind = kind
        self.target = target
        self.bounded = bounded
        self.bounds = bounds
        self.input_bounds = input_bounds
        self.noise = noise
        self.feature_names = feature_names
        self.cv = cv
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.length_scale_bounds = length_scale_bounds

    # -- fitting ------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, groups: Any = None) -> Surrogate:
        """Fit on X (n, d) and y (n,) in target units; ``groups`` (e.g. families) adds
        leave-one-group-out CV, which then drives the choice of kind."""
        from sklearn.utils.validation import validate_data

        try:
            X, y = validate_data(self, X, y, y_numeric=True, accept_sparse=False)
        except ValueError as exc:  # sklearn's own messages: shape, NaN, sparse, 1-D y, sample counts
            raise SurrogateError(str(exc)) from None
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        names = list(self.feature_names) if self.feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
        if len(names) != X.shape[1]:
            raise SurrogateError(f"feature_names has {len(names)} names but X has {X.shape[1]} columns")
        if len(y) < MIN_TRAIN:
            raise SurrogateError(f"need at least {MIN_TRAIN} training points, got n_samples = {len(y)}")
        if self.kind not in ("auto", "gp", "forest"):
            raise SurrogateError(f"kind must be 'auto', 'gp' or 'forest', not {self.kind!r}")
        if self.kind == "auto" and not self.cv:
            raise SurrogateError("kind='auto' chooses the model by cross-validation; set cv=True")
        g = None
        if groups is not None:
            g = np.asarray(groups).ravel()
            if len(g) != len(y):
                raise SurrogateError(f"groups has {len(g)} labels but y has {len(y)} values")
        self.lo_, self.span_ = _input_scaling(X, self.input_bounds)
        transform = _resolve_transform(self.target, self.bounded, y, self.bounds)
        z = transform.forward(y)
        Xu = (X - self.lo_) / self.span_
        n = len(y)
        floor = self._noise_floor(z, y, transform)
        fit_kw: dict[str, Any] = {"random_state": self.random_state, "noise_floor": floor,
                  "length_scale_bounds": tuple(self.length_scale_bounds)}

        kinds = ["gp", "forest"] if self.kind == "auto" else [self.kind]
        cv_random: dict[str, dict[str, Any]] = {}
        cv_grouped: dict[str, dict[str, Any]] = {}
        if self.cv:
            scheme, splits = _cv_splits(n, None, self.random_state, CV_FOLDS)
            for k in kinds:
                cv_random[k] = _cv_scores(k, Xu, y, z, transform, splits, scheme, fit_kw)
            if g is not None and len(np.unique(g)) > 1:
                gscheme, gsplits = _cv_splits(n, g, self.random_state, CV_FOLDS)
                for k in kinds:
                    cv_grouped[k] = _cv_scores(k, Xu, y, z, transform, gsplits, gscheme, fit_kw)

        def score(k: str) -> float:
            src = cv_grouped.get(k) or cv_random.get(k) or {}
            r = src.get("rmse")
            return math.inf if r is None else float(r)

        chosen = min(kinds, key=score)
        fit_notes: list[str] = []
        self.latent_ = _Latent.fit(chosen, Xu, z, n_restarts=self.n_restarts, caught=fit_notes, **fit_kw)
        self.kind_ = chosen
        self.transform_ = transform
        self.std_inflation_ = _inflation(n)
        self.X_train_ = X.copy()
        self.y_train_ = y.copy()
        self.feature_names_ = names
        self.card_ = _card(self, cv_random, cv_grouped, g, [f"fit: {m}" for m in fit_notes], floor)
        return self

    def _noise_floor(self, z: np.ndarray, y: np.ndarray, transform: _Transform) -> float:
        """The GP's white-noise floor as a fraction of the standardised latent variance."""
        n = len(z)
        floor = SMALL_N_NOISE_FLOOR if n < FEW_POINTS_THRESHOLD else NOISE_FLOOR
        var = float(np.var(z))
        if self.noise is not None and self.noise > 0 and var > 0:
            # the known noise (target units) on the latent scale, through the transform's slope
            dz = np.gradient(transform.forward(np.array([np.median(y) - self.noise, np.median(y) + self.noise])))
            latent_sd = float(np.abs(dz[0])) if np.isfinite(dz[0]) else 0.0
            floor = max(floor, min(0.9, latent_sd**2 / var))
        return floor

    # -- prediction ---------------------------------------------------------------------------------

    def _check_X(self, X: Any) -> np.ndarray:
        from scipy import sparse
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "latent_")
        if sparse.issparse(X):
            raise SurrogateError("sparse input is not supported: pass a dense array")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            try:
                validate_data(self, X, reset=False, ensure_all_finite=False)
            except ValueError as exc:  # sklearn's own message (1-D input, feature count)
                raise SurrogateError(f"{exc} (features: {self.feature_names_})") from None
            raise SurrogateError(
                f"X must have shape (n, {self.n_features_in_}) for features {self.feature_names_}, got {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise SurrogateError("X contains NaN or infinite values")
        return X

    def scaled(self, X: Any) -> np.ndarray:
        """Inputs scaled to the unit cube of the domain, shape (n, d)."""
        return (self._check_X(X) - self.lo_) / self.span_

    def predict_latent(self, X: Any, noise: bool = True, widen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian mean and std on the latent (transformed) scale, each shape (n,); the std
        includes the few-points widening (``std_inflation_``, unless ``widen=False``) and, unless
        ``noise=False``, the measurement noise (``noise=False``: the uncertainty of the underlying
        function, what expected improvement needs)."""
        Xu = self.scaled(X)
        mu, sd = self.latent_.predict(Xu, noise)
        return mu, sd * (self.std_inflation_ if widen else 1.0)

    def sample_latent(self, X: Any, rng: np.random.Generator, noise: bool = False, widen: bool = True) -> np.ndarray:
        """One draw of the joint posterior (GP only) at the rows of ``X`` on the latent scale,
        widened like :meth:`predict_latent` (Thompson sampling of a batch's exploration pick)."""
        Xu = self.scaled(X)
        mu, _ = self.latent_.predict(Xu, noise)
        draw = self.latent_.sample_gp(Xu, rng, noise)
        return mu + (draw - mu) * (self.std_inflation_ if widen else 1.0)

    def predict(self, X: Any, return_std: bool = False, noise: bool = True) -> Any:
        """Predicted mean (and std) in target units, each shape (n,).

        For transformed targets these are the moments of the back-transformed distribution
        (see module docstring), so the mean of a logit-PLQY model is always within 0..100 %. The
        std is that of a new measurement; ``noise=False`` gives that of the noise-free function.
        """
        mu, sd = self.predict_latent(X, noise)
        mean, std = self.transform_.moments(mu, sd)
        return (mean, std) if return_std else mean

    def predict_interval(self, X: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` interval (lower, upper), target units, each shape (n,)."""
        if not 0 < level < 1:
            raise SurrogateError(f"level must be between 0 and 1 (exclusive), got {level}")
        mu, sd = self.predict_latent(X)
        q = stats.norm.ppf(0.5 + level / 2)
        return self.transform_.inverse(mu - q * sd), self.transform_.inverse(mu + q * sd)

    def condition_on(self, X_new: Any, y_new_latent: Any) -> Surrogate:
        """A copy fitted with extra (e.g. fantasised) observations, GP hyperparameters kept.

        ``y_new_latent`` is on the latent scale (what :meth:`predict_latent` returns). Used by the
        kriging-believer batch selection; the card is not updated."""
        X_new = self._check_X(X_new)
        z_new = np.atleast_1d(np.asarray(y_new_latent, dtype=float))
        X_all = np.vstack([self.X_train_, X_new])
        z_all = np.concatenate([self.transform_.forward(self.y_train_), z_new])
        out = copy.copy(self)
        out.latent_ = self.latent_.conditioned((X_all - self.lo_) / self.span_, z_all, self.random_state)
        out.X_train_ = X_all
        out.y_train_ = np.concatenate([self.y_train_, self.transform_.inverse(z_new)])
        return out

    @property
    def target_bounds_(self) -> tuple[float, float] | None:
        """Target bounds (target units) of a bounded transform; None otherwise."""
        t = self.transform_
        if t.kind == "logit":
            return (t.lo, t.hi)
        if t.kind == "log":
            return (0.0, math.inf)
        return None

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # a GP with a noise floor on 10-point toy data
        return tags

    # -- persistence --------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model as a skops file and its card as ``<path>.card.json``; return path."""
        import skops.io as sio

        path = Path(path)
        lat, t = self.latent_, self.transform_
        state = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()
                       if k != "input_bounds"},
            "kind": lat.kind,
            "model": lat.model,
            "z_mean": float(lat.z_mean),
            "z_std": float(lat.z_std),
            "noise_var": float(lat.noise_var),
            "std_inflation": float(self.std_inflation_),
            "lo": np.ascontiguousarray(self.lo_, dtype=float),
            "span": np.ascontiguousarray(self.span_, dtype=float),
            "transform": t.kind or "none",
            "transform_bounds": [float(t.lo), float(t.hi)],
            "feature_names": list(self.feature_names_),
            "X_train": np.ascontiguousarray(self.X_train_, dtype=float),
            "y_train": np.ascontiguousarray(self.y_train_, dtype=float),
            "card_json": json.dumps(self.card_),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        sio.dump(state, path)
        card_path(path).write_text(json.dumps(self.card_, indent=2), encoding="utf-8")
        return path


def _input_scaling(X: np.ndarray, input_bounds: Any) -> tuple[np.ndarray, np.ndarray]:
    if input_bounds is not None:
        lo = np.asarray(input_bounds[0], dtype=float).ravel()
        hi = np.asarray(input_bounds[1], dtype=float).ravel()
        if lo.shape != (X.shape[1],) or hi.shape != (X.shape[1],):
            raise SurrogateError(f"input_bounds must be two arrays of length {X.shape[1]}")
    else:
        lo, hi = X.min(axis=0), X.max(axis=0)
    span = hi - lo
    span = np.where(np.isfinite(span) & (span > 1e-12), span, 1.0)
    return lo.astype(float), span.astype(float)


def card_path(path: str | Path) -> Path:
    """Where :meth:`Surrogate.save` writes the JSON card for a model at ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".card.json")


def _schema_types(path: Path) -> set[str]:
    """Fully qualified names of every object node in a skops file's schema."""
    with zipfile.ZipFile(path) as zf:
        schema = json.loads(zf.read("schema.json"))
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node:
                found.add(f"{node.get('__module__', '')}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load_surrogate(path: str | Path) -> Surrogate:
    """Load a surrogate saved by :meth:`Surrogate.save` without unpickling anything.

    Raises:
        ModelLoadError: the file is missing, is not a skops file, holds types outside
            ``TRUSTED_TYPES``, is not a matdb surrogate, or its training data do not match the
            hash recorded in its card.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a skops model file (refusing to unpickle it)")
    try:
        listed = set(sio.get_untrusted_types(file=path))
        present = _schema_types(path)
    except Exception as exc:
        raise ModelLoadError(f"{path} is not a readable skops model file: {exc}") from None
    unknown = sorted((listed | present) - TRUSTED_TYPES - BASE_TYPES)
    if unknown:
        raise ModelLoadError(
            f"refusing to load {path}: it contains untrusted types {', '.join(unknown)}; "
            "only matdb surrogate files (GP / random forest) are accepted"
        )
    try:
        state = sio.load(path, trusted=sorted(listed))
    except Exception as exc:
        raise ModelLoadError(f"cannot load {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ModelLoadError(f"{path} is not a matdb surrogate file")
    if state.get("format_version") != _FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has surrogate format version {state.get('format_version')}, "
            f"this matdb reads version {_FORMAT_VERSION} (train the model again)"
        )
    card = json.loads(state["card_json"])
    X = np.asarray(state["X_train"], dtype=float)
    y = np.asarray(state["y_train"], dtype=float)
    if card.get("training_data_sha256") != training_hash(X, y):
        raise ModelLoadError(f"{path}: training data do not match the hash in the model card")
    kind = state["kind"]
    if kind not in ("gp", "forest"):
        raise ModelLoadError(f"{path}: unknown model kind {kind!r}")
    params = dict(state["params"])
    for k in ("bounds", "length_scale_bounds"):
        if isinstance(params.get(k), list):
            params[k] = tuple(params[k])
    s = Surrogate(**params)
    s.latent_ = _Latent(kind, state["model"], float(state["z_mean"]), float(state["z_std"]),
                        float(state["noise_var"]))
    lo, hi = state["transform_bounds"]
    s.transform_ = _Transform(None if state["transform"] == "none" else state["transform"], lo, hi)
    s.kind_ = kind
    s.std_inflation_ = float(state["std_inflation"])
    s.lo_, s.span_ = np.asarray(state["lo"], float), np.asarray(state["span"], float)
    s.X_train_, s.y_train_ = X, y
    s.feature_names_ = list(state["feature_names"])
    s.n_features_in_ = X.shape[1]
    s.card_ = card
    saved_sklearn = card.get("versions", {}).get("scikit-learn")
    now = _versions()["scikit-learn"]
    if saved_sklearn and saved_sklearn != now:
        warnings.warn(
            f"{path} was trained with scikit-learn {saved_sklearn}, running {now}; "
            "predictions may differ slightly", UserWarning, stacklevel=2,
        )
    return s


# --- training ----------------------------------------------------------------------------------


def _resolve_transform(target: str, bounded: Bounded, y: np.ndarray,
                       bounds: tuple[float, float | None] | None) -> _Transform:
    known: tuple[float, float | None] | None = bounds if bounds is not None else target_bounds(target)
    two_sided = known is not None and known[1] is not None and math.isfinite(float(known[1]))
    if bounded == "auto":
        if two_sided:
            bounded = "logit"
        elif (known is not None and known[0] is not None and float(known[0]) >= 0 and len(y) and np.all(y > 0)
              and float(np.max(y) / np.min(y)) > LOG_RATIO):
            bounded = "log"
        else:
            bounded = None
    if bounded == "logit":
        if not two_sided:
            raise SurrogateError(
                f"bounded='logit' needs the bounds of target '{target}'; pass bounds=(lo, hi)"
            )
        lo, hi = float(known[0]), float(known[1])  # type: ignore[index,arg-type]
        if not hi > lo:
            raise SurrogateError(f"bounds must satisfy lo < hi, got {known}")
        tol = 1e-9 * max(1.0, abs(hi - lo))
        bad = (y < lo - tol) | (y > hi + tol)
        if bad.any():
            raise SurrogateError(
                f"y: {int(bad.sum())} value(s) of '{target}' outside its bounds {lo:g}..{hi:g} "
                f"(first: {y[bad][0]:g})"
            )
        return _Transform("logit", lo, hi)
    if bounded == "log":
        if np.any(y <= 0):
            raise SurrogateError(f"y: bounded='log' needs positive values of '{target}'")
        return _Transform("log", 0.0, math.inf)
    if bounded is None:
        return _Transform(None, -math.inf, math.inf)
    raise SurrogateError(f"bounded must be 'auto', 'logit', 'log' or None, not {bounded!r}")


def _cv_splits(n: int, groups: np.ndarray | None, random_state: int, folds: int
               ) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    from sklearn.model_selection import KFold, LeaveOneGroupOut, LeaveOneOut

    if groups is not None:
        return "LeaveOneGroupOut", list(LeaveOneGroupOut().split(np.zeros(n), groups=groups))
    if n < LOO_BELOW:
        return "LeaveOneOut", list(LeaveOneOut().split(np.zeros(n)))
    k = min(folds, n)
    return f"KFold({k}, shuffled)", list(
        KFold(k, shuffle=True, random_state=random_state).split(np.zeros(n))
    )


def _cv_scores(kind: str, Xu: np.ndarray, y: np.ndarray, z: np.ndarray, transform: _Transform,
               splits: list[tuple[np.ndarray, np.ndarray]], scheme: str, fit_kw: dict[str, Any]) -> dict[str, Any]:
    """Held-out RMSE/MAE (target units) and 68/95 % interval coverage."""
    n = len(y)
    mean = np.full(n, np.nan)
    inside = {68: np.zeros(n, bool), 95: np.zeros(n, bool)}
    used = np.zeros(n, bool)
    for train, test in splits:
        if len(train) < MIN_TRAIN:
            continue
        lat = _Latent.fit(kind, Xu[train], z[train], n_restarts=0, **fit_kw)
        mu, sd = lat.predict(Xu[test])
        sd = sd * _inflation(len(train))
        mean[test] = transform.moments(mu, sd)[0]
        for level in (68, 95):
            q = stats.norm.ppf(0.5 + level / 200)
            lo, hi = transform.inverse(mu - q * sd), transform.inverse(mu + q * sd)
            inside[level][test] = (y[test] >= lo) & (y[test] <= hi)
        used[test] = True
    m = int(used.sum())
    if m == 0:
        return {"scheme": scheme, "n_heldout": 0, "rmse": None, "mae": None}
    err = mean[used] - y[used]
    out: dict[str, Any] = {
        "scheme": scheme,
        "n_splits": len(splits),
        "n_heldout": m,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
    }
    for level in (68, 95):
        k = int(inside[level][used].sum())
        out[f"coverage_{level}"] = k / m
        out[f"coverage_{level}_ci95"] = _wilson(k, m)
    out["calibration_reliable"] = m >= FEW_POINTS_THRESHOLD
    return out


def _card(s: Surrogate, cv_random: dict[str, Any], cv_grouped: dict[str, Any], g: np.ndarray | None,
          notes: list[str], noise_floor: float) -> dict[str, Any]:
    """The model card of a fitted surrogate (see the module docstring)."""
    chosen, transform, y, n = s.kind_, s.transform_, s.y_train_, len(s.y_train_)
    notes = list(notes)
    if n < FEW_POINTS_THRESHOLD:
        notes.insert(0,
            f"only {n} training points (< {FEW_POINTS_THRESHOLD}): CV error and calibration are "
            f"rough estimates; intervals are widened by a factor {s.std_inflation_:.2f}"
        )
    if not s.cv:
        notes.append("no cross-validation was run: CV error and calibration are unknown")
    if transform.kind == "logit":
        frac = (y - transform.lo) / (transform.hi - transform.lo)
        clipped = int(np.sum(frac < LOGIT_EPS) + np.sum(frac > 1 - LOGIT_EPS))
        if clipped:
            notes.append(f"{clipped} target value(s) at a bound were clipped to "
                         f"{LOGIT_EPS:g} of the range for the logit transform")
    main_cv = cv_random.get(chosen)
    grouped_rmse = (cv_grouped.get(chosen) or {}).get("rmse")
    if grouped_rmse is not None and main_cv and main_cv.get("rmse") and grouped_rmse > 1.5 * main_cv["rmse"]:
        notes.append("leave-one-group-out error is much larger than random-split error: "
                     "predictions for an unseen family are unreliable")
    calibration = None
    if main_cv and main_cv.get("n_heldout"):
        calibration = {
            str(level): {
                "nominal": level / 100,
                "fraction": main_cv[f"coverage_{level}"],
                "ci95": main_cv[f"coverage_{level}_ci95"],
                "n_heldout": main_cv["n_heldout"],
                "reliable": main_cv["calibration_reliable"],
            }
            for level in (68, 95)
        }
        if not main_cv["calibration_reliable"]:
            notes.append(
                f"calibration is based on {main_cv['n_heldout']} held-out points only; "
                "the coverage fractions are not a reliable calibration claim"
            )
    lat = s.latent_
    model_info: dict[str, Any]
    if chosen == "gp":
        model_info = {"kernel": str(lat.model.kernel_),
                      "log_marginal_likelihood": float(lat.model.log_marginal_likelihood_value_),
                      "length_scale_bounds": list(s.length_scale_bounds), "noise_floor": noise_floor}
    else:
        model_info = {"n_estimators": N_TREES, "oob_noise_std_latent": math.sqrt(lat.noise_var)}
    return {
        "schema": "matdb.surrogate-card/2",
        "target": s.target,
        "unit": _target_unit(s.target),
        "transform": transform.kind,
        "bounds": [transform.lo, transform.hi] if transform.kind == "logit" else None,
        "kind": chosen,
        "kind_requested": s.kind,
        "model": model_info,
        "cv": main_cv,
        "cv_grouped": cv_grouped.get(chosen),
        "cv_all_kinds": {"random": cv_random, "grouped": cv_grouped},
        "calibration": calibration,
        "std_inflation": s.std_inflation_,
        "feature_names": list(s.feature_names_),
        "n_features": s.n_features_in_,
        "n_train": n,
        "n_groups": int(len(np.unique(g))) if g is not None else None,
        "training_data_sha256": training_hash(s.X_train_, y),
        "random_state": s.random_state,
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "warnings": notes,
    }


def train_surrogate(X: Any, y: Any, *, feature_names: Sequence[str], target: str, groups: Any = None,
                    kind: Kind = "auto", bounded: Bounded = "auto", bounds: tuple[float, float | None] | None = None,
                    input_bounds: Any = None, noise: float | None = None, random_state: int = 0, cv: bool = True,
                    n_restarts: int = 2) -> Surrogate:
    """``Surrogate(...).fit(X, y, groups)`` in one call (see :class:`Surrogate` for the arguments).

    Raises:
        SurrogateError: bad shapes, non-finite values, fewer than MIN_TRAIN points, targets
            outside their bounds, unknown kind.
    """
    return Surrogate(kind=kind, target=target, bounded=bounded, bounds=bounds, input_bounds=input_bounds,
                     noise=noise, feature_names=feature_names, cv=cv, n_restarts=n_restarts,
                     random_state=random_state).fit(X, y, groups)
