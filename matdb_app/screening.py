"""Screening: train surrogates on the database, rank candidates, propose what to mill next.

What a chemist does, one function each (the CLI commands and the Screening page call these):

* :func:`status` — what matdb will do for a family and its objectives with the data it has (a model,
  or an initial design when there are too few results);
* :func:`train` — a surrogate per objective with its model card, stored in the database (skops) and
  reused while its training data are unchanged (the data hash);
* :func:`rank` — the family's candidate space (or a lab's candidate pool) ranked by prediction and
  uncertainty, with the Pareto front of two or more objectives;
* :func:`propose` — the next batch (:func:`screening.optimizer.suggest`: continuous constrained
  search, feasibility, lab-shaped runs, an initial design from zero results), recorded as a campaign,
  written as ``plan.csv`` with a milling plan and a recommended milling time from the family's
  kinetics;
* :func:`milling_plan`, :func:`predict_grid`, :func:`campaigns`, :func:`read_pool` / :func:`save_pool`.

Objectives are any numeric stored quantity — built in, declared by the lab, or a derived feature —
with a direction (``instability_index:min``, ``plqy:max``, ``pl_peak:target=850``): see
:mod:`screening.objectives`. Training data are literature and measured results only, unless
``include_simulated=True``: simulated rows never enter a model silently, and a model trained with
them says so in its card.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matdb import store, vocabulary
from matdb.db import Database
from matdb.families import CompositionError, Family
from matdb.units import display_unit
from matdb.vocabulary import PROCESS_PARAMS, PROVENANCES, TRAINING_PROVENANCES, is_feasible
from matdb_app import access
from screening.candidates import CandidateSpace, default_space, load_spaces, rank_candidates, space_from_dict
from screening.objectives import Objective, parse_objectives
from screening.optimizer import MIN_MODEL_POINTS, Domain, OptimizerError, Variable, suggest
from screening.surrogate import Surrogate, load_surrogate, training_hash

__all__ = [
    "Plan",
    "ScreeningError",
    "Status",
    "TrainedModel",
    "campaigns",
    "milling_plan",
    "predict_grid",
    "propose",
    "rank",
    "read_pool",
    "save_pool",
    "status",
    "train",
]

#: A process variable is learned from when at least this fraction of the training rows report it;
#: otherwise it is held at its default value (and the proposal says so).
PROCESS_COVERAGE = 0.5
#: Largest candidate-pool file read (MB).
MAX_POOL_MB = 50
#: Columns a pool file may have besides the family's parameters and process variables.
POOL_ID_COLUMNS = ("family", "formula", "name", "label", "id", "candidate_id", "sample_id", "note")


class ScreeningError(ValueError):
    """A screening request that cannot be served (no data, unknown objective, bad pool, ...)."""


class TooFewResults(ScreeningError):
    """An expected situation, not a mistake: too few results for a model (propose makes an initial design)."""

    expected = True  # pages show it as information, not as a red error


# --- training data ------------------------------------------------------------------------------------


def _family(db: Database, family: str, families: Mapping[str, Family] | None = None) -> Family:
    fams = families if families is not None else db.families()
    if family not in fams:
        raise ScreeningError(f"unknown family '{family}' (known: {', '.join(sorted(fams))})")
    return fams[family]


def objectives_of(db: Database, family: str, specs: Sequence[str | Objective], *,
                  weights: Sequence[float] | None = None, stability_metric: str | None = None) -> list[Objective]:
    """Objectives read against the database's vocabulary (built-in + declared quantities)."""
    from screening.objectives import ObjectiveError

    quantities = {**vocabulary.QUANTITIES, **db.quantities()}
    try:
        return parse_objectives(list(specs), quantities, family=family, stability_metric=stability_metric,
                                weights=weights)
    except ObjectiveError as exc:
        raise ScreeningError(str(exc)) from None


def _provenances(include_simulated: bool) -> list[str]:
    return list(PROVENANCES) if include_simulated else list(TRAINING_PROVENANCES)


@dataclass
class TrainingSet:
    """What the models of one family learn from: one row per made experiment (a sample, or a
    composition/process without a sample), the objectives' mean values (NaN when not measured) and
    whether the synthesis worked."""

    family: Family
    variables: list[str]
    X: pd.DataFrame
    Y: dict[str, np.ndarray]
    feasible: np.ndarray
    provenance: list[str]
    held: dict[str, float] = field(default_factory=dict)  # process variables not learned from
    messages: list[str] = field(default_factory=list)

    def n_results(self, objective: Objective) -> int:
        return int(np.isfinite(self.Y[objective.name]).sum())


def _key(params: Mapping[str, Any], process: Mapping[str, Any], sample: Any) -> str:
    if isinstance(sample, str) and sample:
        return f"sample:{sample}"
    return json.dumps([{k: params[k] for k in sorted(params)},
                       {k: v for k, v in sorted((process or {}).items()) if isinstance(v, (int, float))}],
                      sort_keys=True)


