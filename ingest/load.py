"""Writing validated documents into the database: atomic, idempotent, with history.

One document is one transaction. Every keyed record (synthesis, sample, measurement) carries the
hash of its canonical content: loading identical content again changes nothing; different content
under an existing key is refused unless ``update=True``, which keeps the old version in
``record_version``. Nothing is ever silently duplicated.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ingest.errors import IngestError
from ingest.validate import Prepared, content_hash
from matdb import models as M
from matdb.arrays import encode_arrays


@dataclass
class LoadSummary:
    """What loading one document did."""

    file: str
    status: str = "unchanged"  # added | unchanged | updated
    counts: Counter[str] = field(default_factory=Counter)

    def note(self, entity: str, what: str) -> None:
        self.counts[f"{entity}.{what}"] += 1
        if what == "added" and self.status == "unchanged":
            self.status = "added"
        if what == "updated":
            self.status = "updated"


class _Loader:
    def __init__(self, s: Session, p: Prepared, update: bool, summary: LoadSummary) -> None:
        self.s, self.p, self.update, self.summary = s, p, update, summary
        self.family_ids: dict[str, int] = {}
        self.source_ids: dict[str, int] = {}
        self.chem_ids: dict[str, int] = {}
        self.material_ids: dict[str, int] = {}

    def err(self, msg: str, record: str | None = None, fld: str | None = None) -> IngestError:
        return IngestError(msg, file=self.p.file, record=record, field=fld)

    # -- reference data -----------------------------------------------------------------------

    def source(self, key: str | None, rec: str) -> M.Source:
        if key is None:
            raise self.err("no source given", rec, "source")
        if key in self.source_ids:
            return self.s.get(M.Source, self.source_ids[key])  # type: ignore[return-value]
        row = self.s.scalar(select(M.Source).where(M.Source.key == key))
        d = self.p.sources.get(key)
        if row is None and d is not None and d.get("doi"):
            row = self.s.scalar(select(M.Source).where(M.Source.doi == d["doi"]))
        if row is None:
            if d is None:
                raise self.err(f"unknown source '{key}' (declare it under 'source' or 'sources')", rec, "source")
            row = M.Source(**{k: d.get(k) for k in ("key", "kind", "doi", "title", "year", "journal",
                                                     "authors", "url", "note")})
            self.s.add(row)
            self.s.flush()
            self.summary.note("source", "added")
        self.source_ids[key] = row.id
        return row

    def family(self, slug: str) -> int:
        if slug in self.family_ids:
            return self.family_ids[slug]
        from matdb.families import builtin_families

        row = self.s.scalar(select(M.Family).where(M.Family.slug == slug))
        fam = self.p.families.get(slug) or builtin_families().get(slug)
        if row is None:
            if fam is None:
                raise self.err(f"unknown family '{slug}'", None, "family")
            row = M.Family(slug=slug, name=fam.name, structure=fam.structure,
                           builtin=slug in builtin_families(), definition=fam.to_dict())
            self.s.add(row)
            self.s.flush()
            self.summary.note("family", "added")
        elif slug in self.p.families and row.definition != fam.to_dict():  # type: ignore[union-attr]
            if not self.update:
                raise self.err(f"family '{slug}' exists with a different definition; use --update",
                               f"family {slug}", "definition")
            row.definition = fam.to_dict()  # type: ignore[union-attr]
            self.summary.note("family", "updated")
        self.family_ids[slug] = row.id
        return row.id

    def material(self, comp: dict[str, Any]) -> int:
        k = f"{comp['family']}|{comp['params_key']}"
        if k in self.material_ids:
            return self.material_ids[k]
        fid = self.family(comp["family"])
        row = self.s.scalar(select(M.Material).where(M.Material.family_id == fid,
                                                     M.Material.params_key == comp["params_key"]))
        if row is None:
            row = M.Material(family_id=fid, params=comp["params"], params_key=comp["params_key"],
                             formula=comp["formula"], composition=_jsonable(comp["composition"]))
            self.s.add(row)
            self.s.flush()
            self.summary.note("material", "added")
        self.material_ids[k] = row.id
        return row.id

    def chemical(self, name: str) -> int:
        if name in self.chem_ids:
            return self.chem_ids[name]
        d = self.p.chemicals.get(name, {"name": name})
        q = select(M.Chemical).where(M.Chemical.name == name)
        for col in ("supplier", "purity"):
            v = d.get(col)
            q = q.where(getattr(M.Chemical, col).is_(None) if v is None else getattr(M.Chemical, col) == v)
        row = self.s.scalar(q)
        if row is None:
            row = M.Chemical(name=name, formula=d.get("formula"), supplier=d.get("supplier"),
                             purity=d.get("purity"), cas=d.get("cas"), molar_mass=d.get("molar_mass"),
                             note=d.get("note"))
            self.s.add(row)
            self.s.flush()
            self.summary.note("chemical", "added")
        self.chem_ids[name] = row.id
        return row.id

    def quantities(self) -> None:
        for q in self.p.quantities:
            row = self.s.scalar(select(M.QuantityDefinition).where(M.QuantityDefinition.name == q["name"]))
            vals = {k: q.get(k) for k in ("name", "unit", "label", "min", "max", "categorical", "description")}
            if row is None:
                self.s.add(M.QuantityDefinition(**vals))
                self.summary.note("quantity", "added")
            elif any(getattr(row, k) != v for k, v in vals.items()):
                if not self.update:
                    raise self.err(f"quantity '{q['name']}' exists with a different definition; use --update",
                                   f"quantity {q['name']}", "definition")
                for k, v in vals.items():
                    setattr(row, k, v)
                self.summary.note("quantity", "updated")

    # -- keyed records ------------------------------------------------------------------------

    def _existing(self, model: type[M.Base], entity: str, key: str, h: str, rec: str) -> tuple[Any, bool]:
        """Return (existing row or None, skip) and handle the update policy."""
        row = self.s.scalar(select(model).where(model.key == key))  # type: ignore[attr-defined]
        if row is None:
            return None, False
        if row.content_hash == h:
            self.summary.note(entity, "unchanged")
            return row, True
        if not self.update:
            raise self.err(
                f"{entity} '{key}' already exists with different content; "
                f"re-run with --update to replace it (the old version is kept)", rec, "id")
        old = self.s.scalar(select(M.RecordContent).where(M.RecordContent.entity == entity,
                                                          M.RecordContent.key == key))
        self.s.add(M.RecordVersion(entity=entity, key=key, content_hash=row.content_hash,
                                   content=old.content if old else {}))
        self.summary.note(entity, "updated")
        return row, False

    def _remember(self, entity: str, key: str, h: str, content: dict[str, Any]) -> None:
        row = self.s.scalar(select(M.RecordContent).where(M.RecordContent.entity == entity,
                                                          M.RecordContent.key == key))
        if row is None:
            self.s.add(M.RecordContent(entity=entity, key=key, content_hash=h, content=_jsonable(content)))
        else:
            row.content_hash, row.content = h, _jsonable(content)

    def synthesis(self, d: dict[str, Any]) -> None:
        rec = f"synthesis {d['key']}"
        h = content_hash(d)
        row, skip = self._existing(M.Synthesis, "synthesis", d["key"], h, rec)
        if skip:
            return
        src = self.source(d["source"], rec)
        prov = d["provenance"] or _prov(src.kind)
        cols = {k: d[k] for k in ("locator", "method", "mill_model", "mill_type", "frequency_hz",
                                  "frequency_rpm", "jar_material", "jar_volume_ml", "ball_material",
                                  "ball_size_mm", "ball_count", "ball_mass_g", "ball_to_powder_ratio",
                                  "atmosphere", "batch_mass_mg", "date", "operator", "proposal_id", "note")}
        if row is None:
            row = M.Synthesis(key=d["key"], material_id=self.material(d["material"]), source_id=src.id,
                              provenance=prov, content_hash=h, **cols)
            self.s.add(row)
            self.summary.note("synthesis", "added")
        else:
            self.s.execute(delete(M.SynthesisPrecursor).where(M.SynthesisPrecursor.synthesis_id == row.id))
            self.s.execute(delete(M.ProcessStep).where(M.ProcessStep.synthesis_id == row.id))
            row.material_id, row.source_id, row.provenance, row.content_hash = (
                self.material(d["material"]), src.id, prov, h)
            for k, v in cols.items():
                setattr(row, k, v)
        self.s.flush()
        for a in d["precursors"]:
            self.s.add(M.SynthesisPrecursor(synthesis_id=row.id, chemical_id=self.chemical(a["chemical"]),
                                            role=a["role"], mass_mg=a["mass_mg"], amount_mmol=a["amount_mmol"],
                                            mol_pct=a["mol_pct"], note=a["note"]))
        for st in d["steps"]:
            self.s.add(M.ProcessStep(synthesis_id=row.id, position=st["position"], kind=st["kind"],
                                     duration_min=st["duration_min"], temperature_c=st["temperature_c"],
                                     atmosphere=st["atmosphere"], frequency_hz=st["frequency_hz"],
                                     frequency_rpm=st["frequency_rpm"], note=st["note"]))
            for a in st["reagents"]:
                self.s.add(M.SynthesisPrecursor(
                    synthesis_id=row.id, chemical_id=self.chemical(a["chemical"]), step_position=st["position"],
                    role=a["role"], mass_mg=a["mass_mg"], amount_mmol=a["amount_mmol"], mol_pct=a["mol_pct"],
                    note=a["note"]))
        self._remember("synthesis", d["key"], h, d)

    def sample(self, d: dict[str, Any]) -> None:
        rec = f"sample {d['key']}"
        synth = None
        if d["synthesis"]:
            synth = self.s.scalar(select(M.Synthesis).where(M.Synthesis.key == d["synthesis"]))
            if synth is None:
                raise self.err(f"unknown synthesis '{d['synthesis']}'", rec, "synthesis")
            if d["material"] is None:
                mat_id = synth.material_id
            else:
                mat_id = self.material(d["material"])
                if mat_id != synth.material_id:
                    raise self.err("sample composition differs from its synthesis", rec, "params")
            if not d["process"] and d["after_step"] is None:
                pass
        else:
            mat_id = self.material(d["material"])
        h = content_hash(d)
        row, skip = self._existing(M.Sample, "sample", d["key"], h, rec)
        if skip:
            return
        src = self.source(d["source"] or (None if synth is None else _src_key(self.s, synth.source_id)), rec)
        prov = d["provenance"] or (synth.provenance if synth is not None else _prov(src.kind))
        vals = dict(material_id=mat_id, synthesis_id=synth.id if synth else None, after_step=d["after_step"],
                    label=d["label"], process=_jsonable(d["process"]), source_id=src.id,
                    locator=d["locator"], provenance=prov, proposal_id=d["proposal_id"], note=d["note"],
                    content_hash=h)
        if row is None:
            self.s.add(M.Sample(key=d["key"], **vals))
            self.summary.note("sample", "added")
        else:
            for k, v in vals.items():
                setattr(row, k, v)
        if d["proposal_id"]:
            prop = self.s.scalar(select(M.Proposal).where(M.Proposal.key == d["proposal_id"]))
            if prop is None:
                raise self.err(f"unknown proposal_id '{d['proposal_id']}'", rec, "proposal_id")
            prop.status = "made"
        self.s.flush()
        self._remember("sample", d["key"], h, d)

    def measurement(self, d: dict[str, Any]) -> None:
        rec = f"measurement {d['key']}"
        content = {k: v for k, v in d.items() if k not in ("arrays", "structures")}
        content["arrays"] = [_array_fingerprint(a) for a in d["arrays"]]
        content["structures"] = [s["sha256"] for s in d["structures"]]
        h = content_hash(content)
        sample = None
        if d["sample"]:
            sample = self.s.scalar(select(M.Sample).where(M.Sample.key == d["sample"]))
            if sample is None:
                raise self.err(f"unknown sample '{d['sample']}'", rec, "sample")
            mat_id = sample.material_id
        else:
            mat_id = self.material(d["material"])
        row, skip = self._existing(M.Measurement, "measurement", d["key"], h, rec)
        if skip:
            return
        src_key = d["source"] or (None if sample is None else _src_key(self.s, sample.source_id))
        src = self.source(src_key, rec)
        prov = d["provenance"] or (sample.provenance if sample is not None else _prov(src.kind))
        vals = dict(sample_id=sample.id if sample else None, material_id=mat_id, technique=d["technique"],
                    instrument=d["instrument"], conditions=_jsonable(d["conditions"]), source_id=src.id,
                    locator=d["locator"], provenance=prov, note=d["note"], content_hash=h)
        if row is None:
            row = M.Measurement(key=d["key"], **vals)
            self.s.add(row)
            self.summary.note("measurement", "added")
        else:
            for k, v in vals.items():
                setattr(row, k, v)
            for model in (M.Result, M.ArrayResult, M.Structure):
                self.s.execute(delete(model).where(model.measurement_id == row.id))  # type: ignore[attr-defined]
        self.s.flush()
        self.s.add_all([M.Result(measurement_id=row.id, **r) for r in d["results"]])
        self.summary.counts["result.added"] += len(d["results"])
        for a in d["arrays"]:
            self.s.add(array_row(row.id, a["position"], a["data"]))
            self.summary.counts["array.added"] += 1
        for st in d["structures"]:
            self.s.add(M.Structure(material_id=mat_id, measurement_id=row.id, **st))
        self._remember("measurement", d["key"], h, content)


def array_row(measurement_id: int, position: int, data: Any) -> M.ArrayResult:
    """The database row of one array (values, axis coordinates and reference in one blob)."""
    arrays = {"values": np.asarray(data.values)}
    axes = {}
    for i, (name, (coords, unit)) in enumerate(data.axes.items()):
        arrays[f"axis{i}"] = np.asarray(coords, dtype=float)
        axes[name] = {"unit": unit, "n": int(len(coords)), "index": i}
    if data.reference is not None:
        arrays["reference"] = np.asarray(data.reference, dtype=float)
    blob, sha = encode_arrays(arrays)
    return M.ArrayResult(measurement_id=measurement_id, position=position, kind=data.kind,
                         shape=list(arrays["values"].shape), axes=axes, value_unit=data.value_unit,
                         meta=_jsonable(data.meta), sha256=sha, nbytes=len(blob), blob=blob)


def _array_fingerprint(a: dict[str, Any]) -> dict[str, Any]:
    data = a["data"]
    h = hashlib.sha256(np.ascontiguousarray(data.values).tobytes())
    for coords, _u in data.axes.values():
        h.update(np.ascontiguousarray(coords, dtype=float).tobytes())
    if data.reference is not None:
        h.update(np.ascontiguousarray(data.reference, dtype=float).tobytes())
    return {"kind": data.kind, "sha256": h.hexdigest(), "meta": _jsonable(data.meta)}


def _src_key(s: Session, source_id: int) -> str:
    return s.get(M.Source, source_id).key  # type: ignore[union-attr]


def _prov(kind: str) -> str:
    return {"simulation": "simulated", "publication": "literature", "database": "literature"}.get(kind, "measured")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_prepared(s: Session, p: Prepared, *, update: bool = False, sha256: str | None = None) -> LoadSummary:
    """Write a prepared document inside the caller's transaction."""
    summary = LoadSummary(file=p.file)
    ld = _Loader(s, p, update, summary)
    ld.quantities()
    for slug in p.families:
        ld.family(slug)
    for key in p.sources:
        ld.source(key, f"source {key}")
    for d in p.syntheses:
        ld.synthesis(d)
    for d in p.samples:
        ld.sample(d)
    for d in p.measurements:
        ld.measurement(d)
    s.flush()
    s.add(M.IngestedFile(path=p.file, sha256=sha256 or "", status=summary.status,
                         summary=dict(summary.counts)))
    return summary
