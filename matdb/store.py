"""Store functions: every SQLAlchemy statement above the ORM lives in ``matdb/`` (here and in
``matdb.query``), so nothing above ``matdb/`` needs SQL.

Grouped by what they serve: the data version the UI caches key on; what the database holds
(techniques, quantity ranges, families with a quantity); the analysis of stored TLIS runs
(runs, stamps, derived results); removing the data of one source (the demonstration set);
screening (saved models, campaigns with their proposals, candidate pools).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, cast

import pandas as pd
from sqlalchemy import CursorResult, delete, func, select, text, update
from sqlalchemy.orm import Session

from matdb import models as M
from matdb.arrays import ArrayData, decode, encode
from matdb.families import Family, builtin_families


class StoreError(ValueError):
    """A write the store refuses because of what the database holds (e.g. removing records that
    other records still use)."""


def ensure_family(s: Session, family: Family) -> int:
    """The id of ``family``'s row, inserting it (with its definition) if it is not stored yet."""
    row_id = s.scalar(select(M.Family.id).where(M.Family.slug == family.slug))
    if row_id is not None:
        return int(row_id)
    row = M.Family(slug=family.slug, name=family.name, structure=family.structure,
                   builtin=family.slug in builtin_families(), definition=family.to_dict())
    s.add(row)
    s.flush()
    return int(row.id)


def current_user(s: Session) -> str:
    """The database user writing in this session: PostgreSQL's ``current_user``; on SQLite (one
    file, no users) the operating-system user."""
    if s.get_bind().dialect.name == "postgresql":
        return str(s.scalar(text("SELECT current_user")))
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


# --- what the database holds ------------------------------------------------------------------

#: Tables whose (row count, highest id) make up the data version.
_VERSIONED = (M.IngestedFile, M.Sample, M.Result, M.SavedModel, M.Proposal, M.Campaign, M.CandidatePool)


def data_version(db: Any) -> str:
    """A token that changes whenever data is written (ingest, update, analysis, removal, model,
    proposal, pool). Cheap (one aggregate per table), so every page run can key its caches on it.

    Counts as well as highest ids: a removal lowers the count even when the highest id stays.
    """
    with db.engine.connect() as conn:
        parts = [conn.execute(select(func.count(), func.max(t.id))).one() for t in _VERSIONED]
    return "/".join(f"{a}:{b}" for a, b in parts)


def measured_techniques(db: Any) -> list[str]:
    """Techniques with at least one stored measurement, sorted."""
    with db.engine.connect() as conn:
        return sorted(conn.execute(select(M.Measurement.technique).distinct()).scalars())


