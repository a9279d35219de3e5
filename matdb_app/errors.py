"""Which exceptions are user mistakes (shown as one line) and which are internal errors.

Only matdb's own exception types, raised with a message a chemist can act on, are user mistakes,
plus a file that is missing or unreadable. Anything else (a bare ``ValueError``, ``KeyError``, a
driver error) is a bug or an outage: the CLI says "internal error" (the traceback with
``MATDB_DEBUG=1``) and the pages say the operation failed unexpectedly.

``user_errors()`` imports the screening layer's error types only when called, which ``except
user_errors() as exc:`` does only once an exception is being handled, so a plain ``matdb query``
does not load scikit-learn.
"""

from __future__ import annotations

import functools
import os

from ingest.errors import IngestError
from matdb.db import DatabaseError
from matdb.export import ExportError
from matdb.families import CompositionError, FamilyDefinitionError
from matdb.query import QueryError
from matdb.store import StoreError
from matdb.units import UnitError
from matdb.vocabulary import IdentifierError, ProcessError
from matdb_app.isolation import WorkerLimitsError, WorkerStopped

#: Set to show the traceback of internal errors (CLI) and log them in full (pages).
DEBUG_ENV = "MATDB_DEBUG"

#: matdb's own errors that are the user's to fix, without the screening layer (see user_errors).
BASE_USER_ERRORS: tuple[type[BaseException], ...] = (
    IngestError,
    CompositionError,
    FamilyDefinitionError,
    UnitError,
    ProcessError,
    IdentifierError,
    QueryError,
    ExportError,
    StoreError,
    DatabaseError,
    FileNotFoundError,
    PermissionError,
    WorkerStopped,  # an upload that needed too much memory or time (matdb_app.isolation)
    WorkerLimitsError,
)


@functools.cache
def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception type shown to a user as a message rather than as an internal error."""
    from matdb_app.screening import ScreeningError
    from matdb_app.spectra import RunShapeError
    from screening.acquisition import AcquisitionError
    from screening.candidates import CandidateSpaceError
    from screening.constraints import ConstraintError
    from screening.objectives import ObjectiveError
    from screening.optimizer import OptimizerError
    from screening.simulate import SimulationError
    from screening.spectra import SpectrumError
    from screening.stability import StabilityError
    from screening.surrogate import ModelLoadError, SurrogateError

    return (*BASE_USER_ERRORS, ScreeningError, CandidateSpaceError, SurrogateError, ModelLoadError,
            StabilityError, SimulationError, SpectrumError, AcquisitionError, RunShapeError, ConstraintError,
            ObjectiveError, OptimizerError)


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, user_errors())


def debug() -> bool:
    return bool(os.environ.get(DEBUG_ENV))


def internal_message(exc: BaseException, what: str = "") -> str:
    """The one line an internal error becomes: what failed, the exception, how to see more."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (f"{what + ' failed: ' if what else ''}internal error {exc.__class__.__name__}: {first} "
            f"(set {DEBUG_ENV}=1 for the traceback and please report it)")
