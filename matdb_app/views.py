"""Data shaping for the Streamlit pages (no Streamlit import, no widgets).

Pages call these functions (through the caches in :mod:`matdb_app.ui_state`) so that no page
script holds SQL, unit logic or model fitting. Everything here is a pure function of a
:class:`~matdb.db.Database` or of DataFrames/arrays and is tested without a browser.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from matdb import models as M
from matdb import units, vocabulary
from matdb.db import Database
from matdb.vocabulary import PROCESS_PARAMS, TLIS_MODES

#: Stored array kinds of time-lapsed in situ runs.
TLIS_KINDS = tuple(TLIS_MODES.values())
#: Columns of the sample table that hold dicts (shown and exported as JSON text).
_DICT_COLUMNS = ("composition_params", "process")


def data_version(db: Database) -> str:
    """A token that changes whenever data is written (ingest, update, proposal).

    Cheap (three aggregate queries) so that every page run can call it and key its caches on it.
    """
    with db.engine.connect() as conn:
        files = conn.execute(select(func.count(), func.max(M.IngestedFile.id))).one()
        samples = conn.execute(select(func.count(), func.max(M.Sample.id))).one()
        results = conn.execute(select(func.count(), func.max(M.Result.id))).one()
        models = conn.execute(select(func.count(), func.max(M.SavedModel.id))).one()
        proposals = conn.execute(select(func.count(), func.max(M.Proposal.id))).one()
    return "/".join(f"{a}:{b}" for a, b in (files, samples, results, models, proposals))


def quantity_def(db_quantities: dict[str, vocabulary.QuantityDef], name: str) -> vocabulary.QuantityDef:
    """The definition of a quantity (built-in or declared in the database)."""
    if name in db_quantities:
        return db_quantities[name]
    if name in vocabulary.QUANTITIES:
        return vocabulary.QUANTITIES[name]
    return vocabulary.QuantityDef(name, "", name)


def axis_label(name: str, db_quantities: dict[str, vocabulary.QuantityDef] | None = None) -> str:
    """Axis label with unit for a quantity, a process parameter or a composition parameter."""
    if db_quantities is not None and name in db_quantities:
        return db_quantities[name].axis_label
    if name in vocabulary.QUANTITIES:
        return vocabulary.QUANTITIES[name].axis_label
    if name in PROCESS_PARAMS:
        p = PROCESS_PARAMS[name]
        u = units.display_unit(p.unit) if p.unit != "revolutions/minute" else "rpm"
        return f"{p.label} ({u})" if p.unit else p.label
    return name


def param_label(families: dict[str, Any], family: str | None, name: str) -> str:
    """Axis label of a composition parameter ("x (FA fraction)") or of any other column."""
    fam = families.get(family) if family else None
    if fam is not None and name in fam.parameters:
        desc = fam.parameters[name].description
        return f"{name} ({desc})" if desc else name
    return axis_label(name)


# --- samples ----------------------------------------------------------------------------------


def sample_table(db: Database) -> pd.DataFrame:
    """All samples, one row each, with composition and process columns flattened.

    Columns: sample_id, family, formula, provenance, label, the composition parameters, the
    process parameters, source_doi, source_key, source_locator, synthesis_id, proposal_id,
    and ``composition_params``/``process`` as JSON text (for CSV export).
    """
    df = db.samples()
    if df.empty:
        return pd.DataFrame(
            columns=[
                "sample_id",
                "family",
                "formula",
                "provenance",
                "label",
                "source_doi",
                "source_key",
                "source_locator",
            ]
        )
    for col in _DICT_COLUMNS:
        df[col] = df[col].map(lambda d: json.dumps(d, sort_keys=True))
    lead = ["sample_id", "family", "formula", "provenance", "label"]
    tail = [
        "source_doi",
        "source_key",
        "source_locator",
        "synthesis_id",
        "proposal_id",
        *_DICT_COLUMNS,
    ]
    middle = [c for c in df.columns if c not in lead and c not in tail]
    return df[lead + middle + tail]


def parameter_columns(df: pd.DataFrame, families: dict[str, Any], family: str | None) -> list[str]:
    """Composition-parameter columns of ``family`` present in the sample table."""
    if family is None or family not in families:
        return []
    return [p for p in families[family].parameters if p in df.columns]


def process_columns(df: pd.DataFrame, numeric: bool = True) -> list[str]:
    """Process-parameter columns present in ``df`` (numeric ones only by default)."""
    out = []
    for name, p in PROCESS_PARAMS.items():
        if name in df.columns and df[name].notna().any() and (not numeric or not p.categorical):
            out.append(name)
    return out


@dataclass
class SampleFilter:
    """What the Explore page filters on; ``None``/empty means "any"."""

    family: str | None = None
    params: dict[str, tuple[float, float]] = field(default_factory=dict)
    process: dict[str, tuple[float, float]] = field(default_factory=dict)
    provenance: list[str] = field(default_factory=list)
    sample_ids: set[str] | None = None  # from a technique/quantity/value filter
    text: str = ""  # substring of sample id, formula or label


def filter_samples(df: pd.DataFrame, f: SampleFilter) -> pd.DataFrame:
    """Apply a :class:`SampleFilter` to :func:`sample_table` output (vectorised).

    A range filter on a parameter keeps only rows that have that parameter inside the range.
    """
    if df.empty:
        return df
    mask = np.ones(len(df), dtype=bool)
    if f.family:
        mask &= (df["family"] == f.family).to_numpy()
    for col, (lo, hi) in {**f.params, **f.process}.items():
        if col not in df.columns:
            mask &= False
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            mask &= (v >= lo - 1e-9) & (v <= hi + 1e-9)
    if f.provenance:
        mask &= df["provenance"].isin(f.provenance).to_numpy()
    if f.sample_ids is not None:
        mask &= df["sample_id"].isin(f.sample_ids).to_numpy()
    if f.text.strip():
        t = f.text.strip()
        hit = np.zeros(len(df), dtype=bool)
        for col in ("sample_id", "formula", "label"):
            hit |= df[col].astype(str).str.contains(t, case=False, regex=False, na=False).to_numpy()
        mask &= hit
    out = df[mask]
    return out.dropna(axis=1, how="all") if f.family else out


def samples_with(
    db: Database,
    technique: str | None = None,
    quantity: str | None = None,
    value: tuple[float | None, float | None] | None = None,
) -> set[str]:
    """Ids of samples measured by ``technique`` / with a ``quantity`` result in ``value``."""
    filters: dict[str, Any] = {}
    if technique:
        filters["technique"] = technique
    if quantity:
        filters["quantity"] = quantity
    if value is not None and quantity:
        filters["value"] = value
    with db.engine.connect() as conn:
        q = (
            select(M.Sample.key)
            .join(M.Measurement, M.Measurement.sample_id == M.Sample.id)
            .join(M.Result, M.Result.measurement_id == M.Measurement.id, isouter=True)
            .distinct()
        )
        if technique:
            q = q.where(M.Measurement.technique == technique)
        if quantity:
            q = q.where(M.Result.quantity == quantity)
        if value is not None and quantity:
            lo, hi = value
            if lo is not None:
                q = q.where(M.Result.value >= lo)
            if hi is not None:
                q = q.where(M.Result.value <= hi)
        return set(conn.execute(q).scalars())


def techniques_and_quantities(db: Database) -> tuple[list[str], pd.DataFrame]:
    """Techniques with at least one measurement, and per-quantity numeric ranges.

    Returns ``(techniques, ranges)`` where ranges has columns quantity, n, min, max (numeric
    results only).
    """
    with db.engine.connect() as conn:
        techs = sorted(conn.execute(select(M.Measurement.technique).distinct()).scalars())
        rows = conn.execute(
            select(
                M.Result.quantity,
                func.count(M.Result.value),
                func.min(M.Result.value),
                func.max(M.Result.value),
            ).group_by(M.Result.quantity)
        ).all()
    ranges = pd.DataFrame(rows, columns=["quantity", "n", "min", "max"]).sort_values("quantity")
    return techs, ranges.reset_index(drop=True)


def quantity_by_sample(db: Database, quantity: str, family: str | None = None) -> pd.DataFrame:
    """Mean value of ``quantity`` per sample (columns sample_id, value, n)."""
    r = db.results(quantity=quantity, **({"family": family} if family else {}))
    r = r[r["sample_id"].notna() & r["value"].notna()]
    if r.empty:
        return pd.DataFrame(columns=["sample_id", quantity, f"{quantity} n"])
    g = r.groupby("sample_id")["value"].agg(["mean", "count"]).reset_index()
    return g.rename(columns={"mean": quantity, "count": f"{quantity} n"})


def sort_and_page(
    df: pd.DataFrame, sort_by: str | None, ascending: bool, page: int, page_size: int
) -> tuple[pd.DataFrame, int]:
    """Sort (stable, NaN last) and cut one page (1-based). Returns (page rows, number of pages)."""
    n_pages = max(1, math.ceil(len(df) / page_size))
    page = min(max(1, page), n_pages)
    if sort_by and sort_by in df.columns:
        df = df.sort_values(sort_by, ascending=ascending, kind="stable", na_position="last")
    return df.iloc[(page - 1) * page_size : page * page_size], n_pages


def doi_url(doi: str | None) -> str | None:
    if not doi or (isinstance(doi, float) and math.isnan(doi)):
        return None
    return f"https://doi.org/{doi}"


def with_links(df: pd.DataFrame) -> pd.DataFrame:
    """Add a ``source`` column with the DOI URL (st.column_config.LinkColumn renders it)."""
    out = df.copy()
    if "source_doi" in out.columns:
        out.insert(out.columns.get_loc("source_doi"), "source", out["source_doi"].map(doi_url))
        out = out.drop(columns=["source_doi"])
    return out


# --- sample story -----------------------------------------------------------------------------


def story_tables(story: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Tables of one sample's story (:meth:`Database.sample`): precursors, steps, results."""
    syn = story.get("synthesis") or {}
    pre = pd.DataFrame(
        syn.get("precursors") or [],
        columns=["chemical", "formula", "role", "mass_mg", "amount_mmol", "mol_pct", "step"],
    )
    steps = pd.DataFrame(
        syn.get("steps") or [],
        columns=[
            "position",
            "kind",
            "duration_min",
            "temperature_c",
            "atmosphere",
            "frequency_hz",
            "frequency_rpm",
            "done",
            "note",
        ],
    )
    rows = []
    for m in story.get("measurements", []):
        for r in m["results"]:
            val = r["text"] if r["value"] is None else r["value"]
            rows.append(
                {
                    "measurement": m["id"],
                    "technique": m["technique"],
                    "quantity": r["quantity"],
                    "value": val,
                    "unit": units.display_unit(r["unit"] or ""),
                    "uncertainty": r["uncertainty"],
                    "approximate": r["approximate"],
                    "label": r["label"],
                    "derived": r["derived"],
                    "method": r["method"],
                    "reported": None
                    if r["reported_value"] is None
                    else f"{r['reported_value']} {r['reported_unit'] or ''}".strip(),
                    "locator": r["locator"],
                    "provenance": m["provenance"],
                    "source": (m["source"] or {}).get("url"),
                }
            )
    res = pd.DataFrame(
        rows,
        columns=[
            "measurement",
            "technique",
            "quantity",
            "value",
            "unit",
            "uncertainty",
            "approximate",
            "label",
            "derived",
            "method",
            "reported",
            "locator",
            "provenance",
            "source",
        ],
    )
    if not res.empty:
        res["value"] = res["value"].astype(str)
    mill = {
        k: syn.get(k)
        for k in M.SYNTHESIS_SETTINGS
        if syn.get(k) is not None
    }
    return {
        "precursors": pre,
        "steps": steps,
        "results": res,
        "mill": pd.DataFrame({"setting": list(mill), "value": [str(v) for v in mill.values()]}),
    }


