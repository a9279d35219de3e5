"""Ingest: upload files, see every validation error before anything is written, then load."""

from __future__ import annotations

import streamlit as st

from matdb_app import services, views
from matdb_app import ui_state as ui

st.title("Ingest data")
st.markdown(
    "Upload record files (YAML/JSON), tables (CSV/XLSX) and spectra (TLIS CSV, xy, JCAMP, "
    "CIF ...). Upload a record together with the spectrum and reference files it names. "
    "Nothing is written until "
    "you confirm."
)

db = ui.database()
url, ver = ui.db_url(), ui.version(db)

files = st.file_uploader("Files", accept_multiple_files=True, key="in_files")
c1, c2 = st.columns(2)
update = c1.checkbox(
    "Update records that changed (keeps the old version in the history)",
    value=False,
    key="in_update",
)
mapping_file = c2.file_uploader(
    "Column mapping for tables (optional YAML)", type=["yaml", "yml"], key="in_mapping"
)

if not files:
    st.info("Choose files to check.")
    st.stop()

staged = ui.call(
    views.stage_uploads,
    [(f.name, f.getvalue()) for f in files],
    None if mapping_file is None else mapping_file.getvalue(),
    what="staging the upload",
)
if staged is None:
    st.stop()

report = ui.call(
    services.check, db, [staged.folder], mapping=staged.mapping, what="checking the files"
)
if report is None:
    st.stop()

summary = views.check_summary(report, staged)
n_valid = int((summary["status"] == "valid").sum())
n_bad = int((summary["status"] == "rejected").sum())
st.subheader(f"Check: {n_valid} file(s) valid, {n_bad} rejected")
st.dataframe(summary, hide_index=True)
errors = views.check_errors(report, staged)
if not errors.empty:
    st.error(f"{len(errors)} problem(s) found; rejected files will not be loaded.")
    st.dataframe(errors, hide_index=True)

label = f"Confirm: load {n_valid} valid file(s)" + (" (updating changed records)" if update else "")
if st.button(label, type="primary", disabled=n_valid == 0, key="in_confirm"):
    with st.spinner("Loading ..."):
        result = ui.call(
            services.ingest,
            db,
            [staged.folder],
            update=update,
            mapping=staged.mapping,
            progress=False,
            what="ingest",
        )
    if result is not None:
        totals = result.totals
        st.session_state["in_last"] = (views.check_summary(result, staged), dict(totals))

if "in_last" in st.session_state:
    rows, totals = st.session_state["in_last"]
    text = ", ".join(
        f"{totals.get(k, 0)} {k}" for k in ("added", "unchanged", "updated", "rejected")
    )
    (st.success if not totals.get("rejected") else st.warning)(f"Ingest finished: {text}.")
    st.dataframe(rows, hide_index=True)
    for line in views.unchanged_hints(rows):
        st.caption(line)
