"""The Ingest page's service (matdb_app.ingest): staging uploads and the error table, read from the
error objects' attributes (never from their text)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ingest.errors import IngestError
from ingest.pipeline import FileOutcome, IngestReport
from matdb_app.ingest import Staged, check_errors, check_summary, stage_uploads


def test_error_table_takes_file_line_record_field_from_the_error_object(tmp_path: Path) -> None:
    folder = str(tmp_path / "up")
    err = IngestError("value 1.3 is outside the range [0, 1]", file=f"{folder}/bad.yaml", line=7,
                      record="synthesis u-x0.8", field="params.x")
    # a message with ", " and ": " in it must not be split into location parts
    odd = IngestError("cannot read 'a, b: c'", file=f"{folder}/bad.yaml", record=None, field=None)
    report = IngestReport([FileOutcome(f"{folder}/bad.yaml", "rejected", str(err), errors=[err, odd]),
                           FileOutcome(f"{folder}/crash.csv", "rejected", "could not be written (KeyError: 'x')",
                                       errors=["could not be written (KeyError: 'x')"])])
    staged = Staged(folder, ["bad.yaml", "crash.csv", "ref.csv"])
    t = check_errors(report, staged)
    assert t.iloc[0].to_dict() == {"file": "bad.yaml", "line": 7, "record": "synthesis u-x0.8", "field": "params.x",
                                   "problem": "value 1.3 is outside the range [0, 1]"}
    second = t.iloc[1]
    assert (second["file"], second["problem"]) == ("bad.yaml", "cannot read 'a, b: c'")
    assert pd.isna(second["line"]) and second["record"] is None and second["field"] is None
    # an error that is not an IngestError is the problem of its whole file
    crash = t.iloc[2]
    assert (crash["file"], crash["problem"]) == ("crash.csv", "could not be written (KeyError: 'x')")
    s = check_summary(report, staged).set_index("file")
    assert s.loc["ref.csv", "status"] == "part of a record"


def test_staging_is_idempotent_and_refuses_bad_names(tmp_path: Path) -> None:
    a = stage_uploads([("a.yaml", b"x: 1"), ("dir/b.csv", b"1,2")], root=str(tmp_path))
    b = stage_uploads([("a.yaml", b"x: 1"), ("dir/b.csv", b"1,2")], root=str(tmp_path))
    assert a == b and a.names == ["a.yaml", "b.csv"]
    assert (Path(a.folder) / "b.csv").read_bytes() == b"1,2"
    with pytest.raises(IngestError, match="rename one") as info:
        stage_uploads([("a.yaml", b"1"), ("x/a.yaml", b"2")], root=str(tmp_path))
    assert info.value.file == "a.yaml"
    with pytest.raises(IngestError, match="not a usable file name"):
        stage_uploads([("..", b"1")], root=str(tmp_path))


def test_check_paths_keeps_each_error_as_an_object_with_its_field(db, tmp_path: Path) -> None:  # noqa: ANN001
    """A table row with an out-of-range parameter: the rejected file's errors are IngestError
    objects with file, line and field (not their text), so the error table can show the field."""
    from ingest.pipeline import check_paths

    table = tmp_path / "plqy.csv"
    table.write_text("sample_id,family,x,plqy [%]\n"
                     "t-ok,FAPbIBr,0.1,9.8\n"
                     "t-bad,FAPbIBr,1.3,2.1\n")
    good, report = check_paths(db, [table])
    (out,) = report.files
    assert not good and out.status == "rejected"
    (err,) = out.errors
    assert isinstance(err, IngestError)
    assert (err.file, err.line, err.field) == (str(table), 3, "params.x")
    assert "x = 1.3 is outside the range 0..1" in err.message
    assert str(err) == out.reason  # the CLI prints the error as before: location, then the message
    assert str(err).startswith(f"{table}, line 3, field 'params.x': ")
    staged = Staged(str(tmp_path), ["plqy.csv"])
    (row,) = check_errors(report, staged).to_dict("records")
    assert row == {"file": "plqy.csv", "line": 3, "record": None, "field": "params.x", "problem": err.message}


def test_errors_keep_their_location_through_pickling() -> None:
    """The upload worker sends its report back pickled: errors (a LimitError too, whose __init__
    takes other arguments) arrive with file, line, record and field."""
    import pickle

    from ingest.errors import IngestErrors
    from ingest.limits import LimitError

    err = IngestError("x = 1.3 is outside the range", file="a.csv", line=3, record="row 2", field="params.x")
    limit = LimitError("depth", "the document is nested too deeply", file="b.yaml", line=9)
    both = IngestErrors([err, limit])
    for e in (err, limit, both):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e) and back.args == e.args
        assert (back.file, back.line, back.record, back.field) == (e.file, e.line, e.record, e.field)
    back_limit = pickle.loads(pickle.dumps(limit))
    assert isinstance(back_limit, LimitError) and back_limit.key == "depth"
    assert [x.field for x in pickle.loads(pickle.dumps(both)).errors] == ["params.x", None]
