"""Spectra: stored TLIS runs (heatmap, spectra, features against time) and pXRD patterns."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from matdb_app import cache, plots, spectra
from matdb_app.display import badges, with_links
from matdb_app.info import axis_label

st.title("Spectra")

db = cache.database()
url, ver = cache.db_url(), cache.version(db)
qdefs = cache.quantities(url, ver)

tab_tlis, tab_xrd = st.tabs(["Time-lapsed in situ runs", "pXRD patterns"])


def show_run(mid: str, kind: str, title: str, key: str) -> pd.DataFrame | None:
    """One run: heatmap, spectra with a time slider, features. Returns the feature series."""
    r = cache.call(cache.run, url, ver, mid, kind, what=f"run {mid}")
    if r is None:
        return None
    if r.provenance == "simulated":
        st.warning("◇ SIMULATED run (not measured).")
    sig = r.signal
    st.plotly_chart(plots.tlis_heatmap(r.times_min, r.wavelengths_nm, sig, signal_label=r.signal_label, title=title),
                    key=f"{key}_heat")
    n_t = r.times_min.size
    i = st.select_slider("Time (min)", options=list(range(n_t)), value=n_t - 1,
                         format_func=lambda k: f"{r.times_min[k]:g}", key=f"{key}_t")
    st.plotly_chart(
        plots.spectra_overlay(r.wavelengths_nm, sig, r.times_min, spectra.spectrum_indices(n_t),
                              signal_label=r.signal_label, highlight=int(i), title="Spectra over time"),
        key=f"{key}_spec",
    )
    feats = cache.call(cache.run_features, url, ver, mid, kind, what="feature extraction")
    if feats is None:
        st.warning("Feature extraction failed for this run; the raw spectra are shown above.")
        return None
    markers = spectra.time_markers(feats, kind)
    for name in spectra.MAIN_SERIES.get(kind, []):
        st.plotly_chart(
            plots.feature_timeseries(feats.series, name, axis_label=axis_label(name, qdefs),
                                     title=axis_label(name, qdefs).split(" (")[0] + " vs time", markers=markers),
            key=f"{key}_feat_{name}",
        )
    if not feats.features.empty:
        st.markdown("**Features of this run** (derived, not stored)")
        st.dataframe(feats.features[["name", "value", "unit", "uncertainty", "method", "note"]], hide_index=True)
    for w in feats.warnings:
        st.caption(f"• {w}")
    return feats.series.assign(run=title)


with tab_tlis:
    runs = cache.arrays_table(url, ver, spectra.TLIS_KINDS, None)
    if runs.empty:
        st.info("No stored TLIS runs. Ingest a TLIS CSV (with its record) on the **Ingest** page.")
    else:
        cache.simulated_banner(runs, "runs")
        if note := spectra.demo_note(runs):
            st.caption(note)
        fam = st.selectbox("Family", ["(all)", *sorted(runs["family"].unique())], key="sp_family")
        sel = runs if fam == "(all)" else runs[runs["family"] == fam]
        titles = sel["title"].tolist()
        picked = st.multiselect("Runs (up to 3 side by side)", titles, default=titles[:1], max_selections=3,
                                key="sp_runs")
        st.dataframe(
            badges(sel[["measurement_id", "sample_id", "family", "formula", "kind", "shape", "provenance"]]),
            hide_index=True,
            height=min(35 * (len(sel) + 1) + 3, 250),
        )
        if picked:
            all_series = []
            for col, title in zip(st.columns(len(picked)), picked, strict=True):
                row = sel[sel["title"] == title].iloc[0]
                with col:
                    s = show_run(row["measurement_id"], row["kind"], title, key=f"sp_{row['array_id']}")
                    if s is not None:
                        all_series.append(s)
            if len(all_series) > 1:
                st.subheader("Runs compared")
                both = pd.concat(all_series, ignore_index=True)
                for name in spectra.MAIN_SERIES["tlis_reflectance"][:1] + spectra.MAIN_SERIES["tlis_pl"]:
                    if name in set(both["name"]):
                        st.plotly_chart(plots.series_comparison(both, name, axis_label=axis_label(name, qdefs)),
                                        key=f"sp_cmp_{name}")

with tab_xrd:
    patterns = cache.arrays_table(url, ver, ("pxrd",), None)
    with_peaks = cache.families_with(url, ver, "xrd_peak")
    fam_options = sorted(set(with_peaks) | (set(patterns["family"]) if not patterns.empty else set()))
    if not fam_options:
        st.info("No pXRD data yet.")
    else:
        fam = st.selectbox("Family", fam_options, key="xrd_family")
        peaks = cache.known_peaks(url, ver, fam)
        sel = patterns[patterns["family"] == fam] if not patterns.empty else patterns
        chosen = st.multiselect("Patterns", sel["title"].tolist() if not sel.empty else [],
                                default=sel["title"].tolist()[:3] if not sel.empty else [], key="xrd_pick")
        data = []
        for title in chosen:
            row = sel[sel["title"] == title].iloc[0]
            p = cache.call(cache.pattern, url, ver, row["measurement_id"], "pxrd", what=title)
            if p is not None:
                data.append((title, p.x, p.y, p.provenance))
        if data or not peaks.empty:
            st.plotly_chart(
                plots.pattern_overlay(data, x_label="2θ (°)", y_label="Intensity (counts)", peaks=peaks,
                                      title=f"pXRD of {fam}"),
                key="xrd_plot",
            )
        if peaks.empty:
            st.caption(f"No known peak positions (xrd_peak results) for {fam}.")
        else:
            st.markdown(f"**Known peak positions of {fam}** (xrd_peak results)")
            shown = with_links(peaks)
            st.dataframe(badges(shown), hide_index=True, column_config=cache.link_config(shown))
