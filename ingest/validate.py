"""Semantic validation of a record Document, without a database.

Turns a pydantic :class:`~ingest.records.Document` into a :class:`Prepared` document whose values
are all checked and converted to canonical units, collecting every error (file, record, field)
before giving up. The loader (ingest.load) writes a Prepared document in one transaction.

Run ``python -m ingest.validate FILE...`` to check files without touching a database.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingest import records as R
from ingest.errors import IngestError, IngestErrors
from ingest.limits import DEFAULT, Limits, check_size
from matdb import families as fam
from matdb import units, vocabulary
from matdb.arrays import ArrayData


@dataclass
class Prepared:
    """A validated document: plain dicts in canonical units, ready to write."""

    file: str
    base_dir: Path
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_source: str | None = None
    quantities: list[dict[str, Any]] = field(default_factory=list)
    quantity_defs: dict[str, vocabulary.QuantityDef] = field(default_factory=dict)
    families: dict[str, fam.Family] = field(default_factory=dict)
    chemicals: dict[str, dict[str, Any]] = field(default_factory=dict)
    syntheses: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)


_ORJSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def canonical_json(obj: Any) -> tuple[str, bool]:
    """Canonical JSON text of ``obj`` (sorted keys, compact; orjson) and whether ``obj`` held only
    JSON types (False when something had to be written as its ``str``)."""
    plain = True

    def _default(o: Any) -> str:
        nonlocal plain
        plain = False
        return str(o)

    try:
        return orjson.dumps(obj, option=_ORJSON_OPTS, default=_default).decode(), plain
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits
        return json.dumps(obj, sort_keys=True, default=_default, separators=(",", ":")), plain


def content_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (the identity of a record's content)."""
    return hashlib.sha256(canonical_json(obj)[0].encode()).hexdigest()


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[IngestError] = []

    def add(self, msg: str, record: str | None = None, field_: str | None = None) -> None:
        self.errors.append(IngestError(msg, file=self.file, record=record, field=field_))

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise IngestErrors(self.errors)


def _qty(c: _Collector, quantity: str, spec: Any, rec: str, fld: str,
         extra: dict[str, vocabulary.QuantityDef]) -> float | None:
    if spec is None:
        return None
    try:
        if isinstance(spec, R.ValueUnit):
            spec = spec.model_dump()
        return vocabulary.parse_quantity(quantity, spec, extra)[0]
    except units.UnitError as exc:
        c.add(str(exc), rec, fld)
        return None


def _freq(c: _Collector, spec: Any, rec: str, fld: str) -> tuple[float | None, float | None]:
    """A mill frequency: Hz (mixer mills) or rpm (planetary mills); returns (hz, rpm)."""
    if spec is None:
        return None, None
    try:
        if isinstance(spec, R.ValueUnit):
            v, u = spec.value, spec.unit
        elif isinstance(spec, str):
            v, u = units.parse_quantity_text(spec)
        else:
            v, u = float(spec), "Hz"
        if not math.isfinite(v) or v < 0:
            raise units.UnitError(f"frequency must be a non-negative number, got {v}")
        if u.strip().lower() == "rpm":
            return None, v
        return units.convert(v, u or "Hz", "Hz"), None
    except units.UnitError as exc:
        c.add(f"{exc} (give e.g. '20 Hz' or '800 rpm')", rec, fld)
        return None, None


def _amount(c: _Collector, spec: Any, rec: str, fld: str) -> tuple[float | None, float | None]:
    """A chemical amount as mass (mg) or moles (mmol)."""
    if spec is None:
        return None, None
    try:
        if isinstance(spec, R.ValueUnit):
            v, u = spec.value, spec.unit
        elif isinstance(spec, str):
            v, u = units.parse_quantity_text(spec)
        else:
            raise units.UnitError("give an amount with its unit, e.g. '144.17 mg' or '0.5 mmol'")
        if not math.isfinite(v) or v < 0:
            raise units.UnitError(f"amount must be a non-negative number, got {v}")
        pu = units.parse_unit(u)
        if pu.dimensionality == units.ureg.mg.dimensionality:
            return units.convert(v, u, "mg"), None
        if pu.dimensionality == units.ureg.mmol.dimensionality:
            return None, units.convert(v, u, "mmol")
        raise units.UnitError(f"amount unit '{u}' is neither a mass nor an amount of substance")
    except units.UnitError as exc:
        c.add(str(exc), rec, fld)
        return None, None


