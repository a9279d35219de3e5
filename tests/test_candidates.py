"""Candidate spaces, constraints and chunked ranking (screening.candidates)."""

from __future__ import annotations

import math
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

from matdb.families import CompositionError, Family, builtin_families, get_family
from screening.candidates import (
    CandidateSpace,
    CandidateSpaceError,
    Dimension,
    EmptySpaceWarning,
    default_space,
    default_spaces,
    iter_candidates,
    load_spaces,
    rank_candidates,
    space_from_dict,
    tolerance_factor,
)
from screening.surrogate import train_surrogate

SPACE_YAML = """\
family: FASnIBr
parameters:
  z: {min: 2, max: 3, step: 0.1}
process:
  milling_time_min: {values: [5, 10, 15]}
constraints:
  tolerance_factor: [0.8, 1.0]
  exclude_elements: [Pb]
"""


def grid_space(slug: str, **constraints) -> CandidateSpace:
    """A grid space (21 values per parameter, 8 milling times) as a user asks for one."""
    fam = get_family(slug)
    (sp,) = space_from_dict({
        "family": slug, "sampling": "grid",
        "parameters": {p: {"min": fam.parameters[p].min, "max": fam.parameters[p].max,
                           "step": (fam.parameters[p].max - fam.parameters[p].min) / 20} for p in fam.parameters},
        "process": {"milling_time_min": {"values": [10, 20, 30, 45, 60, 90, 120, 180]}},
        "constraints": constraints,
    })
    return sp


def test_default_spaces_are_continuous_over_the_studied_ranges():
    sp = default_space("FASnIBr")
    assert sp.sampling == "continuous"
    assert sp.columns == ["z", "milling_time_min", "additive_mol_pct"]
    dom = sp.domain()
    assert [(v.name, v.lo, v.hi, v.resolution) for v in dom.variables] == [
        ("z", 0.0, 3.0, pytest.approx(0.03)), ("milling_time_min", 2.0, 120.0, 1.0),
        ("additive_mol_pct", 0.0, 150.0, 1.0)]
    df = pd.concat(sp.iter_chunks(1000), ignore_index=True)
    assert len(df) == sp.size and not df.duplicated(sp.columns).any()
    assert df["milling_time_min"].between(2, 120).all()
    # the composite's default space holds no pure glass (X = 0 contains no emitter) and no pure CsPbI3
    composite = default_space("CsPbI3-agZIF62").domain()
    x = composite.variables[composite.names.index("X")]
    t = composite.variables[composite.names.index("sintering_temperature_C")]
    assert (x.lo, x.hi, x.resolution) == (0.01, 0.85, 0.01)
    assert (t.lo, t.hi, t.resolution) == (150.0, 400.0, 5.0)
    # solution-processed films: no milling axes offered for FAPb(I,Br)3
    assert default_space("FAPbIBr").columns == ["x"]
    user = Family.from_dict({"slug": "CsFAMA", "structure": "ABX3",
                             "parameters": {"a": {"min": 0, "max": 0.5}, "b": {"min": 0, "max": 1}},
                             "sites": {"A": {"Cs": "a", "FA": "b", "MA": "1-a-b"}, "B": {"Pb": 1}, "X": {"I": 1}}})
    usp = default_space(user)
    assert usp.columns == ["a", "b"]  # a lab's own family: its parameters, no invented process axes
    pts = usp.domain().sample(500)
    assert ((pts["a"] + pts["b"]) <= 1 + 1e-9).all()  # the A-site simplex as a linear constraint


