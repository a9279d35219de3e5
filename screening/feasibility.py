"""p(feasible): will this composition/process form the intended perovskite at all?

Samples recorded as failed (``outcome`` other than ``ok``: no perovskite, wrong or mixed phase,
decomposed, amorphous) teach a Gaussian-process classifier on the same unit-scaled features as the
surrogate; its probability weights the acquisition, so proposals move away from regions where
syntheses fail without ruling out what has not been tried. Known constraints (tolerance-factor
window, user limits) stay hard filters elsewhere; this model covers what nobody knew beforehand.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["FeasibilityModel"]

#: Length-scale bounds of the classifier, in units of the domain (as the surrogate's).
LENGTH_SCALE_BOUNDS = (0.05, 2.0)


class FeasibilityModel:
    """Probability that a synthesis at a point succeeds, from recorded outcomes.

    Parameters:
        random_state: seed of the classifier's optimiser restarts.

    Fitted attributes: ``n_failed_``, ``n_ok_``, ``classifier_`` (None when one class is missing:
    then ``p_`` is the observed success rate, with Laplace's rule, for every point).
    """

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, X_unit: Any, feasible: Any) -> FeasibilityModel:
        X = np.asarray(X_unit, dtype=float)
        f = np.asarray(feasible, dtype=bool).ravel()
        self.n_ok_, self.n_failed_ = int(f.sum()), int((~f).sum())
        self.classifier_ = None
        self.p_ = (self.n_ok_ + 1) / (len(f) + 2)
        if self.n_ok_ and self.n_failed_:
            from sklearn.gaussian_process import GaussianProcessClassifier
            from sklearn.gaussian_process.kernels import ConstantKernel, Matern

            kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
                length_scale=np.full(X.shape[1], 0.3), length_scale_bounds=LENGTH_SCALE_BOUNDS, nu=2.5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.classifier_ = GaussianProcessClassifier(
                    kernel, n_restarts_optimizer=1, random_state=self.random_state).fit(X, f.astype(int))
        return self

    def predict(self, X_unit: Any) -> np.ndarray:
        """p(feasible) for each row, shape (n,)."""
        X = np.asarray(X_unit, dtype=float)
        if self.classifier_ is None:
            return np.full(len(X), 1.0 if not self.n_failed_ else self.p_)
        return self.classifier_.predict_proba(X)[:, 1]

    @property
    def active(self) -> bool:
        """Whether any failure has been recorded (otherwise every point counts as feasible)."""
        return self.n_failed_ > 0
