"""Benchmark: matdb ingest vs the raw database driver doing the same writes.

Two workloads, on SQLite and on PostgreSQL:

- ``tlis``: one simulated 661 x 1000 TLIS reflectance run (``screening.simulate``, with its PTFE
  reference file) - one sample, one measurement, one compressed array blob.
- ``table``: a wide CSV table of 20,000 rows x 5 result columns (``plqy [%]``, ``pl_peak [nm]``,
  ``pl_fwhm [nm]``, ``absorption_edge [nm]``, ``pl_lifetime [ns]``) with family, composition and
  process columns - 10^5 scalar results (20,000 samples, 80,000 measurements: the results of a row
  group by their default technique).

For each, three timings in the same run:

- ``end_to_end_s``: ``ingest_paths`` of the file into an empty database (read + validate + write).
- ``write_s``: the write path alone - a prepared document to committed rows
  (``load_prepared`` in one transaction, commit included). ``read_s``, ``prepare_s`` and
  ``write_s`` run with the cyclic GC paused, as ``ingest_paths`` runs them.
- ``plain_read_s``: the fastest plain reader of the same input - ``pyarrow.csv.read_csv`` of the file
  (its leading ``#`` header lines skipped; for a reflectance run also of its reference file).
- ``raw_s``: the raw driver inserting exactly the rows matdb wrote (read back from matdb's tables,
  every column including ids and blobs) into another empty database with the same schema, in one
  transaction: ``sqlite3`` ``executemany`` per table (same WAL/synchronous settings as matdb) or
  psycopg ``COPY ... FROM STDIN`` with ``write_row`` per table on PostgreSQL.

``write_ratio = write_s / raw_s`` compares the write path (aim: <= 2);
``end_to_end_ratio = end_to_end_s / (plain_read_s + raw_s)`` the whole ingest against a plain
pyarrow read plus the raw driver writing the same rows/blob (aim: <= 2.5 for the table, <= 3 for
the TLIS run). For the TLIS run the
write path also encodes the array (``numpy.savez`` + zlib) and fingerprints it, which the raw
baseline - given the finished blob - does not; ``write_ratio_with_encoding`` adds the blob encoding
(:func:`matdb.arrays.encode_arrays`) to the baseline for that comparison. Each timing is the best of
``repeats`` runs, each into a fresh database.

Run: ``python bench/bench_ingest.py [--rows N] [--backends sqlite,postgres]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import matdb
from ingest.load import load_prepared
from ingest.pipeline import _gc_paused, ingest_paths
from ingest.readers import read_file
from ingest.validate import prepare
from matdb.models import Base

PG_ADMIN_URL = os.environ.get(
    "MATDB_BENCH_PG",
    os.environ.get("MATDB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
N_ROWS = 20_000
N_TIMES = 1000
RESULT_COLUMNS = (
    "plqy [%]",
    "pl_peak [nm]",
    "pl_fwhm [nm]",
    "absorption_edge [nm]",
    "pl_lifetime [ns]",
)


# --- input files ----------------------------------------------------------------------------------


def write_tlis_run(folder: Path, n_times: int = N_TIMES, seed: int = 0) -> Path:
    """A simulated 661 x ``n_times`` TLIS reflectance run (+ its reference file); returns the run."""
    path = folder / "bench_run.csv"
    try:
        from screening.simulate import simulate_run, write_tlis_csv
    except ImportError:  # pragma: no cover - simulator not available: Poisson counts, same format
        return _poisson_run(path, n_times, seed)
    run = simulate_run(
        "FAMAPbI3", {"x": 0.8}, "reflectance", n_times=n_times, duration_min=120.0, seed=seed
    )
    return write_tlis_csv(run, path)[0]


def _poisson_run(path: Path, n_times: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    wl = np.arange(340.0, 1001.0)
    ref = 20000.0 * np.exp(-(((wl - 600) / 250) ** 2))
    vals = rng.poisson(0.6 * ref, size=(n_times, wl.size)).astype(float)
    (path.parent / "bench_run_ref.csv").write_text(
        "wavelength_nm,counts\n"
        + "\n".join(f"{w:g},{r:.1f}" for w, r in zip(wl, ref, strict=True))
        + "\n"
    )
    times = np.linspace(0, 120, n_times)
    head = [
        "# matdb-tlis: 1",
        "# mode: reflectance",
        "# sample: bench-FAMAPbI3-x0.8",
        "# family: FAMAPbI3",
        '# params: {"x": 0.8}',
        "# integration_time: 100 ms",
        "# reference: bench_run_ref.csv",
        "# time_unit: min",
        "# provenance: simulated",
        "# source: bench",
    ]
    with path.open("w") as fh:
        fh.write("\n".join(head) + "\nwavelength_nm," + ",".join(f"{t:g}" for t in times) + "\n")
        np.savetxt(
            fh, np.column_stack([wl, vals.T]), fmt=["%g"] + ["%.1f"] * n_times, delimiter=","
        )
    return path


def write_table(folder: Path, n_rows: int = N_ROWS, seed: int = 0) -> Path:
    """A wide CSV table: ``n_rows`` samples x 5 results (simulated values, labelled simulated)."""
    rng = np.random.default_rng(seed)
    path = folder / "bench_table.csv"
    x = np.round(rng.integers(0, 101, n_rows) / 100, 2)
    mill = rng.choice([30, 45, 60, 90, 120], n_rows)
    cols = np.column_stack(
        [
            np.round(rng.uniform(0.5, 60, n_rows), 2),
            np.round(rng.uniform(760, 830, n_rows), 1),
            np.round(rng.uniform(30, 60, n_rows), 1),
            np.round(rng.uniform(770, 840, n_rows), 1),
            np.round(rng.uniform(5, 500, n_rows), 1),
        ]
    )
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["sample_id", "family", "x", "milling_time [min]", "provenance", *RESULT_COLUMNS]
        )
        for i in range(n_rows):
            w.writerow(
                [
                    f"bench-{i:06d}",
                    "FAMAPbI3",
                    f"{x[i]:g}",
                    int(mill[i]),
                    "simulated",
                    *(f"{v:g}" for v in cols[i]),
                ]
            )
    return path


# --- databases --------------------------------------------------------------------------------------


class _Backend:
    """Fresh empty matdb databases on demand (copies of one migrated template)."""

    def __init__(self, name: str, work: Path) -> None:
        self.name, self.work = name, work
        self.created: list[str] = []
        if name == "sqlite":
            self.template = work / "template.sqlite"
            matdb.connect(f"sqlite:///{self.template}").close()
        else:
            from sqlalchemy import create_engine, text

            self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            self.template = f"matdb_bench_tpl_{uuid.uuid4().hex[:8]}"
            with self.admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.template}"'))
            self.created.append(self.template)
            matdb.connect(self._url(self.template)).close()

    def _url(self, name: str) -> str:
        return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"

    def fresh(self) -> str:
        """URL of a new empty database with the schema."""
        if self.name == "sqlite":
            path = self.work / f"db-{uuid.uuid4().hex[:8]}.sqlite"
            shutil.copy(self.template, path)
            return f"sqlite:///{path}"
        from sqlalchemy import text

        name = f"matdb_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.created.append(name)
        return self._url(name)

    def close(self) -> None:
        if self.name == "postgres":
            from sqlalchemy import text

            with self.admin.connect() as c:
                for name in reversed(self.created):
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.admin.dispose()


def _tables() -> list[str]:
    return [t.name for t in Base.metadata.sorted_tables]


def _written_rows(
    url: str, template_url: str | None
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Rows matdb wrote: table -> (columns, rows) for rows not in the empty template."""
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        base = sqlite3.connect(template_url.removeprefix("sqlite:///")) if template_url else None
        for t in _tables():
            cur = con.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
            if base is not None:
                old = set(base.execute(f'SELECT * FROM "{t}"').fetchall())
                rows = [r for r in rows if r not in old]
            if rows:
                out[t] = (cols, rows)
        con.close()
        if base is not None:
            base.close()
        return out
    import psycopg

    from matdb.models import JSONType  # noqa: F401 - JSON columns are read back as text below

    with psycopg.connect(_libpq(url)) as con:
        tpl_ids: dict[str, set[Any]] = {}
        if template_url:
            with psycopg.connect(_libpq(template_url)) as tc:
                for t in _tables():
                    if "id" in Base.metadata.tables[t].c:
                        tpl_ids[t] = {r[0] for r in tc.execute(f'SELECT id FROM "{t}"')}
        for t in _tables():
            table = Base.metadata.tables[t]
            sel = ", ".join(
                f'"{c.name}"::text' if c.type.__class__.__name__ == "JSON" else f'"{c.name}"'
                for c in table.columns
            )
            cols = [c.name for c in table.columns]
            rows = con.execute(f'SELECT {sel} FROM "{t}"').fetchall()
            if "id" in table.c and t in tpl_ids:
                i = cols.index("id")
                rows = [r for r in rows if r[i] not in tpl_ids[t]]
            elif template_url:
                rows = []  # tables without an id (schema_info) are filled by the template
            if rows:
                out[t] = (cols, rows)
    return out


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def raw_insert(url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    """Insert ``rows`` with the bare driver in one transaction; return the seconds it took."""
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")
        t0 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        for t in _tables():
            if t in rows:
                cols, data = rows[t]
                con.executemany(
                    f'INSERT INTO "{t}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',
                    data,
                )
        con.execute("COMMIT")
        dt = time.perf_counter() - t0
        con.close()
        return dt
    import psycopg

    with psycopg.connect(_libpq(url)) as con:
        t0 = time.perf_counter()
        with con.transaction(), con.cursor() as cur:
            for t in _tables():
                if t in rows:
                    cols, data = rows[t]
                    with cur.copy(f'COPY "{t}" ({", ".join(cols)}) FROM STDIN') as cp:
                        for r in data:
                            cp.write_row(r)
        return time.perf_counter() - t0


@contextmanager
def _db(url: str) -> Iterator[matdb.Database]:
    d = matdb.connect(url)
    try:
        yield d
    finally:
        d.close()


def _leading_comments(path: Path) -> int:
    """Number of leading '#' (or blank) lines before the column header."""
    n = 0
    with path.open() as fh:
        for line in fh:
            if line.strip() and not line.lstrip().startswith("#"):
                break
            n += 1
    return n


def plain_read(paths: list[Path]) -> float:
    """Seconds for ``pyarrow.csv.read_csv`` of each file (its leading '#' lines skipped)."""
    import pyarrow.csv as pacsv

    t = time.perf_counter()
    for p in paths:
        skip = _leading_comments(p)
        pacsv.read_csv(p, read_options=pacsv.ReadOptions(skip_rows=skip))
    return time.perf_counter() - t


def _input_files(path: Path) -> list[Path]:
    """The file and, for a reflectance run, its reference file (what the ingest reads)."""
    files = [path]
    with path.open() as fh:
        for line in fh:
            if not line.lstrip().startswith("#"):
                break
            key, _, value = line.lstrip("# ").partition(":")
            if key.strip() == "reference" and value.strip():
                files.append(path.parent / value.strip())
    return files


def _best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


# --- one workload on one backend --------------------------------------------------------------------


def measure(backend: _Backend, path: Path, repeats: int) -> dict[str, Any]:
    """Timings of one file on one backend (see the module docstring)."""
    from ingest.pipeline import _sha256

    with _gc_paused():  # as ingest_paths reads, validates and writes a file
        t0 = time.perf_counter()
        doc = read_file(path)
        t_read = time.perf_counter() - t0
    with _db(backend.fresh()) as d:
        fams, qs = d.families(), d.quantities()
    with _gc_paused():
        t0 = time.perf_counter()
        prep = prepare(doc, str(path), known_families=fams, known_quantities=qs)
        t_prepare = time.perf_counter() - t0
    sha = _sha256(str(path))

    urls: list[str] = []

    def write_once() -> float:
        url = backend.fresh()
        urls.append(url)
        with _db(url) as d:
            t = time.perf_counter()
            with _gc_paused(), d.transaction() as s:
                summary = load_prepared(s, prep, sha256=sha)
            dt = time.perf_counter() - t
        if summary.status != "added":
            raise RuntimeError(f"benchmark load did not add anything: {summary}")
        return dt

    def e2e_once() -> float:
        with _db(backend.fresh()) as d:
            t = time.perf_counter()
            rep = ingest_paths(d, [path], progress=False)
            dt = time.perf_counter() - t
        if not rep.ok:
            raise RuntimeError(f"benchmark ingest failed: {rep.files[0].reason}")
        return dt

    t_write = _best(write_once, repeats)
    t_e2e = _best(e2e_once, max(1, repeats - 1))
    tpl = (
        f"sqlite:///{backend.template}"
        if backend.name == "sqlite"
        else backend._url(backend.template)
    )
    rows = _written_rows(urls[-1], tpl)
    t_raw = _best(lambda: raw_insert(backend.fresh(), rows), repeats)
    inputs = _input_files(path)
    t_plain = _best(lambda: plain_read(inputs), repeats)
    n_rows = {t: len(r) for t, (_c, r) in rows.items()}
    out: dict[str, Any] = {
        "rows_written": sum(n_rows.values()),
        "rows_by_table": n_rows,
        "read_s": t_read,
        "prepare_s": t_prepare,
        "write_s": t_write,
        "raw_s": t_raw,
        "write_ratio": t_write / t_raw,
        "plain_read_s": t_plain,
        "end_to_end_s": t_e2e,
        "baseline_s": t_plain + t_raw,
        "end_to_end_ratio": t_e2e / (t_plain + t_raw),
    }
    arrays = [a["data"] for m in prep.measurements for a in m["arrays"]]
    if arrays:
        from ingest.load import array_columns

        t_enc = _best(lambda: _time(lambda: [array_columns(0, 0, a) for a in arrays]), repeats)
        out["encode_s"] = t_enc
        out["write_ratio_with_encoding"] = t_write / (t_raw + t_enc)
    return out


def _time(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _pg_reachable() -> bool:
    try:
        from sqlalchemy import create_engine, text

        eng = create_engine(PG_ADMIN_URL)
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server: PostgreSQL is reported as skipped
        return False


def run(report: dict) -> dict:
    """Run both workloads on the available backends; add ``ingest`` numbers to ``report``."""
    n_rows = int(report.get("rows", N_ROWS))
    n_times = int(report.get("n_times", N_TIMES))
    repeats = int(report.get("repeats", 3))
    backends = report.get("backends") or ["sqlite", "postgres"]
    work = Path(tempfile.mkdtemp(prefix="matdb-bench-ingest-"))
    try:
        files = {"tlis": write_tlis_run(work, n_times), "table": write_table(work, n_rows)}
        for b in backends:
            if b == "postgres" and not _pg_reachable():
                report[b] = {"skipped": f"PostgreSQL at {PG_ADMIN_URL} is not reachable"}
                continue
            backend = _Backend(b, work)
            try:
                report[b] = {name: measure(backend, path, repeats) for name, path in files.items()}
            finally:
                backend.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "| backend | workload | rows | read s | prepare s | write s | raw driver s | write/raw | "
        "end-to-end s | pyarrow read + raw s | end-to-end ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in backends:
        for name, r in report.get(b, {}).items():
            if isinstance(r, dict):
                lines.append(
                    f"| {b} | {name} | {r['rows_written']} | {r['read_s']:.3f} | {r['prepare_s']:.3f} | "
                    f"{r['write_s']:.3f} | {r['raw_s']:.3f} | {r['write_ratio']:.2f} | "
                    f"{r['end_to_end_s']:.3f} | {r['baseline_s']:.3f} | "
                    f"{r['end_to_end_ratio']:.2f} |"
                )
    report["summary"] = "\n".join(lines)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=N_ROWS, help="table rows (5 results each)")
    ap.add_argument("--times", type=int, default=N_TIMES, help="spectra in the TLIS run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args(argv)
    rep = run(
        {
            "rows": args.rows,
            "n_times": args.times,
            "repeats": args.repeats,
            "backends": [b.strip() for b in args.backends.split(",") if b.strip()],
        }
    )
    print(rep["summary"])
    for b in ("sqlite", "postgres"):
        for name, r in rep.get(b, {}).items():
            if isinstance(r, dict) and "write_ratio_with_encoding" in r:
                print(
                    f"{b} {name}: array encoding {r['encode_s']:.3f} s; write/(raw + encoding) = "
                    f"{r['write_ratio_with_encoding']:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
