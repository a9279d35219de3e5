"""Material families: sites, species, composition parameters and their validation.

A family is data, not code: built-in families live in ``matdb/data/families.yaml`` in the same
format a user writes to define a new ABX3 or A2B'B''X6 family. Site occupancies and precursor
amounts are arithmetic expressions of the composition parameters (``x``, ``1-x``, ``z/3``); they
are evaluated with numpy so that a whole array of compositions is handled at once.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from matdb.species import Species, UnknownSpeciesError, get_species

#: Tolerance for site sums and charge balance.
FRACTION_TOLERANCE = 1e-6

#: Formula units of each site for each structure type.
STRUCTURES: dict[str, dict[str, int]] = {
    "ABX3": {"A": 1, "B": 1, "X": 3},
    "A2BBX6": {"A": 2, "B1": 1, "B2": 1, "X": 6},
}
#: Coordination used for radii on each site.
SITE_COORDINATION = {"A": "XII", "B": "VI", "B1": "VI", "B2": "VI", "X": "VI"}
STRUCTURE_KINDS = (*STRUCTURES, "composite")


class CompositionError(ValueError):
    """An impossible or malformed composition; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FamilyDefinitionError(ValueError):
    """A family definition that cannot be used."""


# --- safe arithmetic expressions -------------------------------------------------------------

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Any] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


@dataclass(frozen=True)
class Expr:
    """An arithmetic expression of composition parameters, e.g. ``"1-x"`` or ``"z/3"``."""

    text: str
    _tree: ast.expr = field(repr=False, compare=False, hash=False, default=None)  # type: ignore[assignment]

    @classmethod
    def parse(cls, text: str | float | int) -> Expr:
        src = str(text).strip()
        try:
            tree = ast.parse(src, mode="eval").body
        except SyntaxError as exc:
            raise FamilyDefinitionError(f"cannot parse expression '{src}': {exc.msg}") from None
        for node in ast.walk(tree):
            ok = isinstance(
                node, (ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.operator, ast.unaryop)
            ) or (isinstance(node, ast.Constant) and isinstance(node.value, (int, float)))
            if not ok or (isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS):
                raise FamilyDefinitionError(
                    f"expression '{src}' may only use numbers, parameter names and + - * / **"
                )
        return cls(src, tree)

    @property
    def names(self) -> set[str]:
        return {n.id for n in ast.walk(self._tree) if isinstance(n, ast.Name)}

    def __call__(self, params: Mapping[str, Any]) -> Any:
        return self._eval(self._tree, params)

    def _eval(self, node: ast.expr, params: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return float(node.value)  # type: ignore[arg-type]  # non-numeric constants raise, as intended
        if isinstance(node, ast.Name):
            if node.id not in params:
                raise CompositionError(f"missing composition parameter '{node.id}'", node.id)
            return params[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, params), self._eval(node.right, params))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, params))
        raise FamilyDefinitionError(f"unsupported expression '{self.text}'")  # pragma: no cover


# --- families ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A composition parameter with its allowed range."""

    name: str
    min: float = 0.0
    max: float = 1.0
    description: str = ""


@dataclass(frozen=True)
class Precursor:
    """A precursor salt and its amount (mol per formula unit, or mass fraction for composites)."""

    name: str
    formula: str
    amount: Expr
    basis: str = "mol"  # "mol": moles per formula unit; "mass": mass fraction of the batch


