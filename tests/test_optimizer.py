"""The proposer: initial designs, continuous constrained search, resolution, feasibility,
lab-shaped batches, extrapolation and trust regions (screening.optimizer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist

from screening.objectives import Objective
from screening.optimizer import Domain, Optimizer, OptimizerError, Variable, replicate_noise, suggest

X_T = [Variable("X", 0.01, 0.85, resolution=0.01), Variable("T", 150.0, 350.0, resolution=5.0)]


def bump(df: pd.DataFrame) -> np.ndarray:
    """A sharp optimum at X = 0.623, T = 262 (off any 0.05 x 25 degC grid) over a broad slope."""
    u = (df["X"] - 0.623) / 0.08
    v = (df["T"] - 262.0) / 30.0
    return 100 * np.exp(-0.5 * (u**2 + v**2)) + 10 * df["X"].to_numpy()


def test_zero_results_give_a_space_filling_initial_design() -> None:
    dom = Domain(X_T)
    made = pd.DataFrame({"X": [0.3], "T": [200.0]})
    s = suggest(dom, made, {"y": np.array([np.nan])}, [Objective("y", "y")], 6)
    assert s.design == "initial_design"
    assert (s.table["design"] == "initial_design").all()
    assert len(s.table) == 6 and dom.feasible(s.table).all()
    U = dom.unit(s.table)
    assert pdist(U).min() > 0.2  # spread: six random points are closer than this most of the time
    assert np.linalg.norm(U - dom.unit(made), axis=1).min() > 0.1  # away from what was made
    assert "initial design" in s.messages[0]


def test_proposals_are_on_the_lab_resolution_and_respect_linear_constraints() -> None:
    variables = [Variable("a", 0.0, 0.6, resolution=0.01), Variable("b", 0.0, 0.9, resolution=0.01),
                 Variable("T", 100.0, 300.0, resolution=5.0)]
    opt = Optimizer(variables, constraints=["a + b <= 0.9", "a - b <= 0.2"], seed=1)
    rng = np.random.default_rng(0)
    X0 = pd.DataFrame({"a": [0.1, 0.3, 0.2, 0.05], "b": [0.2, 0.5, 0.1, 0.8], "T": [150.0, 250.0, 200.0, 120.0]})
    opt.tell(X0, X0["a"] * 10 + rng.normal(0, 0.1, 4))
    for _ in range(2):
        batch = opt.ask(4)
        assert ((batch["a"] + batch["b"]) <= 0.9 + 1e-9).all()
        assert ((batch["a"] - batch["b"]) <= 0.2 + 1e-9).all()
        assert np.allclose(np.round(batch["a"] / 0.01), batch["a"] / 0.01)
        assert np.allclose(np.round((batch["T"] - 100) / 5), (batch["T"] - 100) / 5)
        assert not batch[["a", "b", "T"]].duplicated().any()
        made = pd.concat([opt.X, batch[["a", "b", "T"]]], ignore_index=True)
        assert not made.duplicated().any(), "a made experiment was proposed again"
        opt.tell(batch[["a", "b", "T"]], batch["a"] * 10)


def test_continuous_search_finds_an_optimum_between_grid_points() -> None:
    opt = Optimizer(X_T, seed=3)
    start = pd.DataFrame({"X": [0.1, 0.4, 0.8, 0.2], "T": [170.0, 300.0, 200.0, 340.0]})
    opt.tell(start, bump(start))
    best = bump(start).max()
    for _ in range(10):
        b = opt.ask(4)[["X", "T"]]
        y = bump(b)
        opt.tell(b, y)
        best = max(best, float(y.max()))
        if best >= 0.9 * (100 + 6.23):
            break
    assert best >= 0.9 * (100 + 6.23), f"best {best:.1f} after {len(opt.y)} experiments"


def test_a_lower_is_better_objective_is_minimised() -> None:
    opt = Optimizer([Variable("x", 0.0, 1.0, resolution=0.001)], direction="min", seed=0)
    f = lambda df: (df["x"].to_numpy() - 0.3) ** 2 + 1.0  # noqa: E731
    X0 = pd.DataFrame({"x": [0.0, 0.5, 1.0, 0.8]})
    opt.tell(X0, f(X0))
    for _ in range(4):
        b = opt.ask(2)[["x"]]
        opt.tell(b, f(b))
    assert abs(float(opt.X.loc[np.argmin(opt.y), "x"]) - 0.3) < 0.05


def test_failed_syntheses_lower_p_feasible_and_steer_proposals_away() -> None:
    opt = Optimizer([Variable("x", 0.0, 1.0, resolution=0.01)], seed=0)
    x = np.linspace(0, 1, 11)
    ok = x < 0.65  # synthesis fails from x = 0.7 on
    y = np.where(ok, 10 * x, np.nan)  # the objective would keep rising into the failing region
    opt.tell(pd.DataFrame({"x": x}), y, ok)
    batch = opt.ask(3)
    assert (batch["p_feasible"] < 1).all()
    assert (batch["x"] < 0.72).all(), batch
    from screening.feasibility import FeasibilityModel

    fm = FeasibilityModel().fit(x[:, None], ok)
    assert fm.predict(np.array([[0.2]]))[0] > 0.7 > fm.predict(np.array([[0.95]]))[0]


def test_p_feasible_is_confident_among_failures_and_even_on_the_boundary() -> None:
    """The plug-in probability: next to a recorded failure with four of four failed around it, a
    synthesis is unlikely (the posterior average said 0.17); half-way between the last success and
    the first failure it is an even chance; and where nothing was tried it is the prior's 1/2."""
    from screening.feasibility import FeasibilityModel

    x = np.linspace(0, 1, 11)
    fm = FeasibilityModel().fit(x[:, None], x < 0.65)
    p = fm.predict(np.array([[0.99], [0.65], [0.3]]))
    assert p[0] < 0.05
    assert p[1] == pytest.approx(0.5, abs=0.1)
    assert p[2] > 0.95
    X2 = np.column_stack([x, np.zeros_like(x)])  # the same outcomes along one edge of a square
    far = FeasibilityModel().fit(X2, x < 0.65).predict(np.array([[0.5, 1.0]]))[0]
    assert far == pytest.approx(0.5, abs=0.15)