#: A checked composition: family slug and parameters (each with its repr, so 0.0 and -0.0 differ).
_CompKey = tuple[str, tuple[tuple[str, str], ...]]


def _composition(c: _Collector, families: dict[str, fam.Family], slug: str | None,
                 params: dict[str, float] | None, rec: str,
                 cache: dict[_CompKey, dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The canonical composition of a record; ``cache`` keeps the ones already checked in this
    document (a table repeats compositions), each returned as a fresh copy."""
    if slug is None or params is None:
        return None
    if cache is None:
        return _composition_of(c, families, slug, params, rec)
    key = (slug, tuple((k, repr(v)) for k, v in params.items()))
    hit = cache.get(key)
    if hit is None:
        got = _composition_of(c, families, slug, params, rec)
        if got is None:
            return None
        cache[key] = hit = got
    return {
        **hit,
        "params": dict(hit["params"]),
        "composition": {k: dict(v) for k, v in hit["composition"].items()},
    }


def _composition_of(c: _Collector, families: dict[str, fam.Family], slug: str,
                    params: dict[str, float], rec: str) -> dict[str, Any] | None:
    try:
        family = families.get(slug) or fam.get_family(slug)
    except fam.CompositionError as exc:
        c.add(str(exc), rec, "family")
        return None
    try:
        clean = family.validate(params)
    except fam.CompositionError as exc:
        c.add(str(exc), rec, f"params.{exc.field}" if exc.field else "params")
        return None
    return {
        "family": family.slug,
        "params": clean,
        "params_key": fam.canonical_params_key(clean),
        "formula": family.formula(clean),
        "composition": (
            {"components": family.component_fractions(clean), **family.site_fractions(clean)}
            if family.components else family.site_fractions(clean)
        ),
    }


def prepare(doc: R.Document, file: str | Path, *, known_families: dict[str, fam.Family] | None = None,
            known_quantities: dict[str, vocabulary.QuantityDef] | None = None,
            load_arrays: bool = True, limits: Limits = DEFAULT, root: Path | None = None) -> Prepared:
    """Validate ``doc`` (read from ``file``) and convert it to canonical form; the arrays and
    structures it refers to are read within ``limits`` and must lie inside ``root`` (if given).

    Raises:
        IngestError / IngestErrors: every problem found, each naming file, record and field.
    """
    path = Path(file)
    c = _Collector(str(file))
    p = Prepared(file=str(file), base_dir=path.parent)
    families = dict(known_families or {})
    quantities = dict(known_quantities or {})
    comp_cache: dict[_CompKey, dict[str, Any]] = {}

    # sources
    srcs = ([doc.source] if doc.source else []) + list(doc.sources)
    for s in srcs:
        if s.key in p.sources:
            c.add(f"duplicate source key '{s.key}'", f"source {s.key}", "key")
        p.sources[s.key] = s.model_dump()
    p.default_source = doc.source.key if doc.source else None

    # quantities and families declared by the file
    for i, q in enumerate(doc.quantities):
        rec = f"quantities[{i}] ({q.name})"
        if q.name in vocabulary.QUANTITIES:
            c.add(f"quantity '{q.name}' is built in; do not redeclare it", rec, "name")
            continue
        if not q.categorical:
            try:
                units.parse_unit(q.unit)
            except units.UnitError as exc:
                c.add(str(exc), rec, "unit")
                continue
        d = q.model_dump()
        d["label"] = q.label or q.name
        p.quantities.append(d)
        quantities[q.name] = p.quantity_defs[q.name] = vocabulary.QuantityDef(
            q.name, q.unit, d["label"], q.min, q.max, q.categorical, q.description, q.direction, q.precision)
    for i, f in enumerate(doc.families):
        rec = f"families[{i}] ({f.slug})"
        if f.slug in fam.builtin_families():
            c.add(f"family '{f.slug}' is built in; choose another slug", rec, "slug")
            continue
        try:
            family = fam.Family.from_dict(f.model_dump(exclude_none=True))
        except (fam.FamilyDefinitionError, fam.CompositionError, KeyError, TypeError, ValueError) as exc:
            c.add(str(exc), rec, "definition")
            continue
        families[family.slug] = family
        p.families[family.slug] = family

    # chemicals
    for i, ch in enumerate(doc.chemicals):
        rec = f"chemicals[{i}] ({ch.name})"
        if ch.name in p.chemicals:
            c.add(f"duplicate chemical '{ch.name}'", rec, "name")
        d = ch.model_dump()
        d["molar_mass"] = _molar_mass(ch.formula or ch.name)
        if ch.formula and d["molar_mass"] is None:
            c.add(f"cannot parse formula '{ch.formula}'", rec, "formula")
        p.chemicals[ch.name] = d

    def source_of(key: str | None, rec: str) -> str | None:
        k = key or p.default_source
        if k is None:
            c.add("no source: give the file a 'source' or the record a 'source' key", rec, "source")
        return k

    def chem(name: str) -> None:
        if name not in p.chemicals:
            p.chemicals[name] = {"name": name, "formula": None, "supplier": None, "purity": None,
                                 "cas": None, "note": None, "molar_mass": _molar_mass(name)}

    # syntheses
    seen: set[str] = set()
    synth_by_id: dict[str, dict[str, Any]] = {}
    for i, sy in enumerate(doc.syntheses):
        rec = f"syntheses[{i}] ({sy.id})"
        if sy.id in seen:
            c.add(f"duplicate synthesis id '{sy.id}' in this file", rec, "id")
        seen.add(sy.id)
        comp = _composition(c, families, sy.family, sy.params, rec, comp_cache)
        mill = sy.mill
        hz, rpm = _freq(c, mill.frequency if mill else None, rec, "mill.frequency")
        steps = []
        for j, st in enumerate(sy.steps):
            srec = f"{rec} steps[{j}]"
            shz, srpm = _freq(c, st.frequency, srec, "frequency")
            reagents = []
            for k, r in enumerate(st.reagents):
                if r.chemical is not None:
                    chem(r.chemical)
                m, n = _amount(c, r.amount, f"{srec} reagents[{k}]", "amount")
                if r.mol_pct is not None and (not math.isfinite(r.mol_pct) or r.mol_pct < 0):
                    c.add(f"mol_pct must be a non-negative number, got {r.mol_pct}", f"{srec} reagents[{k}]", "mol_pct")
                reagents.append({"chemical": r.chemical, "sample": r.sample, "mass_mg": m, "amount_mmol": n,
                                 "mol_pct": r.mol_pct, "role": r.role if r.role != "precursor" else "reagent",
                                 "note": r.note})
            steps.append({
                "position": j + 1, "kind": st.kind,
                "duration_min": _qty(c, "duration", st.duration, srec, "duration", quantities),
                "temperature_c": _qty(c, "temperature", st.temperature, srec, "temperature", quantities),
                "atmosphere": st.atmosphere, "frequency_hz": shz, "frequency_rpm": srpm,
                "reagents": reagents, "note": st.note, "inferred": st.inferred,
                "inferred_reason": st.inferred_reason,
            })
        precursors = []
        for k, a in enumerate(sy.precursors):
            if a.chemical is not None:
                chem(a.chemical)
            m, n = _amount(c, a.amount, f"{rec} precursors[{k}]", "amount")
            precursors.append({"chemical": a.chemical, "sample": a.sample, "mass_mg": m, "amount_mmol": n,
                               "mol_pct": a.mol_pct, "role": a.role, "note": a.note})
        src = source_of(sy.source, rec)
        d = {
            "key": sy.id, "material": comp, "source": src, "locator": sy.locator,
            "provenance": sy.provenance, "method": sy.method,
            "mill_model": mill.model if mill else None, "mill_type": mill.type if mill else None,
            "frequency_hz": hz, "frequency_rpm": rpm,
            "jar_material": mill.jar_material if mill else None,
            "jar_volume_ml": _vol(c, mill.jar_volume if mill else None, rec),
            "ball_material": mill.ball_material if mill else None,
            "ball_size_mm": _len(c, mill.ball_size if mill else None, rec),
            "ball_count": mill.ball_count if mill else None,
            "ball_mass_g": _mass_g(c, mill.ball_mass if mill else None, rec),
            "ball_to_powder_ratio": mill.ball_to_powder_ratio if mill else None,
            "atmosphere": sy.atmosphere,
            "batch_mass_mg": _amount(c, sy.batch_mass, rec, "batch_mass")[0] if sy.batch_mass is not None else None,
            "date": sy.date, "operator": sy.operator, "proposal_id": sy.proposal_id, "note": sy.note,
            "inferred": sy.inferred, "inferred_reason": sy.inferred_reason,
            "precursors": precursors, "steps": steps,
        }
        p.syntheses.append(d)
        synth_by_id[sy.id] = d

    # samples
    seen = set()
    sample_ids: set[str] = set()
    for i, sa in enumerate(doc.samples):
        rec = f"samples[{i}] ({sa.id})"
        if sa.id in seen:
            c.add(f"duplicate sample id '{sa.id}' in this file", rec, "id")
        seen.add(sa.id)
        sample_ids.add(sa.id)
        comp = _composition(c, families, sa.family, sa.params, rec, comp_cache) if sa.family else None
        syn = synth_by_id.get(sa.synthesis) if sa.synthesis else None
        process: dict[str, Any] = {}
        if syn is not None:
            n = len(syn["steps"]) if sa.after_step is None else sa.after_step
            if not 0 <= n <= len(syn["steps"]):
                c.add(f"after_step {n} is outside 0..{len(syn['steps'])} (steps of {sa.synthesis})", rec, "after_step")
            else:
                process = vocabulary.derive_process(syn["steps"][:n], syn)
            if comp is not None and syn["material"] is not None and comp["params_key"] != syn["material"]["params_key"]:
                c.add("sample composition differs from its synthesis", rec, "params")
        try:
            process.update(vocabulary.normalize_process(dict(sa.process)))
        except vocabulary.ProcessError as exc:
            c.add(str(exc), rec, exc.field)
        p.samples.append({
            "key": sa.id, "synthesis": sa.synthesis, "after_step": sa.after_step, "material": comp,
            "label": sa.label, "process": process, "source": source_of(sa.source, rec),
            "locator": sa.locator, "provenance": sa.provenance, "proposal_id": sa.proposal_id,
            "note": sa.note, "outcome": sa.outcome, "inferred": sa.inferred, "inferred_reason": sa.inferred_reason,
        })

    # series
    seen = set()
    for i, se in enumerate(doc.series):
        rec = f"series[{i}] ({se.id})"
        if se.id in seen:
            c.add(f"duplicate series id '{se.id}' in this file", rec, "id")
        seen.add(se.id)
        if se.family is not None and se.family not in families and se.family not in fam.builtin_families():
            c.add(f"unknown family '{se.family}'", rec, "family")
        if len(set(se.samples)) != len(se.samples):
            c.add("a sample is listed twice", rec, "samples")
        p.series.append({
            "key": se.id, "title": se.title, "family": se.family, "samples": list(se.samples),
            "source": source_of(se.source, rec), "locator": se.locator, "provenance": se.provenance,
            "note": se.note,
        })

    # measurements
    seen = set()
    counters: dict[str, int] = {}
    for i, me in enumerate(doc.measurements):
        target = me.sample or (f"series:{me.series}" if me.series else None) or (
            f"{me.family}:{json.dumps(me.params, sort_keys=True)}" if me.family else "?")
        base = f"{target}/{me.technique}"
        counters[base] = counters.get(base, 0) + 1
        key = me.id or f"{base}/{counters[base]}"
        rec = f"measurements[{i}] ({key})"
        if key in seen:
            c.add(f"duplicate measurement id '{key}' in this file", rec, "id")
        seen.add(key)
        comp = _composition(c, families, me.family, me.params, rec, comp_cache) if me.family else None
        conditions: dict[str, Any] = {}
        for ck, cv in me.conditions.items():
            if ck in vocabulary.QUANTITIES or ck in quantities:
                qd = vocabulary.quantity_def(ck, quantities)
                if qd.categorical or (isinstance(cv, str) and not _looks_numeric(cv)):
                    conditions[ck] = cv if isinstance(cv, str) else str(cv)
                else:
                    v = _qty(c, ck, cv, rec, f"conditions.{ck}", quantities)
                    if v is not None:
                        conditions[ck] = {"value": v, "unit": qd.unit}
            else:
                conditions[ck] = cv.model_dump() if isinstance(cv, R.ValueUnit) else cv
        results = []
        for j, res in enumerate(me.results):
            rres = _result(c, res, f"{rec} results[{j}]", quantities)
            if rres is not None:
                rres["position"] = j
                results.append(rres)
        arrays = []
        for j, arr in enumerate(me.arrays):
            arec = f"{rec} arrays[{j}]"
            if load_arrays:
                try:
                    from ingest.readers import load_array

                    data = load_array(arr, p.base_dir, limits, root)
                    _check_array(data)
                except IngestError as exc:
                    c.errors.append(exc.located(file=str(file), record=arec))
                    continue
                arrays.append({"position": j, "record": arr.model_dump(), "data": data})
        structures = []
        for j, struct in enumerate(me.structures):
            try:
                structures.append(load_structure(struct, p.base_dir, limits, root))
            except IngestError as exc:
                c.errors.append(exc.located(file=str(file), record=f"{rec} structures[{j}]"))
        p.measurements.append({
            "key": key, "sample": me.sample, "series": me.series, "material": comp, "technique": me.technique,
            "instrument": me.instrument, "conditions": conditions,
            "source": source_of(me.source, rec), "locator": me.locator, "provenance": me.provenance,
            "note": me.note, "inferred": me.inferred, "inferred_reason": me.inferred_reason,
            "results": results, "arrays": arrays, "structures": structures,
        })

    # sources, samples and series a record refers to may exist in the database: the loader checks them
    c.raise_if_any()
    return p


STRUCTURE_FORMATS = {"cif": "cif", "poscar": "vasp", "extxyz": "extxyz", "xyz": "extxyz"}


def load_structure(st: R.StructureRecord, base_dir: Path, limits: Limits = DEFAULT,
                   root: Path | None = None) -> dict[str, Any]:
    """Read a structure file with ASE; return the Structure row's columns (text kept verbatim)."""
    import ase.io

    from ingest.readers._common import contained

    path = contained(base_dir / st.file, root, "the structure file", file=None, field="file")
    check_size(path, "structure_mb", limits)
    fmt = st.format or ("poscar" if path.name.upper().startswith(("POSCAR", "CONTCAR")) or path.suffix == ".vasp"
                        else path.suffix.lstrip(".").lower())
    if fmt not in STRUCTURE_FORMATS:
        raise IngestError(f"unknown structure format '{fmt}' (cif, poscar, extxyz)", file=str(path), field="format")
    try:
        raw = path.read_bytes()
        content = raw.decode("utf-8")
    except OSError as exc:
        raise IngestError(f"cannot read structure file: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise IngestError(f"structure file is not UTF-8 text (byte {exc.start})", file=str(path)) from None
    try:
        atoms = ase.io.read(path, format=STRUCTURE_FORMATS[fmt])
    except Exception as exc:  # ASE raises many types for malformed files
        raise IngestError(f"cannot parse {fmt} structure: {exc}".splitlines()[0], file=str(path)) from None
    if isinstance(atoms, list):
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise IngestError("structure has no atoms", file=str(path))
    return {"format": fmt, "formula": atoms.get_chemical_formula(mode="reduce"), "n_atoms": len(atoms),
            "content": content, "sha256": hashlib.sha256(raw).hexdigest(), "description": st.description}


def _looks_numeric(s: str) -> bool:
    try:
        units.parse_quantity_text(s)
        return True
    except units.UnitError:
        return False


def _vol(c: _Collector, spec: Any, rec: str) -> float | None:
    return _conv(c, spec, "mL", rec, "mill.jar_volume")


def _len(c: _Collector, spec: Any, rec: str) -> float | None:
    return _conv(c, spec, "mm", rec, "mill.ball_size")


def _mass_g(c: _Collector, spec: Any, rec: str) -> float | None:
    return _conv(c, spec, "g", rec, "mill.ball_mass")


def _conv(c: _Collector, spec: Any, unit: str, rec: str, fld: str) -> float | None:
    if spec is None:
        return None
    try:
        if isinstance(spec, R.ValueUnit):
            v, u = spec.value, spec.unit
        elif isinstance(spec, str):
            v, u = units.parse_quantity_text(spec)
        else:
            v, u = float(spec), unit
        out = units.convert(v, u or unit, unit)
        if not math.isfinite(out) or out < 0:
            raise units.UnitError(f"must be a non-negative number, got {v}")
        return out
    except units.UnitError as exc:
        c.add(str(exc), rec, fld)
        return None


def _result(c: _Collector, r: R.ResultRecord, rec: str,
            quantities: dict[str, vocabulary.QuantityDef]) -> dict[str, Any] | None:
    try:
        qd = vocabulary.quantity_def(r.quantity, quantities)
    except units.UnitError as exc:
        c.add(str(exc), rec, "quantity")
        return None
    out: dict[str, Any] = {
        "quantity": r.quantity, "value": None, "unit": qd.unit, "uncertainty": None,
        "approximate": r.approximate, "range_low": None, "range_high": None, "text": r.text,
        "label": r.label, "reported_value": None, "reported_unit": None, "locator": r.locator,
        "note": r.note, "inferred": r.inferred, "inferred_reason": r.inferred_reason,
    }
    if qd.categorical:
        if r.value is not None or r.range is not None:
            c.add(f"'{r.quantity}' is categorical: give 'text', not a number", rec, "value")
            return None
        if not r.text:
            c.add(f"categorical quantity '{r.quantity}' needs a 'text' value", rec, "text")
            return None
        return out
    if r.text is not None and r.value is None and r.range is None:
        c.add(f"'{r.quantity}' is numeric: give 'value' (or 'range'), not 'text'", rec, "text")
        return None
    given_unit = None
    if r.value is not None:
        spec: Any = r.value
        if isinstance(spec, R.ValueUnit):
            raw_v, given_unit = spec.value, spec.unit
        elif isinstance(spec, str):
            try:
                raw_v, given_unit = units.parse_quantity_text(spec)
            except units.UnitError as exc:
                c.add(str(exc), rec, "value")
                return None
            if not given_unit and r.unit:
                given_unit = r.unit
        else:
            raw_v, given_unit = float(spec), r.unit
        try:
            out["value"], _ = vocabulary.to_canonical(r.quantity, raw_v, given_unit, quantities)
        except units.UnitError as exc:
            c.add(str(exc), rec, exc.field or "value")
            return None
        if given_unit is not None and units.parse_unit(given_unit) != units.parse_unit(qd.unit):
            out["reported_value"], out["reported_unit"] = repr(raw_v), given_unit
    if r.range is not None:
        lo = _range_end(c, r, r.range[0], rec, quantities)
        hi = _range_end(c, r, r.range[1], rec, quantities)
        if lo is None or hi is None:
            return None
        if lo > hi:
            c.add(f"range low {lo:g} is above high {hi:g}", rec, "range")
            return None
        out["range_low"], out["range_high"] = lo, hi
    if r.value is None and r.range is None and r.text is None:
        c.add(f"result '{r.quantity}' has no value, range or text", rec, "value")
        return None
    if r.uncertainty is not None:
        if not math.isfinite(r.uncertainty) or r.uncertainty < 0:
            c.add(f"uncertainty must be a non-negative number, got {r.uncertainty}", rec, "uncertainty")
            return None
        u = given_unit if r.value is not None and given_unit else qd.unit
        try:
            out["uncertainty"] = abs(units.convert(r.uncertainty, u, qd.unit)
                                     - units.convert(0.0, u, qd.unit))
        except units.UnitError as exc:
            c.add(str(exc), rec, "uncertainty")
            return None
    return out


def _range_end(c: _Collector, r: R.ResultRecord, spec: Any, rec: str,
               quantities: dict[str, vocabulary.QuantityDef]) -> float | None:
    try:
        if isinstance(spec, R.ValueUnit):
            return vocabulary.to_canonical(r.quantity, spec.value, spec.unit, quantities)[0]
        if isinstance(spec, str):
            v, u = units.parse_quantity_text(spec)
            return vocabulary.to_canonical(r.quantity, v, u or r.unit, quantities)[0]
        return vocabulary.to_canonical(r.quantity, spec, r.unit, quantities)[0]
    except units.UnitError as exc:
        c.add(str(exc), rec, "range")
        return None


def _check_array(data: ArrayData) -> None:
    import numpy as np

    v = np.asarray(data.values)
    if v.size == 0:
        raise IngestError("array is empty", field="values")
    if not np.issubdtype(v.dtype, np.number):
        raise IngestError("array values are not numeric", field="values")
    if not np.all(np.isfinite(v)):
        raise IngestError("array contains NaN or infinite values", field="values")
    for dim, (name, (coords, _unit)) in enumerate(data.axes.items()):
        if dim < v.ndim and len(coords) != v.shape[dim]:
            raise IngestError(
                f"axis '{name}' has {len(coords)} points but the values have {v.shape[dim]}", field=name
            )
        if not np.all(np.isfinite(np.asarray(coords, dtype=float))):
            raise IngestError(f"axis '{name}' contains NaN or infinite values", field=name)
    if data.kind == "tlis_reflectance":
        if data.reference is None:
            raise IngestError("reflectance run needs a reference spectrum (PTFE); none given", field="reference")
        if len(data.reference) != v.shape[-1]:
            raise IngestError(
                f"reference has {len(data.reference)} points, the run has {v.shape[-1]} wavelengths",
                field="reference",
            )


def _molar_mass(formula: str | None) -> float | None:
    if not formula:
        return None
    try:
        from pymatgen.core import Composition

        return float(Composition(formula).weight)
    except Exception:  # pymatgen raises assorted errors for non-formulas ("agZIF-62")
        return None


def main(argv: list[str] | None = None) -> int:
    """Validate record files without a database; print errors; exit 1 if any."""
    import sys

    from ingest.readers import read_file

    bad = 0
    for arg in argv if argv is not None else sys.argv[1:]:
        try:
            doc = read_file(Path(arg))
            prep = prepare(doc, arg)
            print(f"ok  {arg}: {len(prep.syntheses)} syntheses, {len(prep.samples)} samples, "
                  f"{len(prep.measurements)} measurements, "
                  f"{sum(len(m['results']) for m in prep.measurements)} results")
        except IngestError as exc:
            bad += 1
            print(f"ERR {exc}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
