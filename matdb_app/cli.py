"""The ``matdb`` command line. Each command is a thin shell around one function of a use-case
module (matdb_app.ingest, .info, .simulate, .analysis, .screening_service)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

import matdb
from matdb_app import analysis
from matdb_app import info as info_
from matdb_app import ingest as ingest_
from matdb_app import simulate as simulate_
from matdb_app.errors import DEBUG_ENV, internal_message, user_errors

app = typer.Typer(
    help="matdb: materials database and screening for mechanochemical perovskites.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console(stderr: bool = False) -> Console:
    """Rich console; when output is not a terminal (pipes, CI, logs) tables are not cut at 80 columns."""
    import os

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "200"))
    return Console(stderr=stderr, width=width)


console = _console()
err = _console(stderr=True)


def _refresh_width() -> None:
    """Pick up COLUMNS at call time (the consoles are built at import)."""
    import os

    for c, stream in ((console, sys.stdout), (err, sys.stderr)):
        if not (hasattr(stream, "isatty") and stream.isatty()):
            c.width = int(os.environ.get("COLUMNS", "200"))


DbOpt = Annotated[
    Optional[str],
    typer.Option("--db", envvar="MATDB_URL", help="Database URL or SQLite path (default: user data dir)."),
]


def fail(exc: BaseException) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2)


def _db(url: str | None):  # type: ignore[no-untyped-def]
    try:
        return matdb.connect(url)
    except user_errors() as exc:
        fail(exc)


def _print_df(df, max_rows: int = 50) -> None:  # type: ignore[no-untyped-def]
    _refresh_width()
    t = Table(show_lines=False)
    for c in df.columns:
        t.add_column(str(c), overflow="fold")
    for _, row in df.head(max_rows).iterrows():
        t.add_row(*["" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row])
    console.print(t)
    if len(df) > max_rows:
        console.print(f"… {len(df) - max_rows} more rows (use --out to save all)")


def _report(report) -> None:  # type: ignore[no-untyped-def]
    _refresh_width()
    t = Table(title="ingest summary")
    for c in ("file", "status", "details"):
        t.add_column(c, overflow="fold")
    for f in report.files:
        details = (
            "see below" if f.status == "rejected" else ", ".join(f"{k}: {v}" for k, v in sorted(f.counts.items()) if v)
        )
        style = {"rejected": "red", "added": "green", "updated": "yellow"}.get(f.status, "")
        t.add_row(f.path, f"[{style}]{f.status}[/]" if style else f.status, details)
    console.print(t)
    tot = report.totals
    console.print(", ".join(f"{k}: {tot.get(k, 0)}" for k in ("added", "unchanged", "updated", "rejected")))
    for f in report.files:
        if f.status == "rejected":
            for e in f.errors or [f.reason]:
                err.print(f"[red]rejected:[/] {e}", highlight=False, soft_wrap=True)


@app.command()
def init(
    db: DbOpt = None,
    bundled: Annotated[bool, typer.Option("--bundled/--empty", help="Load the bundled literature dataset.")] = False,
    demo: Annotated[
        Optional[bool],
        typer.Option("--demo/--no-demo", help="Add the simulated demonstration set (default: with --bundled)."),
    ] = None,
) -> None:
    """Create (or migrate) the database schema with Alembic; --bundled loads the literature data
    and the simulated demonstration set (`matdb demo remove` deletes it again)."""
    try:
        done = ingest_.init_db(db, bundled=bundled, demo=demo)
    except user_errors() as exc:
        fail(exc)
    console.print(f"schema at revision {done.db.current_revision()} in {done.db!r}")
    if done.literature is not None:
        _report(done.literature)
    if done.demo is not None:
        _demo_report(done.demo)
    if not done.ok:
        raise typer.Exit(1)


def _demo_report(rep: simulate_.DemoReport) -> None:
    tot = rep.ingest.totals
    console.print(
        f"demonstration set ({simulate_.DEMO_SOURCE}, ◇ SIMULATED): {len(simulate_.DEMO_RUNS)} runs, "
        + ", ".join(f"{k}: {tot.get(k, 0)}" for k in ("added", "unchanged", "rejected"))
        + f"; analysed {rep.analysis.analysed}, {rep.analysis.skipped} up to date"
    )
    for f in rep.ingest.files:
        for e in f.errors if f.status == "rejected" else []:
            err.print(f"[red]rejected:[/] {e}", highlight=False, soft_wrap=True)
    for key, msg in rep.analysis.failed:
        err.print(f"[red]failed:[/] {key}: {msg}", highlight=False)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to load.")],
    db: DbOpt = None,
    update: Annotated[bool, typer.Option("--update", help="Replace changed records (old versions are kept).")] = False,
    mapping: Annotated[Optional[Path], typer.Option(help="YAML file mapping table headers to matdb columns.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Validate only; write nothing.")] = False,
) -> None:
    """Load records (YAML/JSON), tables (CSV/XLSX), TLIS runs, pXRD patterns, JCAMP-DX, structures."""
    d = _db(db)
    try:
        report = (
            ingest_.check(d, list(paths), mapping)
            if check
            else ingest_.ingest(d, list(paths), update=update, mapping=mapping)
        )
    except user_errors() as exc:
        fail(exc)
    _report(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def query(
    text: Annotated[str, typer.Argument(help='e.g. "family=FAMAPbI3,x>=0.4,quantity=steady_state_time"')] = "",
    db: DbOpt = None,
    samples: Annotated[bool, typer.Option("--samples", help="One row per sample instead of per result.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Save the table (csv or parquet).")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Query results (or samples) with filters on family, composition, process, technique, values."""
    d = _db(db)
    try:
        from matdb.query import parse_query

        df = d.samples(**parse_query(text)) if samples else d.select(text)
    except user_errors() as exc:
        fail(exc)
    if out is not None:
        df.to_parquet(out, index=False) if out.suffix == ".parquet" else df.to_csv(out, index=False)
        console.print(f"{len(df)} rows written to {out}")
        return
    cols = (
        ["sample_id", "family", "formula", "provenance", "label"]
        if samples
        else [
            "sample_id",
            "family",
            "formula",
            "quantity",
            "value",
            "unit",
            "text",
            "label",
            "technique",
            "provenance",
            "source_locator",
        ]
    )
    _print_df(df[[c for c in cols if c in df.columns]], limit)
    console.print(f"{len(df)} rows")


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    db: DbOpt = None,
    format: Annotated[Optional[str], typer.Option("--format", help="csv or parquet (default: from suffix).")] = None,  # noqa: A002
    where: Annotated[str, typer.Option(help="Filter, same syntax as `matdb query`.")] = "",
) -> None:
    """Write the tidy long-format table: one row per scalar result."""
    d = _db(db)
    try:
        from matdb.export import export as export_
        from matdb.query import parse_query

        n = export_(d, out, format, **parse_query(where))
    except user_errors() as exc:
        fail(exc)
    console.print(f"{n} results written to {out}")


