"""Reader for crystal structure files: CIF, VASP POSCAR/CONTCAR (.vasp), extended XYZ / XYZ.

Files are parsed with ``ase.io`` to check they are readable (at least one atom, finite
positions, a cell of positive volume for periodic formats). Which sample or composition the
structure belongs to comes from ``#`` comments (CIF), the extxyz comment line
(``sample=... family=FAMAPbI3 params="{""x"": 0.8}"``) or a sidecar ``<file>.meta.yaml``.
Default technique: "dft" for VASP files, "other" for CIF/XYZ (override with ``technique:``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ingest.limits import DEFAULT, Limits
from ingest.readers._common import (
    fail,
    header_comments,
    merge_meta,
    standalone_document,
)
from ingest.records import Document, StructureFormat, StructureRecord

STRUCTURE_EXTENSIONS: dict[str, StructureFormat] = {
    ".cif": "cif", ".vasp": "poscar", ".extxyz": "extxyz", ".xyz": "xyz"}
_ASE_FORMAT = {"cif": "cif", "poscar": "vasp", "extxyz": "extxyz", "xyz": "extxyz"}


def structure_format(path: Path) -> StructureFormat | None:
    """'cif', 'poscar', 'extxyz' or 'xyz' from the name, or None."""
    upper = path.name.upper()
    if upper.startswith(("POSCAR", "CONTCAR")) or upper.endswith(("POSCAR", "CONTCAR")):
        return "poscar"
    return STRUCTURE_EXTENSIONS.get(path.suffix.lower())


def read_atoms(path: Path, fmt: str) -> list[Any]:
    """All frames of a structure file as ase Atoms; unreadable files are IngestErrors."""
    import ase.io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = ase.io.read(str(path), index=":", format=_ASE_FORMAT[fmt])
    except Exception as exc:  # noqa: BLE001 - ase raises many types for malformed input
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"cannot read {fmt} structure: {msg[:200]}", path) from None
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise fail(f"no structure found in the {fmt} file", path)
    for i, atoms in enumerate(frames):
        where = f"frame {i}" if len(frames) > 1 else None
        if len(atoms) == 0:
            raise fail("the structure has no atoms", path, record=where)
        if not np.isfinite(atoms.get_positions()).all():
            raise fail("atomic positions are not finite numbers", path, record=where)
        if fmt in ("cif", "poscar"):
            vol = abs(float(np.linalg.det(np.asarray(atoms.cell))))
            if not np.isfinite(vol) or vol < 1e-3:
                raise fail(
                    f"the unit cell has volume {vol:g} Å³; check the lattice parameters",
                    path,
                    record=where,
                    field="cell",
                )
    return frames


def read_structure_document(path: Path, text: str, limits: Limits = DEFAULT) -> Document:
    fmt = structure_format(path)
    if fmt is None:  # pragma: no cover - dispatch only calls us for structure names
        raise fail("not a structure file", path)
    frames = read_atoms(path, fmt)
    lines = text.splitlines()
    meta, where = header_comments(lines) if fmt == "cif" else ({}, {})
    if fmt in ("extxyz", "xyz"):
        info = frames[0].info
        for key in (
            "sample",
            "family",
            "params",
            "provenance",
            "technique",
            "source",
            "source_doi",
        ):
            if key in info:
                v = info[key]
                meta[key] = json.dumps(v) if isinstance(v, dict) else str(v)
                where[key] = 2
    meta, where = merge_meta(path, meta, where, limits)
    formula = frames[-1].get_chemical_formula(mode="hill")
    desc = meta.pop("description", None)
    rec = StructureRecord(
        file=path.name,
        format=fmt,
        description=str(desc) if desc else f"{formula}, {len(frames)} frame(s)",
    )
    technique = "dft" if fmt == "poscar" else "other"
    return standalone_document(path, meta, where, technique=technique, structures=[rec])
