"""Linear constraints of candidate spaces: the mask and the matrix form agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from screening.constraints import LinearConstraint, as_matrix, satisfied


def test_mask_keeps_rows_on_and_below_the_bound() -> None:
    c = LinearConstraint.from_mapping({"a": 1.0, "b": 1.0}, 0.9, "a + b <= 0.9")
    df = pd.DataFrame({"a": [0.1, 0.45, 0.5], "b": [0.2, 0.45, 0.5]})
    assert satisfied([c], df).tolist() == [True, True, False]
    assert c.names == ["a", "b"]


def test_matrix_names_missing_columns() -> None:
    c = LinearConstraint.from_mapping({"a": 1.0, "zz": -2.0}, 0.0)
    with pytest.raises(KeyError, match="zz"):
        as_matrix([c], ["a", "b"])


@given(st.lists(st.floats(-3, 3), min_size=3, max_size=3), st.floats(-2, 2),
       st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_matrix_form_equals_mask(coef: list[float], upper: float, x: list[float]) -> None:
    c = LinearConstraint.from_mapping(dict(zip("abc", coef, strict=True)), upper)
    A, ub = as_matrix([c], ["a", "b", "c"])
    df = pd.DataFrame([x], columns=list("abc"))
    lhs = float((A @ np.asarray(x))[0])
    assert c.lhs(df)[0] == pytest.approx(lhs, abs=1e-12)
    assert bool(satisfied([c], df)[0]) == (lhs <= ub[0] + 1e-9)