def training_set(db: Database, family: Family, objectives: Sequence[Objective], space: CandidateSpace,
                 include_simulated: bool = False) -> TrainingSet:
    """Results of every objective for ``family`` (plus failed syntheses), on the space's variables."""
    prov = _provenances(include_simulated)
    rows: dict[str, dict[str, Any]] = {}
    for o in objectives:
        df = db.results(quantity=o.quantity, family=family.slug, provenance=prov)
        if o.label is not None and len(df):
            df = df[(df["label"] == o.label) | df["label"].isna()]
        df = df[df["value"].notna()]
        for params, process, sample, value, p in zip(df["composition_params"], df["process"], df["sample_id"],
                                                     df["value"], df["provenance"], strict=True):
            r = rows.setdefault(_key(params, process, sample), {"params": params, "process": process or {},
                                                                 "values": {}, "ok": True, "prov": set()})
            r["values"].setdefault(o.name, []).append(float(value))
            r["prov"].add(p)
    samples = db.samples(family=family.slug, provenance=prov)
    if len(samples) and "outcome" in samples.columns:
        for params, process, sample, outcome, p in zip(samples["composition_params"], samples["process"],
                                                       samples["sample_id"], samples["outcome"],
                                                       samples["provenance"], strict=True):
            if is_feasible(outcome if isinstance(outcome, str) else None):
                continue
            r = rows.setdefault(_key(params, process, sample), {"params": params, "process": process or {},
                                                                 "values": {}, "ok": True, "prov": set()})
            r["ok"] = False
            r["prov"].add(p)
    params_names = list(family.parameters)
    proc_names = [d.name for d in space.process.values()]
    table = pd.DataFrame([{**{k: float(r["params"].get(k, np.nan)) for k in params_names},
                           **{k: _number(r["process"].get(k)) for k in proc_names}} for r in rows.values()],
                         columns=[*params_names, *proc_names])
    held: dict[str, float] = {}
    messages: list[str] = []
    fixed = dict(space.fixed)
    for k in proc_names:
        col = table[k] if len(table) else pd.Series(dtype=float)
        coverage = float(col.notna().mean()) if len(col) else 0.0
        if k in fixed:
            table[k] = col.fillna(fixed[k])
            continue
        if len(table) and coverage >= PROCESS_COVERAGE:
            if coverage < 1:
                messages.append(f"{k}: {int(col.isna().sum())} of {len(col)} results do not report it; they are "
                                f"counted at the median {float(col.median()):g}")
            table[k] = col.fillna(float(col.median()))
        elif len(table):
            d = space.process[k]
            value = float(col.median()) if col.notna().any() else float(d.lo + d.hi) / 2
            held[k] = value
            messages.append(f"{k}: reported for {coverage:.0%} of the results, too few to learn from; it is held "
                            f"at {value:g} in this campaign")
            table[k] = value
    Y = {o.name: np.array([np.mean(r["values"][o.name]) if o.name in r["values"] else np.nan
                           for r in rows.values()]) for o in objectives}
    feasible = np.array([r["ok"] for r in rows.values()], dtype=bool)
    provenance = [",".join(sorted(r["prov"])) for r in rows.values()]
    ok = table[params_names].notna().all(axis=1).to_numpy() if len(table) else np.zeros(0, bool)
    kept = [p for p, k in zip(provenance, ok, strict=True) if k]
    return TrainingSet(family, [*params_names, *proc_names], table[ok].reset_index(drop=True),
                       {k: v[ok] for k, v in Y.items()}, feasible[ok], kept, held, messages)


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


def _space(db: Database, family: Family, space: Any, fixed: Mapping[str, float] | None,
           families: Mapping[str, Family]) -> CandidateSpace:
    from screening.candidates import CandidateSpaceError

    try:
        if space is None:
            sp = default_space(family)
        elif isinstance(space, CandidateSpace):
            sp = space
        elif isinstance(space, Mapping):
            sp = space_from_dict({"family": family.slug, **dict(space)}, families)[0]
        else:
            spaces = [s for s in load_spaces(space, families) if s.family.slug == family.slug]
            if not spaces:
                raise ScreeningError(f"the space file {space} has no space for {family.slug}")
            sp = spaces[0]
        if fixed:
            unknown = [k for k in fixed if k not in sp.columns]
            if unknown:
                raise ScreeningError(f"--fixed {unknown[0]}: not a variable of the space "
                                     f"(variables: {', '.join(sp.columns)})")
            sp = CandidateSpace(sp.family, sp.parameters, sp.process, sp.tolerance_factor, sp.exclude_elements,
                                sp.sampling, sp.n_samples, sp.seed, sp.linear,
                                tuple({**dict(sp.fixed), **{k: float(v) for k, v in fixed.items()}}.items()))
    except CandidateSpaceError as exc:
        raise ScreeningError(str(exc)) from None
    return sp


# --- candidate pools ---------------------------------------------------------------------------------


