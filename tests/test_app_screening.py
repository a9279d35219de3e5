"""Screening and Composition-maps pages against the real screening services (AppTest).

The database holds the bundled literature plus simulated FASnIBr PLQY and band-gap rows
(provenance simulated, from the simulator's hidden ground truth), so models train in seconds.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from labs import sun_rows, triple_cation_record
from streamlit.testing.v1 import AppTest

import matdb
from matdb_app import ingest as ingest_
from matdb_app import plots
from matdb_app import screening as sc
from matdb_app import screening_display as sd

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # a model fit with cross-validation of both kinds takes ~10 s on 2 busy cores
N_SIM = 15


def simulated_fasnibr(path: Path, n: int = N_SIM, seed: int = 0) -> Path:
    """A wide CSV of simulated FASnIBr results (PLQY in %, band gap in eV), provenance simulated.

    Compositions z ∈ [2, 3] and milling times of 5..40 min; values are the simulator's ground
    truth plus Gaussian noise (PLQY σ = 0.5 %, band gap σ = 0.01 eV).
    """
    from screening.simulate import ground_truth

    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 3.0, n).round(3)
    t = rng.choice([5.0, 10.0, 20.0, 40.0], n)
    truth = ground_truth("FASnIBr", {"z": z}, {"milling_time_min": t})
    pd.DataFrame(
        {
            "family": "FASnIBr",
            "z": z,
            "milling_time [min]": t,
            "plqy [%]": np.clip(truth["plqy"] + rng.normal(0, 0.5, n), 0, 100).round(3),
            "bandgap [eV]": (truth["bandgap"] + rng.normal(0, 0.01, n)).round(4),
            "provenance": "simulated",
            "source": "simulator",
        }
    ).to_csv(path, index=False)
    return path


def populate_screening(url: str, folder: Path) -> None:
    """Bundled literature + the simulated FASnIBr table, into the database at ``url``."""
    db = matdb.connect(url)
    try:
        assert ingest_.load_bundled(db, progress=False).ok
        report = ingest_.ingest(db, [simulated_fasnibr(folder / "sim.csv")], progress=False)
        assert report.ok, [f.reason for f in report.files]
    finally:
        db.close()


@pytest.fixture(scope="module")
def screening_sqlite(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> str:
    """One populated SQLite database shared by this module's tests (models are cached per URL)."""
    tmp = tmp_path_factory.mktemp("screening")
    path = tmp / "screening.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    populate_screening(url, tmp)
    return url


