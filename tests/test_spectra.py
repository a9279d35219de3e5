"""Spectral features: Kubelka-Munk, absorption edge, Tauc, Urbach, PL peak fits, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import expit

from screening import spectra as sp
from screening.spectra import HC_EV_NM, SpectrumError, SpectrumWarning

WL = np.arange(340.0, 1001.0)
E = HC_EV_NM / WL


def logistic_km(
    edge_nm: float, eu_ev: float = 0.025, amp: float = 8.0, base: float = 0.013
) -> np.ndarray:
    return base + amp * expit((E - HC_EV_NM / edge_nm) / eu_ev)


def gaussian_counts(peak_nm: float, fwhm_ev: float, height: float, bg: float = 30.0) -> np.ndarray:
    e0 = HC_EV_NM / peak_nm
    jac = HC_EV_NM / WL**2
    return bg + height * np.exp(-4 * math.log(2) * (E - e0) ** 2 / fwhm_ev**2) * jac / (
        HC_EV_NM / peak_nm**2
    )


# --- Kubelka-Munk and reflectance -------------------------------------------------------------


@pytest.mark.parametrize(("r", "f"), [(0.5, 0.25), (1.0, 0.0), (0.2, 1.6), (0.8, 0.025)])
def test_kubelka_munk_hand_values(r: float, f: float) -> None:
    assert sp.kubelka_munk(r) == pytest.approx(f)


def test_inverse_kubelka_munk_round_trip() -> None:
    r = np.linspace(0.01, 1.0, 50)
    assert sp.inverse_kubelka_munk(sp.kubelka_munk(r)) == pytest.approx(r)


@pytest.mark.parametrize(("r", "match"), [(0.0, "positive"), (-0.1, "positive"), (np.nan, "NaN")])
def test_kubelka_munk_rejects_bad_reflectance(r: float, match: str) -> None:
    with pytest.raises(SpectrumError, match=match):
        sp.kubelka_munk(np.array([0.5, r]))


def test_reflectance_errors_and_warnings() -> None:
    ref = np.full(WL.size, 1000.0)
    with pytest.raises(SpectrumError, match="negative reflectance"):
        sp.reflectance(np.full((2, WL.size), -5.0), ref, WL)
    with pytest.raises(SpectrumError, match="zero reflectance"):
        sp.reflectance(np.zeros((1, WL.size)), ref, WL)
    bad_ref = ref.copy()
    bad_ref[10] = 0.0
    with pytest.raises(SpectrumError, match="non-positive count"):
        sp.reflectance(np.full((1, WL.size), 500.0), bad_ref, WL)
    with pytest.warns(SpectrumWarning, match="clipped to 1"):
        r = sp.reflectance(np.full((1, WL.size), 1200.0), ref, WL)
    assert r.max() == 1.0


@pytest.mark.parametrize(
    ("values", "wl", "match"),
    [
        (np.full((2, 10), 1.0), np.arange(10.0) + 400, "too few wavelength points"),
        (np.full((2, 30), 1.0), np.arange(31.0) + 400, "wavelength points but the wavelength axis"),
        (np.where(np.arange(30) == 7, np.nan, 1.0)[None, :], np.arange(30.0) + 400, "NaN"),
        (np.full((1, 30), 1.0), (np.arange(30.0) + 400)[::-1], "strictly increasing"),
    ],
)
def test_bad_input_is_named(values: np.ndarray, wl: np.ndarray, match: str) -> None:
    with pytest.raises(SpectrumError, match=match):
        sp.extract_features("pl", values, wl, np.arange(values.shape[0], dtype=float))


def test_reflectance_run_needs_reference() -> None:
    with pytest.raises(SpectrumError, match="reference"):
        sp.extract_features("reflectance", np.ones((3, WL.size)), WL, np.arange(3.0))


def test_unknown_kind() -> None:
    with pytest.raises(SpectrumError, match="unknown TLIS kind"):
        sp.extract_features("xrd", np.ones((3, WL.size)), WL, np.arange(3.0))


# --- absorption edge, Tauc, Urbach --------------------------------------------------------------


@pytest.mark.parametrize("edge", [540.0, 700.0, 825.0])
def test_absorption_edge_of_logistic_edge(edge: float) -> None:
    res = sp.absorption_edge(WL, logistic_km(edge))
    assert res.status[0] == "ok"
    assert res.edge_nm[0] == pytest.approx(edge, abs=1.5)
    assert res.onset_nm[0] > res.edge_nm[0]  # tangent meets the baseline on the long side
    assert res.km_above_edge[0] == pytest.approx(8.0, rel=0.05)


def test_flat_spectrum_has_no_edge() -> None:
    res = sp.absorption_edge(WL, np.full((2, WL.size), 0.02))
    assert list(res.status) == ["no_edge", "no_edge"]
    assert np.isnan(res.edge_nm).all()


def test_no_edge_run_gives_warning_and_no_features() -> None:
    ref = np.full(WL.size, 40000.0)
    fs = sp.extract_features("reflectance", np.full((8, WL.size), 34000.0), WL, np.arange(8.0), ref)
    assert fs.features == {}
    assert any("no absorption edge" in w for w in fs.warnings)
    assert fs.series["absorption_edge"].records(fs.times_min) == []


def test_tauc_direct_allowed_recovers_gap() -> None:
    eg = 1.60
    f = 0.01 + 3.0 * np.sqrt(np.clip(E - eg, 0, None)) / E  # (F E)^2 linear in E above Eg
    edge = sp.absorption_edge(WL, f).edge_nm
    gap, err, status = sp.tauc_bandgap(WL, f, edge, transition="direct_allowed")
    assert status[0] == "ok"
    assert gap[0] == pytest.approx(eg, abs=0.01)


def test_tauc_rejects_unknown_transition() -> None:
    with pytest.raises(SpectrumError, match="unknown transition"):
        sp.tauc_bandgap(WL, logistic_km(700), [700.0], transition="sideways")


def test_urbach_energy_of_logistic_tail() -> None:
    f = logistic_km(750.0, eu_ev=0.020)
    res = sp.absorption_edge(WL, f)
    eu, err, status = sp.urbach_energy(WL, f, res.edge_nm, res.km_above_edge, res.baseline)
    assert status[0] == "ok"
    assert eu[0] == pytest.approx(20.0, rel=0.1)


# --- PL ------------------------------------------------------------------------------------------


def noisy_gaussians(n: int = 40, seed: int = 0) -> tuple[np.ndarray, float, float, float]:
    rng = np.random.default_rng(seed)
    peak, fwhm, height = 750.0, 0.10, 8000.0
    mean = gaussian_counts(peak, fwhm, height)
    return rng.poisson(np.tile(mean, (n, 1))).astype(float), peak, fwhm, height


def test_gaussian_fit_recovers_peak_and_fwhm_within_uncertainty() -> None:
    counts, peak, fwhm_ev, height = noisy_gaussians()
    fits = sp.fit_pl_peaks(WL, counts)
    assert (fits.status == "ok").all()
    e0 = HC_EV_NM / peak
    fwhm_nm = HC_EV_NM / (e0 - fwhm_ev / 2) - HC_EV_NM / (e0 + fwhm_ev / 2)
    area = height / (HC_EV_NM / peak**2) * fwhm_ev * math.sqrt(math.pi / (4 * math.log(2)))
    for got, err, true in (
        (fits.peak_nm, fits.peak_nm_err, peak),
        (fits.fwhm_nm, fits.fwhm_nm_err, fwhm_nm),
        (fits.area, fits.area_err, area),
    ):
        z = (got - true) / err
        assert np.all(np.abs(z) < 4.5)
        assert np.mean(np.abs(z) < 2) > 0.8  # errors are honest, not just large
        assert np.std(got) == pytest.approx(np.mean(err), rel=0.4)


def test_batched_fit_agrees_with_curve_fit() -> None:
    counts, *_ = noisy_gaussians(n=1, seed=3)
    a = sp.fit_pl_peak(WL, counts[0], engine="batched")
    b = sp.fit_pl_peak(WL, counts[0], engine="curve_fit")
    assert a.status == b.status == "ok"
    assert a.peak_nm == pytest.approx(b.peak_nm, abs=0.2 * b.peak_nm_err)
    assert a.fwhm_nm == pytest.approx(b.fwhm_nm, abs=0.2 * b.fwhm_nm_err)
    assert a.peak_nm_err == pytest.approx(b.peak_nm_err, rel=0.05)
    assert a.area == pytest.approx(b.area, rel=1e-3)


def test_pseudo_voigt_profile_fits() -> None:
    counts, peak, *_ = noisy_gaussians(n=5, seed=4)
    fits = sp.fit_pl_peaks(WL, counts, profile="pseudo_voigt")
    assert (fits.status == "ok").all()
    assert np.abs(fits.peak_nm - peak).max() < 0.5
    assert np.all(fits.params[:, 3] < 0.2)  # a Gaussian has little Lorentzian share


def test_pl_statuses_no_peak_not_converged_saturated() -> None:
    rng = np.random.default_rng(1)
    noise = rng.poisson(np.full((1, WL.size), 50.0)).astype(float)
    counts, *_ = noisy_gaussians(n=2)
    sat = counts[:1].copy()
    sat[0, 400:405] = 65535.0
    fits = sp.fit_pl_peaks(WL, np.vstack([noise, counts, sat]), detector_max=65535.0)
    assert list(fits.status) == ["no_peak", "ok", "ok", "saturated"]
    assert np.isnan(fits.peak_nm[[0, 3]]).all()
    slow = sp.fit_pl_peaks(WL, counts, max_iter=1)
    assert set(slow.status) == {"not_converged"}
    single = sp.fit_pl_peak(WL, noise[0])
    assert single.status == "no_peak" and single.peak_nm is None


def test_unknown_profile() -> None:
    with pytest.raises(SpectrumError, match="unknown peak profile"):
        sp.fit_pl_peaks(WL, np.ones((1, WL.size)), profile="lorentz")


def test_pl_tail_urbach_energy_van_roosbroeck_shockley() -> None:
    kt = sp.K_B_EV * 295.0
    eu, eg = 0.015, 1.60
    alpha = expit((E - eg) / eu)
    pl_e = alpha * E**2 * np.exp(-(E - eg) / kt)  # per eV
    counts = 20.0 + 20000 * pl_e / pl_e.max() * HC_EV_NM / WL**2 / (
        HC_EV_NM / WL[np.argmax(pl_e)] ** 2
    )
    fits = sp.fit_pl_peaks(WL, counts[None, :])
    got, err, status = sp.pl_tail_urbach(WL, counts[None, :], fits)
    assert status[0] == "ok"
    assert got[0] == pytest.approx(15.0, rel=0.15)


def test_saturated_pl_run_warns_and_excludes() -> None:
    counts, *_ = noisy_gaussians(n=8)
    counts[2, 300] = 65535.0
    with pytest.warns(SpectrumWarning, match="detector maximum"):
        fs = sp.extract_features("pl", counts, WL, np.arange(8.0))
    assert fs.series["pl_peak"].status[2] == "saturated"
    assert len(fs.series["pl_peak"].records(fs.times_min)) == 7


def test_feature_set_has_methods_and_versions() -> None:
    counts, *_ = noisy_gaussians(n=12)
    counts *= np.linspace(0.5, 1.0, 12)[:, None]
    fs = sp.extract_features("pl", counts, WL, np.arange(12.0))
    assert {"pl_peak", "pl_fwhm", "pl_integrated_intensity"} <= set(fs.features)
    for f in fs.features.values():
        assert f.method and f.version
        assert math.isfinite(f.value)
    assert fs.features["pl_peak"].quantity == "pl_peak"
    assert fs.features["pl_peak"].uncertainty is not None


# --- fuzz -----------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["pl", "reflectance"]),
    data=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 40)),
        elements=st.one_of(st.floats(-1e3, 7e4), st.just(np.nan), st.just(np.inf)),
    ),
    ref_level=st.floats(-10.0, 5e4),
)
def test_random_spectra_only_raise_spectrum_error(
    kind: str, data: np.ndarray, ref_level: float
) -> None:
    wl = 400.0 + np.arange(data.shape[1], dtype=float)
    t = np.arange(data.shape[0], dtype=float)
    ref = np.full(data.shape[1], ref_level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fs = sp.extract_features(kind, data, wl, t, reference=ref)
        except SpectrumError:
            return
    for f in fs.features.values():
        assert math.isfinite(f.value)
