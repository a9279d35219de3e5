"""Errors of the ingest layer: user mistakes located by file, line, record and field."""

from __future__ import annotations

from typing import Any


class IngestError(ValueError):
    """A user mistake in an input file; the message names file, line/record and field.

    Attributes:
        file: path of the input file.
        record: record id or position ("samples[3]", "row 12"), if known.
        field: offending field ("params.x", "plqy [%]"), if known.
        line: 1-based line number, if known.
    """

    def __init__(self, message: str, *, file: str | None = None, record: str | None = None,
                 field: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.record = record
        self.field = field
        self.line = line

    def __str__(self) -> str:
        where = [p for p in (
            self.file,
            f"line {self.line}" if self.line is not None else None,
            self.record,
            f"field '{self.field}'" if self.field else None,
        ) if p]
        return (": ".join([", ".join(where), self.message]) if where else self.message)

    def located(self, *, file: str | None = None, record: str | None = None,
                field: str | None = None, line: int | None = None) -> IngestError:
        """Fill in location parts that are not yet known."""
        self.file = self.file or file
        self.record = self.record or record
        self.field = self.field or field
        self.line = self.line if self.line is not None else line
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its attributes, not by calling __init__ again (a subclass such as LimitError
        # takes other arguments): an upload's errors come back from the worker process pickled.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[IngestError], args: tuple[Any, ...], state: dict[str, Any]) -> IngestError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class IngestErrors(IngestError):
    """Several errors found in one file (validation collects them all before giving up)."""

    def __init__(self, errors: list[IngestError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def each_error(exc: IngestError) -> list[IngestError]:
    """The single errors in ``exc``: ``exc`` itself, or those an :class:`IngestErrors` holds
    (nested ones too), each with its own file, line, record and field."""
    if isinstance(exc, IngestErrors):
        return [e for inner in exc.errors for e in each_error(inner)]
    return [exc]
