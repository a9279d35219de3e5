"""The one CSV parsing path of the readers: pyarrow for speed, matdb's located errors for problems.

Every reader of comma-separated text (TLIS matrix and long runs, their reference spectra, two-column
spectra, wide tables and matdb exports) goes through here:

- :func:`data_rows` - the data lines after a column header: ``(1-based line, text)``, blank lines
  and ``#`` comment lines (also interleaved ones) left out.
- :func:`float_rows` - those lines as an ``(n, n_cols)`` float array. pyarrow parses the rows (the
  fast path); if pyarrow refuses them, or a value is missing or not finite, the rows are parsed
  again the plain way only to find the first problem and name it exactly as matdb always has:
  a ragged row ("line N has K values, expected M ..."), a cell that is not a number ("'abc' is not
  a number", with line and field) or a non-finite value, in that order of precedence.
- :func:`table_rows` - the rows of a table CSV as text cells (quotes, ``sep=`` and comment rows as
  Python's :mod:`csv` reads them), pyarrow when the text has nothing only :mod:`csv` handles.

The fast path gives the same numbers as Python's ``float`` (both round correctly); whatever pyarrow
would read differently (quotes, padding, ``nan``, an empty cell, ``1_000``) makes it fall back, so
results and messages do not depend on which path ran.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ingest.readers._common import fail

Row = tuple[int, str]  # (1-based line, text)


_PARSE = pacsv.ParseOptions(
    delimiter=",", quote_char=False, double_quote=False, escape_char=False,
    newlines_in_values=False, ignore_empty_lines=False,
)


def data_rows(lines: list[str], start: int) -> list[Row]:
    """``(line, text)`` of the data lines in ``lines[start:]`` (0-based ``start``; lines numbered
    from 1), blank and ``#`` comment lines left out."""
    return [
        (j + 1, ln)
        for j, ln in enumerate(lines[start:], start=start)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _arrow_floats(texts: list[str], n_cols: int) -> np.ndarray | None:
    """The rows as a float array by pyarrow, or None when pyarrow cannot read them all as
    ``n_cols`` finite numbers (the caller then locates the problem)."""
    if not texts:
        return np.empty((0, n_cols))
    names = [f"c{j}" for j in range(n_cols)]
    try:
        table = pacsv.read_csv(
            io.BytesIO("\n".join(texts).encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=_PARSE,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.float64() for n in names},
                null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False,
                check_utf8=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(texts) or table.num_columns != n_cols:
        return None
    out = np.empty((table.num_rows, n_cols))
    for j, col in enumerate(table.columns):
        if col.null_count:
            return None
        out[:, j] = col.to_numpy()
    if not np.isfinite(out).all():
        return None
    return out


def float_rows(
    rows: list[Row],
    n_cols: int,
    names: list[str],
    path: Path,
    ragged: Callable[[int, int], str],
) -> np.ndarray:
    """``rows`` (from :func:`data_rows`) as an ``(len(rows), n_cols)`` float array.

    Args:
        names: the field name of each column, for messages.
        ragged: ``ragged(line, n_values)`` -> the message for a row without ``n_cols`` values.

    Raises:
        IngestError: the first ragged row; else the first cell that is not a number; else the first
            non-finite value - each with its file, line and field.
    """
    fast = _arrow_floats([t for _, t in rows], n_cols)
    if fast is not None:
        return fast
    cells = split_cells(rows, n_cols, path, ragged)
    return cell_floats(cells, rows, names, path)


def split_cells(
    rows: list[Row], n_cols: int, path: Path, ragged: Callable[[int, int], str]
) -> list[list[str]]:
    """The plain split of each row at commas; a row without ``n_cols`` cells is an IngestError."""
    out = []
    for line, text in rows:
        row = text.rstrip().split(",")
        if len(row) != n_cols:
            raise fail(ragged(line, len(row)), path, line=line)
        out.append(row)
    return out


def cell_floats(cells: list[list[str]], rows: list[Row], names: list[str], path: Path) -> np.ndarray:
    """Text cells (rectangular) to floats; the first cell that is not a number, or the first
    non-finite value, is an IngestError with its line and field."""
    try:
        arr = np.array(cells, dtype=str).astype(float)
    except (ValueError, OverflowError):
        for (line, _), row in zip(rows, cells, strict=True):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    what = "an empty cell" if not cell.strip() else f"'{cell.strip()}'"
                    raise fail(f"{what} is not a number", path, line=line, field=names[j]) from None
        raise  # pragma: no cover - numpy and float() agree on what is a number
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise fail(
            f"value '{cells[r][c].strip()}' is not a finite number", path, line=rows[r][0], field=names[c]
        )
    return arr


# --- tables (text cells) -------------------------------------------------------------------------


def csv_rows(text: str, path: Path, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """(first line of the row, cells) for each CSV row as Python's :mod:`csv` reads it, with located
    csv errors; ``text`` starts on line ``first_line`` of the file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise fail(f"malformed CSV: {exc}", path, line=reader.line_num + first_line - 1) from None
        yield start + first_line - 1, row
        start = reader.line_num + 1


def _n_lines(body: str) -> int | None:
    """The number of lines of ``body`` if pyarrow and :mod:`csv` split it into the same rows with
    the same cells (no quotes, blank lines or lone ``\r``), else None."""
    if '"' in body or "\n\n" in body or "\n\r\n" in body or body.startswith(("\n", "\r\n")):
        return None
    if "\r" in body and body.count("\r") != body.count("\r\n"):
        return None
    return body.count("\n") + (0 if body.endswith("\n") else 1)


def _arrow_strings(body: str, n_cols: int) -> list[list[str]] | None:
    """The lines of ``body`` as ``n_cols`` text cells each by pyarrow, or None (ragged rows, ...)."""
    names = [f"c{j}" for j in range(n_cols)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(body.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=_PARSE,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_columns != n_cols:
        return None
    cols = [c.to_pylist() for c in table.columns]
    return [list(r) for r in zip(*cols, strict=True)]


def table_rows(text: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line of the row, cells) of every row of a table CSV - exactly what :func:`csv_rows`
    yields. The leading blank and comment lines and the first other row (the column header) are
    read by :mod:`csv`; the rest by pyarrow when it is plain (no quotes, blank lines or lone
    ``\r``) and every row has the header's number of cells, else by :mod:`csv` too."""
    pos, line = 0, 1
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end + 1
        head = text[pos:end]
        content = head.removesuffix("\n").removesuffix("\r")
        if '"' in head or "\r" in content:
            break  # more than a plain line: csv reads all from here
        stripped = head.strip()
        if not stripped or stripped.startswith("#") or stripped.lower().startswith("sep="):
            yield from csv_rows(head, path, line)
            pos, line = end, line + 1
            continue
        header = content.split(",")
        body = text[end:]
        n = _n_lines(body) if body else None
        got = _arrow_strings(body, len(header)) if n else None
        if got is not None and len(got) == n:
            yield line, header
            for k, cells in enumerate(got):
                yield line + 1 + k, cells
            return
        break
    yield from csv_rows(text[pos:], path, line)
