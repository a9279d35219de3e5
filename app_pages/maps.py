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
card = None
if hasattr(services, "predict_grid"):
    c1, c2 = st.columns([1, 2])
    show_model = c1.toggle(
        "Show model predictions",
        value=False,
        key="map_pred",
        help="Trains (or reuses) a surrogate of this property for this family and draws its "
        "mean ± 1σ over the axes; other variables are held at the training median.",
    )
    model_sim = c2.checkbox(
        "Model learns from simulated data too",
        value=False,
        key=f"map_pred_sim_{family}",
        help="Off by default: the model learns from literature and measured values only.",
    )
    if show_model:
        pred_axes = [x] if y is None else [x, y]
        with st.spinner("Training the surrogate ..."):
            card = ui.call(
                services.train,
                db,
                quantity,
                family=family,
                kind="auto",
                include_simulated=model_sim,
                what="model prediction",
            )
        if card is not None:
            if views.trained_on_simulated(card):
                st.warning("⚠ The model drawn here was trained on **SIMULATED** data.")
            main, _notes = views.split_warnings(card)
            if main:
                st.warning("**Model:**\n" + "\n".join(f"- {w}" for w in main))
            predictions = ui.call(
                views.model_grid,
                db,
                family,
                quantity,
                pred_axes,
                include_simulated=model_sim,
                n=41 if y is None else 31,
                what="model prediction",
            )
        if predictions is None:
            st.caption("No prediction available for this map.")
        else:
            fixed = views.fixed_variables(predictions, pred_axes)
            st.caption(
                f"Model: {card.get('kind')} trained on {card.get('n_train')} points "
                f"({', '.join(card.get('training_provenance') or [])}); "
                + ("line = mean, band = ±1σ" if y is None else "background = predicted mean")
                + (
                    "; held fixed: "
                    + ", ".join(
                        f"{views.param_label(fams, family, k)} = {v:g}" for k, v in fixed.items()
                    )
                    if fixed
                    else ""
                )
                + "."
            )
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
    prediction_bounds=None if predictions is None else views.card_bounds(card),
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
