from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from matdb.families import CompositionError, builtin_families
from screening.descriptors import (
    AGZIF62_TG_C,
    ALWAYS_DEFINED,
    BANDGAP_BOWING,
    BANDGAP_END_MEMBERS,
    CSPBI3_TRANSITION_C,
    DESCRIPTORS,
    LATTICE_END_MEMBERS,
    POLARIZABILITY_A3,
    POLARIZABILITY_MAGPIE_EXCEPTIONS,
    CompositionDescriptors,
    compute_descriptors,
    descriptor_names,
    family_descriptors,
    site_fraction_frame,
    universal_columns,
)

R = 8.314462618  # J/(mol K)
FAMS = builtin_families()


def one(slug: str, **params: float) -> pd.Series:
    """Descriptors of a single composition of a built-in family."""
    return family_descriptors(FAMS[slug], {k: np.array([v]) for k, v in params.items()}).iloc[0]


# --- registry ---------------------------------------------------------------------------------


def test_every_descriptor_has_label_unit_and_description() -> None:
    from matdb.units import parse_unit

    for d in DESCRIPTORS.values():
        assert d.label and d.description
        parse_unit(d.unit)  # a real pint unit ("" = dimensionless)
        if d.group == "composition" and d.name.startswith(("r_", "tolerance", "bartel", "vegard")):
            assert "doi:" in d.citation


def test_vegard_values_all_cite_a_doi() -> None:
    for e in (*BANDGAP_END_MEMBERS, *LATTICE_END_MEMBERS):
        assert "doi:" in e.citation
    for b in BANDGAP_BOWING:
        assert "doi:" in b.citation


# --- hand-checked values ----------------------------------------------------------------------


def test_fa08ma02pbi3_by_hand() -> None:
    d = one("FAMAPbI3", x=0.8)
    # r_A = 0.8 * 2.53 (FA+, Kieslich) + 0.2 * 2.17 (MA+) = 2.024 + 0.434 = 2.458 Å
    assert d["r_A"] == pytest.approx(2.458)
    # r_B = 1.19 (Pb2+, VI), r_X = 2.20 (I-, VI)
    assert d["r_B"] == pytest.approx(1.19) and d["r_X"] == pytest.approx(2.20)
    # t = (2.458 + 2.20) / (sqrt 2 * (1.19 + 2.20)) = 4.658 / (1.414214 * 3.39) = 4.658 / 4.794184
    assert d["tolerance_factor"] == pytest.approx(4.658 / 4.794184, rel=1e-6)
    assert d["tolerance_factor"] == pytest.approx(0.971594, abs=1e-6)
    # mu = 1.19 / 2.20 = 0.540909
    assert d["octahedral_factor"] == pytest.approx(0.540909, abs=1e-6)
    # tau = 2.20/1.19 - 1 * (1 - (2.458/1.19) / ln(2.458/1.19))
    #     = 1.848739 - (1 - 2.065546 / 0.725393) = 1.848739 - (1 - 2.847489) = 3.696228
    assert d["bartel_tau"] == pytest.approx(3.69622, abs=2e-5)
    assert d["bartel_tau_perovskite"] == 1.0
    # S_A = -R (0.8 ln 0.8 + 0.2 ln 0.2) = 8.314463 * 0.500402 = 4.160577 J/(mol K)
    assert d["mixing_entropy_A"] == pytest.approx(4.160577, abs=1e-5)
    assert d["mixing_entropy_B"] == 0.0 and d["mixing_entropy_X"] == 0.0
    assert d["mixing_entropy_total"] == pytest.approx(d["mixing_entropy_A"])
    # delta_A = sqrt(0.8 (1 - 2.53/2.458)^2 + 0.2 (1 - 2.17/2.458)^2)
    #         = sqrt(0.8 * 0.029292^2 + 0.2 * 0.117168^2) = sqrt(0.000686 + 0.002746) = 0.058584
    assert d["size_mismatch_A"] == pytest.approx(0.058584, abs=1e-6)
    # electronegativity of FA+ (CH5N2): (2.55 + 5 * 2.20 + 2 * 3.04) / 8 = 19.63 / 8 = 2.45375
    # MA+ (CH6N): (2.55 + 6 * 2.20 + 3.04) / 8 = 18.79 / 8 = 2.34875
    assert d["A_electronegativity_mean"] == pytest.approx(0.8 * 2.45375 + 0.2 * 2.34875)
    # Vegard: 0.8 * 1.48 (FAPbI3) + 0.2 * 1.57 (MAPbI3), no bowing (Weber 2016) = 1.498 eV
    assert d["vegard_bandgap"] == pytest.approx(1.498)
    # lattice: 0.8 * 6.3620 + 0.2 * 6.329 = 6.3554 Å
    assert d["vegard_lattice_parameter"] == pytest.approx(6.3554)


