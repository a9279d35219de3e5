"""Objectives: one place decides what "better" means (max, min, closest to a target)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matdb.vocabulary import QUANTITIES, QuantityDef
from screening.objectives import Objective, ObjectiveError, parse_objective, parse_objectives

DECLARED = {**QUANTITIES, "instability_index": QuantityDef("instability_index", "", "Instability index", 0, None)}


@pytest.mark.parametrize(
    ("spec", "direction", "target"),
    [
        ("plqy", "max", None),  # the quantity's default direction
        ("plqy:max", "max", None),
        ("instability_index:min", "min", None),
        ("pl_peak:target=850", "target", (850.0, 850.0)),
        ("pl_peak:target=840..860", "target", (840.0, 860.0)),
        ("pl_peak : target = 8.5e2", "target", (850.0, 850.0)),
    ],
)
def test_specs_are_read(spec: str, direction: str, target: tuple[float, float] | None) -> None:
    o = parse_objective(spec, DECLARED)
    assert (o.direction, o.target) == (direction, target)
    assert parse_objective(o.spec, DECLARED) == o  # the text form reads back


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("nonsense:max", "unknown objective 'nonsense'"),
        ("plqy:sideways", "unknown direction 'sideways'"),
        ("instability_index", "no default direction: write instability_index:max"),
        ("phases_present:max", "categorical"),
        ("pl_peak:target=860..840", "window 860..840 is empty"),
        ("stability", "depends on the family"),
    ],
)
def test_bad_objectives_are_named(spec: str, pattern: str) -> None:
    with pytest.raises(ObjectiveError, match=pattern):
        parse_objective(spec, DECLARED)


def test_utility_orients_every_direction() -> None:
    y = np.array([800.0, 845.0, 850.0, 855.0, 900.0])
    assert parse_objective("pl_peak:max", DECLARED).utility(y).tolist() == y.tolist()
    assert parse_objective("pl_peak:min", DECLARED).utility(y).tolist() == (-y).tolist()
    assert parse_objective("pl_peak:target=850", DECLARED).utility(y).tolist() == [-50, -5, 0, -5, -50]
    assert parse_objective("pl_peak:target=845..855", DECLARED).utility(y).tolist() == [-45, 0, 0, 0, -45]


@given(st.floats(-5, 5), st.floats(0.01, 3), st.floats(-5, 5))
def test_expected_improvement_of_min_is_that_of_the_negated_max(mu: float, sd: float, best: float) -> None:
    lo = Objective("q", "q", "min").expected_improvement([mu], [sd], best)
    hi = Objective("q", "q", "max").expected_improvement([-mu], [sd], best)
    assert lo[0] == pytest.approx(hi[0], abs=1e-12)


def test_target_expected_improvement_matches_monte_carlo() -> None:
    o = Objective("q", "q", "target", (10.0, 12.0))
    rng = np.random.default_rng(0)
    for mu, sd, best in [(9.0, 1.0, -0.5), (15.0, 2.0, -1.0), (11.0, 0.5, -0.2)]:
        y = rng.normal(mu, sd, 400_000)
        mc = np.mean(np.maximum(o.utility(y) - best, 0.0))
        assert o.expected_improvement([mu], [sd], best)[0] == pytest.approx(mc, rel=0.01, abs=1e-3)


def test_objectives_need_distinct_names_and_sane_weights() -> None:
    with pytest.raises(ObjectiveError, match="given twice"):
        parse_objectives(["plqy:max", "plqy:min"], DECLARED)
    with pytest.raises(ObjectiveError, match="weight"):
        parse_objectives(["plqy", "pl_peak:min"], DECLARED, weights=[1.0])
    objs = parse_objectives(["plqy", "pl_peak:min"], DECLARED, weights=[2.0, 1.0])
    assert [o.weight for o in objs] == [2.0, 1.0]
    assert "lower is better" in objs[1].describe