def test_yaml_space_from_the_issue(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE_YAML)
    (sp,) = load_spaces(path)
    assert sp.family.slug == "FASnIBr"
    assert sp.parameters["z"].grid.tolist() == pytest.approx(
        [2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])
    assert list(sp.process) == ["milling_time_min"]
    assert sp.size == 33
    df = pd.concat(sp.iter_chunks(7), ignore_index=True)  # chunks smaller than the space
    t = tolerance_factor(sp.family, {"z": df["z"].to_numpy()})
    assert np.all((t >= 0.8) & (t <= 1.0))
    # FASnI(z)Br(3-z): t = (r_FA + r_X) / (sqrt 2 (r_Sn + r_X)), r_X = (z r_I + (3-z) r_Br) / 3
    r = {s: sp.family.species(s).radius("XII" if s == "FA" else "VI")
         for s in ("FA", "Sn", "I", "Br")}
    keep = []
    for z in np.round(np.arange(2.0, 3.05, 0.1), 10):
        rx = (z * r["I"] + (3 - z) * r["Br"]) / 3
        if 0.8 <= (r["FA"] + rx) / (math.sqrt(2) * (r["Sn"] + rx)) <= 1.0:
            keep.append(z)
    assert 0 < len(keep) < 11  # the window removes some but not all compositions
    assert sorted(df["z"].unique()) == pytest.approx(keep)
    assert len(df) == len(keep) * 3
    assert load_spaces(path)[0].to_dict()["constraints"] == {
        "tolerance_factor": [0.8, 1.0], "exclude_elements": ["Pb"]}


def test_tolerance_factor_hand_value_and_agreement_with_descriptors():
    fam = get_family("FAMAPbI3")
    r = {s: fam.species(s).radius("XII" if s in ("FA", "MA") else "VI")
         for s in ("FA", "MA", "Pb", "I")}
    t = tolerance_factor(fam, {"x": np.array([1.0, 0.0, 0.5])})
    # FAPbI3, MAPbI3, FA0.5MA0.5PbI3 by hand: (r_A + r_I) / (sqrt 2 (r_Pb + r_I))
    assert t[0] == pytest.approx((r["FA"] + r["I"]) / (math.sqrt(2) * (r["Pb"] + r["I"])))
    assert t[1] == pytest.approx((r["MA"] + r["I"]) / (math.sqrt(2) * (r["Pb"] + r["I"])))
    ra = (r["FA"] + r["MA"]) / 2
    assert t[2] == pytest.approx((ra + r["I"]) / (math.sqrt(2) * (r["Pb"] + r["I"])))
    from screening.descriptors import family_descriptors

    for slug, f in builtin_families().items():
        params = {p: np.linspace(v.min, v.max, 11) for p, v in f.parameters.items()}
        ref = family_descriptors(f, params)["tolerance_factor"].to_numpy()
        assert tolerance_factor(f, params) == pytest.approx(ref, rel=1e-12), slug


def test_tolerance_window_filters_compositions():
    sp = grid_space("FAMAPbI3", tolerance_factor=(0.95, 1.0))
    df = pd.concat(sp.iter_chunks(), ignore_index=True)
    fam = sp.family
    r = {s: fam.species(s).radius("XII" if s in ("FA", "MA") else "VI")
         for s in ("FA", "MA", "Pb", "I")}
    # t(x) = (x r_FA + (1-x) r_MA + r_I) / (sqrt 2 (r_Pb + r_I)) >= 0.95  <=>  x >= x_min
    x_min = (0.95 * math.sqrt(2) * (r["Pb"] + r["I"]) - r["I"] - r["MA"]) / (r["FA"] - r["MA"])
    assert x_min == pytest.approx(0.5125, abs=0.01)  # with Shannon/Kieslich radii
    grid = np.linspace(0, 1, 21)
    kept = grid[grid >= x_min]
    assert sorted(df["x"].unique()) == pytest.approx(kept.tolist())
    assert len(df) == len(kept) * 8


def test_pb_free_excludes_pb_families():
    spaces = default_spaces(exclude_elements=["Pb"])
    by_family = {}
    with pytest.warns(EmptySpaceWarning, match="Pb") as rec:
        for sp in spaces:
            by_family[sp.family.slug] = sum(len(c) for c in sp.iter_chunks())
    assert by_family == {
        "FAMAPbI3": 0, "CsPbI3-agZIF62": 0, "FAPbIBr": 0,
        "CsNaAgBiCl6": default_space("CsNaAgBiCl6").size, "FASnIBr": default_space("FASnIBr").size,
    }
    assert any("FAMAPbI3 has Pb on site B in every composition" in str(w.message) for w in rec)
    assert default_space("FAMAPbI3", exclude_elements=["Pb"]).empty_reason() is not None


