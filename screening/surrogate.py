"""Surrogate models with honest uncertainty for screening (PLQY, stability, ...).

Two model kinds work on scaled descriptors (``StandardScaler``):

* ``"gp"``: Gaussian process, ``ConstantKernel * Matern(length_scale=ones(d), nu=2.5) +
  WhiteKernel`` (anisotropic/ARD length scales, one per feature), ``normalize_y=True``. The
  predictive std includes the fitted white noise, i.e. intervals are for a *new measurement*.
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
bounds (``TARGET_BOUNDS`` or the ``matdb.vocabulary.QUANTITIES`` registry), otherwise none.

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
        "sklearn.preprocessing._data.StandardScaler",
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
_FORMAT_VERSION = 1

Kind = Literal["auto", "gp", "forest"]
Bounded = Literal["auto", "logit", "log"] | None


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


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("scikit-learn", "numpy", "scipy", "skops", "matdb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


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


def _make_gp(d: int, noise_floor: float, random_state: int, n_restarts: int) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=np.ones(d), length_scale_bounds=(1e-2, 1e3), nu=2.5
    ) + WhiteKernel(noise_level=max(0.1, noise_floor), noise_level_bounds=(noise_floor, 1e1))
    return GaussianProcessRegressor(
        kernel=kernel, normalize_y=True, n_restarts_optimizer=n_restarts,
        random_state=random_state,
    )


def _make_forest(random_state: int, n: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=N_TREES, min_samples_leaf=1, max_features=1.0, bootstrap=True,
        oob_score=n >= 5, random_state=random_state, n_jobs=1,
    )


def _gp_latent(gp: Any, Xs: np.ndarray, linv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP mean and std (latent units) for scaled inputs, equal to ``gp.predict(return_std=True)``.

    Uses the precomputed inverse Cholesky factor so the variance term is a matrix product
    (BLAS-3) instead of a triangular solve per block.
    """
    mu = np.empty(len(Xs))
    sd = np.empty(len(Xs))
    y_mean = float(np.ravel(gp._y_train_mean)[0])
    y_std = float(np.ravel(gp._y_train_std)[0])
    alpha = np.ravel(gp.alpha_)
    for start in range(0, len(Xs), PREDICT_BLOCK):
        xb = Xs[start : start + PREDICT_BLOCK]
        k = gp.kernel_(xb, gp.X_train_)
        mu[start : start + len(xb)] = (k @ alpha) * y_std + y_mean
        v = k @ linv.T
        var = gp.kernel_.diag(xb) - np.einsum("ij,ij->i", v, v)
        sd[start : start + len(xb)] = np.sqrt(np.clip(var, 0.0, None)) * y_std
    return mu, sd


