"""Reader for matdb record documents (YAML or JSON; see ``ingest.records``).

Validation errors of the pydantic models become :class:`IngestError` s that name the file, the
record ("samples[2] (id xiao2025-x0.8)"), the field path ("params.x") and, when the document is
YAML/JSON text we can map back, the line of the offending value.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ingest.errors import IngestError, IngestErrors
from ingest.limits import DEFAULT, LimitError, Limits
from ingest.readers._common import contained, fail, load_yaml_text
from ingest.records import Document

#: Cap on the number of errors reported for one file.
MAX_ERRORS = 20


def read_records(path: Path, text: str, limits: Limits = DEFAULT, root: Path | None = None) -> Document:
    """Parse and validate a record document within ``limits``; files it refers to must lie in
    ``root`` (the folder the ingest started from), if given."""
    if path.name.endswith((".meta.yaml", ".meta.yml")):
        data_file = path.name.rsplit(".meta.", 1)[0]
        raise fail(f"this is the metadata sidecar of '{data_file}'; ingest that file instead", path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail(
                f"malformed JSON: {exc.msg} (column {exc.colno})", path, line=exc.lineno
            ) from None
        except RecursionError:
            raise fail("malformed JSON: nesting too deep", path) from None
    else:
        data = load_yaml_text(text, path, limits)
    if data is None:
        raise fail("the file contains no records", path)
    if not isinstance(data, dict):
        raise fail(
            "the top level must be a mapping with keys such as 'matdb', 'source', 'samples', "
            f"'measurements'; got a {type(data).__name__}",
            path,
            line=1,
        )
    try:
        data = _Plain(limits, path)(data)
    except _BadText as exc:
        raise fail(
            "text contains an invalid Unicode character (an unpaired surrogate such as \\ud800, "
            "which no database can store); fix or remove it",
            path,
            field=exc.where or None,
        ) from None
    except RecursionError:
        raise fail(
            "the document is nested too deeply (or refers to itself through YAML anchors)", path
        ) from None
    locate = _Locator(text)
    try:
        doc = Document.model_validate(data)
    except ValidationError as exc:
        raise _convert(exc, data, path, locate) from None
    except RecursionError:
        raise fail("the document is nested too deeply", path) from None
    _check_ids(doc, data, path, locate)
    _check_files(doc, path, locate, root)
    return doc


class _BadText(ValueError):
    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


def _check_text(s: str, where: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes in JSON/YAML
        raise _BadText(where) from None
    return s


class _Plain:
    """YAML dates/datetimes -> ISO text (record fields are text); keys -> str; text must be
    valid Unicode (storable as UTF-8); the document within the limits (values, depth, text size;
    for YAML these were checked while composing, for JSON they are checked here)."""

    def __init__(self, limits: Limits, path: Path) -> None:
        self.limits, self.path, self.nodes = limits, path, 0

    def _limit(self, key: str, what: str, where: str) -> LimitError:
        return LimitError(key, f"{what} (at {where or 'the top level'})", file=str(self.path),
                          limits=self.limits)

    def __call__(self, obj: Any, depth: int = 1, where: str = "") -> Any:
        self.nodes += 1
        if self.nodes > self.limits.yaml_nodes:
            raise self._limit("yaml_nodes", "the document has too many values", where)
        if depth > self.limits.depth:
            raise self._limit("depth", "the document is nested too deeply", where)
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                key = self._text(k if isinstance(k, str) else str(k), where)
                out[key] = self(v, depth + 1, f"{where}.{key}" if where else key)
            return out
        if isinstance(obj, list):
            return [self(v, depth + 1, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, str):
            return self._text(obj, where)
        if isinstance(obj, (dt.date, dt.datetime)):
            return obj.isoformat()
        return obj

    def _text(self, s: str, where: str) -> str:
        if len(s) > self.limits.text_chars:
            raise self._limit("text_chars", f"a text value has {len(s)} characters", where)
        return _check_text(s, where)


class _Locator:
    """Maps a path of keys/indices in the document to a line, via the YAML node tree."""

    def __init__(self, text: str) -> None:
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
        except Exception:  # noqa: BLE001 - a best-effort line lookup; the data already parsed
            self.root = None
        self.text = text

    def line(self, loc: list[Any]) -> int | None:
        node = self.root
        if node is None:
            return None
        found = node.start_mark.line + 1
        for part in loc:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if str(getattr(k, "value", None)) == str(part):
                        nxt = v
                        found = k.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if 0 <= part < len(node.value):
                    nxt = node.value[part]
                    found = nxt.start_mark.line + 1
            if nxt is None:
                break
            node = nxt
        return found

    def search(self, needle: str) -> int | None:
        i = self.text.find(needle)
        return None if i < 0 else self.text.count("\n", 0, i) + 1


def _clean_loc(loc: tuple[Any, ...], data: Any, err_type: str) -> list[Any]:
    """Drop pydantic's union-member tags ('str', 'ValueUnit', ...) from an error location."""
    out: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        else:
            if i == len(loc) - 1 and err_type == "missing" and isinstance(part, str):
                out.append(part)
            break
    return out