@pytest.fixture
def shared_url(screening_sqlite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MATDB_URL", screening_sqlite)
    monkeypatch.chdir(REPO)
    yield screening_sqlite


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def _decode(o: object) -> object:
    """Plotly's JSON with typed arrays ({"dtype", "bdata"[, "shape"]}) decoded to plain lists."""
    if isinstance(o, dict):
        if "bdata" in o and "dtype" in o:
            a = np.frombuffer(base64.b64decode(o["bdata"]), dtype=np.dtype(o["dtype"]))
            if "shape" in o:
                a = a.reshape([int(v) for v in str(o["shape"]).split(",")])
            return a.tolist()
        return {k: _decode(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_decode(v) for v in o]
    return o


def figures(at: AppTest) -> list[dict]:
    return [_decode(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]  # type: ignore[misc]


def trace_names(fig: dict) -> list[str]:
    return [t.get("name", "") for t in fig["data"]]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.warning]
    parts += (
        [e.value for e in at.info] + [e.value for e in at.error] + [e.value for e in at.success]
    )
    parts += [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def choose(at: AppTest, family: str, targets: list[str], simulated: bool = True) -> AppTest:
    at.selectbox(key="sc_family").set_value(family)
    run(at)
    at.multiselect(key=f"sc_targets_{family}").set_value(targets)
    at.checkbox(key="sc_sim").set_value(simulated)
    return run(at)


def train_on_page(at: AppTest, targets: list[str], kind: str, simulated: bool = True) -> AppTest:
    choose(at, "FASnIBr", targets, simulated)
    at.selectbox(key="sc_kind").set_value(kind)
    at.button(key="sc_train").click()
    return run(at)


# --- screening page ---------------------------------------------------------------------------


def test_screening_train_rank_propose(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole loop on each backend: model card, ranking, a recorded campaign in runs of two jars."""
    populate_screening(db_url, tmp_path)
    monkeypatch.setenv("MATDB_URL", db_url)
    monkeypatch.chdir(REPO)
    at = page("screening")
    train_on_page(at, ["plqy"], "forest")
    assert not at.error, [e.value for e in at.error]
    body = texts(at)
    assert "Model-based proposals" in body
    # the card: real CV block, provenance and the simulated-data warning
    assert "trained on **15** compositions/processes" in body
    assert "training data provenance: **simulated**" in body
    assert "trained on **SIMULATED** data" in body
    assert "only 15 training points" in body  # the card's own few-points warning
    metrics = frame_with(at, "random split")  # one column per CV block, one row per metric
    if "metric" in metrics.columns:
        metrics = metrics.set_index("metric")
    assert list(metrics.columns) == ["random split"]
    col = metrics["random split"]
    assert col["scheme"] == "LeaveOneOut"
    assert col["held out"] == "15"
    assert {"RMSE (%)", "MAE (%)", "68 % interval", "95 % interval"} <= set(metrics.index)
    facts = frame_with(at, "field").set_index("field")["value"]
    assert facts["model"] == "forest"
    assert facts["trained on"] == "simulated"
    cal = next(f for f in figures(at) if "Calibration" in f["layout"]["title"]["text"])
    assert cal["data"][0]["x"] == [0, 100] and cal["data"][0]["y"] == [0, 100]  # diagonal

    at.button(key="sc_rank").click()
    run(at)
    ranking = frame_with(at, "acquisition")
    assert len(ranking) > 0
    assert {"rank", "formula", "z", "plqy_mean", "plqy_std"} <= set(ranking.columns)
    bar = next(f for f in figures(at) if f["data"][0]["type"] == "bar")
    assert bar["data"][0]["error_y"]["visible"] is True

    at.number_input(key="sc_batch").set_value(4)
    at.number_input(key="sc_slots").set_value(2)
    at.multiselect(key="sc_shared_FASnIBr").set_value(["milling_time_min"])
    at.button(key="sc_propose").click()
    run(at)
    assert not at.error, [e.value for e in at.error]
    plan = frame_with(at, "proposal_id")
    assert len(plan) == 4 and plan["design"].eq("model").all()
    assert plan["plqy [%]"].isna().all()
    # runs of two jars share their milling time, and the compositions differ within a run
    assert sorted(plan["run"].value_counts()) == [2, 2]
    assert (plan.groupby("run")["milling_time_min"].nunique() == 1).all()
    assert (plan.groupby("run")["z"].nunique() == 2).all()
    assert plan["pred_p_feasible"].between(0, 1).all() and "pred_extrapolating" in plan.columns
    campaign = plan["proposal_id"].iloc[0].rsplit("-", 1)[0]
    assert f"Campaign `{campaign}`" in at.success[-1].value
    assert "fill in `plqy [%]`" in texts(at)
    assert "**Ingest** page" in texts(at)
    db = matdb.connect(db_url)
    try:
        recorded = sc.campaigns(db)
    finally:
        db.close()
    rows = recorded[recorded["campaign"] == campaign]
    assert sorted(rows["proposal_id"]) == sorted(plan["proposal_id"])
    assert set(rows["status"]) == {"proposed"}
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download plan (CSV)", "Download milling plan (CSV)"]
    mill = frame_with(at, "mass_mg")
    assert set(mill["proposal_id"]) == set(plan["proposal_id"])
    # masses of one composition add up to the batch mass (400 mg default)
    assert mill.groupby("proposal_id")["mass_mg"].sum().to_numpy() == pytest.approx(400.0)


def test_screening_with_too_few_results_offers_an_initial_design(shared_url: str) -> None:
    """Simulated rows excluded: FASnIBr has too few results, so the page says what it does instead."""
    at = choose(page("screening"), "FASnIBr", ["plqy"], simulated=False)
    assert not at.error, [e.value for e in at.error]
    info = " ".join(i.value for i in at.info)
    assert "Initial design" in info and "--" not in info  # no CLI flags in UI messages
    assert not at.get("button") or "sc_train" not in [b.key for b in at.button]
    at.number_input(key="sc_batch").set_value(3)
    at.button(key="sc_propose").click()
    run(at)
    assert not at.error, [e.value for e in at.error]
    plan = frame_with(at, "proposal_id")
    assert len(plan) == 3 and plan["design"].eq("initial_design").all()
    assert "initial design" in at.success[-1].value


def test_screening_a_labs_family_minimised_over_a_stored_pool(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A family and quantity defined in the lab's file, lower is better, chosen only from its pool."""
    rows = sun_rows()
    made, pool_rows = rows.head(8), rows.iloc[8:]
    db = matdb.connect(db_url)
    try:
        assert ingest_.ingest(db, [triple_cation_record(tmp_path / "sun.yaml", made)], progress=False).ok
        key = sc.store_uploaded_pool(db, "mixtures.csv", pool_rows[["a", "b"]].reset_index(drop=True), "CsFAMAPbI3")
    finally:
        db.close()
    monkeypatch.setenv("MATDB_URL", db_url)
    monkeypatch.chdir(REPO)
    at = choose(page("screening"), "CsFAMAPbI3", ["instability_index"], simulated=False)
    assert at.selectbox(key="sc_dir_CsFAMAPbI3_instability_index").value == "min"  # the file's default
    at.radio(key="sc_source").set_value("a stored pool")
    run(at)
    assert at.selectbox(key="sc_pool_key").value == key
    at.number_input(key="sc_batch").set_value(3)
    at.button(key="sc_propose").click()
    run(at)
    assert not at.error, [e.value for e in at.error]
    plan = frame_with(at, "proposal_id")
    assert "pred_instability_index_mean (lower is better)" in plan.columns
    pool_keys = {tuple(r) for r in pool_rows[["a", "b"]].to_numpy().round(9)}
    assert {tuple(r) for r in plan[["a", "b"]].to_numpy().round(9)} <= pool_keys
    assert len(plan) == 3


def test_screening_two_objectives_draw_a_pareto_front(shared_url: str) -> None:
    at = page("screening")
    train_on_page(at, ["plqy", "bandgap"], "forest")
    assert not at.error, [e.value for e in at.error]
    assert [h.value for h in at.subheader] == ["Model card: PLQY (%)", "Model card: Band gap (eV)"]
    at.number_input(key="sc_n").set_value(20)
    at.button(key="sc_rank").click()
    run(at)
    assert not at.error, [e.value for e in at.error]
    ranking = frame_with(at, "acquisition")
    assert len(ranking) == 20
    figs = figures(at)
    pareto = next(f for f in figs if f["layout"]["title"]["text"] == "Pareto front")
    front = next(t for t in pareto["data"] if t["name"] == "Pareto front")
    assert len(front["x"]) == int(ranking["pareto"].sum()) >= 1
    assert "Band gap (eV)" in pareto["layout"]["yaxis"]["title"]["text"]
    assert sum(f["data"][0]["type"] == "bar" for f in figs) == 2  # one bar chart per objective


# --- composition maps -------------------------------------------------------------------------


def open_map(at: AppTest, family: str, quantity: str) -> AppTest:
    at.selectbox(key="map_family").set_value(family)
    run(at)
    at.selectbox(key=f"map_q_{family}").set_value(quantity)
    return run(at)


def test_maps_overlay_one_axis(shared_url: str) -> None:
    at = open_map(page("maps"), "FASnIBr", "plqy")
    assert at.selectbox(key="map_x_FASnIBr_plqy").value == "z"
    assert len(figures(at)) == 1 and "model prediction" not in trace_names(figures(at)[0])
    at.toggle(key="map_pred").set_value(True)
    at.checkbox(key="map_pred_sim_FASnIBr").set_value(True)
    run(at)
    assert not at.error, [e.value for e in at.error]
    fig = figures(at)[0]
    names = trace_names(fig)
    assert {"model prediction", "model ±1σ", "simulated"} <= set(names)
    line = fig["data"][names.index("model prediction")]
    assert len(line["x"]) == 41 and min(line["x"]) == 0.0 and max(line["x"]) == 3.0
    assert all(0 <= v <= 100 for v in line["y"])
    band = fig["data"][names.index("model ±1σ")]
    assert all(0 <= v <= 100 for v in band["y"])  # clipped to the PLQY bounds
    body = texts(at)
    assert "trained on **SIMULATED** data" in body
    assert "**Model:**\n- only 15 training points" in body
    assert "held fixed: Milling time (min) = " in body


def test_maps_overlay_two_axes_is_a_heatmap_under_the_points(shared_url: str) -> None:
    at = open_map(page("maps"), "FASnIBr", "plqy")
    at.selectbox(key="map_y_FASnIBr_plqy").set_value("milling_time_min")
    at.toggle(key="map_pred").set_value(True)
    at.checkbox(key="map_pred_sim_FASnIBr").set_value(True)
    run(at)
    assert not at.error, [e.value for e in at.error]
    fig = figures(at)[0]
    assert fig["data"][0]["type"] == "heatmap" and fig["data"][0]["name"] == "model prediction"
    assert len(fig["data"][0]["x"]) == 31 and len(fig["data"][0]["z"]) == 31
    points = [t for t in fig["data"] if t["type"] == "scatter"]
    assert [t["name"] for t in points] == ["simulated"]
    # the points use the heatmap's colour range
    assert points[0]["marker"]["cmin"] == fig["data"][0]["zmin"]


def test_maps_model_on_three_points_shows_its_warnings(shared_url: str) -> None:
    at = open_map(page("maps"), "CsPbI3-agZIF62", "plqy")
    at.selectbox(key="map_y_CsPbI3-agZIF62_plqy").set_value("(none)")
    at.toggle(key="map_pred").set_value(True)
    run(at)
    assert any("only 3 training points" in w.value for w in at.warning)
    # literature only: no "trained on simulated data" warning (the sidebar still counts simulated samples)
    assert not any("SIMULATED" in w.value for w in at.warning)
    assert "model prediction" in trace_names(figures(at)[0])


def test_maps_model_without_data_is_a_message(shared_url: str) -> None:
    at = open_map(page("maps"), "FASnIBr", "plqy")
    at.toggle(key="map_pred").set_value(True)  # simulated rows not allowed -> nothing to learn
    run(at)
    assert not at.error  # too few results is expected, not a failure: said in an info box
    assert "simulated data are left out" in " ".join(i.value for i in at.info)
    assert "No prediction available" in texts(at)
    assert len(figures(at)) == 1  # the data are still drawn


# --- pure helpers on a real card ------------------------------------------------------------------


@pytest.fixture(scope="module")
def card(screening_sqlite: str) -> dict:
    db = matdb.connect(screening_sqlite)
    try:
        return sc.train(db, "plqy", "FASnIBr", "forest", True).card
    finally:
        db.close()


def test_metrics_and_calibration_frames_read_the_card(card: dict) -> None:
    m = sd.metrics_frame(card)
    cv = card["cv"]
    assert m.loc[0, "RMSE (%)"] == f"{cv['rmse']:.4g}"
    lo, hi = cv["coverage_95_ci95"]
    assert m.loc[0, "95 % interval"] == (
        f"{100 * cv['coverage_95']:.0f} % [{100 * lo:.0f}–{100 * hi:.0f} %]"
    )
    cal = sd.calibration_frame(card)
    assert cal["nominal"].tolist() == [0.68, 0.95]
    assert cal["observed"].tolist() == [cv["coverage_68"], cv["coverage_95"]]
    assert cal["ci_low"].iloc[1] == pytest.approx(lo) and cal["ci_high"].iloc[1] == pytest.approx(
        hi
    )
    assert not cal["reliable"].any()  # 15 held-out points < 30
    main, notes = sd.split_warnings(card)
    assert main[0].startswith("only 15 training points")
    assert all(not n.startswith("fit: ") for n in notes)


def test_frames_of_a_grouped_card_and_of_no_cv() -> None:
    block = {
        "scheme": "LeaveOneGroupOut",
        "n_heldout": 40,
        "rmse": 2.0,
        "mae": 1.5,
        "coverage_68": 0.5,
        "coverage_68_ci95": [0.35, 0.65],
        "coverage_95": 0.9,
        "coverage_95_ci95": [0.77, 0.96],
        "calibration_reliable": True,
    }
    card = {"unit": "eV", "cv": {**block, "scheme": "KFold(5, shuffled)"}, "cv_grouped": block}
    card["calibration"] = {
        str(lv): {
            "nominal": lv / 100,
            "fraction": block[f"coverage_{lv}"],
            "ci95": block[f"coverage_{lv}_ci95"],
            "n_heldout": 40,
            "reliable": True,
        }
        for lv in (68, 95)
    }
    m = sd.metrics_frame(card)
    assert m["validation"].tolist() == ["random split", "leave one family out"]
    assert m["68 % interval"].tolist() == ["50 % [35–65 %]"] * 2
    assert m["RMSE (eV)"].tolist() == ["2", "2"]
    cal = sd.calibration_frame(card)
    assert cal["validation"].tolist() == ["random split"] * 2 + ["leave one family out"] * 2
    fig = plots.calibration_plot(cal)
    assert [t.name for t in fig.data][1:] == [
        "random split (n = 40)",
        "leave one family out (n = 40)",
    ]
    assert list(fig.data[1].error_y.array) == pytest.approx([15.0, 6.0])
    assert list(fig.data[1].error_y.arrayminus) == pytest.approx([15.0, 13.0])
    assert sd.calibration_frame({"cv": None, "calibration": None}) is None
    assert (
        sd.metrics_frame({"cv": {"scheme": "x", "n_heldout": 0, "rmse": None}}).loc[0, "RMSE"]
        == "–"
    )


def test_candidate_labels_are_unique_per_process_setting() -> None:
    df = pd.DataFrame(
        {"formula": ["FASnBr3", "FASnBr3", "FASnI3"], "milling_time_min": [120.0, 60.0, np.nan]}
    )
    assert sd.candidate_labels(df).tolist() == [
        "#1 FASnBr3 · milling_time_min=120",
        "#2 FASnBr3 · milling_time_min=60",
        "#3 FASnI3",
    ]
    fig = plots.ranking_bar(
        df.assign(m=[1.0, 2.0, 3.0]), "plqy", "m", None, label_col="formula", axis_label="PLQY (%)"
    )
    assert list(fig.data[0].x) == ["#1 FASnBr3", "#2 FASnBr3", "#3 FASnI3"]  # no stacking
