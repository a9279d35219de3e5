"""Train -> rank -> propose -> (make) -> ingest the plan -> train again, on the database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matdb_app import ingest as ingest_
from matdb_app import screening_service as ss


@pytest.fixture
def lit_db(db):  # type: ignore[no-untyped-def]
    assert ingest_.load_bundled(db, progress=False).ok
    return db


def _simulated_plqy_table(path: Path, family: str, n: int, seed: int = 0) -> Path:
    """Simulated PLQY 'measurements' from the simulator's hidden ground truth (provenance simulated)."""
    from screening.simulate import ground_truth

    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 3.0, n).round(3)
    t = rng.choice([5.0, 10.0, 20.0, 40.0], n)
    truth = ground_truth(family, {"z": z}, {"milling_time_min": t})["plqy"]
    pd.DataFrame({"family": family, "z": z, "milling_time [min]": t,
                  "plqy [%]": np.clip(truth + rng.normal(0, 0.5, n), 0, 100).round(3),
                  "provenance": "simulated", "source": "simulator"}).to_csv(path, index=False)
    return path


def test_train_on_bundled_literature_says_it_has_few_points(lit_db) -> None:  # type: ignore[no-untyped-def]
    card = ss.train(lit_db, "plqy", "CsPbI3-agZIF62").card
    assert card["n_train"] == 3
    assert any("training points" in w for w in card["warnings"])
    assert card["training_provenance"] == ["literature"]
    assert card["include_simulated"] is False
    for key in ("training_data_sha256", "versions", "feature_names", "calibration", "cv"):
        assert key in card or any(key in k for k in card), key


