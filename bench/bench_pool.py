"""Benchmark: matdb on a REAL pool, Liang et al.'s protocol, against random selection in the same run.

Data: ``bench/data/sun2021/perovskite_stability.csv`` — the Cs/FA/MA lead iodide stability data of
S. Sun et al., Matter 4, 1305 (2021), as published with Q. Liang et al., npj Comput. Mater. 7, 188
(2021) (MIT licence beside it): 138 measurements of 94 compositions, instability index (lower is
more stable). Averaging the replicates per composition gives the "lab's answer": the benchmark keeps
that table hidden and only reads it to fill in a plan's result column, as the lab would.

matdb is used exactly as a user uses it, files in and files out, through the service functions the
CLI calls (``matdb_app.ingest`` / ``matdb_app.screening``), in a fresh database per campaign:

1. ``matdb init``; ``matdb ingest family.yaml`` — a record file defining the family
   Cs_aFA_bMA_{1-a-b}PbI3 and the quantity ``instability_index``;
2. ``matdb pool pool.csv --family CsFAMAPbI3 --name sun94`` — the 94 compositions (columns ``a``, ``b``);
3. ``matdb ingest start.csv`` — the 2 random starting compositions' measured rows as a CSV table;
4. repeat: ``matdb propose --family CsFAMAPbI3 --candidates sun94 --objective instability_index:min
   -n 1`` (or 4), read plan.csv, fill in the ``instability_index [1]`` column from the hidden table,
   ``matdb ingest plan.csv`` — until all five top-5 % compositions are made (or the pool is used up).

Protocol (Liang et al. 2021, pool-based): replicates averaged per composition (94 candidates), 2 random
initial compositions per seed, one proposal per cycle (and batches of 4, counted by whole batches),
>= 30 seeds. Random selection draws the rest of the pool in a random order from the same 2 starts.

Metrics: experiments (including the 2 starts) until the most stable composition is made and until
all five top-5 % compositions are made; Top%(n) = fraction of the top-5 % made after n experiments;
enhancement factor EF(n) = Top%_matdb(n) / Top%_random(n) (mean curves over seeds) and acceleration
factor AF(a) = n_random(a) / n_matdb(a), the experiments each needs for its mean Top% to reach a
(Liang et al. 2021). Random is given from the same run and from its exact law (draws without
replacement). Each campaign is cached as JSON under ``bench/report/pool/`` so reruns resume.

Run: ``python -m bench pool`` or ``python -m bench.bench_pool --seeds 50 --batches 1,4``;
``--quick`` is a smoke test (2 seeds, 12 experiments, into a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "sun2021" / "perovskite_stability.csv"
REPORT = HERE / "report"
SEEDS = {1: 50, 4: 30}  # Liang et al. used 50 ensembles; the issue asks for >= 30
N_START = 2  # Liang et al. 2021: 2 random initial compositions
TOP_FRACTION = 0.05  # Liang et al. 2021: "top 5 %" of the pool
FAMILY = "CsFAMAPbI3"
POOL_KEY = "sun94"
OBJECTIVE = "instability_index:min"
RESULT = "instability_index [1]"  # the plan's column to fill in (matdb_app.screening.result_header)

#: What a lab writes to define its family and its quantity (the README's record file format).
FAMILY_RECORD = {
    "matdb": 1,
    "source": {"key": "sun2021", "kind": "publication", "doi": "10.1016/j.matt.2021.01.008"},
    "families": [{
        "slug": FAMILY, "name": "Cs_aFA_bMA_{1-a-b}PbI3", "structure": "ABX3",
        "parameters": {"a": {"min": 0, "max": 1, "description": "Cs fraction"},
                       "b": {"min": 0, "max": 1, "description": "FA fraction"}},
        "sites": {"A": {"Cs": "a", "FA": "b", "MA": "1-a-b"}, "B": {"Pb": 1}, "X": {"I": 1}},
        "precursors": [{"name": "CsI", "formula": "CsI", "amount": "a"},
                       {"name": "FAI", "formula": "CH5N2I", "amount": "b"},
                       {"name": "MAI", "formula": "CH6NI", "amount": "1-a-b"},
                       {"name": "PbI2", "formula": "PbI2", "amount": 1}]}],
    "quantities": [{"name": "instability_index", "unit": "", "label": "Instability index", "min": 0,
                    "direction": "min", "description": "Sun et al. 2021, lower is more stable"}],
}


# --- the lab: the hidden table of measured values --------------------------------------------------------


def lab() -> pd.DataFrame:
    """The 94 compositions with their replicate-averaged instability index (the hidden truth)."""
    raw = pd.read_csv(DATA)
    df = raw.groupby(["CsPbI", "FAPbI"], as_index=False)["Instability index"].mean()
    return pd.DataFrame({"a": df["CsPbI"], "b": df["FAPbI"], "y": df["Instability index"]})


def _key(a: float, b: float) -> tuple[float, float]:
    return (round(float(a), 6), round(float(b), 6))


def top_set(truth: pd.DataFrame) -> list[int]:
    """Indices of the top 5 % (lowest instability), ceil(5 % of 94) = 5 compositions."""
    k = math.ceil(TOP_FRACTION * len(truth))
    return [int(i) for i in truth.sort_values("y").index[:k]]


def starts(seed: int, n_pool: int) -> list[int]:
    return [int(i) for i in np.random.default_rng([seed, 11]).choice(n_pool, N_START, replace=False)]


# --- one campaign with matdb, as a user runs it ----------------------------------------------------------


def matdb_campaign(seed: int, batch: int, budget: int, work: Path) -> dict[str, Any]:
    from matdb_app import ingest as ingest_
    from matdb_app import screening as sc

    truth = lab()
    index = {_key(a, b): i for i, (a, b) in enumerate(zip(truth["a"], truth["b"], strict=True))}
    top = set(top_set(truth))
    res: dict[str, Any] = {"method": "matdb", "seed": seed, "batch": batch, "budget": budget, "error": None,
                           "made": [], "batch_end": [], "ask_s": [], "designs": [], "outside_pool": 0,
                           "repeats": 0}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = None
    try:
        db = ingest_.init_db(f"sqlite:///{work / 'matdb.sqlite'}").db  # matdb init
        (work / "family.yaml").write_text(yaml.safe_dump(FAMILY_RECORD, sort_keys=False))
        _ingest(ingest_, db, work / "family.yaml")  # matdb ingest family.yaml
        truth[["a", "b"]].to_csv(work / "pool.csv", index=False)
        sc.save_pool(db, work / "pool.csv", FAMILY, POOL_KEY)  # matdb pool pool.csv --family ... --name sun94
        first = starts(seed, len(truth))
        pd.DataFrame({"sample_id": [f"start-{i}" for i in range(N_START)], "family": FAMILY,
                      "a": truth.loc[first, "a"].to_numpy(), "b": truth.loc[first, "b"].to_numpy(),
                      "instability_index": truth.loc[first, "y"].to_numpy()}).to_csv(work / "start.csv", index=False)
        _ingest(ingest_, db, work / "start.csv")  # matdb ingest start.csv
        res["made"] += first
        res["batch_end"].append(len(res["made"]))
        made = set(first)
        cycle = 0
        while not top <= made and len(res["made"]) < budget:
            cycle += 1
            n = min(batch, budget - len(res["made"]))
            plan_csv = work / f"plan{cycle:03d}.csv"
            t0 = time.perf_counter()
            plan = sc.propose(db, FAMILY, [OBJECTIVE], n, candidates=POOL_KEY, out=plan_csv, seed=seed * 1000 + cycle)
            res["ask_s"].append(time.perf_counter() - t0)
            res["designs"].append(plan.design)
            filled = pd.read_csv(plan_csv)  # the lab reads plan.csv ...
            if filled.empty:
                res["error"] = f"cycle {cycle}: propose returned an empty plan after {len(made)} compositions"
                break
            values = []
            for a, b in zip(filled["a"], filled["b"], strict=True):
                i = index.get(_key(a, b))
                if i is None:  # not in the pool: the lab cannot make it
                    res["outside_pool"] += 1
                    values.append(np.nan)
                    continue
                res["repeats"] += i in made
                made.add(i)
                res["made"].append(i)
                values.append(float(truth.loc[i, "y"]))
            filled[RESULT] = values  # ... fills in what it measured ...
            filled.to_csv(plan_csv, index=False)
            _ingest(ingest_, db, plan_csv)  # ... and runs `matdb ingest plan.csv`
            res["batch_end"].append(len(res["made"]))
            if res["outside_pool"]:
                res["error"] = f"cycle {cycle}: proposed a composition outside the pool"
                break
    except Exception as e:  # recorded: a crash of matdb in a campaign is a finding
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc(limit=4)
    finally:
        if db is not None:
            db.close()
        shutil.rmtree(work, ignore_errors=True)
    return res


def _ingest(ingest_: Any, db: Any, path: Path) -> None:
    rep = ingest_.ingest(db, [path], progress=False)
    if not rep.ok:
        raise RuntimeError(f"matdb ingest {path.name} rejected: "
                           + "; ".join(str(e) for f in rep.files for e in (f.errors or [f.reason])))


def random_campaign(seed: int, batch: int, budget: int) -> dict[str, Any]:
    """The same 2 starts, then the rest of the pool in a random order (batches of ``batch``)."""
    truth = lab()
    first = starts(seed, len(truth))
    rest = [i for i in range(len(truth)) if i not in first]
    order = first + [int(i) for i in np.random.default_rng([seed, 13]).permutation(rest)]
    top = set(top_set(truth))
    made: list[int] = []
    ends = []
    for chunk in [order[:N_START]] + [order[k:k + batch] for k in range(N_START, len(order), batch)]:
        made += chunk
        ends.append(len(made))
        if top <= set(made) or len(made) >= budget:
            break
    return {"method": "random", "seed": seed, "batch": batch, "budget": budget, "error": None,
            "made": made[:budget], "batch_end": [min(e, budget) for e in ends], "ask_s": [], "designs": [],
            "outside_pool": 0, "repeats": 0}


# --- metrics --------------------------------------------------------------------------------------------


def found_curve(r: dict[str, Any], top: list[int], n_max: int) -> np.ndarray:
    """Top%(n), n = 1..n_max: the fraction of the top set made within the batches finished by n."""
    when = {}
    start = 0
    for end in r["batch_end"]:
        for i in r["made"][start:end]:
            when.setdefault(i, end)
        start = end
    hits = np.array([when.get(i, math.inf) for i in top], float)
    n = np.arange(1, n_max + 1)
    return (hits[None, :] <= n[:, None]).mean(axis=1)


def experiments_to(r: dict[str, Any], targets: list[int]) -> float:
    """Experiments (whole batches) until every composition of ``targets`` is made; inf if never."""
    need = set(targets)
    start = 0
    seen: set[int] = set()
    for end in r["batch_end"]:
        seen |= set(r["made"][start:end])
        start = end
        if need <= seen:
            return float(end)
    return math.inf


def random_law(n_pool: int, k_top: int, n: np.ndarray) -> np.ndarray:
    """Exact expected Top%(n) of random draws without replacement: n / N (for every top composition)."""
    return np.minimum(n / n_pool, 1.0) * (k_top > 0)


def law_median(n_pool: int, k: int) -> int:
    """Median experiments for random draws to have made all of k given compositions:
    P(all k within n) = C(n, k) / C(N, k)."""
    for n in range(k, n_pool + 1):
        if math.comb(n, k) / math.comb(n_pool, k) >= 0.5:
            return n
    return n_pool


def _first_reach(curve: np.ndarray, a: float) -> float:
    idx = np.flatnonzero(curve >= a - 1e-12)
    return float(idx[0] + 1) if len(idx) else math.inf


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    truth = lab()
    top = top_set(truth)
    n_pool = len(truth)
    out: dict[str, Any] = {"n_pool": n_pool, "top": top, "best": top[0], "by": {}}
    for batch in sorted({r["batch"] for r in runs}):
        for method in ("matdb", "random"):
            rs = sorted([r for r in runs if r["batch"] == batch and r["method"] == method], key=lambda r: r["seed"])
            if not rs:
                continue
            best = np.array([experiments_to(r, [top[0]]) for r in rs])
            all5 = np.array([experiments_to(r, top) for r in rs])
            curves = np.array([found_curve(r, top, n_pool) for r in rs])
            asks = np.concatenate([r["ask_s"] for r in rs]) if any(r["ask_s"] for r in rs) else np.array([])
            designs = [d for r in rs for d in r["designs"]]
            out["by"][(batch, method)] = {
                "seeds": len(rs), "best": best, "all5": all5, "curves": curves, "asks": asks,
                "errors": [(r["seed"], r["error"]) for r in rs if r["error"]],
                "repeats": int(sum(r["repeats"] for r in rs)), "initial_designs": designs.count("initial_design"),
            }
    return out


def _q(x: np.ndarray) -> str:
    """median [q1, q3] of a sample with inf for failures (numpy percentiles of inf stay inf)."""
    if not len(x):
        return "-"
    # with failures (inf) interpolating is undefined: take the lower order statistic then
    method = "lower" if np.isinf(x).any() else "linear"
    med, q1, q3 = np.percentile(x, [50, 25, 75], method=method)
    f = lambda v: "never" if math.isinf(v) else f"{v:g}"  # noqa: E731
    return f"{f(med)} [{f(q1)}, {f(q3)}]"


def _plot(s: dict[str, Any], out: Path) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({b for b, _ in s["by"]})
    fig, axes = plt.subplots(1, len(batches), figsize=(6.4 * len(batches), 4.6), squeeze=False)
    k = len(s["top"])
    n = np.arange(1, s["n_pool"] + 1)
    for ax, batch in zip(axes[0], batches, strict=True):
        for method, colour in (("matdb", "C0"), ("random", "C1")):
            d = s["by"].get((batch, method))
            if d is None:
                continue
            c = d["curves"] * k
            ax.plot(n, np.median(c, axis=0), c=colour, label=f"{method} median ({d['seeds']} seeds)")
            ax.fill_between(n, np.percentile(c, 25, axis=0), np.percentile(c, 75, axis=0), color=colour, alpha=0.2,
                            label=f"{method} quartiles")
            ax.plot(n, c.mean(axis=0), c=colour, ls="--", lw=1, label=f"{method} mean")
        ax.plot(n, random_law(s["n_pool"], k, n) * k, c="k", ls=":", lw=1, label="random, exact expectation")
        ax.set(xlabel="experiments (including the 2 starts)", ylabel=f"top-5 % compositions found (of {k})",
               title=f"Sun 2021 pool (94, real data), batch {batch}", xlim=(0, s["n_pool"]), ylim=(0, k + 0.2))
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    png = out / "pool_top5.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png.name


def report(runs: list[dict[str, Any]], out: Path, note: str = "") -> tuple[str, dict[str, Any]]:
    s = summarise(runs)
    truth = lab()
    k = len(s["top"])
    n_pool = s["n_pool"]
    best = truth.loc[s["best"]]
    lines = [
        "Real data: Sun et al., Matter 4, 1305 (2021), via Liang et al., npj Comput. Mater. 7, 188 (2021) (MIT); "
        f"{n_pool} Cs_aFA_bMA_(1-a-b)PbI3 compositions (replicates averaged), objective instability_index:min. "
        "matdb used as a user does (record file, `matdb pool`, `propose --candidates`, fill plan.csv, `ingest`), "
        f"a fresh database per seed; {N_START} random starts per seed, shared with random selection. Experiments "
        "include the starts and count whole batches; `never` = not found before the pool was used up.",
        "",
        f"- most stable: a (Cs) = {best.a:g}, b (FA) = {best.b:g}, instability {best.y:.4g}; top-5 % = {k} "
        "compositions: " + ", ".join(f"({truth.loc[i, 'a']:g}, {truth.loc[i, 'b']:g})" for i in s["top"]),
        f"- random, exact law (draws without replacement): median {law_median(n_pool, 1)} experiments to the most "
        f"stable, {law_median(n_pool, k)} to all {k}",
    ]
    if note:
        lines += [f"- {note}"]
    lines += [
        "",
        "| batch | method | seeds | to the most stable: median [q1, q3] | failures | to all five top-5 %: median "
        "[q1, q3] | failures | s/proposal median | max | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {}
    for (batch, method), d in sorted(s["by"].items()):
        asks = d["asks"]
        lines.append(
            f"| {batch} | {method} | {d['seeds']} | {_q(d['best'])} | {int(np.isinf(d['best']).sum())} | "
            f"{_q(d['all5'])} | {int(np.isinf(d['all5']).sum())} | "
            f"{f'{np.median(asks):.2f}' if len(asks) else '-'} | {f'{asks.max():.2f}' if len(asks) else '-'} | "
            f"{len(d['errors'])} |")
        summary[f"b{batch}.{method}"] = {
            "seeds": d["seeds"], "best_median": float(np.median(d["best"])), "all5_median": float(np.median(d["all5"])),
            "best_failures": int(np.isinf(d["best"]).sum()), "all5_failures": int(np.isinf(d["all5"]).sum()),
            "ask_median_s": float(np.median(asks)) if len(asks) else None}
    n_at = [5, 10, 20, 30, 47]
    a_at = [0.2, 0.4, 0.6, 0.8, 1.0]
    for batch in sorted({b for b, _ in s["by"]}):
        m, r = s["by"].get((batch, "matdb")), s["by"].get((batch, "random"))
        if m is None or r is None:
            continue
        cm, cr = m["curves"].mean(axis=0), r["curves"].mean(axis=0)
        law = random_law(n_pool, k, np.arange(1, n_pool + 1))
        lines += [
            "",
            f"Batch {batch}: enhancement factor EF(n) = Top%_matdb(n) / Top%_random(n), mean curves over seeds "
            "(random: this run; in brackets: the exact law n/N)",
            "",
            "| n | " + " | ".join(str(n) for n in n_at) + " |",
            "|---" * (len(n_at) + 1) + "|",
            "| Top% matdb | " + " | ".join(f"{cm[n - 1]:.2f}" for n in n_at) + " |",
            "| Top% random | " + " | ".join(f"{cr[n - 1]:.2f}" for n in n_at) + " |",
            "| EF | " + " | ".join(
                (f"{cm[n - 1] / cr[n - 1]:.2f}" if cr[n - 1] > 0 else "-") + f" ({cm[n - 1] / law[n - 1]:.2f})"
                for n in n_at) + " |",
            "",
            f"Batch {batch}: acceleration factor AF(a) = n_random(a) / n_matdb(a), experiments for the mean Top% to "
            "reach a",
            "",
            "| a | " + " | ".join(f"{a:.0%}" for a in a_at) + " |",
            "|---" * (len(a_at) + 1) + "|",
        ]
        nm = [_first_reach(cm, a) for a in a_at]
        nr = [_first_reach(cr, a) for a in a_at]
        nl = [_first_reach(law, a) for a in a_at]
        g = lambda v: "never" if math.isinf(v) else f"{v:g}"  # noqa: E731
        lines += [
            "| n matdb | " + " | ".join(g(v) for v in nm) + " |",
            "| n random | " + " | ".join(g(v) for v in nr) + " |",
            "| AF | " + " | ".join(
                (f"{b_ / a_:.2f}" if math.isfinite(a_) and math.isfinite(b_) else "-")
                + (f" ({l_ / a_:.2f})" if math.isfinite(a_) else "") for a_, b_, l_ in zip(nm, nr, nl, strict=True))
            + " |",
        ]
        summary[f"b{batch}.EF"] = {str(n): float(cm[n - 1] / cr[n - 1]) if cr[n - 1] > 0 else None for n in n_at}
        summary[f"b{batch}.AF"] = {f"{a:.0%}": (nr[i] / nm[i] if math.isfinite(nm[i]) and math.isfinite(nr[i])
                                               else None) for i, a in enumerate(a_at)}
        if m["initial_designs"]:
            lines += ["", f"matdb's first proposal after the {N_START} starts is its space-filling initial design "
                      f"(the model takes over from 3 results): {m['initial_designs']} of the proposals, batch {batch}."]
        if m["repeats"]:
            lines += ["", f"matdb re-proposed an already made composition {m['repeats']} times (batch {batch})."]
        for seed, e in m["errors"][:5]:
            lines += ["", f"- matdb batch {batch} seed {seed}: {e}"]
    png = _plot(s, out)
    if png:
        lines += ["", f"![top-5 % found vs experiments]({png})"]
    lines.append("")
    text = "\n".join(lines)
    (out / "pool.md").write_text(text)
    return text, summary


# --- running --------------------------------------------------------------------------------------------


def _cache(cache: Path, method: str, batch: int, seed: int, budget: int) -> Path:
    return cache / f"{method}__n{batch}__b{budget}__s{seed:03d}.json"


def run_all(seeds: dict[int, int], budget: int, out: Path, first: int = 0) -> list[dict[str, Any]]:
    from tqdm import tqdm

    cache = out / "pool"
    cache.mkdir(parents=True, exist_ok=True)
    # seed-major: a run cut short leaves every batch size with about as many seeds
    jobs = [(b, first + s) for s in range(max(seeds.values())) for b in sorted(seeds) if s < seeds[b]]
    runs = []
    work = Path(tempfile.mkdtemp(prefix="matdb-pool-"))
    bar = tqdm(jobs, desc="pool campaigns", unit="campaign", file=sys.stderr)
    for batch, seed in bar:
        bar.set_postfix_str(f"batch {batch} seed {seed}")
        runs.append(random_campaign(seed, batch, budget))
        path = _cache(cache, "matdb", batch, seed, budget)
        if path.exists():
            runs.append(json.loads(path.read_text()))
            continue
        r = matdb_campaign(seed, batch, budget, work / "campaign")
        path.write_text(json.dumps(r))
        runs.append(r)
    shutil.rmtree(work, ignore_errors=True)
    return runs


def cached(out: Path, budget: int, seeds: dict[int, int]) -> list[dict[str, Any]]:
    runs = []
    for p in sorted((out / "pool").glob(f"matdb__n*__b{budget}__s*.json")):
        r = json.loads(p.read_text())
        if r["batch"] in seeds:
            runs += [r, random_campaign(r["seed"], r["batch"], budget)]
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=None, help="seeds per batch size (default: 50 for 1, 30 for 4)")
    ap.add_argument("--batches", default="1,4", help="batch sizes, comma-separated")
    ap.add_argument("--budget", type=int, default=None, help="experiments per campaign at most (default: the pool)")
    ap.add_argument("--out", default=None, help="report folder (default: bench/report)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, 12 experiments, a temporary folder")
    ap.add_argument("--first-seed", type=int, default=0, help="first seed (to split a run over processes)")
    ap.add_argument("--report-only", action="store_true", help="write the report from the cached campaigns")
    ap.add_argument("--note", default="", help="a line added to the report")
    a = ap.parse_args(argv)
    try:
        batches = [int(b) for b in a.batches.split(",") if b.strip()]
    except ValueError:
        print(f"--batches {a.batches}: comma-separated positive integers", file=sys.stderr)
        return 2
    if not batches or min(batches) < 1 or (a.seeds is not None and a.seeds < 1):
        print("--batches and --seeds must be positive", file=sys.stderr)
        return 2
    n_pool = len(lab())
    if a.quick:
        seeds = {b: a.seeds or 2 for b in batches}
        budget = a.budget or 12
        out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="matdb-pool-quick-"))
    else:
        seeds = {b: a.seeds or SEEDS.get(b, 30) for b in batches}
        budget = a.budget or n_pool
        out = Path(a.out) if a.out else REPORT
    out.mkdir(parents=True, exist_ok=True)
    if not a.report_only:
        run_all(seeds, budget, out, a.first_seed)
    runs = cached(out, budget, seeds)
    if not runs:
        print(f"no cached campaigns under {out / 'pool'}", file=sys.stderr)
        return 1
    text, _ = report(runs, out, a.note)
    print(text)
    print(f"report written to {out / 'pool.md'}", file=sys.stderr)
    return 0


def run(report_dict: dict) -> dict:
    """``python -m bench pool``: the default run (resuming from the cache) and its report."""
    out = Path(report_dict.get("plots_dir", REPORT))
    budget = len(lab())
    run_all(SEEDS, budget, out)
    text, summary = report(cached(out, budget, SEEDS), out)
    return {"summary": text, **summary}


if __name__ == "__main__":
    sys.exit(main())
