"""Shared helpers of the readers: text decoding, header metadata, sidecars, sources and targets.

A standalone lab file (a TLIS run, a pXRD pattern, a JCAMP-DX spectrum, a structure) says which
sample or material it belongs to either in ``#`` header comments::

    # sample: xiao2025-x0.8
    # family: FAMAPbI3
    # params: {"x": 0.8}

or in a sidecar ``<file>.meta.yaml`` (e.g. ``run1.csv.meta.yaml``) with the same keys.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from ingest.errors import IngestError
from ingest.limits import DEFAULT, LimitError, Limits, check_size
from ingest.records import (
    Document,
    MeasurementRecord,
    SampleRecord,
    SourceRecord,
)
from matdb.families import CompositionError, builtin_families, canonical_params_key
from matdb.units import UnitError
from matdb.vocabulary import (
    PROVENANCES,
    TECHNIQUES,
    IdentifierError,
    check_identifier,
    safe_id_part,
    to_canonical,
)

#: Keys understood in header comments and sidecars of standalone files.
META_KEYS: dict[str, str] = {
    "sample": "sample id the data belong to",
    "family": "material family slug, e.g. FAMAPbI3",
    "params": 'composition parameters as JSON, e.g. {"x": 0.8}',
    "process": 'process parameters as JSON, e.g. {"milling_frequency_hz": 20}',
    "label": "sample label",
    "provenance": "literature | measured | simulated (default: measured)",
    "source": "source key (free text), e.g. a notebook or 'simulator'",
    "source_doi": "DOI of the publication the data come from",
    "doi": "same as source_doi",
    "locator": "figure/table/section in the source",
    "source_locator": "same as locator",
    "technique": "technique key (pxrd, pl, uv_vis, ...)",
    "instrument": "instrument name",
    "operator": "who measured",
    "date": "measurement date",
    "proposal_id": "id of the screening proposal the sample was made for",
    "note": "free text",
    "wavelength": "X-ray wavelength for pXRD, e.g. '1.5406 angstrom'",
    "mode": "TLIS mode: reflectance | pl",
    "integration_time": "detector integration time, e.g. '100 ms'",
    "excitation_wavelength": "PL excitation wavelength, e.g. '405 nm'",
    "reference": "PTFE reference spectrum file of a reflectance run",
    "time_unit": "unit of the TLIS time axis (default min)",
    "matdb-tlis": "TLIS CSV format version",
    "kind": "array kind (pl_spectrum, absorption_spectrum, ...)",
    "description": "structure description",
}

_HEADER_RE = re.compile(r"^\s*[#!;]\s*([A-Za-z][\w\- ]*?)\s*:\s*(.*?)\s*$")


def fail(
    message: str,
    path: Path | str | None = None,
    *,
    line: int | None = None,
    record: str | None = None,
    field: str | None = None,
) -> IngestError:
    """Build an IngestError (callers ``raise fail(...)``)."""
    return IngestError(
        message, file=str(path) if path is not None else None, line=line, record=record, field=field
    )


def read_bytes(path: Path, limits: Limits = DEFAULT, key: str = "records_mb") -> bytes:
    """The file's bytes; a missing or unreadable file, or one over the ``key`` size limit (checked
    before reading), is an IngestError."""
    check_size(path, key, limits)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise fail("file not found", path) from None
    except IsADirectoryError:
        raise fail("is a directory, not a file", path) from None
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}", path) from None


def decode_text(data: bytes, path: Path) -> str:
    """Decode UTF-8 (a BOM is allowed); empty, binary or non-UTF-8 input is an IngestError."""
    if not data.strip():
        raise fail("file is empty", path)
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        line = data.count(b"\n", 0, offset) + 1
        raise fail(
            f"not UTF-8 text: byte 0x{data[offset]:02x} at byte offset {offset} cannot be decoded; "
            "save the file as UTF-8",
            path,
            line=line,
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise fail(
            "contains NUL bytes; this looks like a binary file, not text",
            path,
            line=text.count("\n", 0, nul) + 1,
        )
    if not text.strip():
        raise fail("file is empty", path)
    return text


def read_text(path: Path, limits: Limits = DEFAULT, key: str = "records_mb") -> str:
    return decode_text(read_bytes(path, limits, key), path)


def contained(path: Path, root: Path | None, what: str, *, file: Path | str | None,
              field: str | None = None, record: str | None = None) -> Path:
    """``path`` if it lies inside ``root`` (the folder the load started from), else an
    IngestError that names the reference but nothing read from the file (it is not opened)."""
    if root is None:
        return path
    try:
        inside = path.resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise fail(f"{what} '{path.name}' lies outside the folder the ingest started from "
                   f"({root}); only files inside it are read", file, field=field, record=record)
    return path


def header_comments(
    lines: list[str], prefixes: tuple[str, ...] = ("#",)
) -> tuple[dict[str, str], dict[str, int]]:
    """``# key: value`` lines anywhere among ``lines`` -> (meta, key -> 1-based line number).

    Keys are lower-cased with spaces/dashes turned into underscores (except ``matdb-tlis``).
    """
    meta: dict[str, str] = {}
    where: dict[str, int] = {}
    for i, raw in enumerate(lines):
        s = raw.lstrip()
        if not s.startswith(prefixes):
            continue
        m = _HEADER_RE.match("#" + s[1:] if s[0] != "#" else s)
        if not m:
            continue
        key = m.group(1).strip().lower()
        if key != "matdb-tlis":
            key = re.sub(r"[\s\-]+", "_", key)
        if key not in META_KEYS:
            continue  # free-text comment such as "# Instrument: Bruker D8"
        meta[key] = m.group(2)
        where[key] = i + 1
    return meta, where


def sidecar_path(path: Path) -> Path | None:
    """``run1.csv.meta.yaml`` (or ``run1.meta.yaml``) next to ``path``, if it exists."""
    for cand in (
        path.with_name(path.name + ".meta.yaml"),
        path.with_name(path.stem + ".meta.yaml"),
        path.with_name(path.name + ".meta.yml"),
    ):
        if cand.is_file() and cand != path:
            return cand
    return None


class _BudgetLoader(yaml.SafeLoader):
    """yaml.SafeLoader that counts nodes while composing, every alias by the size of what it
    expands to, and refuses a document over ``yaml_nodes``, ``depth`` or ``text_chars`` before
    anything is constructed (a 1 KB "billion laughs" document never grows)."""

    def __init__(self, stream: str, limits: Limits, path: Path) -> None:
        super().__init__(stream)
        self.limits, self.path = limits, path
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)
        self.level = 0

    def _limit(self, key: str, what: str, node: yaml.Node | None) -> LimitError:
        line = node.start_mark.line + 1 if node is not None and node.start_mark else None
        return LimitError(key, what, file=str(self.path), line=line, limits=self.limits)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.level += 1
        if self.level > self.limits.depth:
            raise self._limit("depth", "the document is nested too deeply", None)
        alias = self.check_event(yaml.AliasEvent)
        if alias:
            target = self.anchors.get(self.peek_event().anchor)
            if target is not None and id(target) not in self.sizes:
                raise fail("malformed YAML: an anchor refers to itself", self.path,
                           line=target.start_mark.line + 1)
        try:
            # PyYAML's composer returns a node or raises; its stub says Node | None
            node = cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self.level -= 1
        if alias:
            size, depth = self.sizes[id(node)]  # counted again, by everything it stands for
        elif isinstance(node, yaml.ScalarNode):
            if len(node.value) > self.limits.text_chars:
                raise self._limit("text_chars", f"a text value has {len(node.value)} characters", node)
            size, depth = 1, 1
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [c for kv in node.value for c in kv]
            size, depth = 1, 1
            for c in children:
                got = self.sizes[id(c)]
                size += got[0]
                depth = max(depth, got[1] + 1)
        self.sizes[id(node)] = (size, depth)
        if size > self.limits.yaml_nodes:
            raise self._limit("yaml_nodes", "the document expands to too many values (YAML aliases count "
                              "each time they are used)", node)
        if depth + self.level > self.limits.depth:
            raise self._limit("depth", "the document is nested too deeply (YAML aliases included)", node)
        return node


def load_yaml_text(text: str, path: Path, limits: Limits = DEFAULT) -> Any:
    """yaml.safe_load within ``limits`` (nodes with alias expansions, depth, text size), with the
    error's line number in an IngestError."""
    loader: _BudgetLoader | None = None
    try:
        loader = _BudgetLoader(text, limits, path)  # the reader rejects control characters here already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise fail(f"malformed YAML: {problem}", path, line=line) from None
    except RecursionError:
        raise fail("malformed YAML: nesting too deep", path) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_sidecar(path: Path, limits: Limits = DEFAULT) -> tuple[dict[str, Any], Path | None]:
    """Metadata from the sidecar of ``path`` ({} if there is none)."""
    side = sidecar_path(path)
    if side is None:
        return {}, None
    data = load_yaml_text(read_text(side, limits), side, limits)
    if data is None:
        return {}, side
    if not isinstance(data, dict):
        raise fail("a .meta.yaml sidecar must be a mapping of key: value", side)
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = str(k).strip().lower()
        if key != "matdb-tlis":
            key = re.sub(r"[\s\-]+", "_", key)
        if key not in META_KEYS:
            raise fail(
                f"unknown key '{k}'; known keys: {', '.join(sorted(META_KEYS))}", side, field=str(k)
            )
        out[key] = v
    return out, side


