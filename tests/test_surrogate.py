"""Surrogate models: uncertainty, bounded targets, model cards and safe persistence."""

from __future__ import annotations

import json
import pickle
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from screening.surrogate import (
    FEW_POINTS_THRESHOLD,
    ModelLoadError,
    SurrogateError,
    card_path,
    load_surrogate,
    train_surrogate,
    training_hash,
)


@cache
def sine_problem(n: int = 80, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 2 * np.pi, (n, 1))
    return X, np.sin(X[:, 0]) + rng.normal(0, 0.1, n)


@cache
def sine_gp():
    X, y = sine_problem()
    return train_surrogate(X, y, feature_names=["x"], target="y", kind="gp", bounded=None,
                           n_restarts=0)


@cache
def plqy_model(kind: str = "gp"):
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 1, (24, 2))
    # steep sigmoid: values close to 0 and to 100 %, some exactly at the bounds
    y = 100 / (1 + np.exp(-12 * (X[:, 0] - 0.5)))
    y[:2] = [0.0, 100.0]
    return train_surrogate(X, y, feature_names=["a", "b"], target="plqy", kind=kind,
                           n_restarts=0)


def test_gp_calibration_on_known_noise():
    """y = sin(x) + N(0, 0.1^2): 68 % intervals hold ~68 % of fresh and held-out points."""
    s = sine_gp()
    card = s.card_
    assert card["kind"] == "gp"
    assert card["calibration"]["68"]["reliable"] is True
    assert 0.55 <= card["cv"]["coverage_68"] <= 0.80
    assert 0.88 <= card["cv"]["coverage_95"] <= 1.0
    # CV error close to the noise level (0.1)
    assert 0.07 <= card["cv"]["rmse"] <= 0.15
    rng = np.random.default_rng(99)
    Xt = rng.uniform(0.2, 2 * np.pi - 0.2, (2000, 1))
    yt = np.sin(Xt[:, 0]) + rng.normal(0, 0.1, len(Xt))
    lo, hi = s.predict_interval(Xt, 0.68)
    # band: with n = 80 the fitted noise std is itself uncertain by ~8 % (-> ~+-0.05 coverage)
    assert np.mean((yt >= lo) & (yt <= hi)) == pytest.approx(0.68, abs=0.1)
    lo95, hi95 = s.predict_interval(Xt, 0.95)
    assert np.mean((yt >= lo95) & (yt <= hi95)) == pytest.approx(0.95, abs=0.04)
    mean, std = s.predict(Xt, return_std=True)
    assert np.sqrt(np.mean((mean - np.sin(Xt[:, 0])) ** 2)) < 0.06
    assert np.median(std) == pytest.approx(0.1, rel=0.3)  # noise-dominated predictive std


def test_gp_fast_prediction_equals_sklearn():
    s = sine_gp()
    lat = s.latent_
    Xt = np.linspace(-1, 8, 9001)[:, None]  # more rows than one prediction block
    ref_mu, ref_sd = lat.model.predict(s.scaled(Xt), return_std=True)
    mu, sd = s.predict_latent(Xt)
    assert np.allclose(mu, ref_mu * lat.z_std + lat.z_mean, atol=1e-10)
    assert np.allclose(sd, ref_sd * lat.z_std * s.std_inflation_, atol=1e-8)


def test_joint_posterior_draws_have_the_predicted_moments():
    """Thompson draws: over many draws, their mean and std at a point are the GP's prediction (noise-free),
    and draws at two nearby points move together (a joint draw, not independent noise)."""
    s = plqy_model()
    Xt = np.array([[0.3, 0.4], [0.31, 0.4], [1.5, 1.5]])  # two close points and one far from the data
    mu, sd = s.predict_latent(Xt, noise=False)
    rng = np.random.default_rng(0)
    D = np.array([s.sample_latent(Xt, rng) for _ in range(4000)])
    assert D.mean(axis=0) == pytest.approx(mu, abs=4 * sd.max() / np.sqrt(4000))
    assert D.std(axis=0) == pytest.approx(sd, rel=0.06)
    assert np.corrcoef(D[:, 0], D[:, 1])[0, 1] > 0.95


