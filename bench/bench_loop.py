"""Benchmark: closed-loop screening in the SIMULATED lab vs random search.

The hidden truth is ``screening.simulate.ground_truth`` (PLQY of FASnI(z)Br(3-z) as a function of
z, additive amount and milling time; simulated, not literature). The candidate space is a grid
(``space()``: z 0..3 step 0.1 x additive 0..150 mol % step 10 x 12 milling times = 5952
candidates). A "measurement" is the true PLQY plus Gaussian noise (``NOISE_PCT`` PLQY percentage
points), clipped to 0..100 %.

Loop per seed: ``N_START`` random experiments, then repeatedly fit a GP surrogate
(``train_surrogate(kind="gp", cv=False)``, logit PLQY) on everything measured, propose a batch of
``BATCH`` by kriging believer with expected improvement (``select_batch``; made experiments are
never re-proposed) and measure it. The count is the number of experiments made up to and
including the batch that first contains a candidate whose *true* PLQY is within ``TOLERANCE``
(2 %) of the best true PLQY over the space. Random search draws the same space without
replacement; its count is the position of the first such candidate. Both run over ``N_SEEDS``
seeds; the headline is the ratio of medians (aim: <= 1/3).

Run: ``python bench/bench_loop.py [n_seeds]`` or ``python -m bench loop``. Plot (plotly HTML):
``bench/report/loop_experiments.html``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_SEEDS = 20
N_START = 5
BATCH = 4
MAX_EXPERIMENTS = 300
TOLERANCE = 0.02
NOISE_PCT = 0.1  # measurement noise, PLQY percentage points (about 1 % of the optimum)
FAMILY = "FASnIBr"


def space() -> Any:
    """The candidate space of the simulated campaign."""
    from screening.candidates import space_from_dict

    (sp,) = space_from_dict({
        "family": FAMILY,
        "parameters": {"z": {"min": 0, "max": 3, "step": 0.1}},
        "process": {
            "additive_mol_pct": {"min": 0, "max": 150, "step": 10},
            "milling_time_min": {"values": [2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120]},
        },
    })
    return sp


def featurize(df: pd.DataFrame) -> np.ndarray:
    """z, additive (mol %) and log10 milling time (min): shape (n, 3)."""
    return np.column_stack([df["z"].to_numpy(float), df["additive_mol_pct"].to_numpy(float),
                            np.log10(df["milling_time_min"].to_numpy(float))])


FEATURES = ["z", "additive_mol_pct", "log10_milling_time_min"]


def simulated_truth(df: pd.DataFrame) -> np.ndarray:
    """True PLQY (%) of candidates from the simulated lab's hidden function."""
    from screening.simulate import ground_truth

    out = ground_truth(FAMILY, {"z": df["z"].to_numpy(float)},
                       {"additive_mol_pct": df["additive_mol_pct"].to_numpy(float),
                        "milling_time_min": df["milling_time_min"].to_numpy(float)})
    return np.asarray(out["plqy"], dtype=float)


def closed_loop(X: np.ndarray, truth: np.ndarray, seed: int, *, batch: int = BATCH,
                n_start: int = N_START, max_experiments: int = MAX_EXPERIMENTS,
                noise: float = NOISE_PCT, tolerance: float = TOLERANCE
                ) -> tuple[int, list[float]]:
    """Experiments until a candidate within ``tolerance`` of the optimum is made.

    Args:
        X: candidate features (m, d); truth: true objective of each candidate (m,).

    Returns:
        (count, best true value after each experiment); count = max_experiments + 1 if the
        budget ran out.
    """
    from screening.acquisition import select_batch
    from screening.surrogate import train_surrogate

    rng = np.random.default_rng(seed)
    target = (1 - tolerance) * truth.max()
    made = list(rng.choice(len(X), n_start, replace=False))
    y = list(np.clip(truth[made] + rng.normal(0, noise, len(made)), 0, 100))
    best_true = list(np.maximum.accumulate(truth[made]))
    if np.any(truth[made] >= target):
        return len(made), best_true
    while len(made) < max_experiments:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = train_surrogate(X[made], np.asarray(y), feature_names=FEATURES, target="plqy",
                                kind="gp", cv=False, n_restarts=0, random_state=seed)
            mask = np.zeros(len(X), bool)
            mask[made] = True
            picks = select_batch(s, X, batch, method="believer", acquisition="ei",
                                 best_so_far=float(np.max(y)), exclude_mask=mask, xi=0.0)
        if len(picks) == 0:
            break
        made += [int(i) for i in picks]
        y += list(np.clip(truth[picks] + rng.normal(0, noise, len(picks)), 0, 100))
        for i in picks:
            best_true.append(max(best_true[-1], float(truth[i])))
        if np.any(truth[picks] >= target):
            return len(made), best_true
    return max_experiments + 1, best_true


