"""`matdb watch`: follow a spectrometer's export folder while the mill runs, say when to stop, and load the
run into the database when it ends.

Flow: :func:`start` writes ``matdb-watch.yaml`` (a matdb record document: the sample, the measurement and
one ``tlis_folder`` array) into the folder and copies the PTFE reference next to it; :class:`LiveRun` polls
the folder, reads every newly complete spectrum (:mod:`ingest.readers.spectrometer`), computes its
features with :func:`screening.spectra.point_series` (the code of ``matdb analyze``) and updates
:class:`screening.kinetics.OnlineKinetics`; :func:`finish` loads the folder with the ingest pipeline —
exactly what ``matdb ingest DIR`` does, so a later ``matdb ingest`` or ``matdb watch --resume`` gives the
same run and writes nothing twice. The CLI and the Live page both drive :class:`LiveRun`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ingest.errors import IngestError
from ingest.pipeline import IngestReport, ingest_paths
from ingest.readers import spectrometer as sp
from matdb.db import Database
from screening.kinetics import Detection, OnlineKinetics

MODES = {"reflectance": "tlis_reflectance", "pl": "tlis_pl"}
#: The series whose kinetics decide the banner, per mode (as in ``matdb analyze``).
MAIN_SERIES = {"reflectance": "absorption_edge", "pl": "pl_integrated_intensity"}
FALLING = {"reflectance": "edge falling", "pl": "PL intensity falling"}


class WatchError(IngestError):
    """A watch that cannot start or resume; the message names the folder and the problem."""


def _fail(msg: str, folder: Path, fld: str | None = None) -> WatchError:
    return WatchError(msg, file=str(folder), field=fld)


@dataclass(frozen=True)
class Manifest:
    """What ``matdb-watch.yaml`` says: the sample, the mode, the reference file and the measurement id."""

    folder: Path
    sample: str
    mode: str
    reference: str | None
    measurement: str
    excitation_nm: float | None = None


def read_manifest(folder: Path) -> Manifest:
    path = Path(folder) / sp.MANIFEST
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        me = doc["measurements"][0]
        arr = me["arrays"][0]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        raise _fail(f"no readable {sp.MANIFEST} (start the watch without --resume first)", Path(folder)) from None
    mode = "reflectance" if arr["kind"] == "tlis_reflectance" else "pl"
    exc = me.get("conditions", {}).get("excitation_wavelength")
    return Manifest(
        Path(folder), me["sample"], mode, arr.get("reference"), me["id"], float(str(exc).split()[0]) if exc else None
    )


def start(
    folder: str | Path,
    *,
    mode: str,
    sample: str | None = None,
    family: str | None = None,
    params: dict[str, float] | None = None,
    reference: str | Path | None = None,
    provenance: str = "measured",
    excitation_nm: float | None = None,
    resume: bool = False,
) -> Manifest:
    """Write the folder's ``matdb-watch.yaml`` (or, with ``resume``, read it) and copy the reference in."""
    folder = Path(folder)
    if resume:
        return read_manifest(folder)
    if mode not in MODES:
        raise _fail(f"mode must be reflectance or pl, not '{mode}'", folder, "mode")
    if (sample is None) == (family is None):
        raise _fail("give either --sample ID or --family F with --param", folder, "sample")
    if family is not None and not params:
        raise _fail("--family needs the composition (--param x=0.8)", folder, "params")
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / sp.MANIFEST).exists():
        raise _fail(f"already holds a watched run ({sp.MANIFEST}); use --resume", folder)
    ref_name = None
    if mode == "reflectance":
        if reference is None:
            raise _fail("a reflectance run needs the PTFE reference spectrum (--reference FILE)", folder, "reference")
        ref = Path(reference)
        if not ref.is_file():
            raise _fail(f"reference spectrum {ref} not found", folder, "reference")
        ref_name = ref.name
        if ref.resolve().parent != folder.resolve():
            ref_name = f"reference-{ref.name}" if not ref.name.startswith("reference") else ref.name
            shutil.copyfile(ref, folder / ref_name)
    params = params or {}
    sid = sample or f"{family}-" + "-".join(f"{k}{v:g}" for k, v in sorted(params.items())) + f"-{folder.name}"
    doc: dict[str, Any] = {
        "matdb": 1,
        "source": {"key": f"watch-{folder.name}", "kind": "simulation" if provenance == "simulated" else "notebook"},
    }
    if family is not None:
        doc["samples"] = [{"id": sid, "family": family, "params": dict(params), "provenance": provenance}]
    arr: dict[str, Any] = {"kind": MODES[mode], "file": ".", "format": "tlis_folder"}
    if ref_name:
        arr["reference"] = ref_name
    me: dict[str, Any] = {
        "id": f"{sid}:watch-{folder.name}",
        "sample": sid,
        "technique": MODES[mode],
        "provenance": provenance,
        "arrays": [arr],
    }
    if mode == "pl" and excitation_nm:
        me["conditions"] = {"excitation_wavelength": f"{excitation_nm:g} nm"}
    doc["measurements"] = [me]
    text = "# written by `matdb watch`: this folder is one TLIS run; `matdb ingest` of it loads the run\n"
    tmp = folder / f".{sp.MANIFEST}.tmp"
    tmp.write_text(text + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    tmp.replace(folder / sp.MANIFEST)
    return read_manifest(folder)


@dataclass
class LiveState:
    """A snapshot for the views: times (min), wavelengths, the heatmap signal, feature series, detection."""

    times_min: np.ndarray
    wavelengths_nm: np.ndarray
    signal: np.ndarray
    signal_label: str
    series: dict[str, np.ndarray]
    detection: Detection
    banner: tuple[str, str] | None
    warnings: list[str]
    notes: list[str]
    pending: list[str]


@dataclass
class LiveRun:
    """The live side of a watched folder: poll, read complete spectra, features, detection."""

    manifest: Manifest
    settle_s: float = sp.DEFAULT_SETTLE_S
    run: sp.FolderRun = field(init=False)
    detector: OnlineKinetics = field(init=False)
    series: dict[str, list[float]] = field(default_factory=dict)
    signal_rows: list[np.ndarray] = field(default_factory=list)
    reference: np.ndarray | None = None
    seen: set[str] = field(default_factory=set)
    pending: dict[str, str] = field(default_factory=dict)
    last_arrival: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.run = sp.FolderRun(self.manifest.folder)
        self.detector = OnlineKinetics()

    @classmethod
    def open(cls, folder: str | Path, settle_s: float = sp.DEFAULT_SETTLE_S) -> LiveRun:
        return cls(read_manifest(Path(folder)), settle_s)

    def poll(self, now: float | None = None) -> int:
        """Read every newly complete spectrum; returns how many arrived. Never raises on a bad file."""
        arrived = 0
        try:
            files = sp.spectrum_files(self.manifest.folder, self.manifest.reference)
        except OSError as exc:
            self.run.warnings.append(f"{self.manifest.folder}: cannot list ({exc})")
            return 0
        new = []
        for p in files:
            if p.name in self.seen:
                continue
            try:
                if p.suffix.lower() == ".csv" and sp.is_matrix_csv(p):  # a growing matrix: its new columns
                    new += [s for s in sp.read_matrix(p, settle_s=self.settle_s, now=now) if s.file not in self.seen]
                    self.pending.pop(p.name, None)
                    continue
                new.append(sp.read_spectrum(p, settle_s=self.settle_s, now=now))
            except sp.Incomplete as exc:
                self.pending[p.name] = str(exc)
            except IngestError as exc:
                self.seen.add(p.name)
                self.pending.pop(p.name, None)
                self.run.warnings.append(f"{exc}; not read")
        for s in sorted(new, key=lambda s: (s.time_s, s.file)):
            try:
                if self._arrive(s):
                    arrived += 1
            except sp.Incomplete as exc:
                self.pending[s.file] = str(exc)
            except IngestError as exc:  # e.g. the reference went missing: keep the spectrum for the next poll
                self.pending[s.file] = f"{s.file}: waiting ({exc})"
        if arrived:
            self.last_arrival = time.time()
        return arrived

    def _arrive(self, s: sp.Spectrum) -> bool:
        if self.run.grid is None and self.manifest.mode == "reflectance":
            ref, note = sp.read_reference(self.manifest.folder / str(self.manifest.reference), s.wavelengths)
            self.reference = ref
            if note:
                self.run.notes.append(note)
        before = len(self.run.rows)
        i = self.run.add(s)
        self.seen.add(s.file)
        self.pending.pop(s.file, None)
        if i is None or len(self.run.rows) == before:
            return False
        self._features(i)
        return True

    def _features(self, i: int) -> None:
        from screening.spectra import SpectrumError, kubelka_munk, point_series

        row = self.run.rows[i][None, :]
        opts: dict[str, Any] = {}
        if self.manifest.mode == "pl" and self.manifest.excitation_nm:
            opts["excitation_wavelength_nm"] = self.manifest.excitation_nm
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ser = point_series(self.manifest.mode, row, self.run.grid, self.reference, **opts)  # type: ignore[arg-type]  # grid set by the first spectrum
            vals = {k: float(v.values[0]) for k, v in ser.items()}
        except SpectrumError as exc:
            self.run.warnings.append(f"{self.run.files[i]}: {exc}")
            vals = {}
        if self.manifest.mode == "reflectance" and self.reference is not None:
            sig = kubelka_munk(np.clip(row[0] / self.reference, 1e-6, 1.0))
        else:
            sig = row[0]
        for k in set(vals) | set(self.series):
            self.series.setdefault(k, [np.nan] * (len(self.run.rows) - 1)).insert(i, vals.get(k, np.nan))
        self.signal_rows.insert(i, sig)
        t_min = (self.run.times_s[i] - self.run.times_s[0]) / 60.0
        if i == len(self.run.rows) - 1:
            self.detector.add(t_min, vals.get(MAIN_SERIES[self.manifest.mode], np.nan))
        else:  # a spectrum older than the newest: decide again over the whole series (rare)
            self.detector = OnlineKinetics()
            y = self.series.get(MAIN_SERIES[self.manifest.mode], [])
            for tt, yy in zip(self.times_min(), y, strict=False):
                self.detector.add(float(tt), yy)

    def times_min(self) -> np.ndarray:
        t = np.asarray(self.run.times_s)
        return (t - t[0]) / 60.0 if t.size else t

    def state(self) -> LiveState:
        n = len(self.run.rows)
        grid = self.run.grid if self.run.grid is not None else np.zeros(0)
        sig = np.vstack(self.signal_rows) if n else np.zeros((0, grid.size))
        return LiveState(
            self.times_min(),
            grid,
            sig,
            "Kubelka-Munk F(R)" if self.manifest.mode == "reflectance" else "Intensity (counts)",
            {k: np.asarray(v) for k, v in self.series.items()},
            self.detector.detection,
            banner(self.detector.detection, self.manifest.mode),
            list(self.run.warnings),
            list(self.run.notes),
            sorted(self.pending.values()),
        )


def banner(d: Detection, mode: str) -> tuple[str, str] | None:
    """("error"|"success", text) of the live decision, or None while the series is still changing."""
    if d.status == "decaying" and d.decay_since is not None:
        extra = " (possible α→δ)" if mode == "reflectance" else ""
        return "error", f"{FALLING[mode]} since {d.decay_since:.0f} min{extra}"
    if d.status == "steady" and d.steady_since is not None:
        return "success", f"steady state since {d.steady_since:.0f} min — stop milling"
    return None


def finish(db: Database, folder: str | Path) -> IngestReport:
    """Load the watched folder as one TLIS measurement: the ingest pipeline on the folder (one transaction)."""
    return ingest_paths(db, [Path(folder)], progress=False)


@dataclass
class WatchResult:
    reason: str  # "interrupted" | "duration" | "idle"
    state: LiveState
    report: IngestReport


def watch(
    db: Database,
    live: LiveRun,
    *,
    duration_min: float | None = None,
    idle_min: float | None = None,
    poll_s: float = 0.2,
    on_update: Callable[[LiveState], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WatchResult:
    """Poll until Ctrl-C, ``duration_min`` (wall clock) or ``idle_min`` without a new spectrum; then ingest."""
    t_start = time.time()
    live.last_arrival = t_start
    reason = "interrupted"
    try:
        while True:
            if live.poll() and on_update:
                on_update(live.state())
            now = time.time()
            if duration_min is not None and now - t_start >= duration_min * 60:
                reason = "duration"
                break
            if idle_min is not None and now - live.last_arrival >= idle_min * 60:
                reason = "idle"
                break
            if should_stop and should_stop():
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        reason = "interrupted"
    live.settle_s = 0.0
    live.poll()
    return WatchResult(reason, live.state(), finish(db, live.manifest.folder))


def live_table(state: LiveState, manifest: Manifest) -> Any:
    """The terminal view (rich): the latest features and the decision."""
    from rich.table import Table

    t = Table(title=f"matdb watch · {manifest.sample} · {manifest.mode}")
    t.add_column("spectra")
    t.add_column("t (min)")
    for k in state.series:
        t.add_column(k)
    t.add_column("decision")
    n = state.times_min.size
    last = [f"{state.series[k][-1]:.4g}" if n else "" for k in state.series]
    text = state.banner[1] if state.banner else "changing"
    style = {"success": "bold green", "error": "bold red"}.get(state.banner[0] if state.banner else "", "")
    t.add_row(str(n), f"{state.times_min[-1]:.2f}" if n else "", *last, f"[{style}]{text}[/]" if style else text)
    for w in state.warnings[-3:]:
        t.caption = (t.caption or "") + f"warning: {w}\n"
    return t


def watch_in_terminal(db: Database, live: LiveRun, console: Any, **kw: Any) -> WatchResult:
    """:func:`watch` with a rich live view in the terminal."""
    from rich.live import Live

    with Live(live_table(live.state(), live.manifest), console=console, refresh_per_second=4) as view:
        return watch(db, live, on_update=lambda st: view.update(live_table(st, live.manifest)), **kw)


def figures(state: LiveState) -> tuple[Any, Any]:
    """The Live page's figures: the growing heatmap and the feature traces against time (plotly)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from matdb_app import plots

    heat = plots.tlis_heatmap(
        state.times_min,
        state.wavelengths_nm,
        state.signal,
        signal_label=state.signal_label,
        title=f"Live run: {state.times_min.size} spectra",
    )
    names: list[str] = [
        k for k in ("absorption_edge", "bandgap", "pl_peak", "pl_fwhm", "pl_integrated_intensity") if k in state.series
    ]
    fig = make_subplots(rows=max(len(names), 1), cols=1, shared_xaxes=True, subplot_titles=names or ["features"])
    for i, k in enumerate(names, start=1):
        fig.add_trace(
            go.Scatter(x=state.times_min, y=state.series[k], mode="lines+markers", name=k, marker={"size": 4}),
            row=i,
            col=1,
        )
    d = state.detection
    for label, t, colour in (("steady", d.steady_since, "green"), ("decay", d.decay_since, "red")):
        if t is not None:
            fig.add_vline(x=t, line_dash="dash", line_color=colour, annotation_text=label)
    fig.update_layout(
        template="plotly_white", height=220 * max(len(names), 1), showlegend=False, xaxis_title="Milling time (min)"
    )
    return heat, fig
