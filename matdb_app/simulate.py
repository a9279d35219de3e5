"""Simulated TLIS runs (``matdb simulate``) and the simulated demonstration set (``matdb demo``).

Everything written here has provenance ``simulated``: it is marked ◇ SIMULATED on every page,
drawn as open diamonds, and never used for training unless asked for.

The demonstration set gives a fresh database something to show on the Spectra page: a few TLIS
reflectance runs of FA_xMA_{1-x}PbI3 and PL runs of FASnI_zBr_{3-z} from the simulator
(:mod:`screening.simulate`, fixed seeds, so the set is the same on every machine), under the
source ``matdb-demo``, analysed so that their features exist. ``matdb init --bundled`` adds it;
``matdb demo remove`` deletes exactly that set and nothing else; ``matdb demo add`` brings it back.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from ingest.pipeline import IngestReport, ingest_paths
from matdb import store
from matdb.db import Database
from matdb_app import analysis


def parse_param_values(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["x=0,0.2,0.4", "z=2.5"]`` or ``["x=0:1:0.2"]`` -> {"x": [...], "z": [2.5]}."""
    from screening.simulate import SimulationError

    out: dict[str, list[float]] = {}
    for spec in specs:
        if "=" not in spec:
            raise SimulationError(f"write parameters as name=value, got '{spec}'")
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
            raise SimulationError(f"cannot read values of '{name}' from '{raw}' (use 0.2,0.4 or 0:1:0.2)") from None
        out[name] = [float(v) for v in vals]
    return out


def run_stem(family: str, params: Mapping[str, float], mode: str, prefix: str = "sim") -> str:
    """The file stem of a simulated run: ``sim-FAMAPbI3-x0.8-reflectance``."""
    return f"{prefix}-{family}-" + "-".join(f"{k}{v:g}" for k, v in params.items()) + f"-{mode}"


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
        run = simulate_run(family, p, mode=mode, n_times=n_times, duration_min=duration_min,
                           seed=None if seed is None else seed + i, process=process)
        paths += write_tlis_csv(run, out / f"{run_stem(family, p, mode)}.csv")
    return paths


def simulate_and_ingest(db: Database, paths: Sequence[Path], *, progress: bool = True) -> IngestReport:
    """Load written runs (their reference files come in with them)."""
    return ingest_paths(db, [p for p in paths if not p.stem.endswith("_ref")], progress=progress)


# --- the demonstration set ------------------------------------------------------------------------

#: Source key of the demonstration set (sample ids and file names start with it).
DEMO_SOURCE = "matdb-demo"
DEMO_LABEL = "simulated demonstration run (remove with `matdb demo remove`)"
#: (family, composition, mode) of every demonstration run: the two TLIS studies of the seed paper
#: (reflectance of FA_xMA_{1-x}PbI3, PL of FASnI_zBr_{3-z}), three compositions each (z >= 2:
#: the simulated PL of Br-richer compositions is too weak for a peak fit in every spectrum).
DEMO_RUNS: tuple[tuple[str, dict[str, float], str], ...] = (
    ("FAMAPbI3", {"x": 0.4}, "reflectance"),
    ("FAMAPbI3", {"x": 0.8}, "reflectance"),
    ("FAMAPbI3", {"x": 1.0}, "reflectance"),
    ("FASnIBr", {"z": 2.0}, "pl"),
    ("FASnIBr", {"z": 2.5}, "pl"),
    ("FASnIBr", {"z": 3.0}, "pl"),
)
DEMO_SEED = 2026
DEMO_TIMES = 90
DEMO_DURATION_MIN = 90.0


def demo_file_names() -> list[str]:
    """Base names of the demonstration run files (and reflectance references)."""
    out = []
    for family, params, mode in DEMO_RUNS:
        stem = run_stem(family, params, mode, DEMO_SOURCE)
        out.append(f"{stem}.csv")
        if mode == "reflectance":
            out.append(f"{stem}_ref.csv")
    return out


def write_demo(out_dir: str | Path) -> list[Path]:
    """Write the demonstration runs (deterministic: fixed seeds) as TLIS CSV files."""
    from screening.simulate import simulate_run, write_tlis_csv

    paths: list[Path] = []
    for i, (family, params, mode) in enumerate(DEMO_RUNS):
        run = simulate_run(family, params, mode=mode, n_times=DEMO_TIMES, duration_min=DEMO_DURATION_MIN,
                           seed=DEMO_SEED + i)
        stem = run_stem(family, params, mode, DEMO_SOURCE)
        run.meta["sample"] = stem.removesuffix(f"-{mode}")
        run.meta["source"] = DEMO_SOURCE
        written = write_tlis_csv(run, Path(out_dir) / f"{stem}.csv")
        # a label on the sample says what it is wherever it is listed
        lines = written[0].read_text(encoding="utf-8").split("\n", 1)
        written[0].write_text(f"{lines[0]}\n# label: {DEMO_LABEL}\n{lines[1]}", encoding="utf-8")
        paths += written
    return paths


@dataclass
class DemoReport:
    """What adding the demonstration set did."""

    ingest: IngestReport
    analysis: analysis.AnalysisReport

    @property
    def ok(self) -> bool:
        return self.ingest.ok and not self.analysis.failed


def add_demo(db: Database, *, progress: bool = True) -> DemoReport:
    """Simulate, load and analyse the demonstration set (idempotent: a second call changes nothing;
    a set from an older matdb is replaced by this version's, see :func:`ingest.bundled.refresh`)."""
    from ingest.bundled import refresh

    with tempfile.TemporaryDirectory(prefix="matdb-demo-") as tmp:
        runs = [p for p in write_demo(tmp) if not p.stem.endswith("_ref")]
        done = refresh(db, "demo", runs, is_bundled_file=lambda path: PurePath(path).name.startswith(DEMO_SOURCE),
                       progress=progress)
    if done.note:
        done.report.notes.append(done.note)
    return DemoReport(done.report, analysis.analyze(db, progress=progress, source=DEMO_SOURCE))


def remove_demo(db: Database) -> dict[str, int]:
    """Delete the demonstration set (and only it): rows deleted per table."""
    return store.remove_source(db, DEMO_SOURCE, demo_file_names(), bundled_dataset="demo")