# --- arrays (spectra, patterns) ---------------------------------------------------------------


def arrays_table(
    db: Database, kinds: tuple[str, ...] | None = None, family: str | None = None
) -> pd.DataFrame:
    """Stored arrays without their data: array_id, measurement_id, sample_id, family, kind, ..."""
    from matdb.query import arrays_index

    f: dict[str, Any] = {}
    if kinds:
        f["kind"] = list(kinds)
    if family:
        f["family"] = family
    df = arrays_index(db, **f)
    if df.empty:
        return df
    df["shape"] = df["shape"].map(
        lambda s: " × ".join(str(v) for v in s) if isinstance(s, list) else str(s)
    )
    df["title"] = [
        f"{s or m} · {k} ({p})"
        for s, m, k, p in zip(
            df["sample_id"], df["measurement_id"], df["kind"], df["provenance"], strict=True
        )
    ]
    return df


@dataclass
class Run:
    """One TLIS run ready to plot: values (n_t, n_wl), reflectance if a reference is stored."""

    measurement_id: str
    kind: str
    times_min: np.ndarray
    wavelengths_nm: np.ndarray
    values: np.ndarray
    reference: np.ndarray | None
    provenance: str
    meta: dict[str, Any]

    @property
    def signal(self) -> np.ndarray:
        """Reflectance R = sample/reference for reflectance runs with a reference, else counts."""
        if self.reference is not None and self.kind == "tlis_reflectance":
            ref = np.where(self.reference > 0, self.reference, np.nan)
            return self.values / ref
        return self.values

    @property
    def signal_label(self) -> str:
        return (
            "Reflectance R"
            if self.reference is not None and self.kind == "tlis_reflectance"
            else "Intensity (counts)"
        )


