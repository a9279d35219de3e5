"""Linear constraints of a candidate space: ``sum_i c_i * v_i <= upper``.

The variables ``v_i`` are the space's columns (composition parameters and process variables).
A constraint a user writes on site fractions ("Cs <= 0.3", "FA >= 2*MA") is linear in the
family's parameters when the family's occupancy expressions are (every built-in is), so it is
stored here in parameter form. This module holds the representation shared by candidate
filtering (a vectorised mask) and continuous acquisition optimisation (``A x <= ub`` for scipy).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ConstraintError", "LinearConstraint", "as_matrix", "occupancy_constraints", "parse_constraint", "satisfied"]

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


# --- parsing what a user writes -----------------------------------------------------------------


class ConstraintError(ValueError):
    """A constraint that cannot be read or is not linear; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_SITE_REF = re.compile(r"\b([A-Za-z][A-Za-z0-9]*)\s*:\s*([A-Za-z][A-Za-z0-9_]*)\b")
_CMP = {ast.LtE: "<=", ast.Lt: "<=", ast.GtE: ">=", ast.Gt: ">=", ast.Eq: "=="}


@dataclass(frozen=True)
class _Affine:
    """``sum(coef[v] * v) + const`` over the space's variables."""

    coef: tuple[tuple[str, float], ...]
    const: float

    @classmethod
    def constant(cls, c: float) -> _Affine:
        return cls((), float(c))

    @classmethod
    def variable(cls, name: str) -> _Affine:
        return cls(((name, 1.0),), 0.0)

    @property
    def is_constant(self) -> bool:
        return all(c == 0.0 for _, c in self.coef)

    def _combine(self, other: _Affine, sign: float) -> _Affine:
        d = dict(self.coef)
        for k, c in other.coef:
            d[k] = d.get(k, 0.0) + sign * c
        return _Affine(tuple(sorted(d.items())), self.const + sign * other.const)

    def scale(self, f: float) -> _Affine:
        return _Affine(tuple((k, f * c) for k, c in self.coef), f * self.const)


def _affine(node: ast.AST, names: Mapping[str, _Affine], text: str) -> _Affine:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _Affine.constant(float(node.value))
    if isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(sorted(n for n in names if not n.startswith("__site__")))
            raise ConstraintError(f"constraint '{text}': unknown name '{node.id}' (known: {known})")
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _affine(node.operand, names, text)
        return v.scale(-1.0) if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _affine(node.left, names, text), _affine(node.right, names, text)
        if isinstance(node.op, ast.Add):
            return a._combine(b, 1.0)
        if isinstance(node.op, ast.Sub):
            return a._combine(b, -1.0)
        if isinstance(node.op, ast.Mult):
            if a.is_constant:
                return b.scale(a.const)
            if b.is_constant:
                return a.scale(b.const)
        if isinstance(node.op, ast.Div) and b.is_constant and b.const != 0:
            return a.scale(1.0 / b.const)
        raise ConstraintError(f"constraint '{text}' is not linear in the space's variables "
                              "(only sums, differences and multiples by numbers are allowed)")
    raise ConstraintError(f"constraint '{text}': cannot read '{ast.unparse(node)}'")


def _site_names(family: Any, variables: Sequence[str]) -> dict[str, _Affine]:
    """Site fractions of a family as affine functions of its parameters ("Cs", "X:I")."""
    if family is None:
        return {}
    params = {v: _Affine.variable(v) for v in variables}
    out: dict[str, _Affine] = {}
    count: dict[str, int] = {}
    for site, occ in family.sites.items():
        for sp, expr in occ.items():
            try:
                aff = _affine(expr._tree, params, expr.text)
            except ConstraintError:
                continue  # a non-linear occupancy cannot appear in a linear constraint
            out[f"__site__{site}__{sp}"] = aff
            count[sp] = count.get(sp, 0) + 1
            out.setdefault(sp, aff)
    for sp, n in count.items():
        if n > 1:
            out.pop(sp, None)  # on several sites: write SITE:species
    return out


def parse_constraint(text: str, variables: Sequence[str], family: Any = None) -> list[LinearConstraint]:
    """Read ``"a + b <= 0.9"``, ``"Cs <= 0.3"``, ``"FA >= 2*MA"`` or ``"X:I >= 0.5"`` into linear
    constraints over ``variables`` (an equality gives two). Species names are the family's site
    fractions (``SITE:species`` when a species sits on several sites)."""
    if not isinstance(text, str) or not text.strip():
        raise ConstraintError(f"a constraint must be text such as 'a + b <= 0.9', got {text!r}")
    src = _SITE_REF.sub(lambda m: f"__site__{m.group(1)}__{m.group(2)}", text.strip())
    try:
        tree = ast.parse(src, mode="eval").body
    except SyntaxError:
        raise ConstraintError(f"cannot read constraint '{text}': write e.g. 'a + b <= 0.9'") from None
    if not (isinstance(tree, ast.Compare) and len(tree.ops) == 1 and type(tree.ops[0]) in _CMP):
        raise ConstraintError(f"constraint '{text}' needs one comparison: <=, >= or ==")
    names: dict[str, _Affine] = {**_site_names(family, variables), **{v: _Affine.variable(v) for v in variables}}
    left = _affine(tree.left, names, text)
    right = _affine(tree.comparators[0], names, text)
    diff = left._combine(right, -1.0)  # left - right (op) 0
    if diff.is_constant:
        raise ConstraintError(f"constraint '{text}' does not involve any variable of the space")
    op = _CMP[type(tree.ops[0])]
    le = LinearConstraint.from_mapping(dict(diff.coef), -diff.const, text)
    ge = LinearConstraint.from_mapping({k: -c for k, c in diff.coef}, diff.const, text)
    return {"<=": [le], ">=": [ge], "==": [le, ge]}[op]


def occupancy_constraints(family: Any, variables: Sequence[str]) -> list[LinearConstraint]:
    """``0 <= occupancy <= 1`` for every site species (and composite component) whose expression is
    linear in the family's parameters and not constant: the simplex of a mixed site as linear
    constraints (``a + b <= 1`` for A: {Cs: a, FA: b, MA: 1-a-b}), so continuous search stays on it."""
    params = {v: _Affine.variable(v) for v in variables}
    exprs = [(f"{site}:{sp}", e) for site, occ in family.sites.items() for sp, e in occ.items()]
    exprs += [(f"component {c}", e) for c, e in family.components.items()]
    out: list[LinearConstraint] = []
    for label, expr in exprs:
        try:
            aff = _affine(expr._tree, params, expr.text)
        except ConstraintError:
            continue
        if aff.is_constant:
            continue
        coef = dict(aff.coef)
        out.append(LinearConstraint.from_mapping({k: -c for k, c in coef.items()}, aff.const,
                                                 f"{label} >= 0 ({expr.text})"))
        out.append(LinearConstraint.from_mapping(coef, 1.0 - aff.const, f"{label} <= 1 ({expr.text})"))
    return out
