"""The ``matdb`` command line. Each command is a thin shell around one function of a use-case
module (matdb_app.ingest, .info, .simulate, .analysis, .screening)."""

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


def _db(url: str | None):
    try:
        return matdb.connect(url)
    except user_errors() as exc:
        fail(exc)


def _print_df(df, max_rows: int = 50) -> None:
    _refresh_width()
    t = Table(show_lines=False)
    for c in df.columns:
        t.add_column(str(c), overflow="fold")
    for _, row in df.head(max_rows).iterrows():
        t.add_row(*["" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row])
    console.print(t)
    if len(df) > max_rows:
        console.print(f"… {len(df) - max_rows} more rows (use --out to save all)")


def _report(report) -> None:
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
    for note in report.notes:
        console.print(note, highlight=False, soft_wrap=True)
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
        + ", ".join(f"{k}: {tot.get(k, 0)}" for k in ("added", "unchanged", "updated", "rejected") if k != "updated"
                    or tot.get(k))
        + f"; analysed {rep.analysis.analysed}, {rep.analysis.skipped} up to date"
    )
    for note in rep.ingest.notes:
        console.print(note, highlight=False, soft_wrap=True)
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
    limit: Annotated[Optional[list[str]], typer.Option(
        "--limit", metavar="KEY=VALUE",
        help="Raise (or lower) a resource limit, e.g. --limit yaml_nodes=2e6 --limit file_mb=500; keys and "
             "defaults in the README (Limits on input). Exit status 2 when a file exceeds one.")] = None,
) -> None:
    """Load records (YAML/JSON), tables (CSV/XLSX), TLIS runs, pXRD patterns, JCAMP-DX, structures."""
    from ingest.limits import parse_limits

    try:
        limits = parse_limits(limit)
    except user_errors() as exc:
        fail(exc)
    d = _db(db)
    try:
        report = (
            ingest_.check(d, list(paths), mapping, limits=limits)
            if check
            else ingest_.ingest(d, list(paths), update=update, mapping=mapping, limits=limits)
        )
    except user_errors() as exc:
        fail(exc)
    _report(report)
    if report.over_limits:
        raise typer.Exit(2)
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
    format: Annotated[Optional[str], typer.Option(  # noqa: A002
        "--format", help="csv or parquet (exact, for machines), xlsx (for people: formulas neutralised); "
                         "default: from suffix.")] = None,
    where: Annotated[str, typer.Option(help="Filter, same syntax as `matdb query`.")] = "",
) -> None:
    """Write the tidy long-format table: one row per scalar result (csv/parquet exact; xlsx for people)."""
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


@app.command()
def watch(
    folder: Annotated[Path, typer.Argument(help="Folder the spectrometer exports spectra into.")],
    sample: Annotated[Optional[str], typer.Option(help="Id of the sample being milled.")] = None,
    family: Annotated[Optional[str], typer.Option(help="Family slug (a new sample; with --param).")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="name=value (repeatable).")] = None,
    mode: Annotated[str, typer.Option(help="reflectance or pl.")] = "reflectance",
    reference: Annotated[Optional[Path], typer.Option(help="PTFE reference spectrum (reflectance).")] = None,
    excitation: Annotated[Optional[float], typer.Option(help="PL excitation wavelength (nm).")] = None,
    provenance: Annotated[str, typer.Option(help="measured or simulated.")] = "measured",
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many minutes.")] = None,
    idle: Annotated[Optional[float], typer.Option(help="Stop after this many minutes without a new spectrum.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a watch of this folder.")] = False,
    db: DbOpt = None,
) -> None:
    """Follow a folder while the mill runs: live features, 'stop milling' when steady; ingest at the end."""
    from matdb_app import watch as watch_

    d = _db(db)
    try:
        params = {k: v[0] for k, v in simulate_.parse_param_values(param or []).items()}
        m = watch_.start(folder, mode=mode, sample=sample, family=family, params=params, reference=reference,
                         provenance=provenance, excitation_nm=excitation, resume=resume)
        res = watch_.watch_in_terminal(d, watch_.LiveRun(m), console, duration_min=duration, idle_min=idle)
    except user_errors() as exc:
        fail(exc)
    console.print(f"run ended ({res.reason}): {res.state.times_min.size} spectra")
    _report(res.report)
    if not res.report.ok:
        raise typer.Exit(1)


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


ObjOpt = Annotated[list[str], typer.Option(
    "--objective", help="QUANTITY[:max|:min|:target=VALUE|:target=LO..HI], e.g. plqy:max, instability_index:min, "
                        "pl_peak:target=850; plqy, stability or any stored quantity (repeatable).")]
