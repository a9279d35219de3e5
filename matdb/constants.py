"""Reference constants with citations: the one table both the simulator and the descriptors read.

The table lives in ``matdb/data/reference_constants.yaml``; each entry has a value, a unit, the
material and conditions it refers to, a DOI and a locator, and the source's words. A value a seed
paper quotes from another work cites that primary work (``quoted_by`` names the seed paper)::

    >>> from matdb.constants import constant
    >>> c = constant("FAPbI3_bandgap")
    >>> c.value, c.unit, c.doi
    (1.48, 'eV', '10.1039/c3ee43822h')
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["ReferenceConstant", "constant", "reference_constants"]


@dataclass(frozen=True)
class ReferenceConstant:
    """One cited value (``value`` in ``unit``) of ``material``."""

    name: str
    value: float
    unit: str
    material: str
    quantity: str
    doi: str
    citation: str
    locator: str
    quote: str | None = None
    states: str | None = None
    conditions: str | None = None
    quoted_by: str | None = None
    approximate: bool = False

    @property
    def source(self) -> str:
        """A one-line citation with DOI and locator, e.g. for a descriptor's or a simulator constant's source."""
        words = f": '{self.quote}'" if self.quote else (f" ({self.states})" if self.states else "")
        via = f"; quoted by doi:{self.quoted_by}" if self.quoted_by else ""
        return f"{self.citation}, doi:{self.doi}, {self.locator}{words}{via}"


@cache
def reference_constants() -> dict[str, ReferenceConstant]:
    """All reference constants by name (read once from the bundled YAML)."""
    text = resources.files("matdb").joinpath("data/reference_constants.yaml").read_text(encoding="utf-8")
    raw: dict[str, dict[str, Any]] = yaml.safe_load(text)["constants"]
    return {name: ReferenceConstant(name=name, **{**d, "value": float(d["value"])}) for name, d in raw.items()}


def constant(name: str) -> ReferenceConstant:
    """One reference constant; ``KeyError`` names the known ones."""
    table = reference_constants()
    if name not in table:
        raise KeyError(f"no reference constant '{name}' (known: {', '.join(sorted(table))})")
    return table[name]
