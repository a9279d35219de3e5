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

import numpy as np

COMPRESSION_LEVEL = 1


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> tuple[bytes, str]:
    """Pack named arrays into one compressed blob; return (blob, sha256 of the payload)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    payload = buf.getvalue()
    return zlib.compress(payload, COMPRESSION_LEVEL), hashlib.sha256(payload).hexdigest()


def decode_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Unpack a blob written by :func:`encode_arrays` (never unpickles)."""
    with np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