def load_run(db: Database, measurement_id: str, kind: str | None = None) -> Run:
    """Read a TLIS run; axes named time (min) and wavelength (nm), values shape (n_t, n_wl)."""
    a = db.array(measurement_id, kind)
    axes = a["axes"]
    if "time" not in axes or "wavelength" not in axes:
        raise ValueError(
            f"array of measurement '{measurement_id}' has axes {list(axes)}, not time × wavelength"
        )
    t = np.asarray(
        units.convert(1.0, axes["time"][1] or "min", "min") * axes["time"][0], dtype=float
    )
    wl = np.asarray(axes["wavelength"][0], dtype=float)
    vals = np.asarray(a["values"], dtype=float)
    if vals.shape != (t.size, wl.size):
        if vals.shape == (wl.size, t.size):
            vals = vals.T
        else:
            raise ValueError(
                f"array shape {vals.shape} does not match {t.size} times × {wl.size} wavelengths"
            )
    ref = None if a["reference"] is None else np.asarray(a["reference"], dtype=float)
    return Run(measurement_id, a["kind"], t, wl, vals, ref, a["provenance"], a["meta"] or {})


@dataclass
class Pattern:
    """A 1-D pattern (pXRD, spectrum): x, y, axis names and units."""

    measurement_id: str
    kind: str
    x: np.ndarray
    y: np.ndarray
    x_name: str
    x_unit: str
    y_unit: str
    provenance: str


