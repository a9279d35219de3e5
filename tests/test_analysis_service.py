"""`matdb simulate` + ingest + `matdb analyze`: derived features stored with method and version."""

from __future__ import annotations

from pathlib import Path

import pytest

from matdb_app import analysis, simulate
from matdb_app import ingest as ingest_


@pytest.fixture
def simulated_db(db, tmp_path: Path):  # type: ignore[no-untyped-def]
    paths = simulate.simulate("FAMAPbI3", {"x": [1.0]}, n_times=90, out_dir=tmp_path / "runs", seed=1)
    paths += simulate.simulate("FASnIBr", {"z": [2.5]}, mode="pl", n_times=60, out_dir=tmp_path / "runs", seed=2)
    report = ingest_.ingest(db, [tmp_path / "runs"], progress=False)
    assert report.ok, [f.reason for f in report.files]
    assert report.totals["added"] == 2  # two runs; the reference file comes in with its run
    return db


def test_simulated_runs_ingest_and_are_marked_simulated(simulated_db) -> None:  # type: ignore[no-untyped-def]
    s = simulated_db.samples()
    assert set(s["provenance"]) == {"simulated"}
    run = simulated_db.array(f"{s['sample_id'].iloc[0]}:" + "sim-FAMAPbI3-x1-reflectance.csv")
    assert run["values"].shape == (90, 661)
    assert run["reference"] is not None and run["provenance"] == "simulated"


def test_analyze_stores_features_once(simulated_db) -> None:  # type: ignore[no-untyped-def]
    rep = analysis.analyze(simulated_db, progress=False)
    assert (rep.analysed, rep.skipped, rep.failed) == (2, 0, [])
    derived = simulated_db.results(derived=True)
    assert set(derived["provenance"]) == {"simulated"}
    assert derived["method"].notna().all() and derived["method_version"].notna().all()
    fa = derived[(derived["family"] == "FAMAPbI3")].set_index("quantity")
    # the simulator follows the paper: FAPbI3's edge peaks near 48 min, then α→δ after ~53 min
    assert fa.loc["time_to_max", "value"] == pytest.approx(48, abs=4)
    assert fa.loc["decay_onset_time", "value"] == pytest.approx(53, abs=4)
    sn = derived[(derived["family"] == "FASnIBr") & (derived["quantity"] == "pl_peak")]
    assert sn["value"].iloc[0] == pytest.approx(827, abs=5)

    again = analysis.analyze(simulated_db, progress=False)
    assert (again.analysed, again.skipped) == (0, 2)
    assert len(simulated_db.results(derived=True)) == len(derived)
    series = analysis.feature_series(simulated_db, derived["measurement_id"].iloc[0])
    assert series is not None and "absorption_edge" in series["series"]


def test_a_new_method_version_recomputes(simulated_db, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from screening import spectra

    analysis.analyze(simulated_db, progress=False)
    n = len(simulated_db.results(derived=True))
    bumped = dict(spectra.METHOD_VERSIONS)
    name, ver = bumped["absorption_edge"]
    bumped["absorption_edge"] = (name, ver + "-next")
    monkeypatch.setattr(spectra, "METHOD_VERSIONS", bumped)
    rep = analysis.analyze(simulated_db, progress=False)
    assert rep.analysed == 2
    assert len(simulated_db.results(derived=True)) == n  # replaced, not duplicated


@pytest.mark.parametrize(("spec", "match"), [("x", "name=value"), ("x=a,b", "cannot read"), ("x=0:1:0", "cannot read")])
def test_param_specs(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate.parse_param_values([spec])


def test_param_ranges() -> None:
    assert simulate.parse_param_values(["x=0:1:0.25", "z=2.5"]) == {"x": [0, 0.25, 0.5, 0.75, 1.0], "z": [2.5]}
