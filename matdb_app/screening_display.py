"""What the Screening page (and the model overlay of the Maps page) shows of trained models and
rankings: cross-validation and calibration of a model card, its warnings, rankings, candidate
labels, plans. Pure functions of model cards and DataFrames.

Part of the screening use case (with :mod:`matdb_app.screening`): the tables and labels the
Screening page shows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from matdb import units
from matdb.vocabulary import PROCESS_PARAMS


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
    """A ranking (matdb_app.screening.rank) for display: formula, parameters, predictions, acquisition."""
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
    """The empty result columns of a proposal plan (after ``acquisition``) the chemist fills in
    (``outcome``, for a failed synthesis, aside)."""
    cols = list(plan.columns)
    if "acquisition" not in cols:
        return []
    return [c for c in cols[cols.index("acquisition") + 1 :] if c != "outcome"]


def download_csv(df: pd.DataFrame) -> bytes:
    """A table as CSV bytes for a download button (formula-looking text neutralised, see
    :func:`matdb.export.people_csv`)."""
    from matdb.export import people_csv

    return people_csv(df)


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
