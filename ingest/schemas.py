"""JSON Schemas of the record format, generated from the pydantic models (one source of truth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.records import RECORD_TYPES

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def schema_of(name: str) -> dict[str, Any]:
    s = RECORD_TYPES[name].model_json_schema(mode="validation")
    return {"$schema": SCHEMA_URI, "$id": f"matdb/{name}.schema.json", **s}


def render(name: str) -> str:
    return json.dumps(schema_of(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(folder: str | Path) -> list[Path]:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in RECORD_TYPES:
        p = out / f"{name}.schema.json"
        p.write_text(render(name), encoding="utf-8")
        paths.append(p)
    return paths