def _forest_latent(forest: Any, Xs: np.ndarray, noise_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Forest mean (average of trees) and std (tree spread + noise), streaming over trees."""
    s1 = np.zeros(len(Xs))
    s2 = np.zeros(len(Xs))
    # the low-level Tree.predict skips per-call input validation (float32 like sklearn's own)
    X32 = np.ascontiguousarray(Xs, dtype=np.float32)
    for tree in forest.estimators_:
        p = tree.tree_.predict(X32).reshape(len(X32), -1)[:, 0]
        s1 += p
        s2 += p * p
    t = len(forest.estimators_)
    mu = s1 / t
    var = np.clip(s2 / t - mu * mu, 0.0, None) + noise_var
    return mu, np.sqrt(var)


def _forest_noise_var(forest: Any, z: np.ndarray) -> float:
    oob = getattr(forest, "oob_prediction_", None)
    if oob is not None:
        ok = np.isfinite(np.ravel(oob))
        if ok.sum() >= 2:
            return float(np.mean((z[ok] - np.ravel(oob)[ok]) ** 2))
    return float(np.var(z)) if len(z) > 1 else 1.0


@dataclass
class _Fitted:
    kind: str
    scaler: Any
    model: Any
    noise_var: float = 0.0
    std_inflation: float = 1.0
    _linv: np.ndarray | None = field(default=None, repr=False)

    def latent(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xs = self.scaler.transform(np.asarray(X, dtype=float))
        if self.kind == "gp":
            if self._linv is None:
                L = self.model.L_
                self._linv = linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True)
            mu, sd = _gp_latent(self.model, Xs, self._linv)
        else:
            mu, sd = _forest_latent(self.model, Xs, self.noise_var)
        return mu, sd * self.std_inflation


def _inflation(n: int) -> float:
    return max(1.0, math.sqrt(FEW_POINTS_THRESHOLD / n))


def _fit_latent(kind: str, X: np.ndarray, z: np.ndarray, random_state: int,
                n_restarts: int, caught: list[str] | None = None) -> _Fitted:
    from sklearn.preprocessing import StandardScaler

    n = len(z)
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        if kind == "gp":
            floor = SMALL_N_NOISE_FLOOR if n < FEW_POINTS_THRESHOLD else NOISE_FLOOR
            model = _make_gp(X.shape[1], floor, random_state, n_restarts).fit(Xs, z)
            noise_var = 0.0
        else:
            model = _make_forest(random_state, n).fit(Xs, z)
            noise_var = _forest_noise_var(model, z)
    if caught is not None:
        caught.extend(sorted({str(w.message) for w in rec}))
    return _Fitted(kind, scaler, model, noise_var, _inflation(n))


# --- the surrogate -----------------------------------------------------------------------------


class Surrogate:
    """A trained surrogate: predictions with uncertainty in target units plus a model card.

    Attributes:
        kind: "gp" or "forest".
        target: target name ("plqy", "stability", ...).
        feature_names: names of the columns of ``X``.
        card: the model card (JSON-serialisable dict, see the module docstring).
        X_train: training inputs, shape (n_train, d).
        y_train: training targets in target units, shape (n_train,).
    """

    def __init__(self, fitted: _Fitted, transform: _Transform, *, target: str,
                 feature_names: Sequence[str], X_train: np.ndarray, y_train: np.ndarray,
                 card: dict[str, Any], random_state: int = 0) -> None:
        self._fitted = fitted
        self._transform = transform
        self.target = target
        self.feature_names = list(feature_names)
        self.X_train = X_train
        self.y_train = y_train
        self.card = card
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"Surrogate(target={self.target!r}, kind={self.kind!r}, "
                f"n_train={len(self.y_train)}, features={len(self.feature_names)})")

    @property
    def kind(self) -> str:
        return self._fitted.kind

    @property
    def bounds(self) -> tuple[float, float] | None:
        """Target bounds (target units) for bounded transforms; None otherwise."""
        t = self._transform
        if t.kind == "logit":
            return (t.lo, t.hi)
        if t.kind == "log":
            return (0.0, math.inf)
        return None

    @property
    def transform(self) -> str | None:
        return self._transform.kind

    @property
    def best_observed(self) -> float:
        """Largest training target (target units)."""
        return float(np.max(self.y_train))

    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise SurrogateError(
                f"X must have shape (n, {len(self.feature_names)}) for features "
                f"{self.feature_names}, got {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise SurrogateError("X contains NaN or infinite values")
        return X

    def scaled(self, X: Any) -> np.ndarray:
        """Inputs in the model's standardised feature space, shape (n, d)."""
        return self._fitted.scaler.transform(self._check_X(X))

    def predict_latent(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian mean and std on the latent (transformed) scale, each shape (n,)."""
        return self._fitted.latent(self._check_X(X))

    def predict(self, X: Any, return_std: bool = True) -> Any:
        """Predicted mean (and std) in target units, each shape (n,).

        For transformed targets these are the moments of the back-transformed distribution
        (see module docstring), so the mean of a logit-PLQY model is always within 0..100 %.
        """
        mu, sd = self.predict_latent(X)
        mean, std = self._transform.moments(mu, sd)
        return (mean, std) if return_std else mean

    def predict_interval(self, X: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` interval (lower, upper), target units, each shape (n,)."""
        if not 0 < level < 1:
            raise SurrogateError(f"level must be between 0 and 1 (exclusive), got {level}")
        mu, sd = self.predict_latent(X)
        q = stats.norm.ppf(0.5 + level / 2)
        return self._transform.inverse(mu - q * sd), self._transform.inverse(mu + q * sd)

    def condition_on(self, X_new: Any, y_new_latent: Any) -> Surrogate:
        """A copy refitted with extra (e.g. fantasised) observations, hyperparameters fixed.

        ``y_new_latent`` is on the latent scale (what :meth:`predict_latent` returns). For a GP
        the kernel hyperparameters are kept (no re-optimisation); a forest is refitted on a copy.
        Used by the kriging-believer batch selection; the card is not updated.
        """
        from sklearn.base import clone
        from sklearn.gaussian_process import GaussianProcessRegressor

        X_new = self._check_X(X_new)
        z_new = np.atleast_1d(np.asarray(y_new_latent, dtype=float))
        f = self._fitted
        Xs_new = f.scaler.transform(X_new)
        if f.kind == "gp":
            gp = f.model
            Xs = np.vstack([gp.X_train_, Xs_new])
            z_old = np.ravel(gp.y_train_) * np.ravel(gp._y_train_std)[0] + np.ravel(
                gp._y_train_mean)[0]
            model = GaussianProcessRegressor(kernel=gp.kernel_, optimizer=None, normalize_y=True)
            model.fit(Xs, np.concatenate([z_old, z_new]))
            fitted = _Fitted("gp", f.scaler, model, 0.0, f.std_inflation)
        else:
            model = clone(f.model)
            z_old = self._transform.forward(self.y_train)
            Xs = np.vstack([f.scaler.transform(self.X_train), Xs_new])
            model.fit(Xs, np.concatenate([z_old, z_new]))
            fitted = _Fitted("forest", f.scaler, model, f.noise_var, f.std_inflation)
        out = copy.copy(self)
        out._fitted = fitted
        out.X_train = np.vstack([self.X_train, X_new])
        out.y_train = np.concatenate([self.y_train, self._transform.inverse(z_new)])
        return out

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model as a skops file and its card as ``<path>.card.json``; return path."""
        import skops.io as sio

        path = Path(path)
        f = self._fitted
        t = self._transform
        state = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "kind": f.kind,
            "scaler": f.scaler,
            "model": f.model,
            "noise_var": float(f.noise_var),
            "std_inflation": float(f.std_inflation),
            "transform": t.kind or "none",
            "bounds": [float(t.lo), float(t.hi)],
            "target": self.target,
            "feature_names": list(self.feature_names),
            "X_train": np.ascontiguousarray(self.X_train, dtype=float),
            "y_train": np.ascontiguousarray(self.y_train, dtype=float),
            "random_state": int(self.random_state),
            "card_json": json.dumps(self.card),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        sio.dump(state, path)
        card_path(path).write_text(json.dumps(self.card, indent=2), encoding="utf-8")
        return path


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
            "only matdb surrogate files (GP / random forest + StandardScaler) are accepted"
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
            f"this matdb reads version {_FORMAT_VERSION}"
        )
    card = json.loads(state["card_json"])
    X = np.asarray(state["X_train"], dtype=float)
    y = np.asarray(state["y_train"], dtype=float)
    if card.get("training_data_sha256") != training_hash(X, y):
        raise ModelLoadError(f"{path}: training data do not match the hash in the model card")
    kind = state["kind"]
    if kind not in ("gp", "forest"):
        raise ModelLoadError(f"{path}: unknown model kind {kind!r}")
    fitted = _Fitted(kind, state["scaler"], state["model"], float(state["noise_var"]),
                     float(state["std_inflation"]))
    lo, hi = state["bounds"]
    transform = _Transform(None if state["transform"] == "none" else state["transform"], lo, hi)
    saved_sklearn = card.get("versions", {}).get("scikit-learn")
    now = _versions()["scikit-learn"]
    if saved_sklearn and saved_sklearn != now:
        warnings.warn(
            f"{path} was trained with scikit-learn {saved_sklearn}, running {now}; "
            "predictions may differ slightly", UserWarning, stacklevel=2,
        )
    return Surrogate(fitted, transform, target=state["target"],
                     feature_names=state["feature_names"], X_train=X, y_train=y, card=card,
                     random_state=int(state["random_state"]))


# --- training ----------------------------------------------------------------------------------


def _resolve_transform(target: str, bounded: Bounded, y: np.ndarray,
                       bounds: tuple[float, float] | None) -> _Transform:
    known = bounds if bounds is not None else target_bounds(target)
    if bounded == "auto":
        bounded = "logit" if known is not None else None
    if bounded == "logit":
        if known is None:
            raise SurrogateError(
                f"bounded='logit' needs the bounds of target '{target}'; pass bounds=(lo, hi)"
            )
        lo, hi = float(known[0]), float(known[1])
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


def _cv_scores(kind: str, X: np.ndarray, y: np.ndarray, z: np.ndarray, transform: _Transform,
               splits: list[tuple[np.ndarray, np.ndarray]], scheme: str,
               random_state: int) -> dict[str, Any]:
    """Held-out RMSE/MAE (target units) and 68/95 % interval coverage."""
    n = len(y)
    mean = np.full(n, np.nan)
    inside = {68: np.zeros(n, bool), 95: np.zeros(n, bool)}
    used = np.zeros(n, bool)
    for train, test in splits:
        if len(train) < MIN_TRAIN:
            continue
        fitted = _fit_latent(kind, X[train], z[train], random_state, n_restarts=0)
        mu, sd = fitted.latent(X[test])
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


def train_surrogate(
    X: Any,
    y: Any,
    *,
    feature_names: Sequence[str],
    target: str,
    groups: Any = None,
    kind: Kind = "auto",
    bounded: Bounded = "auto",
    bounds: tuple[float, float] | None = None,
    random_state: int = 0,
    cv: bool = True,
    n_restarts: int = 2,
) -> Surrogate:
    """Train a surrogate for one target.

    Args:
        X: features, array of shape (n_train, d) (e.g. composition descriptors).
        y: target values in target units (PLQY in %, stability 0..1), shape (n_train,).
        feature_names: the d column names of X (kept in the card; checked at prediction).
        target: target name; selects default bounds ("plqy": 0..100, "stability": 0..1).
        groups: optional group label per row (e.g. the family); with more than one distinct
            group, leave-one-group-out CV is also run and drives the choice of model kind.
        kind: "gp", "forest" or "auto" (both, the lower CV RMSE wins).
        bounded: "logit", "log", None, or "auto" (logit when the target has bounds).
        bounds: (lo, hi) target bounds overriding the defaults.
        random_state: seed for CV splits, forests and GP optimizer restarts.
        cv: run cross-validation (needed for kind="auto"; off only for fast inner loops, and
            the card then says so in its warnings).
        n_restarts: GP optimizer restarts for the final fit.

    Raises:
        SurrogateError: bad shapes, non-finite values, fewer than MIN_TRAIN points, targets
            outside their bounds, unknown kind.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    names = list(feature_names)
    if X.ndim != 2:
        raise SurrogateError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if len(y) != len(X):
        raise SurrogateError(f"X has {len(X)} rows but y has {len(y)} values")
    if len(names) != X.shape[1]:
        raise SurrogateError(
            f"feature_names has {len(names)} names but X has {X.shape[1]} columns"
        )
    if len(y) < MIN_TRAIN:
        raise SurrogateError(f"need at least {MIN_TRAIN} training points, got {len(y)}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise SurrogateError("X and y must be finite (no NaN/inf); drop or impute missing values")
    if kind not in ("auto", "gp", "forest"):
        raise SurrogateError(f"kind must be 'auto', 'gp' or 'forest', not {kind!r}")
    if kind == "auto" and not cv:
        raise SurrogateError("kind='auto' chooses the model by cross-validation; set cv=True")
    g = None
    if groups is not None:
        g = np.asarray(groups).ravel()
        if len(g) != len(y):
            raise SurrogateError(f"groups has {len(g)} labels but y has {len(y)} values")
    transform = _resolve_transform(target, bounded, y, bounds)
    z = transform.forward(y)
    n = len(y)
    notes: list[str] = []

    kinds = ["gp", "forest"] if kind == "auto" else [kind]
    cv_random: dict[str, dict[str, Any]] = {}
    cv_grouped: dict[str, dict[str, Any]] = {}
    if cv:
        scheme, splits = _cv_splits(n, None, random_state, CV_FOLDS)
        for k in kinds:
            cv_random[k] = _cv_scores(k, X, y, z, transform, splits, scheme, random_state)
        if g is not None and len(np.unique(g)) > 1:
            gscheme, gsplits = _cv_splits(n, g, random_state, CV_FOLDS)
            for k in kinds:
                cv_grouped[k] = _cv_scores(k, X, y, z, transform, gsplits, gscheme, random_state)

    def score(k: str) -> float:
        src = cv_grouped.get(k) or cv_random.get(k) or {}
        r = src.get("rmse")
        return math.inf if r is None else float(r)

    chosen = min(kinds, key=score)
    fit_notes: list[str] = []
    fitted = _fit_latent(chosen, X, z, random_state, n_restarts, caught=fit_notes)
    notes.extend(f"fit: {m}" for m in fit_notes)

    if n < FEW_POINTS_THRESHOLD:
        notes.insert(0,
            f"only {n} training points (< {FEW_POINTS_THRESHOLD}): CV error and calibration are "
            f"rough estimates; intervals are widened by a factor {fitted.std_inflation:.2f}"
        )
    if not cv:
        notes.append("no cross-validation was run: CV error and calibration are unknown")
    if transform.kind == "logit":
        clipped = int(np.sum((y - transform.lo) / (transform.hi - transform.lo) < LOGIT_EPS)
                      + np.sum((y - transform.lo) / (transform.hi - transform.lo) > 1 - LOGIT_EPS))
        if clipped:
            notes.append(f"{clipped} target value(s) at a bound were clipped to "
                         f"{LOGIT_EPS:g} of the range for the logit transform")
    main_cv = cv_random.get(chosen)
    grouped_rmse = (cv_grouped.get(chosen) or {}).get("rmse")
    if grouped_rmse is not None and main_cv and main_cv.get("rmse"):
        if grouped_rmse > 1.5 * main_cv["rmse"]:
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

    model_info: dict[str, Any]
    if chosen == "gp":
        model_info = {"kernel": str(fitted.model.kernel_),
                      "log_marginal_likelihood": float(fitted.model.log_marginal_likelihood_value_)}
    else:
        model_info = {"n_estimators": N_TREES,
                      "oob_noise_std_latent": math.sqrt(fitted.noise_var)}
    card: dict[str, Any] = {
        "schema": "matdb.surrogate-card/1",
        "target": target,
        "unit": _target_unit(target),
        "transform": transform.kind,
        "bounds": [transform.lo, transform.hi] if transform.kind == "logit" else None,
        "kind": chosen,
        "kind_requested": kind,
        "model": model_info,
        "cv": main_cv,
        "cv_grouped": cv_grouped.get(chosen),
        "cv_all_kinds": {"random": cv_random, "grouped": cv_grouped},
        "calibration": calibration,
        "std_inflation": fitted.std_inflation,
        "feature_names": names,
        "n_features": X.shape[1],
        "n_train": n,
        "n_groups": int(len(np.unique(g))) if g is not None else None,
        "training_data_sha256": training_hash(X, y),
        "random_state": random_state,
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "warnings": notes,
    }
    return Surrogate(fitted, transform, target=target, feature_names=names, X_train=X.copy(),
                     y_train=y.copy(), card=card, random_state=random_state)
