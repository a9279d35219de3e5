"""Screening: train surrogates, check them, rank candidates, propose the next batch."""

from __future__ import annotations

import streamlit as st

from matdb_app import plots, services, views
from matdb_app import ui_state as ui

st.title("Screening")

#: Service functions this page needs (written in matdb_app.services).
NEEDED = ("train", "rank", "propose", "milling_plan")
missing = [n for n in NEEDED if not hasattr(services, n)]
if missing:
    st.info(
        "Screening is not available yet: this matdb build has no "
        + ", ".join(f"`services.{n}`" for n in missing)
        + ". The page lights up when they are installed."
    )
    st.stop()

db = ui.database()
url, ver = ui.db_url(), ui.version(db)
fams = ui.families(url, ver)
qdefs = ui.quantities(url, ver)
table = ui.sample_table(url, ver)
present = sorted(table["family"].unique()) if len(table) else []
if not present:
    st.info("No data to learn from yet. Load records on the **Ingest** page.")
    st.stop()

state = st.session_state.setdefault("screening", {"cards": {}, "ranking": None, "plan": None})

# --- 1. train ---------------------------------------------------------------------------------
st.header("1 · Train surrogate models")
c1, c2, c3, c4 = st.columns([2, 3, 1, 1])
family = c1.selectbox("Family", present, key="sc_family")
qs = ui.numeric_quantities(url, ver, family)
targets = c2.multiselect(
    "Target(s)",
    qs["quantity"].tolist(),
    key=f"sc_targets_{family}",
    format_func=lambda q: views.axis_label(q, qdefs),
    default=[q for q in [views.MAP_PRESETS.get(family, ("",))[0]] if q in set(qs["quantity"])],
)
kind = c3.selectbox(
    "Model",
    ["auto", "gp", "rf"],
    key="sc_kind",
    help="auto: Gaussian process for small data, random forest otherwise",
)
include_sim = c4.checkbox(
    "Use simulated data",
    value=False,
    key="sc_sim",
    help="Off by default: models learn from literature and measured data only.",
)
if include_sim:
    st.warning("⚠ Simulated data is included in training.")

if st.button("Train", type="primary", disabled=not targets, key="sc_train"):
    for target in targets:
        with st.spinner(f"Training {target} ..."):
            card = ui.call(
                services.train,
                db,
                target,
                family=family,
                kind=kind,
                include_simulated=include_sim,
                what=f"training {target}",
            )
        if card is not None:
            state["cards"][(family, target)] = card
    state["ranking"] = None

cards = {t: c for (f, t), c in state["cards"].items() if f == family}
for target, card in cards.items():
    with st.expander(f"Model card: {views.axis_label(target, qdefs)}", expanded=True):
        for w in card.get("warnings") or []:
            st.warning(str(w))
        c1, c2 = st.columns([1, 2])
        c1.markdown("**Cross-validation**")
        c1.dataframe(views.metrics_frame(card), hide_index=True)
        other = {
            k: v
            for k, v in card.items()
            if isinstance(v, (str, int, float)) and k not in ("warnings",)
        }
        if other:
            c1.json(other, expanded=False)
        cal = views.calibration_frame(card)
        if cal is not None and not cal.empty:
            c2.plotly_chart(
                plots.calibration_plot(cal, title=f"Calibration: {target}"), key=f"sc_cal_{target}"
            )
        else:
            c2.caption("No calibration data in the model card.")

if not cards:
    st.caption("Train at least one model to rank candidates.")
    st.stop()

# --- 2. rank ----------------------------------------------------------------------------------
st.header("2 · Ranked candidates")
c1, c2 = st.columns([3, 1])
objectives = c1.multiselect(
    "Objectives (maximised)",
    list(cards),
    default=list(cards),
    key="sc_obj",
    format_func=lambda q: views.axis_label(q, qdefs),
)
n_rank = c2.number_input("Candidates", 5, 1000, 50, step=5, key="sc_n")
if st.button("Rank candidates", disabled=not objectives, key="sc_rank"):
    with st.spinner("Scoring the candidate space ..."):
        state["ranking"] = ui.call(
            services.rank, db, family, objectives, n=int(n_rank), include_simulated=include_sim,
            kind=kind, what="ranking"
        )
ranking = state["ranking"]
if ranking is not None and len(ranking):
    st.dataframe(ranking, hide_index=True)
    first = objectives[0]
    mean, std = views.mean_column(ranking, first), views.std_column(ranking, first)
    label_col = "formula" if "formula" in ranking.columns else "candidate_id"
    if mean:
        st.plotly_chart(
            plots.ranking_bar(
                ranking.head(30),
                first,
                mean,
                std,
                label_col=label_col,
                axis_label=views.axis_label(first, qdefs),
            ),
            key="sc_bar",
        )
    if len(objectives) >= 2:
        a, b = objectives[:2]
        ma, mb = views.mean_column(ranking, a), views.mean_column(ranking, b)
        if ma and mb:
            front = views.pareto_flags(ranking, objectives)
            st.plotly_chart(
                plots.pareto_plot(
                    ranking,
                    ma,
                    mb,
                    front,
                    x_label=views.axis_label(a, qdefs),
                    y_label=views.axis_label(b, qdefs),
                    x_err=views.std_column(ranking, a),
                    y_err=views.std_column(ranking, b),
                ),
                key="sc_pareto",
            )
elif ranking is not None:
    st.info("No candidates left after the constraints.")

# --- 3. propose -------------------------------------------------------------------------------
st.header("3 · Propose the next batch")
c1, c2, c3 = st.columns(3)
n_batch = c1.number_input("Batch size", 1, 96, 8, key="sc_batch")
acquisition = c2.selectbox(
    "Acquisition",
    ["ei", "ucb", "pi", "mean"],
    key="sc_acq",
    help="ei: expected improvement; ucb: upper confidence bound; pi: probability of "
    "improvement; mean: exploit",
)
batch = c3.selectbox(
    "Batch strategy", ["kriging_believer", "local_penalization"], key="sc_batchmode"
)
if st.button("Propose", type="primary", disabled=not objectives, key="sc_propose"):
    with st.spinner("Selecting the batch ..."):
        out = ui.call(
            services.propose,
            db,
            family,
            objectives,
            int(n_batch),
            acquisition=acquisition,
            batch=batch,
            include_simulated=include_sim,
            kind=kind,
            what="proposal",
        )
    if out is not None:
        state["plan"] = out
if state["plan"] is not None:
    campaign, plan = state["plan"]
    st.success(f"Campaign `{campaign}`: {len(plan)} proposed experiments (saved in the database).")
    st.dataframe(plan, hide_index=True)
    st.download_button(
        "Download plan (CSV)",
        plan.to_csv(index=False).encode(),
        file_name=f"{campaign}_plan.csv",
        mime="text/csv",
        key="sc_plan_csv",
    )
    mass = st.number_input(
        "Batch mass per experiment (mg)", 10.0, 10000.0, 500.0, step=50.0, key="sc_mass"
    )
    mp = ui.call(services.milling_plan, db, plan, float(mass), what="milling plan")
    if mp is not None:
        st.markdown("**Milling plan** (precursor masses per experiment)")
        st.dataframe(mp, hide_index=True)
        st.download_button(
            "Download milling plan (CSV)",
            mp.to_csv(index=False).encode(),
            file_name=f"{campaign}_milling_plan.csv",
            mime="text/csv",
            key="sc_mill_csv",
        )
