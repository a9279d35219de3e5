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
    assert len(df) == 2 and list(df.columns[:4]) == ["proposal_id", "family", "formula", "params"]
    assert pd.read_csv(tmp_path / "plan_milling.csv")["mass_mg"].groupby(
        pd.read_csv(tmp_path / "plan_milling.csv")["proposal_id"]
    ).sum().to_numpy() == pytest.approx(400.0)
    r = invoke("train", "--target", "stability", "--db", url)
    assert r.exit_code == 2 and "choose a family" in r.output
