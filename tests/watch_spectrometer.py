"""A test spectrometer: writes a SIMULATED TLIS run (screening.simulate) into a folder, one file per time
point, at accelerated time, in the OceanView text export or as two-column CSV, with half-written files."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from screening.simulate import SimulatedRun, simulate_run

T0 = datetime(2026, 12, 2, 9, 0, 0)


def oceanview_text(wl: np.ndarray, counts: np.ndarray, when: datetime, name: str = "FLMS01234") -> str:
    head = [
        f"Data from {name}.txt Node",
        "",
        f"Date: {when.strftime('%a %b %d %H:%M:%S')} CET {when.year}",
        "User: test",
        "Spectrometer: FLMS01234",
        "Integration Time (sec): 1.000000E-1",
        "XAxis mode: Wavelengths",
        f"Number of Pixels in Spectrum: {wl.size}",
        ">>>>>Begin Spectral Data<<<<<",
    ]
    body = [f"{w:.2f}\t{c:.2f}" for w, c in zip(wl, counts, strict=True)]
    return "\n".join(head + body + [">>>>>End Spectral Data<<<<<", ""])


def csv_text(wl: np.ndarray, counts: np.ndarray) -> str:
    return "wavelength_nm,counts\n" + "".join(f"{w:.2f},{c:.2f}\n" for w, c in zip(wl, counts, strict=True))


def reference_file(run: SimulatedRun, path: Path) -> Path:
    path.write_text(csv_text(run.wavelengths_nm, run.reference), encoding="utf-8")
    return path


class Spectrometer(threading.Thread):
    """Writes ``run``'s spectra into ``folder``: every ``every``-th file is first written half (cut in the
    middle of a line), then completed; ``fmt`` "oceanview" (Date: header) or "csv" (time = mtime)."""

    def __init__(
        self,
        run: SimulatedRun,
        folder: Path,
        *,
        fmt: str = "oceanview",
        dt_s: float = 0.0,
        every: int = 7,
        stop_after: int | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.sim, self.folder, self.fmt, self.dt_s, self.every = run, folder, fmt, dt_s, every
        self.stop_after = stop_after
        self.written: list[Path] = []

    def text(self, i: int) -> tuple[str, str]:
        r = self.sim
        when = T0 + timedelta(minutes=float(r.times_min[i]))
        if self.fmt == "oceanview":
            name = f"FLMS01234_{when.strftime('%H-%M-%S')}-000_{i:04d}.txt"
            return name, oceanview_text(r.wavelengths_nm, r.values[i], when)
        return f"spec_{i:04d}.csv", csv_text(r.wavelengths_nm, r.values[i])

    def write(self, i: int) -> Path:
        name, text = self.text(i)
        p = self.folder / name
        if self.every and i % self.every == 3:
            cut = len(text) // 2
            p.write_text(text[:cut], encoding="utf-8")  # half written: a reader must wait
            time.sleep(self.dt_s)
        p.write_text(text, encoding="utf-8")
        if self.fmt == "csv":  # time from the modification time, at the simulated clock
            ts = (T0 + timedelta(minutes=float(self.sim.times_min[i]))).timestamp()
            import os

            os.utime(p, (ts, ts))
        self.written.append(p)
        return p

    def write_all(self) -> None:
        n = self.sim.times_min.size if self.stop_after is None else self.stop_after
        for i in range(n):
            self.write(i)
            time.sleep(self.dt_s)

    def run(self) -> None:  # threading.Thread entry point
        self.write_all()


def simulated(x: float = 0.8, n_times: int = 181, seed: int = 3) -> SimulatedRun:
    return simulate_run("FAMAPbI3", {"x": x}, "reflectance", n_times=n_times, duration_min=90.0, seed=seed)