def load_pattern(db: Database, measurement_id: str, kind: str | None = None) -> Pattern:
    a = db.array(measurement_id, kind)
    (x_name, (x, x_unit)), *_ = a["axes"].items()
    y = np.asarray(a["values"], dtype=float).ravel()
    return Pattern(
        measurement_id,
        a["kind"],
        np.asarray(x, dtype=float),
        y,
        x_name,
        x_unit or "",
        a["value_unit"] or "",
        a["provenance"],
    )


@dataclass
class RunFeatures:
    """Feature series against time and scalar features of a run, as plain tables."""

    series: pd.DataFrame  # time_min, name, value, unit, uncertainty (valid points only)
    features: pd.DataFrame  # name, value, unit, uncertainty, method, quantity, note
    warnings: list[str]


def run_features(run: Run) -> RunFeatures:
    """Extract features with :func:`screening.spectra.extract_features` (raises on failure)."""
    from screening.spectra import extract_features

    fs = extract_features(
        run.kind, run.values, run.wavelengths_nm, run.times_min, reference=run.reference
    )
    rows = [r for s in fs.series.values() for r in s.records(fs.times_min)]
    series = pd.DataFrame(
        rows,
        columns=[
            "time_min",
            "name",
            "value",
            "unit",
            "uncertainty",
            "method",
            "version",
            "quantity",
        ],
    )
    feats = pd.DataFrame(
        fs.feature_records(),
        columns=["name", "value", "unit", "uncertainty", "method", "version", "quantity", "note"],
    )
    return RunFeatures(series, feats, list(fs.warnings))


