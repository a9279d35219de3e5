"""Uploads cannot hurt the server (issue 15): matdb_app.isolation runs a function in a worker
process with a memory limit (RLIMIT_AS) and a wall-clock timeout; the Ingest service checks
uploads there and writes only what a worker that finished prepared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile import (
    GOOD,
    address_space_mb,
    alias_bomb,
    bug,
    exit_with,
    hog,
    kill_self,
    sleep,
    square,
    user_mistake,
    worker_baseline_mb,
)
from test_app import REPO, sqlite_app_url  # noqa: F401  (the populated app database fixture)

import matdb
from ingest.errors import IngestError
from ingest.limits import DEFAULT as DEFAULT_READER_LIMITS
from matdb_app import ingest as ingest_
from matdb_app.errors import is_user_error
from matdb_app.isolation import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    WorkerLimits,
    WorkerLimitsError,
    WorkerStopped,
    run_limited,
)

#: Room above the worker's measured address space: enough for a small file, far below a bomb.
HEADROOM_MB = 32
#: The fork server imports these once (if a test here starts it).
PRELOAD = (*ingest_.WORKER_PRELOAD, "hostile")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module", autouse=True)
def _fork_server() -> None:
    """Start the fork server with what these tests' workers import (unless it runs already)."""
    run_limited(square, 1, preload=PRELOAD)


@pytest.fixture(scope="module")
def small() -> WorkerLimits:
    """A memory limit just above a worker's own address space, and a timeout that a small
    function never reaches."""
    base = run_limited(address_space_mb, limits=WorkerLimits(None, None))
    return WorkerLimits(memory_mb=round(base + HEADROOM_MB), timeout_s=DEFAULT_TIMEOUT_S)


def test_a_worker_returns_its_result() -> None:
    assert run_limited(square, 12, limits=WorkerLimits(DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S)) == 144
    assert run_limited(square, x=3) == 9


def test_memory_limit_stops_the_worker(small: WorkerLimits) -> None:
    with pytest.raises(WorkerStopped, match=rf"stopped: it needed more than {small.memory_mb:g} MB of memory") as info:
        run_limited(hog, 16, limits=small)
    assert info.value.kind == "memory" and is_user_error(info.value)
    assert _gone(int(info.value.during))


def test_timeout_kills_the_worker() -> None:
    with pytest.raises(WorkerStopped, match=r"stopped: it took longer than 0.5 s") as info:
        run_limited(sleep, 600, limits=WorkerLimits(DEFAULT_MEMORY_MB, 0.5))
    assert info.value.kind == "timeout"
    assert _gone(int(info.value.during)), "the worker was killed and reaped"


def test_user_errors_come_back_with_their_type_and_location() -> None:
    with pytest.raises(IngestError, match="outside the range") as info:
        run_limited(user_mistake)
    e = info.value
    assert (e.file, e.line, e.record, e.field) == ("a.yaml", 7, "synthesis s1", "params.x")
    assert str(e) == "a.yaml, line 7, synthesis s1, field 'params.x': value 1.3 is outside the range [0, 1]"


def test_a_bug_in_the_worker_stays_a_bug_with_the_worker_traceback() -> None:
    with pytest.raises(KeyError) as info:
        run_limited(bug)
    assert not is_user_error(info.value)
    assert any("in the worker process" in n and "bug" in n for n in info.value.__notes__)


@pytest.mark.parametrize(("fn", "args", "reason"), [
    (exit_with, (3,), "the worker process exited with code 3 without a result"),
    (kill_self, (), "the worker process was killed by SIGKILL (probably out of memory; the limit is 1 GB)"),
])
def test_a_worker_that_dies_is_reported(fn, args, reason: str) -> None:
    with pytest.raises(WorkerStopped) as info:
        run_limited(fn, *args)
    assert info.value.kind == "died" and info.value.reason == reason


