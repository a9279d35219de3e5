"""How rows look on every page (no Streamlit import): provenance badges, the simulated-data
notice, DOI links, sorting and paging."""

from __future__ import annotations

import math

import pandas as pd

#: Rows per page in every table.
PAGE_SIZE = 100
#: How provenance is shown in tables (simulated rows must stand out).
PROVENANCE_BADGES = {
    "literature": "● literature",
    "measured": "■ measured",
    "simulated": "◇ SIMULATED",
}
#: The marker legend under every plot with points of several provenances.
MARKER_LEGEND = "Markers: ● literature · ■ measured · ◇ SIMULATED (open diamond)."


def badge(provenance: str) -> str:
    return PROVENANCE_BADGES.get(provenance, provenance)


def badges(df: pd.DataFrame) -> pd.DataFrame:
    """A display copy with provenance badges (simulated rows stand out)."""
    if "provenance" not in df.columns:
        return df
    out = df.copy()
    out["provenance"] = out["provenance"].map(lambda p: PROVENANCE_BADGES.get(p, p))
    return out


def simulated_notice(df: pd.DataFrame, what: str = "rows") -> str | None:
    """The warning to show when simulated rows are on screen (None when there are none)."""
    if "provenance" not in df.columns or not len(df):
        return None
    n = int((df["provenance"] == "simulated").sum())
    if not n:
        return None
    return (f"⚠ {n} of {len(df)} {what} are **simulated** (not measured): they are marked ◇ SIMULATED in "
            "tables and drawn as open diamonds in plots.")


def provenance_counts(df: pd.DataFrame, what: str = "samples") -> str:
    """"● literature: 20 · ◇ SIMULATED: 6 samples" (empty for an empty table)."""
    if not len(df):
        return ""
    counts = df["provenance"].value_counts()
    return " · ".join(f"{badge(k)}: {v}" for k, v in counts.items()) + f" {what}"


def doi_url(doi: str | None) -> str | None:
    if not doi or (isinstance(doi, float) and math.isnan(doi)):
        return None
    return f"https://doi.org/{doi}"


def with_links(df: pd.DataFrame) -> pd.DataFrame:
    """Replace ``source_doi`` by a ``source`` column with the DOI URL (shown as a link)."""
    out = df.copy()
    if "source_doi" in out.columns:
        out.insert(out.columns.get_loc("source_doi"), "source", out["source_doi"].map(doi_url))
        out = out.drop(columns=["source_doi"])
    return out


def sort_and_page(
    df: pd.DataFrame, sort_by: str | None, ascending: bool, page: int, page_size: int = PAGE_SIZE
) -> tuple[pd.DataFrame, int]:
    """Sort (stable, NaN last) and cut one page (1-based). Returns (page rows, number of pages)."""
    n_pages = max(1, math.ceil(len(df) / page_size))
    page = min(max(1, page), n_pages)
    if sort_by and sort_by in df.columns:
        df = df.sort_values(sort_by, ascending=ascending, kind="stable", na_position="last")
    return df.iloc[(page - 1) * page_size : page * page_size], n_pages
