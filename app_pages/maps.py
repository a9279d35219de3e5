"""Composition maps: a property against composition (and process) parameters of one family."""

from __future__ import annotations

import streamlit as st

from matdb_app import cache, explore, maps, plots
from matdb_app.display import MARKER_LEGEND, badges, with_links
from matdb_app.info import axis_label, param_label

st.title("Composition maps")

db = cache.database()
url, ver = cache.db_url(), cache.version(db)
fams = cache.families(url, ver)
qdefs = cache.quantities(url, ver)
table = cache.sample_table(url, ver)
present = sorted(table["family"].unique()) if len(table) else []
# families with data first, then the other families the seed papers map
options = present + sorted((set(maps.MAP_PRESETS) & set(fams)) - set(present))
if not options:
    st.info("No data yet. Load records on the **Ingest** page.")
    st.stop()

c1, c2 = st.columns(2)
family = c1.selectbox("Family", options, key="map_family",
                      format_func=lambda f: f"{f} — {fams[f].name}" if f in fams and fams[f].name else f)
qs = cache.numeric_quantities(url, ver, family)
if qs.empty:
    st.info(f"No numeric results for {family} yet.")
    st.stop()
preset = maps.MAP_PRESETS.get(family)
qlist = qs["quantity"].tolist()
counts = dict(zip(qs["quantity"], qs["n"], strict=True))
quantity = c2.selectbox(
    "Property",
    qlist,
    index=qlist.index(preset[0]) if preset and preset[0] in qlist else 0,
    format_func=lambda q: f"{axis_label(q, qdefs)} — {counts[q]} values",
    key=f"map_q_{family}",
)

data = cache.family_results(url, ver, family, quantity)
axes = maps.map_axes(data, fams, family)
if not axes:
    st.info(f"The {quantity} values of {family} have no composition or process parameters to plot against.")
    st.dataframe(badges(data), hide_index=True)
    st.stop()

c1, c2, c3 = st.columns(3)
x_default = preset[1] if preset and preset[1] in axes else axes[0]
x = c1.selectbox("x axis", axes, index=axes.index(x_default), format_func=lambda a: param_label(fams, family, a),
                 key=f"map_x_{family}_{quantity}")
y_opts = ["(none)", *[a for a in axes if a != x]]
y_default = preset[2] if preset and preset[2] in y_opts else "(none)"
y = c2.selectbox("y axis (colour = property)", y_opts, index=y_opts.index(y_default),
                 format_func=lambda a: a if a == "(none)" else param_label(fams, family, a),
                 key=f"map_y_{family}_{quantity}")
y = None if y == "(none)" else y
provs = sorted(data["provenance"].unique())
shown_provs = c3.multiselect("Provenance", provs, default=provs, key=f"map_prov_{family}")
c1, c2 = st.columns(2)
derived = c1.toggle("Include values derived by matdb's analysis (e.g. features of TLIS runs)", value=True,
                    key="map_derived")
inferred = c2.toggle("Include inferred values", value=True, key="map_inferred",
                     help="Values (or their samples) that were inferred rather than stated by the source.")

sel = maps.select_points(data, x, y, shown_provs, derived=derived, inferred=inferred)
cache.simulated_banner(sel, "points")

overlay = None
c1, c2 = st.columns([1, 2])
show_model = c1.toggle(
    "Show model predictions",
    value=False,
    key="map_pred",
    help="Trains (or reuses) a surrogate of this property for this family and draws its "
    "mean ± 1σ over the axes; other variables are held at the training median.",
)
model_sim = c2.checkbox("Model learns from simulated data too", value=False, key=f"map_pred_sim_{family}",
                        help="Off by default: the model learns from literature and measured values only.")
if show_model:
    with st.spinner("Training the surrogate ..."):
        overlay = cache.call(maps.model_overlay, db, family, quantity, [x] if y is None else [x, y],
                             include_simulated=model_sim, families=fams, what="model prediction")
    if overlay is None:
        st.caption("No prediction available for this map.")
    else:
        if overlay.simulated:
            st.warning("◇ The model drawn here was trained on **SIMULATED** data.")
        if overlay.warnings:
            st.warning("**Model:**\n" + "\n".join(f"- {w}" for w in overlay.warnings))
        st.caption(overlay.caption)

value_label = axis_label(quantity, qdefs)
fig = plots.composition_map(
    sel,
    x,
    y,
    "value",
    x_label=param_label(fams, family, x),
    y_label=None if y is None else param_label(fams, family, y),
    value_label=value_label,
    title=f"{value_label.split(' (')[0]} of {family}",
    predictions=None if overlay is None else overlay.grid,
    prediction_bounds=None if overlay is None else overlay.bounds,
)
st.plotly_chart(fig, key="map_plot")
st.caption(f"{MARKER_LEGEND} Error bars are reported uncertainties.")

with st.expander(f"Data ({len(sel)} values)", expanded=False):
    shown = with_links(maps.data_table(sel, x, y))
    st.dataframe(badges(shown), hide_index=True, column_config=cache.link_config(shown))
    st.download_button("Download CSV", explore.csv_bytes(sel), file_name=f"{family}_{quantity}.csv",
                       mime="text/csv", key="map_csv")
