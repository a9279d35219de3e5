"""Ingest: upload files, see every validation error before anything is written, then load."""

from __future__ import annotations

import streamlit as st

from matdb_app import access, cache
from matdb_app import ingest as ingest_

st.title("Ingest data")
if access.read_only(cache.database()):
    st.info(access.READ_ONLY_INFO)
    st.stop()
st.markdown(
    "Upload record files (YAML/JSON), tables (CSV/XLSX) and spectra (TLIS CSV, xy, JCAMP, "
    "CIF ...). Upload a record together with the spectrum and reference files it names. "
    "Nothing is written until you confirm."
)

db = cache.database()
url, ver = cache.db_url(), cache.version(db)

files = st.file_uploader("Files", accept_multiple_files=True, key="in_files")
c1, c2 = st.columns(2)
update = c1.checkbox("Update records that changed (keeps the old version in the history)", value=False,
                     key="in_update")
mapping_file = c2.file_uploader("Column mapping for tables (optional YAML)", type=["yaml", "yml"], key="in_mapping")

if not files:
    st.info("Choose files to check.")
    st.stop()

checked = cache.call(cache.check_upload, url, ver, [(f.name, f.getvalue()) for f in files],
                     None if mapping_file is None else mapping_file.getvalue(), what="checking the files")
if checked is None:
    st.stop()

st.subheader(f"Check: {checked.n_valid} file(s) valid, {checked.n_rejected} rejected")
st.dataframe(checked.summary, hide_index=True)
if not checked.errors.empty:
    st.error(f"{len(checked.errors)} problem(s) found; rejected files will not be loaded.")
    st.dataframe(checked.errors, hide_index=True)

label = f"Confirm: load {checked.n_valid} valid file(s)" + (" (updating changed records)" if update else "")
if st.button(label, type="primary", disabled=checked.n_valid == 0, key="in_confirm"):
    with st.spinner("Loading ..."):
        loaded = cache.call(ingest_.load_upload, db, checked, update=update, what="ingest")
    if loaded is not None:
        st.session_state["in_last"] = loaded

if "in_last" in st.session_state:
    loaded = st.session_state["in_last"]
    text = ", ".join(f"{loaded.totals.get(k, 0)} {k}" for k in ("added", "unchanged", "updated", "rejected"))
    (st.success if not loaded.totals.get("rejected") else st.warning)(f"Ingest finished: {text}.")
    st.dataframe(loaded.summary, hide_index=True)
    for line in loaded.hints:
        st.caption(line)
