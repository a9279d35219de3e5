"""Streamlit glue shared by the pages: the cached database, the cached tables, how errors and
simulated data are shown. The only module besides the page scripts that imports Streamlit.

The database is a ``st.cache_resource`` (one engine per URL and server process). Tables are
``st.cache_data`` entries keyed by the URL and the data version (:func:`matdb.store.data_version`),
so a write (ingest, analysis, removal of the demonstration set) invalidates them without a manual
clear. Each cached function is one call of a use-case module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

import matdb
from matdb import store
from matdb.db import ENV_URL, Database, default_url
from matdb_app import explore, info, maps, spectra
from matdb_app import ingest as ingest_
from matdb_app.display import simulated_notice
from matdb_app.errors import debug, internal_message, user_errors
from matdb_app.isolation import WorkerStopped

log = logging.getLogger("matdb.app")
T = TypeVar("T")


def db_url() -> str:
    return os.environ.get(ENV_URL) or default_url()


@st.cache_resource(show_spinner="Opening the database ...")
def _open(url: str) -> Database:
    return matdb.connect(url)


def database() -> Database:
    """The app's database; shows a readable error and stops the page if it cannot be opened."""
    url = db_url()
    try:
        return _open(url)
    except Exception as exc:  # noqa: BLE001 - shown to the user, never as a traceback
        st.error(f"Cannot open the database {url!r}: {exc}")
        st.info("Set MATDB_URL to a sqlite:///path or postgresql+psycopg://... URL, or run `matdb init`.")
        st.stop()
        raise  # unreachable; st.stop raises


def version(db: Database) -> str:
    """Data-version token; changes whenever something is written."""
    return call(store.data_version, db, default="?")


def call(fn: Callable[..., T], *args: Any, default: Any = None, what: str = "", **kwargs: Any) -> T | Any:
    """Run a service call. matdb's own errors (user mistakes) become an ``st.error`` message; any
    other exception is an internal error: logged with its traceback, shown as one line."""
    try:
        return fn(*args, **kwargs)
    except user_errors() as exc:
        # an expected situation (e.g. too few results for a model yet) is information, not a failure
        (st.info if getattr(exc, "expected", False) else st.error)(f"{what + ': ' if what else ''}{exc}")
    except Exception as exc:  # noqa: BLE001 - a bug or a database failure: still no traceback on the page
        log.exception("%s failed", getattr(fn, "__name__", fn))
        st.error(internal_message(exc, what or getattr(fn, "__name__", "operation")))
        if debug():
            st.exception(exc)
    return default


# --- cached tables ----------------------------------------------------------------------------


@st.cache_data(show_spinner="Loading samples ...", max_entries=8)
def sample_table(url: str, ver: str) -> pd.DataFrame:
    return explore.sample_table(_open(url))


@st.cache_data(show_spinner=False, max_entries=8)
def families(url: str, ver: str) -> dict[str, Any]:
    return _open(url).families()


@st.cache_data(show_spinner=False, max_entries=8)
def quantities(url: str, ver: str) -> dict[str, Any]:
    return _open(url).quantities()


@st.cache_data(show_spinner=False, max_entries=8)
def techniques_and_quantities(url: str, ver: str) -> tuple[list[str], pd.DataFrame]:
    return info.techniques_and_quantities(_open(url))


@st.cache_data(show_spinner="Filtering samples ...", max_entries=32)
def filtered_samples(url: str, ver: str, key: str) -> pd.DataFrame:
    """Samples after the Explore filters (``key``: :meth:`explore.SampleFilter.key`)."""
    return explore.filtered_samples(_open(url), explore.SampleFilter.from_key(key))


@st.cache_data(show_spinner="Preparing CSV ...", max_entries=8)
def csv_bytes(url: str, ver: str, key: str) -> bytes:
    return explore.csv_bytes(filtered_samples(url, ver, key))


@st.cache_data(show_spinner=False, max_entries=32)
def sample_view(url: str, ver: str, sample_id: str) -> explore.SampleView:
    return explore.sample_view(_open(url), sample_id)


@st.cache_data(show_spinner=False, max_entries=16)
def arrays_table(url: str, ver: str, kinds: tuple[str, ...] | None, family: str | None) -> pd.DataFrame:
    return spectra.arrays_table(_open(url), kinds, family)


@st.cache_data(show_spinner="Loading run ...", max_entries=16)
def run(url: str, ver: str, measurement_id: str, kind: str | None) -> spectra.Run:
    return spectra.load_run(_open(url), measurement_id, kind)


@st.cache_data(show_spinner="Extracting features ...", max_entries=16)
def run_features(url: str, ver: str, measurement_id: str, kind: str | None) -> spectra.RunFeatures:
    return spectra.run_features(run(url, ver, measurement_id, kind))


@st.cache_data(show_spinner=False, max_entries=32)
def pattern(url: str, ver: str, measurement_id: str, kind: str | None) -> spectra.Pattern:
    return spectra.load_pattern(_open(url), measurement_id, kind)


@st.cache_data(show_spinner=False, max_entries=16)
def known_peaks(url: str, ver: str, family: str) -> pd.DataFrame:
    return spectra.known_peaks(_open(url), family)


@st.cache_data(show_spinner=False, max_entries=16)
def families_with(url: str, ver: str, quantity: str) -> list[str]:
    return spectra.families_with(_open(url), quantity)


@st.cache_data(show_spinner=False, max_entries=16)
def numeric_quantities(url: str, ver: str, family: str) -> pd.DataFrame:
    return maps.numeric_quantities(_open(url), family)


@st.cache_data(show_spinner="Loading results ...", max_entries=16)
def family_results(url: str, ver: str, family: str, quantity: str | None = None) -> pd.DataFrame:
    return maps.family_results(_open(url), family, quantity)


@st.cache_data(show_spinner="Checking the files ...", max_entries=8)
def _check_upload(url: str, ver: str, files: list[tuple[str, bytes]],
                  mapping: bytes | None) -> ingest_.Checked | WorkerStopped:
    try:
        return ingest_.check_upload(_open(url), files, mapping)
    except WorkerStopped as exc:  # remembered too: a hostile upload is not run again on every rerun
        return exc


def check_upload(url: str, ver: str, files: list[tuple[str, bytes]], mapping: bytes | None) -> ingest_.Checked:
    """Stage and check an upload once per content (a page rerun does not check again), in a
    worker process with memory and time limits (:func:`matdb_app.ingest.check_staged`)."""
    out = _check_upload(url, ver, files, mapping)
    if isinstance(out, WorkerStopped):
        raise out
    return out


# --- display ----------------------------------------------------------------------------------


def simulated_banner(df: pd.DataFrame, what: str = "rows") -> None:
    """A warning banner when any simulated row is on screen."""
    note = simulated_notice(df, what)
    if note:
        st.warning(note)


def link_config(df: pd.DataFrame) -> dict[str, Any]:
    """Column config showing DOI URLs as clickable links."""
    cfg: dict[str, Any] = {}
    for col in ("source", "source_url"):
        if col in df.columns:
            cfg[col] = st.column_config.LinkColumn(col, display_text=r"https://doi\.org/(.*)")
    return cfg
