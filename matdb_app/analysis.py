"""`matdb analyze` and `matdb simulate`: spectral/kinetic features stored back as derived results.

Features are computed by :mod:`screening.spectra` (pure numpy) and stored on the run's measurement
as derived ``Result`` rows (``derived=True`` with ``method`` and ``method_version``), plus one
``feature_series`` array per run holding the per-time-point series. A run is analysed again only
when the analysis method versions change (or with ``force``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from matdb import models as M
from matdb import units, vocabulary
from matdb.arrays import decode
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
    db: Database, *, force: bool = False, progress: bool = True, measurement: str | None = None
) -> AnalysisReport:
    """Compute missing (or outdated) features for every stored TLIS run."""
    from screening.spectra import SpectrumError, extract_features

    stamp = method_stamp()
    with db.session() as s:
        q = (
            select(
                M.ArrayResult.id,
                M.ArrayResult.kind,
                M.ArrayResult.meta,
                M.Measurement.id,
                M.Measurement.key,
                M.Measurement.conditions,
            )
            .join(M.Measurement, M.ArrayResult.measurement_id == M.Measurement.id)
            .where(M.ArrayResult.kind.in_(RUN_KINDS))
            .order_by(M.ArrayResult.id)
        )
        if measurement:
            q = q.where(M.Measurement.key == measurement)
        runs = s.execute(q).all()
        done = {
            (meta or {}).get("source_array_id"): (meta or {}).get("stamp")
            for (meta,) in s.execute(select(M.ArrayResult.meta).where(M.ArrayResult.kind == SERIES_KIND))
        }
    report = AnalysisReport()
    todo = [r for r in runs if force or done.get(r[0]) != stamp]
    report.skipped = len(runs) - len(todo)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="analyze", unit="run", leave=False)
    for array_id, kind, meta, mid, mkey, conditions in todo:
        with db.session() as s:
            row = s.get(M.ArrayResult, array_id)
            data = decode(row.blob, row.kind, row.axes, row.value_unit, row.meta)  # type: ignore[union-attr]
        coords = {n: c for n, (c, _u) in data.axes.items()}
        opts: dict[str, Any] = {}
        exc_nm = _condition(conditions or {}, "excitation_wavelength") or (meta or {}).get("excitation_wavelength_nm")
        if kind == "tlis_pl" and exc_nm:
            opts["excitation_wavelength_nm"] = float(exc_nm)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fs = extract_features(
                    kind,
                    data.values,
                    coords.get("wavelength"),
                    coords.get("time"),
                    reference=data.reference,
                    **opts,
                )
            error = None
        except SpectrumError as exc:
            fs, error = None, str(exc)
        with db.transaction() as s:
            s.execute(delete(M.Result).where(M.Result.measurement_id == mid, M.Result.derived.is_(True)))
            old = s.scalars(
                select(M.ArrayResult).where(M.ArrayResult.measurement_id == mid, M.ArrayResult.kind == SERIES_KIND)
            ).all()
            for o in old:
                if (o.meta or {}).get("source_array_id") == array_id:
                    s.delete(o)
            stored = _store(s, mid, array_id, fs, error, stamp)
        report.results_stored += stored
        if error:
            report.failed.append((mkey, error))
        else:
            report.analysed += 1
            report.warnings += [(mkey, w) for w in fs.warnings]  # type: ignore[union-attr]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return report


def _store(s: Any, mid: int, array_id: int, fs: Any, error: str | None, stamp: str) -> int:
    from ingest.load import array_row
    from matdb.arrays import ArrayData

    n = 0
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
            s.add(
                M.Result(
                    measurement_id=mid,
                    position=1000 + i,
                    quantity=f.quantity,
                    value=value,
                    unit=unit,
                    uncertainty=unc,
                    label=f.name if f.name != f.quantity else None,
                    derived=True,
                    method=f.method,
                    method_version=f.version,
                    note=f.note or None,
                )
            )
            n += 1
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
    s.add(array_row(mid, 1000, data))
    return n


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


# --- simulate -------------------------------------------------------------------------------------


def parse_param_values(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["x=0,0.2,0.4", "z=2.5"]`` or ``["x=0:1:0.2"]`` -> {"x": [...], "z": [2.5]}."""
    out: dict[str, list[float]] = {}
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"write parameters as name=value, got '{spec}'")
        name, raw = (p.strip() for p in spec.split("=", 1))
        try:
            if ":" in raw:
                lo, hi, step = (float(v) for v in raw.split(":"))
                if step <= 0:
                    raise ValueError
                vals = list(np.round(np.arange(lo, hi + step / 2, step), 10))
            else:
                vals = [float(v) for v in raw.split(",")]
        except ValueError:
            raise ValueError(f"cannot read values of '{name}' from '{raw}' (use 0.2,0.4 or 0:1:0.2)") from None
        out[name] = [float(v) for v in vals]
    return out


def simulate(
    family: str,
    params: Mapping[str, Sequence[float]],
    *,
    mode: str = "reflectance",
    n_times: int = 180,
    duration_min: float = 90.0,
    seed: int | None = 0,
    out_dir: str | Path = "simulated",
    process: Mapping[str, float] | None = None,
) -> list[Path]:
    """Write simulated TLIS runs (provenance "simulated") for every combination of ``params``."""
    from screening.simulate import simulate_run, write_tlis_csv

    names = list(params)
    paths: list[Path] = []
    out = Path(out_dir)
    for i, combo in enumerate(itertools.product(*(params[n] for n in names))):
        p = dict(zip(names, combo, strict=True))
        run = simulate_run(
            family,
            p,
            mode=mode,
            n_times=n_times,
            duration_min=duration_min,
            seed=None if seed is None else seed + i,
            process=process,
        )
        stem = f"sim-{family}-" + "-".join(f"{k}{v:g}" for k, v in p.items()) + f"-{mode}"
        paths += write_tlis_csv(run, out / f"{stem}.csv")
    return paths
