"""p(feasible): will this composition/process form the intended perovskite at all?

Samples recorded as failed (``outcome`` other than ``ok``: no perovskite, wrong or mixed phase,
decomposed, amorphous) teach a Gaussian-process classifier on the same unit-scaled features as the
surrogate; its probability weights the acquisition, so proposals move away from regions where
syntheses fail without ruling out what has not been tried. Known constraints (tolerance-factor
window, user limits) stay hard filters elsewhere; this model covers what nobody knew beforehand.

The probability is the plug-in estimate sigma(E[f]) of the classifier's latent function (what
scikit-learn's ``predict`` thresholds), not ``predict_proba``'s average of the sigmoid over the
Laplace posterior: with the latent variance that a handful of outcomes leaves, that average pulls
every value towards 1/2 — 0.17 next to a recorded failure with four of four syntheses failed around
it, 0.82 inside a run of successes — so a large expected improvement in a region that keeps failing
outweighed the failures. The plug-in is 0.01 there and 1/2 on the boundary between outcomes and
far from all data (the latent's prior mean is 0), where the optimum of a material often lies.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import expit

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
        # the Laplace posterior mean of the latent at X (binary case: the fitted estimator's
        # y_train_ - pi_ are the likelihood gradients at the mode), as in scikit-learn's predict
        est = self.classifier_.base_estimator_
        f = est.kernel_(X, est.X_train_) @ (est.y_train_ - est.pi_)
        return expit(f)

    @property
    def active(self) -> bool:
        """Whether any failure has been recorded (otherwise every point counts as feasible)."""
        return self.n_failed_ > 0
