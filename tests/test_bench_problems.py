"""The decision benchmark's simulated labs (bench/problems.py): deterministic, optimum right, failures
and constraints honoured. Imports no peer optimiser."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.problems import HIT_FRACTION, PROBLEMS  # noqa: E402

NAMES = list(PROBLEMS)


@pytest.mark.parametrize("name", NAMES)
def test_the_truth_and_the_starts_are_deterministic(name: str) -> None:
    p = PROBLEMS[name]
    X = p.start(3)
    np.testing.assert_array_equal(X, p.start(3))
    assert not np.array_equal(X, p.start(4))
    np.testing.assert_array_equal(p.truth(X), p.truth(X.copy()))
    y1, ok1 = p.measure(X, np.random.default_rng(0))
    y2, ok2 = p.measure(X, np.random.default_rng(0))
    np.testing.assert_array_equal(ok1, ok2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("name", NAMES)
def test_the_optimum_is_made_able_and_beats_a_dense_random_sample(name: str) -> None:
    p = PROBLEMS[name]
    x, f = p.optimum
    assert p.in_domain(x)[0] and p.ok(x)[0]
    np.testing.assert_allclose(p.round(x)[0], x)
    X = p.sample(20_000, np.random.default_rng(1))
    assert p.value(X).max() <= f + 1e-9
    assert 0 < p.hit_area < 0.01  # hard on purpose: random search needs hundreds of experiments


def test_composite_optimum_lies_between_the_coarse_grid_points() -> None:
    p = PROBLEMS["composite2d"]
    grid = np.array([[x, t] for x in np.arange(0.05, 0.851, 0.05) for t in np.arange(150, 351, 25)])
    assert p.value(grid).max() < HIT_FRACTION * p.f_star
    decoy = p.value(np.array([[0.72, 190.0]]))[0]
    assert decoy / p.f_star == pytest.approx(0.57, abs=0.03)


def test_failed_syntheses_give_no_value_and_a_failed_outcome() -> None:
    p = PROBLEMS["infeasible3d"]
    X = np.array([[0.55, 0.1, 150.0], [0.1, 0.5, 150.0]])
    y, ok = p.measure(X, np.random.default_rng(0))
    assert ok.tolist() == [False, True]
    assert np.isnan(y[0]) and np.isfinite(y[1])
    assert p.value(X)[0] == 0.0
    # the response surface keeps rising into the failing region: the optimum is on its boundary
    peak = np.array([[0.40, 0.30, 200.0]])
    assert p.truth(peak)[0] > p.f_star and not p.ok(peak)[0]


def test_the_constraint_holds_for_samples_starts_optimum_and_repairs() -> None:
    p = PROBLEMS["constrained4d"]
    assert p.constraint_text == ["a + b <= 0.9"]
    x = p.optimum[0]
    assert x[0] + x[1] == pytest.approx(0.9, abs=0.02)
    X = p.sample(500, np.random.default_rng(2))
    assert np.all(X[:, 0] + X[:, 1] <= 0.9 + 1e-9)
    bad = np.array([[0.8, 0.8, 30.0, 150.0], [0.2, 0.3, 30.0, 150.0]])
    made, changed = p.repair(bad)
    assert changed == 1
    assert np.all(made[:, 0] + made[:, 1] <= 0.9 + 1e-9)
    np.testing.assert_allclose(made[1], bad[1])


def test_slots_share_the_milling_time_within_a_run() -> None:
    p = PROBLEMS["slots3d"]
    t = p.names.index("milling_time_min")
    for X in (
        p.start(0),
        p.sample(8, np.random.default_rng(5)),
        p.repair(np.array([[0.1, 0.1, 10], [0.2, 0.2, 90], [0.3, 0.3, 12], [0.4, 0.4, 80]]))[0],
    ):
        runs = X[: len(X) // 2 * 2, t].reshape(-1, 2)
        assert np.all(runs[:, 0] == runs[:, 1])


@pytest.mark.parametrize("name", NAMES)
def test_measurement_noise_is_the_stated_fraction_of_the_optimum(name: str) -> None:
    p = PROBLEMS[name]
    x = p.optimum[0][None].repeat(400, axis=0)
    y, _ = p.measure(x, np.random.default_rng(3))
    assert np.std(y) / p.f_star == pytest.approx(p.noise, rel=0.2)
