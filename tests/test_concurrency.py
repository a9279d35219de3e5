"""Two ingest processes at once on one database lose nothing and never fail with 'locked'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import matdb

N_FILES = 12


def _write_files(folder: Path, tag: str) -> list[Path]:
    paths = []
    for i in range(N_FILES):
        doc = {
            "matdb": 1,
            "source": {"key": "conc-nb", "kind": "notebook", "title": "concurrency notebook"},
            "chemicals": [{"name": "PbI2", "formula": "PbI2"}],
            "syntheses": [{"id": f"{tag}-syn{i}", "family": "FAMAPbI3", "params": {"x": round(0.1 * (i % 5), 1)},
                           "precursors": [{"chemical": "PbI2", "amount": "461 mg"}],
                           "steps": [{"kind": "mill", "duration": f"{30 + i} min"}]}],
            "samples": [{"id": f"{tag}-s{i}", "synthesis": f"{tag}-syn{i}"}],
            "measurements": [{"sample": f"{tag}-s{i}", "technique": "plqy",
                              "results": [{"quantity": "plqy", "value": f"{i + 1} %"}]}],
        }
        p = folder / f"{tag}-{i:02d}.yaml"
        p.write_text(yaml.safe_dump(doc), encoding="utf-8")
        paths.append(p)
    return paths


@pytest.mark.slow
def test_two_ingest_processes_at_once(db_url: str, tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    shared = tmp_path / "shared"
    for d in (a, b, shared):
        d.mkdir()
    _write_files(a, "A")
    _write_files(b, "B")
    _write_files(shared, "S")
    cmd = [sys.executable, "-m", "matdb_app.cli", "ingest", "--db", db_url]
    procs = [subprocess.Popen([*cmd, str(a), str(shared)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
             subprocess.Popen([*cmd, str(b), str(shared)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out
        assert "locked" not in out.lower()
        assert "rejected: 0" in out
    db = matdb.connect(db_url)
    try:
        counts = db.table_counts()
        assert counts["sample"] == 3 * N_FILES
        assert counts["synthesis"] == 3 * N_FILES
        assert counts["result"] == 3 * N_FILES
        assert counts["source"] == 1
        assert counts["chemical"] == 1
        assert counts["material"] == 5
        # the shared folder was added once and found unchanged once, file by file
        statuses = sorted(out.count("unchanged") for out in outs)
        assert sum(statuses) >= N_FILES
    finally:
        db.close()
