"""Explore: filter samples, page through them, open one sample's whole story."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from matdb.vocabulary import PROVENANCES
from matdb_app import ui_state as ui
from matdb_app import views

st.title("Explore samples")

db = ui.database()
url, ver = ui.db_url(), ui.version(db)
table = ui.sample_table(url, ver)
fams = ui.families(url, ver)

if table.empty:
    st.info("The database has no samples yet. Load records on the **Ingest** page.")
    st.stop()

# --- filters ----------------------------------------------------------------------------------
with st.expander("Filters", expanded=True):
    c1, c2, c3 = st.columns(3)
    present = sorted(table["family"].unique())
    family = c1.selectbox("Family", ["(all)", *present], key="ex_family")
    family = None if family == "(all)" else family
    provenance = c2.multiselect(
        "Provenance",
        list(PROVENANCES),
        key="ex_prov",
        help="Empty = all. Simulated data is labelled ◇ SIMULATED.",
    )
    text = c3.text_input("Search id / formula / label", key="ex_text")

    params: dict[str, list[float]] = {}
    if family:
        fam = fams[family]
        cols = st.columns(max(1, len(fam.parameters)))
        for col, (name, p) in zip(cols, fam.parameters.items(), strict=False):
            lo, hi = float(p.min), float(p.max)
            if hi <= lo:
                continue
            label = f"{name}: {p.description}" if p.description else name
            rng = col.slider(label, lo, hi, (lo, hi), key=f"ex_param_{family}_{name}")
            if rng != (lo, hi):
                params[name] = [rng[0], rng[1]]

    sub = table if family is None else table[table["family"] == family]
    proc_cols = views.process_columns(sub)
    chosen = st.multiselect(
        "Filter on process parameters", proc_cols, key="ex_proc", format_func=views.axis_label
    )
    process: dict[str, list[float]] = {}
    for name in chosen:
        vals = pd.to_numeric(sub[name], errors="coerce").dropna()
        lo, hi = float(vals.min()), float(vals.max())
        if hi > lo:
            rng = st.slider(views.axis_label(name), lo, hi, (lo, hi), key=f"ex_proc_{name}")
        else:
            st.caption(f"{views.axis_label(name)}: all samples have {lo:g}")
            rng = (lo, hi)
        process[name] = [rng[0], rng[1]]

    techs, qranges = ui.techniques_and_quantities(url, ver)
    c1, c2, c3 = st.columns(3)
    technique = c1.selectbox("Technique", ["(any)", *techs], key="ex_tech")
    technique = None if technique == "(any)" else technique
    numeric_q = qranges[qranges["n"] > 0]
    quantity = c2.selectbox(
        "Has a result of",
        ["(any)", *qranges["quantity"]],
        key="ex_qty",
        help="Adds a column with this quantity's value per sample (mean of its results).",
    )
    quantity = None if quantity == "(any)" else quantity
    value: list[float] | None = None
    if quantity and quantity in set(numeric_q["quantity"]):
        row = numeric_q.set_index("quantity").loc[quantity]
        lo, hi = float(row["min"]), float(row["max"])
        label = views.axis_label(quantity, ui.quantities(url, ver))
        if hi > lo:
            rng = c3.slider(label, lo, hi, (lo, hi), key=f"ex_val_{quantity}")
            if rng != (lo, hi):
                value = [rng[0], rng[1]]
        else:
            c3.caption(f"{label}: every result is {lo:g}")

key = json.dumps(
    {
        "family": family,
        "params": params,
        "process": process,
        "provenance": provenance,
        "text": text,
        "technique": technique,
        "quantity": quantity,
        "value": value,
    },
    sort_keys=True,
)
filtered = ui.filtered_samples(url, ver, key)


# --- table and sample detail (a fragment: paging or sorting does not rerun the filters) -------
@st.fragment
def results_table(filtered: pd.DataFrame) -> None:
    st.subheader(f"{len(filtered):,} of {len(table):,} samples")
    ui.simulated_banner(filtered, "samples")
    if filtered.empty:
        st.info("No sample matches these filters.")
        return
    c1, c2, c3, c4 = st.columns([3, 1, 1, 2])
    sortable = [c for c in filtered.columns if c not in ("composition_params", "process")]
    sort_by = c1.selectbox("Sort by", sortable, index=0, key="ex_sort")
    ascending = c2.toggle("Ascending", value=True, key="ex_asc")
    n_pages = max(1, -(-len(filtered) // ui.PAGE_SIZE))
    page = c3.number_input(f"Page (of {n_pages})", 1, n_pages, 1, key="ex_page")
    rows, _ = views.sort_and_page(filtered, sort_by, ascending, int(page), ui.PAGE_SIZE)
    c4.download_button(
        "Download CSV (all filtered rows)",
        ui.csv_bytes(url, ver, key),
        file_name="matdb_samples.csv",
        mime="text/csv",
        key="ex_csv",
    )
    shown = ui.badges(
        views.with_links(rows.drop(columns=["composition_params", "process"], errors="ignore"))
    )
    st.dataframe(shown, hide_index=True, column_config=ui.link_config(shown), width="stretch")

    st.subheader("Sample")
    ids = rows["sample_id"].tolist()
    sample_id = st.selectbox("Sample on this page", ids, key="ex_sample")
    if sample_id:
        show_story(sample_id)


def show_story(sample_id: str) -> None:
    story = ui.call(db.sample, sample_id, what=f"sample {sample_id}")
    if story is None:
        return
    t = views.story_tables(story)
    prov = story["provenance"]
    if prov == "simulated":
        st.warning("⚠ This sample is **simulated** (not measured).")
    st.markdown(
        f"### {story['formula']}  \n`{story['sample_id']}` · {story['family']} · "
        f"{ui.PROVENANCE_BADGES.get(prov, prov)}"
        + (f" · {story['label']}" if story["label"] else "")
    )
    src = story["source"]
    link = f"[{src['doi'] or src['url']}]({src['url']})" if src.get("url") else src["key"]
    st.markdown(
        f"**Source:** {src.get('title') or src['key']} ({src.get('year') or 'n.d.'}) — {link}"
        + (f" · {story['locator']}" if story.get("locator") else "")
    )
    c1, c2 = st.columns(2)
    c1.markdown("**Composition parameters**")
    c1.dataframe(
        pd.DataFrame({"parameter": list(story["params"]), "value": list(story["params"].values())}),
        hide_index=True,
    )
    c2.markdown("**Process parameters (after the completed steps)**")
    c2.dataframe(
        pd.DataFrame(
            {
                "parameter": [views.axis_label(k) for k in story["process"]],
                "value": [str(v) for v in story["process"].values()],
            }
        ),
        hide_index=True,
    )
    if story["synthesis"]:
        syn = story["synthesis"]
        st.markdown(f"#### Synthesis `{syn['id']}`")
        if not t["mill"].empty:
            st.dataframe(t["mill"], hide_index=True)
        st.markdown("**Precursors**")
        if t["precursors"].empty:
            st.caption("No precursors recorded.")
        else:
            st.dataframe(t["precursors"], hide_index=True)
        st.markdown("**Steps** (in order; `done` = completed for this sample)")
        st.dataframe(t["steps"], hide_index=True)
    else:
        st.caption("No synthesis recorded for this sample.")
    st.markdown(f"#### Measurements ({len(story['measurements'])})")
    if t["results"].empty:
        st.caption("No results recorded.")
    else:
        st.dataframe(
            ui.badges(t["results"]), hide_index=True, column_config=ui.link_config(t["results"])
        )
    arrays = [(m["id"], a) for m in story["measurements"] for a in m["arrays"]]
    if arrays:
        st.caption(
            "Stored arrays (see the Spectra page): "
            + ", ".join(f"`{mid}` {a['kind']} {a['shape']}" for mid, a in arrays)
        )


results_table(filtered)
