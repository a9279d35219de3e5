"""Screening: train surrogates, check them, rank candidates, propose the next batch."""

from __future__ import annotations

import streamlit as st

from matdb_app import cache as ui
from matdb_app import plots
from matdb_app import screening_display as sd
from matdb_app import screening_service as ss
from matdb_app.info import axis_label
from matdb_app.maps import MAP_PRESETS

st.title("Screening")

#: Model kinds of screening.surrogate ("auto": both are fitted, the lower CV error wins).
MODEL_KINDS = ("auto", "gp", "forest")
#: Batch strategies of screening_service.propose.
BATCH_STRATEGIES = ("kriging_believer", "local_penalization", "q-ucb")

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
c1, c2, c3, c4 = st.columns([2, 3, 1, 1.4])
family = c1.selectbox(
    "Family",
    present,
    key="sc_family",
    format_func=lambda f: f"{f} — {fams[f].name}" if f in fams and fams[f].name else f,
)
qs = ui.numeric_quantities(url, ver, family)
qlist = qs["quantity"].tolist()
preferred = [q for q in ("plqy", MAP_PRESETS.get(family, ("",))[0]) if q in qlist]
targets = c2.multiselect(
    "Target(s)",
    qlist,
    key=f"sc_targets_{family}",
    format_func=lambda q: axis_label(q, qdefs),
    default=preferred[:1],
)
kind = c3.selectbox(
    "Model",
    MODEL_KINDS,
    key="sc_kind",
    help="gp: Gaussian process; forest: random forest; auto: fit both and keep the one with the "
    "lower cross-validated error",
)
include_sim = c4.checkbox(
    "Use simulated data",
    value=False,
    key="sc_sim",
    help="Off by default: models learn from literature and measured data only. Applies to "
    "training, ranking and proposals.",
)
if include_sim:
    st.warning(
        "⚠ **Simulated data is included** in training, ranking and proposals: models may learn "
        "the simulator, not the chemistry."
    )

if st.button("Train", type="primary", disabled=not targets, key="sc_train"):
    for target in targets:
        with st.spinner(f"Training {target} (cross-validation of every model kind) ..."):
            model = ui.call(
                ss.train,
                db,
                target,
                family=family,
                kind=kind,
                include_simulated=include_sim,
                what=f"training {target}",
            )
        if model is not None:
            state["cards"][(family, target)] = model.card
    state["ranking"] = None

cards = {t: c for (f, t), c in state["cards"].items() if f == family}
for target, card in cards.items():
    with st.container(border=True):
        st.subheader(f"Model card: {axis_label(target, qdefs)}")
        prov = ", ".join(card.get("training_provenance") or []) or "unknown"
        st.markdown(
            f"**{card.get('kind', '?')}** model of **{axis_label(target, qdefs)}** for "
            f"{', '.join(card.get('families') or [family])}, trained on **{card.get('n_train')}** "
            f"compositions/processes · training data provenance: **{prov}**"
        )
        if sd.trained_on_simulated(card):
            st.warning(
                "⚠ This model was trained on **SIMULATED** data (provenance simulated): its "
                "predictions, errors and proposals describe the simulator, not measured samples."
            )
        main, notes = sd.split_warnings(card)
        if main:
            st.warning("\n".join(f"- {w}" for w in main))
        c1, c2 = st.columns([1, 1])
        c1.markdown(
            "**Cross-validation**: held-out error, and the share of held-out points inside the "
            "central 68 % / 95 % prediction intervals [95 % Wilson CI]"
        )
        metrics = sd.metrics_frame(card).set_index("validation").astype(str).T
        c1.dataframe(metrics.rename_axis("metric"), hide_index=False)
        c1.dataframe(sd.card_facts(card), hide_index=True)
        cal = sd.calibration_frame(card)
        if cal is not None and not cal.empty:
            c2.plotly_chart(
                plots.calibration_plot(cal, title=f"Calibration: {target}"),
                key=f"sc_cal_{family}_{target}",
            )
        else:
            c2.caption("No calibration data in the model card (no cross-validation was run).")
        if notes:
            with st.expander(f"{len(notes)} optimizer note(s) from the final fit"):
                st.code("\n".join(notes), language=None, wrap_lines=True)
        with st.expander("Full model card (JSON)"):
            st.json(card, expanded=False)