def test_simulated_data_only_when_asked(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    with pytest.raises(ss.ScreeningError, match="simulated data are excluded"):
        ss.train(lit_db, "plqy", "FASnIBr")
    model = ss.train(lit_db, "plqy", "FASnIBr", include_simulated=True)
    assert model.card["training_provenance"] == ["simulated"]
    assert model.card["n_train"] == 12


def test_propose_plan_round_trip(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 15)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    out = tmp_path / "plan.csv"
    key, plan = ss.propose(lit_db, "FASnIBr", ["plqy"], 4, include_simulated=True, out=out)
    assert list(plan.columns[:4]) == ["proposal_id", "family", "formula", "params"]
    assert len(plan) == 4 and plan["proposal_id"].is_unique
    assert {"pred_plqy_mean", "pred_plqy_std", "acquisition", "plqy [%]"} <= set(plan.columns)
    assert plan["pred_plqy_mean"].between(0, 100).all()
    made = ss.made_experiments(lit_db, "FASnIBr")
    proposed = {(json.loads(p)["z"], t) for p, t in zip(plan["params"], plan["milling_time_min"], strict=True)}
    assert not proposed & {(z, t) for z, t in zip(made["z"], made["milling_time_min"], strict=True)}
    # the chemist makes two of them and fills in the results
    filled = pd.read_csv(out)
    filled.loc[0, "plqy [%]"] = 3.5
    filled.loc[1, "plqy [%]"] = 4.0
    filled.to_csv(out, index=False)
    report = ingest_.ingest(lit_db, [out], progress=False)
    assert report.ok, [x.reason for x in report.files]
    camp = ss.campaigns(lit_db).set_index("proposal_id")
    assert camp.loc[plan["proposal_id"][0], "status"] == "made"
    assert camp.loc[plan["proposal_id"][2], "status"] == "proposed"
    s = lit_db.samples(sample=plan["proposal_id"][0])
    assert s["proposal_id"].iloc[0] == plan["proposal_id"][0]
    assert s["provenance"].iloc[0] == "measured"
    # they are used by the next model and not proposed again
    assert ss.train(lit_db, "plqy", "FASnIBr", include_simulated=True).card["n_train"] == 17
    _, plan2 = ss.propose(lit_db, "FASnIBr", ["plqy"], 4, include_simulated=True)
    again = {(json.loads(p)["z"], t) for p, t in zip(plan2["params"], plan2["milling_time_min"], strict=True)}
    first_two = {(json.loads(p)["z"], t) for p, t in zip(plan["params"][:2], plan["milling_time_min"][:2], strict=True)}
    assert not again & first_two


def test_milling_plan_reproduces_the_paper_masses(lit_db) -> None:  # type: ignore[no-untyped-def]
    # Li et al. 2023: CsI 144.17 mg + PbI2 255.83 mg make 400 mg of CsPbI3
    plan = pd.DataFrame({"proposal_id": ["p1", "p2"], "family": ["CsPbI3-agZIF62", "FAMAPbI3"],
                         "formula": ["CsPbI3", "FAPbI3"], "params": ['{"X": 1.0}', '{"x": 1.0}']})
    mp = ss.milling_plan(lit_db, plan, 400.0).set_index(["proposal_id", "precursor"])
    assert mp.loc[("p1", "CsI"), "mass_mg"] == pytest.approx(144.17, abs=0.01)
    assert mp.loc[("p1", "PbI2"), "mass_mg"] == pytest.approx(255.83, abs=0.01)
    # FAPbI3 from FAI (171.97 g/mol) and PbI2 (461.01 g/mol), 1:1
    fai, pbi2 = mp.loc[("p2", "FAI")], mp.loc[("p2", "PbI2")]
    assert fai["amount_mmol"] == pytest.approx(pbi2["amount_mmol"])
    assert fai["mass_mg"] + pbi2["mass_mg"] == pytest.approx(400.0)
    with pytest.raises(ss.ScreeningError, match="positive number"):
        ss.milling_plan(lit_db, plan, -5)


def test_stability_needs_a_family_and_data(lit_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ss.ScreeningError, match="choose a family"):
        ss.train(lit_db, "stability")
    with pytest.raises(ss.ScreeningError, match="no numeric"):
        ss.train(lit_db, "stability", "FAMAPbI3")
    with pytest.raises(ss.ScreeningError, match="unknown target"):
        ss.train(lit_db, "happiness", "FAMAPbI3")


def test_predict_grid_and_rank(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    g = ss.predict_grid(lit_db, "FASnIBr", "plqy", ["z"], n=11, include_simulated=True)
    assert len(g) == 11 and g["mean"].between(0, 100).all() and (g["std"] > 0).all()
    r = ss.rank(lit_db, "FASnIBr", ["plqy"], n=5, include_simulated=True)
    assert len(r) == 5
    assert r["acquisition"].is_monotonic_decreasing


def test_stability_from_analysed_simulated_runs(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from matdb_app import analysis, simulate

    simulate.simulate("FASnIBr", {"z": [2.4, 2.6, 2.8, 3.0]}, mode="pl", n_times=40, out_dir=tmp_path, seed=3)
    assert ingest_.ingest(db, [tmp_path], progress=False).ok
    rep = analysis.analyze(db, progress=False)
    assert rep.analysed == 4
    with pytest.raises(ss.ScreeningError, match="simulated data are excluded"):
        ss.train(db, "stability", "FASnIBr")
    model = ss.train(db, "stability", "FASnIBr", include_simulated=True)
    assert model.spec.quantity == "pl_retention"
    assert model.card["n_train"] == 4 and model.card["training_provenance"] == ["simulated"]
    # a user may pick another metric for the family; one with no data says so
    with pytest.raises(ss.ScreeningError, match="no numeric"):
        ss.train(db, "stability", "FASnIBr", include_simulated=True, stability_metric="bandgap_shift_illumination")


def test_rank_on_dask_equals_numpy(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    a = ss.rank(lit_db, "FASnIBr", ["plqy"], n=10, include_simulated=True, chunk_size=500)
    b = ss.rank(lit_db, "FASnIBr", ["plqy"], n=10, include_simulated=True, chunk_size=500, backend="dask")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    with pytest.raises(ss.ScreeningError, match="unknown backend"):
        ss.rank(lit_db, "FASnIBr", ["plqy"], include_simulated=True, backend="spark")


def test_two_objectives_with_different_features_share_one_feature_set(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from screening.simulate import ground_truth

    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    # a second objective measured on z only (no milling time): its own model would use fewer features
    z = np.array([2.0, 2.3, 2.6, 2.9, 3.0])
    gap = ground_truth("FASnIBr", {"z": z})["bandgap"]
    pd.DataFrame({"family": "FASnIBr", "z": z, "bandgap [eV]": gap.round(4), "provenance": "simulated",
                  "source": "simulator"}).to_csv(tmp_path / "gap.csv", index=False)
    assert ingest_.ingest(lit_db, [f, tmp_path / "gap.csv"], progress=False).ok
    a = ss.train(lit_db, "plqy", "FASnIBr", include_simulated=True).features.descriptors
    b = ss.train(lit_db, "bandgap", "FASnIBr", include_simulated=True).features.descriptors
    assert a != b
    r = ss.rank(lit_db, "FASnIBr", ["plqy", "bandgap"], n=10, include_simulated=True)
    assert {"plqy_mean", "bandgap_mean", "pareto"} <= set(r.columns)
    front = pd.DataFrame(r.attrs["pareto_front"])
    assert len(front) >= 1 and {"plqy_mean", "bandgap_mean"} <= set(front.columns)
    g = ss.predict_grid(lit_db, "FASnIBr", "plqy", ["z"], n=5, include_simulated=True)
    assert (g["lo68"] <= g["mean"]).all() and (g["mean"] <= g["hi68"]).all() and g["lo68"].ge(0).all()