def test_double_perovskite_by_hand() -> None:
    d = one("CsNaAgBiCl6", y=0.5)
    # B' mean = 0.5 * 1.02 (Na+) + 0.5 * 1.15 (Ag+) = 1.085; B'' = 1.03 (Bi3+)
    # B-site mean = (1.085 + 1.03) / 2 = 1.0575 Å
    assert d["r_B"] == pytest.approx(1.0575)
    assert d["b_site_size_difference"] == pytest.approx(1.085 - 1.03)
    # t = (1.88 + 1.81) / (sqrt 2 * (1.0575 + 1.81)) = 3.69 / 4.055252 = 0.909932
    assert d["tolerance_factor"] == pytest.approx(3.69 / (math.sqrt(2) * 2.8675))
    # tau = 1.81/1.0575 - 1 * (1 - (1.88/1.0575) / ln(1.88/1.0575))
    ratio = 1.88 / 1.0575
    assert d["bartel_tau"] == pytest.approx(1.81 / 1.0575 - (1 - ratio / math.log(ratio)))
    # only B' mixes: S = -R (2 * 0.5 ln 0.5) * multiplicity 1 = R ln 2 = 5.763146
    assert d["mixing_entropy_B"] == pytest.approx(R * math.log(2))
    assert d["mixing_entropy_A"] == 0.0 and d["double_perovskite"] == 1.0
    # B' mismatch: mean 1.085, delta = sqrt(0.5 (1 - 1.02/1.085)^2 + 0.5 (1 - 1.15/1.085)^2)
    #            = 0.065/1.085 = 0.059908; B'' has none; B value = mean of the two = 0.029954
    assert d["size_mismatch_B"] == pytest.approx(0.5 * 0.065 / 1.085)
    assert math.isnan(d["vegard_bandgap"])  # no cited end members for double perovskites


def test_mixed_halide_by_hand() -> None:
    d = one("FAPbIBr", x=0.25)
    # S_X = -3 R (0.75 ln 0.75 + 0.25 ln 0.25) = 3 * 8.314463 * 0.562335 = 14.026544
    assert d["mixing_entropy_X"] == pytest.approx(3 * R * 0.5623351446, rel=1e-9)
    assert d["halide_fraction_Br"] == 0.25 and d["halide_fraction_I"] == 0.75
    # r_X = 0.75 * 2.20 + 0.25 * 1.96 = 2.14
    assert d["r_X"] == pytest.approx(2.14)
    # 0.75 * 1.48 + 0.25 * 2.23 = 1.6675 eV (Eperon end members, linear per Xiang 2026)
    assert d["vegard_bandgap"] == pytest.approx(1.6675)
    assert math.isnan(d["vegard_lattice_parameter"])  # no citable FAPbBr3 lattice parameter


def test_noh_bowing_reproduces_their_fit() -> None:
    cols = ["A:MA", "B:Pb", "X:I", "X:Br"]
    x = np.array([0.0, 0.3, 0.5, 1.0])
    F = np.stack([np.ones(4), np.ones(4), 1 - x, x], axis=1)
    eg = compute_descriptors(F, cols)["vegard_bandgap"].to_numpy()
    np.testing.assert_allclose(eg, 1.57 + 0.39 * x + 0.33 * x**2)


def test_sn_compositions() -> None:
    assert one("FASnIBr", z=3)["vegard_bandgap"] == pytest.approx(1.41)
    assert math.isnan(one("FASnIBr", z=1.5)["vegard_bandgap"])  # FASnBr3 not citable
    # r_B of Sn2+ = 1.15 (Bartel's table), t = (2.53 + 2.20) / (sqrt2 (1.15 + 2.20)) = 0.998393
    assert one("FASnIBr", z=3)["tolerance_factor"] == pytest.approx(4.73 / (math.sqrt(2) * 3.35))


def test_cspbi3_tau_predicts_non_perovskite() -> None:
    d = one("CsPbI3-agZIF62", X=0.4)
    # tau = 2.2/1.19 - (1 - (1.88/1.19)/ln(1.88/1.19)) = 4.3033 > 4.18 (delta-CsPbI3 at RT)
    assert d["bartel_tau"] == pytest.approx(4.3033, abs=1e-4)
    assert d["bartel_tau_perovskite"] == 0.0
    assert d["perovskite_mass_fraction"] == pytest.approx(0.4)


# --- matminer agreement -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def magpie():
    from matminer.featurizers import composition  # a dev dependency: the cross-check must run
    ep = composition.ElementProperty.from_preset("magpie")
    return ep, ep.feature_labels()


