"""matdb Streamlit app: ``streamlit run app.py`` (database from $MATDB_URL).

Layout and navigation only; every page is a thin shell around matdb_app.services/views.
"""

from __future__ import annotations

import streamlit as st

from matdb_app import ui_state as ui

st.set_page_config(page_title="matdb", page_icon="⚗️", layout="wide")

PAGES = [
    st.Page("app_pages/explore.py", title="Explore", icon=":material/table_view:", default=True),
    st.Page("app_pages/spectra.py", title="Spectra", icon=":material/ssid_chart:"),
    st.Page("app_pages/maps.py", title="Composition maps", icon=":material/scatter_plot:"),
    st.Page("app_pages/screening.py", title="Screening", icon=":material/science:"),
    st.Page("app_pages/ingest.py", title="Ingest", icon=":material/upload_file:"),
]

nav = st.navigation(PAGES)

with st.sidebar:
    st.caption("matdb · mechanochemical halide perovskites")
    url = ui.db_url()
    st.caption(
        f"Database: `{repr(ui.database()).removeprefix('<matdb.Database ').removesuffix('>')}`"
    )
    table = ui.sample_table(url, ui.version(ui.database()))
    if len(table):
        counts = table["provenance"].value_counts()
        st.caption(
            " · ".join(f"{ui.PROVENANCE_BADGES.get(k, k)}: {v}" for k, v in counts.items())
            + " samples"
        )
    else:
        st.caption("No samples yet: load data on the Ingest page.")

nav.run()
