"""Composition and process descriptors for whole arrays of perovskite compositions.

A composition is a row of *site fractions* over a fixed vocabulary of columns ``"SITE:SPECIES"``
(``"A:FA"``, ``"B:Pb"``, ``"B1:Na"``, ``"X:Br"``; see :func:`universal_columns`). Every
descriptor is computed with numpy over the ``(n, k)`` fraction matrix at once; there is no Python
object per composition. Each descriptor has a label, unit and citation in :data:`DESCRIPTORS`.

Structure conventions
---------------------
* A row is an ABX3 perovskite when its ``B`` columns are occupied and an A2B'B''X6 double
  perovskite when its ``B1``/``B2`` columns are. Site multiplicities per formula unit follow
  :data:`matdb.families.STRUCTURES` (ABX3: A 1, B 1, X 3; A2BB'X6: A 2, B1 1, B2 1, X 6).
* "B" descriptors of a double perovskite refer to the whole octahedral sublattice: each of B' and
  B'' holds half of the B positions, so the B-site mean radius is ``(r_B' + r_B'')/2`` (the
  B-site mean used by Bartel et al. for A2BB'X6).
* Radii: Shannon (1976) through pymatgen for elemental ions, with the coordination of
  :data:`matdb.families.SITE_COORDINATION` (A: XII, B/B1/B2: VI, X: VI); molecular cations and
  ions pymatgen lacks come from :data:`matdb.species.SPECIES` (each value cited there).
* Elemental properties of a molecular cation (documented choice): electronegativity is the
  atom-count-weighted mean of the Pauling electronegativities of its atoms, atomic mass is the
  formula mass, polarizability is the sum of its atoms' polarizabilities (additivity
  approximation). Formula-level means count a molecular cation as one ion.
* Spread of a property over a site is the fraction-weighted mean absolute deviation
  ``sum_i x_i |p_i - mean|`` (Magpie's "avg_dev", as in matminer's ``ElementProperty``).

Not included: Bartel's Platt-scaled probability P(tau). The paper fits it at run time with
scikit-learn's ``CalibratedClassifierCV(cv=3)`` on its Table S1 (``PredictPerovskites.py`` in
github.com/CJBartel/perovskite-stability) and publishes no calibration coefficients, so there is
no parameter set to cite; only tau and the tau < 4.18 classification are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.constants import R as GAS_CONSTANT  # J/(mol K), exact since SI 2019
from scipy.special import xlogy
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from matdb.constants import constant
from matdb.families import (
    FRACTION_TOLERANCE,
    SITE_COORDINATION,
    CompositionError,
    Family,
    builtin_families,
)
from matdb.species import RadiusNotAvailableError, Species, get_species
from matdb.vocabulary import PROCESS_PARAMS

# --- citations --------------------------------------------------------------------------------

GOLDSCHMIDT_1926 = "V. M. Goldschmidt, Naturwissenschaften 14, 477 (1926), doi:10.1007/BF01507527"
BARTEL_2019 = (
    "C. J. Bartel et al., Sci. Adv. 5, eaav0693 (2019), doi:10.1126/sciadv.aav0693, Eq. 2 "
    "(tau = r_X/r_B - n_A (n_A - (r_A/r_B)/ln(r_A/r_B)); tau < 4.18 predicts perovskite)"
)
LI_2008_MU = "octahedral factor mu = r_B/r_X: C. Li et al., Acta Cryst. B 64, 702 (2008), doi:10.1107/S0108768108032734"
SHANNON_VIA_PYMATGEN = (
    "Shannon radii: R. D. Shannon, Acta Cryst. A 32, 751 (1976), doi:10.1107/S0567739476001551 "
    "(via pymatgen); molecular cations: Kieslich et al., Chem. Sci. 5, 4712 (2014), "
    "doi:10.1039/C4SC02211D; Sn2+(VI): Bartel et al. 2019 radius table (see matdb.species)"
)
IDEAL_MIXING = "ideal configurational entropy S = -R m sum_i x_i ln x_i (Boltzmann; R from CODATA)"
SIZE_MISMATCH = (
    "size mismatch delta = sqrt(sum_i x_i (1 - r_i/r_mean)^2), as in high-entropy alloys: "
    "Y. Zhang et al., Adv. Eng. Mater. 10, 534 (2008), doi:10.1002/adem.200700240"
)
PYMATGEN = "pymatgen Element data (Ong et al., Comput. Mater. Sci. 68, 314 (2013), doi:10.1016/j.commatsci.2012.10.028)"
MAGPIE = (
    "Magpie elemental data, Polarizability.table (static average electric dipole polarizability, "
    "source CRC Handbook): L. Ward et al., npj Comput. Mater. 2, 16028 (2016), "
    "doi:10.1038/npjcompumats.2016.28; Bi replaced (see POLARIZABILITY_A3)"
)
LI_2023 = (
    "X. Li et al., Nat. Commun. (2023), doi:10.1038/s41467-023-43247-6, DSC paragraph of "
    "'Evolution of interfacial interaction' (Supplementary Figs. 1 and 16a)"
)

#: Glass-transition temperature of agZIF-62 (°C): "T_g (a_g ZIF-62, ca. 290 °C)" from DSC in Li et
#: al. 2023 (matdb.constants "agZIF62_glass_transition"). The same paper shows T_g of the composites
#: falls with CsPbI3 loading (Fig. 3b); the pure-glass value is used as the reference.
AGZIF62_TG_C = constant("agZIF62_glass_transition").value
#: delta -> alpha phase transition of pure CsPbI3 (°C), "ca. 320 °C" (DSC), Li et al. 2023.
CSPBI3_TRANSITION_C = constant("CsPbI3_delta_alpha_transition").value
#: Bartel's threshold: tau < 4.18 predicts a perovskite.
TAU_THRESHOLD = 4.18

#: Static dipole polarizability (Å^3 = 1e-24 cm^3) of neutral atoms, copied from Magpie's
#: Polarizability.table (matminer 0.10, CRC Handbook values); tests check them against matminer.
#: Bi: Magpie lists 0.4, a transcription error (its neighbours Pb 6.995 and Po are ~7); the CRC
#: Handbook table "Atomic and molecular polarizabilities" (T. M. Miller) gives 7.4 for Bi.
POLARIZABILITY_A3: dict[str, float] = {
    "H": 0.666793,
    "C": 1.67,
    "N": 1.1,
    "O": 0.802,
    "F": 0.557,
    "Na": 24.11,
    "Cl": 2.18,
    "K": 43.23,
    "Mn": 9.4,
    "Fe": 8.4,
    "Cu": 6.15,
    "Ge": 5.84,
    "Br": 3.05,
    "Rb": 47.27,
    "Ag": 6.99,
    "In": 9.65,
    "Sn": 7.06,
    "Sb": 6.6,
    "I": 5.025,
    "Cs": 59.42,
    "Tl": 7.55,
    "Pb": 6.995,
    "Bi": 7.4,
}
POLARIZABILITY_MAGPIE_EXCEPTIONS = {"Bi": 0.4}

# --- Vegard estimates -------------------------------------------------------------------------

# End-member values and their citations come from the one table of reference constants
# (matdb/data/reference_constants.yaml), which the simulator reads too.
EPERON_2014 = constant("FAPbI3_bandgap").source
NOH_2013 = constant("MAPbI3_bandgap").source
WU_2022 = constant("FASnI3_bandgap").source
WEBER_2016 = (
    "O. J. Weber et al., J. Mater. Chem. A (2016), doi:10.1039/C6TA06607K, abstract: "
    "lattice parameters and band gap of cubic FA_xMA_1-xPbI3 (0.2 <= x <= 1) follow Vegard's law"
)
XIANG_2026 = (
    "Y. Xiang et al., J. Mater. Chem. A 14, 16493 (2026), doi:10.1039/d5ta10296k, Fig. 1c,f: "
    "lattice constant and band gap of FAPb(I1-xBr_x)3 (x <= 0.25) vary nearly linearly"
)


@dataclass(frozen=True)
class EndMember:
    """A cited end-member value of an ABX3 compound (A, B, X species symbols)."""

    a: str
    b: str
    x: str
    value: float
    citation: str


@dataclass(frozen=True)
class Bowing:
    """Bowing parameter b of ``E = (1-y) E1 + y E2 - b y (1-y)`` for two species on one site.

    ``context`` fixes the species on the other sites, e.g. ``{"A": "MA", "B": "Pb"}``.
    """

    site: str
    first: str
    second: str
    b: float
    context: tuple[tuple[str, str], ...]
    citation: str


#: Band gaps (eV) of end members. Compositions needing an end member not listed get NaN.
_EG_MA_I = constant("MAPbI3_bandgap").value
_EG_MA_BOWING = constant("MAPbIBr_bowing").value
BANDGAP_END_MEMBERS: tuple[EndMember, ...] = (
    EndMember("FA", "Pb", "I", constant("FAPbI3_bandgap").value, EPERON_2014),
    EndMember("FA", "Pb", "Br", constant("FAPbBr3_bandgap").value, constant("FAPbBr3_bandgap").source),
    EndMember("MA", "Pb", "I", _EG_MA_I, NOH_2013),
    EndMember(
        "MA", "Pb", "Br", _EG_MA_I + constant("MAPbIBr_bandgap_linear_eV").value + _EG_MA_BOWING, NOH_2013 + " at x = 1"
    ),
    EndMember("FA", "Sn", "I", constant("FASnI3_bandgap").value, WU_2022),
    # FASnBr3: no band gap found that we can cite, so FASn(I,Br)3 with Br gets NaN.
)
#: Bowing parameters (eV). b = 0 entries record *why* the mixing is linear.
BANDGAP_BOWING: tuple[Bowing, ...] = (
    # Noh: 1.57 + 0.39x + 0.33x^2 = (1-x) 1.57 + x 2.29 - 0.33 x (1-x)
    Bowing("X", "I", "Br", _EG_MA_BOWING, (("A", "MA"), ("B", "Pb")), constant("MAPbIBr_bowing").source),
    Bowing(
        "X",
        "I",
        "Br",
        0.0,
        (("A", "FA"), ("B", "Pb")),
        "linear: no bowing parameter in " + EPERON_2014 + "; " + XIANG_2026,
    ),
    Bowing("A", "FA", "MA", 0.0, (("B", "Pb"), ("X", "I")), "linear: " + WEBER_2016),
)
#: Pseudocubic lattice parameters (Å) of end members.
LATTICE_END_MEMBERS: tuple[EndMember, ...] = (
    EndMember("FA", "Pb", "I", constant("FAPbI3_lattice_parameter").value, constant("FAPbI3_lattice_parameter").source),
    EndMember("MA", "Pb", "I", constant("MAPbI3_lattice_parameter").value, constant("MAPbI3_lattice_parameter").source),
    # FAPbBr3, FASnI3, FASnBr3: no lattice parameter we can cite here -> NaN.
)
LATTICE_BOWING: tuple[Bowing, ...] = (Bowing("A", "FA", "MA", 0.0, (("B", "Pb"), ("X", "I")), "linear: " + WEBER_2016),)

# --- descriptor registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    """One descriptor column: machine name, axis label, unit (pint syntax, "" = 1), citation."""

    name: str
    label: str
    unit: str
    citation: str
    description: str
    group: str  # "composition" | "composite" | "process"


def _d(name: str, label: str, unit: str, citation: str, description: str, group: str = "composition") -> Descriptor:
    return Descriptor(name, label, unit, citation, description, group)


_SITES3 = ("A", "B", "X")
_PROPS = {
    "electronegativity": ("electronegativity", "", "Pauling electronegativity; " + PYMATGEN),
    "atomic_mass": ("atomic mass", "g/mol", "standard atomic weight; " + PYMATGEN),
    "polarizability": ("polarizability", "angstrom**3", MAGPIE),
}
_HALIDES = ("I", "Br", "Cl")
ATMOSPHERES = ("air", "inert", "vacuum")
_ATMOSPHERE_ALIASES = {
    "air": "air",
    "ambient": "air",
    "ambient air": "air",
    "inert": "inert",
    "n2": "inert",
    "nitrogen": "inert",
    "ar": "inert",
    "argon": "inert",
    "glovebox": "inert",
    "glove box": "inert",
    "vacuum": "vacuum",
}

#: Process inputs accepted in ``process`` (key -> label, unit): process parameters of the
#: vocabulary, plus the composite loading.
PROCESS_INPUTS: dict[str, tuple[str, str]] = {
    **{
        k: (PROCESS_PARAMS[k].label, PROCESS_PARAMS[k].unit)
        for k in (
            "milling_time_min",
            "milling_frequency_hz",
            "aging_time_h",
            "aging_atmosphere",
            "additive_mol_pct",
            "sintering_temperature_C",
        )
    },
    "perovskite_mass_fraction": ("Perovskite mass fraction", ""),
}


def _registry() -> dict[str, Descriptor]:
    ds: list[Descriptor] = [
        _d(
            "r_A",
            "Mean A-site radius r_A",
            "angstrom",
            SHANNON_VIA_PYMATGEN,
            "fraction-weighted ionic radius of the A site (XII coordination)",
        ),
        _d(
            "r_B",
            "Mean B-site radius r_B",
            "angstrom",
            SHANNON_VIA_PYMATGEN,
            "fraction-weighted ionic radius of the octahedral B sublattice (VI); for A2B'B''X6 the "
            "mean of the B' and B'' site means",
        ),
        _d(
            "r_X",
            "Mean X-site radius r_X",
            "angstrom",
            SHANNON_VIA_PYMATGEN,
            "fraction-weighted ionic radius of the halide site (VI)",
        ),
        _d(
            "n_A",
            "A-site oxidation state n_A",
            "",
            BARTEL_2019,
            "fraction-weighted formal charge of the A-site ions",
        ),
        _d(
            "double_perovskite",
            "Double perovskite",
            "",
            "",
            "1 for A2B'B''X6 (B1/B2 sites occupied), 0 for ABX3",
        ),
        _d(
            "tolerance_factor",
            "Tolerance factor t",
            "",
            GOLDSCHMIDT_1926,
            "t = (r_A + r_X) / (sqrt(2) (r_B + r_X))",
        ),
        _d("octahedral_factor", "Octahedral factor μ", "", LI_2008_MU, "mu = r_B / r_X"),
        _d(
            "bartel_tau",
            "Bartel τ",
            "",
            BARTEL_2019,
            "tau = r_X/r_B - n_A (n_A - (r_A/r_B)/ln(r_A/r_B)); NaN if r_A <= r_B",
        ),
        _d(
            "bartel_tau_perovskite",
            "τ < 4.18",
            "",
            BARTEL_2019,
            "1 if tau < 4.18 (predicted perovskite), 0 otherwise",
        ),
        _d(
            "b_site_size_difference",
            "|r_B' - r_B''|",
            "angstrom",
            SHANNON_VIA_PYMATGEN,
            "difference of the mean B' and B'' radii of a double perovskite (0 for ABX3)",
        ),
    ]
    for site in _SITES3:
        ds.append(
            _d(
                f"mixing_entropy_{site}",
                f"Mixing entropy, {site} site",
                "J/mol/K",
                IDEAL_MIXING,
                f"-R m sum x ln x over the {site} site(s), per formula unit (m = site "
                "multiplicity; for A2B'B''X6 the B' and B'' sublattices are summed)",
            )
        )
    ds.append(
        _d(
            "mixing_entropy_total",
            "Mixing entropy",
            "J/mol/K",
            IDEAL_MIXING,
            "sum of the site mixing entropies per formula unit",
        )
    )
    for site in _SITES3:
        ds.append(
            _d(
                f"size_mismatch_{site}",
                f"Size mismatch δ, {site} site",
                "",
                SIZE_MISMATCH,
                f"delta over the {site} site; for A2B'B''X6 B: mean of the B' and B'' sublattice values",
            )
        )
    for hal in _HALIDES:
        ds.append(
            _d(
                f"halide_fraction_{hal}",
                f"{hal} fraction on X",
                "",
                "",
                f"fraction of the X site occupied by {hal}",
            )
        )
    for site in _SITES3:
        for prop, (plabel, unit, cit) in _PROPS.items():
            ds.append(
                _d(
                    f"{site}_{prop}_mean",
                    f"{site}-site mean {plabel}",
                    unit,
                    cit,
                    f"fraction-weighted mean {plabel} of the {site} site",
                )
            )
            ds.append(
                _d(
                    f"{site}_{prop}_avg_dev",
                    f"{site}-site {plabel} spread",
                    unit,
                    cit,
                    f"fraction-weighted mean absolute deviation of {plabel} on the {site} site",
                )
            )
    for prop, (plabel, unit, cit) in _PROPS.items():
        ds.append(
            _d(
                f"formula_{prop}_mean",
                f"Mean {plabel}",
                unit,
                cit,
                f"mean {plabel} over the ions of the formula unit (as matminer's "
                "ElementProperty, molecular cations counted as one ion)",
            )
        )
        ds.append(
            _d(
                f"formula_{prop}_avg_dev",
                f"{plabel} spread",
                unit,
                cit,
                f"mean absolute deviation of {plabel} over the ions of the formula unit",
            )
        )
    ds += [
        _d(
            "vegard_bandgap",
            "Vegard band gap",
            "eV",
            "; ".join(sorted({e.citation for e in BANDGAP_END_MEMBERS} | {b.citation for b in BANDGAP_BOWING})),
            "multilinear interpolation between cited end members minus cited bowing; NaN when an "
            "end member is not in BANDGAP_END_MEMBERS",
        ),
        _d(
            "vegard_lattice_parameter",
            "Vegard lattice parameter",
            "angstrom",
            "; ".join(sorted({e.citation for e in LATTICE_END_MEMBERS} | {b.citation for b in LATTICE_BOWING})),
            "pseudocubic lattice parameter by Vegard's law between cited end members; NaN when "
            "an end member is not in LATTICE_END_MEMBERS",
        ),
        _d(
            "perovskite_mass_fraction",
            "Perovskite loading X",
            "",
            LI_2023,
            "mass fraction of the perovskite phase: the composite parameter X for "
            "(CsPbI3)_X(agZIF-62)_1-X, 1 for a pure perovskite",
            "composite",
        ),
        _d("milling_time_min", "Milling time", "min", "", "ball-milling time", "process"),
        _d("milling_frequency_hz", "Milling frequency", "Hz", "", "mill frequency", "process"),
        _d("aging_time_h", "Aging time", "h", "", "aging/storage time", "process"),
    ]
    for atm in ATMOSPHERES:
        ds.append(
            _d(
                f"atmosphere_{atm}",
                f"Aging in {atm}",
                "",
                "",
                f"1 if aged in {atm} (one-hot)",
                "process",
            )
        )
    ds += [
        _d("additive_mol_pct", "Additive", "percent", "", "additive amount, mol %", "process"),
        _d(
            "sintering_temperature_C",
            "Sintering temperature",
            "degC",
            "",
            "sintering temperature",
            "process",
        ),
        _d(
            "sintering_minus_tg",
            "T_sinter - T_g(agZIF-62)",
            "delta_degC",
            LI_2023,
            f"sintering temperature minus the agZIF-62 glass transition ({AGZIF62_TG_C:g} °C)",
            "process",
        ),
        _d(
            "sintering_minus_transition",
            "T_sinter - T(δ→α CsPbI3)",
            "delta_degC",
            LI_2023,
            f"sintering temperature minus the CsPbI3 delta->alpha transition ({CSPBI3_TRANSITION_C:g} °C)",
            "process",
        ),
    ]
    return {d.name: d for d in ds}


#: Every descriptor by name, in output order.
DESCRIPTORS: dict[str, Descriptor] = _registry()

#: Descriptors that are finite for every composition with occupied sites (no Vegard estimates,
#: which are NaN outside the cited end members); the transformer's default.
ALWAYS_DEFINED: tuple[str, ...] = tuple(
    n for n, d in DESCRIPTORS.items() if d.group == "composition" and not n.startswith("vegard_")
) + ("perovskite_mass_fraction",)

#: Process descriptors produced by each process input.
_PROCESS_OUTPUTS: dict[str, tuple[str, ...]] = {
    "milling_time_min": ("milling_time_min",),
    "milling_frequency_hz": ("milling_frequency_hz",),
    "aging_time_h": ("aging_time_h",),
    "aging_atmosphere": tuple(f"atmosphere_{a}" for a in ATMOSPHERES),
    "additive_mol_pct": ("additive_mol_pct",),
    "sintering_temperature_C": (
        "sintering_temperature_C",
        "sintering_minus_tg",
        "sintering_minus_transition",
    ),
    "perovskite_mass_fraction": (),
}

# --- column vocabulary ------------------------------------------------------------------------

_SITE_ORDER = ("A", "B", "B1", "B2", "X")
#: Columns beyond the built-in families, so that candidate spaces can grow without changing the
#: feature matrix layout of existing data.
EXTRA_COLUMNS = (
    "A:Cs",
    "A:Rb",
    "A:K",
    "A:EA",
    "A:GA",
    "B:Pb",
    "B:Sn",
    "B:Ge",
    "B1:Na",
    "B1:Ag",
    "B1:K",
    "B1:Cu",
    "B2:Bi",
    "B2:Sb",
    "B2:In",
    "X:I",
    "X:Br",
    "X:Cl",
)


def universal_columns(extra_families: Iterable[Family] = ()) -> list[str]:
    """The fixed vocabulary of site-fraction columns shared by all families.

    Built-in family columns and :data:`EXTRA_COLUMNS`, plus the columns of ``extra_families``,
    ordered by site (A, B, B1, B2, X) and then by first appearance. Several families described
    with this vocabulary share one feature matrix (e.g. for leave-one-family-out CV).
    """
    seen: dict[str, None] = {}
    for fam in (*builtin_families().values(), *extra_families):
        for c in fam.columns:
            seen.setdefault(c, None)
    for c in EXTRA_COLUMNS:
        seen.setdefault(c, None)
    order = {s: i for i, s in enumerate(_SITE_ORDER)}
    cols = list(seen)
    return sorted(cols, key=lambda c: (order.get(c.split(":")[0], len(order)), cols.index(c)))


def site_fraction_frame(family: Family, params: Mapping[str, Any]) -> pd.DataFrame:
    """Site fractions of an array of compositions of ``family`` in the universal columns.

    Args:
        family: the material family.
        params: composition parameter -> array of shape (n,) (or scalar).

    Returns:
        DataFrame of shape (n, len(universal_columns([family]))), zeros outside the family's
        columns.
    """
    fm = family.fraction_matrix(params)
    cols = universal_columns([family])
    out = np.zeros((fm.shape[0], len(cols)))
    index = {c: i for i, c in enumerate(cols)}
    for j, c in enumerate(family.columns):
        out[:, index[c]] = fm[:, j]
    return pd.DataFrame(out, columns=cols)


# --- per-column data --------------------------------------------------------------------------


@dataclass(frozen=True)
class _ColumnData:
    columns: tuple[str, ...]
    sites: dict[str, np.ndarray]  # site -> column indices
    radius: np.ndarray  # (k,) Å at the site's coordination (NaN if unknown)
    charge: np.ndarray  # (k,)
    props: dict[str, np.ndarray]  # property -> (k,)
    index: dict[str, int]

    @property
    def prop_matrix(self) -> np.ndarray:
        """(k, len(_PROPS)) matrix of the elemental properties, columns in _PROPS order."""
        return np.stack([self.props[p] for p in _PROPS], axis=1)


def _species_properties(sp: Species) -> dict[str, float]:
    from pymatgen.core import Composition, Element

    comp = Composition(sp.formula)
    counts = {str(el): float(n) for el, n in comp.get_el_amt_dict().items()}
    n_atoms = sum(counts.values())
    en = sum(n * float(Element(el).X) for el, n in counts.items()) / n_atoms
    mass = sum(n * float(Element(el).atomic_mass) for el, n in counts.items())
    pol = sum(n * POLARIZABILITY_A3.get(el, np.nan) for el, n in counts.items())
    return {"electronegativity": en, "atomic_mass": mass, "polarizability": pol}


def _parse_column(col: str) -> tuple[str, str]:
    site, sep, sym = str(col).partition(":")
    if not sep or site not in SITE_COORDINATION or not sym:
        raise ValueError(
            f"column '{col}' is not a site-fraction column 'SITE:SPECIES' with SITE one of "
            f"{', '.join(SITE_COORDINATION)}"
        )
    return site, sym


def _build_columns(columns: Sequence[str], extra: Mapping[str, Species] | None) -> _ColumnData:
    cols = tuple(str(c) for c in columns)
    if len(set(cols)) != len(cols):
        raise ValueError("duplicate site-fraction columns")
    k = len(cols)
    radius = np.full(k, np.nan)
    charge = np.zeros(k)
    props = {p: np.full(k, np.nan) for p in _PROPS}
    sites: dict[str, list[int]] = {s: [] for s in _SITE_ORDER}
    for j, c in enumerate(cols):
        site, sym = _parse_column(c)
        sp = get_species(sym, dict(extra) if extra else None)
        sites[site].append(j)
        charge[j] = sp.charge
        try:
            radius[j] = sp.radius(SITE_COORDINATION[site])
        except RadiusNotAvailableError:
            radius[j] = np.nan  # descriptors that need it become NaN, never a guess
        for p, v in _species_properties(sp).items():
            props[p][j] = v
    return _ColumnData(
        cols,
        {s: np.asarray(v, dtype=int) for s, v in sites.items()},
        radius,
        charge,
        props,
        {c: j for j, c in enumerate(cols)},
    )


@lru_cache(maxsize=256)
def _builtin_column_data(columns: tuple[str, ...]) -> _ColumnData:
    return _build_columns(columns, None)


def _column_data(columns: Sequence[str], extra: Mapping[str, Species] | None) -> _ColumnData:
    if extra:
        return _build_columns(columns, extra)
    return _builtin_column_data(tuple(str(c) for c in columns))


# --- the computation --------------------------------------------------------------------------


def _site_norm(F: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of one site normalised to sum 1 (NaN rows where the site is empty)."""
    if idx.size == 0:
        return np.zeros((F.shape[0], 0)), np.zeros(F.shape[0])
    sub = F[:, idx]
    total = sub.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sub / np.where(total > 0, total, np.nan)[:, None], total


