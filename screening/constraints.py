"""Linear constraints of a candidate space: ``sum_i c_i * v_i <= upper``.

The variables ``v_i`` are the space's columns (composition parameters and process variables).
A constraint a user writes on site fractions ("Cs <= 0.3", "FA >= 2*MA") is linear in the
family's parameters when the family's occupancy expressions are (every built-in is), so it is
stored here in parameter form. This module holds the representation shared by candidate
filtering (a vectorised mask) and continuous acquisition optimisation (``A x <= ub`` for scipy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LinearConstraint", "as_matrix", "satisfied"]

#: Slack allowed when checking a constraint on stored or rounded values.
CONSTRAINT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LinearConstraint:
    """``sum(coefficients[name] * value[name]) <= upper``; ``text`` is what the user wrote."""

    coefficients: tuple[tuple[str, float], ...]
    upper: float
    text: str = ""

    @classmethod
    def from_mapping(cls, coefficients: Mapping[str, float], upper: float, text: str = "") -> LinearConstraint:
        return cls(tuple(sorted((str(k), float(v)) for k, v in coefficients.items() if v != 0.0)),
                   float(upper), text)

    @property
    def names(self) -> list[str]:
        return [k for k, _ in self.coefficients]

    def lhs(self, df: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """Left-hand side for every row of a candidate frame (or a mapping of columns)."""
        first = next(iter(df.values())) if isinstance(df, Mapping) else None
        n = len(df) if first is None else len(np.atleast_1d(first))
        out = np.zeros(n)
        for name, c in self.coefficients:
            out = out + c * np.asarray(df[name], dtype=float)
        return out

    def satisfied(self, df: pd.DataFrame | Mapping[str, np.ndarray],
                  tol: float = CONSTRAINT_TOLERANCE) -> np.ndarray:
        return self.lhs(df) <= self.upper + tol


def satisfied(constraints: Sequence[LinearConstraint], df: pd.DataFrame,
              tol: float = CONSTRAINT_TOLERANCE) -> np.ndarray:
    """Bool (n,): rows of ``df`` that satisfy every constraint."""
    ok = np.ones(len(df), bool)
    for c in constraints:
        ok &= c.satisfied(df, tol)
    return ok


def as_matrix(constraints: Sequence[LinearConstraint], columns: Sequence[str]
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(A, ub)`` with ``A @ x <= ub`` over ``columns`` (for ``scipy.optimize.LinearConstraint``).

    A constraint naming a variable that is not a column (fixed or absent) raises ``KeyError``.
    """
    index = {c: i for i, c in enumerate(columns)}
    A = np.zeros((len(constraints), len(columns)))
    ub = np.zeros(len(constraints))
    for r, con in enumerate(constraints):
        for name, c in con.coefficients:
            A[r, index[name]] = c
        ub[r] = con.upper
    return A, ub