@app.command()
def info(
    db: DbOpt = None,
    quantities: Annotated[bool, typer.Option("--quantities", help="List known quantities and units.")] = False,
    families: Annotated[bool, typer.Option("--families", help="List material families.")] = False,
    process: Annotated[bool, typer.Option("--process", help="List process parameters.")] = False,
) -> None:
    """Show the database, its contents, families and known quantities."""
    if quantities or families or process:
        d = _db(db) if families else None
        for flag, fn in (
            (families, lambda: info_.families_table(d)),
            (quantities, info_.quantities_table),
            (process, info_.process_table),
        ):
            if flag:
                _print_df(fn(), 500)
        return
    d = _db(db)
    try:
        i = info_.info(d)
    except user_errors() as exc:
        fail(exc)
    console.print(f"database: {i['url']}\nschema revision: {i['schema_revision']}")
    console.print("families: " + ", ".join(i["families"]))
    console.print("samples by provenance: " + json.dumps(i["samples_by_provenance"]))
    t = Table(title="rows per table")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for k, v in i["counts"].items():
        t.add_row(k, str(v))
    console.print(t)


@app.command()
def schemas(out: Annotated[Path, typer.Option(help="Folder for the JSON Schemas.")] = Path("schemas")) -> None:
    """Write the JSON Schema of every record type (generated from ingest/records.py)."""
    from ingest.schemas import write_schemas

    for p in write_schemas(out):
        console.print(f"wrote {p}")


