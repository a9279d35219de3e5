"""Benchmark: Gaussian-process surrogate fit scaling and chunked prediction throughput.

Measured in one run, against baselines measured alongside:

* GP fit time vs n (250, 500, 1000, 2000; d = 4) with the kernel of
  ``screening.surrogate`` and a fixed optimizer budget (``FIT_ITERATIONS`` L-BFGS-B iterations,
  so every n does comparable work); the scaling exponent is the log-log slope of the time per
  log-marginal-likelihood evaluation (theory: 3 for the Cholesky factorisation).
* Prediction (mean and std) of ``N_PREDICT`` = 10^6 candidates in chunks of ``CHUNK`` rows by
  ``Surrogate.predict`` (n_train = ``N_TRAIN_PREDICT``), reported
  - as a fraction of this machine's numpy matrix-multiply throughput (FLOP-equivalent: the GP
    prediction costs ``2 n^2 + (3 d + 14) n`` flops per point: the variance product with the
    inverse Cholesky factor, kernel evaluation and mean), and
  - as a ratio against plain unchunked ``GaussianProcessRegressor.predict(return_std=True)``
    (measured on ``N_SKLEARN`` points, which fit in memory, and extrapolated per point).
* Peak memory of the chunked prediction (tracemalloc over a few chunks; numpy reports its
  buffers to tracemalloc) and the process's max RSS.

Run: ``python bench/bench_surrogate.py`` or ``python -m bench surrogate``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import tracemalloc
import warnings
from typing import Any

import numpy as np

FIT_SIZES = (250, 500, 1000, 2000)
FIT_ITERATIONS = 8
D = 4
N_TRAIN_PREDICT = 500
N_PREDICT = 1_000_000
CHUNK = 100_000
N_SKLEARN = 50_000


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, D))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2] * X[:, 3] + rng.normal(0, 0.05, n)
    return X, y


def matmul_gflops(size: int = 2000, repeats: int = 3) -> float:
    """This machine's numpy float64 matrix-multiply throughput (GFLOP/s, best of repeats)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size))
    b = rng.standard_normal((size, size))
    a @ b  # warm-up
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def fit_scaling(sizes: tuple[int, ...] = FIT_SIZES) -> dict[str, Any]:
    """GP fit time vs n with a fixed optimizer budget; log-log slopes."""
    from scipy.optimize import minimize
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.preprocessing import StandardScaler

    from screening.surrogate import NOISE_FLOOR, _make_gp

    calls = {"n": 0}

    def optimizer(obj_func: Any, initial_theta: np.ndarray, bounds: np.ndarray) -> Any:
        def counted(theta: np.ndarray) -> Any:
            calls["n"] += 1
            return obj_func(theta)

        res = minimize(counted, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds,
                       options={"maxiter": FIT_ITERATIONS})
        return res.x, res.fun

    rows = []
    for n in sizes:
        X, y = _data(n)
        Xs = StandardScaler().fit_transform(X)
        template = _make_gp(D, NOISE_FLOOR, 0, 0)
        gp = GaussianProcessRegressor(kernel=template.kernel, normalize_y=True,
                                      optimizer=optimizer, n_restarts_optimizer=0)
        calls["n"] = 0
        with warnings.catch_warnings():  # a capped optimizer may stop near a bound
            warnings.simplefilter("ignore", ConvergenceWarning)
            t = time.perf_counter()
            gp.fit(Xs, y)
            dt = time.perf_counter() - t
        rows.append({"n": n, "fit_s": dt, "lml_evaluations": calls["n"],
                     "s_per_evaluation": dt / max(calls["n"], 1)})
    logn = np.log([r["n"] for r in rows])
    slope_eval = float(np.polyfit(logn, np.log([r["s_per_evaluation"] for r in rows]), 1)[0])
    slope_fit = float(np.polyfit(logn, np.log([r["fit_s"] for r in rows]), 1)[0])
    return {"rows": rows, "exponent_per_evaluation": slope_eval, "exponent_fit": slope_fit}


