"""Screening on the database: train (stored, reused), rank, propose (model or initial design),
a lab's own family and objective, candidate pools, lab-shaped runs, plans that ingest back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from labs import sun_rows, triple_cation_record

from matdb_app import ingest as ingest_
from matdb_app import screening as sc


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
    card = sc.train(lit_db, "plqy", "CsPbI3-agZIF62").card
    assert card["n_train"] == 3
    assert any("training points" in w for w in card["warnings"])
    assert card["training_provenance"] == ["literature"]
    assert card["include_simulated"] is False and card["direction"] == "max"


def test_a_stored_model_is_reused_while_its_data_are_unchanged(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    sc._MODELS.clear()  # as a new process would start
    first = sc.train(lit_db, "plqy", "FASnIBr", include_simulated=True)
    sc._MODELS.clear()
    again = sc.train(lit_db, "plqy", "FASnIBr", include_simulated=True)
    assert again.name == first.name and len(sc.saved_models(lit_db)) == 1
    more = _simulated_plqy_table(tmp_path / "more.csv", "FASnIBr", 3, seed=9)
    assert ingest_.ingest(lit_db, [more], progress=False).ok
    retrained = sc.train(lit_db, "plqy", "FASnIBr", include_simulated=True)
    assert retrained.name != first.name and retrained.card["n_train"] == 15
    assert len(sc.saved_models(lit_db)) == 2


def test_simulated_data_only_when_asked(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    with pytest.raises(sc.ScreeningError, match="simulated data are left out unless asked for"):
        sc.train(lit_db, "plqy", "FASnIBr")
    model = sc.train(lit_db, "plqy", "FASnIBr", include_simulated=True)
    assert model.card["training_provenance"] == ["simulated"] and model.card["n_train"] == 12


def test_propose_plan_round_trip(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 15)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    out = tmp_path / "plan.csv"
    plan = sc.propose(lit_db, "FASnIBr", ["plqy"], 4, include_simulated=True, out=out)
    t = plan.table
    assert plan.design == "model" and (t["design"] == "model").all()
    assert list(t.columns[:6]) == ["proposal_id", "campaign", "design", "run", "family", "formula"]
    assert {"z", "milling_time_min", "additive_mol_pct", "pred_p_feasible", "pred_extrapolation", "acquisition",
            "plqy [%]"} <= set(t.columns)
    assert "pred_plqy_mean [%] (higher is better)" in t.columns  # the direction is in the header
    assert t["pred_plqy_mean [%] (higher is better)"].between(0, 100).all()
    # continuous search rounded to the lab's resolution: 1 min and 1 mol %
    assert np.allclose(t["milling_time_min"], t["milling_time_min"].round())
    filled = pd.read_csv(out)
    filled.loc[0, "plqy [%]"] = 3.5
    filled.loc[1, "plqy [%]"] = 4.0
    filled["outcome"] = filled["outcome"].astype(object)
    filled.loc[3, "outcome"] = "wrong_phase"  # this synthesis failed: a sample with no result
    filled.to_csv(out, index=False)
    report = ingest_.ingest(lit_db, [out], progress=False)
    assert report.ok, [x.reason for x in report.files]
    camp = sc.campaigns(lit_db).set_index("proposal_id")
    assert camp.loc[t["proposal_id"][0], "status"] == "made"
    assert camp.loc[t["proposal_id"][2], "status"] == "proposed"
    failed = lit_db.samples(sample=t["proposal_id"][3])
    assert failed["outcome"].iloc[0] == "wrong_phase"
    assert camp.loc[t["proposal_id"][0], "objectives"][0]["direction"] == "max"  # stored on the campaign
    s = lit_db.samples(sample=t["proposal_id"][0])
    assert s["provenance"].iloc[0] == "measured"
    assert sc.train(lit_db, "plqy", "FASnIBr", include_simulated=True).card["n_train"] == 17
    plan2 = sc.propose(lit_db, "FASnIBr", ["plqy"], 4, include_simulated=True)
    cols = ["z", "milling_time_min", "additive_mol_pct"]
    made = {tuple(r) for r in t[cols].head(2).to_numpy().round(9)}
    assert not made & {tuple(r) for r in plan2.table[cols].to_numpy().round(9)}


def test_a_family_with_no_results_gets_an_initial_design(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    st = sc.status(lit_db, "FAMAPbI3", ["plqy:max"])
    assert st.mode == "initial_design" and "initial design" in st.message and "--" not in st.message
    plan = sc.propose(lit_db, "FAMAPbI3", ["plqy:max"], 5, out=tmp_path / "p.csv")
    assert plan.design == "initial_design" and (plan.table["design"] == "initial_design").all()
    assert len(plan.table) == 5 and plan.table["x"].between(0, 1).all()
    assert plan.table["milling_time_min"].between(10, 180).all()
    assert any("initial design" in m for m in plan.messages)
    assert pd.read_csv(tmp_path / "p.csv")["design"].eq("initial_design").all()


def test_a_labs_own_family_and_a_lower_is_better_objective(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = sun_rows(12)
    assert ingest_.ingest(db, [triple_cation_record(tmp_path / "sun.yaml", rows)], progress=False).ok
    (o,) = sc.objectives_of(db, "CsFAMAPbI3", ["instability_index"])
    assert o.direction == "min"  # the declared quantity's default
    card = sc.train(db, "instability_index:min", "CsFAMAPbI3").card
    assert card["variables"] == ["a", "b"] and card["n_train"] == 12
    ranked = sc.rank(db, "CsFAMAPbI3", ["instability_index:min"], n=10)
    assert ranked["acquisition"].is_monotonic_decreasing
    assert ((ranked["a"] + ranked["b"]) <= 1 + 1e-9).all()  # on the A-site simplex
    # lower is better: ranked by the predicted value alone, the best are predicted more stable than
    # the data's average (the default UCB ranking also rewards uncertainty, so it is not checked here)
    by_mean = sc.rank(db, "CsFAMAPbI3", ["instability_index:min"], n=10, acquisition="mean")
    assert by_mean["instability_index_mean"].head(3).mean() < rows["y"].mean()
    worst = sc.rank(db, "CsFAMAPbI3", ["instability_index:max"], n=10, acquisition="mean")
    assert by_mean["instability_index_mean"].head(3).mean() < worst["instability_index_mean"].head(3).mean()
    plan = sc.propose(db, "CsFAMAPbI3", ["instability_index:min"], 3, batch_mass_mg=400)
    assert "pred_instability_index_mean (lower is better)" in plan.table.columns
    assert ((plan.table["a"] + plan.table["b"]) <= 1 + 1e-9).all()
    mp = plan.milling
    assert set(mp["precursor"]) == {"CsI", "FAI", "MAI", "PbI2"} and (mp["mass_mg"] >= -1e-9).all()


def test_a_candidate_pool_is_scored_and_chosen_from_exactly(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = sun_rows(94)
    made, pool_rows = rows.head(6), rows.iloc[6:]
    assert ingest_.ingest(db, [triple_cation_record(tmp_path / "sun.yaml", made)], progress=False).ok
    pool = tmp_path / "pool.csv"
    pool_rows[["a", "b"]].to_csv(pool, index=False)
    plan = sc.propose(db, "CsFAMAPbI3", ["instability_index:min"], 4, candidates=pool)
    keys = {tuple(r) for r in pool_rows[["a", "b"]].to_numpy().round(9)}
    chosen = {tuple(r) for r in plan.table[["a", "b"]].to_numpy().round(9)}
    assert chosen <= keys and len(chosen) == 4
    ranked = sc.rank(db, "CsFAMAPbI3", ["instability_index:min"], n=200, candidates=pool)
    assert len(ranked) == len(pool_rows)  # exactly those rows, none of the made ones
    key = sc.save_pool(db, pool, "CsFAMAPbI3", "sun-pool")
    again = sc.propose(db, "CsFAMAPbI3", ["instability_index:min"], 2, candidates=key)
    assert {tuple(r) for r in again.table[["a", "b"]].to_numpy().round(9)} <= keys


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a,b,colour\n0.1,0.2,red\n", r"pool.csv: unknown column 'colour'"),
        ("a,b\n0.1,0.2\n0.7,0.6\n", r"pool.csv, row 3, field 'A:MA'.*outside 0..1"),
        ("a,b\n0.1,x\n", r"pool.csv, row 2, field 'b': 'x' is not a number"),
        ("a\n0.1\n", r"pool.csv: no column 'b'"),
        ("a,b,milling_time_min\n0.1,0.2,-5\n", r"pool.csv, row 2, field 'milling_time_min'.*physical minimum"),
    ],
)
def test_bad_pool_files_name_the_file_row_and_field(db, tmp_path: Path, text: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    assert ingest_.ingest(db, [triple_cation_record(tmp_path / "sun.yaml", sun_rows(4))], progress=False).ok
    (tmp_path / "pool.csv").write_text(text)
    before = db.table_counts()
    with pytest.raises(sc.ScreeningError, match=pattern):
        sc.propose(db, "CsFAMAPbI3", ["instability_index:min"], 2, candidates=tmp_path / "pool.csv")
    assert db.table_counts() == before


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"objectives": ["happiness:max"]}, "unknown objective 'happiness'"),
        ({"objectives": ["plqy:sideways"]}, "unknown direction 'sideways'"),
        ({"n": 3, "slots": 2}, "--slots 2 does not divide the batch of 3"),
        ({"n": 4, "slots": 2, "shared": ("milling_frequency_hz",)}, "not a variable of the space"),
        ({"fixed": {"milling_time_min": 1000}}, "outside its range"),
        ({"fixed": {"aging_time_h": 5}}, "not a variable of the space"),
        ({"space": {"constraints": ["z >= 2.5", "z <= 2.0"]}}, "leaves no candidates"),
    ],
)
def test_bad_proposal_requests_are_one_line_and_write_nothing(lit_db, kwargs: dict, pattern: str) -> None:  # type: ignore[no-untyped-def]
    args = {"objectives": ["plqy"], "n": 2, **kwargs}
    before = lit_db.table_counts()
    with pytest.raises(sc.ScreeningError, match=pattern) as exc:
        sc.propose(lit_db, "FASnIBr", args.pop("objectives"), args.pop("n"), **args)
    assert "\n" not in str(exc.value)
    assert lit_db.table_counts() == before


def test_runs_of_two_jars_share_the_milling_time(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    plan = sc.propose(lit_db, "FASnIBr", ["plqy"], 4, include_simulated=True, slots=2,
                      shared=("milling_time_min",), batch_mass_mg=300)
    t = plan.table
    assert t["run"].tolist() == [1, 1, 2, 2]
    assert (t.groupby("run")["milling_time_min"].nunique() == 1).all()
    assert set(plan.milling["run"]) == {1, 2}


def test_milling_plan_reproduces_the_paper_masses(lit_db) -> None:  # type: ignore[no-untyped-def]
    # Li et al. 2023: CsI 144.17 mg + PbI2 255.83 mg make 400 mg of CsPbI3
    plan = pd.DataFrame({"proposal_id": ["p1", "p2"], "family": ["CsPbI3-agZIF62", "FAMAPbI3"],
                         "formula": ["CsPbI3", "FAPbI3"], "X": [1.0, np.nan], "x": [np.nan, 1.0]})
    plan["params"] = ['{"X": 1.0}', '{"x": 1.0}']
    mp = sc.milling_plan(lit_db, plan.drop(columns=["X", "x"]), 400.0).set_index(["proposal_id", "precursor"])
    assert mp.loc[("p1", "CsI"), "mass_mg"] == pytest.approx(144.17, abs=0.01)
    assert mp.loc[("p1", "PbI2"), "mass_mg"] == pytest.approx(255.83, abs=0.01)
    fai, pbi2 = mp.loc[("p2", "FAI")], mp.loc[("p2", "PbI2")]
    assert fai["amount_mmol"] == pytest.approx(pbi2["amount_mmol"])
    assert fai["mass_mg"] + pbi2["mass_mg"] == pytest.approx(400.0)
    with pytest.raises(sc.ScreeningError, match="positive number"):
        sc.milling_plan(lit_db, plan, -5)


def test_stability_and_unknown_targets(lit_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sc.ScreeningError, match="a model needs at least 3"):
        sc.train(lit_db, "stability", "FAMAPbI3")
    with pytest.raises(sc.ScreeningError, match="unknown objective 'happiness'"):
        sc.train(lit_db, "happiness", "FAMAPbI3")


def test_predict_grid_rank_and_two_objectives(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from screening.simulate import ground_truth

    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    z = np.array([2.0, 2.3, 2.6, 2.9, 3.0])
    gap = ground_truth("FASnIBr", {"z": z})["bandgap"]
    pd.DataFrame({"family": "FASnIBr", "z": z, "bandgap [eV]": gap.round(4), "provenance": "simulated",
                  "source": "simulator"}).to_csv(tmp_path / "gap.csv", index=False)
    assert ingest_.ingest(lit_db, [f, tmp_path / "gap.csv"], progress=False).ok
    g = sc.predict_grid(lit_db, "FASnIBr", "plqy", ["z"], n=11, include_simulated=True)
    assert len(g) == 11 and g["mean"].between(0, 100).all() and (g["std"] > 0).all()
    assert (g["lo68"] <= g["mean"]).all() and (g["mean"] <= g["hi68"]).all()
    r = sc.rank(lit_db, "FASnIBr", ["plqy", "bandgap:min"], n=10, include_simulated=True)
    assert {"plqy_mean", "bandgap_mean", "pareto"} <= set(r.columns)
    assert r["acquisition"].is_monotonic_decreasing
    front = pd.DataFrame(r.attrs["pareto_front"])
    # on the front no candidate has both a higher PLQY and a lower band gap than another
    for _, p in front.iterrows():
        assert not ((front["plqy_mean"] > p["plqy_mean"]) & (front["bandgap_mean"] < p["bandgap_mean"])).any()


def test_rank_on_dask_equals_numpy(lit_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = _simulated_plqy_table(tmp_path / "sim.csv", "FASnIBr", 12)
    assert ingest_.ingest(lit_db, [f], progress=False).ok
    a = sc.rank(lit_db, "FASnIBr", ["plqy"], n=10, include_simulated=True, chunk_size=500)
    b = sc.rank(lit_db, "FASnIBr", ["plqy"], n=10, include_simulated=True, chunk_size=500, backend="dask")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    with pytest.raises(sc.ScreeningError, match="unknown backend"):
        sc.rank(lit_db, "FASnIBr", ["plqy"], include_simulated=True, backend="spark")