def test_element_exclusion_on_a_mixed_site():
    sp = grid_space("FAPbIBr", exclude_elements=["Br"])
    df = pd.concat(sp.iter_chunks(), ignore_index=True)
    assert df["x"].unique().tolist() == [0.0]  # only the pure iodide has no Br
    with pytest.raises(CandidateSpaceError, match="not an element symbol"):
        default_space("FAPbIBr", exclude_elements=["bromine"])


def test_vectorised_constraints_match_family_validate():
    fam = Family.from_dict({
        "slug": "TestCharge", "structure": "ABX3",
        "parameters": {"x": {"min": 0, "max": 1}, "y": {"min": 0, "max": 1}},
        # charge = 1 + 2 (1-x-y) + 3 x + y - 3 = x - y: neutral only for x = y;
        # Pb occupancy 1-x-y < 0 for x + y > 1
        "sites": {"A": {"Cs": 1}, "B": {"Pb": "1-x-y", "Bi": "x", "Ag": "y"}, "X": {"I": 1}},
    })
    grid = Dimension("x", min=0, max=1, step=0.25)
    sp = CandidateSpace(fam, {"x": grid, "y": Dimension("y", min=0, max=1, step=0.25)}, sampling="grid")
    raw = sp.raw_chunk(0, sp.size)
    expected = []
    for x, y in zip(raw["x"], raw["y"], strict=True):
        try:
            fam.validate({"x": x, "y": y})
            expected.append(True)
        except CompositionError:
            expected.append(False)
    assert sp.valid_mask(raw).tolist() == expected
    assert sum(expected) == 3  # (0,0), (0.25,0.25), (0.5,0.5)