def random_search(truth: np.ndarray, seed: int, tolerance: float = TOLERANCE) -> int:
    """Position (1-based) of the first candidate within tolerance in a random order."""
    order = np.random.default_rng(10_000 + seed).permutation(len(truth))
    hits = np.flatnonzero(truth[order] >= (1 - tolerance) * truth.max())
    return int(hits[0]) + 1


def run(report: dict, truth_fn: Callable[[pd.DataFrame], np.ndarray] | None = None) -> dict:
    """Run the campaign for ``report.get("n_seeds", N_SEEDS)`` seeds; fill and return report."""
    n_seeds = int(report.get("n_seeds", N_SEEDS))
    sp = space()
    cand = sp.chunk(0, sp.size)
    X = featurize(cand)
    truth = (truth_fn or simulated_truth)(cand)
    n_good = int(np.sum(truth >= (1 - TOLERANCE) * truth.max()))
    t0 = time.perf_counter()
    bo, rs, curves = [], [], []
    for seed in range(n_seeds):
        count, curve = closed_loop(X, truth, seed)
        bo.append(count)
        curves.append(curve)
        rs.append(random_search(truth, seed))
    elapsed = time.perf_counter() - t0
    med_bo, med_rs = float(np.median(bo)), float(np.median(rs))
    expected_rs = (len(X) + 1) / (n_good + 1)  # mean first-hit position without replacement
    report.update({
        "family": FAMILY,
        "n_candidates": len(X),
        "n_within_tolerance": n_good,
        "true_optimum_plqy_pct": float(truth.max()),
        "n_seeds": n_seeds,
        "batch": BATCH,
        "n_start": N_START,
        "noise_pct": NOISE_PCT,
        "bo_experiments": bo,
        "random_experiments": rs,
        "bo_median": med_bo,
        "random_median": med_rs,
        "random_expected_mean": expected_rs,
        "ratio_median_bo_to_random": med_bo / med_rs,
        "bo_failures": int(sum(c > MAX_EXPERIMENTS for c in bo)),
        "loop_s": elapsed,
        "summary": (
            f"SIMULATED lab ({FAMILY}, {len(X)} candidates, {n_good} within "
            f"{TOLERANCE:.0%} of the true optimum {truth.max():.2f} % PLQY): GP + kriging-believer "
            f"EI batches of {BATCH} need a median of {med_bo:.0f} experiments vs {med_rs:.0f} for "
            f"random search (ratio {med_bo / med_rs:.3f}) over {n_seeds} seeds."
        ),
    })
    _plot(report, curves, truth.max())
    return report


def _plot(report: dict, curves: list[list[float]], optimum: float) -> None:
    try:
        from plotly.subplots import make_subplots
    except ImportError:  # pragma: no cover - plotly is a dependency
        return
    out = Path(report.get("plots_dir", Path(__file__).resolve().parent / "report"))
    out.mkdir(parents=True, exist_ok=True)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "experiments to reach 98 % of the optimum", "best true PLQY made (median over seeds)"))
    fig.add_box(y=report["bo_experiments"], name="GP + believer EI", row=1, col=1)
    fig.add_box(y=report["random_experiments"], name="random search", row=1, col=1)
    n = max(len(c) for c in curves)
    padded = np.array([c + [c[-1]] * (n - len(c)) for c in curves])
    fig.add_scatter(x=np.arange(1, n + 1), y=np.median(padded, axis=0), mode="lines",
                    name="GP + believer EI (median)", row=1, col=2)
    fig.add_hline(y=(1 - TOLERANCE) * optimum, line_dash="dash", row=1, col=2)
    fig.update_yaxes(type="log", title_text="experiments", row=1, col=1)
    fig.update_yaxes(title_text="PLQY (%)", row=1, col=2)
    fig.update_xaxes(title_text="experiments", row=1, col=2)
    fig.update_layout(title=f"Simulated closed loop ({report['family']}, SIMULATED data)")
    fig.write_html(out / "loop_experiments.html", include_plotlyjs="cdn")


if __name__ == "__main__":
    res = run({"n_seeds": int(sys.argv[1])} if len(sys.argv) > 1 else {})
    print(res.pop("summary"))
    print(json.dumps(res, indent=2, default=str))
