"""TLIS simulator: paper-grounded kinetics, file format, hidden ground truth."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from matdb.families import CompositionError, get_family
from screening import simulate as sim
from screening.candidates import default_space
from screening.spectra import SpectrumWarning, extract_features


def run_features(family: str, params: dict, mode: str = "reflectance", **kw):
    run = sim.simulate_run(family, params, mode, n_times=181, seed=kw.pop("seed", 11), **kw)
    fs = extract_features(
        mode,
        run.values,
        run.wavelengths_nm,
        run.times_min,
        run.reference,
        excitation_wavelength_nm=run.meta["excitation_wavelength_nm"],
    )
    return run, fs


def test_fapbi3_edge_maximum_and_alpha_delta_decay() -> None:
    run, fs = run_features("FAMAPbI3", {"x": 1.0})
    f = fs.features
    assert f["absorption_edge"].value == pytest.approx(825.0, abs=6.0)
    assert f["time_to_max"].value == pytest.approx(48.0, abs=3.0)
    assert f["decay_onset_time"].value == pytest.approx(53.0, abs=2.5)
    assert f["edge_blue_shift"].value > 15.0
    assert f["retained_active_phase_fraction"].value < 0.9
    # the edge starts at the precursors' ~540 nm
    t, edge = fs.series["absorption_edge"].valid(fs.times_min)
    assert edge[0] == pytest.approx(540.0, abs=8.0)


@pytest.mark.parametrize(
    ("x", "t_ss"), [(0.8, 59.0), (0.6, 73.0), (0.4, 60.0), (0.2, 78.0), (0.0, 80.0)]
)
def test_fama_steady_state_times_follow_the_paper(x: float, t_ss: float) -> None:
    _, fs = run_features("FAMAPbI3", {"x": x})
    assert fs.features["steady_state_time"].value == pytest.approx(t_ss, abs=4.0)
    assert "decay_onset_time" not in fs.features
    assert fs.features["edge_blue_shift"].value < 5.0


def test_jmak_fit_of_simulated_edge_recovers_simulator_kinetics() -> None:
    run, fs = run_features("FAMAPbI3", {"x": 0.6})
    k_true, n_true = run.meta["kinetics"]["k_per_min"], run.meta["kinetics"]["avrami_n"]
    assert fs.features["rate_constant"].value == pytest.approx(k_true, rel=0.15)
    assert fs.features["avrami_exponent"].value == pytest.approx(n_true, rel=0.15)


def test_fasn_pl_peaks_and_relative_intensity() -> None:
    # each at its own PL-maximum milling time (12 and 7 min in the paper)
    _, f3 = run_features("FASnIBr", {"z": 3.0}, "pl", process={"milling_time_min": 12.0})
    _, f25 = run_features("FASnIBr", {"z": 2.5}, "pl", process={"milling_time_min": 7.0})
    assert f3.features["pl_peak"].value == pytest.approx(870.0, abs=1.0)
    assert f25.features["pl_peak"].value == pytest.approx(827.0, abs=1.0)
    assert f3.features["pl_peak_time"].value == pytest.approx(12.0, abs=4.0)
    assert f25.features["pl_peak_time"].value == pytest.approx(7.0, abs=3.0)
    ratio = (
        f25.features["pl_integrated_intensity"].value / f3.features["pl_integrated_intensity"].value
    )
    assert 4.0 < ratio < 6.0  # "five times as high as that of FASnI3"
    assert f25.features["pl_retention"].value < f3.features["pl_retention"].value


def test_double_perovskite_pl_grows_during_aging() -> None:
    run = sim.simulate_run(
        "CsNaAgBiCl6", {"y": 0.9}, "pl", n_times=145, duration_min=72 * 60, seed=3
    )
    fs = extract_features(
        "pl", run.values, run.wavelengths_nm, run.times_min, excitation_wavelength_nm=370
    )
    assert fs.features["pl_peak"].value == pytest.approx(680.0, abs=2.0)
    assert fs.features["pl_enhancement"].value == pytest.approx(106.0, rel=0.2)


def test_pl_retention_over_window_matches_hidden_stability() -> None:
    run = sim.simulate_run("CsPbI3-agZIF62", {"X": 0.5}, "pl", n_times=181, duration_min=90, seed=5)
    fs = extract_features(
        "pl",
        run.values,
        run.wavelengths_nm,
        run.times_min,
        excitation_wavelength_nm=370,
        stability_window=(
            run.meta["kinetics"]["t_steady_min"],
            run.meta["kinetics"]["t_steady_min"] + 60.0,
        ),
    )
    assert fs.features["pl_retention"].value == pytest.approx(
        run.meta["ground_truth"]["stability"], abs=0.04
    )


def test_long_integration_saturates_and_is_flagged() -> None:
    run = sim.simulate_run(
        "CsPbI3-agZIF62", {"X": 0.05}, "pl", n_times=20, seed=1, integration_time_ms=500
    )
    assert run.values.max() == 65535.0
    with pytest.warns(SpectrumWarning, match="detector maximum"):
        fs = extract_features("pl", run.values, run.wavelengths_nm, run.times_min)
    assert "saturated" in set(fs.series["pl_peak"].status)


def test_run_shape_noise_and_provenance() -> None:
    a = sim.simulate_run("FAPbIBr", {"x": 0.1}, "reflectance", n_times=30, seed=1)
    b = sim.simulate_run("FAPbIBr", {"x": 0.1}, "reflectance", n_times=30, seed=1)
    c = sim.simulate_run("FAPbIBr", {"x": 0.1}, "reflectance", n_times=30, seed=2)
    assert (
        a.values.shape == (30, 661) and a.wavelengths_nm[0] == 340 and a.wavelengths_nm[-1] == 1000
    )
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)
    assert a.meta["provenance"] == "simulated" and a.reference is not None
    assert np.all(a.values <= a.reference * 1.2)


def test_write_tlis_csv_format(tmp_path: Path) -> None:
    run = sim.simulate_run("FAMAPbI3", {"x": 0.8}, "reflectance", n_times=5, duration_min=2, seed=1)
    paths = sim.write_tlis_csv(run, tmp_path / "run.csv")
    assert [p.name for p in paths] == ["run.csv", "run_ref.csv"]
    lines = paths[0].read_text().splitlines()
    header = {
        ln[2:].split(":", 1)[0]: ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("# ")
    }
    assert lines[0] == "# matdb-tlis: 1"
    assert header["mode"] == "reflectance" and header["provenance"] == "simulated"
    assert header["sample"] == "sim-FAMAPbI3-x0.8" and header["family"] == "FAMAPbI3"
    assert json.loads(header["params"]) == {"x": 0.8}
    assert header["reference"] == "run_ref.csv" and header["time_unit"] == "min"
    assert header["integration_time"] == "100 ms"
    cols = [ln for ln in lines if not ln.startswith("#")]
    assert cols[0] == "wavelength_nm,0,0.5,1,1.5,2"
    data = np.loadtxt(cols[1:], delimiter=",")
    assert data.shape == (661, 6)
    assert data[:, 1:] == pytest.approx(run.values.T, abs=0.051)
    ref = paths[1].read_text().splitlines()
    assert ref[0] == "wavelength_nm,counts" and len(ref) == 662
    pl = sim.simulate_run("FASnIBr", {"z": 3.0}, "pl", n_times=3, seed=1)
    p2 = sim.write_tlis_csv(pl, tmp_path / "pl.csv")
    text = p2[0].read_text()
    assert len(p2) == 1 and "# excitation_wavelength: 370 nm" in text and "# reference" not in text


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"family": "Nope", "params": {"x": 1}}, sim.SimulationError, "no simulator model"),
        ({"family": "FAMAPbI3", "params": {"x": 1.5}}, CompositionError, "outside the range"),
        ({"family": "FAMAPbI3", "params": {"x": 0.5}, "mode": "xrd"}, sim.SimulationError, "mode"),
        (
            {
                "family": "FAMAPbI3",
                "params": {"x": 0.5},
                "process": {"sintering_temperature_C": 300},
            },
            sim.SimulationError,
            "not used for FAMAPbI3",
        ),
        (
            {"family": "FASnIBr", "params": {"z": 2}, "process": {"additive_mol_pct": 500}},
            sim.SimulationError,
            "outside",
        ),
    ],
)
def test_bad_simulation_requests(kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        sim.simulate_run(**kwargs)


# --- hidden ground truth --------------------------------------------------------------------------


def _grid(family: str, n: int = 41) -> tuple[dict, dict, list[str]]:
    fam = get_family(family)
    axes = {k: np.linspace(p.min, p.max, n) for k, p in fam.parameters.items()}
    axes |= {
        k: np.linspace(lo, hi, n) for k, (lo, hi, _, _) in sim.PROCESS_VARIABLES[family].items()
    }
    names = list(axes)
    mesh = np.meshgrid(*(axes[k] for k in names), indexing="ij")
    grid = dict(zip(names, mesh, strict=True))
    params = {k: grid[k] for k in fam.parameters}
    process = {k: grid[k] for k in sim.PROCESS_VARIABLES[family]}
    return params, process, names


@pytest.mark.parametrize("family", sim.SUPPORTED_FAMILIES)
def test_ground_truth_ranges_and_unique_interior_optimum(family: str) -> None:
    params, process, names = _grid(family)
    truth = sim.ground_truth(family, params, process)
    plqy, stability = truth["plqy"], truth["stability"]
    assert plqy.shape == params[names[0]].shape
    assert plqy.min() >= 0 and plqy.max() <= 100
    assert stability.min() >= 0 and stability.max() <= 1
    idx = np.unravel_index(np.argmax(plqy), plqy.shape)
    for axis, i in enumerate(idx):  # the optimum is interior in every variable
        assert 0 < i < plqy.shape[axis] - 1, (names[axis], i)
    # unique: every other local maximum on the grid is the same point
    from scipy.ndimage import maximum_filter

    peaks = np.argwhere(
        (plqy == maximum_filter(plqy, size=3, mode="nearest")) & (plqy > 1e-3 * plqy.max())
    )
    assert len(peaks) == 1
    for k, v in sim.TRUE_OPTIMUM[family].items():
        grid_val = (params | process)[k][idx]
        span = np.ptp((params | process)[k])
        assert abs(grid_val - v) <= 0.06 * span, k


def test_ground_truth_is_vectorised_and_anchored() -> None:
    t = sim.ground_truth(
        "CsNaAgBiCl6",
        {"y": np.array([0.9, 0.9])},
        {"aging_time_h": np.array([0.0, 63.0]), "milling_time_min": np.array([360.0, 540.0])},
    )
    assert t["plqy"] == pytest.approx([0.74, 17.3], rel=0.05)  # samples #1 and #2 of the paper
    z = sim.ground_truth(
        "FASnIBr", {"z": np.array([3.0, 2.5])}, {"milling_time_min": np.array([12.0, 7.0])}
    )
    assert z["plqy"][1] / z["plqy"][0] == pytest.approx(5.0, rel=0.01)
    assert z["pl_peak"] == pytest.approx([870.0, 827.0])
    add = sim.ground_truth("FASnIBr", {"z": 2.5}, {"additive_mol_pct": np.array([0.0, 80.0])})
    assert add["plqy"][1] / add["plqy"][0] == pytest.approx(1.77, rel=0.01)
    zif = sim.ground_truth("CsPbI3-agZIF62", {"X": 0.05}, {"sintering_temperature_C": 275.0})
    assert float(zif["plqy"]) == pytest.approx(81.3, rel=0.03)
    with pytest.raises(sim.SimulationError, match="missing composition parameter"):
        sim.ground_truth("FAMAPbI3", {"y": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fapb = sim.ground_truth("FAPbIBr", {"x": np.linspace(0, 1, 5)[:, None] * np.ones((1, 4))})
    assert fapb["plqy"].shape == (5, 4)
    assert np.all(fapb["plqy"] == fapb["plqy"][:, :1])  # composition only: constant along the other axis


def test_fapbibr_has_no_milling_axis() -> None:
    # Xiang et al. (doi:10.1039/d5ta10296k) solution-process their FAPb(I,Br)3 films; the seed papers
    # never milled this family, so neither the simulator nor the default space offers a milling axis
    assert sim.PROCESS_VARIABLES["FAPbIBr"] == {}
    assert set(sim.TRUE_OPTIMUM["FAPbIBr"]) == {"x"}
    with pytest.raises(sim.SimulationError, match="milling_time_min not used for FAPbIBr"):
        sim.ground_truth("FAPbIBr", {"x": 0.1}, {"milling_time_min": 60.0})
    with pytest.raises(sim.SimulationError, match="not used for FAPbIBr"):
        sim.simulate_run("FAPbIBr", {"x": 0.1}, "pl", n_times=5, seed=0, process={"milling_time_min": 60.0})
    run = sim.simulate_run("FAPbIBr", {"x": 0.1}, "pl", n_times=5, seed=0)
    assert run.process == {}
    assert "milling_time_min" not in default_space("FAPbIBr").process


@pytest.mark.parametrize("family", sim.SUPPORTED_FAMILIES)
def test_simulator_process_axes_are_the_default_space_axes(family: str) -> None:
    # the simulated lab varies exactly the process variables that the default space offers
    assert set(sim.PROCESS_VARIABLES[family]) == set(default_space(family).process)


def test_constants_table_labels_every_number() -> None:
    for name, (_value, _unit, source) in sim.CONSTANTS.items():
        assert source, name
        assert "doi:" in source or "assumption" in source, name