def families_with(db: Database, quantity: str) -> list[str]:
    """Families with at least one result of ``quantity``."""
    with db.engine.connect() as conn:
        q = (
            select(M.Family.slug)
            .join(M.Material, M.Material.family_id == M.Family.id)
            .join(M.Measurement, M.Measurement.material_id == M.Material.id)
            .join(M.Result, M.Result.measurement_id == M.Measurement.id)
            .where(M.Result.quantity == quantity)
            .distinct()
        )
        return sorted(conn.execute(q).scalars())


def numeric_quantities(db: Database, family: str) -> pd.DataFrame:
    """Quantities with numeric results in a family: quantity, n (results), n_samples."""
    with db.engine.connect() as conn:
        q = (
            select(
                M.Result.quantity,
                func.count(M.Result.value),
                func.count(func.distinct(M.Measurement.sample_id)),
            )
            .join(M.Measurement, M.Result.measurement_id == M.Measurement.id)
            .join(M.Material, M.Measurement.material_id == M.Material.id)
            .join(M.Family, M.Material.family_id == M.Family.id)
            .where(M.Family.slug == family, M.Result.value.is_not(None))
            .group_by(M.Result.quantity)
        )
        rows = conn.execute(q).all()
    return (
        pd.DataFrame(rows, columns=["quantity", "n", "n_samples"])
        .sort_values("quantity")
        .reset_index(drop=True)
    )


def known_peaks(db: Database, family: str) -> pd.DataFrame:
    """Stored pXRD peak positions (xrd_peak results, 2θ in degrees) of a family."""
    r = db.results(family=family, quantity="xrd_peak")
    cols = ["value", "label", "sample_id", "source_doi", "source_locator", "provenance"]
    if r.empty:
        return pd.DataFrame(columns=cols)
    return r[cols].drop_duplicates(subset=["value", "label"]).reset_index(drop=True)


# --- composition maps -------------------------------------------------------------------------


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
    source_doi, source_locator, label, derived, approximate, plus one column per composition
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


# --- screening --------------------------------------------------------------------------------