@pytest.mark.parametrize(
    ("formula", "slug", "params"),
    [
        ("CsPbI3", "CsPbI3-agZIF62", {"X": 1.0}),
        ("Cs2NaBiCl6", "CsNaAgBiCl6", {"y": 1.0}),
        ("Cs2AgBiCl6", "CsNaAgBiCl6", {"y": 0.0}),
        ("Cs2Na0.5Ag0.5BiCl6", "CsNaAgBiCl6", {"y": 0.5}),
    ],
)
def test_formula_means_agree_with_matminer(magpie, formula: str, slug: str, params: dict) -> None:
    from pymatgen.core import Composition

    ep, labels = magpie
    mm = dict(zip(labels, ep.featurize(Composition(formula)), strict=True))
    d = one(slug, **params)
    for ours, theirs in [
        ("electronegativity", "Electronegativity"),
        ("atomic_mass", "AtomicWeight"),
    ]:
        assert d[f"formula_{ours}_mean"] == pytest.approx(mm[f"MagpieData mean {theirs}"], rel=1e-9)
        assert d[f"formula_{ours}_avg_dev"] == pytest.approx(
            mm[f"MagpieData avg_dev {theirs}"], rel=1e-9
        )


def test_polarizability_table_matches_magpie() -> None:
    from matminer.utils import data
    from pymatgen.core import Element

    m = data.MagpieData()
    for el, value in POLARIZABILITY_A3.items():
        expected = POLARIZABILITY_MAGPIE_EXCEPTIONS.get(el, value)
        assert m.get_elemental_property(Element(el), "Polarizability") == pytest.approx(expected)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ([0.5, 0.4, 1.0, 1.0], "site A fractions do not sum to 1"),
        ([1.2, -0.2, 1.0, 1.0], "negative site fraction"),
        ([1.0, 0.0, 0.0, 1.0], "site B .* is empty"),
    ],
)
def test_strict_rejects_bad_compositions(row: list[float], match: str) -> None:
    with pytest.raises(CompositionError, match=match):
        compute_descriptors(np.array([row]), ["A:FA", "A:MA", "B:Pb", "X:I"])


def test_b_and_b1_both_occupied_is_an_error() -> None:
    cols = ["A:Cs", "B:Pb", "B1:Na", "B2:Bi", "X:Cl"]
    with pytest.raises(CompositionError, match="B1/B2 are both occupied") as info:
        compute_descriptors(np.array([[1.0, 1.0, 1.0, 1.0, 1.0]]), cols)
    assert info.value.field == "B"


def test_bad_columns_and_shapes() -> None:
    with pytest.raises(ValueError, match="'Q:FA' is not a site-fraction column"):
        compute_descriptors(np.ones((1, 1)), ["Q:FA"])
    with pytest.raises(ValueError, match="2 column names for 3"):
        compute_descriptors(np.ones((1, 3)), ["A:FA", "B:Pb"])
    with pytest.raises(KeyError, match="unknown species 'Zz'"):
        compute_descriptors(np.ones((1, 1)), ["A:Zz"])


# --- process and composite descriptors --------------------------------------------------------


def test_process_descriptors() -> None:
    frame = site_fraction_frame(FAMS["CsPbI3-agZIF62"], {"X": np.array([0.05, 0.25, 0.85])})
    process = {
        "milling_time_min": np.array([60.0, 60.0, 30.0]),
        "milling_frequency_hz": 20.0,
        "aging_time_h": np.array([0.0, 24.0, 72.0]),
        "aging_atmosphere": np.array(["air", "N2", "Vacuum"]),
        "additive_mol_pct": np.array([0.0, 1.0, 2.5]),
        "sintering_temperature_C": np.array([275.0, 290.0, 350.0]),
    }
    d = compute_descriptors(
        frame, None, process, FAMS["CsPbI3-agZIF62"], {"X": np.array([0.05, 0.25, 0.85])}
    )
    assert list(d.columns) == descriptor_names(process)
    np.testing.assert_allclose(d["sintering_minus_tg"], [275 - AGZIF62_TG_C, 0.0, 60.0])
    np.testing.assert_allclose(
        d["sintering_minus_transition"], np.array([275, 290, 350]) - CSPBI3_TRANSITION_C
    )
    np.testing.assert_array_equal(
        d[["atmosphere_air", "atmosphere_inert", "atmosphere_vacuum"]], np.eye(3)
    )
    np.testing.assert_allclose(d["milling_frequency_hz"], 20.0)
    np.testing.assert_allclose(d["perovskite_mass_fraction"], [0.05, 0.25, 0.85])


