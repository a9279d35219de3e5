"""Exploring samples: the sample table, its filters (run in SQL by :func:`matdb.query.samples`),
the value of one quantity per sample, and the whole story of one sample (synthesis, ingredients,
steps, measurements, the series it belongs to, what is inferred and why)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pandas as pd

from matdb import units
from matdb.db import Database
from matdb.models import SYNTHESIS_SETTINGS
from matdb.vocabulary import PROCESS_PARAMS

#: Columns of the sample table that hold dicts (shown and exported as JSON text).
DICT_COLUMNS = ("composition_params", "process")
LEAD_COLUMNS = ["sample_id", "family", "formula", "provenance", "label"]
TAIL_COLUMNS = ["outcome", "inferred", "inferred_reason", "created_by", "source_doi", "source_key",
                "source_locator", "synthesis_id", "proposal_id", *DICT_COLUMNS]


def _table(df: pd.DataFrame) -> pd.DataFrame:
    """Sample rows in display order, dict columns as JSON text."""
    if df.empty:
        return pd.DataFrame(columns=[*LEAD_COLUMNS, "source_doi", "source_key", "source_locator"])
    for col in DICT_COLUMNS:  # orjson: a tenth of json.dumps' time on 10^5 rows
        df[col] = [orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode() for d in df[col]]
    tail = [c for c in TAIL_COLUMNS if c in df.columns]
    middle = [c for c in df.columns if c not in LEAD_COLUMNS and c not in tail]
    return df[LEAD_COLUMNS + middle + tail]


def sample_table(db: Database) -> pd.DataFrame:
    """All samples, one row each, with composition and process columns flattened.

    Columns: sample_id, family, formula, provenance, label, the composition parameters, the
    process parameters, outcome, inferred, inferred_reason, created_by, source_doi, source_key,
    source_locator, synthesis_id, proposal_id, and ``composition_params``/``process`` as JSON text.
    """
    return _table(db.samples())


def parameter_columns(df: pd.DataFrame, families: dict[str, Any], family: str | None) -> list[str]:
    """Composition-parameter columns of ``family`` present in the sample table."""
    if family is None or family not in families:
        return []
    return [p for p in families[family].parameters if p in df.columns]


def process_columns(df: pd.DataFrame, numeric: bool = True) -> list[str]:
    """Process-parameter columns present in ``df`` (numeric ones only by default)."""
    return [name for name, p in PROCESS_PARAMS.items()
            if name in df.columns and df[name].notna().any() and (not numeric or not p.categorical)]


@dataclass
class SampleFilter:
    """What the Explore page filters on; ``None``/empty means "any"."""

    family: str | None = None
    params: dict[str, tuple[float, float]] = field(default_factory=dict)
    process: dict[str, tuple[float, float]] = field(default_factory=dict)
    provenance: list[str] = field(default_factory=list)
    text: str = ""  # substring of sample id, formula or label
    technique: str | None = None
    quantity: str | None = None  # has a result of; adds its per-sample mean as a column
    value: tuple[float, float] | None = None  # range of that quantity's values
    exclude_inferred: bool = False

    def key(self) -> str:
        """Canonical JSON (the cache key of the filtered table)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_key(cls, key: str) -> SampleFilter:
        d = json.loads(key)
        d["params"] = {k: tuple(v) for k, v in d["params"].items()}
        d["process"] = {k: tuple(v) for k, v in d["process"].items()}
        d["value"] = tuple(d["value"]) if d["value"] else None
        return cls(**d)

    def query(self) -> dict[str, Any]:
        """The filters of :func:`matdb.query.samples`."""
        q: dict[str, Any] = {}
        for k in ("family", "technique", "quantity"):
            if getattr(self, k):
                q[k] = getattr(self, k)
        if self.params:
            q["params"] = dict(self.params)
        if self.process:
            q["process"] = dict(self.process)
        if self.provenance:
            q["provenance"] = list(self.provenance)
        if self.text.strip():
            q["search"] = self.text.strip()
        if self.value is not None and self.quantity:
            q["value"] = tuple(self.value)
        if self.exclude_inferred:
            q["inferred"] = False
        return q


