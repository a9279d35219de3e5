"""The `matdb` command line, end to end on each backend."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from matdb_app.cli import app

runner = CliRunner(env={"COLUMNS": "200"})

GOOD = {
    "matdb": 1,
    "source": {"key": "cli-nb", "kind": "notebook", "title": "CLI test notebook"},
    "samples": [{"id": "cli-s1", "family": "FASnIBr", "params": {"z": 2.5}, "process": {"milling_time": "7 min"}}],
    "measurements": [
        {
            "sample": "cli-s1",
            "technique": "tlis_pl",
            "results": [{"quantity": "pl_peak", "value": "827 nm"}, {"quantity": "pl_peak_time", "value": "7 min"}],
        }
    ],
}


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_lists_commands() -> None:
    out = invoke("--help").output
    for cmd in ("init", "ingest", "query", "export", "info"):
        assert cmd in out


def test_init_ingest_query_export(db_url: str, tmp_path: Path) -> None:
    assert invoke("init", "--db", db_url).exit_code == 0
    f = _write(tmp_path / "good.yaml", GOOD)
    r = invoke("ingest", "--db", db_url, str(f))
    assert r.exit_code == 0, r.output
    assert "added: 1" in r.output
    r = invoke("ingest", "--db", db_url, str(f))
    assert "unchanged: 1" in r.output
    r = invoke("query", "--db", db_url, "family=FASnIBr,quantity=pl_peak")
    assert r.exit_code == 0 and "827" in r.output and "1 rows" in r.output
    out = tmp_path / "export.csv"
    r = invoke("export", "--db", db_url, "--out", str(out))
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert len(df) == 2
    assert json.loads(df["params"][0]) == {"z": 2.5, "milling_time_min": 7.0}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["samples"][0].update(params={"z": 4}), "field 'params.z'"),
        (lambda d: d["measurements"][0]["results"][0].update(value="827 kg"), "cannot convert"),
        (lambda d: d["samples"][0].update(family="FAPbI4"), "unknown family 'FAPbI4'"),
        (
            lambda d: d["measurements"][0]["results"][0].update(quantity="plqy", value="150 %"),
            "above the physical maximum",
        ),
    ],
)
def test_bad_file_is_rejected_with_a_message_and_nothing_written(
    db_url: str, tmp_path: Path, mutate, message: str
) -> None:
    import copy

    doc = copy.deepcopy(GOOD)
    mutate(doc)
    f = _write(tmp_path / "bad.yaml", doc)
    r = invoke("ingest", "--db", db_url, str(f))
    assert r.exit_code == 1
    assert message in r.output
    assert "bad.yaml" in r.output
    assert "Traceback" not in r.output
    r = invoke("query", "--db", db_url, "--samples")
    assert "0 rows" in r.output


def test_check_writes_nothing(db_url: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "good.yaml", GOOD)
    r = invoke("ingest", "--check", "--db", db_url, str(f))
    assert r.exit_code == 0 and "valid" in r.output
    assert "0 rows" in invoke("query", "--db", db_url).output


def test_missing_path_and_bad_query(db_url: str, tmp_path: Path) -> None:
    r = invoke("ingest", "--db", db_url, str(tmp_path / "nope.yaml"))
    assert r.exit_code == 1 and "no such file" in r.output
    r = invoke("query", "--db", db_url, "x>abc")
    assert r.exit_code == 2 and "needs a number" in r.output


def test_bad_database_url_is_a_message() -> None:
    r = invoke("info", "--db", "mysql://nobody@nowhere/x")
    assert r.exit_code == 2
    assert "unsupported database" in r.output or "cannot open" in r.output


def test_info_lists_quantities_and_families() -> None:
    r = invoke("info", "--quantities")
    assert "plqy" in r.output and "migration_barrier" in r.output


def test_init_creates_a_new_database_with_the_bundled_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'fresh.sqlite'}"
    r = invoke("init", "--bundled", "--db", url)
    assert r.exit_code == 0, r.output
    assert "rejected: 0" in r.output
    r = invoke("info", "--db", url)
    assert "literature" in r.output


def test_train_rank_propose_on_the_bundled_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lit.sqlite'}"
    assert invoke("init", "--bundled", "--db", url).exit_code == 0
    r = invoke("train", "--family", "CsPbI3-agZIF62", "--db", url)
    assert r.exit_code == 0, r.output
    assert "n_train=3" in r.output and "trained on literature" in r.output
    assert "only 3 training points" in r.output  # the model says it has few points
    r = invoke("rank", "--family", "CsPbI3-agZIF62", "--n", "5", "--db", url)
    assert r.exit_code == 0, r.output
    assert "plqy_mean" in r.output
    plan = tmp_path / "plan.csv"
    r = invoke(
        "propose", "--family", "CsPbI3-agZIF62", "--n", "2", "--out", str(plan), "--batch-mass", "400", "--db", url
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(plan)
    assert len(df) == 2 and list(df.columns[:6]) == ["proposal_id", "campaign", "design", "run", "family", "formula"]
    assert pd.read_csv(tmp_path / "plan_milling.csv")["mass_mg"].groupby(
        pd.read_csv(tmp_path / "plan_milling.csv")["proposal_id"]
    ).sum().to_numpy() == pytest.approx(400.0)
    r = invoke("train", "--target", "stability", "--db", url)
    assert r.exit_code == 2 and "--family" in r.output  # the family is a required option


def _counts(url: str) -> dict[str, int]:
    import matdb

    db = matdb.connect(url)
    try:
        return db.table_counts()
    finally:
        db.close()


def test_bundled_init_adds_the_demo_set_and_demo_remove_takes_exactly_it_away(tmp_path: Path) -> None:
    import matdb

    plain = f"sqlite:///{tmp_path / 'plain.sqlite'}"
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    assert invoke("init", "--bundled", "--no-demo", "--db", plain).exit_code == 0
    r = invoke("init", "--bundled", "--db", url)
    assert r.exit_code == 0, r.output
    assert "demonstration set (matdb-demo, ◇ SIMULATED): 6 runs, added: 6" in r.output
    db = matdb.connect(url)
    try:
        demo = db.samples(provenance="simulated")
        assert len(demo) == 6 and set(demo["source_key"]) == {"matdb-demo"}
        assert set(demo["family"]) == {"FAMAPbI3", "FASnIBr"}
        feats = db.results(provenance="simulated", derived=True)
        assert set(feats["sample_id"]) == set(demo["sample_id"])  # every run analysed
        literature = db.export(provenance="literature")
    finally:
        db.close()
    with_demo = _counts(url)
    # a second init changes nothing (the set is deterministic)
    assert "added: 0, unchanged: 6" in invoke("init", "--bundled", "--db", url).output
    assert _counts(url)["result"] == with_demo["result"]
    assert invoke("init", "--bundled", "--no-demo", "--db", plain).exit_code == 0  # the same file history
    r = invoke("demo", "remove", "--db", url)
    assert r.exit_code == 0 and "6 sample" in r.output, r.output
    assert _counts(url) == _counts(plain)  # exactly the set: as if it had never been added
    db = matdb.connect(url)
    try:
        pd.testing.assert_frame_equal(db.export(provenance="literature"), literature)
    finally:
        db.close()
    assert "no demonstration set" in invoke("demo", "remove", "--db", url).output
    r = invoke("demo", "add", "--db", url)
    assert r.exit_code == 0 and "added: 6" in r.output, r.output
    assert {k: v for k, v in _counts(url).items() if k != "ingested_file"} == \
        {k: v for k, v in with_demo.items() if k != "ingested_file"}


def test_demo_set_on_each_backend(db_url: str) -> None:
    empty = _counts(db_url)
    assert invoke("demo", "add", "--db", db_url).exit_code == 0
    assert _counts(db_url)["array_result"] == 12  # 6 runs + 6 feature series
    assert invoke("demo", "remove", "--db", db_url).exit_code == 0
    # only the family rows the runs needed stay (families are vocabulary, not data)
    assert {k: v for k, v in _counts(db_url).items() if k != "family"} == \
        {k: v for k, v in empty.items() if k != "family"}


def test_an_internal_error_is_not_shown_as_a_user_mistake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """matdb's own errors are messages (exit 2); a bare ValueError from inside is an internal error."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'e.sqlite'}"
    assert invoke("init", "--db", url).exit_code == 0
    from matdb_app import info

    def broken(_db):  # type: ignore[no-untyped-def]
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(info, "info", broken)
    with pytest.raises(ValueError, match="a bug deep inside"):  # not caught as a user mistake
        invoke("info", "--db", url)
    # through the real entry point: one line, exit 3, the traceback only with MATDB_DEBUG=1
    code = ("import sys; from matdb_app import cli, info\n"
            "info.info = lambda db: (_ for _ in ()).throw(ValueError('a bug deep inside'))\n"
            f"sys.argv = ['matdb', 'info', '--db', {url!r}]; cli.main()")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MATDB_DEBUG"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 3
    assert "internal error ValueError: a bug deep inside" in p.stderr and "MATDB_DEBUG=1" in p.stderr
    assert "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**env, "MATDB_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr
    # a matdb error type is a message, exit 2
    r = invoke("query", "--db", url, "family>3")
    assert r.exit_code == 2 and "can only be compared" in r.output