def test_unwidened_std_drops_the_few_points_factor():
    s = plqy_model()
    assert s.std_inflation_ > 1
    X = np.array([[0.2, 0.7]])
    assert s.predict_latent(X, widen=False)[1] * s.std_inflation_ == pytest.approx(s.predict_latent(X)[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)),
              elements=st.floats(-1e4, 1e4, allow_nan=False)),
       st.sampled_from(["gp", "forest"]),
       st.floats(0.01, 0.999))
def test_logit_plqy_predictions_stay_within_0_100(X, kind, level):
    s = plqy_model(kind)
    mean, std = s.predict(X, return_std=True)
    lo, hi = s.predict_interval(X, level)
    for arr in (mean, lo, hi):
        assert np.all(np.isfinite(arr))
        assert np.all((arr >= 0.0) & (arr <= 100.0))
    assert np.all(std >= 0) and np.all(std <= 50.0 + 1e-9)  # std of a 0..100 variable
    assert np.all(lo <= hi)


def test_logit_back_transform_moments():
    """Mean/std are moments of the back-transformed distribution (checked by Monte Carlo)."""
    s = plqy_model("gp")
    X = np.array([[0.5, 0.5], [0.9, 0.1], [0.05, 0.9]])
    mean, std = s.predict(X, return_std=True)
    mu, sd = s.predict_latent(X)
    rng = np.random.default_rng(0)
    draws = 100 / (1 + np.exp(-(mu + sd * rng.standard_normal((200_000, 3)))))
    assert mean == pytest.approx(draws.mean(axis=0), abs=0.15)
    assert std == pytest.approx(draws.std(axis=0), abs=0.15)
    # the 95 % interval is the back-transformed latent interval: asymmetric near the bounds
    lo, hi = s.predict_interval(X, 0.95)
    assert lo == pytest.approx(np.quantile(draws, 0.025, axis=0), rel=0.02, abs=0.05)
    assert hi == pytest.approx(np.quantile(draws, 0.975, axis=0), rel=0.02, abs=0.05)


def test_log_transform_keeps_predictions_positive():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, (30, 1))
    y = np.exp(3 * X[:, 0] - 1) * np.exp(rng.normal(0, 0.05, 30))
    s = train_surrogate(X, y, feature_names=["t"], target="pl_lifetime", kind="gp", bounded="log")
    mean, std = s.predict(np.linspace(-5, 5, 50)[:, None], return_std=True)
    assert np.all(mean > 0) and np.all(std > 0)
    with pytest.raises(SurrogateError, match="positive"):
        train_surrogate(X, y - 10, feature_names=["t"], target="pl_lifetime", bounded="log")


def test_few_points_warning_and_wide_intervals():
    X = np.array([[0.1], [0.3], [0.5], [0.7], [0.9]])
    y = np.array([10.0, 30.0, 50.0, 40.0, 20.0])
    s = train_surrogate(X, y, feature_names=["x"], target="plqy", kind="gp")
    card = s.card_
    assert card["n_train"] == 5
    assert any("only 5 training points" in w for w in card["warnings"])
    assert card["std_inflation"] == pytest.approx(np.sqrt(FEW_POINTS_THRESHOLD / 5))
    assert card["cv"]["scheme"] == "LeaveOneOut"
    cal = card["calibration"]["68"]
    assert cal["reliable"] is False and cal["n_heldout"] == 5
    assert cal["ci95"][1] - cal["ci95"][0] > 0.4  # 5 points cannot pin calibration down
    assert any("not a reliable calibration claim" in w for w in card["warnings"])
    lo, hi = s.predict_interval(np.array([[0.5]]), 0.95)
    assert hi[0] - lo[0] > 20  # no false precision at a training point
    big = sine_gp()
    assert not any("training points" in w for w in big.card_["warnings"])