def filtered_samples(db: Database, f: SampleFilter) -> pd.DataFrame:
    """The sample table after the filters; with a quantity, its mean per sample (and count) as
    columns after the label. A chosen family drops the columns no sample of it has."""
    df = _table(db.samples(**f.query()))
    if f.family:
        df = df.dropna(axis=1, how="all")
    if f.quantity:
        q = quantity_by_sample(db, f.quantity)
        df = df.merge(q, on="sample_id", how="left")
        cols = list(df.columns)
        for c in (f.quantity, f"{f.quantity} n")[::-1]:
            cols.insert(5, cols.pop(cols.index(c)))
        df = df[cols]
    return df.reset_index(drop=True)


def quantity_by_sample(db: Database, quantity: str, family: str | None = None) -> pd.DataFrame:
    """Mean value of ``quantity`` per sample (columns sample_id, <quantity>, <quantity> n)."""
    r = db.results(quantity=quantity, **({"family": family} if family else {}))
    r = r[r["sample_id"].notna() & r["value"].notna()]
    if r.empty:
        return pd.DataFrame(columns=["sample_id", quantity, f"{quantity} n"])
    g = r.groupby("sample_id")["value"].agg(["mean", "count"]).reset_index()
    return g.rename(columns={"mean": quantity, "count": f"{quantity} n"})


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as CSV bytes for a download button: for people, so formula-looking text is
    neutralised (:func:`matdb.export.people_csv`); ``matdb export`` is the exact machine export."""
    from matdb.export import people_csv

    return people_csv(df)


# --- one sample ---------------------------------------------------------------------------------


def sample_link(sample_id: str) -> str:
    """Relative link that opens a sample's story on the Explore page."""
    return f"?sample={quote(sample_id, safe='')}"


PRECURSOR_COLUMNS = ["chemical", "sample", "formula", "role", "mass_mg", "amount_mmol", "mol_pct", "step"]
STEP_COLUMNS = ["position", "kind", "duration_min", "temperature_c", "atmosphere", "frequency_hz",
                "frequency_rpm", "done", "inferred", "inferred_reason", "note"]
RESULT_COLUMNS = ["measurement", "technique", "quantity", "value", "unit", "uncertainty", "approximate", "label",
                  "derived", "method", "inferred", "inferred_reason", "reported", "locator", "provenance", "source"]
FLAG_COLUMNS = ["what", "reason"]


def _result_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in m["results"]:
        rows.append({
            "measurement": m["id"], "technique": m["technique"], "quantity": r["quantity"],
            "value": r["text"] if r["value"] is None else r["value"],
            "unit": units.display_unit(r["unit"] or ""), "uncertainty": r["uncertainty"],
            "approximate": r["approximate"], "label": r["label"], "derived": r["derived"], "method": r["method"],
            "inferred": bool(r["inferred"] or m["inferred"]),
            "inferred_reason": r["inferred_reason"] or m["inferred_reason"],
            "reported": None if r["reported_value"] is None
            else f"{r['reported_value']} {r['reported_unit'] or ''}".strip(),
            "locator": r["locator"], "provenance": m["provenance"], "source": (m["source"] or {}).get("url"),
        })
    return rows


def _results_frame(measurements: list[dict[str, Any]]) -> pd.DataFrame:
    res = pd.DataFrame([row for m in measurements for row in _result_rows(m)], columns=RESULT_COLUMNS)
    if not res.empty:
        res["value"] = res["value"].astype(str)
    return res


