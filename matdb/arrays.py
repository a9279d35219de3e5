"""Storage of whole arrays (TLIS runs, spectra, patterns) as blobs in the database.

Why blobs in the database rather than one row per number or files beside it: a 661 x 1000 TLIS
run is 661,000 numbers; as rows it would be ~40 MB of index and take seconds to read back, while as
one blob it is one row read in milliseconds. Keeping the blob in the same database (not in Parquet
files beside it) makes a load one transaction - a failed ingest leaves nothing behind - and works
identically on SQLite and PostgreSQL with no shared file system between PostgreSQL clients.

Format: the arrays (values and axis coordinates) are written with ``numpy.savez`` (the ``.npy``
format: dtype, shape, raw little-endian bytes; read back with ``allow_pickle=False`` so a blob can
never execute code) and compressed with zlib at level 1, which is fast and shrinks detector counts
well. The SHA-256 of the uncompressed payload addresses the content, so an identical run is
recognised on re-ingest.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COMPRESSION_LEVEL = 1


@dataclass
class ArrayData:
    """A whole array result: a spectrum, pattern or TLIS run, with its axes.

    Attributes:
        kind: one of :data:`matdb.vocabulary.ARRAY_KINDS` ("tlis_reflectance", "pxrd", ...).
        values: the data, shape (n_time, n_wavelength) for TLIS runs, (n,) for 1-D spectra.
        axes: axis name -> (coordinates, unit), in the order of ``values``' dimensions, e.g.
            {"time": (t, "min"), "wavelength": (wl, "nm")} or {"two_theta": (tt, "degree")}.
        value_unit: unit of ``values`` ("counts", "", ...).
        reference: for reflectance runs, the reference spectrum (n_wavelength,), else None.
        meta: header metadata (mode, integration_time, excitation_wavelength, ...).
    """

    kind: str
    values: np.ndarray
    axes: dict[str, tuple[np.ndarray, str]]
    value_unit: str = ""
    reference: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """SHA-256 of the values, axis coordinates and reference (the identity of the data)."""
        h = hashlib.sha256(np.ascontiguousarray(self.values).tobytes())
        for coords, _u in self.axes.values():
            h.update(np.ascontiguousarray(coords, dtype=float).tobytes())
        if self.reference is not None:
            h.update(np.ascontiguousarray(self.reference, dtype=float).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class EncodedArray:
    """An :class:`ArrayData` as stored: one blob plus the row's descriptive columns."""

    blob: bytes
    sha256: str
    shape: list[int]
    axes: dict[str, dict[str, Any]]  # name -> {"unit", "n", "index"}


def encode(data: ArrayData) -> EncodedArray:
    """The stored form of an array: values as ``values``, axis i as ``axis{i}``, the reference
    spectrum as ``reference``, in one blob (see :func:`encode_arrays`)."""
    arrays = {"values": np.asarray(data.values)}
    axes: dict[str, dict[str, Any]] = {}
    for i, (name, (coords, unit)) in enumerate(data.axes.items()):
        arrays[f"axis{i}"] = np.asarray(coords, dtype=float)
        axes[name] = {"unit": unit, "n": int(len(coords)), "index": i}
    if data.reference is not None:
        arrays["reference"] = np.asarray(data.reference, dtype=float)
    blob, sha = encode_arrays(arrays)
    return EncodedArray(blob, sha, list(arrays["values"].shape), axes)


def decode(blob: bytes, kind: str, axes: Mapping[str, Mapping[str, Any]], value_unit: str = "",
           meta: Mapping[str, Any] | None = None) -> ArrayData:
    """Inverse of :func:`encode`, given the row's ``kind``, ``axes``, ``value_unit`` and ``meta``."""
    data = decode_arrays(blob)
    ordered = sorted(axes.items(), key=lambda kv: kv[1]["index"])
    return ArrayData(
        kind=kind,
        values=data["values"],
        axes={name: (data[f"axis{info['index']}"], str(info["unit"])) for name, info in ordered},
        value_unit=value_unit,
        reference=data.get("reference"),
        meta=dict(meta or {}),
    )


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> tuple[bytes, str]:
    """Pack named arrays into one compressed blob; return (blob, sha256 of the payload)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    payload = buf.getvalue()
    return zlib.compress(payload, COMPRESSION_LEVEL), hashlib.sha256(payload).hexdigest()


def decode_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Unpack a blob written by :func:`encode_arrays` (never unpickles)."""
    with np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