def read_pool(path: str | Path, family: Family, space: CandidateSpace | None = None) -> pd.DataFrame:
    """A lab's candidate pool (CSV, XLSX or Parquet): one row per mixture it can make, with the
    family's parameter columns and optionally process columns. Every row is checked against the
    family (parameter ranges, site sums, charge) and the process variables' physical bounds.

    Raises:
        ScreeningError: naming the file, the row (as in the file: header = row 1) and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise ScreeningError(f"{path}: no such candidate file")
    if path.stat().st_size > MAX_POOL_MB * 2**20:
        raise ScreeningError(f"{path}: larger than {MAX_POOL_MB} MB, the limit for a candidate pool")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(path, comment="#", skipinitialspace=True)
        elif suffix == ".xlsx":
            df = pd.read_excel(path)
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            raise ScreeningError(f"{path}: a candidate pool is a .csv, .xlsx or .parquet file")
    except ScreeningError:
        raise
    except Exception as exc:  # the readers raise assorted parser errors for broken files
        raise ScreeningError(f"{path}: cannot read the candidate table ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return validate_pool(df, family, str(path), space)


def validate_pool(df: pd.DataFrame, family: Family, where: str = "candidates",
                  space: CandidateSpace | None = None) -> pd.DataFrame:
    """Check a pool's columns and rows (see :func:`read_pool`); return the rows as numbers."""
    df = df.rename(columns=lambda c: str(c).strip())
    params = list(family.parameters)
    missing = [p for p in params if p not in df.columns]
    if missing:
        raise ScreeningError(f"{where}: no column '{missing[0]}' (a pool of {family.slug} needs the parameter "
                             f"columns {', '.join(params)})")
    process = [c for c in df.columns if c in PROCESS_PARAMS]
    unknown = [c for c in df.columns if c not in params and c not in process and c.lower() not in POOL_ID_COLUMNS]
    if unknown:
        raise ScreeningError(f"{where}: unknown column '{unknown[0]}' (known: the parameters {', '.join(params)} of "
                             f"{family.slug}, process variables such as {', '.join(list(PROCESS_PARAMS)[:4])}, "
                             f"and {', '.join(POOL_ID_COLUMNS)})")
    if "family" in df.columns:
        other = df.index[df["family"].astype(str).str.strip() != family.slug]
        if len(other):
            raise ScreeningError(f"{where}, row {int(other[0]) + 2}, field 'family': '{df.loc[other[0], 'family']}' "
                                 f"is not {family.slug}")
    if df.empty:
        raise ScreeningError(f"{where}: the candidate table has no rows")
    out = pd.DataFrame(index=df.index)
    for c in [*params, *process]:
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.index[vals.isna() | ~np.isfinite(vals.fillna(0.0))]
        if len(bad):
            raise ScreeningError(f"{where}, row {int(bad[0]) + 2}, field '{c}': '{df.loc[bad[0], c]}' is not a number")
        out[c] = vals.astype(float)
    for i, row in out.iterrows():
        try:
            family.validate({p: row[p] for p in params})
        except CompositionError as exc:
            raise ScreeningError(f"{where}, row {int(i) + 2}, field '{exc.field or params[0]}': {exc}") from None
        for c in process:
            try:
                vocabulary.check_range(PROCESS_PARAMS[c].quantity, float(row[c]))
            except vocabulary.UnitError as exc:
                raise ScreeningError(f"{where}, row {int(i) + 2}, field '{c}': {exc}") from None
    if space is not None:
        extra = [c for c in process if c not in space.process]
        if extra:
            raise ScreeningError(f"{where}: column '{extra[0]}' is not a process variable of the space "
                                 f"({', '.join(space.process) or 'none'})")
    return out.drop_duplicates().reset_index(drop=True)


def save_pool(db: Database, path: str | Path, family: str, key: str | None = None) -> str:
    """Validate a pool file and store it under ``key`` (default: the file name); return the key."""
    fam = _family(db, family)
    rows = read_pool(path, fam)
    key = key or Path(path).stem
    if key in set(store.pools(db)["key"]):
        raise ScreeningError(f"a candidate pool named '{key}' exists already; choose another name")
    return store.save_pool(db, key=key, family=fam, rows=rows, source_file=Path(path).name)


def _pool(db: Database, candidates: Any, family: Family, space: CandidateSpace) -> pd.DataFrame | None:
    if candidates is None:
        return None
    if isinstance(candidates, pd.DataFrame):
        return validate_pool(candidates, family, "candidates", space)
    path = Path(str(candidates))
    if path.is_file():
        return read_pool(path, family, space)
    stored = store.load_pool(db, str(candidates))
    if stored is None:
        raise ScreeningError(f"--candidates {candidates}: neither a file nor a stored candidate pool")
    return validate_pool(stored, family, f"pool {candidates}", space)


def _pool_space(space: CandidateSpace, pool: pd.DataFrame) -> CandidateSpace:
    """The space restricted to the pool's process columns (the others held at the space's fixed values)."""
    process = {k: d for k, d in space.process.items() if k in pool.columns}
    return CandidateSpace(space.family, space.parameters, process, space.tolerance_factor, space.exclude_elements,
                          space.sampling, space.n_samples, space.seed,
                          tuple(c for c in space.linear if all(n in [*space.parameters, *process] for n in c.names)),
                          tuple((k, v) for k, v in space.fixed if k in process))


def _widen_to_pool(domain: Domain, pool: pd.DataFrame) -> Domain:
    """Pool rows may lie outside the default ranges (a pool is the lab's own list): the domain's
    variables span the pool too, and its grid-free variables keep no lattice."""
    variables = []
    for v in domain.variables:
        col = pool[v.name] if v.name in pool.columns else None
        lo = min(v.lo, float(col.min())) if col is not None else v.lo
        hi = max(v.hi, float(col.max())) if col is not None else v.hi
        variables.append(Variable(v.name, lo, hi, resolution=None, values=None))
    return Domain(variables, domain.constraints, domain.fixed, domain.accept, domain.family)