def test_model_card_contents():
    X, y = sine_problem()
    s = sine_gp()
    card = s.card_
    for key in ("target", "kind", "feature_names", "training_data_sha256", "n_train", "versions",
                "created", "cv", "calibration", "warnings"):
        assert key in card
    assert card["training_data_sha256"] == training_hash(X, y)
    assert card["feature_names"] == ["x"] and card["n_train"] == 80
    assert {"scikit-learn", "numpy", "matdb"} <= set(card["versions"])
    assert card["cv"]["scheme"].startswith("KFold")
    json.dumps(card)  # JSON-serialisable


def test_auto_kind_with_grouped_cv():
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (40, 2))
    y = 50 + 30 * np.sin(3 * X[:, 0]) + rng.normal(0, 2, 40)
    groups = np.where(X[:, 1] > 0.5, "FAMAPbI3", "FASnIBr")
    s = train_surrogate(X, y, feature_names=["x", "f"], target="plqy", groups=groups,
                        n_restarts=0)
    card = s.card_
    assert card["kind"] in ("gp", "forest")
    assert set(card["cv_all_kinds"]["grouped"]) == {"gp", "forest"}
    assert card["cv_grouped"]["scheme"] == "LeaveOneGroupOut"
    assert card["cv_grouped"]["n_splits"] == 2
    grouped = {k: v["rmse"] for k, v in card["cv_all_kinds"]["grouped"].items()}
    assert card["kind"] == min(grouped, key=grouped.get)


def test_forest_uncertainty_grows_away_from_data():
    X, y = sine_problem()
    s = train_surrogate(X, y, feature_names=["x"], target="y", kind="forest", bounded=None)
    assert s.kind_ == "forest"
    _, sd_in = s.predict(np.array([[1.5]]), return_std=True)
    assert sd_in[0] > 0.05  # includes the noise estimate, not just the tree spread
    assert s.card_["cv"]["rmse"] < 0.2


@pytest.mark.parametrize("kind", ["gp", "forest"])
def test_save_load_round_trip(tmp_path, kind):
    s = plqy_model(kind)
    path = s.save(tmp_path / "plqy.skops")
    assert card_path(path).is_file()
    assert json.loads(card_path(path).read_text())["training_data_sha256"] == s.card_[
        "training_data_sha256"]
    t = load_surrogate(path)
    X = np.random.default_rng(0).uniform(0, 1, (50, 2))
    for a, b in zip(s.predict(X, return_std=True), t.predict(X, return_std=True), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert t.card_ == s.card_ and t.kind_ == kind and t.feature_names_ == ["a", "b"]


def test_load_refuses_untrusted_types(tmp_path):
    import skops.io as sio
    from sklearn.neighbors import KNeighborsRegressor

    s = plqy_model("gp")
    path = s.save(tmp_path / "ok.skops")
    bad = tmp_path / "bad.skops"
    sio.dump({"format": "matdb-surrogate", "model": KNeighborsRegressor()}, bad)
    with pytest.raises(ModelLoadError, match="untrusted types .*KNeighborsRegressor"):
        load_surrogate(bad)
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"not": "allowed"}))
    with pytest.raises(ModelLoadError, match="not a skops model file"):
        load_surrogate(pkl)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_surrogate(tmp_path / "missing.skops")
    other = tmp_path / "other.skops"
    sio.dump({"format": "something-else"}, other)
    with pytest.raises(ModelLoadError, match="not a matdb surrogate"):
        load_surrogate(other)
    assert load_surrogate(path).kind_ == "gp"


