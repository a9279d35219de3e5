"""Streamlit glue shared by the pages: the cached database, cached tables, error display.

The database is a ``st.cache_resource`` (one engine per URL and server process). Tables are
``st.cache_data`` entries keyed by the URL and a data-version token
(:func:`matdb_app.views.data_version`), so an ingest invalidates them without a manual clear.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from matdb.db import ENV_URL, Database, default_url
from matdb_app import services, views

log = logging.getLogger("matdb.app")
T = TypeVar("T")

#: Rows per page in every table.
PAGE_SIZE = 100
#: How provenance is shown in tables (simulated rows must stand out).
PROVENANCE_BADGES = {
    "literature": "● literature",
    "measured": "■ measured",
    "simulated": "◇ SIMULATED",
}


def db_url() -> str:
    return os.environ.get(ENV_URL) or default_url()


@st.cache_resource(show_spinner="Opening the database ...")
def _open(url: str) -> Database:
    return services.open_db(url)


def database() -> Database:
    """The app's database; shows a readable error and stops the page if it cannot be opened."""
    url = db_url()
    try:
        return _open(url)
    except Exception as exc:  # noqa: BLE001 - shown to the user, never as a traceback
        st.error(f"Cannot open the database {url!r}: {exc}")
        st.info(
            "Set MATDB_URL to a sqlite:///path or postgresql+psycopg://... URL, "
            "or run `matdb init`."
        )
        st.stop()
        raise  # unreachable; st.stop raises


def version(db: Database) -> str:
    """Data-version token; changes whenever something is written."""
    return call(views.data_version, db, default="?")


