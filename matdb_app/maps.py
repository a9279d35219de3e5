"""Composition maps: one property of a family against its composition (and process)
parameters, with a surrogate model's prediction drawn underneath on request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from matdb import store
from matdb.db import Database
from matdb_app.explore import process_columns
from matdb_app.info import param_label


def numeric_quantities(db: Database, family: str) -> pd.DataFrame:
    """Quantities with numeric results in a family: quantity, n (results), n_samples."""
    return store.numeric_quantities(db, family)


#: Default map per family: (quantity, x axis, y axis or None), from the seed papers.
MAP_PRESETS: dict[str, tuple[str, str, str | None]] = {
    "CsPbI3-agZIF62": ("plqy", "X", "sintering_temperature_C"),
    "FAPbIBr": ("activation_energy", "x", None),
    "FASnIBr": ("pl_intensity", "z", None),
    "FAMAPbI3": ("steady_state_time", "x", None),
    "CsNaAgBiCl6": ("migration_barrier", "y", None),
}


def family_results(db: Database, family: str, quantity: str | None = None) -> pd.DataFrame:
    """Numeric results of a family (optionally one quantity) with parameters as columns.

    Columns: sample_id, measurement_id, formula, quantity, value, unit, uncertainty, provenance,
    source_doi, source_locator, label, derived, approximate, technique, series_id, inferred,
    inferred_reason, plus one column per composition
    parameter and per process parameter present.
    """
    r = db.results(family=family, **({"quantity": quantity} if quantity else {}))
    r = r[r["value"].notna()] if not r.empty else r
    keep = [
        "sample_id",
        "measurement_id",
        "formula",
        "quantity",
        "value",
        "unit",
        "uncertainty",
        "provenance",
        "source_doi",
        "source_locator",
        "label",
        "derived",
        "approximate",
        "technique",
        "series_id",
        "inferred",
        "inferred_reason",
    ]
    if r.empty:
        return pd.DataFrame(columns=keep)
    out = r[keep].copy()
    for key in sorted({k for d in r["composition_params"] for k in d}):
        out[key] = [d.get(key) for d in r["composition_params"]]
    for key in sorted({k for d in r["process"] for k in d}):
        out[key] = [d.get(key) for d in r["process"]]
    return out.reset_index(drop=True)


def map_axes(df: pd.DataFrame, families: dict[str, Any], family: str) -> list[str]:
    """Numeric columns of :func:`family_results` usable as map axes (composition first)."""
    comp = [
        p for p in (families[family].parameters if family in families else []) if p in df.columns
    ]
    proc = [c for c in process_columns(df) if pd.to_numeric(df[c], errors="coerce").notna().any()]
    return comp + proc


def select_points(df: pd.DataFrame, x: str, y: str | None, provenances: list[str], *, derived: bool = True,
                  inferred: bool = True) -> pd.DataFrame:
    """The map's points: chosen provenances, with/without derived and inferred values, and a
    number on every axis."""
    sel = df[df["provenance"].isin(provenances)]
    if not derived:
        sel = sel[~sel["derived"].astype(bool)]
    if not inferred:
        sel = sel[~sel["inferred"].astype(bool)]
    for axis in (x, y):
        if axis is not None:
            sel = sel[pd.to_numeric(sel[axis], errors="coerce").notna()]
    return sel


#: Columns of the map's data table, around the axes.
DATA_COLUMNS = ("value", "unit", "uncertainty", "approximate", "derived", "inferred", "inferred_reason",
                "technique", "label", "series_id", "provenance", "source_doi", "source_locator")


def data_table(sel: pd.DataFrame, x: str, y: str | None) -> pd.DataFrame:
    cols = ["sample_id", "formula", x, *([y] if y else []), *DATA_COLUMNS]
    return sel[[c for c in dict.fromkeys(cols) if c in sel.columns]]


@dataclass
class ModelOverlay:
    """A surrogate's prediction over the map's axes, and what the map says about it."""

    card: dict[str, Any]
    grid: pd.DataFrame
    bounds: tuple[float, float] | None
    simulated: bool  # trained on simulated data
    warnings: list[str]  # the card's warnings a user must read
    caption: str


def model_overlay(db: Database, family: str, quantity: str, axes: list[str], *, include_simulated: bool = False,
                  families: dict[str, Any] | None = None) -> ModelOverlay:
    """Train (or reuse) the surrogate of ``quantity`` for ``family`` and predict over ``axes``
    (one axis: mean and ±1σ band; two: the mean as a background); other variables are held at
    the training median."""
    from matdb_app import screening as ss
    from matdb_app import screening_display as sd

    card = ss.train(db, quantity, family, "auto", include_simulated).card
    grid = ss.predict_grid(db, family, quantity, axes, 41 if len(axes) == 1 else 31, include_simulated)
    fams = families if families is not None else db.families()
    fixed = sd.fixed_variables(grid, axes)
    caption = (
        f"Model: {card.get('kind')} trained on {card.get('n_train')} points "
        f"({', '.join(card.get('training_provenance') or [])}); "
        + ("line = mean, band = ±1σ" if len(axes) == 1 else "background = predicted mean")
        + ("; held fixed: " + ", ".join(f"{param_label(fams, family, k)} = {v:g}" for k, v in fixed.items())
           if fixed else "")
        + "."
    )
    return ModelOverlay(card, grid, sd.card_bounds(card), sd.trained_on_simulated(card), sd.split_warnings(card)[0],
                        caption)