def test_slots_pin_the_shared_variable_within_each_run() -> None:
    variables = [Variable("x", 0.0, 0.8, resolution=0.01), Variable("milling_time", 5.0, 120.0, resolution=1.0)]
    opt = Optimizer(variables, slots=2, shared=("milling_time",), seed=2)
    X0 = pd.DataFrame({"x": [0.1, 0.5, 0.7, 0.3], "milling_time": [10.0, 60.0, 100.0, 30.0]})
    opt.tell(X0, X0["x"] * 5 + X0["milling_time"] / 50)
    batch = opt.ask(4)
    assert batch["run"].tolist() == [1, 1, 2, 2]
    for _, run in batch.groupby("run"):
        assert run["milling_time"].nunique() == 1
        assert run["x"].nunique() == 2  # compositions differ within a run


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n": 3, "slots": 2}, "--slots 2 does not divide the batch of 3"),
        ({"n": 4, "slots": 2, "shared": ("frequency",)}, "--shared frequency: not a variable"),
        ({"n": 0}, "positive integer"),
        ({"n": 2, "trust_region": -1.0}, "trust-region"),
    ],
)
def test_bad_batch_requests_are_named(kwargs: dict, pattern: str) -> None:
    dom = Domain(X_T)
    with pytest.raises(OptimizerError, match=pattern):
        suggest(dom, pd.DataFrame(columns=["X", "T"]), {"y": np.zeros(0)}, [Objective("y", "y")], **kwargs)


def test_fixed_values_outside_bounds_and_empty_spaces_are_named() -> None:
    with pytest.raises(OptimizerError, match="--fixed T=500 is outside its range 150..350"):
        Domain(X_T, fixed={"T": 500.0})
    dom = Domain(X_T, constraints=["X >= 0.5", "X + 0.001*T <= 0.6"])
    with pytest.raises(OptimizerError, match="the constraint 'X \\+ 0.001\\*T <= 0.6' leaves no candidates"):
        suggest(dom, pd.DataFrame(columns=["X", "T"]), {"y": np.zeros(0)}, [Objective("y", "y")], 2)


