"""Explore: filter samples, page through them, open one sample's whole story."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from matdb.vocabulary import PROVENANCES
from matdb_app import cache, explore
from matdb_app.display import PAGE_SIZE, badge, badges, sort_and_page, with_links
from matdb_app.info import axis_label

st.title("Explore samples")

db = cache.database()
url, ver = cache.db_url(), cache.version(db)
table = cache.sample_table(url, ver)
fams = cache.families(url, ver)

if table.empty:
    st.info("The database has no samples yet. Load records on the **Ingest** page.")
    st.stop()

# --- filters ----------------------------------------------------------------------------------
f = explore.SampleFilter()
with st.expander("Filters", expanded=True):
    c1, c2, c3 = st.columns(3)
    family = c1.selectbox("Family", ["(all)", *sorted(table["family"].unique())], key="ex_family")
    f.family = None if family == "(all)" else family
    f.provenance = c2.multiselect(
        "Provenance", list(PROVENANCES), key="ex_prov", help="Empty = all. Simulated data is labelled ◇ SIMULATED."
    )
    f.text = c3.text_input("Search id / formula / label", key="ex_text")

    if f.family:
        params = fams[f.family].parameters
        for col, (name, p) in zip(st.columns(max(1, len(params))), params.items(), strict=False):
            lo, hi = float(p.min), float(p.max)
            if hi <= lo:
                continue
            label = f"{name}: {p.description}" if p.description else name
            rng = col.slider(label, lo, hi, (lo, hi), key=f"ex_param_{f.family}_{name}")
            if rng != (lo, hi):
                f.params[name] = rng

    sub = table if f.family is None else table[table["family"] == f.family]
    chosen = st.multiselect(
        "Filter on process parameters", explore.process_columns(sub), key="ex_proc", format_func=axis_label
    )
    for name in chosen:
        vals = pd.to_numeric(sub[name], errors="coerce").dropna()
        lo, hi = float(vals.min()), float(vals.max())
        if hi > lo:
            f.process[name] = st.slider(axis_label(name), lo, hi, (lo, hi), key=f"ex_proc_{name}")
        else:
            st.caption(f"{axis_label(name)}: all samples have {lo:g}")
            f.process[name] = (lo, hi)

    techs, qranges = cache.techniques_and_quantities(url, ver)
    c1, c2, c3 = st.columns(3)
    technique = c1.selectbox("Technique", ["(any)", *techs], key="ex_tech")
    f.technique = None if technique == "(any)" else technique
    quantity = c2.selectbox(
        "Has a result of",
        ["(any)", *qranges["quantity"]],
        key="ex_qty",
        help="Adds a column with this quantity's value per sample (mean of its results).",
    )
    f.quantity = None if quantity == "(any)" else quantity
    numeric_q = qranges[qranges["n"] > 0].set_index("quantity")
    if f.quantity and f.quantity in numeric_q.index:
        lo, hi = float(numeric_q.loc[f.quantity, "min"]), float(numeric_q.loc[f.quantity, "max"])
        label = axis_label(f.quantity, cache.quantities(url, ver))
        if hi > lo:
            rng = c3.slider(label, lo, hi, (lo, hi), key=f"ex_val_{f.quantity}")
            if rng != (lo, hi):
                f.value = rng
        else:
            c3.caption(f"{label}: every result is {lo:g}")
    f.exclude_inferred = st.toggle(
        "Hide inferred samples",
        value=False,
        key="ex_no_inferred",
        help="Samples (or their syntheses) that matdb or a curator inferred rather than the source stated.",
    )

key = f.key()
filtered = cache.filtered_samples(url, ver, key)


def show_story(sample_id: str) -> None:
    view = cache.call(cache.sample_view, url, ver, sample_id, what=f"sample {sample_id}")
    if view is None:
        return
    story, t = view.story, view.tables
    if view.simulated:
        st.warning("◇ SIMULATED sample (not measured).")
    st.markdown(
        f"### {story['formula']}  \n`{story['sample_id']}` · {story['family']} · {badge(story['provenance'])}"
        + (f" · {story['label']}" if story["label"] else "")
    )
    st.markdown(f"**Source:** {explore.source_citation(view)}")
    for line in view.facts:
        st.markdown(line)
    if not t["flags"].empty:
        st.warning(f"{len(t['flags'])} part(s) of this sample's record are **inferred**, not stated by the source:")
        st.dataframe(t["flags"], hide_index=True)
    c1, c2 = st.columns(2)
    c1.markdown("**Composition parameters**")
    c1.dataframe(pd.DataFrame({"parameter": list(story["params"]), "value": list(story["params"].values())}),
                 hide_index=True)
    c2.markdown("**Process parameters (after the completed steps)**")
    c2.dataframe(pd.DataFrame({"parameter": [axis_label(k) for k in story["process"]],
                               "value": [str(v) for v in story["process"].values()]}), hide_index=True)
    if story["synthesis"]:
        st.markdown(f"#### Synthesis `{story['synthesis']['id']}`")
        if not t["mill"].empty:
            st.dataframe(t["mill"], hide_index=True)
        st.markdown("**Precursors**")
        if t["precursors"].empty:
            st.caption("No precursors recorded.")
        else:
            st.dataframe(t["precursors"], hide_index=True)
        for sid in view.ingredient_samples:
            st.markdown(f"Made from the stored sample [{sid}]({explore.sample_link(sid)})")
        st.markdown("**Steps** (in order; `done` = completed for this sample)")
        st.dataframe(t["steps"], hide_index=True)
    else:
        st.caption("No synthesis recorded for this sample.")
    for se in view.series:
        st.markdown(f"#### Series: {se.title} (`{se.id}`)  \n{se.citation}")
        if se.others:
            st.markdown("Other samples of this series: "
                        + ", ".join(f"[{o}]({explore.sample_link(o)})" for o in se.others))
        if not se.findings.empty:
            st.markdown("**Findings about the series as a whole** (not results of this sample)")
            st.dataframe(badges(se.findings), hide_index=True, column_config=cache.link_config(se.findings))
    st.markdown(f"#### Measurements ({len(story['measurements'])})")
    if t["results"].empty:
        st.caption("No results recorded.")
    else:
        st.dataframe(badges(t["results"]), hide_index=True, column_config=cache.link_config(t["results"]))
    if view.arrays:
        st.caption("Stored arrays (see the Spectra page): "
                   + ", ".join(f"`{mid}` {a['kind']} {a['shape']}" for mid, a in view.arrays))


# --- table and sample detail (a fragment: paging or sorting does not rerun the filters) -------
@st.fragment
def results_table(filtered: pd.DataFrame) -> None:
    st.subheader(f"{len(filtered):,} of {len(table):,} samples")
    cache.simulated_banner(filtered, "samples")
    linked = st.query_params.get("sample")
    if filtered.empty and not linked:
        st.info("No sample matches these filters.")
        return
    ids: list[str] = []
    if not filtered.empty:
        c1, c2, c3, c4 = st.columns([3, 1, 1, 2])
        sortable = [c for c in filtered.columns if c not in explore.DICT_COLUMNS]
        sort_by = c1.selectbox("Sort by", sortable, index=0, key="ex_sort")
        ascending = c2.toggle("Ascending", value=True, key="ex_asc")
        n_pages = max(1, -(-len(filtered) // PAGE_SIZE))
        page = c3.number_input(f"Page (of {n_pages})", 1, n_pages, 1, key="ex_page")
        rows, _ = sort_and_page(filtered, sort_by, ascending, int(page), PAGE_SIZE)
        c4.download_button("Download CSV (all filtered rows)", cache.csv_bytes(url, ver, key),
                           file_name="matdb_samples.csv", mime="text/csv", key="ex_csv")
        shown = badges(with_links(rows.drop(columns=list(explore.DICT_COLUMNS), errors="ignore")))
        st.dataframe(shown, hide_index=True, column_config=cache.link_config(shown), width="stretch")
        ids = rows["sample_id"].tolist()
    st.subheader("Sample")
    if linked and linked not in ids:
        ids = [linked, *ids]
    sample_id = st.selectbox("Sample on this page", ids, index=ids.index(linked) if linked else 0, key="ex_sample")
    if sample_id:
        show_story(sample_id)


results_table(filtered)