def quantity_ranges(db: Any) -> pd.DataFrame:
    """Every stored quantity with the number, minimum and maximum of its numeric values
    (columns quantity, n, min, max; n = 0 for categorical quantities)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(M.Result.quantity, func.count(M.Result.value), func.min(M.Result.value), func.max(M.Result.value))
            .group_by(M.Result.quantity)
        ).all()
    df = pd.DataFrame(rows, columns=["quantity", "n", "min", "max"]).sort_values("quantity")
    return df.reset_index(drop=True)


def _family_of_measurement() -> Any:
    """Join target for the family of a measurement: its material's, or its series' (findings)."""
    return M.Family.id == func.coalesce(M.Material.family_id, M.Series.family_id)


def _measurements_with_family(q: Any) -> Any:  # a Select of any row type
    return (q.outerjoin(M.Material, M.Measurement.material_id == M.Material.id)
            .outerjoin(M.Series, M.Measurement.series_id == M.Series.id)
            .join(M.Family, _family_of_measurement()))


def families_with(db: Any, quantity: str) -> list[str]:
    """Families with at least one result of ``quantity``, sorted."""
    q = _measurements_with_family(
        select(M.Family.slug).select_from(M.Result).join(M.Measurement, M.Result.measurement_id == M.Measurement.id)
    ).where(M.Result.quantity == quantity).distinct()
    with db.engine.connect() as conn:
        return sorted(conn.execute(q).scalars())


def numeric_quantities(db: Any, family: str) -> pd.DataFrame:
    """Quantities with numeric results in ``family``: quantity, n (results), n_samples."""
    q = _measurements_with_family(
        select(M.Result.quantity, func.count(M.Result.value), func.count(func.distinct(M.Measurement.sample_id)))
        .select_from(M.Result).join(M.Measurement, M.Result.measurement_id == M.Measurement.id)
    ).where(M.Family.slug == family, M.Result.value.is_not(None)).group_by(M.Result.quantity)
    with db.engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame(rows, columns=["quantity", "n", "n_samples"]).sort_values("quantity").reset_index(drop=True)


# --- arrays and the analysis of TLIS runs -------------------------------------------------------


def array_row(measurement_id: int, position: int, data: ArrayData) -> M.ArrayResult:
    """The ``array_result`` row of one array (values, axis coordinates and reference in one blob)."""
    enc = encode(data)
    return M.ArrayResult(measurement_id=measurement_id, position=position, kind=data.kind, shape=enc.shape,
                         axes=enc.axes, value_unit=data.value_unit, meta=dict(data.meta), sha256=enc.sha256,
                         nbytes=len(enc.blob), blob=enc.blob)


@dataclass(frozen=True)
class StoredRun:
    """A stored run (array) to analyse: ids, kind, the array's meta and the measurement's conditions."""

    array_id: int
    kind: str
    meta: dict[str, Any]
    measurement_id: int
    measurement_key: str
    conditions: dict[str, Any]


def stored_runs(db: Any, kinds: Sequence[str], measurement: str | None = None,
                source: str | None = None) -> list[StoredRun]:
    """Stored arrays of ``kinds`` (optionally of one measurement key, or of the measurements of one
    source key), in storage order."""
    q = (select(M.ArrayResult.id, M.ArrayResult.kind, M.ArrayResult.meta, M.Measurement.id, M.Measurement.key,
                M.Measurement.conditions)
         .join(M.Measurement, M.ArrayResult.measurement_id == M.Measurement.id)
         .where(M.ArrayResult.kind.in_(list(kinds))).order_by(M.ArrayResult.id))
    if measurement:
        q = q.where(M.Measurement.key == measurement)
    if source:
        q = q.join(M.Source, M.Measurement.source_id == M.Source.id).where(M.Source.key == source)
    with db.session() as s:
        return [StoredRun(a, k, dict(meta or {}), mid, key, dict(cond or {}))
                for a, k, meta, mid, key, cond in s.execute(q)]


def array_metas(db: Any, kind: str) -> list[dict[str, Any]]:
    """The ``meta`` of every stored array of ``kind`` (e.g. the stamps of feature series)."""
    with db.session() as s:
        return [dict(m or {}) for m in s.scalars(select(M.ArrayResult.meta).where(M.ArrayResult.kind == kind))]


def read_array(db: Any, array_id: int) -> ArrayData:
    """One stored array by id, decoded."""
    with db.session() as s:
        row = s.get(M.ArrayResult, array_id)
        if row is None:
            raise LookupError(f"no stored array {array_id}")
        return decode(row.blob, row.kind, row.axes, row.value_unit, row.meta)


def replace_derived(db: Any, measurement_id: int, source_array_id: int, results: Iterable[Mapping[str, Any]],
                    series: ArrayData, position: int) -> int:
    """In one transaction: drop the derived results of a measurement and the ``series.kind``
    arrays computed from ``source_array_id``, then store ``results`` (Result columns; stored with
    ``derived=True``) and ``series`` (its meta must name ``source_array_id``). Returns the
    number of results stored."""
    n = 0
    with db.transaction() as s:
        s.execute(delete(M.Result).where(M.Result.measurement_id == measurement_id, M.Result.derived.is_(True)))
        old = s.scalars(select(M.ArrayResult).where(M.ArrayResult.measurement_id == measurement_id,
                                                     M.ArrayResult.kind == series.kind)).all()
        for o in old:
            if (o.meta or {}).get("source_array_id") == source_array_id:
                s.delete(o)
        for r in results:
            s.add(M.Result(measurement_id=measurement_id, **{**r, "derived": True}))
            n += 1
        s.add(array_row(measurement_id, position, series))
    return n


# --- removing the data of one source (the demonstration set) ------------------------------------



def _delete_rows(run: Callable[[str, Any], None], mids: Sequence[int], series_ids: Sequence[int],
                 sample_ids: Sequence[int], synth_ids: Sequence[int]) -> None:
    """Delete measurements (with their results, arrays, structures), series (with memberships),
    samples and syntheses (with steps and ingredients, also rows naming these samples as an
    ingredient), in the order the foreign keys need: samples before syntheses (a sample points at
    its synthesis), ingredients before samples. ``run(table, statement)`` executes and counts."""
    for model in (M.Result, M.ArrayResult, M.Structure):
        run(model.__tablename__, delete(model).where(model.measurement_id.in_(mids)))
    run("measurement", delete(M.Measurement).where(M.Measurement.id.in_(mids)))
    run("series_member", delete(M.SeriesMember).where(
        M.SeriesMember.series_id.in_(series_ids) | M.SeriesMember.sample_id.in_(sample_ids)))
    run("series", delete(M.Series).where(M.Series.id.in_(series_ids)))
    run("synthesis_precursor", delete(M.SynthesisPrecursor).where(
        M.SynthesisPrecursor.synthesis_id.in_(synth_ids) | M.SynthesisPrecursor.sample_id.in_(sample_ids)))
    run("process_step", delete(M.ProcessStep).where(M.ProcessStep.synthesis_id.in_(synth_ids)))
    run("sample", delete(M.Sample).where(M.Sample.id.in_(sample_ids)))
    run("synthesis", delete(M.Synthesis).where(M.Synthesis.id.in_(synth_ids)))

def remove_source(db: Any, source_key: str, file_names: Iterable[str] = (), *,
                  bundled_dataset: str | None = None) -> dict[str, int]:
    """Delete everything that came from the source ``source_key`` and return what was deleted:
    its samples and syntheses (with their steps, ingredients, series memberships), measurements
    (with results, arrays, structures, derived results), series, the record contents and old
    versions under their keys, the ``ingested_file`` rows of ``file_names`` (base names), the
    materials nothing else uses any more, and the source itself. One transaction; nothing else
    is touched. A sample of another source that uses one of these samples as an ingredient (or
    a series of another source that lists one) stops the removal with a StoreError.
    ``bundled_dataset``: the bundled dataset (ingest.bundled) these records are, forgotten too.
    """
    counts: dict[str, int] = {}
    with db.transaction() as s:
        src = s.scalar(select(M.Source.id).where(M.Source.key == source_key))
        if src is None:
            return counts
        sample_ids = list(s.scalars(select(M.Sample.id).where(M.Sample.source_id == src)))
        synth_ids = list(s.scalars(select(M.Synthesis.id).where(M.Synthesis.source_id == src)))
        series_ids = list(s.scalars(select(M.Series.id).where(M.Series.source_id == src)))
        meas = s.execute(select(M.Measurement.id, M.Measurement.key, M.Measurement.material_id).where(
            (M.Measurement.source_id == src) | M.Measurement.sample_id.in_(sample_ids)
            | M.Measurement.series_id.in_(series_ids))).all()
        used_by_others = s.scalar(select(func.count()).select_from(M.SynthesisPrecursor).where(
            M.SynthesisPrecursor.sample_id.in_(sample_ids), M.SynthesisPrecursor.synthesis_id.not_in(synth_ids)))
        foreign_members = s.scalar(select(func.count()).select_from(M.SeriesMember).where(
            M.SeriesMember.sample_id.in_(sample_ids), M.SeriesMember.series_id.not_in(series_ids)))
        if used_by_others or foreign_members:
            raise StoreError(f"samples of '{source_key}' are used by other records (as ingredients or series "
                             "members); remove those first")
        keys = {
            "sample": list(s.scalars(select(M.Sample.key).where(M.Sample.id.in_(sample_ids)))),
            "synthesis": list(s.scalars(select(M.Synthesis.key).where(M.Synthesis.id.in_(synth_ids)))),
            "measurement": [k for _, k, _ in meas],
            "series": list(s.scalars(select(M.Series.key).where(M.Series.id.in_(series_ids)))),
        }
        materials = {m for _, _, m in meas if m is not None}
        materials |= set(s.scalars(select(M.Sample.material_id).where(M.Sample.id.in_(sample_ids))))
        materials |= set(s.scalars(select(M.Synthesis.material_id).where(M.Synthesis.id.in_(synth_ids))))
        mids = [i for i, _, _ in meas]

        def run(name: str, stmt: Any) -> None:
            counts[name] = counts.get(name, 0) + (s.execute(stmt).rowcount or 0)

        _delete_rows(run, mids, series_ids, sample_ids, synth_ids)
        for entity, ks in keys.items():
            run("record_content", delete(M.RecordContent).where(M.RecordContent.entity == entity,
                                                                  M.RecordContent.key.in_(ks)))
            run("record_version", delete(M.RecordVersion).where(M.RecordVersion.entity == entity,
                                                                  M.RecordVersion.key.in_(ks)))
            run("bundled_record", delete(M.BundledRecord).where(M.BundledRecord.entity == entity,
                                                                  M.BundledRecord.key.in_(ks)))
        names = set(file_names)
        if names:
            files = [i for i, p in s.execute(select(M.IngestedFile.id, M.IngestedFile.path))
                     if PurePath(p).name in names]
            s.execute(update(M.RecordVersion).where(M.RecordVersion.file_id.in_(files)).values(file_id=None))
            run("ingested_file", delete(M.IngestedFile).where(M.IngestedFile.id.in_(files)))
        still_used = set()
        for col in (M.Sample.material_id, M.Synthesis.material_id, M.Measurement.material_id, M.Structure.material_id):
            still_used |= set(s.scalars(select(col).where(col.in_(materials))))
        run("material", delete(M.Material).where(M.Material.id.in_(materials - still_used)))
        run("source", delete(M.Source).where(M.Source.id == src))
        if bundled_dataset is not None:
            run("bundled_record", delete(M.BundledRecord).where(M.BundledRecord.dataset == bundled_dataset))
            run("bundled_dataset", delete(M.BundledDataset).where(M.BundledDataset.name == bundled_dataset))
    return {k: v for k, v in counts.items() if v}


# --- the bundled data (matdb's own records: ingest.bundled) ---------------------------------------

#: The keyed record tables, by entity name (as in record_content and bundled_record).
KEYED: dict[str, Any] = {"synthesis": M.Synthesis, "sample": M.Sample, "series": M.Series,
                         "measurement": M.Measurement}

Keys = dict[str, set[str]]


def _no_keys() -> Keys:
    return {e: set() for e in KEYED}


def bundled_state(s: Session, dataset: str) -> tuple[str | None, Keys]:
    """The stored version of a bundled dataset and the keys of the records it brought, by entity."""
    version = s.scalar(select(M.BundledDataset.version).where(M.BundledDataset.name == dataset))
    keys = _no_keys()
    for entity, key in s.execute(select(M.BundledRecord.entity, M.BundledRecord.key)
                                 .where(M.BundledRecord.dataset == dataset)):
        keys.setdefault(entity, set()).add(key)
    return version, keys


def set_bundled(s: Session, dataset: str, version: str, keys: Mapping[str, Iterable[str]]) -> None:
    """Record ``version`` and exactly ``keys`` as what the bundled ``dataset`` holds."""
    s.execute(delete(M.BundledRecord).where(M.BundledRecord.dataset == dataset))
    s.execute(delete(M.BundledDataset).where(M.BundledDataset.name == dataset))
    s.add(M.BundledDataset(name=dataset, version=version))
    s.add_all(M.BundledRecord(dataset=dataset, entity=e, key=k) for e, ks in keys.items() for k in sorted(ks))
    s.flush()


def record_source_keys(s: Session, keys: Mapping[str, Iterable[str]]) -> dict[str, dict[str, str]]:
    """Stored records among ``keys``: entity -> {key: the key of its source}."""
    out: dict[str, dict[str, str]] = {e: {} for e in KEYED}
    for entity, ks in keys.items():
        model, wanted = KEYED[entity], sorted(ks)
        for i in range(0, len(wanted), 2000):
            q = select(model.key, M.Source.key).join(M.Source, M.Source.id == model.source_id) \
                .where(model.key.in_(wanted[i:i + 2000]))
            out[entity].update({k: src for k, src in s.execute(q)})
    return out


def records_of_sources(s: Session, source_keys: Iterable[str]) -> Keys:
    """Keys of the records (by entity) whose source is one of ``source_keys``."""
    out = _no_keys()
    src_ids = list(s.scalars(select(M.Source.id).where(M.Source.key.in_(sorted(set(source_keys))))))
    for entity, model in KEYED.items():
        out[entity] = set(s.scalars(select(model.key).where(model.source_id.in_(src_ids))))
    return out


def records_added_by_files(s: Session, is_file: Any) -> dict[str, int]:
    """Records added (by entity) by the stored loads of the files ``is_file(path)`` accepts."""
    out = dict.fromkeys(KEYED, 0)
    for path, summary in s.execute(select(M.IngestedFile.path, M.IngestedFile.summary)):
        if is_file(path):
            for entity in KEYED:
                out[entity] += int((summary or {}).get(f"{entity}.added", 0))
    return out


def measurements_off_their_sample(s: Session, sample_keys: Iterable[str]) -> list[tuple[str, str]]:
    """(measurement key, sample key) of the measurements of ``sample_keys`` whose material is not
    their sample's (the sample's composition was changed by an update)."""
    wanted = sorted(set(sample_keys))
    out: list[tuple[str, str]] = []
    for i in range(0, len(wanted), 2000):
        q = select(M.Measurement.key, M.Sample.key).join(M.Sample, M.Sample.id == M.Measurement.sample_id) \
            .where(M.Sample.key.in_(wanted[i:i + 2000]), M.Measurement.material_id != M.Sample.material_id)
        out += [(m, smp) for m, smp in s.execute(q)]
    return sorted(out)


def align_measurement_materials(s: Session, measurement_keys: Iterable[str]) -> None:
    """Give the measurements ``measurement_keys`` (of samples) their sample's material."""
    keys = sorted(set(measurement_keys))
    if keys:
        sample_material = select(M.Sample.material_id).where(M.Sample.id == M.Measurement.sample_id) \
            .scalar_subquery()
        s.execute(update(M.Measurement).where(M.Measurement.key.in_(keys), M.Measurement.sample_id.is_not(None))
                  .values(material_id=sample_material))


