"""The query API: filters a chemist can type, answers as pandas DataFrames.

Filters (keyword arguments of :func:`results` and :func:`samples`):
    family: slug or list of slugs            technique: id or list
    quantity: name or list                   provenance: "literature"|"measured"|"simulated" or list
    params: {"x": 0.8} or {"x": (0.2, 0.8)}  process: {"milling_time_min": (0, 60)}
    value: (low, high) (None = open)         sample: sample id            source_doi: DOI
    derived: True/False (computed by analysis or not)
    series: series id (its own findings and the results of its member samples)
    inferred: True/False (inferred by matdb or a curator rather than stated by the source, at any
              level: result, measurement, sample or synthesis)
    limit: at most this many rows (in SQL, in stored order)

Composition (``params``) and process filters run in SQL on the JSON columns (json_extract on
SQLite, jsonb operators on PostgreSQL): numbers equal within 1e-9, ranges inclusive.

:func:`parse_query` reads the same as text: ``"family=FAMAPbI3,x>=0.4,quantity=plqy,value>10"``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Select, Text, and_, case, cast, func, not_, or_, select
from sqlalchemy.orm import aliased

from matdb import models as M
from matdb.arrays import decode
from matdb.vocabulary import PROCESS_PARAMS


class QueryError(ValueError):
    """A query a user typed that cannot be understood."""


_EQ_KEYS = {"family", "technique", "quantity", "provenance", "sample", "series", "source_doi", "doi", "label"}
_BOOL_KEYS = ("derived", "inferred")
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
        if key in _BOOL_KEYS:
            out[key] = raw.lower() in ("1", "true", "yes")
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


#: Numbers within this of a filter value count as equal (and bounds are widened by it): stored
#: parameters went through unit conversion and float parsing, typed ones did not.
TOLERANCE = 1e-9

KNOWN_FILTERS = {"family", "technique", "quantity", "provenance", "sample", "source_doi", "label",
                 "derived", "value", "params", "process", "series", "inferred", "limit"}
#: :func:`samples` also takes ``search``: a substring of the sample id, formula or label.
SAMPLE_FILTERS = (KNOWN_FILTERS - {"label", "derived"}) | {"search"}


def _check_filters(f: dict[str, Any], known: set[str] = KNOWN_FILTERS) -> None:
    unknown = set(f) - known
    if unknown:
        raise QueryError(f"unknown filter(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}")


def _dialect(db: Any) -> str:
    return str(getattr(db, "dialect", None) or db.engine.dialect.name)


def _json_number(col: Any, key: str, dialect: str) -> Any:
    """``col[key]`` as a float where it is a JSON number, else NULL (never a cast error)."""
    if dialect == "postgresql":
        is_num = func.jsonb_typeof(col[key]) == "number"
    else:  # SQLite's json_extract of text compares greater than any number: test the type first
        is_num = func.json_type(col, f'$."{key}"').in_(("integer", "real"))
    return case((is_num, col[key].as_float()), else_=None)


def _json_condition(col: Any, key: str, cond: Any, dialect: str) -> Any:
    """SQL for one params/process filter: a (low, high) range (None = open; inclusive), a number
    (equal within TOLERANCE) or a text value (equal)."""
    if isinstance(cond, tuple):
        lo, hi = cond
        num = _json_number(col, key, dialect)
        parts = [num.is_not(None)]
        if lo is not None:
            parts.append(num >= float(lo) - TOLERANCE)
        if hi is not None:
            parts.append(num <= float(hi) + TOLERANCE)
        return and_(*parts)
    if isinstance(cond, bool) or not isinstance(cond, (int, float)):
        return col[key].as_string() == str(cond)
    return _json_number(col, key, dialect).between(float(cond) - TOLERANCE, float(cond) + TOLERANCE)


def _json_filters(q: Select[Any], f: dict[str, Any], params_col: Any, process_col: Any, dialect: str) -> Select[Any]:
    for group, col in (("params", params_col), ("process", process_col)):
        for key, cond in (f.get(group) or {}).items():
            q = q.where(_json_condition(col, str(key), cond, dialect))
    return q


def _json_text(col: Any) -> Any:
    """A JSON column read as its text: decoded once with orjson (not per row by the ORM type)."""
    return cast(col, Text)


def _value_filter(q: Select[Any], value: Any) -> Select[Any]:
    if value is not None:
        lo, hi = value
        if lo is not None:
            q = q.where(M.Result.value >= lo)
        if hi is not None:
            q = q.where(M.Result.value <= hi)
    return q


def _members_of(series: list[Any]) -> Select[Any]:
    return (select(M.SeriesMember.sample_id).join(M.Series, M.SeriesMember.series_id == M.Series.id)
            .where(M.Series.key.in_(series)))


def _inferred(*levels: Any) -> tuple[Any, Any]:
    """(flag, reason) over the levels (entity classes or aliases with ``inferred`` and
    ``inferred_reason``), innermost first: inferred at any level; the innermost level's reason."""
    flags = [func.coalesce(lv.inferred, False) for lv in levels]
    reason = func.coalesce(*[case((lv.inferred.is_(True), lv.inferred_reason), else_=None) for lv in levels])
    return or_(*flags), reason


