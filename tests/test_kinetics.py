"""Kinetic features of time series and the stability metrics built on them."""

from __future__ import annotations

import numpy as np
import pytest

from screening import kinetics as kin
from screening import stability as stab
from screening.kinetics import KineticsError

T = np.arange(0.0, 100.5, 0.5)


def test_steady_state_of_exponential_approach() -> None:
    y = 1.0 - np.exp(-T / 10.0)
    res = kin.steady_state_time(T, y, rel_tol=0.02)
    # |y - plateau| <= 0.02 * range  <=>  exp(-t/10) <= ~0.02  <=>  t >= 39.1 min
    assert res.status == "ok"
    assert res.time == pytest.approx(39.5, abs=0.5)
    assert res.level == pytest.approx(1.0, abs=1e-3)


def test_steady_state_not_reached_for_a_ramp() -> None:
    assert kin.steady_state_time(T, T).status == "not_reached"


def test_maximum_and_decay_onset_of_broken_stick() -> None:
    y = np.where(T < 53.0, 825.0, 825.0 - 0.8 * (T - 53.0))
    y = np.where(T < 40, 540 + 285 * (T / 40), y)
    mx = kin.time_of_maximum(T, y)
    assert mx.value == pytest.approx(825.0)
    assert mx.time == pytest.approx(39.5, abs=0.6)  # within 2 % of range (5.7 nm) of the max
    dec = kin.decay_after_maximum(T, y)
    assert dec.status == "ok"
    assert dec.onset_time == pytest.approx(53.0, abs=0.5)
    assert dec.extent == pytest.approx(0.8 * (97.75 - 53.0), abs=0.1)  # final = median of last 5 %


def test_no_decay_for_monotonic_rise() -> None:
    dec = kin.decay_after_maximum(T, 1 - np.exp(-T / 10))
    assert dec.status == "no_decay" and dec.onset_time is None


@pytest.mark.parametrize(("k", "n"), [(0.05, 2.5), (0.2, 1.0), (0.03, 3.5)])
def test_jmak_fit_recovers_k_and_n(k: float, n: float) -> None:
    rng = np.random.default_rng(7)
    a = kin.jmak(T, k, n, 2.0) + rng.normal(0, 0.005, T.size)
    fit = kin.fit_jmak(T, a, t0=2.0)
    assert fit.status == "ok"
    assert abs(fit.k - k) < 4 * fit.k_err
    assert abs(fit.n - n) < 4 * fit.n_err
    assert fit.k_err < 0.05 * k


def test_jmak_fit_with_free_t0() -> None:
    rng = np.random.default_rng(8)
    a = kin.jmak(T, 0.04, 2.5, 5.0) + rng.normal(0, 0.003, T.size)
    fit = kin.fit_jmak(T, a, t0=None)
    assert fit.status == "ok"
    assert fit.t0 == pytest.approx(5.0, abs=1.0)
    assert fit.n == pytest.approx(2.5, rel=0.15)


def test_jmak_too_few_points() -> None:
    assert kin.fit_jmak(T[:10], np.zeros(10)).status == "too_few_points"


def test_conversion_normalises_to_unit_range() -> None:
    y = 540 + 285 * kin.jmak(T, 0.04, 2.5, 2.0)
    t, a = kin.conversion(T, y)
    assert a[0] == pytest.approx(0.0, abs=1e-6)
    assert a.max() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(KineticsError, match="does not rise"):
        kin.conversion(T, 10 - T)


def test_pl_enhancement_and_errors() -> None:
    f = kin.pl_enhancement(2.0, 10.0, 0.2, 0.5)
    assert f.value == pytest.approx(5.0)
    assert f.uncertainty == pytest.approx(5.0 * np.hypot(0.1, 0.05))
    assert f.quantity == "pl_enhancement" and f.method and f.version
    with pytest.raises(KineticsError, match="must be positive"):
        kin.pl_enhancement(0.0, 1.0)
    g = kin.enhancement_between(T, 1 + T, 0.0, 9.0)
    assert g.value == pytest.approx(10.0)
    with pytest.raises(KineticsError, match="outside the series"):
        kin.enhancement_between(T, T, 0.0, 200.0)


@pytest.mark.parametrize(
    ("t", "y", "match"),
    [
        (T, np.where(T == 10, np.nan, T), "NaN"),
        (T[::-1], T, "strictly increasing"),
        (T[:3], T[:3], "too few time points"),
        (T, T[:-1], "differ in length"),
    ],
)
def test_bad_series_raise(t: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(KineticsError, match=match):
        kin.steady_state_time(t, y)


# --- stability metrics ----------------------------------------------------------------------------


def test_pl_retention_over_window() -> None:
    y = np.where(T < 20, T / 20, 0.5 ** ((T - 20) / 60))
    assert stab.pl_retention(T, y, window=(20, 80)).value == pytest.approx(0.5, abs=0.01)
    with pytest.raises(stab.StabilityError, match="window"):
        stab.pl_retention(T, y, window=(0, 1))


def test_edge_blue_shift_and_active_phase_fraction() -> None:
    edge = np.where(T < 53, 825.0, 825.0 - 0.5 * (T - 53))
    f = stab.edge_blue_shift(T, edge)
    assert f.value == pytest.approx(0.5 * (97.75 - 53.0)) and f.unit == "nm"  # final: last 5 %
    frac = stab.retained_active_phase_fraction(T, np.where(T < 53, 8.0, 4.0))
    assert frac.value == pytest.approx(0.5)


def test_activation_energy_passthrough_converts_units() -> None:
    f = stab.halide_migration_activation_energy(11.1, "kcal/mol")
    assert f.value == pytest.approx(0.481, abs=0.002) and f.unit == "eV"


def test_bandgap_shift_under_illumination() -> None:
    eg = 1.75 - 0.0005 * T
    f = stab.bandgap_shift_illumination(T, eg)
    assert f.value == pytest.approx(0.05, abs=0.002)
    assert "signed shift -0.0495 eV" in f.note


def test_registry_and_family_choice() -> None:
    for m in stab.STABILITY_METRICS.values():
        assert m.direction in ("higher", "lower") and m.definition and m.quantity
    assert stab.stability_metric_for("FAMAPbI3").name == "retained_active_phase_fraction"
    assert stab.stability_metric_for("FAMAPbI3", override="pl_retention").name == "pl_retention"
    assert stab.stability_metric_for("MyNewFamily").name == "pl_retention"
    assert (
        stab.stability_metric_for("X", user_defaults={"X": "edge_blue_shift"}).direction == "lower"
    )
    assert stab.STABILITY_METRICS["edge_blue_shift"].oriented(3.0) == -3.0
    with pytest.raises(stab.StabilityError, match="unknown stability metric"):
        stab.stability_metric_for("FAMAPbI3", override="shininess")
