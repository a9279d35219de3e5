from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from matdb.families import (
    CompositionError,
    Expr,
    Family,
    FamilyDefinitionError,
    builtin_families,
    canonical_params_key,
    get_family,
)


def test_builtin_slugs() -> None:
    assert set(builtin_families()) == {"FAMAPbI3", "CsNaAgBiCl6", "FASnIBr", "CsPbI3-agZIF62", "FAPbIBr"}


@pytest.mark.parametrize(
    ("slug", "params", "formula"),
    [
        ("FAMAPbI3", {"x": 0.8}, "FA0.8MA0.2PbI3"),
        ("FAMAPbI3", {"x": 1.0}, "FAPbI3"),
        ("FAMAPbI3", {"x": 0.0}, "MAPbI3"),
        ("CsNaAgBiCl6", {"y": 0.9}, "Cs2Na0.9Ag0.1BiCl6"),
        ("CsNaAgBiCl6", {"y": 1.0}, "Cs2NaBiCl6"),
        ("FASnIBr", {"z": 2.5}, "FASnI2.5Br0.5"),
        ("FASnIBr", {"z": 0.0}, "FASnBr3"),
        ("CsPbI3-agZIF62", {"X": 0.05}, "(CsPbI3)0.05(agZIF-62)0.95"),
        ("FAPbIBr", {"x": 0.25}, "FAPbI2.25Br0.75"),
    ],
)
def test_formula(slug: str, params: dict, formula: str) -> None:
    assert get_family(slug).formula(params) == formula


def test_site_fractions_of_tin_family() -> None:
    fr = get_family("FASnIBr").site_fractions({"z": 2.4})
    assert fr["X"]["I"] == pytest.approx(0.8)
    assert fr["X"]["Br"] == pytest.approx(0.2)


def test_fraction_matrix_is_vectorised() -> None:
    f = get_family("FAMAPbI3")
    m = f.fraction_matrix({"x": np.array([0.0, 0.5, 1.0])})
    assert f.columns == ["A:FA", "A:MA", "B:Pb", "X:I"]
    np.testing.assert_allclose(m, [[0, 1, 1, 1], [0.5, 0.5, 1, 1], [1, 0, 1, 1]])


@pytest.mark.parametrize(
    ("slug", "params", "match"),
    [
        ("FAMAPbI3", {"x": 1.2}, "outside the range"),
        ("FAMAPbI3", {"x": -0.1}, "outside the range"),
        ("FAMAPbI3", {}, "missing composition parameter 'x'"),
        ("FAMAPbI3", {"x": 0.5, "q": 1}, "'q' is not a composition parameter"),
        ("FAMAPbI3", {"x": "abc"}, "must be a number"),
        ("FAMAPbI3", {"x": float("nan")}, "is nan"),
        ("FASnIBr", {"z": 3.5}, "outside the range 0..3"),
    ],
)
def test_invalid_compositions(slug: str, params: dict, match: str) -> None:
    with pytest.raises(CompositionError, match=match):
        get_family(slug).validate(params)


USER_FAMILY = """
slug: CsRbPbBr3
name: Cs_aRb_{1-a}PbBr3
structure: ABX3
parameters: {a: {min: 0, max: 1}}
sites:
  A: {Cs: a, Rb: 1-a}
  B: {Pb: 1}
  X: {Br: 1}
"""


def test_user_defined_family_without_code() -> None:
    f = Family.from_dict(yaml.safe_load(USER_FAMILY))
    assert f.formula({"a": 0.3}) == "Cs0.3Rb0.7PbBr3"
    assert Family.from_dict(f.to_dict()) == f


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"sites": {"A": {"Cs": "a", "Rb": "1-a"}, "B": {"Pb": 1}, "X": {"Br": 0.9}}}, "sum to 0.9"),
        ({"sites": {"A": {"Cs": "a", "Rb": "1-a"}, "B": {"Bi": 1}, "X": {"Br": 1}}}, "charge neutral"),
        ({"sites": {"A": {"Cs": "a", "Xx": "1-a"}, "B": {"Pb": 1}, "X": {"Br": 1}}}, "unknown species 'Xx'"),
        ({"sites": {"A": {"Cs": "a + b"}, "B": {"Pb": 1}, "X": {"Br": 1}}}, "undeclared parameter"),
        ({"sites": {"A": {"Cs": "__import__('os')"}, "B": {"Pb": 1}, "X": {"Br": 1}}}, "may only use"),
        ({"sites": {"A": {"Cs": 1}, "X": {"Br": 1}}}, "needs sites"),
        ({"structure": "spinel"}, "structure must be one of"),
    ],
)
def test_bad_family_definitions(patch: dict, match: str) -> None:
    d = {**yaml.safe_load(USER_FAMILY), **patch}
    with pytest.raises(FamilyDefinitionError, match=match):
        Family.from_dict(d)


def test_FAPbI4_is_not_charge_neutral() -> None:
    # FAPbI4 written as a family with four iodides per formula unit on an ABX3 X site
    d = yaml.safe_load(USER_FAMILY)
    d["sites"] = {"A": {"FA": 1}, "B": {"Pb": 1}, "X": {"I": "4/3"}}
    d["parameters"] = {}
    with pytest.raises(FamilyDefinitionError, match="outside 0..1|sum to"):
        Family.from_dict(d)


def test_double_perovskite_charge_balance() -> None:
    f = get_family("CsNaAgBiCl6")
    assert f.site_multiplicity == {"A": 2, "B1": 1, "B2": 1, "X": 6}
    f.validate({"y": 0.95})


def test_unknown_family() -> None:
    with pytest.raises(CompositionError, match="unknown family 'FAPbI4'"):
        get_family("FAPbI4")


@given(st.floats(0, 1))
def test_any_x_in_range_is_valid_and_neutral(x: float) -> None:
    clean = get_family("FAMAPbI3").validate({"x": x})
    assert clean == {"x": x}


def test_expression_evaluates_arrays() -> None:
    e = Expr.parse("(3-z)/3")
    np.testing.assert_allclose(e({"z": np.array([0.0, 3.0])}), [1.0, 0.0])


def test_params_key_is_canonical() -> None:
    assert canonical_params_key({"x": 0.8000000001}) == canonical_params_key({"x": 0.8})
    assert canonical_params_key({"b": 1, "a": 0.5}) == "a=0.5,b=1"


@pytest.mark.parametrize("slug", sorted(builtin_families()))
def test_precursor_amounts_balance_the_formula(slug: str) -> None:
    """Moles of each element from the precursors equal the formula unit (mol basis families)."""
    from pymatgen.core import Composition

    f = get_family(slug)
    p = {k: (v.min + v.max) / 2 for k, v in f.parameters.items()}
    if slug == "FAPbIBr":
        p = {"x": 0.2}  # the FAI/FABr/PbI2 route covers x <= 1/3
    if any(pr.basis == "mass" for pr in f.precursors):
        fr = f.precursor_moles(p)
        assert sum(fr.values()) == pytest.approx(1.0)
        return
    total: dict[str, float] = {}
    for pr in f.precursors:
        for el, n in Composition(pr.formula).get_el_amt_dict().items():
            total[el] = total.get(el, 0.0) + n * float(pr.amount(p))
    expected = Composition(f.formula(p).replace("FA", "(CH5N2)").replace("MA", "(CH6N)")).get_el_amt_dict()
    assert total == pytest.approx(expected)