# --- status --------------------------------------------------------------------------------------------


@dataclass
class Status:
    """What matdb will do for a family and objectives: a model, or an initial design."""

    family: str
    objectives: list[Objective]
    n_results: dict[str, int]
    mode: str  # "model" or "initial_design"
    message: str


def status(db: Database, family: str, objectives: Sequence[str | Objective], *, include_simulated: bool = False,
           stability_metric: str | None = None) -> Status:
    fam = _family(db, family)
    objs = objectives_of(db, family, objectives, stability_metric=stability_metric)
    ts = training_set(db, fam, objs, default_space(fam), include_simulated)
    counts = {o.name: ts.n_results(o) for o in objs}
    few = [o for o in objs if counts[o.name] < MIN_MODEL_POINTS]
    if few:
        msg = (", ".join(f"{counts[o.name]} result(s) for {o.name}" for o in few)
               + f": fewer than {MIN_MODEL_POINTS}, so the next batch is a space-filling initial design over the "
               "family's feasible compositions (away from what was made); a model takes over from "
               f"{MIN_MODEL_POINTS} results on.")
        return Status(family, objs, counts, "initial_design", msg)
    return Status(family, objs, counts, "model", ", ".join(f"{n} results for {k}" for k, n in counts.items())
                  + ": a surrogate model chooses the next batch.")


# --- training -------------------------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """A surrogate of one objective with its card, trained on ``variables`` of its family."""

    surrogate: Surrogate
    objective: Objective
    family: str
    variables: list[str]
    input_bounds: tuple[np.ndarray, np.ndarray]
    train: TrainingSet
    include_simulated: bool
    name: str
    data_hash: str

    @property
    def card(self) -> dict[str, Any]:
        card = dict(self.surrogate.card_)
        card.update({
            "name": self.name,
            "target_name": self.objective.name,
            "quantity": self.objective.quantity,
            "objective": self.objective.to_dict(),
            "direction": self.objective.direction,
            "families": [self.family],
            "variables": list(self.variables),
            "held_fixed": self.train.held,
            "include_simulated": self.include_simulated,
            "training_provenance": sorted({p for s in self.train.provenance for p in s.split(",") if p}),
            "data_hash": self.data_hash,
        })
        return card

    def predict(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.surrogate.predict(df[self.variables].to_numpy(float), return_std=True)


_MODELS: dict[tuple[str, str], TrainedModel] = {}


def _bounds(db: Database, o: Objective) -> tuple[float, float | None] | None:
    q = {**vocabulary.QUANTITIES, **db.quantities()}.get(o.quantity)
    if q is None or q.min is None:
        return None if q is None or q.max is None else (-math.inf, q.max)
    return (q.min, q.max)


def _precision(db: Database, o: Objective) -> float | None:
    q = {**vocabulary.QUANTITIES, **db.quantities()}.get(o.quantity)
    return None if q is None else q.precision


def train(db: Database, target: str | Objective, family: str, kind: str = "auto", include_simulated: bool = False,
          *, stability_metric: str | None = None, save: bool = True, space: Any = None,
          together_with: Sequence[Objective] = ()) -> TrainedModel:
    """Train a surrogate of ``target`` for ``family`` — or reuse the stored one while its training
    data, features and settings are unchanged — and store it with its card.

    ``together_with`` are objectives ranked with this one: the variables are chosen on all their
    results, so every model of a ranking sees the same variables."""
    if family is None:
        raise ScreeningError("choose a family (--family): a model learns one family's compositions")
    kind = {"rf": "forest", "random_forest": "forest"}.get(kind, kind)
    if kind not in ("auto", "gp", "forest"):
        raise ScreeningError(f"unknown model kind '{kind}': use auto, gp or forest")
    fams = db.families()
    fam = _family(db, family, fams)
    (o,) = objectives_of(db, family, [target], stability_metric=stability_metric)
    sp = _space(db, fam, space, None, fams)
    ts = training_set(db, fam, [o, *[t for t in together_with if t.name != o.name]], sp, include_simulated)
    y = ts.Y[o.name]
    ok = np.isfinite(y)
    if ok.sum() < MIN_MODEL_POINTS:
        raise TooFewResults(
            f"{int(ok.sum())} result(s) for {o.name} in {family}: a model needs at least {MIN_MODEL_POINTS}"
            + ("" if include_simulated else " (simulated data are left out unless asked for)")
            + "; propose gives a space-filling initial design meanwhile")
    variables = [v for v in ts.variables if v not in ts.held]
    X = ts.X.loc[ok, variables].to_numpy(float)
    dom = sp.domain()
    lo = np.array([dom.lo[dom.names.index(v)] for v in variables])
    hi = np.array([dom.hi[dom.names.index(v)] for v in variables])
    lo, hi = np.minimum(lo, X.min(axis=0)), np.maximum(hi, X.max(axis=0))
    settings = json.dumps({"kind": kind, "objective": o.to_dict(), "variables": variables, "lo": lo.tolist(),
                           "hi": hi.tolist(), "simulated": include_simulated, "format": 2}, sort_keys=True)
    data_hash = hashlib.sha256((training_hash(X, y[ok]) + settings).encode()).hexdigest()
    cache_key = (db.url, data_hash)
    if cache_key in _MODELS:
        return _MODELS[cache_key]
    found = store.find_model(db, data_hash)
    sur = None
    name = ""
    if found is not None:
        blob = store.load_model_blob(db, found["name"])
        try:
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp) / "model.skops"
                p.write_bytes(blob or b"")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sur = load_surrogate(p)
            name = found["name"]
        except Exception:  # an unreadable stored model is retrained, not fatal
            sur = None
    if sur is None:
        from screening.surrogate import SurrogateError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sur = Surrogate(kind=kind, target=o.quantity, bounds=_bounds(db, o), input_bounds=(lo, hi),  # type: ignore[arg-type]
                                noise=_precision(db, o), feature_names=variables, random_state=0).fit(X, y[ok])
        except SurrogateError as exc:
            raise ScreeningError(f"{o.name} in {family}: {exc}") from None
        name = f"{o.name}:{family}:{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
    model = TrainedModel(sur, o, family, variables, (lo, hi), ts, include_simulated, name, data_hash)
    if save and found is None and not access.read_only(db):  # a reader ranks without storing
        with tempfile.TemporaryDirectory() as tmp:
            blob = sur.save(Path(tmp) / "model.skops").read_bytes()
        store.save_model(db, name=name, target=o.name, data_hash=data_hash, card=_jsonable(model.card), blob=blob,
                         families=fams, family_slugs=[family])
    _MODELS[cache_key] = model
    return model