def merge_meta(
    path: Path, header: dict[str, Any], header_lines: dict[str, int], limits: Limits = DEFAULT
) -> tuple[dict[str, Any], dict[str, int]]:
    """Header comments plus the sidecar; a key given differently in both is an IngestError."""
    side, side_path = read_sidecar(path, limits)
    meta = dict(header)
    for k, v in side.items():
        if k in meta and _norm(meta[k]) != _norm(v):
            assert side_path is not None  # read_sidecar returns keys only together with the sidecar's path
            raise fail(
                f"'{k}' is '{meta[k]}' in the file header but '{v}' in {side_path.name}; "
                "give it in one place",
                path,
                line=header_lines.get(k),
                field=k,
            )
        meta[k] = v
    return meta, header_lines


def _norm(v: Any) -> str:
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return v.strip()
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v).strip()


def json_mapping(
    value: Any, path: Path, key: str, line: int | None, *, numeric: bool
) -> dict[str, Any]:
    """A JSON object from a header value (or an already parsed mapping from a sidecar)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise fail(
                f"'{key}' must be a JSON object such as {{\"x\": 0.8}}: {exc}",
                path,
                line=line,
                field=key,
            ) from None
    if not isinstance(value, dict):
        raise fail(
            f"'{key}' must be a JSON object such as {{\"x\": 0.8}}, got {value!r}",
            path,
            line=line,
            field=key,
        )
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, str) and not numeric:
            out[str(k)] = v
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            what = "a number" if numeric else "a number or text"
            raise fail(f"{key}.{k} must be {what}, got {v!r}", path, line=line, field=f"{key}.{k}")
        try:
            v = float(v)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            raise fail(f"{key}.{k} is not a finite number", path, line=line, field=f"{key}.{k}")
        out[str(k)] = v
    return out


def check_composition(
    family: str,
    params: Mapping[str, float],
    path: Path,
    *,
    line: int | None = None,
    record: str | None = None,
    field_prefix: str = "params",
    families: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Validate a composition of a built-in family or one of ``families`` (user-defined families
    from the database or the same ingest batch); a family unknown here is checked by the loader."""
    fam = (families or {}).get(family) or builtin_families().get(family)
    if fam is None:
        return dict(params)
    try:
        return fam.validate(params)
    except CompositionError as exc:
        f = exc.field
        fld = f"{field_prefix}.{f}" if f and f in fam.parameters else (f or field_prefix)
        raise fail(f"{family}: {exc}", path, line=line, record=record, field=fld) from None