def predict_throughput(n_predict: int = N_PREDICT, chunk: int = CHUNK,
                       n_sklearn: int = N_SKLEARN) -> dict[str, Any]:
    """Chunked Surrogate.predict vs the machine's matmul rate and vs plain sklearn."""
    from screening.surrogate import train_surrogate

    X, y = _data(N_TRAIN_PREDICT)
    s = train_surrogate(X, y, feature_names=[f"f{i}" for i in range(D)], target="y",
                        kind="gp", bounded=None, cv=False, n_restarts=0)
    rng = np.random.default_rng(1)
    s.predict(rng.uniform(0, 1, (1000, D)))  # warm-up (builds the inverse Cholesky factor)

    t = time.perf_counter()
    checksum = 0.0
    for start in range(0, n_predict, chunk):
        Xc = rng.uniform(0, 1, (min(chunk, n_predict - start), D))
        mean, std = s.predict(Xc, return_std=True)
        checksum += float(mean.sum() + std.sum())
    ours = time.perf_counter() - t
    n = N_TRAIN_PREDICT
    flops = n_predict * (2.0 * n * n + (3 * D + 14) * n)
    gflops = flops / ours / 1e9

    gp = s.latent_.model  # the fitted scikit-learn GaussianProcessRegressor, on the scaled inputs
    Xb = (rng.uniform(0, 1, (n_sklearn, D)) - s.lo_) / s.span_
    t = time.perf_counter()
    gp.predict(Xb, return_std=True)
    sk = time.perf_counter() - t
    sk_per_point = sk / n_sklearn

    tracemalloc.start()
    for _ in range(3):
        s.predict(rng.uniform(0, 1, (chunk, D)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n_train": n,
        "n_predict": n_predict,
        "chunk": chunk,
        "predict_s": ours,
        "points_per_s": n_predict / ours,
        "gflops": gflops,
        "checksum_finite": bool(np.isfinite(checksum)),
        "sklearn_unchunked_points": n_sklearn,
        "sklearn_s_per_point": sk_per_point,
        "sklearn_extrapolated_s": sk_per_point * n_predict,
        "speedup_vs_sklearn": sk_per_point * n_predict / ours,
        "peak_traced_mb_per_chunk": peak / 2**20,
    }


def run(report: dict) -> dict:
    """Run all parts; add ``surrogate``-prefixed entries to ``report`` and return it."""
    mm = matmul_gflops()
    fit = fit_scaling(tuple(report.get("fit_sizes", FIT_SIZES)))
    pred = predict_throughput(int(report.get("n_predict", N_PREDICT)))
    pred["fraction_of_matmul"] = pred["gflops"] / mm
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    report.update({
        "matmul_gflops": mm,
        "fit": fit,
        "predict": pred,
        "max_rss_mb": rss_mb,
        "summary": (
            "GP fit: time per likelihood evaluation grows as "
            f"n^{fit['exponent_per_evaluation']:.2f}"
            f" (whole fit n^{fit['exponent_fit']:.2f}, {FIT_ITERATIONS} optimizer iterations); "
            f"prediction of {pred['n_predict']:,} candidates (mean+std, n_train={pred['n_train']})"
            f" in chunks of {pred['chunk']:,}: {pred['predict_s']:.1f} s, "
            f"{pred['fraction_of_matmul']:.2f} of numpy matmul throughput, "
            f"{pred['speedup_vs_sklearn']:.2f}x plain unchunked sklearn predict(return_std=True); "
            f"peak {pred['peak_traced_mb_per_chunk']:.0f} MB traced per chunk, "
            f"max RSS {rss_mb:.0f} MB."
        ),
    })
    _plot(report)
    return report


def _plot(report: dict) -> None:
    from pathlib import Path

    try:
        import plotly.graph_objects as go
    except ImportError:  # pragma: no cover - plotly is a dependency
        return
    out = Path(report.get("plots_dir", Path(__file__).resolve().parent / "report"))
    out.mkdir(parents=True, exist_ok=True)
    rows = report["fit"]["rows"]
    fig = go.Figure()
    fig.add_scatter(x=[r["n"] for r in rows], y=[r["s_per_evaluation"] for r in rows],
                    mode="lines+markers", name="s per likelihood evaluation")
    fig.add_scatter(x=[r["n"] for r in rows], y=[r["fit_s"] for r in rows],
                    mode="lines+markers", name="whole fit (s)")
    fig.update_layout(title="GP fit time vs n (log-log)", xaxis_type="log", yaxis_type="log",
                      xaxis_title="n_train", yaxis_title="time (s)")
    fig.write_html(out / "surrogate_fit_scaling.html", include_plotlyjs="cdn")


if __name__ == "__main__":
    res = run({"n_predict": int(sys.argv[1])} if len(sys.argv) > 1 else {})
    print(res.pop("summary"))
    print(json.dumps(res, indent=2, default=str))
