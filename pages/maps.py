"""Composition maps: a property against composition (and process) parameters of one family."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from matdb_app import plots, services, views
from matdb_app import ui_state as ui

st.title("Composition maps")

db = ui.database()
url, ver = ui.db_url(), ui.version(db)
fams = ui.families(url, ver)
qdefs = ui.quantities(url, ver)
present = (
    sorted(ui.sample_table(url, ver)["family"].unique()) if len(ui.sample_table(url, ver)) else []
)
# families with data first, then the other families the seed papers map
options = present + sorted((set(views.MAP_PRESETS) & set(fams)) - set(present))
if not options:
    st.info("No data yet. Load records on the **Ingest** page.")
    st.stop()

c1, c2 = st.columns(2)
family = c1.selectbox(
    "Family",
    options,
    key="map_family",
    format_func=lambda f: f"{f} — {fams[f].name}" if f in fams and fams[f].name else f,
)
qs = ui.numeric_quantities(url, ver, family)
if qs.empty:
    st.info(f"No numeric results for {family} yet.")
    st.stop()
preset = views.MAP_PRESETS.get(family)
qlist = qs["quantity"].tolist()
counts = dict(zip(qs["quantity"], qs["n"], strict=True))
quantity = c2.selectbox(
    "Property",
    qlist,
    index=qlist.index(preset[0]) if preset and preset[0] in qlist else 0,
    format_func=lambda q: f"{views.axis_label(q, qdefs)} — {counts[q]} values",
    key=f"map_q_{family}",
)

data = ui.family_results(url, ver, family, quantity)
axes = views.map_axes(data, fams, family)
if not axes:
    st.info(
        f"The {quantity} values of {family} have no composition or process parameters "
        "to plot against."
    )
    st.dataframe(ui.badges(data), hide_index=True)
    st.stop()

c1, c2, c3 = st.columns(3)
x_default = preset[1] if preset and preset[1] in axes else axes[0]
x = c1.selectbox(
    "x axis",
    axes,
    index=axes.index(x_default),
    format_func=lambda a: views.param_label(fams, family, a),
    key=f"map_x_{family}_{quantity}",
)
y_opts = ["(none)", *[a for a in axes if a != x]]
y_default = preset[2] if preset and preset[2] in y_opts else "(none)"
y = c2.selectbox(
    "y axis (colour = property)",
    y_opts,
    index=y_opts.index(y_default),
    format_func=lambda a: a if a == "(none)" else views.param_label(fams, family, a),
    key=f"map_y_{family}_{quantity}",
)
y = None if y == "(none)" else y
provs = sorted(data["provenance"].unique())
shown_provs = c3.multiselect("Provenance", provs, default=provs, key=f"map_prov_{family}")
derived = st.toggle(
    "Include values derived by matdb's analysis (e.g. features of TLIS runs)",
    value=True,
    key="map_derived",
)

sel = data[data["provenance"].isin(shown_provs)]
if not derived:
    sel = sel[~sel["derived"]]
sel = sel[pd.to_numeric(sel[x], errors="coerce").notna()]
if y is not None:
    sel = sel[pd.to_numeric(sel[y], errors="coerce").notna()]
ui.simulated_banner(sel, "points")

predictions = None
if hasattr(services, "predict_grid"):
    if st.toggle(
        "Overlay model prediction",
        value=False,
        key="map_pred",
        help="Uses the trained surrogate of this property (Screening page).",
    ):
        predictions = ui.call(
            services.predict_grid,
            db,
            family=family,
            target=quantity,
            axes=[x] if y is None else [x, y],
            what="model prediction",
        )
        if predictions is None:
            st.caption("No prediction available for this map.")
else:
    st.caption("Model predictions will appear here once trained models are available.")

value_label = views.axis_label(quantity, qdefs)
fig = plots.composition_map(
    sel,
    x,
    y,
    "value",
    x_label=views.param_label(fams, family, x),
    y_label=None if y is None else views.param_label(fams, family, y),
    value_label=value_label,
    title=f"{value_label.split(' (')[0]} of {family}",
    predictions=predictions,
)
st.plotly_chart(fig, key="map_plot")
st.caption(
    "Markers: ● literature · ■ measured · ◇ simulated (open diamond). Error bars are reported "
    "uncertainties."
)

with st.expander(f"Data ({len(sel)} values)", expanded=False):
    cols = [
        "sample_id",
        "formula",
        x,
        *([y] if y else []),
        "value",
        "unit",
        "uncertainty",
        "approximate",
        "derived",
        "technique",
        "label",
        "provenance",
        "source_doi",
        "source_locator",
    ]
    shown = views.with_links(sel[[c for c in cols if c in sel.columns]])
    st.dataframe(ui.badges(shown), hide_index=True, column_config=ui.link_config(shown))
    st.download_button(
        "Download CSV",
        sel.to_csv(index=False).encode(),
        file_name=f"{family}_{quantity}.csv",
        mime="text/csv",
        key="map_csv",
    )
