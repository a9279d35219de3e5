"""The ingest pauses the cyclic garbage collector per file and always restores it."""

from __future__ import annotations

import gc

import pytest

from ingest.load import gc_paused


def test_gc_paused_and_restored_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        assert not gc.isenabled()
        raise ValueError("a reader failed")
    assert gc.isenabled()


def test_gc_left_off_if_it_was_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
