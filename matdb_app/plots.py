"""Plotly figure builders for the Streamlit pages: pure functions of DataFrames and arrays.

Every figure labels its axes with units and marks simulated data with its own marker symbol
(:data:`PROVENANCE_SYMBOLS`), so simulated points never pass for measurements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: Marker symbol per provenance (simulated data is always drawn as open diamonds).
PROVENANCE_SYMBOLS: dict[str, str] = {
    "literature": "circle",
    "measured": "square",
    "simulated": "diamond-open",
}
#: Maximum number of heatmap cells sent to the browser (larger runs are decimated for display).
MAX_HEATMAP_CELLS = 400_000
_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "height": 460,
}


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT)
    return fig


def _symbol(prov: str) -> str:
    return PROVENANCE_SYMBOLS.get(str(prov), "x")


def _decimate(n: int, max_n: int) -> np.ndarray:
    step = max(1, int(np.ceil(n / max_n)))
    return np.arange(0, n, step)


def tlis_heatmap(
    times_min: np.ndarray,
    wavelengths_nm: np.ndarray,
    signal: np.ndarray,
    *,
    signal_label: str,
    title: str = "",
) -> go.Figure:
    """Heatmap of a TLIS run: wavelength (x, nm) × milling time (y, min), colour = signal.

    ``signal`` has shape (n_t, n_wl). Runs larger than :data:`MAX_HEATMAP_CELLS` are shown
    with every k-th time point (the data itself is not changed).
    """
    n_t, n_wl = signal.shape
    it = _decimate(n_t, max(1, MAX_HEATMAP_CELLS // max(n_wl, 1)))
    fig = go.Figure(
        go.Heatmap(
            x=wavelengths_nm,
            y=times_min[it],
            z=signal[it],
            colorscale="Viridis",
            colorbar={"title": signal_label},
            hovertemplate="λ %{x:.0f} nm<br>t %{y:.2f} min<br>%{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or "Time-lapsed in situ run",
        xaxis_title="Wavelength (nm)",
        yaxis_title="Milling time (min)",
        **_LAYOUT,
    )
    return fig


def spectra_overlay(
    wavelengths_nm: np.ndarray,
    signal: np.ndarray,
    times_min: np.ndarray,
    indices: Sequence[int],
    *,
    signal_label: str,
    title: str = "",
    highlight: int | None = None,
) -> go.Figure:
    """Overlaid spectra of the chosen time indices; ``highlight`` is drawn thick and black."""
    fig = go.Figure()
    n = max(len(indices) - 1, 1)
    for k, i in enumerate(indices):
        shade = int(40 + 180 * k / n)
        fig.add_trace(
            go.Scatter(
                x=wavelengths_nm,
                y=signal[i],
                mode="lines",
                name=f"{times_min[i]:g} min",
                line={"width": 1, "color": f"rgb({shade},{80},{255 - shade})"},
            )
        )
    if highlight is not None:
        fig.add_trace(
            go.Scatter(
                x=wavelengths_nm,
                y=signal[highlight],
                mode="lines",
                name=f"{times_min[highlight]:g} min (selected)",
                line={"width": 3, "color": "black"},
            )
        )
    fig.update_layout(
        title=title or "Spectra", xaxis_title="Wavelength (nm)", yaxis_title=signal_label, **_LAYOUT
    )
    return fig


def feature_timeseries(
    series: pd.DataFrame,
    name: str,
    *,
    axis_label: str,
    title: str = "",
    markers: dict[str, float] | None = None,
) -> go.Figure:
    """A feature (one ``name`` of :func:`matdb_app.spectra.run_features` series) against time.

    ``markers`` maps a label ("steady state", "decay onset") to a time (min) drawn as a dashed
    vertical line.
    """
    s = series[series["name"] == name]
    if s.empty:
        return _empty(title or name, f"no valid {name} points")
    err = s["uncertainty"] if s["uncertainty"].notna().any() else None
    fig = go.Figure(
        go.Scatter(
            x=s["time_min"],
            y=s["value"],
            mode="lines+markers",
            name=name,
            marker={"size": 5},
            error_y=None
            if err is None
            else {"type": "data", "array": err.fillna(0), "visible": True, "thickness": 1},
        )
    )
    for label, t in (markers or {}).items():
        if t is not None and np.isfinite(t):
            fig.add_vline(
                x=float(t),
                line_dash="dash",
                line_color="firebrick",
                annotation_text=f"{label} ({t:.3g} min)",
                annotation_position="top left",
            )
    fig.update_layout(
        title=title or name, xaxis_title="Milling time (min)", yaxis_title=axis_label, **_LAYOUT
    )
    return fig


def pattern_overlay(
    patterns: Sequence[tuple[str, np.ndarray, np.ndarray, str]],
    *,
    x_label: str,
    y_label: str,
    peaks: pd.DataFrame | None = None,
    title: str = "",
    normalize: bool = True,
) -> go.Figure:
    """Overlaid 1-D patterns ``(name, x, y, provenance)`` with known peak positions as lines.

    ``peaks`` has columns value (x position) and label; normalised patterns are scaled to a
    maximum of 1 and offset by 1.1 each so they do not hide one another.
    """
    fig = go.Figure()
    for k, (name, x, y, prov) in enumerate(patterns):
        yy = np.asarray(y, dtype=float)
        if normalize and yy.size and np.nanmax(np.abs(yy)) > 0:
            yy = yy / np.nanmax(np.abs(yy)) + 1.1 * k
        fig.add_trace(
            go.Scatter(
                x=x,
                y=yy,
                mode="lines",
                name=f"{name} ({prov})",
                line={"dash": "dot" if prov == "simulated" else "solid"},
            )
        )
    if peaks is not None and not peaks.empty:
        for label, grp in peaks.groupby(peaks["label"].fillna("known peak")):
            xs = grp["value"].to_numpy(dtype=float)
            fig.add_trace(
                go.Scatter(
                    x=np.repeat(xs, 3),
                    y=np.tile([0.0, 1.0, np.nan], xs.size),
                    mode="lines",
                    yaxis="y2",
                    name=f"known: {label}",
                    line={"dash": "dash", "width": 1},
                    hoverinfo="x+name",
                )
            )
        fig.update_layout(yaxis2={"overlaying": "y", "range": [0, 1], "visible": False})
    fig.update_layout(
        title=title or "Patterns",
        xaxis_title=x_label,
        yaxis_title=f"{y_label} (normalised, offset)" if normalize else y_label,
        **_LAYOUT,
    )
    return fig


def composition_map(
    df: pd.DataFrame,
    x: str,
    y: str | None,
    value: str,
    *,
    x_label: str,
    y_label: str | None,
    value_label: str,
    title: str = "",
    predictions: pd.DataFrame | None = None,
    prediction_bounds: tuple[float, float] | None = None,
) -> go.Figure:
    """A property over one or two composition/process parameters.

    One axis (``y`` None): value against ``x``, one trace per provenance (simulated = open
    diamonds). Two axes: points at (x, y) coloured by value. ``predictions`` (columns x, [y],
    mean, optional std) is drawn as a line with a ±1σ band (one axis) or as a heatmap of the mean
    under the points, on the points' colour scale (two axes). ``prediction_bounds`` (lo, hi) are
    the target's physical bounds (PLQY 0..100 %): the ±1σ band is clipped to them.
    """
    if df.empty:
        return _empty(title or value_label, "no data for this selection")
    fig = go.Figure()
    if y is None:
        if predictions is not None and not predictions.empty:
            p = predictions.sort_values(x)
            if "std" in p.columns:
                upper = (p["mean"] + p["std"]).to_numpy(dtype=float)
                lower = (p["mean"] - p["std"]).to_numpy(dtype=float)
                if prediction_bounds is not None:
                    upper = np.clip(upper, *prediction_bounds)
                    lower = np.clip(lower, *prediction_bounds)
                fig.add_trace(
                    go.Scatter(
                        x=np.concatenate([p[x], p[x][::-1]]),
                        y=np.concatenate([upper, lower[::-1]]),
                        fill="toself",
                        fillcolor="rgba(100,100,200,0.2)",
                        line={"width": 0},
                        name="model ±1σ",
                        hoverinfo="skip",
                    )
                )
            fig.add_trace(
                go.Scatter(
                    x=p[x],
                    y=p["mean"],
                    mode="lines",
                    name="model prediction",
                    line={"color": "rgb(60,60,170)"},
                )
            )
        for prov, grp in df.groupby("provenance", sort=True):
            err = (
                grp["uncertainty"]
                if "uncertainty" in grp and grp["uncertainty"].notna().any()
                else None
            )
            fig.add_trace(
                go.Scatter(
                    x=grp[x],
                    y=grp[value],
                    mode="markers",
                    name=str(prov),
                    marker={"symbol": _symbol(prov), "size": 10, "line": {"width": 1}},
                    error_y=None
                    if err is None
                    else {"type": "data", "array": err.fillna(0), "visible": True},
                    text=grp.get("sample_id"),
                    hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra>" + str(prov) + "</extra>",
                )
            )
        fig.update_layout(xaxis_title=x_label, yaxis_title=value_label, showlegend=True)
    else:
        vmin, vmax = float(df[value].min()), float(df[value].max())
        if predictions is not None and not predictions.empty and y in predictions.columns:
            grid = predictions.pivot_table(index=y, columns=x, values="mean")
            sd = (
                predictions.pivot_table(index=y, columns=x, values="std")
                .reindex(index=grid.index, columns=grid.columns)
                .to_numpy()
                if "std" in predictions.columns
                else np.full(grid.shape, np.nan)
            )
            # one colour scale for the model and the points, so they can be compared by eye
            vmin = min(vmin, float(np.nanmin(grid.to_numpy())))
            vmax = max(vmax, float(np.nanmax(grid.to_numpy())))
            fig.add_trace(
                go.Heatmap(
                    x=grid.columns.to_numpy(dtype=float),
                    y=grid.index.to_numpy(dtype=float),
                    z=grid.to_numpy(),
                    customdata=sd,
                    colorscale="Viridis",
                    zmin=vmin,
                    zmax=vmax,
                    showscale=False,
                    name="model prediction",
                    hovertemplate=f"{x} %{{x:.4g}}, {y} %{{y:.4g}}<br>model %{{z:.4g}} ± "
                    "%{customdata:.2g} (1σ)<extra>model prediction</extra>",
                )
            )
        for i, (prov, grp) in enumerate(df.groupby("provenance", sort=True)):
            fig.add_trace(
                go.Scatter(
                    x=grp[x],
                    y=grp[y],
                    mode="markers",
                    name=str(prov),
                    marker={
                        "symbol": _symbol(prov),
                        "size": 13,
                        "color": grp[value],
                        "colorscale": "Viridis",
                        "cmin": vmin,
                        "cmax": vmax,
                        "showscale": i == 0,
                        "colorbar": {"title": value_label},
                        "line": {"width": 1, "color": "black"},
                    },
                    text=[
                        f"{s}: {v:.4g}"
                        for s, v in zip(grp.get("sample_id", grp.index), grp[value], strict=True)
                    ],
                    hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra>" + str(prov) + "</extra>",
                )
            )
        fig.update_layout(
            xaxis_title=x_label, yaxis_title=y_label, legend={"orientation": "h", "y": -0.2}
        )
    fig.update_layout(title=title or value_label, **_LAYOUT)
    return fig


def calibration_plot(cal: pd.DataFrame, *, title: str = "Calibration") -> go.Figure:
    """Observed vs nominal coverage of a model's central prediction intervals.

    ``cal`` is :func:`matdb_app.screening_display.calibration_frame` output: columns validation, nominal,
    observed (fractions 0..1), ci_low, ci_high (95 % Wilson interval of the observed fraction),
    optional n_heldout and reliable. Drawn in percent with asymmetric CI error bars and the
    diagonal (a calibrated model lies on it); one trace per validation scheme.
    """
    need = {"nominal", "observed"}
    if cal is None or cal.empty or not need <= set(cal.columns):
        cols = [] if cal is None else list(cal.columns)
        return _empty(title, f"no calibration data (columns {cols})")
    fig = go.Figure(
        go.Scatter(
            x=[0, 100],
            y=[0, 100],
            mode="lines",
            name="ideal (observed = nominal)",
            line={"dash": "dash", "color": "grey"},
            hoverinfo="skip",
        )
    )
    groups = (
        cal.groupby("validation", sort=False) if "validation" in cal.columns else [("model", cal)]
    )
    for i, (name, g) in enumerate(groups):
        obs = 100 * g["observed"].to_numpy(dtype=float)
        nom = 100 * g["nominal"].to_numpy(dtype=float)
        err = None
        if {"ci_low", "ci_high"} <= set(g.columns):
            hi = 100 * g["ci_high"].to_numpy(dtype=float) - obs
            lo = obs - 100 * g["ci_low"].to_numpy(dtype=float)
            err = {
                "type": "data",
                "symmetric": False,
                "array": np.nan_to_num(hi),
                "arrayminus": np.nan_to_num(lo),
                "visible": True,
                "thickness": 1.5,
                "width": 6,
            }
        n = g["n_heldout"].iloc[0] if "n_heldout" in g.columns else None
        unreliable = "reliable" in g.columns and not bool(g["reliable"].all())
        label = (
            f"{name}"
            + (f" (n = {n})" if n is not None else "")
            + (" — few points" if unreliable else "")
        )
        fig.add_trace(
            go.Scatter(
                x=nom + (1.5 * i),  # side by side when two schemes share a level
                y=obs,
                mode="markers",
                name=label,
                marker={"size": 11, "symbol": "circle" if i == 0 else "square"},
                error_y=err,
                customdata=np.c_[
                    nom, 100 * g.get("ci_low", g["observed"]), 100 * g.get("ci_high", g["observed"])
                ],
                hovertemplate="nominal %{customdata[0]:.0f} %<br>observed %{y:.0f} % "
                "[%{customdata[1]:.0f}–%{customdata[2]:.0f} %]<extra>" + str(name) + "</extra>",
            )
        )
    fig.update_layout(
        title=title,
        xaxis={
            "title": "Nominal coverage of the central interval (%)",
            "range": [0, 102],
            "tickvals": [0, 20, 40, 60, 68, 80, 95, 100],
        },
        yaxis={"title": "Observed coverage, held-out points (%)", "range": [0, 102]},
        legend={"orientation": "h", "y": -0.2},
        **_LAYOUT,
    )
    return fig


def pareto_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    on_front: np.ndarray,
    *,
    x_label: str,
    y_label: str,
    x_err: str | None = None,
    y_err: str | None = None,
    title: str = "Pareto front",
) -> go.Figure:
    """Candidates in the plane of two predicted objectives; the Pareto front is highlighted."""
    if df.empty:
        return _empty(title, "no candidates")
    fig = go.Figure()
    rest, front = df[~on_front], df[on_front]
    fig.add_trace(
        go.Scatter(
            x=rest[x],
            y=rest[y],
            mode="markers",
            name="candidates",
            marker={"color": "lightgrey", "size": 7},
            error_x=None
            if x_err is None
            else {"type": "data", "array": rest[x_err], "visible": True, "color": "#ddd"},
            error_y=None
            if y_err is None
            else {"type": "data", "array": rest[y_err], "visible": True, "color": "#ddd"},
        )
    )
    f = front.sort_values(x)
    fig.add_trace(
        go.Scatter(
            x=f[x],
            y=f[y],
            mode="lines+markers",
            name="Pareto front",
            marker={"color": "crimson", "size": 10},
            error_x=None if x_err is None else {"type": "data", "array": f[x_err], "visible": True},
            error_y=None if y_err is None else {"type": "data", "array": f[y_err], "visible": True},
        )
    )
    fig.update_layout(title=title, xaxis_title=x_label, yaxis_title=y_label, **_LAYOUT)
    return fig


def ranking_bar(
    df: pd.DataFrame,
    objective: str,
    mean: str,
    std: str | None,
    *,
    label_col: str,
    axis_label: str,
    title: str = "",
) -> go.Figure:
    """Predicted value with ±1σ error bars of the top candidates, best first."""
    if df.empty:
        return _empty(title or objective, "no candidates")
    labels = (
        df[label_col].astype(str)
        if label_col in df.columns
        else pd.Series(range(len(df))).astype(str)
    )
    if labels.duplicated().any():  # equal category labels would stack into one bar
        labels = pd.Series([f"#{i + 1} {v}" for i, v in enumerate(labels)], index=labels.index)
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=df[mean],
            name=objective,
            error_y=None if std is None else {"type": "data", "array": df[std], "visible": True},
        )
    )
    fig.update_layout(
        title=title or f"Predicted {objective}",
        xaxis_title="Candidate",
        yaxis_title=axis_label,
        **_LAYOUT,
    )
    return fig


def series_comparison(
    series: pd.DataFrame, name: str, *, axis_label: str, title: str = ""
) -> go.Figure:
    """One feature against time for several runs (``series`` has a ``run`` column)."""
    s = series[series["name"] == name]
    if s.empty:
        return _empty(title or name, f"no valid {name} points")
    fig = go.Figure()
    for run, g in s.groupby("run", sort=False):
        fig.add_trace(
            go.Scatter(
                x=g["time_min"],
                y=g["value"],
                mode="lines+markers",
                name=str(run),
                marker={"size": 4},
            )
        )
    fig.update_layout(
        title=title or f"{axis_label.split(' (')[0]}: runs compared",
        xaxis_title="Milling time (min)",
        yaxis_title=axis_label,
        **_LAYOUT,
    )
    return fig
