"""Benchmark: feature extraction of one simulated 661 x 1000 TLIS run.

Times :func:`screening.spectra.extract_features` on a reflectance run and a PL run (best of
``repeats``) and reports each as a ratio to numpy's own throughput on the same array, measured in
the same process: one ``np.gradient`` along the wavelength axis plus one ``sum`` pass. The ratio
is machine-independent enough to track regressions; absolute seconds are reported for context.

Usage: ``python bench/bench_features.py`` (prints JSON) or ``run(report)`` from a bench runner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from screening.simulate import simulate_run
from screening.spectra import extract_features

N_TIMES = 1000


def _best(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(report: dict[str, Any] | None = None, repeats: int = 3) -> dict[str, Any]:
    """Add a "features" entry to ``report`` and return it."""
    report = {} if report is None else report
    refl = simulate_run("FAMAPbI3", {"x": 1.0}, "reflectance", n_times=N_TIMES, seed=0)
    pl = simulate_run("FASnIBr", {"z": 2.5}, "pl", n_times=N_TIMES, seed=0)
    values = refl.values

    def baseline() -> None:
        np.gradient(values, axis=1).sum(axis=1)

    base = _best(baseline, max(5, 3 * repeats))
    t_refl = _best(
        lambda: extract_features(
            "reflectance", refl.values, refl.wavelengths_nm, refl.times_min, refl.reference
        ),
        repeats,
    )
    t_pl = _best(
        lambda: extract_features(
            "pl", pl.values, pl.wavelengths_nm, pl.times_min, excitation_wavelength_nm=370.0
        ),
        repeats,
    )
    report["features"] = {
        "shape": [N_TIMES, int(values.shape[1])],
        "numpy_baseline_s": base,
        "reflectance_s": t_refl,
        "pl_s": t_pl,
        "reflectance_ratio_to_numpy": t_refl / base,
        "pl_ratio_to_numpy": t_pl / base,
        "baseline": "one np.gradient(axis=1) + sum pass over the same (1000, 661) array",
    }
    return report


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