def _record_label(loc: list[Any], data: dict[str, Any]) -> tuple[str | None, list[Any]]:
    """("samples[2] (id xiao2025-x0.8)", rest of the path) for a cleaned location."""
    if not loc:
        return None, []
    head = loc[0]
    if len(loc) >= 2 and isinstance(loc[1], int):
        item = data.get(head, [None])[loc[1]] if isinstance(data.get(head), list) else None
        label = f"{head}[{loc[1]}]"
        if isinstance(item, dict):
            ident = item.get("id", item.get("key", item.get("slug", item.get("name"))))
            if isinstance(ident, (str, int, float)):
                label += f" (id {ident})"
        return label, loc[2:]
    if head in ("source", "matdb"):
        return head, loc[1:]
    return None, loc


def _field_text(parts: list[Any]) -> str | None:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


def _convert(
    exc: ValidationError, data: dict[str, Any], path: Path, locate: _Locator
) -> IngestError:
    grouped: dict[tuple[Any, ...], list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err.get("loc", ())), data, err.get("type", ""))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (check the spelling; see the record format in schemas/)"
        elif err.get("type") == "literal_error":
            msg = msg.replace("Input should be", "must be")
        msgs = grouped.setdefault(tuple(loc), [])
        if msg not in msgs:
            msgs.append(msg)
    errors: list[IngestError] = []
    for loc_t, msgs in list(grouped.items())[:MAX_ERRORS]:
        loc = list(loc_t)
        record, rest = _record_label(loc, data)
        line = locate.line(loc)
        if line is None and record and "(id " in record:
            line = locate.search(record.split("(id ", 1)[1].rstrip(")"))
        message = msgs[0] if len(msgs) == 1 else "; or ".join(msgs)
        errors.append(
            IngestError(message, file=str(path), record=record, field=_field_text(rest), line=line)
        )
    return errors[0] if len(errors) == 1 else IngestErrors(errors)


def _check_ids(doc: Document, data: dict[str, Any], path: Path, locate: _Locator) -> None:
    groups: dict[str, Sequence[str | None]] = {
        "sources": [s.key for s in doc.sources] + ([doc.source.key] if doc.source else []),
        "syntheses": [s.id for s in doc.syntheses],
        "samples": [s.id for s in doc.samples],
        "measurements": [m.id for m in doc.measurements],
        "quantities": [q.name for q in doc.quantities],
        "families": [f.slug for f in doc.families],
        "chemicals": [c.name for c in doc.chemicals],
    }
    for group, ids in groups.items():
        seen: dict[str, int] = {}
        for i, ident in enumerate(ids):
            if ident is None:
                continue
            if ident in seen:
                line = locate.line([group, i]) if i < len(data.get(group) or []) else None
                raise fail(
                    f"duplicate id '{ident}' (also {group}[{seen[ident]}])",
                    path,
                    line=line,
                    record=f"{group}[{i}] (id {ident})",
                    field="id",
                )
            seen[ident] = i


def _check_files(doc: Document, path: Path, locate: _Locator, root: Path | None = None) -> None:
    base = path.parent
    for i, m in enumerate(doc.measurements):
        rid = f"measurements[{i}]" + (f" (id {m.id})" if m.id else "")
        refs = [("arrays", j, "file", a.file) for j, a in enumerate(m.arrays) if a.format != "tlis_folder"]
        refs += [("arrays", j, "reference", a.reference) for j, a in enumerate(m.arrays)]
        refs += [("structures", j, "file", s.file) for j, s in enumerate(m.structures)]
        for j, a in enumerate(m.arrays):
            if a.format == "tlis_folder" and a.file is not None:
                contained(base / a.file, root, "the referenced folder", file=path, record=rid,
                          field=f"arrays[{j}].file")
        for group, j, fld, name in refs:
            if name is None:
                continue
            where = {"record": rid, "field": f"{group}[{j}].{fld}"}
            contained(base / name, root, "the referenced file", file=path, **where)
            if not (base / name).is_file():
                raise fail(
                    f"file '{name}' not found (paths are relative to {base})",
                    path,
                    line=locate.line(["measurements", i, group, j, fld]),
                    record=rid,
                    field=f"{group}[{j}].{fld}",
                )
