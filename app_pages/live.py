"""Live: a watched spectrometer folder (``matdb watch``) while the mill runs — heatmap, features, decision."""

from __future__ import annotations

import streamlit as st

from matdb_app import watch
from matdb_app.errors import user_errors

st.title("Live")
folder = st.text_input(
    "Watched folder (where `matdb watch` writes matdb-watch.yaml)", value=st.query_params.get("dir", ""), key="live_dir"
)
refresh_s = float(st.query_params.get("every", 2.0))


@st.fragment(run_every=refresh_s)
def live_view() -> None:
    runs = st.session_state.setdefault("live_runs", {})
    try:
        live = runs.get(folder) or runs.setdefault(folder, watch.LiveRun.open(folder))
    except user_errors() as exc:
        st.info(f"Not a watched folder yet: {exc}")
        return
    live.poll()
    state = live.state()
    st.caption(f"{live.manifest.sample} · {live.manifest.mode} · {state.times_min.size} spectra")
    if state.banner:
        (st.success if state.banner[0] == "success" else st.error)(state.banner[1])
    else:
        st.info("changing — keep milling")
    if state.times_min.size:
        heat, traces = watch.figures(state)
        st.plotly_chart(heat, key="live_heat")
        st.plotly_chart(traces, key="live_traces")
    for w in state.warnings[-5:] + state.notes[-5:]:
        st.caption(f"• {w}")


if folder:
    live_view()