CandOpt = Annotated[Optional[str], typer.Option(
    "--candidates", help="CSV/XLSX/Parquet file (or a stored pool's name) of the candidates you can make: only "
                         "these rows are scored and proposed.")]
FixedOpt = Annotated[Optional[list[str]], typer.Option("--fixed", help="VAR=VALUE: pin a variable (repeatable).")]


def _screening():
    """The screening service, imported when a screening command runs (it loads scikit-learn)."""
    from matdb_app import screening

    return screening


def _fixed(values: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            fail(ValueError(f"--fixed {item}: write VAR=VALUE, e.g. --fixed milling_time_min=30"))
    return out


def _show_card(card: dict) -> None:
    cv = card.get("cv") or {}
    obj = card.get("objective") or {}
    console.print(
        f"model: {card.get('kind')} for {obj.get('spec', card.get('target_name'))} ({card.get('quantity')}), "
        f"family {', '.join(card.get('families', []))}, n_train={card.get('n_train')}, "
        f"trained on {', '.join(card.get('training_provenance', []))}; stored as {card.get('name')}"
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
    family: Annotated[str, typer.Option(help="Family slug.")],
    target: Annotated[str, typer.Option(help="Objective: plqy, stability or a quantity (with :min/:max).")] = "plqy",
    kind: Annotated[str, typer.Option(help="auto, gp or forest.")] = "auto",
    include_simulated: Annotated[
        bool, typer.Option("--include-simulated", help="Also learn from simulated data.")
    ] = False,
    stability_metric: Annotated[
        Optional[str], typer.Option(help="Metric that defines 'stability' (default: the family's).")
    ] = None,
    space: Annotated[Optional[Path], typer.Option(help="YAML candidate space (its variables: the features).")] = None,
    db: DbOpt = None,
) -> None:
    """Train a surrogate (GP or forest, cross-validated) and store it with its model card; a stored model
    is reused while its training data are unchanged."""
    d = _db(db)
    try:
        card = _screening().train(d, target, family, kind, include_simulated, stability_metric=stability_metric,
                                space=space).card
    except user_errors() as exc:
        fail(exc)
    _show_card(card)
    from matdb_app import access

    if access.read_only(d):
        console.print(f"[yellow]not stored:[/] {access.READ_ONLY_INFO}")


@app.command()
def rank(
    family: Annotated[str, typer.Option(help="Family slug.")],
    objective: ObjOpt = ["plqy"],  # noqa: B006
    n: Annotated[int, typer.Option(help="How many to show.")] = 20,
    space: Annotated[Optional[Path], typer.Option(help="YAML candidate space (default: the family's).")] = None,
    candidates: CandOpt = None,
    weight: Annotated[Optional[list[float]], typer.Option("--weight", help="Objective weights.")] = None,
    fixed: FixedOpt = None,
    include_simulated: Annotated[bool, typer.Option("--include-simulated")] = False,
    backend: Annotated[str, typer.Option(help="numpy or dask.")] = "numpy",
    scheduler: Annotated[Optional[str], typer.Option(help="dask scheduler address (default: a local cluster).")] = None,
    stability_metric: Annotated[Optional[str], typer.Option(help="Metric that defines 'stability'.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Save the ranking as CSV.")] = None,
    db: DbOpt = None,
) -> None:
    """Rank a family's candidates (its space, or your pool) by prediction and uncertainty; Pareto flag
    for two or more objectives."""
    d = _db(db)
    try:
        df = _screening().rank(d, family, objective, n, space, candidates=candidates, weights=weight,
                             include_simulated=include_simulated, backend=backend, scheduler=scheduler,
                             stability_metric=stability_metric, fixed=_fixed(fixed))
    except user_errors() as exc:
        fail(exc)
    if out:
        df.to_csv(out, index=False)
    cols = ["formula", *[c for c in df.columns if c.endswith(("_mean", "_std"))], "acquisition", "pareto"]
    _print_df(df[[c for c in cols if c in df.columns]], n)


@app.command()
def propose(
    family: Annotated[str, typer.Option(help="Family slug.")],
    objective: ObjOpt = ["plqy"],  # noqa: B006
    n: Annotated[int, typer.Option(help="Batch size.")] = 8,
    out: Annotated[Path, typer.Option(help="Plan CSV to fill in and ingest.")] = Path("plan.csv"),
    space: Annotated[Optional[Path], typer.Option(help="YAML candidate space (default: the family's).")] = None,
    candidates: CandOpt = None,
    weight: Annotated[Optional[list[float]], typer.Option("--weight")] = None,
    slots: Annotated[Optional[int], typer.Option(help="Jars per run (a mixer mill: 2, a planetary mill: 4).")] = None,
    shared: Annotated[Optional[str], typer.Option(
        help="Variables equal within a run, comma-separated (e.g. milling_time_min,milling_frequency_hz).")] = None,
    fixed: FixedOpt = None,
    trust_region: Annotated[Optional[float], typer.Option(
        help="Keep proposals within this distance of the data (fraction of the domain's diagonal).")] = None,
    include_simulated: Annotated[bool, typer.Option("--include-simulated")] = False,
    batch_mass: Annotated[
        Optional[float], typer.Option(help="Also write a milling plan for this batch mass (mg).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the quasi-random search.")] = 0,
    stability_metric: Annotated[Optional[str], typer.Option(help="Metric that defines 'stability'.")] = None,
    db: DbOpt = None,
) -> None:
    """Propose the next N experiments; records the campaign and writes plan.csv (and a milling plan).
    With too few results the batch is a space-filling initial design."""
    d = _db(db)
    try:
        plan = _screening().propose(
            d, family, objective, n, space=space, candidates=candidates, weights=weight, slots=slots,
            shared=tuple(s.strip() for s in (shared or "").split(",") if s.strip()), fixed=_fixed(fixed),
            trust_region=trust_region, include_simulated=include_simulated, out=out, batch_mass_mg=batch_mass,
            stability_metric=stability_metric, seed=seed)
    except user_errors() as exc:
        fail(exc)
    for m in plan.messages:
        err.print(f"[yellow]note:[/] {m}", highlight=False, soft_wrap=True)
    shown = [c for c in plan.table.columns if c not in ("campaign", "family")]
    _print_df(plan.table[shown], n)
    what = "space-filling initial design" if plan.design == "initial_design" else "model-based proposals"
    console.print(
        f"campaign {plan.campaign}: {len(plan.table)} {what} written to {out}"
        + (f" (milling plan: {out.with_name(out.stem + '_milling.csv')})" if plan.milling is not None else "")
        + f". Fill in the result columns (or 'outcome' for a failed synthesis) and run `matdb ingest {out}`."
    )


@app.command("pool")
def pool_cmd(
    file: Annotated[Path, typer.Argument(help="CSV/XLSX/Parquet of candidates (family parameter columns).")],
    family: Annotated[str, typer.Option(help="Family slug.")],
    name: Annotated[Optional[str], typer.Option(help="Name of the stored pool (default: the file name).")] = None,
    db: DbOpt = None,
) -> None:
    """Check a candidate pool and store it, to choose from later (--candidates NAME, Screening page)."""
    d = _db(db)
    try:
        key = _screening().save_pool(d, file, family, name)
    except user_errors() as exc:
        fail(exc)
    console.print(f"candidate pool '{key}' stored for {family}")


# --- users (PostgreSQL roles) --------------------------------------------------------------------
users_app = typer.Typer(help="Database users: readers, writers, admins (PostgreSQL roles).", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User (login role) name: lower-case letters, digits, _.")],
    role: Annotated[str, typer.Option("--role", help="reader (select only), writer (ingest, propose) or admin "
                                                     "(migrate, manage users).")],
    password: Annotated[Optional[str], typer.Option("--password", help="Login password (omit with trust or "
                                                                       "certificate authentication).")] = None,
    db: DbOpt = None,
) -> None:
    """Create a database user with a role (PostgreSQL; run as an admin or the database owner)."""
    from matdb_app import access

    d = _db(db)
    try:
        console.print(access.add_user(d, name, role, password))
    except user_errors() as exc:
        fail(exc)


@users_app.command("list")
def users_list(db: DbOpt = None) -> None:
    """The users of this database and their roles."""
    from matdb_app import access

    d = _db(db)
    try:
        users = access.list_users(d)
    except user_errors() as exc:
        fail(exc)
    if users.empty:
        console.print("no matdb users yet (`matdb users add NAME --role reader|writer|admin`)")
    else:
        _print_df(users)


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="User to drop.")], db: DbOpt = None) -> None:
    """Drop a database user (the data it wrote stay, with its name as created_by)."""
    from matdb_app import access

    d = _db(db)
    try:
        console.print(access.remove_user(d, name))
    except user_errors() as exc:
        fail(exc)


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