def pareto_flags(df: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """True for rows on the Pareto front of the predicted means (all objectives maximised).

    Uses the ``pareto`` column of a ranking when present, else ``<objective>_mean`` columns.
    """
    if "pareto" in df.columns:
        return df["pareto"].fillna(False).to_numpy(dtype=bool)
    cols = [mean_column(df, o) for o in objectives]
    if len(df) == 0 or any(c is None for c in cols):
        return np.zeros(len(df), dtype=bool)
    from screening.pareto import pareto_mask

    F = df[cols].to_numpy(dtype=float)
    ok = np.isfinite(F).all(axis=1)
    out = np.zeros(len(df), dtype=bool)
    if ok.any():
        out[np.flatnonzero(ok)] = pareto_mask(F[ok])
    return out


def mean_column(df: pd.DataFrame, objective: str) -> str | None:
    for c in (f"{objective}_mean", f"mean_{objective}", objective):
        if c in df.columns:
            return c
    return None


def std_column(df: pd.DataFrame, objective: str) -> str | None:
    for c in (f"{objective}_std", f"std_{objective}", f"{objective}_sd"):
        if c in df.columns:
            return c
    return None


def _ci(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return float(v[0]), float(v[1])
    return None


def _pct(v: Any) -> str:
    return "–" if not isinstance(v, (int, float)) or not math.isfinite(v) else f"{100 * v:.0f} %"


def _num(v: Any) -> str:
    return "–" if not isinstance(v, (int, float)) or not math.isfinite(v) else f"{v:.4g}"


#: The cross-validation blocks of a model card (see screening.surrogate) and how the UI names them.
CV_BLOCKS = (("cv", "random split"), ("cv_grouped", "leave one family out"))


def metrics_frame(card: dict[str, Any]) -> pd.DataFrame:
    """Cross-validation error and interval coverage of a model card, one row per CV block.

    Reads the card's ``cv`` and ``cv_grouped`` blocks (:func:`screening.surrogate.train_surrogate`):
    ``scheme``, ``n_heldout``, ``rmse``, ``mae`` (target units) and ``coverage_68``/``coverage_95``
    (fraction of held-out points inside the central 68/95 % interval) with their 95 % Wilson
    intervals ``coverage_<level>_ci95``. Columns: validation, scheme, held out, RMSE (unit),
    MAE (unit), 68 % interval, 95 % interval (coverage as "73 % [48–89 %]"). Empty (with those
    columns) when the card has no cross-validation.
    """
    unit = (
        units.display_unit(str(card.get("unit") or ""))
        if card.get("unit") not in (None, "unknown")
        else ""
    )
    suffix = f" ({unit})" if unit else ""
    cols = [
        "validation",
        "scheme",
        "held out",
        f"RMSE{suffix}",
        f"MAE{suffix}",
        "68 % interval",
        "95 % interval",
    ]
    rows = []
    for key, name in CV_BLOCKS:
        b = card.get(key)
        if not isinstance(b, dict) or not b:
            continue
        cov = {}
        for level in (68, 95):
            frac, ci = b.get(f"coverage_{level}"), _ci(b.get(f"coverage_{level}_ci95"))
            cov[level] = _pct(frac) + (f" [{100 * ci[0]:.0f}–{100 * ci[1]:.0f} %]" if ci else "")
        rows.append(
            [
                name,
                b.get("scheme", ""),
                b.get("n_heldout"),
                _num(b.get("rmse")),
                _num(b.get("mae")),
                cov[68],
                cov[95],
            ]
        )
    return pd.DataFrame(rows, columns=cols)


def calibration_frame(card: dict[str, Any]) -> pd.DataFrame | None:
    """Nominal vs observed coverage of a model card's central intervals, with Wilson 95 % CIs.

    One row per (validation, level) from the card's ``cv`` block (the ``calibration`` block
    mirrors it: ``{"68": {"nominal", "fraction", "ci95", "n_heldout", "reliable"}, "95": ...}``)
    and ``cv_grouped`` when present. Columns: validation, nominal, observed, ci_low, ci_high
    (fractions 0..1), n_heldout, reliable. None when the card has no calibration data.
    """
    rows = []
    cal = card.get("calibration")
    if isinstance(cal, dict):
        for level, c in sorted(cal.items(), key=lambda kv: float(kv[0])):
            if not isinstance(c, dict) or c.get("fraction") is None:
                continue
            ci = _ci(c.get("ci95")) or (math.nan, math.nan)
            rows.append(
                [
                    "random split",
                    float(c.get("nominal", float(level) / 100)),
                    float(c["fraction"]),
                    ci[0],
                    ci[1],
                    c.get("n_heldout"),
                    bool(c.get("reliable", False)),
                ]
            )
    g = card.get("cv_grouped")
    if isinstance(g, dict) and g.get("n_heldout"):
        for level in (68, 95):
            if g.get(f"coverage_{level}") is None:
                continue
            ci = _ci(g.get(f"coverage_{level}_ci95")) or (math.nan, math.nan)
            rows.append(
                [
                    "leave one family out",
                    level / 100,
                    float(g[f"coverage_{level}"]),
                    ci[0],
                    ci[1],
                    g.get("n_heldout"),
                    bool(g.get("calibration_reliable", False)),
                ]
            )
    if not rows:
        return None
    return pd.DataFrame(
        rows,
        columns=["validation", "nominal", "observed", "ci_low", "ci_high", "n_heldout", "reliable"],
    )


def split_warnings(card: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A card's warnings split into (warnings a user must read, optimizer notes "fit: ...")."""
    ws = [str(w) for w in card.get("warnings") or []]
    return [w for w in ws if not w.startswith("fit: ")], [
        w.removeprefix("fit: ") for w in ws if w.startswith("fit: ")
    ]


def trained_on_simulated(card: dict[str, Any]) -> bool:
    """True when simulated rows entered the model's training data."""
    return "simulated" in (card.get("training_provenance") or [])


def card_bounds(card: dict[str, Any] | None) -> tuple[float, float] | None:
    """The physical bounds of a model's target (e.g. (0, 100) for PLQY in %), if it has any."""
    b = (card or {}).get("bounds")
    if isinstance(b, (list, tuple)) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b):
        return float(b[0]), float(b[1])
    return None


def card_facts(card: dict[str, Any]) -> pd.DataFrame:
    """Key facts of a model card as a (field, value) table for display."""
    kind = str(card.get("kind", "?"))
    if card.get("kind_requested") and card.get("kind_requested") != kind:
        kind += f" ({card['kind_requested']}: lower CV error)"
    feats = card.get("feature_names") or []
    facts = [
        ("target", f"{card.get('target_name') or card.get('target')}"),
        ("better", f"{card.get('direction', 'higher')} values"),
        ("model", kind),
        ("training points", card.get("n_train")),
        ("trained on", ", ".join(card.get("training_provenance") or []) or "?"),
        ("families", ", ".join(card.get("families") or [])),
        ("features", f"{len(feats)}: " + ", ".join(feats)),
        ("transform", str(card.get("transform"))),
        ("interval widening", _num(card.get("std_inflation"))),
        ("training data sha256", str(card.get("training_data_sha256", ""))[:16] + "…"),
        ("created (UTC)", card.get("created")),
    ]
    return pd.DataFrame({"field": [f for f, _ in facts], "value": [str(v) for _, v in facts]})


def ranking_display(df: pd.DataFrame, objectives: list[str]) -> pd.DataFrame:
    """A ranking (services.rank) for display: formula, parameters, predictions, acquisition."""
    lead = ["formula"]
    pred = [c for o in objectives for c in (f"{o}_mean", f"{o}_std", f"{o}_acq") if c in df.columns]
    tail = ["acquisition", "pareto", "params"]
    skip = {"space", "candidate_id", "family"}
    mid = [c for c in df.columns if c not in {*lead, *pred, *tail, *skip}]
    cols = [c for c in [*lead, *mid, *pred, *tail] if c in df.columns]
    out = df[cols].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def candidate_labels(df: pd.DataFrame) -> pd.Series:
    """Unique, readable labels of ranked candidates: "#1 FASnBr3 · milling_time_min=120".

    The same formula appears once per process setting, so the rank and process values are part
    of the label (a bar chart would otherwise stack candidates that share a formula).
    """
    proc = [c for c in PROCESS_PARAMS if c in df.columns]
    base = df["formula"].astype(str) if "formula" in df.columns else pd.Series("", index=df.index)
    out = []
    for i, (idx, f) in enumerate(base.items()):
        extra = [
            f"{c}={df.at[idx, c]:g}"
            for c in proc
            if isinstance(df.at[idx, c], (int, float)) and math.isfinite(df.at[idx, c])
        ]
        out.append(" · ".join([f"#{i + 1} {f}".strip(), *extra]))
    return pd.Series(out, index=df.index, name="candidate")


def result_columns(plan: pd.DataFrame) -> list[str]:
    """The empty result columns of a proposal plan (after ``acquisition``) the chemist fills in."""
    cols = list(plan.columns)
    if "acquisition" not in cols:
        return []
    return cols[cols.index("acquisition") + 1 :]


def model_grid(
    db: Database,
    family: str,
    target: str,
    axes: list[str],
    *,
    include_simulated: bool = False,
    n: int = 41,
) -> pd.DataFrame:
    """Model mean/std over a grid of ``axes`` (``services.predict_grid``), honouring
    ``include_simulated`` (passed through when the service accepts it)."""
    import inspect

    from matdb_app import services

    fn = services.predict_grid
    if "include_simulated" in inspect.signature(fn).parameters:
        return fn(db, family, target, axes, n, include_simulated=include_simulated)  # type: ignore[call-arg]
    if not include_simulated:
        return fn(db, family, target, axes, n)
    from matdb_app import screening_service

    return screening_service.predict_grid(db, family, target, axes, n, include_simulated=True)


def fixed_variables(grid: pd.DataFrame, axes: list[str]) -> dict[str, float]:
    """Variables a prediction grid holds constant (not on an axis): name -> value."""
    skip = {"family", "mean", "std", *axes}
    out = {}
    for c in grid.columns:
        if c in skip:
            continue
        v = pd.to_numeric(grid[c], errors="coerce")
        if v.notna().all() and v.nunique() == 1:
            out[c] = float(v.iloc[0])
    return out


# --- ingest -----------------------------------------------------------------------------------


@dataclass
class Staged:
    """Uploaded files written to ``folder``: the file ``names`` and a column ``mapping``."""

    folder: str
    names: list[str]
    mapping: dict[str, str] | None = None


def stage_uploads(
    files: list[tuple[str, bytes]], mapping: bytes | None = None, root: str | None = None
) -> Staged:
    """Write uploaded ``(name, content)`` pairs into a folder named by their content hash.

    The same upload always lands in the same folder (a page rerun does not copy again). Only the
    base name of each upload is used, so a name cannot point outside the folder.
    """
    import hashlib
    import tempfile
    from pathlib import Path

    from matdb_app.services import load_mapping

    h = hashlib.sha256()
    clean: list[tuple[str, bytes]] = []
    for name, content in files:
        base = Path(name.replace("\\", "/")).name
        if not base or base in (".", ".."):
            raise ValueError(f"invalid file name {name!r}")
        clean.append((base, content))
        h.update(base.encode() + b"\0" + hashlib.sha256(content).digest())
    dupes = sorted({n for n, _ in clean if sum(1 for m, _ in clean if m == n) > 1})
    if dupes:
        raise ValueError(f"two uploaded files are named {', '.join(dupes)}; rename one")
    folder = Path(root or tempfile.gettempdir()) / "matdb-uploads" / h.hexdigest()[:24]
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in clean:
        p = folder / name
        if not p.exists() or p.read_bytes() != content:
            p.write_bytes(content)
    mp = None
    if mapping is not None:
        mfile = folder.parent / f"{h.hexdigest()[:24]}.mapping.yaml"
        mfile.write_bytes(mapping)
        mp = load_mapping(mfile)
    return Staged(str(folder), [n for n, _ in clean], mp)


def _rel(path: str, folder: str) -> str:
    return path.replace(folder.rstrip("/") + "/", "")


def check_summary(report: Any, staged: Staged) -> pd.DataFrame:
    """One row per uploaded file: status (valid/rejected/added/...), reason and counts.

    Files that a record brings in (its spectra and references) are listed as "part of a record".
    """
    rows = []
    seen = set()
    for f in report.files:
        name = _rel(f.path, staged.folder)
        seen.add(name)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(f.counts.items()) if v)
        rows.append(
            {
                "file": name,
                "status": f.status,
                "reason": _rel(f.reason, staged.folder).removeprefix(f"{name}: "),
                "contents": counts,
            }
        )
    for name in staged.names:
        if name not in seen:
            rows.append(
                {
                    "file": name,
                    "status": "part of a record",
                    "reason": "read as a spectrum/reference of another uploaded file",
                    "contents": "",
                }
            )
    return pd.DataFrame(rows, columns=["file", "status", "reason", "contents"])


def check_errors(report: Any, staged: Staged) -> pd.DataFrame:
    """Every validation error of every rejected file: file, line, record, field, problem."""
    rows = []
    for f in report.files:
        if f.status != "rejected":
            continue
        for err in f.errors or [f.reason]:
            text = _rel(str(err), staged.folder)
            where, sep, msg = text.partition(": ")
            if not sep:
                where, msg = "", text
            parts = [p.strip() for p in where.split(", ")] if where else []
            row = {
                "file": _rel(f.path, staged.folder),
                "line": None,
                "record": None,
                "field": None,
                "problem": msg,
            }
            rest = []
            for p in parts[1:] if parts and parts[0] == row["file"] else parts:
                if p.startswith("line ") and p[5:].isdigit():
                    row["line"] = int(p[5:])
                elif p.startswith("field '") and p.endswith("'"):
                    row["field"] = p[7:-1]
                else:
                    rest.append(p)
            row["record"] = ", ".join(rest) or None
            rows.append(row)
    return pd.DataFrame(rows, columns=["file", "line", "record", "field", "problem"])


def unchanged_hints(summary: pd.DataFrame) -> list[str]:
    """Explanations for statuses a user may not expect."""
    out = []
    if (summary["status"] == "unchanged").any():
        out.append(
            "'unchanged': the database already holds exactly this content (loading is idempotent)."
        )
    if summary["reason"].astype(str).str.contains("--update", regex=False).any():
        out.append("A changed record is refused unless 'Update records that changed' is ticked.")
    return out
