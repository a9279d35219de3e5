"""Benchmark: matdb's proposer against Ax, BayBE, scikit-optimize and random search on SIMULATED labs.

Problems: ``bench/problems.py`` (simulated, hard on purpose). Protocol per (problem, seed), the same
for every optimiser: ``n_start`` (4) random starting experiments drawn from the seed, then batches
of 4 until the budget (60 experiments). The harness rounds every proposal to the lab's resolution,
pulls it inside known linear constraints and (slots problems) makes it in runs sharing the milling
time; changes beyond rounding are counted as ``repairs``. Measurements carry the problem's noise;
a failed synthesis returns no value.

Metric: experiments made (whole batches counted) until a made candidate's TRUE value reaches 90 %
of the true optimum; campaigns that never get there are failures (inf in the median). Also the
best fraction reached and the wall time per proposal. Random search is also given as the median of
its geometric law from the hit area of the domain (what it needs without a budget).

Each campaign is cached as JSON under ``bench/report/decisions/`` so reruns resume.

Run: ``python -m bench.bench_decisions --problems composite2d --seeds 20`` or ``python -m bench decisions``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.optimizers import ADAPTERS, available, make
from bench.problems import HIT_FRACTION, PROBLEMS, Problem

HERE = Path(__file__).resolve().parent
CACHE = HERE / "report" / "decisions"
BUDGET = 60
N_SEEDS = 20
ORDER = ["matdb", "random", "skopt_gp_ei", "baybe", "ax_default", "ax_botorch"]


def campaign(problem: Problem, opt_name: str, seed: int, budget: int = BUDGET) -> dict[str, Any]:
    """One campaign; a dict of what was made, the true values and the timings."""
    rng = np.random.default_rng([seed, 3])
    X0 = problem.start(seed)
    y0, ok0 = problem.measure(X0, rng)
    res: dict[str, Any] = {
        "problem": problem.name,
        "optimizer": opt_name,
        "seed": seed,
        "budget": budget,
        "error": None,
        "repairs": 0,
        "ask_s": [],
    }
    made = [X0]
    try:
        opt = make(opt_name, problem, seed)
        opt.tell(X0, y0, ok0)
        n = len(X0)
        while n < budget:
            k = min(problem.batch, budget - n)
            t0 = time.perf_counter()
            P = np.asarray(opt.ask(k), float).reshape(-1, problem.dim)
            res["ask_s"].append(time.perf_counter() - t0)
            if not len(P):
                res["error"] = f"asked for {k}, proposed nothing after {n} experiments"
                break
            Xb, repaired = problem.repair(P)
            res["repairs"] += repaired
            yb, okb = problem.measure(Xb, rng)
            opt.tell(Xb, yb, okb)
            made.append(Xb)
            n += len(Xb)
    except Exception as e:  # recorded in the report: an optimiser that raises is a finding
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc(limit=4)
    X = np.vstack(made)
    v = problem.value(X)
    frac = v / problem.f_star
    res["X"] = X.round(6).tolist()
    res["true_fraction"] = frac.round(6).tolist()
    # experiments counted by whole batches: the starts, then each batch
    sizes = [len(m) for m in made]
    ends = np.cumsum(sizes)
    hit = None
    for end, start in zip(ends, np.concatenate([[0], ends[:-1]]), strict=True):
        if np.any(frac[start:end] >= HIT_FRACTION):
            hit = int(end)
            break
    res["experiments_to_hit"] = hit
    res["best_fraction"] = float(frac.max())
    res["n_made"] = int(len(X))
    return res


def _cache_path(problem: str, opt: str, seed: int, budget: int) -> Path:
    return CACHE / f"{problem}__{opt}__b{budget}__s{seed:03d}.json"


def run_all(problems: list[str], optimizers: list[str], seeds: int, budget: int) -> list[dict[str, Any]]:
    from tqdm import tqdm

    CACHE.mkdir(parents=True, exist_ok=True)
    # seed-major: a run cut short leaves every optimiser with about as many seeds
    jobs = [(p, o, s) for p in problems for s in range(seeds) for o in optimizers]
    out = []
    bar = tqdm(jobs, desc="campaigns", unit="campaign", file=sys.stderr)
    for p, o, s in bar:
        bar.set_postfix_str(f"{p} {o} seed {s}")
        path = _cache_path(p, o, s, budget)
        if path.exists():
            out.append(json.loads(path.read_text()))
            continue
        r = campaign(PROBLEMS[p], o, s, budget)
        path.write_text(json.dumps(r))
        out.append(r)
    return out


def cached(budget: int = BUDGET) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(CACHE.glob(f"*__b{budget}__s*.json"))]


# --- the report ----------------------------------------------------------------------------------------


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        table.setdefault(r["problem"], {}).setdefault(r["optimizer"], {"runs": []})["runs"].append(r)
    for by in table.values():
        for d in by.values():
            runs = sorted(d["runs"], key=lambda r: r["seed"])
            hits = np.array(
                [r["experiments_to_hit"] if r["experiments_to_hit"] is not None else math.inf for r in runs], float
            )
            best = np.array([r["best_fraction"] for r in runs])
            asks = np.concatenate([r["ask_s"] for r in runs]) if any(r["ask_s"] for r in runs) else np.zeros(1)
            d.update(
                seeds=len(runs),
                median=float(np.median(hits)),
                failures=int(np.isinf(hits).sum()),
                best_median=float(np.median(best)),
                best_worst=float(best.min()),
                ask_median_s=float(np.median(asks)),
                ask_max_s=float(np.max(asks)),
                repairs=int(sum(r["repairs"] for r in runs)),
                errors=[(r["seed"], r["error"]) for r in runs if r["error"]],
            )
    return table


def _f(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:g}"


def _plot(problem: str, by: dict[str, dict[str, Any]], out: Path) -> str | None:
    """Median (and quartiles) of the best true fraction so far vs experiments, per optimiser."""
    curves = {}
    for o in [q for q in ORDER if q in by]:
        d = by[o]
        n = min(len(r["true_fraction"]) for r in d["runs"])
        if n == 0:
            continue
        M = np.array([np.maximum.accumulate(np.asarray(r["true_fraction"][:n])) for r in d["runs"]])
        curves[o] = (
            np.arange(1, n + 1),
            np.median(M, axis=0),
            np.percentile(M, 25, axis=0),
            np.percentile(M, 75, axis=0),
        )
    if not curves:
        return None
    png = out / f"decisions_{problem}.png"
    try:
        import plotly.graph_objects as go

        fig = go.Figure()
        for o, (x, med, _, _) in curves.items():
            fig.add_trace(go.Scatter(x=x, y=med, mode="lines", name=o))
        fig.add_hline(y=HIT_FRACTION, line_dash="dot")
        fig.update_layout(
            title=f"{problem}: median best true value so far / optimum (SIMULATED lab)",
            xaxis_title="experiments",
            yaxis_title="best fraction of the optimum",
            width=800,
            height=480,
        )
        fig.write_image(png)
        return png.name
    except Exception:  # no kaleido/Chrome: matplotlib
        pass
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.8))
        for o, (x, med, q1, q3) in curves.items():
            ax.plot(x, med, label=o)
            ax.fill_between(x, q1, q3, alpha=0.12)
        ax.axhline(HIT_FRACTION, ls=":", c="k")
        ax.set(
            xlabel="experiments",
            ylabel="best fraction of the optimum (median, IQR)",
            title=f"{problem} (SIMULATED lab)",
        )
        ax.legend()
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        plt.close(fig)
        return png.name
    except Exception:
        return None


def report(results: list[dict[str, Any]], out: Path, missing: list[str]) -> tuple[str, dict]:
    table = summarise(results)
    lines = [
        "Simulated labs (bench/problems.py; SIMULATED, not literature). Experiments to reach 90 % of the true "
        "optimum (whole batches counted, 4 shared random starts, batches of 4, budget "
        f"{results[0]['budget'] if results else BUDGET}); median over seeds with failures as never (inf).",
        "",
    ]
    if missing:
        lines += [f"Not run (library not installed; `pip install -e .[bench]`): {', '.join(missing)}", ""]
    summary: dict[str, Any] = {}
    lines += ["Median experiments to 90 % of the optimum (failures/seeds):", "", *overview(table), ""]
    for p in [q for q in PROBLEMS if q in table]:
        by = table[p]
        prob = PROBLEMS[p]
        rnd = prob.random_median()
        x_star = prob.optimum[0].tolist()
        lines += [
            f"### {p}",
            "",
            prob.description,
            "",
            f"- true optimum {prob.f_star:.2f} at {dict(zip(prob.names, x_star, strict=True))}; "
            f"hit area {prob.hit_area:.2%} of the domain -> random search needs a median of {rnd:g} experiments "
            "(geometric law, no budget)",
            "",
            "| optimiser | seeds | median experiments | failures | vs random (law) | best fraction median | "
            "worst | s/proposal median | max | repairs | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for o in [q for q in ORDER if q in by]:
            d = by[o]
            ratio = d["median"] / rnd if math.isfinite(d["median"]) else math.inf
            lines.append(
                f"| {o} | {d['seeds']} | {_f(d['median'])} | {d['failures']}/{d['seeds']} | "
                f"{'never' if math.isinf(ratio) else f'{ratio:.3f}'} | {d['best_median']:.3f} | "
                f"{d['best_worst']:.3f} | {d['ask_median_s']:.2f} | {d['ask_max_s']:.2f} | {d['repairs']} | "
                f"{len(d['errors'])} |"
            )
            summary[f"{p}.{o}"] = {
                k: d[k]
                for k in ("seeds", "median", "failures", "best_median", "best_worst", "ask_median_s", "ask_max_s")
            }
        for o in [q for q in ORDER if q in by]:
            for seed, err in by[o]["errors"][:3]:
                lines.append(f"\n- {o} seed {seed}: {err}")
        png = _plot(p, by, out)
        if png:
            lines += ["", f"![best so far, {p}]({png})"]
        lines.append("")
    (out / "decisions.md").write_text("\n".join(lines))
    return "\n".join(lines), summary


def overview(table: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One row per problem: median experiments (failures/seeds) per optimiser, random's law last."""
    opts = [o for o in ORDER if any(o in by for by in table.values())]
    lines = ["| problem | " + " | ".join(opts) + " | random (law) |", "|---" * (len(opts) + 2) + "|"]
    for p in [q for q in PROBLEMS if q in table]:
        cells = []
        for o in opts:
            d = table[p].get(o)
            cells.append(f"{_f(d['median'])} ({d['failures']}/{d['seeds']})" if d else "not run")
        lines.append(f"| {p} | " + " | ".join(cells) + f" | {PROBLEMS[p].random_median():g} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--seeds", type=int, default=N_SEEDS)
    ap.add_argument("--optimizers", default=",".join(ORDER))
    ap.add_argument("--budget", type=int, default=BUDGET)
    ap.add_argument("--report-only", action="store_true", help="write the report from the cached campaigns")
    a = ap.parse_args(argv)
    problems = [p.strip() for p in a.problems.split(",") if p.strip()]
    bad = [p for p in problems if p not in PROBLEMS]
    opts = [o.strip() for o in a.optimizers.split(",") if o.strip()]
    bad += [o for o in opts if o not in ADAPTERS]
    if bad:
        print(
            f"unknown problem/optimizer: {', '.join(bad)} (problems: {', '.join(PROBLEMS)}; "
            f"optimizers: {', '.join(ADAPTERS)})",
            file=sys.stderr,
        )
        return 2
    missing = [o for o in opts if not available(o)]
    for o in missing:
        print(f"{o}: its library is not installed (pip install -e .[bench]); running the others", file=sys.stderr)
    run = [o for o in opts if o not in missing]
    if not a.report_only:
        run_all(problems, run, a.seeds, a.budget)
    res = [r for r in cached(a.budget) if r["problem"] in problems]
    text, _ = report(res, HERE / "report", missing)
    print(text)
    return 0


def run(report_dict: dict) -> dict:
    """``python -m bench decisions``: the report from every cached campaign plus a default run."""
    missing = [o for o in ORDER if not available(o)]
    run_all(list(PROBLEMS), [o for o in ORDER if o not in missing], N_SEEDS, BUDGET)
    text, summary = report(cached(BUDGET), Path(report_dict.get("plots_dir", HERE / "report")), missing)
    return {"summary": text, **summary}


if __name__ == "__main__":
    sys.exit(main())