def _wmean(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise weighted mean; NaN only in rows that actually weight a NaN value."""
    if not W.shape[1]:
        return np.full(W.shape[0], np.nan)
    bad = np.isnan(v)
    if not bad.any():
        return W @ v
    out = W[:, ~bad] @ v[~bad]
    out[(W[:, bad] > 0).any(axis=1)] = np.nan
    return out


def _avg_dev(W: np.ndarray, v: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """sum_i w_i |v_i - mean| per row (rows whose mean is NaN stay NaN)."""
    if not W.shape[1]:
        return np.full(W.shape[0], np.nan)
    dev = np.abs(np.nan_to_num(v)[None, :] - mean[:, None])
    dev *= W
    return dev.sum(axis=1)


def _entropy(W: np.ndarray) -> np.ndarray:
    """-sum x ln x per row (dimensionless)."""
    if not W.shape[1]:
        return np.full(W.shape[0], np.nan)
    return 0.0 - xlogy(W, W).sum(axis=1)


def _mismatch(W: np.ndarray, r: np.ndarray) -> np.ndarray:
    if not W.shape[1]:
        return np.full(W.shape[0], np.nan)
    mean = _wmean(W, r)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = 1.0 - np.nan_to_num(r)[None, :] / mean[:, None]
    dev *= dev
    dev *= W
    return np.sqrt(dev.sum(axis=1))


def _means_and_devs(W: np.ndarray, V: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weighted mean and mean absolute deviation of each column of V (k, p) for W (n, k)."""
    if not W.shape[1]:
        nan = np.full(W.shape[0], np.nan)
        return [(nan, nan)] * V.shape[1]
    if np.isnan(V).any():  # a property unknown for some species: NaN only where it is used
        res = []
        for j in range(V.shape[1]):
            mean = _wmean(W, V[:, j])
            res.append((mean, _avg_dev(W, V[:, j], mean)))
        return res
    M = W @ V  # (n, p)
    dev = np.abs(V[None, :, :] - M[:, None, :])
    dev *= W[:, :, None]
    D = dev.sum(axis=1)
    return [(M[:, j], D[:, j]) for j in range(V.shape[1])]


def _check_strict(F: np.ndarray, cd: _ColumnData, totals: dict[str, np.ndarray]) -> None:
    tol = 1e3 * FRACTION_TOLERANCE  # fractions typed with 4 decimals still pass
    if (F < -FRACTION_TOLERANCE).any():
        row, col = np.argwhere(F < -FRACTION_TOLERANCE)[0]
        raise CompositionError(
            f"negative site fraction {F[row, col]:g} in column {cd.columns[col]} (row {row})",
            cd.columns[col],
        )

    def bad(mask: np.ndarray, site: str, what: str) -> None:
        if mask.any():
            row = int(np.argmax(mask))
            raise CompositionError(f"site {site} {what} (row {row})", site)

    for site in ("A", "X"):
        bad(
            np.abs(totals[site] - 1) > tol,
            site,
            "fractions do not sum to 1" if cd.sites[site].size else "has no columns",
        )
    single = totals["B"] > 0
    double = (totals["B1"] + totals["B2"]) > 0
    bad(single & double, "B", "and B1/B2 are both occupied")
    bad(~single & ~double, "B", "(or B1/B2) is empty")
    bad(single & (np.abs(totals["B"] - 1) > tol), "B", "fractions do not sum to 1")
    bad(double & (np.abs(totals["B1"] - 1) > tol), "B1", "fractions do not sum to 1")
    bad(double & (np.abs(totals["B2"] - 1) > tol), "B2", "fractions do not sum to 1")


def _vegard(
    P: np.ndarray,
    cd: _ColumnData,
    ends: Sequence[EndMember],
    bowing: Sequence[Bowing],
    double: np.ndarray,
) -> np.ndarray:
    n = P.shape[0]
    value = np.zeros(n)
    covered = np.zeros(n)
    for e in ends:
        try:
            ia, ib, ix = cd.index[f"A:{e.a}"], cd.index[f"B:{e.b}"], cd.index[f"X:{e.x}"]
        except KeyError:
            continue  # its weight is zero for every row of this matrix
        w = P[:, ia] * P[:, ib] * P[:, ix]
        value += w * e.value
        covered += w
    for bw in bowing:
        names = [f"{bw.site}:{bw.first}", f"{bw.site}:{bw.second}"]
        names += [f"{s}:{sp}" for s, sp in bw.context]
        if bw.b == 0.0 or not all(c in cd.index for c in names):
            continue
        w = np.prod([P[:, cd.index[c]] for c in names], axis=0)
        value -= bw.b * w
    ok = (np.abs(covered - 1.0) < 1e-6) & ~double
    return np.where(ok, value, np.nan)


def _component_loading(family: Family, params: Mapping[str, Any], n: int) -> np.ndarray:
    comps = family.component_fractions({k: np.asarray(v, float) for k, v in params.items()})
    symbols = {sp for occ in family.sites.values() for sp in occ}
    match = [c for c in comps if symbols and all(s in c for s in symbols)]
    if len(match) != 1:
        raise CompositionError(
            f"cannot tell which component of {family.slug} is the perovskite phase (components: {', '.join(comps)})",
            "components",
        )
    return np.broadcast_to(np.asarray(comps[match[0]], float), (n,)).astype(float)


def _process_columns(process: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in process:
        if key not in PROCESS_INPUTS:
            raise ValueError(f"unknown process input '{key}' (known: {', '.join(PROCESS_INPUTS)})")
    for key in PROCESS_INPUTS:
        if key not in process:
            continue
        raw = np.asarray(process[key])
        if raw.ndim == 0:
            raw = np.broadcast_to(raw, (n,))
        if raw.shape != (n,):
            raise ValueError(f"process input '{key}' has shape {raw.shape}, expected ({n},)")
        if key == "aging_atmosphere":
            codes = _atmosphere_codes(raw)
            for i, atm in enumerate(ATMOSPHERES):
                out[f"atmosphere_{atm}"] = np.where(codes < 0, np.nan, (codes == i).astype(float))
            continue
        try:
            v = raw.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"process input '{key}' must be numeric") from None
        lo = PROCESS_PARAMS[key].min if key in PROCESS_PARAMS else 0.0
        if lo is not None and (v < lo).any():
            raise ValueError(f"process input '{key}' has values below its physical minimum {lo:g}")
        if key == "perovskite_mass_fraction":
            if ((v < 0) | (v > 1)).any():
                raise ValueError("process input 'perovskite_mass_fraction' must be within 0..1")
            out[key] = v
        elif key == "sintering_temperature_C":
            out[key] = v
            out["sintering_minus_tg"] = v - AGZIF62_TG_C
            out["sintering_minus_transition"] = v - CSPBI3_TRANSITION_C
        else:
            out[key] = v
    return out


def _atmosphere_codes(raw: np.ndarray) -> np.ndarray:
    """Atmosphere names (or integer codes into ATMOSPHERES, NaN = unknown) -> codes, -1 unknown."""
    if raw.dtype.kind in "fiu":
        v = raw.astype(float)
        codes = np.where(np.isnan(v), -1, v).astype(int)
        if ((codes < -1) | (codes >= len(ATMOSPHERES)) | ((v != codes) & ~np.isnan(v))).any():
            raise ValueError(
                f"process input 'aging_atmosphere' codes must be 0..{len(ATMOSPHERES) - 1} ({', '.join(ATMOSPHERES)})"
            )
        return codes
    names = np.asarray(raw, dtype=object)
    uniq, inv = np.unique(names.astype(str), return_inverse=True)
    lut = []
    for u in uniq:
        key = u.strip().lower()
        if key in ("", "nan", "none"):
            lut.append(-1)
            continue
        if key not in _ATMOSPHERE_ALIASES:
            raise ValueError(f"unknown aging_atmosphere '{u}' (use one of: {', '.join(sorted(_ATMOSPHERE_ALIASES))})")
        lut.append(ATMOSPHERES.index(_ATMOSPHERE_ALIASES[key]))
    return np.asarray(lut, dtype=int)[inv]


def descriptor_names(process_keys: Iterable[str] = ()) -> list[str]:
    """Output columns of :func:`compute_descriptors` for the given process inputs."""
    keys = set(process_keys)
    unknown = keys - set(PROCESS_INPUTS)
    if unknown:
        raise ValueError(f"unknown process input(s) {', '.join(sorted(unknown))}")
    proc = {n for k in keys for n in _PROCESS_OUTPUTS[k]}
    return [n for n, d in DESCRIPTORS.items() if d.group != "process" or n in proc]


#: Rows per block: keeps the (rows, columns) temporaries in cache (a pure speed setting).
CHUNK_ROWS = 4096


def _composition_block(F: np.ndarray, cd: _ColumnData) -> dict[str, np.ndarray]:
    """Composition descriptors of a block of rows (see :func:`compute_descriptors`)."""
    n = F.shape[0]
    S = cd.sites

    P = {}
    totals = {}
    for site in _SITE_ORDER:
        P[site], totals[site] = _site_norm(F, S[site])
    double = (totals["B1"] + totals["B2"]) > 0
    single = ~double

    # B sublattice: B columns for ABX3 rows, B1/B2 with weight 1/2 each for A2B'B''X6 rows.
    b_idx = np.concatenate([S["B"], S["B1"], S["B2"]])
    QB = np.concatenate(
        [
            np.where(single[:, None], P["B"], 0.0),
            np.where(double[:, None], 0.5 * P["B1"], 0.0),
            np.where(double[:, None], 0.5 * P["B2"], 0.0),
        ],
        axis=1,
    )
    # an empty B (ABX3) or B1/B2 (double) sublattice makes every B descriptor NaN
    b_empty = np.isnan(QB).any(axis=1) | (single & (totals["B"] <= 0))
    QB = np.where(b_empty[:, None], np.nan, QB)
    WA, WX = P["A"], P["X"]
    r = cd.radius
    out: dict[str, np.ndarray] = {}

    rA, rX, rB = _wmean(WA, r[S["A"]]), _wmean(WX, r[S["X"]]), _wmean(QB, r[b_idx])
    nA = _wmean(WA, cd.charge[S["A"]])
    out["r_A"], out["r_B"], out["r_X"], out["n_A"] = rA, rB, rX, nA
    out["double_perovskite"] = double.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["tolerance_factor"] = (rA + rX) / (np.sqrt(2.0) * (rB + rX))
        out["octahedral_factor"] = rB / rX
        ratio = rA / rB
        lnr = np.log(np.where(ratio > 1.0, ratio, np.nan))
        tau = rX / rB - nA * (nA - ratio / lnr)
    out["bartel_tau"] = tau
    out["bartel_tau_perovskite"] = np.where(np.isnan(tau), np.nan, (tau < TAU_THRESHOLD) * 1.0)
    rB1, rB2 = _wmean(P["B1"], r[S["B1"]]), _wmean(P["B2"], r[S["B2"]])
    out["b_site_size_difference"] = np.where(double, np.abs(rB1 - rB2), 0.0)

    mA = np.where(double, 2.0, 1.0)
    mX = np.where(double, 6.0, 3.0)
    sA = GAS_CONSTANT * mA * _entropy(WA)
    sB = GAS_CONSTANT * np.where(double, _entropy(P["B1"]) + _entropy(P["B2"]), _entropy(P["B"]))
    sX = GAS_CONSTANT * mX * _entropy(WX)
    out["mixing_entropy_A"], out["mixing_entropy_B"], out["mixing_entropy_X"] = sA, sB, sX
    out["mixing_entropy_total"] = sA + sB + sX

    out["size_mismatch_A"] = _mismatch(WA, r[S["A"]])
    out["size_mismatch_B"] = np.where(
        double,
        0.5 * (_mismatch(P["B1"], r[S["B1"]]) + _mismatch(P["B2"], r[S["B2"]])),
        _mismatch(P["B"], r[S["B"]]),
    )
    out["size_mismatch_X"] = _mismatch(WX, r[S["X"]])

    empty_x = np.isnan(WX).any(axis=1) if WX.shape[1] else np.ones(n, bool)
    for hal in _HALIDES:
        j = cd.index.get(f"X:{hal}")
        col = WX[:, list(S["X"]).index(j)] if j is not None else np.zeros(n)
        out[f"halide_fraction_{hal}"] = np.where(empty_x, np.nan, col)

    site_weights = {"A": (WA, S["A"]), "B": (QB, b_idx), "X": (WX, S["X"])}
    # formula-level ion weights: multiplicity x fraction, normalised by ions per formula unit
    WF = np.concatenate([WA * mA[:, None], QB * 2.0 * np.where(double, 1.0, 0.5)[:, None], WX * mX[:, None]], axis=1)
    WF /= np.where(double, 10.0, 5.0)[:, None]
    site_weights["formula"] = (WF, np.concatenate([S["A"], b_idx, S["X"]]))
    for site, (W, idx) in site_weights.items():
        for prop, (mean, dev) in zip(_PROPS, _means_and_devs(W, cd.prop_matrix[idx]), strict=True):
            out[f"{site}_{prop}_mean"] = mean
            out[f"{site}_{prop}_avg_dev"] = dev

    Pfull = np.zeros_like(F)
    for site in ("A", "B", "X"):
        if S[site].size:
            Pfull[:, S[site]] = np.nan_to_num(P[site])
    out["vegard_bandgap"] = _vegard(Pfull, cd, BANDGAP_END_MEMBERS, BANDGAP_BOWING, double)
    out["vegard_lattice_parameter"] = _vegard(Pfull, cd, LATTICE_END_MEMBERS, LATTICE_BOWING, double)

    return out


def compute_descriptors(
    fractions: np.ndarray | pd.DataFrame,
    columns: Sequence[str] | None = None,
    process: Mapping[str, Any] | None = None,
    family: Family | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
) -> pd.DataFrame:
    """Descriptors of an array of compositions, vectorised over rows.

    Args:
        fractions: site fractions, shape (n, k); a DataFrame supplies its own column names.
        columns: names of the k columns ("A:FA", "B:Pb", "X:I", ...); any subset/order of a
            vocabulary such as :func:`universal_columns`.
        process: optional process inputs, each an array of shape (n,) (or a scalar): keys of
            :data:`PROCESS_INPUTS` (``milling_time_min``, ``milling_frequency_hz``,
            ``aging_time_h``, ``aging_atmosphere`` (names such as "air", "N2", "Ar", "vacuum" or
            codes into :data:`ATMOSPHERES`), ``additive_mol_pct``,
            ``sintering_temperature_C``, ``perovskite_mass_fraction``). Only the process
            descriptors of the given inputs are returned.
        family: optional family; supplies user-defined species, and for a composite family the
            perovskite loading (with ``params``).
        params: composition parameters of ``family`` (arrays of shape (n,)).
        strict: True (default): every row must be a valid composition (non-negative fractions,
            each occupied site summing to 1, either B or B1+B2 occupied), else
            :class:`CompositionError`. False: each site is normalised to sum 1 and an empty site
            gives NaN for the descriptors that need it (used by :class:`CompositionDescriptors`).

    Returns:
        DataFrame of shape (n, len(descriptor_names(process))) in :data:`DESCRIPTORS` order;
        units per :data:`DESCRIPTORS`.
    """
    if isinstance(fractions, pd.DataFrame):
        if columns is None:
            columns = [str(c) for c in fractions.columns]
        F = fractions.to_numpy(dtype=float)
    else:
        F = np.asarray(fractions, dtype=float)
    if F.ndim != 2:
        raise ValueError(f"fractions must be a 2-D array (n, k), got shape {F.shape}")
    if columns is None:
        raise ValueError("columns are required to interpret a fraction array")
    if len(columns) != F.shape[1]:
        raise ValueError(f"{len(columns)} column names for {F.shape[1]} fraction columns")
    n = F.shape[0]
    extra = family.extra_species if family is not None else None
    # all-zero columns contribute nothing to any descriptor: drop them once for speed
    active = np.flatnonzero((F != 0).any(axis=0))
    columns = [columns[int(j)] for j in active]
    cd = _column_data(columns, extra)
    if strict:
        Fa = F[:, active]
        _check_strict(Fa, cd, {s: _site_norm(Fa, cd.sites[s])[1] for s in _SITE_ORDER})
        del Fa
    proc = _process_columns(process, n) if process is not None else {}
    names = descriptor_names(process.keys() if process is not None else ())
    result = np.empty((len(names), n))  # one contiguous row per descriptor
    row = {m: j for j, m in enumerate(names)}
    comp_names = [m for m, d in DESCRIPTORS.items() if d.group == "composition"]
    for lo in range(0, n, CHUNK_ROWS):
        part = _composition_block(F[lo : lo + CHUNK_ROWS][:, active], cd)
        for m in comp_names:
            result[row[m], lo : lo + CHUNK_ROWS] = part[m]
    out: dict[str, np.ndarray] = {}

    if "perovskite_mass_fraction" in proc:
        loading = proc.pop("perovskite_mass_fraction")
    elif family is not None and family.components:
        if params is None:
            raise CompositionError(
                f"{family.slug} is a composite: give params to compute the perovskite loading",
                "params",
            )
        loading = _component_loading(family, params, n)
    else:
        loading = np.ones(n)
    out["perovskite_mass_fraction"] = loading
    out.update(proc)
    for m, v in out.items():
        result[row[m]] = v
    return pd.DataFrame(result.T, columns=names, copy=False)


def family_descriptors(
    family: Family, params: Mapping[str, Any], process: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Descriptors of compositions of ``family`` given its parameter arrays (validated)."""
    frame = site_fraction_frame(family, params)
    return compute_descriptors(frame, list(frame.columns), process, family, params)


# --- scikit-learn transformer -----------------------------------------------------------------


class CompositionDescriptors(TransformerMixin, BaseEstimator):
    """Site fractions (+ process inputs) -> descriptor matrix, for use in a Pipeline.

    Parameters
    ----------
    columns : list of str or None
        Names of the input columns: site-fraction columns "SITE:SPECIES" and process inputs
        (keys of :data:`PROCESS_INPUTS`; ``aging_atmosphere`` as an integer code into
        :data:`ATMOSPHERES`). None: the n input columns are the first n columns of
        :func:`universal_columns` (so any numeric matrix is accepted).
    descriptors : list of str or None
        Descriptors to output, by name. None: :data:`ALWAYS_DEFINED` plus the process
        descriptors of the given process inputs.
    fill_value : float
        Replaces NaN outputs (an empty site, or a Vegard estimate without cited end members).

    Input fractions are amounts per site: each site is normalised to sum 1 in every row
    (``strict=False`` of :func:`compute_descriptors`); fractions must be non-negative.
    Input X : array of shape (n_samples, n_features); output: (n_samples, n_descriptors).
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        descriptors: Sequence[str] | None = None,
        fill_value: float = 0.0,
    ) -> None:
        self.columns = columns
        self.descriptors = descriptors
        self.fill_value = fill_value

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _split(self, n_features: int) -> tuple[list[str], list[int], list[str], list[int]]:
        if self.columns is None:
            vocab = universal_columns()
            if n_features > len(vocab):
                raise ValueError(
                    f"{n_features} input columns but only {len(vocab)} universal columns; "
                    "name the columns with the 'columns' parameter"
                )
            cols = vocab[:n_features]
        else:
            cols = [str(c) for c in self.columns]
            if len(cols) != n_features:
                raise ValueError(f"'columns' names {len(cols)} columns, X has {n_features}")
        frac_cols, frac_idx, proc_cols, proc_idx = [], [], [], []
        for i, c in enumerate(cols):
            if c in PROCESS_INPUTS:
                proc_cols.append(c)
                proc_idx.append(i)
            else:
                _parse_column(c)
                frac_cols.append(c)
                frac_idx.append(i)
        return frac_cols, frac_idx, proc_cols, proc_idx

    def fit(self, X: Any, y: Any = None) -> CompositionDescriptors:
        """Check the input layout and fix the output columns. X: (n_samples, n_features)."""
        X = validate_data(self, X, dtype=np.float64)
        frac_cols, frac_idx, proc_cols, _ = self._split(X.shape[1])
        check_non_negative(X[:, frac_idx], "CompositionDescriptors (site fractions)")
        available = descriptor_names(proc_cols)
        if self.descriptors is None:
            proc = {n for k in proc_cols for n in _PROCESS_OUTPUTS[k]}
            names = [n for n in available if n in ALWAYS_DEFINED or n in proc]
        else:
            names = [str(d) for d in self.descriptors]
            missing = [d for d in names if d not in available]
            if missing:
                raise ValueError(
                    f"descriptor(s) {', '.join(missing)} not available from these inputs "
                    f"(available: {', '.join(available)})"
                )
        _column_data(frac_cols, None)  # resolve species and radii now: unknown names fail here
        self.fraction_columns_ = frac_cols
        self.process_columns_ = proc_cols
        self.feature_names_out_ = np.asarray(names, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Descriptors of each row. Returns an array of shape (n_samples, n_descriptors)."""
        check_is_fitted(self, "feature_names_out_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        frac_cols, frac_idx, proc_cols, proc_idx = self._split(X.shape[1])
        F = X[:, frac_idx]
        check_non_negative(F, "CompositionDescriptors (site fractions)")
        process = {c: X[:, i] for c, i in zip(proc_cols, proc_idx, strict=True)}
        df = compute_descriptors(F, frac_cols, process or None, strict=False)
        out = df[list(self.feature_names_out_)].to_numpy(dtype=np.float64)
        out[~np.isfinite(out)] = self.fill_value
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()