def remove_records(s: Session, keys: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Delete the records ``keys`` (entity -> keys) inside the caller's transaction, with what
    belongs to them (steps, ingredients, members, results, arrays, structures, current contents,
    bundled_record rows) and the materials nothing uses any more; old versions stay in
    record_version. A record outside ``keys`` that uses one of them (a measurement of one of
    these samples or series, a sample made by one of these syntheses, one of these samples as an
    ingredient or series member) stops the removal with a StoreError naming it; nothing is
    deleted then. Returns rows deleted per table."""
    ids: dict[str, list[int]] = {}
    for entity, model in KEYED.items():
        wanted = sorted(keys.get(entity, ()))
        ids[entity] = list(s.scalars(select(model.id).where(model.key.in_(wanted)))) if wanted else []
    synth_ids, sample_ids, series_ids, mids = (ids[e] for e in ("synthesis", "sample", "series", "measurement"))
    uses = (
        ("measurement", M.Measurement.key, M.Measurement.sample_id, M.Sample, "sample",
         M.Measurement.id.not_in(mids)),
        ("measurement", M.Measurement.key, M.Measurement.series_id, M.Series, "series",
         M.Measurement.id.not_in(mids)),
        ("sample", M.Sample.key, M.Sample.synthesis_id, M.Synthesis, "synthesis", M.Sample.id.not_in(sample_ids)),
    )
    for what, user_key, fk, target, target_name, outside in uses:
        hit = s.execute(select(user_key, target.key).join(target, target.id == fk)
                        .where(fk.in_(ids[target_name]), outside).limit(1)).first()
        if hit is not None:
            raise StoreError(f"{what} '{hit[0]}' uses {target_name} '{hit[1]}'")
    hit = s.execute(select(M.Synthesis.key, M.Sample.key)
                    .join(M.SynthesisPrecursor, M.SynthesisPrecursor.synthesis_id == M.Synthesis.id)
                    .join(M.Sample, M.Sample.id == M.SynthesisPrecursor.sample_id)
                    .where(M.Sample.id.in_(sample_ids), M.Synthesis.id.not_in(synth_ids)).limit(1)).first()
    if hit is not None:
        raise StoreError(f"synthesis '{hit[0]}' uses sample '{hit[1]}' as an ingredient")
    hit = s.execute(select(M.Series.key, M.Sample.key)
                    .join(M.SeriesMember, M.SeriesMember.series_id == M.Series.id)
                    .join(M.Sample, M.Sample.id == M.SeriesMember.sample_id)
                    .where(M.Sample.id.in_(sample_ids), M.Series.id.not_in(series_ids)).limit(1)).first()
    if hit is not None:
        raise StoreError(f"series '{hit[0]}' lists sample '{hit[1]}'")
    materials: set[int] = set()
    for entity in ("synthesis", "sample", "measurement"):
        model = KEYED[entity]
        materials |= {m for m in s.scalars(select(model.material_id).where(model.id.in_(ids[entity])))
                      if m is not None}
    counts: dict[str, int] = {}

    def run(name: str, stmt: Any) -> None:  # a DELETE: its result is a CursorResult with a rowcount
        counts[name] = counts.get(name, 0) + (cast("CursorResult[Any]", s.execute(stmt)).rowcount or 0)

    _delete_rows(run, mids, series_ids, sample_ids, synth_ids)
    for entity, ks in keys.items():
        run("record_content", delete(M.RecordContent).where(M.RecordContent.entity == entity,
                                                              M.RecordContent.key.in_(sorted(ks))))
        run("bundled_record", delete(M.BundledRecord).where(M.BundledRecord.entity == entity,
                                                              M.BundledRecord.key.in_(sorted(ks))))
    still_used = set()
    for col in (M.Sample.material_id, M.Synthesis.material_id, M.Measurement.material_id, M.Structure.material_id):
        still_used |= set(s.scalars(select(col).where(col.in_(materials))))
    run("material", delete(M.Material).where(M.Material.id.in_(materials - still_used)))
    s.flush()
    return {k: v for k, v in counts.items() if v}


# --- screening: saved models, campaigns, candidate pools ---------------------------------------


def _family_ids(s: Session, families: Mapping[str, Family], slugs: Iterable[str]) -> list[int]:
    return [ensure_family(s, families[f]) for f in slugs]


def save_model(db: Any, *, name: str, target: str, data_hash: str, card: Mapping[str, Any], blob: bytes,
               families: Mapping[str, Family], family_slugs: Sequence[str]) -> str:
    """Store a trained surrogate (skops bytes) with its card and families; return its name."""
    with db.transaction() as s:
        row = M.SavedModel(name=name, target=target, data_hash=data_hash, card=dict(card), blob=blob,
                           created_by=current_user(s))
        s.add(row)
        s.flush()
        for fid in _family_ids(s, families, family_slugs):
            s.add(M.SavedModelFamily(model_id=row.id, family_id=fid))
    return name


def saved_models(db: Any) -> pd.DataFrame:
    """Stored models: name, target, data_hash, families, created_at, created_by, card."""
    with db.session() as s:
        rows = s.execute(select(M.SavedModel.id, M.SavedModel.name, M.SavedModel.target, M.SavedModel.data_hash,
                                M.SavedModel.created_at, M.SavedModel.created_by, M.SavedModel.card)
                         .order_by(M.SavedModel.id)).all()
        fams: dict[int, list[str]] = {}
        for mid, slug in s.execute(select(M.SavedModelFamily.model_id, M.Family.slug)
                                   .join(M.Family, M.SavedModelFamily.family_id == M.Family.id)
                                   .order_by(M.Family.slug)):
            fams.setdefault(mid, []).append(slug)
    return pd.DataFrame(
        [{"name": r[1], "target": r[2], "data_hash": r[3], "families": fams.get(r[0], []), "created_at": r[4],
          "created_by": r[5], "card": r[6]} for r in rows],
        columns=["name", "target", "data_hash", "families", "created_at", "created_by", "card"])


def find_model(db: Any, data_hash: str) -> dict[str, Any] | None:
    """The newest stored model trained on the data and settings ``data_hash`` identifies:
    {"name", "target", "card"}, or None."""
    with db.session() as s:
        row = s.execute(select(M.SavedModel.name, M.SavedModel.target, M.SavedModel.card)
                        .where(M.SavedModel.data_hash == data_hash).order_by(M.SavedModel.id.desc()).limit(1)).first()
    return None if row is None else {"name": row[0], "target": row[1], "card": row[2]}


def load_model_blob(db: Any, name: str) -> bytes | None:
    """The stored bytes of model ``name`` (None if there is no such model)."""
    with db.session() as s:
        return s.scalar(select(M.SavedModel.blob).where(M.SavedModel.name == name))


def save_campaign(db: Any, *, key: str, family: Family, objectives: Sequence[Any], settings: Mapping[str, Any],
                  model_cards: Mapping[str, Any], proposals: Sequence[Mapping[str, Any]]) -> str:
    """Store a campaign and its proposals in one transaction; return the campaign key.

    Each proposal is a mapping of Proposal columns: key, rank, formula, params, predictions,
    acquisition, and optionally run, design, status.
    """
    from matdb.vocabulary import check_identifier

    check_identifier(key, "campaign id")
    with db.transaction() as s:
        camp = M.Campaign(key=key, family_id=ensure_family(s, family), objectives=list(objectives),
                          settings=dict(settings), model_cards=dict(model_cards), created_by=current_user(s))
        s.add(camp)
        s.flush()
        for p in proposals:
            s.add(M.Proposal(campaign_id=camp.id, **dict(p)))
    return key


def campaign_rows(db: Any) -> pd.DataFrame:
    """One row per proposal: campaign, family, objectives, created_at, created_by, proposal_id,
    rank, run, design, status, formula, params, predictions, acquisition."""
    cols = ["campaign", "family", "objectives", "created_at", "created_by", "proposal_id", "rank", "run",
            "design", "status", "formula", "params", "predictions", "acquisition"]
    with db.session() as s:
        rows = s.execute(
            select(M.Campaign.key, M.Family.slug, M.Campaign.objectives, M.Campaign.created_at, M.Campaign.created_by,
                   M.Proposal.key, M.Proposal.rank, M.Proposal.run, M.Proposal.design, M.Proposal.status,
                   M.Proposal.formula, M.Proposal.params, M.Proposal.predictions, M.Proposal.acquisition)
            .join(M.Proposal, M.Proposal.campaign_id == M.Campaign.id)
            .join(M.Family, M.Campaign.family_id == M.Family.id)
            .order_by(M.Proposal.id)
        ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def save_pool(db: Any, *, key: str, family: Family, rows: pd.DataFrame, source_file: str | None = None) -> str:
    """Store a candidate pool (its rows as a Parquet blob); return its key."""
    import hashlib

    buf = io.BytesIO()
    rows.reset_index(drop=True).to_parquet(buf, index=False)
    blob = buf.getvalue()
    with db.transaction() as s:
        s.add(M.CandidatePool(key=key, family_id=ensure_family(s, family), columns=[str(c) for c in rows.columns],
                              n_rows=len(rows), sha256=hashlib.sha256(blob).hexdigest(), blob=blob,
                              source_file=source_file, created_by=current_user(s)))
    return key


def pools(db: Any, family: str | None = None) -> pd.DataFrame:
    """Stored candidate pools (without their rows): key, family, columns, n_rows, sha256,
    source_file, created_at, created_by."""
    cols = ["key", "family", "columns", "n_rows", "sha256", "source_file", "created_at", "created_by"]
    q = (select(M.CandidatePool.key, M.Family.slug, M.CandidatePool.columns, M.CandidatePool.n_rows,
                M.CandidatePool.sha256, M.CandidatePool.source_file, M.CandidatePool.created_at,
                M.CandidatePool.created_by)
         .join(M.Family, M.CandidatePool.family_id == M.Family.id).order_by(M.CandidatePool.id))
    if family is not None:
        q = q.where(M.Family.slug == family)
    with db.session() as s:
        return pd.DataFrame([tuple(r) for r in s.execute(q)], columns=cols)


def load_pool(db: Any, key: str) -> pd.DataFrame | None:
    """The rows of candidate pool ``key`` (None if there is no such pool)."""
    with db.session() as s:
        blob = s.scalar(select(M.CandidatePool.blob).where(M.CandidatePool.key == key))
    return None if blob is None else pd.read_parquet(io.BytesIO(blob))