def test_space_errors_name_the_field(tmp_path):
    bad_range = tmp_path / "a.yaml"
    bad_range.write_text("family: FASnIBr\nparameters:\n  z: {min: 0, max: 4, step: 1}\n")
    with pytest.raises(CandidateSpaceError, match="parameters.z spans 0..4, outside the range"):
        load_spaces(bad_range)
    unknown = tmp_path / "b.yaml"
    unknown.write_text("family: FASnIBr\nconstraints:\n  max_cost: 3\n")
    with pytest.raises(CandidateSpaceError, match="unknown constraint.*max_cost") as exc:
        load_spaces(unknown)
    assert exc.value.field == "constraints"
    cont = tmp_path / "c.yaml"
    cont.write_text("family: FASnIBr\nsampling: grid\nprocess:\n  aging_time_h: {min: 0, max: 168}\n")
    with pytest.raises(CandidateSpaceError, match="aging_time_h has no step"):
        load_spaces(cont)
    with pytest.raises(CompositionError, match="unknown family"):
        load_spaces(_write(tmp_path / "d.yaml", "family: CsPbBr3\n"))


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("sampling", ["sobol", "lhs"])
def test_continuous_sampling_is_reproducible_by_chunk(tmp_path, sampling):
    path = _write(tmp_path / "s.yaml", f"""\
family: FAMAPbI3
sampling: {sampling}
n_samples: 300
seed: 4
process:
  aging_time_h: {{min: 0, max: 168}}
  milling_time_min: {{values: [5, 10]}}
""")
    (sp,) = load_spaces(path)
    whole = sp.chunk(0, 300)
    parts = pd.concat([sp.chunk(0, 128), sp.chunk(128, 300)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    assert whole["aging_time_h"].between(0, 168).all()
    assert set(whole["milling_time_min"]) == {5.0, 10.0}
    assert whole["x"].nunique() > 15  # x takes grid values, spread over the grid
    if sampling == "lhs":  # one sample per stratum of the continuous axis
        strata = np.floor(whole["aging_time_h"].to_numpy() / 168 * 300).astype(int)
        assert sorted(strata) == list(range(300))


# --- ranking -----------------------------------------------------------------------------------

FEATURES = ["A:FA", "A:MA", "A:Cs", "B:Sn", "B:Pb", "X:I", "X:Br", "milling_time_min",
            "additive_mol_pct"]


def featurize(df: pd.DataFrame) -> np.ndarray:
    """Site fractions of FAMAPbI3 / FASnIBr / FAPbIBr in shared columns + two process columns
    (additive 0 where a family has none)."""
    out = np.zeros((len(df), len(FEATURES)))
    for slug in pd.unique(df["family"]):
        rows = np.flatnonzero(df["family"].to_numpy() == slug)
        fam = get_family(slug)
        fm = fam.fraction_matrix({p: df[p].to_numpy()[rows] for p in fam.parameters})
        for j, col in enumerate(fam.columns):
            out[rows, FEATURES.index(col)] = fm[:, j]
    out[:, -2] = df["milling_time_min"].to_numpy()
    if "additive_mol_pct" in df:
        out[:, -1] = df["additive_mol_pct"].fillna(0.0).to_numpy()
    return out


@cache
def models():
    spaces = tuple(grid_space(s) for s in ["FAMAPbI3", "FASnIBr", "FAPbIBr"])
    rng = np.random.default_rng(0)
    frames = [sp.raw_chunk(0, sp.size).sample(12, random_state=1) for sp in spaces]
    train = pd.concat(frames, ignore_index=True)
    X = featurize(train)
    plqy = 100 / (1 + np.exp(-(2 * X[:, 0] - 2 * X[:, 3] + 0.02 * X[:, 7] - 1)))
    stab = np.clip(0.8 - 0.5 * X[:, 0] + 0.001 * X[:, 8] + rng.normal(0, 0.02, len(X)), 0, 1)
    kw = {"feature_names": FEATURES, "kind": "gp", "cv": False, "n_restarts": 0}
    return spaces, {"plqy": train_surrogate(X, plqy, target="plqy", **kw),
                    "stability": train_surrogate(X, stab, target="stability", **kw)}


def _same_front(a: dict, b: dict) -> None:
    """Same candidates on the front; predictions equal up to BLAS round-off (block sizes)."""
    assert a.keys() == b.keys()
    assert a["space"] == b["space"] and a["candidate_id"] == b["candidate_id"]
    for k in a:
        if k.endswith(("_mean", "_std", "_acq")) or k == "acquisition":
            np.testing.assert_allclose(a[k], b[k], rtol=1e-7, atol=1e-6)


def _key(df: pd.DataFrame) -> list[tuple[int, int]]:
    return list(zip(df["space"], df["candidate_id"], strict=True))


def test_chunked_ranking_equals_unchunked():
    spaces, sur = models()
    whole = rank_candidates(sur, featurize, spaces, chunk_size=10**7, top_k=25)
    chunked = rank_candidates(sur, featurize, spaces, chunk_size=777, top_k=25)
    assert _key(whole) == _key(chunked)
    np.testing.assert_allclose(whole["acquisition"], chunked["acquisition"], rtol=1e-9)
    assert whole["pareto"].tolist() == chunked["pareto"].tolist()
    _same_front(whole.attrs["pareto_front"], chunked.attrs["pareto_front"])
    total = sum(sp.size for sp in spaces)
    assert whole.attrs["n_scored"] == total
    for col in ("plqy_mean", "plqy_std", "stability_mean", "stability_std", "acquisition",
                "pareto", "x", "z", "milling_time_min"):
        assert col in whole.columns
    assert whole["acquisition"].is_monotonic_decreasing
    # brute force: score every candidate at once and compare the top 25
    allc = pd.concat(iter_candidates(spaces, 10**7), ignore_index=True)
    X = featurize(allc)
    score = 0.0
    for s in sur.values():  # UCB on the latent scale, divided by the latent range of the training data
        mu, sd = s.predict_latent(X, noise=False)
        score = score + 0.5 * (mu + 2 * sd) / np.ptp(s.transform_.forward(s.y_train_))
    best = np.argsort(-score, kind="stable")[:25]
    assert whole["acquisition"].to_numpy() == pytest.approx(score[best], rel=1e-9)


def test_ranking_pareto_flag_and_weights():
    spaces, sur = models()
    res = rank_candidates(sur, featurize, spaces, chunk_size=2000, top_k=50,
                          weights={"plqy": 1.0, "stability": 0.0}, acquisition="mean")
    # with all weight on PLQY and acquisition = mean, the first row has the largest PLQY mean,
    # so nothing dominates it in PLQY and it is on the front unless tied
    front = pd.DataFrame(res.attrs["pareto_front"])
    assert res["plqy_mean"].iloc[0] == pytest.approx(front["plqy_mean"].max())
    on_front = set(_key(front))
    assert res["pareto"].tolist() == [k in on_front for k in _key(res)]
    from screening.pareto import pareto_mask

    F = front[["plqy_mean", "stability_mean"]].to_numpy()
    assert pareto_mask(F).all()
    with pytest.raises(CandidateSpaceError, match="unknown objective"):
        rank_candidates(sur, featurize, spaces, weights={"cost": 1.0})


def test_ranking_skips_made_experiments():
    spaces, sur = models()
    first = rank_candidates(sur, featurize, spaces[:1], top_k=5)
    made = first.head(2)[["family", *spaces[0].columns]]
    again = rank_candidates(sur, featurize, spaces[:1], top_k=5, made=made)
    assert not set(_key(first.head(2))) & set(_key(again))
    assert _key(again)[:3] == _key(first)[2:5]


def test_ranking_pb_free_gives_clear_message():
    spaces, sur = models()
    pb_only = [default_space("FAMAPbI3", exclude_elements=["Pb"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptySpaceWarning)
        with pytest.raises(CandidateSpaceError, match="no candidates to rank: family FAMAPbI3 "
                                                      "has Pb"):
            rank_candidates(sur, featurize, pb_only)
        mixed = default_spaces(["FAMAPbI3", "FASnIBr"], exclude_elements=["Pb"])
        res = rank_candidates(sur, featurize, mixed, top_k=10)
    assert set(res["family"]) == {"FASnIBr"}
    assert res.attrs["n_spaces_empty"] == 1


def test_dask_backend_equals_numpy_backend():
    from distributed import Client, LocalCluster

    spaces, sur = models()
    ref = rank_candidates(sur, featurize, spaces, chunk_size=1500, top_k=20)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        res = rank_candidates(sur, featurize, spaces, chunk_size=1500, top_k=20,
                              backend="dask", client=client, max_in_flight=2)
    pd.testing.assert_frame_equal(ref, res, check_exact=False, rtol=1e-9)
    _same_front(ref.attrs["pareto_front"], res.attrs["pareto_front"])
    assert ref.attrs["n_scored"] == res.attrs["n_scored"]


def test_descriptor_featurizer_and_loading_alias(tmp_path):
    from screening.candidates import DescriptorFeaturizer

    (sp,) = load_spaces(_write(tmp_path / "zif.yaml", """\
family: CsPbI3-agZIF62
parameters:
  loading: {values: [0.05, 0.25]}
process:
  sintering_temperature_C: {values: [250, 275]}
"""))
    df = sp.chunk(0, sp.size)
    assert df[["X", "sintering_temperature_C"]].values.tolist() == [
        [0.05, 250.0], [0.05, 275.0], [0.25, 250.0], [0.25, 275.0]]
    feat = DescriptorFeaturizer(("tolerance_factor", "sintering_temperature_C"))
    X = feat(df)
    assert X.shape == (4, 2)
    assert X[:, 0] == pytest.approx(tolerance_factor(sp.family, {"X": df["X"].to_numpy()}))
    assert X[:, 1].tolist() == [250.0, 275.0, 250.0, 275.0]
    with pytest.raises(CandidateSpaceError, match="not available"):
        DescriptorFeaturizer(("no_such_descriptor",))(df)
