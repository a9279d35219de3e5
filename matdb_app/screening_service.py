"""Screening services: train surrogates on the database, rank candidates, propose and record
the next experiments (campaigns), milling plans, and model predictions over composition grids.

Training data are literature and measured results only, unless ``include_simulated=True``:
simulated rows never enter a model silently, and a model trained with them says so in its card.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from matdb import models as M
from matdb import units, vocabulary
from matdb.db import Database
from matdb.families import Family

#: Composition descriptors the models see (constant columns in the training data are dropped).
COMPOSITION_FEATURES = (
    "r_A",
    "r_B",
    "r_X",
    "tolerance_factor",
    "octahedral_factor",
    "bartel_tau",
    "mixing_entropy_total",
    "size_mismatch_A",
    "size_mismatch_B",
    "halide_fraction_I",
    "halide_fraction_Br",
    "halide_fraction_Cl",
    "formula_electronegativity_mean",
    "perovskite_mass_fraction",
)
#: Process variables (candidate-space names) a model may use when its training data have them.
PROCESS_FEATURES = ("milling_time_min", "aging_time_h", "additive_mol_pct", "sintering_temperature_C")
#: A process variable becomes a feature when at least this fraction of training rows report it.
PROCESS_COVERAGE = 0.5
MIN_TRAINING_POINTS = 3


class ScreeningError(ValueError):
    """A screening request that cannot be served (no data, unknown target, ...)."""


@dataclass
class TargetSpec:
    """What a model learns: the stored quantity (and label), and the direction that is better."""

    name: str  # "plqy", "stability", or any quantity
    quantity: str
    label: str | None
    direction: str  # "higher" | "lower"
    unit: str


def resolve_target(target: str, family: str | None, stability_metric: str | None = None) -> TargetSpec:
    """Map a target name to the stored quantity. "stability" is the family's stability metric."""
    if target == "stability":
        from screening.stability import stability_metric_for

        if family is None:
            raise ScreeningError(
                "the 'stability' target depends on the family (its stability metric); choose a family (--family)"
            )
        m = stability_metric_for(family, stability_metric)
        label = m.name if m.quantity in ("ratio", "energy", "relative_energy") else None
        return TargetSpec("stability", m.quantity, label, m.direction, m.unit)
    try:
        q = vocabulary.quantity_def(target)
    except units.UnitError as exc:
        raise ScreeningError(f"unknown target '{target}': use plqy, stability or a quantity name") from exc
    if q.categorical:
        raise ScreeningError(f"'{target}' is categorical; a surrogate needs a numeric target")
    return TargetSpec(target, target, None, "higher", q.unit)


def _provenances(include_simulated: bool) -> list[str]:
    return ["literature", "measured", "simulated"] if include_simulated else ["literature", "measured"]


def training_frame(
    db: Database,
    target: str,
    family: str | Sequence[str] | None = None,
    *,
    include_simulated: bool = False,
    stability_metric: str | None = None,
) -> pd.DataFrame:
    """One row per distinct (family, composition, process) with the mean measured target value."""
    fams = [family] if isinstance(family, str) else (list(family) if family else None)
    frames = []
    for fam in fams or [None]:
        spec = resolve_target(target, fam, stability_metric)
        df = db.results(quantity=spec.quantity, family=fam, provenance=_provenances(include_simulated))
        if spec.label is not None and not df.empty:
            df = df[(df["label"] == spec.label) | df["label"].isna()]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if df.empty or df["value"].notna().sum() == 0:
        where = f" for {', '.join(fams)}" if fams else ""
        extra = (
            ""
            if include_simulated
            else (" (simulated data are excluded unless asked for: --include-simulated / 'use simulated data')")
        )
        raise ScreeningError(f"no numeric '{target}' results{where} to train on{extra}")
    df = df[df["value"].notna()].copy()
    df["key"] = [
        f"{f}|{json.dumps(c, sort_keys=True)}|{json.dumps(_num_process(p), sort_keys=True)}"
        for f, c, p in zip(df["family"], df["composition_params"], df["process"], strict=True)
    ]
    rows = []
    for _key, g in df.groupby("key", sort=True):
        first = g.iloc[0]
        rows.append(
            {
                "family": first["family"],
                "params": first["composition_params"],
                "process": _num_process(first["process"]),
                "y": float(g["value"].mean()),
                "n_results": len(g),
                "provenance": ",".join(sorted(set(g["provenance"]))),
                "samples": ",".join(sorted({str(s) for s in g["sample_id"] if isinstance(s, str)})),
            }
        )
    return pd.DataFrame(rows)


