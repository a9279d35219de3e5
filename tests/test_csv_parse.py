"""The shared CSV parsing helper (ingest/readers/_csv.py): pyarrow's fast path gives exactly what
the plain split gives - the same numbers, and for a bad file the same located one-line error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import IngestError
from ingest.readers import _csv

PATH = Path("run.csv")
NAMES = ["wavelength_nm", "time 0", "time 1"]


def ragged(line: int, got: int) -> str:
    return f"line {line} has {got} values, expected 3; the file may be truncated"


def parse(body: str, n_cols: int = 3, start: int = 1) -> np.ndarray:
    lines = ("header\n" + body).splitlines()
    return _csv.float_rows(_csv.data_rows(lines, start), n_cols, NAMES[:n_cols], PATH, ragged)


def plain(body: str, n_cols: int = 3, start: int = 1) -> np.ndarray:
    """The plain path alone (what the readers did before pyarrow)."""
    rows = _csv.data_rows(("header\n" + body).splitlines(), start)
    return _csv.cell_floats(_csv.split_cells(rows, n_cols, PATH, ragged), rows, NAMES[:n_cols], PATH)


def outcome(fn: Callable[[str], np.ndarray], body: str) -> object:
    try:
        return fn(body).tolist()
    except IngestError as exc:
        return str(exc)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("500,1,2\n501,1\n", "run.csv, line 3: line 3 has 2 values, expected 3; the file may be truncated"),
        ("500,1,2\n501,1,2,3\n", "line 3 has 4 values, expected 3"),
        ("500,1,2\n501,abc,2\n", "run.csv, line 3, field 'time 0': 'abc' is not a number"),
        ("500,1,2\n501,1,\n", "run.csv, line 3, field 'time 1': an empty cell is not a number"),
        ("500,1,inf\n", "run.csv, line 2, field 'time 1': value 'inf' is not a finite number"),
        ("500,nan,1\n", "line 2, field 'time 0': value 'nan' is not a finite number"),
        ("500,1,-Infinity\n", "value '-Infinity' is not a finite number"),
        ("500,1,1e999\n", "value '1e999' is not a finite number"),
        ('500,"1",2\n', "line 2, field 'time 0': '\"1\"' is not a number"),
        ("500,NA,2\n", "'NA' is not a number"),
        ("500,1,2\n# a comment\n\n501,x,2\n", "line 5, field 'time 0': 'x' is not a number"),
        # a ragged row is reported before a bad cell on an earlier line
        ("500,x,2\n501,1\n", "line 3 has 2 values"),
        # a non-number before a non-finite value on an earlier line
        ("500,inf,2\n501,y,2\n", "'y' is not a number"),
    ],
)
def test_errors_are_located_as_before(body: str, message: str) -> None:
    with pytest.raises(IngestError) as exc:
        parse(body)
    assert message in str(exc.value)
    assert str(exc.value) == outcome(plain, body)


@pytest.mark.parametrize(
    "body",
    [
        "500,1,2\n501,3.5,-4e-3\n",
        "500,1,2\r\n501,3,4\r\n",
        "# header comment\n500,1,2\n\n   \n# interleaved\n501,3,4\n",
        "500, 1 ,2 \n501,3,4\t\n",  # padded cells: float() strips them
        "500,1_000,2\n",  # float() reads underscores; pyarrow does not, the plain path does
        "500,+1.,.5\n",
        "500,1,2",  # no final newline
    ],
)
def test_values_as_the_plain_split(body: str) -> None:
    assert outcome(parse, body) == outcome(plain, body)
    assert isinstance(outcome(parse, body), list)


def test_line_numbers_skip_comments_and_blank_lines() -> None:
    rows = _csv.data_rows(["h", "1,2", "", "# c", "  ", "3,4"], 1)
    assert rows == [(2, "1,2"), (6, "3,4")]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.lists(
            st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n),
            min_size=1,
            max_size=20,
        )
    )
)
def test_random_matrices_round_trip(matrix: list[list[float]]) -> None:
    n = len(matrix[0])
    body = "\n".join(",".join(repr(v) for v in row) for row in matrix) + "\n"
    rows = _csv.data_rows(("h\n" + body).splitlines(), 1)
    got = _csv.float_rows(rows, n, [f"c{j}" for j in range(n)], PATH, ragged)
    assert got.shape == (len(matrix), n)
    assert got.tolist() == matrix  # exact: both paths round correctly


# --- tables ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a,b,c\n1,2,3\n4,5,6\n",
        "# comment\n\nsep=,\na,b\n1,2\n3,4",
        "a,b\r\n1,2\r\n3,4\r\n",
        'a,b\n1,"x, y"\n2,"multi\nline"\n3,4\n',
        "a,b,c\n1,2\n3,4,5,6\n",  # ragged rows stay as they are
        "a,b\n1,2\n\n3,4\n",  # a blank row
        "a,b\n1,2\r3,4\n",  # a lone carriage return ends a row
        "a,b\n# not a comment after the header,x\n",
        "a\n1\n2\n",
        "a\n1\n\r\n2\n",  # a blank row ending in CR LF after an LF row: [] as the csv module gives
        "a\r\n1\r\n\r\n2\r\n",
        "a,b\n",
        "a,b\n1,\n,2\n",
    ],
)
def test_table_rows_as_the_csv_module(text: str) -> None:
    assert list(_csv.table_rows(text, PATH)) == list(_csv.csv_rows(text, PATH))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(['a', '1', ',', ',', '\n', '\n', '\r', '"', '#', ' ', 'é']), max_size=60))
def test_table_rows_random_text(text: str) -> None:
    def rows(fn: Callable[[str, Path], Iterator[tuple[int, list[str]]]]) -> object:
        try:
            return list(fn(text, PATH))
        except IngestError as exc:
            return str(exc)

    assert rows(_csv.table_rows) == rows(_csv.csv_rows)


def test_clean_rows_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_plain_path(*args: object) -> None:
        raise AssertionError("the plain split ran for clean rows")

    monkeypatch.setattr(_csv, "split_cells", no_plain_path)
    monkeypatch.setattr(_csv, "csv_rows", no_plain_path)
    assert parse("500,1,2\n501,3,4\n").tolist() == [[500, 1, 2], [501, 3, 4]]
    assert list(_csv.table_rows("a,b\n1,2\n3,4\n", PATH)) == [(1, ["a", "b"]), (2, ["1", "2"]), (3, ["3", "4"])]


def test_tlis_second_read_of_the_same_text_is_an_independent_copy(tmp_path: Path) -> None:
    from ingest.readers import tlis

    head = "# matdb-tlis: 1\n# mode: pl\n# sample: s1\nwavelength_nm,0,1\n"
    run = tmp_path / "run.csv"
    text = head + "500,1,2\n501,3,4\n"
    run.write_text(text)
    first = tlis.parse_run(run, text)
    first[2][:] = -1.0  # a caller changing its values does not change the next read's
    second = tlis.parse_run(run, text)
    assert second[2].tolist() == [[1.0, 3.0], [2.0, 4.0]]
    with pytest.raises(IngestError, match=r"line 6 has 2 values, expected 3"):
        tlis.parse_run(run, head + "500,1,2\n501,3\n")  # other text: parsed (and refused) anew