if not cards:
    st.caption("Train at least one model to rank candidates.")
    st.stop()

# --- 2. rank ----------------------------------------------------------------------------------
st.header("2 · Ranked candidates")
c1, c2 = st.columns([3, 1])
objectives = c1.multiselect(
    "Objectives",
    list(cards),
    default=list(cards),
    key=f"sc_obj_{family}",
    format_func=lambda q: (
        f"{axis_label(q, qdefs)} ({cards[q].get('direction', 'higher')} is better)"
    ),
)
n_rank = c2.number_input("Candidates", 5, 1000, 50, step=5, key="sc_n")
if st.button("Rank candidates", disabled=not objectives, key="sc_rank"):
    with st.spinner("Scoring the candidate space ..."):
        state["ranking"] = ui.call(
            ss.rank,
            db,
            family,
            objectives,
            n=int(n_rank),
            include_simulated=include_sim,
            kind=kind,
            what="ranking",
        )
ranking = state["ranking"]
if ranking is not None and len(ranking):
    st.caption(
        f"Top {len(ranking)} candidates not yet made, by acquisition value (predicted mean ± "
        "1σ per objective)."
    )
    st.dataframe(sd.ranking_display(ranking, objectives), hide_index=True)
    top = ranking.head(30).assign(candidate=lambda d: sd.candidate_labels(d))
    for obj in objectives:
        mean, std = sd.mean_column(ranking, obj), sd.std_column(ranking, obj)
        if mean:
            st.plotly_chart(
                plots.ranking_bar(
                    top,
                    obj,
                    mean,
                    std,
                    label_col="candidate",
                    axis_label=axis_label(obj, qdefs),
                    title=f"Predicted {axis_label(obj, qdefs)} ± 1σ, top candidates",
                ),
                key=f"sc_bar_{obj}",
            )
    if len(objectives) >= 2:
        a, b = objectives[:2]
        ma, mb = sd.mean_column(ranking, a), sd.mean_column(ranking, b)
        if ma and mb:
            front = sd.pareto_flags(ranking, objectives)
            st.plotly_chart(
                plots.pareto_plot(
                    ranking,
                    ma,
                    mb,
                    front,
                    x_label=axis_label(a, qdefs),
                    y_label=axis_label(b, qdefs),
                    x_err=sd.std_column(ranking, a),
                    y_err=sd.std_column(ranking, b),
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
    "Batch strategy",
    BATCH_STRATEGIES,
    key="sc_batchmode",
    help="kriging_believer: condition the model on its own prediction after each pick; "
    "local_penalization: damp the acquisition near picked points; q-ucb: greedy upper "
    "confidence bound",
)
if st.button("Propose", type="primary", disabled=not objectives, key="sc_propose"):
    with st.spinner("Selecting the batch ..."):
        out = ui.call(
            ss.propose,
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
    fill = sd.result_columns(plan)
    st.info(
        "**Next:** make these samples, fill in the result column"
        + ("s " if len(fill) > 1 else " ")
        + ", ".join(f"`{c}`" for c in fill)
        + " of the downloaded plan CSV (keep `proposal_id`), then load the file on the "
        "**Ingest** page: the results are linked to this campaign."
    )
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
    mp = ui.call(ss.milling_plan, db, plan, float(mass), what="milling plan")
    if mp is not None:
        st.markdown(f"**Milling plan** (precursor masses for {mass:g} mg of each composition)")
        st.dataframe(mp, hide_index=True)
        st.download_button(
            "Download milling plan (CSV)",
            mp.to_csv(index=False).encode(),
            file_name=f"{campaign}_milling_plan.csv",
            mime="text/csv",
            key="sc_mill_csv",
        )