def _num_process(p: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in (p or {}).items()
        if k in PROCESS_FEATURES and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def candidate_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Flatten a training frame (params/process dicts) into candidate-style columns."""
    out = pd.DataFrame({"family": rows["family"].to_numpy()})
    keys = sorted({k for d in rows["params"] for k in d})
    for k in keys:
        out[k] = [d.get(k, np.nan) for d in rows["params"]]
    for k in PROCESS_FEATURES:
        vals = [d.get(k, np.nan) for d in rows["process"]]
        if not all(isinstance(v, float) and math.isnan(v) for v in vals):
            out[k] = vals
    return out


@dataclass
class FeatureSpec:
    """Which descriptors and process variables a model uses, with fill values for missing ones."""

    descriptors: tuple[str, ...]
    process: tuple[str, ...]
    fill: dict[str, float]

    def featurize(self, df: pd.DataFrame, families: Mapping[str, Family] | None = None) -> np.ndarray:
        from screening.candidates import DescriptorFeaturizer

        work = df.copy()
        for p in self.process:
            if p not in work.columns:
                work[p] = self.fill[p]
            work[p] = pd.to_numeric(work[p], errors="coerce").fillna(self.fill[p])
        for p in PROCESS_FEATURES:
            if p not in self.process and p in work.columns:
                work = work.drop(columns=p)
        X = DescriptorFeaturizer(self.descriptors, fill_value=0.0, families=families)(work)
        return X

    @property
    def names(self) -> list[str]:
        return list(self.descriptors)


def choose_features(train: pd.DataFrame, families: Mapping[str, Family] | None = None) -> FeatureSpec:
    """Descriptors that vary in the training data, plus well-covered process variables."""
    cand = candidate_frame(train)
    process, fill = [], {}
    for p in PROCESS_FEATURES:
        if p in cand.columns:
            col = pd.to_numeric(cand[p], errors="coerce")
            if col.notna().mean() >= PROCESS_COVERAGE and col.nunique() > 1:
                process.append(p)
                fill[p] = float(col.median())
    descs = list(COMPOSITION_FEATURES) + list(process)
    spec = FeatureSpec(tuple(descs), tuple(process), fill)
    X = spec.featurize(cand, families)
    keep = [i for i in range(X.shape[1]) if np.nanstd(X[:, i]) > 1e-12]
    if not keep:
        keep = [0]
    return FeatureSpec(tuple(descs[i] for i in keep), tuple(process), fill)


# --- training ---------------------------------------------------------------------------------


@dataclass
class TrainedModel:
    surrogate: Any
    spec: TargetSpec
    features: FeatureSpec
    families: list[str]
    train: pd.DataFrame
    include_simulated: bool

    @property
    def card(self) -> dict[str, Any]:
        card = dict(self.surrogate.card)
        card.update(
            {
                "target_name": self.spec.name,
                "quantity": self.spec.quantity,
                "direction": self.spec.direction,
                "families": self.families,
                "process_features": list(self.features.process),
                "process_fill": self.features.fill,
                "include_simulated": self.include_simulated,
                "training_provenance": sorted({p for s in self.train["provenance"] for p in s.split(",")}),
            }
        )
        return card

    def predict(
        self, cands: pd.DataFrame, families: Mapping[str, Family] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        X = self.features.featurize(cands, families)
        mean, std = self.surrogate.predict(X, return_std=True)
        return self._orient(mean), std

    def _orient(self, v: np.ndarray) -> np.ndarray:
        return -v if self.spec.direction == "lower" else v


_MODEL_CACHE: dict[tuple[Any, ...], TrainedModel] = {}


def train(
    db: Database,
    target: str,
    family: str | Sequence[str] | None = None,
    kind: str = "auto",
    include_simulated: bool = False,
    *,
    stability_metric: str | None = None,
    save: bool = False,
    random_state: int = 0,
    features: FeatureSpec | None = None,
) -> TrainedModel:
    """Train (or reuse, if the training data are unchanged) a surrogate for ``target``.

    ``features`` fixes the feature set (several objectives ranked together share one)."""
    from screening.surrogate import SurrogateError, train_surrogate

    kind = {"rf": "forest", "random_forest": "forest", "extra_trees": "forest"}.get(kind, kind)
    fams_map = db.families()
    tr = training_frame(db, target, family, include_simulated=include_simulated, stability_metric=stability_metric)
    if len(tr) < MIN_TRAINING_POINTS:
        raise ScreeningError(
            f"only {len(tr)} distinct compositions/processes with '{target}' results; a surrogate needs at "
            f"least {MIN_TRAINING_POINTS} (ingest more data, or --include-simulated for simulated campaigns)"
        )
    spec = resolve_target(target, tr["family"].iloc[0] if target == "stability" else None, stability_metric)
    feats = features or choose_features(tr, fams_map)
    X = feats.featurize(candidate_frame(tr), fams_map)
    y = tr["y"].to_numpy(float)
    y_fit = -y if spec.direction == "lower" else y
    fam_list = sorted(set(tr["family"]))
    key = (
        db.url,
        target,
        tuple(fam_list),
        kind,
        include_simulated,
        stability_metric,
        hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest(),
        feats.descriptors,
    )
    if key in _MODEL_CACHE and not save:
        return _MODEL_CACHE[key]
    groups = tr["family"].to_numpy() if len(fam_list) > 1 else None
    bounded: Any = "auto" if spec.direction == "higher" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sur = train_surrogate(
                X,
                y_fit,
                feature_names=feats.names,
                target=spec.quantity,
                groups=groups,
                kind=kind,
                bounded=bounded,
                random_state=random_state,
            )  # type: ignore[arg-type]
    except SurrogateError as exc:
        raise ScreeningError(str(exc)) from None
    model = TrainedModel(sur, spec, feats, fam_list, tr, include_simulated)
    _MODEL_CACHE[key] = model
    if save:
        save_model(db, model)
    return model


def save_model(db: Database, model: TrainedModel) -> str:
    """Store the model (skops bytes, no pickle) and its card in the database; return its name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{model.spec.name}:{'+'.join(model.families)}:{stamp}"
    with tempfile.TemporaryDirectory() as tmp:
        path = model.surrogate.save(Path(tmp) / "model.skops")
        blob = path.read_bytes()
    card = _jsonable(model.card)
    card["feature_spec"] = {
        "descriptors": list(model.features.descriptors),
        "process": list(model.features.process),
        "fill": model.features.fill,
    }
    from matdb.store import ensure_family

    fams = db.families()
    with db.transaction() as s:
        row = M.SavedModel(name=name, target=model.spec.name, data_hash=card.get("training_data_sha256", ""),
                           card=card, blob=blob)
        s.add(row)
        s.flush()
        for f in model.families:
            s.add(M.SavedModelFamily(model_id=row.id, family_id=ensure_family(s, fams[f])))
    return name


def saved_models(db: Database) -> pd.DataFrame:
    with db.session() as s:
        rows = s.execute(
            select(
                M.SavedModel.name,
                M.SavedModel.target,
                M.SavedModel.data_hash,
                M.SavedModel.created_at,
                M.SavedModel.card,
            ).order_by(M.SavedModel.id)
        ).all()
    return pd.DataFrame(
        [
            {
                "name": r[0],
                "target": r[1],
                "families": "+".join(r[4].get("families") or []),
                "created_at": r[3],
                "kind": r[4].get("kind"),
                "n_train": r[4].get("n_train"),
                "cv_rmse": (r[4].get("cv") or {}).get("rmse"),
            }
            for r in rows
        ]
    )


def load_model(db: Database, name: str) -> Any:
    """Load a stored surrogate (refuses untrusted content, see screening.surrogate)."""
    from screening.surrogate import load_surrogate

    with db.session() as s:
        row = s.scalar(select(M.SavedModel).where(M.SavedModel.name == name))
        if row is None:
            raise ScreeningError(f"no saved model '{name}'")
        blob = row.blob
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "model.skops"
        p.write_bytes(blob)
        return load_surrogate(p)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


# --- candidates, ranking, proposals -------------------------------------------------------------


def _space(
    db: Database,
    family: str,
    space: str | Path | Mapping[str, Any] | None,
    models: Sequence[TrainedModel],
    constraints: Mapping[str, Any] | None = None,
) -> Any:
    from screening.candidates import Dimension, default_space, load_spaces, space_from_dict

    fams = db.families()
    if space is None:
        sp = default_space(fams[family] if family in fams else family, **dict(constraints or {}))
    elif isinstance(space, Mapping):
        sp = space_from_dict(space, fams)
    else:
        spaces = load_spaces(space, fams)
        spaces = [s for s in (spaces if isinstance(spaces, list) else [spaces]) if s.family.slug == family]
        if not spaces:
            raise ScreeningError(f"the space file {space} has no space for family {family}")
        sp = spaces[0]
    used = set().union(*(m.features.process for m in models))
    # process variables no model uses cannot be ranked; they are left out of the candidates
    process = {k: v for k, v in sp.process.items() if k in used}
    for k in used - set(process):
        process[k] = Dimension(
            k, values=(float(np.median([m.features.fill[k] for m in models if k in m.features.fill])),)
        )
    import dataclasses

    return dataclasses.replace(sp, process=process)


def train_objectives(
    db: Database,
    family: str,
    objectives: Sequence[str],
    kind: str,
    include_simulated: bool,
    stability_metric: str | None = None,
) -> list[TrainedModel]:
    """Models for several objectives on one shared feature set (the union of what each needs), so
    one candidate featurisation serves them all."""
    models = [train(db, o, family, kind, include_simulated, stability_metric=stability_metric) for o in objectives]
    if len(models) < 2 or len({m.features.descriptors for m in models}) == 1:
        return models
    descs: list[str] = []
    process: list[str] = []
    fill: dict[str, float] = {}
    for m in models:
        descs += [d for d in m.features.descriptors if d not in descs]
        process += [p for p in m.features.process if p not in process]
        fill.update({k: v for k, v in m.features.fill.items() if k not in fill})
    shared = FeatureSpec(tuple(descs), tuple(process), fill)
    return [
        train(db, o, family, kind, include_simulated, stability_metric=stability_metric, features=shared)
        for o in objectives
    ]


def made_experiments(db: Database, family: str) -> pd.DataFrame:
    """Compositions/processes already made for a family (any provenance), candidate-style columns."""
    s = db.samples(family=family)
    if s.empty:
        return pd.DataFrame(columns=["family"])
    rows = pd.DataFrame(
        {"family": s["family"], "params": s["composition_params"], "process": s["process"].map(_num_process)}
    )
    return candidate_frame(rows)


class _ModelAdapter:
    """Presents a TrainedModel to screening.candidates/acquisition as a plain surrogate."""

    def __init__(self, model: TrainedModel) -> None:
        self.m = model


def rank(
    db: Database,
    family: str,
    objectives: Sequence[str] = ("plqy",),
    n: int = 50,
    space: str | Path | Mapping[str, Any] | None = None,
    *,
    weights: Sequence[float] | None = None,
    acquisition: str = "ucb",
    include_simulated: bool = False,
    kind: str = "auto",
    constraints: Mapping[str, Any] | None = None,
    backend: str = "numpy",
    chunk_size: int = 100_000,
    scheduler: str | None = None,
    stability_metric: str | None = None,
) -> pd.DataFrame:
    """Rank the family's candidate space by the surrogates' predictions and uncertainty.

    ``backend="dask"`` scores the chunks on a dask.distributed cluster: the one at ``scheduler``
    (e.g. "tcp://10.0.0.5:8786"), else a local one.
    """
    from screening.candidates import CandidateSpaceError, rank_candidates

    if backend not in ("numpy", "dask"):
        raise ScreeningError(f"unknown backend '{backend}': use numpy or dask")
    models = train_objectives(db, family, objectives, kind, include_simulated, stability_metric)
    sp = _space(db, family, space, models, constraints)
    featurizers = {o: m for o, m in zip(objectives, models, strict=True)}
    fams = db.families()

    def featurize_for(obj: str):  # type: ignore[no-untyped-def]
        m = featurizers[obj]
        return lambda df: m.features.featurize(df, fams)

    made = made_experiments(db, family)
    cols = [c for c in sp.columns if c != "family"]
    if len(made):
        # an experiment whose process is not fully known cannot be matched to a candidate
        made = made[[c for c in ["family", *cols] if c in made.columns]]
        made = made.dropna() if all(c in made.columns for c in cols) else made.iloc[:0]
    client = None
    if backend == "dask" and scheduler:
        from distributed import Client

        try:
            client = Client(scheduler, timeout=10)
        except OSError as exc:
            raise ScreeningError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    try:
        df = rank_candidates(
            {o: m.surrogate for o, m in featurizers.items()},
            _MultiFeaturizer(featurizers, fams),
            sp,
            chunk_size=chunk_size,
            top_k=n,
            weights=weights,
            backend=backend,  # type: ignore[arg-type]
            acquisition=acquisition,
            made=made if len(made) else None,
            client=client,
        )  # type: ignore[arg-type]
    except CandidateSpaceError as exc:
        raise ScreeningError(str(exc)) from None
    finally:
        if client is not None:
            client.close()
    return _decorate(df, family, fams, models, objectives)


class _MultiFeaturizer:
    """rank_candidates takes one featurize; objectives may use different feature sets, so the
    matrices are concatenated and each surrogate is handed its own column block."""

    def __init__(self, models: Mapping[str, TrainedModel], fams: Mapping[str, Family]) -> None:
        self.models, self.fams = models, fams

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        first = next(iter(self.models.values()))
        return first.features.featurize(df, self.fams)


def _decorate(
    df: pd.DataFrame, family: str, fams: Mapping[str, Family], models: Sequence[TrainedModel], objectives: Sequence[str]
) -> pd.DataFrame:
    fam = fams[family]
    out = df.copy()
    pnames = list(fam.parameters)
    out["formula"] = [fam.formula({p: r[p] for p in pnames}) for _, r in out[pnames].iterrows()]
    for o, m in zip(objectives, models, strict=True):
        if m.spec.direction == "lower" and f"{o}_mean" in out:
            out[f"{o}_mean"] = -out[f"{o}_mean"]
    out["params"] = [
        json.dumps(
            {**{p: float(r[p]) for p in pnames}, **{k: float(r[k]) for k in PROCESS_FEATURES if k in out.columns}},
            sort_keys=True,
        )
        for _, r in out.iterrows()
    ]
    return out


def propose(
    db: Database,
    family: str,
    objectives: Sequence[str] = ("plqy",),
    n: int = 8,
    *,
    acquisition: str = "ei",
    batch: str = "believer",
    space: str | Path | Mapping[str, Any] | None = None,
    weights: Sequence[float] | None = None,
    include_simulated: bool = False,
    kind: str = "auto",
    constraints: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    preselect: int = 2000,
    stability_metric: str | None = None,
) -> tuple[str, pd.DataFrame]:
    """Propose a batch of ``n`` next experiments, record the campaign, return (campaign id, plan)."""
    from screening.acquisition import select_batch

    batch = {"kriging_believer": "believer", "local_penalization": "penalization", "q-ucb": "greedy"}.get(batch, batch)
    objectives = list(objectives)
    if not isinstance(n, int) or n < 1:
        raise ScreeningError(f"the batch size must be a positive integer, got {n!r}")
    models = train_objectives(db, family, objectives, kind, include_simulated, stability_metric)
    fams = db.families()
    top = rank(
        db,
        family,
        objectives,
        n=max(preselect, 10 * n),
        space=space,
        weights=weights,
        acquisition=acquisition if acquisition in ("ucb", "ei", "pi", "mean") else "ucb",
        include_simulated=include_simulated,
        kind=kind,
        constraints=constraints,
        stability_metric=stability_metric,
    )
    if top.empty:
        raise ScreeningError(f"no candidates left for {family} (all made, or excluded by constraints)")
    primary = models[0]
    X = primary.features.featurize(top, fams)
    if len(objectives) == 1:
        made = made_experiments(db, family)
        X_made = primary.features.featurize(made, fams) if len(made) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idx = select_batch(
                primary.surrogate,
                X,
                min(n, len(top)),
                method=batch,  # type: ignore[arg-type]
                acquisition=acquisition if acquisition in ("ei", "pi", "ucb", "mean") else "ei",  # type: ignore[arg-type]
                X_made=X_made,
            )
        chosen = top.iloc[np.asarray(idx, dtype=int)].reset_index(drop=True)
    else:
        chosen = top.head(n).reset_index(drop=True)  # weighted scalarisation of the objectives
    now = datetime.now(UTC)
    ckey = f"c{now.strftime('%Y%m%d%H%M%S%f')}-{family}"
    plan = pd.DataFrame(
        {
            "proposal_id": [f"{ckey}-{i + 1:02d}" for i in range(len(chosen))],
            "family": family,
            "formula": chosen["formula"],
            "params": [
                json.dumps({p: float(r[p]) for p in fams[family].parameters}, sort_keys=True)
                for _, r in chosen.iterrows()
            ],
        }
    )
    for k in PROCESS_FEATURES:
        if k in chosen.columns:
            plan[k] = chosen[k].to_numpy()
    for o in objectives:
        plan[f"pred_{o}_mean"] = chosen[f"{o}_mean"].to_numpy()
        plan[f"pred_{o}_std"] = chosen[f"{o}_std"].to_numpy()
    plan["acquisition"] = chosen["acquisition"].to_numpy()
    for m in models:
        plan[f"{m.spec.quantity} [{units.display_unit(m.spec.unit) or '1'}]"] = np.nan
    with db.transaction() as s:
        from matdb.store import ensure_family

        camp = M.Campaign(
            key=ckey,
            family_id=ensure_family(s, fams[family]),
            objectives=objectives,
            settings={
                "n": n,
                "acquisition": acquisition,
                "batch": batch,
                "weights": list(weights or []),
                "include_simulated": include_simulated,
                "kind": kind,
                "space": str(space) if space is not None and not isinstance(space, Mapping) else space,
            },
            model_cards={o: _jsonable(m.card) for o, m in zip(objectives, models, strict=True)},
        )
        s.add(camp)
        s.flush()
        for i, (_, r) in enumerate(plan.iterrows()):
            s.add(
                M.Proposal(
                    key=r["proposal_id"],
                    campaign_id=camp.id,
                    rank=i + 1,
                    formula=r["formula"],
                    params={
                        **json.loads(r["params"]),
                        **{k: float(r[k]) for k in PROCESS_FEATURES if k in plan.columns},
                    },
                    predictions={
                        o: {"mean": float(r[f"pred_{o}_mean"]), "std": float(r[f"pred_{o}_std"])} for o in objectives
                    },
                    acquisition=float(r["acquisition"]),
                )
            )
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        plan.to_csv(out, index=False)
    return ckey, plan


def campaigns(db: Database) -> pd.DataFrame:
    with db.session() as s:
        rows = s.execute(
            select(
                M.Campaign.key,
                M.Family.slug,
                M.Campaign.objectives,
                M.Campaign.created_at,
                M.Proposal.key,
                M.Proposal.status,
                M.Proposal.formula,
            )
            .join(M.Proposal, M.Proposal.campaign_id == M.Campaign.id)
            .join(M.Family, M.Campaign.family_id == M.Family.id)
            .order_by(M.Proposal.id)
        ).all()
    return pd.DataFrame(
        rows, columns=["campaign", "family", "objectives", "created_at", "proposal_id", "status", "formula"]
    )


def milling_plan(db: Database, plan: pd.DataFrame, batch_mass_mg: float) -> pd.DataFrame:
    """Precursor masses (mg) for a batch of ``batch_mass_mg`` of each proposed composition."""
    from pymatgen.core import Composition

    if not (isinstance(batch_mass_mg, (int, float)) and math.isfinite(batch_mass_mg) and batch_mass_mg > 0):
        raise ScreeningError(f"batch mass must be a positive number of mg, got {batch_mass_mg!r}")
    fams = db.families()
    rows = []
    for _, r in plan.iterrows():
        fam = fams[r["family"]]
        params = json.loads(r["params"]) if isinstance(r["params"], str) else dict(r["params"])
        params = {k: v for k, v in params.items() if k in fam.parameters}
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
            except Exception:
                mw[p.name] = math.nan
        mol_basis = [p for p in fam.precursors if p.basis == "mol"]
        m_fu = sum(amounts[p.name] * mw[p.name] for p in mol_basis)
        for p in fam.precursors:
            a = amounts[p.name]
            if p.basis == "mass":
                mass = a * batch_mass_mg
                mmol = mass / mw[p.name] if math.isfinite(mw[p.name]) else math.nan
            else:
                n_fu = batch_mass_mg / m_fu  # mmol of formula units (mg / g mol-1)
                mmol = a * n_fu
                mass = mmol * mw[p.name]
            rows.append(
                {
                    "proposal_id": r.get("proposal_id"),
                    "formula": r["formula"],
                    "precursor": p.name,
                    "precursor_formula": p.formula,
                    "molar_mass_g_per_mol": mw[p.name],
                    "amount_mmol": mmol,
                    "mass_mg": mass,
                }
            )
    return pd.DataFrame(rows)


def predict_grid(
    db: Database,
    family: str,
    target: str,
    axes: Sequence[str],
    n: int = 41,
    include_simulated: bool = False,
    kind: str = "auto",
) -> pd.DataFrame:
    """Model mean, std and the central 68 % interval (lo68, hi68; asymmetric for bounded targets)
    over a grid of one or two axes (composition or process variables); other variables at the
    median of the training data."""
    model = train(db, target, family, kind, include_simulated)
    fam = db.families()[family]
    tr = candidate_frame(model.train[model.train["family"] == family])
    grids = {}
    for a in axes:
        if a in fam.parameters:
            p = fam.parameters[a]
            grids[a] = np.linspace(p.min, p.max, n)
        elif a in model.features.process:
            col = pd.to_numeric(tr[a], errors="coerce")
            lo, hi = float(col.min()), float(col.max())
            pad = 0.1 * (hi - lo or 1.0)
            grids[a] = np.linspace(max(0.0, lo - pad), hi + pad, n)
        else:
            raise ScreeningError(f"'{a}' is not a parameter of {family} or a process variable of the model")
    mesh = np.meshgrid(*grids.values(), indexing="ij")
    df = pd.DataFrame({a: m.ravel() for a, m in zip(grids, mesh, strict=True)})
    df.insert(0, "family", family)
    for p in fam.parameters:
        if p not in df:
            df[p] = (
                float(pd.to_numeric(tr[p]).median()) if p in tr else (fam.parameters[p].min + fam.parameters[p].max) / 2
            )
    for k in model.features.process:
        if k not in df:
            df[k] = model.features.fill[k]
    mean, std = model.predict(df, db.families())
    df["mean"], df["std"] = mean if model.spec.direction == "higher" else -mean, std
    lo, hi = model.surrogate.predict_interval(model.features.featurize(df, db.families()), 0.68)
    if model.spec.direction == "lower":
        lo, hi = -hi, -lo
    df["lo68"], df["hi68"] = lo, hi
    return df