@pytest.mark.parametrize(("env", "expected"), [
    ({}, WorkerLimits(DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S)),
    ({"M": "512", "T": "2.5"}, WorkerLimits(512, 2.5)),
    ({"M": "0", "T": "0"}, WorkerLimits(None, None)),
    ({"M": " ", "T": "10"}, WorkerLimits(DEFAULT_MEMORY_MB, 10)),
])
def test_limits_from_the_environment(env: dict[str, str], expected: WorkerLimits) -> None:
    assert WorkerLimits.from_env("M", "T", env) == expected


@pytest.mark.parametrize("bad", ["1GB", "-5", "nan", "inf"])
def test_a_limit_that_is_not_a_number_is_refused(bad: str) -> None:
    with pytest.raises(WorkerLimitsError, match=rf"M must be a number >= 0 \(0: no limit\), got '{bad}'"):
        WorkerLimits.from_env("M", "T", {"M": bad})


@pytest.mark.parametrize(("mb", "text"), [(1024, "1 GB"), (2048, "2 GB"), (512, "512 MB"), (1500, "1500 MB")])
def test_memory_is_named_in_plain_units(mb: int, text: str) -> None:
    assert WorkerLimits(mb).memory_text() == text


# --- the Ingest service: uploads checked in the worker ------------------------------------------------


@pytest.fixture(scope="module")
def bomb_limits() -> WorkerLimits:
    """Just above what the upload worker maps before reading anything."""
    base = run_limited(worker_baseline_mb, limits=WorkerLimits(None, None))
    return WorkerLimits(memory_mb=round(base + HEADROOM_MB), timeout_s=10 * DEFAULT_TIMEOUT_S)


#: Reader limits that let the bomb past the first line of defence (the YAML node budget of
#: ingest.limits), so that the worker's limits are what stops it.
PAST_READER_LIMITS = DEFAULT_READER_LIMITS.replace(yaml_nodes=10**12)


def _snapshot(db: matdb.Database) -> tuple[dict[str, int], str]:
    from matdb import store

    return db.table_counts(), store.data_version(db)


@pytest.mark.slow
def test_an_alias_bomb_upload_is_stopped_by_the_memory_limit_and_writes_nothing(
        db: matdb.Database, tmp_path: Path, bomb_limits: WorkerLimits) -> None:
    before = _snapshot(db)
    with pytest.raises(WorkerStopped) as info:
        ingest_.check_upload(db, [("bomb.yaml", alias_bomb())], root=str(tmp_path),
                             limits=bomb_limits, reader_limits=PAST_READER_LIMITS)
    assert str(info.value) == (f"validation of bomb.yaml stopped: it needed more than {bomb_limits.memory_mb:g} MB "
                               "of memory")
    assert _snapshot(db) == before


def test_an_alias_bomb_upload_is_stopped_by_the_timeout(db: matdb.Database, tmp_path: Path) -> None:
    # the bomb needs minutes; in one second it cannot reach the memory limit
    limits = WorkerLimits(memory_mb=DEFAULT_MEMORY_MB, timeout_s=1)
    before = _snapshot(db)
    files = [("good.yaml", GOOD), ("bomb.yaml", alias_bomb())]
    with pytest.raises(WorkerStopped, match=r"^validation of bomb.yaml stopped: it took longer than 1 s$"):
        ingest_.check_upload(db, files, root=str(tmp_path), limits=limits, reader_limits=PAST_READER_LIMITS)
    assert _snapshot(db) == before


def test_with_the_default_reader_limits_the_bomb_is_rejected_before_it_grows(
        db: matdb.Database, tmp_path: Path) -> None:
    before = _snapshot(db)
    checked = ingest_.check_upload(db, [("bomb.yaml", alias_bomb())], root=str(tmp_path))
    assert checked.summary["status"].tolist() == ["rejected"]
    assert "yaml_nodes" in checked.summary["reason"].iloc[0]
    assert checked.prepared == []
    assert _snapshot(db) == before


