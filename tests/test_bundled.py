"""`matdb init --bundled` on a database that holds an older version of the bundled data: the
bundled records (matdb's own) are brought to the current version in one transaction, what a user
loaded is never touched, lost or duplicated, and a user's record in the way is a one-line error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

import matdb
from ingest.bundled import BundledDataError
from ingest.pipeline import IngestReport
from matdb import models as M
from matdb_app import ingest as ingest_
from matdb_app import simulate as simulate_
from matdb_app.cli import app

REPO = Path(__file__).resolve().parents[1]
CURRENT = REPO / "data" / "literature"
OLD_NOTE = "Results and discussion (as located by an older version of the record)"

#: A record file the older bundled version had and the current one does not.
OLD_EXTRA = {
    "matdb": 1,
    "source": {"key": "xiang2026", "kind": "publication", "doi": "10.1039/d5ta10296k"},
    "samples": [{"id": "xiang2026-old-x0.3", "family": "FAPbIBr", "params": {"x": 0.3}}],
    "measurements": [{"id": "xiang2026-old-x0.3-pl", "sample": "xiang2026-old-x0.3", "technique": "pl",
                      "results": [{"quantity": "pl_peak", "value": "770 nm"}]}],
}


def _user_doc(*, on_bundled: str = "xiang2026-x0", sample_id: str = "lab-s1") -> dict:
    return {
        "matdb": 1,
        "source": {"key": "lab-notebook", "kind": "notebook", "title": "a user's notebook"},
        "samples": [{"id": sample_id, "family": "FAPbIBr", "params": {"x": 0.1}}],
        "measurements": [
            {"id": f"{sample_id}-pl", "sample": sample_id, "technique": "pl",
             "results": [{"quantity": "pl_peak", "value": "790 nm"}]},
            # the user's own measurement of a bundled sample
            {"id": "lab-on-bundled-pl", "sample": on_bundled, "technique": "pl",
             "results": [{"quantity": "pl_peak", "value": "805 nm"}]},
        ],
    }


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def old_version(tmp_path: Path) -> Path:
    """An older bundled version: a changed locator in xiang2026.yaml plus a file since dropped."""
    old = tmp_path / "old" / "data" / "literature"
    shutil.copytree(CURRENT, old)
    p = old / "xiang2026.yaml"
    text = p.read_text(encoding="utf-8")
    changed = text.replace("Results and discussion; SI experimental section", OLD_NOTE, 1)
    assert changed != text
    p.write_text(changed, encoding="utf-8")
    _write(old / "zz_dropped.yaml", OLD_EXTRA)
    return old


def _load_bundled(db: matdb.Database, folder: Path, monkeypatch: pytest.MonkeyPatch) -> IngestReport:
    with monkeypatch.context() as m:
        m.setattr(ingest_, "BUNDLED_DATA", folder)
        return ingest_.load_bundled(db, progress=False)


def _user_rows(db: matdb.Database) -> dict:
    """Everything of the user's source, by key: the rows a refresh must leave alone."""
    with db.session() as s:
        src = s.scalar(select(M.Source.id).where(M.Source.key == "lab-notebook"))
        samples = s.execute(select(M.Sample.key, M.Sample.id, M.Sample.content_hash)
                            .where(M.Sample.source_id == src)).all()
        meas = s.execute(select(M.Measurement.key, M.Measurement.id, M.Measurement.sample_id,
                                M.Measurement.content_hash).where(M.Measurement.source_id == src)).all()
        results = s.execute(select(M.Result.measurement_id, M.Result.quantity, M.Result.value)
                            .join(M.Measurement).where(M.Measurement.source_id == src)
                            .order_by(M.Result.measurement_id)).all()
    return {"samples": sorted(map(tuple, samples)), "measurements": sorted(map(tuple, meas)),
            "results": [tuple(r) for r in results]}


def _counts(db: matdb.Database) -> dict[str, int]:
    return {k: v for k, v in db.table_counts().items() if k != "ingested_file"}


def test_reloading_the_same_bundled_version_changes_nothing(db: matdb.Database) -> None:
    first = ingest_.load_bundled(db, progress=False)
    assert first.ok and first.notes == []  # a first load is no update
    before = _counts(db)
    again = ingest_.load_bundled(db, progress=False)
    assert {f.status for f in again.files} == {"unchanged"} and again.notes == []
    assert _counts(db) == before
    with db.session() as s:
        version = s.scalar(select(M.BundledDataset.version).where(M.BundledDataset.name == "literature"))
        n_tracked = s.scalar(select(func.count()).select_from(M.BundledRecord)
                             .where(M.BundledRecord.dataset == "literature"))
    assert version and n_tracked == sum(before[t] for t in ("synthesis", "sample", "series", "measurement"))