def test_process_errors() -> None:
    frame = site_fraction_frame(FAMS["FAMAPbI3"], {"x": np.array([0.5])})
    with pytest.raises(ValueError, match="unknown process input 'rpm'"):
        compute_descriptors(frame, None, {"rpm": 800})
    with pytest.raises(ValueError, match="unknown aging_atmosphere 'mars'"):
        compute_descriptors(frame, None, {"aging_atmosphere": np.array(["mars"])})
    with pytest.raises(ValueError, match="'milling_time_min' has values below its physical minimum 0"):
        compute_descriptors(frame, None, {"milling_time_min": -1.0})
    with pytest.raises(CompositionError, match="give params"):
        compute_descriptors(
            site_fraction_frame(FAMS["CsPbI3-agZIF62"], {"X": 0.5}),
            None,
            family=FAMS["CsPbI3-agZIF62"],
        )


# --- shared vocabulary ------------------------------------------------------------------------


def test_universal_columns_cover_all_families() -> None:
    cols = universal_columns()
    for fam in FAMS.values():
        assert set(fam.columns) <= set(cols)
    assert cols[0] == "A:FA" and len(cols) == len(set(cols))
    for c in ("A:Cs", "B:Sn", "B1:Na", "B1:Ag", "B2:Bi", "X:I", "X:Br", "X:Cl"):
        assert c in cols


def test_families_share_one_matrix() -> None:
    parts = [
        site_fraction_frame(FAMS["FAMAPbI3"], {"x": np.linspace(0, 1, 4)}),
        site_fraction_frame(FAMS["CsNaAgBiCl6"], {"y": np.linspace(0, 1, 3)}),
        site_fraction_frame(FAMS["FASnIBr"], {"z": np.linspace(0, 3, 5)}),
    ]
    stacked = compute_descriptors(pd.concat(parts, ignore_index=True))
    separate = pd.concat([compute_descriptors(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(stacked, separate)
    # column order of the input does not matter
    shuffled = pd.concat(parts, ignore_index=True).iloc[:, ::-1]
    pd.testing.assert_frame_equal(compute_descriptors(shuffled), stacked)


@settings(max_examples=30, deadline=None)
@given(
    slug=st.sampled_from(["FAMAPbI3", "CsNaAgBiCl6", "FASnIBr", "FAPbIBr", "CsPbI3-agZIF62"]),
    u=st.lists(st.floats(0, 1), min_size=1, max_size=20),
)
def test_valid_compositions_give_finite_descriptors(slug: str, u: list[float]) -> None:
    fam = FAMS[slug]
    (p,) = fam.parameters.values()
    params = {p.name: p.min + (p.max - p.min) * np.array(u)}
    d = family_descriptors(fam, params)
    assert np.isfinite(d[list(ALWAYS_DEFINED)].to_numpy()).all()
    assert ((d["tolerance_factor"] > 0.8) & (d["tolerance_factor"] < 1.1)).all()
    assert (d["mixing_entropy_total"] >= 0).all()


# --- scikit-learn transformer -----------------------------------------------------------------


@parametrize_with_checks([CompositionDescriptors()])
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def test_transformer_in_pipeline_matches_compute_descriptors() -> None:
    frame = site_fraction_frame(FAMS["FAPbIBr"], {"x": np.linspace(0, 0.25, 6)})
    frame["milling_time_min"] = np.arange(6) * 10.0
    cols = list(frame.columns)
    t = CompositionDescriptors(columns=cols)
    out = t.fit_transform(frame.to_numpy())
    names = list(t.get_feature_names_out())
    assert "milling_time_min" in names and "vegard_bandgap" not in names
    ref = compute_descriptors(
        frame.drop(columns="milling_time_min"),
        None,
        {"milling_time_min": frame["milling_time_min"].to_numpy()},
    )
    np.testing.assert_allclose(out, ref[names].to_numpy())
    pipe = make_pipeline(CompositionDescriptors(columns=cols), StandardScaler())
    assert pipe.fit_transform(frame.to_numpy()).shape == (6, len(names))


def test_transformer_defaults_and_fill() -> None:
    t = CompositionDescriptors(descriptors=["tolerance_factor", "vegard_bandgap"], fill_value=-1.0)
    vocab = universal_columns()  # columns=None: input columns are the universal vocabulary
    X = np.zeros((1, len(vocab)))
    X[0, [vocab.index("A:FA"), vocab.index("B:Pb"), vocab.index("X:Br")]] = 1.0
    out = t.fit_transform(X)
    assert out[0, 0] == pytest.approx((2.53 + 1.96) / (math.sqrt(2) * (1.19 + 1.96)))
    assert out[0, 1] == pytest.approx(2.23)
    # amounts are normalised per site; an empty X site -> fill_value
    out2 = t.transform(np.where(np.arange(len(vocab)) == vocab.index("X:Br"), 0.0, X * 3))
    assert out2[0].tolist() == [-1.0, -1.0]
    with pytest.raises(ValueError, match="not available"):
        CompositionDescriptors(descriptors=["sintering_minus_tg"]).fit(X)
    with pytest.raises(ValueError, match="Negative values"):
        CompositionDescriptors().fit(-X)