def test_reader_limits_of_uploads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ingest_.ENV_UPLOAD_READER_LIMITS, "yaml_nodes=2e6, file_mb=5")
    got = ingest_.upload_reader_limits()
    assert got.yaml_nodes == 2_000_000 and got.records_mb == 5 and got.csv_mb == 5
    monkeypatch.setenv(ingest_.ENV_UPLOAD_READER_LIMITS, "nodes=1")
    with pytest.raises(IngestError, match="unknown limit 'nodes'"):
        ingest_.upload_reader_limits()


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ingest_.ENV_UPLOAD_MEMORY, "768")
    monkeypatch.setenv(ingest_.ENV_UPLOAD_TIMEOUT, "5")
    assert ingest_.upload_limits() == WorkerLimits(768, 5)


def test_a_good_upload_is_checked_in_the_worker_and_loaded_from_what_it_prepared(
        db: matdb.Database, tmp_path: Path) -> None:
    bad = GOOD.replace(b"x: 0.25", b"x: 1.3").replace(b"nb7-s1", b"nb7-s2")
    checked = ingest_.check_upload(db, [("good.yaml", GOOD), ("bad.yaml", bad)], root=str(tmp_path))
    assert dict(zip(checked.summary["file"], checked.summary["status"], strict=True)) == {"good.yaml": "valid",
                                                                            "bad.yaml": "rejected"}
    (row,) = checked.errors.to_dict("records")  # the error object's parts, back from the worker
    assert (row["file"], row["record"], row["field"]) == ("bad.yaml", "samples[0] (nb7-s2)", "params.x"), row
    assert "x = 1.3 is outside the range" in row["problem"] and "field" not in row["problem"]
    assert [Path(p.file).name for p in checked.prepared] == ["good.yaml"]
    before = db.table_counts()
    loaded = ingest_.load_upload(db, checked)
    assert loaded.totals == {"added": 1, "rejected": 1}
    after = db.table_counts()
    assert after["sample"] == before["sample"] + 1 and after["result"] == before["result"] + 1
    again = ingest_.load_upload(db, checked.staged)  # staged files only: checked in a worker first
    assert again.totals == {"unchanged": 1, "rejected": 1}


# --- the Ingest page ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_ingest_page_says_a_bomb_upload_was_stopped_and_writes_nothing(
        sqlite_app_url: str, bomb_limits: WorkerLimits, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ingest_.ENV_UPLOAD_MEMORY, f"{bomb_limits.memory_mb:g}")
    monkeypatch.setenv(ingest_.ENV_UPLOAD_TIMEOUT, f"{bomb_limits.timeout_s:g}")
    monkeypatch.setenv(ingest_.ENV_UPLOAD_READER_LIMITS, "yaml_nodes=1e12")  # past the first line of defence
    db = matdb.connect(sqlite_app_url)
    before = _snapshot(db)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=2 * bomb_limits.timeout_s).run()
    at.switch_page("app_pages/ingest.py").run()
    at.file_uploader(key="in_files").set_value([("bomb.yaml", alias_bomb(), "application/octet-stream")]).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        f"checking the files: validation of bomb.yaml stopped: it needed more than {bomb_limits.memory_mb:g} MB "
        "of memory"]
    assert _snapshot(db) == before
    at.switch_page("app_pages/explore.py").run()  # the same server goes on serving
    assert not at.exception and at.title[0].value == "Explore samples"
    db.close()


def test_an_uploaded_column_mapping_is_read_in_the_worker(db: matdb.Database, tmp_path: Path) -> None:
    data = REPO / "tests" / "data" / "readers"
    table, mapping = (data / "lab_export.csv").read_bytes(), (data / "lab_export.mapping.yaml").read_bytes()
    checked = ingest_.check_upload(db, [("export.csv", table)], mapping, root=str(tmp_path))
    assert checked.summary["status"].tolist() == ["valid"], checked.errors
    with pytest.raises(IngestError, match="a mapping file is a YAML mapping"):
        ingest_.check_upload(db, [("export.csv", table)], b"- not a mapping", root=str(tmp_path))


def test_a_worker_does_not_rerun_the_main_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a Streamlit script run ``__main__`` is the page script (app.py): a worker must not run
    it again (it opened the default database, with the fork server's environment, before the task)."""
    import sys
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(1)\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    assert run_limited(os.getpid) != os.getpid()
    assert sys.modules["__main__"] is page  # restored for the script run that started the worker
    assert not marker.exists()