def call(
    fn: Callable[..., T], *args: Any, default: Any = None, what: str = "", **kwargs: Any
) -> T | Any:
    """Run a service call; user errors become ``st.error`` messages, never tracebacks."""
    try:
        return fn(*args, **kwargs)
    except services.USER_ERRORS as exc:
        st.error(f"{what + ': ' if what else ''}{exc}")
    except Exception as exc:  # noqa: BLE001 - a bug or a database failure: still no traceback
        log.exception("%s failed", getattr(fn, "__name__", fn))
        st.error(
            f"{what or getattr(fn, '__name__', 'operation')} failed unexpectedly: "
            f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    return default


# --- cached tables ----------------------------------------------------------------------------


@st.cache_data(show_spinner="Loading samples ...", max_entries=8)
def sample_table(url: str, ver: str) -> pd.DataFrame:
    return views.sample_table(_open(url))


@st.cache_data(show_spinner=False, max_entries=8)
def families(url: str, ver: str) -> dict[str, Any]:
    return _open(url).families()


@st.cache_data(show_spinner=False, max_entries=8)
def quantities(url: str, ver: str) -> dict[str, Any]:
    return _open(url).quantities()


@st.cache_data(show_spinner=False, max_entries=8)
def techniques_and_quantities(url: str, ver: str) -> tuple[list[str], pd.DataFrame]:
    return views.techniques_and_quantities(_open(url))


@st.cache_data(show_spinner=False, max_entries=64)
def samples_with(
    url: str,
    ver: str,
    technique: str | None,
    quantity: str | None,
    value: tuple[float | None, float | None] | None,
) -> set[str]:
    return views.samples_with(_open(url), technique, quantity, value)


@st.cache_data(show_spinner=False, max_entries=32)
def quantity_by_sample(url: str, ver: str, quantity: str) -> pd.DataFrame:
    return views.quantity_by_sample(_open(url), quantity)


@st.cache_data(show_spinner=False, max_entries=32)
def filtered_samples(url: str, ver: str, key: str) -> pd.DataFrame:
    """Samples after the Explore filters (``key`` is the JSON of the filter)."""
    spec = json.loads(key)
    f = views.SampleFilter(
        family=spec["family"],
        params={k: tuple(v) for k, v in spec["params"].items()},
        process={k: tuple(v) for k, v in spec["process"].items()},
        provenance=spec["provenance"],
        text=spec["text"],
    )
    if spec["technique"] or spec["quantity"]:
        f.sample_ids = samples_with(
            url,
            ver,
            spec["technique"],
            spec["quantity"],
            tuple(spec["value"]) if spec["value"] else None,
        )
    df = views.filter_samples(sample_table(url, ver), f)
    if spec["quantity"]:
        q = quantity_by_sample(url, ver, spec["quantity"])
        df = df.merge(q, on="sample_id", how="left")
        cols = list(df.columns)
        for c in (spec["quantity"], f"{spec['quantity']} n")[::-1]:
            cols.insert(5, cols.pop(cols.index(c)))
        df = df[cols]
    return df.reset_index(drop=True)


@st.cache_data(show_spinner="Preparing CSV ...", max_entries=8)
def csv_bytes(url: str, ver: str, key: str) -> bytes:
    return filtered_samples(url, ver, key).to_csv(index=False).encode("utf-8")


@st.cache_data(show_spinner=False, max_entries=16)
def arrays_table(
    url: str, ver: str, kinds: tuple[str, ...] | None, family: str | None
) -> pd.DataFrame:
    return views.arrays_table(_open(url), kinds, family)


@st.cache_data(show_spinner="Loading run ...", max_entries=16)
def run(url: str, ver: str, measurement_id: str, kind: str | None) -> views.Run:
    return views.load_run(_open(url), measurement_id, kind)


@st.cache_data(show_spinner="Extracting features ...", max_entries=16)
def run_features(url: str, ver: str, measurement_id: str, kind: str | None) -> views.RunFeatures:
    return views.run_features(run(url, ver, measurement_id, kind))


@st.cache_data(show_spinner=False, max_entries=32)
def pattern(url: str, ver: str, measurement_id: str, kind: str | None) -> views.Pattern:
    return views.load_pattern(_open(url), measurement_id, kind)


@st.cache_data(show_spinner=False, max_entries=16)
def known_peaks(url: str, ver: str, family: str) -> pd.DataFrame:
    return views.known_peaks(_open(url), family)


@st.cache_data(show_spinner=False, max_entries=16)
def families_with(url: str, ver: str, quantity: str) -> list[str]:
    return views.families_with(_open(url), quantity)


@st.cache_data(show_spinner=False, max_entries=16)
def numeric_quantities(url: str, ver: str, family: str) -> pd.DataFrame:
    return views.numeric_quantities(_open(url), family)


@st.cache_data(show_spinner="Loading results ...", max_entries=16)
def family_results(url: str, ver: str, family: str, quantity: str | None = None) -> pd.DataFrame:
    return views.family_results(_open(url), family, quantity)


# --- display helpers --------------------------------------------------------------------------


def badges(df: pd.DataFrame) -> pd.DataFrame:
    """A display copy with provenance badges (simulated rows stand out)."""
    if "provenance" not in df.columns:
        return df
    out = df.copy()
    out["provenance"] = out["provenance"].map(lambda p: PROVENANCE_BADGES.get(p, p))
    return out


def simulated_banner(df: pd.DataFrame, what: str = "rows") -> None:
    """A warning banner when any simulated row is on screen."""
    if "provenance" in df.columns and len(df):
        n = int((df["provenance"] == "simulated").sum())
        if n:
            st.warning(
                f"⚠ {n} of {len(df)} {what} are **simulated** (not measured): they are marked "
                "◇ SIMULATED in tables and drawn as open diamonds in plots."
            )


def link_config(df: pd.DataFrame) -> dict[str, Any]:
    """Column config showing DOI URLs as clickable links."""
    cfg: dict[str, Any] = {}
    for col in ("source", "source_url"):
        if col in df.columns:
            cfg[col] = st.column_config.LinkColumn(col, display_text=r"https://doi\.org/(.*)")
    return cfg