@app.command()
def simulate(
    family: Annotated[str, typer.Option(help="Family slug, e.g. FAMAPbI3.")],
    param: Annotated[list[str], typer.Option("--param", help="name=v1,v2 or name=lo:hi:step (repeatable).")],
    mode: Annotated[str, typer.Option(help="reflectance or pl.")] = "reflectance",
    n_times: Annotated[int, typer.Option(help="Spectra per run.")] = 180,
    duration: Annotated[float, typer.Option(help="Run length (min).")] = 90.0,
    seed: Annotated[int, typer.Option(help="Random seed of the noise.")] = 0,
    out_dir: Annotated[Path, typer.Option(help="Folder for the TLIS CSV files.")] = Path("simulated"),
    load: Annotated[bool, typer.Option("--ingest", help="Also load the runs into the database.")] = False,
    db: DbOpt = None,
) -> None:
    """Write SIMULATED TLIS runs (tlis_csv format, provenance 'simulated') for any composition."""
    try:
        paths = simulate_.simulate(
            family,
            simulate_.parse_param_values(param),
            mode=mode,
            n_times=n_times,
            duration_min=duration,
            seed=seed,
            out_dir=out_dir,
        )
    except user_errors() as exc:
        fail(exc)
    console.print(f"wrote {len(paths)} files to {out_dir} (provenance: simulated)")
    if load:
        d = _db(db)
        report = simulate_.simulate_and_ingest(d, paths)
        _report(report)
        if not report.ok:
            raise typer.Exit(1)


@app.command()
def analyze(
    db: DbOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute even if up to date.")] = False,
    measurement: Annotated[Optional[str], typer.Option(help="Only this measurement id.")] = None,
) -> None:
    """Compute spectral and kinetic features of every stored TLIS run (only what is missing)."""
    d = _db(db)
    try:
        rep = analysis.analyze(d, force=force, measurement=measurement)
    except user_errors() as exc:
        fail(exc)
    console.print(
        f"analysed {rep.analysed} runs, {rep.skipped} up to date, {len(rep.failed)} failed; "
        f"{rep.results_stored} derived results stored"
    )
    for key, msg in rep.failed:
        err.print(f"[red]failed:[/] {key}: {msg}", highlight=False)
    for key, msg in rep.warnings[:20]:
        err.print(f"[yellow]warning:[/] {key}: {msg}", highlight=False)


