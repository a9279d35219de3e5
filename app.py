"""matdb Streamlit app: ``streamlit run app.py`` (database from $MATDB_URL).

Layout and navigation only; every page is a thin shell around the use-case modules of matdb_app
(through the caches in matdb_app.cache). A new page is one line in PAGES.
"""

from __future__ import annotations

import streamlit as st

from matdb_app import cache
from matdb_app.display import provenance_counts

st.set_page_config(page_title="matdb", page_icon="⚗️", layout="wide")

PAGES = [
    st.Page("app_pages/explore.py", title="Explore", icon=":material/table_view:", default=True),
    st.Page("app_pages/spectra.py", title="Spectra", icon=":material/ssid_chart:"),
    st.Page("app_pages/maps.py", title="Composition maps", icon=":material/scatter_plot:"),
    st.Page("app_pages/screening.py", title="Screening", icon=":material/science:"),
    st.Page("app_pages/ingest.py", title="Ingest", icon=":material/upload_file:"),
    st.Page("app_pages/live.py", title="Live", icon=":material/monitor_heart:"),
]

nav = st.navigation(PAGES)

with st.sidebar:
    st.caption("matdb · mechanochemical halide perovskites")
    db = cache.database()
    st.caption(f"Database: `{repr(db).removeprefix('<matdb.Database ').removesuffix('>')}`")
    table = cache.sample_table(cache.db_url(), cache.version(db))
    st.caption(provenance_counts(table) or "No samples yet: load data on the Ingest page.")

nav.run()
