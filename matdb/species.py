"""Ions that may occupy perovskite sites, including molecular cations.

Every radius carries its citation. Elemental radii are Shannon (1976) effective ionic radii read
through pymatgen (``pymatgen.core.Species(el, oxi).get_shannon_radius(cn)``); the table below only
holds what pymatgen lacks: effective radii of molecular cations and six-coordinate Sn2+.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

SHANNON_1976 = "R. D. Shannon, Acta Cryst. A 32, 751 (1976), doi:10.1107/S0567739476001551"
KIESLICH_2014 = (
    "G. Kieslich, S. Sun, A. K. Cheetham, Chem. Sci. 5, 4712 (2014), doi:10.1039/C4SC02211D"
)
#: Shannon's table has no Sn2+ entry. Bartel et al. add "Sn+2, CN 6, ionic radius 1.15 Å" to the
#: Shannon table they use for the tau tolerance factor (data file Shannon_Effective_Ionic_Radii.csv,
#: record 498, of the paper's repository github.com/CJBartel/perovskite-stability), so this value
#: keeps tau consistent with the paper that defines it.
BARTEL_2019_SN2 = (
    "C. J. Bartel et al., Sci. Adv. 5, eaav0693 (2019), doi:10.1126/sciadv.aav0693; "
    "radius table Shannon_Effective_Ionic_Radii.csv, record 498 (Sn+2, CN 6)"
)


class UnknownSpeciesError(KeyError):
    """A species name not in the species table."""

    def __str__(self) -> str:  # KeyError quotes its message; chemists should not see that
        return str(self.args[0])


class RadiusNotAvailableError(KeyError):
    """No tabulated radius for a species in the requested coordination."""

    def __str__(self) -> str:
        return str(self.args[0])


@cache
def shannon_radius(element: str, charge: int, coordination: str, spin: str = "") -> float:
    """Shannon effective ionic radius (Å) from pymatgen's copy of Shannon (1976).

    Raises:
        RadiusNotAvailableError: pymatgen has no radius for this ion and coordination.
    """
    from pymatgen.core import Species as PmgSpecies

    try:
        return float(PmgSpecies(element, charge).get_shannon_radius(coordination, spin=spin))  # type: ignore[arg-type]  # validated spin names
    except (KeyError, ValueError) as exc:
        raise RadiusNotAvailableError(
            f"Shannon (1976) via pymatgen has no radius for {element}{charge:+d} "
            f"in coordination {coordination} ({exc})"
        ) from None


@dataclass(frozen=True)
class Species:
    """An ion that can sit on a perovskite site.

    Attributes:
        symbol: name used in family definitions and formulas ("FA", "Pb", "I").
        charge: formal oxidation state.
        formula: elemental formula for pymatgen ("CH5N2" for FA+).
        molecular: True for molecular cations, whose radius is an effective radius.
        radii: tabulated ionic radius (Å) by coordination ("XII", "VI", ...), each with a
            citation. Only for what pymatgen's Shannon table lacks; elemental ions without an
            entry here are looked up in pymatgen.
        name: display name.
        spin: spin state passed to pymatgen for ions with high/low-spin radii ("High Spin").
    """

    symbol: str
    charge: int
    formula: str
    molecular: bool = False
    radii: dict[str, tuple[float, str]] = field(default_factory=dict)
    name: str = ""
    spin: str = ""

    def radius(self, coordination: str) -> float:
        """Ionic radius (Å) at the given coordination (roman numeral, e.g. "VI")."""
        return self.radius_with_citation(coordination)[0]

    def radius_with_citation(self, coordination: str) -> tuple[float, str]:
        """Ionic radius (Å) at the given coordination and the citation it comes from.

        Raises:
            RadiusNotAvailableError: neither the table nor pymatgen has the radius.
        """
        if coordination in self.radii:
            return self.radii[coordination]
        if not self.molecular:
            return shannon_radius(self.formula, self.charge, coordination, self.spin), SHANNON_1976
        raise RadiusNotAvailableError(
            f"no radius for {self.symbol}{self.charge:+d} in coordination {coordination}"
        )


def _el(symbol: str, charge: int, spin: str = "") -> Species:
    return Species(symbol, charge, symbol, spin=spin)


#: Built-in species. Elemental radii: Shannon (1976) through pymatgen. Molecular: Kieslich et al.
#: (2014), who give effective radii for twelve-fold (A-site) use.
SPECIES: dict[str, Species] = {
    s.symbol: s
    for s in [
        Species("FA", 1, "CH5N2", True, {"XII": (2.53, KIESLICH_2014)}, "formamidinium"),
        Species("MA", 1, "CH6N", True, {"XII": (2.17, KIESLICH_2014)}, "methylammonium"),
        Species("EA", 1, "C2H8N", True, {"XII": (2.74, KIESLICH_2014)}, "ethylammonium"),
        Species("GA", 1, "CH6N3", True, {"XII": (2.78, KIESLICH_2014)}, "guanidinium"),
        _el("Cs", 1),
        _el("Rb", 1),
        _el("K", 1),
        _el("Na", 1),
        _el("Ag", 1),
        _el("Cu", 1),
        _el("Tl", 1),
        _el("Pb", 2),
        Species("Sn", 2, "Sn", radii={"VI": (1.15, BARTEL_2019_SN2)}),
        _el("Ge", 2),
        _el("Bi", 3),
        _el("Sb", 3),
        _el("In", 3),
        _el("Fe", 3, "High Spin"),
        _el("Mn", 2, "High Spin"),
        _el("Cl", -1),
        _el("Br", -1),
        _el("I", -1),
        _el("F", -1),
    ]
}


def get_species(symbol: str, extra: dict[str, Species] | None = None) -> Species:
    """Look up a species by symbol; ``extra`` holds user-defined species."""
    if extra and symbol in extra:
        return extra[symbol]
    try:
        return SPECIES[symbol]
    except KeyError:
        known = ", ".join(sorted(SPECIES))
        raise UnknownSpeciesError(f"unknown species '{symbol}' (known: {known})") from None