def test_extrapolation_is_reported_and_a_trust_region_keeps_proposals_near_the_data() -> None:
    dom = Domain([Variable("x", 0.0, 1.0, resolution=0.01), Variable("y", 0.0, 1.0, resolution=0.01)])
    X0 = pd.DataFrame({"x": [0.1, 0.15, 0.2, 0.12, 0.18], "y": [0.1, 0.2, 0.15, 0.12, 0.18]})
    Y = {"v": (X0["x"] + X0["y"]).to_numpy()}  # rises towards the far corner
    free = suggest(dom, X0, Y, [Objective("v", "v")], 3, seed=0).table
    assert free["extrapolating"].any()
    near = suggest(dom, X0, Y, [Objective("v", "v")], 3, trust_region=0.1, seed=0).table
    assert (near["extrapolation"] <= 0.1 + 1e-9).all()


def test_replicates_give_the_noise_of_a_mean() -> None:
    X = np.array([[0.1], [0.1], [0.1], [0.5], [0.5], [0.9]])
    y = np.array([1.0, 1.2, 0.8, 3.0, 3.4, 5.0])
    Xu, ym, noise = replicate_noise(X, y)
    assert sorted(ym.tolist()) == pytest.approx([1.0, 3.2, 5.0])
    pooled = np.sqrt((0.04 + 0.0 + 0.04 + 0.04 + 0.04) / 3)
    assert noise == pytest.approx(pooled / np.sqrt(6 / 3))


def test_a_pool_restricts_proposals_to_its_rows_and_never_repeats_one() -> None:
    dom = Domain([Variable("a", 0.0, 1.0), Variable("b", 0.0, 1.0)], constraints=["a + b <= 1"])
    grid = np.array([(a, b) for a in np.linspace(0, 1, 9) for b in np.linspace(0, 1, 9) if a + b <= 1 + 1e-9])
    pool = pd.DataFrame(grid, columns=["a", "b"])
    made = pool.iloc[[0, 10, 20, 30]].reset_index(drop=True)
    y = {"q": (made["a"] - made["b"]).to_numpy()}
    t = suggest(dom, made, y, [Objective("q", "q", "min")], 5, pool=pool, seed=0).table
    keys = {tuple(r) for r in pool.to_numpy().round(9)}
    assert all(tuple(r) in keys for r in t[["a", "b"]].to_numpy().round(9))
    assert not set(map(tuple, t[["a", "b"]].to_numpy().round(9))) & set(map(tuple, made.to_numpy().round(9)))
    assert not t[["a", "b"]].duplicated().any()


def test_a_share_of_each_batch_explores_by_thompson_sampling() -> None:
    """Batches end with exploration picks (a joint posterior draw of the short-range model), and
    the batch stays diverse: no two picks coincide."""
    from screening import optimizer

    opt = Optimizer(X_T, seed=5)
    start = pd.DataFrame({"X": [0.1, 0.4, 0.8, 0.2, 0.6], "T": [170.0, 300.0, 200.0, 340.0, 250.0]})
    opt.tell(start, bump(start))
    b = opt.ask(4)
    n_explore = max(1, round(optimizer.EXPLORE_SHARE * 4))
    assert list(b["pick"]) == ["exploit"] * (4 - n_explore) + ["explore"] * n_explore
    assert pdist(opt.domain.unit(b)).min() > 0


def test_a_pick_that_falls_back_to_exploration_is_labelled_explore() -> None:
    """When no expected improvement is worth a measurement (a flat, well-measured response), the
    picks are chosen by Thompson sampling and plan.csv's ``pick`` says so, not "exploit"."""
    opt = Optimizer(X_T, seed=3)
    grid = pd.DataFrame([(x, t) for x in np.linspace(0.05, 0.8, 6) for t in np.linspace(160, 340, 6)],
                        columns=["X", "T"])
    opt.tell(grid, np.full(len(grid), 20.0))
    b = opt.ask(2)  # below EXPLORE_FROM: no pick is an exploration pick by position
    assert list(b["pick"]) == ["explore", "explore"], b
