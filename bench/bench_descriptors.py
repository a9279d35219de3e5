"""Benchmark: vectorised descriptors vs matminer's per-composition ElementProperty.

Computes :func:`screening.descriptors.compute_descriptors` for 10^6 random candidate compositions
(a mix of the built-in families in one shared feature matrix) and, in the same run, matminer's
``ElementProperty.from_preset("magpie")`` on a subsample, then reports the per-composition time
ratio. Descriptors are computed in batches of :data:`BATCH` rows (as a screening loop would);
matminer's pymatgen ``Composition`` objects are built before its timer starts, so the
baseline is its featurizer alone (a conservative ratio).

Run: ``python bench/bench_descriptors.py [n_candidates] [n_matminer]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from matdb.families import Family, builtin_families
from screening.descriptors import compute_descriptors, site_fraction_frame, universal_columns

N_CANDIDATES = 1_000_000
N_MATMINER = 200
#: Rows per compute_descriptors call. Batches of this size reuse memory between calls; one
#: 10^6-row call spends most of its time faulting in fresh pages for the 0.4 GB output.
BATCH = 50_000


def random_candidates(n: int, seed: int = 0) -> tuple[pd.DataFrame, list[tuple[Family, dict]]]:
    """n random compositions spread over the built-in families (universal columns)."""
    rng = np.random.default_rng(seed)
    fams = list(builtin_families().values())
    counts = np.full(len(fams), n // len(fams))
    counts[: n - counts.sum()] += 1
    frames, members = [], []
    for fam, m in zip(fams, counts, strict=True):
        params = {p.name: rng.uniform(p.min, p.max, m) for p in fam.parameters.values()}
        frames.append(site_fraction_frame(fam, params))
        members += [(fam, {k: float(v[i]) for k, v in params.items()}) for i in range(min(m, 64))]
    return pd.concat(frames, ignore_index=True), members


def _pymatgen_composition(fam: Family, params: dict[str, float]) -> Any:
    """Elemental pymatgen Composition of one composition (molecular cations expanded)."""
    from pymatgen.core import Composition

    amounts: dict[str, float] = {}
    mult = fam.site_multiplicity
    for site, occ in fam.site_fractions(params).items():
        for sym, frac in occ.items():
            if float(frac) <= 0:
                continue
            for el, k in Composition(fam.species(sym).formula).get_el_amt_dict().items():
                amounts[el] = amounts.get(el, 0.0) + float(frac) * mult[site] * k
    return Composition(amounts)


def run(report: dict) -> dict:
    """Time both in one run; add and return ``descriptors_*`` entries in ``report``."""
    from matminer.featurizers.composition import ElementProperty

    n = int(report.get("n_candidates", N_CANDIDATES))
    n_mm = int(report.get("n_matminer", N_MATMINER))
    frame, members = random_candidates(n)
    cols = universal_columns()
    F = frame[cols].to_numpy()

    compute_descriptors(F[:1000], cols)  # warm caches (species data, pymatgen tables)
    finite = True
    t0 = time.perf_counter()
    for lo in range(0, n, BATCH):  # streamed like a candidate screen: bounded memory
        out = compute_descriptors(F[lo : lo + BATCH], cols)
        finite &= bool(np.isfinite(out["tolerance_factor"].to_numpy()).all())
    t_ours = time.perf_counter() - t0
    if not finite:
        raise RuntimeError("non-finite tolerance factors in the benchmark set")

    rng = np.random.default_rng(1)
    picks = [members[i] for i in rng.integers(0, len(members), n_mm)]
    comps = [_pymatgen_composition(f, p) for f, p in picks]
    ep = ElementProperty.from_preset("magpie")
    ep.featurize(comps[0])  # warm-up: loads Magpie tables
    t0 = time.perf_counter()
    for c in comps:
        ep.featurize(c)
    t_mm = time.perf_counter() - t0

    per_ours = t_ours / n
    per_mm = t_mm / n_mm
    report.update(
        {
            "descriptors_n": n,
            "descriptors_n_columns": out.shape[1],
            "descriptors_seconds": t_ours,
            "descriptors_us_per_composition": per_ours * 1e6,
            "matminer_n": n_mm,
            "matminer_us_per_composition": per_mm * 1e6,
            "descriptors_speedup_vs_matminer": per_mm / per_ours,
            "summary": (
                f"compute_descriptors: {per_ours * 1e6:.2f} µs per composition "
                f"({n} compositions, {out.shape[1]} descriptors, batches of {BATCH}); matminer "
                f"ElementProperty(magpie): {per_mm * 1e6:.0f} µs per composition "
                f"({n_mm} compositions); ratio {per_mm / per_ours:.0f}x"
            ),
        }
    )
    return report


if __name__ == "__main__":
    args = {}
    if len(sys.argv) > 1:
        args["n_candidates"] = int(sys.argv[1])
    if len(sys.argv) > 2:
        args["n_matminer"] = int(sys.argv[2])
    r = run(args)
    print(
        f"descriptors: {r['descriptors_n']} compositions x {r['descriptors_n_columns']} "
        f"descriptors in {r['descriptors_seconds']:.2f} s "
        f"({r['descriptors_us_per_composition']:.2f} µs/composition)\n"
        f"matminer ElementProperty(magpie): {r['matminer_us_per_composition']:.0f} µs/composition "
        f"(n = {r['matminer_n']})\n"
        f"ratio (per composition): {r['descriptors_speedup_vs_matminer']:.0f}x"
    )
