"""Spectra: stored TLIS runs (heatmap, spectra over time, features against time) and pXRD
patterns with the known peak positions of a family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from matdb import store, units
from matdb.db import Database
from matdb.vocabulary import TLIS_MODES
from matdb_app.display import badge

#: Stored array kinds of time-lapsed in situ runs.
TLIS_KINDS = tuple(TLIS_MODES.values())
#: Feature series plotted against time, per run kind.
MAIN_SERIES = {
    "tlis_reflectance": ["absorption_edge", "bandgap"],
    "tlis_pl": ["pl_peak", "pl_integrated_intensity"],
}
#: Scalar features of a run marked on its time series: (marker label, feature name, run kinds).
TIME_MARKERS = (
    ("steady state", "steady_state_time", TLIS_KINDS),
    ("decay onset", "decay_onset_time", TLIS_KINDS),
    ("maximum", "time_to_max", ("tlis_pl",)),
)


class RunShapeError(ValueError):
    """A stored array that is not a time x wavelength run (shown as a message, the data are the user's)."""


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
        f"{s or m} · {k} ({badge(p)})"
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
        raise RunShapeError(
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
            raise RunShapeError(
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
    return store.families_with(db, quantity)


def known_peaks(db: Database, family: str) -> pd.DataFrame:
    """Stored pXRD peak positions (xrd_peak results, 2θ in degrees) of a family."""
    r = db.results(family=family, quantity="xrd_peak")
    cols = ["value", "label", "sample_id", "source_doi", "source_locator", "provenance"]
    if r.empty:
        return pd.DataFrame(columns=cols)
    return r[cols].drop_duplicates(subset=["value", "label"]).reset_index(drop=True)


def demo_note(runs: pd.DataFrame) -> str | None:
    """A caption naming the demonstration set when its runs are listed (None otherwise)."""
    from matdb_app.simulate import DEMO_SOURCE

    n = int((runs.get("source_key", pd.Series(dtype=object)) == DEMO_SOURCE).sum()) if len(runs) else 0
    if not n:
        return None
    return (f"{n} ◇ SIMULATED run(s) of source `{DEMO_SOURCE}` are matdb's demonstration set (from the simulator, "
            "not measured; never used for training unless asked for). `matdb demo remove` deletes them.")


def time_markers(feats: RunFeatures, kind: str) -> dict[str, float]:
    """Times marked on a run's feature series (steady state, decay onset, PL maximum)."""
    table = feats.features.set_index("name") if not feats.features.empty else pd.DataFrame()
    out = {}
    for label, name, kinds in TIME_MARKERS:
        if kind in kinds and name in table.index:
            out[label] = float(table.loc[name, "value"])
    return out


def spectrum_indices(n_times: int, n: int = 8) -> list[int]:
    """Up to ``n`` evenly spread time indices of a run (the spectra drawn over each other)."""
    return sorted(set(np.linspace(0, n_times - 1, min(n, n_times)).round().astype(int).tolist()))