def test_bad_training_input_is_rejected():
    X = np.zeros((10, 2))
    with pytest.raises(SurrogateError, match="feature_names"):
        train_surrogate(X, np.zeros(10), feature_names=["a"], target="plqy")
    with pytest.raises(SurrogateError, match="inconsistent numbers of samples"):
        train_surrogate(X, np.zeros(9), feature_names=["a", "b"], target="plqy")
    with pytest.raises(SurrogateError, match="outside its bounds 0..100"):
        train_surrogate(X, np.full(10, 120.0), feature_names=["a", "b"], target="plqy")
    with pytest.raises(SurrogateError, match="at least 3"):
        train_surrogate(X[:2], np.zeros(2), feature_names=["a", "b"], target="plqy")
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(SurrogateError, match="NaN"):
        train_surrogate(Xn, np.zeros(10), feature_names=["a", "b"], target="plqy")
    with pytest.raises(SurrogateError, match="kind"):
        train_surrogate(X, np.zeros(10), feature_names=["a", "b"], target="plqy", kind="svm")
    s = plqy_model("gp")
    with pytest.raises(SurrogateError, match=r"X has 3 features, but Surrogate is expecting 2"):
        s.predict(np.zeros((3, 3)))


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from screening.surrogate import LENGTH_SCALE_BOUNDS, Surrogate  # noqa: E402


@parametrize_with_checks([Surrogate(kind="gp", cv=False, n_restarts=0), Surrogate(kind="forest", cv=False)])
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_length_scales_are_bounded_relative_to_the_domain():
    """Inputs are scaled by the domain, so the fitted length scale is the same fraction of the
    domain whatever the units, and a model of data crowded in one corner stays uncertain far away."""
    X = np.linspace(0.4, 0.6, 10)[:, None]
    y = 50 + 10 * np.sin((X[:, 0] - 0.4) * 15)
    fits = {}
    for scale in (1.0, 300.0):  # the same problem in other units (e.g. a temperature)
        s = train_surrogate(X * scale, y, feature_names=["x"], target="y", kind="gp", bounded=None, cv=False,
                            input_bounds=([0.0], [scale]))
        ls = float(np.ravel(s.latent_.model.kernel_.k1.k2.length_scale)[0])
        assert LENGTH_SCALE_BOUNDS[0] * (1 - 1e-9) <= ls <= LENGTH_SCALE_BOUNDS[1] * (1 + 1e-9)
        mean, sd = s.predict(np.array([[0.5], [0.95]]) * scale, return_std=True)
        fits[scale] = (ls, mean, sd)
        assert sd[1] > 10 * sd[0]
    assert fits[1.0][0] == pytest.approx(fits[300.0][0], rel=1e-3)
    assert fits[1.0][1] == pytest.approx(fits[300.0][1], rel=1e-6)


def test_known_noise_sets_a_floor():
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, (40, 1))
    y = 10 * X[:, 0]  # noiseless data
    free = train_surrogate(X, y, feature_names=["x"], target="y", kind="gp", bounded=None, cv=False)
    known = train_surrogate(X, y, feature_names=["x"], target="y", kind="gp", bounded=None, cv=False, noise=1.0)
    _, sd_free = free.predict(X[:5], return_std=True)
    _, sd_known = known.predict(X[:5], return_std=True)
    assert np.all(sd_known >= 0.8)  # at least (about) the stated 1.0 measurement noise
    assert np.all(sd_free < 0.5)


def test_wide_positive_targets_are_modelled_on_the_log_scale():
    X = np.linspace(0, 1, 20)[:, None]
    y = 1e4 * np.exp(4 * X[:, 0])  # 1e4 .. 5e5, like an instability index
    s = train_surrogate(X, y, feature_names=["x"], target="instability_index", bounds=(0.0, None), cv=False,
                        kind="gp")
    assert s.transform_.kind == "log"
    narrow = train_surrogate(X, 5 + X[:, 0], feature_names=["x"], target="t", bounds=(0.0, None), cv=False,
                             kind="gp")
    assert narrow.transform_.kind is None
