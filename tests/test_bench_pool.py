"""The pool benchmark (bench/bench_pool.py) runs end to end in its quick mode: matdb used as a user
would on the real Sun 2021 pool, the report and the plot written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_pool  # noqa: E402


def test_the_hidden_table_is_the_replicate_average_of_94_compositions() -> None:
    truth = bench_pool.lab()
    assert len(truth) == 94 and not truth.duplicated(["a", "b"]).any()
    top = bench_pool.top_set(truth)
    assert len(top) == 5 and truth.loc[top[0], "y"] == truth["y"].min()
    assert bench_pool.law_median(94, 1) == 47  # half the pool for one given composition


@pytest.mark.slow
def test_quick_mode_runs_matdb_as_a_user_and_writes_the_report(tmp_path: Path) -> None:
    assert bench_pool.main(["--quick", "--seeds", "1", "--batches", "1", "--budget", "5",
                            "--out", str(tmp_path)]) == 0
    (cached,) = (tmp_path / "pool").glob("matdb__n1__*.json")
    r = json.loads(cached.read_text())
    assert r["error"] is None, r.get("traceback")
    assert len(r["made"]) == 5 and len(set(r["made"])) == 5  # 2 starts, 3 proposals from the pool, no repeats
    assert r["designs"][0] == "initial_design" and r["designs"][-1] == "model"
    text = (tmp_path / "pool.md").read_text()
    assert "| 1 | matdb | 1 |" in text and "| 1 | random | 1 |" in text
    assert (tmp_path / "pool_top5.png").stat().st_size > 0
