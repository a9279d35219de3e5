"""Screening: what matdb will do with the data it has, model cards, ranked candidates, the next batch."""

from __future__ import annotations

import streamlit as st

from matdb_app import access, plots
from matdb_app import cache as ui
from matdb_app import screening as sc
from matdb_app import screening_display as sd
from matdb_app.info import axis_label

st.title("Screening")

#: Model kinds of screening.surrogate ("auto": both are fitted, the lower CV error wins).
MODEL_KINDS = ("auto", "gp", "forest")
DIRECTIONS = {"max": "higher is better", "min": "lower is better", "target": "closest to a target"}

db = ui.database()
url, ver = ui.db_url(), ui.version(db)
fams = ui.families(url, ver)
qdefs = ui.quantities(url, ver)
table = ui.sample_table(url, ver)
with_data = set(table["family"].unique()) if len(table) else set()
names = sorted(fams, key=lambda f: (f not in with_data, f))
state = st.session_state.setdefault("screening", {"cards": {}, "ranking": None, "plan": None, "pool": None})

# --- what to optimise ---------------------------------------------------------------------------------
c1, c2, c3 = st.columns([2, 3, 1.4])
family = c1.selectbox("Family", names, key="sc_family",
                      format_func=lambda f: f"{f} — {fams[f].name}" + ("" if f in with_data else " (no data yet)"))
choices = ui.call(sc.objective_choices, db, family, what="objectives")
qlist = choices["quantity"].tolist() if choices is not None else ["plqy"]
labels = dict(zip(choices["quantity"], choices["label"], strict=True)) if choices is not None else {}
defaults = dict(zip(choices["quantity"], choices["direction"], strict=True)) if choices is not None else {}
picked = c2.multiselect("Objective(s)", qlist, key=f"sc_targets_{family}", format_func=lambda q: labels.get(q, q),
                        default=[q for q in ("plqy",) if q in qlist][:1] or qlist[:1])
include_sim = c3.checkbox("Use simulated data", value=False, key="sc_sim",
                          help="Off by default: models learn from literature and measured data only.")
if include_sim:
    st.warning("⚠ **Simulated data is included** in training, ranking and proposals: models may learn the "
               "simulator, not the chemistry.")
specs = []
if picked:
    cols = st.columns(len(picked))
    for col, q in zip(cols, picked, strict=True):
        d = col.selectbox(f"{labels.get(q, q)}", list(DIRECTIONS), key=f"sc_dir_{family}_{q}",
                          index=list(DIRECTIONS).index(defaults.get(q) or "max"), format_func=DIRECTIONS.get)
        if d == "target":
            t = col.number_input(f"target ({labels.get(q, q)})", value=0.0, key=f"sc_tgt_{family}_{q}")
            specs.append(f"{q}:target={t:g}")
        else:
            specs.append(f"{q}:{d}")
if not specs:
    st.info("Choose at least one objective.")
    st.stop()

status = ui.call(sc.status, db, family, specs, include_simulated=include_sim, what="checking the data")
if status is None:
    st.stop()
if status.mode == "initial_design":
    st.info(f"**Initial design.** {status.message}")
else:
    st.success(f"**Model-based proposals.** {status.message}")

# --- candidates ----------------------------------------------------------------------------------------
st.header("Candidates")
pools = ui.call(sc.stored_pools, db, family, what="pools")
source = st.radio("Choose among", ["the family's space", "a candidate pool file", "a stored pool"],
                  horizontal=True, key="sc_source")
candidates = None
if source == "a candidate pool file":
    up = st.file_uploader("CSV, XLSX or Parquet with the family's parameter columns (and process columns)",
                          type=["csv", "xlsx", "parquet"], key="sc_pool_file")
    if up is not None:
        pool = ui.call(sc.pool_from_upload, up.name, up.getvalue(), family, db, what="reading the pool")
        if pool is not None:
            candidates = pool
            st.caption(f"{len(pool)} candidate(s) in {up.name}")
            if not access.read_only(db) and st.button("Store this pool", key="sc_pool_store"):
                key = ui.call(sc.store_uploaded_pool, db, up.name, pool, family, what="storing the pool")
                if key:
                    st.success(f"Stored as pool '{key}'.")
elif source == "a stored pool":
    keys = pools["key"].tolist() if pools is not None else []
    if keys:
        candidates = st.selectbox("Pool", keys, key="sc_pool_key")
    else:
        st.info(f"No stored pool for {family} yet: upload one as a file and store it.")
else:
    st.caption("The family's default space (ranges of the seed papers), searched continuously and rounded to the "
               "lab's resolution.")

# --- model ---------------------------------------------------------------------------------------------
if status.mode == "model":
    st.header("Model")
    kind = st.selectbox("Model kind", MODEL_KINDS, key="sc_kind",
                        help="gp: Gaussian process; forest: random forest; auto: both, the lower cross-validated "
                             "error wins")
    if st.button("Train", key="sc_train"):
        for spec in specs:
            with st.spinner(f"Training {spec} (cross-validation) ..."):
                model = ui.call(sc.train, db, spec, family, kind, include_sim, what=f"training {spec}")
            if model is not None:
                state["cards"][(family, spec.split(":")[0])] = model.card
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