def saved_models(db: Database) -> pd.DataFrame:
    return store.saved_models(db)


def _jsonable(o: Any) -> Any:
    if isinstance(o, Mapping):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return [_jsonable(v) for v in o.tolist()]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


# --- ranking --------------------------------------------------------------------------------------------


def rank(db: Database, family: str, objectives: Sequence[str | Objective] = ("plqy",), n: int = 50,
         space: Any = None, *, candidates: Any = None, weights: Sequence[float] | None = None,
         acquisition: str = "ucb", include_simulated: bool = False, kind: str = "auto",
         backend: str = "numpy", chunk_size: int = 100_000, scheduler: str | None = None,
         stability_metric: str | None = None, fixed: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Rank the family's candidate space (or a candidate pool) by the surrogates' predictions.

    ``backend="dask"`` scores the chunks on a dask.distributed cluster: the one at ``scheduler``
    (e.g. "tcp://10.0.0.5:8786"), else a local one. Returns the top ``n`` not yet made, best first,
    with ``<objective>_mean/_std``, the acquisition and a Pareto flag.
    """
    from screening.candidates import CandidateSpaceError

    if backend not in ("numpy", "dask"):
        raise ScreeningError(f"unknown backend '{backend}': use numpy or dask")
    fams = db.families()
    fam = _family(db, family, fams)
    objs = objectives_of(db, family, objectives, weights=weights, stability_metric=stability_metric)
    sp = _space(db, fam, space, fixed, fams)
    pool = _pool(db, candidates, fam, sp)
    models = {o.name: train(db, o, family, kind, include_simulated, space=space, together_with=objs) for o in objs}
    variables = next(iter(models.values())).variables
    for m in models.values():
        if m.variables != variables:
            raise ScreeningError("the objectives' models use different variables; rank them one at a time")
    held = next(iter(models.values())).train.held

    def featurize(df: pd.DataFrame) -> np.ndarray:
        cols = {v: (df[v].to_numpy(float) if v in df.columns else np.full(len(df), held.get(v, np.nan)))
                for v in variables}
        return np.column_stack([cols[v] for v in variables])

    ts = next(iter(models.values())).train
    made = ts.X.assign(family=family)
    client = None
    if backend == "dask" and scheduler:
        from distributed import Client

        try:
            client = Client(scheduler, timeout=10)
        except OSError as exc:
            raise ScreeningError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    try:
        if pool is not None:
            pool_sp = _pool_space(sp, pool)
            rows = pool.assign(family=family, candidate_id=np.arange(len(pool)))
            df = _rank_rows(models, featurize, rows, pool_sp, objs, n, acquisition, made)
        else:
            df = rank_candidates({o: m.surrogate for o, m in models.items()}, featurize, sp, chunk_size=chunk_size,
                                 top_k=n, weights=[o.weight for o in objs], backend=backend,  # type: ignore[arg-type]
                                 acquisition=acquisition, made=made, client=client,  # type: ignore[arg-type]
                                 objectives={o.name: o for o in objs})
    except CandidateSpaceError as exc:
        raise ScreeningError(str(exc)) from None
    finally:
        if client is not None:
            client.close()
    df = df.copy()
    df["formula"] = [fam.formula({p: r[p] for p in fam.parameters}) for _, r in df.iterrows()]
    df.attrs["objectives"] = [o.to_dict() for o in objs]
    return df


def _rank_rows(models: Mapping[str, TrainedModel], featurize: Any, rows: pd.DataFrame, space: CandidateSpace,
               objs: Sequence[Objective], n: int, acquisition: str, made: pd.DataFrame) -> pd.DataFrame:
    """Rank the rows of a candidate pool (each row exactly as given)."""
    from screening.candidates import CandidateSpaceError

    ok = space.valid_mask(rows)
    rows = rows[ok].reset_index(drop=True)
    if not len(rows):
        raise CandidateSpaceError("no row of the candidate pool satisfies the space's constraints", "candidates")

    class _Rows:  # the shape rank_candidates needs: chunks of one in-memory frame
        def __init__(self) -> None:
            self.family, self.columns, self.size = space.family, list(space.columns), len(rows)

        def empty_reason(self) -> None:
            return None

        def chunk(self, start: int, stop: int) -> pd.DataFrame:
            return rows.iloc[start:stop].reset_index(drop=True)

    from screening.candidates import rank_candidates as _rank

    return _rank({o: m.surrogate for o, m in models.items()}, featurize, [_Rows()], top_k=n,  # type: ignore[list-item]
                 weights=[o.weight for o in objs], acquisition=acquisition, made=made,  # type: ignore[arg-type]
                 objectives={o.name: o for o in objs})


# --- proposals -----------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A proposed batch: the campaign, the plan table (as written to plan.csv), how it was chosen."""

    campaign: str
    table: pd.DataFrame
    design: str
    objectives: list[Objective]
    messages: list[str]
    milling: pd.DataFrame | None = None


def _pred_header(o: Objective, what: str) -> str:
    unit = display_unit(o.unit)
    return f"pred_{o.name}_{what}" + (f" [{unit}]" if unit else "") + f" ({o.describe})"


def result_header(o: Objective) -> str:
    """The plan column a chemist fills in: ``quantity [unit]`` as the table reader reads it."""
    return f"{o.quantity} [{display_unit(o.unit) or '1'}]"


def propose(db: Database, family: str, objectives: Sequence[str | Objective] = ("plqy",), n: int = 8, *,
            space: Any = None, candidates: Any = None, weights: Sequence[float] | None = None,
            include_simulated: bool = False, slots: int | None = None, shared: Sequence[str] = (),
            fixed: Mapping[str, float] | None = None, trust_region: float | None = None,
            out: str | Path | None = None, batch_mass_mg: float | None = None,
            stability_metric: str | None = None, seed: int = 0) -> Plan:
    """Propose the next ``n`` experiments for ``family``, record them as a campaign, write ``out``.

    With fewer than ``MIN_MODEL_POINTS`` results for an objective the batch is a space-filling
    initial design; otherwise the model-based proposer (see :mod:`screening.optimizer`).
    ``candidates`` (a file or a stored pool's key) restricts proposals to those rows; ``slots`` and
    ``shared`` shape the batch into runs (``--slots 2 --shared milling_time_min``); ``fixed`` pins
    variables; ``trust_region`` keeps proposals near the data.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ScreeningError(f"the batch size must be a positive integer, got {n!r}")
    fams = db.families()
    fam = _family(db, family, fams)
    objs = objectives_of(db, family, objectives, weights=weights, stability_metric=stability_metric)
    sp = _space(db, fam, space, fixed, fams)
    pool = _pool(db, candidates, fam, sp)
    if pool is not None:
        sp = _pool_space(sp, pool)
    ts = training_set(db, fam, objs, sp, include_simulated)
    for k, v in ts.held.items():
        if k not in dict(sp.fixed):
            sp = CandidateSpace(sp.family, sp.parameters, sp.process, sp.tolerance_factor, sp.exclude_elements,
                                sp.sampling, sp.n_samples, sp.seed, sp.linear, (*sp.fixed, (k, v)))
    domain = sp.domain()
    if pool is not None:
        domain = _widen_to_pool(domain, pool)
        for k, v in domain.fixed.items():
            if k not in pool.columns:
                pool = pool.assign(**{k: v})
    made = ts.X
    try:
        sug = suggest(domain, ts.X, ts.Y, objs, n, feasible=ts.feasible, pool=pool, made=made, slots=slots,
                      shared=shared, trust_region=trust_region, bounds={o.name: _bounds(db, o) for o in objs},
                      noise={o.name: _precision(db, o) for o in objs}, seed=seed)
    except OptimizerError as exc:
        raise ScreeningError(str(exc)) from None
    table = sug.table
    messages = [*ts.messages, *sug.messages]
    kinetics = _milling_advice(db, fam, table, include_simulated)
    now = datetime.now(UTC)
    ckey = f"c{now.strftime('%Y%m%d%H%M%S%f')}-{family}"
    plan = pd.DataFrame({
        "proposal_id": [f"{ckey}-{i + 1:02d}" for i in range(len(table))],
        "campaign": ckey,
        "design": table["design"].to_numpy(),
        "run": table["run"].to_numpy() if slots else np.full(len(table), np.nan),
        "family": family,
        "formula": [fam.formula({p: float(r[p]) for p in fam.parameters}) for _, r in table.iterrows()],
    })
    for name in domain.names:
        plan[name] = table[name].to_numpy(float)
    for o in objs:
        plan[_pred_header(o, "mean")] = table.get(f"{o.name}_mean", np.nan)
        plan[_pred_header(o, "std")] = table.get(f"{o.name}_std", np.nan)
    plan["pred_p_feasible"] = table["p_feasible"].to_numpy()
    plan["pred_extrapolation"] = table["extrapolation"].to_numpy()
    plan["pred_extrapolating"] = table["extrapolating"].to_numpy()
    for k, v in kinetics.items():
        plan[k] = v
    plan["acquisition"] = table["acquisition"].to_numpy()
    for o in objs:
        plan[result_header(o)] = np.nan
    plan["outcome"] = None  # for a synthesis that failed (matdb.vocabulary.OUTCOMES); empty: it worked
    settings = {"n": int(n), "space": sp.to_dict(), "include_simulated": include_simulated, "slots": slots,
                "shared": list(shared), "fixed": dict(fixed or {}), "trust_region": trust_region,
                "candidates": None if candidates is None else str(candidates) if not isinstance(
                    candidates, pd.DataFrame) else f"{len(candidates)} rows", "seed": seed, "design": sug.design,
                "messages": messages}
    proposals = []
    for i, (_, r) in enumerate(plan.iterrows()):
        preds: dict[str, Any] = {o.name: {"mean": _f(r[_pred_header(o, "mean")]), "std": _f(r[_pred_header(o, "std")])}
                                 for o in objs}
        preds.update({"p_feasible": _f(r["pred_p_feasible"]), "extrapolation": _f(r["pred_extrapolation"]),
                      **{k: _f(r[k]) for k in kinetics}})
        proposals.append({"key": r["proposal_id"], "rank": i + 1, "run": None if not slots else int(r["run"]),
                          "design": sug.design, "formula": r["formula"],
                          "params": {v: float(r[v]) for v in domain.names}, "predictions": _jsonable(preds),
                          "acquisition": _f(r["acquisition"])})
    store.save_campaign(db, key=ckey, family=fam, objectives=[o.to_dict() for o in objs], settings=_jsonable(settings),
                        model_cards={}, proposals=proposals)
    mp = milling_plan(db, plan, batch_mass_mg) if batch_mass_mg else None
    if out is not None:
        write_plan(plan, out)
        if mp is not None:
            mp.to_csv(Path(out).with_name(Path(out).stem + "_milling.csv"), index=False)
    return Plan(ckey, plan, sug.design, objs, messages, mp)


def _f(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def write_plan(plan: pd.DataFrame, out: str | Path) -> Path:
    """plan.csv: one row per proposal; fill in the result columns (and ``outcome`` for a failed
    synthesis) and load it with ``matdb ingest``."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    plan.to_csv(path, index=False)
    return path


def _milling_advice(db: Database, fam: Family, table: pd.DataFrame, include_simulated: bool) -> dict[str, Any]:
    """Recommended milling time (steady state / formation time from TLIS kinetics, modelled over
    composition) and the predicted onset of a decay, when the family has enough analysed runs."""
    out: dict[str, Any] = {}
    params = list(fam.parameters)
    for quantity, col in (("steady_state_time", "pred_milling_time_min"), ("decay_onset_time", "pred_decay_onset_min")):
        df = db.results(quantity=quantity, family=fam.slug, provenance=_provenances(include_simulated))
        df = df[df["value"].notna()] if len(df) else df
        if len(df) == 0:
            continue
        X = np.array([[float(p.get(k, np.nan)) for k in params] for p in df["composition_params"]])
        y = df["value"].to_numpy(float)
        keep = np.isfinite(X).all(axis=1)
        X, y = X[keep], y[keep]
        if len({tuple(r) for r in X}) < MIN_MODEL_POINTS:
            continue
        lo = np.array([fam.parameters[k].min for k in params])
        hi = np.array([fam.parameters[k].max for k in params])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Surrogate(kind="gp", target=quantity, bounds=(0.0, None), input_bounds=(lo, hi), cv=False,
                          feature_names=params).fit(X, y)
            mu, sd = s.predict(table[params].to_numpy(float), return_std=True)
        out[col] = mu
        out[col.replace("_min", "_std_min")] = sd
    return out


def campaigns(db: Database) -> pd.DataFrame:
    """Every proposal of every campaign (status proposed/made)."""
    return store.campaign_rows(db)


def milling_plan(db: Database, plan: pd.DataFrame, batch_mass_mg: float) -> pd.DataFrame:
    """Precursor masses (mg) for ``batch_mass_mg`` of each proposed composition, by run."""
    from pymatgen.core import Composition

    if not (isinstance(batch_mass_mg, (int, float)) and math.isfinite(batch_mass_mg) and batch_mass_mg > 0):
        raise ScreeningError(f"batch mass must be a positive number of mg, got {batch_mass_mg!r}")
    fams = db.families()
    rows = []
    for _, r in plan.iterrows():
        fam = fams[r["family"]]
        params = {p: float(r[p]) for p in fam.parameters} if all(p in r for p in fam.parameters) else {
            k: v for k, v in (json.loads(r["params"]) if isinstance(r["params"], str) else dict(r["params"])).items()
            if k in fam.parameters}
        if not fam.precursors:
            raise ScreeningError(f"family {fam.slug} defines no precursors; add them to its definition")
        amounts = fam.precursor_moles(params)
        neg = [k for k, v in amounts.items() if v < -1e-12]
        if neg:
            raise ScreeningError(
                f"{r['formula']}: precursor route of {fam.slug} gives negative amounts of "
                f"{', '.join(neg)}; define another precursor set for this composition range"
            )
        mw = {}
        for p in fam.precursors:
            try:
                mw[p.name] = float(Composition(p.formula).weight)
            except Exception:  # a formula pymatgen cannot read ("agZIF-62"): mass basis only
                mw[p.name] = math.nan
        mol_basis = [p for p in fam.precursors if p.basis == "mol"]
        m_fu = sum(amounts[p.name] * mw[p.name] for p in mol_basis)
        run = r.get("run")
        for p in fam.precursors:
            a = amounts[p.name]
            if abs(a) < 1e-12:  # 1 - a - b at a site's end: round-off, not a negative amount
                a = 0.0
            if p.basis == "mass":
                mass = a * batch_mass_mg
                mmol = mass / mw[p.name] if math.isfinite(mw[p.name]) else math.nan
            else:
                n_fu = batch_mass_mg / m_fu  # mmol of formula units (mg / g mol-1)
                mmol = a * n_fu
                mass = mmol * mw[p.name]
            rows.append({"run": run if run is not None and not (isinstance(run, float) and math.isnan(run)) else None,
                         "proposal_id": r.get("proposal_id"), "formula": r["formula"], "precursor": p.name,
                         "precursor_formula": p.formula, "molar_mass_g_per_mol": mw[p.name], "amount_mmol": mmol,
                         "mass_mg": mass})
    return pd.DataFrame(rows)


# --- model predictions over composition maps ------------------------------------------------------------


def predict_grid(db: Database, family: str, target: str, axes: Sequence[str], n: int = 41,
                 include_simulated: bool = False, kind: str = "auto") -> pd.DataFrame:
    """Model mean, std and the central 68 % interval (lo68, hi68; asymmetric for bounded targets)
    over a grid of one or two axes (composition or process variables); the other variables at the
    median of the training data."""
    model = train(db, target, family, kind, include_simulated)
    fam = _family(db, family)
    X = model.train.X
    lo, hi = model.input_bounds
    grids = {}
    for a in axes:
        if a not in model.variables:
            raise ScreeningError(f"'{a}' is not a variable of the {family} model ({', '.join(model.variables)})")
        i = model.variables.index(a)
        grids[a] = np.linspace(lo[i], hi[i], n)
    mesh = np.meshgrid(*grids.values(), indexing="ij")
    df = pd.DataFrame({a: m.ravel() for a, m in zip(grids, mesh, strict=True)})
    df.insert(0, "family", family)
    for v in model.variables:
        if v not in df:
            df[v] = float(X[v].median())
    for p in fam.parameters:
        if p not in df:
            df[p] = float(X[p].median()) if p in X else (fam.parameters[p].min + fam.parameters[p].max) / 2
    df["mean"], df["std"] = model.predict(df)
    lo68, hi68 = model.surrogate.predict_interval(df[model.variables].to_numpy(float), 0.68)
    df["lo68"], df["hi68"] = lo68, hi68
    return df


def pool_bytes(df: pd.DataFrame) -> bytes:
    """A pool as CSV bytes (for downloads)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue().encode()


# --- for the Screening page -----------------------------------------------------------------------------


def objective_choices(db: Database, family: str) -> pd.DataFrame:
    """Quantities that can be objectives for ``family``: numeric ones with results in the family,
    every declared quantity, and the family's stability metric; with label, unit, default direction
    and the number of results."""
    quantities = {**vocabulary.QUANTITIES, **db.quantities()}
    counts = store.numeric_quantities(db, family)
    n_by = dict(zip(counts["quantity"], counts["n"], strict=True)) if len(counts) and "n" in counts else {}
    names = [*n_by, *[q for q, d in db.quantities().items() if not d.categorical and q not in n_by]]
    rows = [{"quantity": q, "label": quantities[q].axis_label if q in quantities else q,
             "direction": quantities[q].direction if q in quantities else None, "n": int(n_by.get(q, 0))}
            for q in names if q in quantities and not quantities[q].categorical]
    rows.append({"quantity": "stability", "label": "Stability (the family's metric)", "direction": "max",
                 "n": None})
    return pd.DataFrame(rows, columns=["quantity", "label", "direction", "n"])


def pool_from_upload(name: str, data: bytes, family: str, db: Database) -> pd.DataFrame:
    """A pool uploaded on the page (file name for its type), checked like a pool file."""
    suffix = Path(name).suffix.lower()
    if len(data) > MAX_POOL_MB * 2**20:
        raise ScreeningError(f"{name}: larger than {MAX_POOL_MB} MB, the limit for a candidate pool")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"upload{suffix}"
        p.write_bytes(data)
        try:
            return read_pool(p, _family(db, family))
        except ScreeningError as exc:
            raise ScreeningError(str(exc).replace(str(p), name)) from None


def store_uploaded_pool(db: Database, name: str, rows: pd.DataFrame, family: str) -> str:
    key = Path(name).stem
    if key in set(store.pools(db)["key"]):
        raise ScreeningError(f"a candidate pool named '{key}' exists already")
    return store.save_pool(db, key=key, family=_family(db, family), rows=rows, source_file=name)


def stored_pools(db: Database, family: str) -> pd.DataFrame:
    return store.pools(db, family)


def space_variables(db: Database, family: str) -> list[str]:
    """The variables of the family's default space (composition parameters, process variables)."""
    return list(default_space(_family(db, family)).columns)