def check_process(
    process: Mapping[str, Any],
    path: Path,
    *,
    line: int | None = None,
    record: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """Validate process parameters with matdb.process (names, units, no negative times)."""
    from matdb.vocabulary import ProcessError, normalize_process

    try:
        return normalize_process(dict(process))
    except ProcessError as exc:
        raise fail(str(exc), path, line=line, record=record, field=field or exc.field) from None


def check_condition(name: str, text: Any, path: Path, line: int | None) -> str:
    """Validate a measurement condition such as integration_time '100 ms'; return it as text."""
    from matdb.vocabulary import parse_quantity

    try:
        parse_quantity(name, text)
    except UnitError as exc:
        raise fail(f"{name}: {exc}", path, line=line, field=name) from None
    return str(text)


def canonical_value(
    quantity: str,
    value: float,
    unit: str | None,
    path: Path,
    *,
    line: int | None,
    record: str | None,
    field: str,
) -> float:
    """to_canonical with a located IngestError."""
    try:
        return to_canonical(quantity, value, unit)[0]
    except UnitError as exc:
        raise fail(str(exc), path, line=line, record=record, field=field) from None


def make_source(
    doi: str | None,
    key: str | None,
    provenance: str | None,
    default_key: str,
    note: str | None = None,
) -> SourceRecord:
    """Sources are keyed by DOI (kind publication); otherwise a notebook (or simulation) source."""
    if doi:
        return SourceRecord(key=key or doi, kind="publication", doi=doi)
    kind = "simulation" if provenance == "simulated" and key else "notebook"
    return SourceRecord(key=key or default_key, kind=kind, note=note)



def standalone_document(
    path: Path,
    meta: dict[str, Any],
    lines: dict[str, int],
    *,
    technique: str,
    arrays: list[Any] | None = None,
    structures: list[Any] | None = None,
    conditions: dict[str, Any] | None = None,
) -> Document:
    """The Document for one standalone data file (spectrum, pattern, run or structure).

    The data belong to ``meta['sample']`` (a sample created here when ``family`` and ``params``
    are also given, else one that must already exist), or, without a sample id, directly to the
    composition ``family`` + ``params`` (as for calculations).
    """
    sample = _opt_str(meta.get("sample"))
    if sample is not None:
        try:
            check_identifier(sample, "sample")
        except IdentifierError as exc:
            raise fail(str(exc), path, line=lines.get("sample"), field="sample") from None
    family = _opt_str(meta.get("family"))
    params_raw = meta.get("params")
    if sample is None and (family is None or params_raw is None):
        raise fail(
            "which sample or material is this? add header lines '# sample: <id>' (an existing "
            "sample) or '# family: <slug>' and '# params: {\"x\": 0.8}', or put the same keys in "
            f"a sidecar file {path.name}.meta.yaml",
            path,
            field="sample",
        )
    if (family is None) != (params_raw is None):
        missing = "params" if family else "family"
        raise fail(
            f"'family' and 'params' go together; add '{missing}'",
            path,
            line=lines.get("family") or lines.get("params"),
            field=missing,
        )
    params = None
    if family is not None:
        params = json_mapping(params_raw, path, "params", lines.get("params"), numeric=True)
        params = check_composition(family, params, path, line=lines.get("params"))
    process: dict[str, Any] = {}
    if meta.get("process") is not None:
        process = json_mapping(
            meta["process"], path, "process", lines.get("process"), numeric=False
        )
        check_process(process, path, line=lines.get("process"))
    prov = _opt_str(meta.get("provenance")) or "measured"
    if prov not in PROVENANCES:
        raise fail(
            f"provenance must be one of {', '.join(PROVENANCES)}, not '{prov}'",
            path,
            line=lines.get("provenance"),
            field="provenance",
        )
    tech = _opt_str(meta.get("technique")) or technique
    if tech not in TECHNIQUES:
        raise fail(
            f"unknown technique '{tech}'; use one of {', '.join(TECHNIQUES)}",
            path,
            line=lines.get("technique"),
            field="technique",
        )
    doi = _opt_str(meta.get("source_doi") or meta.get("doi"))
    src = make_source(doi, _opt_str(meta.get("source")), prov, path.stem)
    locator = _opt_str(meta.get("locator") or meta.get("source_locator"))
    samples = []
    target: dict[str, Any]
    if sample is not None:
        target = {"sample": sample}
        if family is not None:
            samples.append(
                SampleRecord(
                    id=sample,
                    family=family,
                    params=params,
                    process=process,
                    label=_opt_str(meta.get("label")),
                    source=src.key,
                    locator=locator,
                    provenance=prov,
                    proposal_id=_opt_str(meta.get("proposal_id")),
                )
            )
        mid = f"{sample}:{safe_id_part(path.name)}"
    else:
        target = {"family": family, "params": params}
        mid = f"{family}-{canonical_params_key(params or {})}:{safe_id_part(path.name)}"
    note_parts = [f"{k}: {meta[k]}" for k in ("operator", "date") if meta.get(k)]
    if meta.get("note"):
        note_parts.append(str(meta["note"]))
    meas = MeasurementRecord(
        id=mid,
        technique=tech,
        instrument=_opt_str(meta.get("instrument")),
        conditions=conditions or {},
        source=src.key,
        locator=locator,
        provenance=prov,
        arrays=arrays or [],
        structures=structures or [],
        note="; ".join(note_parts) or None,
        **target,
    )
    return Document(sources=[src], samples=samples, measurements=[meas])


def _opt_str(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None
