from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matdb.units import UnitError, convert, parse_unit
from matdb.vocabulary import QUANTITIES, parse_quantity, to_canonical


@pytest.mark.parametrize(
    ("quantity", "spec", "expected"),
    [
        ("glass_transition_temperature", "275 degC", 275.0),
        ("glass_transition_temperature", "548.15 K", 275.0),
        ("steady_state_time", "48 min", 48.0),
        ("steady_state_time", "2 h", 120.0),
        ("steady_state_time", {"value": 30, "unit": "s"}, 0.5),
        ("absorption_edge", "0.825 um", 825.0),
        ("plqy", "81 %", 81.0),
        ("plqy", 12.5, 12.5),
        ("xrd_peak", "13.9 deg", 13.9),
        ("nmr_shift", "7.3 ppm", 7.3),
        ("t1", "250 ms", 0.25),
        ("lattice_parameter", "1.08 nm", 10.8),
        ("integration_time", "0.1 s", 100.0),
    ],
)
def test_conversion_to_canonical(quantity: str, spec: object, expected: float) -> None:
    assert parse_quantity(quantity, spec)[0] == pytest.approx(expected)


def test_kcal_per_mol_to_eV_uses_pint() -> None:
    # 1 kcal/mol = 4184 J / 6.02214076e23 / 1.602176634e-19 J/eV = 0.0433641 eV
    v, unit = to_canonical("migration_barrier", 29.7, "kcal/mol")
    assert unit == "eV"
    assert v == pytest.approx(29.7 * 4184 / 6.02214076e23 / 1.602176634e-19, rel=1e-9)


@pytest.mark.parametrize(
    ("quantity", "value", "unit", "match"),
    [
        ("plqy", 120, "%", "above the physical maximum 100"),
        ("plqy", -1, "%", "below the physical minimum 0"),
        ("steady_state_time", -5, "min", "below the physical minimum"),
        ("plqy", 10, "nm", "cannot convert"),
        ("absorption_edge", 500, "blorps", "unknown unit 'blorps'"),
        ("absorption_edge", float("nan"), "nm", "not a finite number"),
        ("absorption_edge", float("inf"), "nm", "not a finite number"),
        ("no_such_quantity", 1, "nm", "unknown quantity 'no_such_quantity'"),
        ("phases_present", 1, "", "categorical"),
    ],
)
def test_bad_values(quantity: str, value: float, unit: str, match: str) -> None:
    with pytest.raises(UnitError, match=match):
        to_canonical(quantity, value, unit)


def test_every_canonical_unit_parses() -> None:
    for q in QUANTITIES.values():
        parse_unit(q.unit)


@given(st.floats(-200, 2000))
def test_temperature_roundtrip(t: float) -> None:
    assert convert(convert(t, "degC", "K"), "K", "degC") == pytest.approx(t, abs=1e-9)