def test_an_older_bundled_version_is_replaced_and_user_data_survives(
        db: matdb.Database, old_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    with matdb.connect(fresh_url) as fresh:
        assert ingest_.load_bundled(fresh, progress=False).ok
        expected = _counts(fresh)
    assert _load_bundled(db, old_version, monkeypatch).ok
    user = ingest_.ingest(db, [_write(tmp_path / "mine.yaml", _user_doc())], progress=False)
    assert user.ok, [f.reason for f in user.files]
    mine = _user_rows(db)
    assert len(mine["measurements"]) == 2

    report = ingest_.load_bundled(db, progress=False)  # what `matdb init --bundled` does after a git pull

    assert report.ok
    assert len(report.notes) == 1 and report.notes[0].startswith("updated the bundled literature data")
    assert "1 record replaced" in report.notes[0] and "0 added, 2 removed" in report.notes[0]
    assert db.sample("xiang2026-x0")["synthesis"]["locator"] == "Results and discussion; SI experimental section"
    assert db.samples(sample="xiang2026-old-x0.3").empty  # dropped by the current version: gone
    with db.session() as s:  # the replaced version is kept
        old = s.scalar(select(M.RecordVersion.content).where(M.RecordVersion.key == "xiang2026-syn-x0"))
    assert old is not None and old["locator"] == OLD_NOTE
    assert _user_rows(db) == mine  # the user's rows: same ids, same content, nothing duplicated
    # the bundled part is exactly the current version: a fresh load plus the user's 1 sample, 2 measurements
    got = _counts(db)
    assert got["sample"] == expected["sample"] + 1 and got["measurement"] == expected["measurement"] + 2
    assert got["synthesis"] == expected["synthesis"] and got["series"] == expected["series"]
    assert ingest_.load_bundled(db, progress=False).notes == []  # and now it is current


def test_a_user_record_on_a_dropped_bundled_sample_blocks_the_update(
        db: matdb.Database, old_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _load_bundled(db, old_version, monkeypatch).ok
    doc = _user_doc(on_bundled="xiang2026-old-x0.3")
    assert ingest_.ingest(db, [_write(tmp_path / "mine.yaml", doc)], progress=False).ok
    before = _counts(db)
    with pytest.raises(BundledDataError) as exc:
        ingest_.load_bundled(db, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "measurement 'lab-on-bundled-pl' uses sample 'xiang2026-old-x0.3'" in msg
    assert "re-run `matdb init --bundled`" in msg
    assert _counts(db) == before  # one transaction: nothing was written
    assert db.sample("xiang2026-x0")["synthesis"]["locator"] == OLD_NOTE


def test_a_user_record_with_a_key_the_new_version_uses_blocks_the_update(
        db: matdb.Database, old_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "xiang2026-x0.3-new"  # a sample the next bundled version brings, which a user already made
    assert _load_bundled(db, old_version, monkeypatch).ok
    assert ingest_.ingest(db, [_write(tmp_path / "mine.yaml", _user_doc(sample_id=key))], progress=False).ok
    newer = tmp_path / "newer" / "data" / "literature"
    shutil.copytree(CURRENT, newer)
    _write(newer / "zz_new.yaml", {**OLD_EXTRA, "samples": [{"id": key, "family": "FAPbIBr", "params": {"x": 0.3}}],
                                   "measurements": []})
    before, counts = _user_rows(db), _counts(db)
    with pytest.raises(BundledDataError, match=f"has sample '{key}'.*your own data .source 'lab-notebook'"):
        _load_bundled(db, newer, monkeypatch)
    assert _user_rows(db) == before and _counts(db) == counts


def test_a_database_from_before_bundled_records_is_updated(
        db: matdb.Database, old_version: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _load_bundled(db, old_version, monkeypatch).ok
    with db.transaction() as s:  # what an older matdb left: no list of the bundled records
        s.execute(delete(M.BundledRecord))
        s.execute(delete(M.BundledDataset))
    report = ingest_.load_bundled(db, progress=False)
    assert report.ok and len(report.notes) == 1
    assert db.samples(sample="xiang2026-old-x0.3").empty


def test_a_legacy_database_with_user_records_citing_a_bundled_paper_is_not_guessed(
        db: matdb.Database, old_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _load_bundled(db, old_version, monkeypatch).ok
    mine = {**OLD_EXTRA, "samples": [{"id": "lab-xiang-copy", "family": "FAPbIBr", "params": {"x": 0.2}}],
            "measurements": []}
    assert ingest_.ingest(db, [_write(tmp_path / "mine.yaml", mine)], progress=False).ok
    with db.transaction() as s:
        s.execute(delete(M.BundledRecord))
        s.execute(delete(M.BundledDataset))
    with pytest.raises(BundledDataError, match="older matdb that did not record which records are bundled"):
        ingest_.load_bundled(db, progress=False)
    assert not db.samples(sample="lab-xiang-copy").empty


def test_an_older_demonstration_set_is_replaced(db: matdb.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(simulate_, "DEMO_SEED", simulate_.DEMO_SEED + 1)  # an older simulator's output
        assert simulate_.add_demo(db, progress=False).ok
    rep = simulate_.add_demo(db, progress=False)
    assert rep.ok
    assert len(rep.ingest.notes) == 1 and rep.ingest.notes[0].startswith("updated the simulated demonstration set")
    assert len(db.samples(provenance="simulated")) == len(simulate_.DEMO_RUNS)  # replaced, not duplicated
    assert simulate_.add_demo(db, progress=False).ingest.notes == []


def test_cli_init_bundled_updates_an_older_version_in_one_line(
        tmp_path: Path, old_version: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'matdb.sqlite'}"
    runner = CliRunner(env={"COLUMNS": "200"})
    with monkeypatch.context() as m:
        m.setattr(ingest_, "BUNDLED_DATA", old_version)
        assert runner.invoke(app, ["init", "--bundled", "--no-demo", "--db", url]).exit_code == 0
    r = runner.invoke(app, ["init", "--bundled", "--no-demo", "--db", url])
    assert r.exit_code == 0, r.output
    assert "different content" not in r.output
    assert [ln for ln in r.output.splitlines() if ln.startswith("updated the bundled literature data")]
    with matdb.connect(url) as d:
        assert ingest_.ingest(d, [_write(tmp_path / "mine.yaml", _user_doc())], progress=False).ok
    with monkeypatch.context() as m:  # downgrading to the older files now drops what the user's record uses
        m.setattr(ingest_, "BUNDLED_DATA", old_version.parent.parent.parent / "none" / "data" / "literature")
        (old_version.parent.parent.parent / "none" / "data" / "literature").mkdir(parents=True)
        r = runner.invoke(app, ["init", "--bundled", "--no-demo", "--db", url])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert "error: cannot update the bundled literature data" in r.output
    assert "lab-on-bundled-pl" in r.output


def test_a_changed_composition_of_a_bundled_sample(
        db: matdb.Database, old_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    newer = tmp_path / "newer" / "data" / "literature"
    shutil.copytree(CURRENT, newer)
    moved = {**OLD_EXTRA, "samples": [{"id": "xiang2026-old-x0.3", "family": "FAPbIBr", "params": {"x": 0.35}}]}
    _write(newer / "zz_dropped.yaml", moved)  # the same sample, now at x = 0.35; its measurement unchanged
    assert _load_bundled(db, old_version, monkeypatch).ok
    mine = tmp_path / "mine.yaml"
    assert ingest_.ingest(db, [_write(mine, _user_doc(on_bundled="xiang2026-old-x0.3"))], progress=False).ok
    with pytest.raises(BundledDataError, match="changes the composition of sample 'xiang2026-old-x0.3', which your "
                                               "measurement 'lab-on-bundled-pl' is of"):
        _load_bundled(db, newer, monkeypatch)
    with db.transaction() as s:  # without the user's measurement of it, the update goes through
        s.execute(delete(M.Result).where(M.Result.measurement_id.in_(
            select(M.Measurement.id).where(M.Measurement.key == "lab-on-bundled-pl"))))
        s.execute(delete(M.Measurement).where(M.Measurement.key == "lab-on-bundled-pl"))
    assert _load_bundled(db, newer, monkeypatch).ok
    with db.session() as s:  # the bundled measurement follows its sample to the new composition
        pairs = s.execute(select(M.Measurement.material_id, M.Sample.material_id)
                          .join(M.Sample, M.Sample.id == M.Measurement.sample_id)
                          .where(M.Sample.key == "xiang2026-old-x0.3")).all()
    assert pairs and all(a == b for a, b in pairs)
    assert db.sample("xiang2026-old-x0.3")["params"] == {"x": 0.35}
