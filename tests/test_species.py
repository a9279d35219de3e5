from __future__ import annotations

import pytest

from matdb.families import Family, builtin_families
from matdb.species import (
    BARTEL_2019_SN2,
    KIESLICH_2014,
    SHANNON_1976,
    SPECIES,
    RadiusNotAvailableError,
    Species,
    UnknownSpeciesError,
    get_species,
    shannon_radius,
)


@pytest.mark.parametrize(
    ("symbol", "cn", "expected"),
    [
        # Shannon (1976) Table 1, read through pymatgen
        ("Cs", "XII", 1.88),
        ("Rb", "XII", 1.72),
        ("K", "XII", 1.64),
        ("Pb", "VI", 1.19),
        ("Ge", "VI", 0.73),
        ("Na", "VI", 1.02),
        ("Ag", "VI", 1.15),
        ("Bi", "VI", 1.03),
        ("Sb", "VI", 0.76),
        ("In", "VI", 0.80),
        ("I", "VI", 2.20),
        ("Br", "VI", 1.96),
        ("Cl", "VI", 1.81),
        ("Fe", "VI", 0.645),  # high spin
        ("Mn", "VI", 0.83),  # high spin
    ],
)
def test_elemental_radii_come_from_pymatgen_shannon(symbol: str, cn: str, expected: float) -> None:
    sp = SPECIES[symbol]
    assert sp.radii == {}  # nothing hand-typed for elemental ions pymatgen knows
    value, citation = sp.radius_with_citation(cn)
    assert value == pytest.approx(expected)
    assert citation == SHANNON_1976


@pytest.mark.parametrize(
    ("symbol", "expected"), [("FA", 2.53), ("MA", 2.17), ("EA", 2.74), ("GA", 2.78)]
)
def test_molecular_cation_radii_are_kieslich(symbol: str, expected: float) -> None:
    value, citation = SPECIES[symbol].radius_with_citation("XII")
    assert value == pytest.approx(expected)
    assert citation == KIESLICH_2014
    assert SPECIES[symbol].molecular


def test_sn2_six_coordinate_radius_is_bartel_table_value() -> None:
    # pymatgen's Shannon table has no Sn2+ at all; the table entry fills the gap
    with pytest.raises(RadiusNotAvailableError, match="Sn\\+2"):
        shannon_radius("Sn", 2, "VI")
    value, citation = SPECIES["Sn"].radius_with_citation("VI")
    assert value == pytest.approx(1.15)
    assert citation == BARTEL_2019_SN2 and "10.1126/sciadv.aav0693" in citation


def test_missing_coordination_raises_keyerror_subclass() -> None:
    with pytest.raises(KeyError):
        SPECIES["FA"].radius("VI")
    with pytest.raises(RadiusNotAvailableError, match="Cl-1 in coordination XII"):
        SPECIES["Cl"].radius("XII")


def test_user_species_table_radius_takes_precedence() -> None:
    sp = Species("Xx", 1, "CH6N", True, {"XII": (2.5, "made-up for the test")})
    assert sp.radius("XII") == 2.5
    assert get_species("Xx", {"Xx": sp}) is sp


def test_unknown_species_message_lists_known() -> None:
    with pytest.raises(UnknownSpeciesError, match="unknown species 'Zz'") as info:
        get_species("Zz")
    assert "FA" in str(info.value) and not str(info.value).startswith("'")


def test_every_builtin_family_site_has_a_radius() -> None:
    from matdb.families import SITE_COORDINATION

    for fam in builtin_families().values():
        for site, occ in fam.sites.items():
            for sym in occ:
                assert fam.species(sym).radius(SITE_COORDINATION[site]) > 0


def test_family_defined_species_round_trip() -> None:
    fam = Family.from_dict(
        {
            "slug": "GAPbI3",
            "parameters": {"x": {"min": 0, "max": 1}},
            "species": {
                "Gx": {
                    "charge": 1,
                    "formula": "CH6N3",
                    "molecular": True,
                    "radii": {"XII": [2.78, "Kieslich 2014"]},
                }
            },
            "sites": {"A": {"Gx": "x", "MA": "1-x"}, "B": {"Pb": 1}, "X": {"I": 1}},
        }
    )
    assert fam.species("Gx").radius("XII") == 2.78
    assert Family.from_dict(fam.to_dict()).species("Gx").radius("XII") == 2.78
