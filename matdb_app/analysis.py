"""`matdb analyze`: spectral/kinetic features of stored TLIS runs, stored back as derived results.

Features are computed by :mod:`screening.spectra` (pure numpy) and stored on the run's measurement
as derived ``Result`` rows (``derived=True`` with ``method`` and ``method_version``), plus one
``feature_series`` array per run holding the per-time-point series. A run is analysed again only
when the analysis method versions change (or with ``force``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matdb import store, units, vocabulary
from matdb.arrays import ArrayData
from matdb.db import Database
from matdb.vocabulary import FEATURE_SERIES_KIND, TLIS_MODES

RUN_KINDS = tuple(TLIS_MODES.values())
SERIES_KIND = FEATURE_SERIES_KIND


def method_stamp() -> str:
    """A short hash of every analysis method name and version."""
    from screening.spectra import METHOD_VERSIONS

    return hashlib.sha256(json.dumps(METHOD_VERSIONS, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class AnalysisReport:
    analysed: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    results_stored: int = 0


def _condition(conditions: Mapping[str, Any], name: str) -> float | None:
    v = conditions.get(name)
    if isinstance(v, Mapping) and "value" in v:
        return float(v["value"])
    if isinstance(v, (int, float)):
        return float(v)
    return None


def analyze(
    db: Database, *, force: bool = False, progress: bool = True, measurement: str | None = None,
    source: str | None = None,
) -> AnalysisReport:
    """Compute missing (or outdated) features for every stored TLIS run (or those of one
    measurement, or of one source's measurements)."""
    from screening.spectra import SpectrumError, extract_features

    stamp = method_stamp()
    runs = store.stored_runs(db, RUN_KINDS, measurement=measurement, source=source)
    done = {m.get("source_array_id"): m.get("stamp") for m in store.array_metas(db, SERIES_KIND)}
    report = AnalysisReport()
    todo = [r for r in runs if force or done.get(r.array_id) != stamp]
    report.skipped = len(runs) - len(todo)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="analyze", unit="run", leave=False)
    for run in todo:
        data = store.read_array(db, run.array_id)
        coords = {n: c for n, (c, _u) in data.axes.items()}
        opts: dict[str, Any] = {}
        exc_nm = _condition(run.conditions, "excitation_wavelength") or run.meta.get("excitation_wavelength_nm")
        if run.kind == "tlis_pl" and exc_nm:
            opts["excitation_wavelength_nm"] = float(exc_nm)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fs = extract_features(run.kind, data.values, coords.get("wavelength"), coords.get("time"),  # type: ignore[arg-type]  # a missing axis raises SpectrumError
                                      reference=data.reference, **opts)
            error = None
        except SpectrumError as exc:
            fs, error = None, str(exc)
        results, series = _derived(run.array_id, fs, error, stamp)
        report.results_stored += store.replace_derived(db, run.measurement_id, run.array_id, results, series, 1000)
        if error:
            report.failed.append((run.measurement_key, error))
        else:
            report.analysed += 1
            report.warnings += [(run.measurement_key, w) for w in fs.warnings]  # type: ignore[union-attr]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return report


def _derived(array_id: int, fs: Any, error: str | None, stamp: str) -> tuple[list[dict[str, Any]], ArrayData]:
    """The derived results (Result columns, canonical units) and the feature-series array of a run."""
    results: list[dict[str, Any]] = []
    series_names: list[str] = []
    units_: list[str] = []
    mat = np.zeros((0, 0))
    times = np.zeros(0)
    if fs is not None:
        for i, f in enumerate(fs.features.values()):
            known = f.quantity is not None and f.quantity in vocabulary.QUANTITIES
            if not known or f.value is None or not np.isfinite(f.value):
                continue
            try:
                value, unit = vocabulary.to_canonical(f.quantity, f.value, f.unit)
                unc = (
                    None
                    if f.uncertainty is None or not np.isfinite(f.uncertainty)
                    else abs(units.convert(f.uncertainty, f.unit, unit) - units.convert(0.0, f.unit, unit))
                )
            except units.UnitError:
                continue
            results.append({
                "position": 1000 + i, "quantity": f.quantity, "value": value, "unit": unit, "uncertainty": unc,
                "label": f.name if f.name != f.quantity else None, "method": f.method,
                "method_version": f.version, "note": f.note or None,
            })
        series_names = list(fs.series)
        units_ = [fs.series[k].unit for k in series_names]
        times = np.asarray(fs.times_min, dtype=float)
        mat = np.vstack([fs.series[k].values for k in series_names]) if series_names else np.zeros((0, times.size))
    meta = {
        "source_array_id": array_id,
        "stamp": stamp,
        "names": series_names,
        "units": units_,
        "error": error,
        "warnings": list(fs.warnings) if fs is not None else [],
    }
    data = ArrayData(
        SERIES_KIND,
        mat,
        {"series": (np.arange(len(series_names), dtype=float), ""), "time": (times, "min")},
        "",
        None,
        meta,
    )
    return results, data


def feature_series(db: Database, measurement_key: str) -> dict[str, Any] | None:
    """The stored per-time-point feature series of a run: {name: (t, values, unit)}, or None."""
    from matdb.query import QueryError, load_array

    try:
        a = load_array(db, measurement_key, SERIES_KIND)
    except QueryError:
        return None
    t = a["axes"]["time"][0]
    meta = a["meta"]
    return {
        "series": {
            n: (t, a["values"][i], u) for i, (n, u) in enumerate(zip(meta["names"], meta["units"], strict=True))
        },
        "error": meta.get("error"),
        "warnings": meta.get("warnings", []),
    }
