"""Which exceptions are user mistakes: every error type matdb defines is decided, none by accident."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from matdb_app.errors import is_user_error, user_errors

#: matdb's own error types that are not user mistakes (or are caught before they reach a user).
INTERNAL = {
    "ingest.readers.records._BadText",  # turned into an IngestError by the reader
    "matdb.species.UnknownSpeciesError",  # a KeyError; families turn it into a FamilyDefinitionError
    "matdb.species.RadiusNotAvailableError",  # a KeyError; descriptors fall back or leave NaN
    "screening.pareto.ParetoError",  # wrong array shapes or NaN objectives: a bug of the caller
    "screening.kinetics.KineticsError",  # caught by the feature extraction (a warning of the run)
    "ingest.readers.spectrometer.Incomplete",  # a file still being written: the watcher waits for it
}


def _error_types() -> dict[str, type[BaseException]]:
    out = {}
    for pkg in ("matdb", "ingest", "screening", "matdb_app"):
        mod = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(mod.__path__, f"{pkg}."):
            if "migrations" in info.name or info.name == "matdb_app.cache":  # no error types; Streamlit
                continue
            module = importlib.import_module(info.name)
            for attr, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException) and not issubclass(obj, Warning)
                        and obj.__module__ == module.__name__):
                    out[f"{module.__name__}.{attr}"] = obj
    return out


def test_every_matdb_error_type_is_decided() -> None:
    types = _error_types()
    assert "ingest.errors.IngestError" in types and "matdb.query.QueryError" in types
    undecided = sorted(n for n, t in types.items() if n not in INTERNAL and not issubclass(t, user_errors()))
    assert undecided == []


def test_a_bare_value_error_is_internal() -> None:
    from matdb.query import QueryError

    assert is_user_error(QueryError("x")) and is_user_error(FileNotFoundError("f"))
    assert not is_user_error(ValueError("x")) and not is_user_error(KeyError("k"))
