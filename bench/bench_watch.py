"""Benchmark: `matdb watch` — from a spectrum's arrival to its features and the detection result, and the
Live page's refresh with 1,000 spectra.

A SIMULATED 661-wavelength reflectance run of 1,000 time points is written one OceanView file at a time
into a temporary folder; each :meth:`matdb_app.watch.LiveRun.poll` after a write is timed (read the file,
features by ``screening.spectra.point_series``, ``OnlineKinetics``). The page refresh is one poll with
nothing new plus the state and the plotly figures of all 1,000 spectra. Both are reported against numpy's
own pass over the same (1000, 661) array in the same run (one ``np.gradient(axis=1)`` + ``sum``), as in
bench_features. Aim: under 20 ms per spectrum.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

N_TIMES = 1000


def run(report: dict[str, Any] | None = None) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from watch_spectrometer import Spectrometer, reference_file

    from matdb_app import watch
    from screening.simulate import simulate_run

    report = {} if report is None else report
    r = simulate_run("FAMAPbI3", {"x": 1.0}, "reflectance", n_times=N_TIMES, duration_min=90.0, seed=0)
    values = r.values

    def baseline() -> None:
        np.gradient(values, axis=1).sum(axis=1)

    base = min(_time(baseline) for _ in range(9))
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        ref = reference_file(r, Path(tmp) / "ptfe.csv")
        m = watch.start(
            Path(tmp) / "run",
            mode="reflectance",
            family="FAMAPbI3",
            params={"x": 1.0},
            reference=ref,
            provenance="simulated",
        )
        spec = Spectrometer(r, m.folder, fmt="oceanview", every=0)
        live = watch.LiveRun(m, settle_s=0.0)
        per = np.empty(N_TIMES)
        for i in range(N_TIMES):
            spec.write(i)
            t0 = time.perf_counter()
            live.poll()
            per[i] = time.perf_counter() - t0

        def refresh() -> None:
            live.poll()
            watch.figures(live.state())

        t_refresh = min(_time(refresh) for _ in range(3))
        state = live.state()
    report["watch"] = {
        "shape": [N_TIMES, int(values.shape[1])],
        "numpy_baseline_s": base,
        "arrival_to_detection_median_ms": float(np.median(per) * 1e3),
        "arrival_to_detection_p95_ms": float(np.percentile(per, 95) * 1e3),
        "arrival_to_detection_last100_median_ms": float(np.median(per[-100:]) * 1e3),
        "arrival_ratio_to_numpy": float(np.median(per) / base),
        "page_refresh_1000_s": t_refresh,
        "page_refresh_ratio_to_numpy": t_refresh / base,
        "detection": state.banner[1] if state.banner else "none",
        "baseline": "one np.gradient(axis=1) + sum pass over the same (1000, 661) array",
    }
    return report


def _time(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