def _base_query(dialect: str, **f: Any) -> Select[Any]:
    S = aliased(M.Sample)
    Syn = aliased(M.Synthesis)
    inferred, inferred_reason = _inferred(M.Result, M.Measurement, S, Syn)
    q = (
        select(
            M.Result.id.label("result_id"),
            S.key.label("sample_id"),
            M.Series.key.label("series_id"),
            M.Measurement.key.label("measurement_id"),
            M.Family.slug.label("family"),
            M.Material.formula,
            _json_text(M.Material.params).label("composition_params"),
            _json_text(S.process).label("process"),
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
            _json_text(M.Measurement.conditions).label("conditions"),
            S.label.label("sample_label"),
            S.outcome.label("sample_outcome"),
            inferred.label("inferred"),
            inferred_reason.label("inferred_reason"),
        )
        .join(M.Measurement, M.Result.measurement_id == M.Measurement.id)
        # findings about a series have no material (and no sample): outer joins keep them
        .outerjoin(M.Material, M.Measurement.material_id == M.Material.id)
        .outerjoin(M.Series, M.Measurement.series_id == M.Series.id)
        .outerjoin(M.Family, M.Family.id == func.coalesce(M.Material.family_id, M.Series.family_id))
        .join(M.Source, M.Measurement.source_id == M.Source.id)
        .outerjoin(S, M.Measurement.sample_id == S.id)
        .outerjoin(Syn, S.synthesis_id == Syn.id)
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
    if (v := _listify(f.get("series"))) is not None:
        q = q.where(or_(M.Series.key.in_(v), S.id.in_(_members_of(v))))
    if (v := _listify(f.get("source_doi"))) is not None:
        q = q.where(M.Source.doi.in_(v))
    if (v := _listify(f.get("label"))) is not None:
        q = q.where(M.Result.label.in_(v))
    if f.get("derived") is not None:
        q = q.where(M.Result.derived.is_(bool(f["derived"])))
    if f.get("inferred") is not None:
        q = q.where(inferred if f["inferred"] else not_(inferred))
    q = _value_filter(q, f.get("value"))
    q = _json_filters(q, f, M.Material.params, S.process, dialect)
    q = q.order_by(M.Result.id)
    if f.get("limit"):
        q = q.limit(int(f["limit"]))
    return q


def results(db: Any, **f: Any) -> pd.DataFrame:
    """Scalar and categorical results with their composition, process, technique and source.

    Results of findings about a series carry its ``series_id`` and no ``sample_id``; ``inferred``
    is True when the result, its measurement, its sample or the sample's synthesis was inferred
    (``inferred_reason``: the reason of the innermost inferred level).
    """
    _check_filters(f)
    with db.engine.connect() as conn:
        df = pd.read_sql(_base_query(_dialect(db), **f), conn)
    return _finish(df).reset_index(drop=True)


def _loads(v: Any) -> dict[str, Any]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return {}
    if isinstance(v, str):
        return orjson.loads(v)
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
    for col in ("approximate", "derived", "inferred"):
        df[col] = df[col].astype(bool)
    return df


def samples(db: Any, **f: Any) -> pd.DataFrame:
    """One row per sample: composition, process parameters, provenance, source, outcome, who made
    it, whether it (or its synthesis) is inferred."""
    _check_filters(f, SAMPLE_FILTERS)
    inferred, inferred_reason = _inferred(M.Sample, M.Synthesis)
    q = (
        select(M.Sample.key.label("sample_id"), M.Family.slug.label("family"), M.Material.formula,
               _json_text(M.Material.params).label("composition_params"),
               _json_text(M.Sample.process).label("process"), M.Sample.label,
               M.Sample.provenance, M.Source.doi.label("source_doi"), M.Source.key.label("source_key"),
               M.Sample.locator.label("source_locator"), M.Synthesis.key.label("synthesis_id"),
               M.Sample.proposal_id, M.Sample.outcome, M.Sample.created_by,
               inferred.label("inferred"), inferred_reason.label("inferred_reason"))
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
    if (v := _listify(f.get("series"))) is not None:
        q = q.where(M.Sample.id.in_(_members_of(v)))
    if (v := _listify(f.get("source_doi"))) is not None:
        q = q.where(M.Source.doi.in_(v))
    if f.get("inferred") is not None:
        q = q.where(inferred if f["inferred"] else not_(inferred))
    if text := str(f.get("search") or "").strip():
        pat = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(or_(*(c.ilike(pat, escape="\\") for c in (M.Sample.key, M.Material.formula, M.Sample.label))))
    if any(f.get(k) is not None for k in ("technique", "quantity", "value")):
        sub = select(M.Measurement.sample_id).where(M.Measurement.sample_id.is_not(None))
        if f.get("quantity") is not None or f.get("value") is not None:  # a technique alone needs no result
            sub = sub.join(M.Result, M.Result.measurement_id == M.Measurement.id)
        if (v := _listify(f.get("technique"))) is not None:
            sub = sub.where(M.Measurement.technique.in_(v))
        if (v := _listify(f.get("quantity"))) is not None:
            sub = sub.where(M.Result.quantity.in_(v))
        q = q.where(M.Sample.id.in_(_value_filter(sub, f.get("value"))))
    q = _json_filters(q, f, M.Material.params, M.Sample.process, _dialect(db))
    if f.get("limit"):
        q = q.limit(int(f["limit"]))
    with db.engine.connect() as conn:
        df = pd.read_sql(q, conn)
    if not df.empty:
        df["composition_params"] = df["composition_params"].map(_loads)
        df["process"] = df["process"].map(_loads)
        df["inferred"] = df["inferred"].astype(bool)
        # one pass per dict column (not one per key): 10^5 samples flatten in well under a second
        proc = pd.DataFrame.from_records(df["process"].tolist(), index=df.index)
        comp = pd.DataFrame.from_records(df["composition_params"].tolist(), index=df.index)
        proc = proc[sorted(c for c in proc.columns if c not in df.columns)]
        comp = comp[sorted(c for c in comp.columns if c not in df.columns and c not in proc.columns)]
        df = pd.concat([df, proc, comp], axis=1)
    else:
        df["composition_params"] = pd.Series(dtype=object)
        df["process"] = pd.Series(dtype=object)
    return df.reset_index(drop=True)


def _flag(row: Any) -> dict[str, Any]:
    return {"inferred": bool(row.inferred), "inferred_reason": row.inferred_reason}


def _result_dict(r: M.Result, m: M.Measurement) -> dict[str, Any]:
    return {"quantity": r.quantity, "value": r.value, "unit": r.unit, "uncertainty": r.uncertainty,
            "approximate": r.approximate, "range_low": r.range_low, "range_high": r.range_high,
            "text": r.text, "label": r.label, "derived": r.derived, "method": r.method,
            "method_version": r.method_version, "reported_value": r.reported_value,
            "reported_unit": r.reported_unit, "locator": r.locator or m.locator, **_flag(r)}


def _measurement_dicts(s: Any, where: Any) -> list[dict[str, Any]]:
    from sqlalchemy.orm import selectinload

    ms = s.scalars(select(M.Measurement).where(where).options(
        selectinload(M.Measurement.results), selectinload(M.Measurement.source),
        selectinload(M.Measurement.arrays)).order_by(M.Measurement.id)).all()
    return [{
        "id": m.key, "technique": m.technique, "instrument": m.instrument,
        "conditions": m.conditions, "locator": m.locator, "provenance": m.provenance,
        "source": _source_dict(m.source), "note": m.note, **_flag(m),
        "results": [_result_dict(r, m) for r in sorted(m.results, key=lambda r: (r.derived, r.position, r.id))],
        "arrays": [{"kind": a.kind, "shape": a.shape, "axes": a.axes, "meta": a.meta}
                   for a in sorted(m.arrays, key=lambda a: a.position)],
    } for m in ms]


def _ingredient(p: M.SynthesisPrecursor) -> dict[str, Any]:
    """A precursor: a chemical, or a stored sample used as an ingredient (``sample_id`` set)."""
    base = {"role": p.role, "mass_mg": p.mass_mg, "amount_mmol": p.amount_mmol, "mol_pct": p.mol_pct,
            "step": p.step_position, "note": p.note}
    if p.sample is not None:
        return {"chemical": None, "formula": p.sample.material.formula, "sample_id": p.sample.key, **base}
    chem = p.chemical
    return {"chemical": chem.name if chem else None, "formula": chem.formula if chem else None,
            "sample_id": None, **base}


def _series_of(s: Any, sample_id: int) -> list[dict[str, Any]]:
    """The series a sample belongs to: title, source, all members in order, the series' findings."""
    rows = s.scalars(select(M.Series).join(M.SeriesMember, M.SeriesMember.series_id == M.Series.id)
                     .where(M.SeriesMember.sample_id == sample_id).order_by(M.Series.id)).all()
    out = []
    for se in rows:
        members = s.execute(select(M.Sample.key, M.Sample.id)
                            .join(M.SeriesMember, M.SeriesMember.sample_id == M.Sample.id)
                            .where(M.SeriesMember.series_id == se.id)
                            .order_by(M.SeriesMember.position, M.SeriesMember.id)).all()
        src = s.get(M.Source, se.source_id)
        out.append({
            "id": se.key, "title": se.title, "locator": se.locator, "provenance": se.provenance,
            "note": se.note, "source": _source_dict(src),
            "samples": [k for k, _ in members],
            "others": [k for k, i in members if i != sample_id],
            "measurements": _measurement_dicts(s, M.Measurement.series_id == se.id),
        })
    return out


def sample_story(db: Any, key: str) -> dict[str, Any]:
    """Everything about one sample: composition, synthesis (ingredients, steps), measurements, the
    series it belongs to (with the series' own findings, which are not the sample's results),
    outcome, who made it, and the inferred flag with its reason at every level."""
    from sqlalchemy.orm import selectinload

    with db.session() as s:
        sa = s.scalar(select(M.Sample).where(M.Sample.key == key).options(
            selectinload(M.Sample.material).selectinload(M.Material.family),
            selectinload(M.Sample.source),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.steps),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.precursors)
            .selectinload(M.SynthesisPrecursor.chemical),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.precursors)
            .selectinload(M.SynthesisPrecursor.sample).selectinload(M.Sample.material),
            selectinload(M.Sample.synthesis).selectinload(M.Synthesis.source),
        ))
        if sa is None:
            raise QueryError(f"no sample '{key}'")
        story: dict[str, Any] = {
            "sample_id": sa.key, "label": sa.label, "family": sa.material.family.slug,
            "formula": sa.material.formula, "params": sa.material.params, "process": sa.process,
            "provenance": sa.provenance, "source": _source_dict(sa.source), "locator": sa.locator,
            "proposal_id": sa.proposal_id, "note": sa.note, "after_step": sa.after_step,
            "outcome": sa.outcome, "created_by": sa.created_by, **_flag(sa),
            "synthesis": None, "measurements": [], "series": [],
        }
        syn = sa.synthesis
        if syn is not None:
            story["synthesis"] = {
                "id": syn.key, **{k: getattr(syn, k) for k in M.SYNTHESIS_SETTINGS},
                "source": _source_dict(syn.source), "note": syn.note, **_flag(syn),
                "precursors": [_ingredient(p) for p in syn.precursors],
                "steps": [
                    {"position": st.position, "kind": st.kind, "duration_min": st.duration_min,
                     "temperature_c": st.temperature_c, "atmosphere": st.atmosphere,
                     "frequency_hz": st.frequency_hz, "frequency_rpm": st.frequency_rpm,
                     "done": sa.after_step is None or st.position <= sa.after_step, "note": st.note,
                     **_flag(st)}
                    for st in syn.steps
                ],
            }
        story["measurements"] = _measurement_dicts(s, M.Measurement.sample_id == sa.id)
        story["series"] = _series_of(s, sa.id)
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
    """Stored arrays (without their data): measurement, sample or series, family, kind, shape,
    provenance, source key."""
    S = aliased(M.Sample)
    q = (select(M.ArrayResult.id.label("array_id"), M.Measurement.key.label("measurement_id"),
                S.key.label("sample_id"), M.Series.key.label("series_id"), M.Family.slug.label("family"),
                M.Material.formula, M.Material.params.label("composition_params"), M.ArrayResult.kind,
                M.ArrayResult.shape, M.Measurement.technique, M.Measurement.provenance,
                M.Source.key.label("source_key"), M.ArrayResult.meta)
         .join(M.Measurement, M.ArrayResult.measurement_id == M.Measurement.id)
         .outerjoin(M.Material, M.Measurement.material_id == M.Material.id)
         .outerjoin(M.Series, M.Measurement.series_id == M.Series.id)
         .outerjoin(M.Family, M.Family.id == func.coalesce(M.Material.family_id, M.Series.family_id))
         .join(M.Source, M.Measurement.source_id == M.Source.id)
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
