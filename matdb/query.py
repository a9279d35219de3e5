"""The query API: filters a chemist can type, answers as pandas DataFrames.

Filters (keyword arguments of :func:`results` and :func:`samples`):
    family: slug or list of slugs            technique: id or list
    quantity: name or list                   provenance: "literature"|"measured"|"simulated" or list
    params: {"x": 0.8} or {"x": (0.2, 0.8)}  process: {"milling_time_min": (0, 60)}
    value: (low, high) (None = open)         sample: sample id            source_doi: DOI
    derived: True/False (computed by analysis or not)

:func:`parse_query` reads the same as text: ``"family=FAMAPbI3,x>=0.4,quantity=plqy,value>10"``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd
from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from matdb import models as M
from matdb.arrays import decode
from matdb.vocabulary import PROCESS_PARAMS


class QueryError(ValueError):
    """A query a user typed that cannot be understood."""


_EQ_KEYS = {"family", "technique", "quantity", "provenance", "sample", "source_doi", "doi", "label"}
_OPS = ("<=", ">=", "!=", "=", "<", ">")
_TERM = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|!=|=|<|>)\s*(.+?)\s*$")


def _num(s: str) -> float | str:
    try:
        return float(s)
    except ValueError:
        return s


def parse_query(text: str) -> dict[str, Any]:
    """Parse ``"family=FASnIBr,z>=2.5,quantity=pl_peak,value<850"`` into keyword filters."""
    out: dict[str, Any] = {}
    if not text or not text.strip():
        return out
    for term in text.split(","):
        m = _TERM.match(term)
        if not m:
            raise QueryError(f"cannot read '{term.strip()}': write key=value, key<value, key>=value, ...")
        key, op, raw = m.groups()
        val = _num(raw)
        if key == "doi":
            key = "source_doi"
        if key in _EQ_KEYS:
            if op != "=":
                raise QueryError(f"'{key}' can only be compared with '='")
            out.setdefault(key, []).append(raw)
            continue
        if key == "value":
            lo, hi = out.get("value", (None, None))
            out["value"] = _bound(lo, hi, op, val, key)
            continue
        if key == "derived":
            out["derived"] = raw.lower() in ("1", "true", "yes")
            continue
        group = "process" if key in PROCESS_PARAMS else "params"
        cur = out.setdefault(group, {})
        if op == "=":
            cur[key] = val
        else:
            lo, hi = cur.get(key, (None, None)) if isinstance(cur.get(key), tuple) else (None, None)
            cur[key] = _bound(lo, hi, op, val, key)
    return out


def _bound(lo: Any, hi: Any, op: str, val: Any, key: str) -> tuple[Any, Any]:
    if not isinstance(val, float):
        raise QueryError(f"'{key}' needs a number, got '{val}'")
    if op in (">", ">="):
        return (val, hi)
    if op in ("<", "<="):
        return (lo, val)
    raise QueryError(f"operator '{op}' is not supported for '{key}'")


def _listify(v: Any) -> list[Any] | None:
    if v is None:
        return None
    return list(v) if isinstance(v, (list, tuple, set)) else [v]


def _base_query(**f: Any) -> Select[Any]:
    S = aliased(M.Sample)
    q = (
        select(
            M.Result.id.label("result_id"),
            S.key.label("sample_id"),
            M.Measurement.key.label("measurement_id"),
            M.Family.slug.label("family"),
            M.Material.formula,
            M.Material.params.label("composition_params"),
            S.process.label("process"),
            M.Result.quantity,
            M.Result.value,
            M.Result.unit,
            M.Result.uncertainty,
            M.Measurement.technique,
            M.Measurement.provenance,
            M.Source.doi.label("source_doi"),
            M.Source.key.label("source_key"),
            M.Result.locator.label("result_locator"),
            M.Measurement.locator.label("measurement_locator"),
            M.Result.text,
            M.Result.label,
            M.Result.approximate,
            M.Result.range_low,
            M.Result.range_high,
            M.Result.reported_value,
            M.Result.reported_unit,
            M.Result.derived,
            M.Result.method,
            M.Result.method_version,
            M.Measurement.conditions,
            S.label.label("sample_label"),
        )
        .join(M.Measurement, M.Result.measurement_id == M.Measurement.id)
        .join(M.Material, M.Measurement.material_id == M.Material.id)
        .join(M.Family, M.Material.family_id == M.Family.id)
        .join(M.Source, M.Measurement.source_id == M.Source.id)
        .outerjoin(S, M.Measurement.sample_id == S.id)
    )
    if (v := _listify(f.get("family"))) is not None:
        q = q.where(M.Family.slug.in_(v))
    if (v := _listify(f.get("technique"))) is not None:
        q = q.where(M.Measurement.technique.in_(v))
    if (v := _listify(f.get("quantity"))) is not None:
        q = q.where(M.Result.quantity.in_(v))
    if (v := _listify(f.get("provenance"))) is not None:
        q = q.where(M.Measurement.provenance.in_(v))
    if (v := _listify(f.get("sample"))) is not None:
        q = q.where(S.key.in_(v))
    if (v := _listify(f.get("source_doi"))) is not None:
        q = q.where(M.Source.doi.in_(v))
    if (v := _listify(f.get("label"))) is not None:
        q = q.where(M.Result.label.in_(v))
    if f.get("derived") is not None:
        q = q.where(M.Result.derived.is_(bool(f["derived"])))
    if f.get("value") is not None:
        lo, hi = f["value"]
        if lo is not None:
            q = q.where(M.Result.value >= lo)
        if hi is not None:
            q = q.where(M.Result.value <= hi)
    return q.order_by(M.Result.id)


def _match(series: pd.Series, cond: Any) -> pd.Series:
    vals = pd.to_numeric(series, errors="coerce")
    if isinstance(cond, tuple):
        lo, hi = cond
        ok = pd.Series(True, index=series.index)
        if lo is not None:
            ok &= vals >= lo - 1e-9
        if hi is not None:
            ok &= vals <= hi + 1e-9
        return ok
    if isinstance(cond, (int, float)):
        return (vals - float(cond)).abs() <= 1e-9
    return series.astype(str) == str(cond)


KNOWN_FILTERS = {"family", "technique", "quantity", "provenance", "sample", "source_doi", "label",
                 "derived", "value", "params", "process", "limit"}


def _check_filters(f: dict[str, Any]) -> None:
    unknown = set(f) - KNOWN_FILTERS
    if unknown:
        raise QueryError(f"unknown filter(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(KNOWN_FILTERS))}")


def results(db: Any, **f: Any) -> pd.DataFrame:
    """Scalar and categorical results with their composition, process, technique and source."""
    _check_filters(f)
    with db.engine.connect() as conn:
        df = pd.read_sql(_base_query(**f), conn)
    df = _finish(df)
    df = _post_filter(df, f)
    if f.get("limit"):
        df = df.head(int(f["limit"]))
    return df.reset_index(drop=True)


def _loads(v: Any) -> dict[str, Any]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return {}
    if isinstance(v, str):
        return json.loads(v)
    return dict(v)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        df["params"] = pd.Series(dtype=object)
        df["source_locator"] = pd.Series(dtype=object)
        return df
    df["composition_params"] = df["composition_params"].map(_loads)
    df["process"] = df["process"].map(_loads)
    df["conditions"] = df["conditions"].map(_loads)
    df["params"] = [{**c, **p} for c, p in zip(df["composition_params"], df["process"], strict=True)]
    df["source_locator"] = df["result_locator"].where(df["result_locator"].notna(), df["measurement_locator"])
    for col in ("approximate", "derived"):
        df[col] = df[col].astype(bool)
    return df


def _post_filter(df: pd.DataFrame, f: dict[str, Any]) -> pd.DataFrame:
    for group, col in (("params", "composition_params"), ("process", "process")):
        for key, cond in (f.get(group) or {}).items():
            if df.empty:
                break
            series = df[col].map(lambda d, k=key: d.get(k))
            df = df[_match(series, cond).to_numpy()]
    return df


def samples(db: Any, **f: Any) -> pd.DataFrame:
    """One row per sample: composition, process parameters, provenance, source, counts."""
    _check_filters(f)
    q = (
        select(M.Sample.key.label("sample_id"), M.Family.slug.label("family"), M.Material.formula,
               M.Material.params.label("composition_params"), M.Sample.process, M.Sample.label,
               M.Sample.provenance, M.Source.doi.label("source_doi"), M.Source.key.label("source_key"),
               M.Sample.locator.label("source_locator"), M.Synthesis.key.label("synthesis_id"),
               M.Sample.proposal_id)
        .join(M.Material, M.Sample.material_id == M.Material.id)
        .join(M.Family, M.Material.family_id == M.Family.id)
        .join(M.Source, M.Sample.source_id == M.Source.id)
        .outerjoin(M.Synthesis, M.Sample.synthesis_id == M.Synthesis.id)
        .order_by(M.Sample.id)
    )
    if (v := _listify(f.get("family"))) is not None:
        q = q.where(M.Family.slug.in_(v))
    if (v := _listify(f.get("provenance"))) is not None:
        q = q.where(M.Sample.provenance.in_(v))
    if (v := _listify(f.get("sample"))) is not None:
        q = q.where(M.Sample.key.in_(v))
    if (v := _listify(f.get("source_doi"))) is not None:
        q = q.where(M.Source.doi.in_(v))
    if any(f.get(k) is not None for k in ("technique", "quantity", "value")):
        sub = select(M.Measurement.sample_id).join(M.Result, M.Result.measurement_id == M.Measurement.id)
        if (v := _listify(f.get("technique"))) is not None:
            sub = sub.where(M.Measurement.technique.in_(v))
        if (v := _listify(f.get("quantity"))) is not None:
            sub = sub.where(M.Result.quantity.in_(v))
        if f.get("value") is not None:
            lo, hi = f["value"]
            if lo is not None:
                sub = sub.where(M.Result.value >= lo)
            if hi is not None:
                sub = sub.where(M.Result.value <= hi)
        q = q.where(M.Sample.id.in_(sub))
    with db.engine.connect() as conn:
        df = pd.read_sql(q, conn)
    if not df.empty:
        df["composition_params"] = df["composition_params"].map(_loads)
        df["process"] = df["process"].map(_loads)
    else:
        df["composition_params"] = pd.Series(dtype=object)
        df["process"] = pd.Series(dtype=object)
    df = _post_filter(df, f)
    if not df.empty:
        # one pass per dict column (not one per key): 10^5 samples flatten in well under a second
        proc = pd.DataFrame.from_records(df["process"].tolist(), index=df.index)
        comp = pd.DataFrame.from_records(df["composition_params"].tolist(), index=df.index)
        proc = proc[sorted(c for c in proc.columns if c not in df.columns)]
        comp = comp[sorted(c for c in comp.columns if c not in df.columns and c not in proc.columns)]
        df = pd.concat([df, proc, comp], axis=1)
    if f.get("limit"):
        df = df.head(int(f["limit"]))
    return df.reset_index(drop=True)


def sample_story(db: Any, key: str) -> dict[str, Any]:
    """Everything about one sample: composition, synthesis (precursors, steps), measurements."""
    from sqlalchemy.orm import selectinload

    with db.session() as s:
        sa = s.scalar(select(M.Sample).where(M.Sample.key == key).options(
            selectinload(M.Sample.material).selectinload(M.Material.family),
            selectinload(M.Sample.source),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.steps),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.precursors)
            .selectinload(M.SynthesisPrecursor.chemical),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.source),
        ))
        if sa is None:
            raise QueryError(f"no sample '{key}'")
        story: dict[str, Any] = {
            "sample_id": sa.key, "label": sa.label, "family": sa.material.family.slug,
            "formula": sa.material.formula, "params": sa.material.params, "process": sa.process,
            "provenance": sa.provenance, "source": _source_dict(sa.source), "locator": sa.locator,
            "proposal_id": sa.proposal_id, "note": sa.note, "after_step": sa.after_step,
            "synthesis": None, "measurements": [],
        }
        syn = sa.synthesis
        if syn is not None:
            story["synthesis"] = {
                "id": syn.key, **{k: getattr(syn, k) for k in M.SYNTHESIS_SETTINGS},
                "source": _source_dict(syn.source), "note": syn.note,
                "precursors": [
                    {"chemical": p.chemical.name, "formula": p.chemical.formula, "role": p.role,
                     "mass_mg": p.mass_mg, "amount_mmol": p.amount_mmol, "mol_pct": p.mol_pct,
                     "step": p.step_position}
                    for p in syn.precursors
                ],
                "steps": [
                    {"position": st.position, "kind": st.kind, "duration_min": st.duration_min,
                     "temperature_c": st.temperature_c, "atmosphere": st.atmosphere,
                     "frequency_hz": st.frequency_hz, "frequency_rpm": st.frequency_rpm,
                     "done": sa.after_step is None or st.position <= sa.after_step, "note": st.note}
                    for st in syn.steps
                ],
            }
        ms = s.scalars(select(M.Measurement).where(M.Measurement.sample_id == sa.id).options(
            selectinload(M.Measurement.results), selectinload(M.Measurement.source),
            selectinload(M.Measurement.arrays)).order_by(M.Measurement.id)).all()
        for m in ms:
            story["measurements"].append({
                "id": m.key, "technique": m.technique, "instrument": m.instrument,
                "conditions": m.conditions, "locator": m.locator, "provenance": m.provenance,
                "source": _source_dict(m.source), "note": m.note,
                "results": [
                    {"quantity": r.quantity, "value": r.value, "unit": r.unit, "uncertainty": r.uncertainty,
                     "approximate": r.approximate, "range_low": r.range_low, "range_high": r.range_high,
                     "text": r.text, "label": r.label, "derived": r.derived, "method": r.method,
                     "method_version": r.method_version, "reported_value": r.reported_value,
                     "reported_unit": r.reported_unit, "locator": r.locator or m.locator}
                    for r in sorted(m.results, key=lambda r: (r.derived, r.position, r.id))
                ],
                "arrays": [{"kind": a.kind, "shape": a.shape, "axes": a.axes, "meta": a.meta}
                           for a in sorted(m.arrays, key=lambda a: a.position)],
            })
        return story


def _source_dict(src: M.Source) -> dict[str, Any]:
    return {"key": src.key, "kind": src.kind, "doi": src.doi, "title": src.title, "year": src.year,
            "journal": src.journal, "url": f"https://doi.org/{src.doi}" if src.doi else src.url}


def load_array(db: Any, measurement_key: str, kind: str | None = None) -> dict[str, Any]:
    """Read one stored array back: values, axes (name -> (coords, unit)), reference, meta."""
    with db.session() as s:
        q = (select(M.ArrayResult, M.Measurement.provenance)
             .join(M.Measurement, M.ArrayResult.measurement_id == M.Measurement.id)
             .where(M.Measurement.key == measurement_key)
             .order_by(M.ArrayResult.position).options())
        if kind:
            q = q.where(M.ArrayResult.kind == kind)
        row = s.execute(q.limit(1)).first()
        if row is None:
            raise QueryError(f"no array for measurement '{measurement_key}'" + (f" of kind {kind}" if kind else ""))
        arr, prov = row
        data = decode(arr.blob, arr.kind, arr.axes, arr.value_unit, arr.meta)
        return {"kind": arr.kind, "values": data.values, "axes": data.axes,
                "reference": data.reference, "meta": arr.meta, "value_unit": arr.value_unit,
                "provenance": prov, "array_id": arr.id}


def arrays_index(db: Any, **f: Any) -> pd.DataFrame:
    """Stored arrays (without their data): measurement, sample, family, kind, shape, provenance."""
    S = aliased(M.Sample)
    q = (select(M.ArrayResult.id.label("array_id"), M.Measurement.key.label("measurement_id"),
                S.key.label("sample_id"), M.Family.slug.label("family"), M.Material.formula,
                M.Material.params.label("composition_params"), M.ArrayResult.kind, M.ArrayResult.shape,
                M.Measurement.technique, M.Measurement.provenance, M.ArrayResult.meta)
         .join(M.Measurement, M.ArrayResult.measurement_id == M.Measurement.id)
         .join(M.Material, M.Measurement.material_id == M.Material.id)
         .join(M.Family, M.Material.family_id == M.Family.id)
         .outerjoin(S, M.Measurement.sample_id == S.id)
         .order_by(M.ArrayResult.id))
    if (v := _listify(f.get("family"))) is not None:
        q = q.where(M.Family.slug.in_(v))
    if (v := _listify(f.get("kind"))) is not None:
        q = q.where(M.ArrayResult.kind.in_(v))
    if (v := _listify(f.get("provenance"))) is not None:
        q = q.where(M.Measurement.provenance.in_(v))
    with db.engine.connect() as conn:
        df = pd.read_sql(q, conn)
    for col in ("composition_params", "meta", "shape"):
        if not df.empty:
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return df