@dataclass(frozen=True)
class Family:
    """A material family such as FA_xMA_{1-x}PbI3.

    Attributes:
        slug: identifier used in files and exports ("FAMAPbI3").
        name: display name.
        structure: "ABX3", "A2BBX6" or "composite".
        parameters: composition parameters by name.
        sites: site -> species -> occupancy expression. For composites, the sites of the
            active perovskite phase (used for descriptors).
        components: composites only: component name -> mass fraction expression.
        precursors: precursor salts with amounts per formula unit (or mass fractions).
    """

    slug: str
    name: str
    structure: str
    parameters: dict[str, Parameter]
    sites: dict[str, dict[str, Expr]]
    components: dict[str, Expr] = field(default_factory=dict)
    precursors: tuple[Precursor, ...] = ()
    description: str = ""
    references: tuple[str, ...] = ()
    extra_species: dict[str, Species] = field(default_factory=dict, compare=False, hash=False)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Family:
        """Build a family from its file form (see ``matdb/data/families.yaml``)."""
        try:
            slug = str(data["slug"])
            structure = str(data.get("structure", "ABX3"))
        except KeyError as exc:
            raise FamilyDefinitionError(f"family definition is missing '{exc.args[0]}'") from None
        where = f"family '{slug}'"
        if structure not in STRUCTURE_KINDS:
            raise FamilyDefinitionError(
                f"{where}: structure must be one of {', '.join(STRUCTURE_KINDS)}, not '{structure}'"
            )
        params: dict[str, Parameter] = {}
        for pname, spec in (data.get("parameters") or {}).items():
            spec = spec or {}
            params[pname] = Parameter(
                pname, float(spec.get("min", 0.0)), float(spec.get("max", 1.0)),
                str(spec.get("description", "")),
            )
        extra = {}
        for sym, spec in (data.get("species") or {}).items():
            extra[sym] = Species(
                sym, int(spec["charge"]), str(spec.get("formula", sym)),
                bool(spec.get("molecular", False)),
                {k: (float(v[0]), str(v[1])) for k, v in (spec.get("radii") or {}).items()},
                str(spec.get("name", "")),
            )
        sites = {
            site: {sp: Expr.parse(e) for sp, e in occ.items()}
            for site, occ in (data.get("sites") or {}).items()
        }
        components = {c: Expr.parse(e) for c, e in (data.get("components") or {}).items()}
        precursors = tuple(
            Precursor(
                str(p["name"]), str(p.get("formula", p["name"])), Expr.parse(p["amount"]),
                str(p.get("basis", "mol")),
            )
            for p in (data.get("precursors") or [])
        )
        fam = cls(
            slug=slug,
            name=str(data.get("name", slug)),
            structure=structure,
            parameters=params,
            sites=sites,
            components=components,
            precursors=precursors,
            description=str(data.get("description", "")),
            references=tuple(data.get("references") or ()),
            extra_species=extra,
        )
        fam._check_definition()
        return fam

    def to_dict(self) -> dict[str, Any]:
        """The file form of this family (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "slug": self.slug,
            "name": self.name,
            "structure": self.structure,
            "parameters": {
                p.name: {"min": p.min, "max": p.max, "description": p.description}
                for p in self.parameters.values()
            },
            "sites": {s: {sp: e.text for sp, e in occ.items()} for s, occ in self.sites.items()},
        }
        if self.components:
            out["components"] = {c: e.text for c, e in self.components.items()}
        if self.precursors:
            out["precursors"] = [
                {"name": p.name, "formula": p.formula, "amount": p.amount.text, "basis": p.basis}
                for p in self.precursors
            ]
        if self.extra_species:
            out["species"] = {
                s.symbol: {
                    "charge": s.charge, "formula": s.formula, "molecular": s.molecular,
                    "radii": {k: list(v) for k, v in s.radii.items()}, "name": s.name,
                }
                for s in self.extra_species.values()
            }
        if self.description:
            out["description"] = self.description
        if self.references:
            out["references"] = list(self.references)
        return out

    def _check_definition(self) -> None:
        where = f"family '{self.slug}'"
        exprs = [e for occ in self.sites.values() for e in occ.values()]
        exprs += list(self.components.values()) + [p.amount for p in self.precursors]
        for e in exprs:
            unknown = e.names - set(self.parameters)
            if unknown:
                raise FamilyDefinitionError(
                    f"{where}: expression '{e.text}' uses undeclared parameter(s) "
                    f"{', '.join(sorted(unknown))}"
                )
        if self.structure == "composite":
            if not self.components:
                raise FamilyDefinitionError(f"{where}: a composite needs 'components'")
        else:
            expected = set(STRUCTURES[self.structure])
            if set(self.sites) != expected:
                raise FamilyDefinitionError(
                    f"{where}: a {self.structure} family needs sites {', '.join(sorted(expected))}, "
                    f"got {', '.join(sorted(self.sites)) or 'none'}"
                )
        for occ in self.sites.values():
            for sp in occ:
                try:
                    get_species(sp, self.extra_species)
                except UnknownSpeciesError as exc:
                    raise FamilyDefinitionError(f"{where}: {exc}") from None
        # the definition must give a valid composition at the centre of the parameter box
        centre = {p.name: (p.min + p.max) / 2 for p in self.parameters.values()}
        try:
            self.validate(centre)
        except CompositionError as exc:
            raise FamilyDefinitionError(f"{where}: invalid at parameters {centre}: {exc}") from None

    # -- compositions ------------------------------------------------------------------------

    @property
    def site_multiplicity(self) -> dict[str, int]:
        if self.structure == "composite":
            return STRUCTURES["ABX3"] if set(self.sites) == {"A", "B", "X"} else (
                STRUCTURES["A2BBX6"] if self.sites else {}
            )
        return STRUCTURES[self.structure]

    @property
    def columns(self) -> list[str]:
        """Names of the site-fraction columns, "A:FA", "B:Pb", "X:I", ..."""
        return [f"{site}:{sp}" for site, occ in self.sites.items() for sp in occ]

    def species(self, symbol: str) -> Species:
        return get_species(symbol, self.extra_species)

    def site_fractions(self, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Occupancy of each site by each species (floats, or arrays for array parameters)."""
        return {
            site: {sp: _broadcast(e(params)) for sp, e in occ.items()}
            for site, occ in self.sites.items()
        }

    def component_fractions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Mass fraction of each component (composites only)."""
        return {c: _broadcast(e(params)) for c, e in self.components.items()}

    def fraction_matrix(self, params: Mapping[str, Any]) -> np.ndarray:
        """Site fractions for an array of compositions, shape (n, len(self.columns))."""
        arrays = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        n = max((a.size for a in arrays.values()), default=1)
        fr = self.site_fractions(arrays)
        cols = [np.broadcast_to(np.asarray(fr[s][sp], dtype=float), (n,))
                for s, occ in self.sites.items() for sp in occ]
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))

    def validate(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Check a composition; return the parameters as floats.

        Raises:
            CompositionError: a missing, unknown or out-of-range parameter, a site that does
                not sum to 1, a negative occupancy, or a composition that is not charge neutral.
        """
        if not isinstance(params, Mapping):
            raise CompositionError(f"composition parameters must be a mapping, got {params!r}")
        clean: dict[str, float] = {}
        for name in params:
            if name not in self.parameters:
                known = ", ".join(self.parameters) or "none"
                raise CompositionError(
                    f"'{name}' is not a composition parameter of {self.slug} (parameters: {known})",
                    name,
                )
        for p in self.parameters.values():
            if p.name not in params:
                raise CompositionError(f"missing composition parameter '{p.name}'", p.name)
            try:
                v = float(params[p.name])
            except (TypeError, ValueError):
                raise CompositionError(
                    f"composition parameter '{p.name}' must be a number, got {params[p.name]!r}",
                    p.name,
                ) from None
            if not math.isfinite(v):
                raise CompositionError(f"composition parameter '{p.name}' is {v}", p.name)
            if not p.min - FRACTION_TOLERANCE <= v <= p.max + FRACTION_TOLERANCE:
                raise CompositionError(
                    f"{p.name} = {v:g} is outside the range {p.min:g}..{p.max:g} of {self.slug}",
                    p.name,
                )
            clean[p.name] = v
        self._check_sites(clean)
        return clean

    def _check_sites(self, params: Mapping[str, float]) -> None:
        fr = self.site_fractions(params)
        for site, occ in fr.items():
            for sp, f in occ.items():
                if f < -FRACTION_TOLERANCE or f > 1 + FRACTION_TOLERANCE:
                    raise CompositionError(
                        f"occupancy of {sp} on site {site} is {f:g}, outside 0..1", f"{site}:{sp}"
                    )
            total = sum(occ.values())
            if abs(total - 1.0) > FRACTION_TOLERANCE:
                raise CompositionError(f"site {site} fractions sum to {total:g}, not 1", site)
        if self.components:
            cf = self.component_fractions(params)
            total = sum(cf.values())
            if abs(total - 1.0) > FRACTION_TOLERANCE or any(v < -FRACTION_TOLERANCE for v in cf.values()):
                raise CompositionError(
                    f"component mass fractions {cf} must be non-negative and sum to 1", "components"
                )
        mult = self.site_multiplicity
        if fr and mult:
            charge = sum(
                mult[site] * f * self.species(sp).charge for site, occ in fr.items() for sp, f in occ.items()
            )
            if abs(charge) > 1e-4:
                raise CompositionError(f"composition is not charge neutral (net charge {charge:+g})", "sites")

    def formula(self, params: Mapping[str, Any]) -> str:
        """Reduced formula such as "FA0.8MA0.2PbI3" or "(CsPbI3)0.05(agZIF-62)0.95"."""
        if self.components:
            cf = {c: float(v) for c, v in self.component_fractions(params).items() if float(v) > 1e-9}
            if len(cf) == 1:  # a pure component is just that component
                return next(iter(cf))
            return "".join(f"({c}){_num(v)}" for c, v in cf.items())
        fr = self.site_fractions(params)
        mult = self.site_multiplicity
        parts = []
        for site in mult:
            for sp, f in fr.get(site, {}).items():
                n = float(f) * mult[site]
                if n > 1e-9:
                    parts.append(sp + ("" if abs(n - 1) < 1e-9 else _num(n)))
        return "".join(parts)

    def precursor_moles(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Amount of each precursor, mol per formula unit (or mass fraction for basis 'mass')."""
        return {p.name: float(p.amount(params)) for p in self.precursors}


def _broadcast(v: Any) -> Any:
    return v


def _num(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return s


# --- registry ---------------------------------------------------------------------------------


@cache
def builtin_families() -> dict[str, Family]:
    """The five families matdb ships with, keyed by slug."""
    text = resources.files("matdb").joinpath("data/families.yaml").read_text(encoding="utf-8")
    return {f.slug: f for f in (Family.from_dict(d) for d in yaml.safe_load(text)["families"])}


def get_family(slug: str, extra: Mapping[str, Family] | None = None) -> Family:
    """Look up a family by slug among built-ins and ``extra`` (user-defined) families."""
    if extra and slug in extra:
        return extra[slug]
    fams = builtin_families()
    if slug in fams:
        return fams[slug]
    known = ", ".join(sorted({*fams, *(extra or {})}))
    raise CompositionError(f"unknown family '{slug}' (known: {known})", "family")


def canonical_params_key(params: Mapping[str, float]) -> str:
    """A stable text key for a composition, used as a natural key in the database."""
    return ",".join(f"{k}={_num(round(float(v), 6)) or '0'}" for k, v in sorted(params.items()))