# --- ranking -------------------------------------------------------------------------------------------
if status.mode == "model":
    st.header("Ranked candidates")
    n_rank = st.number_input("Candidates", 5, 1000, 50, step=5, key="sc_n")
    if st.button("Rank candidates", key="sc_rank"):
        with st.spinner("Scoring the candidates ..."):
            state["ranking"] = ui.call(sc.rank, db, family, specs, int(n_rank), candidates=candidates,
                                       include_simulated=include_sim, kind=kind, what="ranking")
    ranking = state["ranking"]
    objectives = [s.split(":")[0] for s in specs]
    if ranking is not None and len(ranking):
        st.caption(f"Top {len(ranking)} candidates not yet made, by acquisition (predicted mean ± 1σ per objective; "
                   + "; ".join(f"{o.name}: {o.describe}" for o in status.objectives) + ").")
        st.dataframe(sd.ranking_display(ranking, objectives), hide_index=True)
        top = ranking.head(30).assign(candidate=lambda d: sd.candidate_labels(d))
        for obj in objectives:
            mean, std = sd.mean_column(ranking, obj), sd.std_column(ranking, obj)
            if mean:
                st.plotly_chart(plots.ranking_bar(top, obj, mean, std, label_col="candidate",
                                                  axis_label=axis_label(obj, qdefs),
                                                  title=f"Predicted {axis_label(obj, qdefs)} ± 1σ, top candidates"),
                                key=f"sc_bar_{obj}")
        if len(objectives) >= 2:
            a, b = objectives[:2]
            ma, mb = sd.mean_column(ranking, a), sd.mean_column(ranking, b)
            if ma and mb:
                st.plotly_chart(plots.pareto_plot(ranking, ma, mb, ranking["pareto"].to_numpy(bool),
                                                  x_label=axis_label(a, qdefs), y_label=axis_label(b, qdefs),
                                                  x_err=sd.std_column(ranking, a), y_err=sd.std_column(ranking, b)),
                                key="sc_pareto")

# --- propose -------------------------------------------------------------------------------------------
st.header("Propose the next batch")
if access.read_only(db):
    st.info(access.READ_ONLY_INFO)
    st.stop()
variables = ui.call(sc.space_variables, db, family, what="variables") or []
c1, c2, c3, c4 = st.columns(4)
n_batch = c1.number_input("Batch size", 1, 96, 4, key="sc_batch")
slots = c2.number_input("Jars per run (0: no runs)", 0, 16, 0, key="sc_slots",
                        help="A mixer mill holds two jars, a planetary mill four; a furnace run is one temperature.")
shared = c3.multiselect("Shared within a run", variables, key=f"sc_shared_{family}",
                        help="Settings equal for every jar of a run (e.g. the milling time)")
trust = c4.number_input("Trust region (0: off)", 0.0, 1.0, 0.0, step=0.05, key="sc_trust",
                        help="Keep proposals within this distance of the data (fraction of the domain's diagonal)")
mass = st.number_input("Batch mass per experiment (mg), for the milling plan", 10.0, 10000.0, 400.0, step=50.0,
                       key="sc_mass")
if st.button("Propose", type="primary", key="sc_propose"):
    with st.spinner("Choosing the batch ..."):
        out = ui.call(sc.propose, db, family, specs, int(n_batch), candidates=candidates,
                      include_simulated=include_sim, slots=int(slots) or None, shared=tuple(shared),
                      trust_region=float(trust) or None, batch_mass_mg=float(mass), what="proposal")
    if out is not None:
        state["plan"] = out
plan = state["plan"]
if plan is not None:
    kind_text = ("a space-filling **initial design** (too few results for a model)" if plan.design == "initial_design"
                 else "**model-based** proposals")
    st.success(f"Campaign `{plan.campaign}`: {len(plan.table)} experiments, {kind_text}; saved in the database.")
    for m in plan.messages:
        st.caption(m)
    flagged = int(plan.table["pred_extrapolating"].sum()) if "pred_extrapolating" in plan.table else 0
    if flagged:
        st.warning(f"{flagged} proposal(s) lie far from every measured point (extrapolation): their predictions are "
                   "the least certain.")
    st.dataframe(plan.table, hide_index=True)
    fill = sd.result_columns(plan.table)
    st.info("**Next:** make these samples, fill in " + ", ".join(f"`{c}`" for c in fill)
            + " (or `outcome` for a synthesis that failed) in the downloaded plan, keep `proposal_id`, and load the "
            "file on the **Ingest** page: the results are linked to this campaign.")
    st.download_button("Download plan (CSV)", sd.download_csv(plan.table), file_name=f"{plan.campaign}_plan.csv",
                       mime="text/csv", key="sc_plan_csv")
    if plan.milling is not None:
        st.markdown(f"**Milling plan** (precursor masses for {mass:g} mg of each composition, by run)")
        st.dataframe(plan.milling, hide_index=True)
        st.download_button("Download milling plan (CSV)", sd.download_csv(plan.milling),
                           file_name=f"{plan.campaign}_milling_plan.csv", mime="text/csv", key="sc_mill_csv")