def inferred_flags(story: dict[str, Any]) -> pd.DataFrame:
    """Everything about a sample that is inferred rather than stated by its source: what, why."""
    rows = []
    if story.get("inferred"):
        rows.append(("sample", story.get("inferred_reason")))
    syn = story.get("synthesis") or {}
    if syn.get("inferred"):
        rows.append((f"synthesis {syn['id']}", syn.get("inferred_reason")))
    for st in syn.get("steps") or []:
        if st.get("inferred"):
            rows.append((f"step {st['position']} ({st['kind']})", st.get("inferred_reason")))
    for m in story.get("measurements", []):
        if m.get("inferred"):
            rows.append((f"measurement {m['id']}", m.get("inferred_reason")))
        for r in m["results"]:
            if r.get("inferred"):
                rows.append((f"{r['quantity']} of {m['id']}", r.get("inferred_reason")))
    return pd.DataFrame([{"what": w, "reason": r or "(no reason recorded)"} for w, r in rows], columns=FLAG_COLUMNS)


def story_tables(story: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Tables of one sample's story (:meth:`Database.sample`): precursors (chemicals and samples
    used as ingredients), steps, results, mill settings, inferred flags."""
    syn = story.get("synthesis") or {}
    pre = pd.DataFrame(
        [{**p, "sample": p.get("sample_id")} for p in syn.get("precursors") or []], columns=PRECURSOR_COLUMNS)
    steps = pd.DataFrame(syn.get("steps") or [], columns=STEP_COLUMNS)
    mill = {k: syn.get(k) for k in SYNTHESIS_SETTINGS if syn.get(k) is not None}
    return {
        "precursors": pre,
        "steps": steps,
        "results": _results_frame(story.get("measurements", [])),
        "mill": pd.DataFrame({"setting": list(mill), "value": [str(v) for v in mill.values()]}),
        "flags": inferred_flags(story),
    }


@dataclass
class SeriesView:
    """A series the sample belongs to: id, title, where it is reported, the other samples, and
    the findings about the series as a whole (not results of this sample)."""

    id: str
    title: str
    citation: str
    others: list[str]
    findings: pd.DataFrame


@dataclass
class SampleView:
    """What the sample page shows of one sample."""

    story: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    series: list[SeriesView]
    ingredient_samples: list[str]
    facts: list[str]  # outcome, who made it, proposal, note: one line each
    arrays: list[tuple[str, dict[str, Any]]]  # (measurement id, array description)

    @property
    def simulated(self) -> bool:
        return self.story["provenance"] == "simulated"


def _citation(src: dict[str, Any], locator: str | None) -> str:
    text = f"{src.get('title') or src['key']} ({src.get('year') or 'n.d.'})"
    if src.get("url"):
        text += f" — [{src.get('doi') or src['url']}]({src['url']})"
    return text + (f" · {locator}" if locator else "")


def sample_view(db: Database, sample_id: str) -> SampleView:
    """Everything the sample page shows, from one :func:`matdb.query.sample_story`."""
    from matdb.vocabulary import OUTCOMES

    story = db.sample(sample_id)
    facts = []
    if story.get("outcome"):
        facts.append(f"**Outcome:** {story['outcome']} — {OUTCOMES.get(story['outcome'], '')}".rstrip(" —"))
    if story.get("created_by"):
        facts.append(f"**Made by (database user):** {story['created_by']}")
    if story.get("proposal_id"):
        facts.append(f"**Proposed by campaign:** `{story['proposal_id']}`")
    if story.get("note"):
        facts.append(f"**Note:** {story['note']}")
    series = [SeriesView(se["id"], se["title"], _citation(se["source"], se.get("locator")), se["others"],
                         _results_frame(se["measurements"])) for se in story.get("series", [])]
    syn = story.get("synthesis") or {}
    ingredients = [p["sample_id"] for p in syn.get("precursors") or [] if p.get("sample_id")]
    arrays = [(m["id"], a) for m in story["measurements"] for a in m["arrays"]]
    return SampleView(story, story_tables(story), series, ingredients, facts, arrays)


def source_citation(view: SampleView) -> str:
    return _citation(view.story["source"], view.story.get("locator"))