demo_app = typer.Typer(help="The simulated demonstration set (source matdb-demo, ◇ SIMULATED).", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("add")
def demo_add(db: DbOpt = None) -> None:
    """Simulate, load and analyse the demonstration set (what `matdb init --bundled` adds)."""
    d = _db(db)
    try:
        rep = simulate_.add_demo(d)
    except user_errors() as exc:
        fail(exc)
    _demo_report(rep)
    if not rep.ok:
        raise typer.Exit(1)


@demo_app.command("remove")
def demo_remove(db: DbOpt = None) -> None:
    """Delete the demonstration set and nothing else (the literature data stay untouched)."""
    d = _db(db)
    try:
        removed = simulate_.remove_demo(d)
    except user_errors() as exc:
        fail(exc)
    if not removed:
        console.print(f"no demonstration set ({simulate_.DEMO_SOURCE}) in {d!r}")
        return
    console.print(f"removed the demonstration set ({simulate_.DEMO_SOURCE}): "
                  + ", ".join(f"{v} {k}" for k, v in sorted(removed.items())))


ObjOpt = Annotated[list[str], typer.Option("--objective", help="plqy, stability or a quantity (repeatable).")]


def _show_card(card: dict) -> None:  # type: ignore[type-arg]
    cv = card.get("cv") or {}
    console.print(
        f"model: {card.get('kind')} for {card.get('target_name', card.get('target'))} "
        f"({card.get('quantity')}), families {', '.join(card.get('families', []))}, "
        f"n_train={card.get('n_train')}, trained on {', '.join(card.get('training_provenance', []))}"
    )
    if cv:
        console.print(
            f"CV ({cv.get('scheme')}): RMSE {cv.get('rmse')}, MAE {cv.get('mae')}, "
            f"68 % coverage {cv.get('coverage_68')}, 95 % coverage {cv.get('coverage_95')}"
        )
    for w in card.get("warnings", []):
        err.print(f"[yellow]warning:[/] {w}", highlight=False)


@app.command()
def train(
    target: Annotated[str, typer.Option(help="plqy, stability or a quantity name.")] = "plqy",
    family: Annotated[Optional[str], typer.Option(help="Family slug (default: all with data).")] = None,
    kind: Annotated[str, typer.Option(help="auto, gp or forest.")] = "auto",
    include_simulated: Annotated[
        bool, typer.Option("--include-simulated", help="Also learn from simulated data.")
    ] = False,
    stability_metric: Annotated[
        Optional[str], typer.Option(help="Metric that defines 'stability' (default: the family's).")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Train a surrogate (GP with ARD Matern + noise, or a forest) and store it with its model card."""
    d = _db(db)
    try:
        from matdb_app import screening_service as ss

        card = ss.train(d, target, family, kind, include_simulated, save=True, stability_metric=stability_metric).card
    except user_errors() as exc:
        fail(exc)
    _show_card(card)


@app.command()
def rank(
    family: Annotated[str, typer.Option(help="Family slug.")],
    objective: ObjOpt = ["plqy"],  # noqa: B006
    n: Annotated[int, typer.Option(help="How many to show.")] = 20,
    space: Annotated[Optional[Path], typer.Option(help="YAML candidate space (default: built in).")] = None,
    weight: Annotated[Optional[list[float]], typer.Option("--weight", help="Objective weights.")] = None,
    include_simulated: Annotated[bool, typer.Option("--include-simulated")] = False,
    backend: Annotated[str, typer.Option(help="numpy or dask.")] = "numpy",
    scheduler: Annotated[Optional[str], typer.Option(help="dask scheduler address (default: a local cluster).")] = None,
    stability_metric: Annotated[Optional[str], typer.Option(help="Metric that defines 'stability'.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Save the ranking as CSV.")] = None,
    db: DbOpt = None,
) -> None:
    """Rank a family's candidate space by predicted value and uncertainty (Pareto flag for 2 objectives)."""
    d = _db(db)
    try:
        from matdb_app import screening_service as ss

        df = ss.rank(
            d,
            family,
            objective,
            n,
            space,
            weights=weight,
            include_simulated=include_simulated,
            backend=backend,
            scheduler=scheduler,
            stability_metric=stability_metric,
        )
    except user_errors() as exc:
        fail(exc)
    if out:
        df.to_csv(out, index=False)
    cols = ["formula", "params"] + [c for c in df.columns if c.endswith(("_mean", "_std"))] + ["acquisition", "pareto"]
    _print_df(df[[c for c in cols if c in df.columns]], n)


@app.command()
def propose(
    family: Annotated[str, typer.Option(help="Family slug.")],
    objective: ObjOpt = ["plqy"],  # noqa: B006
    n: Annotated[int, typer.Option(help="Batch size.")] = 8,
    out: Annotated[Path, typer.Option(help="Plan CSV to fill in and ingest.")] = Path("plan.csv"),
    acquisition: Annotated[str, typer.Option(help="ei, ucb, pi or mean.")] = "ei",
    batch: Annotated[str, typer.Option(help="kriging_believer, local_penalization or q-ucb.")] = "kriging_believer",
    space: Annotated[Optional[Path], typer.Option(help="YAML candidate space.")] = None,
    weight: Annotated[Optional[list[float]], typer.Option("--weight")] = None,
    include_simulated: Annotated[bool, typer.Option("--include-simulated")] = False,
    batch_mass: Annotated[
        Optional[float], typer.Option(help="Also write a milling plan for this batch mass (mg).")
    ] = None,
    stability_metric: Annotated[Optional[str], typer.Option(help="Metric that defines 'stability'.")] = None,
    db: DbOpt = None,
) -> None:
    """Propose the next N experiments; records the campaign and writes plan.csv (and a milling plan)."""
    d = _db(db)
    try:
        from matdb_app import screening_service as ss

        key, plan = ss.propose(
            d,
            family,
            objective,
            n,
            acquisition=acquisition,
            batch=batch,
            space=space,
            weights=weight,
            include_simulated=include_simulated,
            out=out,
            stability_metric=stability_metric,
        )
        if batch_mass:
            mp = ss.milling_plan(d, plan, batch_mass)
            mp_path = out.with_name(out.stem + "_milling.csv")
            mp.to_csv(mp_path, index=False)
            console.print(f"milling plan written to {mp_path}")
    except user_errors() as exc:
        fail(exc)
    _print_df(plan, n)
    console.print(
        f"campaign {key}: {len(plan)} proposals written to {out}. Fill in the result columns and "
        f"run `matdb ingest {out}`."
    )


def main() -> None:
    import os

    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug, not a user mistake: one line, and the trace only on request
        if os.environ.get(DEBUG_ENV):
            raise
        err.print(f"[bold red]{internal_message(exc)}[/]", highlight=False)
        sys.exit(3)


if __name__ == "__main__":
    main()
